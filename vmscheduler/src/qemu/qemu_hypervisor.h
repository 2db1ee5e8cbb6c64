// The "qemu" backend: real VMs as qemu-system-x86_64 processes this agent starts, owns and drives
// over QMP.
//
// Parameters (HypervisorOptions::params; unknown keys are invalid-argument; named as in every
// backend, backend/params.h, so run_dir etc. work too):
//   binary              QEMU executable. Default "qemu-system-x86_64" (found on PATH).
//   accel               "tcg" or "kvm". Default tcg (set kvm on hosts where KVM works).
//   run-dir             QMP sockets, serial logs, qemu logs, qcow2 overlays.
//                       Default /tmp/vrm-qemu-<host>.
//   stage-dir           where suspend-copy-resume stages saved state, on both sides (alias:
//                       state-dir). Default /dev/shm/vrm-<host>: RAM-backed, which keeps the
//                       save and copy phases linear in the state's size; a directory on disk
//                       works too (staged files are fsync'ed, so then the phases pay the disk).
//   park-dir            where parked VMs' saved states (ID.state) and descriptions (ID.json) are
//                       kept; they outlive the agent. Default <run-dir>/parked.
//   vm-state-dir        the guests' state files (one per VM with a QEMU, see below), which a
//                       restarted agent re-attaches from. Default <run-dir>/vms.
//   disk-dir            the guests' disks (qcow2 overlays, data disks). Default run-dir. The
//                       same directory on two hosts is shared storage: a VM with a disk
//                       migrates with it in place, nothing copied (an incoming VM's data disk
//                       must already be there).
//   disk-storage        "shared" (default: as above) or "local": disk-dir is this host's own;
//                       an incoming VM's data disk is made empty here and filled by its
//                       source's NBD mirror (disk_mirror.h), a third migration port per VM;
//                       image-template VMs are refused (their overlay is not copied).
//   migration-address   IPv4 address incoming migrations (QEMU streams and staged state)
//                       listen on; peers must reach it. Default 127.0.0.1.
//   migration-ports     "FIRST-LAST" ports for incoming migrations, two per incoming VM.
//                       Default 49200-49399.
//   boot-timeout        a clone that is not ready after this is failed. Default 120s.
//   migration-timeout   a migration still running after this is cancelled and reported as not
//                       converging. Default 600s.
//   max-rounds          a live migration past this many dirty-sync rounds is cancelled and
//                       reported as not converging. Default 60.
//   dirty-rate-interval time between dirty-rate measurements of each running VM
//                       (calc-dirty-rate, page-sampling, 2 s, about 4,096 sampled pages);
//                       0s disables. Default 30s.
//   initial-template    template the HostSpec's VMs are booted from at start. Default: none
//                       (then the HostSpec must list no VMs). Only at the first start on
//                       vm-state-dir that lists VMs (initial-vms.started there says it was): a
//                       restarted agent re-attaches those still here and does not boot again
//                       those that moved away, were destroyed or died meanwhile.
//   template.NAME.kernel / .initrd / .append   a direct-kernel template, or
//   template.NAME.image                         a disk template: clones get a qcow2 overlay
//                                               (qemu-img) over this base image; migrating such
//                                               a VM needs disk-dir on storage both hosts share.
//   template.NAME.data-disk  SIZE (e.g. 64MiB): kernel templates' VMs get a raw data disk of
//                        this size as their first virtio disk, DISK-DIR/ID.data.raw (sparse),
//                        kept across restarts and migrations, removed when the VM is destroyed.
//   template.NAME.ready  text on the serial console that marks a clone ready. Default: the VM
//                        is ready as soon as QEMU reports it running.
//
// Facts of QEMU 7.2 under TCG this backend works around:
//   * guest RAM that is a multiple of 256 KiB is corrupted by live migration of a guest that
//     writes memory (fixed upstream in 9.0): -m is given in KiB, plus 8 KiB when the size is
//     such a multiple; VmInfo::memoryBytes stays the requested size;
//   * calc-dirty-rate dirty-bitmap mode crashes: only page-sampling is used;
//   * no file: URIs: suspend-copy-resume saves and restores with exec:cat.
//
// Where things are: the facade (this file) holds the VM table and dispatches to one class per
// long operation (qemu_operation.h): clone_operation.h, live_migration.h, suspend_copy_resume.h,
// park.h. The state they share is a QemuHost (qemu_host.h); the settings are read by
// qemu_config.h through the backend-wide parameter reader (backend/params.h).
//
// Migration: the destination's prepareIncoming() does not know the mode, so it gets ready for
// both: it starts QEMU with `-incoming defer` and `migrate-incoming tcp:ADDR:PORT`, listens for a
// staged state on a second port (state_transfer.h), and returns "tcp:ADDR:PORT;state=tcp:ADDR:P2".
// With disk-storage=local it also exports the VM's empty data disk over NBD and adds
// ";disk=tcp:ADDR:P3"; the source then mirrors the disk first (live_migration.h).
// Live: the source sets max-bandwidth and downtime-limit and migrates to tcp:ADDR:PORT; progress
// comes from query-migrate; when it completes, the source QEMU is killed and the VM leaves the
// source's inventory.
// Suspend-copy-resume through staged files, in three phases the observation reports separately
// (saveNs, copyNs, restoreNs):
//   save     the source `stop`s the VM and saves it with `migrate exec:cat > STAGE-DIR/ID.state`
//            (unthrottled: it is a local write), then fsyncs the file;
//   copy     the source agent sends the file over TCP to the destination agent, paced to the
//            bandwidth limit, which writes it to its own STAGE-DIR/ID.incoming.state and fsyncs
//            it. Agents on one machine copy between their two staging dirs this way; agents on
//            different machines need only TCP reachability of migration-address, no shared
//            storage;
//   restore  the destination replaces its waiting QEMU by one started with
//            `-incoming "exec:cat FILE"`, which loads the state and stays paused, and tells the
//            source; only then does the source report success and kill its QEMU.
// finishIncoming(commit) then `cont`s the VM (unless the VmInfo given to prepareIncoming() said
// suspended: then it stays suspended). Staged files are removed on success and on failure, on
// both sides.
// On failure the VM keeps running on the source, and the destination's VM stays incoming until
// finishIncoming(false) kills it (QEMU 7.2 also exits by itself when its incoming stream breaks,
// and a failed restore drops the VM; it then leaves the destination's inventory at the next
// poll()).
//
// Parking: startPark() `stop`s the VM and saves it with `migrate exec:cat > PARK-DIR/ID.state`
// (as suspend-copy-resume's save), fsyncs it, writes PARK-DIR/ID.json (the VmInfo, its disk) and
// kills the QEMU: the VM stays in inventory() as kParked with that stateFile, holding no cores or
// memory. create() lists the VMs PARK-DIR describes as parked (a HostSpec VM of that id is then
// not booted), so parking survives an agent restart. startUnpark() starts a QEMU with
// `-incoming "exec:cat FILE"`, waits until it has loaded the state, `cont`s it and removes both
// files; a failed restore leaves the VM parked. saveNs / restoreNs are measured from `stop` /
// the QEMU's start to the state being durable / the VM running.
//
// Guests outlive the agent. QEMU runs in a session of its own with no death signal, and every VM
// with a QEMU has a state file, VM-STATE-DIR/ID.vm.json (vm_state_file.h), rewritten atomically
// whenever what it records changes (after each verb and each poll()). Destroying the
// QemuHypervisor (or killing the agent, even with SIGKILL) leaves the guests running; create() on
// the same directories re-attaches to each over QMP and lists it with the state QEMU reports
// (running, or suspended when paused). What create() cannot carry over it reports, in the log
// and in lostVms(): a guest whose QEMU exited while no agent watched (its state file is
// removed; its disk in disk-dir is kept, as for any lost guest: lost is not destroyed), a state
// file that is corrupt (renamed ID.vm.json.corrupt; the other guests are attached all the same), a
// QEMU that does not answer on QMP within 10 s (left running and unlisted, its state file kept;
// poll() tries it again every 30 s, for 1 s, and once it answers it is attached and listed, no
// longer reported lost, or, gone meanwhile, reported lost for what it is). Operations in flight are
// taken up under the id of the command that started them (the state file keeps it; reattach_plan.h
// decides): their completion comes from poll() although no call of this process started them, and a
// repeated start with that id and VM (vrmd re-sends unanswered commands to a re-registered agent)
// attaches to them instead of starting another (a repeated migration's cap applies). A clone that
// was booting is listed cloning and is ready only when a fresh clone would be (console text, SSH
// banner), boot-timeout counted from its first start. A live migration QEMU still runs, or finished
// or failed meanwhile, is followed to that outcome. A suspend-copy-resume or park in flight is
// reported failed (its staged copy or save was this agent's work): it is cancelled and the guest
// runs on here (vrmd then aborts the destination's incoming VM as for any failed migration). An
// incoming VM stays incoming, to be committed or aborted by finishIncoming(). Under systemd the
// agent's unit needs KillMode=process, or stopping the agent kills the guests in its cgroup. QEMU
// processes this agent started are reaped by poll(); adopted ones are watched in /proc. A VM whose
// QEMU exits is removed from inventory and any operation on it completes with an internal error.
// Time: operations start and are measured at poll()'s `now`; phase durations of live migrations
// come from QEMU's own query-migrate figures.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "qemu/qemu_host.h"
#include "qemu/qemu_operation.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler {

