// The state the qemu backend's operations share: the host, its settings, its VMs (each with its
// QEMU process) and the starting, killing and reaping of those processes. One QemuHost is owned
// by a QemuHypervisor and lent to its operations while they run; not thread safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/vm_table.h"
#include "qemu/guest_memory_sampler.h"
#include "qemu/qemu_config.h"
#include "qemu/qmp_client.h"
#include "qemu/state_transfer.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler::qemu {

// One QEMU process and its files (QMP socket, serial console log, QEMU's own log).
struct QemuProcess {
  pid_t pid = -1;
  std::string qmpPath, serialPath, logPath;
  std::unique_ptr<QmpClient> qmp;  // null once the process exited or was killed
  // Started by an earlier agent and found again (adopt()): not our child, so it cannot be
  // waited for; its exit is seen in /proc instead.
  bool adopted = false;
};

struct QemuVm {
  VmInfo info;
  QemuProcess proc;
  // The VM's disk in disk-dir: the qcow2 overlay of an image template, the raw data disk of a
  // kernel template with data-disk; "" for none. Removed when the VM is destroyed (or never
  // came up), left for the destination when it migrates (shared storage).
  std::string diskPath;
  std::string savedRecord;  // the vm state file's text as last written ("" = no file)
  // Network (guest_network.h): the host port launch() forwarded to guest port 22 (network=user),
  // and what a clone adds to its template's kernel command line (the owner's key).
  int sshForwardPort = 0;
  std::string appendExtra;
  // A clone's handle as its clone made it: what a repeated clone answers, also after a restart
  // (the state file keeps it); unset for guests that are not clones.
  std::optional<VmHandle> cloneHandle;
  TimeNs nextDirtyRateNs = 0;
  bool dirtyRatePending = false;
  TimeNs dirtyRateDueNs = 0;
  TimeNs nextResidentNs = 0;
  int incomingPort = 0;
  // Incoming to a share-nothing host (disk-storage=local): the data disk was made empty here and
  // is exported writable on this port for the source's mirror (disk_mirror.h) until
  // finishIncoming(); 0 otherwise. The disk is this host's: dropped with the VM if it never
  // commits.
  int diskExportPort = 0;
  bool diskFromMirror = false;
  bool keepPaused = false;  // incoming VM that was suspended at the source: stays suspended
  // Incoming by suspend-copy-resume: receives the staged state; once it has, the VM's QEMU is
  // replaced by one restoring from it (restoring until QEMU leaves inmigrate).
  std::unique_ptr<StateReceiver> receiver;
  bool restoring = false;
  TimeNs restoreDeadlineNs = 0;
  // Non-zero and modified memory, sampled with the resident size (updateResident).
  GuestMemorySampler memorySampler;
  bool memorySamplerWarned = false;
  std::uint64_t modifiedMemoryBytes = 0;  // over the last sampling interval
  // For the CPU share between two updateResident() calls.
  std::optional<std::chrono::steady_clock::time_point> usageAt;
  double cpuSeconds = 0;
};

// Records `handle` as the clone `vm` gave: kept for a repeated clone, and in the VM's info
// (address, account, sshPort, addressSource) so that the inventory tells vrmd how to reach it.
void setCloneHandle(QemuVm& vm, const VmHandle& handle);

class QemuHost {
 public:
  QemuHost(HostInfo host, QemuConfig config)
      : info(std::move(host)), config(std::move(config)), vms(info.name) {}

  const HostInfo info;
  const QemuConfig config;
  backend::VmTable<QemuVm> vms;

  // Starts QEMU for `vm` (its template, cores and memory, the host's NIC: guest_network.h); a
  // non-empty `incoming` adds
  // `-incoming INCOMING` ("defer", "exec:cat FILE"). Fills vm.proc, connected over QMP.
  // Errors: invalid-argument (unknown template), internal (QEMU exited or never answered).
  Status launch(QemuVm& vm, const std::string& incoming = "");
  // The data disk of a VM about to start (launch() calls it for templates with data-disk):
  // a VM's first start (`incoming` false: a clone, an initial VM) gets a fresh one of `bytes`,
  // sparse zeros, replacing any file a VM of the same id left there (a new VM never sees an
  // old one's bytes); an incoming VM (migration, unpark, restore) must find its own already,
  // on storage its source shares (or, `fromMirror`, one made empty here for the source's mirror
  // to fill: disk-storage=local). Errors: invalid-argument (an incoming VM's disk is not there:
  // names disk-dir), unavailable (the file cannot be made in disk-dir: names it and why).
  Status prepareDataDisk(const std::string& path, std::uint64_t bytes, bool incoming,
                         bool fromMirror = false) const;
  // Finds the QEMU an earlier agent started for the VM at `qmpPath` with `pid` again: the process
  // must be alive, be that QEMU (its command line names the socket: pids are reused) and answer
  // on QMP within `qmpTimeout`. Errors: not-found (it exited: why in the message), unavailable
  // (no QMP answer).
  static Result<QemuProcess> adopt(pid_t pid, const std::string& qmpPath,
                                   std::chrono::milliseconds qmpTimeout = kAdoptQmpTimeout);
  // A busy host can leave a TCG guest's monitor slow to greet: as long as a fresh launch gets.
  static constexpr std::chrono::milliseconds kAdoptQmpTimeout{10000};
  // Kills the VM's QEMU and stops receiving its state.
  static void kill(QemuVm& vm);
  static void killProcess(QemuProcess& proc);
  // Reaps exited QEMUs; returns the ids of VMs whose QEMU exited (why: exitReason()).
  std::vector<std::string> reap();
  // Why the VM's QEMU exited ("exited with status 1"), or `otherwise` when it did not.
  std::string exitReason(const std::string& vmId, const std::string& otherwise) const;

  // Per running VM, between operations: its dirty rate (calc-dirty-rate, page sampling) and its
  // resident guest memory (the RSS of the guest RAM mapping, its non-zero part sampled).
  void pollDirtyRate(QemuVm& vm, TimeNs now);
  static void updateResident(QemuVm& vm);
  // With updateResident: the guest's workload class (its QEMU's CPU share and dirty rate).
  static void updateUsage(QemuVm& vm);

 private:
  std::map<std::string, std::string> exitReasons_;  // vm id -> why its QEMU exited
  std::uint64_t launchCount_ = 0;
};

}  // namespace vrm::vmscheduler::qemu
