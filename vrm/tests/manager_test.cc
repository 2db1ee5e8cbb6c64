#include "vrm/manager/manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "fake_agents.h"
#include "manager_fixture.h"

namespace vrm::manager {
namespace {

using testing::FakeAgents;
using testing::kGiB;
using testing::kHour;
using testing::kStartOfTime;

std::vector<TemplateSpec> templates() { return {testing::bmiTemplate("bmi-decoder")}; }

class ManagerTest : public testing::ManagerFixture {
 protected:
  void SetUp() override {
    startManager(templates());
    // node1 is busiest, node3 cheapest to vacate (one small VM).
    agents_->addHost("node1", 16, 64 * kGiB,
                     {FakeAgents::vm("a1", 8 * kGiB), FakeAgents::vm("a2", 8 * kGiB)});
    agents_->addHost("node2", 16, 64 * kGiB, {FakeAgents::vm("b1", 4 * kGiB)});
    agents_->addHost("node3", 16, 64 * kGiB, {FakeAgents::vm("c1", 2 * kGiB)});
  }

  // Vacates node1 (two VMs) until the first VM has migrated but its commit is unanswered: the
  // moment a crash of vrmd hurts most. Agents keep their state; the held commit is lost.
  Reservation crashMidVacateOfNode1() {
    auto req = dedicated(2 * kHour, kHour, 0);
    req.hostNames = {"node1"};
    auto r = manager_->submit(req);
    agents_->hold = {AgentCommand::Kind::kFinishIncoming};
    runUntil(r->plan.latestSafeStartNs + kNsPerSec, kNsPerSec);
    EXPECT_EQ(agents_->held.size(), 1u);  // first VM migrated, commit not yet answered
    agents_->hold.clear();
    agents_->held.clear();
    return *r;
  }

  // The agents, with the inventories they kept, register with a restarted manager.
  void reregister(Manager& restarted, FakeAgents& again) {
    again.inventory_ = agents_->inventory_;
    for (auto& [name, h] : agents_->hosts_) {
      ASSERT_TRUE(restarted.onRegister(h, again.inventory_[name]).isOk());
    }
  }

