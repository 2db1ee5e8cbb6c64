#include "vrm/client/client.h"

#include <capnp/message.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <zmq.hpp>

#include "vrm/protocol/codec.h"
#include "vrm/protocol/curve.h"
#include "vrm/protocol/wire_convert.h"

namespace vrm::client {

using protocol::fromWire;
using protocol::toWire;

// "a,b" -> {"a", "b"}, empty parts dropped; {""} for "" (so that connect() says what is wrong).
std::vector<std::string> splitEndpointList(const std::string& list) {
  std::vector<std::string> out;
  std::size_t from = 0;
  while (from <= list.size()) {
    const std::size_t comma = std::min(list.find(',', from), list.size());
    if (comma > from) out.push_back(list.substr(from, comma - from));
    from = comma + 1;
  }
  if (out.empty()) out.push_back(list);
  return out;
}

struct Client::Impl {
  ClientOptions options;  // options.endpoint: the one connected to now, of `endpoints` or not
  std::vector<std::string> endpoints;  // as configured
  std::unique_ptr<zmq::context_t> ownedContext;
  zmq::context_t* context;
  std::unique_ptr<zmq::socket_t> socket;
  std::unique_ptr<protocol::HandshakeMonitor> monitor;  // destroyed before `socket`
  std::uint64_t nextRequestId = 1;

  Status configError;  // bad keys: every call fails with it
  bool curve() const { return !options.serverPublicKey.empty(); }

