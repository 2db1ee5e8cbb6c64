// The agent's side of the wire: what protocol/wire_convert.h does not already convert. Status,
// VmState, the migration mode and MigrationObservation are the protocol's own types and use its
// conversions (re-exported here); a VM and a host go through the protocol's VmRecord and
// HostRecord, so the wire fields are written in one place only.
// Readers must come from a frame that root() already validated; text getters can still throw
// kj::Exception on malformed input, which the agent catches per frame.
#pragma once

#include <string>

#include "schema/vrm.capnp.h"
#include "vrm/protocol/reservation.h"
#include "vrm/protocol/wire_convert.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler::wireconv {

using protocol::fromWire;
using protocol::toWire;

// The agent's view of a VM has no host (it is this agent's); vrmd's VmRecord has one. A VM read
// from the wire is fromRecord(fromWire(reader)).
VmRecord toRecord(const VmInfo& vm, const std::string& host);
VmInfo fromRecord(const VmRecord& vm);

void toWire(const HostInfo& host, wire::HostInfo::Builder out);
void toWire(const VmInfo& vm, const std::string& host, wire::VmInfo::Builder out);
void toWire(const VmHandle& handle, wire::VmHandle::Builder out);
// The commands vrmd sends (protocol converts them only in vrmd's direction).
MigrationSpec fromWire(wire::MigrateCommand::Reader in);
CloneSpec fromWire(wire::CloneCommand::Reader in);

}  // namespace vrm::vmscheduler::wireconv