  // Runs the restarted manager second by second until `id` is ready, at most `steps` seconds.
  void runUntilReady(Manager& restarted, FakeAgents& again, const std::string& id, int steps) {
    for (int i = 0; i < steps && restarted.get(id)->state != ReservationState::kReady; ++i) {
      clock_.advance(kNsPerSec);
      again.heartbeat();
      restarted.tick();
      again.pump();
    }
  }
};

// Ensures the allowed migration modes an agent reports for a VM (the cluster file's allow_live)
// reach the planner: a VM that may not be live-migrated is planned as suspend-copy-resume.
TEST_F(ManagerTest, VmThatMayNotMigrateLiveIsPlannedAsSuspendCopyResume) {
  auto request = dedicated(2 * kHour, 2 * kHour);
  request.dryRun = true;
  auto live = manager_->submit(request);
  ASSERT_TRUE(live.isOk()) << live.status().toString();
  ASSERT_EQ(live->plannedMoves().size(), 1u);
  EXPECT_EQ(live->plannedMoves()[0].mode, MoveMode::kLive);
  for (auto& v : agents_->inventory_["node3"]) v.allowLive = v.id != "c1";
  agents_->heartbeat();
  auto scr = manager_->submit(request);
  ASSERT_TRUE(scr.isOk()) << scr.status().toString();
  ASSERT_EQ(scr->plannedMoves().size(), 1u);
  EXPECT_EQ(scr->plannedMoves()[0].vmId, "c1");
  EXPECT_EQ(scr->plannedMoves()[0].mode, MoveMode::kSuspendCopyResume);
}

// Ensures a dedicated reservation goes admitted -> vacating -> preparing -> ready -> active ->
// ending -> done, vacating the cheapest host no earlier than its latest safe start.
TEST_F(ManagerTest, DedicatedReservationRunsItsWholeLifecycle) {
  auto r = manager_->submit(dedicated(2 * kHour, 2 * kHour));
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  ASSERT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
  EXPECT_EQ(r->hosts, std::vector<std::string>{"node3"});
  ASSERT_EQ(r->plannedMoves().size(), 1u);
  EXPECT_EQ(r->plannedMoves()[0].vmId, "c1");
  const TimeNs lss = r->plan.latestSafeStartNs;
  EXPECT_EQ(lss, r->request.startNs - 45 * kNsPerSec - r->plan.makespanNs - 60 * kNsPerSec);

  runUntil(lss - kNsPerSec);
  EXPECT_EQ(manager_->get(r->id)->state, ReservationState::kAdmitted);
  EXPECT_TRUE(agents_->log.empty()) << "nothing may move before the latest safe start";

  runUntil(r->request.startNs - kNsPerSec, kNsPerSec);
  auto ready = manager_->get(r->id);
  EXPECT_EQ(ready->state, ReservationState::kReady);
  ASSERT_FALSE(agents_->log.empty());
  EXPECT_EQ(agents_->hostOf("c1"), "node1");
  ASSERT_EQ(ready->clones.size(), 1u);
  EXPECT_EQ(ready->clones[0].state, CloneState::kRunning);
  EXPECT_EQ(ready->clones[0].host, "node3");
  EXPECT_EQ(agents_->count(ready->clones[0].vmId), 1u);
  EXPECT_GE(ready->moves[0].progress.actualStartNs, lss);

  runUntil(r->request.startNs + kNsPerSec);
  EXPECT_EQ(manager_->get(r->id)->state, ReservationState::kActive);
  runUntil(r->request.endNs + kNsPerSec);
  auto done = manager_->get(r->id);
  EXPECT_EQ(done->state, ReservationState::kDone);
  EXPECT_EQ(agents_->count(ready->clones[0].vmId), 0u) << "clone destroyed at the end";
  EXPECT_EQ(agents_->count("c1"), 1u) << "the displaced VM is kept, exactly once";

  std::vector<ReservationState> seen;
  for (const auto& e : done->events) {
    if (seen.empty() || seen.back() != e.state) seen.push_back(e.state);
  }
  using S = ReservationState;
  EXPECT_EQ(seen, (std::vector<S>{S::kRequested, S::kAdmitted, S::kVacating, S::kPreparing,
                                  S::kReady, S::kActive, S::kEnding, S::kDone}));
}

// Ensures malformed or impossible requests are invalid-argument errors with a reason.
TEST_F(ManagerTest, ImpossibleRequestsAreInvalid) {
  auto expectInvalid = [&](ReservationRequest req, const std::string& needle) {
    auto r = manager_->submit(req);
    ASSERT_FALSE(r.isOk()) << needle;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  auto req = dedicated(kHour, kHour);
  req.endNs = req.startNs - 1;
  expectInvalid(req, "end must be after start");
  expectInvalid(dedicated(-kHour, kHour), "in the past");
  expectInvalid(dedicated(kHour, kHour, 0), "at least one host");
  expectInvalid(dedicated(kHour, kHour, 4), "cluster has 3");
  req = dedicated(kHour, kHour);
  req.templateName = "nope";
  expectInvalid(req, "unknown template");
  req = dedicated(kHour, kHour, 0);
  req.hostNames = {"node9"};
  expectInvalid(req, "unknown host 'node9'");
  EXPECT_TRUE(manager_->list({}).empty()) << "invalid requests are not stored";
}

// Ensures a reservation whose vacate cannot finish in time is rejected with the earliest start
// that would work, and that start is then admitted.
TEST_F(ManagerTest, TooLateIsRejectedWithEarliestFeasibleStart) {
  auto r = manager_->submit(dedicated(30 * kNsPerSec, kHour));
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->state, ReservationState::kRejected);
  EXPECT_NE(r->reason.find("cannot finish by the start"), std::string::npos) << r->reason;
  ASSERT_GT(r->earliestFeasibleStartNs, r->request.startNs);
  auto retry = dedicated(0, kHour);
  retry.startNs = r->earliestFeasibleStartNs;
  retry.endNs = retry.startNs + kHour;
  auto again = manager_->submit(retry);
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->state, ReservationState::kAdmitted) << again->reason;
}

// Ensures two overlapping reservations never get the same host, and the conflict is named.
TEST_F(ManagerTest, OverlappingReservationsDoNotShareHosts) {
  auto first = manager_->submit(dedicated(2 * kHour, 2 * kHour));
  ASSERT_EQ(first->state, ReservationState::kAdmitted);
  auto second = manager_->submit(dedicated(3 * kHour, 2 * kHour));
  ASSERT_EQ(second->state, ReservationState::kAdmitted) << second->reason;
  EXPECT_NE(first->hosts, second->hosts);
  auto named = dedicated(2 * kHour, kHour, 0);
  named.hostNames = first->hosts;
  auto third = manager_->submit(named);
  ASSERT_TRUE(third.isOk());
  EXPECT_EQ(third->state, ReservationState::kRejected);
  EXPECT_NE(third->reason.find("conflicts with reservation " + first->id), std::string::npos)
      << third->reason;
  // After the first window a later reservation may take the same host.
  auto later = dedicated(10 * kHour, kHour, 0);
  later.hostNames = first->hosts;
  EXPECT_EQ(manager_->submit(later)->state, ReservationState::kAdmitted);
}

// Ensures a dry run decides without storing or booking.
TEST_F(ManagerTest, DryRunBooksNothing) {
  auto req = dedicated(2 * kHour, kHour, 3);
  req.dryRun = true;
  auto r = manager_->submit(req);
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->state, ReservationState::kRejected) << "all 3 hosts cannot be emptied";
  req.hostCount = 1;
  EXPECT_EQ(manager_->submit(req)->state, ReservationState::kAdmitted);
  EXPECT_TRUE(manager_->list({}).empty());
}

