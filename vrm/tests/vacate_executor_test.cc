// The VacateExecutor's contract: which moves a running vacate starts and with which commands
// (returned, not sent), when it is over, what a failed move leads to, the caps it sends running
// migrations, and the re-plans, at-risk marks and lost-host handling of deadline tracking, on a
// fake clock with a planner whose plans are fixed.
#include "vrm/manager/vacate_executor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "sample_records.h"

namespace vrm::manager {
namespace {

constexpr TimeNs kSec = kNsPerSec;
constexpr TimeNs kT0 = 1000 * kSec;
using sample::kGiB;

// Plans every VM asked for to the first host that may receive it (not vacated), all at once
// (batch 0) in kPlanNs; or refuses, when told to. Keeps the last request.
class FixedPlanner final : public planner::VacatePlanner {
 public:
  static constexpr TimeNs kPlanNs = 12 * kSec;
  Result<VacatePlan> plan(const planner::VacateRequest& req) const override {
    last = req;
    ++calls;
    if (refuse) return Status::rejected("no plan today");
    std::string dest;
    for (const auto& h : req.hosts) {
      const bool vacated =
          std::count(req.hostsToVacate.begin(), req.hostsToVacate.end(), h.name) > 0;
      if (h.canReceive && !vacated) {
        dest = h.name;
        break;
      }
    }
    if (dest.empty()) return Status::rejected("nowhere to go");
    VacatePlan p;
    p.strategy = "parallel";
    for (const auto& vm : req.vms) {
      PlannedMove m;
      m.vmId = vm.id;
      m.fromHost = vm.host;
      m.toHost = dest;
      m.memoryBytes = vm.memoryBytes;
      m.transferredBytes = 100'000'000;
      m.batch = 0;
      m.startOffsetNs = 0;
      m.endOffsetNs = kPlanNs;
      p.moves.push_back(m);
    }
    p.makespanNs = p.makespanQuantileNs = kPlanNs;
    p.feasible = true;
    return p;
  }
  bool refuse = false;
  mutable planner::VacateRequest last;
  mutable int calls = 0;
};

PlannedMove planned(const std::string& vm, const std::string& from, const std::string& to,
                    std::uint32_t batch, TimeNs startNs, TimeNs endNs) {
  PlannedMove m;
  m.vmId = vm;
  m.fromHost = from;
  m.toHost = to;
  m.batch = batch;
  m.startOffsetNs = startNs;
  m.endOffsetNs = endNs;
  m.memoryBytes = 2 * kGiB;
  m.transferredBytes = 100'000'000;
  return m;
}

class VacateExecutorTest : public ::testing::Test {
 protected:
  VacateExecutorTest()
      : clock_(kT0),
        inventory_(3600 * kSec),
        commands_(1),
        projection_(clock_, inventory_, commands_, reservations_, templates_, 10 * kSec),
        index_(inventory_, projection_.bookings()),
        replanner_(clock_, {1.1, 1.0, kSec}),
        executor_(clock_, planner_, inventory_, commands_, projection_, index_, replanner_, errors_,
                  {0.95}) {
    std::vector<VmRecord> vms;
    for (const char* id : {"v1", "v2", "v3"}) vms.push_back(sample::vm(id));
    register_("src", vms);
    register_("dst", {});
    register_("dst2", {});
  }

  void register_(const std::string& name, const std::vector<VmRecord>& vms) {
    ASSERT_TRUE(inventory_.registerHost(sample::host(name), vms, clock_.now()));
  }

  // A dedicated reservation of "src" vacating since kT0, its clones due at `deadlineNs`; in
  // the reservations the projection reads (the executor drives it there, in place).
  Reservation& vacating(TimeNs deadlineNs = kT0 + 3600 * kSec) {
    Reservation r;
    r.id = "r1";
    r.state = ReservationState::kVacating;
    r.request.kind = ReservationKind::kDedicated;
    r.plan.latestSafeStartNs = kT0;
    r.plan.cloneTimeNs = 10 * kSec;
    r.plan.makespanNs = r.plan.makespanQuantileNs = 30 * kSec;
    r.plan.quantile = 0.95;
    r.request.startNs = deadlineNs + r.plan.cloneTimeNs;
    r.request.endNs = r.request.startNs + 3600 * kSec;
    r.hosts = {"src"};
    Reservation& in = reservations_[r.id] = r;
    projection_.touch(in);
    return in;
  }

  static std::vector<std::string> events(const Reservation& r) {
    std::vector<std::string> out;
    for (const auto& e : r.events) out.push_back(e.message);
    return out;
  }
  static bool hasEventStarting(const Reservation& r, const std::string& prefix) {
    return std::any_of(r.events.begin(), r.events.end(),
                       [&](const ReservationEvent& e) { return e.message.rfind(prefix, 0) == 0; });
  }

