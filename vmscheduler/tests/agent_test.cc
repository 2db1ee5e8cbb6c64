#include "vrm/vmscheduler/agent.h"

#include <capnp/any.h>
#include <capnp/schema.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <optional>
#include <set>
#include <vector>

#include "schema/vrm.capnp.h"
#include "vrm/protocol/codec.h"

namespace vrm::vmscheduler {
namespace {

using namespace std::chrono_literals;
using protocol::toStd;

constexpr std::uint64_t kGB = 1'000'000'000;
constexpr TimeNs kStart = 1'000 * kNsPerSec;
constexpr TimeNs kHeartbeat = 5 * kNsPerSec;
constexpr TimeNs kRetry = 1 * kNsPerSec;
constexpr TimeNs kErrorRetry = 30 * kNsPerSec;

HostSpec testHost() {
  HostSpec h;
  h.name = "h1";
  h.cpuCores = 8;
  h.memoryBytes = 16 * kGB;
  h.nicBandwidthBytesPerSec = 1e9;
  VmSpec web;
  web.id = "web";
  web.cpuCores = 2;
  web.memoryBytes = 4 * kGB;
  web.nonzeroMemoryBytes = 2 * kGB;
  web.dirtyRateBytesPerSec = 1e8;
  VmSpec db;
  db.id = "db";
  db.cpuCores = 2;
  db.memoryBytes = 4 * kGB;
  db.nonzeroMemoryBytes = 4 * kGB;
  h.vms = {web, db};
  return h;
}

// The sim, plus guests lost as a real backend reports them (the sim never loses one).
class LosingHypervisor final : public Hypervisor {
 public:
  explicit LosingHypervisor(std::unique_ptr<Hypervisor> inner) : inner_(std::move(inner)) {}
  std::vector<LostVm> lost;

  std::string_view backendName() const override { return inner_->backendName(); }
  HostInfo hostInfo() const override { return inner_->hostInfo(); }
  std::string migrationEndpoint() const override { return inner_->migrationEndpoint(); }
  std::vector<VmInfo> inventory() const override { return inner_->inventory(); }
  Result<std::string> prepareIncoming(const VmInfo& vm) override {
    return inner_->prepareIncoming(vm);
  }
  Status finishIncoming(const std::string& vmId, bool commit) override {
    return inner_->finishIncoming(vmId, commit);
  }
  Status startMigration(OperationId op, const MigrationSpec& spec) override {
    return inner_->startMigration(op, spec);
  }
  Status setMigrationBandwidth(const std::string& vmId, double maxBytesPerSec) override {
    return inner_->setMigrationBandwidth(vmId, maxBytesPerSec);
  }
  Status suspend(const std::string& vmId) override { return inner_->suspend(vmId); }
  Status resume(const std::string& vmId) override { return inner_->resume(vmId); }
  Status startPark(OperationId op, const std::string& vmId) override {
    return inner_->startPark(op, vmId);
  }
  Status startUnpark(OperationId op, const std::string& vmId) override {
    return inner_->startUnpark(op, vmId);
  }
  Status startClone(OperationId op, const CloneSpec& spec) override {
    return inner_->startClone(op, spec);
  }
  Status destroy(const std::string& vmId) override { return inner_->destroy(vmId); }
  std::vector<OperationEvent> poll(TimeNs now) override { return inner_->poll(now); }
  TimeNs nextEventTime() const override { return inner_->nextEventTime(); }
  const std::vector<LostVm>& lostVms() const override { return lost; }

 private:
  std::unique_ptr<Hypervisor> inner_;
};

// One AgentMessage as vrmd's ROUTER received it.
struct Received {
  protocol::DecodedFrame frame;
  wire::AgentMessage::Reader msg() const { return *frame.root<wire::AgentMessage>(); }
};

// Plays vrmd: binds a ROUTER on inproc:// and drives one Agent over a ManualClock.
class AgentTest : public ::testing::Test {
 protected:
  AgentTest() : clock_(kStart), router_(context_, zmq::socket_type::router) {
    static std::atomic<int> counter{0};
    endpoint_ = "inproc://vrmd-agents-" + std::to_string(counter++);
    router_.set(zmq::sockopt::linger, 0);
    router_.set(zmq::sockopt::router_mandatory, 1);  // a send to an unknown agent fails loudly
    router_.bind(endpoint_);
    HypervisorOptions hvOptions;
    hvOptions.host = testHost();
    hvOptions.params["ground_truth"] = "rule";  // exact times for the timing checks below
    auto losing =
        std::make_unique<LosingHypervisor>(std::move(Hypervisor::create("sim", hvOptions)).value());
    losing_ = losing.get();
    hv_ = std::move(losing);
    AgentOptions options;
    options.vrmdEndpoint = endpoint_;
    options.heartbeatIntervalNs = kHeartbeat;
    options.registerRetryIntervalNs = kRetry;
    options.registerErrorRetryIntervalNs = kErrorRetry;
    options.intervalJitter = 0;  // exact intervals for the timing checks (jitter: own test)
    agent_ = std::make_unique<Agent>(clock_, *hv_, context_, options);
  }

  // The next message from the agent, or nullopt if none arrives within `wait` (a bound for
  // failing tests, not a timing assumption: inproc delivery is immediate).
  std::optional<Received> receive(std::chrono::milliseconds wait = 2000ms) {
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, wait);
    if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
    zmq::message_t identity;
    zmq::message_t payload;
    EXPECT_TRUE(router_.recv(identity));
    EXPECT_EQ(identity.to_string(), "h1");
    EXPECT_TRUE(router_.get(zmq::sockopt::rcvmore));
    EXPECT_TRUE(router_.recv(payload));
    EXPECT_FALSE(router_.get(zmq::sockopt::rcvmore));
    auto frame = protocol::decodeFrame(std::move(payload));
    EXPECT_TRUE(frame.isOk()) << frame.status().toString();
    if (!frame) return std::nullopt;
    Received r{std::move(frame).value()};
    EXPECT_TRUE(r.frame.root<wire::AgentMessage>().isOk());
    return r;
  }

