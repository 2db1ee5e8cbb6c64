#include "qemu/suspend_copy_resume.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "qemu/live_migration.h"
#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::qemu {

using std::chrono::milliseconds;

Result<std::unique_ptr<SuspendCopyResume>> SuspendCopyResume::start(
    QemuHost& host, QemuVm& vm, OperationId id, const MigrationSpec& spec,
    const IncomingEndpoint& destination) {
  QmpClient& qmp = *vm.proc.qmp;
  MigrationObservation obs =
      backend::observationOf(vm.info, host.info.name, spec.destinationHost, spec.mode);
  std::unique_ptr<SuspendCopyResume> op(
      new SuspendCopyResume(id, vm.info, std::move(obs), spec, destination));
  op->statePath_ = host.config.stageDir + "/" + vm.info.id + ".state";
  ::unlink(op->statePath_.c_str());
  op->stoppedAt_ = std::chrono::steady_clock::now();
  const bool wasRunning = vm.info.state == VmState::kRunning;
  if (wasRunning) {
    if (auto r = qmp.execute("stop", {}, kQmpTimeout); !r) return r.status();
  }
  // Saving to the local staging dir is not the network copy: do not throttle it.
  const nlohmann::json params = {
      {"max-bandwidth", static_cast<std::int64_t>(kUnlimitedBytesPerSec)}};
  if (Status s = startQemuMigrate(qmp, vm.info.id, params, "exec:cat > '" + op->statePath_ + "'",
                                  wasRunning);
      !s) {
    ::unlink(op->statePath_.c_str());
    return s;
  }
  op->observation_.bandwidthBytesPerSec =
      migrationBandwidth(host.info, spec.maxBandwidthBytesPerSec);
  vm.info.state = VmState::kMigratingOut;
  return op;
}

std::optional<Status> SuspendCopyResume::setBandwidth(QemuHost& host, double maxBytesPerSec) {
  // The save to the local staging dir is not throttled; the copy over the network is paced at
  // this rate (from now on, if it is under way).
  spec_.maxBandwidthBytesPerSec = maxBytesPerSec;
  const double bandwidth = migrationBandwidth(host.info, maxBytesPerSec);
  observation_.bandwidthBytesPerSec = bandwidth;
  if (phase_ == Phase::kCopy && sender_) {
    sender_->setBytesPerSec(bandwidth >= kUnlimitedBytesPerSec ? 0 : bandwidth);
  }
  return Status::ok();
}

bool SuspendCopyResume::step(QemuHost& host, QemuVm& vm, TimeNs, std::vector<OperationEvent>& out) {
  return phase_ == Phase::kSave ? stepSave(host, vm, out) : stepCopy(host, vm, out);
}

bool SuspendCopyResume::stepSave(QemuHost& host, QemuVm& vm, std::vector<OperationEvent>& out) {
  auto m = queryMigrate(*vm.proc.qmp);
  if (!m) return false;
  if (m->status == "completed") {
    // Save: QEMU's own figure for writing the state, plus making it durable.
    const auto syncStart = std::chrono::steady_clock::now();
    if (Status s = syncFile(statePath_); !s) {
      fail(vm, std::move(s), out);
      return true;
    }
    saveNs_ = static_cast<TimeNs>(jsonNumber(m->answer, "total-time") * kNsPerMs) +
              steadyNsSince(syncStart);
    stateBytes_ = fileSize(statePath_);
    const double bw = observation_.bandwidthBytesPerSec >= kUnlimitedBytesPerSec
                          ? 0
                          : observation_.bandwidthBytesPerSec;
    sender_ = std::make_unique<StateSender>(
        statePath_, stateBytes_, destination_.stateHost, destination_.statePort, vmId(), bw,
        milliseconds(std::max<TimeNs>(host.config.migrationTimeoutNs / kNsPerMs, 1000)));
    phase_ = Phase::kCopy;
    progress(out, 0.1, 0, stateBytes_, "copy");
    return false;
  }
  if (m->failed()) {
    fail(vm,
         Status::unavailable(
             m->failure("migration of vm '" + vmId() + "' to " + spec_.destinationHost)),
         out);
    return true;
  }
  progress(out, 0, static_cast<std::uint64_t>(jsonNumber(m->ram, "transferred")),
           static_cast<std::uint64_t>(jsonNumber(m->ram, "total")), "save");
  return false;
}

