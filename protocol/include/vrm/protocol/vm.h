// The one record of a VM, shared by every part of vrm: the cluster file's VMs (VmSpec), an
// agent's inventory and the prepare-incoming command (wire VmInfo, wire_convert.h), vrmd's view
// of every host, and, through planner/vm_adapter.h, the planner's input. A field added here
// reaches all of them; a part that does not know a field leaves it at its default.
//
// Value type: no invariants beyond those stated per field. Units are in the names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vrm/protocol/time.h"

namespace vrm {

// kParked: saved to VmRecord::stateFile on its host and stopped (it holds no cores or memory
// there until it is unparked).
enum class VmState { kRunning, kSuspended, kMigratingOut, kIncoming, kCloning, kParked };
// "running", "migrating-out", ...; for logs and events.
const char* vmStateName(VmState state);

struct VmRecord {
  std::string id;
  std::string host;  // where it is (the cluster file: the host it is listed under)
  std::uint32_t cpuCores = 1;
  std::uint64_t memoryBytes = 0;
  // Resident non-zero memory: what a migration really sends. 0 = not known (read as
  // memoryBytes; the cluster file defaults it to memoryBytes).
  std::uint64_t nonzeroMemoryBytes = 0;
  double dirtyRateBytesPerSec = 0;
  VmState state = VmState::kRunning;
  std::string reservationId;  // the reservation that cloned it; empty for long-lived VMs
  std::string address;
  std::uint64_t diskBytes = 0;  // local disk to synchronise when it moves (0 = shared storage)
  std::string templateName;     // empty unless cloned from a template
  bool allowLive = true;        // may be live-migrated (cluster file: allow_live)
  bool allowSuspend = true;     // may be suspended-copied-resumed or parked (allow_suspend)
  std::string stateFile;        // kParked: where its saved state is (backend specific)
  // The guest's write rate on its local disk as its agent last measured it (cluster file:
  // disk_dirty_rate): Expression 1's Dirty_Rate when its synchronisation is planned (seed 004).
  double diskDirtyRateBytesPerSec = 0;  // bytes written to its local disk per second
  // What the agent measures beyond the dirty rate, for the migration models (issue 20; empty or
  // 0 = not measured by this backend):
  std::vector<double> dirtyRateSamplesBytesPerSec;  // recent periodic samples, oldest first
  std::uint64_t modifiedMemoryBytes = 0;  // memory modified over the last sampling interval
  std::string workload;                   // "cpu", "memory" or "" (not classified)
  // How to reach it, for a clone whose agent knows (the handle its clone command returned):
  // vrmd sets a clone's handle from these when it did not see that answer (a restart).
  std::string account;
  std::uint32_t sshPort = 0;  // ssh's port at address; 0 = not known or no ssh
  std::string addressSource;  // where address and sshPort come from ("user-mode forward", ...)
};

// A guest a host lost without being asked to: its QEMU (or domain) exited, or an agent restart
// could not find it again. Reported by the agent rather than left to vanish from its inventory.
struct LostVm {
  std::string vmId;  // "" when the backend could not tell which (a corrupt state file)
  std::string reservationId;
  VmState lastState = VmState::kRunning;  // as listed last
  std::string reason;                     // what happened, for a person
  TimeNs lostAtNs = 0;                    // the agent's clock when it noticed
};

}  // namespace vrm
