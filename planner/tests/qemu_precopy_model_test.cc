#include "vrm/planner/qemu_precopy_model.h"

#include <gtest/gtest.h>

#include "vrm/planner/migration_model.h"

namespace vrm::planner {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

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

const LinkProfile k100MiB{100 * kMiB, 0, 0};

// Ensures an idle 4 GiB VM with 256 MiB non-zero migrates in about nonzero / bandwidth: 2.56 s
// plus 983,040 zero pages * 9 bytes = 0.084375 s, with nothing left for downtime.
TEST(QemuPrecopyModelTest, IdleVmCostsItsNonzeroMemory) {
  auto e = qemu()->estimate(vmMiB(4096, 256, 0), k100MiB);
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_TRUE(e->converges);
  EXPECT_NEAR(e->totalTimeS, 2.56 + 0.084375, 1e-12);
  EXPECT_NEAR(e->totalTimeS, 2.56, 0.1);
  EXPECT_EQ(e->downtimeS, 0);
  EXPECT_EQ(e->rounds, 2);  // bulk pass + empty stop-and-copy
  EXPECT_NEAR(e->transferredBytes, 256 * kMiB + 983040.0 * 9, 1e-3);
}

// Ensures the pass-by-pass evolution by hand: 1 GiB all non-zero, D = 25, B = 100 MiB/s,
// threshold 0.3 s * 100 = 30 MiB. Passes 10.24 s, 2.56 s, 0.64 s; then 16 MiB < 30 MiB: stop,
// downtime 0.16 s, total 13.6 s, 1360 MiB sent.
TEST(QemuPrecopyModelTest, PassesUntilUnderDowntimeLimit) {
  auto e = qemu()->estimate(vmMiB(1024, 1024, 25), k100MiB);
  ASSERT_TRUE(e.isOk());
  EXPECT_TRUE(e->converges);
  EXPECT_EQ(e->rounds, 4);
  ASSERT_EQ(e->phases.size(), 4u);
  EXPECT_EQ(e->phases[0].name, "pass 0");
  EXPECT_NEAR(e->phases[0].seconds, 10.24, 1e-12);
  EXPECT_NEAR(e->phases[1].seconds, 2.56, 1e-12);
  EXPECT_NEAR(e->phases[2].seconds, 0.64, 1e-12);
  EXPECT_EQ(e->phases[3].name, "stop-and-copy");
  EXPECT_NEAR(e->downtimeS, 0.16, 1e-12);
  EXPECT_NEAR(e->totalTimeS, 13.6, 1e-12);
  EXPECT_NEAR(e->transferredBytes / kMiB, 1360, 1e-9);
  EXPECT_NEAR(e->extras.at("threshold_bytes") / kMiB, 30, 1e-9);
  // A 1 s limit (threshold 100 MiB) stops one pass earlier: 64 MiB left, 0.64 s downtime.
  auto relaxed = qemu({{"downtime_limit_s", 1.0}})->estimate(vmMiB(1024, 1024, 25), k100MiB);
  EXPECT_EQ(relaxed->rounds, 3);
  EXPECT_NEAR(relaxed->downtimeS, 0.64, 1e-12);
}

// Ensures a dirty rate above the bandwidth never converges: the dirty set is the whole 1 GiB
// after every pass, so the estimate stops at the plateau with its 10.24 s downtime.
TEST(QemuPrecopyModelTest, HighDirtyRateDoesNotConverge) {
  auto e = qemu()->estimate(vmMiB(1024, 1024, 200), k100MiB);
  ASSERT_TRUE(e.isOk());
  EXPECT_FALSE(e->converges);
  EXPECT_NEAR(e->downtimeS, 10.24, 1e-12);
  EXPECT_EQ(e->rounds, 3);  // bulk, one pass showing no shrink, forced stop-and-copy
  EXPECT_NEAR(e->totalTimeS, 3 * 10.24, 1e-12);
  // D == B exactly plateaus too, rather than iterating to the guard.
  auto equal = qemu()->estimate(vmMiB(1024, 1024, 100), k100MiB);
  EXPECT_FALSE(equal->converges);
  EXPECT_LT(equal->rounds, 10);
}

// Ensures the dirty set of a pass is bounded by the writable working set: a 20 MiB WWS fits the
// 30 MiB threshold right after the bulk pass even at D > B; a 64 MiB one plateaus at 0.64 s.
TEST(QemuPrecopyModelTest, WritableWorkingSetBoundsDirtySet) {
  auto small = qemu()->estimate(vmMiB(4096, 4096, 200, 20), k100MiB);
  ASSERT_TRUE(small.isOk());
  EXPECT_TRUE(small->converges);
  EXPECT_EQ(small->rounds, 2);
  EXPECT_NEAR(small->downtimeS, 0.2, 1e-12);
  auto hot = qemu()->estimate(vmMiB(4096, 4096, 200, 64), k100MiB);
  EXPECT_FALSE(hot->converges);
  EXPECT_NEAR(hot->downtimeS, 0.64, 1e-12);
  EXPECT_NEAR(hot->extras.at("final_dirty_bytes") / kMiB, 64, 1e-9);
}

// Ensures max_bandwidth_bytes_per_s caps the link and max_passes guards a slow convergence.
TEST(QemuPrecopyModelTest, BandwidthCapAndPassGuard) {
  auto capped = qemu({{"max_bandwidth_bytes_per_s", 100 * kMiB}})
                    ->estimate(vmMiB(1024, 1024, 0), LinkProfile{1000 * kMiB, 0, 0});
  EXPECT_NEAR(capped->totalTimeS, 10.24, 1e-12);
  auto guarded = qemu({{"max_passes", 2}})->estimate(vmMiB(1024, 1024, 25), k100MiB);
  EXPECT_FALSE(guarded->converges);
  EXPECT_EQ(guarded->rounds, 3);
  EXPECT_NEAR(guarded->downtimeS, 0.64, 1e-12);
}

// Ensures impossible profiles and parameters are invalid-argument.
TEST(QemuPrecopyModelTest, BadInput) {
  auto m = qemu();
  EXPECT_EQ(m->estimate(vmMiB(1024, 1024, 1), LinkProfile{0, 0, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(m->estimate(vmMiB(-1, -1, 1), k100MiB).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m->estimate(vmMiB(1024, 2048, 1), k100MiB).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(m->estimate(vmMiB(1024, 1024, 1, -5), k100MiB).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(createMigrationModel("qemu-precopy", {{"downtime_limit", 1}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(createMigrationModel("qemu-precopy", {{"downtime_limit_s", -1}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(createMigrationModel("qemu-precopy", {{"max_passes", 0}}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vrm::planner