class QemuHypervisor final : public Hypervisor {
 public:
  // Errors: invalid-argument for unknown or malformed params, or a binary that cannot be found.
  static Result<std::unique_ptr<Hypervisor>> create(const HypervisorOptions& options);
  ~QemuHypervisor() override;

  std::string_view backendName() const override { return "qemu"; }
  HostInfo hostInfo() const override { return host_.info; }
  std::string migrationEndpoint() const override;
  std::vector<VmInfo> inventory() const override;

  Result<std::string> prepareIncoming(const VmInfo& vm) override;
  Status finishIncoming(const std::string& vmId, bool commit) override;
  Status startMigration(OperationId op, const MigrationSpec& spec) override;
  Status setMigrationBandwidth(const std::string& vmId, double maxBytesPerSec) override;
  Status suspend(const std::string& vmId) override;
  Status resume(const std::string& vmId) override;
  Status startClone(OperationId op, const CloneSpec& spec) override;
  Status startPark(OperationId op, const std::string& vmId) override;
  Status startUnpark(OperationId op, const std::string& vmId) override;
  Status destroy(const std::string& vmId) override;
  std::vector<OperationEvent> poll(TimeNs now) override;
  TimeNs nextEventTime() const override;

  // For tests and diagnostics: the serial console log of the VM's current QEMU process, its pid,
  // and a raw QMP command on it. Errors: not-found.
  Result<std::string> consoleLogPath(const std::string& vmId) const;
  Result<pid_t> qemuPid(const std::string& vmId) const;
  Result<nlohmann::json> qmp(const std::string& vmId, const std::string& command,
                             const nlohmann::json& arguments = nlohmann::json());

