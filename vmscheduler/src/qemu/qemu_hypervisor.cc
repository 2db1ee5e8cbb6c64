#include "qemu/qemu_hypervisor.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "qemu/clone_operation.h"
#include "qemu/disk_mirror.h"
#include "qemu/live_migration.h"
#include "qemu/park.h"
#include "qemu/qemu_support.h"
#include "qemu/reattach_plan.h"
#include "qemu/suspend_copy_resume.h"
#include "qemu/vm_state_file.h"

namespace vrm::vmscheduler {

using qemu::kQmpTimeout;
using qemu::QemuHost;
using qemu::QemuVm;
using std::chrono::milliseconds;

namespace {

constexpr TimeNs kPollIntervalNs = 50 * kNsPerMs;
// While a suspend-copy-resume phase may end (save, receive, restore): the agents noticing the
// end of one phase late is downtime.
constexpr TimeNs kFastPollIntervalNs = 10 * kNsPerMs;
constexpr TimeNs kIdlePollIntervalNs = 1 * kNsPerSec;
constexpr TimeNs kResidentIntervalNs = 5 * kNsPerSec;
// A guest left unlisted at start (its QEMU did not answer on QMP) is tried again this often,
// each try waiting this long for QEMU's greeting.
constexpr TimeNs kSilentRetryIntervalNs = 30 * kNsPerSec;
constexpr milliseconds kSilentRetryQmpTimeout{1000};

// Runs `f` when the scope ends: the verbs bring the state files up to date on every return.
template <class F>
class ScopeExit {
 public:
  explicit ScopeExit(F f) : f_(std::move(f)) {}
  ~ScopeExit() { f_(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  F f_;
};

qemu::VmStateRecord recordOf(const QemuVm& vm) {
  qemu::VmStateRecord r;
  r.info = vm.info;
  r.pid = vm.proc.pid;
  r.qmpPath = vm.proc.qmpPath;
  r.serialPath = vm.proc.serialPath;
  r.logPath = vm.proc.logPath;
  r.diskPath = vm.diskPath;
  r.incomingPort = vm.incomingPort;
  r.keepPaused = vm.keepPaused;
  r.sshForwardPort = vm.sshForwardPort;
  r.cloneHandle = vm.cloneHandle;
  return r;
}

// The guest's run state as QEMU reports it ("running", "paused", "inmigrate", ...; "" when it
// does not answer).
std::string runStateOf(QmpClient& client) {
  auto r = client.execute("query-status", {}, kQmpTimeout);
  return r ? r->value("status", "") : "";
}

}  // namespace

Result<std::unique_ptr<Hypervisor>> QemuHypervisor::create(const HypervisorOptions& options) {
  const HostSpec& spec = options.host;
  if (spec.name.empty()) return Status::invalid("qemu host needs a name");
  auto config = qemu::parseQemuConfig(spec.name, options.params);
  if (!config) return config.status();
  std::error_code ec;
  for (const auto& [param, dir] : {std::pair{"run-dir", config->runDir},
                                   {"stage-dir", config->stageDir},
                                   {"park-dir", config->parkDir},
                                   {"vm-state-dir", config->vmStateDir},
                                   {"disk-dir", config->diskDir}}) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return Status::invalid("qemu parameter " + std::string(param) + ": cannot create " + dir +
                             ": " + ec.message());
    }
  }
  // Disks are made at clone time: a disk-dir they cannot be made in is said at start.
  const bool makesDisks = std::any_of(
      config->templates.begin(), config->templates.end(),
      [](const auto& t) { return t.second.dataDiskBytes > 0 || !t.second.image.empty(); });
  if (makesDisks) {
    if (Status s = qemu::checkWritableDir(config->diskDir); !s) {
      return Status::invalid("qemu parameter disk-dir: " + s.message());
    }
  }
  HostInfo host;
  host.name = spec.name;
  host.cpuCores = spec.cpuCores > 0 ? spec.cpuCores : std::thread::hardware_concurrency();
  host.memoryBytes = spec.memoryBytes > 0 ? spec.memoryBytes
                                          : static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) *
                                                static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  host.nicBandwidthBytesPerSec = spec.nicBandwidthBytesPerSec;
  std::unique_ptr<QemuHypervisor> hv(new QemuHypervisor(std::move(host), std::move(*config)));
  QemuHost& h = hv->host_;
  qemu::loadParkedVms(h);
  hv->reattach();
  // The cluster file's VMs describe the host's first start: a restarted agent would otherwise
  // boot a second copy of every one that migrated to another host.
  const std::string startedMarker = h.config.vmStateDir + "/initial-vms.started";
  const bool firstStart = !std::filesystem::exists(startedMarker, ec);
  if (!spec.vms.empty() && !firstStart) {
    spdlog::info("qemu: host {} started on {} before: its {} initial VMs are not booted again",
                 spec.name, h.config.vmStateDir, spec.vms.size());
  } else if (!spec.vms.empty()) {
    const std::string& tname = h.config.initialTemplate;
    if (tname.empty() || !h.config.templates.count(tname)) {
      return Status::invalid("qemu host '" + spec.name +
                             "' lists VMs: set initial-template to a defined template");
    }
    for (const VmSpec& v : spec.vms) {
      if (h.vms.contains(v.id)) continue;  // parked before the agent restarted
      QemuVm vm;
      vm.info.id = v.id;
      vm.info.cpuCores = std::max<std::uint32_t>(1, v.cpuCores);
      vm.info.memoryBytes = v.memoryBytes;
      vm.info.nonzeroMemoryBytes = v.memoryBytes;
      vm.info.templateName = tname;
      vm.info.allowLive = v.allowLive;
      vm.info.allowSuspend = v.allowSuspend;
      if (Status s = h.vms.checkRoom(h.info, vm.info.cpuCores, vm.info.memoryBytes); !s) {
        return Status::invalid("initial VM '" + v.id + "': " + s.message());
      }
      if (Status s = h.launch(vm); !s) return s;
      h.vms.add(std::move(vm));
    }
  }
  hv->persist();
  if (firstStart && !spec.vms.empty()) {
    if (Status s = qemu::writeFileAtomically(startedMarker, "initial VMs booted\n"); !s) {
      return Status::internal("qemu host '" + spec.name + "': " + s.message() +
                              " (a restart would boot its initial VMs again)");
    }
  }
  return std::unique_ptr<Hypervisor>(std::move(hv));
}