  // Skips heartbeats, which the clock may have made due along the way.
  std::optional<Received> receiveSkippingHeartbeats() {
    for (;;) {
      auto r = receive();
      if (!r || !r->msg().isHeartbeat()) return r;
    }
  }

  bool nothingReceived() { return !receive(20ms).has_value(); }

  void sendRaw(zmq::message_t frame) {
    router_.send(zmq::buffer(std::string("h1")), zmq::send_flags::sndmore);
    router_.send(frame, zmq::send_flags::none);
  }

  void sendRegistered(wire::StatusCode code) {
    capnp::MallocMessageBuilder b;
    auto st = b.initRoot<wire::ManagerMessage>().initRegistered();
    st.setCode(code);
    if (code != wire::StatusCode::OK) st.setMessage("test says so");
    sendRaw(protocol::encodeFrame(b));
  }

  void sendCommand(std::uint64_t id, const std::function<void(wire::AgentCommand::Builder)>& fill) {
    capnp::MallocMessageBuilder b;
    auto cmd = b.initRoot<wire::ManagerMessage>().initCommand();
    cmd.setCommandId(id);
    fill(cmd);
    sendRaw(protocol::encodeFrame(b));
  }

  void sendMigrate(std::uint64_t id, const std::string& vm) {
    sendCommand(id, [&](wire::AgentCommand::Builder c) {
      auto m = c.initMigrate();
      m.setVmId(vm);
      m.setDestinationHost("h2");
      m.setDestinationEndpoint("sim://h2/" + vm);
      m.setMode(wire::MigrationMode::LIVE);
    });
  }

  void sendDestroy(std::uint64_t id, const std::string& vm) {
    sendCommand(id, [&](wire::AgentCommand::Builder c) { c.setDestroy(vm); });
  }

  // Runs the start-up handshake: register, registered(ok).
  void registerAgent() {
    agent_->runOnce(0ms);
    auto reg = receive();
    ASSERT_TRUE(reg && reg->msg().isRegister());
    sendRegistered(wire::StatusCode::OK);
    agent_->runOnce(2000ms);
    ASSERT_TRUE(agent_->registered());
  }

  // Expects the next non-heartbeat message to be command `id`'s result; returns it.
  std::optional<Received> expectResult(std::uint64_t id) {
    auto r = receiveSkippingHeartbeats();
    EXPECT_TRUE(r.has_value());
    if (!r) return r;
    EXPECT_TRUE(r->msg().isResult());
    if (!r->msg().isResult()) return std::nullopt;
    EXPECT_EQ(r->msg().getResult().getCommandId(), id);
    return r;
  }

  const VmInfo* findVm(const std::string& id) {
    inventory_ = hv_->inventory();
    for (const VmInfo& vm : inventory_) {
      if (vm.id == id) return &vm;
    }
    return nullptr;
  }

