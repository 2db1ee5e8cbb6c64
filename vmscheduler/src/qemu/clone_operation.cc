#include "qemu/clone_operation.h"

#include <unistd.h>

#include "qemu/guest_network.h"
#include "qemu/qemu_support.h"
#include "vrm/protocol/ssh_key.h"
#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::qemu {

namespace {
// Short: step() runs on the agent's loop; an unanswered probe is retried at the next step.
constexpr std::chrono::milliseconds kSshProbeTimeout{300};
}  // namespace

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
  const QemuTemplate& t = tit->second;
  if (const QemuVm* existing = host.vms.find(spec.vmId)) {
    const VmInfo& info = existing->info;
    const bool sameClone = (info.state == VmState::kRunning || info.state == VmState::kSuspended) &&
                           info.templateName == spec.templateName &&
                           info.reservationId == spec.reservationId;
    if (!sameClone) return backend::alreadyOnHost(spec.vmId, host.info.name);
    OperationEvent done = backend::completedEvent(id);
    // The handle the clone gave (kept across agent restarts by the state file); a guest re-attached
    // from an older state file has only its forwarded port.
    done.clone = existing->cloneHandle
                     ? *existing->cloneHandle
                     : handleFor(host.config, t, host.info.name, spec.vmId,
                                 existing->sshForwardPort, existing->proc.qmpPath);
    immediate.push_back(std::move(done));
    return std::unique_ptr<CloneOperation>();
  }
  if (Status s = host.vms.checkRoom(host.info, spec.cpuCores, spec.memoryBytes); !s) return s;
  std::string appendExtra;
  if (!spec.sshPublicKey.empty() && t.ssh) {
    // vrmd checked the key; the agent does not trust the wire to have.
    if (Status s = checkSshPublicKey(spec.sshPublicKey); !s) {
      return Status::invalid("clone '" + spec.vmId + "': sshPublicKey: " + s.message());
    }
    if (!t.image.empty()) {
      return Status::invalid("qemu template '" + spec.templateName +
                             "': an SSH key goes only into kernel+initramfs templates (image "
                             "templates would need a cloud-init seed, which this backend does "
                             "not make yet)");
    }
    auto arg = kernelKeyArgument(spec.sshPublicKey, t.append);
    if (!arg) return Status::invalid("clone '" + spec.vmId + "': " + arg.status().message());
    appendExtra = *arg;
  }
  QemuVm vm;
  vm.info.id = spec.vmId;
  vm.info.cpuCores = spec.cpuCores;
  vm.info.memoryBytes = spec.memoryBytes;
  vm.info.nonzeroMemoryBytes = 0;
  vm.info.state = VmState::kCloning;
  vm.info.reservationId = spec.reservationId;
  vm.info.templateName = spec.templateName;
  vm.appendExtra = appendExtra;
  if (!t.image.empty()) {
    vm.diskPath = host.config.diskDir + "/" + spec.vmId + ".qcow2";
    ::unlink(vm.diskPath.c_str());
    if (Status s = runProgram(
            {"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", t.image, vm.diskPath});
        !s) {
      return s;
    }
  }
  if (Status s = host.launch(vm); !s) {
    if (!vm.diskPath.empty()) ::unlink(vm.diskPath.c_str());  // the clone never was
    return s;
  }
  VmHandle handle =
      handleFor(host.config, t, host.info.name, spec.vmId, vm.sshForwardPort, vm.proc.qmpPath);
  setCloneHandle(vm, handle);
  host.vms.add(std::move(vm));
  return std::unique_ptr<CloneOperation>(new CloneOperation(id, std::move(handle)));
}

BootVerdict bootVerdict(bool checksPassed, TimeNs bootStartNs, TimeNs now, TimeNs timeoutNs) {
  if (checksPassed) return BootVerdict::kReady;
  if (timeoutNs > 0 && now - bootStartNs > timeoutNs) return BootVerdict::kTimedOut;
  return BootVerdict::kBooting;
}

std::unique_ptr<CloneOperation> CloneOperation::resume(OperationId id, const QemuVm& vm,
                                                       TimeNs bootStartNs) {
  VmHandle handle = vm.cloneHandle.value_or(VmHandle{});
  handle.vmId = vm.info.id;
  return std::unique_ptr<CloneOperation>(new CloneOperation(id, std::move(handle), bootStartNs));
}

bool CloneOperation::step(QemuHost& host, QemuVm& vm, TimeNs now,
                          std::vector<OperationEvent>& out) {
  auto tit = host.config.templates.find(vm.info.templateName);
  if (tit == host.config.templates.end()) {
    // A clone re-attached by an agent started without its template: nothing says when it is
    // ready, so it is not reported ready (it keeps running, listed; destroy removes it).
    vm.info.state = VmState::kRunning;
    out.push_back(completed(Status::invalid(
        "vm '" + vmId() + "': template '" + vm.info.templateName + "' is not defined on host '" +
        host.info.name + "' (template." + vm.info.templateName + ".*): its readiness is unknown")));
    return true;
  }
  const QemuTemplate& t = tit->second;
  // Ready: QEMU runs the guest (a clone paused meanwhile, e.g. across an agent restart, is
  // not), its console shows the template's ready text if it has one, and (below) its SSH answers.
  auto st = vm.proc.qmp->execute("query-status", {}, kQmpTimeout);
  bool ready = st && st->value("status", "") == "running";
  if (ready && !t.ready.empty()) ready = fileContains(vm.proc.serialPath, t.ready);
  // A clone whose handle is an ssh line is ready when ssh answers there, not before.
  if (ready && handle_.port > 0) {
    ready = sshBannerAnswers(handle_.address, static_cast<int>(handle_.port), kSshProbeTimeout);
  }
  const TimeNs timeout = host.config.bootTimeoutNs;
  const BootVerdict verdict = bootVerdict(ready, bootStartNs_, now, timeout);
  if (verdict == BootVerdict::kReady) {
    vm.info.state = VmState::kRunning;
    OperationEvent e = completed(Status::ok());
    e.clone = handle_;
    out.push_back(std::move(e));
    return true;
  }
  const TimeNs elapsed = now - bootStartNs_;
  if (verdict == BootVerdict::kTimedOut) {
    const std::string console = tailOf(vm.proc.serialPath, 200);
    QemuHost::kill(vm);
    if (!vm.diskPath.empty()) ::unlink(vm.diskPath.c_str());  // never handed out
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
