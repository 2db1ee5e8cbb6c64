#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler {
namespace {

constexpr std::uint64_t kGB = 1'000'000'000;
constexpr TimeNs kStart = 1'000 * kNsPerSec;

// A host with 8 cores, 16 GB, a 1 GB/s NIC and two VMs:
//   web: 2 cores, 4 GB memory, 2 GB non-zero, dirties 100 MB/s;  db: 2 cores, 4 GB.
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

std::unique_ptr<Hypervisor> makeSim(HostSpec spec = testHost()) {
  HypervisorOptions options;
  options.host = std::move(spec);
  auto hv = Hypervisor::create("sim", options);
  EXPECT_TRUE(hv.isOk()) << hv.status().toString();
  return std::move(hv).value();
}

// A copy, not a pointer: callers pass a temporary inventory().
std::optional<VmInfo> findVm(const std::vector<VmInfo>& vms, const std::string& id) {
  auto it = std::find_if(vms.begin(), vms.end(), [&](const VmInfo& v) { return v.id == id; });
  if (it == vms.end()) return std::nullopt;
  return *it;
}

MigrationSpec migrateSpec(const std::string& vm, MigrationMode mode, double maxBw = 0) {
  MigrationSpec s;
  s.vmId = vm;
  s.destinationHost = "h2";
  s.destinationEndpoint = "sim://h2/" + vm;
  s.mode = mode;
  s.maxBandwidthBytesPerSec = maxBw;
  return s;
}

// Polls at `now` and returns the completion event of `op`, if any.
std::optional<OperationEvent> completionAt(Hypervisor& hv, OperationId op, TimeNs now) {
  for (auto& e : hv.poll(now)) {
    if (e.opId == op && e.kind == OperationEvent::Kind::kCompleted) return e;
  }
  return std::nullopt;
}

// Ensures an unknown backend name is an invalid-argument error, not a crash or a default.
TEST(SimHypervisorTest, UnknownBackendIsRejected) {
  HypervisorOptions options;
  options.host = testHost();
  auto hv = Hypervisor::create("vmware-esx-classic", options);
  ASSERT_FALSE(hv.isOk());
  EXPECT_EQ(hv.status().code(), StatusCode::kInvalidArgument);
}

// Ensures the initial VMs come from the HostSpec, running, with the host's capacity reported.
TEST(SimHypervisorTest, InventoryComesFromHostSpec) {
  auto hv = makeSim();
  EXPECT_EQ(hv->backendName(), "sim");
  EXPECT_EQ(hv->hostInfo().name, "h1");
  EXPECT_EQ(hv->hostInfo().memoryBytes, 16 * kGB);
  auto vms = hv->inventory();
  ASSERT_EQ(vms.size(), 2u);
  auto web = findVm(vms, "web");
  ASSERT_TRUE(web.has_value());
  EXPECT_EQ(web->state, VmState::kRunning);
  EXPECT_EQ(web->nonzeroMemoryBytes, 2 * kGB);
  EXPECT_DOUBLE_EQ(web->dirtyRateBytesPerSec, 1e8);
  EXPECT_EQ(hv->nextEventTime(), kTimeInfinity);
}

// Ensures a host spec whose VMs overflow its memory is refused at creation.
TEST(SimHypervisorTest, OverfullHostSpecIsRejected) {
  HostSpec h = testHost();
  h.memoryBytes = 6 * kGB;
  HypervisorOptions options;
  options.host = h;
  auto hv = Hypervisor::create("sim", options);
  ASSERT_FALSE(hv.isOk());
  EXPECT_EQ(hv.status().code(), StatusCode::kInvalidArgument);
}

// Ensures a live migration lasts setup + copy + one dirty pass + commit, with commit-only
// downtime, and that the VM leaves the inventory when it completes.
TEST(SimHypervisorTest, LiveMigrationFollowsTheRule) {
  auto hv = makeSim();
  ASSERT_TRUE(hv->startMigration(7, migrateSpec("web", MigrationMode::kLive)).isOk());
  EXPECT_EQ(findVm(hv->inventory(), "web")->state, VmState::kMigratingOut);
  EXPECT_LE(hv->nextEventTime(), kStart);  // not started: poll now

  // copy 2 GB / 1 GB/s = 2 s; dirty pass 100 MB/s * 2 s = 200 MB = 0.2 s.
  const TimeNs total = 500 * kNsPerMs + 2 * kNsPerSec + 200 * kNsPerMs + 100 * kNsPerMs;
  EXPECT_FALSE(completionAt(*hv, 7, kStart));
  EXPECT_FALSE(completionAt(*hv, 7, kStart + total - 1));
  ASSERT_TRUE(findVm(hv->inventory(), "web").has_value());
  auto done = completionAt(*hv, 7, kStart + total);
  ASSERT_TRUE(done);
  ASSERT_TRUE(done->status.isOk()) << done->status.toString();
  ASSERT_TRUE(done->migration);
  const MigrationObservation& obs = *done->migration;
  EXPECT_EQ(obs.vmId, "web");
  EXPECT_EQ(obs.fromHost, "h1");
  EXPECT_EQ(obs.toHost, "h2");
  EXPECT_EQ(obs.startNs, kStart);
  EXPECT_EQ(obs.endNs, kStart + total);
  EXPECT_EQ(obs.setupNs, 500 * kNsPerMs);
  EXPECT_EQ(obs.downtimeNs, 100 * kNsPerMs);
  EXPECT_EQ(obs.transferredBytes, 2 * kGB + 200'000'000u);
  EXPECT_EQ(obs.rounds, 2u);
  EXPECT_DOUBLE_EQ(obs.bandwidthBytesPerSec, 1e9);
  EXPECT_FALSE(findVm(hv->inventory(), "web").has_value());
  EXPECT_EQ(hv->nextEventTime(), kTimeInfinity);
}

// Ensures suspend-copy-resume sends the memory once and counts the whole copy as downtime.
TEST(SimHypervisorTest, SuspendCopyResumeDowntimeIncludesCopy) {
  auto hv = makeSim();
  ASSERT_TRUE(hv->startMigration(1, migrateSpec("web", MigrationMode::kSuspendCopyResume)).isOk());
  (void)hv->poll(kStart);
  const TimeNs total = 500 * kNsPerMs + 2 * kNsPerSec + 100 * kNsPerMs;
  auto done = completionAt(*hv, 1, kStart + total);
  ASSERT_TRUE(done && done->migration);
  EXPECT_EQ(done->migration->downtimeNs, 2 * kNsPerSec + 100 * kNsPerMs);
  EXPECT_EQ(done->migration->transferredBytes, 2 * kGB);
  EXPECT_EQ(done->migration->rounds, 1u);
  EXPECT_EQ(done->migration->mode, MigrationMode::kSuspendCopyResume);
}

// Ensures a bandwidth limit below the NIC slows the copy, and one above it changes nothing.
TEST(SimHypervisorTest, BandwidthLimitSlowsTheCopy) {
  auto hv = makeSim();
  ASSERT_TRUE(
      hv->startMigration(1, migrateSpec("db", MigrationMode::kSuspendCopyResume, 5e8)).isOk());
  (void)hv->poll(kStart);
  // 4 GB at 500 MB/s = 8 s.
  const TimeNs total = 500 * kNsPerMs + 8 * kNsPerSec + 100 * kNsPerMs;
  EXPECT_FALSE(completionAt(*hv, 1, kStart + total - 1));
  auto done = completionAt(*hv, 1, kStart + total);
  ASSERT_TRUE(done && done->migration);
  EXPECT_DOUBLE_EQ(done->migration->bandwidthBytesPerSec, 5e8);

  auto hv2 = makeSim();
  ASSERT_TRUE(
      hv2->startMigration(2, migrateSpec("db", MigrationMode::kSuspendCopyResume, 1e12)).isOk());
  (void)hv2->poll(kStart);
  auto fast = completionAt(*hv2, 2, kStart + 500 * kNsPerMs + 4 * kNsPerSec + 100 * kNsPerMs);
  ASSERT_TRUE(fast && fast->migration);
  EXPECT_DOUBLE_EQ(fast->migration->bandwidthBytesPerSec, 1e9);
}

// Ensures progress is reported once per tenth, with phases and bytes, and nextEventTime wakes
// the loop at each tenth.
TEST(SimHypervisorTest, ProgressIsReportedPerTenth) {
  auto hv = makeSim();
  ASSERT_TRUE(hv->startMigration(3, migrateSpec("db", MigrationMode::kSuspendCopyResume)).isOk());
  // total = 0.5 + 4 + 0.1 = 4.6 s; a tenth is 0.46 s.
  auto first = hv->poll(kStart);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].kind, OperationEvent::Kind::kProgress);
  EXPECT_EQ(first[0].phase, "setup");
  EXPECT_EQ(first[0].bytesSent, 0u);
  EXPECT_EQ(first[0].bytesTotal, 4 * kGB);
  EXPECT_EQ(hv->nextEventTime(), kStart + 460 * kNsPerMs);
  EXPECT_TRUE(hv->poll(kStart + 100 * kNsPerMs).empty());  // same tenth: nothing new

  auto half = hv->poll(kStart + 2'500 * kNsPerMs);  // 0.5 s setup + 2 s of the 4 s copy
  ASSERT_EQ(half.size(), 1u);
  EXPECT_EQ(half[0].phase, "copy");
  EXPECT_EQ(half[0].bytesSent, 2 * kGB);
  EXPECT_NEAR(half[0].fraction, 2.5 / 4.6, 1e-9);
}

