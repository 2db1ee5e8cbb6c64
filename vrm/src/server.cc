#include "vrm/manager/server.h"

#include <spdlog/spdlog.h>

#include <vector>

#include "vrm/manager/request_handler.h"
#include "vrm/protocol/wire_convert.h"

namespace vrm::manager {

using protocol::toWire;

Server::Server(zmq::context_t& context, Manager& manager, const Clock& clock,
               ServerOptions options)
    : context_(context),
      manager_(manager),
      clock_(clock),
      options_(std::move(options)),
      clients_(context, zmq::socket_type::router),
      agents_(context, zmq::socket_type::router),
      events_(context, zmq::socket_type::pub) {
  events_.set(zmq::sockopt::linger, 0);
  clients_.set(zmq::sockopt::linger, 0);
  agents_.set(zmq::sockopt::linger, 0);
  // Fail a send to a disconnected agent instead of dropping it silently.
  agents_.set(zmq::sockopt::router_mandatory, 1);
  // A restarted agent takes over its host name from the dead connection.
  agents_.set(zmq::sockopt::router_handover, 1);
  clients_.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(options_.limits.maxFrameBytes));
  agents_.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(options_.limits.maxFrameBytes));
}

Status Server::bind() {
  try {
    clients_.bind(options_.clientEndpoint);
    boundClientEndpoint_ = clients_.get(zmq::sockopt::last_endpoint);
    for (const auto& endpoint : options_.extraClientEndpoints) clients_.bind(endpoint);
    if (!options_.eventsEndpoint.empty()) events_.bind(options_.eventsEndpoint);
    agents_.bind(options_.agentEndpoint);
  } catch (const zmq::error_t& e) {
    return Status::unavailable(std::string("cannot bind: ") + e.what());
  }
  return Status::ok();
}

std::string Server::clientEndpoint() const { return boundClientEndpoint_; }
std::string Server::agentEndpoint() const { return agents_.get(zmq::sockopt::last_endpoint); }
std::string Server::eventsEndpoint() const {
  return options_.eventsEndpoint.empty() ? "" : events_.get(zmq::sockopt::last_endpoint);
}

void Server::runOnce(std::chrono::milliseconds maxWait) {
  auto wait = std::min(maxWait, clock_.realDelayUntil(manager_.nextWakeNs(), maxWait));
  zmq::pollitem_t items[] = {{clients_.handle(), 0, ZMQ_POLLIN, 0},
                             {agents_.handle(), 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, 2, wait);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
  }
  // Drain what is there, bounded so one busy socket cannot starve the other or the ticks.
  for (int i = 0; i < 256 && (items[1].revents & ZMQ_POLLIN); ++i) {
    handleAgent();
    if (!(agents_.get(zmq::sockopt::events) & ZMQ_POLLIN)) break;
  }
  for (int i = 0; i < 256 && (items[0].revents & ZMQ_POLLIN); ++i) {
    handleClient();
    if (!(clients_.get(zmq::sockopt::events) & ZMQ_POLLIN)) break;
  }
  manager_.tick();
  flushOutbox();
  publishEvents();
}

void Server::run(const std::atomic<bool>& stop) {
  while (!stop.load()) runOnce(options_.maxPollWait);
}

namespace {

// Reads all frames of one multipart message.
std::vector<zmq::message_t> receiveAll(zmq::socket_t& socket) {
  std::vector<zmq::message_t> parts;
  while (true) {
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::dontwait)) break;
    bool more = part.more();
    parts.push_back(std::move(part));
    if (!more) break;
  }
  return parts;
}

}  // namespace

void Server::handleClient() {
  auto parts = receiveAll(clients_);
  if (parts.size() < 2) return;  // no envelope: nothing to answer
  // Envelope: identity, [empty delimiter (REQ clients)], payload.
  const bool delimited = parts.size() >= 3 && parts[1].size() == 0;
  zmq::message_t encoded =
      answerClientFrame(manager_, clock_, std::move(parts.back()), options_.limits);
  try {
    clients_.send(parts[0], zmq::send_flags::sndmore);
    if (delimited) clients_.send(zmq::message_t(), zmq::send_flags::sndmore);
    clients_.send(encoded, zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    spdlog::warn("cannot reply to a client: {}", e.what());
  }
}

void Server::sendToAgent(const std::string& host, capnp::MessageBuilder& message) {
  zmq::message_t encoded = protocol::encodeFrame(message);
  agents_.send(zmq::buffer(host), zmq::send_flags::sndmore);
  agents_.send(encoded, zmq::send_flags::none);
}

void Server::handleAgent() {
  auto parts = receiveAll(agents_);
  if (parts.size() < 2) return;
  const std::string host = parts[0].to_string();
  auto answer = applyAgentFrame(manager_, host, std::move(parts.back()), options_.limits);
  if (!answer) return;
  try {
    agents_.send(zmq::buffer(host), zmq::send_flags::sndmore);
    agents_.send(*answer, zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    spdlog::warn("cannot answer agent {}: {}", host, e.what());
  }
}

void Server::publishEvents() {
  for (const auto& [event, r] : manager_.takeEvents()) {
    if (options_.eventsEndpoint.empty()) continue;
    capnp::MallocMessageBuilder b;
    auto notice = b.initRoot<wire::EventNotice>();
    notice.setReservationId(r.id);
    auto e = notice.initEvent();
    e.setTimeNs(event.timeNs);
    e.setState(toWire(event.state));
    e.setMessage(event.message);
    notice.setState(toWire(r.state));
    std::uint32_t done = 0, running = 0;
    for (const auto& m : r.moves) done += m.state == MoveState::kDone || m.state == MoveState::kSkipped;
    for (const auto& c : r.clones) running += c.state == CloneState::kRunning;
    notice.setMovesDone(done);
    notice.setMovesTotal(static_cast<std::uint32_t>(r.moves.size()));
    notice.setClonesRunning(running);
    notice.setClonesTotal(static_cast<std::uint32_t>(r.clones.size()));
    try {
      // A PUB never blocks: slow subscribers lose messages, not vrmd its loop.
      events_.send(zmq::buffer(r.id + "|"), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      events_.send(protocol::encodeFrame(b), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      spdlog::debug("cannot publish an event of {}: {}", r.id, e.what());
    }
  }
}

void Server::flushOutbox() {
  for (AgentCommand& cmd : manager_.takeOutbox()) {
    capnp::MallocMessageBuilder b;
    toWire(cmd, b.initRoot<wire::ManagerMessage>().initCommand());
    try {
      sendToAgent(cmd.host, b);
    } catch (const zmq::error_t& e) {
      spdlog::warn("cannot send {} to {}: {}", commandKindName(cmd.kind), cmd.host, e.what());
      manager_.onSendFailed(cmd.id, "agent " + cmd.host + " is not connected");
    }
  }
}

}  // namespace vrm::manager
