// vrmd's planner learns from the migrations it watches: a cluster whose migrations take twice
// the default model's time plus a second gets plans that say so once enough were observed.
#include "vrm/manager/calibrating_planner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <utility>

#include "manager_fixture.h"

namespace vrm::manager {
namespace {

constexpr double kGiB = 1024.0 * 1024 * 1024;
constexpr double kNic = 125e6;

// A migration as this cluster really does it: 2x the default qemu-precopy time, + 1 s setup.
MigrationObservation observed(double memoryGiB, int i) {
  auto model = std::move(*planner::createMigrationModel("qemu-precopy"));
  planner::VmProfile vm;
  vm.memoryBytes = memoryGiB * kGiB;
  vm.nonzeroMemoryBytes = vm.memoryBytes / 2;
  planner::LinkProfile link;
  link.bandwidthBytesPerSec = kNic;
  const double seconds = 2 * model->estimate(vm, link)->totalTimeS + 1.0;
  MigrationObservation o;
  o.vmId = "v" + std::to_string(i);
  o.fromHost = "a";
  o.toHost = "b";
  o.mode = MoveMode::kLive;
  o.memoryBytes = static_cast<std::uint64_t>(vm.memoryBytes);
  o.nonzeroMemoryBytes = static_cast<std::uint64_t>(vm.nonzeroMemoryBytes);
  o.startNs = 1'000 * kNsPerSec;
  o.endNs = o.startNs + static_cast<TimeNs>(seconds * 1e9);
  o.bandwidthBytesPerSec = kNic / 2;  // measured goodput: the nominal NIC is what counts
  return o;
}

planner::VacateRequest oneVmVacate(double memoryGiB) {
  planner::VacateRequest req;
  for (const char* name : {"a", "b"}) {
    planner::HostSnapshot h;
    h.name = name;
    h.cpuCores = 32;
    h.memoryBytes = static_cast<std::uint64_t>(64 * kGiB);
    h.freeCpuCores = 32;
    h.freeMemoryBytes = h.memoryBytes;
    h.nicBandwidthBytesPerSec = kNic;
    req.hosts.push_back(h);
  }
  planner::VmSnapshot vm;
  vm.id = "x";
  vm.host = "a";
  vm.memoryBytes = static_cast<std::uint64_t>(memoryGiB * kGiB);
  vm.nonzeroMemoryBytes = vm.memoryBytes / 2;
  req.vms.push_back(vm);
  req.hostsToVacate = {"a"};
  req.reservationStartNs = 100'000 * kNsPerSec;
  req.reservationEndNs = req.reservationStartNs + 3600 * kNsPerSec;
  req.nowNs = 1'000 * kNsPerSec;
  return req;
}

std::unique_ptr<CalibratingPlanner> makePlanner() {
  CalibratingPlannerOptions options;
  options.nicBandwidthByHost = {{"a", kNic}, {"b", kNic}};
  options.minObservations = 5;
  options.refitEvery = 10;
  options.dirtyRateQuantile = 0;  // at the current sample unless a test asks otherwise
  return std::move(*CalibratingPlanner::create(options));
}

// Ensures plans follow the observed cluster once the live model is fitted: before, the move
// is predicted at the default model's time; after five observations, at the cluster's.
TEST(CalibratingPlannerTest, PlansFollowObservedMigrations) {
  auto planner = makePlanner();
  const TimeNs before = planner->plan(oneVmVacate(6))->moves.at(0).endOffsetNs;
  const double truth = nsToSeconds(observed(6, 0).endNs - observed(6, 0).startNs);
  EXPECT_LT(nsToSeconds(before), 0.6 * truth) << "the default model does not know this cluster";

  std::vector<MigrationObservation> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(observed(1 + i, i));
  planner->observe(batch);
  EXPECT_TRUE(planner->fitted().empty()) << "4 < minObservations";
  planner->observe({observed(8, 4)});
  ASSERT_EQ(planner->fitted().count("live"), 1u);
  EXPECT_EQ(planner->fitted().at("live").observations, 5);
  ASSERT_TRUE(planner->fitted().at("live").r2TotalTime.has_value());
  EXPECT_GT(*planner->fitted().at("live").r2TotalTime, 0.99);

  const auto m = planner->plan(oneVmVacate(6))->moves.at(0);
  EXPECT_NEAR(nsToSeconds(m.endOffsetNs - m.startOffsetNs), truth, 0.05 * truth);
}

// Ensures observations that cannot teach anything (no duration, no memory, suspensions) are
// ignored, and a mode without enough observations keeps its default model.
TEST(CalibratingPlannerTest, UselessObservationsAreIgnored) {
  auto planner = makePlanner();
  const TimeNs before = planner->plan(oneVmVacate(6))->moves.at(0).endOffsetNs;
  std::vector<MigrationObservation> junk;
  for (int i = 0; i < 20; ++i) {
    MigrationObservation o = observed(2, i);
    if (i % 3 == 0) o.endNs = o.startNs;
    if (i % 3 == 1) o.memoryBytes = 0;
    if (i % 3 == 2) o.mode = MoveMode::kSuspend;
    junk.push_back(o);
  }
  planner->observe(junk);
  EXPECT_TRUE(planner->fitted().empty());
  EXPECT_EQ(planner->plan(oneVmVacate(6))->moves.at(0).endOffsetNs, before);
}

// Ensures suspend-copy-resume observations fit the SCR model and leave the live one alone.
TEST(CalibratingPlannerTest, ModesAreFittedSeparately) {
  auto planner = makePlanner();
  std::vector<MigrationObservation> scr;
  for (int i = 0; i < 6; ++i) {
    MigrationObservation o = observed(1 + i, i);
    o.mode = MoveMode::kSuspendCopyResume;
    scr.push_back(o);
  }
  planner->observe(scr);
  EXPECT_EQ(planner->fitted().count("suspend-copy-resume"), 1u);
  EXPECT_EQ(planner->fitted().at("suspend-copy-resume").model, "qemu-scr");
  EXPECT_EQ(planner->fitted().count("live"), 0u);
}

// A staged suspend-copy-resume as a host with a slow restore does it: the default qemu-scr
// phases but 1.2 s more to restore, the phases measured separately like the qemu backend does.
MigrationObservation stagedScr(double memoryGiB, int i) {
  const double defaultRestoreS =
      (*planner::createMigrationModel("qemu-scr"))->parameters().at("restore_base_s");
  auto model = std::move(
      *planner::createMigrationModel("qemu-scr", {{"restore_base_s", defaultRestoreS + 1.2}}));
  planner::VmProfile vm;
  vm.memoryBytes = memoryGiB * kGiB;
  vm.nonzeroMemoryBytes = vm.memoryBytes / 2;
  planner::LinkProfile link;
  link.bandwidthBytesPerSec = kNic;
  const auto e = *model->estimate(vm, link);
  MigrationObservation o = observed(memoryGiB, i);
  o.mode = MoveMode::kSuspendCopyResume;
  auto phase = [&](const char* name) {
    for (const auto& p : e.phases) {
      if (p.name == name) return static_cast<TimeNs>(p.seconds * 1e9);
    }
    return TimeNs{0};
  };
  o.saveNs = phase("save");
  o.copyNs = phase("copy");
  o.restoreNs = phase("restore");
  o.endNs = o.startNs + static_cast<TimeNs>(e.totalTimeS * 1e9);
  o.downtimeNs = o.endNs - o.startNs;
  o.transferredBytes = static_cast<std::uint64_t>(e.transferredBytes);
  return o;
}

// Ensures suspend-copy-resume is fitted per phase from the stored phases: after five staged
// moves the plan of an unseen size predicts their restore, and the held-out report shows the
// defaults' error on the first five (the restore's 1.2 s) and none after the fit.
TEST(CalibratingPlannerTest, SuspendCopyResumeIsFittedPerPhase) {
  auto planner = makePlanner();
  for (int i = 0; i < 5; ++i) planner->observe({stagedScr(1 + i, i)});
  ASSERT_EQ(planner->fitted().count("suspend-copy-resume"), 1u);
  planner->observe({stagedScr(7, 5)});
  const auto report = planner->report();
  ASSERT_EQ(report.size(), 2u);
  EXPECT_EQ(report[1].mode, "suspend-copy-resume");
  EXPECT_TRUE(report[1].calibrated);
  EXPECT_EQ(report[1].heldOut.count, 6u);
  EXPECT_NEAR(report[1].heldOut.meanAbsPhaseErrorS.at("restore"), 5 * 1.2 / 6, 1e-3);
  EXPECT_NEAR(report[1].heldOut.meanAbsPhaseErrorS.at("copy"), 0, 1e-3);
  EXPECT_FALSE(report[0].calibrated);
  const std::string metrics = planner->metricsText();
  EXPECT_NE(metrics.find("vrm_model_heldout_predictions{mode=\"suspend-copy-resume\","
                         "model=\"qemu-scr\"} 6\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("vrm_model_heldout_phase_error_seconds{mode=\"suspend-copy-resume\","
                         "model=\"qemu-scr\",phase=\"restore\"} 1\n"),
            std::string::npos)
      << metrics;

  auto req = oneVmVacate(6);
  req.vms[0].allowLive = false;
  const auto m = planner->plan(req)->moves.at(0);
  const MigrationObservation truth = stagedScr(6, 9);
  EXPECT_NEAR(nsToSeconds(m.endOffsetNs - m.startOffsetNs),
              nsToSeconds(truth.endNs - truth.startNs), 0.01);
}

// Ensures vrmd's plans use the measured dirty rate: of two VMs of the same size, the one the
// agent measured dirtying 40 MB/s gets a longer predicted move than the idle one, and planning
// at the 90th percentile of its dirty-rate samples (a burst among them) longer still.
TEST(CalibratingPlannerTest, MeasuredDirtyRateLengthensTheMove) {
  auto planner = makePlanner();
  auto req = oneVmVacate(4);
  req.vms.push_back(req.vms[0]);
  req.vms[0].id = "idle";
  req.vms[1].id = "dirty";
  req.vms[1].dirtyRateBytesPerSec = 40e6;
  req.vms[1].dirtyRateSamplesBytesPerSec = {30e6, 35e6, 80e6, 40e6};
  req.hosts[1].freeMemoryBytes = req.hosts[1].memoryBytes;
  req.batchSize = 1;
  auto moveOf = [](const VacatePlan& p, const std::string& id) {
    for (const auto& m : p.moves) {
      if (m.vmId == id) return nsToSeconds(m.endOffsetNs - m.startOffsetNs);
    }
    ADD_FAILURE() << "no move of " << id;
    return 0.0;
  };
  const auto plan = planner->plan(req);
  ASSERT_TRUE(plan.isOk()) << plan.status().toString();
  EXPECT_GT(moveOf(*plan, "dirty"), 1.2 * moveOf(*plan, "idle"));
  req.dirtyRateQuantile = 0.9;
  const auto bursty = planner->plan(req);
  ASSERT_TRUE(bursty.isOk()) << bursty.status().toString();
  EXPECT_GT(moveOf(*bursty, "dirty"), moveOf(*plan, "dirty"));
  EXPECT_EQ(moveOf(*bursty, "idle"), moveOf(*plan, "idle"));
}

// Ensures an observed slow clone raises the next latest-safe-start margin: the template says
// 30 s, one clone on the host took 90 s, so the latest safe start moves 60 s earlier; plans
// without a quantile of their own are made at the configured one.
TEST(CalibratingPlannerTest, SlowCloneMovesTheLatestSafeStartEarlier) {
  CalibratingPlannerOptions options;
  options.nicBandwidthByHost = {{"a", kNic}, {"b", kNic}};
  options.quantile = 0.8;
  auto planner = std::move(*CalibratingPlanner::create(options));
  auto req = oneVmVacate(2);
  req.cloneTemplate = "bmi-decoder";
  req.cloneTimeNs = 30 * kNsPerSec;
  const auto before = planner->plan(req);
  ASSERT_TRUE(before.isOk());
  EXPECT_EQ(before->quantile, 0.8);
  EXPECT_EQ(before->cloneTimeNs, 30 * kNsPerSec);
  planner->observeClone("bmi-decoder", "a", 90 * kNsPerSec);
  const auto after = planner->plan(req);
  ASSERT_TRUE(after.isOk());
  EXPECT_EQ(after->cloneTimeNs, 90 * kNsPerSec);
  EXPECT_EQ(after->latestSafeStartNs, before->latestSafeStartNs - 60 * kNsPerSec);
  // Another template's clones change nothing.
  planner->observeClone("other", "a", 500 * kNsPerSec);
  EXPECT_EQ(planner->plan(req)->latestSafeStartNs, after->latestSafeStartNs);
  CalibratingPlannerOptions certain;
  certain.quantile = 1.0;
  EXPECT_FALSE(CalibratingPlanner::create(certain).isOk());
}

}  // namespace
}  // namespace vrm::manager

// --- vrmd (the Manager) planning with the calibrating planner and what the agents measure ----

namespace vrm::manager {
namespace {

using testing::kHour;

class VrmdMeasuredInputsTest : public testing::ManagerFixture {
 protected:
  void SetUp() override {
    CalibratingPlannerOptions options;
    options.nicBandwidthByHost = {{"n1", 125e6}, {"n2", 125e6}, {"n3", 125e6}};
    calibrating_ = std::move(*CalibratingPlanner::create(options));
    ManagerOptions m;
    m.onClone = [this](const std::string& t, const std::string& h, TimeNs ns) {
      calibrating_->observeClone(t, h, ns);
    };
    startManager({testing::bmiTemplate()}, m, calibrating_.get());
  }
  ReservationRequest on(const std::string& host, bool dry) const {
    ReservationRequest r = dedicated(2 * kHour, kHour, 0);
    r.hostNames = {host};
    r.dryRun = dry;
    return r;
  }
  std::unique_ptr<CalibratingPlanner> calibrating_;
};

// Ensures vrmd hands the planner what the agent measured: of two VMs of the same size, the one
// its agent reports dirtying 40 MB/s (with a burst among its recent samples) is planned with a
// longer move than the idle one.
TEST_F(VrmdMeasuredInputsTest, HighMeasuredDirtyRateGetsALongerMove) {
  VmRecord idle = testing::FakeAgents::vm("idle", 4 * kGiB);
  VmRecord dirty = testing::FakeAgents::vm("dirty", 4 * kGiB);
  dirty.dirtyRateBytesPerSec = 40e6;
  dirty.dirtyRateSamplesBytesPerSec = {30e6, 90e6, 40e6};
  agents_->addHost("n1", 32, 64 * kGiB, {idle, dirty});
  agents_->addHost("n2", 32, 64 * kGiB, {});
  auto r = manager_->submit(on("n1", true));
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  ASSERT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
  std::map<std::string, TimeNs> length;
  for (const Move& m : r->moves)
    length[m.planned.vmId] = m.planned.endOffsetNs - m.planned.startOffsetNs;
  ASSERT_EQ(length.size(), 2u);
  EXPECT_GT(length["dirty"], length["idle"] + 2 * kNsPerSec);
}

// Ensures an observed slow clone raises the next latest-safe-start margin: the template says
// 45 s; after a clone that took 100 s the same request's latest safe start is 55 s further
// ahead of its start.
TEST_F(VrmdMeasuredInputsTest, ObservedSlowCloneMovesTheNextLatestSafeStartEarlier) {
  agents_->addHost("n1", 32, 64 * kGiB, {testing::FakeAgents::vm("v1", 2 * kGiB)});
  agents_->addHost("n2", 32, 64 * kGiB, {});
  agents_->addHost("n3", 32, 64 * kGiB, {});
  const auto before = manager_->submit(on("n3", true));
  ASSERT_TRUE(before.isOk());
  EXPECT_EQ(before->plan.cloneTimeNs, 45 * kNsPerSec);

  auto r = manager_->submit(on("n1", false));
  ASSERT_TRUE(r.isOk());
  ASSERT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
  agents_->hold.insert(AgentCommand::Kind::kClone);
  for (TimeNs t = r->plan.latestSafeStartNs; t < r->request.startNs; t += kNsPerSec) {
    clock_.set(t);
    agents_->heartbeat();
    manager_->tick();
    agents_->pump();
    if (!agents_->held.empty()) break;
  }
  ASSERT_EQ(agents_->held.size(), 1u) << "the clone was sent";
  clock_.advance(100 * kNsPerSec);  // the clone takes 100 s
  agents_->hold.clear();
  for (const auto& c : std::exchange(agents_->held, {})) {
    manager_->onResult(c.host, agents_->execute(c));
  }
  EXPECT_EQ(calibrating_->cloneTimes().observations("bmi"), 1u);

  const auto after = manager_->submit(on("n3", true));
  ASSERT_TRUE(after.isOk());
  ASSERT_EQ(after->state, ReservationState::kAdmitted) << after->reason;
  EXPECT_EQ(after->plan.cloneTimeNs, 100 * kNsPerSec);
  EXPECT_EQ(after->request.startNs - after->plan.latestSafeStartNs,
            before->request.startNs - before->plan.latestSafeStartNs + 55 * kNsPerSec);
}

}  // namespace
}  // namespace vrm::manager
