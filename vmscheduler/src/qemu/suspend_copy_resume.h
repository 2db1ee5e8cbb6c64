// Suspend-copy-resume through staged files, in three phases the observation reports separately
// (saveNs, copyNs, restoreNs):
//   save     the source `stop`s the VM and saves it with `migrate exec:cat > STAGE-DIR/ID.state`
//            (unthrottled: it is a local write), then fsyncs the file;
//   copy     the source agent sends the file over TCP to the destination agent, paced to the
//            bandwidth limit (state_transfer.h), which writes it to its own staging dir;
//   restore  the destination replaces its waiting QEMU by one started with
//            `-incoming "exec:cat FILE"` (pollIncomingRestores()), which loads the state and
//            stays paused, and tells the source; only then does the source report success and
//            kill its QEMU.
// On failure the VM keeps running on the source and the staged files are removed on both sides.
#pragma once

#include <chrono>
#include <memory>

#include "qemu/qemu_operation.h"
#include "qemu/qemu_support.h"

namespace vrm::vmscheduler::qemu {

class SuspendCopyResume final : public OutgoingOperation {
 public:
  // Stops `vm` (if running) and starts saving it to the staging dir; the caller checked that
  // the destination takes a staged state and that the VM's id can name a file.
  // Errors (nothing started, the VM as before): internal with QEMU's message.
  static Result<std::unique_ptr<SuspendCopyResume>> start(QemuHost& host, QemuVm& vm,
                                                          OperationId id, const MigrationSpec& spec,
                                                          const IncomingEndpoint& destination);

  bool wantsFastPoll() const override { return phase_ == Phase::kSave; }
  std::optional<Status> setBandwidth(QemuHost& host, double maxBytesPerSec) override;

 protected:
  bool step(QemuHost& host, QemuVm& vm, TimeNs now, std::vector<OperationEvent>& out) override;
  void stopTransfers() override { sender_.reset(); }

 private:
  enum class Phase { kSave, kCopy };
  SuspendCopyResume(OperationId id, const VmInfo& vm, MigrationObservation obs, MigrationSpec spec,
                    IncomingEndpoint destination)
      : OutgoingOperation(id, vm, std::move(obs)),
        spec_(std::move(spec)),
        destination_(std::move(destination)) {}
  bool stepSave(QemuHost& host, QemuVm& vm, std::vector<OperationEvent>& out);
  bool stepCopy(QemuHost& host, QemuVm& vm, std::vector<OperationEvent>& out);

  MigrationSpec spec_;
  IncomingEndpoint destination_;
  Phase phase_ = Phase::kSave;
  std::chrono::steady_clock::time_point stoppedAt_;  // when the VM was stopped
  TimeNs saveNs_ = 0;
  std::uint64_t stateBytes_ = 0;
  std::unique_ptr<StateSender> sender_;  // the copy (and the wait for the restore)
};

// Destination side: starts and follows the restores of staged states that incoming VMs have
// received. A VM whose restore fails (QEMU exits, times out or ends in a bad state) is told to
// the source through its receiver and dropped from this host.
void pollIncomingRestores(QemuHost& host, TimeNs now);

}  // namespace vrm::vmscheduler::qemu
