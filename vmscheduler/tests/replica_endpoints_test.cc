#include "vrm/vmscheduler/replica_endpoints.h"

#include <gtest/gtest.h>

namespace vrm::vmscheduler {
namespace {

using Leaving = ReplicaEndpoints::Leaving;

// Ensures a list is split on commas, empty elements dropped, and one endpoint never rotates.
TEST(ReplicaEndpointsTest, ParsesAListAndASingleEndpoint) {
  ReplicaEndpoints one("tcp://a:1");
  EXPECT_FALSE(one.rotates());
  EXPECT_EQ(one.current(), "tcp://a:1");
  ReplicaEndpoints list(",tcp://a:1,,tcp://b:2,");
  EXPECT_TRUE(list.rotates());
  EXPECT_EQ(list.all(), (std::vector<std::string>{"tcp://a:1", "tcp://b:2"}));
  EXPECT_EQ(list.describe(), "tcp://a:1,tcp://b:2");
  EXPECT_EQ(ReplicaEndpoints("").current(), "") << "left for connect() to refuse";
}

// Ensures the endpoints are tried in order and round again after the last.
TEST(ReplicaEndpointsTest, MovesInOrderAndWraps) {
  ReplicaEndpoints r("a,b,c");
  EXPECT_EQ(r.current(), "a");
  EXPECT_EQ(r.next(Leaving::kUnreachable).endpoint, "b");
  EXPECT_EQ(r.next(Leaving::kUnreachable).endpoint, "c");
  EXPECT_EQ(r.next(Leaving::kUnreachable).endpoint, "a");
  EXPECT_EQ(r.current(), "a");
}

// Ensures the agent is told to pause only once every endpoint in a row said "not the leader",
// and that the row starts again after the pause.
TEST(ReplicaEndpointsTest, PausesAfterAWholeRoundOfRefusals) {
  ReplicaEndpoints r("a,b,c");
  EXPECT_FALSE(r.next(Leaving::kNotLeader).pause);  // a refused
  EXPECT_FALSE(r.next(Leaving::kNotLeader).pause);  // b refused
  auto hop = r.next(Leaving::kNotLeader);           // c refused: all three
  EXPECT_TRUE(hop.pause);
  EXPECT_EQ(hop.endpoint, "a");
  EXPECT_FALSE(r.next(Leaving::kNotLeader).pause) << "a new row starts after the pause";
}

// Ensures an unreachable replica or a found leader ends a row of refusals: no pause then.
TEST(ReplicaEndpointsTest, AnUnreachableReplicaOrALeaderEndsTheRow) {
  ReplicaEndpoints r("a,b");
  EXPECT_FALSE(r.next(Leaving::kNotLeader).pause);
  EXPECT_FALSE(r.next(Leaving::kUnreachable).pause);  // its connect timeout was the wait
  EXPECT_FALSE(r.next(Leaving::kNotLeader).pause);
  r.foundLeader();
  EXPECT_FALSE(r.next(Leaving::kNotLeader).pause);
  EXPECT_TRUE(r.next(Leaving::kNotLeader).pause);
}

}  // namespace
}  // namespace vrm::vmscheduler
