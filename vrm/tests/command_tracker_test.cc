#include "vrm/manager/command_tracker.h"

#include <gtest/gtest.h>

namespace vrm::manager {
namespace {

PendingCommand migrate(const std::string& reservation, const std::string& host, MoveId move,
                       TimeNs deadlineNs = kTimeInfinity) {
  PendingCommand p;
  p.reservationId = reservation;
  p.step = CommandStep::kMigrate;
  p.move = move;
  p.host = host;
  p.command.kind = AgentCommand::Kind::kMigrate;
  p.command.host = host;
  p.command.vmId = "v";
  p.deadlineNs = deadlineNs;
  return p;
}

std::vector<std::uint64_t> ids(const std::vector<AgentCommand>& commands) {
  std::vector<std::uint64_t> out;
  for (const auto& c : commands) out.push_back(c.id);
  return out;
}

// Issued commands get increasing ids from the first, are pending and queued in order; an
// answered one is taken out once.
TEST(CommandTrackerTest, IssuedCommandsArePendingAndQueuedInOrder) {
  CommandTracker t(100);
  const std::uint64_t a = t.issue(migrate("r1", "h1", MoveId{1}));
  const std::uint64_t b = t.issue(migrate("r1", "h2", MoveId{2}));
  EXPECT_EQ(a, 100u);
  EXPECT_EQ(b, 101u);
  EXPECT_TRUE(t.inFlight("r1", CommandStep::kMigrate, MoveId{2}));
  EXPECT_FALSE(t.inFlight("r1", CommandStep::kPark, MoveId{2}));
  EXPECT_FALSE(t.inFlight("r2", CommandStep::kMigrate, MoveId{2}));
  EXPECT_EQ(ids(t.takeOutbox(0)), (std::vector<std::uint64_t>{a, b}));
  EXPECT_TRUE(t.takeOutbox(0).empty());

  std::optional<PendingCommand> answered = t.take(a);
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->host, "h1");
  EXPECT_EQ(answered->command.id, a);
  EXPECT_FALSE(t.take(a));
  EXPECT_EQ(t.find(a), nullptr);
  ASSERT_NE(t.find(b), nullptr);
}

// While staging, commands get ids but are neither pending nor queued; released they are both,
// in order; discarded they never existed (an op that failed to save issued nothing).
TEST(CommandTrackerTest, StagedCommandsWaitForTheSave) {
  CommandTracker t(1);
  t.beginStaging();
  EXPECT_TRUE(t.staging());
  const std::uint64_t a = t.issue(migrate("r1", "h1", MoveId{1}));
  EXPECT_EQ(t.find(a), nullptr);
  EXPECT_TRUE(t.takeOutbox(0).empty());
  t.discardStaged();
  EXPECT_FALSE(t.staging());
  EXPECT_EQ(t.find(a), nullptr);
  EXPECT_TRUE(t.takeOutbox(0).empty());

  t.beginStaging();
  const std::uint64_t b = t.issue(migrate("r1", "h1", MoveId{1}));
  const std::uint64_t c = t.issue(migrate("r1", "h1", MoveId{2}));
  EXPECT_GT(b, a);  // ids are never reused
  t.releaseStaged();
  EXPECT_NE(t.find(b), nullptr);
  EXPECT_NE(t.find(c), nullptr);
  EXPECT_EQ(ids(t.takeOutbox(0)), (std::vector<std::uint64_t>{b, c}));
}

// Commands held back go out first next time, before those queued since.
TEST(CommandTrackerTest, HeldBackCommandsKeepTheirPlace) {
  CommandTracker t(1);
  const std::uint64_t a = t.issue(migrate("r1", "h1", MoveId{1}));
  t.holdBack(t.takeOutbox(0), 0);
  const std::uint64_t b = t.issue(migrate("r2", "h1", MoveId{1}));
  EXPECT_EQ(ids(t.takeOutbox(0)), (std::vector<std::uint64_t>{a, b}));
}

// A command held back (its op not saved yet) cannot be late while it waits: it is never
// overdue then, and the time it waited is added to its deadline when it goes out. Before, a
// clone held back on a full disk expired as it was sent, and the agent's answer a moment later
// was ignored as unknown: the failed reservation's teardown left the clone on its host (the
// disk-full campaign, seed 752646).
TEST(CommandTrackerTest, HeldBackCommandsDeadlinesRunFromWhenTheyAreSent) {
  CommandTracker t(1);
  const std::uint64_t a = t.issue(migrate("r1", "h1", MoveId{1}, /*deadline=*/100));
  const std::uint64_t b = t.issue(migrate("r1", "h1", MoveId{2}, /*deadline=*/kTimeInfinity));
  t.holdBack(t.takeOutbox(10), 10);    // held at 10, 90 before a's deadline
  t.holdBack(t.takeOutbox(500), 500);  // still waiting: held since 10
  EXPECT_TRUE(t.overdue(1000).empty()) << "not sent: not late";
  EXPECT_EQ(ids(t.takeOutbox(1000)), (std::vector<std::uint64_t>{a, b}));
  EXPECT_EQ(t.find(a)->deadlineNs, 1090) << "its 90 left, from when it went out";
  EXPECT_EQ(t.find(b)->deadlineNs, kTimeInfinity);
  EXPECT_TRUE(t.overdue(1089).empty());
  EXPECT_EQ(t.overdue(1090), (std::vector<std::uint64_t>{a}));
}

// Overdue: past the deadline, or abandoned (looked at every time); an abandoned command has
// no deadline.
TEST(CommandTrackerTest, OverdueAndAbandonedCommands) {
  CommandTracker t(1);
  const std::uint64_t a = t.issue(migrate("r1", "h1", MoveId{1}, 50));
  const std::uint64_t b = t.issue(migrate("r1", "h1", MoveId{2}, 100));
  EXPECT_TRUE(t.overdue(49).empty());
  EXPECT_EQ(t.overdue(50), (std::vector<std::uint64_t>{a}));
  t.setDeadline(a, 200);
  EXPECT_TRUE(t.overdue(99).empty());
  t.abandon(b, 120);
  EXPECT_TRUE(t.find(b)->abandoned);
  EXPECT_EQ(t.find(b)->deadlineNs, kTimeInfinity);
  EXPECT_EQ(t.find(b)->abandonedNs, 120);
  t.abandon(b, 150);  // abandoned once: since the first time
  EXPECT_EQ(t.find(b)->abandonedNs, 120);
  EXPECT_EQ(t.overdue(0), (std::vector<std::uint64_t>{b}));
  EXPECT_EQ(t.overdue(200), (std::vector<std::uint64_t>{a, b}));
}

// Every id the tracker issued stays known after it leaves the pending commands: answered (a
// repeat of the answer is recognised), given up (its late answer finds the command), or a
// drop's; ids it never issued (an earlier vrmd's, below firstId) are not its.
TEST(CommandTrackerTest, AnsweredAndGivenUpCommandsStayKnown) {
  CommandTracker t(1000);
  const std::uint64_t a = t.issue(migrate("r1", "h1", MoveId{1}, 50));
  const std::uint64_t b = t.issue(migrate("r1", "h1", MoveId{2}, 50));
  ASSERT_TRUE(t.drop("h1", "x", {1, 1024, 0}));
  const std::uint64_t dropId = t.takeOutbox(0).back().id;
  EXPECT_FALSE(t.answered(a));
  ASSERT_TRUE(t.take(a));
  EXPECT_TRUE(t.answered(a));
  EXPECT_EQ(t.givenUp(a), nullptr);

  std::optional<PendingCommand> given = t.giveUp(b);
  ASSERT_TRUE(given);
  EXPECT_EQ(t.find(b), nullptr);
  ASSERT_NE(t.givenUp(b), nullptr);
  EXPECT_EQ(t.givenUp(b)->move, MoveId{2});
  EXPECT_FALSE(t.answered(b));
  EXPECT_FALSE(t.giveUp(b));

  ASSERT_TRUE(t.settleDrop("h1", dropId));
  EXPECT_TRUE(t.answered(dropId));

  EXPECT_TRUE(t.issuedHere(a));
  EXPECT_TRUE(t.issuedHere(dropId));
  EXPECT_FALSE(t.issuedHere(999));   // an earlier vrmd's
  EXPECT_FALSE(t.issuedHere(5000));  // not issued yet
}

// An ended reservation's clone in flight is known gone by its clone command's deadline plus
// the destroy it then gets, or by its destroy's deadline; nothing says when once the command is
// abandoned, held back, or late.
TEST(CommandTrackerTest, LeftoverGoneByFollowsTheCloneOrDestroyInFlight) {
  CommandTracker t(1);
  PendingCommand clone;
  clone.reservationId = "r1";
  clone.step = CommandStep::kClone;
  clone.clone = 1;
  clone.host = "h1";
  clone.deadlineNs = 100;
  clone.undoneWithinNs = 30;
  const std::uint64_t c = t.issue(clone);
  EXPECT_EQ(t.leftoverGoneBy("r1", 1, 50), 130);
  EXPECT_EQ(t.leftoverGoneBy("r1", 0, 50), kTimeInfinity);  // nothing in flight for it
  EXPECT_EQ(t.leftoverGoneBy("r2", 1, 50), kTimeInfinity);
  EXPECT_EQ(t.leftoverGoneBy("r1", 1, 100), kTimeInfinity);  // late
  t.holdBack(t.takeOutbox(50), 50);
  EXPECT_EQ(t.leftoverGoneBy("r1", 1, 50), kTimeInfinity);  // not sent yet
  t.takeOutbox(60);
  EXPECT_EQ(t.leftoverGoneBy("r1", 1, 60), 140);  // its deadline ran from the send
  t.abandon(c, 110);
  EXPECT_EQ(t.leftoverGoneBy("r1", 1, 120), kTimeInfinity);
  ASSERT_TRUE(t.take(c));
  PendingCommand destroy = clone;
  destroy.step = CommandStep::kDestroy;
  destroy.undoneWithinNs = 0;
  destroy.deadlineNs = 200;
  t.issue(destroy);
  EXPECT_EQ(t.leftoverGoneBy("r1", 1, 150), 200);
}

// The given-up and answered records are bounded: the oldest go first.
TEST(CommandTrackerTest, KnownCommandsAreBounded) {
  CommandTracker t(1);
  std::vector<std::uint64_t> ids;
  for (std::size_t i = 0; i < CommandTracker::kGivenUpKept + 2; ++i) {
    ids.push_back(t.issue(migrate("r1", "h1", MoveId{1})));
  }
  for (std::uint64_t id : ids) ASSERT_TRUE(t.giveUp(id));
  EXPECT_EQ(t.givenUp(ids[0]), nullptr);
  EXPECT_EQ(t.givenUp(ids[1]), nullptr);
  EXPECT_NE(t.givenUp(ids[2]), nullptr);
  EXPECT_NE(t.givenUp(ids.back()), nullptr);
}

// A resend queues the host's pending commands and drops again under their ids, except those
// still waiting in the outbox, and says which pending ones went.
TEST(CommandTrackerTest, ResendQueuesWhatTheHostHasNotAnswered) {
  CommandTracker t(1);
  const std::uint64_t a = t.issue(migrate("r1", "h1", MoveId{1}));
  t.issue(migrate("r1", "h2", MoveId{2}));
  ASSERT_TRUE(t.drop("h1", "x", {1, 1024, 0}));
  t.takeOutbox(0);
  const std::uint64_t c = t.issue(migrate("r2", "h1", MoveId{1}));  // still queued

  std::size_t queued = 0;
  EXPECT_EQ(t.resend("h1", &queued), (std::vector<std::uint64_t>{a}));
  EXPECT_EQ(queued, 2u);  // a and the drop
  const std::vector<AgentCommand> out = t.takeOutbox(0);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].id, c);
  EXPECT_EQ(out[1].id, a);
  EXPECT_EQ(out[2].vmId, "x");
  EXPECT_FALSE(out[2].commit);
  EXPECT_TRUE(t.resend("h3").empty());
}

