// Tests of what a restarted qemu agent makes of the guests it finds again (qemu/reattach_plan.h)
// and of a booting clone's verdict (qemu/clone_operation.h), without QEMU: a clone that was
// booting is checked again before it is reported ready, a live migration QEMU still runs is
// followed, moves the old agent carried itself are failed, and boot-timeout counts from the
// clone's first start, also across a restart (times are given, no clock is read).
#include "qemu/reattach_plan.h"

#include <gtest/gtest.h>

#include "qemu/clone_operation.h"

namespace vrm::vmscheduler {
namespace {

using qemu::planReattach;
using qemu::ReattachPlan;
using qemu::VmStateRecord;
using Action = ReattachPlan::Action;

VmStateRecord record(VmState state) {
  VmStateRecord r;
  r.info.id = "v";
  r.info.cpuCores = 1;
  r.info.memoryBytes = 128ull << 20;
  r.info.state = state;
  r.pid = 100;
  r.qmpPath = "/run/v.qmp";
  return r;
}

VmStateRecord migrating(MigrationMode mode, bool wasRunning) {
  VmStateRecord r = record(VmState::kMigratingOut);
  r.migration = VmStateRecord::Migration{41, mode, "h2", wasRunning, 5 * kNsPerSec};
  return r;
}

// Ensures a clone that was booting when its agent stopped is listed cloning and checked again,
// not listed running (it may not answer on SSH yet); only a file without the clone's command id
// (written before it was kept) is listed running as before.
TEST(ReattachPlanTest, BootingCloneIsCheckedAgainNotListedRunning) {
  VmStateRecord r = record(VmState::kCloning);
  r.clone = VmStateRecord::Clone{7, 3 * kNsPerSec};
  const ReattachPlan p = planReattach(r, "running", "");
  EXPECT_EQ(p.action, Action::kCheckReadiness);
  EXPECT_EQ(p.state, VmState::kCloning);

  r.clone.reset();
  const ReattachPlan old = planReattach(r, "running", "");
  EXPECT_EQ(old.action, Action::kList);
  EXPECT_EQ(old.state, VmState::kRunning);

  r.clone = VmStateRecord::Clone{7, 0};
  EXPECT_EQ(planReattach(r, "shutdown", "").action, Action::kLose);
  // Paused by someone else meanwhile: still checked (a clone is ready only while QEMU runs it).
  EXPECT_EQ(planReattach(r, "paused", "").action, Action::kCheckReadiness);
}

// Ensures a live migration QEMU still runs, or finished or failed while no agent watched, is
// followed to QEMU's outcome (the guest listed migrating out), and one QEMU knows nothing of is
// failed with the guest back in its earlier state.
TEST(ReattachPlanTest, LiveMigrationIsFollowedWhenQemuHasOne) {
  for (const char* status : {"setup", "active", "device", "completed", "failed", "cancelled"}) {
    const ReattachPlan p = planReattach(migrating(MigrationMode::kLive, true), "running", status);
    EXPECT_EQ(p.action, Action::kFollowMigration) << status;
    EXPECT_EQ(p.state, VmState::kMigratingOut) << status;
  }
  for (const char* status : {"none", ""}) {
    const ReattachPlan p = planReattach(migrating(MigrationMode::kLive, false), "paused", status);
    EXPECT_EQ(p.action, Action::kFailMigration) << status;
    EXPECT_EQ(p.state, VmState::kSuspended) << status;
    EXPECT_NE(p.reason.find("query-migrate"), std::string::npos) << p.reason;
  }
}

// Ensures moves whose data the old agent carried (suspend-copy-resume's staged copy, a park's
// save) are failed, whatever QEMU says, with the guest as it was before the move.
TEST(ReattachPlanTest, MovesTheOldAgentCarriedAreFailed) {
  const ReattachPlan scr =
      planReattach(migrating(MigrationMode::kSuspendCopyResume, true), "paused", "completed");
  EXPECT_EQ(scr.action, Action::kFailMigration);
  EXPECT_EQ(scr.state, VmState::kRunning);
  EXPECT_NE(scr.reason.find("staged"), std::string::npos) << scr.reason;
  const ReattachPlan park =
      planReattach(migrating(MigrationMode::kPark, false), "paused", "active");
  EXPECT_EQ(park.action, Action::kFailMigration);
  EXPECT_EQ(park.state, VmState::kSuspended);
  EXPECT_NE(park.reason.find("park"), std::string::npos) << park.reason;
}

// Ensures guests with nothing in flight are listed as QEMU reports them, incoming ones stay
// incoming until committed, and a QEMU in any other run state is lost with the state named.
TEST(ReattachPlanTest, IdleGuestsAreListedAsQemuReports) {
  EXPECT_EQ(planReattach(record(VmState::kRunning), "running", "").state, VmState::kRunning);
  EXPECT_EQ(planReattach(record(VmState::kRunning), "paused", "").state, VmState::kSuspended);
  EXPECT_EQ(planReattach(record(VmState::kSuspended), "postmigrate", "").state,
            VmState::kSuspended);
  EXPECT_EQ(planReattach(record(VmState::kIncoming), "inmigrate", "").state, VmState::kIncoming);
  EXPECT_EQ(planReattach(record(VmState::kIncoming), "running", "").state, VmState::kRunning);
  const ReattachPlan lost = planReattach(record(VmState::kRunning), "internal-error", "");
  EXPECT_EQ(lost.action, Action::kLose);
  EXPECT_NE(lost.reason.find("internal-error"), std::string::npos) << lost.reason;
}

// Ensures a clone is ready only once its checks pass, and times out boot-timeout after its boot
// started: a clone started at 10 s by an agent that restarted at 100 s times out after 130 s
// with a 120 s timeout, not 120 s after the restart.
TEST(CloneBootVerdictTest, TimeoutCountsFromTheFirstStartAcrossARestart) {
  using qemu::BootVerdict;
  using qemu::bootVerdict;
  const TimeNs start = 10 * kNsPerSec, timeout = 120 * kNsPerSec;
  EXPECT_EQ(bootVerdict(false, start, 100 * kNsPerSec, timeout), BootVerdict::kBooting);
  EXPECT_EQ(bootVerdict(false, start, 130 * kNsPerSec, timeout), BootVerdict::kBooting);
  EXPECT_EQ(bootVerdict(false, start, 130 * kNsPerSec + 1, timeout), BootVerdict::kTimedOut);
  EXPECT_EQ(bootVerdict(true, start, 130 * kNsPerSec + 1, timeout), BootVerdict::kReady);
  EXPECT_EQ(bootVerdict(false, start, 1000 * kNsPerSec, 0), BootVerdict::kBooting);
}

}  // namespace
}  // namespace vrm::vmscheduler
