// The agent's return after a vrmd restart (issue 19 item 4): vrmd's ROUTER goes away and a new
// one binds the same TCP endpoint; the agent sees the connection come back (socket monitor) and
// registers again within its spread of clock time, long before its next heartbeat. And the
// agent given several replicas (issue 16): it registers with the one that leads, moving past
// standbys ("not the leader") and dead replicas (no handshake within its connect timeout).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "schema/vrm.capnp.h"
#include "vrm/protocol/codec.h"
#include "vrm/vmscheduler/agent.h"

namespace vrm::vmscheduler {
namespace {

using namespace std::chrono_literals;

constexpr TimeNs kStart = 1'000 * kNsPerSec;
constexpr TimeNs kHeartbeat = 60 * kNsPerSec;
constexpr TimeNs kSpread = 2 * kNsPerSec;

// Plays vrmd over TCP in a context of its own, so that closing it closes the listener at once
// (the new one can bind the same port).
struct FakeVrmd {
  explicit FakeVrmd(const std::string& endpoint) {
    router.set(zmq::sockopt::linger, 0);
    // As vrmd in insecure mode: an agent's new connection takes over its host name.
    router.set(zmq::sockopt::router_handover, 1);
    router.bind(endpoint);
  }
  std::string endpoint() { return router.get(zmq::sockopt::last_endpoint); }
  // The next message's kind, if one is waiting (non-blocking).
  std::optional<wire::AgentMessage::Which> poll() {
    zmq::message_t identity, payload;
    if (!router.recv(identity, zmq::recv_flags::dontwait)) return std::nullopt;
    EXPECT_EQ(identity.to_string(), "h1");
    EXPECT_TRUE(router.recv(payload));
    auto frame = protocol::decodeFrame(std::move(payload));
    EXPECT_TRUE(frame.isOk());
    if (!frame) return std::nullopt;
    return frame->root<wire::AgentMessage>()->which();
  }
  void answerRegistered() {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::ManagerMessage>().initRegistered().setCode(wire::StatusCode::OK);
    answer(b);
  }
  // As a standby vrmd answers (vrm/src/standby_server.cc).
  void answerNotLeader() {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::ManagerMessage>().initNotLeader().setLeaderEndpoint("tcp://leader:5555");
    answer(b);
  }
  void answer(capnp::MallocMessageBuilder& b) {
    router.send(zmq::buffer(std::string("h1")), zmq::send_flags::sndmore);
    router.send(protocol::encodeFrame(b), zmq::send_flags::none);
  }
  zmq::context_t context;
  zmq::socket_t router{context, zmq::socket_type::router};
};

std::unique_ptr<Hypervisor> simHost() {
  HypervisorOptions o;
  o.host.name = "h1";
  o.host.cpuCores = 8;
  o.host.memoryBytes = 16'000'000'000;
  o.host.nicBandwidthBytesPerSec = 1e9;
  return std::move(Hypervisor::create("sim", o)).value();
}

// Runs the agent (real-time waits of at most 20 ms: TCP connects asynchronously) until `done`,
// for at most 10 s of real time: a bound for a failing test, not a timing assumption.
template <typename Done>
bool runUntil(Agent& agent, Done done) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    agent.runOnce(20ms);
  }
  return true;
}

// An agent for host h1 on a sim hypervisor, connected to a FakeVrmd on an OS-chosen port, and
// registered once (the first connection, which is no return).
class AgentReconnectTest : public ::testing::Test {
 protected:
  void startRegistered(TimeNs spread, std::uint64_t jitterSeed = 0) {
    AgentOptions options;
    options.vrmdEndpoint = endpoint;
    options.heartbeatIntervalNs = kHeartbeat;
    options.reconnectRegisterSpreadNs = spread;
    options.jitterSeed = jitterSeed;
    agent = std::make_unique<Agent>(clock, *hv, context, options);
    std::optional<wire::AgentMessage::Which> got;
    ASSERT_TRUE(runUntil(*agent, [&] { return (got = vrmd->poll()).has_value(); }));
    ASSERT_EQ(*got, wire::AgentMessage::REGISTER);
    vrmd->answerRegistered();
    ASSERT_TRUE(runUntil(*agent, [&] { return agent->registered(); }));
    EXPECT_EQ(agent->reconnections(), 0u) << "the first connection is no return";
  }

