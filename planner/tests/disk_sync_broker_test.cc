#include "vrm/planner/disk_sync_broker.h"

#include <gtest/gtest.h>

#include <cmath>

namespace vrm::planner {
namespace {

using Network = DiskSyncDecision::Network;

constexpr double kMB = 1e6;
constexpr double kStep = 10 * kMB;

DiskSyncBroker makeBroker(int quietPeriodsToLift = 2) {
  DiskSyncBrokerOptions options;
  options.danger = 3.0;
  options.warning = 4.0;
  options.quietPeriodsToLift = quietPeriodsToLift;
  options.increaseBytesPerSec = kStep;
  auto broker = DiskSyncBroker::create(options);
  EXPECT_TRUE(broker.isOk());
  return std::move(*broker);
}

// A period with plenty of slack: 100 MB left at `net` with no dirtying, 1000 s to the deadline.
DiskSyncObservation relaxed(double net, bool backOff) { return {100 * kMB, net, 0, 1000, backOff}; }

DiskSyncDecision stepOk(DiskSyncBroker& broker, const DiskSyncObservation& o) {
  auto d = broker.step(o);
  EXPECT_TRUE(d.isOk()) << d.status().toString();
  return d.isOk() ? *d : DiskSyncDecision{};
}

// Ensures the TCP-like cycle: halve on back-off, hold when quiet, +C per quiet period, and the
// limit lifted once more than n consecutive periods were quiet.
TEST(DiskSyncBrokerTest, HalveHoldIncreaseLift) {
  DiskSyncBroker broker = makeBroker(/*quietPeriodsToLift=*/2);
  EXPECT_FALSE(broker.networkLimitBytesPerSec());

  DiskSyncDecision d = stepOk(broker, relaxed(100 * kMB, true));  // no lastOk yet: halve
  EXPECT_EQ(d.network, Network::kSetLimit);
  EXPECT_DOUBLE_EQ(d.networkLimitBytesPerSec, 50 * kMB);
  EXPECT_TRUE(broker.reducing());

  d = stepOk(broker, relaxed(50 * kMB, true));  // still congested: halve again (Alg. 2 l. 3)
  EXPECT_DOUBLE_EQ(d.networkLimitBytesPerSec, 25 * kMB);

  d = stepOk(broker, relaxed(25 * kMB, false));  // quiet after a reduction: hold, mark OK (l. 5)
  EXPECT_EQ(d.network, Network::kSetLimit);
  EXPECT_DOUBLE_EQ(d.networkLimitBytesPerSec, 25 * kMB);
  EXPECT_EQ(broker.lastOkNetworkBytesPerSec(), 25 * kMB);
  EXPECT_FALSE(broker.reducing());
  EXPECT_EQ(broker.consecutiveQuietPeriods(), 1);

  d = stepOk(broker, relaxed(25 * kMB, false));  // 2 quiet periods, not > n: +C (l. 16)
  EXPECT_DOUBLE_EQ(d.networkLimitBytesPerSec, 25 * kMB + kStep);

  d = stepOk(broker, relaxed(35 * kMB, false));  // 3 quiet periods > n = 2: lift (l. 14)
  EXPECT_EQ(d.network, Network::kLift);
  EXPECT_FALSE(broker.networkLimitBytesPerSec());
  EXPECT_EQ(broker.lastOkNetworkBytesPerSec(), 35 * kMB);

  d = stepOk(broker, relaxed(80 * kMB, false));  // unlimited and quiet: nothing to change
  EXPECT_EQ(d.network, Network::kKeep);
  EXPECT_FALSE(broker.networkLimitBytesPerSec());
}

// Ensures a back-off while increasing reverts to the last rate that caused no congestion, and a
// further back-off halves from there.
TEST(DiskSyncBrokerTest, BackOffWhileIncreasingRevertsToLastOk) {
  DiskSyncBroker broker = makeBroker(/*quietPeriodsToLift=*/10);
  stepOk(broker, relaxed(100 * kMB, true));                       // limit 50
  stepOk(broker, relaxed(50 * kMB, false));                       // hold 50, lastOk 50
  stepOk(broker, relaxed(50 * kMB, false));                       // 60
  DiskSyncDecision d = stepOk(broker, relaxed(60 * kMB, false));  // lastOk 60, limit 70
  EXPECT_DOUBLE_EQ(d.networkLimitBytesPerSec, 70 * kMB);

  d = stepOk(broker, relaxed(70 * kMB, true));  // Alg. 2 l. 10
  EXPECT_EQ(d.network, Network::kSetLimit);
  EXPECT_DOUBLE_EQ(d.networkLimitBytesPerSec, 60 * kMB);
  EXPECT_TRUE(broker.reducing());
  EXPECT_EQ(broker.consecutiveQuietPeriods(), 0);

  d = stepOk(broker, relaxed(60 * kMB, true));
  EXPECT_DOUBLE_EQ(d.networkLimitBytesPerSec, 30 * kMB);
}

// Ensures the thresholds: above warning nothing is capped; between danger and warning disk writes
// are capped but back-off is still honoured; below danger back-off is ignored and others warned.
TEST(DiskSyncBrokerTest, DangerVersusWarning) {
  // 100 MB left at 100 MB/s with no dirtying: timeleft = 1 s, so the ratio is the time left.
  auto at = [](double timeToDeadlineS, bool backOff) {
    return DiskSyncObservation{100 * kMB, 100 * kMB, 0, timeToDeadlineS, backOff};
  };
  {
    DiskSyncBroker broker = makeBroker();
    DiskSyncDecision d = stepOk(broker, at(5, true));  // ratio 5: relaxed
    EXPECT_DOUBLE_EQ(d.timeLeftS, 1);
    EXPECT_DOUBLE_EQ(d.deadlineRatio, 5);
    EXPECT_FALSE(d.limitDisk);
    EXPECT_FALSE(d.inDanger);
    EXPECT_EQ(d.network, Network::kSetLimit);
  }
  {
    DiskSyncBroker broker = makeBroker();
    DiskSyncDecision d = stepOk(broker, at(3.5, true));  // ratio 3.5: warning only
    EXPECT_TRUE(d.limitDisk);
    // Expression 1 at the current rate: 100 MB/s - 100 MB / 3.5 s.
    EXPECT_NEAR(d.diskLimitBytesPerSec, 100 * kMB - 100 * kMB / 3.5, 1e-6);
    EXPECT_FALSE(d.inDanger);
    EXPECT_EQ(d.network, Network::kSetLimit);
    EXPECT_DOUBLE_EQ(d.networkLimitBytesPerSec, 50 * kMB);
  }
  {
    DiskSyncBroker broker = makeBroker();
    DiskSyncDecision d = stepOk(broker, at(2, true));  // ratio 2: danger (and warning)
    EXPECT_TRUE(d.inDanger);
    EXPECT_TRUE(d.limitDisk);
    EXPECT_EQ(d.network, Network::kKeep);  // the back-off request is ignored
    EXPECT_FALSE(broker.networkLimitBytesPerSec());
    EXPECT_EQ(broker.consecutiveQuietPeriods(), 0);  // but it was congestion all the same
  }
  {
    DiskSyncBroker broker = makeBroker();
    DiskSyncDecision d = stepOk(broker, at(3, false));  // exactly danger: not in danger
    EXPECT_FALSE(d.inDanger);
    d = stepOk(broker, at(4, false));  // exactly warning: warned
    EXPECT_TRUE(d.limitDisk);
  }
}

// Ensures a danger period keeps an existing limit untouched and later periods resume Alg. 2.
TEST(DiskSyncBrokerTest, DangerKeepsTheLimit) {
  DiskSyncBroker broker = makeBroker();
  stepOk(broker, relaxed(100 * kMB, true));                                // limit 50
  DiskSyncDecision d = stepOk(broker, {100 * kMB, 50 * kMB, 0, 1, true});  // ratio 0.5
  EXPECT_TRUE(d.inDanger);
  EXPECT_EQ(d.network, Network::kKeep);
  EXPECT_EQ(broker.networkLimitBytesPerSec(), 50 * kMB);
  d = stepOk(broker, relaxed(50 * kMB, true));
  EXPECT_DOUBLE_EQ(d.networkLimitBytesPerSec, 25 * kMB);
}

// Ensures a disk dirtied faster than the link or a passed deadline is danger, and no disk left
// is no danger.
TEST(DiskSyncBrokerTest, EdgeRatios) {
  DiskSyncBroker broker = makeBroker();
  DiskSyncDecision d = stepOk(broker, {100 * kMB, 50 * kMB, 60 * kMB, 1000, false});
  EXPECT_TRUE(std::isinf(d.timeLeftS));
  EXPECT_TRUE(d.inDanger);
  d = stepOk(broker, {100 * kMB, 100 * kMB, 0, -5, false});
  EXPECT_TRUE(d.inDanger);
  EXPECT_TRUE(d.limitDisk);
  EXPECT_DOUBLE_EQ(d.diskLimitBytesPerSec, 0);
  d = stepOk(broker, {0, 100 * kMB, 0, 10, false});
  EXPECT_FALSE(d.inDanger);
  EXPECT_FALSE(d.limitDisk);
}

// Ensures bad options and observations are invalid-argument and leave the state unchanged.
TEST(DiskSyncBrokerTest, BadInput) {
  DiskSyncBrokerOptions bad;
  bad.danger = 5;
  bad.warning = 4;
  EXPECT_EQ(DiskSyncBroker::create(bad).status().code(), StatusCode::kInvalidArgument);
  bad = {};
  bad.danger = 0.5;
  EXPECT_FALSE(DiskSyncBroker::create(bad).isOk());
  bad = {};
  bad.increaseBytesPerSec = 0;
  EXPECT_FALSE(DiskSyncBroker::create(bad).isOk());
  bad = {};
  bad.quietPeriodsToLift = -1;
  EXPECT_FALSE(DiskSyncBroker::create(bad).isOk());

  DiskSyncBroker broker = makeBroker();
  stepOk(broker, relaxed(100 * kMB, false));
  EXPECT_EQ(broker.step({-1, 1, 0, 10, false}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(broker.step({1, -1, 0, 10, false}).isOk());
  EXPECT_FALSE(broker.step({1, 1, NAN, 10, false}).isOk());
  EXPECT_FALSE(broker.step({1, 1, 0, INFINITY, false}).isOk());
  EXPECT_EQ(broker.consecutiveQuietPeriods(), 1);
}

}  // namespace
}  // namespace vrm::planner
