#include "vrm/manager/replanner.h"

#include <gtest/gtest.h>

#include <climits>

namespace vrm::manager {
namespace {

constexpr TimeNs kSec = kNsPerSec;

PlannedMove planned(const std::string& vm, const std::string& from, const std::string& to,
                    std::uint32_t batch, TimeNs startNs, TimeNs endNs) {
  PlannedMove m;
  m.vmId = vm;
  m.fromHost = from;
  m.toHost = to;
  m.batch = batch;
  m.startOffsetNs = startNs;
  m.endOffsetNs = endNs;
  m.transferredBytes = 1000;
  return m;
}

// A reservation vacating from latest safe start 0 whose clones must begin at `deadlineNs`.
Reservation vacating(TimeNs deadlineNs) {
  Reservation r;
  r.id = "r1";
  r.state = ReservationState::kVacating;
  r.plan.latestSafeStartNs = 0;
  r.plan.cloneTimeNs = 10 * kSec;
  r.request.startNs = deadlineNs + r.plan.cloneTimeNs;
  return r;
}

Move& running(Reservation& r, PlannedMove m, TimeNs startedNs) {
  Move& move = r.addMove(MovePurpose::kVacate, std::move(m));
  move.progress.state = MoveState::kRunning;
  move.progress.actualStartNs = startedNs;
  return move;
}

// A running move is on plan until it overruns and then needs as long again as it overran; with
// a progress report it is projected at its average rate; a planned one takes its plan.
TEST(ReplannerTest, MoveTimeLeftFollowsProgressOrOverrun) {
  ManualClock clock(100 * kSec);
  Replanner replanner(clock, {});
  Reservation r = vacating(1000 * kSec);
  Move& m = running(r, planned("v", "a", "b", 0, 0, 40 * kSec), 100 * kSec);
  const MoveId id = m.id;
  const Move& planMove =
      r.addMove(MovePurpose::kVacate, planned("w", "a", "c", 1, 40 * kSec, 70 * kSec));
  EXPECT_EQ(replanner.moveTimeLeft(r, planMove), 30 * kSec);
  EXPECT_EQ(replanner.moveTimeLeft(r, *r.findMove(id)), 40 * kSec);
  clock.set(130 * kSec);
  EXPECT_EQ(replanner.moveTimeLeft(r, *r.findMove(id)), 10 * kSec);
  clock.set(150 * kSec);  // 10 s over
  EXPECT_EQ(replanner.moveTimeLeft(r, *r.findMove(id)), 10 * kSec);

  replanner.onProgress("r1", id, 0.25);  // a quarter in 50 s: 200 s in all
  EXPECT_EQ(replanner.moveTimeLeft(r, *r.findMove(id)), 150 * kSec);
  ASSERT_TRUE(replanner.progress("r1", id));
  EXPECT_EQ(replanner.progress("r1", id)->second, 150 * kSec);
  replanner.forgetProgress("r1", id);
  EXPECT_FALSE(replanner.progress("r1", id));
  EXPECT_EQ(replanner.moveTimeLeft(r, *r.findMove(id)), 10 * kSec);

  r.findMove(id)->progress.state = MoveState::kDone;
  EXPECT_EQ(replanner.moveTimeLeft(r, *r.findMove(id)), 0);
}

// The vacate still needs its running batch's slowest move and then the later batches' planned
// spans; running-only counts only the moves of that batch already running.
TEST(ReplannerTest, ProjectedTimeLeftIsTheRunningBatchThenTheLaterSpans) {
  constexpr TimeNs t0 = 1000 * kSec;
  ManualClock clock(t0);
  Replanner replanner(clock, {});
  Reservation r = vacating(t0 + 1000 * kSec);
  std::uint32_t batch = 7;
  EXPECT_EQ(replanner.projectedTimeLeft(r, &batch), 0);
  EXPECT_EQ(batch, UINT32_MAX);

  running(r, planned("v1", "a", "x", 0, 0, 20 * kSec), t0);
  r.addMove(MovePurpose::kVacate, planned("v2", "a", "y", 0, 0, 50 * kSec));  // not started
  r.addMove(MovePurpose::kVacate, planned("v3", "b", "x", 1, 50 * kSec, 80 * kSec));
  r.addMove(MovePurpose::kVacate, planned("v4", "b", "y", 1, 60 * kSec, 90 * kSec));
  r.addMove(MovePurpose::kVacate, planned("v5", "c", "y", 2, 90 * kSec, 100 * kSec));
  r.addMove(MovePurpose::kReturn, planned("v6", "y", "c", 5, 0, 500 * kSec));  // not vacating
  clock.set(t0 + 5 * kSec);
  EXPECT_EQ(replanner.projectedTimeLeft(r, &batch), (50 + 40 + 10) * kSec);
  EXPECT_EQ(batch, 0u);
  EXPECT_EQ(replanner.projectedTimeLeft(r, &batch, /*runningOnly=*/true), 15 * kSec);
}

// A reservation is assessed at once and then once a period; only one behind (ratio <= warning)
// gets an assessment, whose ratio is judged at the plan's quantile.
TEST(ReplannerTest, AssessesOncePerPeriodAndOnlyWhenBehind) {
  constexpr TimeNs t0 = 1000 * kSec;
  ManualClock clock(t0);
  Replanner replanner(clock, {1.1, 1.0, 5 * kSec});
  Reservation r = vacating(t0 + 100 * kSec);
  running(r, planned("v", "a", "b", 0, 0, 50 * kSec), t0);
  EXPECT_EQ(replanner.nextAssessNs("r1"), kTimeInfinity);
  EXPECT_FALSE(replanner.assess(r));  // 100 s to go for 50 s: on time
  EXPECT_EQ(replanner.nextAssessNs("r1"), t0 + 5 * kSec);

  r.plan.makespanNs = 50 * kSec;
  r.plan.makespanQuantileNs = 150 * kSec;  // judged at three times the mean
  clock.set(t0 + 4 * kSec);
  EXPECT_FALSE(replanner.assess(r));  // behind, but not due
  EXPECT_EQ(replanner.nextAssessNs("r1"), t0 + 5 * kSec);
  clock.set(t0 + 10 * kSec);
  const std::optional<Assessment> a = replanner.assess(r);
  ASSERT_TRUE(a);
  EXPECT_EQ(replanner.nextAssessNs("r1"), t0 + 15 * kSec);
  EXPECT_EQ(a->nowNs, t0 + 10 * kSec);
  EXPECT_EQ(a->batch, 0u);
  EXPECT_EQ(a->timeLeftNs, 40 * kSec);
  EXPECT_EQ(a->deadlineNs, t0 + 100 * kSec);
  EXPECT_DOUBLE_EQ(a->quantileScale, 3.0);
  EXPECT_DOUBLE_EQ(a->ratio, 90.0 / 120.0);
  EXPECT_DOUBLE_EQ(a->ratioOf(20 * kSec), 90.0 / 60.0);
  EXPECT_EQ(a->projectedEndNs(), t0 + 130 * kSec);

  clock.set(t0 + 15 * kSec);
  r.plan.makespanQuantileNs = 0;  // at the mean: 85 s to go for 35 s, on time again
  EXPECT_FALSE(replanner.assess(r));
}

// Three re-plans of each kind per reservation, counted apart.
TEST(ReplannerTest, ReplansAreBoundedPerKind) {
  ManualClock clock(0);
  Replanner replanner(clock, {});
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(replanner.mayReplan("r1"));
    replanner.countReplan("r1");
  }
  EXPECT_FALSE(replanner.mayReplan("r1"));
  EXPECT_TRUE(replanner.mayReplan("r2"));
  EXPECT_TRUE(replanner.mayPark("r1"));
  replanner.countPark("r1");
  EXPECT_TRUE(replanner.mayPark("r1"));
}

// A re-plan replaces only eligible moves not started of the batches asked for, adds up their
// batches' spans, and puts its moves after the last batch of those that stay.
TEST(ReplannerTest, SelectRestKeepsWhatStartedAndGoesAfterIt) {
  Reservation r = vacating(1000 * kSec);
  running(r, planned("v1", "a", "x", 1, 0, 20 * kSec), 0);
  const MoveId v2 = r.addMove(MovePurpose::kVacate, planned("v2", "a", "y", 1, 0, 30 * kSec)).id;
  const MoveId v3 =
      r.addMove(MovePurpose::kVacate, planned("v3", "b", "x", 2, 30 * kSec, 60 * kSec)).id;
  r.addMove(MovePurpose::kVacate, planned("v4", "b", "y", 2, 40 * kSec, 70 * kSec));
  r.addMove(MovePurpose::kVacate, planned("v0", "c", "y", 0, 0, 5 * kSec));

  const auto all = [](const PlannedMove&) { return true; };
  RestSelection s = selectRest(r, 1, all);
  EXPECT_EQ(s.rest.size(), 3u);  // v2, v3, v4; v1 runs, v0 is of batch 0
  EXPECT_EQ(s.oldSpanNs, (30 + 40) * kSec);
  EXPECT_EQ(s.base, 2u);  // after v1's batch

  s = selectRest(r, 1, [](const PlannedMove& m) { return m.vmId != "v4"; });
  EXPECT_EQ(s.rest, (std::set<MoveId>{v2, v3}));
  EXPECT_EQ(s.base, 3u);  // v4 stays in batch 2

  s = selectRest(r, 5, all);
  EXPECT_TRUE(s.rest.empty());
}

// The NICs running moves share with the re-plan's first batch are split evenly among the moves
// through them; parks share no NIC; NICs only one side uses are left whole.
TEST(ReplannerTest, SharesOnlyTheNicsBothUse) {
  Reservation r = vacating(1000 * kSec);
  const MoveId a = running(r, planned("v1", "a", "x", 0, 0, 20 * kSec), 0).id;
  PlannedMove park = planned("v2", "c", "c", 0, 0, 5 * kSec);
  park.mode = MoveMode::kPark;
  running(r, park, 0);
  r.addMove(MovePurpose::kVacate, planned("v3", "a", "y", 0, 0, 30 * kSec));

  AlongsideSplit split = splitAlongside(r, 0);
  EXPECT_EQ(split.running, (std::vector<MoveId>{a}));
  EXPECT_EQ(split.rest.size(), 1u);

  std::map<std::string, HostRecord> hosts;
  hosts["a"].nicBandwidthBytesPerSec = 300;
  hosts["x"].nicBandwidthBytesPerSec = 100;
  hosts["y"].nicBandwidthBytesPerSec = 100;
  PlannedMove newPark = planned("v3", "x", "x", 0, 0, 1);
  newPark.mode = MoveMode::kPark;
  const std::vector<PlannedMove> first = {planned("v3", "a", "y", 0, 0, 30 * kSec),
                                          planned("v4", "a", "z", 0, 0, 30 * kSec), newPark,
                                          planned("v5", "x", "y", 1, 30 * kSec, 60 * kSec)};
  NicShares nics = shareNics(r, split.running, first, hosts);
  EXPECT_EQ(nics.share, (std::map<std::string, double>{{"a", 100}}));  // 1 running + 2 new
  EXPECT_EQ(nics.inUse, (std::map<std::string, double>{{"a", 100}}));
  EXPECT_TRUE(shareNics(r, split.running, {first[3]}, hosts).share.empty());
}

// A running move on a shared NIC is capped at its smallest share, and its end moves out to what
// its bytes left take at that rate (never in); one on no shared NIC keeps its rate.
TEST(ReplannerTest, CapRunningMovesTheirEndsOut) {
  ManualClock clock(0);
  Replanner replanner(clock, {});
  Reservation r = vacating(1000 * kSec);
  const MoveId a = running(r, planned("v1", "a", "x", 0, 0, 10 * kSec), 0).id;
  const MoveId b = running(r, planned("v2", "b", "y", 0, 0, 20 * kSec), 0).id;
  replanner.onProgress("r1", a, 0.5);  // 500 of its 1000 bytes left
  const RunningCaps caps = replanner.capRunning(r, {a, b}, {{"a", 50}, {"x", 10}}, 0);
  ASSERT_EQ(caps.caps.size(), 1u);
  EXPECT_EQ(caps.caps[0].move, a);
  EXPECT_DOUBLE_EQ(caps.caps[0].capBytesPerSec, 10);
  EXPECT_EQ(caps.caps[0].endOffsetNs, 50 * kSec);
  EXPECT_EQ(caps.timeLeftNs, 50 * kSec);
  EXPECT_DOUBLE_EQ(caps.lowestCapBytesPerSec, 10);

  const RunningCaps fast = replanner.capRunning(r, {a, b}, {{"a", 1e6}}, 0);
  ASSERT_EQ(fast.caps.size(), 1u);
  EXPECT_EQ(fast.caps[0].endOffsetNs, 10 * kSec);  // its plan's end stays
  EXPECT_EQ(fast.timeLeftNs, 20 * kSec);           // b, uncapped, is the slowest
}

// A capped running move should carry its cap while another unfinished move of its batch
// shares a NIC with it and none once none does; a change is proposed until it is sent, and
// again once it is forgotten (not delivered).
TEST(ReplannerTest, CapChangesFollowTheSharingMoves) {
  ManualClock clock(0);
  Replanner replanner(clock, {});
  Reservation r = vacating(1000 * kSec);
  PlannedMove capped = planned("v1", "a", "x", 0, 0, 10 * kSec);
  capped.replanCapBytesPerSec = 40;
  const MoveId a = running(r, capped, 0).id;
  const MoveId b = r.addMove(MovePurpose::kVacate, planned("v2", "b", "x", 0, 0, 10 * kSec)).id;
  r.addMove(MovePurpose::kVacate, planned("v3", "a", "y", 1, 10 * kSec, 20 * kSec));

  std::vector<CapChange> changes = replanner.capChanges(r);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].move, a);
  EXPECT_DOUBLE_EQ(changes[0].bytesPerSec, 40);
  replanner.capSent("r1", a, 40);
  EXPECT_TRUE(replanner.capChanges(r).empty());

  r.findMove(b)->progress.state = MoveState::kDone;  // nothing of batch 0 shares a NIC now
  changes = replanner.capChanges(r);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_DOUBLE_EQ(changes[0].bytesPerSec, 0);
  replanner.capSent("r1", a, 0);
  EXPECT_TRUE(replanner.capChanges(r).empty());
  replanner.forgetCap("r1", a);
  EXPECT_EQ(replanner.capChanges(r).size(), 1u);

  r.findMove(a)->progress.state = MoveState::kDone;
  EXPECT_TRUE(replanner.capChanges(r).empty());
}

}  // namespace
}  // namespace vrm::manager
