#include "qemu/park.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "qemu/qemu_support.h"
#include "qemu/vm_state_file.h"
#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::qemu {

namespace fs = std::filesystem;
using nlohmann::json;

std::string parkDescriptionPath(const QemuConfig& config, const std::string& vmId) {
  return config.parkDir + "/" + vmId + ".json";
}

namespace {

Status writeParkDescription(const QemuConfig& config, const QemuVm& vm) {
  const VmInfo& i = vm.info;
  json d = vmInfoFields(i);
  d.update({{"nonzero_memory_bytes", i.nonzeroMemoryBytes},
            {"dirty_rate", i.dirtyRateBytesPerSec},
            {"state_file", i.stateFile},
            {"disk_path", vm.diskPath}});
  return writeFileAtomically(parkDescriptionPath(config, i.id), d.dump() + "\n");
}

}  // namespace

void loadParkedVms(QemuHost& host) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(host.config.parkDir, ec)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    const json d = json::parse(in, nullptr, /*allow_exceptions=*/false);
    QemuVm vm;
    if (d.is_object()) {
      VmInfo& i = vm.info;
      i.id = d.value("id", "");
      i.cpuCores = d.value("cpu_cores", 1u);
      i.memoryBytes = d.value("memory_bytes", std::uint64_t{0});
      i.nonzeroMemoryBytes = d.value("nonzero_memory_bytes", std::uint64_t{0});
      i.dirtyRateBytesPerSec = d.value("dirty_rate", 0.0);
      i.diskBytes = d.value("disk_bytes", std::uint64_t{0});
      i.reservationId = d.value("reservation", "");
      i.address = d.value("address", "");
      i.templateName = d.value("template", "");
      i.allowLive = d.value("allow_live", true);
      i.allowSuspend = d.value("allow_suspend", true);
      i.stateFile = d.value("state_file", "");
      vm.diskPath = d.value("disk_path", "");
      i.state = VmState::kParked;
    }
    if (!stageableName(vm.info.id) || vm.info.memoryBytes == 0 ||
        access(vm.info.stateFile.c_str(), R_OK) != 0) {
      spdlog::warn("qemu: ignoring parked vm description {} (unreadable, or its state is gone)",
                   entry.path().string());
      continue;
    }
    spdlog::info("qemu: vm {} is parked in {}", vm.info.id, vm.info.stateFile);
    host.vms.add(std::move(vm));
  }
}

void removeParkFiles(const QemuConfig& config, const VmInfo& vm) {
  ::unlink(vm.stateFile.c_str());
  ::unlink(parkDescriptionPath(config, vm.id).c_str());
}

Result<std::unique_ptr<ParkOperation>> ParkOperation::start(QemuHost& host, QemuVm& vm,
                                                            OperationId id) {
  QmpClient& qmp = *vm.proc.qmp;
  std::unique_ptr<ParkOperation> op(new ParkOperation(
      id, vm.info,
      backend::observationOf(vm.info, host.info.name, host.info.name, MigrationMode::kSuspend)));
  op->statePath_ = host.config.parkDir + "/" + vm.info.id + ".state";
  ::unlink(op->statePath_.c_str());
  op->stoppedAt_ = std::chrono::steady_clock::now();
  const bool wasRunning = vm.info.state == VmState::kRunning;
  if (wasRunning) {
    if (auto r = qmp.execute("stop", {}, kQmpTimeout); !r) return r.status();
  }
  // A local write: unthrottled.
  const json params = {{"max-bandwidth", static_cast<std::int64_t>(kUnlimitedBytesPerSec)}};
  if (Status s = startQemuMigrate(qmp, vm.info.id, params, "exec:cat > '" + op->statePath_ + "'",
                                  wasRunning);
      !s) {
    ::unlink(op->statePath_.c_str());
    return s;
  }
  vm.info.state = VmState::kMigratingOut;  // busy until saved
  return op;
}

