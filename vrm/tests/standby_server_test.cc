#include "vrm/manager/standby_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "manager_fixture.h"
#include "vrm/client/client.h"
#include "vrm/manager/server.h"
#include "vrm/protocol/wire_convert.h"

namespace vrm::manager {
namespace {

using std::chrono::milliseconds;

zmq::message_t hostsRequest(std::uint64_t id) {
  capnp::MallocMessageBuilder b;
  auto req = b.initRoot<wire::ClientRequest>();
  req.setRequestId(id);
  req.setHosts();
  return protocol::encodeFrame(b);
}

// Ensures a standby's answer echoes the request id, is unavailable, and names the leader in
// notLeader (empty when none is known), with a message saying so.
TEST(StandbyAnswerTest, NamesTheLeaderAndEchoesTheRequest) {
  for (const std::string leader : {"tcp://vrm1:5555", ""}) {
    zmq::message_t answer = answerAsStandby(hostsRequest(42), leader, 7);
    auto frame = protocol::decodeFrame(std::move(answer));
    ASSERT_TRUE(frame);
    auto reply = frame->root<wire::ClientReply>();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->getRequestId(), 42u);
    EXPECT_EQ(reply->getNowNs(), 7);
    EXPECT_EQ(reply->getStatus().getCode(), wire::StatusCode::UNAVAILABLE);
    ASSERT_TRUE(reply->hasNotLeader());
    EXPECT_EQ(protocol::toStd(reply->getNotLeader().getLeaderEndpoint()), leader);
    const std::string message = protocol::toStd(reply->getStatus().getMessage());
    EXPECT_NE(message.find(leader.empty() ? "knows no leader" : "the leader is at " + leader),
              std::string::npos)
        << message;
  }
}

// Ensures a frame that is no request still gets the answer, with request id 0.
TEST(StandbyAnswerTest, GarbageGetsTheAnswerWithIdZero) {
  zmq::message_t garbage(std::string("definitely not capnp"));
  auto frame = protocol::decodeFrame(answerAsStandby(garbage, "tcp://vrm1:5555", 0));
  ASSERT_TRUE(frame);
  auto reply = frame->root<wire::ClientReply>();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->getRequestId(), 0u);
  EXPECT_TRUE(reply->hasNotLeader());
}

// A leader (a Server over the fixture's manager) and standbys on loopback TCP, served by one
// thread while the test's client library calls block.
class StandbyServerTest : public testing::ManagerFixture {
 protected:
  void SetUp() override {
    startManager({testing::bmiTemplate()});
    agents_->addHost("node1", 8, 16 * testing::kGiB, {});
    ServerOptions o;
    o.clientEndpoint = "tcp://127.0.0.1:*";
    o.agentEndpoint = "tcp://127.0.0.1:*";
    server_ = std::make_unique<Server>(ctx_, *manager_, clock_, o);
    ASSERT_TRUE(server_->bind());
  }
  void TearDown() override { stopServing(); }

  // A standby on an OS-chosen port that names `leader` (read by the serving thread).
  StandbyServer& addStandby() {
    StandbyServerOptions o;
    o.clientEndpoint = "tcp://127.0.0.1:*";
    standbys_.push_back(std::make_unique<StandbyServer>(o));
    leaders_.push_back(std::make_unique<std::string>());
    answered_.push_back(std::make_unique<std::atomic<int>>(0));
    EXPECT_TRUE(standbys_.back()->bind());
    return *standbys_.back();
  }
  void names(std::size_t standby, const std::string& leader) { *leaders_[standby] = leader; }

  void startServing() {
    serving_ = std::thread([this] {
      while (!stop_.load()) {
        server_->runOnce(milliseconds(2));
        for (std::size_t i = 0; i < standbys_.size(); ++i) {
          *answered_[i] += standbys_[i]->runOnce(milliseconds(2), *leaders_[i], 0);
        }
      }
    });
  }
  void stopServing() {
    stop_ = true;
    if (serving_.joinable()) serving_.join();
  }

  client::Client clientOf(const std::string& endpoints, milliseconds timeout = milliseconds(5000)) {
    client::ClientOptions o;
    o.endpoint = endpoints;
    o.timeout = timeout;
    return client::Client(o);
  }

  zmq::context_t ctx_;
  std::unique_ptr<Server> server_;
  std::vector<std::unique_ptr<StandbyServer>> standbys_;
  std::vector<std::unique_ptr<std::string>> leaders_;  // set before startServing()
  std::vector<std::unique_ptr<std::atomic<int>>> answered_;
  std::atomic<bool> stop_{false};
  std::thread serving_;
};

// Ensures a client given only a standby is served by the leader the standby names, and asks
// the leader directly from then on.
TEST_F(StandbyServerTest, ClientFollowsTheRedirectToTheLeader) {
  auto& standby = addStandby();
  names(0, server_->clientEndpoint());
  startServing();
  auto client = clientOf(standby.clientEndpoint());
  auto hosts = client.hosts();
  ASSERT_TRUE(hosts) << hosts.status().toString();
  ASSERT_EQ(hosts->size(), 1u);
  EXPECT_EQ(hosts->front().name, "node1");
  ASSERT_TRUE(client.hosts());
  stopServing();                       // the counts are final once the serving thread has ended
  EXPECT_EQ(answered_[0]->load(), 1);  // the second went to the leader directly
}

