// Regression tests for faults the campaigns of tests/faults/ found: a store that refuses writes
// (full disk) and agents that restart while vrmd waits on them.
#include <gtest/gtest.h>

#include "fake_agents.h"
#include "vrm/manager/manager.h"

namespace vrm::manager {
namespace {

using testing::FakeAgents;
using testing::kGiB;

constexpr TimeNs kStartOfTime = 1'800'000'000 * kNsPerSec;
constexpr TimeNs kHour = 3600 * kNsPerSec;

class ManagerFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*Store::open(":memory:"));
    model_ = std::shared_ptr<const planner::MigrationModel>(
        std::move(*planner::createMigrationModel("simple")));
    planner_ = std::make_unique<planner::SequentialVacatePlanner>(model_);
    TemplateSpec t;
    t.name = "small";
    t.cpuCores = 2;
    t.memoryBytes = 4 * kGiB;
    t.cloneTimeNs = 30 * kNsPerSec;
    t.vmsPerHost = 1;
    TemplateSpec whole = t;  // fills a 16-core host
    whole.name = "whole";
    whole.cpuCores = 16;
    whole.memoryBytes = 32 * kGiB;
    templates_ = {t, whole};
    manager_ = std::make_unique<Manager>(clock_, *store_, *planner_, templates_);
    agents_ = std::make_unique<FakeAgents>(*manager_);
    agents_->addHost("node1", 16, 64 * kGiB, {FakeAgents::vm("a1", 8 * kGiB)});
    agents_->addHost("node2", 16, 64 * kGiB, {FakeAgents::vm("b1", 4 * kGiB)});
  }

  // A dedicated reservation of `host` two hours ahead, for an hour; expected to be admitted.
  Reservation submitDedicated(const std::string& host, const std::string& templateName) {
    ReservationRequest req;
    req.owner = "lab";
    req.hostNames = {host};
    req.startNs = clock_.now() + 2 * kHour;
    req.endNs = req.startNs + kHour;
    req.templateName = templateName;
    auto r = manager_->submit(req);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    EXPECT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
    return r.isOk() ? *r : Reservation{};
  }
  Reservation submitOnNode1() { return submitDedicated("node1", "small"); }

  // Runs until the vacate's first migrate is sent, and holds it (unanswered); returns it.
  AgentCommand holdFirstMigrate(const Reservation& r) {
    agents_->hold = {AgentCommand::Kind::kMigrate};
    while (agents_->held.empty() && clock_.now() < r.request.startNs) step();
    EXPECT_EQ(agents_->held.size(), 1u);
    return agents_->held.empty() ? AgentCommand{} : agents_->held[0];
  }

  void step(TimeNs by = kNsPerSec) {
    clock_.advance(by);
    agents_->heartbeat();
    manager_->tick();
    agents_->pump();
  }

  ManualClock clock_{kStartOfTime};
  std::unique_ptr<Store> store_;
  std::shared_ptr<const planner::MigrationModel> model_;
  std::unique_ptr<planner::SequentialVacatePlanner> planner_;
  std::vector<TemplateSpec> templates_;
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<FakeAgents> agents_;
};

// Ensures a cancel the store cannot save is refused, not acknowledged: before the fix vrmd
// answered "cancelled" on a full disk and, after a restart, ran the reservation anyway.
TEST_F(ManagerFaultsTest, CancelThatCannotBeStoredIsRefusedAndUndone) {
  Reservation r = submitOnNode1();
  ASSERT_TRUE(store_->setQueryOnly(true).isOk());
  auto c = manager_->cancel(r.id, "lab");
  EXPECT_EQ(c.status().code(), StatusCode::kInternal);
  EXPECT_EQ(manager_->get(r.id)->state, ReservationState::kAdmitted);
  EXPECT_TRUE(manager_->takeOutbox().empty());

  // What a restart would see agrees with what the client was told.
  Manager restarted(clock_, *store_, *planner_, templates_);
  ASSERT_TRUE(restarted.recover().isOk());
  EXPECT_EQ(restarted.get(r.id)->state, ReservationState::kAdmitted);

  ASSERT_TRUE(store_->setQueryOnly(false).isOk());
  auto again = manager_->cancel(r.id, "lab");
  ASSERT_TRUE(again.isOk()) << again.status().toString();
  Manager later(clock_, *store_, *planner_, templates_);
  ASSERT_TRUE(later.recover().isOk());
  EXPECT_EQ(later.get(r.id)->state, ReservationState::kCancelled);
}

