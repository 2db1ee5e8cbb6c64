#include "qemu/qemu_operation.h"

#include <unistd.h>

#include "qemu/qemu_support.h"

namespace vrm::vmscheduler::qemu {

bool QemuOperation::poll(QemuHost& host, TimeNs now, std::vector<OperationEvent>& out) {
  if (!started_) {
    started_ = true;
    startNs_ = now;
    onStart(now);
  }
  QemuVm* vm = host.vms.find(vmId_);
  if (vm && (vm->proc.qmp || handlesExitedQemu())) return step(host, *vm, now, out);
  // The QEMU exited (reaped this poll): the VM is gone with it.
  abandon();  // e.g. the destination must not restore a VM reported lost
  out.push_back(completed(Status::internal("qemu of vm '" + vmId_ + "' on host '" + host.info.name +
                                           "' " + host.exitReason(vmId_, "is gone"))));
  if (vm) host.vms.erase(vmId_);
  return true;
}

std::optional<Status> QemuOperation::setBandwidth(QemuHost&, double) { return std::nullopt; }

void QemuOperation::progress(std::vector<OperationEvent>& out, double fraction, std::uint64_t sent,
                             std::uint64_t total, const std::string& phase) {
  if (auto e = steps_.next(id_, fraction, sent, total, phase)) out.push_back(std::move(*e));
}

void OutgoingOperation::abandon() {
  stopTransfers();
  if (!statePath_.empty()) ::unlink(statePath_.c_str());
}

void OutgoingOperation::fail(QemuVm& vm, Status status, std::vector<OperationEvent>& out) {
  if (previousState_ == VmState::kRunning && vm.proc.qmp) {
    auto st = vm.proc.qmp->execute("query-status", {}, kQmpTimeout);
    if (st && st->value("status", "") != "running") {
      (void)vm.proc.qmp->execute("cont", {}, kQmpTimeout);
    }
  }
  vm.info.state = previousState_;
  abandon();
  out.push_back(completed(std::move(status)));
}

void OutgoingOperation::left(QemuHost& host, QemuVm& vm, const MigrationObservation& obs,
                             std::vector<OperationEvent>& out) {
  abandon();
  QemuHost::kill(vm);
  host.vms.erase(vmId());  // `vm` is gone from here on
  OperationEvent e = completed(Status::ok());
  e.migration = obs;
  out.push_back(std::move(e));
}

Status startQemuMigrate(QmpClient& qmp, const std::string& vmId, const nlohmann::json& parameters,
                        const std::string& uri, bool resumeOnFailure) {
  auto resume = [&] {
    if (resumeOnFailure) (void)qmp.execute("cont", {}, kQmpTimeout);
  };
  if (auto r = qmp.execute("migrate-set-parameters", parameters, kQmpTimeout); !r) {
    resume();
    return Status::internal("vm '" + vmId + "': " + r.status().message());
  }
  if (auto r = qmp.execute("migrate", {{"uri", uri}}, kQmpTimeout); !r) {
    resume();
    return Status::internal("vm '" + vmId + "': " + r.status().message());
  }
  return Status::ok();
}

}  // namespace vrm::vmscheduler::qemu

namespace vrm::vmscheduler::qemu {

std::string MigrateStatus::failure(const std::string& what) const {
  return what + " " + status + ": " + answer.value("error-desc", std::string("no reason given"));
}

std::optional<MigrateStatus> queryMigrate(QmpClient& qmp) {
  auto q = qmp.execute("query-migrate", {}, kQmpTimeout);
  if (!q) return std::nullopt;
  MigrateStatus m;
  m.status = q->value("status", "");
  m.ram = q->value("ram", nlohmann::json::object());
  m.answer = std::move(*q);
  return m;
}

}  // namespace vrm::vmscheduler::qemu
