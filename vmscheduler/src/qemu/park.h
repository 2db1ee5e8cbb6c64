// Parking a VM on its own host, for a reservation that needs the host while no other host has
// room for the VM.
//
// Park: `stop`, save with `migrate exec:cat > PARK-DIR/ID.state` (as suspend-copy-resume's save,
// unthrottled), fsync, write PARK-DIR/ID.json (the VmInfo, its disk) and kill the QEMU: the VM
// stays listed as kParked with that stateFile, holding no cores or memory. loadParkedVms() lists
// the VMs PARK-DIR describes, so parking survives an agent restart.
// Unpark: a QEMU started with `-incoming "exec:cat FILE"`, waited for until it has loaded the
// state, then `cont`; both files are removed. A failed restore leaves the VM parked.
// saveNs / restoreNs are measured from `stop` / the QEMU's start to the state being durable /
// the VM running.
#pragma once

#include <chrono>
#include <memory>

#include "qemu/qemu_operation.h"

namespace vrm::vmscheduler::qemu {

class ParkOperation final : public OutgoingOperation {
 public:
  // Starts saving `vm` (running or suspended, with a stageable id: checked by the caller).
  // Errors (nothing started, the VM as before): internal with QEMU's message.
  static Result<std::unique_ptr<ParkOperation>> start(QemuHost& host, QemuVm& vm, OperationId id);

  bool wantsFastPoll() const override { return true; }
  // Nothing to throttle: the save is a local write.
  std::optional<Status> setBandwidth(QemuHost&, double) override { return Status::ok(); }

 protected:
  bool step(QemuHost& host, QemuVm& vm, TimeNs now, std::vector<OperationEvent>& out) override;

 private:
  using OutgoingOperation::OutgoingOperation;
  std::chrono::steady_clock::time_point stoppedAt_;
};

class UnparkOperation final : public QemuOperation {
 public:
  // Starts restoring the parked `vm` (listed kIncoming meanwhile, its room held).
  // Errors (nothing started): rejected (no room), internal (QEMU did not start).
  static Result<std::unique_ptr<UnparkOperation>> start(QemuHost& host, QemuVm& vm, OperationId id);

  bool wantsFastPoll() const override { return true; }
  std::optional<Status> setBandwidth(QemuHost&, double) override { return Status::ok(); }
  bool unparks() const override { return true; }

 protected:
  bool step(QemuHost& host, QemuVm& vm, TimeNs now, std::vector<OperationEvent>& out) override;
  bool handlesExitedQemu() const override { return true; }
  void onStart(TimeNs now) override { observation_.startNs = now; }

 private:
  UnparkOperation(OperationId id, const VmInfo& vm, MigrationObservation obs)
      : QemuOperation(id, vm.id), observation_(std::move(obs)) {}
  // Completes with an internal error; the VM stays parked (its state file untouched).
  void fail(QemuHost& host, QemuVm& vm, const std::string& why, std::vector<OperationEvent>& out);

  MigrationObservation observation_;
  std::chrono::steady_clock::time_point launchedAt_;
  std::uint64_t stateBytes_ = 0;
};

// PARK-DIR/ID.json, the description of a parked VM.
std::string parkDescriptionPath(const QemuConfig& config, const std::string& vmId);
// Adds to `host.vms` every VM that PARK-DIR describes as parked (at start); unreadable
// descriptions, or ones whose state file is gone, are logged and skipped.
void loadParkedVms(QemuHost& host);
// Removes a parked VM's state file and description (when it is destroyed).
void removeParkFiles(const QemuConfig& config, const VmInfo& vm);

}  // namespace vrm::vmscheduler::qemu
