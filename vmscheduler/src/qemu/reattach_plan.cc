#include "qemu/reattach_plan.h"

namespace vrm::vmscheduler::qemu {

namespace {

// query-migrate states of a migration QEMU has started (7.2: MigrationStatus); "none" and an
// unanswered query are not among them.
bool migrationStarted(const std::string& s) {
  for (const char* known : {"setup", "active", "device", "pre-switchover", "cancelling",
                            "postcopy-active", "postcopy-paused", "postcopy-recover", "wait-unplug",
                            "colo", "completed", "failed", "cancelled"}) {
    if (s == known) return true;
  }
  return false;
}

}  // namespace

ReattachPlan planReattach(const VmStateRecord& record, const std::string& runState,
                          const std::string& migrateStatus) {
  using Action = ReattachPlan::Action;
  ReattachPlan plan;
  if (const auto& m = record.migration) {
    const VmState before = m->wasRunning ? VmState::kRunning : VmState::kSuspended;
    if (m->mode == MigrationMode::kLive && migrationStarted(migrateStatus)) {
      plan.action = Action::kFollowMigration;
      plan.state = VmState::kMigratingOut;
      return plan;
    }
    plan.action = Action::kFailMigration;
    plan.state = before;
    if (m->mode == MigrationMode::kLive) {
      plan.reason = "QEMU reports no migration to follow (query-migrate: '" +
                    (migrateStatus.empty() ? std::string("no answer") : migrateStatus) + "')";
    } else {
      plan.reason = std::string(m->mode == MigrationMode::kPark ? "the park's save"
                                                                : "the staged state's copy") +
                    " was carried by the agent that stopped, and nothing carries it on";
    }
    return plan;
  }
  const VmState was = record.info.state;
  if (was == VmState::kIncoming) {
    // Committed at the last moment (finishIncoming ran, the file was not rewritten yet), or
    // still waiting for its stream / a commit.
    plan.state = runState == "running" ? VmState::kRunning : VmState::kIncoming;
    return plan;
  }
  if (was == VmState::kCloning && record.clone && (runState == "running" || runState == "paused")) {
    plan.action = Action::kCheckReadiness;
    plan.state = VmState::kCloning;
    return plan;
  }
  if (runState == "running") {
    // (A clone from a file without its command id is listed running, unchecked.)
    plan.state = VmState::kRunning;
  } else if (runState == "paused" || runState == "postmigrate") {
    plan.state = VmState::kSuspended;
  } else {
    plan.action = Action::kLose;
    plan.reason = "qemu reports run state '" + runState + "'; killed";
  }
  return plan;
}

}  // namespace vrm::vmscheduler::qemu
