// What the week found in vrmd, each as a small deterministic regression test of the manager
// (finding 2 was fixed in vrm/src/manager.cc on 2026-12-03 and fails on the code before it).
// Finding 1, the cancel while cloning, was fixed the same day: a clone that may still appear is
// booked until vrmd knows it will not (answered, or an inventory after its command's deadline
// without it), by the command's deadline while the answer is due and with no end after it; the
// first fix, which ended the booking at the deadline for good, broke fuzz_manager_ops'
// finding-failed-reservations-clone-arrives-later and was undone (57d46ae). Both pass now.
#include <gtest/gtest.h>

#include <map>

#include "../../vrm/tests/manager_fixture.h"

namespace vrm::manager::testing {
namespace {

class WeekFindingsTest : public ManagerFixture {
 protected:
  void SetUp() override {
    startManager({bmiTemplate()});
    // small is the cheapest host to vacate (2 GiB to move) but nearly full of cores; big1
    // costs more (12 GiB); spare and spare2 are too small for a clone and only receive VMs.
    agents_->addHost("small", 24, 64 * kGiB, {FakeAgents::vm("s1", 2 * kGiB, 20)});
    agents_->addHost("big1", 64, 64 * kGiB,
                     {FakeAgents::vm("b1", 4 * kGiB, 4), FakeAgents::vm("b2", 4 * kGiB, 4),
                      FakeAgents::vm("b3", 4 * kGiB, 4)});
    agents_->addHost("spare", 64, 8 * kGiB, {});
    agents_->addHost("spare2", 64, 15 * kGiB, {});
  }
};

// The week's most frequent rejection (seed 1: 19 of the first 51 dedicated submissions): a
// booking whose displaced VMs go home is tried on the cheapest host; there its VMs' room at home
// is booked from its end on, which collides with a later reservation's clones on that host, and
// the final booking check rejects the whole request ("host small would be overbooked: cpu cores
// booked 28 > capacity 24") instead of trying the next candidate, big1, which fits. (Nor is the
// return planned as "stay" for VMs whose home is reserved later, as README "Displaced VMs"
// describes for execution.)
TEST_F(WeekFindingsTest, ReturningBookingTriesTheNextHostWhenTheCheapestCannotTakeItsVmsBack) {
  auto later = manager_->submit(dedicated(18 * kHour, kHour));
  ASSERT_TRUE(later);
  ASSERT_EQ(later->state, ReservationState::kAdmitted) << later->reason;
  ASSERT_EQ(later->hosts, std::vector<std::string>{"small"});
  ReservationRequest earlier = dedicated(9 * kHour, kHour);
  earlier.displaced = Displaced::kReturn;
  auto r = manager_->submit(earlier);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
  EXPECT_EQ(r->hosts, std::vector<std::string>{"big1"});
}

// The other side of the fix above: a host still cannot be dedicated over a window during or
// after which another vacate's VMs arrive (that vacate's plan counts on the host's room, and
// this one's would not move them out).
TEST_F(WeekFindingsTest, HostReceivingAnotherVacatesVmsBeforeTheWindowEndsIsRefused) {
  auto later = manager_->submit(dedicated(18 * kHour, kHour));
  ASSERT_TRUE(later);
  ASSERT_EQ(later->state, ReservationState::kAdmitted) << later->reason;
  ASSERT_EQ(later->hosts, std::vector<std::string>{"small"});
  std::string destination;
  for (const auto& m : later->moves) destination = m.planned.toHost;
  ASSERT_FALSE(destination.empty());
  ReservationRequest overlapping = dedicated(17 * kHour, 2 * kHour);  // s1 arrives at ~18 h
  overlapping.hostNames = {destination};
  auto r = manager_->submit(overlapping);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, ReservationState::kRejected);
  EXPECT_NE(r->reason.find("is receiving VMs of another vacate"), std::string::npos) << r->reason;
}

// And a vacate's batches start as soon as the ones before are done, not at their planned
// offsets: a host that receives a VM of a later batch only after the window's end is still
// refused when that vacate starts before the window ends (its VMs may arrive from then on).
TEST_F(WeekFindingsTest, HostReceivingALaterBatchOfAVacateThatStartsBeforeTheWindowEndsIsRefused) {
  // First fit in name order: b1 and b2 fill aaa, b3 (the third batch) goes to roomy.
  agents_->addHost("aaa", 64, 8 * kGiB, {});
  agents_->addHost("roomy", 64, 64 * kGiB, {});
  ReservationRequest vacateBig1 = dedicated(18 * kHour, kHour);
  vacateBig1.hostNames = {"big1"};
  auto b = manager_->submit(vacateBig1);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->state, ReservationState::kAdmitted) << b->reason;
  // The first arrival on each destination.
  std::map<std::string, TimeNs> arrives;
  for (const auto& m : b->moves) {
    const TimeNs at = b->plan.latestSafeStartNs + m.planned.startOffsetNs;
    auto [it, first] = arrives.emplace(m.planned.toHost, at);
    if (!first) it->second = std::min(it->second, at);
  }
  ASSERT_TRUE(arrives.count("roomy"));
  ASSERT_GT(arrives["roomy"], b->plan.latestSafeStartNs + kNsPerSec) << "not a later batch";
  ReservationRequest between = dedicated(0, kHour);
  between.hostNames = {"roomy"};
  between.endNs = (b->plan.latestSafeStartNs + arrives["roomy"]) / 2;
  between.startNs = between.endNs - kHour;
  auto r = manager_->submit(between);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, ReservationState::kRejected);
  EXPECT_NE(r->reason.find("is receiving VMs of another vacate"), std::string::npos) << r->reason;
}

