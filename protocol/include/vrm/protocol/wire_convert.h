// Conversions between Cap'n Proto wire types and the domain types of reservation.h. This is the
// edge: readers come in, domain values go out; nothing past it touches capnp.
// Readers must come from a validated DecodedFrame (see protocol/codec.h).
#pragma once

#include <string>

#include "schema/vrm.capnp.h"
#include "vrm/protocol/reservation.h"
#include "vrm/protocol/webhook_delivery.h"

namespace vrm::protocol {

wire::StatusCode toWire(StatusCode code);
StatusCode fromWire(wire::StatusCode code);
void toWire(const Status& status, wire::Status::Builder out);
Status fromWire(wire::Status::Reader in);

wire::ReservationState toWire(ReservationState state);
ReservationState fromWire(wire::ReservationState state);

void toWire(const ReservationRequest& in, wire::ReservationRequest::Builder out);
// A request as a client sent it: an objective or displaced value this side does not know is
// invalid-argument, with the reason (objectiveFromName, displacedFromName).
Result<ReservationRequest> requestFromWire(wire::ReservationRequest::Reader in);
// A request inside a stored or replied reservation: unknown values read as the defaults.
ReservationRequest fromWire(wire::ReservationRequest::Reader in);

void toWire(const Reservation& in, wire::Reservation::Builder out);
Reservation fromWire(wire::Reservation::Reader in);

void toWire(const HostRecord& in, wire::HostInfo::Builder out);
HostRecord fromWire(wire::HostInfo::Reader in);

// Unknown wire values (a schema newer than this side) read as the first enumerator.
wire::VmState toWire(VmState state);
VmState fromWire(wire::VmState state);
wire::MigrationMode toWire(MoveMode mode);
MoveMode fromWire(wire::MigrationMode mode);

void toWire(const MigrationObservation& in, wire::MigrationObservation::Builder out);
MigrationObservation fromWire(wire::MigrationObservation::Reader in);

void toWire(const VmRecord& in, wire::VmInfo::Builder out);
VmRecord fromWire(wire::VmInfo::Reader in);
void toWire(const LostVm& in, wire::LostVm::Builder out);
LostVm fromWire(wire::LostVm::Reader in);

void toWire(const AgentCommand& in, wire::AgentCommand::Builder out);
AgentResult fromWire(wire::CommandResult::Reader in);
AgentProgress fromWire(wire::CommandProgress::Reader in);

ListFilter fromWire(wire::ListFilter::Reader in);
void toWire(const ListFilter& in, wire::ListFilter::Builder out);

void toWire(const BackupChunk& in, wire::BackupChunk::Builder out);
BackupChunk fromWire(wire::BackupChunk::Reader in);

// Unknown delivery states (a schema newer than this side) read as pending.
void toWire(const WebhookDelivery& in, wire::WebhookDelivery::Builder out);
WebhookDelivery fromWire(wire::WebhookDelivery::Reader in);

// Whole-reservation serialization, used by the store.
std::string serializeReservation(const Reservation& r);
Result<Reservation> parseReservation(const void* data, std::size_t size);

}  // namespace vrm::protocol