  zmq::context_t context_;
  ManualClock clock_;
  std::string endpoint_;
  zmq::socket_t router_;
  std::unique_ptr<Hypervisor> hv_;
  LosingHypervisor* losing_ = nullptr;  // hv_
  std::unique_ptr<Agent> agent_;
  std::vector<VmInfo> inventory_;
};

// Ensures the agent registers at start with its host, inventory, backend and endpoint, and
// repeats the register every retry interval until vrmd acknowledges it.
TEST_F(AgentTest, RegistersOnStartAndRetriesUntilAcknowledged) {
  agent_->runOnce(0ms);
  auto reg = receive();
  ASSERT_TRUE(reg && reg->msg().isRegister());
  auto r = reg->msg().getRegister();
  EXPECT_EQ(toStd(r.getHost().getName()), "h1");
  EXPECT_EQ(r.getHost().getCpuCores(), 8u);
  EXPECT_EQ(r.getHost().getMemoryBytes(), 16 * kGB);
  EXPECT_DOUBLE_EQ(r.getHost().getNicBandwidthBytesPerSec(), 1e9);
  EXPECT_EQ(toStd(r.getBackend()), "sim");
  EXPECT_EQ(toStd(r.getMigrationEndpoint()), "sim://h1");
  ASSERT_EQ(r.getVms().size(), 2u);
  auto db = r.getVms()[0];  // inventory is ordered by id
  EXPECT_EQ(toStd(db.getId()), "db");
  EXPECT_EQ(toStd(db.getHost()), "h1");
  EXPECT_EQ(db.getMemoryBytes(), 4 * kGB);
  EXPECT_EQ(db.getState(), wire::VmState::RUNNING);

  agent_->runOnce(0ms);
  EXPECT_TRUE(nothingReceived());  // the retry interval has not passed
  clock_.advance(kRetry);
  agent_->runOnce(0ms);
  auto again = receive();
  ASSERT_TRUE(again && again->msg().isRegister());

  sendRegistered(wire::StatusCode::OK);
  agent_->runOnce(2000ms);
  EXPECT_TRUE(agent_->registered());
  clock_.advance(kRetry);
  agent_->runOnce(0ms);
  EXPECT_TRUE(nothingReceived());  // registered: no more registers, heartbeat not yet due
}

// Ensures registered(notFound) — vrmd restarted and forgot the host — makes the agent register
// again at once, without waiting for the retry interval.
TEST_F(AgentTest, ReregistersWhenManagerForgetsIt) {
  registerAgent();
  sendRegistered(wire::StatusCode::NOT_FOUND);
  agent_->runOnce(2000ms);
  EXPECT_FALSE(agent_->registered());
  auto reg = receive();
  ASSERT_TRUE(reg && reg->msg().isRegister());
  EXPECT_EQ(reg->msg().getRegister().getVms().size(), 2u);
  sendRegistered(wire::StatusCode::OK);
  agent_->runOnce(2000ms);
  EXPECT_TRUE(agent_->registered());
}

// Ensures unanswered registers back off (1, 2, 4, then every 8 s), so that a vrmd that is down
// or behind is not buried in repeats, and that an answer resets the wait: after vrmd forgets
// the host, the agent registers at once and then repeats after 1 s again.
TEST_F(AgentTest, UnansweredRegistersBackOff) {
  std::vector<TimeNs> at;
  for (; clock_.now() <= kStart + 40 * kNsPerSec; clock_.advance(kNsPerSec / 2)) {
    agent_->runOnce(0ms);
    while (auto r = receive(0ms)) {
      if (r->msg().isRegister()) at.push_back(clock_.now() - kStart);
    }
  }
  const TimeNs s = kNsPerSec;
  EXPECT_EQ(at, (std::vector<TimeNs>{0, 1 * s, 3 * s, 7 * s, 15 * s, 23 * s, 31 * s, 39 * s}));
  sendRegistered(wire::StatusCode::OK);
  agent_->runOnce(2000ms);
  ASSERT_TRUE(agent_->registered());
  sendRegistered(wire::StatusCode::NOT_FOUND);
  agent_->runOnce(2000ms);
  auto again = receive();
  ASSERT_TRUE(again && again->msg().isRegister());
  clock_.advance(kRetry);
  agent_->runOnce(0ms);
  auto retry = receiveSkippingHeartbeats();
  ASSERT_TRUE(retry && retry->msg().isRegister());
}

// Ensures a refusal other than notFound is retried, but only after the slow error interval.
TEST_F(AgentTest, RefusedRegistrationIsRetriedSlowly) {
  agent_->runOnce(0ms);
  ASSERT_TRUE(receive());
  sendRegistered(wire::StatusCode::UNAUTHORIZED);
  agent_->runOnce(2000ms);
  EXPECT_FALSE(agent_->registered());
  clock_.advance(kRetry);
  agent_->runOnce(0ms);
  EXPECT_TRUE(nothingReceived());
  clock_.advance(kErrorRetry - kRetry);
  agent_->runOnce(0ms);
  auto reg = receive();
  ASSERT_TRUE(reg && reg->msg().isRegister());
}

// Ensures heartbeats carry the clock time and full inventory, and go out only once the
// heartbeat interval of clock time has passed.
TEST_F(AgentTest, HeartbeatsOnlyAfterTheInterval) {
  registerAgent();
  clock_.advance(kHeartbeat - 1);
  agent_->runOnce(0ms);
  EXPECT_TRUE(nothingReceived());
  clock_.advance(1);
  agent_->runOnce(0ms);
  auto hb = receive();
  ASSERT_TRUE(hb && hb->msg().isHeartbeat());
  EXPECT_EQ(hb->msg().getHeartbeat().getTimeNs(), kStart + kHeartbeat);
  EXPECT_EQ(hb->msg().getHeartbeat().getVms().size(), 2u);
  agent_->runOnce(0ms);
  EXPECT_TRUE(nothingReceived());  // one per interval
}

// Ensures registrations and heartbeats carry the guests the hypervisor lost, every time (vrmd
// acts once per guest, so a missed heartbeat or a restarted vrmd loses nothing), at most the
// newest 64.
TEST_F(AgentTest, EveryReportCarriesTheLostGuests) {
  losing_->lost.push_back({"gone", "r1", VmState::kCloning, "its qemu exited", 0});
  agent_->runOnce(0ms);
  auto reg = receive();
  ASSERT_TRUE(reg && reg->msg().isRegister());
  auto lost = reg->msg().getRegister().getLost();
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(toStd(lost[0].getId()), "gone");
  EXPECT_EQ(toStd(lost[0].getReservationId()), "r1");
  EXPECT_EQ(lost[0].getLastState(), wire::VmState::CLONING);
  EXPECT_EQ(toStd(lost[0].getReason()), "its qemu exited");
  sendRegistered(wire::StatusCode::OK);
  agent_->runOnce(2000ms);
  ASSERT_TRUE(agent_->registered());

  for (int i = 0; i < 70; ++i) {
    losing_->lost.push_back(
        {"vm" + std::to_string(i), "", VmState::kRunning, "exited", kStart + i});
  }
  for (int beat = 0; beat < 2; ++beat) {
    clock_.advance(kHeartbeat);
    agent_->runOnce(0ms);
    auto hb = receive();
    ASSERT_TRUE(hb && hb->msg().isHeartbeat());
    auto repeated = hb->msg().getHeartbeat().getLost();
    ASSERT_EQ(repeated.size(), 64u);
    EXPECT_EQ(toStd(repeated[0].getId()), "vm6");  // 71 lost: the oldest 7 (gone, vm0-vm5) left out
    EXPECT_EQ(toStd(repeated[63].getId()), "vm69");
    EXPECT_EQ(repeated[63].getLostAtNs(), kStart + 69);
  }
}

// Times (clock, from kStart) of the register attempts and heartbeats of an agent of host h1
// with the given jitter settings, until `until`: vrmd (the test's router) acknowledges the
// third register. The clock moves in 10 ms steps.
struct SendTimes {
  std::vector<TimeNs> registers, heartbeats;
};
SendTimes sendTimes(double jitter, std::uint64_t seed, TimeNs until) {
  static std::atomic<int> counter{0};
  const std::string endpoint = "inproc://agent-jitter-" + std::to_string(counter++);
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind(endpoint);
  ManualClock clock(kStart);
  HypervisorOptions hvOptions;
  hvOptions.host = testHost();
  auto hv = std::move(Hypervisor::create("sim", hvOptions)).value();
  AgentOptions options;
  options.vrmdEndpoint = endpoint;
  options.heartbeatIntervalNs = kHeartbeat;
  options.registerRetryIntervalNs = kRetry;
  options.intervalJitter = jitter;
  options.jitterSeed = seed;
  Agent agent(clock, *hv, context, options);
  SendTimes out;
  for (; clock.now() < kStart + until; clock.advance(10 * kNsPerMs)) {
    agent.runOnce(0ms);
    zmq::message_t identity, payload;
    // inproc delivery is immediate: what the agent sent is there without waiting.
    while (router.recv(identity, zmq::recv_flags::dontwait)) {
      EXPECT_TRUE(router.recv(payload));
      auto frame = protocol::decodeFrame(std::move(payload));
      if (!frame) continue;
      auto msg = *frame->root<wire::AgentMessage>();
      if (msg.isRegister()) {
        out.registers.push_back(clock.now() - kStart);
        if (out.registers.size() == 3) {
          capnp::MallocMessageBuilder b;
          b.initRoot<wire::ManagerMessage>().initRegistered().setCode(wire::StatusCode::OK);
          router.send(zmq::buffer(std::string("h1")), zmq::send_flags::sndmore);
          router.send(protocol::encodeFrame(b), zmq::send_flags::none);
        }
      }
      if (msg.isHeartbeat()) out.heartbeats.push_back(clock.now() - kStart);
    }
  }
  return out;
}

// Ensures jitter spreads agents that start together: register retries and heartbeats come
// after waits drawn from [interval * (1 - jitter), interval] (never later: vrmd's timeout
// holds), the first heartbeat at a point of the first interval; the draws differ between waits
// and between seeds, and the same seed gives the same times (tests stay reproducible).
TEST(AgentJitterTest, SpreadsRegistersAndHeartbeatsWithinTheInterval) {
  const TimeNs until = 60 * kNsPerSec;
  const SendTimes a = sendTimes(0.2, 7, until);
  ASSERT_EQ(a.registers.size(), 3u);
  EXPECT_EQ(a.registers[0], 0);  // the first register goes out at once
  for (std::size_t i = 1; i < a.registers.size(); ++i) {
    const TimeNs gap = a.registers[i] - a.registers[i - 1];
    const TimeNs interval = kRetry << (i - 1);  // unanswered: backing off
    EXPECT_GE(gap, interval * 8 / 10 - 10 * kNsPerMs);
    EXPECT_LE(gap, interval + 10 * kNsPerMs);
  }
  ASSERT_GE(a.heartbeats.size(), 10u);
  const TimeNs registeredAt = a.registers.back() + 10 * kNsPerMs;  // acknowledged a step later
  EXPECT_GT(a.heartbeats[0], registeredAt - 10 * kNsPerMs);
  EXPECT_LE(a.heartbeats[0], registeredAt + kHeartbeat + 10 * kNsPerMs);
  std::set<TimeNs> gaps;
  for (std::size_t i = 1; i < a.heartbeats.size(); ++i) {
    const TimeNs gap = a.heartbeats[i] - a.heartbeats[i - 1];
    EXPECT_GE(gap, kHeartbeat * 8 / 10 - 10 * kNsPerMs);
    EXPECT_LE(gap, kHeartbeat + 10 * kNsPerMs);
    gaps.insert(gap);
  }
  EXPECT_GT(gaps.size(), 3u) << "the waits are drawn, not fixed";

  const SendTimes again = sendTimes(0.2, 7, until);
  EXPECT_EQ(again.registers, a.registers);
  EXPECT_EQ(again.heartbeats, a.heartbeats);
  const SendTimes other = sendTimes(0.2, 8, until);
  EXPECT_NE(other.heartbeats, a.heartbeats);

  // Without jitter: exact intervals, as before.
  const SendTimes exact = sendTimes(0, 7, until);
  ASSERT_EQ(exact.registers, (std::vector<TimeNs>{0, kRetry, 3 * kRetry}));
  ASSERT_GE(exact.heartbeats.size(), 2u);
  EXPECT_EQ(exact.heartbeats[0], 3 * kRetry + 10 * kNsPerMs + kHeartbeat);
  for (std::size_t i = 1; i < exact.heartbeats.size(); ++i) {
    EXPECT_EQ(exact.heartbeats[i] - exact.heartbeats[i - 1], kHeartbeat);
  }
}

// Ensures a migrate command reports progress, then exactly one result with the measured
// observation once the clock passes the end, and the VM leaves the inventory.
TEST_F(AgentTest, MigrateReportsProgressThenOneResult) {
  registerAgent();
  sendMigrate(11, "web");
  agent_->runOnce(2000ms);
  auto start = receive();
  ASSERT_TRUE(start && start->msg().isProgress());
  EXPECT_EQ(start->msg().getProgress().getCommandId(), 11u);
  EXPECT_EQ(start->msg().getProgress().getFraction(), 0.0);
  EXPECT_EQ(toStd(start->msg().getProgress().getPhase()), "setup");
  EXPECT_EQ(findVm("web")->state, VmState::kMigratingOut);

  // Live: 0.5 s setup + 2 s copy + 0.2 s dirty pass + 0.1 s commit = 2.8 s.
  clock_.advance(1'400 * kNsPerMs);
  agent_->runOnce(0ms);
  auto half = receive();
  ASSERT_TRUE(half && half->msg().isProgress());
  EXPECT_DOUBLE_EQ(half->msg().getProgress().getFraction(), 0.5);
  EXPECT_EQ(toStd(half->msg().getProgress().getPhase()), "copy");
  EXPECT_EQ(half->msg().getProgress().getBytesTotal(), 2'200'000'000u);
  agent_->runOnce(0ms);
  EXPECT_TRUE(nothingReceived());  // same tenth: no repeat

  clock_.advance(1'400 * kNsPerMs);
  agent_->runOnce(0ms);
  auto result = expectResult(11);
  ASSERT_TRUE(result);
  auto res = result->msg().getResult();
  EXPECT_EQ(res.getStatus().getCode(), wire::StatusCode::OK);
  ASSERT_TRUE(res.isMigrated());
  auto obs = res.getMigrated();
  EXPECT_EQ(toStd(obs.getVmId()), "web");
  EXPECT_EQ(toStd(obs.getFromHost()), "h1");
  EXPECT_EQ(toStd(obs.getToHost()), "h2");
  EXPECT_EQ(obs.getMode(), wire::MigrationMode::LIVE);
  EXPECT_EQ(obs.getMemoryBytes(), 4 * kGB);
  EXPECT_EQ(obs.getNonzeroMemoryBytes(), 2 * kGB);
  EXPECT_DOUBLE_EQ(obs.getDirtyRateBytesPerSec(), 1e8);
  EXPECT_EQ(obs.getStartNs(), kStart);
  EXPECT_EQ(obs.getEndNs(), kStart + 2'800 * kNsPerMs);
  EXPECT_EQ(obs.getSetupNs(), 500 * kNsPerMs);
  EXPECT_EQ(obs.getDowntimeNs(), 100 * kNsPerMs);
  EXPECT_EQ(obs.getTransferredBytes(), 2'200'000'000u);
  EXPECT_EQ(obs.getRounds(), 2u);
  EXPECT_DOUBLE_EQ(obs.getBandwidthBytesPerSec(), 1e9);
  EXPECT_EQ(findVm("web"), nullptr);

  clock_.advance(kHeartbeat);
  agent_->runOnce(0ms);
  auto hb = receive();
  ASSERT_TRUE(hb && hb->msg().isHeartbeat());
  ASSERT_EQ(hb->msg().getHeartbeat().getVms().size(), 1u);
  EXPECT_EQ(toStd(hb->msg().getHeartbeat().getVms()[0].getId()), "db");
  EXPECT_TRUE(nothingReceived());  // exactly one result
}

// Ensures a set-migration-bandwidth command changes the cap of the running migration (vrmd's
// re-plan caps running moves that share a NIC with new ones) and gets its own result; once the
// VM is gone the same command is answered with a typed error.
TEST_F(AgentTest, SetMigrationBandwidthSlowsTheRunningMigration) {
  registerAgent();
  sendMigrate(11, "web");
  agent_->runOnce(2000ms);
  ASSERT_TRUE(receive());  // setup
  clock_.advance(1'400 * kNsPerMs);
  agent_->runOnce(0ms);
  ASSERT_TRUE(receive());  // half way: 0.9 of 2.2 GB sent at 1 GB/s
  auto setBandwidth = [&](std::uint64_t id) {
    sendCommand(id, [](wire::AgentCommand::Builder c) {
      auto b = c.initSetMigrationBandwidth();
      b.setVmId("web");
      b.setMaxBandwidthBytesPerSec(2.5e8);
    });
    agent_->runOnce(2000ms);
    return expectResult(id);
  };
  auto set = setBandwidth(12);
  ASSERT_TRUE(set);
  EXPECT_EQ(set->msg().getResult().getStatus().getCode(), wire::StatusCode::OK);

  // 1.3 GB left at 250 MB/s: the copy ends at 6.6 s, the commit at 6.7 s (uncapped: 2.8 s).
  clock_.set(kStart + 6'700 * kNsPerMs);
  agent_->runOnce(0ms);
  std::optional<Received> result;
  while (auto r = receiveSkippingHeartbeats()) {
    if (r->msg().isResult()) {
      result = std::move(r);
      break;
    }
  }
  ASSERT_TRUE(result);
  EXPECT_EQ(result->msg().getResult().getCommandId(), 11u);
  ASSERT_TRUE(result->msg().getResult().isMigrated());
  EXPECT_EQ(result->msg().getResult().getMigrated().getEndNs(), kStart + 6'700 * kNsPerMs);

  auto late = setBandwidth(13);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->msg().getResult().getStatus().getCode(), wire::StatusCode::NOT_FOUND);
}

// Ensures a migrate that cannot start is answered at once with its error.
TEST_F(AgentTest, MigrateOfUnknownVmIsNotFound) {
  registerAgent();
  sendMigrate(12, "ghost");
  agent_->runOnce(2000ms);
  auto result = expectResult(12);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->msg().getResult().getStatus().getCode(), wire::StatusCode::NOT_FOUND);
  EXPECT_TRUE(result->msg().getResult().isNone());
}

// Ensures prepareIncoming answers with the endpoint and lists the VM as incoming, and
// finishIncoming(commit) makes it run.
TEST_F(AgentTest, PrepareAndFinishIncoming) {
  registerAgent();
  sendCommand(20, [](wire::AgentCommand::Builder c) {
    auto vm = c.initPrepareIncoming();
    vm.setId("app");
    vm.setHost("h2");
    vm.setCpuCores(2);
    vm.setMemoryBytes(4 * kGB);
    vm.setNonzeroMemoryBytes(1 * kGB);
    vm.setDirtyRateBytesPerSec(5e6);
    vm.setAddress("10.0.0.7");
  });
  agent_->runOnce(2000ms);
  auto prepared = expectResult(20);
  ASSERT_TRUE(prepared);
  EXPECT_EQ(prepared->msg().getResult().getStatus().getCode(), wire::StatusCode::OK);
  ASSERT_TRUE(prepared->msg().getResult().isIncomingEndpoint());
  EXPECT_EQ(toStd(prepared->msg().getResult().getIncomingEndpoint()), "sim://h1/app");
  ASSERT_NE(findVm("app"), nullptr);
  EXPECT_EQ(findVm("app")->state, VmState::kIncoming);
  EXPECT_EQ(findVm("app")->address, "10.0.0.7");

  sendCommand(21, [](wire::AgentCommand::Builder c) {
    auto f = c.initFinishIncoming();
    f.setVmId("app");
    f.setCommit(true);
  });
  agent_->runOnce(2000ms);
  auto finished = expectResult(21);
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->msg().getResult().getStatus().getCode(), wire::StatusCode::OK);
  EXPECT_TRUE(finished->msg().getResult().isNone());
  EXPECT_EQ(findVm("app")->state, VmState::kRunning);
}

// Ensures a clone reports progress and, after its boot time, one result with the VM's handle.
TEST_F(AgentTest, CloneReturnsHandle) {
  registerAgent();
  sendCommand(30, [](wire::AgentCommand::Builder c) {
    auto cl = c.initClone();
    cl.setVmId("r1-0");
    cl.setTemplate("bmi-decoder");
    cl.setCpuCores(2);
    cl.setMemoryBytes(4 * kGB);
    cl.setReservationId("r1");
    cl.setBootTimeNs(30 * kNsPerSec);
  });
  agent_->runOnce(2000ms);
  auto progress = receive();
  ASSERT_TRUE(progress && progress->msg().isProgress());
  EXPECT_EQ(toStd(progress->msg().getProgress().getPhase()), "clone");
  EXPECT_EQ(findVm("r1-0")->state, VmState::kCloning);

  clock_.advance(30 * kNsPerSec);
  agent_->runOnce(0ms);
  auto result = expectResult(30);
  ASSERT_TRUE(result);
  auto res = result->msg().getResult();
  EXPECT_EQ(res.getStatus().getCode(), wire::StatusCode::OK);
  ASSERT_TRUE(res.isCloned());
  EXPECT_EQ(toStd(res.getCloned().getVmId()), "r1-0");
  EXPECT_EQ(toStd(res.getCloned().getHost()), "h1");
  EXPECT_EQ(toStd(res.getCloned().getAddress()), "r1-0.h1.sim");
  EXPECT_EQ(toStd(res.getCloned().getAccount()), "vrm");
  EXPECT_EQ(findVm("r1-0")->state, VmState::kRunning);
}

// Ensures park and unpark commands run as operations: progress, then one result carrying the
// observation (mode suspend, the save or restore phase), the VM parked in the inventory the
// agent reports, and running again after unpark; an unknown VM is answered notFound.
TEST_F(AgentTest, ParkAndUnparkReportObservations) {
  registerAgent();
  const std::string vm = hv_->inventory().front().id;
  sendCommand(40, [&](wire::AgentCommand::Builder c) { c.setPark(vm); });
  agent_->runOnce(2000ms);
  auto progress = receive();
  ASSERT_TRUE(progress && progress->msg().isProgress());
  EXPECT_EQ(toStd(progress->msg().getProgress().getPhase()), "save");
  EXPECT_EQ(findVm(vm)->state, VmState::kMigratingOut) << "busy while saving";
  clock_.advance(3600 * kNsPerSec);
  agent_->runOnce(0ms);
  auto parked = expectResult(40);
  ASSERT_TRUE(parked);
  auto res = parked->msg().getResult();
  EXPECT_EQ(res.getStatus().getCode(), wire::StatusCode::OK);
  ASSERT_TRUE(res.isMigrated());
  EXPECT_EQ(res.getMigrated().getMode(), wire::MigrationMode::SUSPEND);
  EXPECT_EQ(toStd(res.getMigrated().getFromHost()), "h1");
  EXPECT_EQ(toStd(res.getMigrated().getToHost()), "h1");
  EXPECT_GT(res.getMigrated().getSaveNs(), 0);
  EXPECT_EQ(res.getMigrated().getRestoreNs(), 0);
  EXPECT_EQ(findVm(vm)->state, VmState::kParked);
  EXPECT_FALSE(findVm(vm)->stateFile.empty());

  sendCommand(41, [&](wire::AgentCommand::Builder c) { c.setUnpark(vm); });
  agent_->runOnce(2000ms);
  clock_.advance(3600 * kNsPerSec);
  agent_->runOnce(0ms);
  std::optional<Received> back;
  for (int i = 0; i < 20; ++i) {  // past its progress reports (and heartbeats)
    back = receive();
    if (!back || back->msg().isResult()) break;
  }
  ASSERT_TRUE(back && back->msg().isResult());
  EXPECT_EQ(back->msg().getResult().getCommandId(), 41u);
  auto res2 = back->msg().getResult();
  EXPECT_EQ(res2.getStatus().getCode(), wire::StatusCode::OK);
  ASSERT_TRUE(res2.isMigrated());
  EXPECT_GT(res2.getMigrated().getRestoreNs(), 0);
  EXPECT_EQ(findVm(vm)->state, VmState::kRunning);

  sendCommand(42, [](wire::AgentCommand::Builder c) { c.setPark("nope"); });
  agent_->runOnce(2000ms);
  auto missing = expectResult(42);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->msg().getResult().getStatus().getCode(), wire::StatusCode::NOT_FOUND);
}

// Ensures destroying a VM the host does not have is answered notFound with no payload.
TEST_F(AgentTest, DestroyOfUnknownVmIsNotFound) {
  registerAgent();
  sendDestroy(40, "ghost");
  agent_->runOnce(2000ms);
  auto result = expectResult(40);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->msg().getResult().getStatus().getCode(), wire::StatusCode::NOT_FOUND);
  EXPECT_FALSE(result->msg().getResult().getStatus().getMessage().size() == 0);
  EXPECT_TRUE(result->msg().getResult().isNone());
}

// Ensures a repeated command id is not executed twice: ignored while running, answered with
// the stored result once finished.
TEST_F(AgentTest, DuplicateCommandIdRunsOnce) {
  registerAgent();
  sendDestroy(50, "db");
  agent_->runOnce(2000ms);
  auto first = expectResult(50);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->msg().getResult().getStatus().getCode(), wire::StatusCode::OK);
  sendDestroy(50, "db");  // run again, it would be notFound
  agent_->runOnce(2000ms);
  auto repeat = expectResult(50);
  ASSERT_TRUE(repeat);
  EXPECT_EQ(repeat->msg().getResult().getStatus().getCode(), wire::StatusCode::OK);

  sendMigrate(51, "web");
  agent_->runOnce(2000ms);
  ASSERT_TRUE(receive());  // progress 0
  sendMigrate(51, "web");  // while running: ignored
  agent_->runOnce(2000ms);
  EXPECT_TRUE(nothingReceived());
  clock_.advance(2'800 * kNsPerMs);
  agent_->runOnce(0ms);
  auto done = expectResult(51);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->msg().getResult().getStatus().getCode(), wire::StatusCode::OK);
  sendMigrate(51, "web");  // finished: the same observation again, no new migration
  agent_->runOnce(2000ms);
  auto again = expectResult(51);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->msg().getResult().getStatus().getCode(), wire::StatusCode::OK);
  ASSERT_TRUE(again->msg().getResult().isMigrated());
  EXPECT_EQ(again->msg().getResult().getMigrated().getStartNs(), kStart);
  EXPECT_TRUE(nothingReceived());
}

// Ensures an operation the backend resumed after the agent restarted (the qemu backend follows a
// live migration, or re-checks a booting clone, under the id of the command an earlier agent
// ran) gets that command's one result although no command reached this agent: no progress is
// sent for it, its result is sent when it completes and sent again when vrmd repeats the
// command, which does not start another.
TEST_F(AgentTest, OperationResumedAfterARestartGetsItsCommandsResult) {
  MigrationSpec spec{"web", "h2", "sim://h2/web", MigrationMode::kLive, 0, 0};
  ASSERT_TRUE(hv_->startMigration(60, spec).isOk());  // as the backend's restart resumed it
  registerAgent();
  EXPECT_TRUE(nothingReceived()) << "no progress for a command this agent did not receive";
  clock_.advance(2'800 * kNsPerMs);
  agent_->runOnce(0ms);
  auto done = expectResult(60);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->msg().getResult().getStatus().getCode(), wire::StatusCode::OK);
  ASSERT_TRUE(done->msg().getResult().isMigrated());
  EXPECT_EQ(findVm("web"), nullptr);
  sendMigrate(60, "web");  // vrmd repeats the unanswered command to the re-registered agent
  agent_->runOnce(2000ms);
  auto again = expectResult(60);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->msg().getResult().getStatus().getCode(), wire::StatusCode::OK);
  EXPECT_TRUE(again->msg().getResult().isMigrated());
  EXPECT_TRUE(nothingReceived());
}

// Ensures garbage frames (bad sizes, random words, empty, multi-frame, wrong union member) are
// dropped without a crash and the agent still answers the next command.
TEST_F(AgentTest, GarbageFrameIsDroppedAndAgentKeepsAnswering) {
  registerAgent();
  sendRaw(zmq::message_t(std::string("definitely not capnp")));
  std::vector<std::uint64_t> words = {0x0123456789abcdefull, 0xfedcba9876543210ull,
                                      0xffffffffffffffffull};
  sendRaw(zmq::message_t(words.data(), words.size() * sizeof(std::uint64_t)));
  sendRaw(zmq::message_t());
  router_.send(zmq::buffer(std::string("h1")), zmq::send_flags::sndmore);
  router_.send(zmq::buffer(std::string("part one")), zmq::send_flags::sndmore);
  router_.send(zmq::buffer(std::string("part two")), zmq::send_flags::none);
  {
    // A ManagerMessage whose union discriminant is from the future.
    capnp::MallocMessageBuilder b;
    auto msg = b.initRoot<wire::ManagerMessage>();
    msg.initRegistered();
    auto offset =
        capnp::Schema::from<wire::ManagerMessage>().getProto().getStruct().getDiscriminantOffset();
    auto data = capnp::toAny(msg).getDataSection();
    data[offset * 2] = 0x7f;
    sendRaw(protocol::encodeFrame(b));
  }
  agent_->runOnce(2000ms);
  agent_->runOnce(0ms);
  EXPECT_TRUE(nothingReceived());

  sendDestroy(60, "ghost");
  agent_->runOnce(2000ms);
  auto result = expectResult(60);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->msg().getResult().getStatus().getCode(), wire::StatusCode::NOT_FOUND);
}

