// The "qemu" backend: real VMs as qemu-system-x86_64 processes this agent starts, owns and drives
// over QMP.
//
// Parameters (HypervisorOptions::params; unknown keys are invalid-argument):
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
//                       (calc-dirty-rate, page-sampling, 1 s); 0s disables. Default 30s.
//   initial-template    template the HostSpec's VMs are booted from at start. Default: none
//                       (then the HostSpec must list no VMs).
//   template.NAME.kernel / .initrd / .append   a direct-kernel template, or
//   template.NAME.image                         a disk template: clones get a qcow2 overlay
//                                               (qemu-img) over this base image; migrating such
//                                               a VM needs run-dir on storage both hosts share.
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
// Migration: the destination's prepareIncoming() does not know the mode, so it gets ready for
// both: it starts QEMU with `-incoming defer` and `migrate-incoming tcp:ADDR:PORT`, listens for a
// staged state on a second port (state_transfer.h), and returns "tcp:ADDR:PORT;state=tcp:ADDR:P2".
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
// QEMU processes are children of this process, die with it (PR_SET_PDEATHSIG) and are reaped by
// poll(); a VM whose QEMU exits is removed from inventory and any operation on it completes with
// an internal error. Time: operations start and are measured at poll()'s `now`; phase durations
// of live migrations come from QEMU's own query-migrate figures.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "qemu/state_transfer.h"
#include "vrm/vmscheduler/hypervisor.h"
#include "vrm/vmscheduler/qmp_client.h"

namespace vrm::vmscheduler {

class QemuHypervisor final : public Hypervisor {
 public:
  // Errors: invalid-argument for unknown or malformed params, or a binary that cannot be found.
  static Result<std::unique_ptr<Hypervisor>> create(const HypervisorOptions& options);
  ~QemuHypervisor() override;

  std::string_view backendName() const override { return "qemu"; }
  HostInfo hostInfo() const override { return host_; }
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

 private:
  struct Template {
    std::string kernel, initrd, append, image, ready;
  };
  struct Config {
    std::string binary = "qemu-system-x86_64";
    std::string accel;
    std::string runDir, stageDir, parkDir;
    std::string migrationAddress = "127.0.0.1";
    int firstPort = 49200, lastPort = 49399;
    TimeNs bootTimeoutNs = 120 * kNsPerSec;
    TimeNs migrationTimeoutNs = 600 * kNsPerSec;
    int maxRounds = 60;
    TimeNs dirtyRateIntervalNs = 30 * kNsPerSec;
    std::string initialTemplate;
    std::map<std::string, Template> templates;
  };
  struct Process {
    pid_t pid = -1;
    std::string qmpPath, serialPath, logPath;
    std::unique_ptr<QmpClient> qmp;
  };
  struct Vm {
    VmInfo info;
    Process proc;
    std::string diskPath;  // qcow2 overlay, for image templates
    TimeNs nextDirtyRateNs = 0;
    bool dirtyRatePending = false;
    TimeNs dirtyRateDueNs = 0;
    TimeNs nextResidentNs = 0;
    int incomingPort = 0;
    bool keepPaused = false;  // incoming VM that was suspended at the source: stays suspended
    // Incoming by suspend-copy-resume: receives the staged state; once it has, the VM's QEMU is
    // replaced by one restoring from it (restoring until QEMU leaves inmigrate).
    std::unique_ptr<StateReceiver> receiver;
    bool restoring = false;
    TimeNs restoreDeadlineNs = 0;
  };
  enum class OpKind { kClone, kLive, kScrSave, kScrCopy, kPark, kUnpark };
  struct Operation {
    OpKind kind = OpKind::kClone;
    std::string vmId;
    bool started = false;
    TimeNs startNs = 0;
    int lastStep = -1;
    MigrationSpec spec;
    VmState previousState = VmState::kRunning;
    MigrationObservation observation;
    std::string cancelReason;         // set when we cancelled a migration ourselves
    double lastDirtyBytesPerSec = 0;  // query-migrate's last dirty-pages-rate, in bytes/s
    // Suspend-copy-resume.
    std::string statePath;
    std::chrono::steady_clock::time_point stoppedAt;  // when the VM was stopped
    TimeNs saveNs = 0;
    std::uint64_t stateBytes = 0;
    std::unique_ptr<StateSender> sender;  // the copy (and the wait for the restore)
    VmHandle handle;
  };

  QemuHypervisor(HostInfo host, Config config)
      : host_(std::move(host)), config_(std::move(config)) {}

  // Cores and memory of every VM but the parked ones (one being unparked is incoming).
  Status checkRoom(std::uint32_t cores, std::uint64_t memoryBytes) const;
  // Lists the VMs PARK-DIR describes as parked (at create()).
  void loadParked();
  std::string parkDescriptionPath(const std::string& vmId) const;
  Status writeParkDescription(const Vm& vm) const;
  bool unparking(const std::string& vmId) const;
  // Starts QEMU for `vm`; a non-empty `incoming` adds `-incoming INCOMING` ("defer",
  // "exec:cat FILE"). Fills vm.proc (connected).
  Status launch(Vm& vm, const std::string& incoming = "");
  // Kills the VM's QEMU and stops receiving its state.
  void kill(Vm& vm);
  static void killProcess(Process& proc);
  // Destination side of suspend-copy-resume: starts and follows restores of received states.
  void pollIncomingState(TimeNs now);
  // Reaps exited QEMUs and transfer children; returns the ids of VMs whose QEMU exited.
  std::vector<std::string> reap();
  void pollOperation(OperationId id, Operation& op, TimeNs now, std::vector<OperationEvent>& out,
                     bool& finished);
  void pollDirtyRate(Vm& vm, TimeNs now);
  void updateResident(Vm& vm);
  OperationEvent completed(OperationId id, Status status);

  HostInfo host_;
  Config config_;
  std::map<std::string, Vm> vms_;
  std::map<OperationId, Operation> ops_;
  std::map<std::string, std::string> exitReasons_;  // vm id -> why its QEMU exited
  std::vector<OperationEvent> immediate_;
  TimeNs lastPollNs_ = 0;
  std::uint64_t launchCount_ = 0;
};

}  // namespace vrm::vmscheduler
