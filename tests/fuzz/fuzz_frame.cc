// Fuzz target: the frame decoder (protocol/codec.h) and the wire -> domain conversions
// (protocol/wire_convert.h), on bytes as they arrive from a socket.
//
// Each input is decoded as a frame; every message type a peer can send or receive
// (ClientRequest, ClientReply, AgentMessage, ManagerMessage, and the store's Reservation) is
// read as the root and converted to domain types field by field, so a lazily followed bad
// pointer would surface here rather than deep in vrmd. Contract checked: decodeFrame and
// root<T>() never throw and never crash; once root<T>() succeeded, converting never throws.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "schema/vrm.capnp.h"
#include "vrm/protocol/codec.h"
#include "vrm/protocol/wire_convert.h"

namespace {

using namespace vrm;
using protocol::fromWire;
using protocol::toStd;

[[noreturn]] void fail(const char* what, const kj::Exception& e) {
  std::fprintf(stderr, "%s threw after root<T>() accepted the message: %s\n", what,
               e.getDescription().cStr());
  std::abort();
}

void walk(wire::ClientRequest::Reader r) {
  (void)r.getRequestId();
  (void)toStd(r.getRequester());
  switch (r.which()) {
    case wire::ClientRequest::SUBMIT:
      (void)fromWire(r.getSubmit());
      break;
    case wire::ClientRequest::GET:
      (void)toStd(r.getGet());
      break;
    case wire::ClientRequest::CANCEL:
      (void)toStd(r.getCancel());
      break;
    case wire::ClientRequest::LIST:
      (void)fromWire(r.getList());
      break;
    default:
      break;
  }
}

void walk(wire::ClientReply::Reader r) {
  (void)fromWire(r.getStatus());
  switch (r.which()) {
    case wire::ClientReply::RESERVATION:
      (void)fromWire(r.getReservation());
      break;
    case wire::ClientReply::RESERVATIONS:
      for (auto x : r.getReservations()) (void)fromWire(x);
      break;
    case wire::ClientReply::HOSTS:
      for (auto x : r.getHosts()) (void)fromWire(x);
      break;
    case wire::ClientReply::VMS:
      for (auto x : r.getVms()) (void)fromWire(x);
      break;
    default:
      break;
  }
}

void walk(wire::AgentMessage::Reader r) {
  switch (r.which()) {
    case wire::AgentMessage::REGISTER: {
      auto reg = r.getRegister();
      (void)fromWire(reg.getHost());
      for (auto v : reg.getVms()) (void)fromWire(v);
      (void)toStd(reg.getBackend());
      (void)toStd(reg.getMigrationEndpoint());
      break;
    }
    case wire::AgentMessage::HEARTBEAT:
      for (auto v : r.getHeartbeat().getVms()) (void)fromWire(v);
      break;
    case wire::AgentMessage::PROGRESS:
      (void)fromWire(r.getProgress());
      break;
    case wire::AgentMessage::RESULT:
      (void)fromWire(r.getResult());
      break;
    default:
      break;
  }
}

void walk(wire::ManagerMessage::Reader r) {
  switch (r.which()) {
    case wire::ManagerMessage::REGISTERED:
      (void)fromWire(r.getRegistered());
      break;
    case wire::ManagerMessage::COMMAND: {
      // vmschedd reads these; its conversions live in vmscheduler/, so walk the fields here.
      auto c = r.getCommand();
      (void)c.getCommandId();
      switch (c.which()) {
        case wire::AgentCommand::PREPARE_INCOMING:
          (void)fromWire(c.getPrepareIncoming());
          break;
        case wire::AgentCommand::MIGRATE:
          (void)toStd(c.getMigrate().getVmId());
          (void)toStd(c.getMigrate().getDestinationEndpoint());
          break;
        case wire::AgentCommand::CLONE:
          (void)toStd(c.getClone().getTemplate());
          (void)toStd(c.getClone().getReservationId());
          break;
        case wire::AgentCommand::SUSPEND:
          (void)toStd(c.getSuspend());
          break;
        default:
          break;
      }
      break;
    }
    default:
      break;
  }
}

void walk(wire::Reservation::Reader r) { (void)fromWire(r); }

// A traversal limit of 64 Ki words (vrmd's default is 4 Mi): a 100-byte frame of aliased
// pointers may cost the whole limit, twice, and at 4 Mi words that takes seconds per input
// under ASan. The code paths are the same.
protocol::DecodeLimits limits() {
  protocol::DecodeLimits l;
  l.maxFrameBytes = 1u << 20;
  l.traversalLimitWords = 1u << 16;
  return l;
}

template <typename T>
void decodeAs(const std::uint8_t* data, std::size_t size, const char* name) {
  // The owning overload, as vrmd and vmschedd call it (copies misaligned bytes).
  auto frame = protocol::decodeFrame(zmq::message_t(data, size), limits());
  if (!frame) return;
  auto root = frame->template root<T>();
  if (!root) return;
  try {
    walk(*root);
  } catch (const kj::Exception& e) {
    fail(name, e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  decodeAs<wire::ClientRequest>(data, size, "ClientRequest");
  decodeAs<wire::ClientReply>(data, size, "ClientReply");
  decodeAs<wire::AgentMessage>(data, size, "AgentMessage");
  decodeAs<wire::ManagerMessage>(data, size, "ManagerMessage");
  // The store's encoding of a reservation (a corrupt database row): what parseReservation does.
  decodeAs<wire::Reservation>(data, size, "Reservation");
  return 0;
}