QemuHypervisor::~QemuHypervisor() {
  // The guests keep running (the next agent re-attaches); only this agent's transfers stop.
  for (auto& [id, op] : ops_) op->abandon();  // aborts copies, removes staged files
  persist();
}

void QemuHypervisor::killAllGuests() {
  for (auto& [id, op] : ops_) op->abandon();
  ops_.clear();
  for (auto it = host_.vms.begin(); it != host_.vms.end();) {
    if (it->second.info.state == VmState::kParked) {
      ++it;
      continue;
    }
    QemuHost::kill(it->second);
    it = host_.vms.erase(it);
  }
  persist();
}

void QemuHypervisor::reattach() {
  const qemu::QemuConfig& config = host_.config;
  const auto started = std::chrono::steady_clock::now();
  qemu::VmStateDir dir = qemu::readVmStateDir(config.vmStateDir);
  for (const auto& bad : dir.errors) {
    // Kept for a person to look at, out of the way of the next start.
    std::error_code ec;
    std::filesystem::rename(bad.path, bad.path + ".corrupt", ec);
    spdlog::error("qemu: {} (kept as {}.corrupt)", bad.status.message(), bad.path);
    lost_.push_back({"", "", VmState::kRunning, bad.status.message(), 0});
  }
  std::size_t attached = 0;
  for (qemu::VmStateRecord& r : dir.records) {
    const std::string id = r.info.id;
    auto proc = QemuHost::adopt(r.pid, r.qmpPath);
    if (host_.vms.contains(id)) {
      // Parked (park.h's description was written): that is the VM's state; a QEMU left over
      // from the park's last moment goes.
      if (proc) QemuHost::killProcess(*proc);
      qemu::removeVmStateFile(config.vmStateDir, id);
      continue;
    }
    if (!proc) {
      if (proc.status().code() == StatusCode::kNotFound) {
        const std::string log = qemu::tailOf(r.logPath, 200);
        loseRecord(r, proc.status().message() + (log.empty() ? "" : " (its log: " + log + ")"), 0);
      } else {
        // Alive but silent: not killed (it may be a guest on a starved host), not listed (it
        // cannot be driven); its state file stays, and poll() tries it again (retrySilent).
        const std::string why = proc.status().message() + "; left running, not listed";
        spdlog::error("qemu: vm {} could not be re-attached: {}", id, why);
        lost_.push_back({id, r.info.reservationId, r.info.state, why, 0});
        silent_.push_back({std::move(r), why});
      }
      continue;
    }
    attached += attach(r, std::move(*proc), 0) ? 1 : 0;
  }
  if (!dir.records.empty() || !dir.errors.empty()) {
    spdlog::info(
        "qemu: re-attached {} of {} guests in {:.1f} ms", attached,
        dir.records.size() + dir.errors.size(),
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count());
  }
}