// The same booking with its displaced VMs staying where the vacate puts them is admitted: the
// rejection above is the return's booking, not a lack of room.
TEST_F(WeekFindingsTest, TheSameBookingStayingIsAdmitted) {
  auto later = manager_->submit(dedicated(18 * kHour, kHour));
  ASSERT_TRUE(later);
  ASSERT_EQ(later->state, ReservationState::kAdmitted) << later->reason;
  auto r = manager_->submit(dedicated(9 * kHour, kHour));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
}

// Two bookings of one empty host, a (12 cores) that fits one clone: cancelling the first while
// its clone is being made must not cost the second its booking.
class CancelWhileCloningTest : public ManagerFixture {
 protected:
  void SetUp() override {
    startManager({bmiTemplate()});
    agents_->addHost("a", 12, 32 * kGiB, {});
    agents_->addHost("b", 12, 32 * kGiB, {});
  }
  void runFor(TimeNs d) { runUntil(clock_.now() + d, kNsPerSec); }
  // The first booking of a is cancelled while its clone is being made (held unanswered); a
  // second booking of a, four hours later, was admitted before. Returns their ids.
  std::pair<std::string, std::string> cancelWhileCloning() {
    ReservationRequest first = dedicated(2 * kHour, kHour);
    first.hostNames = {"a"};
    auto r1 = manager_->submit(first);
    EXPECT_TRUE(r1);
    ReservationRequest second = dedicated(6 * kHour, kHour);
    second.hostNames = {"a"};
    auto r2 = manager_->submit(second);
    EXPECT_TRUE(r2);
    EXPECT_EQ(r2->state, ReservationState::kAdmitted) << r2->reason;
    agents_->hold.insert(AgentCommand::Kind::kClone);
    runFor(2 * kHour - 30 * kNsPerSec);
    EXPECT_EQ(manager_->get(r1->id)->state, ReservationState::kPreparing);
    EXPECT_EQ(agents_->held.size(), 1u);
    EXPECT_TRUE(manager_->cancel(r1->id, ""));
    EXPECT_EQ(manager_->get(r2->id)->state, ReservationState::kAdmitted);
    return {r1->id, r2->id};
  }
  void expectNotOverbooked() {
    const CapacityCalendar& cal = manager_->calendar();
    for (const auto& h : cal.hosts()) {
      std::string why;
      EXPECT_FALSE(cal.overbooked(h, &why)) << h << ": " << why;
    }
  }
  static constexpr TimeNs kMinute = 60 * kNsPerSec;
};

