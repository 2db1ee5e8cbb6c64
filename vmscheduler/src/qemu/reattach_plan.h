// What a restarted agent makes of one guest it found again (its QEMU alive and answering QMP),
// from the guest's state file (vm_state_file.h) and what its QEMU reports. A pure function, so
// the choices are tested without QEMU; QemuHypervisor's re-attach carries them out.
//
// The rule: nothing is reported that was not seen. A clone that was booting is listed cloning
// and goes through the same readiness check as a fresh clone (console text, SSH banner) before
// its command gets its result; a live migration QEMU still runs (or finished) is followed to its
// outcome under its command's id; only a move whose data the old agent itself carried (the
// staged copy of suspend-copy-resume, a park's save) is failed, since nothing carries it on.
#pragma once

#include <string>

#include "qemu/vm_state_file.h"

namespace vrm::vmscheduler::qemu {

struct ReattachPlan {
  enum class Action {
    kList,             // listed in `state`; nothing was in flight
    kCheckReadiness,   // a booting clone: listed cloning, readiness checked again (op id known)
    kFollowMigration,  // a live migration: followed to QEMU's outcome (op id known)
    kFailMigration,    // a move only the old agent could carry: cancelled, its command failed
                       // with `reason`, the guest listed in `state` (as before the move)
    kLose,             // the guest cannot be listed: its QEMU is killed, reported lost (`reason`)
  };
  Action action = Action::kList;
  VmState state = VmState::kRunning;
  std::string reason;
};

// `runState`: QEMU's query-status ("running", "paused", "postmigrate", "inmigrate", ...; "" when
// it did not answer). `migrateStatus`: QEMU's query-migrate status ("none", "setup", "active",
// "completed", "failed", "cancelled", ...; "" when it did not answer); read only for a record
// with a migration.
ReattachPlan planReattach(const VmStateRecord& record, const std::string& runState,
                          const std::string& migrateStatus);

}  // namespace vrm::vmscheduler::qemu