  ManualClock clock{kStart};
  std::unique_ptr<Hypervisor> hv = simHost();
  std::unique_ptr<FakeVrmd> vrmd = std::make_unique<FakeVrmd>("tcp://127.0.0.1:*");
  const std::string endpoint = vrmd->endpoint();
  zmq::context_t context;
  std::unique_ptr<Agent> agent;
};

// Ensures that after vrmd went away and came back on the same endpoint the agent takes itself
// as unregistered and sends a register within the spread (here 2 s) of clock time after it saw
// the new connection, with no heartbeat due (60 s), and is registered again once answered.
TEST_F(AgentReconnectTest, RegistersAgainWithinTheSpreadWhenVrmdComesBack) {
  ASSERT_NO_FATAL_FAILURE(startRegistered(kSpread, /*jitterSeed=*/19));

  vrmd.reset();  // vrmd is killed: its listener closes
  vrmd = std::make_unique<FakeVrmd>(endpoint);
  ASSERT_TRUE(runUntil(*agent, [&] { return agent->reconnections() == 1; }));
  EXPECT_FALSE(agent->registered());
  const TimeNs back = clock.now();
  std::optional<wire::AgentMessage::Which> got;
  // Clock time moves on in steps of 50 ms until the register arrives.
  while (!(got = vrmd->poll()) && clock.now() - back <= kSpread + kNsPerSec) {
    clock.advance(50'000'000);
    agent->runOnce(5ms);
  }
  ASSERT_TRUE(got.has_value()) << "no register within the spread";
  EXPECT_EQ(*got, wire::AgentMessage::REGISTER);
  EXPECT_LE(clock.now() - back, kSpread + 50'000'000);
  vrmd->answerRegistered();
  ASSERT_TRUE(runUntil(*agent, [&] { return agent->registered(); }));
}

// Ensures that with no spread the register goes out as soon as the agent sees vrmd back, before
// the clock moves at all.
TEST_F(AgentReconnectTest, WithoutASpreadRegistersAtOnce) {
  ASSERT_NO_FATAL_FAILURE(startRegistered(/*spread=*/0));

  vrmd.reset();
  vrmd = std::make_unique<FakeVrmd>(endpoint);
  std::optional<wire::AgentMessage::Which> got;
  ASSERT_TRUE(runUntil(*agent, [&] { return (got = vrmd->poll()).has_value(); }));
  EXPECT_EQ(*got, wire::AgentMessage::REGISTER);
  EXPECT_EQ(clock.now(), kStart);
  EXPECT_EQ(agent->reconnections(), 1u);
}

// Two (or more) fake replicas on OS-chosen ports and an agent given their endpoints.
class AgentReplicasTest : public ::testing::Test {
 protected:
  void start(const std::string& endpoints) {
    AgentOptions options;
    options.vrmdEndpoint = endpoints;
    options.heartbeatIntervalNs = kHeartbeat;
    options.reconnectRegisterSpreadNs = 0;
    options.connectTimeoutNs = kConnectTimeout;
    agent = std::make_unique<Agent>(clock, *hv, context, options);
  }
  // Runs the agent until `vrmd` has a message, the clock moving on 50 ms per turn when
  // `advance`; at most 10 s of real time.
  std::optional<wire::AgentMessage::Which> next(FakeVrmd& vrmd, bool advance) {
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      if (auto got = vrmd.poll()) return got;
      if (advance) clock.advance(50'000'000);
      agent->runOnce(5ms);
    }
    return std::nullopt;
  }
  // An endpoint nothing listens on (a port the OS gave and took back).
  static std::string deadEndpoint() { return FakeVrmd("tcp://127.0.0.1:*").endpoint(); }

  static constexpr TimeNs kConnectTimeout = 1 * kNsPerSec;
  ManualClock clock{kStart};
  std::unique_ptr<Hypervisor> hv = simHost();
  zmq::context_t context;
  std::unique_ptr<Agent> agent;
};

// Ensures a standby's "not the leader" sends the register to the next replica at once (the
// clock does not move), which registers the agent.
TEST_F(AgentReplicasTest, MovesPastAStandbyToTheLeader) {
  FakeVrmd standby("tcp://127.0.0.1:*"), leader("tcp://127.0.0.1:*");
  start(standby.endpoint() + "," + leader.endpoint());
  ASSERT_EQ(next(standby, false), wire::AgentMessage::REGISTER);
  standby.answerNotLeader();
  ASSERT_EQ(next(leader, false), wire::AgentMessage::REGISTER);
  EXPECT_EQ(clock.now(), kStart);
  leader.answerRegistered();
  ASSERT_TRUE(runUntil(*agent, [&] { return agent->registered(); }));
  EXPECT_EQ(agent->vrmdEndpoint(), leader.endpoint());
  EXPECT_EQ(agent->endpointHops(), 1u);
}