// Ensures a command of a kind this agent does not know still gets its one result
// (invalid-argument), so vrmd never waits for it.
TEST_F(AgentTest, UnknownCommandKindIsAnsweredInvalid) {
  registerAgent();
  sendCommand(70, [](wire::AgentCommand::Builder c) {
    c.setDestroy("db");
    auto offset =
        capnp::Schema::from<wire::AgentCommand>().getProto().getStruct().getDiscriminantOffset();
    auto data = capnp::toAny(c).getDataSection();
    data[offset * 2] = 0x7f;
  });
  agent_->runOnce(2000ms);
  auto result = expectResult(70);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->msg().getResult().getStatus().getCode(), wire::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(findVm("db"), nullptr);  // nothing was destroyed
}

// Ensures the handshake and a command work over real TCP too, where small frames arrive
// unaligned and the connection is established asynchronously.
TEST(AgentTcpTest, RegistersAndAnswersOverTcp) {
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  ManualClock clock(kStart);
  HypervisorOptions hvOptions;
  hvOptions.host = testHost();
  auto hv = std::move(Hypervisor::create("sim", hvOptions)).value();
  AgentOptions options;
  options.vrmdEndpoint = router.get(zmq::sockopt::last_endpoint);
  Agent agent(clock, *hv, context, options);

  auto receive = [&]() -> std::optional<protocol::DecodedFrame> {
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, 5000ms);
    if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
    zmq::message_t identity, payload;
    EXPECT_TRUE(router.recv(identity));
    EXPECT_EQ(identity.to_string(), "h1");
    EXPECT_TRUE(router.recv(payload));
    auto frame = protocol::decodeFrame(std::move(payload));
    if (!frame) return std::nullopt;
    return std::move(frame).value();
  };
  auto sendToAgent = [&](capnp::MallocMessageBuilder& b) {
    router.send(zmq::buffer(std::string("h1")), zmq::send_flags::sndmore);
    router.send(protocol::encodeFrame(b), zmq::send_flags::none);
  };

  agent.runOnce(0ms);
  auto reg = receive();
  ASSERT_TRUE(reg);
  ASSERT_TRUE(reg->root<wire::AgentMessage>()->isRegister());
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::ManagerMessage>().initRegistered().setCode(wire::StatusCode::OK);
    sendToAgent(b);
  }
  for (int i = 0; i < 50 && !agent.registered(); ++i) agent.runOnce(100ms);
  ASSERT_TRUE(agent.registered());
  {
    capnp::MallocMessageBuilder b;
    auto cmd = b.initRoot<wire::ManagerMessage>().initCommand();
    cmd.setCommandId(80);
    cmd.setSuspend("web");
    sendToAgent(b);
  }
  agent.runOnce(5000ms);
  auto result = receive();
  ASSERT_TRUE(result);
  auto msg = *result->root<wire::AgentMessage>();
  ASSERT_TRUE(msg.isResult());
  EXPECT_EQ(msg.getResult().getCommandId(), 80u);
  EXPECT_EQ(msg.getResult().getStatus().getCode(), wire::StatusCode::OK);
}