// Ensures a cancel the store refuses releases none of its teardown commands and publishes none
// of its events (the op is applied to memory only once stored; nothing is undone by hand), and
// that the same cancel, once the store takes writes, destroys the clones.
TEST_F(ManagerFaultsTest, RefusedCancelOfAnActiveReservationChangesNothing) {
  Reservation r = submitOnNode1();
  while (clock_.now() < r.request.startNs + 10 * kNsPerSec) step(10 * kNsPerSec);
  ASSERT_EQ(manager_->get(r.id)->state, ReservationState::kActive);
  ASSERT_FALSE(manager_->get(r.id)->clones.empty());
  (void)manager_->takeEvents();
  const std::size_t sent = agents_->log.size();
  const std::size_t eventsBefore = manager_->get(r.id)->events.size();

  ASSERT_TRUE(store_->setQueryOnly(true).isOk());
  auto c = manager_->cancel(r.id, "lab");
  EXPECT_EQ(c.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(manager_->takeOutbox().empty());
  EXPECT_TRUE(manager_->takeEvents().empty());
  const Reservation after = *manager_->get(r.id);
  EXPECT_EQ(after.state, ReservationState::kActive);
  EXPECT_EQ(after.events.size(), eventsBefore);
  for (const auto& clone : after.clones) EXPECT_EQ(clone.state, CloneState::kRunning);

  ASSERT_TRUE(store_->setQueryOnly(false).isOk());
  ASSERT_TRUE(manager_->cancel(r.id, "lab").isOk());
  auto events = manager_->takeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].first.state, ReservationState::kCancelled);
  agents_->pump();
  std::size_t destroys = 0;
  for (std::size_t i = sent; i < agents_->log.size(); ++i) {
    destroys += agents_->log[i].kind == AgentCommand::Kind::kDestroy;
  }
  EXPECT_EQ(destroys, after.clones.size());
}

// Ensures no agent acts on a transition the store has not taken (a crash would forget it, and
// agents would then hold VMs vrmd knows nothing of): the vacate's commands wait while the store
// refuses writes and go out once it takes them again.
TEST_F(ManagerFaultsTest, CommandsWaitUntilTheirStateIsStored) {
  Reservation r = submitOnNode1();
  ASSERT_TRUE(store_->setQueryOnly(true).isOk());
  while (clock_.now() < r.plan.latestSafeStartNs + kNsPerSec) step(10 * kNsPerSec);
  EXPECT_EQ(manager_->get(r.id)->state, ReservationState::kVacating);
  for (const auto& c : agents_->log) {
    ADD_FAILURE() << "sent " << commandKindName(c.kind) << " " << c.vmId << " unstored";
  }
  {
    Manager restarted(clock_, *store_, *planner_, templates_);
    ASSERT_TRUE(restarted.recover().isOk());
    EXPECT_EQ(restarted.get(r.id)->state, ReservationState::kAdmitted);
  }

  ASSERT_TRUE(store_->setQueryOnly(false).isOk());
  for (int i = 0; i < 600 && manager_->get(r.id)->state != ReservationState::kReady; ++i) step();
  EXPECT_EQ(manager_->get(r.id)->state, ReservationState::kReady);
  EXPECT_EQ(agents_->count("a1"), 1u);
  EXPECT_EQ(agents_->hostOf("a1"), "node2");
  Manager restarted(clock_, *store_, *planner_, templates_);
  ASSERT_TRUE(restarted.recover().isOk());
  EXPECT_EQ(restarted.get(r.id)->state, ReservationState::kReady);
}

// Ensures commands held back while their state cannot be stored get their whole deadline once
// they are sent: a full disk for longer than a command's deadline must not fail the command
// the agent has not even seen. Before the fix the first command expired while held (the 60 s
// floor) and its answer, right after it went out, was ignored: the disk-full campaign (seed
// 752646) left the clones of failed reservations on their hosts so.
TEST_F(ManagerFaultsTest, CommandsHeldBackLongerThanTheirDeadlineAreNotFailed) {
  Reservation r = submitOnNode1();
  ASSERT_TRUE(store_->setQueryOnly(true).isOk());
  while (clock_.now() < r.plan.latestSafeStartNs + 200 * kNsPerSec) step(10 * kNsPerSec);
  EXPECT_TRUE(agents_->log.empty()) << "sent while unstored";
  ASSERT_TRUE(store_->setQueryOnly(false).isOk());
  auto served = [&] {
    const ReservationState s = manager_->get(r.id)->state;
    return s == ReservationState::kReady || s == ReservationState::kActive;
  };
  for (int i = 0; i < 600 && !served(); ++i) step();
  const Reservation after = *manager_->get(r.id);
  EXPECT_TRUE(served()) << stateName(after.state) << ": " << after.reason;
  for (const auto& e : after.events) {
    EXPECT_EQ(e.message.find("did not answer"), std::string::npos) << e.message;
  }
  EXPECT_EQ(agents_->hostOf("a1"), "node2");
}