// Ensures a replica that completes no handshake is left once the connect timeout of clock time
// has passed, not before, and the next one registers the agent.
TEST_F(AgentReplicasTest, MovesPastADeadReplicaAfterTheConnectTimeout) {
  FakeVrmd leader("tcp://127.0.0.1:*");
  start(deadEndpoint() + "," + leader.endpoint());
  for (int i = 0; i < 10; ++i) agent->runOnce(5ms);  // the clock stands still
  EXPECT_EQ(agent->endpointHops(), 0u);
  ASSERT_EQ(next(leader, true), wire::AgentMessage::REGISTER);
  EXPECT_GE(clock.now() - kStart, kConnectTimeout);
  EXPECT_LE(clock.now() - kStart, kConnectTimeout + 100'000'000);
  leader.answerRegistered();
  ASSERT_TRUE(runUntil(*agent, [&] { return agent->registered(); }));
  EXPECT_EQ(agent->vrmdEndpoint(), leader.endpoint());
}

// Ensures that when the leader the agent registered with dies and the standby is elected, the
// agent leaves the dead one within the connect timeout and registers with the new leader.
TEST_F(AgentReplicasTest, FindsTheNewLeaderAfterTheLeaderDies) {
  auto first = std::make_unique<FakeVrmd>("tcp://127.0.0.1:*");
  FakeVrmd second("tcp://127.0.0.1:*");
  start(first->endpoint() + "," + second.endpoint());
  ASSERT_EQ(next(*first, false), wire::AgentMessage::REGISTER);
  first->answerRegistered();
  ASSERT_TRUE(runUntil(*agent, [&] { return agent->registered(); }));
  const TimeNs killed = clock.now();
  first.reset();  // kill -9 of the leader; the second (elected) answers from now on
  ASSERT_EQ(next(second, true), wire::AgentMessage::REGISTER);
  EXPECT_LE(clock.now() - killed, kConnectTimeout + 100'000'000);
  EXPECT_FALSE(agent->registered());
  second.answerRegistered();
  ASSERT_TRUE(runUntil(*agent, [&] { return agent->registered(); }));
  EXPECT_EQ(agent->vrmdEndpoint(), second.endpoint());
}

// Ensures that when every replica says "not the leader" (an election under way) the agent
// waits a register retry interval before the next round instead of looping at network speed.
TEST_F(AgentReplicasTest, PausesWhenNoReplicaLeads) {
  FakeVrmd a("tcp://127.0.0.1:*"), b("tcp://127.0.0.1:*");
  start(a.endpoint() + "," + b.endpoint());
  ASSERT_EQ(next(a, false), wire::AgentMessage::REGISTER);
  a.answerNotLeader();
  ASSERT_EQ(next(b, false), wire::AgentMessage::REGISTER);
  b.answerNotLeader();
  for (int i = 0; i < 10; ++i) agent->runOnce(5ms);  // the clock stands still
  EXPECT_FALSE(a.poll().has_value()) << "a new round without a pause";
  ASSERT_EQ(next(a, true), wire::AgentMessage::REGISTER);
  EXPECT_GT(clock.now() - kStart, 0);
  EXPECT_LE(clock.now() - kStart, 1 * kNsPerSec + 100'000'000);  // the retry interval
}

// Ensures an agent given one endpoint stays on it after "not the leader" (that vrmd may be
// elected) and registers there again after the retry interval.
TEST_F(AgentReplicasTest, WithOneEndpointRetriesTheStandby) {
  FakeVrmd standby("tcp://127.0.0.1:*");
  start(standby.endpoint());
  ASSERT_EQ(next(standby, false), wire::AgentMessage::REGISTER);
  standby.answerNotLeader();
  ASSERT_EQ(next(standby, true), wire::AgentMessage::REGISTER);
  EXPECT_EQ(agent->endpointHops(), 0u);
  standby.answerRegistered();  // elected
  ASSERT_TRUE(runUntil(*agent, [&] { return agent->registered(); }));
}

}  // namespace
}  // namespace vrm::vmscheduler
