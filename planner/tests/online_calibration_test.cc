// The online calibrator refits as observations arrive and reports its error only on observations
// it had not been fitted on; the clone-time model plans for the clones it has seen.
#include "vrm/planner/online_calibration.h"

#include <gtest/gtest.h>

#include "vrm/planner/clone_time_model.h"

namespace vrm::planner {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// qemu-scr's default fixed restore cost.
double defaultRestoreBaseS() {
  return (*createMigrationModel("qemu-scr"))->parameters().at("restore_base_s");
}

// A staged suspend-copy-resume as these hosts do it: the defaults' phases, with a restore 0.8 s
// slower than the defaults think.
MigrationObservation scr(double memoryMiB, double bandwidthMiB) {
  auto model = std::move(
      *createMigrationModel("qemu-scr", {{"restore_base_s", defaultRestoreBaseS() + 0.8}}));
  MigrationObservation o;
  o.vm.memoryBytes = memoryMiB * kMiB;
  o.vm.nonzeroMemoryBytes = o.vm.memoryBytes * 0.75;
  o.bandwidthBytesPerSec = bandwidthMiB * kMiB;
  LinkProfile link;
  link.bandwidthBytesPerSec = o.bandwidthBytesPerSec;
  auto e = model->estimate(o.vm, link);
  o.totalTimeS = e->totalTimeS;
  o.downtimeS = e->downtimeS;
  o.transferredBytes = e->transferredBytes;
  for (const PhaseTime& p : e->phases) {
    if (p.name == "save") o.suspendS = p.seconds;
    if (p.name == "copy") o.copyS = p.seconds;
    if (p.name == "restore") o.resumeS = p.seconds;
  }
  return o;
}

// Ensures the held-out errors are those of the model in force before each observation: the
// first five come from the defaults (too fast by the restore's 0.8 s), the fit after the fifth
// learns the restore, and the next ones are predicted to within rounding.
TEST(OnlineCalibratorTest, HeldOutErrorsComeFromTheModelInForce) {
  OnlineCalibrationOptions options;
  options.minObservations = 5;
  options.refitEvery = 10;
  options.heldOutWindow = 8;
  auto c = std::move(*OnlineCalibrator::create("qemu-scr", options));
  int changes = 0;
  for (int i = 0; i < 5; ++i) changes += c->observe(scr(128 + 32 * i, 16 + 8 * i));
  EXPECT_EQ(changes, 1);
  ASSERT_TRUE(c->calibration().has_value());
  EXPECT_NEAR(c->calibration()->parameters.at("restore_base_s"), defaultRestoreBaseS() + 0.8, 1e-6);
  ASSERT_EQ(c->heldOut().size(), 5u);
  for (const auto& h : c->heldOut()) {
    EXPECT_TRUE(h.fromDefaults);
    EXPECT_NEAR(h.observedS - h.predictedS, 0.8, 1e-9);
    EXPECT_NEAR(h.phases.at("restore").first - h.phases.at("restore").second, 0.8, 1e-9);
  }
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(c->observe(scr(200 + 16 * i, 20 + 4 * i)));
  ASSERT_EQ(c->heldOut().size(), 8u);  // the window keeps the newest 8
  const HeldOutSummary s = c->summary();
  EXPECT_EQ(s.count, 8u);
  EXPECT_GT(s.worstAbsRelativeError, 0.05);  // three default predictions are still in the window
  int fitted = 0;
  for (const auto& h : c->heldOut()) {
    if (h.fromDefaults) continue;
    ++fitted;
    EXPECT_NEAR(h.observedS, h.predictedS, 1e-6);
  }
  EXPECT_EQ(fitted, 5);
  EXPECT_NEAR(s.meanAbsPhaseErrorS.at("restore"), 3 * 0.8 / 8, 1e-6);
  // The tenth observation since the fit refits.
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(c->observe(scr(256, 32)));
  EXPECT_TRUE(c->observe(scr(256, 64)));
  EXPECT_EQ(c->fits(), 2u);
}

// Ensures rows the model cannot predict are dropped and a failing fit keeps the model.
TEST(OnlineCalibratorTest, BadRowsAndFailedFits) {
  auto c = std::move(*OnlineCalibrator::create("qemu-scr"));
  MigrationObservation bad = scr(128, 16);
  bad.vm.memoryBytes = 0;
  EXPECT_FALSE(c->observe(bad));
  EXPECT_EQ(c->observations(), 0u);
  EXPECT_FALSE(OnlineCalibrator::create("no-such-model").isOk());
}

// Ensures clone times: one slow clone raises the planned time above the configured one, one
// fast clone does not lower it; with three clones on a host their quantile is used there and
// the slowest host decides for several.
TEST(CloneTimeModelTest, PlansForObservedClones) {
  CloneTimeModel m;
  const TimeNs configured = 30 * kNsPerSec;
  EXPECT_EQ(m.cloneTimeNs("bmi", {"a"}, configured, 0.95), configured);
  m.observe("bmi", "a", 10 * kNsPerSec);
  EXPECT_EQ(m.cloneTimeNs("bmi", {"a"}, configured, 0.95), configured);
  m.observe("bmi", "b", 50 * kNsPerSec);
  EXPECT_EQ(m.cloneTimeNs("bmi", {"a"}, configured, 0.95), 50 * kNsPerSec);
  m.observe("bmi", "a", 12 * kNsPerSec);
  m.observe("bmi", "a", 14 * kNsPerSec);
  // Host a has three: their median is 12 s; b falls back to the template's four clones.
  EXPECT_EQ(m.cloneTimeNs("bmi", {"a"}, configured, 0.5), 12 * kNsPerSec);
  EXPECT_EQ(m.cloneTimeNs("bmi", {"a", "b"}, configured, 0.5), 13 * kNsPerSec);
  EXPECT_EQ(m.observations("bmi"), 4u);
  EXPECT_EQ(m.observations("bmi", "a"), 3u);
  EXPECT_EQ(m.cloneTimeNs("other", {}, configured, 0.5), configured);
  m.observe("bmi", "a", 0);  // ignored
  EXPECT_EQ(m.observations("bmi"), 4u);
}

}  // namespace
}  // namespace vrm::planner