// Ensures a commit that cannot reach the destination (its agent died just as the source
// finished the migration) is retried when that agent is back, instead of failing the move:
// before the fix the reservation failed and the VM, already gone from its source, was left as
// an uncommitted copy on the destination (the kill-agent campaign lost a VM this way).
TEST_F(ManagerFaultsTest, UndeliveredCommitIsRetriedWhenTheAgentIsBack) {
  Reservation r = submitOnNode1();
  agents_->hold = {AgentCommand::Kind::kMigrate};
  while (agents_->held.empty() && clock_.now() < r.request.startNs) step();
  ASSERT_EQ(agents_->held.size(), 1u);
  agents_->down = {"node2"};  // the destination's agent dies
  agents_->hold.clear();
  const AgentCommand migrate = agents_->held[0];
  agents_->held.clear();
  manager_->onResult(migrate.host, agents_->execute(migrate));  // a1 has left node1
  agents_->pump();                                              // the commit cannot be sent
  for (int i = 0; i < 5; ++i) step();
  EXPECT_EQ(manager_->get(r.id)->state, ReservationState::kVacating) << manager_->get(r.id)->reason;

  agents_->down.clear();  // back, with a1 still incoming
  for (int i = 0; i < 600 && manager_->get(r.id)->state != ReservationState::kReady; ++i) step();
  EXPECT_EQ(manager_->get(r.id)->state, ReservationState::kReady) << manager_->get(r.id)->reason;
  ASSERT_EQ(agents_->count("a1"), 1u);
  EXPECT_EQ(agents_->hostOf("a1"), "node2");
  EXPECT_EQ(agents_->inventory_["node2"][0].state, VmState::kRunning) << "committed";
}

// Holds node1's migration of a1 (the source agent starts it: a1 is migrating out) and lets the
// clock run past its command's deadline, the source heartbeating all the while; returns it.
AgentCommand migrateUntilItsDeadlinePasses(ManualClock& clock, FakeAgents& agents, Manager& manager,
                                           const Reservation& r) {
  agents.hold = {AgentCommand::Kind::kMigrate};
  while (agents.held.empty() && clock.now() < r.request.startNs) {
    clock.advance(kNsPerSec);
    agents.heartbeat();
    manager.tick();
    agents.pump();
  }
  EXPECT_EQ(agents.held.size(), 1u);
  const AgentCommand migrate = agents.held.empty() ? AgentCommand{} : agents.held[0];
  agents.held.clear();
  agents.hold.clear();
  for (auto& v : agents.inventory_["node1"]) {
    if (v.id == migrate.vmId) v.state = VmState::kMigratingOut;
  }
  for (int i = 0; i < 600 && manager.get(r.id)->state != ReservationState::kFailed; ++i) {
    clock.advance(kNsPerSec);
    agents.heartbeat();
    manager.tick();
    agents.pump();
  }
  EXPECT_EQ(manager.get(r.id)->state, ReservationState::kFailed);
  EXPECT_NE(manager.get(r.id)->reason.find("did not answer its migrate command"), std::string::npos)
      << manager.get(r.id)->reason;
  return migrate;
}

// The hosts vrmd's view (the agents' inventories as it holds them) has `vmId` on, and how.
std::vector<std::string> placesInView(const Manager& m, const std::string& vmId) {
  std::vector<std::string> places;
  for (const auto& v : m.vms()) {
    if (v.id == vmId)
      places.push_back(v.host + (v.state == VmState::kIncoming ? " (incoming)" : ""));
  }
  return places;
}

