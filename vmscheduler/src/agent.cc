#include "vrm/vmscheduler/agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <functional>
#include <vector>

#include "vrm/protocol/units.h"
#include "wire.h"

namespace vrm::vmscheduler {
namespace {

using protocol::toStd;

// Frames handled per runOnce() at most, so that a flood cannot starve timers and progress.
constexpr int kMaxFramesPerIteration = 1000;
// Lost guests per registration or heartbeat at most (the newest): vrmd acts on each once, so
// repeating them costs little, and a host losing more than this at once is reported in part.
constexpr std::size_t kMaxLostReported = 64;

template <typename Builder>
void writeLost(const std::vector<LostVm>& lost, Builder out) {
  const std::size_t first = lost.size() > kMaxLostReported ? lost.size() - kMaxLostReported : 0;
  auto list = out.initLost(static_cast<unsigned>(lost.size() - first));
  for (unsigned i = 0; i < list.size(); ++i) protocol::toWire(lost[first + i], list[i]);
}

zmq::message_t resultFrame(std::uint64_t commandId, const Status& status,
                           const std::function<void(wire::CommandResult::Builder)>& fill = {}) {
  capnp::MallocMessageBuilder b;
  auto result = b.initRoot<wire::AgentMessage>().initResult();
  result.setCommandId(commandId);
  wireconv::toWire(status, result.initStatus());
  if (status.isOk() && fill) {
    fill(result);
  } else {
    result.setNone();
  }
  return protocol::encodeFrame(b);
}

}  // namespace

Agent::Agent(Clock& clock, Hypervisor& hypervisor, zmq::context_t& context, AgentOptions options)
    : clock_(clock),
      hypervisor_(hypervisor),
      context_(context),
      options_(std::move(options)),
      host_(hypervisor.hostInfo().name),
      endpoints_(options_.vrmdEndpoint) {
  registerIntervalNs_ = options_.registerRetryIntervalNs;
  roundPauseNs_ = options_.registerRetryIntervalNs;
  jitterRng_.seed(options_.jitterSeed ^ std::hash<std::string>{}(host_));
  // Every endpoint of the list is tried now, so that a bad one is found at start-up rather
  // than when the agent first moves to it.
  for (std::size_t i = 1; i < endpoints_.all().size(); ++i) {
    zmq::socket_t probe(context_, zmq::socket_type::dealer);
    probe.set(zmq::sockopt::linger, 0);
    probe.connect(endpoints_.all()[i]);
  }
  connectCurrent();
}

void Agent::connectCurrent() {
  monitor_.reset();  // before the socket it watches closes
  socket_ = zmq::socket_t(context_, zmq::socket_type::dealer);
  socket_.set(zmq::sockopt::linger, 0);
  if (options_.curve) {
    // vrmd knows us by our key and routes to the connection the key speaks from; a routing
    // id of our own would only be something to squat.
    protocol::applyCurveClient(socket_, *options_.curve);
  } else {
    // Insecure vrmd addresses this agent by host name: the id must be set before connecting.
    socket_.set(zmq::sockopt::routing_id, host_);
  }
  monitor_ = std::make_unique<protocol::HandshakeMonitor>(
      context_, socket_, "vrmd at " + endpoints_.current(), options_.curve.has_value());
  socket_.connect(endpoints_.current());
  handshakesSeen_ = 0;
  disconnectsSeen_ = 0;
  connected_ = false;
  lastHandshakeError_.clear();
  connectDeadlineNs_ =
      endpoints_.rotates() ? clock_.now() + options_.connectTimeoutNs : kTimeInfinity;
}

Agent::~Agent() { monitor_.reset(); }

void Agent::run(const std::atomic<bool>& stop) {
  while (!stop.load()) runOnce(std::chrono::milliseconds(100));
}

void Agent::runOnce(std::chrono::milliseconds maxWait) {
  sendDue();
  const TimeNs timer = registered_ ? nextHeartbeatNs_ : nextRegisterNs_;
  const TimeNs connectTimer = connected_ ? kTimeInfinity : connectDeadlineNs_;
  const TimeNs wake = std::min({timer, connectTimer, hypervisor_.nextEventTime()});
  const auto timeout = clock_.realDelayUntil(wake, maxWait);
  // The monitor's events too: vrmd coming back wakes the loop at once.
  zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                             {monitor_->events().handle(), 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, 2, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return;  // a signal: let run() look at its stop flag
    throw;
  }
  if (items[0].revents & ZMQ_POLLIN) receiveAll();
  // ZeroMQ retries a refused handshake silently: say why once, so an operator can act.
  if (Status s = monitor_->check(); !s && s.message() != lastHandshakeError_) {
    spdlog::error("{}", s.message());
    lastHandshakeError_ = s.message();
  } else if (monitor_->succeeded()) {
    lastHandshakeError_.clear();
  }
  watchConnection();
  sendDue();
}

void Agent::sendDue() {
  const TimeNs now = clock_.now();
  if (!connected_ && now >= connectDeadlineNs_) {
    moveOn(ReplicaEndpoints::Leaving::kUnreachable,
           fmt::format("no handshake within {:.1f}s", nsToSeconds(options_.connectTimeoutNs)));
  }
  if (!registered_ && now >= nextRegisterNs_) {
    sendRegister();
    nextRegisterNs_ = now + jittered(registerIntervalNs_);
    // Unanswered so far: vrmd is down or behind, and every repeat adds to what it has to read
    // (10,000 agents repeating each second built gigabytes of backlog). Back off.
    registerIntervalNs_ =
        std::max(registerIntervalNs_,
                 std::min(2 * registerIntervalNs_, options_.registerRetryMaxIntervalNs));
  }
  // Before the heartbeat, so the inventory it carries reflects finished operations.
  pollHypervisor(now);
  if (registered_ && now >= nextHeartbeatNs_) {
    sendHeartbeat(now);
    nextHeartbeatNs_ = now + jittered(options_.heartbeatIntervalNs);
  }
}

void Agent::watchConnection() {
  if (monitor_->disconnects() != disconnectsSeen_) {
    disconnectsSeen_ = monitor_->disconnects();
    spdlog::info("lost the connection to vrmd at {}", endpoints_.current());
  }
  const bool wasConnected = connected_;
  connected_ = monitor_->connected();
  if (connected_) {
    connectDeadlineNs_ = kTimeInfinity;
  } else if (wasConnected && endpoints_.rotates()) {
    // Lost: back within the timeout (a restart, the network), or another replica leads.
    connectDeadlineNs_ = clock_.now() + options_.connectTimeoutNs;
  }
  const std::uint64_t handshakes = monitor_->handshakes();
  if (handshakes == handshakesSeen_) return;
  const bool back = handshakesSeen_ > 0;  // the first connection carries the first register
  handshakesSeen_ = handshakes;
  if (!back) return;
  ++reconnections_;
  // A vrmd that restarted does not know this host: register again (jittered), heartbeat after.
  const TimeNs now = clock_.now();
  TimeNs wait = 0;
  if (options_.reconnectRegisterSpreadNs > 0) {
    wait = std::uniform_int_distribution<TimeNs>(0, options_.reconnectRegisterSpreadNs)(jitterRng_);
  }
  registered_ = false;
  nextHeartbeatNs_ = kTimeInfinity;
  registerIntervalNs_ = options_.registerRetryIntervalNs;
  nextRegisterNs_ = now + wait;
  spdlog::info("vrmd at {} is back; registering host {} again in {:.3f}s", endpoints_.current(),
               host_, nsToSeconds(wait));
}

void Agent::moveOn(ReplicaEndpoints::Leaving why, const std::string& reason) {
  const std::string left = endpoints_.current();
  const ReplicaEndpoints::Hop hop = endpoints_.next(why);
  ++endpointHops_;
  registered_ = false;
  nextHeartbeatNs_ = kTimeInfinity;
  connectCurrent();
  TimeNs wait = 0;
  if (why == ReplicaEndpoints::Leaving::kUnreachable) {
    // Every agent of a dead leader leaves it at about the same time: spread as on a return.
    if (options_.reconnectRegisterSpreadNs > 0) {
      wait =
          std::uniform_int_distribution<TimeNs>(0, options_.reconnectRegisterSpreadNs)(jitterRng_);
    }
  } else if (hop.pause) {
    // No replica leads now: one try per round, the rounds backing off.
    wait = jittered(roundPauseNs_);
    roundPauseNs_ =
        std::max(roundPauseNs_, std::min(2 * roundPauseNs_, options_.registerRetryMaxIntervalNs));
  }
  // A replica answered, or none was reached: the new one is not known to be behind.
  registerIntervalNs_ = options_.registerRetryIntervalNs;
  nextRegisterNs_ = clock_.now() + wait;
  const auto level = why == ReplicaEndpoints::Leaving::kNotLeader && !hop.pause
                         ? spdlog::level::debug
                         : spdlog::level::info;
  spdlog::log(level, "vrmd at {}: {}; registering host {} at {} in {:.3f}s", left, reason, host_,
              hop.endpoint, nsToSeconds(wait));
}

void Agent::handleNotLeader(const std::string& leaderEndpoint) {
  const std::string why = "not the leader (" +
                          (leaderEndpoint.empty() ? std::string("no leader known")
                                                  : "the leader is " + leaderEndpoint) +
                          ")";
  if (endpoints_.rotates()) {
    moveOn(ReplicaEndpoints::Leaving::kNotLeader, why);
    return;
  }
  // The one endpoint given: it may be elected later. The register retry timer runs on.
  spdlog::info("vrmd at {}: {}; retrying there (give --vrmd every replica's endpoint)",
               endpoints_.current(), why);
  if (!registered_) return;
  registered_ = false;
  nextHeartbeatNs_ = kTimeInfinity;
  nextRegisterNs_ = clock_.now() + jittered(registerIntervalNs_);
}

TimeNs Agent::jittered(TimeNs interval) {
  const double jitter = std::clamp(options_.intervalJitter, 0.0, 1.0);
  if (jitter <= 0 || interval <= 0) return interval;
  std::uniform_real_distribution<double> early(0.0, jitter);
  return interval - static_cast<TimeNs>(early(jitterRng_) * static_cast<double>(interval));
}

TimeNs Agent::firstHeartbeatDelay() {
  const TimeNs interval = options_.heartbeatIntervalNs;
  if (!(options_.intervalJitter > 0) || interval <= 1) return interval;
  std::uniform_int_distribution<TimeNs> phase(1, interval);
  return phase(jitterRng_);
}

void Agent::sendRegister() {
  capnp::MallocMessageBuilder b;
  auto reg = b.initRoot<wire::AgentMessage>().initRegister();
  wireconv::toWire(hypervisor_.hostInfo(), reg.initHost());
  const std::vector<VmInfo> vms = hypervisor_.inventory();
  auto list = reg.initVms(static_cast<unsigned>(vms.size()));
  for (unsigned i = 0; i < vms.size(); ++i) wireconv::toWire(vms[i], host_, list[i]);
  reg.setBackend(std::string(hypervisor_.backendName()));
  reg.setMigrationEndpoint(hypervisor_.migrationEndpoint());
  writeLost(hypervisor_.lostVms(), reg);
  spdlog::debug("registering host {} with {} VMs at {}", host_, vms.size(), endpoints_.current());
  send(protocol::encodeFrame(b));
}

void Agent::sendHeartbeat(TimeNs now) {
  capnp::MallocMessageBuilder b;
  auto hb = b.initRoot<wire::AgentMessage>().initHeartbeat();
  hb.setTimeNs(now);
  const std::vector<VmInfo> vms = hypervisor_.inventory();
  auto list = hb.initVms(static_cast<unsigned>(vms.size()));
  for (unsigned i = 0; i < vms.size(); ++i) wireconv::toWire(vms[i], host_, list[i]);
  writeLost(hypervisor_.lostVms(), hb);
  send(protocol::encodeFrame(b));
}

void Agent::pollHypervisor(TimeNs now) {
  for (OperationEvent& e : hypervisor_.poll(now)) {
    auto it = inFlight_.find(e.opId);
    if (it == inFlight_.end()) {
      // An operation the backend resumed after this agent restarted (qemu: a booting clone, a
      // live migration), under the id of the command an earlier agent ran: vrmd still waits for
      // that command's result, so it is sent (and kept for the command's repeat).
      if (e.kind == OperationEvent::Kind::kProgress) continue;
      if (finished_.count(e.opId)) {
        spdlog::warn("hypervisor completed operation {} again; ignored", e.opId);
        continue;
      }
      spdlog::info("command {} (started before this agent's restart) finished: {}", e.opId,
                   e.status.toString());
    } else if (e.kind == OperationEvent::Kind::kProgress) {
      // At most one progress message per tenth; the result itself says "done".
      if (!(e.fraction < 1.0)) continue;
      const int step = std::clamp(static_cast<int>(std::floor(e.fraction * 10)), 0, 9);
      if (step <= it->second.lastProgressStep) continue;
      it->second.lastProgressStep = step;
      capnp::MallocMessageBuilder b;
      auto p = b.initRoot<wire::AgentMessage>().initProgress();
      p.setCommandId(e.opId);
      p.setFraction(std::max(0.0, e.fraction));
      p.setBytesSent(e.bytesSent);
      p.setBytesTotal(e.bytesTotal);
      p.setPhase(e.phase);
      send(protocol::encodeFrame(b));
      continue;
    }
    if (it != inFlight_.end()) inFlight_.erase(it);
    if (e.status.isOk()) {
      spdlog::info("command {} finished", e.opId);
    } else {
      spdlog::warn("command {} failed: {}", e.opId, e.status.toString());
    }
    sendResult(e.opId, resultFrame(e.opId, e.status, [&](wire::CommandResult::Builder r) {
                 if (e.migration) {
                   wireconv::toWire(*e.migration, r.initMigrated());
                 } else if (e.clone) {
                   wireconv::toWire(*e.clone, r.initCloned());
                 } else {
                   r.setNone();
                 }
               }));
  }
}

void Agent::receiveAll() {
  try {
    for (int n = 0; n < kMaxFramesPerIteration; ++n) {
      std::vector<zmq::message_t> parts(1);
      if (!socket_.recv(parts[0], zmq::recv_flags::dontwait)) return;
      while (socket_.get(zmq::sockopt::rcvmore)) {
        parts.emplace_back();
        (void)socket_.recv(parts.back());
      }
      // One message per frame. Tolerate an empty delimiter frame (REQ-style peers) and nothing
      // else.
      std::vector<zmq::message_t*> payloads;
      for (auto& part : parts) {
        if (part.size() > 0) payloads.push_back(&part);
      }
      if (payloads.size() != 1) {
        spdlog::warn("dropping a message from vrmd with {} non-empty frames (expected 1)",
                     payloads.size());
        continue;
      }
      handleFrame(std::move(*payloads[0]));
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) spdlog::error("receiving from vrmd failed: {}", e.what());
  }
}

void Agent::handleFrame(zmq::message_t&& frame) {
  auto decoded = protocol::decodeFrame(std::move(frame), options_.decodeLimits);
  if (!decoded) {
    spdlog::warn("dropping a malformed frame from vrmd: {}", decoded.status().toString());
    return;
  }
  auto root = decoded->root<wire::ManagerMessage>();
  if (!root) {
    spdlog::warn("dropping a malformed frame from vrmd: {}", root.status().toString());
    return;
  }
  try {
    switch (root->which()) {
      case wire::ManagerMessage::REGISTERED: {
        auto status = root->getRegistered();
        handleRegistered(wireconv::fromWire(status.getCode()), toStd(status.getMessage()));
        return;
      }
      case wire::ManagerMessage::COMMAND:
        handleCommand(root->getCommand());
        return;
      case wire::ManagerMessage::NOT_LEADER:
        handleNotLeader(toStd(root->getNotLeader().getLeaderEndpoint()));
        return;
    }
    spdlog::warn("dropping a ManagerMessage with unknown member {}",
                 static_cast<int>(root->which()));
  } catch (const kj::Exception& e) {
    // Reading a field can still fail on hostile input (e.g. text without its NUL). Fields are
    // read before anything is executed, so dropping here leaves no half-done command.
    spdlog::warn("dropping a malformed message from vrmd: {}", e.getDescription().cStr());
  }
}

void Agent::handleRegistered(StatusCode code, const std::string& message) {
  const TimeNs now = clock_.now();
  if (code == StatusCode::kOk) {
    registerIntervalNs_ = options_.registerRetryIntervalNs;
    roundPauseNs_ = options_.registerRetryIntervalNs;
    endpoints_.foundLeader();
    if (registered_) return;  // an answer to a repeated register
    registered_ = true;
    nextHeartbeatNs_ = now + firstHeartbeatDelay();
    spdlog::info("host {} registered with vrmd at {}", host_, endpoints_.current());
    return;
  }
  registered_ = false;
  nextHeartbeatNs_ = kTimeInfinity;
  if (code == StatusCode::kNotFound) {
    // vrmd restarted and forgot this host: tell it again now.
    spdlog::info("vrmd does not know host {} ({}); registering again", host_, message);
    registerIntervalNs_ = options_.registerRetryIntervalNs;
    sendRegister();
    nextRegisterNs_ = now + jittered(registerIntervalNs_);
    return;
  }
  registerIntervalNs_ = options_.registerErrorRetryIntervalNs;
  nextRegisterNs_ = now + jittered(registerIntervalNs_);
  spdlog::error("vrmd refused to register host {}: {}: {}; retrying every {:.0f}s", host_,
                statusCodeName(code), message, nsToSeconds(registerIntervalNs_));
}

void Agent::handleCommand(wire::AgentCommand::Reader command) {
  const std::uint64_t id = command.getCommandId();
  if (inFlight_.count(id)) {
    spdlog::debug("command {} repeated while still running; ignoring the repeat", id);
    return;
  }
  if (auto f = finished_.find(id); f != finished_.end()) {
    spdlog::info("command {} repeated; sending its result again", id);
    send(zmq::message_t(f->second.data(), f->second.size()));
    return;
  }

  switch (command.which()) {
    case wire::AgentCommand::PREPARE_INCOMING: {
      const VmInfo vm = wireconv::fromRecord(wireconv::fromWire(command.getPrepareIncoming()));
      spdlog::info("command {}: prepare incoming vm {}", id, vm.id);
      auto endpoint = hypervisor_.prepareIncoming(vm);
      sendResult(id, resultFrame(id, endpoint.status(), [&](wire::CommandResult::Builder r) {
                   r.setIncomingEndpoint(*endpoint);
                 }));
      return;
    }
    case wire::AgentCommand::MIGRATE: {
      auto m = command.getMigrate();
      if (static_cast<unsigned>(m.getMode()) > 1) {
        sendResult(
            id,
            resultFrame(id, Status::invalid("unknown migration mode " +
                                            std::to_string(static_cast<unsigned>(m.getMode())))));
        return;
      }
      const MigrationSpec spec = wireconv::fromWire(m);
      spdlog::info("command {}: migrate vm {} to {}", id, spec.vmId, spec.destinationHost);
      Status s = hypervisor_.startMigration(id, spec);
      if (s) {
        inFlight_.emplace(id, InFlight{});
      } else {
        sendResult(id, resultFrame(id, s));
      }
      return;
    }
    case wire::AgentCommand::FINISH_INCOMING: {
      auto f = command.getFinishIncoming();
      const std::string vmId = toStd(f.getVmId());
      spdlog::info("command {}: finish incoming vm {} ({})", id, vmId,
                   f.getCommit() ? "commit" : "drop");
      sendResult(id, resultFrame(id, hypervisor_.finishIncoming(vmId, f.getCommit())));
      return;
    }
    case wire::AgentCommand::SUSPEND: {
      const std::string vmId = toStd(command.getSuspend());
      spdlog::info("command {}: suspend vm {}", id, vmId);
      sendResult(id, resultFrame(id, hypervisor_.suspend(vmId)));
      return;
    }
    case wire::AgentCommand::RESUME: {
      const std::string vmId = toStd(command.getResume());
      spdlog::info("command {}: resume vm {}", id, vmId);
      sendResult(id, resultFrame(id, hypervisor_.resume(vmId)));
      return;
    }
    case wire::AgentCommand::PARK:
    case wire::AgentCommand::UNPARK: {
      const bool park = command.which() == wire::AgentCommand::PARK;
      const std::string vmId = toStd(park ? command.getPark() : command.getUnpark());
      spdlog::info("command {}: {} vm {}", id, park ? "park" : "unpark", vmId);
      Status s = park ? hypervisor_.startPark(id, vmId) : hypervisor_.startUnpark(id, vmId);
      if (s) {
        inFlight_.emplace(id, InFlight{});
      } else {
        sendResult(id, resultFrame(id, s));
      }
      return;
    }
    case wire::AgentCommand::CLONE: {
      const CloneSpec spec = wireconv::fromWire(command.getClone());
      spdlog::info("command {}: clone vm {} from template {}", id, spec.vmId, spec.templateName);
      Status s = hypervisor_.startClone(id, spec);
      if (s) {
        inFlight_.emplace(id, InFlight{});
      } else {
        sendResult(id, resultFrame(id, s));
      }
      return;
    }
    case wire::AgentCommand::DESTROY: {
      const std::string vmId = toStd(command.getDestroy());
      spdlog::info("command {}: destroy vm {}", id, vmId);
      sendResult(id, resultFrame(id, hypervisor_.destroy(vmId)));
      return;
    }
    case wire::AgentCommand::SET_MIGRATION_BANDWIDTH: {
      auto b = command.getSetMigrationBandwidth();
      const std::string vmId = toStd(b.getVmId());
      const double rate = b.getMaxBandwidthBytesPerSec();
      spdlog::info("command {}: migration bandwidth of vm {} to {}", id, vmId,
                   rate > 0 ? formatRate(rate) : std::string("unlimited"));
      sendResult(id, resultFrame(id, hypervisor_.setMigrationBandwidth(vmId, rate)));
      return;
    }
  }
  // A command kind added to the schema after this agent was built. It still gets its one
  // result, so vrmd does not wait for it forever.
  const auto kind = static_cast<unsigned>(command.which());
  spdlog::warn("command {} has unknown kind {}; answering invalid-argument", id, kind);
  sendResult(id, resultFrame(id, Status::invalid("this agent does not know command kind " +
                                                 std::to_string(kind))));
}

void Agent::sendResult(std::uint64_t commandId, zmq::message_t&& frame) {
  finished_[commandId] = std::string(static_cast<const char*>(frame.data()), frame.size());
  finishedOrder_.push_back(commandId);
  while (finishedOrder_.size() > options_.rememberedResults) {
    finished_.erase(finishedOrder_.front());
    finishedOrder_.pop_front();
  }
  send(std::move(frame));
}

void Agent::send(zmq::message_t&& frame) {
  try {
    // Never block the loop: with vrmd away the queue fills up to the high-water mark, and
    // anything beyond is dropped (vrmd repeats commands and gets stored results).
    if (!socket_.send(frame, zmq::send_flags::dontwait)) {
      spdlog::warn("queue to vrmd is full; dropped an outgoing message");
    }
  } catch (const zmq::error_t& e) {
    spdlog::error("sending to vrmd failed: {}", e.what());
  }
}

}  // namespace vrm::vmscheduler