// Ensures a standby that knows no leader makes a clear error, after the client asked every
// endpoint it was given once.
TEST_F(StandbyServerTest, NoLeaderKnownIsAClearError) {
  auto& first = addStandby();
  auto& second = addStandby();
  startServing();
  auto client = clientOf(first.clientEndpoint() + "," + second.clientEndpoint());
  auto hosts = client.hosts();
  ASSERT_FALSE(hosts);
  EXPECT_EQ(hosts.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(hosts.status().message().find("vrmd at " + second.clientEndpoint() +
                                          " does not lead and knows no leader"),
            std::string::npos)
      << hosts.status().message();
  stopServing();
  EXPECT_EQ(answered_[0]->load(), 1);
  EXPECT_EQ(answered_[1]->load(), 1);
}

// Ensures two standbys that name each other (an election under way) cost one redirect, not a
// loop, and the error says what the last one said.
TEST_F(StandbyServerTest, StandbysNamingEachOtherAreFollowedOnce) {
  auto& first = addStandby();
  auto& second = addStandby();
  names(0, second.clientEndpoint());
  names(1, first.clientEndpoint());
  startServing();
  auto client = clientOf(first.clientEndpoint());
  auto hosts = client.hosts();
  ASSERT_FALSE(hosts);
  EXPECT_NE(hosts.status().message().find("names " + first.clientEndpoint() + " as the leader"),
            std::string::npos)
      << hosts.status().message();
  stopServing();
  EXPECT_EQ(answered_[0]->load(), 1);
  EXPECT_EQ(answered_[1]->load(), 1);
}

// Ensures a listed endpoint that does not answer (a dead replica) is passed over for the next
// one, which leads to the leader.
TEST_F(StandbyServerTest, ADeadReplicaIsPassedOver) {
  auto& standby = addStandby();
  names(0, server_->clientEndpoint());
  // A port nothing listens on: bound and closed again.
  std::string dead;
  {
    StandbyServer closed({"tcp://127.0.0.1:*", std::nullopt, {}});
    ASSERT_TRUE(closed.bind());
    dead = closed.clientEndpoint();
  }
  startServing();
  auto client = clientOf(dead + "," + standby.clientEndpoint(), milliseconds(300));
  auto hosts = client.hosts();
  ASSERT_TRUE(hosts) << hosts.status().toString();
  stopServing();
  EXPECT_EQ(answered_[0]->load(), 1);
}

// Ensures a CURVE standby (vrmd's key pair, no ZAP handler) answers a client that uses vrmd's
// public key with its own key, which no list names: the client learns that no leader is known.
TEST(StandbyServerCurveTest, AnswersCurveClients) {
  if (!protocol::requireCurve()) GTEST_SKIP() << "libzmq without CURVE";
  auto serverKeys = protocol::generateCurveKeyPair();
  auto clientKeys = protocol::generateCurveKeyPair();
  ASSERT_TRUE(serverKeys && clientKeys);
  StandbyServer standby({"tcp://127.0.0.1:*", *serverKeys, {}});
  ASSERT_TRUE(standby.bind());
  std::atomic<bool> stop{false};
  std::thread serving([&] {
    while (!stop.load()) standby.runOnce(milliseconds(2), "", 0);
  });
  client::ClientOptions o;
  o.endpoint = standby.clientEndpoint();
  o.serverPublicKey = serverKeys->publicKey;
  o.publicKey = clientKeys->publicKey;
  o.secretKey = clientKeys->secretKey;
  client::Client client(o);
  auto hosts = client.hosts();
  stop = true;
  serving.join();
  ASSERT_FALSE(hosts);
  EXPECT_NE(hosts.status().message().find("knows no leader"), std::string::npos)
      << hosts.status().message();
}

// Ensures a standby's port is free again once it is closed, so the elected replica's server
// binds it at once.
TEST(StandbyServerCloseTest, ClosingFreesThePort) {
  StandbyServer standby({"tcp://127.0.0.1:*", std::nullopt, {}});
  ASSERT_TRUE(standby.bind());
  const std::string endpoint = standby.clientEndpoint();
  StandbyServer again({endpoint, std::nullopt, {}});
  EXPECT_EQ(again.bind().code(), StatusCode::kUnavailable);  // in use
  standby.close();
  EXPECT_TRUE(again.bind());
}

// Ensures a standby with an agent endpoint answers an agent's register with notLeader naming
// the leader, and nothing else (the agent moves on to the next replica).
TEST_F(StandbyServerTest, AnswersAgentsNotTheLeader) {
  StandbyServerOptions o;
  o.clientEndpoint = "tcp://127.0.0.1:*";
  o.agentEndpoint = "tcp://127.0.0.1:*";
  StandbyServer standby(o);
  ASSERT_TRUE(standby.bind());
  ASSERT_FALSE(standby.agentEndpoint().empty());
  zmq::socket_t agent(ctx_, zmq::socket_type::dealer);
  agent.set(zmq::sockopt::linger, 0);
  agent.set(zmq::sockopt::routing_id, "node1");
  agent.connect(standby.agentEndpoint());
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::AgentMessage>().initRegister().initHost().setName("node1");
  agent.send(protocol::encodeFrame(b), zmq::send_flags::none);
  int answered = 0;
  for (int i = 0; i < 500 && answered == 0; ++i) {
    answered = standby.runOnce(milliseconds(10), "tcp://leader:5555", 0);
  }
  ASSERT_EQ(answered, 1);
  agent.set(zmq::sockopt::rcvtimeo, 5000);
  zmq::message_t reply;
  ASSERT_TRUE(agent.recv(reply));
  auto frame = protocol::decodeFrame(std::move(reply));
  ASSERT_TRUE(frame);
  auto root = frame->root<wire::ManagerMessage>();
  ASSERT_TRUE(root);
  ASSERT_EQ(root->which(), wire::ManagerMessage::NOT_LEADER);
  EXPECT_EQ(protocol::toStd(root->getNotLeader().getLeaderEndpoint()), "tcp://leader:5555");
  standby.close();
  EXPECT_TRUE(standby.agentEndpoint().empty());
}

}  // namespace
}  // namespace vrm::manager