void QemuHypervisor::loseRecord(const qemu::VmStateRecord& r, const std::string& why,
                                TimeNs lostAtNs) {
  const std::string& id = r.info.id;
  spdlog::warn("qemu: vm {} was lost while no agent watched it: {}", id, why);
  lost_.push_back({id, r.info.reservationId, r.info.state, why, lostAtNs});
  qemu::removeVmStateFile(host_.config.vmStateDir, id);
  // Its disk stays: lost is not destroyed (on shared storage it may be another host's VM's now;
  // otherwise it is what the guest wrote, for a person to recover).
  if (!r.diskPath.empty()) spdlog::warn("qemu: vm {}'s disk {} is kept", id, r.diskPath);
}

bool QemuHypervisor::attach(qemu::VmStateRecord& r, qemu::QemuProcess proc, TimeNs lostAtNs) {
  const qemu::QemuConfig& config = host_.config;
  const std::string id = r.info.id;
  proc.serialPath = r.serialPath;
  proc.logPath = r.logPath;
  QemuVm vm;
  vm.info = r.info;
  vm.info.nonzeroMemoryBytes = vm.info.memoryBytes;  // until measured again
  vm.diskPath = r.diskPath;
  vm.incomingPort = r.incomingPort;
  vm.keepPaused = r.keepPaused;
  vm.sshForwardPort = r.sshForwardPort;
  if (r.cloneHandle) {
    VmHandle handle = *r.cloneHandle;
    handle.host = host_.info.name;
    setCloneHandle(vm, handle);
  }
  vm.proc = std::move(proc);
  QmpClient& client = *vm.proc.qmp;
  std::string migrateStatus;
  if (r.migration) {
    auto q = qemu::queryMigrate(client);
    migrateStatus = q ? q->status : "";
  }
  const qemu::ReattachPlan plan = qemu::planReattach(r, runStateOf(client), migrateStatus);
  using Action = qemu::ReattachPlan::Action;
  vm.info.state = plan.state;
  if (plan.action == Action::kLose) {
    QemuHost::killProcess(vm.proc);
    loseRecord(r, plan.reason, lostAtNs);
    return false;
  }
  if (plan.action == Action::kFailMigration) {
    // Stopped here, the guest stays; its command gets the failure (vrmd then aborts the
    // destination, as for any failed move).
    const auto& m = *r.migration;
    auto q = qemu::queryMigrate(client);
    if (q && !q->over() && q->status != "none") {
      (void)client.execute("migrate_cancel", {}, kQmpTimeout);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      auto now = qemu::queryMigrate(client);
      if (!now || now->over() || now->status == "none") break;
      std::this_thread::sleep_for(milliseconds(10));
    }
    if (m.mode == MigrationMode::kSuspendCopyResume) {
      ::unlink((config.stageDir + "/" + id + ".state").c_str());
    } else if (m.mode == MigrationMode::kPark) {
      ::unlink((config.parkDir + "/" + id + ".state").c_str());
    }
    if (m.wasRunning && runStateOf(client) != "running") {
      (void)client.execute("cont", {}, kQmpTimeout);
    }
    const std::string why =
        std::string(moveModeName(m.mode)) + " of vm '" + id + "' to '" + m.destinationHost +
        "' was in flight when the agent stopped: " + plan.reason + "; the vm stays on " +
        host_.info.name + ", " + vmStateName(vm.info.state);
    spdlog::warn("qemu: operation {}: {}", m.opId, why);
    immediate_.push_back(backend::completedEvent(m.opId, Status::unavailable(why)));
  } else if (plan.action == Action::kFollowMigration) {
    const auto& m = *r.migration;
    spdlog::info(
        "qemu: vm {}: live migration (operation {}) to '{}' ran on while no agent "
        "watched (QEMU: {}): followed to its end",
        id, m.opId, m.destinationHost, migrateStatus);
    ops_.emplace(m.opId, qemu::LiveMigration::resume(host_, vm, m));
  } else if (plan.action == Action::kCheckReadiness) {
    spdlog::info("qemu: vm {}: clone (operation {}) was booting: its readiness is checked again",
                 id, r.clone->opId);
    ops_.emplace(r.clone->opId, qemu::CloneOperation::resume(r.clone->opId, vm, r.clone->startNs));
  }
  spdlog::info("qemu: re-attached vm {} (pid {}, {})", id, vm.proc.pid, vmStateName(vm.info.state));
  host_.vms.add(std::move(vm));
  return true;
}

