// Authentication and authorisation over real CURVE sockets on loopback: the authorized file,
// the ZAP handler, callers taken from keys (never from the requester field), owners, admins,
// hidden handles, agents bound to their hosts, and the event stream.
#include "vrm/manager/auth.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "fake_agents.h"
#include "manager_fixture.h"
#include "vrm/client/client.h"
#include "vrm/manager/server.h"
#include "vrm/protocol/curve.h"
#include "vrm/protocol/token.h"
#include "vrm/protocol/wire_convert.h"

namespace vrm::manager {
namespace {

using testing::FakeAgents;
using testing::kGiB;
using testing::kHour;

protocol::CurveKeyPair newKeys() {
  auto k = protocol::generateCurveKeyPair();
  EXPECT_TRUE(k.isOk()) << k.status().toString();
  return *k;
}

// Ensures a well-formed authorized file is read entry by entry.
TEST(AuthorizedKeysTest, ParsesClientsAgentsAndWebTokens) {
  const auto a = newKeys(), b = newKeys(), n = newKeys();
  auto keys = AuthorizedKeys::parse(
      "# who may connect\n"
      "client alice user " +
          a.publicKey +
          "\n"
          "\n"
          "client ops admin " +
          b.publicKey +
          "  # operators\n"
          "agent node1 " +
          n.publicKey +
          "\n"
          "web alice user 0123456789abcdefXYZ\n",
      "authorized");
  ASSERT_TRUE(keys.isOk()) << keys.status().toString();
  ASSERT_EQ(keys->clients().size(), 2u);
  EXPECT_EQ(keys->clientByKey(a.publicKey)->name, "alice");
  EXPECT_EQ(keys->clientByKey(b.publicKey)->role, Role::kAdmin);
  EXPECT_EQ(keys->agentByKey(n.publicKey)->host, "node1");
  EXPECT_EQ(keys->agentByKey(a.publicKey), nullptr) << "a client key is not an agent key";
  EXPECT_EQ(keys->webByToken("0123456789abcdefXYZ")->name, "alice");
  EXPECT_EQ(keys->webByToken("0123456789abcdefXY"), nullptr);
}

// Ensures every kind of bad line is refused with the file and line number, so vrmd refuses to
// start instead of running with a half-read list.
TEST(AuthorizedKeysTest, BadLinesNameTheirLine) {
  const auto a = newKeys();
  const std::string good = "client alice user " + a.publicKey + "\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"client bob user\n", "expected 'client <name>"},
      {"client bob root " + newKeys().publicKey + "\n", "role must be 'user' or 'admin'"},
      {"client bob user not-a-key\n", "40-character Z85"},
      {"client alice user " + newKeys().publicKey + "\n", "listed twice"},
      {"client carol user " + a.publicKey + "\n", "already listed"},
      {"agent node1\n", "expected 'agent <host> <public-key>'"},
      {"web w user short\n", "at least 16 characters"},
      {"server x y z\n", "unknown entry 'server'"},
      {"client b/c user " + newKeys().publicKey + "\n", "is not a name"},
  };
  for (const auto& [line, why] : cases) {
    auto keys = AuthorizedKeys::parse(good + line, "auth.txt");
    ASSERT_FALSE(keys.isOk()) << line;
    EXPECT_EQ(keys.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(keys.status().message().find("auth.txt:2: "), std::string::npos)
        << keys.status().message();
    EXPECT_NE(keys.status().message().find(why), std::string::npos) << keys.status().message();
  }
}

// Ensures web tokens are kept as hashes only: a hashed entry and a clear one both authenticate
// their token, neither keeps the token itself, the clear one is warned about with its line, the
// same token in clear and hashed is a duplicate, and a malformed hash is a bad line.
TEST(AuthorizedKeysTest, WebTokensAreKeptAsHashesOnly) {
  const std::string aliceToken = "alice-token-0123456789", bobToken = "bob-token-0123456789ab";
  auto keys = AuthorizedKeys::parse("web alice user " + protocol::hashBearerToken(aliceToken) +
                                        "\nweb bob admin " + bobToken + "\n",
                                    "authorized");
  ASSERT_TRUE(keys.isOk()) << keys.status().toString();
  ASSERT_NE(keys->webByToken(aliceToken), nullptr);
  EXPECT_EQ(keys->webByToken(aliceToken)->name, "alice");
  ASSERT_NE(keys->webByToken(bobToken), nullptr);
  EXPECT_EQ(keys->webByToken(bobToken)->role, Role::kAdmin);
  EXPECT_EQ(keys->webByToken(protocol::hashBearerToken(aliceToken)), nullptr)
      << "the stored hash is not itself a token";
  EXPECT_EQ(keys->webByToken(aliceToken + "x"), nullptr);
  for (const auto& w : keys->webs()) {
    EXPECT_TRUE(protocol::isBearerTokenHash(w.tokenHash)) << w.tokenHash;
  }
  EXPECT_EQ(keys->webByName("bob")->tokenHash, protocol::hashBearerToken(bobToken));
  ASSERT_EQ(keys->warnings().size(), 1u);
  EXPECT_NE(keys->warnings()[0].find("authorized:2: web entry 'bob' holds its token in clear"),
            std::string::npos)
      << keys->warnings()[0];

  auto twice = AuthorizedKeys::parse("web alice user " + protocol::hashBearerToken(aliceToken) +
                                         "\nweb carol user " + aliceToken + "\n",
                                     "authorized");
  ASSERT_FALSE(twice.isOk());
  EXPECT_NE(twice.status().message().find("authorized:2: this token is already listed"),
            std::string::npos)
      << twice.status().message();

  auto malformed = AuthorizedKeys::parse("web alice user sha256:0123\n", "authorized");
  ASSERT_FALSE(malformed.isOk());
  EXPECT_EQ(malformed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(malformed.status().message().find("64 lowercase hex digits"), std::string::npos)
      << malformed.status().message();
}

// Ensures a key pair survives its files, and a secret file others can read is refused.
TEST(CurveKeyFilesTest, RoundTripAndPrivateSecret) {
  const std::string prefix = ::testing::TempDir() + "vrm-auth-test-" + std::to_string(::getpid());
  std::remove((prefix + ".key").c_str());
  std::remove((prefix + ".pub").c_str());
  const auto pair = newKeys();
  ASSERT_TRUE(protocol::writeCurveKeyPair(pair, prefix).isOk());
  EXPECT_EQ(protocol::writeCurveKeyPair(pair, prefix).code(), StatusCode::kInvalidArgument)
      << "never overwrites a key silently";
  auto loaded = protocol::loadCurveKeyPair(prefix + ".key");
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_EQ(loaded->publicKey, pair.publicKey);
  EXPECT_EQ(loaded->secretKey, pair.secretKey);
  EXPECT_EQ(*protocol::resolvePublicKey(prefix + ".pub"), pair.publicKey);
  EXPECT_EQ(*protocol::resolvePublicKey(pair.publicKey), pair.publicKey);
  ::chmod((prefix + ".key").c_str(), 0644);
  auto open = protocol::loadCurveKeyPair(prefix + ".key");
  ASSERT_FALSE(open.isOk());
  EXPECT_NE(open.status().message().find("chmod 600"), std::string::npos);
  std::remove((prefix + ".key").c_str());
  std::remove((prefix + ".pub").c_str());
}

class AuthServerTest : public testing::ManagerFixture {
 protected:
  void SetUp() override {
    ASSERT_TRUE(protocol::requireCurve().isOk()) << "Debian's libzmq5 has CURVE";
    ManagerOptions mo;
    mo.heartbeatTimeoutNs = 100 * kHour;  // the test's sockets do not heartbeat
    startManager({testing::bmiTemplate()}, mo);
    agents_->addHost("node1", 16, 64 * kGiB, {FakeAgents::vm("a1", 8 * kGiB)});
    agents_->addHost("node2", 16, 64 * kGiB, {FakeAgents::vm("b1", 4 * kGiB)});

    auto keys = AuthorizedKeys::parse(
        "client alice user " + alice_.publicKey + "\n" + "client bob user " + bob_.publicKey +
            "\n" + "client root admin " + root_.publicKey + "\n" + "agent node1 " +
            node1_.publicKey + "\n" + "agent node3 " + node3_.publicKey + "\n",
        "authorized");
    ASSERT_TRUE(keys.isOk()) << keys.status().toString();
    ServerOptions o;
    o.clientEndpoint = "tcp://127.0.0.1:*";
    o.agentEndpoint = "tcp://127.0.0.1:*";
    o.eventsEndpoint = "tcp://127.0.0.1:*";
    o.maxPollWait = std::chrono::milliseconds(10);
    o.curve = server_;
    o.authorized = std::make_shared<AuthorizedKeys>(std::move(*keys));
    server_ptr_ = std::make_unique<Server>(ctx_, *manager_, clock_, o);
    ASSERT_TRUE(server_ptr_->bind().isOk());
    startLoop();
  }
  void TearDown() override {
    if (loop_.joinable()) stopLoop();
  }

  // While the loop runs only its thread touches the manager and the clock.
  void startLoop() {
    stop_ = false;
    loop_ = std::thread([this] { server_ptr_->run(stop_); });
  }
  void stopLoop() {
    stop_ = true;
    loop_.join();
  }

  client::Client clientWith(const protocol::CurveKeyPair* keys, const std::string& requester = "",
                            std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    client::ClientOptions o;
    o.endpoint = server_ptr_->clientEndpoint();
    o.timeout = timeout;
    o.requester = requester;
    if (keys) {
      o.serverPublicKey = server_.publicKey;
      o.publicKey = keys->publicKey;
      o.secretKey = keys->secretKey;
    }
    return client::Client(o);
  }

  ReservationRequest dedicated(const std::string& owner) {
    ReservationRequest r = ManagerFixture::dedicated();
    r.owner = owner;
    return r;
  }

  // Runs the manager (loop stopped) with the fake agents until `id` is ready.
  void runUntilReady(const std::string& id) {
    stopLoop();
    ManagerFixture::runUntilReady(id, 4 * 3600 * kNsPerSec);
    ASSERT_EQ(manager_->get(id)->state, ReservationState::kReady);
    startLoop();
  }

  // An agent's DEALER with `keys`; `routingId` empty = let ZeroMQ choose.
  std::unique_ptr<zmq::socket_t> agentSocket(const protocol::CurveKeyPair& keys,
                                             const std::string& routingId = "") {
    auto s = std::make_unique<zmq::socket_t>(agentCtx_, zmq::socket_type::dealer);
    s->set(zmq::sockopt::linger, 0);
    if (!routingId.empty()) s->set(zmq::sockopt::routing_id, routingId);
    protocol::applyCurveClient(*s, {server_.publicKey, keys});
    s->connect(server_ptr_->agentEndpoint());
    return s;
  }

  // Sends a registration for `host` and waits (bounded, real time) for vrmd's answer.
  std::optional<wire::StatusCode> registerAs(zmq::socket_t& agent, const std::string& host) {
    capnp::MallocMessageBuilder b;
    auto reg = b.initRoot<wire::AgentMessage>().initRegister();
    reg.initHost().setName(host);
    reg.getHost().setCpuCores(16);
    reg.getHost().setMemoryBytes(64 * kGiB);
    reg.getHost().setNicBandwidthBytesPerSec(125e6);
    agent.send(protocol::encodeFrame(b), zmq::send_flags::none);
    zmq::pollitem_t item{agent.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(1000));
    zmq::message_t reply;
    if (!agent.recv(reply, zmq::recv_flags::dontwait)) return std::nullopt;
    auto frame = protocol::decodeFrame(std::move(reply));
    auto msg = frame->root<wire::ManagerMessage>();
    if (!msg->isRegistered()) return std::nullopt;
    return msg->getRegistered().getCode();
  }

  std::vector<std::string> hostNames() {
    auto hs = clientWith(&root_).hosts();
    std::vector<std::string> names;
    for (const auto& h : *hs) names.push_back(h.name);
    return names;
  }

  const protocol::CurveKeyPair server_ = newKeys(), alice_ = newKeys(), bob_ = newKeys(),
                               root_ = newKeys(), node1_ = newKeys(), node3_ = newKeys(),
                               stranger_ = newKeys();
  zmq::context_t ctx_;       // vrmd's
  zmq::context_t agentCtx_;  // the agents' and subscribers' own process, as it were
  std::unique_ptr<Server> server_ptr_;
  std::atomic<bool> stop_{false};
  std::thread loop_;
};

// Ensures a reload of the authorized file (vrmd's SIGHUP) is followed at once: an added client
// is served, a removed client is refused at its next handshake and may no longer book on the
// connection it had, a removed agent's frames are dropped; a file that does not parse is a
// typed error naming its line, and the previous list stays in force.
TEST_F(AuthServerTest, ReloadFollowsTheNewFileAndKeepsTheOldOneOnABadFile) {
  auto bobOpen = clientWith(&bob_);
  ASSERT_TRUE(bobOpen.hosts().isOk());
  auto agent = agentSocket(node1_);
  ASSERT_EQ(registerAs(*agent, "node1"), wire::StatusCode::OK);

  const std::string path = ::testing::TempDir() + "vrm-auth-reload-" + std::to_string(::getpid());
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write("client alice user " + alice_.publicKey + "\nclient stranger user " + stranger_.publicKey +
        "\nclient root admin " + root_.publicKey + "\n");
  stopLoop();
  auto reloaded = server_ptr_->reloadAuthorized(path);
  startLoop();
  ASSERT_TRUE(reloaded.isOk()) << reloaded.status().toString();
  EXPECT_EQ((*reloaded)->clients().size(), 3u);

  EXPECT_TRUE(clientWith(&stranger_).hosts().isOk()) << "added by the reload";
  auto bobAgain = clientWith(&bob_).hosts();
  ASSERT_FALSE(bobAgain.isOk());
  EXPECT_EQ(bobAgain.status().code(), StatusCode::kUnauthorized) << bobAgain.status().toString();
  auto bobBooks = bobOpen.submit(dedicated("bob"));
  ASSERT_FALSE(bobBooks.isOk());
  EXPECT_EQ(bobBooks.status().code(), StatusCode::kUnauthorized) << bobBooks.status().toString();
  EXPECT_FALSE(registerAs(*agent, "node1").has_value()) << "node1's agent is no longer listed";

  write("client alice user " + alice_.publicKey + "\nclient bob user not-a-key\n");
  stopLoop();
  auto bad = server_ptr_->reloadAuthorized(path);
  auto missing = server_ptr_->reloadAuthorized(path + ".missing");
  startLoop();
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(path + ":2: "), std::string::npos)
      << bad.status().message();
  ASSERT_FALSE(missing.isOk());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(clientWith(&stranger_).hosts().isOk()) << "the previous list stays in force";
  std::remove(path.c_str());
}

// Ensures a client whose key vrmd does not know gets no service and a typed error that says so,
// and so does a client without keys at all; a known key is served.
TEST_F(AuthServerTest, UnknownClientKeyIsRefusedWithATypedError) {
  auto stranger = clientWith(&stranger_);
  auto refused = stranger.hosts();
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthorized) << refused.status().toString();
  EXPECT_NE(refused.status().message().find("refused our key"), std::string::npos)
      << refused.status().message();

