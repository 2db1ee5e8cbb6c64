// A move's segments and costs: see moves.h.
#include "vacate/moves.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "vrm/planner/liu_model.h"
#include "vrm/protocol/units.h"

namespace vrm::planner::vacate {
namespace {

// A local disk dirtied at this fraction of the move's share or more gets its writes capped there.
constexpr double kDiskDirtyCapFraction = 0.5;

// Phase names of the models (migration_model.h): the VM stops at "suspend" (zhao-scr) or "save"
// (qemu-scr) and runs again after "resume" / "restore" and the agents' "handoff".
bool isSuspendPhase(const std::string& name) { return name == "suspend" || name == "save"; }
bool isResumePhase(const std::string& name) { return name == "resume" || name == "restore"; }
bool isLeadingPhase(const std::string& name) {
  return name == "setup" || isSuspendPhase(name) || name == "pre-migration";
}
bool isTrailingPhase(const std::string& name) {
  return isResumePhase(name) || name == "handoff" || name == "commit" || name == "post-migration";
}

// The dirty rate to plan a VM with: its current sample, or with a dirty-rate quantile q and
// recent samples the q-quantile of the samples and the current one (a VM that dirties in bursts
// is planned for its bursts, not for the quiet moment it was last sampled in).
double plannedDirtyRate(const VmSnapshot& vm, double q) {
  if (!(q > 0) || vm.dirtyRateSamplesBytesPerSec.empty()) return vm.dirtyRateBytesPerSec;
  std::vector<double> s = vm.dirtyRateSamplesBytesPerSec;
  s.push_back(vm.dirtyRateBytesPerSec);
  std::sort(s.begin(), s.end());
  const double h = q * static_cast<double>(s.size() - 1);
  const auto lo = static_cast<std::size_t>(h);
  const std::size_t hi = std::min(lo + 1, s.size() - 1);
  return std::max(0.0, s[lo] + (h - static_cast<double>(lo)) * (s[hi] - s[lo]));
}

}  // namespace

Result<std::vector<MoveSpec>> specifyMoves(const Cluster& c, const Placement& placement,
                                           std::vector<std::string>& notes) {
  const VacateRequest& req = c.req;
  std::vector<MoveSpec> specs;
  std::vector<int> crossed;
  for (std::size_t i = 0; i < placement.vms.size(); ++i) {
    const VmSnapshot& vm = req.vms[placement.vms[i]];
    MoveSpec s;
    s.vm = placement.vms[i];
    s.src = c.vmHost[placement.vms[i]];
    s.dst = placement.dest[i];
    if (s.dst < 0) {
      if (req.suspendPolicy != SuspendPolicy::kWhenNoRoom || !vm.allowSuspend) {
        return Status::rejected(noRoomMessage(vm) +
                                (vm.allowSuspend ? "" : ", and it may not be suspended"));
      }
      s.suspend = true;
      if (c.storeResource >= 0) s.resources = {c.tx(s.src), c.storeResource};
      notes.push_back("VM '" + vm.id +
                      "' is suspended for the reservation: " + noRoomMessage(vm).substr(3));
    } else {
      s.resources = {c.tx(s.src), c.rx(s.dst)};
      crossedLinks(c, s.src, s.dst, crossed);
      for (int l : crossed) s.resources.push_back(c.link(l));
    }
    for (int r : s.resources) s.soloBandwidth = std::min(s.soloBandwidth, c.capacity(r));
    specs.push_back(std::move(s));
  }
  return specs;
}

std::vector<double> numberResourcesLocally(const Cluster& c, std::vector<MoveSpec>& specs) {
  std::vector<double> capacity;
  std::unordered_map<int, int> local;
  for (auto& s : specs) {
    for (int& r : s.resources) {
      auto [it, added] = local.emplace(r, static_cast<int>(capacity.size()));
      if (added) capacity.push_back(c.capacity(r));
      r = it->second;
    }
  }
  return capacity;
}

double lead(const std::vector<Segment>& s) {
  double t = 0;
  for (const auto& seg : s) {
    if (seg.network) break;
    t += seg.amount;
  }
  return t;
}

double tail(const std::vector<Segment>& s) {
  double t = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it) {
    if (it->network) break;
    t += it->amount;
  }
  return t;
}

