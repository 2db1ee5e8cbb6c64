// A long operation of the qemu backend (a clone, a live migration, a suspend-copy-resume, a park,
// an unpark, ...): one object per operation in flight, owned by the QemuHypervisor, which polls
// it until it reports its completion. New kinds of operation (e.g. a migration with its disks)
// are new subclasses; the hypervisor needs to know only this interface.
//
// Contract of poll(): called from the hypervisor's poll() with that poll's `now` (never
// decreasing). The first call records the start (startNs(), the observation's start). Progress
// events are appended to `out`; when the operation is over, its one completion is appended and
// poll() returns true, after which the object is destroyed. Before step() runs, the base class
// checks that the VM still has a QEMU: one that exited (reaped this poll) completes the
// operation with an internal error naming why, and the VM leaves the host (unless the subclass
// handles an exited QEMU itself, as an unpark does: its VM stays parked).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backend/operation_support.h"
#include "qemu/qemu_host.h"
#include "qemu/vm_state_file.h"

namespace vrm::vmscheduler::qemu {

class QemuOperation {
 public:
  QemuOperation(OperationId id, std::string vmId) : id_(id), vmId_(std::move(vmId)) {}
  virtual ~QemuOperation() = default;
  QemuOperation(const QemuOperation&) = delete;
  QemuOperation& operator=(const QemuOperation&) = delete;

  OperationId id() const { return id_; }
  const std::string& vmId() const { return vmId_; }

  // Advances the operation to `now`; true once its completion is in `out`.
  bool poll(QemuHost& host, TimeNs now, std::vector<OperationEvent>& out);

  // Whether a phase may end at any moment (save, restore), so the hypervisor polls every 10 ms
  // rather than every 50: noticing the end late would be downtime.
  virtual bool wantsFastPoll() const { return false; }
  // A migration's new bandwidth cap (bytes/s, 0 = the NIC); nullopt when the operation is not a
  // migration out of this host (a clone).
  virtual std::optional<Status> setBandwidth(QemuHost& host, double maxBytesPerSec);
  // True for an unpark (the VM is listed incoming, yet it is no migration arriving).
  virtual bool unparks() const { return false; }
  // The hypervisor is going away: stop transfers and remove staged files (no completion).
  virtual void abandon() {}
  // A migration or park out of this host: what its VM's state file records of it.
  virtual std::optional<VmStateRecord::Migration> outgoing() const { return std::nullopt; }
  // A clone booting: what its VM's state file records of it.
  virtual std::optional<VmStateRecord::Clone> cloning() const { return std::nullopt; }

 protected:
  // One step with the VM (`vm` has a QEMU unless handlesExitedQemu()).
  virtual bool step(QemuHost& host, QemuVm& vm, TimeNs now, std::vector<OperationEvent>& out) = 0;
  virtual bool handlesExitedQemu() const { return false; }
  // Called at the first poll(), with its `now`.
  virtual void onStart(TimeNs now) { (void)now; }

  TimeNs startNs() const { return startNs_; }
  // A progress event, at most one per tenth (backend::ProgressSteps).
  void progress(std::vector<OperationEvent>& out, double fraction, std::uint64_t sent,
                std::uint64_t total, const std::string& phase);
  OperationEvent completed(Status status) const { return backend::completedEvent(id_, status); }

 private:
  const OperationId id_;
  const std::string vmId_;
  bool started_ = false;
  TimeNs startNs_ = 0;
  backend::ProgressSteps steps_;
};

// An operation that takes a running or suspended VM out of service on this host (a migration
// out, a park): it remembers the VM's state before, its observation, and a state file it may
// have written; fail() puts the VM back as it was.
class OutgoingOperation : public QemuOperation {
 public:
  OutgoingOperation(OperationId id, const VmInfo& vm, MigrationObservation observation)
      : QemuOperation(id, vm.id), previousState_(vm.state), observation_(std::move(observation)) {}

  void abandon() override;
  std::optional<VmStateRecord::Migration> outgoing() const override {
    return VmStateRecord::Migration{id(), observation_.mode, observation_.toHost,
                                    previousState_ == VmState::kRunning, observation_.startNs};
  }

 protected:
  void onStart(TimeNs now) override { observation_.startNs = now; }
  // Completes with `status`; the VM stays here, running again if it ran before.
  void fail(QemuVm& vm, Status status, std::vector<OperationEvent>& out);
  // Completes with ok and `obs`: the VM now runs on the destination, so it leaves this host (its
  // QEMU killed, its state file and transfers gone).
  void left(QemuHost& host, QemuVm& vm, const MigrationObservation& obs,
            std::vector<OperationEvent>& out);
  // What the operation needs to stop besides removing its state file (a transfer).
  virtual void stopTransfers() {}

  VmState previousState_;
  MigrationObservation observation_;
  std::string statePath_;  // a state file this operation writes ("" when none)
};

// Starts `migrate` to `uri` after setting `parameters` (migrate-set-parameters). On failure
// the VM runs again when it ran before (`wasRunning`). Errors: internal with QEMU's message.
Status startQemuMigrate(QmpClient& qmp, const std::string& vmId, const nlohmann::json& parameters,
                        const std::string& uri, bool resumeOnFailure);

}  // namespace vrm::vmscheduler::qemu

namespace vrm::vmscheduler::qemu {

// One answer of query-migrate: QEMU's status ("setup", "active", "completed", "failed", ...),
// the whole answer and its "ram" part.
struct MigrateStatus {
  std::string status;
  nlohmann::json answer;
  nlohmann::json ram;
  bool over() const { return status == "completed" || status == "failed" || status == "cancelled"; }
  bool failed() const { return status == "failed" || status == "cancelled"; }
  // "<what> <status>: <QEMU's error-desc>".
  std::string failure(const std::string& what) const;
};
// nullopt when QEMU did not answer (try again next poll; a dead QEMU is reaped then).
std::optional<MigrateStatus> queryMigrate(QmpClient& qmp);

}  // namespace vrm::vmscheduler::qemu