// Ensures the observation vrmd receives for a migration is, field by field, the one the
// hypervisor measured (here the sim's stochastic ground truth, reproduced by a twin sim with the
// same seed), so that the store and the calibrator get every measured phase.
TEST(AgentObservationTest, ResultCarriesTheMeasuredObservation) {
  HypervisorOptions hvOptions;
  hvOptions.host = testHost();
  hvOptions.params["seed"] = "5";
  auto twin = std::move(Hypervisor::create("sim", hvOptions)).value();
  MigrationSpec spec{"web", "h2", "sim://h2/web", MigrationMode::kLive, 0, 0};
  ASSERT_TRUE(twin->startMigration(1, spec).isOk());
  std::optional<MigrationObservation> expected;
  for (TimeNs now = kStart; !expected && now != kTimeInfinity; now = twin->nextEventTime()) {
    for (auto& e : twin->poll(now)) {
      if (e.kind == OperationEvent::Kind::kCompleted) expected = e.migration;
    }
  }
  ASSERT_TRUE(expected);

  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("inproc://agent-observation");
  ManualClock clock(kStart);
  auto hv = std::move(Hypervisor::create("sim", hvOptions)).value();
  AgentOptions options;
  options.vrmdEndpoint = "inproc://agent-observation";
  options.heartbeatIntervalNs = 3600 * kNsPerSec;
  options.intervalJitter = 0;  // no heartbeat in the middle of the exchange below
  Agent agent(clock, *hv, context, options);
  // Waits at most `wait` (a bound for failing tests: inproc delivery is immediate).
  auto receive = [&](std::chrono::milliseconds wait) -> std::optional<protocol::DecodedFrame> {
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, wait);
    if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
    zmq::message_t identity, payload;
    EXPECT_TRUE(router.recv(identity));
    EXPECT_TRUE(router.recv(payload));
    auto frame = protocol::decodeFrame(std::move(payload));
    if (!frame) return std::nullopt;
    return std::move(frame).value();
  };
  auto send = [&](capnp::MallocMessageBuilder& b) {
    router.send(zmq::buffer(std::string("h1")), zmq::send_flags::sndmore);
    router.send(protocol::encodeFrame(b), zmq::send_flags::none);
  };
  agent.runOnce(0ms);
  ASSERT_TRUE(receive(2000ms));  // register
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::ManagerMessage>().initRegistered().setCode(wire::StatusCode::OK);
    send(b);
  }
  agent.runOnce(2000ms);
  ASSERT_TRUE(agent.registered());
  {
    capnp::MallocMessageBuilder b;
    auto cmd = b.initRoot<wire::ManagerMessage>().initCommand();
    cmd.setCommandId(90);
    auto m = cmd.initMigrate();
    m.setVmId("web");
    m.setDestinationHost("h2");
    m.setDestinationEndpoint("sim://h2/web");
    m.setMode(wire::MigrationMode::LIVE);
    send(b);
  }
  agent.runOnce(2000ms);  // starts the migration at kStart
  std::optional<protocol::DecodedFrame> result;
  for (int i = 0; i < 40 && !result; ++i) {
    while (auto frame = receive(20ms)) {
      auto msg = *frame->root<wire::AgentMessage>();
      if (msg.isResult()) {
        result = std::move(frame);
        break;
      }
    }
    if (result) break;
    const TimeNs next = hv->nextEventTime();
    ASSERT_NE(next, kTimeInfinity);
    if (next > clock.now()) clock.set(next);
    agent.runOnce(0ms);
  }
  ASSERT_TRUE(result);
  auto res = result->root<wire::AgentMessage>()->getResult();
  ASSERT_EQ(res.getStatus().getCode(), wire::StatusCode::OK);
  ASSERT_TRUE(res.isMigrated());
  auto obs = res.getMigrated();
  EXPECT_EQ(obs.getStartNs(), expected->startNs);
  EXPECT_EQ(obs.getEndNs(), expected->endNs);
  EXPECT_EQ(obs.getSetupNs(), expected->setupNs);
  EXPECT_EQ(obs.getDowntimeNs(), expected->downtimeNs);
  EXPECT_EQ(obs.getTransferredBytes(), expected->transferredBytes);
  EXPECT_EQ(obs.getRounds(), expected->rounds);
  EXPECT_DOUBLE_EQ(obs.getBandwidthBytesPerSec(), expected->bandwidthBytesPerSec);
  EXPECT_DOUBLE_EQ(obs.getDirtyRateBytesPerSec(), expected->dirtyRateBytesPerSec);
  EXPECT_EQ(obs.getMemoryBytes(), 4 * kGB);
  EXPECT_EQ(obs.getNonzeroMemoryBytes(), 2 * kGB);
  EXPECT_GE(obs.getRounds(), 3u);  // the stochastic pre-copy, not the fixed two-pass rule
}

// Ensures run() returns promptly once its stop flag is set.
TEST_F(AgentTest, RunStopsWhenAsked) {
  std::atomic<bool> stop{true};
  agent_->run(stop);
  SUCCEED();
}

}  // namespace
}  // namespace vrm::vmscheduler
