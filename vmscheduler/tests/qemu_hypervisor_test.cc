// Tests of the qemu backend with real guests (ctest label "slow"): a Debian cloud kernel and an
// initramfs running memtouch (tests/guest/), booted under TCG.
//
// Guest memory is verified by the guest itself: memtouch rewrites pages in a deterministic order
// and every second checks that every page holds what that order says, printing "verify ok" or
// "CORRUPT" on the serial console. A page lost or damaged by a migration fails the check on the
// destination, whose console is a fresh file, so a "verify ok" there was computed after the move.
#include "qemu/qemu_hypervisor.h"

#include <capnp/message.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "guest_test_support.h"
#include "qemu/qmp_client.h"
#include "schema/vrm.capnp.h"
#include "vrm/protocol/codec.h"
#include "vrm/protocol/units.h"
#include "vrm/vmscheduler/agent.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::uint64_t kMiB = 1024 * 1024;

// No such process, or only its zombie (adopted QEMUs are reaped by init, if at all).
bool processGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() || text[close + 2] == 'Z';
}

bool haveQemu() { return std::system("command -v qemu-system-x86_64 >/dev/null 2>&1") == 0; }

using guest_test::printObservation;
using testing_text::countOf;
using testing_text::readFile;

class QemuHypervisorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!haveQemu()) return;
    const std::string cmd = std::string(VRM_GUEST_SCRIPT) + " " + VRM_GUEST_DIR + " 2>&1";
    guestBuilt_ = std::system(cmd.c_str()) == 0;
  }

  void SetUp() override {
    if (!haveQemu())
      GTEST_SKIP() << "qemu-system-x86_64 is not installed (scripts/install-deps.sh)";
    ASSERT_TRUE(guestBuilt_) << "tests/guest/build-guest.sh " << VRM_GUEST_DIR << " failed";
    static int counter = 0;
    root_ = fs::temp_directory_path() /
            ("vrm-qemu-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(root_);
    h1_ = make("h1", {});
    h2_ = make("h2", {});
  }

  void TearDown() override {
    // Guests outlive their QemuHypervisor (an agent restart re-attaches): kill them explicitly.
    for (auto* hv : {&h1_, &h2_}) {
      if (*hv) qemu(**hv).killAllGuests();
      hv->reset();
    }
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }

  std::unique_ptr<Hypervisor> make(const std::string& name,
                                   std::map<std::string, std::string> extra,
                                   std::vector<VmSpec> initialVms = {}) {
    HypervisorOptions o;
    o.host.name = name;
    o.host.vms = std::move(initialVms);
    o.host.cpuCores = 4;
    o.host.memoryBytes = 2048 * kMiB;
    o.params = {{"accel", "tcg"},
                {"run-dir", (root_ / name / "run").string()},
                {"stage-dir", (root_ / name / "state").string()},
                {"dirty-rate-interval", "2s"},
                {"boot-timeout", "180s"}};
    const std::string guest = VRM_GUEST_DIR;
    for (auto [tname, rate] : {std::pair{"idle", 0}, {"dirty", 2000}, {"hot", 20000}}) {
      const std::string t = std::string("template.") + tname;
      o.params[t + ".kernel"] = guest + "/vmlinuz";
      o.params[t + ".initrd"] = guest + "/initrd.img";
      o.params[t + ".append"] =
          "console=ttyS0 quiet panic=-1 memtouch.mb=40 memtouch.rate=" + std::to_string(rate) +
          " memtouch.verify=1";
      o.params[t + ".ready"] = "memtouch: verify ok";
    }
    for (auto& [k, v] : extra) o.params[k] = v;
    auto hv = Hypervisor::create("qemu", o);
    EXPECT_TRUE(hv.isOk()) << hv.status().toString();
    return hv ? std::move(hv).value() : nullptr;
  }

  static TimeNs now() { return SystemClock().now(); }

  // Polls both hypervisors until operation `op` completes (or `limit` passes); returns its
  // completion. Progress events are kept in progress_.
  std::optional<OperationEvent> runUntilDone(OperationId op, std::chrono::seconds limit,
                                             const std::function<void()>& onProgress = {}) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      for (Hypervisor* hv : {h1_.get(), h2_.get()}) {
        for (OperationEvent& e : hv->poll(now())) {
          if (e.opId != op) continue;
          if (e.kind == OperationEvent::Kind::kCompleted) return e;
          progress_.push_back(e);
          if (onProgress) onProgress();
        }
      }
      std::this_thread::sleep_for(10ms);  // phase ends are noticed at a poll
    }
    return std::nullopt;
  }

  // Polls both hypervisors for `duration` (lets dirty-rate measurements finish).
  void pollFor(std::chrono::milliseconds duration) {
    const auto deadline = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < deadline) {
      h1_->poll(now());
      h2_->poll(now());
      std::this_thread::sleep_for(50ms);
    }
  }

  static QemuHypervisor& qemu(Hypervisor& hv) { return dynamic_cast<QemuHypervisor&>(hv); }

  static std::optional<VmInfo> find(Hypervisor& hv, const std::string& id) {
    for (const VmInfo& vm : hv.inventory()) {
      if (vm.id == id) return vm;
    }
    return std::nullopt;
  }

  // Boots `id` from `templateName` on `hv`; fails the test if it is not ready in time.
  void clone(Hypervisor& hv, const std::string& id, const std::string& templateName,
             OperationId op) {
    CloneSpec spec;
    spec.vmId = id;
    spec.templateName = templateName;
    spec.memoryBytes = 128 * kMiB;  // the cloud kernel does not boot in 64 MiB
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(hv.startClone(op, spec).isOk());
    auto done = runUntilDone(op, 200s);
    ASSERT_TRUE(done.has_value()) << "clone of " << id << " did not finish";
    ASSERT_TRUE(done->status.isOk()) << done->status.toString();
    ASSERT_TRUE(done->clone.has_value());
    std::printf("[ measured ] boot of %s until memtouch verified: %.1f s\n", id.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

  // Waits until the console of `id` on `hv` shows a new "verify ok" and no CORRUPT.
  void expectMemoryIntact(Hypervisor& hv, const std::string& id) {
    auto path = qemu(hv).consoleLogPath(id);
    ASSERT_TRUE(path.isOk());
    const std::size_t before = countOf(readFile(*path), "memtouch: verify ok");
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::string text;
    while (std::chrono::steady_clock::now() < deadline) {
      text = readFile(*path);
      if (text.find("CORRUPT") != std::string::npos) break;
      if (countOf(text, "memtouch: verify ok") > before) break;
      hv.poll(now());
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(text.find("CORRUPT"), std::string::npos) << text;
    EXPECT_GT(countOf(text, "memtouch: verify ok"), before) << "console of " << id << ": " << text;
  }

  inline static bool guestBuilt_ = false;
  fs::path root_;
  std::unique_ptr<Hypervisor> h1_, h2_;
  std::vector<OperationEvent> progress_;
};

// Ensures parking on a real guest: the VM's state is saved to the park dir and its QEMU is gone
// (no cores, no memory); a restarted agent on the same dirs lists it parked with its state file;
// unparking restores it with the dirtying guest's memory intact, and removes the state file.
TEST_F(QemuHypervisorTest, ParkSurvivesAnAgentRestartAndUnparksIntact) {
  clone(*h1_, "p1", "dirty", 1);
  ASSERT_TRUE(h1_->startPark(2, "p1").isOk());
  auto parked = runUntilDone(2, 60s);
  ASSERT_TRUE(parked.has_value());
  ASSERT_TRUE(parked->status.isOk()) << parked->status.toString();
  ASSERT_TRUE(parked->migration.has_value());
  EXPECT_EQ(parked->migration->mode, MigrationMode::kSuspend);
  EXPECT_GT(parked->migration->saveNs, 0);
  EXPECT_GT(parked->migration->transferredBytes, 0u);
  auto vm = find(*h1_, "p1");
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->state, VmState::kParked);
  EXPECT_TRUE(fs::exists(vm->stateFile)) << vm->stateFile;
  EXPECT_FALSE(qemu(*h1_).qemuPid("p1").isOk()) << "a parked VM has no QEMU";

  h1_.reset();  // the agent restarts
  h1_ = make("h1", {});
  vm = find(*h1_, "p1");
  ASSERT_TRUE(vm) << "the parked VM is found again";
  EXPECT_EQ(vm->state, VmState::kParked);
  const std::string stateFile = vm->stateFile;

  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(h1_->startUnpark(3, "p1").isOk());
  EXPECT_EQ(find(*h1_, "p1")->state, VmState::kIncoming);
  auto back = runUntilDone(3, 60s);
  ASSERT_TRUE(back.has_value());
  ASSERT_TRUE(back->status.isOk()) << back->status.toString();
  ASSERT_TRUE(back->migration.has_value());
  EXPECT_GT(back->migration->restoreNs, 0);
  std::printf("[ measured ] park of p1: save %.3f s (%.1f MiB); unpark: restore %.3f s (%.3f s)\n",
              static_cast<double>(parked->migration->saveNs) / 1e9,
              static_cast<double>(parked->migration->transferredBytes) / kMiB,
              static_cast<double>(back->migration->restoreNs) / 1e9,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  EXPECT_EQ(find(*h1_, "p1")->state, VmState::kRunning);
  EXPECT_FALSE(fs::exists(stateFile));
  expectMemoryIntact(*h1_, "p1");
  ASSERT_TRUE(h1_->destroy("p1").isOk());
}

// Ensures the whole lifecycle on real guests: clone, suspend/resume, live migration (bandwidth
// and downtime limits honoured) and suspend-copy-resume between two hosts, with the dirtying
// guest's memory intact after each move, a suspended VM still suspended after its move, dirty
// rate and resident memory measured, and destroy.
TEST_F(QemuHypervisorTest, CloneMigrateLiveAndSuspendCopyResumeThenDestroy) {
  clone(*h1_, "a", "dirty", 1);
  pollFor(2500ms);  // a dirty-rate measurement (1 s page sampling) and a resident-memory sample
  auto a = find(*h1_, "a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->state, VmState::kRunning);
  EXPECT_EQ(a->memoryBytes, 128 * kMiB);
  EXPECT_GT(a->nonzeroMemoryBytes, 40 * kMiB);  // memtouch fills 40 MiB
  EXPECT_LE(a->nonzeroMemoryBytes, 128 * kMiB);
  EXPECT_GT(a->dirtyRateBytesPerSec, 0);
  std::printf(
      "[ measured ] vm a: resident %.1f MiB, page-sampling dirty rate %.2f MiB/s "
      "(memtouch writes 7.8 MiB/s)\n",
      static_cast<double>(a->nonzeroMemoryBytes) / kMiB, a->dirtyRateBytesPerSec / kMiB);

  // Suspend and resume.
  ASSERT_TRUE(h1_->suspend("a").isOk());
  EXPECT_EQ(qemu(*h1_).qmp("a", "query-status")->value("status", ""), "paused");
  EXPECT_EQ(find(*h1_, "a")->state, VmState::kSuspended);
  ASSERT_TRUE(h1_->resume("a").isOk());
  EXPECT_EQ(qemu(*h1_).qmp("a", "query-status")->value("status", ""), "running");

  // Live migration h1 -> h2 at 16 MiB/s with a 300 ms downtime limit.
  auto endpoint = h2_->prepareIncoming(*find(*h1_, "a"));
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  EXPECT_EQ(endpoint->rfind("tcp:127.0.0.1:", 0), 0u);
  EXPECT_EQ(find(*h2_, "a")->state, VmState::kIncoming);
  MigrationSpec live;
  live.vmId = "a";
  live.destinationHost = "h2";
  live.destinationEndpoint = *endpoint;
  live.maxBandwidthBytesPerSec = 16.0 * kMiB;
  live.downtimeLimitNs = 300 * kNsPerMs;
  ASSERT_TRUE(h1_->startMigration(2, live).isOk());
  EXPECT_EQ(find(*h1_, "a")->state, VmState::kMigratingOut);
  // The cap of the running migration can be changed (vrmd's re-plans do): QEMU takes the new
  // max-bandwidth at once; set back to 16 MiB/s for the checks below.
  auto maxBandwidth = [&] {
    auto p = qemu(*h1_).qmp("a", "query-migrate-parameters");
    return p ? p->value("max-bandwidth", std::int64_t{-1}) : std::int64_t{-1};
  };
  ASSERT_TRUE(h1_->setMigrationBandwidth("a", 8.0 * kMiB).isOk());
  EXPECT_EQ(maxBandwidth(), static_cast<std::int64_t>(8 * kMiB));
  ASSERT_TRUE(h1_->setMigrationBandwidth("a", 16.0 * kMiB).isOk());
  EXPECT_EQ(maxBandwidth(), static_cast<std::int64_t>(16 * kMiB));
  EXPECT_EQ(h2_->setMigrationBandwidth("a", kMiB).code(), StatusCode::kRejected);  // incoming
  auto moved = runUntilDone(2, 120s);
  ASSERT_TRUE(moved.has_value());
  ASSERT_TRUE(moved->status.isOk()) << moved->status.toString();
  ASSERT_TRUE(moved->migration.has_value());
  const MigrationObservation& obs = *moved->migration;
  printObservation("live h1->h2 16 MiB/s", obs);
  EXPECT_FALSE(progress_.empty());
  EXPECT_GE(obs.transferredBytes, 40 * kMiB);
  EXPECT_LE(obs.bandwidthBytesPerSec, 16.0 * kMiB * 1.25);     // the limit is honoured
  EXPECT_LE(obs.downtimeNs, 300 * kNsPerMs + 700 * kNsPerMs);  // TCG: device state, stop, slack
  EXPECT_GE(obs.rounds, 2u);
  EXPECT_FALSE(find(*h1_, "a").has_value());
  ASSERT_TRUE(h2_->finishIncoming("a", true).isOk());
  EXPECT_EQ(find(*h2_, "a")->state, VmState::kRunning);
  expectMemoryIntact(*h2_, "a");

  // A suspend-copy-resume whose destination went away after preparing (its state receiver is
  // closed): the save succeeds, the copy fails, the VM runs on at the source and no staged
  // file is left on either side.
  auto stale = h1_->prepareIncoming(*find(*h2_, "a"));
  ASSERT_TRUE(stale.isOk()) << stale.status().toString();
  EXPECT_NE(stale->find(";state=tcp:127.0.0.1:"), std::string::npos) << *stale;
  ASSERT_TRUE(h1_->finishIncoming("a", false).isOk());
  MigrationSpec scr;
  scr.vmId = "a";
  scr.destinationHost = "h1";
  scr.destinationEndpoint = *stale;
  scr.mode = MigrationMode::kSuspendCopyResume;
  scr.maxBandwidthBytesPerSec = 32.0 * kMiB;
  ASSERT_TRUE(h2_->startMigration(3, scr).isOk());
  auto refused = runUntilDone(3, 120s);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status.code(), StatusCode::kUnavailable) << refused->status.toString();
  std::printf("[ measured ] %s\n", refused->status.message().c_str());
  EXPECT_EQ(find(*h2_, "a")->state, VmState::kRunning);
  EXPECT_EQ(qemu(*h2_).qmp("a", "query-status")->value("status", ""), "running");
  EXPECT_TRUE(fs::is_empty(root_ / "h1" / "state"));
  EXPECT_TRUE(fs::is_empty(root_ / "h2" / "state"));

  // Suspend-copy-resume h2 -> h1 at 32 MiB/s through the staging dirs: save on h2, copy into
  // h1's staging dir, restore there; each phase measured.
  auto back = h1_->prepareIncoming(*find(*h2_, "a"));
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  scr.destinationEndpoint = *back;
  ASSERT_TRUE(h2_->startMigration(4, scr).isOk());
  auto copied = runUntilDone(4, 120s);
  ASSERT_TRUE(copied.has_value());
  ASSERT_TRUE(copied->status.isOk()) << copied->status.toString();
  ASSERT_TRUE(copied->migration.has_value());
  const MigrationObservation& so = *copied->migration;
  printObservation("suspend-copy-resume h2->h1 32 MiB/s", so);
  EXPECT_EQ(so.mode, MigrationMode::kSuspendCopyResume);
  EXPECT_EQ(so.downtimeNs, so.endNs - so.startNs);
  EXPECT_GE(so.transferredBytes, 40 * kMiB);
  EXPECT_GT(so.saveNs, 0);
  EXPECT_GT(so.restoreNs, 0);
  // The copy is paced to 32 MiB/s: it cannot be faster than that (a little slack for the last
  // chunk), and the phases fit in the total.
  EXPECT_GE(so.copyNs, static_cast<TimeNs>(static_cast<double>(so.transferredBytes) /
                                           (32.0 * kMiB) * 0.95 * 1e9));
  EXPECT_LE(so.bandwidthBytesPerSec, 32.0 * kMiB * 1.05);
  EXPECT_LE(so.saveNs + so.copyNs + so.restoreNs, so.endNs - so.startNs);
  EXPECT_FALSE(find(*h2_, "a").has_value());
  // Restored and paused at the destination until vrm commits it.
  EXPECT_EQ(qemu(*h1_).qmp("a", "query-status")->value("status", ""), "paused");
  ASSERT_TRUE(h1_->finishIncoming("a", true).isOk());
  EXPECT_EQ(qemu(*h1_).qmp("a", "query-status")->value("status", ""), "running");
  expectMemoryIntact(*h1_, "a");
  EXPECT_TRUE(fs::is_empty(root_ / "h2" / "state"));  // staged files are cleaned up
  EXPECT_TRUE(fs::is_empty(root_ / "h1" / "state"));

  // A suspended VM migrates live and stays suspended at the destination.
  ASSERT_TRUE(h1_->suspend("a").isOk());
  auto third = h2_->prepareIncoming(*find(*h1_, "a"));
  ASSERT_TRUE(third.isOk()) << third.status().toString();
  live.destinationEndpoint = *third;
  live.maxBandwidthBytesPerSec = 64.0 * kMiB;
  ASSERT_TRUE(h1_->startMigration(5, live).isOk());
  auto parked = runUntilDone(5, 60s);
  ASSERT_TRUE(parked.has_value());
  ASSERT_TRUE(parked->status.isOk()) << parked->status.toString();
  ASSERT_TRUE(h2_->finishIncoming("a", true).isOk());
  EXPECT_EQ(find(*h2_, "a")->state, VmState::kSuspended);
  EXPECT_EQ(qemu(*h2_).qmp("a", "query-status")->value("status", ""), "paused");
  ASSERT_TRUE(h2_->resume("a").isOk());
  expectMemoryIntact(*h2_, "a");

  // Destroy.
  const pid_t pid = *qemu(*h2_).qemuPid("a");
  ASSERT_TRUE(h2_->destroy("a").isOk());
  EXPECT_TRUE(h2_->inventory().empty());
  EXPECT_NE(::kill(pid, 0), 0);  // reaped
  EXPECT_EQ(h2_->destroy("a").code(), StatusCode::kNotFound);
  EXPECT_TRUE(h1_->inventory().empty());
}

// Ensures a live migration that cannot converge (dirty rate far above the bandwidth limit) is
// cancelled and reported as rejected instead of hanging, and the VM keeps running at the source.
TEST_F(QemuHypervisorTest, NonConvergingMigrationIsReportedAndVmStays) {
  h1_ = make("h1", {{"max-rounds", "4"}, {"migration-timeout", "25s"}});
  clone(*h1_, "hot", "hot", 1);
  auto endpoint = h2_->prepareIncoming(*find(*h1_, "hot"));
  ASSERT_TRUE(endpoint.isOk());
  MigrationSpec spec;
  spec.vmId = "hot";
  spec.destinationHost = "h2";
  spec.destinationEndpoint = *endpoint;
  spec.maxBandwidthBytesPerSec = 8.0 * kMiB;  // memtouch rewrites its 40 MiB many times a second
  spec.downtimeLimitNs = 10 * kNsPerMs;
  ASSERT_TRUE(h1_->startMigration(2, spec).isOk());
  auto done = runUntilDone(2, 90s);
  ASSERT_TRUE(done.has_value()) << "the migration hung";
  EXPECT_EQ(done->status.code(), StatusCode::kRejected) << done->status.toString();
  EXPECT_NE(done->status.message().find("did not converge"), std::string::npos);
  std::printf("[ measured ] %s\n", done->status.message().c_str());
  EXPECT_EQ(find(*h1_, "hot")->state, VmState::kRunning);
  EXPECT_EQ(qemu(*h1_).qmp("hot", "query-status")->value("status", ""), "running");
  // The cancelled stream makes the incoming QEMU exit on its own; whether h2's last poll reaped
  // it already (the VM left h2's inventory) or the drop kills it is a race, and both end with no
  // trace of the VM on h2.
  const Status dropped = h2_->finishIncoming("hot", false);
  EXPECT_TRUE(dropped.isOk() || dropped.code() == StatusCode::kNotFound) << dropped.toString();
  EXPECT_TRUE(h2_->inventory().empty());
  EXPECT_EQ(qemu(*h2_).qemuPid("hot").status().code(), StatusCode::kNotFound);
  expectMemoryIntact(*h1_, "hot");
}

// Ensures a QEMU killed mid-migration reaches vrmd as a typed failure through the agent: the
// destination's QEMU killed -> unavailable, and the VM is on the source only; the source's QEMU
// killed -> internal, and the VM is on no host (it died with its QEMU).
TEST_F(QemuHypervisorTest, QemuKilledMidMigrationIsATypedFailureAtVrmd) {
  clone(*h1_, "c", "dirty", 1);

  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("inproc://vrmd-qemu-test");
  SystemClock clock;
  AgentOptions options;
  options.vrmdEndpoint = "inproc://vrmd-qemu-test";
  Agent agent(clock, *h1_, context, options);

  // Receives one AgentMessage; runs the agent and polls h2 meanwhile.
  auto receive = [&](std::chrono::seconds limit) -> std::optional<protocol::DecodedFrame> {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      agent.runOnce(50ms);
      h2_->poll(now());
      zmq::message_t identity, payload;
      if (!router.recv(identity, zmq::recv_flags::dontwait)) continue;
      EXPECT_TRUE(router.recv(payload));
      auto frame = protocol::decodeFrame(std::move(payload));
      if (frame) return std::move(frame).value();
    }
    return std::nullopt;
  };
  auto send = [&](const std::function<void(wire::ManagerMessage::Builder)>& fill) {
    capnp::MallocMessageBuilder b;
    fill(b.initRoot<wire::ManagerMessage>());
    router.send(zmq::buffer(std::string("h1")), zmq::send_flags::sndmore);
    router.send(protocol::encodeFrame(b), zmq::send_flags::none);
  };
  auto reg = receive(10s);
  ASSERT_TRUE(reg && reg->root<wire::AgentMessage>()->isRegister());
  send([](wire::ManagerMessage::Builder m) { m.initRegistered().setCode(wire::StatusCode::OK); });

  // Migrates `vm` with command `id` at 2 MiB/s, kills `victim`'s QEMU at the first progress
  // report past 10 %, and returns the command's result code.
  auto migrateAndKill = [&](std::uint64_t id,
                            Hypervisor& victim) -> std::optional<wire::StatusCode> {
    auto endpoint = h2_->prepareIncoming(*find(*h1_, "c"));
    EXPECT_TRUE(endpoint.isOk());
    if (!endpoint) return std::nullopt;
    send([&](wire::ManagerMessage::Builder m) {
      auto cmd = m.initCommand();
      cmd.setCommandId(id);
      auto mig = cmd.initMigrate();
      mig.setVmId("c");
      mig.setDestinationHost("h2");
      mig.setDestinationEndpoint(*endpoint);
      mig.setMode(wire::MigrationMode::LIVE);
      mig.setMaxBandwidthBytesPerSec(2.0 * kMiB);
    });
    bool killed = false;
    for (;;) {
      auto frame = receive(120s);
      if (!frame) return std::nullopt;
      auto msg = *frame->root<wire::AgentMessage>();
      if (msg.isProgress() && !killed && msg.getProgress().getFraction() > 0.1) {
        auto pid = qemu(victim).qemuPid("c");
        EXPECT_TRUE(pid.isOk());
        if (pid) ::kill(*pid, SIGKILL);
        killed = true;
      }
      if (msg.isResult() && msg.getResult().getCommandId() == id) {
        EXPECT_TRUE(killed);
        std::printf("[ measured ] result: %s\n",
                    protocol::toStd(msg.getResult().getStatus().getMessage()).c_str());
        return msg.getResult().getStatus().getCode();
      }
    }
  };

  auto destKilled = migrateAndKill(7, *h2_);
  ASSERT_TRUE(destKilled.has_value());
  EXPECT_EQ(*destKilled, wire::StatusCode::UNAVAILABLE);
  EXPECT_EQ(find(*h1_, "c")->state, VmState::kRunning);
  EXPECT_FALSE(find(*h2_, "c").has_value());  // its QEMU died: dropped from the inventory
  EXPECT_EQ(h2_->finishIncoming("c", false).code(), StatusCode::kNotFound);

  auto sourceKilled = migrateAndKill(8, *h1_);
  ASSERT_TRUE(sourceKilled.has_value());
  EXPECT_EQ(*sourceKilled, wire::StatusCode::INTERNAL);
  EXPECT_FALSE(find(*h1_, "c").has_value());
  // The destination's QEMU exits by itself when its incoming stream breaks; either way vrmd's
  // finishIncoming(commit=false) leaves no trace of the VM there.
  if (auto left = find(*h2_, "c")) {
    EXPECT_EQ(left->state, VmState::kIncoming);
  }
  const Status dropped = h2_->finishIncoming("c", false);
  EXPECT_TRUE(dropped.isOk() || dropped.code() == StatusCode::kNotFound) << dropped.toString();
  EXPECT_TRUE(h2_->inventory().empty());
}

// Ensures a disk template clones as a qcow2 overlay over the base image (the base is never
// written), the VM is ready once QEMU runs it (no ready text), and destroy removes the overlay.
TEST_F(QemuHypervisorTest, ImageTemplateClonesAsQcow2Overlay) {
  const std::string base = (root_ / "base.qcow2").string();
  ASSERT_EQ(std::system(("qemu-img create -q -f qcow2 " + base + " 32M").c_str()), 0);
  auto h = make("h3", {{"template.disk.image", base}});
  ASSERT_TRUE(h);
  h1_ = std::move(h);  // polled by runUntilDone()
  CloneSpec spec;
  spec.vmId = "d";
  spec.templateName = "disk";
  spec.memoryBytes = 128 * kMiB;
  ASSERT_TRUE(h1_->startClone(1, spec).isOk());
  auto done = runUntilDone(1, 60s);
  ASSERT_TRUE(done.has_value());
  ASSERT_TRUE(done->status.isOk()) << done->status.toString();
  const fs::path overlay = root_ / "h3" / "run" / "d.qcow2";
  ASSERT_TRUE(fs::exists(overlay));
  const std::string info =
      "qemu-img info -U " + overlay.string() + " | grep -q 'backing file: " + base + "'";
  EXPECT_EQ(std::system(info.c_str()), 0);
  EXPECT_EQ(find(*h1_, "d")->state, VmState::kRunning);
  // A retried clone of the finished VM answers with the same handle.
  ASSERT_TRUE(h1_->startClone(2, spec).isOk());
  auto again = runUntilDone(2, 5s);
  ASSERT_TRUE(again && again->clone);
  EXPECT_EQ(again->clone->address, done->clone->address);
  ASSERT_TRUE(h1_->destroy("d").isOk());
  EXPECT_FALSE(fs::exists(overlay));
}

// Ensures a kernel template's data disk on a real guest (issue 13): made at clone (a raw file of
// the template's size in disk-dir), written through the guest's QEMU; a live move to a host with
// the same disk-dir (shared storage) leaves the file in place, and the destination's QEMU writes
// the same file beside what the source wrote; a host with its own disk-dir refuses the VM naming
// disk-dir; destroy removes the file, a guest whose QEMU dies keeps it.
TEST_F(QemuHypervisorTest, DataDiskIsMadeAtCloneKeptAcrossAMoveAndRemovedAtDestroy) {
  const fs::path shared = root_ / "shared-disks";
  const std::string guest = VRM_GUEST_DIR;
  const std::map<std::string, std::string> disk = {
      {"disk-dir", shared.string()},
      {"template.dd.kernel", guest + "/vmlinuz"},
      {"template.dd.initrd", guest + "/initrd.img"},
      {"template.dd.append", "console=ttyS0 quiet panic=-1 memtouch.mb=40 memtouch.rate=0"},
      {"template.dd.ready", "memtouch: verify ok"},
      {"template.dd.data-disk", "16MiB"}};
  h1_ = make("h1", disk);
  h2_ = make("h2", disk);
  ASSERT_TRUE(h1_ && h2_);
  clone(*h1_, "v", "dd", 1);
  const fs::path file = shared / "v.data.raw";
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(fs::file_size(file), 16 * kMiB);

  // Writes through the VM's QEMU on `hv` (its virtio disk, as the guest's own writes go), then
  // reads the file as the host sees it.
  auto qemuWrite = [&](Hypervisor& hv, int pattern, int offsetMiB) {
    const std::string cmd = "qemu-io virtio0 \"write -P " + std::to_string(pattern) + " " +
                            std::to_string(offsetMiB) + "M 1M\"";
    auto r = qemu(hv).qmp("v", "human-monitor-command", {{"command-line", cmd}});
    ASSERT_TRUE(r.isOk()) << r.status().toString();  // cache=writeback: in the file at once
  };
  auto fileHolds = [&](int pattern, int offsetMiB) {
    std::ifstream in(file, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offsetMiB) * kMiB);
    std::string bytes(kMiB, '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return in.gcount() == static_cast<std::streamsize>(kMiB) &&
           bytes.find_first_not_of(static_cast<char>(pattern)) == std::string::npos;
  };
  qemuWrite(*h1_, 0x5a, 0);
  EXPECT_TRUE(fileHolds(0x5a, 0));

  // Share-nothing: a host with a disk-dir of its own does not take the VM.
  auto h3 = make("h3", {{"disk-dir", (root_ / "h3-disks").string()},
                        {"template.dd.kernel", guest + "/vmlinuz"},
                        {"template.dd.data-disk", "16MiB"}});
  ASSERT_TRUE(h3);
  auto refused = h3->prepareIncoming(*find(*h1_, "v"));
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("disk-dir="), std::string::npos)
      << refused.status().message();
  EXPECT_TRUE(h3->inventory().empty());
  EXPECT_FALSE(fs::exists(root_ / "h3-disks" / "v.data.raw"));
  h3.reset();

  auto endpoint = h2_->prepareIncoming(*find(*h1_, "v"));
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  MigrationSpec live;
  live.vmId = "v";
  live.destinationHost = "h2";
  live.destinationEndpoint = *endpoint;
  live.maxBandwidthBytesPerSec = 64.0 * kMiB;
  ASSERT_TRUE(h1_->startMigration(2, live).isOk());
  auto moved = runUntilDone(2, 120s);
  ASSERT_TRUE(moved.has_value());
  ASSERT_TRUE(moved->status.isOk()) << moved->status.toString();
  ASSERT_TRUE(h2_->finishIncoming("v", true).isOk());
  EXPECT_FALSE(find(*h1_, "v"));
  ASSERT_TRUE(fs::exists(file)) << "the source left the shared disk to its destination";
  EXPECT_TRUE(fileHolds(0x5a, 0)) << "what the guest wrote on h1";
  qemuWrite(*h2_, 0xa5, 1);
  EXPECT_TRUE(fileHolds(0xa5, 1)) << "h2's QEMU writes the same file";
  EXPECT_TRUE(fileHolds(0x5a, 0));

  ASSERT_TRUE(h2_->destroy("v").isOk());
  EXPECT_FALSE(fs::exists(file));

  // A guest whose QEMU dies (a reboot under -no-reboot, a crash) is lost, not destroyed: its
  // disk stays for a person to recover.
  clone(*h1_, "w", "dd", 3);
  const pid_t pid = *qemu(*h1_).qemuPid("w");
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  for (int i = 0; i < 500 && find(*h1_, "w"); ++i) {
    h1_->poll(now());
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(find(*h1_, "w"));
  ASSERT_FALSE(qemu(*h1_).lostVms().empty());
  EXPECT_EQ(qemu(*h1_).lostVms().back().vmId, "w");
  EXPECT_TRUE(fs::exists(shared / "w.data.raw"));
}

// The md5 of a file, as md5sum prints it ("" when it cannot be read).
std::string md5Of(const fs::path& path) {
  const std::string cmd = "md5sum '" + path.string() + "' 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "";
  char buf[64] = {};
  const std::size_t n = std::fread(buf, 1, 32, p);
  ::pclose(p);
  return std::string(buf, n);
}

// Ensures share-nothing migration of a data disk (disk-storage=local, each host its own
// disk-dir): the destination makes an empty disk and exports it over NBD, the source mirrors its
// disk into it, writes made during the mirror included, under a disk-write cap, before the memory
// moves; afterwards the destination's file has exactly what the guest wrote (md5), the guest runs
// there with its memory intact, writes to its disk, and no NBD export is left; the source's copy
// is gone and the observation counts the disk's bytes.
TEST_F(QemuHypervisorTest, ShareNothingMigrationMirrorsTheDataDiskOverNbd) {
  constexpr std::uint64_t kDiskMiB = 64;
  const std::string guest = VRM_GUEST_DIR;
  auto local = [&](const std::string& host) {
    return std::map<std::string, std::string>{
        {"disk-dir", (root_ / (host + "-disks")).string()},
        {"disk-storage", "local"},
        {"template.dd.kernel", guest + "/vmlinuz"},
        {"template.dd.initrd", guest + "/initrd.img"},
        {"template.dd.append", "console=ttyS0 quiet panic=-1 memtouch.mb=40 memtouch.rate=2000"},
        {"template.dd.ready", "memtouch: verify ok"},
        {"template.dd.data-disk", std::to_string(kDiskMiB) + "MiB"}};
  };
  h1_ = make("h1", local("h1"));
  h2_ = make("h2", local("h2"));
  ASSERT_TRUE(h1_ && h2_);
  clone(*h1_, "v", "dd", 1);
  const fs::path source = root_ / "h1-disks" / "v.data.raw";
  const fs::path copy = root_ / "h2-disks" / "v.data.raw";

  // What the disk must hold: written through the guest's QEMU (its virtio disk, as the guest's own
  // writes go), mirrored in `expected`.
  std::string expected(kDiskMiB * kMiB, '\0');
  auto write = [&](Hypervisor& hv, int pattern, int offsetMiB) {
    const std::string cmd = "qemu-io virtio0 \"write -P " + std::to_string(pattern) + " " +
                            std::to_string(offsetMiB) + "M 1M\"";
    auto r = qemu(hv).qmp("v", "human-monitor-command", {{"command-line", cmd}});
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    std::fill_n(expected.begin() + static_cast<std::ptrdiff_t>(offsetMiB * kMiB), kMiB,
                static_cast<char>(pattern));
  };
  write(*h1_, 0x5a, 0);
  write(*h1_, 0xc3, 40);
  write(*h1_, 0x11, 63);

  auto endpoint = h2_->prepareIncoming(*find(*h1_, "v"));
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  EXPECT_NE(endpoint->find(";disk=tcp:127.0.0.1:"), std::string::npos) << *endpoint;
  ASSERT_TRUE(fs::exists(copy));
  EXPECT_EQ(fs::file_size(copy), kDiskMiB * kMiB);

  MigrationSpec live;
  live.vmId = "v";
  live.destinationHost = "h2";
  live.destinationEndpoint = *endpoint;
  live.maxBandwidthBytesPerSec = 256.0 * kMiB;
  live.diskWriteLimitBytesPerSec = 16.0 * kMiB;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(h1_->startMigration(2, live).isOk());
  // A write while the disk is being copied reaches the copy too (the mirror follows writes);
  // meanwhile the guest's writes are capped and a new migration cap reaches the mirror.
  bool wroteDuring = false;
  double writeCap = 0, mirrorSpeed = 0;
  auto moved = runUntilDone(2, 120s, [&] {
    if (wroteDuring || progress_.back().phase != "disk") return;
    wroteDuring = true;
    write(*h1_, 0x77, 8);
    auto blocks = qemu(*h1_).qmp("v", "query-block", nlohmann::json::object());
    ASSERT_TRUE(blocks.isOk());
    for (const auto& b : *blocks) {
      if (b.value("device", "") == "virtio0") writeCap = b["inserted"].value("bps_wr", 0.0);
    }
    ASSERT_TRUE(h1_->setMigrationBandwidth("v", 128.0 * kMiB).isOk());
    auto jobs = qemu(*h1_).qmp("v", "query-block-jobs", nlohmann::json::object());
    ASSERT_TRUE(jobs.isOk());
    for (const auto& j : *jobs) mirrorSpeed = j.value("speed", 0.0);
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(moved.has_value());
  ASSERT_TRUE(moved->status.isOk()) << moved->status.toString();
  ASSERT_TRUE(moved->migration.has_value());
  EXPECT_TRUE(wroteDuring) << "no progress of phase disk was reported";
  EXPECT_EQ(writeCap, 16.0 * kMiB) << "the disk-write cap while the disk is copied";
  EXPECT_EQ(mirrorSpeed, 128.0 * kMiB) << "the mirror's rate after setMigrationBandwidth";
  std::printf(
      "[ measured ] share-nothing move of a %llu MiB data disk + 128 MiB guest: %.1f s "
      "(%s transferred, memory and disk; downtime %.0f ms)\n",
      static_cast<unsigned long long>(kDiskMiB), seconds,
      formatBytes(static_cast<double>(moved->migration->transferredBytes)).c_str(),
      moved->migration->downtimeNs / 1e6);
  EXPECT_GE(moved->migration->transferredBytes, kDiskMiB * kMiB) << "disk bytes counted";
  ASSERT_TRUE(h2_->finishIncoming("v", true).isOk());
  EXPECT_FALSE(find(*h1_, "v"));
  EXPECT_FALSE(fs::exists(source)) << "the source's own copy is left behind";

  { std::ofstream(root_ / "expected.raw", std::ios::binary) << expected; }
  EXPECT_EQ(md5Of(copy), md5Of(root_ / "expected.raw")) << "the destination's disk differs";
  auto exports = qemu(*h2_).qmp("v", "query-block-exports", nlohmann::json::object());
  ASSERT_TRUE(exports.isOk()) << exports.status().toString();
  EXPECT_TRUE(exports->empty()) << exports->dump();
  auto status = qemu(*h2_).qmp("v", "query-status", nlohmann::json::object());
  ASSERT_TRUE(status.isOk());
  EXPECT_EQ(status->value("status", ""), "running");
  expectMemoryIntact(*h2_, "v");
  write(*h2_, 0xa5, 1);
  std::ofstream(root_ / "expected.raw", std::ios::binary) << expected;
  EXPECT_EQ(md5Of(copy), md5Of(root_ / "expected.raw")) << "h2's QEMU writes its own copy";
  ASSERT_TRUE(h2_->destroy("v").isOk());
  EXPECT_FALSE(fs::exists(copy));
}

// Ensures a share-nothing move whose destination goes away while the disk is copied (its QEMU
// killed: the NBD export gone) fails with unavailable naming the disk copy, and leaves the VM
// running on its source with its disk as it was, no mirror job, no write cap; the destination's
// empty disk is removed with it.
TEST_F(QemuHypervisorTest, ShareNothingMoveWhoseDestinationGoesAwayKeepsTheVmAndItsDisk) {
  const std::string guest = VRM_GUEST_DIR;
  auto local = [&](const std::string& host) {
    return std::map<std::string, std::string>{
        {"disk-dir", (root_ / (host + "-disks")).string()},
        {"disk-storage", "local"},
        {"template.dd.kernel", guest + "/vmlinuz"},
        {"template.dd.initrd", guest + "/initrd.img"},
        {"template.dd.append", "console=ttyS0 quiet panic=-1 memtouch.mb=40 memtouch.rate=0"},
        {"template.dd.ready", "memtouch: verify ok"},
        {"template.dd.data-disk", "64MiB"}};
  };
  h1_ = make("h1", local("h1"));
  h2_ = make("h2", local("h2"));
  ASSERT_TRUE(h1_ && h2_);
  clone(*h1_, "v", "dd", 1);
  auto r = qemu(*h1_).qmp("v", "human-monitor-command",
                          {{"command-line", "qemu-io virtio0 \"write -P 90 0 4M\""}});
  ASSERT_TRUE(r.isOk());
  const fs::path source = root_ / "h1-disks" / "v.data.raw";
  const std::string before = md5Of(source);

  auto endpoint = h2_->prepareIncoming(*find(*h1_, "v"));
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  MigrationSpec live;
  live.vmId = "v";
  live.destinationHost = "h2";
  live.destinationEndpoint = *endpoint;
  live.maxBandwidthBytesPerSec = 8.0 * kMiB;  // 8 s for the disk: time to pull the plug
  live.diskWriteLimitBytesPerSec = 4.0 * kMiB;
  ASSERT_TRUE(h1_->startMigration(2, live).isOk());
  bool dropped = false;
  auto failed = runUntilDone(2, 60s, [&] {
    if (dropped || progress_.back().phase != "disk") return;
    dropped = true;
    ASSERT_TRUE(h2_->finishIncoming("v", false).isOk());
  });
  ASSERT_TRUE(dropped);
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->status.code(), StatusCode::kUnavailable) << failed->status.toString();
  EXPECT_NE(failed->status.message().find("disk copy of vm 'v' to h2"), std::string::npos)
      << failed->status.toString();
  EXPECT_FALSE(fs::exists(root_ / "h2-disks" / "v.data.raw"));
  auto vm = find(*h1_, "v");
  ASSERT_TRUE(vm.has_value());
  EXPECT_EQ(vm->state, VmState::kRunning);
  auto jobs = qemu(*h1_).qmp("v", "query-jobs", nlohmann::json::object());
  ASSERT_TRUE(jobs.isOk());
  EXPECT_TRUE(jobs->empty()) << jobs->dump();
  auto blocks = qemu(*h1_).qmp("v", "query-block", nlohmann::json::object());
  ASSERT_TRUE(blocks.isOk());
  for (const auto& b : *blocks) {
    if (b.value("device", "") == "virtio0") EXPECT_EQ(b["inserted"].value("bps_wr", -1), 0);
  }
  EXPECT_EQ(md5Of(source), before);
  expectMemoryIntact(*h1_, "v");
}

// Ensures guests outlive their agent: after the QemuHypervisor is destroyed, its guests' QEMUs
// still run; a new one on the same directories lists the running and the suspended guest with
// their true states (the dirtying guest's memory intact, verified by the guest itself), reports
// the guest whose QEMU was killed meanwhile as lost (its state file removed), and can still
// resume and migrate the re-attached guests; one whose QEMU is killed under the new agent is
// reported lost too (when, why, as what), not kept in the inventory.
TEST_F(QemuHypervisorTest, GuestsOutliveTheAgentAndAreReattached) {
  clone(*h1_, "r1", "dirty", 1);
  clone(*h1_, "r2", "idle", 2);
  clone(*h1_, "gone", "idle", 3);
  ASSERT_TRUE(h1_->suspend("r2").isOk());
  const pid_t pid1 = *qemu(*h1_).qemuPid("r1");
  const pid_t pidGone = *qemu(*h1_).qemuPid("gone");
  const fs::path stateDir = root_ / "h1" / "run" / "vms";
  EXPECT_TRUE(fs::exists(stateDir / "r1.vm.json"));

  h1_.reset();  // the agent goes away
  EXPECT_EQ(::kill(pid1, 0), 0) << "the guest's QEMU outlives the agent";
  ASSERT_EQ(::kill(pidGone, SIGKILL), 0);  // a guest dies while no agent watches
  ASSERT_EQ(waitpid(pidGone, nullptr, 0), pidGone);

  const auto start = std::chrono::steady_clock::now();
  h1_ = make("h1", {});
  ASSERT_TRUE(h1_);
  std::printf(
      "[ measured ] agent start re-attaching 2 guests (1 lost): %.1f ms\n",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  auto r1 = find(*h1_, "r1");
  ASSERT_TRUE(r1) << "the running guest is listed again";
  EXPECT_EQ(r1->state, VmState::kRunning);
  EXPECT_EQ(r1->templateName, "dirty");
  EXPECT_EQ(r1->memoryBytes, 128 * kMiB);
  EXPECT_EQ(*qemu(*h1_).qemuPid("r1"), pid1);
  auto r2 = find(*h1_, "r2");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->state, VmState::kSuspended);
  EXPECT_FALSE(find(*h1_, "gone")) << "a guest that died is not listed";
  ASSERT_EQ(qemu(*h1_).lostVms().size(), 1u);
  EXPECT_EQ(qemu(*h1_).lostVms()[0].vmId, "gone");
  EXPECT_NE(qemu(*h1_).lostVms()[0].reason.find("exited"), std::string::npos)
      << qemu(*h1_).lostVms()[0].reason;
  EXPECT_FALSE(fs::exists(stateDir / "gone.vm.json")) << "a lost guest's state file is removed";
  expectMemoryIntact(*h1_, "r1");

  // The re-attached guests are driven as any other: resumed, migrated live, destroyed.
  ASSERT_TRUE(h1_->resume("r2").isOk());
  EXPECT_EQ(qemu(*h1_).qmp("r2", "query-status")->value("status", ""), "running");
  auto endpoint = h2_->prepareIncoming(*find(*h1_, "r1"));
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  MigrationSpec live;
  live.vmId = "r1";
  live.destinationHost = "h2";
  live.destinationEndpoint = *endpoint;
  ASSERT_TRUE(h1_->startMigration(4, live).isOk());
  auto moved = runUntilDone(4, 120s);
  ASSERT_TRUE(moved.has_value());
  ASSERT_TRUE(moved->status.isOk()) << moved->status.toString();
  EXPECT_FALSE(find(*h1_, "r1"));
  EXPECT_FALSE(fs::exists(stateDir / "r1.vm.json"));
  EXPECT_TRUE(processGone(pid1)) << "the adopted source QEMU is gone after the move";
  ASSERT_TRUE(h2_->finishIncoming("r1", true).isOk());
  expectMemoryIntact(*h2_, "r1");

  // A re-attached guest whose QEMU dies under the running agent is reported lost, not kept.
  const pid_t pid2 = *qemu(*h1_).qemuPid("r2");
  ASSERT_EQ(::kill(pid2, SIGKILL), 0);
  const TimeNs killedNs = now();
  for (int i = 0; i < 500 && find(*h1_, "r2"); ++i) {
    h1_->poll(now());
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(find(*h1_, "r2"));
  ASSERT_EQ(qemu(*h1_).lostVms().size(), 2u);
  const LostVm& r2Lost = qemu(*h1_).lostVms()[1];
  EXPECT_EQ(r2Lost.vmId, "r2");
  EXPECT_EQ(r2Lost.lastState, VmState::kRunning);
  EXPECT_GE(r2Lost.lostAtNs, killedNs);
  EXPECT_NE(r2Lost.reason.find("exited"), std::string::npos) << r2Lost.reason;
  EXPECT_FALSE(fs::exists(stateDir / "r2.vm.json"));
  EXPECT_TRUE(h1_->inventory().empty());
}

// Ensures a guest whose QEMU does not answer when the agent starts (here stopped with SIGSTOP) is
// reported lost, "left running, not listed", its state file kept, and is tried again: once it
// answers it is listed (the same QEMU, its memory intact) and no longer reported lost; one that
// died meanwhile is reported lost for that, its state file removed.
TEST_F(QemuHypervisorTest, GuestSilentAtStartIsListedOnceItAnswers) {
  clone(*h1_, "s", "dirty", 1);
  clone(*h1_, "d", "idle", 2);
  const pid_t pidS = *qemu(*h1_).qemuPid("s");
  const pid_t pidD = *qemu(*h1_).qemuPid("d");
  h1_.reset();
  ASSERT_EQ(::kill(pidS, SIGSTOP), 0);
  ASSERT_EQ(::kill(pidD, SIGSTOP), 0);
  h1_ = make("h1", {});  // waits 10 s for each greeting
  ASSERT_TRUE(h1_);
  EXPECT_FALSE(find(*h1_, "s"));
  EXPECT_FALSE(find(*h1_, "d"));
  auto lostIds = [&] {
    std::set<std::string> ids;
    for (const LostVm& l : qemu(*h1_).lostVms()) {
      EXPECT_NE(l.reason.find("left running, not listed"), std::string::npos) << l.reason;
      ids.insert(l.vmId);
    }
    return ids;
  };
  EXPECT_EQ(lostIds(), (std::set<std::string>{"s", "d"}));
  const fs::path stateDir = root_ / "h1" / "run" / "vms";
  EXPECT_TRUE(fs::exists(stateDir / "s.vm.json"));

  ASSERT_EQ(::kill(pidS, SIGCONT), 0);  // answers again
  ASSERT_EQ(::kill(pidD, SIGKILL), 0);  // dies meanwhile
  ASSERT_EQ(waitpid(pidD, nullptr, 0), pidD);
  const TimeNs t = now();
  h1_->poll(t);  // the first poll: tries again 30 s later
  EXPECT_FALSE(find(*h1_, "s"));
  EXPECT_LE(h1_->nextEventTime(), t + 30 * kNsPerSec);
  h1_->poll(t + 31 * kNsPerSec);
  auto s = find(*h1_, "s");
  ASSERT_TRUE(s) << "listed once it answers";
  EXPECT_EQ(s->state, VmState::kRunning);
  EXPECT_EQ(*qemu(*h1_).qemuPid("s"), pidS);
  EXPECT_FALSE(find(*h1_, "d"));
  ASSERT_EQ(qemu(*h1_).lostVms().size(), 1u);
  const LostVm& d = qemu(*h1_).lostVms()[0];
  EXPECT_EQ(d.vmId, "d");
  EXPECT_NE(d.reason.find("exited"), std::string::npos) << d.reason;
  EXPECT_EQ(d.lostAtNs, t + 31 * kNsPerSec);
  EXPECT_FALSE(fs::exists(stateDir / "d.vm.json"));
  expectMemoryIntact(*h1_, "s");
  h1_->poll(now());
  EXPECT_TRUE(fs::exists(stateDir / "s.vm.json"));
}

// Ensures the cluster file's VMs are booted only at a host's first start: after one of them is
// gone (here destroyed; in the e2e test, migrated away) a restarted agent re-attaches the other,
// the same QEMU, and does not boot a second copy of the one that left.
TEST_F(QemuHypervisorTest, InitialVmsAreBootedOnlyAtTheFirstStart) {
  std::vector<VmSpec> vms(2);
  vms[0].id = "stays";
  vms[1].id = "leaves";
  for (VmSpec& v : vms) v.memoryBytes = 128 * kMiB;
  h1_.reset();  // SetUp's agent listed no VMs: this is the first start that does
  h1_ = make("h1", {{"initial-template", "idle"}}, vms);
  ASSERT_TRUE(h1_);
  ASSERT_TRUE(find(*h1_, "stays") && find(*h1_, "leaves"));
  const pid_t pid = *qemu(*h1_).qemuPid("stays");
  ASSERT_TRUE(h1_->destroy("leaves").isOk());

  h1_.reset();  // the agent restarts with the same cluster file
  h1_ = make("h1", {{"initial-template", "idle"}}, vms);
  ASSERT_TRUE(h1_);
  const auto inventory = h1_->inventory();
  ASSERT_EQ(inventory.size(), 1u);
  EXPECT_EQ(inventory[0].id, "stays");
  EXPECT_EQ(*qemu(*h1_).qemuPid("stays"), pid) << "re-attached, not booted again";
}

// Ensures a guest survives its agent process being killed with SIGKILL (no destructor runs):
// an agent started in a child process boots it and is killed; a new agent on the same
// directories lists it running, its memory intact, and destroys it. A corrupt state file beside
// it is a typed error naming the file that does not stop the guest's re-attach.
TEST_F(QemuHypervisorTest, GuestSurvivesSigkillOfItsAgentProcess) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t agent = fork();
  ASSERT_GE(agent, 0);
  if (agent == 0) {
    // The agent: boots k1 and waits to be killed.
    close(ready[0]);
    (void)h1_.release();  // not ours to tear down (the parent's objects)
    (void)h2_.release();
    auto hv = make("h3", {});
    CloneSpec spec;
    spec.vmId = "k1";
    spec.templateName = "dirty";
    spec.memoryBytes = 128 * kMiB;
    if (!hv || !hv->startClone(1, spec).isOk()) _exit(1);
    const auto deadline = std::chrono::steady_clock::now() + 200s;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const OperationEvent& e : hv->poll(now())) {
        if (e.kind != OperationEvent::Kind::kCompleted) continue;
        const char ok = e.status.isOk() ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1) _exit(1);
        for (;;) pause();
      }
      std::this_thread::sleep_for(10ms);
    }
    _exit(1);
  }
  close(ready[1]);
  char ok = 0;
  const bool booted = read(ready[0], &ok, 1) == 1 && ok == 'y';
  close(ready[0]);
  ASSERT_EQ(::kill(agent, SIGKILL), 0);
  ASSERT_EQ(waitpid(agent, nullptr, 0), agent);
  ASSERT_TRUE(booted) << "the agent in the child process did not boot k1";

  const fs::path stateDir = root_ / "h3" / "run" / "vms";
  std::ofstream(stateDir / "bad.vm.json") << "{\"id\": \"bad\", \"pid\": ";
  std::unique_ptr<Hypervisor>& h3 = h2_;  // in h2_'s place, so that TearDown kills its guests
  h3 = make("h3", {});
  ASSERT_TRUE(h3);
  auto k1 = find(*h3, "k1");
  ASSERT_TRUE(k1) << "the guest of the killed agent is listed";
  EXPECT_EQ(k1->state, VmState::kRunning);
  ASSERT_EQ(qemu(*h3).lostVms().size(), 1u);
  const std::string& why = qemu(*h3).lostVms()[0].reason;
  EXPECT_NE(why.find((stateDir / "bad.vm.json").string()), std::string::npos) << why;
  EXPECT_NE(why.find("corrupt"), std::string::npos) << why;
  EXPECT_TRUE(fs::exists(stateDir / "bad.vm.json.corrupt"));
  expectMemoryIntact(*h3, "k1");
  const pid_t pid = *qemu(*h3).qemuPid("k1");
  ASSERT_TRUE(h3->destroy("k1").isOk());
  EXPECT_TRUE(processGone(pid));
  EXPECT_TRUE(h3->inventory().empty());
}