// Ensures commands for a VM the host does not have are not-found errors.
TEST(SimHypervisorTest, UnknownVmIsNotFound) {
  auto hv = makeSim();
  EXPECT_EQ(hv->startMigration(1, migrateSpec("ghost", MigrationMode::kLive)).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(hv->suspend("ghost").code(), StatusCode::kNotFound);
  EXPECT_EQ(hv->resume("ghost").code(), StatusCode::kNotFound);
  EXPECT_EQ(hv->destroy("ghost").code(), StatusCode::kNotFound);
  EXPECT_EQ(hv->finishIncoming("ghost", true).code(), StatusCode::kNotFound);
}

// Ensures a VM that is migrating out cannot be migrated, suspended or destroyed again.
TEST(SimHypervisorTest, MigratingVmIsBusy) {
  auto hv = makeSim();
  ASSERT_TRUE(hv->startMigration(1, migrateSpec("web", MigrationMode::kLive)).isOk());
  Status again = hv->startMigration(2, migrateSpec("web", MigrationMode::kLive));
  EXPECT_EQ(again.code(), StatusCode::kRejected);
  EXPECT_NE(again.message().find("busy"), std::string::npos) << again.message();
  EXPECT_EQ(hv->suspend("web").code(), StatusCode::kRejected);
  EXPECT_EQ(hv->destroy("web").code(), StatusCode::kRejected);
}

// Ensures impossible migrations (to itself, no destination, negative bandwidth) are
// invalid-argument and leave the VM running.
TEST(SimHypervisorTest, ImpossibleMigrationIsInvalid) {
  auto hv = makeSim();
  MigrationSpec self = migrateSpec("web", MigrationMode::kLive);
  self.destinationHost = "h1";
  EXPECT_EQ(hv->startMigration(1, self).code(), StatusCode::kInvalidArgument);
  MigrationSpec none = migrateSpec("web", MigrationMode::kLive);
  none.destinationHost.clear();
  EXPECT_EQ(hv->startMigration(1, none).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hv->startMigration(1, migrateSpec("web", MigrationMode::kLive, -1)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(findVm(hv->inventory(), "web")->state, VmState::kRunning);
}

// Ensures prepareIncoming reserves capacity as an incoming VM, commit makes it run, drop frees
// it, and duplicates or VMs that do not fit are rejected.
TEST(SimHypervisorTest, PrepareIncomingReservesAndFinishes) {
  auto hv = makeSim();  // 8 GB and 4 cores free
  VmInfo in;
  in.id = "app";
  in.cpuCores = 2;
  in.memoryBytes = 6 * kGB;
  in.nonzeroMemoryBytes = 3 * kGB;
  auto endpoint = hv->prepareIncoming(in);
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  EXPECT_EQ(*endpoint, "sim://h1/app");
  EXPECT_EQ(findVm(hv->inventory(), "app")->state, VmState::kIncoming);

  // Only 2 GB left now.
  VmInfo big = in;
  big.id = "big";
  big.memoryBytes = 3 * kGB;
  auto noRoom = hv->prepareIncoming(big);
  ASSERT_FALSE(noRoom.isOk());
  EXPECT_EQ(noRoom.status().code(), StatusCode::kRejected);
  EXPECT_NE(noRoom.status().message().find("memory"), std::string::npos);

  auto dup = hv->prepareIncoming(in);
  ASSERT_FALSE(dup.isOk());
  EXPECT_EQ(dup.status().code(), StatusCode::kRejected);
  EXPECT_NE(dup.status().message().find("already exists"), std::string::npos);

  EXPECT_EQ(hv->finishIncoming("web", true).code(), StatusCode::kRejected);  // not incoming
  ASSERT_TRUE(hv->finishIncoming("app", true).isOk());
  EXPECT_EQ(findVm(hv->inventory(), "app")->state, VmState::kRunning);

  VmInfo small = in;
  small.id = "small";
  small.memoryBytes = 1 * kGB;
  ASSERT_TRUE(hv->prepareIncoming(small).isOk());
  ASSERT_TRUE(hv->finishIncoming("small", false).isOk());
  EXPECT_FALSE(findVm(hv->inventory(), "small").has_value());
}

// Ensures cores are checked as well as memory.
TEST(SimHypervisorTest, PrepareIncomingChecksCores) {
  auto hv = makeSim();  // 4 cores free
  VmInfo in;
  in.id = "wide";
  in.cpuCores = 5;
  in.memoryBytes = 1 * kGB;
  auto r = hv->prepareIncoming(in);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), StatusCode::kRejected);
  EXPECT_NE(r.status().message().find("cores"), std::string::npos);
}

// Ensures a clone is listed as cloning for exactly bootTimeNs, then runs with its handle.
TEST(SimHypervisorTest, CloneTakesBootTime) {
  auto hv = makeSim();
  CloneSpec c{"r1-0", "bmi-decoder", 2, 4 * kGB, "r1", 30 * kNsPerSec};
  ASSERT_TRUE(hv->startClone(9, c).isOk());
  EXPECT_EQ(findVm(hv->inventory(), "r1-0")->state, VmState::kCloning);
  EXPECT_FALSE(completionAt(*hv, 9, kStart));
  EXPECT_FALSE(completionAt(*hv, 9, kStart + 30 * kNsPerSec - 1));
  auto done = completionAt(*hv, 9, kStart + 30 * kNsPerSec);
  ASSERT_TRUE(done);
  ASSERT_TRUE(done->status.isOk());
  ASSERT_TRUE(done->clone);
  EXPECT_EQ(done->clone->vmId, "r1-0");
  EXPECT_EQ(done->clone->host, "h1");
  EXPECT_EQ(done->clone->address, "r1-0.h1.sim");
  EXPECT_EQ(done->clone->account, "vrm");
  auto vm = findVm(hv->inventory(), "r1-0");
  ASSERT_TRUE(vm.has_value());
  EXPECT_EQ(vm->state, VmState::kRunning);
  EXPECT_EQ(vm->reservationId, "r1");
  EXPECT_EQ(vm->templateName, "bmi-decoder");
}

// Ensures clones that clash with an existing id or do not fit are rejected, while repeating a
// finished clone returns its handle again.
TEST(SimHypervisorTest, CloneRejectsClashesAndRepeatsFinishedClones) {
  auto hv = makeSim();
  CloneSpec clash{"web", "bmi-decoder", 1, 1 * kGB, "r1", kNsPerSec};
  Status s = hv->startClone(1, clash);
  EXPECT_EQ(s.code(), StatusCode::kRejected);
  EXPECT_NE(s.message().find("already exists"), std::string::npos);

  CloneSpec huge{"r1-0", "bmi-decoder", 1, 9 * kGB, "r1", kNsPerSec};
  EXPECT_EQ(hv->startClone(2, huge).code(), StatusCode::kRejected);
  CloneSpec empty{"r1-0", "bmi-decoder", 1, 0, "r1", kNsPerSec};
  EXPECT_EQ(hv->startClone(3, empty).code(), StatusCode::kInvalidArgument);

  CloneSpec ok{"r1-0", "bmi-decoder", 1, 1 * kGB, "r1", 0};
  ASSERT_TRUE(hv->startClone(4, ok).isOk());
  ASSERT_TRUE(completionAt(*hv, 4, kStart));  // zero boot time: done at the first poll
  ASSERT_TRUE(hv->startClone(5, ok).isOk());
  auto again = completionAt(*hv, 5, kStart);
  ASSERT_TRUE(again && again->clone);
  EXPECT_EQ(again->clone->address, "r1-0.h1.sim");
  EXPECT_EQ(hv->inventory().size(), 3u);
}

// Ensures destroying a VM still cloning removes it and completes its clone as rejected.
TEST(SimHypervisorTest, DestroyWhileCloningCompletesTheClone) {
  auto hv = makeSim();
  CloneSpec c{"r1-0", "bmi-decoder", 1, 1 * kGB, "r1", 10 * kNsPerSec};
  ASSERT_TRUE(hv->startClone(4, c).isOk());
  (void)hv->poll(kStart);
  ASSERT_TRUE(hv->destroy("r1-0").isOk());
  auto done = completionAt(*hv, 4, kStart + 1);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status.code(), StatusCode::kRejected);
  EXPECT_FALSE(findVm(hv->inventory(), "r1-0").has_value());
  EXPECT_EQ(hv->nextEventTime(), kTimeInfinity);
}

// Ensures suspend and resume toggle the state and are idempotent.
TEST(SimHypervisorTest, SuspendAndResume) {
  auto hv = makeSim();
  ASSERT_TRUE(hv->suspend("db").isOk());
  EXPECT_EQ(findVm(hv->inventory(), "db")->state, VmState::kSuspended);
  ASSERT_TRUE(hv->suspend("db").isOk());
  ASSERT_TRUE(hv->resume("db").isOk());
  EXPECT_EQ(findVm(hv->inventory(), "db")->state, VmState::kRunning);
  ASSERT_TRUE(hv->resume("db").isOk());
  ASSERT_TRUE(hv->destroy("db").isOk());
  EXPECT_FALSE(findVm(hv->inventory(), "db").has_value());
}

}  // namespace
}  // namespace vrm::vmscheduler
