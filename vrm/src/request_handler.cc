#include "vrm/manager/request_handler.h"

#include <spdlog/spdlog.h>

#include <map>
#include <vector>

#include "vrm/protocol/wire_convert.h"

namespace vrm::manager {

using protocol::fromWire;
using protocol::toStd;
using protocol::toWire;

namespace {

void fillReservation(const Reservation& r, wire::Reservation::Builder out) { toWire(r, out); }

// The reservation as `caller` may see it.
void fillReservationFor(const Caller& caller, Reservation r, wire::Reservation::Builder out) {
  if (!caller.mayActFor(r.request.owner)) hideHandles(r);
  toWire(r, out);
}

}  // namespace

void hideHandles(Reservation& r) {
  for (auto& c : r.clones) {
    c.address.clear();
    c.account.clear();
    c.port = 0;
    c.addressSource.clear();
  }
}

std::string requesterOf(const zmq::message_t& payload, const protocol::DecodeLimits& limits) {
  zmq::message_t copy;
  copy.copy(const_cast<zmq::message_t&>(payload));
  auto frame = protocol::decodeFrame(std::move(copy), limits);
  if (!frame) return "";
  auto req = frame->root<wire::ClientRequest>();
  if (!req) return "";
  try {
    return toStd(req->getRequester());
  } catch (const kj::Exception&) {
    return "";
  }
}

zmq::message_t answerClientFrame(Manager& manager, const Clock& clock, const Caller& caller,
                                 zmq::message_t payload, const protocol::DecodeLimits& limits,
                                 StoreBackups* backups, std::optional<SubmitAnswer>* submitted,
                                 const Notifier* notifier) {
  capnp::MallocMessageBuilder reply;
  auto out = reply.initRoot<wire::ClientReply>();
  out.setNowNs(clock.now());
  auto setStatus = [&](const Status& s) { toWire(s, out.initStatus()); };

  auto frame = protocol::decodeFrame(std::move(payload), limits);
  Result<wire::ClientRequest::Reader> req =
      frame ? frame->root<wire::ClientRequest>()
            : Result<wire::ClientRequest::Reader>(frame.status());
  if (!req) {
    spdlog::warn("malformed client request: {}", req.status().message());
    setStatus(req.status());
  } else {
    out.setRequestId(req->getRequestId());
    try {
      switch (req->which()) {
        case wire::ClientRequest::SUBMIT: {
          // Who may book is decided before what is booked is judged.
          Result<ReservationRequest> parsed = protocol::requestFromWire(req->getSubmit());
          ReservationRequest request = parsed ? *parsed : fromWire(req->getSubmit());
          if (request.owner.empty()) request.owner = caller.name;
          const bool dryRun = request.dryRun;
          Result<Reservation> r = Status::unauthorized("");
          if (caller.role == Role::kAnonymous && !dryRun) {
            r = Status::unauthorized("anonymous callers cannot book: authenticate first");
          } else if (caller.role != Role::kAdmin && request.owner != caller.name) {
            r = Status::unauthorized(caller.describe() + " cannot book for '" + request.owner +
                                     "' (only for itself)");
          } else if (!parsed) {
            r = parsed.status();
          } else {
            r = manager.submit(std::move(request));
          }
          if (!r) {
            setStatus(r.status());
          } else {
            setStatus(r->state == ReservationState::kRejected ? Status::rejected(r->reason)
                                                              : Status::ok());
            fillReservation(*r, out.initReservation());
          }
          if (submitted) {
            const SubmitDecision d = !r ? SubmitDecision::kError
                                     : r->state == ReservationState::kRejected
                                         ? SubmitDecision::kRejected
                                         : SubmitDecision::kAdmitted;
            *submitted = SubmitAnswer{d, dryRun};
          }
          break;
        }
        case wire::ClientRequest::GET: {
          auto r = manager.get(toStd(req->getGet()));
          setStatus(r.status());
          if (r && notifier && caller.mayActFor(r->request.owner)) {
            const auto deliveries = notifier->deliveriesOf(r->id);
            auto list = out.initDeliveries(static_cast<unsigned>(deliveries.size()));
            for (unsigned i = 0; i < deliveries.size(); ++i) toWire(deliveries[i], list[i]);
          }
          if (r) fillReservationFor(caller, std::move(*r), out.initReservation());
          break;
        }
        case wire::ClientRequest::CANCEL: {
          const std::string id = toStd(req->getCancel());
          Result<Reservation> r = manager.get(id);
          if (r && !caller.mayActFor(r->request.owner)) {
            r = Status::unauthorized("reservation " + id + " belongs to " + r->request.owner +
                                     "; " + caller.describe() + " may cancel only its own");
          } else if (r) {
            r = manager.cancel(id, caller.name, caller.role == Role::kAdmin);
          }
          setStatus(r.status());
          if (r) fillReservation(*r, out.initReservation());
          break;
        }
        case wire::ClientRequest::LIST: {
          auto rs = manager.list(fromWire(req->getList()));
          setStatus(Status::ok());
          auto list = out.initReservations(static_cast<unsigned>(rs.size()));
          for (unsigned i = 0; i < rs.size(); ++i) {
            fillReservationFor(caller, std::move(rs[i]), list[i]);
          }
          break;
        }
        case wire::ClientRequest::HOSTS: {
          auto hs = manager.hosts();
          setStatus(Status::ok());
          auto list = out.initHosts(static_cast<unsigned>(hs.size()));
          for (unsigned i = 0; i < hs.size(); ++i) toWire(hs[i], list[i]);
          break;
        }
        case wire::ClientRequest::VMS: {
          auto vs = manager.vms();
          if (caller.role != Role::kAdmin) {
            // A clone's address is a handle: only its reservation's owner sees it.
            std::map<std::string, bool> visible;  // reservation id -> caller may see handles
            for (auto& v : vs) {
              if (v.reservationId.empty()) continue;
              auto it = visible.find(v.reservationId);
              if (it == visible.end()) {
                auto r = manager.get(v.reservationId);
                it =
                    visible.emplace(v.reservationId, r && caller.mayActFor(r->request.owner)).first;
              }
              if (!it->second) v.address.clear();
            }
          }
          setStatus(Status::ok());
          auto list = out.initVms(static_cast<unsigned>(vs.size()));
          for (unsigned i = 0; i < vs.size(); ++i) toWire(vs[i], list[i]);
          break;
        }
        case wire::ClientRequest::BACKUP: {
          // A backup holds every owner's reservations and handles.
          Result<BackupChunk> chunk =
              Status::unauthorized(caller.describe() + " cannot back up the store (admins only)");
          if (caller.role == Role::kAdmin) {
            chunk = backups ? backups->read(toStd(req->getBackup().getSnapshotId()),
                                            req->getBackup().getOffset())
                            : Status::unavailable("this vrmd serves no backups");
          }
          setStatus(chunk.status());
          if (chunk) toWire(*chunk, out.initBackup());
          break;
        }
        default:
          setStatus(Status::invalid("unknown request type (newer client?)"));
      }
    } catch (const kj::Exception& e) {
      // A field out of range or the like, discovered while converting at the edge.
      setStatus(Status::invalid(std::string("malformed request: ") + e.getDescription().cStr()));
    }
  }
  return protocol::encodeFrame(reply);
}

std::optional<zmq::message_t> applyAgentFrame(Manager& manager, const std::string& host,
                                              zmq::message_t payload,
                                              const protocol::DecodeLimits& limits) {
  auto frame = protocol::decodeFrame(std::move(payload), limits);
  Result<wire::AgentMessage::Reader> msg = frame
                                               ? frame->root<wire::AgentMessage>()
                                               : Result<wire::AgentMessage::Reader>(frame.status());
  if (!msg) {
    spdlog::warn("malformed message from agent {}: {}", host, msg.status().message());
    return std::nullopt;
  }
  std::optional<zmq::message_t> answer;
  auto answerRegistered = [&](const Status& s) {
    capnp::MallocMessageBuilder b;
    toWire(s, b.initRoot<wire::ManagerMessage>().initRegistered());
    answer = protocol::encodeFrame(b);
  };
  try {
    switch (msg->which()) {
      case wire::AgentMessage::REGISTER: {
        auto reg = msg->getRegister();
        HostRecord h = fromWire(reg.getHost());
        h.backend = toStd(reg.getBackend());
        h.migrationEndpoint = toStd(reg.getMigrationEndpoint());
        Status s;
        if (h.name != host) {
          // An agent speaks only for its own host.
          s = Status::unauthorized("agent " + host + " tried to register host '" + h.name + "'");
        } else {
          std::vector<VmRecord> vms;
          for (auto v : reg.getVms()) vms.push_back(fromWire(v));
          std::vector<LostVm> lost;
          for (auto v : reg.getLost()) lost.push_back(fromWire(v));
          s = manager.onRegister(h, vms, lost);
        }
        if (!s) spdlog::warn("registration of {} refused: {}", host, s.toString());
        answerRegistered(s);
        break;
      }
      case wire::AgentMessage::HEARTBEAT: {
        auto hb = msg->getHeartbeat();
        std::vector<VmRecord> vms;
        for (auto v : hb.getVms()) vms.push_back(fromWire(v));
        std::vector<LostVm> lost;
        for (auto v : hb.getLost()) lost.push_back(fromWire(v));
        Status s = manager.onHeartbeat(host, vms, lost);
        if (s.code() == StatusCode::kNotFound) answerRegistered(s);
        break;
      }
      case wire::AgentMessage::PROGRESS:
        manager.onProgress(host, fromWire(msg->getProgress()));
        break;
      case wire::AgentMessage::RESULT:
        manager.onResult(host, fromWire(msg->getResult()));
        break;
      default:
        spdlog::warn("unknown message type from agent {}", host);
    }
  } catch (const kj::Exception& e) {
    spdlog::warn("malformed message from agent {}: {}", host, e.getDescription().cStr());
  }
  return answer;
}

}  // namespace vrm::manager
