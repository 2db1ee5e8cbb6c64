#include "qemu/live_migration.h"

#include <algorithm>

#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::qemu {

double migrationBandwidth(const HostInfo& host, double maxBytesPerSec) {
  double bandwidth =
      host.nicBandwidthBytesPerSec > 0 ? host.nicBandwidthBytesPerSec : kUnlimitedBytesPerSec;
  if (maxBytesPerSec > 0) bandwidth = std::min(bandwidth, maxBytesPerSec);
  return bandwidth;
}

Result<std::unique_ptr<LiveMigration>> LiveMigration::start(QemuHost& host, QemuVm& vm,
                                                            OperationId id,
                                                            const MigrationSpec& spec,
                                                            const IncomingEndpoint& destination) {
  const double bandwidth = migrationBandwidth(host.info, spec.maxBandwidthBytesPerSec);
  nlohmann::json params = {{"max-bandwidth", static_cast<std::int64_t>(bandwidth)}};
  if (spec.downtimeLimitNs > 0) {
    params["downtime-limit"] = std::max<std::int64_t>(1, spec.downtimeLimitNs / kNsPerMs);
  }
  MigrationObservation obs =
      backend::observationOf(vm.info, host.info.name, spec.destinationHost, spec.mode);
  if (Status s = startQemuMigrate(*vm.proc.qmp, vm.info.id, params, destination.qemu,
                                  /*resumeOnFailure=*/false);
      !s) {
    return s;
  }
  obs.bandwidthBytesPerSec = bandwidth;
  std::unique_ptr<LiveMigration> op(new LiveMigration(id, vm.info, std::move(obs), spec));
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
  // QEMU applies max-bandwidth to a migration in progress (the rate limiter of its stream).
  if (auto r = vm->proc.qmp->execute("migrate-set-parameters",
                                     {{"max-bandwidth", static_cast<std::int64_t>(bandwidth)}},
                                     kQmpTimeout);
      !r) {
    return Status::internal("vm '" + vmId() + "': " + r.status().message());
  }
  return Status::ok();
}

bool LiveMigration::step(QemuHost& host, QemuVm& vm, TimeNs now, std::vector<OperationEvent>& out) {
  auto m = queryMigrate(*vm.proc.qmp);
  if (!m) return false;
  const nlohmann::json& ram = m->ram;
  if (m->status == "completed") {
    MigrationObservation obs = observation_;
    const double totalMs = jsonNumber(m->answer, "total-time");
    obs.endNs = obs.startNs + static_cast<TimeNs>(totalMs * kNsPerMs);
    obs.setupNs = static_cast<TimeNs>(jsonNumber(m->answer, "setup-time") * kNsPerMs);
    obs.downtimeNs = static_cast<TimeNs>(jsonNumber(m->answer, "downtime") * kNsPerMs);
    obs.transferredBytes = static_cast<std::uint64_t>(jsonNumber(ram, "transferred"));
    obs.rounds = static_cast<std::uint32_t>(jsonNumber(ram, "dirty-sync-count"));
    // The dirty rate QEMU saw during the migration; the VM's page-sampling figure otherwise.
    if (lastDirtyBytesPerSec_ > 0) obs.dirtyRateBytesPerSec = lastDirtyBytesPerSec_;
    const double copyS = (totalMs - jsonNumber(m->answer, "setup-time")) / 1e3;
    if (copyS > 0) obs.bandwidthBytesPerSec = static_cast<double>(obs.transferredBytes) / copyS;
    left(host, vm, obs, out);
    return true;
  }
  if (m->failed()) {
    if (!cancelReason_.empty()) {
      fail(vm, Status::rejected(cancelReason_), out);
    } else {
      fail(vm,
           Status::unavailable(
               m->failure("migration of vm '" + vmId() + "' to " + spec_.destinationHost)),
           out);
    }
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
    // From the migration's start, also when an earlier agent started it.
    const TimeNs elapsed = now - observation_.startNs;
    const int rounds = static_cast<int>(jsonNumber(ram, "dirty-sync-count"));
    std::string why;
    if (host.config.maxRounds > 0 && rounds > host.config.maxRounds) {
      why = std::to_string(rounds) + " rounds";
    } else if (host.config.migrationTimeoutNs > 0 && elapsed > host.config.migrationTimeoutNs) {
      why = formatDuration(elapsed);
    }
    if (!why.empty()) {
      cancelReason_ = "live migration of vm '" + vmId() + "' did not converge after " + why + " (" +
                      formatBytes(remaining) + " still dirty, dirty rate " +
                      formatBytes(lastDirtyBytesPerSec_) +
                      "/s): cancelled, the vm keeps running on " + host.info.name;
      (void)vm.proc.qmp->execute("migrate_cancel", {}, kQmpTimeout);
      return false;
    }
  }
  const double fraction = total > 0 ? std::min(1.0, (total - remaining) / total) : 0;
  progress(out, fraction, static_cast<std::uint64_t>(transferred),
           static_cast<std::uint64_t>(total), m->status == "setup" ? "setup" : "copy");
  return false;
}

}  // namespace vrm::vmscheduler::qemu
