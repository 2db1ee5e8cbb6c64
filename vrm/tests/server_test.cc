#include "vrm/manager/server.h"

#include <gtest/gtest.h>

#include <optional>

#include "vrm/protocol/wire_convert.h"

namespace vrm::manager {

using protocol::fromWire;
using protocol::toStd;
using protocol::toWire;
namespace {

constexpr std::uint64_t kGiB = 1ull << 30;

TemplateSpec bmiTemplate() {
  TemplateSpec t;
  t.name = "bmi";
  t.memoryBytes = 4 * kGiB;
  return t;
}

// A vrmd core for the tests that drive their own Server: an in-memory store, the "simple"
// model's sequential planner, the one template "bmi".
struct BmiCore {
  ManualClock clock{1'800'000'000 * kNsPerSec};
  std::unique_ptr<Store> store = std::move(*Store::open(":memory:"));
  planner::SequentialVacatePlanner planner{std::shared_ptr<const planner::MigrationModel>(
      std::move(*planner::createMigrationModel("simple")))};
  Manager manager{clock, *store, planner, std::vector{bmiTemplate()}};
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*Store::open(":memory:"));
    planner_ = std::make_unique<planner::SequentialVacatePlanner>(
        std::shared_ptr<const planner::MigrationModel>(
            std::move(*planner::createMigrationModel("simple"))));
    manager_ = std::make_unique<Manager>(clock_, *store_, *planner_, std::vector{bmiTemplate()});
    ServerOptions o;
    o.clientEndpoint = "tcp://127.0.0.1:*";
    o.agentEndpoint = "tcp://127.0.0.1:*";
    server_ = std::make_unique<Server>(ctx_, *manager_, clock_, o);
    ASSERT_TRUE(server_->bind().isOk());
    client_.set(zmq::sockopt::linger, 0);
    client_.connect(server_->clientEndpoint());
  }

  // Serves until `socket` has a message (bounded), then returns its last frame.
  std::optional<zmq::message_t> serveUntilReply(zmq::socket_t& socket) {
    for (int i = 0; i < 500; ++i) {
      server_->runOnce(std::chrono::milliseconds(5));
      zmq::message_t msg;
      if (socket.recv(msg, zmq::recv_flags::dontwait)) {
        while (msg.more()) (void)socket.recv(msg);
        return msg;
      }
    }
    return std::nullopt;
  }

  wire::StatusCode request(capnp::MessageBuilder& b, std::string* message = nullptr) {
    client_.send(protocol::encodeFrame(b), zmq::send_flags::none);
    auto reply = serveUntilReply(client_);
    EXPECT_TRUE(reply.has_value());
    auto frame = protocol::decodeFrame(std::move(*reply));
    auto root = frame->root<wire::ClientReply>();
    if (message) *message = protocol::toStd(root->getStatus().getMessage());
    return root->getStatus().getCode();
  }

