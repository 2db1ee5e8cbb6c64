#include "vrm/manager/server.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <vector>

#include "vrm/manager/request_handler.h"
#include "vrm/protocol/wire_convert.h"

namespace vrm::manager {

using protocol::toWire;

Server::Server(zmq::context_t& context, Manager& manager, const Clock& clock, ServerOptions options)
    : context_(context),
      manager_(manager),
      clock_(clock),
      options_(std::move(options)),
      clients_(context, zmq::socket_type::router),
      agents_(context, zmq::socket_type::router),
      events_(context, zmq::socket_type::pub),
      localClients_(context, zmq::socket_type::router) {
  for (zmq::socket_t* s : {&events_, &clients_, &agents_, &localClients_}) {
    s->set(zmq::sockopt::linger, 0);
  }
  // Fail a send to a disconnected agent instead of dropping it silently.
  agents_.set(zmq::sockopt::router_mandatory, 1);
  // Insecure mode: a restarted agent takes over its host name from the dead connection. With
  // CURVE, agents are addressed by their key's latest connection instead, and a connection
  // must never take over another's routing id.
  agents_.set(zmq::sockopt::router_handover, options_.curve ? 0 : 1);
  const auto maxBytes = static_cast<std::int64_t>(options_.limits.maxFrameBytes);
  clients_.set(zmq::sockopt::maxmsgsize, maxBytes);
  agents_.set(zmq::sockopt::maxmsgsize, maxBytes);
  localClients_.set(zmq::sockopt::maxmsgsize, maxBytes);
  // An agent has a message or two unread at a time (heartbeat, progress, results); a deeper
  // queue per agent only stores a storm vrmd cannot read: 10,000 agents repeating registers
  // into the default of 1,000 per connection held 11 GiB. Past 64, ZeroMQ stops reading that
  // connection and the agent's own send queue takes the backlog (as past 1,000 before).
  agents_.set(zmq::sockopt::rcvhwm, 64);
}

Server::~Server() = default;

Status Server::bind() {
  if (options_.curve) {
    if (Status s = protocol::requireCurve(); !s) return s;
    if (!options_.authorized) return Status::invalid("CURVE needs the authorized keys");
    for (const auto& endpoint : options_.extraClientEndpoints) {
      if (endpoint.rfind("inproc://", 0) != 0) {
        return Status::invalid("in-process client endpoint '" + endpoint +
                               "' must be inproc:// (it is not authenticated)");
      }
    }
    zap_ = std::make_unique<ZapHandler>(context_, options_.authorized);
    if (Status s = zap_->bind(); !s) return s;
    try {
      protocol::applyCurveServer(clients_, *options_.curve, kZapDomainClients);
      protocol::applyCurveServer(agents_, *options_.curve, kZapDomainAgents);
      protocol::applyCurveServer(events_, *options_.curve, kZapDomainEvents);
    } catch (const zmq::error_t& e) {
      return Status::invalid(std::string("cannot use the server key: ") + e.what());
    }
  } else {
    spdlog::warn(
        "INSECURE mode: no authentication; anyone who reaches vrmd's endpoints may "
        "submit and cancel as anyone and act as any agent");
  }
  // Each named in its error, so that an operator knows which address is taken.
  auto bind = [](zmq::socket_t& socket, const std::string& endpoint) {
    try {
      socket.bind(endpoint);
    } catch (const zmq::error_t& e) {
      return Status::unavailable("cannot bind " + endpoint + ": " + e.what());
    }
    return Status::ok();
  };
  if (Status s = bind(clients_, options_.clientEndpoint); !s) return s;
  boundClientEndpoint_ = clients_.get(zmq::sockopt::last_endpoint);
  for (const auto& endpoint : options_.extraClientEndpoints) {
    if (Status s = bind(localClients_, endpoint); !s) return s;
  }
  if (!options_.eventsEndpoint.empty()) {
    if (Status s = bind(events_, options_.eventsEndpoint); !s) return s;
  }
  return bind(agents_, options_.agentEndpoint);
}

std::string Server::clientEndpoint() const { return boundClientEndpoint_; }
std::string Server::agentEndpoint() const { return agents_.get(zmq::sockopt::last_endpoint); }
std::string Server::eventsEndpoint() const {
  return options_.eventsEndpoint.empty() ? "" : events_.get(zmq::sockopt::last_endpoint);
}

void Server::runOnce(std::chrono::milliseconds maxWait) {
  auto wait = std::min(maxWait, clock_.realDelayUntil(manager_.nextWakeNs(), maxWait));
  if (options_.notifier) {
    wait = std::min(wait, clock_.realDelayUntil(options_.notifier->nextWakeNs(), maxWait));
  }
  zmq::pollitem_t items[] = {{clients_.handle(), 0, ZMQ_POLLIN, 0},
                             {agents_.handle(), 0, ZMQ_POLLIN, 0},
                             {localClients_.handle(), 0, ZMQ_POLLIN, 0},
                             {zap_ ? zap_->socket().handle() : nullptr, 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, zap_ ? 4 : 3, wait);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
  }
  // Handshakes first: a connecting peer waits for this answer.
  if (zap_) zap_->handlePending();
  // Drain what is there, bounded so one busy socket cannot starve the other or the ticks.
  for (int i = 0; i < 256 && (items[1].revents & ZMQ_POLLIN); ++i) {
    handleAgent();
    if (!(agents_.get(zmq::sockopt::events) & ZMQ_POLLIN)) break;
  }
  // Every heartbeat that had arrived is read: silence is judged up to here, not beyond (a
  // backlog vrmd is slow to read does not make its senders unreachable).
  if (!(agents_.get(zmq::sockopt::events) & ZMQ_POLLIN)) {
    manager_.agentFramesReadUntil(clock_.now());
  }
  for (int i = 0; i < 256 && (items[0].revents & ZMQ_POLLIN); ++i) {
    handleClient(clients_, false);
    if (!(clients_.get(zmq::sockopt::events) & ZMQ_POLLIN)) break;
  }
  for (int i = 0; i < 256 && (items[2].revents & ZMQ_POLLIN); ++i) {
    handleClient(localClients_, true);
    if (!(localClients_.get(zmq::sockopt::events) & ZMQ_POLLIN)) break;
  }
  manager_.tick();
  flushOutbox();
  publishEvents();
  deliverWebhooks();
}

void Server::run(const std::atomic<bool>& stop) {
  while (!stop.load()) runOnce(options_.maxPollWait);
}

Result<std::shared_ptr<const AuthorizedKeys>> Server::reloadAuthorized(const std::string& path) {
  if (!options_.curve || !zap_) {
    return Status::invalid("no authorized file to reload: vrmd runs without CURVE (--insecure)");
  }
  auto list = AuthorizedKeys::load(path);
  if (!list) return list.status();
  auto shared = std::make_shared<const AuthorizedKeys>(std::move(*list));
  options_.authorized = shared;
  zap_->setAuthorized(shared);
  // Routes of agents no longer listed go; their frames are refused in handleAgent.
  for (auto it = agentRoutes_.begin(); it != agentRoutes_.end();) {
    it = shared->agentByHost(it->first) ? std::next(it) : agentRoutes_.erase(it);
  }
  return std::shared_ptr<const AuthorizedKeys>(shared);
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

Caller Server::callerOf(const zmq::message_t& payload, bool local) const {
  if (!options_.curve) return Caller::fromRequester(requesterOf(payload, options_.limits));
  if (local) {
    const std::string name = requesterOf(payload, options_.limits);
    if (name.empty()) return Caller::anonymous();
    if (const auto* w = options_.authorized->webByName(name)) return {w->name, w->role};
    spdlog::warn("in-process request for unknown web user '{}': served as anonymous", name);
    return Caller::anonymous();
  }
  // ZAP admitted the key and named its client: the only identity a TCP request has.
  const std::string name = userIdOf(payload);
  if (const auto* c = options_.authorized->clientByName(name)) return {c->name, c->role};
  spdlog::warn("client request without a known User-Id ('{}'): served as anonymous", name);
  return Caller::anonymous();
}

void Server::handleClient(zmq::socket_t& socket, bool local) {
  auto parts = receiveAll(socket);
  if (parts.size() < 2) return;  // no envelope: nothing to answer
  // Envelope: identity, [empty delimiter (REQ clients)], payload.
  const bool delimited = parts.size() >= 3 && parts[1].size() == 0;
  const Caller caller = callerOf(parts.back(), local);
  // Real time, not vrmd's (possibly scaled) clock: how long a client waits on this loop.
  const auto started = std::chrono::steady_clock::now();
  std::optional<SubmitAnswer> submitted;
  zmq::message_t encoded =
      answerClientFrame(manager_, clock_, caller, std::move(parts.back()), options_.limits,
                        options_.backups, &submitted, options_.notifier);
  if (submitted && options_.admissions) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    options_.admissions->record(local ? AdmissionMetrics::kViaWeb : AdmissionMetrics::kViaZmq,
                                submitted->decision, submitted->dryRun, seconds);
  }
  try {
    socket.send(parts[0], zmq::send_flags::sndmore);
    if (delimited) socket.send(zmq::message_t(), zmq::send_flags::sndmore);
    socket.send(encoded, zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    spdlog::warn("cannot reply to a client: {}", e.what());
  }
}

void Server::sendToAgent(const std::string& host, capnp::MessageBuilder& message) {
  std::string route = host;
  if (options_.curve) {
    auto it = agentRoutes_.find(host);
    if (it == agentRoutes_.end()) {
      // Its key never spoke to this vrmd: not connected.
      errno = EHOSTUNREACH;
      throw zmq::error_t();
    }
    route = it->second;
  }
  zmq::message_t encoded = protocol::encodeFrame(message);
  agents_.send(zmq::buffer(route), zmq::send_flags::sndmore);
  agents_.send(encoded, zmq::send_flags::none);
}

void Server::handleAgent() {
  auto parts = receiveAll(agents_);
  if (parts.size() < 2) return;
  const std::string routingId = parts[0].to_string();
  std::string host = routingId;
  if (options_.curve) {
    host = userIdOf(parts.back());
    // Ids libzmq generates start with a zero byte; any other id was chosen by the agent and
    // must be its own host's name.
    const bool chosen = !routingId.empty() && routingId[0] != '\0';
    if (host.empty() || (chosen && routingId != host)) {
      spdlog::warn("refused a frame from agent key of '{}' that claims to be '{}'", host,
                   routingId);
      return;
    }
    if (!options_.authorized->agentByHost(host)) {  // removed by a reload since it connected
      spdlog::warn("refused a frame from agent '{}': no longer in the authorized file", host);
      return;
    }
    agentRoutes_[host] = routingId;
  }
  auto answer = applyAgentFrame(manager_, host, std::move(parts.back()), options_.limits);
  if (!answer) return;
  try {
    agents_.send(zmq::buffer(routingId), zmq::send_flags::sndmore);
    agents_.send(*answer, zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    spdlog::warn("cannot answer agent {}: {}", host, e.what());
  }
}

void Server::publishEvents() {
  for (const auto& [event, r] : manager_.takeEvents()) {
    if (options_.notifier) options_.notifier->observe(event, r);
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
    for (const auto& m : r.moves) {
      if (!m.isVacate()) continue;  // the vacate's progress
      done += m.progress.state == MoveState::kDone || m.progress.state == MoveState::kSkipped;
    }
    for (const auto& c : r.clones) running += c.state == CloneState::kRunning;
    notice.setMovesDone(done);
    notice.setMovesTotal(static_cast<std::uint32_t>(r.vacateMoveCount()));
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

void Server::deliverWebhooks() {
  if (!options_.notifier || !options_.webhooks) return;
  for (const auto& outcome : options_.webhooks->takeOutcomes()) {
    options_.notifier->onOutcome(outcome);
  }
  for (auto& post : options_.notifier->takeDue()) options_.webhooks->send(std::move(post));
}

void Server::flushOutbox() {
  if (options_.mayAct && !options_.mayAct()) return;
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
