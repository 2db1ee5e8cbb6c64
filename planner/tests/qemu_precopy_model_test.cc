// qemu-precopy follows QEMU 7.2's pre-copy: rate-limit windows, a threshold test before each
// bitmap sync, zero pages as markers and an unthrottled stop-and-copy (qemu_precopy_model.h).
// The cases are worked by hand; "hand" parameters switch off headers, zero markers and fixed
// costs so that the arithmetic stays readable.
#include "vrm/planner/qemu_precopy_model.h"

#include <gtest/gtest.h>

#include "vrm/planner/migration_model.h"

namespace vrm::planner {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

ModelParameters hand(ModelParameters extra = {}) {
  ModelParameters p = {
      {"page_header_bytes", 0}, {"zero_page_bytes", 0}, {"setup_s", 0}, {"downtime_base_s", 0}};
  for (const auto& [k, v] : extra) p[k] = v;
  return p;
}

std::unique_ptr<MigrationModel> qemu(const ModelParameters& p = {}) {
  auto m = createMigrationModel("qemu-precopy", p);
  EXPECT_TRUE(m.isOk()) << m.status().toString();
  return std::move(*m);
}

VmProfile vmMiB(double memoryMiB, double nonzeroMiB, double dirtyMiBPerSec, double wwsMiB = 0) {
  VmProfile vm;
  vm.memoryBytes = memoryMiB * kMiB;
  vm.nonzeroMemoryBytes = nonzeroMiB * kMiB;
  vm.dirtyRateBytesPerSec = dirtyMiBPerSec * kMiB;
  vm.writableWorkingSetBytes = wwsMiB * kMiB;
  return vm;
}

// 100 MiB/s throttled, a 1000 MiB/s line under it.
LinkProfile link100(double lineMiB = 1000) {
  LinkProfile l;
  l.bandwidthBytesPerSec = 100 * kMiB;
  l.lineRateBytesPerSec = lineMiB * kMiB;
  return l;
}

// Ensures an idle VM's bulk pass by hand: T = 0.3 s * 100 = 30 MiB, 10 MiB per 100 ms window;
// the check after window 100 finds 1024 - 1000 = 24 MiB < T dirty: sync, nothing new, stop. The
// 24 MiB go unthrottled at the 1000 MiB/s line rate: 24 ms of downtime.
TEST(QemuPrecopyModelTest, IdleVmStopsAtTheFirstCheckUnderThreshold) {
  auto e = qemu(hand())->estimate(vmMiB(1024, 1024, 0), link100());
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_TRUE(e->converges);
  EXPECT_NEAR(e->extras.at("threshold_bytes") / kMiB, 30, 1e-9);
  EXPECT_EQ(e->extras.at("windows"), 100);
  EXPECT_NEAR(e->extras.at("final_dirty_bytes") / kMiB, 24, 1e-9);
  EXPECT_NEAR(e->downtimeS, 0.024, 1e-12);
  EXPECT_NEAR(e->totalTimeS, 10.024, 1e-12);
  EXPECT_EQ(e->rounds, 3);  // dirty-sync-count: setup, after the bulk, completion
  EXPECT_NEAR(e->transferredBytes / kMiB, 1024, 1e-9);
  // Without a line rate the stop-and-copy goes at B: 0.24 s.
  EXPECT_NEAR(qemu(hand())->estimate(vmMiB(1024, 1024, 0), link100(0))->downtimeS, 0.24, 1e-12);
}

// Ensures the rounds of a dirtying VM by hand (D = 25 MiB/s). Each round runs the windows needed
// to get under T and leaves the rest for the next:
//   pass 0: 100 windows, 10 s, 24 MiB left, 250 MiB dirtied -> 274 MiB
//   pass 1: floor(244 / 10) + 1 = 25 windows, 2.5 s, 24 left, 62.5 dirtied -> 86.5
//   pass 2: 6 windows, 0.6 s, 26.5 left, 15 dirtied -> 41.5 (still >= 30)
//   pass 3: 2 windows, 0.2 s, 21.5 left, 5 dirtied -> 26.5 < 30: stop, 26.5 ms downtime.
TEST(QemuPrecopyModelTest, DirtyRoundsUntilUnderThreshold) {
  auto e = qemu(hand())->estimate(vmMiB(1024, 1024, 25), link100());
  ASSERT_TRUE(e.isOk());
  EXPECT_TRUE(e->converges);
  ASSERT_EQ(e->phases.size(), 5u);
  EXPECT_EQ(e->phases[0].name, "pass 0");
  EXPECT_NEAR(e->phases[0].seconds, 10, 1e-9);
  EXPECT_NEAR(e->phases[1].seconds, 2.5, 1e-9);
  EXPECT_NEAR(e->phases[2].seconds, 0.6, 1e-9);
  EXPECT_NEAR(e->phases[3].seconds, 0.2, 1e-9);
  EXPECT_EQ(e->phases[4].name, "stop-and-copy");
  EXPECT_NEAR(e->downtimeS, 0.0265, 1e-9);
  EXPECT_NEAR(e->totalTimeS, 13.3265, 1e-9);
  EXPECT_EQ(e->rounds, 6);
  EXPECT_EQ(e->extras.at("windows"), 133);
  EXPECT_NEAR(e->transferredBytes / kMiB, 1356.5, 1e-9);
  // A 1 s limit (T = 100 MiB): passes of 93, 23, 6, 1 and 1 windows leave 94, 96.5, 94, 99 and
  // 91.5 MiB; with 2.5 MiB dirtied in the last one, 94 MiB < T remain after its sync.
  auto relaxed =
      qemu(hand({{"downtime_limit_s", 1.0}}))->estimate(vmMiB(1024, 1024, 25), link100());
  EXPECT_EQ(relaxed->rounds, 7);
  EXPECT_EQ(relaxed->extras.at("windows"), 124);
  EXPECT_NEAR(relaxed->extras.at("final_dirty_bytes") / kMiB, 94, 1e-9);
}

// Ensures zero pages cost their 9-byte markers and normal pages their 8-byte headers, and that a
// bulk pass whose pages run out inside a window ends there: 4 GiB with 256 MiB non-zero is
// 256 * 4104 / 4096 + 3840 * 9 / 4096 = 264.9375 MiB on the wire; 26 full windows send 260, the
// 27th the last 4.9375 MiB (all RAM done before its end), so nothing is left for downtime but
// its fixed part. Defaults: setup 0.05 s, downtime 0.002 s.
TEST(QemuPrecopyModelTest, ZeroPagesAndHeaders) {
  auto e = qemu()->estimate(vmMiB(4096, 256, 0), link100(0));
  ASSERT_TRUE(e.isOk());
  EXPECT_TRUE(e->converges);
  EXPECT_NEAR(e->transferredBytes / kMiB, 264.9375, 1e-9);
  EXPECT_EQ(e->extras.at("final_dirty_bytes"), 0);
  EXPECT_NEAR(e->downtimeS, 0.002, 1e-12);
  EXPECT_NEAR(e->totalTimeS, 0.05 + 2.6 + 0.049375 + 0.002, 1e-9);
  EXPECT_EQ(e->phases.front().name, "setup");
}

// Ensures a dirty set that cannot shrink is reported as not converging, with the downtime a
// forced switchover at its plateau would cost: D > B refills all 1 GiB during the bulk pass.
TEST(QemuPrecopyModelTest, HighDirtyRateDoesNotConverge) {
  for (double d : {200.0, 100.0}) {  // D == B plateaus too
    auto e = qemu(hand())->estimate(vmMiB(1024, 1024, d), link100(0));
    ASSERT_TRUE(e.isOk());
    EXPECT_FALSE(e->converges) << d;
    EXPECT_NEAR(e->downtimeS, 10.24, 1e-9) << d;
    EXPECT_NEAR(e->totalTimeS, 10 + 10.24, 1e-9) << d;
    EXPECT_EQ(e->rounds, 3) << d;
  }
  // Just under B it converges, after many one-window rounds.
  auto slow = qemu(hand())->estimate(vmMiB(1024, 1024, 90), link100());
  EXPECT_TRUE(slow->converges);
  EXPECT_GT(slow->rounds, 10);
}

// Ensures the writable working set bounds what a round can find dirty: 2 MiB fits under T
// with the 24 MiB the bulk left even at D > B; 64 MiB plateaus.
TEST(QemuPrecopyModelTest, WritableWorkingSetBoundsDirtySet) {
  auto small = qemu(hand())->estimate(vmMiB(1024, 1024, 200, 2), link100());
  ASSERT_TRUE(small.isOk());
  EXPECT_TRUE(small->converges);
  EXPECT_EQ(small->rounds, 3);
  EXPECT_NEAR(small->extras.at("final_dirty_bytes") / kMiB, 26, 1e-9);
  auto hot = qemu(hand())->estimate(vmMiB(1024, 1024, 200, 64), link100());
  EXPECT_FALSE(hot->converges);
}

// Ensures setup, bitmap syncs and the downtime's fixed part add where QEMU spends them: setup
// 0.5 + 0.1 s/GiB + one sync; each pass one sync; the stop-and-copy one more.
TEST(QemuPrecopyModelTest, SetupAndSyncCosts) {
  auto e = qemu(hand({{"setup_s", 0.5},
                      {"setup_s_per_gib", 0.1},
                      {"bitmap_sync_s_per_gib", 0.01},
                      {"downtime_base_s", 0.002}}))
               ->estimate(vmMiB(1024, 1024, 0), link100());
  ASSERT_TRUE(e.isOk());
  EXPECT_NEAR(e->phases.front().seconds, 0.61, 1e-12);
  EXPECT_NEAR(e->downtimeS, 0.002 + 0.01 + 0.024, 1e-12);
  EXPECT_NEAR(e->totalTimeS, 0.61 + 10.01 + 0.036, 1e-9);
}

// Ensures max_bandwidth_bytes_per_s caps the link, a configured switchover rate wins over the
// line rate, and max_passes guards a slow convergence.
TEST(QemuPrecopyModelTest, BandwidthCapSwitchoverRateAndPassGuard) {
  LinkProfile fast;
  fast.bandwidthBytesPerSec = 1000 * kMiB;
  auto capped =
      qemu(hand({{"max_bandwidth_bytes_per_s", 100 * kMiB}}))->estimate(vmMiB(1024, 1024, 0), fast);
  EXPECT_NEAR(capped->totalTimeS, 10.024, 1e-9);  // the 1000 MiB/s link carries the switchover
  auto rate = qemu(hand({{"switchover_bandwidth_bytes_per_s", 240 * kMiB}}))
                  ->estimate(vmMiB(1024, 1024, 0), link100());
  EXPECT_NEAR(rate->downtimeS, 0.1, 1e-12);
  auto guarded = qemu(hand({{"max_passes", 2}}))->estimate(vmMiB(1024, 1024, 25), link100(0));
  EXPECT_FALSE(guarded->converges);
  EXPECT_EQ(guarded->rounds, 4);
  EXPECT_NEAR(guarded->downtimeS, 0.865, 1e-9);
}

// Ensures impossible profiles and parameters are invalid-argument.
// Ensures a dirty-rate history is read as liu-refined reads it (Liu eqs. 12-13): the EWMA of
// {10, 20, 40} MiB/s at mu = 0.7 is 33.1, blended half and half with a 50 MiB/s sample 41.55; the
// estimate is that of a VM dirtying 41.55 MiB/s. Without a history the sample is the rate.
TEST(QemuPrecopyModelTest, DirtyRateHistoryIsBlendedWithTheSample) {
  VmProfile withHistory = vmMiB(1024, 1024, 50);
  withHistory.dirtyRateHistoryBytesPerSec = {10 * kMiB, 20 * kMiB, 40 * kMiB};
  auto blended = qemu(hand())->estimate(withHistory, link100());
  auto asPoint = qemu(hand())->estimate(vmMiB(1024, 1024, 41.55), link100());
  auto sampleOnly = qemu(hand())->estimate(vmMiB(1024, 1024, 50), link100());
  ASSERT_TRUE(blended.isOk() && asPoint.isOk() && sampleOnly.isOk());
  EXPECT_NEAR(blended->totalTimeS, asPoint->totalTimeS, 1e-9);
  EXPECT_NEAR(blended->transferredBytes, asPoint->transferredBytes, 1e-3);
  EXPECT_GT(sampleOnly->totalTimeS, blended->totalTimeS + 0.1);
  // phi = 1: the sample alone; mu = 1: the newest migration's rate alone.
  auto sampleWeighted = qemu(hand({{"dirty_rate_phi", 1}}))->estimate(withHistory, link100());
  EXPECT_NEAR(sampleWeighted->totalTimeS, sampleOnly->totalTimeS, 1e-9);
  auto newest =
      qemu(hand({{"dirty_rate_mu", 1}, {"dirty_rate_phi", 0}}))->estimate(withHistory, link100());
  EXPECT_NEAR(newest->totalTimeS,
              qemu(hand())->estimate(vmMiB(1024, 1024, 40), link100())->totalTimeS, 1e-9);
}

TEST(QemuPrecopyModelTest, BadInput) {
  auto m = qemu();
  EXPECT_EQ(m->estimate(vmMiB(1024, 1024, 1), LinkProfile{0, 0, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(m->estimate(vmMiB(-1, -1, 1), link100()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m->estimate(vmMiB(1024, 2048, 1), link100()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(m->estimate(vmMiB(1024, 1024, 1, -5), link100()).status().code(),
            StatusCode::kInvalidArgument);
  LinkProfile badLine = link100();
  badLine.lineRateBytesPerSec = -1;
  EXPECT_EQ(m->estimate(vmMiB(1024, 1024, 1), badLine).status().code(),
            StatusCode::kInvalidArgument);
  for (const ModelParameters& p : std::vector<ModelParameters>{{{"downtime_limit", 1}},
                                                               {{"downtime_limit_s", -1}},
                                                               {{"max_passes", 0}},
                                                               {{"check_interval_s", 0}},
                                                               {{"setup_s", -0.1}},
                                                               {{"dirty_rate_mu", 1.5}},
                                                               {{"dirty_rate_phi", -0.5}}}) {
    EXPECT_EQ(createMigrationModel("qemu-precopy", p).status().code(),
              StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace vrm::planner
