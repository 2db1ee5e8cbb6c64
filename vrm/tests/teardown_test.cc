// The Teardown's contract: clones made and then destroyed where their agents are ready, parked
// VMs unparked before displaced VMs go home one at a time, and the reservation ready or done as
// its clones and moves settle; every command returned (not sent), on a fake clock.
#include "vrm/manager/teardown.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "sample_records.h"

namespace vrm::manager {
namespace {

constexpr TimeNs kSec = kNsPerSec;
constexpr TimeNs kT0 = 1000 * kSec;
using sample::kGiB;

class TeardownTest : public ::testing::Test {
 protected:
  TeardownTest()
      : clock_(kT0),
        inventory_(3600 * kSec),
        commands_(1),
        projection_(clock_, inventory_, commands_, reservations_, templates_, 10 * kSec),
        teardown_(clock_, inventory_, commands_, projection_, templates_) {
    TemplateSpec t;
    t.name = "t";
    t.cpuCores = 2;
    t.memoryBytes = 2 * kGiB;
    t.cloneTimeNs = 30 * kSec;
    templates_.push_back(t);
    VmRecord parked = sample::vm("v1");
    parked.state = VmState::kParked;
    register_("src", {parked});
    register_("dst", {sample::vm("v2")});
  }

  void register_(const std::string& name, const std::vector<VmRecord>& vms) {
    ASSERT_TRUE(inventory_.registerHost(sample::host(name), vms, clock_.now()));
  }

  Reservation& reservation(ReservationState state) {
    Reservation r;
    r.id = "r1";
    r.state = state;
    r.request.kind = ReservationKind::kDedicated;
    r.request.templateName = "t";
    r.request.startNs = kT0 + 100 * kSec;
    r.request.endNs = kT0 + 200 * kSec;
    r.hosts = {"src"};
    Reservation& in = reservations_[r.id] = r;
    projection_.touch(in);
    return in;
  }

  static ClonePlacement clone(const std::string& id, const std::string& host, CloneState state) {
    ClonePlacement c;
    c.vmId = id;
    c.host = host;
    c.state = state;
    c.address = "10.0.0." + id;
    return c;
  }

  static PlannedMove planned(const std::string& vm, const std::string& from, const std::string& to,
                             MoveMode mode) {
    PlannedMove m;
    m.vmId = vm;
    m.fromHost = from;
    m.toHost = to;
    m.mode = mode;
    m.memoryBytes = 2 * kGiB;
    return m;
  }

  static bool hasEvent(const Reservation& r, const std::string& prefix) {
    return std::any_of(r.events.begin(), r.events.end(),
                       [&](const ReservationEvent& e) { return e.message.rfind(prefix, 0) == 0; });
  }