// Ensures a live migration in flight when both agents restart is followed, not failed: QEMU
// migrates on while no agent watches, the new source agent lists the guest migrating out (the
// same QEMU), the repeated command (vrmd re-sends it, same id) attaches at the cap it carries,
// and the migration completes under that id with its observation from the first start; the
// guest runs on the destination with its memory intact. Then a suspend-copy-resume whose staged
// copy the old source agent carried is reported failed under its id after the restart (the
// guest running at the source, memory intact), since nothing carries the copy on.
TEST_F(QemuHypervisorTest, MigrationInFlightAcrossAnAgentRestartIsFollowed) {
  clone(*h1_, "m1", "dirty", 1);
  auto endpoint = h2_->prepareIncoming(*find(*h1_, "m1"));
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  MigrationSpec slow;
  slow.vmId = "m1";
  slow.destinationHost = "h2";
  slow.destinationEndpoint = *endpoint;
  slow.maxBandwidthBytesPerSec = 1.0 * kMiB;  // below the guest's dirty rate: still running below
  slow.downtimeLimitNs = 300 * kNsPerMs;
  const TimeNs startedNs = now();
  ASSERT_TRUE(h1_->startMigration(2, slow).isOk());
  pollFor(1500ms);
  ASSERT_EQ(find(*h1_, "m1")->state, VmState::kMigratingOut);
  EXPECT_EQ(qemu(*h1_).qmp("m1", "query-migrate")->value("status", ""), "active");
  const pid_t source = *qemu(*h1_).qemuPid("m1");

  h1_.reset();  // both agents go away mid-migration
  h2_.reset();
  h2_ = make("h2", {});  // the destination first: its guest still waits for the stream
  ASSERT_TRUE(h2_);
  auto waiting = find(*h2_, "m1");
  ASSERT_TRUE(waiting) << "the incoming guest is listed again";
  EXPECT_EQ(waiting->state, VmState::kIncoming);
  h1_ = make("h1", {});
  ASSERT_TRUE(h1_);
  auto m1 = find(*h1_, "m1");
  ASSERT_TRUE(m1) << "the source guest is listed again";
  EXPECT_EQ(m1->state, VmState::kMigratingOut);
  EXPECT_EQ(*qemu(*h1_).qemuPid("m1"), source);
  EXPECT_EQ(qemu(*h1_).qmp("m1", "query-migrate")->value("status", ""), "active");
  EXPECT_TRUE(qemu(*h1_).lostVms().empty());

  MigrationSpec repeated = slow;  // vrmd's repeat, at the cap a re-plan gave it meanwhile
  repeated.maxBandwidthBytesPerSec = 32.0 * kMiB;
  ASSERT_TRUE(h1_->startMigration(2, repeated).isOk()) << "the repeated command attaches";
  EXPECT_EQ(qemu(*h1_).qmp("m1", "query-migrate-parameters")->value("max-bandwidth", 0ll),
            static_cast<long long>(32 * kMiB));
  auto moved = runUntilDone(2, 120s);
  ASSERT_TRUE(moved.has_value()) << "the followed migration did not complete";
  ASSERT_TRUE(moved->status.isOk()) << moved->status.toString();
  ASSERT_TRUE(moved->migration.has_value());
  EXPECT_EQ(moved->migration->fromHost, "h1");
  EXPECT_EQ(moved->migration->toHost, "h2");
  EXPECT_GE(moved->migration->startNs, startedNs);
  EXPECT_LT(moved->migration->startNs, startedNs + 1 * kNsPerSec) << "the first start, kept";
  EXPECT_GT(moved->migration->endNs, moved->migration->startNs + 1500 * kNsPerMs);
  printObservation("followed across a restart", *moved->migration);
  EXPECT_FALSE(find(*h1_, "m1"));
  EXPECT_TRUE(processGone(source));
  EXPECT_FALSE(fs::exists(root_ / "h1" / "run" / "vms" / "m1.vm.json"));
  ASSERT_TRUE(h2_->finishIncoming("m1", true).isOk());
  expectMemoryIntact(*h2_, "m1");

  // Suspend-copy-resume back to h1, its staged copy crawling, and h2's agent restarts.
  auto back = h1_->prepareIncoming(*find(*h2_, "m1"));
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  MigrationSpec scr;
  scr.vmId = "m1";
  scr.destinationHost = "h1";
  scr.destinationEndpoint = *back;
  scr.mode = MigrationMode::kSuspendCopyResume;
  scr.maxBandwidthBytesPerSec = 256.0 * 1024;
  ASSERT_TRUE(h2_->startMigration(3, scr).isOk());
  pollFor(2000ms);
  ASSERT_EQ(find(*h2_, "m1")->state, VmState::kMigratingOut);
  h2_.reset();
  h2_ = make("h2", {});
  ASSERT_TRUE(h2_);
  EXPECT_EQ(find(*h2_, "m1")->state, VmState::kRunning);
  std::optional<OperationEvent> failed;
  for (OperationEvent& e : h2_->poll(now())) {
    if (e.opId == 3 && e.kind == OperationEvent::Kind::kCompleted) failed = std::move(e);
  }
  ASSERT_TRUE(failed.has_value()) << "the interrupted move is reported, under its id";
  EXPECT_EQ(failed->status.code(), StatusCode::kUnavailable);
  EXPECT_NE(failed->status.message().find("staged"), std::string::npos)
      << failed->status.toString();
  EXPECT_EQ(qemu(*h2_).qmp("m1", "query-status")->value("status", ""), "running");
  const Status aborted = h1_->finishIncoming("m1", false);  // vrmd aborts the destination
  EXPECT_TRUE(aborted.isOk() || aborted.code() == StatusCode::kNotFound) << aborted.toString();
  expectMemoryIntact(*h2_, "m1");
}

}  // namespace
}  // namespace vrm::vmscheduler