// Ensures cancel checks the owner and, once ready, destroys the clones.
TEST_F(ManagerTest, CancelChecksOwnerAndCleansUp) {
  auto r = manager_->submit(dedicated(2 * kHour, 2 * kHour));
  EXPECT_EQ(manager_->cancel(r->id, "someone-else").status().code(), StatusCode::kUnauthorized);
  EXPECT_EQ(manager_->cancel("r999", "").status().code(), StatusCode::kNotFound);
  runUntil(r->request.startNs - kNsPerSec, kNsPerSec);
  auto ready = manager_->get(r->id);
  ASSERT_EQ(ready->state, ReservationState::kReady);
  const std::string clone = ready->clones[0].vmId;
  auto c = manager_->cancel(r->id, "lab-bmi");
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(c->state, ReservationState::kCancelled);
  agents_->pump();
  EXPECT_EQ(agents_->count(clone), 0u);
  EXPECT_EQ(manager_->cancel(r->id, "lab-bmi").status().code(), StatusCode::kRejected);
}

// Ensures a cancel during the vacate lets the running move finish and starts no other.
TEST_F(ManagerTest, CancelWhileVacatingStopsNewMoves) {
  auto req = dedicated(2 * kHour, kHour, 0);
  req.hostNames = {"node1"};  // two VMs: two sequential moves
  auto r = manager_->submit(req);
  ASSERT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
  agents_->hold = {AgentCommand::Kind::kMigrate};
  runUntil(r->plan.latestSafeStartNs + kNsPerSec, kNsPerSec);
  ASSERT_EQ(manager_->get(r->id)->state, ReservationState::kVacating);
  ASSERT_EQ(agents_->held.size(), 1u);
  ASSERT_TRUE(manager_->cancel(r->id, "").isOk());
  agents_->hold.clear();
  for (const auto& c : agents_->held) manager_->onResult(c.host, agents_->execute(c));
  agents_->pump();
  runUntil(clock_.now() + kHour);
  auto after = manager_->get(r->id);
  EXPECT_EQ(after->state, ReservationState::kCancelled);
  int migrations = 0;
  for (const auto& c : agents_->log) migrations += c.kind == AgentCommand::Kind::kMigrate;
  EXPECT_EQ(migrations, 1);
  EXPECT_EQ(agents_->count("a1") + agents_->count("a2"), 2u) << "no VM lost or duplicated";
}

// Ensures a failed migration fails the reservation with the agent's reason, and nothing leaks.
TEST_F(ManagerTest, FailedMoveFailsTheReservationWithReason) {
  auto r = manager_->submit(dedicated(2 * kHour, kHour));
  agents_->refuse.insert("node3");  // the source agent heartbeats but cannot be reached
  runUntil(r->plan.latestSafeStartNs + kNsPerSec, kNsPerSec);
  auto f = manager_->get(r->id);
  EXPECT_EQ(f->state, ReservationState::kFailed);
  EXPECT_NE(f->reason.find("not connected"), std::string::npos) << f->reason;
  EXPECT_EQ(agents_->count("c1"), 1u);
}

// Ensures a command that cannot be delivered is answered once, with the transport's reason.
// (onSendFailed used to read the host from the pending entry onResult had just erased: a use
// after free that fuzz_manager_ops found under ASan; its input is in tests/fuzz/corpus.)
TEST_F(ManagerTest, UndeliverableCommandIsAnsweredOnce) {
  auto r = manager_->submit(dedicated(2 * kHour, kHour));
  clock_.set(r->plan.latestSafeStartNs);
  agents_->heartbeat();
  manager_->tick();
  auto cmds = manager_->takeOutbox();
  ASSERT_FALSE(cmds.empty());
  manager_->onSendFailed(cmds[0].id, "agent " + cmds[0].host + " is not connected");
  manager_->onSendFailed(cmds[0].id, "again");  // no longer pending: ignored
  std::string events;
  const Reservation after = *manager_->get(r->id);  // held: get() returns a temporary
  for (const auto& e : after.events) events += e.message + "\n";
  EXPECT_NE(events.find("is not connected"), std::string::npos) << events;
  EXPECT_EQ(events.find("again"), std::string::npos) << events;
}