  auto plain = clientWith(nullptr, "", std::chrono::milliseconds(3000));
  auto noKeys = plain.hosts();
  ASSERT_FALSE(noKeys.isOk());
  EXPECT_EQ(noKeys.status().code(), StatusCode::kUnauthorized) << noKeys.status().toString();
  EXPECT_NE(noKeys.status().message().find("requires CURVE keys"), std::string::npos)
      << noKeys.status().message();

  auto alice = clientWith(&alice_);
  EXPECT_TRUE(alice.hosts().isOk());
}

// Ensures the key decides who asks: the requester field and a foreign owner are not trusted.
TEST_F(AuthServerTest, TheKeyNotTheRequesterFieldIsTheCaller) {
  auto alice = clientWith(&alice_, /*requester=*/"root");
  auto forBob = alice.submit(dedicated("bob"));
  ASSERT_FALSE(forBob.isOk());
  EXPECT_EQ(forBob.status().code(), StatusCode::kUnauthorized) << forBob.status().toString();

  auto own = alice.submit(dedicated(""));
  ASSERT_TRUE(own.isOk()) << own.status().toString();
  EXPECT_EQ(own->request.owner, "alice") << "an empty owner is the caller";
  EXPECT_EQ(own->state, ReservationState::kAdmitted) << own->reason;

  auto root = clientWith(&root_);
  auto onBehalf = root.submit(dedicated("carol"));
  ASSERT_TRUE(onBehalf.isOk()) << onBehalf.status().toString();
  EXPECT_EQ(onBehalf->request.owner, "carol") << "an admin may book for anyone";
}

// Ensures a client cannot cancel another's reservation, its owner can, and an admin can cancel
// anyone's.
TEST_F(AuthServerTest, OnlyTheOwnerOrAnAdminCancels) {
  auto alice = clientWith(&alice_);
  auto bob = clientWith(&bob_, /*requester=*/"alice");
  auto a1 = alice.submit(dedicated("alice"));
  ASSERT_TRUE(a1.isOk()) << a1.status().toString();
  auto denied = bob.cancel(a1->id);
  ASSERT_FALSE(denied.isOk());
  EXPECT_EQ(denied.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(denied.status().message().find("belongs to alice"), std::string::npos);
  EXPECT_EQ(alice.get(a1->id)->state, ReservationState::kAdmitted) << "still booked";

  auto root = clientWith(&root_);
  auto cancelled = root.cancel(a1->id);
  ASSERT_TRUE(cancelled.isOk()) << cancelled.status().toString();
  EXPECT_EQ(cancelled->state, ReservationState::kCancelled);
  EXPECT_NE(cancelled->reason.find("root (admin)"), std::string::npos) << cancelled->reason;

  auto a2 = alice.submit(dedicated(""));
  ASSERT_TRUE(a2.isOk());
  EXPECT_TRUE(alice.cancel(a2->id).isOk());
}

// Ensures the handles (addresses, accounts) of a ready reservation reach its owner and admins
// only: others see the reservation, its hosts and VM ids, with the handles blank, in get, list
// and the VM inventory.
TEST_F(AuthServerTest, HandlesAreHiddenFromNonOwners) {
  auto alice = clientWith(&alice_);
  auto r = alice.submit(dedicated(""));
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  runUntilReady(r->id);

  auto visible = [](const Reservation& x) {
    bool any = false;
    for (const auto& c : x.clones) any |= !c.address.empty() || !c.account.empty();
    return any;
  };
  auto mine = alice.get(r->id);
  ASSERT_TRUE(mine.isOk());
  ASSERT_FALSE(mine->clones.empty());
  EXPECT_TRUE(visible(*mine));
  EXPECT_TRUE(visible(*clientWith(&root_).get(r->id)));

  auto bob = clientWith(&bob_);
  auto theirs = bob.get(r->id);
  ASSERT_TRUE(theirs.isOk());
  EXPECT_EQ(theirs->clones.size(), mine->clones.size());
  EXPECT_FALSE(visible(*theirs));
  auto listed = bob.list();
  ASSERT_TRUE(listed.isOk());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_FALSE(visible(listed->front()));

  const std::string clone = mine->clones[0].vmId;
  auto addressIn = [&](client::Client& c) {
    for (const auto& v : *c.vms()) {
      if (v.id == clone) return v.address;
    }
    return std::string("(missing)");
  };
  EXPECT_FALSE(addressIn(alice).empty());
  EXPECT_EQ(addressIn(bob), "");
}

// Ensures an agent whose key vrmd does not know cannot register (the handshake is refused).
TEST_F(AuthServerTest, AgentWithUnknownKeyCannotRegister) {
  auto agent = agentSocket(stranger_, "node3");
  protocol::HandshakeMonitor monitor(agentCtx_, *agent, "vrmd", true);
  EXPECT_EQ(registerAs(*agent, "node3"), std::nullopt);
  EXPECT_EQ(monitor.check().code(), StatusCode::kUnauthorized);
  auto names = hostNames();
  EXPECT_EQ(std::count(names.begin(), names.end(), "node3"), 0);

  auto known = agentSocket(node3_);
  EXPECT_EQ(registerAs(*known, "node3"), wire::StatusCode::OK);
  names = hostNames();
  EXPECT_EQ(std::count(names.begin(), names.end(), "node3"), 1);
}

// Ensures an agent speaks only for the host its key is bound to: a frame with another host's
// routing id is dropped, a registration for another host is unauthorized, and commands for a
// host go to the connection its own key speaks from.
TEST_F(AuthServerTest, AnAgentKeyCannotSpeakForAnotherHost) {
  auto impostor = agentSocket(node1_, "node3");
  EXPECT_EQ(registerAs(*impostor, "node3"), std::nullopt) << "claims node3 by routing id";
  auto claimsByRegister = agentSocket(node1_);
  EXPECT_EQ(registerAs(*claimsByRegister, "node3"), wire::StatusCode::UNAUTHORIZED);
  auto names = hostNames();
  EXPECT_EQ(std::count(names.begin(), names.end(), "node3"), 0);

  // node3 itself registers; the clone command of a reservation on node3 reaches node3's
  // connection, not the impostor that announced node3's name as its routing id.
  auto node3 = agentSocket(node3_);
  ASSERT_EQ(registerAs(*node3, "node3"), wire::StatusCode::OK);
  auto req = dedicated("");
  req.hostCount = 0;
  req.hostNames = {"node3"};
  auto r = clientWith(&alice_).submit(req);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  ASSERT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
  stopLoop();
  clock_.advance(r->request.startNs - clock_.now() - 30 * kNsPerSec);  // past the clone start
  startLoop();
  zmq::pollitem_t item{node3->handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(3000));
  zmq::message_t command;
  ASSERT_TRUE(node3->recv(command, zmq::recv_flags::dontwait).has_value());
  auto frame = protocol::decodeFrame(std::move(command));
  ASSERT_TRUE(frame.isOk());
  auto msg = frame->root<wire::ManagerMessage>();
  ASSERT_TRUE(msg.isOk());
  ASSERT_TRUE(msg->isCommand());
  EXPECT_TRUE(msg->getCommand().isClone());
  zmq::message_t stolen;
  EXPECT_FALSE(impostor->recv(stolen, zmq::recv_flags::dontwait).has_value());
}

// Ensures the event stream refuses unknown keys and serves known client keys.
TEST_F(AuthServerTest, EventsRefuseUnknownKeys) {
  auto subscriber = [&](const protocol::CurveKeyPair& keys) {
    auto s = std::make_unique<zmq::socket_t>(agentCtx_, zmq::socket_type::sub);
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::subscribe, "");
    protocol::applyCurveClient(*s, {server_.publicKey, keys});
    return s;
  };
  auto stranger = subscriber(stranger_);
  protocol::HandshakeMonitor strangerMonitor(agentCtx_, *stranger, "vrmd events", true);
  stranger->connect(server_ptr_->eventsEndpoint());
  auto agentKey = subscriber(node1_);
  protocol::HandshakeMonitor agentMonitor(agentCtx_, *agentKey, "vrmd events", true);
  agentKey->connect(server_ptr_->eventsEndpoint());
  auto alice = subscriber(alice_);
  protocol::HandshakeMonitor aliceMonitor(agentCtx_, *alice, "vrmd events", true);
  alice->connect(server_ptr_->eventsEndpoint());

  // Bounded wait for the three handshakes to be decided.
  Status strangerVerdict, agentVerdict;
  for (int i = 0;
       i < 300 && (strangerVerdict.isOk() || agentVerdict.isOk() || !aliceMonitor.succeeded());
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (Status s = strangerMonitor.check(); !s) strangerVerdict = s;
    if (Status s = agentMonitor.check(); !s) agentVerdict = s;
    (void)aliceMonitor.check();
  }
  EXPECT_EQ(strangerVerdict.code(), StatusCode::kUnauthorized);
  EXPECT_EQ(agentVerdict.code(), StatusCode::kUnauthorized) << "agent keys are not client keys";
  ASSERT_TRUE(aliceMonitor.succeeded());

  auto submitted = clientWith(&alice_).submit(dedicated(""));
  ASSERT_TRUE(submitted.isOk());
  zmq::pollitem_t item{alice->handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(3000));
  zmq::message_t topic;
  ASSERT_TRUE(alice->recv(topic, zmq::recv_flags::dontwait).has_value());
  EXPECT_EQ(topic.to_string(), submitted->id + "|");
  zmq::message_t nothing;
  EXPECT_FALSE(stranger->recv(nothing, zmq::recv_flags::dontwait).has_value());
}

}  // namespace
}  // namespace vrm::manager