  ManualClock clock_{1'800'000'000 * kNsPerSec};
  zmq::context_t ctx_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<planner::SequentialVacatePlanner> planner_;
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<Server> server_;
  zmq::socket_t client_{ctx_, zmq::socket_type::dealer};
};

// Ensures a garbage frame is answered with invalid-argument and the server keeps serving.
TEST_F(ServerTest, GarbageFromClientGetsTypedErrorReply) {
  client_.send(zmq::buffer(std::string("definitely not capnp")), zmq::send_flags::none);
  auto reply = serveUntilReply(client_);
  ASSERT_TRUE(reply.has_value());
  auto frame = protocol::decodeFrame(std::move(*reply));
  ASSERT_TRUE(frame.isOk());
  EXPECT_EQ(frame->root<wire::ClientReply>()->getStatus().getCode(),
            wire::StatusCode::INVALID_ARGUMENT);

  capnp::MallocMessageBuilder b;
  b.initRoot<wire::ClientRequest>().setHosts();
  EXPECT_EQ(request(b), wire::StatusCode::OK);
}

// Ensures an impossible reservation over the wire is an invalid-argument reply with a reason.
TEST_F(ServerTest, ImpossibleReservationIsInvalid) {
  capnp::MallocMessageBuilder b;
  auto req = b.initRoot<wire::ClientRequest>();
  req.setRequestId(7);
  auto s = req.initSubmit();
  s.setOwner("lab");
  s.setHostCount(1);
  s.setStartNs(clock_.now() + kNsPerSec * 3600);
  s.setEndNs(clock_.now());  // before start
  s.setTemplate("bmi");
  std::string why;
  EXPECT_EQ(request(b, &why), wire::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(why.find("end must be after start"), std::string::npos);
}

// Ensures agents register under their own name only, and a heartbeat from an unknown host is
// told to register.
TEST_F(ServerTest, AgentsRegisterOnlyForTheirOwnHost) {
  auto registerAs = [&](const std::string& identity, const std::string& name) {
    zmq::socket_t agent(ctx_, zmq::socket_type::dealer);
    agent.set(zmq::sockopt::routing_id, identity);
    agent.set(zmq::sockopt::linger, 0);
    agent.connect(server_->agentEndpoint());
    capnp::MallocMessageBuilder b;
    auto reg = b.initRoot<wire::AgentMessage>().initRegister();
    reg.initHost().setName(name);
    reg.getHost().setCpuCores(8);
    reg.getHost().setMemoryBytes(16 * kGiB);
    reg.getHost().setNicBandwidthBytesPerSec(125e6);
    agent.send(protocol::encodeFrame(b), zmq::send_flags::none);
    auto reply = serveUntilReply(agent);
    EXPECT_TRUE(reply.has_value());
    auto frame = protocol::decodeFrame(std::move(*reply));
    auto msg = frame->root<wire::ManagerMessage>();
    EXPECT_TRUE(msg->isRegistered());
    return msg->getRegistered().getCode();
  };
  EXPECT_EQ(registerAs("node1", "node1"), wire::StatusCode::OK);
  EXPECT_EQ(registerAs("node2", "node1"), wire::StatusCode::UNAUTHORIZED);
  EXPECT_EQ(manager_->hosts().size(), 1u);

  zmq::socket_t stranger(ctx_, zmq::socket_type::dealer);
  stranger.set(zmq::sockopt::routing_id, std::string("node7"));
  stranger.set(zmq::sockopt::linger, 0);
  stranger.connect(server_->agentEndpoint());
  capnp::MallocMessageBuilder hb;
  hb.initRoot<wire::AgentMessage>().initHeartbeat().setTimeNs(1);
  stranger.send(protocol::encodeFrame(hb), zmq::send_flags::none);
  auto reply = serveUntilReply(stranger);
  ASSERT_TRUE(reply.has_value());
  auto frame = protocol::decodeFrame(std::move(*reply));
  EXPECT_EQ(frame->root<wire::ManagerMessage>()->getRegistered().getCode(),
            wire::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace vrm::manager

namespace vrm::manager {
namespace {

// Ensures committed reservation events are published on the PUB socket under "<id>|".
TEST(ServerEventsTest, SubmitPublishesItsEvents) {
  BmiCore core;
  ManualClock& clock = core.clock;
  Manager& manager = core.manager;
  zmq::context_t ctx;
  HostRecord h{"node1", 8, 16 * kGiB, 125e6, "sim", "", true, 0};
  ASSERT_TRUE(manager.onRegister(h, {}).isOk());
  ServerOptions o;
  o.clientEndpoint = "inproc://clients";
  o.agentEndpoint = "inproc://agents";
  o.eventsEndpoint = "inproc://events";
  Server server(ctx, manager, clock, o);
  ASSERT_TRUE(server.bind().isOk());
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "r1|");
  sub.connect(server.eventsEndpoint());
  zmq::socket_t client(ctx, zmq::socket_type::dealer);
  client.connect("inproc://clients");

  capnp::MallocMessageBuilder b;
  auto s = b.initRoot<wire::ClientRequest>().initSubmit();
  s.setOwner("lab");
  s.setHostCount(1);
  s.setStartNs(clock.now() + 3600 * kNsPerSec);
  s.setEndNs(clock.now() + 7200 * kNsPerSec);
  s.setTemplate("bmi");
  client.send(protocol::encodeFrame(b), zmq::send_flags::none);

  std::vector<std::string> messages;
  for (int i = 0; i < 200 && messages.size() < 2; ++i) {
    server.runOnce(std::chrono::milliseconds(5));
    zmq::message_t topic, body;
    while (sub.recv(topic, zmq::recv_flags::dontwait)) {
      ASSERT_EQ(topic.to_string(), "r1|");
      ASSERT_TRUE(sub.recv(body).has_value());
      auto frame = protocol::decodeFrame(std::move(body));
      ASSERT_TRUE(frame.isOk());
      auto notice = frame->root<wire::EventNotice>();
      ASSERT_TRUE(notice.isOk());
      EXPECT_EQ(protocol::toStd(notice->getReservationId()), "r1");
      messages.push_back(protocol::toStd(notice->getEvent().getMessage()));
    }
  }
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_NE(messages[0].find("requested"), std::string::npos);
  EXPECT_NE(messages[1].find("admitted"), std::string::npos);
}

}  // namespace
}  // namespace vrm::manager

namespace vrm::manager {
namespace {

// Ensures that while ServerOptions::mayAct says no (a replica past its lease), the manager's
// commands are not sent to agents but kept, and go out on the first turn it says yes again.
TEST(ServerLeadershipTest, NoAgentCommandsWhileItMayNotAct) {
  BmiCore core;
  ManualClock& clock = core.clock;
  Manager& manager = core.manager;
  zmq::context_t ctx;
  bool mayAct = true;
  ServerOptions o;
  o.clientEndpoint = "inproc://clients";
  o.agentEndpoint = "inproc://agents";
  o.mayAct = [&mayAct] { return mayAct; };
  Server server(ctx, manager, clock, o);
  ASSERT_TRUE(server.bind().isOk());

  zmq::socket_t agent(ctx, zmq::socket_type::dealer);
  agent.set(zmq::sockopt::routing_id, "node1");
  agent.set(zmq::sockopt::linger, 0);
  agent.connect(server.agentEndpoint());
  bool registered = false;
  // What the server sent the agent in `turns` loop turns, each `step` of the clock later (the
  // agent heartbeating at each once registered).
  auto received = [&](int turns, TimeNs step) {
    std::vector<wire::ManagerMessage::Which> kinds;
    for (int i = 0; i < turns; ++i) {
      clock.set(clock.now() + step);
      if (registered) {
        capnp::MallocMessageBuilder hb;
        hb.initRoot<wire::AgentMessage>().initHeartbeat().setTimeNs(clock.now());
        agent.send(protocol::encodeFrame(hb), zmq::send_flags::none);
      }
      server.runOnce(std::chrono::milliseconds(1));
      zmq::message_t msg;
      while (agent.recv(msg, zmq::recv_flags::dontwait)) {
        auto frame = protocol::decodeFrame(std::move(msg));
        EXPECT_TRUE(frame.isOk());
        kinds.push_back(frame->root<wire::ManagerMessage>()->which());
      }
    }
    return kinds;
  };
  capnp::MallocMessageBuilder b;
  auto reg = b.initRoot<wire::AgentMessage>().initRegister();
  reg.initHost().setName("node1");
  reg.getHost().setCpuCores(8);
  reg.getHost().setMemoryBytes(16 * kGiB);
  reg.getHost().setNicBandwidthBytesPerSec(125e6);
  agent.send(protocol::encodeFrame(b), zmq::send_flags::none);
  ASSERT_EQ(received(5, 0), std::vector{wire::ManagerMessage::REGISTERED});
  registered = true;

  ReservationRequest r;
  r.owner = "lab";
  r.kind = ReservationKind::kDedicated;
  r.hostCount = 1;
  r.startNs = clock.now() + 3600 * kNsPerSec;
  r.endNs = r.startNs + 3600 * kNsPerSec;
  r.templateName = "bmi";
  auto admitted = manager.submit(r);
  ASSERT_TRUE(admitted) << admitted.status().toString();
  ASSERT_EQ(admitted->state, ReservationState::kAdmitted);

  // Past the start: the clone is due, but nothing goes out while it may not act.
  mayAct = false;
  EXPECT_TRUE(received(130, 30 * kNsPerSec).empty());
  mayAct = true;
  const auto kinds = received(1, 0);
  ASSERT_FALSE(kinds.empty());
  for (auto k : kinds) EXPECT_EQ(k, wire::ManagerMessage::COMMAND);
}

}  // namespace
}  // namespace vrm::manager