// Ensures a migrate vrmd gave up on ends with the VM on exactly one host, which vrmd knows: the
// source finishes the migration after the command's deadline (its answer held up by a partition
// shorter than the heartbeat timeout). Before the fix vrmd failed the move at the deadline and
// dropped the destination's copy while the source was still migrating, so the VM ended on
// neither host (the partition campaign lost e-2 so, seeds 505045, 1, 134456).
TEST_F(ManagerFaultsTest, MigrateFinishedAfterItsDeadlineIsCommitted) {
  Reservation r = submitOnNode1();
  const AgentCommand migrate = migrateUntilItsDeadlinePasses(clock_, *agents_, *manager_, r);
  EXPECT_EQ(agents_->count("a1"), 2u) << "the destination's copy is kept while a1 migrates";

  manager_->onResult(migrate.host, agents_->execute(migrate));  // the late answer: a1 has left
  agents_->pump();
  for (int i = 0; i < 5; ++i) step();
  ASSERT_EQ(agents_->count("a1"), 1u);
  EXPECT_EQ(agents_->hostOf("a1"), "node2");
  EXPECT_EQ(agents_->inventory_["node2"].back().state, VmState::kRunning) << "committed";
  EXPECT_EQ(placesInView(*manager_, "a1"), std::vector<std::string>{"node2"});
  EXPECT_EQ(manager_->get(r.id)->state, ReservationState::kFailed);
  EXPECT_FALSE(manager_->calendar().overbooked("node2"));
}

// Ensures the same when the source's answer never comes but its inventory shows the VM gone:
// the destination's copy is committed from the inventories.
TEST_F(ManagerFaultsTest, MigrateWhoseLateAnswerIsLostIsSettledFromTheInventories) {
  Reservation r = submitOnNode1();
  const AgentCommand migrate = migrateUntilItsDeadlinePasses(clock_, *agents_, *manager_, r);
  (void)agents_->execute(migrate);  // finished at the source; its answer is lost
  for (int i = 0; i < 5; ++i) step();
  ASSERT_EQ(agents_->count("a1"), 1u);
  EXPECT_EQ(agents_->hostOf("a1"), "node2");
  EXPECT_EQ(agents_->inventory_["node2"].back().state, VmState::kRunning) << "committed";
  EXPECT_EQ(placesInView(*manager_, "a1"), std::vector<std::string>{"node2"});
}

// Ensures a migrate vrmd gave up on that then fails at the source leaves the VM there, and only
// there: the destination's copy is dropped once the source has answered.
TEST_F(ManagerFaultsTest, MigrateFailedAfterItsDeadlineDropsTheCopy) {
  Reservation r = submitOnNode1();
  const AgentCommand migrate = migrateUntilItsDeadlinePasses(clock_, *agents_, *manager_, r);
  for (auto& v : agents_->inventory_["node1"]) v.state = VmState::kRunning;
  AgentResult refused;
  refused.commandId = migrate.id;
  refused.status = Status::internal("the migration could not converge");
  manager_->onResult(migrate.host, refused);
  agents_->pump();
  for (int i = 0; i < 5; ++i) step();
  ASSERT_EQ(agents_->count("a1"), 1u);
  EXPECT_EQ(agents_->hostOf("a1"), "node1");
  EXPECT_EQ(placesInView(*manager_, "a1"), std::vector<std::string>{"node1"});
  EXPECT_EQ(manager_->calendar().free("node2", clock_.now(), kTimeInfinity).memoryBytes,
            static_cast<std::int64_t>((64 - 4) * kGiB))
      << "the copy's room is free again";
}