// Ensures an agent cannot settle another host's command: its answer is ignored, and the
// command still waits for the right host's answer.
TEST_F(ManagerTest, ResultFromAnotherHostIsIgnored) {
  auto r = manager_->submit(dedicated(2 * kHour, kHour));
  clock_.set(r->plan.latestSafeStartNs);
  agents_->heartbeat();
  manager_->tick();
  auto cmds = manager_->takeOutbox();
  ASSERT_FALSE(cmds.empty());
  const std::string other = cmds[0].host == "node1" ? "node2" : "node1";
  AgentResult forged;
  forged.commandId = cmds[0].id;
  forged.status = Status::internal("forged failure");
  manager_->onResult(other, forged);
  EXPECT_EQ(manager_->get(r->id)->state, ReservationState::kVacating);
  manager_->onResult(cmds[0].host, agents_->execute(cmds[0]));  // the real answer still counts
  agents_->pump();
  std::string events;
  const Reservation after = *manager_->get(r->id);  // held: get() returns a temporary
  for (const auto& e : after.events) events += e.message + "\n";
  EXPECT_EQ(events.find("forged"), std::string::npos) << events;
  EXPECT_NE(manager_->get(r->id)->state, ReservationState::kFailed) << events;
}

// Ensures that when re-planning fails a reservation, those that counted on its vacate are
// repaired too: here shared clones booked on node3 for after r1 has moved c1 away. (Found by
// fuzz_manager_ops: re-planning failed a vacate but left the host overbooked.)
TEST(ManagerRepairTest, FailedReplanRepairsReservationsThatCountedOnItsVacate) {
  ManualClock clock(kStartOfTime);
  auto store = std::move(*Store::open(":memory:"));
  planner::SequentialVacatePlanner planner(std::shared_ptr<const planner::MigrationModel>(
      std::move(*planner::createMigrationModel("simple"))));
  Manager manager(clock, *store, planner, templates());  // bmi-decoder: 8 cores, 16 GiB
  FakeAgents agents(manager);
  // node1 and node2 have room for c1 but not for a clone; node3 has room for two clones once
  // c1 has left.
  agents.addHost("node1", 16, 64 * kGiB, {FakeAgents::vm("x", 8 * kGiB, 10)});
  agents.addHost("node2", 16, 64 * kGiB, {FakeAgents::vm("y", 8 * kGiB, 10)});
  agents.addHost("node3", 16, 64 * kGiB, {FakeAgents::vm("c1", 2 * kGiB, 1)});
  ReservationRequest vacate;
  vacate.owner = "lab";
  vacate.hostNames = {"node3"};
  vacate.startNs = kStartOfTime + 2 * kHour;
  vacate.endNs = vacate.startNs + kHour;
  vacate.templateName = "bmi-decoder";
  auto r1 = manager.submit(vacate);
  ASSERT_EQ(r1->state, ReservationState::kAdmitted) << r1->reason;
  ReservationRequest shared;
  shared.owner = "lab";
  shared.kind = ReservationKind::kShared;
  shared.vmCount = 2;
  shared.startNs = kStartOfTime + 4 * kHour;
  shared.endNs = shared.startNs + kHour;
  shared.templateName = "bmi-decoder";
  auto r2 = manager.submit(shared);
  ASSERT_EQ(r2->state, ReservationState::kAdmitted) << r2->reason;
  ASSERT_EQ(r2->hosts, std::vector<std::string>{"node3"});

  // Both possible destinations of c1 go silent: r1 cannot be re-planned and fails.
  agents.down = {"node1", "node2"};
  for (int i = 0; i < 8; ++i) {
    clock.advance(10 * kNsPerSec);
    agents.heartbeat();
    manager.tick();
    agents.pump();
  }
  EXPECT_EQ(manager.get(r1->id)->state, ReservationState::kFailed);
  auto after = manager.get(r2->id);
  EXPECT_EQ(after->state, ReservationState::kFailed) << "node3 holds c1: one clone fits, not two";
  EXPECT_NE(after->reason.find(r1->id + " ended before vacating node3"), std::string::npos)
      << after->reason;
  std::string why;
  EXPECT_FALSE(manager.calendar().overbooked("node3", &why)) << why;
}

// Ensures state survives a restart: a new manager on the same store sees every reservation.
TEST_F(ManagerTest, RecoverReloadsReservations) {
  auto r = manager_->submit(dedicated(2 * kHour, kHour));
  Manager restarted(clock_, *store_, *planner_, templates());
  ASSERT_TRUE(restarted.recover().isOk());
  auto got = restarted.get(r->id);
  ASSERT_TRUE(got.isOk());
  EXPECT_EQ(got->state, ReservationState::kAdmitted);
  EXPECT_EQ(got->plannedMoves().size(), 1u);
  EXPECT_EQ(got->plan.latestSafeStartNs, r->plan.latestSafeStartNs);
}

// Ensures a restart in the middle of a vacate re-issues or settles the running move from what
// the agents report, so every VM ends up on exactly one host.
TEST_F(ManagerTest, RestartMidVacateSettlesTheRunningMove) {
  const Reservation r = crashMidVacateOfNode1();
  ASSERT_FALSE(HasFailure());
  Manager restarted(clock_, *store_, *planner_, templates());
  ASSERT_TRUE(restarted.recover().isOk());
  FakeAgents again(restarted);
  reregister(restarted, again);
  runUntilReady(restarted, again, r.id, 200);
  EXPECT_EQ(restarted.get(r.id)->state, ReservationState::kReady);
  EXPECT_EQ(again.count("a1"), 1u);
  EXPECT_EQ(again.count("a2"), 1u);
  EXPECT_NE(again.hostOf("a1"), "node1");
  EXPECT_NE(again.hostOf("a2"), "node1");
}