  ManualClock clock_;
  Inventory inventory_;
  CommandTracker commands_;
  std::map<std::string, Reservation> reservations_;
  std::vector<TemplateSpec> templates_;
  BookingProjection projection_;
  AdmissionIndex index_;
  Replanner replanner_;
  std::vector<double> errors_;
  FixedPlanner planner_;
  VacateExecutor executor_;
};

// Only the lowest batch with unfinished moves starts, each migration as a prepare-incoming to
// its destination carrying the VM's record; the move runs from now.
TEST_F(VacateExecutorTest, DriveStartsOnlyTheLowestBatch) {
  Reservation& r = vacating();
  const MoveId first =
      r.addMove(MovePurpose::kVacate, planned("v1", "src", "dst", 0, 0, 10 * kSec)).id;
  const MoveId second =
      r.addMove(MovePurpose::kVacate, planned("v2", "src", "dst", 1, 10 * kSec, 20 * kSec)).id;

  const VacateEffects e = executor_.drive(r);
  ASSERT_EQ(e.commands.size(), 1u);
  EXPECT_EQ(e.commands[0].step, CommandStep::kPrepareIncoming);
  EXPECT_EQ(e.commands[0].move, first);
  EXPECT_EQ(e.commands[0].command.kind, AgentCommand::Kind::kPrepareIncoming);
  EXPECT_EQ(e.commands[0].command.host, "dst");
  EXPECT_EQ(e.commands[0].command.vm.id, "v1");
  EXPECT_EQ(r.findMove(first)->progress.state, MoveState::kRunning);
  EXPECT_EQ(r.findMove(first)->progress.actualStartNs, kT0);
  EXPECT_EQ(r.findMove(second)->progress.state, MoveState::kPlanned);
  EXPECT_EQ(r.state, ReservationState::kVacating);
  EXPECT_FALSE(e.vacated);
  EXPECT_TRUE(hasEventStarting(r, "moving v1 src -> dst"));
}

// A move whose VM left its source is skipped, and a batch left with nothing to do is passed
// over in the same call: the next batch starts at once.
TEST_F(VacateExecutorTest, DriveSkipsGoneVmsAndPassesOverAnEmptyBatch) {
  Reservation& r = vacating();
  const MoveId gone =
      r.addMove(MovePurpose::kVacate, planned("v9", "src", "dst", 0, 0, 10 * kSec)).id;
  const MoveId next =
      r.addMove(MovePurpose::kVacate, planned("v2", "src", "dst", 1, 10 * kSec, 20 * kSec)).id;

  const VacateEffects e = executor_.drive(r);
  EXPECT_EQ(r.findMove(gone)->progress.state, MoveState::kSkipped);
  ASSERT_EQ(e.commands.size(), 1u);
  EXPECT_EQ(e.commands[0].move, next);
  EXPECT_TRUE(hasEventStarting(r, "v9 is no longer on src; move skipped"));
}

// Until both agents of a move are ready nothing is sent and the move waits, planned.
TEST_F(VacateExecutorTest, DriveWaitsWhileAnAgentIsNotReady) {
  Reservation& r = vacating();
  const MoveId id = r.addMove(MovePurpose::kVacate, planned("v1", "src", "nowhere", 0, 0, kSec)).id;
  const VacateEffects e = executor_.drive(r);
  EXPECT_TRUE(e.commands.empty());
  EXPECT_EQ(r.findMove(id)->progress.state, MoveState::kPlanned);
  EXPECT_EQ(r.state, ReservationState::kVacating);
}

// A park move parks its VM on its source (no destination).
TEST_F(VacateExecutorTest, DriveParksAParkMoveOnItsSource) {
  Reservation& r = vacating();
  PlannedMove p = planned("v1", "src", "src", 0, 0, 2 * kSec);
  p.mode = MoveMode::kPark;
  const MoveId id = r.addMove(MovePurpose::kPark, p).id;
  const VacateEffects e = executor_.drive(r);
  ASSERT_EQ(e.commands.size(), 1u);
  EXPECT_EQ(e.commands[0].step, CommandStep::kPark);
  EXPECT_EQ(e.commands[0].move, id);
  EXPECT_EQ(e.commands[0].command.kind, AgentCommand::Kind::kPark);
  EXPECT_EQ(e.commands[0].command.host, "src");
  EXPECT_EQ(e.commands[0].command.vmId, "v1");
}

// Once no vacate move is planned or running the reservation is preparing, and says it vacated.
TEST_F(VacateExecutorTest, DriveEndsTheVacateWhenNoMoveIsLeft) {
  Reservation& r = vacating();
  r.addMove(MovePurpose::kVacate, planned("v1", "src", "dst", 0, 0, kSec)).progress.state =
      MoveState::kDone;
  const VacateEffects e = executor_.drive(r);
  EXPECT_TRUE(e.vacated);
  EXPECT_TRUE(e.commands.empty());
  EXPECT_EQ(r.state, ReservationState::kPreparing);
}

// A failed vacate move fails the reservation (nothing noted here: the failure says it); a
// failed teardown move is noted with where its VM stays, and the teardown goes on.
TEST_F(VacateExecutorTest, FailMoveFailsTheReservationOnlyForAVacateMove) {
  Reservation& r = vacating();
  const MoveId out = r.addMove(MovePurpose::kVacate, planned("v1", "src", "dst", 0, 0, kSec)).id;
  const MoveId back = r.addMove(MovePurpose::kReturn, planned("v1", "dst", "src", 0, 0, kSec)).id;
  const std::size_t before = r.events.size();
  EXPECT_EQ(executor_.failMove(r, out, "boom"), AfterMoveFailure::kFailReservation);
  EXPECT_EQ(r.events.size(), before);
  EXPECT_EQ(executor_.failMove(r, MoveId{999}, "boom"), AfterMoveFailure::kFailReservation);
  EXPECT_EQ(executor_.failMove(r, back, "refused"), AfterMoveFailure::kTeardownGoesOn);
  ASSERT_EQ(r.events.size(), before + 1);
  EXPECT_EQ(r.events.back().message, "refused; v1 stays on src");  // its destination lists it
}

// A running migration with a re-plan cap is capped while another move of its batch shares its
// NIC, once (the cap is remembered as sent), and the cap is lifted when that move ends; a move
// whose migration is not under way is sent nothing.
TEST_F(VacateExecutorTest, DriveCapsCapsWhileANicIsSharedThenLifts) {
  Reservation& r = vacating();
  PlannedMove capped = planned("v1", "src", "dst", 0, 0, 20 * kSec);
  capped.replanCapBytesPerSec = 50e6;
  Move& a = r.addMove(MovePurpose::kVacate, capped);
  a.progress.state = MoveState::kRunning;
  a.progress.actualStartNs = kT0;
  const MoveId capId = a.id;
  Move& b = r.addMove(MovePurpose::kVacate, planned("v2", "src", "dst2", 0, 0, 10 * kSec));
  b.progress.state = MoveState::kRunning;
  const MoveId sharing = b.id;

  EXPECT_TRUE(executor_.driveCaps(r).commands.empty());  // no migration of v1 under way yet

  PendingCommand migrate;
  migrate.reservationId = r.id;
  migrate.step = CommandStep::kMigrate;
  migrate.move = capId;
  migrate.host = "src";
  migrate.command.kind = AgentCommand::Kind::kMigrate;
  commands_.issue(migrate);

  VacateEffects e = executor_.driveCaps(r);
  ASSERT_EQ(e.commands.size(), 1u);
  EXPECT_EQ(e.commands[0].step, CommandStep::kSetBandwidth);
  EXPECT_EQ(e.commands[0].move, capId);
  EXPECT_EQ(e.commands[0].command.host, "src");
  EXPECT_EQ(e.commands[0].command.maxBandwidthBytesPerSec, 50e6);
  EXPECT_TRUE(executor_.driveCaps(r).commands.empty());  // already sent

  r.findMove(sharing)->progress.state = MoveState::kDone;
  e = executor_.driveCaps(r);
  ASSERT_EQ(e.commands.size(), 1u);
  EXPECT_EQ(e.commands[0].command.maxBandwidthBytesPerSec, 0);
  EXPECT_TRUE(hasEventStarting(r, "lifting the cap on v1"));
}

// Behind its deadline (timetodeadline / timeleft 20 s / 25 s <= 1.1), a vacate whose running
// move uses no NIC re-plans the moves not started to follow it: the faster plan (12 s instead of
// 20 s) replaces them with new ids after the kept batch, planned from when the running move
// ends; on time again, it is not marked at risk.
TEST_F(VacateExecutorTest, LateVacateReplansTheMovesNotStarted) {
  Reservation& r = vacating(kT0 + 35 * kSec);
  PlannedMove park = planned("v1", "src", "src", 0, 0, 10 * kSec);
  park.mode = MoveMode::kPark;
  Move& running = r.addMove(MovePurpose::kPark, park);
  running.progress.state = MoveState::kRunning;
  running.progress.actualStartNs = kT0;
  const MoveId kept = running.id;
  const MoveId b =
      r.addMove(MovePurpose::kVacate, planned("v2", "src", "dst", 1, 10 * kSec, 20 * kSec)).id;
  const MoveId c =
      r.addMove(MovePurpose::kVacate, planned("v3", "src", "dst", 2, 20 * kSec, 30 * kSec)).id;
  clock_.set(kT0 + 15 * kSec);  // the park overran by 5 s: 5 s + 10 s + 10 s left

  const VacateEffects e = executor_.drive(r);
  EXPECT_TRUE(e.touched);
  EXPECT_FALSE(e.migrationsSlowed);
  EXPECT_TRUE(e.commands.empty());  // the park still runs; the new moves wait for it
  EXPECT_EQ(r.findMove(b), nullptr);
  EXPECT_EQ(r.findMove(c), nullptr);
  ASSERT_NE(r.findMove(kept), nullptr);
  ASSERT_EQ(r.moves.size(), 3u);
  for (const Move& m : r.moves) {
    if (m.id == kept) continue;
    EXPECT_GT(moveIdValue(m.id), moveIdValue(c));
    EXPECT_EQ(m.planned.batch, 1u);
    EXPECT_EQ(m.planned.startOffsetNs, 20 * kSec);  // from now + 5 s, as offsets from kT0
    EXPECT_EQ(m.planned.toHost, "dst");
  }
  EXPECT_EQ(planner_.last.nowNs, kT0 + 20 * kSec);
  EXPECT_EQ(planner_.last.objective, planner::VacateObjective::kMakespan);
  ASSERT_EQ(planner_.last.vms.size(), 2u);  // v2 and v3, not the parking v1
  EXPECT_TRUE(hasEventStarting(r, "warning: timetodeadline/timeleft 0.80 <= 1.10; re-planned"));
  EXPECT_FALSE(r.atRisk);
  EXPECT_EQ(r.plan.notes.size(), 1u);
}

// Behind with no re-plan to be had (the planner refuses, no VM may be parked), the moves stay
// as they were and the reservation is marked at risk with the projected end.
TEST_F(VacateExecutorTest, LateVacateWithoutAReplanIsMarkedAtRisk) {
  planner_.refuse = true;
  Reservation& r = vacating(kT0 + 35 * kSec);
  PlannedMove park = planned("v1", "src", "src", 0, 0, 10 * kSec);
  park.mode = MoveMode::kPark;
  Move& running = r.addMove(MovePurpose::kPark, park);
  running.progress.state = MoveState::kRunning;
  running.progress.actualStartNs = kT0;
  r.addMove(MovePurpose::kVacate, planned("v2", "src", "dst", 1, 10 * kSec, 20 * kSec));
  r.addMove(MovePurpose::kVacate, planned("v3", "src", "dst", 2, 20 * kSec, 30 * kSec));
  std::vector<MoveId> before;
  for (const Move& m : r.moves) before.push_back(m.id);
  clock_.set(kT0 + 15 * kSec);

  executor_.drive(r);
  std::vector<MoveId> after;
  for (const Move& m : r.moves) after.push_back(m.id);
  EXPECT_EQ(after, before);
  EXPECT_TRUE(hasEventStarting(r, "warning: timetodeadline/timeleft 0.80 <= 1.10; re-planning"));
  EXPECT_TRUE(r.atRisk);
  EXPECT_NE(r.riskReason.find("vacating is projected to end at"), std::string::npos);
  EXPECT_TRUE(hasEventStarting(r, "at-risk: vacating is projected"));
  // Assessed once per period: a second drive at the same time changes nothing.
  const std::size_t events = r.events.size();
  executor_.drive(r);
  EXPECT_EQ(r.events.size(), events);
}

// A destination lost before its move started: the moves not started are planned elsewhere even
// though the new plan is not faster; a lost host being vacated marks the reservation at risk.
TEST_F(VacateExecutorTest, LostDestinationIsPlannedAroundAndLostSourceIsAtRisk) {
  Reservation& r = vacating();
  const MoveId id =
      r.addMove(MovePurpose::kVacate, planned("v1", "src", "dst", 0, 0, 10 * kSec)).id;
  inventory_.markUnreachable("dst");

  const VacateEffects e = executor_.aroundLostHosts(r, {"dst"});
  EXPECT_TRUE(e.touched);
  EXPECT_EQ(r.findMove(id), nullptr);
  ASSERT_EQ(r.moves.size(), 1u);
  EXPECT_EQ(r.moves[0].planned.toHost, "dst2");
  EXPECT_TRUE(hasEventStarting(r, "a destination became unreachable; re-planned"));
  EXPECT_FALSE(r.atRisk);

  executor_.aroundLostHosts(r, {"src"});
  EXPECT_TRUE(r.atRisk);
  EXPECT_EQ(r.riskReason,
            "host src being vacated is unreachable; its VMs move when its agent is back");
}

}  // namespace
}  // namespace vrm::manager