// Ensures the same across a restart of vrmd: the source still migrates the VM out when vrmd comes
// back, and only finishes after the move's deadline (counted from its stored start). Before the
// fix the restarted vrmd dropped the destination's copy at the deadline, and the VM, gone from
// its source a moment later, was on neither host.
TEST_F(ManagerFaultsTest, MigrateFinishedAfterItsDeadlineAcrossARestartIsCommitted) {
  Reservation r = submitOnNode1();
  const AgentCommand migrate = holdFirstMigrate(r);
  ASSERT_EQ(migrate.kind, AgentCommand::Kind::kMigrate);
  for (auto& v : agents_->inventory_["node1"]) {
    if (v.id == "a1") v.state = VmState::kMigratingOut;
  }

  // vrmd dies; the agents live on and register with the new one.
  Manager restarted(clock_, *store_, *planner_, templates_);
  ASSERT_TRUE(restarted.recover().isOk());
  FakeAgents agents(restarted);
  for (const auto& [host, vms] : agents_->inventory_) agents.addHost(host, 16, 64 * kGiB, vms);
  auto run = [&](int seconds) {
    for (int i = 0; i < seconds; ++i) {
      clock_.advance(kNsPerSec);
      agents.heartbeat();
      restarted.tick();
      agents.pump();
    }
  };
  for (int i = 0; i < 600 && restarted.get(r.id)->state != ReservationState::kFailed; ++i) run(1);
  ASSERT_EQ(restarted.get(r.id)->state, ReservationState::kFailed);
  EXPECT_NE(restarted.get(r.id)->reason.find("did not finish its migrate command for a1"),
            std::string::npos)
      << restarted.get(r.id)->reason;
  run(5);
  EXPECT_EQ(agents.count("a1"), 2u) << "the destination's copy is kept while a1 migrates";

  (void)agents.execute(migrate);  // the source finishes: a1 has left node1
  run(5);
  ASSERT_EQ(agents.count("a1"), 1u);
  EXPECT_EQ(agents.hostOf("a1"), "node2");
  EXPECT_EQ(agents.inventory_["node2"].back().state, VmState::kRunning) << "committed";
  EXPECT_EQ(placesInView(restarted, "a1"), std::vector<std::string>{"node2"});
}

// Ensures a commit that times out while its destination's agent is down, but not yet missed (its
// heartbeat timeout is longer than the commit's deadline, as in the campaigns), is not taken as
// done: the agent comes back with the VM still incoming and vrmd commits it. Before the fix vrmd
// settled the move from its own view (which had the VM committed the moment the source let it
// go), and then dropped the copy the restarted agent reported as an orphan: the kill-agent
// campaign lost a-1 so.
TEST_F(ManagerFaultsTest, CommitTimedOutWhileItsAgentRestartsIsNotTakenAsDone) {
  ManagerOptions options;
  options.heartbeatTimeoutNs = 5 * 60 * kNsPerSec;  // longer than a commit's 60 s
  agents_.reset();
  manager_ = std::make_unique<Manager>(clock_, *store_, *planner_, templates_, options);
  agents_ = std::make_unique<FakeAgents>(*manager_);
  agents_->addHost("node1", 16, 64 * kGiB, {FakeAgents::vm("a1", 8 * kGiB)});
  agents_->addHost("node2", 16, 64 * kGiB, {FakeAgents::vm("b1", 4 * kGiB)});
  Reservation r = submitOnNode1();
  agents_->hold = {AgentCommand::Kind::kFinishIncoming};
  while (agents_->held.empty() && clock_.now() < r.request.startNs) step();
  ASSERT_EQ(agents_->held.size(), 1u);
  ASSERT_TRUE(agents_->held[0].commit);
  agents_->held.clear();  // node2's agent dies with the commit unanswered
  agents_->hold.clear();
  agents_->down = {"node2"};
  for (int i = 0; i < 120; ++i) step();  // past the commit's deadline
  EXPECT_EQ(manager_->get(r.id)->state, ReservationState::kVacating)
      << manager_->get(r.id)->events.back().message;

  agents_->down.clear();  // back, with a1 still incoming (a real hypervisor keeps it)
  ASSERT_TRUE(manager_->onRegister(agents_->hosts_["node2"], agents_->inventory_["node2"]).isOk());
  agents_->pump();
  for (int i = 0; i < 600 && manager_->get(r.id)->state != ReservationState::kReady; ++i) step();
  EXPECT_EQ(manager_->get(r.id)->state, ReservationState::kReady) << manager_->get(r.id)->reason;
  ASSERT_EQ(agents_->count("a1"), 1u);
  EXPECT_EQ(agents_->hostOf("a1"), "node2");
  EXPECT_EQ(placesInView(*manager_, "a1"), std::vector<std::string>{"node2"});
  for (const auto& v : agents_->inventory_["node2"]) {
    if (v.id == "a1") EXPECT_EQ(v.state, VmState::kRunning) << "committed";
  }
}

