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

StandbyServer::StandbyServer(StandbyServerOptions options) : options_(std::move(options)) {}

StandbyServer::~StandbyServer() { close(); }

Status StandbyServer::bind() {
  close();
  context_ = std::make_unique<zmq::context_t>(1);
  socket_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::router);
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(options_.limits.maxFrameBytes));
  try {
    if (options_.curve) {
      if (Status s = protocol::requireCurve(); !s) return s;
      // No ZAP handler listens in this context: every CURVE client is let in (see the header).
      protocol::applyCurveServer(*socket_, *options_.curve, "vrm-standby");
    }
  } catch (const zmq::error_t& e) {
    return Status::invalid(std::string("cannot use the server key: ") + e.what());
  }
  try {
    socket_->bind(options_.clientEndpoint);
    bound_ = socket_->get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    close();
    return Status::unavailable("cannot bind " + options_.clientEndpoint + ": " + e.what());
  }
  return Status::ok();
}

int StandbyServer::runOnce(std::chrono::milliseconds maxWait, const std::string& leaderEndpoint,
                           TimeNs nowNs) {
  if (!socket_) return 0;
  zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
  try {
    zmq::poll(&item, 1, maxWait);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
  }
  int answered = 0;
  // Bounded, as the leader's loop: the caller checks its election between turns.
  for (; answered < 256; ++answered) {
    std::vector<zmq::message_t> parts;
    while (true) {
      zmq::message_t part;
      if (!socket_->recv(part, parts.empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none))
        break;
      const bool more = part.more();
      parts.push_back(std::move(part));
      if (!more) break;
    }
    if (parts.empty()) break;
    if (parts.size() < 2) continue;  // no envelope: nothing to answer
    // Envelope: identity, [empty delimiter (REQ clients)], payload.
    const bool delimited = parts.size() >= 3 && parts[1].size() == 0;
    zmq::message_t answer = answerAsStandby(parts.back(), leaderEndpoint, nowNs, options_.limits);
    try {
      socket_->send(parts[0], zmq::send_flags::sndmore);
      if (delimited) socket_->send(zmq::message_t(), zmq::send_flags::sndmore);
      socket_->send(answer, zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      spdlog::warn("cannot answer a client as a standby: {}", e.what());
    }
  }
  if (answered > 0) {
    spdlog::debug("answered {} client request(s): not the leader ({})", answered,
                  leaderEndpoint.empty() ? "no leader known" : "the leader is " + leaderEndpoint);
  }
  return answered;
}

void StandbyServer::close() {
  socket_.reset();
  if (context_) context_->close();  // returns once every socket of it is closed
  context_.reset();
}

}  // namespace vrm::manager
