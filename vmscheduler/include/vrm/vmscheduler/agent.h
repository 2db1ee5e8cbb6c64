// The per-host agent (vmschedd's event loop): talks to vrmd and drives the Hypervisor.
//
// Wire contract with vrmd (see protocol/schema/vrm.capnp, vrmd <-> agent section):
//  * The agent connects a DEALER; one Cap'n Proto message per frame. It sends AgentMessage and
//    receives ManagerMessage. With AgentOptions::curve the DEALER is a CURVE client and vrmd
//    knows the host by its key (the routing id is left to ZeroMQ); without, vrmd is in insecure
//    mode and the routing id is the host name. A refused handshake is logged (error) once.
//  * Registration: AgentMessage.register{host, vms, backend, migrationEndpoint} is sent at the
//    first runOnce() and re-sent until vrmd answers ManagerMessage.registered with ok: after
//    registerRetryIntervalNs, the wait doubling with every unanswered attempt up to
//    registerRetryMaxIntervalNs (a vrmd that is behind is not buried in repeats).
//    registered(notFound) at any time (vrmd restarted and forgot the host) triggers an immediate
//    re-register. Any other non-ok code is logged as an error and registration is retried every
//    registerErrorRetryIntervalNs.
//  * vrmd back: the DEALER's connection events are watched (ZeroMQ socket monitor, through
//    protocol::HandshakeMonitor). A lost connection is logged; a handshake completed after one
//    (vrmd restarted, or the network healed) means this vrmd may not know the host: the agent
//    takes itself as unregistered (no heartbeat until answered) and registers again after a wait
//    drawn from [0, reconnectRegisterSpreadNs] of clock time, then as at start-up. So a restarted
//    vrmd has every host back within about the spread, not at each host's next heartbeat, and
//    10,000 agents told at once do not register in one burst. A registered(notFound) arriving
//    first (a heartbeat queued while vrmd was away) registers at once as above.
//  * Heartbeats: once registered, AgentMessage.heartbeat{timeNs, vms (full inventory), lost}
//    whenever heartbeatIntervalNs of clock time have passed since registration or the last
//    heartbeat.
//  * Lost guests: registrations and heartbeats carry every guest the hypervisor lost since the
//    agent started (Hypervisor::lostVms(), the newest 64), each time: vrmd acts once per (host,
//    VM, lostAtNs), and so learns of them even if a heartbeat or a vrmd went missing.
//  * Jitter (AgentOptions::intervalJitter): agents started together, or told together that
//    vrmd restarted, must not register and heartbeat in lockstep (10,000 agents in step are
//    bursts vrmd cannot read in time). Register retries and heartbeats then come after a wait
//    drawn from [interval * (1 - jitter), interval], and the first heartbeat after registering
//    at a point drawn from (0, interval], so phases spread at once. Never later than the
//    interval: vrmd's heartbeat timeout holds as configured. The draws are seeded
//    (jitterSeed mixed with the host name): a run is reproducible.
//  * Commands: every ManagerMessage.command gets exactly one AgentMessage.result with the same
//    commandId. Immediate commands (prepareIncoming, finishIncoming, suspend, resume, destroy)
//    answer in the same loop iteration; migrate and clone answer when the hypervisor completes
//    them and meanwhile send AgentMessage.progress, at most once per 10 % of progress.
//    A commandId seen before is not executed again: while it runs the repeat is ignored, once
//    finished the stored result is sent again (the last `rememberedResults` are kept).
//    A command of a kind this agent does not know is answered invalid-argument.
//    An operation the hypervisor resumed after the agent restarted (hypervisor.h: qemu follows
//    a live migration or re-checks a booting clone under its command's id) gets its result sent
//    when it completes, although this agent never received the command: vrmd still waits for
//    it. The result is kept like any other, for the command's repeat; no progress is sent
//    for such an operation until its command is repeated.
//  * Replicas (README: High availability): AgentOptions::vrmdEndpoint may list every vrmd
//    replica's agent endpoint ("tcp://a:5556,tcp://b:5556"); the agent talks to one at a time
//    (ReplicaEndpoints: in order, round again) and registers with whichever leads. It moves on
//    to the next endpoint, with a socket of its own (what was queued for the old one is
//    dropped; vrmd repeats commands), when
//      - the replica answers ManagerMessage.notLeader (a standby): the register goes to the
//        next one at once, or after a wait of the register retry interval (backing off as
//        above) once every endpoint in a row has said so (an election under way);
//      - no handshake completes within connectTimeoutNs of connecting to it, or of losing the
//        connection to it (the leader died): the register goes to the next one after a wait
//        drawn from [0, reconnectRegisterSpreadNs], as when vrmd comes back.
//    A connected replica that does not answer a register is waited for (a leader that is
//    behind), as with one endpoint. With one endpoint the agent never moves: notLeader is
//    retried there at the register retry interval, backing off (that vrmd may be elected).
//  * A malformed frame or unknown ManagerMessage member is logged (warn) and dropped.
//
// Thread safety: none. The Agent, its Hypervisor and its socket belong to the thread that
// calls runOnce()/run(). The clock, hypervisor and context are borrowed and must outlive it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <zmq.hpp>