// A drop is sent once per (host, VM) until answered; only its host's answer settles it.
TEST(CommandTrackerTest, DropsAreSettledByTheirHostsAnswer) {
  CommandTracker t(7);
  ASSERT_TRUE(t.drop("h1", "x", {2, 2048, 0}));
  EXPECT_FALSE(t.drop("h1", "x", {2, 2048, 0}));
  const std::vector<AgentCommand> out = t.takeOutbox(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, AgentCommand::Kind::kFinishIncoming);
  EXPECT_EQ(out[0].host, "h1");
  const std::uint64_t id = out[0].id;
  EXPECT_TRUE(t.dropping("h1", "x"));
  EXPECT_EQ(t.dropHost(id), "h1");
  ASSERT_EQ(t.dropsOn("h1").size(), 1u);
  EXPECT_EQ(t.dropsOn("h1")[0].second.memoryBytes, 2048);
  EXPECT_TRUE(t.dropsOn("h2").empty());

  EXPECT_FALSE(t.settleDrop("h2", id));
  EXPECT_FALSE(t.settleDrop("h1", id + 1));
  EXPECT_EQ(t.settleDrop("h1", id), "x");
  EXPECT_FALSE(t.dropping("h1", "x"));
  EXPECT_FALSE(t.dropHost(id));
  EXPECT_TRUE(t.drop("h1", "x", {2, 2048, 0}));  // may be dropped again
}

}  // namespace
}  // namespace vrm::manager