// Ensures that when an agent goes silent, admitted reservations depending on it are re-planned
// around it, and one that named the lost host fails with the reason, before any vacate starts.
TEST_F(ManagerTest, LostAgentTriggersReplanning) {
  agents_->addHost("node4", 16, 64 * kGiB, {FakeAgents::vm("d1", 8 * kGiB)});
  auto moving = manager_->submit(dedicated(3 * kHour, kHour));  // node3, its VM to node1
  ASSERT_EQ(moving->state, ReservationState::kAdmitted);
  ASSERT_EQ(moving->plannedMoves().size(), 1u);
  ASSERT_EQ(moving->plannedMoves()[0].toHost, "node1");
  auto named = dedicated(6 * kHour, kHour, 0);
  named.hostNames = {"node2"};
  auto onNode2 = manager_->submit(named);
  ASSERT_EQ(onNode2->state, ReservationState::kAdmitted) << onNode2->reason;

  agents_->down.insert("node1");
  runUntil(clock_.now() + 40 * kNsPerSec, kNsPerSec);
  auto replanned = manager_->get(moving->id);
  EXPECT_EQ(replanned->state, ReservationState::kAdmitted) << replanned->reason;
  ASSERT_EQ(replanned->plannedMoves().size(), 1u);
  EXPECT_EQ(replanned->plannedMoves()[0].toHost, "node4");
  EXPECT_NE(replanned->events.back().message.find("re-planned"), std::string::npos);
  EXPECT_EQ(manager_->get(onNode2->id)->state, ReservationState::kAdmitted) << "unaffected";

  agents_->down.insert("node2");
  runUntil(clock_.now() + 40 * kNsPerSec, kNsPerSec);
  auto failed = manager_->get(onNode2->id);
  EXPECT_EQ(failed->state, ReservationState::kFailed);
  EXPECT_NE(failed->reason.find("unreachable"), std::string::npos) << failed->reason;
  EXPECT_TRUE(agents_->log.empty()) << "nothing was sent to anyone";
}

// Ensures a reservation whose start passes before its hosts are ready tells its owner once
// ("late: ..."), marked by the explicit lateNoted flag, and not again after a restart of vrmd.
TEST_F(ManagerTest, LateReservationIsNotedOnceAlsoAfterARestart) {
  auto req = dedicated(2 * kHour, kHour, 0);
  req.hostNames = {"node3"};
  auto r = manager_->submit(req);
  ASSERT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
  agents_->hold = {AgentCommand::Kind::kClone};  // the clone never finishes
  runUntil(req.startNs + 30 * kNsPerSec);
  auto countLate = [](const Reservation& x) {
    return std::count_if(x.events.begin(), x.events.end(), [](const ReservationEvent& e) {
      return e.message.rfind("late: ", 0) == 0;
    });
  };
  Reservation late = *manager_->get(r->id);
  EXPECT_EQ(late.state, ReservationState::kPreparing);
  EXPECT_TRUE(late.lateNoted);
  EXPECT_EQ(countLate(late), 1) << "noted once, not at every tick";

  Manager restarted(clock_, *store_, *planner_, templates());
  ASSERT_TRUE(restarted.recover().isOk());
  FakeAgents again(restarted);
  reregister(restarted, again);
  again.hold = {AgentCommand::Kind::kClone};
  for (int i = 0; i < 5; ++i) {
    clock_.advance(10 * kNsPerSec);
    again.heartbeat();
    restarted.tick();
    again.pump();
  }
  EXPECT_TRUE(restarted.get(r->id)->lateNoted);
  EXPECT_EQ(countLate(*restarted.get(r->id)), 1) << "the flag is stored";
}

// Ensures that after a restart nothing is sent, and no move is skipped, before the agents
// involved have registered again: their inventories are unknown until then.
TEST_F(ManagerTest, RestartWaitsForAgentsBeforeDrivingMoves) {
  const Reservation r = crashMidVacateOfNode1();
  Manager restarted(clock_, *store_, *planner_, templates());
  ASSERT_TRUE(restarted.recover().isOk());
  clock_.advance(kNsPerSec);
  restarted.tick();
  EXPECT_TRUE(restarted.takeOutbox().empty()) << "no agent is back yet";
  for (const auto& m : restarted.get(r.id)->moves) EXPECT_NE(m.progress.state, MoveState::kSkipped);
  FakeAgents again(restarted);
  reregister(restarted, again);
  runUntilReady(restarted, again, r.id, 50);
  EXPECT_EQ(restarted.get(r.id)->state, ReservationState::kReady);
}

