#include "vrm/planner/zhao_scr_model.h"

#include <gtest/gtest.h>

#include <string>

#include "vrm/planner/migration_model.h"

namespace vrm::planner {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = 1024.0 * kMiB;
constexpr double kGbE = 125e6;  // the paper's Gigabit Ethernet, bytes/s

std::unique_ptr<MigrationModel> zhao(const ModelParameters& p = {}) {
  auto m = createMigrationModel("zhao-scr", p);
  EXPECT_TRUE(m.isOk()) << m.status().toString();
  return std::move(*m);
}

VmProfile vmGiB(double memoryGiB, double modifiedGiB = 0, std::string workload = "") {
  VmProfile vm;
  vm.memoryBytes = memoryGiB * kGiB;
  vm.modifiedMemoryBytes = modifiedGiB * kGiB;
  vm.workload = std::move(workload);
  return vm;
}

double phase(const MigrationEstimate& e, const std::string& name) {
  for (const PhaseTime& p : e.phases) {
    if (p.name == name) return p.seconds;
  }
  ADD_FAILURE() << "no phase " << name;
  return -1;
}

// Ensures the default estimate of a 512 MiB VM on 1 GbE by hand: suspend = resume =
// 1.5 + 0.5 * 0.5 = 1.75 s, copy = 1.064 * 536870912 / 125e6 = 4.5699 s; the VM is down for all
// three phases and the overheads only add to the total.
TEST(ZhaoScrModelTest, HandComputedDefaults) {
  auto e = zhao()->estimate(vmGiB(0.5), LinkProfile{kGbE, 0.5, 0.25});
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  const double copy = 1.064 * 536870912.0 / 125e6;
  EXPECT_NEAR(phase(*e, "suspend"), 1.75, 1e-12);
  EXPECT_NEAR(phase(*e, "copy"), copy, 1e-12);
  EXPECT_NEAR(phase(*e, "resume"), 1.75, 1e-12);
  EXPECT_NEAR(e->downtimeS, 3.5 + copy, 1e-12);
  EXPECT_NEAR(e->totalTimeS, 3.5 + copy + 0.75, 1e-12);
  EXPECT_DOUBLE_EQ(e->transferredBytes, 0.5 * kGiB);
  EXPECT_EQ(e->rounds, 1);
  EXPECT_FALSE(e->energyJ.has_value());
}

// Ensures a RAM-backed destination's copy is linear in the state size (memory + disk redo logs)
// and a disk-backed one adds the quadratic term: 1 GiB +12.3 s, 2 GiB +49.2 s.
TEST(ZhaoScrModelTest, LinearVsPolynomialCopy) {
  auto ram = zhao();
  auto disk = zhao({{"destination_disk", 1}});
  const LinkProfile link{kGbE, 0, 0};
  const double perGiB = 1.064 * kGiB / kGbE;  // 9.14 s on 1 GbE
  VmProfile two = vmGiB(1.5);
  two.diskBytes = 0.5 * kGiB;  // state = 2 GiB
  EXPECT_NEAR(phase(*ram->estimate(vmGiB(1), link), "copy"), perGiB, 1e-9);
  EXPECT_NEAR(phase(*ram->estimate(two, link), "copy"), 2 * perGiB, 1e-9);
  EXPECT_NEAR(phase(*disk->estimate(vmGiB(1), link), "copy"), perGiB + 12.3, 1e-9);
  EXPECT_NEAR(phase(*disk->estimate(two, link), "copy"), 2 * perGiB + 4 * 12.3, 1e-9);
  EXPECT_DOUBLE_EQ(ram->estimate(two, link)->transferredBytes, 2 * kGiB);
  // Copy follows the link: twice the bandwidth, half the (linear) copy.
  EXPECT_NEAR(phase(*ram->estimate(vmGiB(1), LinkProfile{2 * kGbE, 0, 0}), "copy"), perGiB / 2,
              1e-9);
}

// Ensures suspend grows linearly with modified memory (21.5 s per modified GiB) while resume
// stays put (Fig. 5).
TEST(ZhaoScrModelTest, SuspendGrowsWithModifiedMemory) {
  auto m = zhao();
  const LinkProfile link{kGbE, 0, 0};
  auto clean = m->estimate(vmGiB(1.1, 0), link);
  auto half = m->estimate(vmGiB(1.1, 0.5), link);
  auto full = m->estimate(vmGiB(1.1, 1.0), link);
  EXPECT_NEAR(phase(*half, "suspend") - phase(*clean, "suspend"), 10.75, 1e-9);
  EXPECT_NEAR(phase(*full, "suspend") - phase(*clean, "suspend"), 21.5, 1e-9);
  EXPECT_DOUBLE_EQ(phase(*full, "resume"), phase(*clean, "resume"));
  EXPECT_DOUBLE_EQ(phase(*full, "copy"), phase(*clean, "copy"));
}

// Ensures the recovery extra: +2 s CPU-bound, +5 s memory-bound, +2 s otherwise, and that the
// degradation window is downtime + recovery; each is a parameter.
TEST(ZhaoScrModelTest, RecoveryTimeByWorkload) {
  auto m = zhao();
  const LinkProfile link{kGbE, 0, 0};
  auto cpu = m->estimate(vmGiB(0.5, 0, "cpu"), link);
  auto mem = m->estimate(vmGiB(0.5, 0, "memory"), link);
  auto other = m->estimate(vmGiB(0.5, 0, ""), link);
  EXPECT_EQ(cpu->extras.at("recovery_time_s"), 2);
  EXPECT_EQ(mem->extras.at("recovery_time_s"), 5);
  EXPECT_EQ(other->extras.at("recovery_time_s"), 2);
  EXPECT_NEAR(mem->extras.at("degradation_time_s"), mem->downtimeS + 5, 1e-12);
  EXPECT_DOUBLE_EQ(cpu->totalTimeS, mem->totalTimeS);  // recovery is not migration time
  auto tuned = zhao({{"recovery_memory_s", 7.5}})->estimate(vmGiB(0.5, 0, "memory"), link);
  EXPECT_EQ(tuned->extras.at("recovery_time_s"), 7.5);
}

// Ensures impossible profiles and parameters are invalid-argument.
TEST(ZhaoScrModelTest, BadInput) {
  auto m = zhao();
  EXPECT_EQ(m->estimate(vmGiB(1), LinkProfile{0, 0, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(m->estimate(vmGiB(-1), LinkProfile{kGbE, 0, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(m->estimate(vmGiB(1, -0.1), LinkProfile{kGbE, 0, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(m->estimate(vmGiB(1, 2), LinkProfile{kGbE, 0, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(createMigrationModel("zhao-scr", {{"copy_slope", 1}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(createMigrationModel("zhao-scr", {{"destination_disk", 2}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(createMigrationModel("zhao-scr", {{"suspend_base_s", -1}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(createMigrationModel("zhao-scr", {{"copy_bandwidth_factor", 0}}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vrm::planner
