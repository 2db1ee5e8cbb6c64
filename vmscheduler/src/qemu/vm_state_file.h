// One small file per guest with a QEMU process, DIR/ID.vm.json: what an agent restarted on the
// same directories needs to find the guest again (its pid and QMP socket), to list it as it was
// (cores, memory, template, reservation, address), to give a clone's handle again (its forwarded
// SSH port) and to pick up a migration out that was in flight. Written atomically (a temporary
// file, fsync, rename): a reader sees the old record or the new one, never half of one. Parked VMs
// are described by park.h instead.
//
// Pure functions over files; not thread safe per directory (one agent owns a directory).
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "vrm/protocol/status.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler::qemu {

struct VmStateRecord {
  // id, cpuCores, memoryBytes, diskBytes, state, reservationId, address, templateName,
  // allowLive, allowSuspend (the rest is measured again after a restart).
  VmInfo info;
  pid_t pid = -1;
  std::string qmpPath, serialPath, logPath;
  std::string diskPath;  // QemuVm::diskPath: qcow2 overlay or raw data disk, "" for none
  int incomingPort = 0;  // kIncoming: the port QEMU's incoming stream listens on
  bool keepPaused = false;
  // network=user: the host port QEMU forwards to the guest's port 22 (0 = none). Files written
  // before the field existed: the port of a clone's "ADDRESS:PORT" address, which the clone
  // wrote from that port, else 0.
  int sshForwardPort = 0;
  // A clone's handle as its clone returned it (address, port, account, addressSource; vmId and
  // host are the record's and the agent's), so that a restarted agent answers a repeated clone
  // with the same handle. Absent in older files and for guests that are not clones.
  std::optional<VmHandle> cloneHandle;
  // info.state == kMigratingOut: the migration in flight, so that a restarted agent can follow
  // it (live) or report it failed (the staged copy of suspend-copy-resume dies with the agent).
  struct Migration {
    OperationId opId = 0;
    MigrationMode mode = MigrationMode::kLive;
    std::string destinationHost;
    bool wasRunning = true;  // whether the guest ran before the migration stopped it
    TimeNs startNs = 0;
  };
  std::optional<Migration> migration;
  // info.state == kCloning: the clone's command id and when its boot started (0 = not polled
  // yet), so that a restarted agent checks the clone's readiness again, as a fresh clone's, and
  // gives that command its result when ready (with boot-timeout counted from `startNs`). Absent in
  // files written before the field existed: such a clone is listed running, unchecked.
  struct Clone {
    OperationId opId = 0;
    TimeNs startNs = 0;
  };
  std::optional<Clone> clone;
};

// The VmInfo fields a file keeps of a guest (id, cores, memory, disk, reservation, address,
// template, allowed modes), as this file and park.h's description name them.
nlohmann::json vmInfoFields(const VmInfo& info);

// DIR/ID.vm.json.
std::string vmStateFilePath(const std::string& dir, const std::string& vmId);

// The record as the file's text (one JSON object), and back. decodeVmState's errors:
// invalid-argument naming `path` and what is wrong (not JSON, a field missing or of the wrong
// type, an unknown state or mode, an id that cannot name a file).
std::string encodeVmState(const VmStateRecord& record);
Result<VmStateRecord> decodeVmState(const std::string& text, const std::string& path);

// Writes DIR/ID.vm.json atomically (ID.vm.json.tmp, fsync, rename). Errors: internal naming the
// file.
[[nodiscard]] Status writeVmStateFile(const std::string& dir, const VmStateRecord& record);
// Errors: not-found (no such file), invalid-argument (corrupt, as decodeVmState).
Result<VmStateRecord> readVmStateFile(const std::string& path);
// Removes DIR/ID.vm.json (and a leftover temporary); a missing file is fine.
void removeVmStateFile(const std::string& dir, const std::string& vmId);

// Every record in `dir`, and one error per file that could not be read (its path, and a status
// naming it): a corrupt file does not hide the others. Leftover temporaries are removed. A file
// whose record names another vm than its file name is corrupt.
struct VmStateDir {
  struct Unreadable {
    std::string path;
    Status status;
  };
  std::vector<VmStateRecord> records;
  std::vector<Unreadable> errors;
};
VmStateDir readVmStateDir(const std::string& dir);

}  // namespace vrm::vmscheduler::qemu