#include "schema/vrm.capnp.h"
#include "vrm/protocol/codec.h"
#include "vrm/protocol/curve.h"
#include "vrm/protocol/time.h"
#include "vrm/vmscheduler/hypervisor.h"
#include "vrm/vmscheduler/replica_endpoints.h"

namespace vrm::vmscheduler {

struct AgentOptions {
  // vrmd's agent ROUTER, or every replica's, comma-separated (see Replicas above). Default
  // "tcp://127.0.0.1:5556".
  std::string vrmdEndpoint = "tcp://127.0.0.1:5556";
  // With several endpoints: clock time a connection to one may take to complete its handshake
  // (from connecting, or from losing it) before the agent moves on to the next. Default 1 s.
  TimeNs connectTimeoutNs = 1 * kNsPerSec;
  // Clock time between heartbeats once registered. Default 5 s.
  TimeNs heartbeatIntervalNs = 5 * kNsPerSec;
  // Clock time before the first repeat of an unanswered register. Default 1 s.
  TimeNs registerRetryIntervalNs = 1 * kNsPerSec;
  // Longest wait between unanswered register attempts (each wait doubles up to it). Default 8 s.
  TimeNs registerRetryMaxIntervalNs = 8 * kNsPerSec;
  // Clock time between register attempts after vrmd refused with a code other than notFound
  // (e.g. unauthorized): retry slowly, an operator has to act. Default 30 s.
  TimeNs registerErrorRetryIntervalNs = 30 * kNsPerSec;
  // Fraction of an interval by which register retries and heartbeats come early, drawn at
  // random per wait (see the contract above). 0 = exact intervals. Default 0.2.
  double intervalJitter = 0.2;
  // Seed of those draws, mixed with the host name. Default 0.
  std::uint64_t jitterSeed = 0;
  // After vrmd came back (a new connection's handshake), the register goes out after a wait
  // drawn from [0, this] (clock time, seeded like the jitter); 0 = at once. Default 1 s.
  TimeNs reconnectRegisterSpreadNs = 1 * kNsPerSec;
  // Limits applied to every frame from vrmd (untrusted input). Defaults: see codec.h.
  protocol::DecodeLimits decodeLimits;
  // Finished command results kept for answering repeated command ids. Default 1024.
  std::size_t rememberedResults = 1024;
  // CURVE keys (vrmd's public key, this agent's pair listed as `agent <host>` in vrmd's
  // authorized file). Default none: vrmd in insecure mode.
  std::optional<protocol::CurveClientKeys> curve;
};

class Agent {
 public:
  // Connects the DEALER to the first of options.vrmdEndpoint (CURVE with options.curve, else
  // routing id = hypervisor.hostInfo().name; linger 0). Sends nothing until the first runOnce().
  // zmq errors here (a bad endpoint, any of the list) throw zmq::error_t: configuration bugs found
  // at start-up.
  Agent(Clock& clock, Hypervisor& hypervisor, zmq::context_t& context, AgentOptions options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // One loop iteration: sends what is due (register, heartbeat, progress, results), waits for
  // frames from vrmd at most `maxWait` (less when a timer or hypervisor event is due sooner),
  // handles every frame that arrived, and sends what became due. Never throws for bad input;
  // returns early when interrupted by a signal.
  void runOnce(std::chrono::milliseconds maxWait);
  // Calls runOnce() until `stop` is set (checked at least every 100 ms of real time).
  void run(const std::atomic<bool>& stop);

  // True once vrmd acknowledged the last register. For tests and status logs.
  bool registered() const { return registered_; }
  // Times vrmd came back (a handshake after a lost connection) so far. For tests and logs.
  std::uint64_t reconnections() const { return reconnections_; }
  // The endpoint talked to now (one of options.vrmdEndpoint). For tests and status logs.
  const std::string& vrmdEndpoint() const { return endpoints_.current(); }
  // Moves to another replica's endpoint so far (see Replicas above). For tests and logs.
  std::uint64_t endpointHops() const { return endpointHops_; }

 private:
  // A migrate or clone the hypervisor is still running.
  struct InFlight {
    int lastProgressStep = -1;  // last tenth of progress sent to vrmd
  };

  void sendDue();
  void sendRegister();
  void sendHeartbeat(TimeNs now);
  void pollHypervisor(TimeNs now);
  void receiveAll();
  void handleFrame(zmq::message_t&& frame);
  void handleRegistered(StatusCode code, const std::string& message);
  void handleCommand(wire::AgentCommand::Reader command);
  void send(zmq::message_t&& frame);
  // Sends a command's one result and remembers it for repeats of the same command id.
  void sendResult(std::uint64_t commandId, zmq::message_t&& frame);
  // `interval` shortened by a random fraction up to intervalJitter (exact when 0).
  TimeNs jittered(TimeNs interval);
  // Delay of the first heartbeat after registering: random in (0, interval] when jittering.
  TimeNs firstHeartbeatDelay();
  // Reads the connection events the monitor collected: vrmd gone, vrmd back (see the contract).
  void watchConnection();
  // A new DEALER (and monitor) connected to endpoints_.current(); the old one, if any, closed.
  void connectCurrent();
  // Leaves the current replica for the next (see Replicas above), unregistered.
  void moveOn(ReplicaEndpoints::Leaving why, const std::string& reason);
  void handleNotLeader(const std::string& leaderEndpoint);

  Clock& clock_;
  Hypervisor& hypervisor_;
  zmq::context_t& context_;
  AgentOptions options_;
  std::string host_;
  ReplicaEndpoints endpoints_;
  zmq::socket_t socket_;
  std::unique_ptr<protocol::HandshakeMonitor> monitor_;  // reset before socket_ closes
  std::string lastHandshakeError_;

  bool registered_ = false;
  TimeNs nextRegisterNs_ = 0;      // while !registered_; 0 = at the first runOnce()
  TimeNs registerIntervalNs_ = 0;  // retry or error-retry interval, by vrmd's last answer
  TimeNs roundPauseNs_ = 0;        // the wait after a whole round of "not the leader" (backs off)
  TimeNs nextHeartbeatNs_ = kTimeInfinity;  // while registered_
  std::uint64_t handshakesSeen_ = 0;        // monitor_->handshakes() at the last look
  std::uint64_t disconnectsSeen_ = 0;       // monitor_->disconnects() at the last look
  std::uint64_t reconnections_ = 0;
  bool connected_ = false;                    // a handshake since the last connection loss
  TimeNs connectDeadlineNs_ = kTimeInfinity;  // while !connected_ with several endpoints
  std::uint64_t endpointHops_ = 0;
  std::mt19937_64 jitterRng_;

  std::unordered_map<std::uint64_t, InFlight> inFlight_;
  // Encoded result frames of finished commands, and their ids oldest first for eviction.
  std::unordered_map<std::uint64_t, std::string> finished_;
  std::deque<std::uint64_t> finishedOrder_;
};

}  // namespace vrm::vmscheduler
