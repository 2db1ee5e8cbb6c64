#include "sim_hypervisor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>

#include "sim_ground_truth.h"
#include "vrm/planner/migration_model.h"
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

std::unique_ptr<Hypervisor> makeSim(HostSpec spec = testHost(),
                                    std::map<std::string, std::string> params = {}) {
  HypervisorOptions options;
  options.host = std::move(spec);
  options.params = std::move(params);
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

const std::map<std::string, std::string> kRule = {{"ground_truth", "rule"}};

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
TEST(SimHypervisorTest, RuleLiveMigrationFollowsTheRule) {
  auto hv = makeSim(testHost(), kRule);
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
TEST(SimHypervisorTest, RuleSuspendCopyResumeDowntimeIncludesCopy) {
  auto hv = makeSim(testHost(), kRule);
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
TEST(SimHypervisorTest, RuleBandwidthLimitSlowsTheCopy) {
  auto hv = makeSim(testHost(), kRule);
  ASSERT_TRUE(
      hv->startMigration(1, migrateSpec("db", MigrationMode::kSuspendCopyResume, 5e8)).isOk());
  (void)hv->poll(kStart);
  // 4 GB at 500 MB/s = 8 s.
  const TimeNs total = 500 * kNsPerMs + 8 * kNsPerSec + 100 * kNsPerMs;
  EXPECT_FALSE(completionAt(*hv, 1, kStart + total - 1));
  auto done = completionAt(*hv, 1, kStart + total);
  ASSERT_TRUE(done && done->migration);
  EXPECT_DOUBLE_EQ(done->migration->bandwidthBytesPerSec, 5e8);

  auto hv2 = makeSim(testHost(), kRule);
  ASSERT_TRUE(
      hv2->startMigration(2, migrateSpec("db", MigrationMode::kSuspendCopyResume, 1e12)).isOk());
  (void)hv2->poll(kStart);
  auto fast = completionAt(*hv2, 2, kStart + 500 * kNsPerMs + 4 * kNsPerSec + 100 * kNsPerMs);
  ASSERT_TRUE(fast && fast->migration);
  EXPECT_DOUBLE_EQ(fast->migration->bandwidthBytesPerSec, 1e9);
}

// Ensures progress is reported once per tenth, with phases and bytes, and nextEventTime wakes
// the loop at each tenth.
TEST(SimHypervisorTest, RuleProgressIsReportedPerTenth) {
  auto hv = makeSim(testHost(), kRule);
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

// Ensures a sim host with a state file keeps its VMs across a restart of its agent, as a real
// hypervisor does: what moved away stays away, a migration in flight is gone (its VM is running
// on the source again), a clone in flight is gone, a prepared incoming VM is still prepared.
// (The fault campaigns restart agents mid-migration; without it a restarted sim host came back
// with its cluster-file VMs, duplicating every VM it had migrated away.)
TEST(SimHypervisorTest, StateFileKeepsVmsAcrossRestarts) {
  const std::string path =
      ::testing::TempDir() + "sim-state-" + std::to_string(::getpid()) + ".tsv";
  std::remove(path.c_str());
  {
    auto hv = makeSim(testHost(), {{"state_file", path}, {"ground_truth", "rule"}});
    ASSERT_TRUE(hv->startMigration(1, migrateSpec("db", MigrationMode::kLive)).isOk());
    hv->poll(kStart);
    hv->poll(kStart + 3600 * kNsPerSec);  // db has left h1
    ASSERT_FALSE(findVm(hv->inventory(), "db"));
    ASSERT_TRUE(hv->startMigration(2, migrateSpec("web", MigrationMode::kLive)).isOk());
    hv->poll(kStart + 3601 * kNsPerSec);  // web is migrating out when the agent dies
    VmInfo in;
    in.id = "app";
    in.cpuCores = 2;
    in.memoryBytes = 2 * kGB;
    ASSERT_TRUE(hv->prepareIncoming(in).isOk());
    CloneSpec c{"r1-0", "small", 1, kGB, "r1", 30 * kNsPerSec};
    ASSERT_TRUE(hv->startClone(3, c).isOk());
  }
  auto again = makeSim(testHost(), {{"state_file", path}});
  auto inv = again->inventory();
  EXPECT_FALSE(findVm(inv, "db")) << "a VM that migrated away must not come back";
  ASSERT_TRUE(findVm(inv, "web"));
  EXPECT_EQ(findVm(inv, "web")->state, VmState::kRunning);
  ASSERT_TRUE(findVm(inv, "app"));
  EXPECT_EQ(findVm(inv, "app")->state, VmState::kIncoming);
  EXPECT_FALSE(findVm(inv, "r1-0"));
  EXPECT_EQ(inv.size(), 2u);

  std::ofstream(path) << "garbage\n";
  HypervisorOptions options;
  options.host = testHost();
  options.params = {{"state_file", path}};
  auto bad = Hypervisor::create("sim", options);
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  std::remove(path.c_str());
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

// Ensures parking saves the VM's state at the disk rate and frees its cores and memory (another
// VM fits in its place), that the parked VM stays listed with its state file, and that unparking
// takes the state's read time, needs its room back, and runs it again; both are idempotent.
TEST(SimHypervisorTest, ParkFreesTheHostAndUnparkRestores) {
  HostSpec spec = testHost();
  spec.memoryBytes = 8 * kGB;  // web + db fill it
  auto hv = makeSim(spec, {{"disk_rate", "1e9"}});
  VmInfo big;
  big.id = "big";
  big.cpuCores = 2;
  big.memoryBytes = 4 * kGB;
  EXPECT_EQ(hv->prepareIncoming(big).status().code(), StatusCode::kRejected);

  ASSERT_TRUE(hv->startPark(1, "db").isOk());
  (void)hv->poll(kStart);
  EXPECT_EQ(hv->startMigration(2, migrateSpec("db", MigrationMode::kLive)).code(),
            StatusCode::kRejected)
      << "a VM being parked is busy";
  EXPECT_EQ(hv->destroy("db").code(), StatusCode::kRejected);
  // 0.5 s setup + 4 GB non-zero at 1 GB/s.
  const TimeNs parkNs = SimHypervisor::kSetupNs + 4 * kNsPerSec;
  EXPECT_FALSE(completionAt(*hv, 1, kStart + parkNs - 1));
  auto done = completionAt(*hv, 1, kStart + parkNs);
  ASSERT_TRUE(done);
  ASSERT_TRUE(done->status.isOk()) << done->status.toString();
  ASSERT_TRUE(done->migration);
  EXPECT_EQ(done->migration->mode, MigrationMode::kSuspend);
  EXPECT_EQ(done->migration->fromHost, "h1");
  EXPECT_EQ(done->migration->toHost, "h1");
  EXPECT_EQ(done->migration->saveNs, parkNs);
  EXPECT_EQ(done->migration->restoreNs, 0);
  EXPECT_EQ(done->migration->transferredBytes, 4 * kGB);
  EXPECT_EQ(done->migration->endNs - done->migration->startNs, parkNs);
  auto db = findVm(hv->inventory(), "db");
  ASSERT_TRUE(db);
  EXPECT_EQ(db->state, VmState::kParked);
  EXPECT_EQ(db->stateFile, "sim://h1/park/db");
  EXPECT_EQ(hv->resume("db").code(), StatusCode::kRejected) << "parked is not paused";

  // Parking again completes at once.
  ASSERT_TRUE(hv->startPark(3, "db").isOk());
  auto again = completionAt(*hv, 3, kStart + parkNs);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->status.isOk());

  // Its room is free: big fits; then db cannot come back until big leaves.
  ASSERT_TRUE(hv->prepareIncoming(big).isOk());
  ASSERT_TRUE(hv->finishIncoming("big", true).isOk());
  EXPECT_EQ(hv->startUnpark(4, "db").code(), StatusCode::kRejected);
  ASSERT_TRUE(hv->destroy("big").isOk());

  const TimeNs t = kStart + 100 * kNsPerSec;
  ASSERT_TRUE(hv->startUnpark(5, "db").isOk());
  (void)hv->poll(t);
  EXPECT_EQ(hv->prepareIncoming(big).status().code(), StatusCode::kRejected)
      << "an unparking VM holds its room";
  const TimeNs unparkNs = SimHypervisor::kCommitNs + 4 * kNsPerSec;
  auto back = completionAt(*hv, 5, t + unparkNs);
  ASSERT_TRUE(back);
  ASSERT_TRUE(back->status.isOk()) << back->status.toString();
  ASSERT_TRUE(back->migration);
  EXPECT_EQ(back->migration->restoreNs, unparkNs);
  EXPECT_EQ(back->migration->saveNs, 0);
  db = findVm(hv->inventory(), "db");
  EXPECT_EQ(db->state, VmState::kRunning);
  EXPECT_TRUE(db->stateFile.empty());
  ASSERT_TRUE(hv->startUnpark(6, "db").isOk());
  auto twice = completionAt(*hv, 6, t + unparkNs);
  ASSERT_TRUE(twice);
  EXPECT_TRUE(twice->status.isOk());

  EXPECT_EQ(hv->startPark(7, "nope").code(), StatusCode::kNotFound);
  EXPECT_EQ(hv->startUnpark(8, "nope").code(), StatusCode::kNotFound);
  HypervisorOptions bad;
  bad.host = testHost();
  bad.params = {{"disk_rate", "0"}};
  EXPECT_EQ(Hypervisor::create("sim", bad).status().code(), StatusCode::kInvalidArgument);
}

// Ensures a parked VM is still parked, with its state file, after the agent restarts (the state
// file keeps it), and can be unparked then.
TEST(SimHypervisorTest, ParkedVmSurvivesARestart) {
  const std::string path = ::testing::TempDir() + "sim-park-" + std::to_string(::getpid()) + ".tsv";
  std::remove(path.c_str());
  {
    auto hv = makeSim(testHost(), {{"state_file", path}});
    ASSERT_TRUE(hv->startPark(1, "web").isOk());
    (void)hv->poll(kStart);
    ASSERT_TRUE(completionAt(*hv, 1, kStart + 3600 * kNsPerSec));
  }
  auto again = makeSim(testHost(), {{"state_file", path}});
  auto web = findVm(again->inventory(), "web");
  ASSERT_TRUE(web);
  EXPECT_EQ(web->state, VmState::kParked);
  EXPECT_EQ(web->stateFile, "sim://h1/park/web");
  ASSERT_TRUE(again->startUnpark(2, "web").isOk());
  (void)again->poll(kStart);
  auto done = completionAt(*again, 2, kStart + 3600 * kNsPerSec);
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->status.isOk());
  EXPECT_EQ(findVm(again->inventory(), "web")->state, VmState::kRunning);
  std::remove(path.c_str());
}

// Runs one migration of `vm` on a fresh sim with `params` to completion and returns what it
// observed; the completion must come exactly at the observation's end, not a nanosecond before.
MigrationObservation migrateToEnd(const std::string& vm, MigrationMode mode,
                                  std::map<std::string, std::string> params,
                                  HostSpec spec = testHost()) {
  auto hv = makeSim(std::move(spec), std::move(params));
  EXPECT_TRUE(hv->startMigration(1, migrateSpec(vm, mode)).isOk());
  (void)hv->poll(kStart);
  const TimeNs end = hv->nextEventTime();
  TimeNs now = kStart;
  // Walk the wake-ups (tenths of progress, segment ends) until the completion.
  for (int i = 0; i < 100; ++i) {
    now = hv->nextEventTime();
    if (now == kTimeInfinity) break;
    EXPECT_FALSE(completionAt(*hv, 1, now - 1).has_value()) << i;
    if (auto done = completionAt(*hv, 1, now)) {
      EXPECT_TRUE(done->status.isOk()) << done->status.toString();
      EXPECT_TRUE(done->migration.has_value());
      if (done->migration) {
        EXPECT_EQ(done->migration->endNs, now);
        return *done->migration;
      }
      break;
    }
  }
  ADD_FAILURE() << "migration of " << vm << " did not complete (first wake-up " << end << ")";
  return {};
}

// Ensures the default ground truth reproduces an observation exactly for the same seed, and
// gives different measurements for a different seed.
TEST(SimGroundTruthTest, SameSeedReproducesDifferentSeedVaries) {
  const auto a = migrateToEnd("web", MigrationMode::kLive, {{"seed", "7"}});
  const auto b = migrateToEnd("web", MigrationMode::kLive, {{"seed", "7"}});
  const auto c = migrateToEnd("web", MigrationMode::kLive, {{"seed", "8"}});
  EXPECT_EQ(a.endNs, b.endNs);
  EXPECT_EQ(a.setupNs, b.setupNs);
  EXPECT_EQ(a.downtimeNs, b.downtimeNs);
  EXPECT_EQ(a.transferredBytes, b.transferredBytes);
  EXPECT_EQ(a.rounds, b.rounds);
  EXPECT_DOUBLE_EQ(a.bandwidthBytesPerSec, b.bandwidthBytesPerSec);
  EXPECT_DOUBLE_EQ(a.dirtyRateBytesPerSec, b.dirtyRateBytesPerSec);
  EXPECT_NE(a.endNs, c.endNs);
  EXPECT_NE(a.transferredBytes, c.transferredBytes);
  EXPECT_NE(a.setupNs, c.setupNs);
}

// Ensures a second migration of the same VM on the same host draws afresh (a host does not
// replay one outcome forever), while the sequence as a whole is reproducible.
TEST(SimGroundTruthTest, RepeatedMigrationsDrawAfresh) {
  auto run = [] {
    auto hv = makeSim(testHost(), {{"seed", "3"}});
    std::vector<TimeNs> totals;
    TimeNs now = kStart;
    for (OperationId op = 1; op <= 2; ++op) {
      EXPECT_TRUE(hv->startMigration(op, migrateSpec("web", MigrationMode::kLive)).isOk());
      (void)hv->poll(now);
      std::optional<OperationEvent> done;
      while (!done) {
        now = hv->nextEventTime();
        done = completionAt(*hv, op, now);
      }
      totals.push_back(done->migration->endNs - done->migration->startNs);
      VmInfo back;
      back.id = "web";
      back.cpuCores = 2;
      back.memoryBytes = 4 * kGB;
      back.nonzeroMemoryBytes = 2 * kGB;
      back.dirtyRateBytesPerSec = 1e8;
      EXPECT_TRUE(hv->prepareIncoming(back).isOk());  // the VM comes back for the second run
      EXPECT_TRUE(hv->finishIncoming("web", true).isOk());
    }
    return totals;
  };
  const auto first = run();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_NE(first[0], first[1]);
  EXPECT_EQ(run(), first);
}

// Ensures a live observation is complete and plausible: several pre-copy rounds, setup and
// downtime near their means, more bytes than the non-zero memory, goodput a little under the
// nominal rate, and a measured dirty rate around the VM's mean.
TEST(SimGroundTruthTest, LiveObservationIsCompleteAndPlausible) {
  const auto obs = migrateToEnd("web", MigrationMode::kLive, {});
  EXPECT_EQ(obs.vmId, "web");
  EXPECT_EQ(obs.mode, MigrationMode::kLive);
  EXPECT_EQ(obs.memoryBytes, 4 * kGB);
  EXPECT_EQ(obs.nonzeroMemoryBytes, 2 * kGB);
  EXPECT_EQ(obs.startNs, kStart);
  EXPECT_GE(obs.rounds, 3u);  // a 1 GB/s link against 100 MB/s of writes converges in rounds
  EXPECT_LE(obs.rounds, sim::kMaxPrecopyRounds + 1);
  EXPECT_GT(obs.setupNs, 200 * kNsPerMs);
  EXPECT_LT(obs.setupNs, 1500 * kNsPerMs);
  EXPECT_GT(obs.downtimeNs, 0);
  EXPECT_LT(obs.downtimeNs, 1 * kNsPerSec);
  EXPECT_GT(obs.transferredBytes, 2 * kGB);
  EXPECT_LT(obs.transferredBytes, 3 * kGB);
  EXPECT_GT(obs.bandwidthBytesPerSec, 0.88e9 - 1);
  EXPECT_LT(obs.bandwidthBytesPerSec, 0.98e9 + 1);
  EXPECT_GT(obs.dirtyRateBytesPerSec, 0.3e8);
  EXPECT_LT(obs.dirtyRateBytesPerSec, 3e8);
  EXPECT_GT(obs.endNs - obs.startNs, obs.setupNs + obs.downtimeNs);
}

// Ensures the sim is not the planner's model: over 20 seeds, suspend-copy-resume never takes
// exactly what the "simple" model predicts (0.5 s + non-zero memory / bandwidth + 0.1 s), but
// stays within a sane band of it, and is slower on average (goodput is below the nominal rate).
TEST(SimGroundTruthTest, ModelErrorIsVisibleButBounded) {
  auto model = planner::createMigrationModel("simple");
  ASSERT_TRUE(model.isOk()) << model.status().toString();
  planner::VmProfile vm;
  vm.memoryBytes = 4e9;
  vm.nonzeroMemoryBytes = 4e9;
  planner::LinkProfile link{1e9, 0.5, 0.1};
  auto predicted = (*model)->estimate(vm, link);
  ASSERT_TRUE(predicted.isOk());
  const double predictedS = predicted->totalTimeS;  // 4.6 s
  double sumRatio = 0;
  for (int seed = 1; seed <= 20; ++seed) {
    const auto obs =
        migrateToEnd("db", MigrationMode::kSuspendCopyResume, {{"seed", std::to_string(seed)}});
    const double observedS = nsToSeconds(obs.endNs - obs.startNs);
    EXPECT_GT(std::abs(observedS - predictedS), 1e-3) << "seed " << seed;
    EXPECT_GT(observedS, 0.8 * predictedS) << "seed " << seed;
    EXPECT_LT(observedS, 1.4 * predictedS) << "seed " << seed;
    EXPECT_EQ(obs.rounds, 1u);
    EXPECT_GT(obs.downtimeNs, obs.endNs - obs.startNs - obs.setupNs - 1);  // all but setup
    sumRatio += observedS / predictedS;
  }
  EXPECT_GT(sumRatio / 20, 1.0);
}

// Ensures the pre-copy loop stops as Xen does: a light writer converges (last dirty set at most
// 50 pages), a writer faster than the link is forced to stop by the round or volume limit, and a
// suspended VM needs one round and an empty stop-and-copy.
TEST(SimGroundTruthTest, PrecopyStopConditions) {
  sim::GroundTruthInput light{MigrationMode::kLive, 4e9, 2e9, 1e6, 1e9};
  sim::SimRandom r1(1);
  auto converged = sim::simulateMigration(light, r1);
  EXPECT_TRUE(converged.converged);
  EXPECT_LE(converged.stopCopyBytes, sim::kStopBytes);
  EXPECT_LT(converged.precopy.size(), sim::kMaxPrecopyRounds);

  sim::GroundTruthInput heavy{MigrationMode::kLive, 4e9, 4e9, 2e9, 1e9};
  sim::SimRandom r2(1);
  auto forced = sim::simulateMigration(heavy, r2);
  EXPECT_FALSE(forced.converged);
  EXPECT_LE(forced.precopy.size(), sim::kMaxPrecopyRounds);
  const double lastRound = forced.precopy.back().bytes;
  EXPECT_LE(forced.precopyBytes() - lastRound, sim::kMaxSentFactor * 4e9);
  EXPECT_GT(forced.stopCopyBytes, sim::kStopBytes);
  EXPECT_GT(forced.downtimeS(), 1.0);  // the working set is copied with the VM paused

  sim::GroundTruthInput paused{MigrationMode::kLive, 4e9, 2e9, 0, 1e9};
  sim::SimRandom r3(1);
  auto idle = sim::simulateMigration(paused, r3);
  EXPECT_TRUE(idle.converged);
  EXPECT_EQ(idle.precopy.size(), 1u);
  EXPECT_EQ(idle.rounds(), 2u);
  EXPECT_EQ(idle.stopCopyBytes, 0);
  EXPECT_DOUBLE_EQ(idle.downtimeS(), idle.commitS);
}

// Ensures progress goes through setup, copy and commit in order, with bytes never decreasing,
// and the completion's byte count matches the last progress total.
TEST(SimGroundTruthTest, ProgressPhasesInOrder) {
  auto hv = makeSim(testHost(), {{"seed", "11"}});
  ASSERT_TRUE(hv->startMigration(5, migrateSpec("web", MigrationMode::kLive)).isOk());
  std::vector<OperationEvent> events = hv->poll(kStart);
  for (int i = 0; i < 20 && hv->nextEventTime() != kTimeInfinity; ++i) {
    for (auto& e : hv->poll(hv->nextEventTime())) events.push_back(std::move(e));
  }
  ASSERT_GE(events.size(), 5u);
  ASSERT_EQ(events.back().kind, OperationEvent::Kind::kCompleted);
  const std::vector<std::string> order = {"setup", "copy", "commit"};
  std::size_t phase = 0;
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    const auto& e = events[i];
    ASSERT_EQ(e.kind, OperationEvent::Kind::kProgress);
    auto at = std::find(order.begin(), order.end(), e.phase);
    ASSERT_NE(at, order.end()) << e.phase;
    const auto index = static_cast<std::size_t>(at - order.begin());
    EXPECT_GE(index, phase);
    phase = index;
    EXPECT_GE(e.bytesSent, bytes);
    bytes = e.bytesSent;
    EXPECT_EQ(e.bytesTotal, events.back().migration->transferredBytes);
  }
}

// Ensures bad sim parameters are invalid-argument errors naming the parameter.
TEST(SimGroundTruthTest, BadParametersAreInvalid) {
  for (const auto& params :
       std::vector<std::map<std::string, std::string>>{{{"seed", "x"}},
                                                       {{"seed", "-1"}},
                                                       {{"ground_truth", "oracle"}},
                                                       {{"uri", "test:///"}}}) {
    HypervisorOptions options;
    options.host = testHost();
    options.params = params;
    auto hv = Hypervisor::create("sim", options);
    ASSERT_FALSE(hv.isOk());
    EXPECT_EQ(hv.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(hv.status().message().find(params.begin()->first), std::string::npos)
        << hv.status().message();
  }
}

// Ensures the cluster file's allow_live / allow_suspend reach the inventory (and so vrmd's
// planner) and travel with a VM that migrates.
TEST(SimHypervisorTest, AllowedModesAreReportedAndTravel) {
  HostSpec h = testHost();
  h.vms[0].allowLive = false;  // web
  auto hv = makeSim(h);
  const auto web = findVm(hv->inventory(), "web");
  ASSERT_TRUE(web.has_value());
  EXPECT_FALSE(web->allowLive);
  EXPECT_TRUE(web->allowSuspend);
  EXPECT_TRUE(findVm(hv->inventory(), "db")->allowLive);
  HostSpec other;
  other.name = "h2";
  other.cpuCores = 8;
  other.memoryBytes = 16 * kGB;
  other.nicBandwidthBytesPerSec = 1e9;
  auto h2 = makeSim(other);
  ASSERT_TRUE(h2->prepareIncoming(*web).isOk());
  ASSERT_TRUE(h2->finishIncoming("web", true).isOk());
  EXPECT_FALSE(findVm(h2->inventory(), "web")->allowLive);
}

// --- NIC sharing ---------------------------------------------------------------------------

// A host with a 1 GB/s NIC and two equal VMs "a" and "b" (2 GB non-zero, dirtying `dirty`).
HostSpec twinHost(double dirty) {
  HostSpec h;
  h.name = "h1";
  h.cpuCores = 8;
  h.memoryBytes = 16 * kGB;
  h.nicBandwidthBytesPerSec = 1e9;
  for (const char* id : {"a", "b"}) {
    VmSpec v;
    v.id = id;
    v.cpuCores = 2;
    v.memoryBytes = 4 * kGB;
    v.nonzeroMemoryBytes = 2 * kGB;
    v.dirtyRateBytesPerSec = dirty;
    h.vms.push_back(v);
  }
  return h;
}

// Starts migrations of `vms` (op ids 1, 2, ...) at kStart + the given offsets, polls at every
// wake-up, and returns the observations by VM id.
std::map<std::string, MigrationObservation> migrateAll(
    Hypervisor& hv, const std::vector<std::pair<std::string, TimeNs>>& vms, MigrationMode mode,
    std::vector<double> limits = {}) {
  std::map<std::string, MigrationObservation> out;
  std::map<OperationId, std::string> pending;
  std::size_t next = 0;
  TimeNs now = kStart;
  for (int i = 0; i < 1000 && (next < vms.size() || !pending.empty()); ++i) {
    while (next < vms.size() && kStart + vms[next].second <= now) {
      const OperationId op = next + 1;
      const double limit = next < limits.size() ? limits[next] : 0;
      EXPECT_TRUE(hv.startMigration(op, migrateSpec(vms[next].first, mode, limit)).isOk());
      pending[op] = vms[next].first;
      ++next;
    }
    for (auto& e : hv.poll(now)) {
      if (e.kind != OperationEvent::Kind::kCompleted) continue;
      EXPECT_TRUE(e.status.isOk()) << e.status.toString();
      if (e.migration) out[pending[e.opId]] = *e.migration;
      pending.erase(e.opId);
    }
    TimeNs wake = hv.nextEventTime();
    if (next < vms.size()) wake = std::min(wake, kStart + vms[next].second);
    if (wake == kTimeInfinity) break;
    now = std::max(now, wake);
  }
  EXPECT_TRUE(pending.empty());
  return out;
}

// Ensures max-min fair shares: equal when nobody is capped, a capped transfer keeps its cap and
// leaves the rest to the others, and transfers that fit together all get their caps.
TEST(SimNicSharingTest, FairSharesAreMaxMin) {
  EXPECT_EQ(sim::fairShares(1e9, {1e12, 1e12}), (std::vector<double>{5e8, 5e8}));
  EXPECT_EQ(sim::fairShares(1e9, {2e8, 1e12}), (std::vector<double>{2e8, 8e8}));
  EXPECT_EQ(sim::fairShares(1e9, {3e8, 3e8, 3e8}), (std::vector<double>{3e8, 3e8, 3e8}));
  const auto three = sim::fairShares(9e8, {1e8, 1e12, 1e12});
  EXPECT_DOUBLE_EQ(three[0], 1e8);
  EXPECT_DOUBLE_EQ(three[1], 4e8);
  EXPECT_DOUBLE_EQ(three[2], 4e8);
  EXPECT_TRUE(sim::fairShares(1e9, {}).empty());
}

// Ensures two equal suspend-copy-resume migrations started together share the NIC (rule ground
// truth, exact): each copies at half the rate, so each copy takes twice as long as alone, while
// setup and commit are unchanged.
TEST(SimNicSharingTest, TwoParallelMigrationsTakeTwiceAsLongRule) {
  auto alone = makeSim(twinHost(0), kRule);
  const auto one = migrateAll(*alone, {{"a", 0}}, MigrationMode::kSuspendCopyResume);
  ASSERT_EQ(one.size(), 1u);
  // 0.5 s setup + 2 GB at 1 GB/s + 0.1 s commit.
  EXPECT_EQ(one.at("a").endNs - one.at("a").startNs, 2'600 * kNsPerMs);

  auto shared = makeSim(twinHost(0), kRule);
  const auto two = migrateAll(*shared, {{"a", 0}, {"b", 0}}, MigrationMode::kSuspendCopyResume);
  ASSERT_EQ(two.size(), 2u);
  for (const char* id : {"a", "b"}) {
    const MigrationObservation& o = two.at(id);
    // 0.5 s setup + 2 GB at 0.5 GB/s + 0.1 s commit.
    EXPECT_EQ(o.endNs - o.startNs, 4'600 * kNsPerMs) << id;
    EXPECT_EQ(o.setupNs, 500 * kNsPerMs) << id;
    EXPECT_EQ(o.downtimeNs, 4'100 * kNsPerMs) << id;
    EXPECT_NEAR(o.bandwidthBytesPerSec, 5e8, 1) << id;  // the measured share, not the NIC
  }
}

// Ensures shares are recomputed as migrations start and end: "a" copies alone until "b" has
// finished its setup, then at half the rate, and alone again at the full rate once "a" is done.
TEST(SimNicSharingTest, SharesFollowMigrationsStartingAndEnding) {
  auto hv = makeSim(twinHost(0), kRule);
  const auto obs =
      migrateAll(*hv, {{"a", 0}, {"b", 1 * kNsPerSec}}, MigrationMode::kSuspendCopyResume);
  ASSERT_EQ(obs.size(), 2u);
  // a: setup to 0.5 s; alone to 1.5 s (1 GB); shared 1 GB at 0.5 GB/s to 3.5 s; commit 3.6 s.
  EXPECT_EQ(obs.at("a").endNs, kStart + 3'600 * kNsPerMs);
  // b: starts at 1 s, setup to 1.5 s; shared to 3.5 s (1 GB); alone 1 GB to 4.5 s; commit 4.6 s.
  EXPECT_EQ(obs.at("b").startNs, kStart + 1 * kNsPerSec);
  EXPECT_EQ(obs.at("b").endNs, kStart + 4'600 * kNsPerMs);
}

// Ensures a migration capped below its fair share keeps its cap and the other gets the rest.
TEST(SimNicSharingTest, CappedMigrationLeavesTheRestToTheOther) {
  auto hv = makeSim(twinHost(0), kRule);
  const auto obs =
      migrateAll(*hv, {{"a", 0}, {"b", 0}}, MigrationMode::kSuspendCopyResume, {2e8, 0});
  ASSERT_EQ(obs.size(), 2u);
  EXPECT_NEAR(obs.at("a").bandwidthBytesPerSec, 2e8, 1);
  // b: 2 GB at 0.8 GB/s = 2.5 s (alone: 2 s).
  EXPECT_EQ(obs.at("b").endNs - obs.at("b").startNs, 3'100 * kNsPerMs);
}

// Ensures a running migration's cap can be changed (vrmd caps running moves while a re-plan's
// moves share their NIC, then lifts the cap): the new cap applies from the last poll, the
// other migration gets what it leaves, and lifting it restores equal shares.
TEST(SimNicSharingTest, CapOfARunningMigrationCanBeChanged) {
  auto hv = makeSim(twinHost(0), kRule);
  ASSERT_TRUE(hv->startMigration(1, migrateSpec("a", MigrationMode::kSuspendCopyResume)).isOk());
  ASSERT_TRUE(hv->startMigration(2, migrateSpec("b", MigrationMode::kSuspendCopyResume)).isOk());
  std::map<OperationId, MigrationObservation> done;
  auto pollAt = [&](TimeNs t) {
    for (auto& e : hv->poll(t)) {
      if (e.kind == OperationEvent::Kind::kCompleted && e.migration) done[e.opId] = *e.migration;
    }
  };
  pollAt(kStart);
  // Setup to 0.5 s, then 0.5 GB/s each: 0.5 GB sent by 1.5 s.
  pollAt(kStart + 1'500 * kNsPerMs);
  ASSERT_TRUE(hv->setMigrationBandwidth("a", 2e8).isOk());
  // 1.5 - 2.5 s: a 0.2 GB (0.7 in all), b the other 0.8 GB/s (1.3 in all).
  pollAt(kStart + 2'500 * kNsPerMs);
  ASSERT_TRUE(hv->setMigrationBandwidth("a", 0).isOk());  // lifted: equal shares again
  for (TimeNs t = kStart + 2'500 * kNsPerMs; done.size() < 2 && t < kStart + 60 * kNsPerSec;) {
    t = std::max(t + 1, hv->nextEventTime());
    pollAt(t);
  }
  ASSERT_EQ(done.size(), 2u);
  // b: its last 0.7 GB at 0.5 GB/s to 3.9 s, commit to 4.0 s. a: 0.7 GB more by 3.9 s, its last
  // 0.6 GB alone at 1 GB/s to 4.5 s, commit to 4.6 s. (Both uncapped: 4.6 s each.)
  EXPECT_EQ(done.at(2).endNs, kStart + 4'000 * kNsPerMs);
  EXPECT_EQ(done.at(1).endNs, kStart + 4'600 * kNsPerMs);
  EXPECT_NEAR(done.at(1).bandwidthBytesPerSec, 5e8, 1e3);  // 2 GB over 4 s of copying
}

// Ensures changing a cap is refused with typed errors when there is nothing to change.
TEST(SimNicSharingTest, CapOfNoRunningMigrationIsRefused) {
  auto hv = makeSim(twinHost(0), kRule);
  EXPECT_EQ(hv->setMigrationBandwidth("nope", 1e8).code(), StatusCode::kNotFound);
  EXPECT_EQ(hv->setMigrationBandwidth("a", 1e8).code(), StatusCode::kRejected);
  ASSERT_TRUE(hv->startMigration(1, migrateSpec("a", MigrationMode::kLive)).isOk());
  EXPECT_EQ(hv->setMigrationBandwidth("a", -1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hv->setMigrationBandwidth("a", std::nan("")).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(hv->setMigrationBandwidth("a", 1e8).isOk());
}

// Ensures the seeded pre-copy ground truth shares the NIC too: two equal live migrations of
// dirtying VMs started together each take about twice as long as one alone (a little more: the
// slower rounds dirty more), deterministically for a seed.
TEST(SimNicSharingTest, TwoParallelLiveMigrationsTakeAboutTwiceAsLong) {
  const std::map<std::string, std::string> seeded = {{"seed", "5"}};
  auto alone = makeSim(twinHost(2e7), seeded);
  const auto one = migrateAll(*alone, {{"a", 0}}, MigrationMode::kLive);
  ASSERT_EQ(one.size(), 1u);
  const double oneS = nsToSeconds(one.at("a").endNs - one.at("a").startNs);

  auto runShared = [&] {
    auto hv = makeSim(twinHost(2e7), seeded);
    return migrateAll(*hv, {{"a", 0}, {"b", 0}}, MigrationMode::kLive);
  };
  const auto two = runShared();
  ASSERT_EQ(two.size(), 2u);
  for (const char* id : {"a", "b"}) {
    const MigrationObservation& o = two.at(id);
    const double ratio = nsToSeconds(o.endNs - o.startNs) / oneS;
    std::printf("[ measured ] vm %s: %.3f s alone, %.3f s with a parallel twin (x%.2f)\n", id, oneS,
                nsToSeconds(o.endNs - o.startNs), ratio);
    EXPECT_GT(ratio, 1.6) << id;
    EXPECT_LT(ratio, 2.4) << id;
    EXPECT_LT(o.bandwidthBytesPerSec, 0.55e9) << id;  // about half the NIC
    EXPECT_GT(o.bandwidthBytesPerSec, 0.40e9) << id;
  }
  // The same seed and start times give the same outcome.
  const auto again = runShared();
  for (const char* id : {"a", "b"}) {
    EXPECT_EQ(again.at(id).endNs, two.at(id).endNs) << id;
    EXPECT_EQ(again.at(id).transferredBytes, two.at(id).transferredBytes) << id;
  }
  // Alone, the run is the constant-rate ground truth exactly (same draws).
  sim::GroundTruthInput in{MigrationMode::kLive, 4e9, 2e9, 2e7, 1e9};
  sim::SimRandom random(sim::migrationSeed(5, "a", 0));
  const auto truth = sim::simulateMigration(in, random);
  EXPECT_EQ(one.at("a").transferredBytes,
            static_cast<std::uint64_t>(std::llround(truth.transferredBytes())));
  EXPECT_EQ(one.at("a").rounds, truth.rounds());
  EXPECT_NEAR(nsToSeconds(one.at("a").endNs - one.at("a").startNs), truth.totalS(), 1e-8);
}

}  // namespace
}  // namespace vrm::vmscheduler
