// Step 1 of CostAwareVacatePlanner::plan: see host_choice.h.
#include "vacate/host_choice.h"

#include <algorithm>
#include <numeric>

#include "vacate/destinations.h"
#include "vrm/planner/liu_model.h"

namespace vrm::planner::vacate {

std::string whyNotVacatable(const VacateRequest& req, const HostSnapshot& host) {
  const TimeNs windowEnd = req.reservationEndNs > 0 ? req.reservationEndNs : kTimeInfinity;
  if (!host.canVacate) return "host " + host.name + " cannot be vacated";
  if (host.cpuCores < req.cloneCpuCoresPerHost || host.memoryBytes < req.cloneMemoryBytesPerHost) {
    return "host " + host.name + " is too small for the reservation's VMs";
  }
  for (const auto& b : host.bookings) {
    if (b.startNs < windowEnd && req.nowNs < b.endNs) {
      return "host " + host.name + " is needed by " + (b.owner.empty() ? "a booking" : b.owner) +
             " in the window";
    }
  }
  return "";
}

Result<std::vector<std::string>> chooseHostsIn(const Models& m, const Cluster& c,
                                               std::size_t count) {
  const VacateRequest& req = c.req;
  if (count == 0) return Status::invalid("the number of hosts to choose must be positive");

  std::vector<int> pool;
  if (req.candidateHosts.empty()) {
    pool.resize(c.hostCount());
    std::iota(pool.begin(), pool.end(), 0);
  } else {
    for (const auto& name : req.candidateHosts) {
      auto it = c.ix.hostIndex.find(name);
      if (it == c.ix.hostIndex.end()) {
        return Status::invalid("unknown candidate host '" + name + "'");
      }
      pool.push_back(it->second);
    }
  }
  std::string firstReason;
  std::vector<int> candidates;
  for (int h : pool) {
    const std::string why = whyNotVacatable(req, c.ix.hosts[h]);
    if (why.empty()) {
      candidates.push_back(h);
    } else if (firstReason.empty()) {
      firstReason = why;
    }
  }

  // Eq. 18 over per-host sums of solo estimates.
  std::vector<MigrationEstimate> costs(candidates.size());
  MoveSpec spec;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const int h = candidates[i];
    MigrationEstimate& sum = costs[i];
    sum.energyJ = 0;
    for (int v : vmsOn(c, h)) {
      auto e = evaluateMove(m, req, req.vms[v], spec, c.capacity(c.tx(h)));
      if (!e) return e.status();
      sum.downtimeS += e->mode == MoveMode::kSuspendCopyResume ? e->totalS : e->modelDowntimeS;
      sum.totalTimeS += e->totalS;
      sum.transferredBytes += e->transferredBytes;
      *sum.energyJ += e->energyJ;
    }
  }
  std::vector<std::size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  if (!candidates.empty()) {
    auto ranking = rankMigrationCandidates(costs, m.options.weights);
    if (!ranking) return ranking.status();
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return ranking->costs[a] < ranking->costs[b];
    });
  }

  std::vector<char> vacating(c.hostCount(), 0);
  std::vector<std::string> chosen;
  std::vector<std::pair<int, std::size_t>> deferred;  // (suspensions, candidate position)
  std::string lastFailure;
  // Adds h when its VMs (and those of the hosts already chosen) all find a destination, or
  // when the ones that do not may be suspended and `acceptSuspensions`. Returns 0 when added,
  // the number of suspensions it would need when that is the only obstacle, -1 otherwise.
  auto tryAdd = [&](int h, bool acceptSuspensions) -> int {
    vacating[h] = 1;
    Placement p = place(c, vacating);
    const bool suspendable =
        req.suspendPolicy == SuspendPolicy::kWhenNoRoom && p.unplacedNotSuspendable == 0;
    if (p.unplaced == 0 || (acceptSuspensions && suspendable)) {
      chosen.push_back(c.ix.hosts[h].name);
      return 0;
    }
    vacating[h] = 0;
    lastFailure = noRoomMessage(req.vms[p.firstUnplaced]);
    return suspendable ? p.unplaced : -1;
  };
  for (std::size_t pos : order) {
    if (chosen.size() == count) break;
    const int s = tryAdd(candidates[pos], false);
    if (s > 0) deferred.push_back({s, pos});
  }
  std::stable_sort(deferred.begin(), deferred.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [s, pos] : deferred) {
    if (chosen.size() == count) break;
    tryAdd(candidates[pos], true);
  }
  if (chosen.size() < count) {
    std::string why = "not enough capacity: " + std::to_string(chosen.size()) + " of " +
                      std::to_string(count) + " hosts can be vacated";
    if (!lastFailure.empty()) {
      why += " (" + lastFailure + ")";
    } else if (!firstReason.empty()) {
      why += " (" + firstReason + ")";
    }
    return Status::rejected(why);
  }
  return chosen;
}

}  // namespace vrm::planner::vacate
