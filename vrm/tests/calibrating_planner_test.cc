// vrmd's planner learns from the migrations it watches: a cluster whose migrations take twice
// the default model's time plus a second gets plans that say so once enough were observed.
#include "vrm/manager/calibrating_planner.h"

#include <gtest/gtest.h>

#include <cmath>

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
  EXPECT_EQ(planner->fitted().at("suspend-copy-resume").model, "zhao-scr");
  EXPECT_EQ(planner->fitted().count("live"), 0u);
}

}  // namespace
}  // namespace vrm::manager
