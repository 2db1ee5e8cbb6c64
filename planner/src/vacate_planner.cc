#include "vrm/planner/vacate_planner.h"

#include <algorithm>
#include <map>
#include <set>

#include "vrm/planner/indexed_cluster.h"

namespace vrm::planner {

Result<VacatePlan> VacatePlanner::plan(const IndexedCluster& cluster,
                                       const VacateRequest& request) const {
  if (request.nowNs != cluster.nowNs()) {
    return Status::invalid("the cluster was indexed for another time than the request's");
  }
  VacateRequest full = request;
  full.hosts = cluster.hosts();
  full.links = cluster.links();
  return plan(full);
}

const char* vacateObjectiveName(VacateObjective objective) {
  return objective == VacateObjective::kDegradation ? "degradation" : "makespan";
}

std::uint64_t vacateBytes(const VacateRequest& request, const std::string& host) {
  std::uint64_t bytes = 0;
  for (const auto& vm : request.vms) {
    if (vm.host == host) bytes += vm.nonzeroMemoryBytes;
  }
  return bytes;
}

SequentialVacatePlanner::SequentialVacatePlanner(std::shared_ptr<const MigrationModel> model)
    : model_(std::move(model)) {}

Result<VacatePlan> SequentialVacatePlanner::plan(const VacateRequest& request) const {
  std::map<std::string, HostSnapshot> hosts;
  for (const auto& h : request.hosts) hosts[h.name] = h;
  std::set<std::string> vacating;
  for (const auto& name : request.hostsToVacate) {
    if (!hosts.count(name)) return Status::invalid("unknown host '" + name + "' to vacate");
    vacating.insert(name);
  }

  std::vector<const VmSnapshot*> toMove;
  for (const auto& vm : request.vms) {
    if (vacating.count(vm.host)) toMove.push_back(&vm);
  }
  // Largest first: first-fit decreasing packs better than arrival order.
  std::stable_sort(toMove.begin(), toMove.end(), [](const VmSnapshot* a, const VmSnapshot* b) {
    return a->memoryBytes > b->memoryBytes;
  });

  VacatePlan plan;
  plan.strategy = "sequential";
  plan.model = std::string(model_->name());
  plan.cloneTimeNs = request.cloneTimeNs;
  plan.marginNs = request.marginNs;
  TimeNs cursor = 0;
  for (const VmSnapshot* vm : toMove) {
    HostSnapshot* dest = nullptr;
    for (const auto& h : request.hosts) {  // cluster order keeps plans reproducible
      HostSnapshot& cand = hosts[h.name];
      if (vacating.count(cand.name) || !cand.canReceive) continue;
      if (cand.freeCpuCores >= vm->cpuCores && cand.freeMemoryBytes >= vm->memoryBytes) {
        dest = &cand;
        break;
      }
    }
    if (!dest) {
      return Status::rejected("no host has room for VM '" + vm->id + "' (" +
                              std::to_string(vm->memoryBytes >> 20) + " MiB, " +
                              std::to_string(vm->cpuCores) + " cores) from " + vm->host);
    }
    dest->freeCpuCores -= vm->cpuCores;
    dest->freeMemoryBytes -= vm->memoryBytes;

    const HostSnapshot& src = hosts[vm->host];
    VmProfile profile;
    profile.memoryBytes = static_cast<double>(vm->memoryBytes);
    profile.nonzeroMemoryBytes = static_cast<double>(vm->nonzeroMemoryBytes);
    profile.dirtyRateBytesPerSec = vm->dirtyRateBytesPerSec;
    LinkProfile link;
    link.bandwidthBytesPerSec =
        std::min(src.nicBandwidthBytesPerSec, dest->nicBandwidthBytesPerSec);
    auto est = model_->estimate(profile, link);
    if (!est) {
      return Status(est.status().code(), "VM '" + vm->id + "': " + est.status().message());
    }
    PlannedMove move;
    move.vmId = vm->id;
    move.fromHost = vm->host;
    move.toHost = dest->name;
    move.mode = vm->allowLive ? MoveMode::kLive : MoveMode::kSuspendCopyResume;
    move.batch = static_cast<std::uint32_t>(plan.moves.size());
    move.startOffsetNs = cursor;
    cursor += secondsToNs(est->totalTimeS);
    move.endOffsetNs = cursor;
    move.transferredBytes = static_cast<std::uint64_t>(est->transferredBytes);
    move.memoryBytes = vm->memoryBytes;
    move.downtimeNs = secondsToNs(est->downtimeS);
    plan.moves.push_back(std::move(move));
  }
  plan.makespanNs = cursor;
  plan.latestSafeStartNs =
      request.reservationStartNs - request.cloneTimeNs - plan.makespanNs - request.marginNs;
  return plan;
}

}  // namespace vrm::planner
