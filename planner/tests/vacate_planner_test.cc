#include "vrm/planner/vacate_planner.h"

#include <gtest/gtest.h>

namespace vrm::planner {
namespace {

constexpr std::uint64_t kGiB = 1ull << 30;

VacateRequest threeHosts() {
  VacateRequest r;
  for (const char* name : {"a", "b", "c"}) {
    r.hosts.push_back({name, 16, 32 * kGiB, 125e6, 12, 24 * kGiB, true});
  }
  r.vms = {
      {"v1", "a", 2, 4 * kGiB, 2 * kGiB, 0, true, true},
      {"v2", "a", 2, 2 * kGiB, 1 * kGiB, 0, false, true},
      {"v3", "b", 2, 4 * kGiB, 4 * kGiB, 0, true, true},
  };
  r.hostsToVacate = {"a"};
  r.reservationStartNs = 10'000 * kNsPerSec;
  r.cloneTimeNs = 30 * kNsPerSec;
  r.marginNs = 60 * kNsPerSec;
  return r;
}

std::shared_ptr<const MigrationModel> simple() {
  auto m = createMigrationModel("simple");
  return std::shared_ptr<const MigrationModel>(std::move(*m));
}

// Ensures moves run back to back, largest first, and the latest safe start subtracts clone
// time, makespan and margin from the reservation start.
TEST(SequentialVacatePlannerTest, SequentialTimingAndLatestSafeStart) {
  SequentialVacatePlanner planner(simple());
  auto plan = planner.plan(threeHosts());
  ASSERT_TRUE(plan.isOk()) << plan.status().toString();
  ASSERT_EQ(plan->moves.size(), 2u);
  EXPECT_EQ(plan->moves[0].vmId, "v1");
  EXPECT_EQ(plan->moves[0].toHost, "b");
  EXPECT_EQ(plan->moves[0].startOffsetNs, 0);
  EXPECT_EQ(plan->moves[1].startOffsetNs, plan->moves[0].endOffsetNs);
  EXPECT_EQ(plan->moves[1].mode, MoveMode::kSuspendCopyResume);
  // 3 GiB over 125 MB/s.
  const TimeNs makespan = secondsToNs(3.0 * kGiB / 125e6);
  EXPECT_NEAR(static_cast<double>(plan->makespanNs), static_cast<double>(makespan), 1e3);
  EXPECT_EQ(plan->latestSafeStartNs,
            10'000 * kNsPerSec - 30 * kNsPerSec - plan->makespanNs - 60 * kNsPerSec);
}

// Ensures a destination's free capacity is consumed as VMs are placed on it.
TEST(SequentialVacatePlannerTest, DestinationsAreNotOverbooked) {
  VacateRequest r = threeHosts();
  r.hosts[1].freeMemoryBytes = 5 * kGiB;  // b fits v1 only
  SequentialVacatePlanner planner(simple());
  auto plan = planner.plan(r);
  ASSERT_TRUE(plan.isOk());
  EXPECT_EQ(plan->moves[0].toHost, "b");
  EXPECT_EQ(plan->moves[1].toHost, "c");
}

// Ensures a VM with nowhere to go is a rejection naming it.
TEST(SequentialVacatePlannerTest, NoRoomIsRejected) {
  VacateRequest r = threeHosts();
  r.hosts[1].freeMemoryBytes = 0;
  r.hosts[2].canReceive = false;
  SequentialVacatePlanner planner(simple());
  auto plan = planner.plan(r);
  ASSERT_FALSE(plan.isOk());
  EXPECT_EQ(plan.status().code(), StatusCode::kRejected);
  EXPECT_NE(plan.status().message().find("v1"), std::string::npos);
}

// Ensures the candidate ranking cost counts non-zero memory only.
TEST(SequentialVacatePlannerTest, VacateBytesCountsNonzeroMemory) {
  EXPECT_EQ(vacateBytes(threeHosts(), "a"), 3 * kGiB);
  EXPECT_EQ(vacateBytes(threeHosts(), "c"), 0u);
}

}  // namespace
}  // namespace vrm::planner