  // What create() could not carry over from an earlier agent (see above), then the guests whose
  // QEMU exited under this agent without being asked to (not incoming ones: QEMU 7.2's incoming
  // side exits when its stream breaks, and the guest lives on at the source), oldest first.
  const std::vector<LostVm>& lostVms() const override { return lost_; }
  // For tests and tools that must leave nothing behind: kills every guest's QEMU and removes its
  // state file (the destructor deliberately leaves both).
  void killAllGuests();

 private:
  QemuHypervisor(HostInfo host, qemu::QemuConfig config)
      : host_(std::move(host), std::move(config)) {}

  // The running or suspended VM `vmId`, ready for an operation `id` that is not in flight yet.
  // Errors: not-found, rejected (busy), invalid-argument (id in flight), internal (no QEMU).
  Result<qemu::QemuVm*> idleVm(OperationId id, const std::string& vmId);
  bool unparking(const std::string& vmId) const;
  // Registers a started operation (null: it completed at once, see immediate_).
  template <class Op>
  Status track(Result<std::unique_ptr<Op>> started);
  // Re-attaches to the guests of the state files in vm-state-dir (create()).
  void reattach();
  // Lists the guest of state file `r` over its QEMU `proc`, found again, as reattach_plan.h
  // says (a migration or clone in flight taken up or failed); false when the plan loses it.
  bool attach(qemu::VmStateRecord& r, qemu::QemuProcess proc, TimeNs lostAtNs);
  // Reports the guest of `r` lost at `lostAtNs` (0: before any poll) and removes its state file;
  // its disk is kept.
  void loseRecord(const qemu::VmStateRecord& r, const std::string& why, TimeNs lostAtNs);
  // From poll(): tries the guests left unlisted at start again (silent_, every 30 s); one that
  // answers is attached (and no longer reported lost), one that exited meanwhile is lost.
  void retrySilent(TimeNs now);
  // Brings the state files in line with the VM table: writes those whose record changed, removes
  // those of VMs gone or without a QEMU (parked ones are described by park.h).
  void persist();

  qemu::QemuHost host_;
  std::map<OperationId, std::unique_ptr<qemu::QemuOperation>> ops_;
  std::vector<OperationEvent> immediate_;
  TimeNs lastPollNs_ = 0;
  std::vector<LostVm> lost_;
  // Guests whose QEMU did not answer at start: their state file, and the reason lost_ gave.
  struct Silent {
    qemu::VmStateRecord record;
    std::string lostReason;
  };
  std::vector<Silent> silent_;
  TimeNs nextSilentRetryNs_ = 0;     // 0: from the first poll on
  std::set<std::string> persisted_;  // ids with a state file written by this agent
};

}  // namespace vrm::vmscheduler
