// Cloning a VM from a template: a fresh QEMU (kernel + initramfs, or a qcow2 overlay of the
// template's image), ready when its console shows the template's ready text (or, without one,
// when QEMU reports it running) and, for an SSH template on a user-mode network, when its SSH
// server answers on the forwarded port; failed, and the VM removed, after boot-timeout. The
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

 protected:
  bool step(QemuHost& host, QemuVm& vm, TimeNs now, std::vector<OperationEvent>& out) override;

 private:
  CloneOperation(OperationId id, VmHandle handle)
      : QemuOperation(id, handle.vmId), handle_(std::move(handle)) {}

  VmHandle handle_;
};

}  // namespace vrm::vmscheduler::qemu