  ManualClock clock_;
  Inventory inventory_;
  CommandTracker commands_;
  std::map<std::string, Reservation> reservations_;
  std::vector<TemplateSpec> templates_;
  BookingProjection projection_;
  Teardown teardown_;
};

// A clone never made is destroyed at once; a running one whose agent is ready gets a destroy
// (once: it is destroying then); one on a host whose agent is not there waits for it.
TEST_F(TeardownTest, StartDestroysRunningClonesWhereTheirAgentIsReady) {
  Reservation& r = reservation(ReservationState::kCancelled);
  r.clones = {clone("c0", "src", CloneState::kPending), clone("c1", "src", CloneState::kRunning),
              clone("c2", "gone", CloneState::kRunning)};
  const TeardownEffects e = teardown_.start(r);
  EXPECT_EQ(r.clones[0].state, CloneState::kDestroyed);
  EXPECT_EQ(r.clones[1].state, CloneState::kDestroying);
  EXPECT_EQ(r.clones[2].state, CloneState::kRunning);
  ASSERT_EQ(e.commands.size(), 1u);
  EXPECT_EQ(e.commands[0].step, CommandStep::kDestroy);
  EXPECT_EQ(e.commands[0].clone, 1u);
  EXPECT_EQ(e.commands[0].command.kind, AgentCommand::Kind::kDestroy);
  EXPECT_EQ(e.commands[0].command.host, "src");
  EXPECT_EQ(e.commands[0].command.vmId, "c1");
  EXPECT_TRUE(teardown_.start(r).commands.empty());
}

// Pending clones are made from the template where their agent is ready; the reservation is
// ready only once every clone runs.
TEST_F(TeardownTest, DriveClonesMakesPendingClonesThenIsReady) {
  Reservation& r = reservation(ReservationState::kPreparing);
  r.clones = {clone("c0", "src", CloneState::kPending), clone("c1", "gone", CloneState::kPending)};
  const TeardownEffects e = teardown_.driveClones(r);
  ASSERT_EQ(e.commands.size(), 1u);
  EXPECT_EQ(e.commands[0].step, CommandStep::kClone);
  EXPECT_EQ(e.commands[0].clone, 0u);
  EXPECT_EQ(e.commands[0].command.templateName, "t");
  EXPECT_EQ(e.commands[0].command.memoryBytes, 2 * kGiB);
  EXPECT_EQ(e.commands[0].command.bootTimeNs, 30 * kSec);
  EXPECT_EQ(e.commands[0].command.reservationId, "r1");
  EXPECT_EQ(r.clones[0].state, CloneState::kCloning);
  EXPECT_EQ(r.clones[1].state, CloneState::kPending);
  EXPECT_EQ(r.state, ReservationState::kPreparing);

  for (auto& c : r.clones) c.state = CloneState::kRunning;
  EXPECT_TRUE(teardown_.driveClones(r).commands.empty());
  EXPECT_EQ(r.state, ReservationState::kReady);
  EXPECT_EQ(r.events.back().message, "ready: 10.0.0.c0, 10.0.0.c1");
}

// After a cancel, a parked VM is unparked on its source first; only then does a displaced VM
// go home; when both are done the returns are noted once.
TEST_F(TeardownTest, ParkedVmsAreUnparkedBeforeDisplacedVmsGoHome) {
  Reservation& r = reservation(ReservationState::kCancelled);
  r.request.displaced = Displaced::kReturn;
  r.addMove(MovePurpose::kPark, planned("v1", "src", "src", MoveMode::kPark)).progress.state =
      MoveState::kDone;
  r.addMove(MovePurpose::kVacate, planned("v2", "src", "dst", MoveMode::kLive)).progress.state =
      MoveState::kDone;
  ASSERT_TRUE(Teardown::parksVms(r));

  TeardownEffects e = teardown_.drive(r);
  ASSERT_TRUE(r.hasTeardownMoves());
  ASSERT_EQ(e.commands.size(), 1u);
  EXPECT_EQ(e.commands[0].step, CommandStep::kUnpark);
  EXPECT_EQ(e.commands[0].command.host, "src");
  EXPECT_EQ(e.commands[0].command.vmId, "v1");
  const MoveId unpark = e.commands[0].move;
  EXPECT_EQ(r.findMove(unpark)->purpose, MovePurpose::kUnpark);
  EXPECT_TRUE(teardown_.drive(r).commands.empty());  // the unpark runs: the return waits

  r.findMove(unpark)->progress.state = MoveState::kDone;
  e = teardown_.drive(r);
  ASSERT_EQ(e.commands.size(), 1u);
  EXPECT_EQ(e.commands[0].step, CommandStep::kPrepareIncoming);
  EXPECT_EQ(e.commands[0].command.host, "src");  // home
  EXPECT_EQ(e.commands[0].command.vm.id, "v2");
  const MoveId back = e.commands[0].move;
  EXPECT_EQ(r.findMove(back)->purpose, MovePurpose::kReturn);
  EXPECT_FALSE(hasEvent(r, "returns done"));

  r.findMove(back)->progress.state = MoveState::kDone;
  EXPECT_TRUE(teardown_.drive(r).commands.empty());
  EXPECT_TRUE(hasEvent(r,
                       "returns done: 1 of 1 displaced VMs returned home; 1 of 1 parked VMs "
                       "unparked"));
  const std::size_t events = r.events.size();
  teardown_.drive(r);
  EXPECT_EQ(r.events.size(), events);  // noted once
}

// An ending reservation is done once its clones are gone, not before.
TEST_F(TeardownTest, EndingReservationIsDoneOnceItsClonesAreGone) {
  Reservation& r = reservation(ReservationState::kEnding);
  r.clones = {clone("c0", "src", CloneState::kRunning)};
  EXPECT_EQ(teardown_.drive(r).commands.size(), 1u);
  EXPECT_EQ(r.state, ReservationState::kEnding);
  r.clones[0].state = CloneState::kDestroyed;
  EXPECT_TRUE(teardown_.drive(r).commands.empty());
  EXPECT_EQ(r.state, ReservationState::kDone);
  EXPECT_EQ(r.events.back().message, "reservation ended; its VMs are destroyed");
}

}  // namespace
}  // namespace vrm::manager
