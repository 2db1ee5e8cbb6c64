#include "vrm/vmscheduler/hypervisor.h"

#include "libvirt_hypervisor.h"
#include "qemu/qemu_hypervisor.h"
#include "sim_hypervisor.h"

namespace vrm::vmscheduler {

const std::vector<LostVm>& Hypervisor::lostVms() const {
  static const std::vector<LostVm> kNone;
  return kNone;
}

Result<std::unique_ptr<Hypervisor>> Hypervisor::create(std::string_view name,
                                                       const HypervisorOptions& options) {
  if (name == "sim") return SimHypervisor::create(options);
  if (name == "libvirt") return LibvirtHypervisor::create(options);
  if (name == "qemu") return QemuHypervisor::create(options);
  return Status::invalid("unknown hypervisor backend '" + std::string(name) +
                         "' (available: sim, qemu, libvirt)");
}

}  // namespace vrm::vmscheduler
