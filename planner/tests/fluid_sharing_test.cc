// The fluid model of concurrent moves (planner/src/vacate/fluid_sharing.h): max-min fair rates by
// progressive filling, and batches run to completion with rates recomputed as moves come and go.
#include "vacate/fluid_sharing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace vrm::planner::vacate {
namespace {

// A move of one segment per entry: {network?, seconds or bytes}.
MoveEval moveOf(std::vector<Segment> segments) {
  MoveEval e;
  e.segments = std::move(segments);
  return e;
}

// The textbook example: the bottleneck's flows get its equal share, the others split what is left.
TEST(FairShareTest, RatesAreMaxMinFair) {
  const std::vector<double> capacity = {10, 4, 10};
  const std::vector<std::vector<int>> uses = {{0, 1}, {1}, {0, 2}, {2}, {0}};
  std::vector<Flow> flows(uses.size());
  for (std::size_t i = 0; i < uses.size(); ++i) flows[i].resources = &uses[i];
  FairShare share(capacity);
  share.rates(flows, {1, 1, 1, 1, 0});
  EXPECT_DOUBLE_EQ(flows[0].rate, 2);  // resource 1 (4) shared by two
  EXPECT_DOUBLE_EQ(flows[1].rate, 2);
  EXPECT_DOUBLE_EQ(flows[2].rate, 5);  // resource 2 (10) shared by two; resource 0 has 8 left
  EXPECT_DOUBLE_EQ(flows[3].rate, 5);
  EXPECT_EQ(flows[4].rate, 0);  // not active
  // Scratch state is reset between calls: the fifth alone takes all of resource 0.
  share.rates(flows, {0, 0, 0, 0, 1});
  EXPECT_DOUBLE_EQ(flows[4].rate, 10);
}

// A flow that uses no resource (a suspension kept in place) is never network-bound.
TEST(FairShareTest, FlowWithoutResourcesIsUnbounded) {
  const std::vector<double> capacity = {1};
  const std::vector<int> none;
  std::vector<Flow> flows(1);
  flows[0].resources = &none;
  FairShare share(capacity);
  share.rates(flows, {1});
  EXPECT_TRUE(std::isinf(flows[0].rate));
}

// Two moves on one link share it until the smaller ends; the other then has it alone. Fixed
// segments overlap freely, and the downtime is where the marked segments say.
TEST(SimulateBatchTest, RatesFollowTheMovesOnTheNetwork) {
  const std::vector<double> capacity = {1};
  const std::vector<int> link = {0};
  const MoveEval small = moveOf({{false, 5, false, false}, {true, 10, false, false}});
  const MoveEval large = moveOf({{true, 30, false, false}, {false, 2, true, true}});
  std::vector<Flow> flows(2);
  flows[0].eval = &small;
  flows[1].eval = &large;
  flows[0].resources = flows[1].resources = &link;
  FairShare share(capacity);
  const double end = simulateBatch(flows, 100, share);
  // 0-5: large alone at 1 (25 left); 5-25: both at 0.5 (small done, 15 left); 25-40: large at 1.
  EXPECT_NEAR(flows[0].end, 125, 1e-9);
  EXPECT_NEAR(flows[1].end, 142, 1e-9);
  EXPECT_NEAR(end, 142, 1e-9);
  EXPECT_NEAR(flows[1].downStart, 140, 1e-9);
  EXPECT_NEAR(flows[1].downEnd, 142, 1e-9);
  EXPECT_LT(flows[0].downStart, 0);  // never stopped
}

}  // namespace
}  // namespace vrm::planner::vacate