bool SuspendCopyResume::stepCopy(QemuHost& host, QemuVm& vm, std::vector<OperationEvent>& out) {
  auto outcome = sender_->outcome();
  if (!outcome) {
    if (sender_->received()) {
      progress(out, 0.9, stateBytes_, stateBytes_, "restore");
    } else {
      const auto sent = sender_->sentBytes();
      progress(
          out,
          0.1 + 0.8 * static_cast<double>(sent) / std::max(1.0, static_cast<double>(stateBytes_)),
          sent, stateBytes_, "copy");
    }
    return false;
  }
  if (!outcome->status) {
    fail(vm,
         Status(outcome->status.code(),
                "suspend-copy-resume of vm '" + vmId() + "' to " + spec_.destinationHost + ": " +
                    outcome->status.message() + "; the vm stays on " + host.info.name),
         out);
    return true;
  }
  MigrationObservation obs = observation_;
  obs.saveNs = saveNs_;
  obs.copyNs = outcome->copy.count();
  obs.restoreNs = outcome->restore.count();
  // Stopped from `stop` until the destination restored; the gaps between the phases (the
  // agents noticing the end of one) count too.
  const TimeNs stoppedNs =
      std::max<TimeNs>(obs.saveNs + obs.copyNs + obs.restoreNs, steadyNsSince(stoppedAt_));
  obs.endNs = obs.startNs + stoppedNs;
  obs.setupNs = obs.saveNs;
  obs.downtimeNs = stoppedNs;
  obs.transferredBytes = stateBytes_;
  obs.rounds = 1;
  if (obs.copyNs > 0) {
    obs.bandwidthBytesPerSec = static_cast<double>(stateBytes_) * 1e9 / obs.copyNs;
  }
  left(host, vm, obs, out);
  return true;
}

void pollIncomingRestores(QemuHost& host, TimeNs now) {
  const TimeNs timeout = host.config.migrationTimeoutNs;
  std::vector<std::string> lost;
  for (auto& [id, vm] : host.vms) {
    if (vm.info.state != VmState::kIncoming || !vm.receiver) continue;
    StateReceiver& receiver = *vm.receiver;
    const StateReceiver::Phase phase = receiver.phase();
    if (phase == StateReceiver::Phase::kFailed) {
      // The source keeps the VM; this one stays incoming until finishIncoming(false).
      spdlog::warn("qemu: staged state of incoming vm {} not received: {}", id, receiver.error());
      vm.receiver.reset();
      continue;
    }
    if (phase == StateReceiver::Phase::kReceived && !vm.restoring) {
      // Restore: a QEMU started with -incoming "exec:cat FILE" replaces the one waiting for a
      // live stream.
      QemuHost::killProcess(vm.proc);
      vm.incomingPort = 0;
      if (Status s = host.launch(vm, "exec:cat '" + receiver.path() + "'"); !s) {
        receiver.finish(s);
        lost.push_back(id);
        continue;
      }
      vm.restoring = true;
      vm.restoreDeadlineNs = timeout > 0 ? now + timeout : kTimeInfinity;
    }
    if (!vm.restoring) continue;
    if (!vm.proc.qmp) {
      receiver.finish(Status::internal("qemu " + host.exitReason(id, "exited") +
                                       " while restoring; " + tailOf(vm.proc.logPath, 200)));
      lost.push_back(id);
      continue;
    }
    auto st = vm.proc.qmp->execute("query-status", {}, kQmpTimeout);
    if (!st) continue;  // a dead QEMU is reaped next poll
    const std::string status = st->value("status", "");
    if (status == "inmigrate") {
      if (now > vm.restoreDeadlineNs) {
        receiver.finish(Status::internal("restore did not finish in " + formatDuration(timeout)));
        lost.push_back(id);
      }
      continue;
    }
    vm.restoring = false;
    if (status == "paused" || status == "postmigrate" || status == "prelaunch" ||
        status == "running") {
      receiver.finish(Status::ok());
    } else {
      receiver.finish(Status::internal("restored vm is in state " + status));
      lost.push_back(id);
    }
  }
  for (const std::string& id : lost) {
    spdlog::warn("qemu: restore of incoming vm {} failed; dropped from {}", id, host.info.name);
    QemuHost::kill(*host.vms.find(id));
    host.vms.erase(id);
  }
}

}  // namespace vrm::vmscheduler::qemu
