// Conversions between the agent's domain types and the Cap'n Proto wire types, at the edge.
// Readers must come from a frame that root() already validated; text getters can still throw
// kj::Exception on malformed input, which the agent catches per frame.
#pragma once

#include "schema/vrm.capnp.h"
#include "vrm/protocol/status.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler::wireconv {

wire::StatusCode toWire(StatusCode code);
StatusCode fromWire(wire::StatusCode code);
void toWire(const Status& status, wire::Status::Builder out);

wire::VmState toWire(VmState state);
VmState fromWire(wire::VmState state);
wire::MigrationMode toWire(MigrationMode mode);
MigrationMode fromWire(wire::MigrationMode mode);

void toWire(const HostInfo& host, wire::HostInfo::Builder out);
void toWire(const VmInfo& vm, const std::string& host, wire::VmInfo::Builder out);
VmInfo fromWire(wire::VmInfo::Reader in);
void toWire(const MigrationObservation& obs, wire::MigrationObservation::Builder out);
void toWire(const VmHandle& handle, wire::VmHandle::Builder out);
MigrationSpec fromWire(wire::MigrateCommand::Reader in);
CloneSpec fromWire(wire::CloneCommand::Reader in);

}  // namespace vrm::vmscheduler::wireconv
