#include "qemu/live_migration.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::qemu {

double migrationBandwidth(const HostInfo& host, double maxBytesPerSec) {
  double bandwidth =
      host.nicBandwidthBytesPerSec > 0 ? host.nicBandwidthBytesPerSec : kUnlimitedBytesPerSec;
  if (maxBytesPerSec > 0) bandwidth = std::min(bandwidth, maxBytesPerSec);
  return bandwidth;
}

namespace {

// The migration parameters of `spec` at `bandwidth`.
nlohmann::json migrateParameters(const MigrationSpec& spec, double bandwidth) {
  nlohmann::json params = {{"max-bandwidth", static_cast<std::int64_t>(bandwidth)}};
  if (spec.downtimeLimitNs > 0) {
    params["downtime-limit"] = std::max<std::int64_t>(1, spec.downtimeLimitNs / kNsPerMs);
  }
  return params;
}

// The mirror's speed for a migration `bandwidth`: 0 (QEMU's unlimited) for no cap.
double mirrorSpeed(double bandwidth) { return bandwidth >= kUnlimitedBytesPerSec ? 0 : bandwidth; }

// A disk mirror pauses the memory migration before its switch-over (the mirror completes there,
// the guest stopped); without one it must not pause (a capability outlives a migration).
Status setPauseBeforeSwitchover(QmpClient& qmp, const std::string& vmId, bool on) {
  auto r =
      qmp.execute("migrate-set-capabilities",
                  {{"capabilities", {{{"capability", "pause-before-switchover"}, {"state", on}}}}},
                  kQmpTimeout);
  if (!r) return Status::internal("vm '" + vmId + "': " + r.status().message());
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<LiveMigration>> LiveMigration::start(QemuHost& host, QemuVm& vm,
                                                            OperationId id,
                                                            const MigrationSpec& spec,
                                                            const IncomingEndpoint& destination) {
  const double bandwidth = migrationBandwidth(host.info, spec.maxBandwidthBytesPerSec);
  MigrationObservation obs =
      backend::observationOf(vm.info, host.info.name, spec.destinationHost, spec.mode);
  obs.bandwidthBytesPerSec = bandwidth;
  QmpClient& qmp = *vm.proc.qmp;
  const bool copiesDisk = destination.diskPort != 0;
  if (copiesDisk && vm.diskPath.empty()) {
    return Status::invalid("destination endpoint offers a disk copy, but vm '" + vm.info.id +
                           "' has no data disk");
  }
  if (Status s = setPauseBeforeSwitchover(qmp, vm.info.id, copiesDisk); !s) return s;
  std::unique_ptr<LiveMigration> op(new LiveMigration(id, vm.info, std::move(obs), spec));
  op->destination_ = destination;
  if (copiesDisk) {
    auto mirror = DiskMirror::start(qmp, destination.diskHost, destination.diskPort,
                                    mirrorSpeed(bandwidth), spec.diskWriteLimitBytesPerSec);
    if (!mirror) {
      return Status::unavailable("vm '" + vm.info.id + "': disk copy to " + spec.destinationHost +
                                 ": " + mirror.status().message());
    }
    op->mirror_ = std::move(*mirror);
    op->memoryStarted_ = false;
  } else if (Status s = startQemuMigrate(qmp, vm.info.id, migrateParameters(spec, bandwidth),
                                         destination.qemu, /*resumeOnFailure=*/false);
             !s) {
    return s;
  }
  vm.info.state = VmState::kMigratingOut;
  return op;
}

std::unique_ptr<LiveMigration> LiveMigration::resume(const QemuHost& host, const QemuVm& vm,
                                                     const VmStateRecord::Migration& m) {
  VmInfo before = vm.info;
  before.state = m.wasRunning ? VmState::kRunning : VmState::kSuspended;
  MigrationObservation obs =
      backend::observationOf(before, host.info.name, m.destinationHost, MigrationMode::kLive);
  obs.startNs = m.startNs;
  MigrationSpec spec;
  spec.vmId = vm.info.id;
  spec.destinationHost = m.destinationHost;
  spec.mode = MigrationMode::kLive;
  std::unique_ptr<LiveMigration> op(new LiveMigration(m.opId, before, std::move(obs), spec));
  op->resumed_ = true;
  return op;
}

std::optional<Status> LiveMigration::setBandwidth(QemuHost& host, double maxBytesPerSec) {
  spec_.maxBandwidthBytesPerSec = maxBytesPerSec;
  const double bandwidth = migrationBandwidth(host.info, maxBytesPerSec);
  QemuVm* vm = host.vms.find(vmId());
  if (!vm || !vm->proc.qmp) return Status::internal("qemu of vm '" + vmId() + "' is gone");
  if (mirror_) {
    if (Status s = mirror_->setSpeed(*vm->proc.qmp, mirrorSpeed(bandwidth)); !s) {
      return Status::internal("vm '" + vmId() + "': " + s.message());
    }
    // Not migrating yet: the memory migration takes the new cap when it starts.
    if (!memoryStarted_) return Status::ok();
  }
  // QEMU applies max-bandwidth to a migration in progress (the rate limiter of its stream).
  if (auto r = vm->proc.qmp->execute("migrate-set-parameters",
                                     {{"max-bandwidth", static_cast<std::int64_t>(bandwidth)}},
                                     kQmpTimeout);
      !r) {
    return Status::internal("vm '" + vmId() + "': " + r.status().message());
  }
  return Status::ok();
}

std::string LiveMigration::timedOut(const QemuHost& host, TimeNs now, int rounds) const {
  // From the migration's start, also when an earlier agent started it.
  const TimeNs elapsed = now - observation_.startNs;
  if (host.config.maxRounds > 0 && rounds > host.config.maxRounds) {
    return std::to_string(rounds) + " rounds";
  }
  if (host.config.migrationTimeoutNs > 0 && elapsed > host.config.migrationTimeoutNs) {
    return formatDuration(elapsed);
  }
  return "";
}

void LiveMigration::failWithMirror(QemuVm& vm, Status status, std::vector<OperationEvent>& out) {
  if (mirror_) mirror_->abort(*vm.proc.qmp);
  fail(vm, std::move(status), out);
}

bool LiveMigration::stepDisk(QemuHost& host, QemuVm& vm, TimeNs now,
                             std::vector<OperationEvent>& out) {
  auto p = mirror_->poll(*vm.proc.qmp);
  if (!p) return false;
  const std::string what = "disk copy of vm '" + vmId() + "' to " + spec_.destinationHost;
  if (p->state == DiskMirror::State::kFailed || p->state == DiskMirror::State::kCompleted) {
    // Concluded before it was ready: an error (the export went away), or nothing to mirror.
    failWithMirror(vm, Status::unavailable(what + " failed: " + p->error), out);
    return true;
  }
  if (const std::string why = timedOut(host, now, 0); !why.empty()) {
    failWithMirror(
        vm,
        Status::rejected(what + " did not converge after " + why + " (" +
                         formatBytes(static_cast<double>(p->copiedBytes)) + " of " +
                         formatBytes(static_cast<double>(p->totalBytes)) +
                         " copied): cancelled, the vm keeps running on " + host.info.name),
        out);
    return true;
  }
  if (p->state != DiskMirror::State::kReady) {
    const double fraction =
        p->totalBytes > 0 ? static_cast<double>(p->copiedBytes) / p->totalBytes : 0;
    progress(out, 0.5 * fraction, p->copiedBytes, p->totalBytes, "disk");
    return false;
  }
  const double bandwidth = migrationBandwidth(host.info, spec_.maxBandwidthBytesPerSec);
  if (Status s = startQemuMigrate(*vm.proc.qmp, vmId(), migrateParameters(spec_, bandwidth),
                                  destination_.qemu, /*resumeOnFailure=*/false);
      !s) {
    failWithMirror(vm, s, out);
    return true;
  }
  spdlog::info("qemu: vm {}: disk mirror ready ({} copied) after {}: memory migration starts",
               vmId(), formatBytes(static_cast<double>(p->copiedBytes)),
               formatDuration(now - observation_.startNs));
  memoryStarted_ = true;
  memoryStartNs_ = now;
  return false;
}

void LiveMigration::stepSwitchover(QemuVm& vm, std::vector<OperationEvent>& out) {
  QmpClient& qmp = *vm.proc.qmp;
  auto p = mirror_->poll(qmp);
  if (!p) return;
  if (p->state == DiskMirror::State::kReady) {
    if (Status s = mirror_->complete(qmp); !s) {
      (void)qmp.execute("migrate_cancel", {}, kQmpTimeout);
      failWithMirror(vm, s, out);
    }
    return;
  }
  if (p->state == DiskMirror::State::kFailed) {
    (void)qmp.execute("migrate_cancel", {}, kQmpTimeout);
    failWithMirror(
        vm,
        Status::unavailable("disk copy of vm '" + vmId() + "' to " + spec_.destinationHost +
                            " failed at the switch-over: " + p->error),
        out);
    return;
  }
  if (p->state != DiskMirror::State::kCompleted) return;  // the final sync runs
  diskCopiedBytes_ = p->copiedBytes;
  mirror_->release(qmp);
  if (auto r = qmp.execute("migrate-continue", {{"state", "pre-switchover"}}, kQmpTimeout); !r) {
    (void)qmp.execute("migrate_cancel", {}, kQmpTimeout);
    fail(vm, Status::internal("vm '" + vmId() + "': migrate-continue: " + r.status().message()),
         out);
  }
}

bool LiveMigration::step(QemuHost& host, QemuVm& vm, TimeNs now, std::vector<OperationEvent>& out) {
  if (!memoryStarted_) return stepDisk(host, vm, now, out);
  auto m = queryMigrate(*vm.proc.qmp);
  if (!m) return false;
  const nlohmann::json& ram = m->ram;
  if (m->status == "pre-switchover" && mirror_) {
    stepSwitchover(vm, out);
    return vm.info.state != VmState::kMigratingOut;
  }
  if (m->status == "completed") {
    MigrationObservation obs = observation_;
    const double totalMs = jsonNumber(m->answer, "total-time");
    const TimeNs memoryStartNs = mirror_ ? memoryStartNs_ : obs.startNs;
    obs.endNs = memoryStartNs + static_cast<TimeNs>(totalMs * kNsPerMs);
    obs.setupNs = static_cast<TimeNs>(jsonNumber(m->answer, "setup-time") * kNsPerMs);
    obs.downtimeNs = static_cast<TimeNs>(jsonNumber(m->answer, "downtime") * kNsPerMs);
    obs.transferredBytes =
        static_cast<std::uint64_t>(jsonNumber(ram, "transferred")) + diskCopiedBytes_;
    obs.rounds = static_cast<std::uint32_t>(jsonNumber(ram, "dirty-sync-count"));
    // The dirty rate QEMU saw during the migration; the VM's page-sampling figure otherwise.
    if (lastDirtyBytesPerSec_ > 0) obs.dirtyRateBytesPerSec = lastDirtyBytesPerSec_;
    const double copyS = nsToSeconds(obs.endNs - obs.startNs - obs.setupNs);
    if (copyS > 0) obs.bandwidthBytesPerSec = static_cast<double>(obs.transferredBytes) / copyS;
    if (mirror_) {
      // The disk now lives on the destination: this host's copy is stale from here on.
      if (!vm.diskPath.empty()) ::unlink(vm.diskPath.c_str());
      spdlog::info("qemu: vm {} moved to {} with its disk: {} of disk, {} of memory in {}", vmId(),
                   spec_.destinationHost, formatBytes(static_cast<double>(diskCopiedBytes_)),
                   formatBytes(jsonNumber(ram, "transferred")),
                   formatDuration(obs.endNs - obs.startNs));
    }
    left(host, vm, obs, out);
    return true;
  }
  if (m->failed()) {
    Status why = !cancelReason_.empty()
                     ? Status::rejected(cancelReason_)
                     : Status::unavailable(m->failure("migration of vm '" + vmId() + "' to " +
                                                      spec_.destinationHost));
    failWithMirror(vm, std::move(why), out);
    return true;
  }
  // setup, active, device, pre-switchover, cancelling, ...
  const double total = jsonNumber(ram, "total");
  const double transferred = jsonNumber(ram, "transferred");
  const double remaining = jsonNumber(ram, "remaining");
  if (const double pages = jsonNumber(ram, "dirty-pages-rate"); pages > 0) {
    const double pageSize = jsonNumber(ram, "page-size");
    lastDirtyBytesPerSec_ = pages * (pageSize > 0 ? pageSize : 4096);
  }
  if (cancelReason_.empty()) {
    const std::string why =
        timedOut(host, now, static_cast<int>(jsonNumber(ram, "dirty-sync-count")));
    if (!why.empty()) {
      cancelReason_ = "live migration of vm '" + vmId() + "' did not converge after " + why + " (" +
                      formatBytes(remaining) + " still dirty, dirty rate " +
                      formatBytes(lastDirtyBytesPerSec_) +
                      "/s): cancelled, the vm keeps running on " + host.info.name;
      (void)vm.proc.qmp->execute("migrate_cancel", {}, kQmpTimeout);
      return false;
    }
  }
  double fraction = total > 0 ? std::min(1.0, (total - remaining) / total) : 0;
  if (mirror_) fraction = 0.5 + 0.5 * fraction;  // the disk was the first half
  progress(out, fraction, static_cast<std::uint64_t>(transferred),
           static_cast<std::uint64_t>(total), m->status == "setup" ? "setup" : "copy");
  return false;
}

}  // namespace vrm::vmscheduler::qemu
