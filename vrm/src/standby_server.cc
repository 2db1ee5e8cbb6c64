#include "vrm/manager/standby_server.h"

#include <capnp/message.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <vector>

#include "vrm/protocol/wire_convert.h"

namespace vrm::manager {

zmq::message_t answerAsStandby(const zmq::message_t& request, const std::string& leaderEndpoint,
                               TimeNs nowNs, const protocol::DecodeLimits& limits) {
  std::uint64_t requestId = 0;
  if (auto frame = protocol::decodeFrame(request.data(), request.size(), limits)) {
    try {
      if (auto root = frame->root<wire::ClientRequest>()) requestId = root->getRequestId();
    } catch (const kj::Exception&) {
      // Unreadable: answered with id 0, as the leader would.
    }
  }
  capnp::MallocMessageBuilder b;
  auto reply = b.initRoot<wire::ClientReply>();
  reply.setRequestId(requestId);
  reply.setNowNs(nowNs);
  reply.setNone();
  protocol::toWire(
      Status::unavailable(leaderEndpoint.empty()
                              ? "this vrmd does not lead and knows no leader (an election under "
                                "way, or etcd out of its reach): try again"
                              : "this vrmd does not lead: the leader is at " + leaderEndpoint),
      reply.initStatus());
  reply.initNotLeader().setLeaderEndpoint(leaderEndpoint);
  return protocol::encodeFrame(b);
}

zmq::message_t answerAgentAsStandby(const std::string& leaderEndpoint) {
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::ManagerMessage>().initNotLeader().setLeaderEndpoint(leaderEndpoint);
  return protocol::encodeFrame(b);
}

namespace {

// Answers up to `budget` messages waiting on ROUTER `socket` with answer(payload); returns how
// many. Envelope: identity, [empty delimiter (REQ clients)], payload.
template <typename Answer>
int answerWaiting(zmq::socket_t& socket, int budget, Answer answer) {
  int answered = 0;
  for (; answered < budget; ++answered) {
    std::vector<zmq::message_t> parts;
    while (true) {
      zmq::message_t part;
      if (!socket.recv(part, parts.empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none))
        break;
      const bool more = part.more();
      parts.push_back(std::move(part));
      if (!more) break;
    }
    if (parts.empty()) break;
    if (parts.size() < 2) continue;  // no envelope: nothing to answer
    const bool delimited = parts.size() >= 3 && parts[1].size() == 0;
    zmq::message_t reply = answer(parts.back());
    try {
      socket.send(parts[0], zmq::send_flags::sndmore);
      if (delimited) socket.send(zmq::message_t(), zmq::send_flags::sndmore);
      socket.send(reply, zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      spdlog::warn("cannot answer as a standby: {}", e.what());
    }
  }
  return answered;
}

}  // namespace

StandbyServer::StandbyServer(StandbyServerOptions options) : options_(std::move(options)) {}

StandbyServer::~StandbyServer() { close(); }

Status StandbyServer::bind() {
  close();
  context_ = std::make_unique<zmq::context_t>(1);
  auto open = [&](std::unique_ptr<zmq::socket_t>& socket, const std::string& endpoint,
                  const char* flag, std::string& bound) -> Status {
    socket = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::router);
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(options_.limits.maxFrameBytes));
    // Insecure agents are known by their host name as routing id: a new connection of one
    // takes the name over (as the leader's Server does), or its answers would go to the old.
    if (!options_.curve) socket->set(zmq::sockopt::router_handover, 1);
    try {
      if (options_.curve) {
        if (Status s = protocol::requireCurve(); !s) return s;
        // No ZAP handler listens in this context: every CURVE peer is let in (see the header).
        protocol::applyCurveServer(*socket, *options_.curve, "vrm-standby");
      }
    } catch (const zmq::error_t& e) {
      return Status::invalid(std::string("cannot use the server key: ") + e.what());
    }
    try {
      socket->bind(endpoint);
      bound = socket->get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      return Status::unavailable(std::string(flag) + ": cannot bind " + endpoint + ": " + e.what());
    }
    return Status::ok();
  };
  Status s = open(socket_, options_.clientEndpoint, "--clients", bound_);
  if (s && !options_.agentEndpoint.empty()) {
    s = open(agents_, options_.agentEndpoint, "--agents", boundAgents_);
  }
  if (!s) close();
  return s;
}

int StandbyServer::runOnce(std::chrono::milliseconds maxWait, const std::string& leaderEndpoint,
                           TimeNs nowNs) {
  if (!socket_) return 0;
  zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                             {agents_ ? agents_->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, agents_ ? 2 : 1, maxWait);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
  }
  // Bounded, as the leader's loop: the caller checks its election between turns.
  const int clients = answerWaiting(*socket_, 256, [&](const zmq::message_t& request) {
    return answerAsStandby(request, leaderEndpoint, nowNs, options_.limits);
  });
  const int agents = agents_ ? answerWaiting(*agents_, 256,
                                             [&](const zmq::message_t&) {
                                               return answerAgentAsStandby(leaderEndpoint);
                                             })
                             : 0;
  if (clients + agents > 0) {
    spdlog::debug("answered {} client request(s) and {} agent message(s): not the leader ({})",
                  clients, agents,
                  leaderEndpoint.empty() ? "no leader known" : "the leader is " + leaderEndpoint);
  }
  return clients + agents;
}

void StandbyServer::close() {
  socket_.reset();
  agents_.reset();
  if (context_) context_->close();  // returns once every socket of it is closed
  context_.reset();
  bound_.clear();
  boundAgents_.clear();
}

}  // namespace vrm::manager