void QemuHypervisor::retrySilent(TimeNs now) {
  if (silent_.empty()) return;
  if (nextSilentRetryNs_ == 0) nextSilentRetryNs_ = now + kSilentRetryIntervalNs;
  if (now < nextSilentRetryNs_) return;
  nextSilentRetryNs_ = now + kSilentRetryIntervalNs;
  for (auto it = silent_.begin(); it != silent_.end();) {
    // Short: the agent's loop waits for it.
    auto proc = QemuHost::adopt(it->record.pid, it->record.qmpPath, kSilentRetryQmpTimeout);
    if (!proc && proc.status().code() != StatusCode::kNotFound) {
      ++it;  // still silent
      continue;
    }
    Silent silent = std::move(*it);
    it = silent_.erase(it);
    const std::string id = silent.record.info.id;
    // No longer "left running, not listed": what follows says what it is now.
    lost_.erase(std::remove_if(
                    lost_.begin(), lost_.end(),
                    [&](const LostVm& l) { return l.vmId == id && l.reason == silent.lostReason; }),
                lost_.end());
    if (!proc) {
      loseRecord(silent.record, proc.status().message(), now);
    } else if (host_.vms.contains(id)) {
      // Another guest of that id came since (vrmd gave this one up): this QEMU is nobody's to
      // drive, and reporting it lost would speak for the other. Left running, for a person.
      spdlog::error(
          "qemu: vm {}: its qemu (pid {}) answers again, but another vm of that id "
          "runs here now; left running, not listed, not tried again",
          id, silent.record.pid);
    } else if (attach(silent.record, std::move(*proc), now)) {
      spdlog::info("qemu: vm {} answers again: listed", id);
    }
  }
}

void QemuHypervisor::persist() {
  const std::string& dir = host_.config.vmStateDir;
  for (auto& [id, vm] : host_.vms) {
    if (vm.proc.pid <= 0 || vm.info.state == VmState::kParked) {
      if (!vm.savedRecord.empty()) qemu::removeVmStateFile(dir, id);
      vm.savedRecord.clear();
      continue;
    }
    qemu::VmStateRecord r = recordOf(vm);
    for (const auto& [opId, op] : ops_) {
      if (op->vmId() != id) continue;
      if (!r.migration) r.migration = op->outgoing();
      if (!r.clone) r.clone = op->cloning();
    }
    std::string text = qemu::encodeVmState(r);
    if (text == vm.savedRecord) continue;
    if (Status s = qemu::writeVmStateFile(dir, r); !s) {
      spdlog::warn("qemu: vm {} would not be re-attached after a restart: {}", id, s.message());
      continue;
    }
    vm.savedRecord = std::move(text);
    persisted_.insert(id);
  }
  for (auto it = persisted_.begin(); it != persisted_.end();) {
    const QemuVm* vm = host_.vms.find(*it);
    if (vm && !vm->savedRecord.empty()) {
      ++it;
      continue;
    }
    qemu::removeVmStateFile(dir, *it);
    it = persisted_.erase(it);
  }
}

std::string QemuHypervisor::migrationEndpoint() const {
  return "tcp:" + host_.config.migrationAddress;
}

std::vector<VmInfo> QemuHypervisor::inventory() const { return host_.vms.inventory(); }

bool QemuHypervisor::unparking(const std::string& vmId) const {
  return std::any_of(ops_.begin(), ops_.end(), [&](const auto& op) {
    return op.second->vmId() == vmId && op.second->unparks();
  });
}

template <class Op>
Status QemuHypervisor::track(Result<std::unique_ptr<Op>> started) {
  if (!started) return started.status();
  if (std::unique_ptr<Op> op = std::move(started).value()) {
    const OperationId id = op->id();
    ops_.emplace(id, std::move(op));
  }
  return Status::ok();
}

Result<QemuVm*> QemuHypervisor::idleVm(OperationId id, const std::string& vmId) {
  QemuVm* vm = host_.vms.find(vmId);
  if (!vm) return host_.vms.missing(vmId);
  if (vm->info.state != VmState::kRunning && vm->info.state != VmState::kSuspended) {
    return backend::busy(vm->info);
  }
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  return vm;
}

