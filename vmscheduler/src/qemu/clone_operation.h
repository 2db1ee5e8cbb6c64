// Cloning a VM from a template: a fresh QEMU (kernel + initramfs, or a qcow2 overlay of the
// template's image), ready when QEMU reports it running, its console shows the template's ready
// text (if it has one) and, for an SSH template on a user-mode network, its SSH server answers
// on the forwarded port; failed, and the VM removed, after boot-timeout. The
// owner's key goes onto an SSH kernel template's command line (guest_network.h); the handle
// says how to reach the clone and where its address comes from (handleFor()).
#pragma once

#include <memory>

#include "qemu/qemu_operation.h"

namespace vrm::vmscheduler::qemu {

class CloneOperation final : public QemuOperation {
 public:
  // Creates the VM (listed kCloning) and starts its QEMU. A clone of an id that already
  // finished cloning with the same template and reservation completes at once with the same
  // handle, pushed to `immediate` (and returns null). Errors (nothing started): invalid-argument
  // (no id, no memory or cores, unknown template, a bad key, a key for an SSH image template
  // or too long for the kernel command line), rejected (id exists, no room), internal
  // (qemu-img or QEMU failed, no free port to forward).
  static Result<std::unique_ptr<CloneOperation>> start(QemuHost& host, OperationId id,
                                                       const CloneSpec& spec,
                                                       std::vector<OperationEvent>& immediate);
  // The clone `vm` (listed kCloning, its QEMU re-attached after an agent restart) of command
  // `id`, whose boot started at `bootStartNs` (0 = at this operation's first poll): ready, and
  // completed with the clone's handle, only when the same checks as a fresh clone's pass;
  // failed after boot-timeout from `bootStartNs`.
  static std::unique_ptr<CloneOperation> resume(OperationId id, const QemuVm& vm,
                                                TimeNs bootStartNs);

  std::optional<VmStateRecord::Clone> cloning() const override {
    return VmStateRecord::Clone{id(), bootStartNs_};
  }

 protected:
  bool step(QemuHost& host, QemuVm& vm, TimeNs now, std::vector<OperationEvent>& out) override;
  void onStart(TimeNs now) override {
    if (bootStartNs_ == 0) bootStartNs_ = now;
  }

 private:
  CloneOperation(OperationId id, VmHandle handle, TimeNs bootStartNs = 0)
      : QemuOperation(id, handle.vmId), handle_(std::move(handle)), bootStartNs_(bootStartNs) {}

  VmHandle handle_;
  TimeNs bootStartNs_;  // 0 until the first poll
};

// Where a booting clone stands at `now`: ready once every readiness check passed, timed out once
// `timeoutNs` (> 0; 0 = never) has passed since `bootStartNs`, booting otherwise.
enum class BootVerdict { kBooting, kReady, kTimedOut };
BootVerdict bootVerdict(bool checksPassed, TimeNs bootStartNs, TimeNs now, TimeNs timeoutNs);

}  // namespace vrm::vmscheduler::qemu
