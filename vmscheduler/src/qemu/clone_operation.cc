#include "qemu/clone_operation.h"

#include <unistd.h>

#include "qemu/qemu_support.h"
#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::qemu {

Result<std::unique_ptr<CloneOperation>> CloneOperation::start(
    QemuHost& host, OperationId id, const CloneSpec& spec, std::vector<OperationEvent>& immediate) {
  if (spec.vmId.empty()) return Status::invalid("clone needs a vm id");
  if (spec.memoryBytes == 0 || spec.cpuCores == 0) {
    return Status::invalid("clone '" + spec.vmId + "' needs positive memory and cpu cores");
  }
  auto tit = host.config.templates.find(spec.templateName);
  if (tit == host.config.templates.end()) {
    return Status::invalid("unknown template '" + spec.templateName + "' on host '" +
                           host.info.name + "'");
  }
  VmHandle handle{spec.vmId, host.info.name, "", "root"};
  if (const QemuVm* existing = host.vms.find(spec.vmId)) {
    const VmInfo& info = existing->info;
    const bool sameClone = (info.state == VmState::kRunning || info.state == VmState::kSuspended) &&
                           info.templateName == spec.templateName &&
                           info.reservationId == spec.reservationId;
    if (!sameClone) return backend::alreadyOnHost(spec.vmId, host.info.name);
    handle.address = info.address;
    OperationEvent done = backend::completedEvent(id);
    done.clone = handle;
    immediate.push_back(std::move(done));
    return std::unique_ptr<CloneOperation>();
  }
  if (Status s = host.vms.checkRoom(host.info, spec.cpuCores, spec.memoryBytes); !s) return s;
  QemuVm vm;
  vm.info.id = spec.vmId;
  vm.info.cpuCores = spec.cpuCores;
  vm.info.memoryBytes = spec.memoryBytes;
  vm.info.nonzeroMemoryBytes = 0;
  vm.info.state = VmState::kCloning;
  vm.info.reservationId = spec.reservationId;
  vm.info.templateName = spec.templateName;
  if (!tit->second.image.empty()) {
    vm.diskPath = host.config.runDir + "/" + spec.vmId + ".qcow2";
    ::unlink(vm.diskPath.c_str());
    if (Status s = runProgram({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                               tit->second.image, vm.diskPath});
        !s) {
      return s;
    }
  }
  if (Status s = host.launch(vm); !s) return s;
  vm.info.address = "unix:" + vm.proc.qmpPath;
  handle.address = vm.info.address;
  host.vms.add(std::move(vm));
  return std::unique_ptr<CloneOperation>(new CloneOperation(id, std::move(handle)));
}

bool CloneOperation::step(QemuHost& host, QemuVm& vm, TimeNs now,
                          std::vector<OperationEvent>& out) {
  const QemuTemplate& t = host.config.templates.at(vm.info.templateName);
  bool ready = false;
  if (!t.ready.empty()) {
    ready = fileContains(vm.proc.serialPath, t.ready);
  } else {
    auto st = vm.proc.qmp->execute("query-status", {}, kQmpTimeout);
    ready = st && st->value("status", "") == "running";
  }
  if (ready) {
    vm.info.state = VmState::kRunning;
    OperationEvent e = completed(Status::ok());
    e.clone = handle_;
    out.push_back(std::move(e));
    return true;
  }
  const TimeNs elapsed = now - startNs();
  const TimeNs timeout = host.config.bootTimeoutNs;
  if (timeout > 0 && elapsed > timeout) {
    const std::string console = tailOf(vm.proc.serialPath, 200);
    QemuHost::kill(vm);
    host.vms.erase(vmId());
    out.push_back(completed(Status::internal("vm '" + vmId() + "' was not ready after " +
                                             formatDuration(timeout) + "; console: " + console)));
    return true;
  }
  progress(out, timeout > 0 ? static_cast<double>(elapsed) / static_cast<double>(timeout) : 0, 0, 0,
           "clone");
  return false;
}

}  // namespace vrm::vmscheduler::qemu