Result<std::string> QemuHypervisor::prepareIncoming(const VmInfo& info) {
  const ScopeExit persisted([this] { persist(); });
  const qemu::QemuConfig& config = host_.config;
  if (info.id.empty()) return Status::invalid("incoming vm has no id");
  if (info.memoryBytes == 0 || info.cpuCores == 0) {
    return Status::invalid("incoming vm '" + info.id + "' needs positive memory and cpu cores");
  }
  if (Status s = host_.vms.checkAbsent(info.id); !s) return s;
  if (Status s = host_.vms.checkRoom(host_.info, info.cpuCores, info.memoryBytes); !s) return s;
  QemuVm vm;
  vm.info = info;
  vm.info.state = VmState::kIncoming;
  vm.keepPaused = info.state == VmState::kSuspended;
  if (vm.info.templateName.empty()) vm.info.templateName = config.initialTemplate;
  if (config.localDiskStorage) {
    const auto t = config.templates.find(vm.info.templateName);
    if (t != config.templates.end() && !t->second.image.empty()) {
      return Status::invalid("incoming vm '" + info.id + "' of image template '" + t->first +
                             "' cannot come to host '" + host_.info.name +
                             "' (disk-storage=local): only data disks are copied; its qcow2 "
                             "overlay needs disk-dir on shared storage");
    }
    vm.diskFromMirror = t != config.templates.end() && t->second.dataDiskBytes > 0;
  }
  auto ours = [&](int p) {
    for (const auto& [id, other] : host_.vms) {
      if (other.incomingPort == p || other.diskExportPort == p ||
          (other.receiver && other.receiver->port() == p)) {
        return true;
      }
    }
    return false;
  };
  // One port for QEMU's stream (live), one for a staged state (suspend-copy-resume).
  int port = 0;
  for (int p = config.firstPort; p <= config.lastPort && port == 0; ++p) {
    if (!ours(p) && qemu::portFree(config.migrationAddress, p)) port = p;
  }
  if (qemu::stageableName(info.id)) {
    const std::string path = config.stageDir + "/" + info.id + ".incoming.state";
    for (int p = port + 1; p <= config.lastPort && port != 0 && !vm.receiver; ++p) {
      if (ours(p)) continue;
      auto receiver = StateReceiver::listen(config.migrationAddress, p, path, info.id,
                                            milliseconds(config.migrationTimeoutNs / kNsPerMs));
      if (receiver) vm.receiver = std::move(receiver).value();
    }
  }
  // A third for the NBD export of a disk to be copied (disk-storage=local).
  const int after = vm.receiver ? vm.receiver->port() : port;
  for (int p = after + 1;
       p <= config.lastPort && port != 0 && vm.diskFromMirror && vm.diskExportPort == 0; ++p) {
    if (!ours(p) && qemu::portFree(config.migrationAddress, p)) vm.diskExportPort = p;
  }
  if (port == 0 || (!vm.receiver && qemu::stageableName(info.id)) ||
      (vm.diskFromMirror && vm.diskExportPort == 0)) {
    return Status::rejected("no free migration ports on host '" + host_.info.name + "' in " +
                            std::to_string(config.firstPort) + "-" +
                            std::to_string(config.lastPort));
  }
  // A disk made here for the mirror is this host's: gone again when the VM does not come.
  auto dropDisk = [&] {
    if (vm.diskFromMirror && !vm.diskPath.empty()) ::unlink(vm.diskPath.c_str());
  };
  if (Status s = host_.launch(vm, "defer"); !s) {
    vm.receiver.reset();
    dropDisk();
    return s;
  }
  std::string endpoint = "tcp:" + config.migrationAddress + ":" + std::to_string(port);
  auto r = vm.proc.qmp->execute("migrate-incoming", {{"uri", endpoint}}, kQmpTimeout);
  if (!r) {
    QemuHost::kill(vm);
    dropDisk();
    return Status::internal("migrate-incoming on host '" + host_.info.name +
                            "': " + r.status().message());
  }
  if (vm.diskFromMirror) {
    if (Status s = qemu::startDiskExport(*vm.proc.qmp, config.migrationAddress, vm.diskExportPort);
        !s) {
      QemuHost::kill(vm);
      dropDisk();
      return Status::internal("incoming vm '" + info.id + "' on host '" + host_.info.name +
                              "': export of its disk: " + s.message());
    }
  }
  vm.incomingPort = port;
  if (vm.receiver) {
    endpoint += ";state=tcp:" + config.migrationAddress + ":" + std::to_string(vm.receiver->port());
  }
  if (vm.diskFromMirror) {
    endpoint += ";disk=tcp:" + config.migrationAddress + ":" + std::to_string(vm.diskExportPort);
  }
  host_.vms.add(std::move(vm));
  return endpoint;
}