// The week's largest loss (seed 1, 2026-11-25 19:42:50): r49 was cancelled while its clones
// were being made on w014; the clones stay booked without an end until the agents say they are
// gone, so w014 looked overbooked at every later booking's clone start; repairAfter re-admitted
// those bookings one by one, each re-admission failed ("re-planning failed after r49 ended
// before vacating w014: not enough capacity: host w014 would be overbooked: cpu cores booked 32
// > capacity 24"), and each failure repaired the next: 12 reservations on w014 and the hosts
// they shared failed 1-3 days before their start, in 2 s. Here: the later booking of host a
// fails the same way when the earlier one is cancelled while cloning.
TEST_F(CancelWhileCloningTest, LaterBookingOfTheHostSurvivesACancelWhileCloning) {
  ReservationRequest first = dedicated(2 * kHour, kHour);
  first.hostNames = {"a"};
  auto r1 = manager_->submit(first);
  ASSERT_TRUE(r1);
  ASSERT_EQ(r1->state, ReservationState::kAdmitted) << r1->reason;
  ReservationRequest second = dedicated(6 * kHour, kHour);
  second.hostNames = {"a"};
  auto r2 = manager_->submit(second);
  ASSERT_TRUE(r2);
  ASSERT_EQ(r2->state, ReservationState::kAdmitted) << r2->reason;
  agents_->hold.insert(AgentCommand::Kind::kClone);  // the clone is being made
  runFor(2 * kHour - 30 * kNsPerSec);
  ASSERT_EQ(manager_->get(r1->id)->state, ReservationState::kPreparing);
  auto cancelled = manager_->cancel(r1->id, "");
  ASSERT_TRUE(cancelled);
  const Reservation after = *manager_->get(r2->id);
  EXPECT_EQ(after.state, ReservationState::kAdmitted) << after.reason;
  expectNotOverbooked();
}

// What the cancel's clone does next decides the later booking. Answered (here late, after its
// deadline), it is destroyed and the later booking becomes ready in its window.
TEST_F(CancelWhileCloningTest, CloneAnsweredAfterTheCancelIsDestroyedAndTheLaterBookingRuns) {
  const auto [r1, r2] = cancelWhileCloning();
  runFor(15 * kMinute);  // past the clone's 10 min deadline: a still listed it as being made
  ASSERT_EQ(manager_->get(r2)->state, ReservationState::kFailed)
      << "booked with no end while it may appear, the host cannot be promised";
  const auto held = agents_->answerHeld();
  runFor(kMinute);
  EXPECT_EQ(manager_->get(r1)->clones.at(0).state, CloneState::kDestroyed);
  EXPECT_EQ(agents_->count(held.at(0).vmId), 0u);
  EXPECT_EQ(manager_->resultsForUnknownCommands(), 0u);
  expectNotOverbooked();
}

// Answered by its deadline, the clone is destroyed and the later booking keeps its promise.
TEST_F(CancelWhileCloningTest, CloneAnsweredInTimeAfterTheCancelLeavesTheLaterBookingAlone) {
  const auto [r1, r2] = cancelWhileCloning();
  runFor(5 * kMinute);
  const auto held = agents_->answerHeld();
  runFor(kMinute);
  EXPECT_EQ(manager_->get(r1)->clones.at(0).state, CloneState::kDestroyed);
  EXPECT_EQ(agents_->count(held.at(0).vmId), 0u);
  runFor(4 * kHour);  // past its start
  const Reservation later = *manager_->get(r2);
  EXPECT_EQ(later.state, ReservationState::kActive) << later.reason;
  expectNotOverbooked();
}

// Never made (the agent lists nothing after the deadline), it is settled as not made and the
// later booking keeps its promise too.
TEST_F(CancelWhileCloningTest, CloneTheAgentDropsIsSettledAndTheLaterBookingKeepsItsPromise) {
  const auto [r1, r2] = cancelWhileCloning();
  // The agent gave up on it: its inventory at the deadline says so.
  agents_->inventory_["a"].clear();
  runFor(11 * kMinute);
  EXPECT_EQ(manager_->get(r1)->clones.at(0).state, CloneState::kFailed);
  EXPECT_EQ(manager_->get(r2)->state, ReservationState::kAdmitted) << manager_->get(r2)->reason;
  expectNotOverbooked();
}

// Plans with the sequential planner (every move turned into a park of its VM on its host when
// parkAll) and keeps the error samples each request brought.
class RecordingPlanner final : public planner::VacatePlanner {
 public:
  using planner::VacatePlanner::plan;
  Result<VacatePlan> plan(const planner::VacateRequest& req) const override {
    samples.push_back(req.relativeErrorSamples);
    auto p = inner_.plan(req);
    if (p && parkAll) {
      for (auto& m : p->moves) {
        m.toHost = m.fromHost;
        m.mode = MoveMode::kPark;
        m.resumeAtNs = req.reservationEndNs;
      }
    }
    return p;
  }
  bool parkAll = false;
  mutable std::vector<std::vector<double>> samples;

 private:
  planner::SequentialVacatePlanner inner_{std::shared_ptr<const planner::MigrationModel>(
      std::move(*planner::createMigrationModel("simple")))};
};