double networkBytes(const std::vector<Segment>& s) {
  double b = 0;
  for (const auto& seg : s) {
    if (seg.network) b += seg.amount;
  }
  return b;
}

VmProfile profileOf(const VmSnapshot& vm, double dirtyRateQuantile) {
  VmProfile p;
  p.memoryBytes = static_cast<double>(vm.memoryBytes);
  p.nonzeroMemoryBytes = static_cast<double>(vm.nonzeroMemoryBytes);
  p.dirtyRateBytesPerSec = plannedDirtyRate(vm, dirtyRateQuantile);
  p.writableWorkingSetBytes = static_cast<double>(vm.writableWorkingSetBytes);
  p.dirtyRateHistoryBytesPerSec = vm.dirtyRateHistoryBytesPerSec;
  p.modifiedMemoryBytes = static_cast<double>(vm.modifiedMemoryBytes);
  p.workload = vm.workload;
  return p;  // disk fields stay 0: the disk is synchronised separately (Expression 1)
}

Result<std::pair<double, double>> suspendPhases(const Models& m, const VmProfile& profile,
                                                double bandwidth) {
  LinkProfile link;
  link.bandwidthBytesPerSec = bandwidth;
  for (const MigrationModel* model : {m.scr, m.suspend}) {
    if (!model) continue;
    auto est = model->estimate(profile, link);
    if (!est) return est.status();
    double down = -1, up = -1;
    for (const auto& ph : est->phases) {
      if (isSuspendPhase(ph.name)) down = std::max(down, 0.0) + ph.seconds;
      if (isResumePhase(ph.name)) up = std::max(up, 0.0) + ph.seconds;
    }
    if (down >= 0 && up >= 0) return std::make_pair(down, up);
  }
  return Status::internal("no model gives suspend and resume phases");
}

