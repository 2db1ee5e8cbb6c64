#include "vrm/planner/tsakalozos_disk_model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "vrm/planner/migration_model.h"

namespace vrm::planner {
namespace {

std::unique_ptr<MigrationModel> diskModel(const ModelParameters& params = {}) {
  auto m = createMigrationModel("tsakalozos-disk", params);
  EXPECT_TRUE(m.isOk()) << m.status().toString();
  return m.isOk() ? std::move(*m) : nullptr;
}

VmProfile diskVm(double diskBytes, double dirtyBytesPerSec) {
  VmProfile vm;
  vm.memoryBytes = 2e9;
  vm.diskBytes = diskBytes;
  vm.diskDirtyRateBytesPerSec = dirtyBytesPerSec;
  return vm;
}

// Ensures Expression 1 holds at equality: 1 GB / (100 - 20) MB/s + 7.5 s = 20 s <= 20 s.
TEST(TsakalozosDiskTest, FeasibleAtTheDeadline) {
  auto e = diskModel({{"deadline_s", 20}, {"vmm_time_s", 7.5}})
               ->estimate(diskVm(1e9, 20e6), LinkProfile{100e6, 0, 0});
  ASSERT_TRUE(e.isOk());
  EXPECT_TRUE(e->feasible);
  EXPECT_TRUE(e->converges);
  EXPECT_DOUBLE_EQ(e->extras.at("sync_time_s"), 12.5);
  EXPECT_DOUBLE_EQ(e->totalTimeS, 20.0);
  EXPECT_DOUBLE_EQ(e->extras.at("slack_s"), 0.0);
  EXPECT_DOUBLE_EQ(e->extras.at("deadline_ratio"), 1.0);
  EXPECT_DOUBLE_EQ(e->transferredBytes, 100e6 * 12.5 + 20e6 * 7.5);
  EXPECT_EQ(e->rounds, 2);
  ASSERT_EQ(e->phases.size(), 5u);
  EXPECT_DOUBLE_EQ(e->phases[1].seconds, 10.0);  // first pass: 1 GB at 100 MB/s
  EXPECT_DOUBLE_EQ(e->phases[2].seconds, 2.5);   // re-sending blocks dirtied meanwhile
  EXPECT_DOUBLE_EQ(e->phases[3].seconds, 7.5);
}

// Ensures a deadline just short of the 20 s needed is infeasible, with negative slack.
TEST(TsakalozosDiskTest, InfeasibleJustBefore) {
  auto e = diskModel({{"deadline_s", 19.9}, {"vmm_time_s", 7.5}})
               ->estimate(diskVm(1e9, 20e6), LinkProfile{100e6, 0, 0});
  ASSERT_TRUE(e.isOk());
  EXPECT_FALSE(e->feasible);
  EXPECT_NEAR(e->extras.at("slack_s"), -0.1, 1e-12);
}

// Ensures the paper's simulated setting (50 GB disk written at 30 MB/s over 10 Gbps) fits the
// 200 s window: 50e9 / (1.25e9 - 30e6) = 40.98 s, and the link overheads count toward it.
TEST(TsakalozosDiskTest, PaperSettingAndOverheads) {
  auto model = diskModel({{"deadline_s", 200}, {"vmm_time_s", 10}});
  auto e = model->estimate(diskVm(50e9, 30e6), LinkProfile{1.25e9, 1, 2});
  ASSERT_TRUE(e.isOk());
  EXPECT_NEAR(e->extras.at("sync_time_s"), 40.983606557, 1e-6);
  EXPECT_NEAR(e->totalTimeS, 1 + 40.983606557 + 10 + 2, 1e-6);
  EXPECT_DOUBLE_EQ(e->downtimeS, 2);
  EXPECT_TRUE(e->feasible);
  auto tight = diskModel({{"deadline_s", 52}, {"vmm_time_s", 10}})
                   ->estimate(diskVm(50e9, 30e6), LinkProfile{1.25e9, 1, 2});
  EXPECT_FALSE(tight->feasible);  // 51 s without the overheads, 54 s with them
}

// Ensures disks dirtied at least as fast as the link never sync: infeasible, not converging.
TEST(TsakalozosDiskTest, DirtyRateAtLeastNetRateNeverSyncs) {
  auto e = diskModel({{"deadline_s", 1e6}})->estimate(diskVm(1e9, 100e6), LinkProfile{100e6, 0, 0});
  ASSERT_TRUE(e.isOk());
  EXPECT_FALSE(e->converges);
  EXPECT_FALSE(e->feasible);
  EXPECT_TRUE(std::isinf(e->totalTimeS));
  EXPECT_EQ(e->extras.count("sync_time_s"), 0u);
}

// Ensures deadline_s = 0 means no deadline, and shared storage (no disk) needs only VMM time.
TEST(TsakalozosDiskTest, NoDeadlineAndSharedStorage) {
  auto e = diskModel()->estimate(diskVm(1e12, 0), LinkProfile{1e6, 0, 0});
  ASSERT_TRUE(e.isOk());
  EXPECT_TRUE(e->feasible);
  EXPECT_DOUBLE_EQ(e->extras.at("sync_time_s"), 1e6);
  EXPECT_EQ(e->extras.count("deadline_s"), 0u);
  EXPECT_EQ(e->rounds, 1);
  auto shared = diskModel({{"deadline_s", 5}, {"vmm_time_s", 4}})
                    ->estimate(diskVm(0, 1e9), LinkProfile{1e6, 0, 0});
  ASSERT_TRUE(shared.isOk());
  EXPECT_DOUBLE_EQ(shared->extras.at("sync_time_s"), 0);
  EXPECT_DOUBLE_EQ(shared->totalTimeS, 4);
  EXPECT_TRUE(shared->feasible);
}

// Ensures negative sizes, zero bandwidth and bad or unknown parameters are invalid-argument.
TEST(TsakalozosDiskTest, BadInput) {
  auto model = diskModel();
  EXPECT_EQ(model->estimate(diskVm(-1, 0), LinkProfile{1e6, 0, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(model->estimate(diskVm(1e9, -5), LinkProfile{1e6, 0, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(model->estimate(diskVm(1e9, 0), LinkProfile{0, 0, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(createMigrationModel("tsakalozos-disk", {{"deadline_s", -1}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(createMigrationModel("tsakalozos-disk", {{"vmm_time_s", -1}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(createMigrationModel("tsakalozos-disk", {{"deadline", 10}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(model->parameters().at("deadline_s"), 0);
  EXPECT_EQ(model->parameters().at("vmm_time_s"), 0);
}

}  // namespace
}  // namespace vrm::planner