  void connect() {
    monitor.reset();
    socket = std::make_unique<zmq::socket_t>(*context, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    if (curve()) {
      for (auto [key, what] : {std::pair{&options.serverPublicKey, "vrmd's public key"},
                               std::pair{&options.publicKey, "the client's public key"},
                               std::pair{&options.secretKey, "the client's secret key"}}) {
        if (Status s = protocol::checkZ85Key(*key, what); !s) configError = s;
      }
      if (!configError) return;
      protocol::applyCurveClient(*socket,
                                 {options.serverPublicKey, {options.publicKey, options.secretKey}});
    } else if (!options.publicKey.empty() || !options.secretKey.empty()) {
      configError = Status::invalid("a client key pair needs vrmd's public key as well");
      return;
    }
    monitor = std::make_unique<protocol::HandshakeMonitor>(*context, *socket,
                                                           "vrmd at " + options.endpoint, curve());
    socket->connect(options.endpoint);
  }

  void connectTo(const std::string& endpoint) {
    options.endpoint = endpoint;
    connect();
  }

  // Sends the request to the endpoint connected to and returns the decoded reply; on the way
  // to a leader (see ClientOptions::endpoint) it follows one redirect and tries each configured
  // endpoint at most once.
  template <typename Fill, typename Read>
  auto call(Fill fill, Read read, TimeNs* serverNow)
      -> decltype(read(std::declval<wire::ClientReply::Reader>())) {
    std::vector<std::string> tried;
    bool redirected = false;
    while (true) {
      std::optional<std::string> leader;  // set when the replica asked does not lead
      bool timedOut = false;
      auto result = callOnce(fill, read, serverNow, &leader, &timedOut);
      tried.push_back(options.endpoint);
      auto triedAlready = [&](const std::string& e) {
        return std::find(tried.begin(), tried.end(), e) != tried.end();
      };
      // Once only, even to the replica just asked: one that was elected while the request
      // waited answers that it leads now.
      if (leader && !leader->empty() && !redirected) {
        redirected = true;
        connectTo(*leader);
        continue;
      }
      if (!leader && !timedOut) return result;  // an answer (or an error of this request)
      // Not the leader, or no answer: the next configured replica not asked yet, if any.
      auto next = std::find_if(endpoints.begin(), endpoints.end(),
                               [&](const std::string& e) { return !triedAlready(e); });
      if (next == endpoints.end()) return result;
      connectTo(*next);
    }
  }

  // One request to options.endpoint: the decoded reply, or the error. `*leader` is set when the
  // replica answered that it does not lead (with where it says the leader is, "" if unknown);
  // `*timedOut` when it did not answer in time.
  template <typename Fill, typename Read>
  auto callOnce(Fill fill, Read read, TimeNs* serverNow, std::optional<std::string>* leader,
                bool* timedOut) -> decltype(read(std::declval<wire::ClientReply::Reader>())) {
    if (!configError) return configError;
    capnp::MallocMessageBuilder b;
    auto req = b.initRoot<wire::ClientRequest>();
    const std::uint64_t id = nextRequestId++;
    req.setRequestId(id);
    req.setRequester(options.requester);
    fill(req);
    try {
      socket->send(protocol::encodeFrame(b), zmq::send_flags::none);
      const auto deadline = std::chrono::steady_clock::now() + options.timeout;
      while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        zmq::pollitem_t items[] = {{socket->handle(), 0, ZMQ_POLLIN, 0},
                                   {monitor->events().handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 2, left);
        if (Status s = monitor->check(); !s) {
          connect();  // drop the queued request: it must not go out on a later handshake
          return s;
        }
        if (!(items[0].revents & ZMQ_POLLIN)) continue;
        zmq::message_t msg;
        if (!socket->recv(msg, zmq::recv_flags::dontwait)) continue;
        auto frame = protocol::decodeFrame(std::move(msg));
        if (!frame)
          return Status::internal("malformed reply from vrmd: " + frame.status().message());
        auto reply = frame->root<wire::ClientReply>();
        if (!reply)
          return Status::internal("malformed reply from vrmd: " + reply.status().message());
        if (reply->getRequestId() != id && reply->getRequestId() != 0) continue;  // stale
        try {
          if (reply->hasNotLeader()) {
            *leader = protocol::toStd(reply->getNotLeader().getLeaderEndpoint());
            return Status::unavailable(
                "vrmd at " + options.endpoint +
                ((*leader)->empty() ? " does not lead and knows no leader"
                                    : " does not lead and names " + **leader + " as the leader") +
                " (an election under way, or etcd out of its reach?): try again");
          }
          *serverNow = reply->getNowNs();
          return read(*reply);
        } catch (const kj::Exception& e) {
          return Status::internal(std::string("malformed reply from vrmd: ") +
                                  e.getDescription().cStr());
        }
      }
    } catch (const zmq::error_t& e) {
      connect();
      return Status::unavailable("cannot reach vrmd at " + options.endpoint + ": " + e.what());
    }
    const std::string hint =
        options.endpoint.rfind("inproc://", 0) == 0 ? "" : monitor->timeoutHint();
    connect();  // drop whatever arrives late
    *timedOut = true;
    return Status::unavailable("vrmd at " + options.endpoint + " did not answer within " +
                               std::to_string(options.timeout.count()) + " ms" + hint);
  }
};

Client::Client(ClientOptions options, zmq::context_t* context) : impl_(std::make_unique<Impl>()) {
  impl_->endpoints = splitEndpointList(options.endpoint);
  impl_->options = std::move(options);
  impl_->options.endpoint = impl_->endpoints.front();
  if (!context) {
    impl_->ownedContext = std::make_unique<zmq::context_t>(1);
    context = impl_->ownedContext.get();
  }
  impl_->context = context;
  impl_->connect();
}

Client::~Client() = default;

void Client::setRequester(std::string requester) {
  impl_->options.requester = std::move(requester);
}

namespace {

Result<Reservation> readReservation(wire::ClientReply::Reader reply) {
  Status s = fromWire(reply.getStatus());
  // A rejected submit still carries the reservation with its reason: that is an answer.
  if (reply.isReservation() && (s.isOk() || s.code() == StatusCode::kRejected)) {
    auto r = fromWire(reply.getReservation());
    if (s.isOk() || r.state == ReservationState::kRejected) return r;
  }
  if (!s.isOk()) return s;
  return Status::internal("vrmd's reply carries no reservation");
}

}  // namespace

Result<Reservation> Client::submit(const ReservationRequest& request) {
  return impl_->call([&](auto req) { toWire(request, req.initSubmit()); }, readReservation,
                     &serverNowNs_);
}

Result<Reservation> Client::get(const std::string& id) {
  return impl_->call([&](auto req) { req.setGet(id); }, readReservation, &serverNowNs_);
}

Result<Reservation> Client::get(const std::string& id, std::vector<WebhookDelivery>& deliveries) {
  return impl_->call([&](auto req) { req.setGet(id); },
                     [&](wire::ClientReply::Reader reply) {
                       deliveries.clear();
                       for (auto d : reply.getDeliveries()) deliveries.push_back(fromWire(d));
                       return readReservation(reply);
                     },
                     &serverNowNs_);
}

Result<Reservation> Client::cancel(const std::string& id) {
  return impl_->call([&](auto req) { req.setCancel(id); }, readReservation, &serverNowNs_);
}

Result<std::vector<Reservation>> Client::list(const ListFilter& filter) {
  return impl_->call([&](auto req) { toWire(filter, req.initList()); },
                     [](wire::ClientReply::Reader reply) -> Result<std::vector<Reservation>> {
                       Status s = fromWire(reply.getStatus());
                       if (!s) return s;
                       std::vector<Reservation> out;
                       for (auto r : reply.getReservations()) out.push_back(fromWire(r));
                       return out;
                     },
                     &serverNowNs_);
}

Result<std::vector<HostRecord>> Client::hosts() {
  return impl_->call([](auto req) { req.setHosts(); },
                     [](wire::ClientReply::Reader reply) -> Result<std::vector<HostRecord>> {
                       Status s = fromWire(reply.getStatus());
                       if (!s) return s;
                       std::vector<HostRecord> out;
                       for (auto h : reply.getHosts()) out.push_back(fromWire(h));
                       return out;
                     },
                     &serverNowNs_);
}

Result<std::vector<VmRecord>> Client::vms() {
  return impl_->call([](auto req) { req.setVms(); },
                     [](wire::ClientReply::Reader reply) -> Result<std::vector<VmRecord>> {
                       Status s = fromWire(reply.getStatus());
                       if (!s) return s;
                       std::vector<VmRecord> out;
                       for (auto v : reply.getVms()) out.push_back(fromWire(v));
                       return out;
                     },
                     &serverNowNs_);
}

namespace {

Result<BackupChunk> readBackupChunk(wire::ClientReply::Reader reply) {
  Status s = fromWire(reply.getStatus());
  if (!s) return s;
  if (!reply.isBackup()) return Status::internal("vrmd's reply carries no backup chunk");
  return fromWire(reply.getBackup());
}

// Whether `next` continues what was read of `first` so far (`written` bytes).
Status checkContinues(const BackupChunk& first, const BackupChunk& next, std::uint64_t written) {
  if (next.snapshotId != first.snapshotId || next.totalBytes != first.totalBytes ||
      next.offset != written || written + next.data.size() > first.totalBytes ||
      (next.data.empty() && written < first.totalBytes)) {
    return Status::internal("vrmd's backup chunks do not fit together (snapshot " +
                            first.snapshotId + ", at byte " + std::to_string(written) + ")");
  }
  return Status::ok();
}

}  // namespace

Result<Client::BackupInfo> Client::backupTo(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    return Status::invalid("'" + path + "' exists: a backup never overwrites a file");
  }
  auto ask = [&](const std::string& id, std::uint64_t offset) {
    return impl_->call(
        [&](auto req) {
          auto b = req.initBackup();
          b.setSnapshotId(id);
          b.setOffset(offset);
        },
        readBackupChunk, &serverNowNs_);
  };
  // Asked first, so a refused or unreachable backup leaves no file behind.
  auto first = ask("", 0);
  if (!first) return first.status();
  const std::string partial = path + ".partial";
  std::FILE* out = std::fopen(partial.c_str(), "wb");
  if (out == nullptr) {
    return Status::internal("cannot write '" + partial + "': " + std::strerror(errno));
  }
  auto fail = [&](Status s) {
    std::fclose(out);
    std::filesystem::remove(partial, ec);
    return s;
  };
  std::uint64_t written = 0;
  for (Result<BackupChunk> chunk = first;; chunk = ask(first->snapshotId, written)) {
    if (!chunk) return fail(chunk.status());
    if (Status s = checkContinues(*first, *chunk, written); !s) return fail(s);
    if (std::fwrite(chunk->data.data(), 1, chunk->data.size(), out) != chunk->data.size()) {
      return fail(Status::internal("cannot write '" + partial + "': " + std::strerror(errno)));
    }
    written += chunk->data.size();
    if (written == first->totalBytes) break;
  }
  if (std::fflush(out) != 0 || ::fsync(fileno(out)) != 0) {
    return fail(Status::internal("cannot sync '" + partial + "': " + std::strerror(errno)));
  }
  std::fclose(out);
  std::filesystem::rename(partial, path, ec);
  if (ec) {
    std::filesystem::remove(partial, ec);
    return Status::internal("cannot rename '" + partial + "' to '" + path + "': " + ec.message());
  }
  return BackupInfo{written, first->reservations, first->takenAtNs};
}

Result<TimeNs> Client::serverNow() {
  auto h = hosts();
  if (!h) return h.status();
  return serverNowNs_;
}

Result<Reservation> Client::waitUntilReady(const std::string& id, std::chrono::milliseconds timeout,
                                           const std::function<void(const Reservation&)>& onChange,
                                           std::chrono::milliseconds pollInterval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t seenEvents = 0;
  ReservationState seenState = ReservationState::kRequested;
  while (true) {
    auto r = get(id);
    if (!r) return r.status();
    if (onChange && (r->events.size() != seenEvents || r->state != seenState)) onChange(*r);
    seenEvents = r->events.size();
    seenState = r->state;
    if (r->state == ReservationState::kReady || r->state == ReservationState::kActive) return r;
    if (isTerminal(r->state)) {
      return Status::rejected("reservation " + id + " is " + stateName(r->state) +
                              (r->reason.empty() ? "" : ": " + r->reason));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::unavailable("reservation " + id + " not ready within " +
                                 std::to_string(timeout.count()) + " ms (state " +
                                 stateName(r->state) + ")");
    }
    // Polling is the client's pace, not a correctness sleep: state lives in vrmd.
    std::this_thread::sleep_for(pollInterval);
  }
}

}  // namespace vrm::client