// Ensures a restarted agent's forgotten commands do not leave a vacate waiting forever: the
// source's agent dies during a migration and comes back (a new process, which knows nothing of
// it); vrmd sends it the unanswered migration again, under the same id.
TEST_F(ManagerFaultsTest, RestartedAgentsForgottenMigrationIsRedone) {
  Reservation r = submitOnNode1();
  agents_->hold = {AgentCommand::Kind::kMigrate};
  while (agents_->held.empty() && clock_.now() < r.request.startNs) step();
  ASSERT_EQ(agents_->held.size(), 1u);
  agents_->held.clear();  // the source died: this migration never finishes
  agents_->hold.clear();
  ASSERT_TRUE(manager_->onRegister(agents_->hosts_["node1"], agents_->inventory_["node1"]).isOk());
  for (int i = 0; i < 600 && manager_->get(r.id)->state != ReservationState::kReady; ++i) step();
  EXPECT_EQ(manager_->get(r.id)->state, ReservationState::kReady) << manager_->get(r.id)->reason;
  ASSERT_EQ(agents_->count("a1"), 1u);
  EXPECT_EQ(agents_->hostOf("a1"), "node2");
}

// Ensures what a failed reservation's agents are still doing stays booked: a shared
// reservation fails while one of its clones is still being made; that clone appears after the
// failure and stays until it is destroyed, so its room must not be promised to anyone else in
// the meantime. fuzz_manager_ops found a dedicated reservation re-admitted onto that room, and
// the host booked beyond its cores once the clone arrived.
TEST_F(ManagerFaultsTest, CloneStillBeingMadeWhenItsReservationFailsStaysBooked) {
  ReservationRequest req;
  req.owner = "lab";
  req.kind = ReservationKind::kShared;
  req.vmCount = 2;
  req.startNs = clock_.now() + kHour;
  req.endNs = req.startNs + kHour;
  req.templateName = "small";
  auto r = manager_->submit(req);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  ASSERT_EQ(r->state, ReservationState::kAdmitted) << r->reason;

  agents_->hold = {AgentCommand::Kind::kClone};
  while (agents_->held.size() < 2 && clock_.now() < req.startNs) step();
  ASSERT_EQ(agents_->held.size(), 2u);
  const AgentCommand first = agents_->held[0];
  const AgentCommand second = agents_->held[1];
  agents_->held.clear();
  agents_->hold.clear();
  AgentResult refused;
  refused.commandId = first.id;
  refused.status = Status::unavailable("no room for the clone after all");
  manager_->onResult(first.host, refused);
  ASSERT_EQ(manager_->get(r->id)->state, ReservationState::kFailed);

  // Long after the window, the clone still in flight is booked: it will exist until destroyed.
  // (Its agent may make it however late; fuzz_manager_ops' finding-failed-reservations-clone-
  // arrives-later overbooks the host when the booking ends at the command's deadline.)
  const TimeNs later = req.endNs + 10 * kHour;
  const auto& calendar = manager_->calendar();
  const Usage capacity = calendar.capacity(second.host);
  const Usage freeWhileCloning = calendar.free(second.host, later, kTimeInfinity);
  // Each host runs one 1-core VM; the clone takes the template's 2 cores.
  EXPECT_EQ(freeWhileCloning.cpuCores, capacity.cpuCores - 1 - 2);
  EXPECT_FALSE(calendar.overbooked(second.host));

  // It arrives, is destroyed at once, and its room is free again.
  manager_->onResult(second.host, agents_->execute(second));
  agents_->pump();
  step();
  EXPECT_EQ(agents_->count(second.vmId), 0u);
  EXPECT_EQ(manager_->calendar().free(second.host, later, kTimeInfinity).cpuCores,
            freeWhileCloning.cpuCores + 2);
}