Result<MoveEval> evaluateMove(const Models& m, const VacateRequest& req, const VmSnapshot& vm,
                              const MoveSpec& spec, double bandwidth) {
  MoveEval e;
  VmProfile profile = profileOf(vm, req.dirtyRateQuantile);
  if (spec.suspend) {
    auto phases = suspendPhases(m, profile, spec.resources.empty() ? 1 : bandwidth);
    if (!phases)
      return Status(phases.status().code(), "VM '" + vm.id + "': " + phases.status().message());
    const double suspendS = phases->first;
    e.mode = MoveMode::kSuspend;
    e.segments.push_back({false, suspendS, true, false});
    if (!spec.resources.empty()) {  // the state goes to a store
      e.segments.push_back({true, static_cast<double>(vm.memoryBytes), false, false});
      e.transferredBytes = static_cast<double>(vm.memoryBytes);
      e.energyJ = liuMigrationEnergyJ(e.transferredBytes);
    }
    e.totalS = suspendS + (spec.resources.empty() ? 0 : vm.memoryBytes / bandwidth);
    return e;
  }

  LinkProfile link;
  link.bandwidthBytesPerSec = bandwidth;
  link.preOverheadS = m.options.preOverheadS;
  link.postOverheadS = m.options.postOverheadS;
  // What the path carries unthrottled (QEMU's stop-and-copy): its slowest NIC or link.
  link.lineRateBytesPerSec =
      std::isfinite(spec.soloBandwidth) ? std::max(spec.soloBandwidth, bandwidth) : bandwidth;

  // Local disk first (Tsakalozos phases 1-2), while the VM runs.
  double diskBytesSent = 0;
  if (vm.diskBytes > 0) {
    VmProfile dp;
    dp.memoryBytes = static_cast<double>(vm.memoryBytes);
    dp.diskBytes = static_cast<double>(vm.diskBytes);
    dp.diskDirtyRateBytesPerSec = vm.diskDirtyRateBytesPerSec;
    if (dp.diskDirtyRateBytesPerSec >= kDiskDirtyCapFraction * bandwidth) {
      e.diskCapBytesPerSec = kDiskDirtyCapFraction * bandwidth;
      dp.diskDirtyRateBytesPerSec = e.diskCapBytesPerSec;
      e.note = "VM '" + vm.id + "': disk writes capped at " + formatRate(e.diskCapBytesPerSec) +
               " so its disk synchronisation converges (Expression 1)";
    }
    LinkProfile dl;
    dl.bandwidthBytesPerSec = bandwidth;
    auto d = m.disk->estimate(dp, dl);
    if (!d) return Status(d.status().code(), "VM '" + vm.id + "': " + d.status().message());
    e.diskSyncS = d->extras.count("sync_time_s") ? d->extras.at("sync_time_s") : 0;
    diskBytesSent = d->transferredBytes;
  }

  // Memory: live when allowed and it converges at this share, else suspend-copy-resume.
  Result<MigrationEstimate> est = Status::invalid("VM '" + vm.id + "' may not be moved");
  const bool canLive = vm.allowLive && m.live;
  const bool canScr = vm.allowSuspend && m.scr;
  if (canLive) {
    est = m.live->estimate(profile, link);
    if (!est) return Status(est.status().code(), "VM '" + vm.id + "': " + est.status().message());
    e.mode = MoveMode::kLive;
    if (!est->converges) {
      if (canScr) {
        est = m.scr->estimate(profile, link);
        e.mode = MoveMode::kSuspendCopyResume;
      } else {
        e.note = "VM '" + vm.id + "': live migration does not converge at " +
                 formatRate(bandwidth) + "; planned with a forced switchover";
      }
    }
  } else if (canScr) {
    est = m.scr->estimate(profile, link);
    e.mode = MoveMode::kSuspendCopyResume;
  } else {
    return Status::invalid("VM '" + vm.id +
                           "' allows no migration mode the planner has a model for");
  }
  if (!est) return Status(est.status().code(), "VM '" + vm.id + "': " + est.status().message());

  double setupS = 0, suspendS = 0, trailS = 0, leadOther = 0;
  for (const auto& ph : est->phases) {
    if (ph.name == "setup") {
      setupS += ph.seconds;
    } else if (isSuspendPhase(ph.name)) {
      suspendS += ph.seconds;
    } else if (isLeadingPhase(ph.name)) {
      leadOther += ph.seconds;
    } else if (isTrailingPhase(ph.name)) {
      trailS += ph.seconds;
    }
  }
  const double memNetS = std::max(0.0, est->totalTimeS - setupS - suspendS - leadOther - trailS);
  const bool scr = e.mode == MoveMode::kSuspendCopyResume;
  e.segments.reserve(5);
  e.segments.push_back({false, setupS + leadOther, false, false});
  e.segments.push_back({true, e.diskSyncS * bandwidth, false, false});
  e.segments.push_back({false, suspendS, scr, false});
  e.segments.push_back({true, memNetS * bandwidth, false, false});
  e.segments.push_back({false, trailS, false, scr});
  e.downFromSegments = scr;
  e.modelDowntimeS = est->downtimeS;
  e.memoryNetworkS = memNetS + suspendS + trailS;
  e.transferredBytes = est->transferredBytes + diskBytesSent;
  // Liu eq. 15: the disk's bytes cost alpha per MiB on top of the memory migration's energy.
  e.energyJ = est->energyJ ? *est->energyJ : liuMigrationEnergyJ(est->transferredBytes);
  if (diskBytesSent > 0) e.energyJ += liuMigrationEnergyJ(diskBytesSent) - liuMigrationEnergyJ(0);
  e.totalS = est->totalTimeS + e.diskSyncS;
  return e;
}

}  // namespace vrm::planner::vacate