bool ParkOperation::step(QemuHost& host, QemuVm& vm, TimeNs, std::vector<OperationEvent>& out) {
  auto m = queryMigrate(*vm.proc.qmp);
  if (!m) return false;
  if (m->status == "completed") {
    if (Status s = syncFile(statePath_); !s) {
      fail(vm, std::move(s), out);
      return true;
    }
    const std::uint64_t bytes = fileSize(statePath_);
    vm.info.stateFile = statePath_;
    if (Status s = writeParkDescription(host.config, vm); !s) {
      vm.info.stateFile.clear();
      fail(vm, std::move(s), out);
      return true;
    }
    MigrationObservation obs = observation_;
    obs.saveNs = steadyNsSince(stoppedAt_);
    obs.endNs = obs.startNs + obs.saveNs;
    obs.downtimeNs = obs.saveNs;
    obs.transferredBytes = bytes;
    obs.rounds = 1;
    QemuHost::killProcess(vm.proc);  // frees its memory; the state file and description stay
    vm.info.state = VmState::kParked;
    OperationEvent e = completed(Status::ok());
    e.migration = obs;
    out.push_back(std::move(e));
    return true;
  }
  if (m->failed()) {
    fail(vm, Status::unavailable(m->failure("park of vm '" + vmId() + "' on " + host.info.name)),
         out);
    return true;
  }
  progress(out, 0, static_cast<std::uint64_t>(jsonNumber(m->ram, "transferred")),
           static_cast<std::uint64_t>(jsonNumber(m->ram, "total")), "save");
  return false;
}

Result<std::unique_ptr<UnparkOperation>> UnparkOperation::start(QemuHost& host, QemuVm& vm,
                                                                OperationId id) {
  if (Status s = host.vms.checkRoom(host.info, vm.info.cpuCores, vm.info.memoryBytes); !s) {
    return Status::rejected("cannot unpark vm '" + vm.info.id + "': " + s.message());
  }
  std::unique_ptr<UnparkOperation> op(new UnparkOperation(
      id, vm.info,
      backend::observationOf(vm.info, host.info.name, host.info.name, MigrationMode::kSuspend)));
  op->stateBytes_ = fileSize(vm.info.stateFile);
  op->launchedAt_ = std::chrono::steady_clock::now();
  if (Status s = host.launch(vm, "exec:cat '" + vm.info.stateFile + "'"); !s) return s;
  vm.info.state = VmState::kIncoming;  // being restored: holds its room
  return op;
}

void UnparkOperation::fail(QemuHost& host, QemuVm& vm, const std::string& why,
                           std::vector<OperationEvent>& out) {
  QemuHost::killProcess(vm.proc);
  vm.info.state = VmState::kParked;  // its state file is untouched: it can be tried again
  out.push_back(completed(
      Status::internal("unpark of vm '" + vmId() + "' on " + host.info.name + " failed: " + why)));
}

bool UnparkOperation::step(QemuHost& host, QemuVm& vm, TimeNs now,
                           std::vector<OperationEvent>& out) {
  if (!vm.proc.qmp) {
    fail(host, vm,
         "qemu " + host.exitReason(vmId(), "exited") + "; " + tailOf(vm.proc.logPath, 200), out);
    return true;
  }
  auto st = vm.proc.qmp->execute("query-status", {}, kQmpTimeout);
  if (!st) return false;  // a dead QEMU is reaped next poll
  const std::string status = st->value("status", "");
  const TimeNs timeout = host.config.migrationTimeoutNs;
  if (status == "inmigrate") {
    if (timeout > 0 && now - startNs() > timeout) {
      fail(host, vm, "restore did not finish in " + formatDuration(timeout), out);
      return true;
    }
    return false;
  }
  if (status != "paused" && status != "postmigrate" && status != "prelaunch" &&
      status != "running") {
    fail(host, vm, "restored vm is in state " + status, out);
    return true;
  }
  if (status != "running") {
    if (auto r = vm.proc.qmp->execute("cont", {}, kQmpTimeout); !r) {
      fail(host, vm, r.status().message(), out);
      return true;
    }
  }
  MigrationObservation obs = observation_;
  obs.restoreNs = steadyNsSince(launchedAt_);
  obs.endNs = obs.startNs + obs.restoreNs;
  obs.downtimeNs = obs.restoreNs;
  obs.transferredBytes = stateBytes_;
  obs.rounds = 1;
  removeParkFiles(host.config, vm.info);
  vm.info.state = VmState::kRunning;
  vm.info.stateFile.clear();
  vm.nextDirtyRateNs = 0;
  OperationEvent e = completed(Status::ok());
  e.migration = obs;
  out.push_back(std::move(e));
  return true;
}

}  // namespace vrm::vmscheduler::qemu