// Ensures the shell a failed migration leaves on its destination keeps its room until the agent
// confirms it is gone: before the fix the move's booking ended with the failure, the next
// heartbeat brought the shell back into the inventory, and a reservation admitted in between
// had been promised that room (fuzz_manager_ops, a host booked 36 of 32 cores).
TEST_F(ManagerFaultsTest, ShellOfAFailedMigrationStaysBookedUntilDropped) {
  Reservation r = submitOnNode1();
  agents_->hold = {AgentCommand::Kind::kMigrate};
  while (agents_->held.empty() && clock_.now() < r.request.startNs) step();
  ASSERT_EQ(agents_->held.size(), 1u);
  const AgentCommand migrate = agents_->held[0];
  agents_->held.clear();
  agents_->hold = {AgentCommand::Kind::kFinishIncoming};  // the drop waits at the agent
  AgentResult refused;
  refused.commandId = migrate.id;
  refused.status = Status::internal("the hypervisor said no");
  manager_->onResult(migrate.host, refused);
  ASSERT_EQ(manager_->get(r.id)->state, ReservationState::kFailed);
  agents_->pump();
  ASSERT_EQ(agents_->held.size(), 1u);

  const TimeNs later = r.request.endNs + 10 * kHour;
  auto freeOnNode2 = [&] {
    return manager_->calendar().free("node2", later, kTimeInfinity).memoryBytes;
  };
  const std::int64_t withoutShell = static_cast<std::int64_t>((64 - 4) * kGiB);  // b1 only
  EXPECT_EQ(freeOnNode2(), withoutShell - static_cast<std::int64_t>(8 * kGiB));
  agents_->heartbeat();  // the agent still reports the shell
  EXPECT_EQ(freeOnNode2(), withoutShell - static_cast<std::int64_t>(8 * kGiB));

  const AgentCommand drop = agents_->held[0];
  agents_->held.clear();
  agents_->hold.clear();
  manager_->onResult(drop.host, agents_->execute(drop));
  EXPECT_EQ(freeOnNode2(), withoutShell);
  EXPECT_EQ(agents_->count("a1"), 1u);
  EXPECT_EQ(agents_->hostOf("a1"), "node1");
}

// Ensures an incoming VM no move brings in is dropped when its agent reports it: a vrmd that
// restarted after sending a drop the agent never got would otherwise keep the shell, and its
// room, forever.
TEST_F(ManagerFaultsTest, OrphanIncomingVmIsDropped) {
  VmRecord shell = FakeAgents::vm("stray", 2 * kGiB);
  shell.host = "node2";
  shell.state = VmState::kIncoming;
  agents_->inventory_["node2"].push_back(shell);
  agents_->heartbeat();
  agents_->pump();
  EXPECT_EQ(agents_->count("stray"), 0u);
  EXPECT_EQ(manager_->calendar().free("node2", clock_.now(), kTimeInfinity).memoryBytes,
            static_cast<std::int64_t>((64 - 4) * kGiB));
}

// Ensures a vacate that starts late pushes its clones' booking back: when vrmd only gets to a
// move after its planned time, the VM stays booked on its host until the move's new predicted
// end, and the clones, made once the vacate is done, must be booked from then on, not from the
// planned clone start (fuzz_manager_ops: the leaving VM and the clones booked at once).
TEST_F(ManagerFaultsTest, LateVacateBooksItsClonesAfterItsLastMove) {
  const Reservation r = submitDedicated("node1", "whole");
  ASSERT_EQ(r.state, ReservationState::kAdmitted);
  ASSERT_EQ(r.plannedMoves().size(), 1u);

  // vrmd was busy (or down): its next tick comes just before the planned clone start.
  agents_->hold = {AgentCommand::Kind::kMigrate};
  clock_.set(r.plan.latestSafeStartNs + r.plan.makespanNs - kNsPerSec);
  step(0);
  ASSERT_EQ(manager_->get(r.id)->moves[0].progress.state, MoveState::kRunning);
  std::string why;
  EXPECT_FALSE(manager_->calendar().overbooked("node1", &why)) << why;
}

// Ensures the moves after a late one are booked as late: a sequential vacate that starts 10 s
// late keeps its second move after its first in the calendar, instead of booking both through
// the source's NIC at once (fuzz_manager_ops: a NIC booked at twice its rate).
TEST_F(ManagerFaultsTest, LateVacateBooksItsLaterMovesLaterToo) {
  agents_->addHost("node3", 16, 64 * kGiB,
                   {FakeAgents::vm("c1", 4 * kGiB), FakeAgents::vm("c2", 4 * kGiB)});
  const Reservation r = submitDedicated("node3", "small");
  ASSERT_EQ(r.state, ReservationState::kAdmitted);
  ASSERT_EQ(r.plannedMoves().size(), 2u);
  ASSERT_NE(r.plannedMoves()[0].batch, r.plannedMoves()[1].batch) << "sequential";

  agents_->hold = {AgentCommand::Kind::kMigrate};
  clock_.set(r.plan.latestSafeStartNs + 10 * kNsPerSec);
  step(0);
  ASSERT_EQ(manager_->get(r.id)->moves[0].progress.state, MoveState::kRunning);
  for (const char* host : {"node1", "node2", "node3"}) {
    std::string why;
    EXPECT_FALSE(manager_->calendar().overbooked(host, &why)) << host << ": " << why;
  }
}

}  // namespace
}  // namespace vrm::manager