// Ensures a shared reservation is placed where there is room, cloned before its start and
// torn down at its end, without any migration.
TEST_F(ManagerTest, SharedReservationClonesWithoutVacating) {
  ReservationRequest req;
  req.owner = "course";
  req.kind = ReservationKind::kShared;
  req.vmCount = 3;  // one 8-core clone fits beside each host's existing VMs
  req.startNs = clock_.now() + kHour;
  req.endNs = req.startNs + kHour;
  req.templateName = "bmi-decoder";
  auto r = manager_->submit(req);
  ASSERT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
  EXPECT_EQ(r->clones.size(), 3u);
  req.vmCount = 100;
  auto big = manager_->submit(req);
  EXPECT_EQ(big->state, ReservationState::kRejected);
  EXPECT_NE(big->reason.find("not enough capacity"), std::string::npos);
  runUntil(r->request.startNs + kNsPerSec, kNsPerSec * 5);
  EXPECT_EQ(manager_->get(r->id)->state, ReservationState::kActive);
  for (const auto& c : agents_->log) EXPECT_NE(c.kind, AgentCommand::Kind::kMigrate);
  runUntil(r->request.endNs + kNsPerSec, kNsPerSec * 5);
  EXPECT_EQ(manager_->get(r->id)->state, ReservationState::kDone);
}

// Ensures an agent that stops heartbeating is marked unreachable and not chosen.
TEST_F(ManagerTest, SilentAgentBecomesUnreachable) {
  agents_->down.insert("node3");
  runUntil(clock_.now() + 40 * kNsPerSec);
  auto hosts = manager_->hosts();
  auto it = std::find_if(hosts.begin(), hosts.end(), [](auto& h) { return h.name == "node3"; });
  ASSERT_NE(it, hosts.end());
  EXPECT_FALSE(it->reachable);
  auto r = manager_->submit(dedicated(2 * kHour, kHour));
  EXPECT_NE(r->hosts, std::vector<std::string>{"node3"});
}

bool reachable(const Manager& m, const std::string& host) {
  for (const auto& h : m.hosts()) {
    if (h.name == host) return h.reachable;
  }
  return false;
}

// Ensures silence is judged where the server last read every agent frame, not at now: when
// vrmd itself was too slow to read the heartbeats queued for it, their hosts stay reachable;
// once read, only the host whose agent really went silent becomes unreachable.
TEST_F(ManagerTest, HeartbeatsQueuedWhileVrmdWasSlowDoNotMakeHostsUnreachable) {
  agents_->heartbeat();
  manager_->agentFramesReadUntil(clock_.now());
  clock_.advance(40 * kNsPerSec);  // past the 30 s timeout, nothing read meanwhile
  manager_->tick();
  for (const char* h : {"node1", "node2", "node3"}) EXPECT_TRUE(reachable(*manager_, h)) << h;

  agents_->down.insert("node3");
  agents_->heartbeat();  // the queued heartbeats of node1 and node2, read at last
  manager_->agentFramesReadUntil(clock_.now());
  manager_->tick();
  EXPECT_TRUE(reachable(*manager_, "node1"));
  EXPECT_TRUE(reachable(*manager_, "node2"));
  EXPECT_FALSE(reachable(*manager_, "node3"));
}

// Ensures a tick costs the work due, not the number of reservations: reservations waiting for
// their clock deadline are not advanced until it comes, a changed one is advanced once, a
// cancelled one whose teardown is over is not advanced again; and nextWakeNs() is the earliest
// deadline.
TEST_F(ManagerTest, TickAdvancesOnlyWhatIsDue) {
  std::vector<Reservation> admitted;
  for (int i = 0; i < 50; ++i) {
    ReservationRequest req;
    req.owner = "lab";
    req.kind = ReservationKind::kShared;
    req.vmCount = 1;
    req.templateName = "bmi-decoder";
    req.startNs = clock_.now() + 2 * kHour + i * kHour;
    req.endNs = req.startNs + kHour / 2;
    auto r = manager_->submit(req);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    ASSERT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
    admitted.push_back(*r);
  }
  manager_->tick();
  EXPECT_EQ(manager_->lastTickAdvanced(), 50u);  // each new one, once
  manager_->tick();
  EXPECT_EQ(manager_->lastTickAdvanced(), 0u);
  const TimeNs firstPrepare = admitted[0].request.startNs - 45 * kNsPerSec - 60 * kNsPerSec;
  // Heartbeats expire first (30 s); without them the earliest deadline is the first prepare.
  EXPECT_EQ(manager_->nextWakeNs(), clock_.now() + 30 * kNsPerSec + 1);

  ASSERT_TRUE(manager_->cancel(admitted[1].id, "").isOk());
  manager_->tick();
  EXPECT_EQ(manager_->lastTickAdvanced(), 1u);
  manager_->tick();
  EXPECT_EQ(manager_->lastTickAdvanced(), 0u);

  clock_.set(firstPrepare - 1);
  agents_->heartbeat();
  manager_->tick();
  EXPECT_EQ(manager_->lastTickAdvanced(), 0u);
  clock_.set(firstPrepare);
  agents_->heartbeat();
  EXPECT_LE(manager_->nextWakeNs(), firstPrepare);
  manager_->tick();
  EXPECT_EQ(manager_->lastTickAdvanced(), 1u);
  EXPECT_EQ(manager_->get(admitted[0].id)->state, ReservationState::kPreparing);
  EXPECT_EQ(manager_->get(admitted[2].id)->state, ReservationState::kAdmitted);
  agents_->pump();  // the clone finishes
  manager_->tick();
  EXPECT_EQ(manager_->get(admitted[0].id)->state, ReservationState::kReady);
  runUntil(admitted[0].request.endNs + kNsPerSec, 10 * kNsPerSec);
  EXPECT_EQ(manager_->get(admitted[0].id)->state, ReservationState::kDone);
  manager_->tick();
  EXPECT_EQ(manager_->lastTickAdvanced(), 0u);
}

}  // namespace
}  // namespace vrm::manager