// Two hosts to vacate (two 4 GiB VMs each) and one to receive them; migrations wait for the
// test to answer them (held), so a vacate takes exactly as long as the test says.
class VacateErrorsTest : public ManagerFixture {
 protected:
  void SetUp() override {
    startManager({bmiTemplate()}, {}, &planner_);
    addHosts();
    agents_->hold.insert(AgentCommand::Kind::kMigrate);
    agents_->hold.insert(AgentCommand::Kind::kPark);
  }
  void TearDown() override {  // the manager holds planner_
    agents_.reset();
    manager_.reset();
  }
  void addHosts() {
    agents_->addHost("src", 32, 64 * kGiB,
                     {FakeAgents::vm("v0", 4 * kGiB, 2), FakeAgents::vm("v1", 4 * kGiB, 2)});
    agents_->addHost("src2", 32, 64 * kGiB,
                     {FakeAgents::vm("w0", 4 * kGiB, 2), FakeAgents::vm("w1", 4 * kGiB, 2)});
    agents_->addHost("dst", 32, 64 * kGiB, {});
  }
  void step() {
    agents_->heartbeat();
    manager_->tick();
    agents_->pump();
  }
  // Runs r's vacate from its latest safe start, answering each held command `each` after it
  // was sent, until r is past vacating.
  void vacate(const Reservation& r, TimeNs each) {
    clock_.set(r.plan.latestSafeStartNs);
    step();
    for (int guard = 0; guard < 10 && manager_->get(r.id)->state == ReservationState::kVacating;
         ++guard) {
      clock_.advance(each);
      auto held = std::move(agents_->held);
      agents_->held.clear();
      for (const auto& c : held) manager_->onResult(c.host, agents_->execute(c));
      agents_->pump();
      step();
    }
    const ReservationState s = manager_->get(r.id)->state;
    ASSERT_TRUE(s == ReservationState::kPreparing || s == ReservationState::kReady) << stateName(s);
  }
  Reservation book(const std::string& host, TimeNs startIn) {
    ReservationRequest req = dedicated(startIn, kHour);
    req.hostNames = {host};
    auto r = manager_->submit(req);
    EXPECT_TRUE(r);
    EXPECT_EQ(r->state, ReservationState::kAdmitted) << r->reason;
    return *r;
  }

  RecordingPlanner planner_;
};

// The week's vacates began 40-67 min before their start: the latest safe start's quantile came
// from every move's relative error, so the shortest moves and the parks (2.5 s predicted, 5-11 s
// taken) set it, at 3-6.7 x the mean, where the vacates themselves ran 40 % under the mean. The
// planner is now handed one error per completed vacate, (actual - admitted mean) / mean; a
// vacate that only parks gives none (its error is seconds, which the margin is for); and the
// samples come back from the store after a restart.
TEST_F(VacateErrorsTest, PlannerQuantileComesFromOneErrorPerVacateNotFromMovesOrParks) {
  const Reservation migrating = book("src", 2 * kHour);
  ASSERT_EQ(migrating.moves.size(), 2u);
  const TimeNs mean = migrating.plan.makespanNs;
  ASSERT_GT(mean, 0);
  // Each migration takes 3/4 of the vacate's mean: the vacate 1.5 x the mean.
  vacate(migrating, mean * 3 / 4);
  planner_.parkAll = true;
  const Reservation parking = book("src2", 4 * kHour);
  ASSERT_EQ(parking.moves.front().planned.mode, MoveMode::kPark);
  vacate(parking, 30 * kNsPerSec);
  planner_.parkAll = false;

  auto expectOneSample = [&](const std::string& when, TimeNs startIn) {
    planner_.samples.clear();
    ReservationRequest later = dedicated(startIn, kHour);
    later.hostNames = {"dst"};
    auto r = manager_->submit(later);
    ASSERT_TRUE(r);
    ASSERT_FALSE(planner_.samples.empty()) << when << ": " << r->reason;
    ASSERT_EQ(planner_.samples.back().size(), 1u) << when;
    EXPECT_NEAR(planner_.samples.back().front(), 0.5, 1e-6) << when;
  };
  expectOneSample("live", 20 * kHour);

  // vrmd restarts on the same store: the sample is rebuilt from the stored moves.
  manager_ = std::make_unique<Manager>(clock_, *store_, planner_, templates_, ManagerOptions{});
  ASSERT_TRUE(manager_->recover().isOk());
  auto inventories = agents_->inventory_;
  auto hosts = agents_->hosts_;
  agents_ = std::make_unique<FakeAgents>(*manager_);
  for (const auto& [name, h] : hosts) {
    agents_->addHost(name, h.cpuCores, h.memoryBytes, inventories[name]);
  }
  expectOneSample("after a restart", 40 * kHour);
}

}  // namespace
}  // namespace vrm::manager::testing