Status QemuHypervisor::finishIncoming(const std::string& vmId, bool commit) {
  const ScopeExit persisted([this] { persist(); });
  QemuVm* vm = host_.vms.find(vmId);
  if (!vm) return host_.vms.missing(vmId);
  if (vm->info.state != VmState::kIncoming || unparking(vmId)) {
    return Status::rejected("vm '" + vmId + "' is not incoming (" +
                            (unparking(vmId) ? "unparking" : vmStateName(vm->info.state)) + ")");
  }
  if (!commit) {
    QemuHost::kill(*vm);
    if (vm->diskFromMirror && !vm->diskPath.empty()) ::unlink(vm->diskPath.c_str());
    host_.vms.erase(vmId);
    return Status::ok();
  }
  if (!vm->proc.qmp) return Status::internal("qemu of incoming vm '" + vmId + "' is gone");
  if (vm->receiver && vm->receiver->phase() != StateReceiver::Phase::kListening &&
      vm->receiver->phase() != StateReceiver::Phase::kFinished) {
    return Status::rejected("incoming vm '" + vmId + "' has not restored its staged state yet");
  }
  // The source reports completion a moment before the destination has loaded the last bytes.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string status;
  for (;;) {
    auto r = vm->proc.qmp->execute("query-status", {}, kQmpTimeout);
    if (!r) return Status::internal("incoming vm '" + vmId + "': " + r.status().message());
    status = r->value("status", "");
    if (status != "inmigrate") break;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::rejected("incoming vm '" + vmId + "' has not received its state yet");
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  if (vm->diskExportPort != 0) {
    // The source's mirror completed before its switch-over: nobody writes through it any more.
    if (Status s = qemu::stopDiskExport(*vm->proc.qmp); !s) {
      return Status::internal("incoming vm '" + vmId + "': " + s.message());
    }
    vm->diskExportPort = 0;
  }
  vm->diskFromMirror = false;
  if (status != "running" && !vm->keepPaused) {
    if (status != "paused" && status != "prelaunch" && status != "postmigrate") {
      return Status::internal("incoming vm '" + vmId + "' is in state " + status);
    }
    auto r = vm->proc.qmp->execute("cont", {}, kQmpTimeout);
    if (!r) return Status::internal("cont of incoming vm '" + vmId + "': " + r.status().message());
  }
  vm->info.state = vm->keepPaused ? VmState::kSuspended : VmState::kRunning;
  vm->incomingPort = 0;
  vm->receiver.reset();
  vm->nextDirtyRateNs = 0;
  return Status::ok();
}

Status QemuHypervisor::startMigration(OperationId id, const MigrationSpec& spec) {
  const ScopeExit persisted([this] { persist(); });
  if (auto op = ops_.find(id);
      op != ops_.end() && op->second->vmId() == spec.vmId && op->second->outgoing()) {
    // This migration, in flight (followed since an agent restart, when vrmd repeats its
    // command): it completes once, at the cap the command carries from now on.
    if (auto applied = op->second->setBandwidth(host_, spec.maxBandwidthBytesPerSec);
        applied && !*applied) {
      spdlog::warn("qemu: vm {}: the repeated migration's cap: {}", spec.vmId, applied->message());
    }
    return Status::ok();
  }
  auto found = idleVm(id, spec.vmId);
  if (!found) return found.status();
  QemuVm& vm = **found;
  if (spec.destinationHost.empty()) return Status::invalid("migration needs a destination host");
  if (spec.destinationHost == host_.info.name) {
    return Status::invalid("vm '" + spec.vmId + "' cannot migrate to its own host");
  }
  if (spec.maxBandwidthBytesPerSec < 0 || !std::isfinite(spec.maxBandwidthBytesPerSec)) {
    return Status::invalid("max bandwidth must be a finite rate >= 0");
  }
  qemu::IncomingEndpoint dest;
  if (!qemu::parseIncomingEndpoint(spec.destinationEndpoint, dest)) {
    return Status::invalid("qemu migrates to tcp:HOST:PORT[;state=tcp:HOST:PORT] endpoints, got '" +
                           spec.destinationEndpoint + "'");
  }
  if (spec.mode == MigrationMode::kSuspendCopyResume) {
    if (dest.statePort == 0) {
      return Status::invalid("destination endpoint '" + spec.destinationEndpoint +
                             "' takes no staged state (suspend-copy-resume needs state=tcp:...)");
    }
    if (!qemu::stageableName(vm.info.id)) {
      return Status::invalid("vm id '" + vm.info.id +
                             "' cannot name a staged file (letters, digits, - _ . only)");
    }
  }
  if (!vm.proc.qmp) return Status::internal("qemu of vm '" + vm.info.id + "' is gone");
  if (spec.mode == MigrationMode::kLive) {
    return track(qemu::LiveMigration::start(host_, vm, id, spec, dest));
  }
  return track(qemu::SuspendCopyResume::start(host_, vm, id, spec, dest));
}

Status QemuHypervisor::setMigrationBandwidth(const std::string& vmId, double maxBytesPerSec) {
  if (maxBytesPerSec < 0 || !std::isfinite(maxBytesPerSec)) {
    return Status::invalid("max bandwidth must be a finite rate >= 0");
  }
  if (!host_.vms.contains(vmId)) return host_.vms.missing(vmId);
  for (auto& [id, op] : ops_) {
    if (op->vmId() != vmId) continue;
    if (auto applied = op->setBandwidth(host_, maxBytesPerSec)) return *applied;
  }
  return Status::rejected("vm '" + vmId + "' is not migrating out");
}

Status QemuHypervisor::suspend(const std::string& vmId) {
  const ScopeExit persisted([this] { persist(); });
  QemuVm* vm = host_.vms.find(vmId);
  if (!vm) return host_.vms.missing(vmId);
  if (vm->info.state == VmState::kSuspended) return Status::ok();
  if (vm->info.state != VmState::kRunning) return backend::busy(vm->info);
  if (!vm->proc.qmp) return Status::internal("qemu of vm '" + vmId + "' is gone");
  if (auto r = vm->proc.qmp->execute("stop", {}, kQmpTimeout); !r) return r.status();
  vm->info.state = VmState::kSuspended;
  return Status::ok();
}

Status QemuHypervisor::resume(const std::string& vmId) {
  const ScopeExit persisted([this] { persist(); });
  QemuVm* vm = host_.vms.find(vmId);
  if (!vm) return host_.vms.missing(vmId);
  if (vm->info.state == VmState::kRunning) return Status::ok();
  if (vm->info.state != VmState::kSuspended) return backend::busy(vm->info);
  if (!vm->proc.qmp) return Status::internal("qemu of vm '" + vmId + "' is gone");
  if (auto r = vm->proc.qmp->execute("cont", {}, kQmpTimeout); !r) return r.status();
  vm->info.state = VmState::kRunning;
  return Status::ok();
}

Status QemuHypervisor::startClone(OperationId id, const CloneSpec& spec) {
  const ScopeExit persisted([this] { persist(); });
  if (auto op = ops_.find(id);
      op != ops_.end() && op->second->vmId() == spec.vmId && op->second->cloning()) {
    return Status::ok();  // this clone, booting (also since an agent restart): it completes once
  }
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  return track(qemu::CloneOperation::start(host_, id, spec, immediate_));
}

Status QemuHypervisor::startPark(OperationId id, const std::string& vmId) {
  const ScopeExit persisted([this] { persist(); });
  QemuVm* vm = host_.vms.find(vmId);
  if (!vm) return host_.vms.missing(vmId);
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  if (vm->info.state == VmState::kParked) {
    immediate_.push_back(backend::completedEvent(id));  // a retried park
    return Status::ok();
  }
  auto found = idleVm(id, vmId);
  if (!found) return found.status();
  if (!qemu::stageableName(vmId)) {
    return Status::invalid("vm id '" + vmId +
                           "' cannot name a state file (letters, digits, - _ .)");
  }
  if (!vm->proc.qmp) return Status::internal("qemu of vm '" + vmId + "' is gone");
  return track(qemu::ParkOperation::start(host_, *vm, id));
}

Status QemuHypervisor::startUnpark(OperationId id, const std::string& vmId) {
  const ScopeExit persisted([this] { persist(); });
  QemuVm* vm = host_.vms.find(vmId);
  if (!vm) return host_.vms.missing(vmId);
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  if (vm->info.state != VmState::kParked) {
    if (vm->info.state != VmState::kRunning && vm->info.state != VmState::kSuspended) {
      return backend::busy(vm->info);
    }
    immediate_.push_back(backend::completedEvent(id));  // running already: a retried unpark
    return Status::ok();
  }
  return track(qemu::UnparkOperation::start(host_, *vm, id));
}

Status QemuHypervisor::destroy(const std::string& vmId) {
  const ScopeExit persisted([this] { persist(); });
  QemuVm* vm = host_.vms.find(vmId);
  if (!vm) return host_.vms.missing(vmId);
  if (vm->info.state == VmState::kMigratingOut) return backend::busy(vmId, "migrating-out");
  if (unparking(vmId)) return backend::busy(vmId, "unparking");
  if (vm->info.state == VmState::kParked) qemu::removeParkFiles(host_.config, vm->info);
  for (auto op = ops_.begin(); op != ops_.end(); ++op) {
    if (op->second->vmId() != vmId) continue;
    immediate_.push_back(backend::completedEvent(
        op->first, Status::rejected("vm '" + vmId + "' was destroyed before its clone finished")));
    ops_.erase(op);
    break;
  }
  QemuHost::kill(*vm);
  // An incoming VM's disk (shared storage, disk-dir) is its source's until it is committed,
  // unless it was made here for the source's mirror.
  if (!vm->diskPath.empty() && (vm->info.state != VmState::kIncoming || vm->diskFromMirror)) {
    ::unlink(vm->diskPath.c_str());
  }
  host_.vms.erase(vmId);
  return Status::ok();
}

std::vector<OperationEvent> QemuHypervisor::poll(TimeNs now) {
  const ScopeExit persisted([this] { persist(); });
  lastPollNs_ = std::max(lastPollNs_, now);
  retrySilent(now);
  std::vector<OperationEvent> events = std::move(immediate_);
  immediate_.clear();
  const std::vector<std::string> dead = host_.reap();
  std::map<std::string, VmInfo> before;  // the dead ones as listed until now
  for (const std::string& id : dead) {
    if (const QemuVm* vm = host_.vms.find(id)) before.emplace(id, vm->info);
  }
  for (auto it = ops_.begin(); it != ops_.end();) {
    it = it->second->poll(host_, now, events) ? ops_.erase(it) : std::next(it);
  }
  qemu::pollIncomingRestores(host_, now);
  // VMs whose QEMU exited with no operation on them leave the inventory too.
  for (const std::string& id : dead) {
    QemuVm* vm = host_.vms.find(id);
    if (vm && !vm->proc.qmp && vm->info.state != VmState::kParked) {
      // Lost, not destroyed: its disk stays (a guest that rebooted, -no-reboot, keeps what it
      // wrote; an incoming VM's is its source's).
      if (!vm->diskPath.empty() && vm->info.state != VmState::kIncoming) {
        spdlog::warn("qemu: vm {}'s disk {} is kept", id, vm->diskPath);
      }
      host_.vms.erase(id);
    }
    // Gone from the host without a verb that removes it (an operation on it failed with the
    // QEMU's exit, or none was running): lost, and said so.
    auto b = before.find(id);
    if (host_.vms.contains(id) || b == before.end() || b->second.state == VmState::kIncoming) {
      continue;
    }
    const std::string why = "its qemu " + host_.exitReason(id, "exited");
    spdlog::error("qemu: vm {} ({}) on {} is lost: {}", id, vmStateName(b->second.state),
                  host_.info.name, why);
    lost_.push_back({id, b->second.reservationId, b->second.state, why, now});
  }
  for (auto& [id, vm] : host_.vms) {
    if (vm.info.state == VmState::kRunning) host_.pollDirtyRate(vm, now);
    if (vm.info.state != VmState::kIncoming && now >= vm.nextResidentNs) {
      QemuHost::updateResident(vm);
      vm.nextResidentNs = now + kResidentIntervalNs;
    }
  }
  return events;
}

TimeNs QemuHypervisor::nextEventTime() const {
  if (!immediate_.empty()) return lastPollNs_;
  for (const auto& [id, op] : ops_) {
    if (op->wantsFastPoll()) return lastPollNs_ + kFastPollIntervalNs;
  }
  for (const auto& [id, vm] : host_.vms) {
    if (vm.receiver && vm.receiver->phase() != StateReceiver::Phase::kFinished) {
      return lastPollNs_ + kFastPollIntervalNs;
    }
  }
  if (!ops_.empty()) return lastPollNs_ + kPollIntervalNs;
  TimeNs next = kTimeInfinity;
  if (!silent_.empty()) {
    next = nextSilentRetryNs_ ? nextSilentRetryNs_ : lastPollNs_ + kSilentRetryIntervalNs;
  }
  for (const auto& [id, vm] : host_.vms) {
    next = std::min(next, lastPollNs_ + kIdlePollIntervalNs);
    if (vm.dirtyRatePending) next = std::min(next, vm.dirtyRateDueNs);
  }
  return next;
}

Result<std::string> QemuHypervisor::consoleLogPath(const std::string& vmId) const {
  const QemuVm* vm = host_.vms.find(vmId);
  if (!vm) return Status::notFound("vm '" + vmId + "' is not on " + host_.info.name);
  return vm->proc.serialPath;
}

Result<pid_t> QemuHypervisor::qemuPid(const std::string& vmId) const {
  const QemuVm* vm = host_.vms.find(vmId);
  if (!vm || vm->proc.pid <= 0) {
    return Status::notFound("vm '" + vmId + "' has no qemu on " + host_.info.name);
  }
  return vm->proc.pid;
}

Result<nlohmann::json> QemuHypervisor::qmp(const std::string& vmId, const std::string& command,
                                           const nlohmann::json& arguments) {
  QemuVm* vm = host_.vms.find(vmId);
  if (!vm || !vm->proc.qmp) {
    return Status::notFound("vm '" + vmId + "' has no qemu on " + host_.info.name);
  }
  return vm->proc.qmp->execute(command, arguments, kQmpTimeout);
}

}  // namespace vrm::vmscheduler