#include "vrm/planner/cost_aware_vacate_planner.h"

namespace vrm::manager {
namespace {

// Ensures the reservation's objective reaches the cost-aware planner: makespan may run moves in
// parallel, degradation with a per-VM bound keeps every move within it, and a bad objective is
// invalid.
TEST(ManagerObjectiveTest, ObjectiveAndBoundReachThePlanner) {
  ManualClock clock{1'800'000'000 * kNsPerSec};
  auto store = std::move(*Store::open(":memory:"));
  auto planner = std::move(*planner::CostAwareVacatePlanner::create("qemu-precopy", "zhao-scr"));
  TemplateSpec t{"bmi", 8, 16 * kGiB, 45 * kNsPerSec, 1};
  Manager manager(clock, *store, *planner, {t});
  FakeAgents agents(manager);
  std::vector<VmRecord> vms;
  for (int i = 0; i < 4; ++i) vms.push_back(FakeAgents::vm("v" + std::to_string(i), 2 * kGiB));
  agents.addHost("src", 32, 64 * kGiB, vms);
  agents.addHost("dst1", 32, 64 * kGiB, {});
  agents.addHost("dst2", 32, 64 * kGiB, {});

  ReservationRequest req;
  req.owner = "lab";
  req.hostNames = {"src"};
  req.startNs = clock.now() + 3600 * kNsPerSec;
  req.endNs = req.startNs + 3600 * kNsPerSec;
  req.templateName = "bmi";
  req.dryRun = true;
  auto fast = manager.submit(req);
  ASSERT_TRUE(fast.isOk()) << fast.status().toString();
  ASSERT_EQ(fast->state, ReservationState::kAdmitted) << fast->reason;
  ASSERT_EQ(fast->plannedMoves().size(), 4u);

  req.objective = Objective::kDegradation;
  auto gentle = manager.submit(req);
  ASSERT_EQ(gentle->state, ReservationState::kAdmitted) << gentle->reason;
  TimeNs longestFast = 0, longestGentle = 0;
  for (const auto& m : fast->plannedMoves())
    longestFast = std::max(longestFast, m.endOffsetNs - m.startOffsetNs);
  for (const auto& m : gentle->plannedMoves()) {
    longestGentle = std::max(longestGentle, m.endOffsetNs - m.startOffsetNs);
  }
  EXPECT_LE(longestGentle, longestFast) << "degradation is gentler on each VM";
  EXPECT_GE(gentle->plan.makespanNs, fast->plan.makespanNs) << "and pays in makespan";

  req.maxVmTimeNs = longestGentle;
  auto bounded = manager.submit(req);
  ASSERT_EQ(bounded->state, ReservationState::kAdmitted) << bounded->reason;
  for (const auto& m : bounded->plannedMoves())
    EXPECT_LE(m.endOffsetNs - m.startOffsetNs, longestGentle);
  req.maxVmTimeNs = kNsPerMs;  // no migration is that quick
  EXPECT_EQ(manager.submit(req)->state, ReservationState::kRejected);

  // An unknown objective is refused where it arrives, at the wire edge (WireConvertTest too).
  EXPECT_EQ(objectiveFromName("fastest").status().code(), StatusCode::kInvalidArgument);
  req.objective = Objective::kMakespan;
  req.maxVmTimeNs = 30 * kNsPerSec;
  EXPECT_EQ(manager.submit(req).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vrm::manager

namespace vrm::manager {
namespace {

// Ensures observed vacate errors feed planning: after vacates whose moves ran three times longer
// than predicted, plans take the makespan at the quantile of those errors (so their latest safe
// start comes earlier), also after a restart.
TEST(ManagerLearningTest, SlowMovesMakeLaterPlansStartEarlier) {
  ManualClock clock{1'800'000'000 * kNsPerSec};
  auto store = std::move(*Store::open(":memory:"));
  auto planner = std::move(*planner::CostAwareVacatePlanner::create("qemu-precopy", "zhao-scr"));
  TemplateSpec t{"bmi", 8, 16 * kGiB, 45 * kNsPerSec, 1};
  // No deadline-tracking re-plans: they would start moves while others are held, and capped
  // moves teach nothing; here every move must run exactly 3x its prediction.
  ManagerOptions options;
  options.warningRatio = 0.02;
  options.dangerRatio = 0.01;
  Manager manager(clock, *store, *planner, {t}, options);
  FakeAgents agents(manager);
  for (const char* src : {"src1", "src2"}) {
    std::vector<VmRecord> vms;
    for (int i = 0; i < 5; ++i) {
      vms.push_back(FakeAgents::vm(std::string(src) + "-v" + std::to_string(i), 2 * kGiB));
      // Migrations only: parking the rest when the vacate runs late would leave fewer slow
      // migrations to learn from.
      vms.back().allowSuspend = false;
    }
    agents.addHost(src, 32, 64 * kGiB, vms);
  }
  agents.addHost("dst1", 32, 128 * kGiB, {});
  agents.addHost("dst2", 32, 128 * kGiB, {});
  auto request = [&](const char* host, bool dry) {
    ReservationRequest req;
    req.owner = "lab";
    req.hostNames = {host};
    req.startNs = clock.now() + 3 * 3600 * kNsPerSec;
    req.endNs = req.startNs + 3600 * kNsPerSec;
    req.templateName = "bmi";
    req.dryRun = dry;
    return req;
  };
  auto before = manager.submit(request("src2", true));
  ASSERT_EQ(before->state, ReservationState::kAdmitted) << before->reason;
  // The quantile margin over the mean: a normal 20 % error before any observation.
  auto margin = [](const Reservation& r) {
    return static_cast<double>(r.plan.makespanQuantileNs) / static_cast<double>(r.plan.makespanNs);
  };
  EXPECT_LT(margin(*before), 1.5);

  auto step = [&](TimeNs to) {
    while (clock.now() < to) {
      clock.set(std::min(to, clock.now() + 10 * kNsPerSec));
      agents.heartbeat();
      manager.tick();
      agents.pump();
    }
  };
  // One error per vacate (not per move): enough vacates for the planner to use their quantile.
  for (std::size_t vacate = 0; vacate < planner::kMinErrorSamples; ++vacate) {
    ReservationRequest req = request("src1", false);
    req.displaced = Displaced::kReturn;  // home again for the next vacate
    auto real = manager.submit(req);
    ASSERT_EQ(real->state, ReservationState::kAdmitted) << real->reason;
    agents.hold = {AgentCommand::Kind::kMigrate};
    step(real->plan.latestSafeStartNs + kNsPerSec);
    for (int round = 0; round < 10 && manager.get(real->id)->state == ReservationState::kVacating;
         ++round) {
      ASSERT_FALSE(agents.held.empty());
      TimeNs longest = 0;
      for (const auto& m : real->plannedMoves())
        longest = std::max(longest, m.endOffsetNs - m.startOffsetNs);
      step(clock.now() + 3 * longest);  // every held move now takes at least 3x its prediction
      auto held = std::move(agents.held);
      agents.held.clear();
      for (const auto& c : held) manager.onResult(c.host, agents.execute(c));
      agents.pump();
      manager.tick();
      agents.pump();
    }
    ASSERT_NE(manager.get(real->id)->state, ReservationState::kVacating);
    agents.hold.clear();
    step(real->request.endNs + 600 * kNsPerSec);
    ASSERT_EQ(manager.get(real->id)->state, ReservationState::kDone);
  }

  auto after = manager.submit(request("src2", true));
  ASSERT_EQ(after->state, ReservationState::kAdmitted) << after->reason;
  EXPECT_GT(margin(*after), 2.5) << "moves ran 3x their prediction: plan for it";
  EXPECT_EQ(after->plan.latestSafeStartNs, after->request.startNs - after->plan.cloneTimeNs -
                                               after->plan.makespanQuantileNs -
                                               after->plan.marginNs);

  Manager restarted(clock, *store, *planner, {t});
  ASSERT_TRUE(restarted.recover().isOk());
  FakeAgents again(restarted);
  for (auto& [name, h] : agents.hosts_)
    ASSERT_TRUE(restarted.onRegister(h, agents.inventory_[name]).isOk());
  auto remembered = restarted.submit(request("src2", true));
  ASSERT_EQ(remembered->state, ReservationState::kAdmitted) << remembered->reason;
  EXPECT_DOUBLE_EQ(margin(*remembered), margin(*after)) << "the errors are rebuilt from the store";
}

}  // namespace
}  // namespace vrm::manager
