// Step 3 of CostAwareVacatePlanner::plan: see strategies.h.
#include "vacate/strategies.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "vrm/protocol/units.h"

namespace vrm::planner::vacate {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Makespans closer than this (relative) count as equal for the makespan objective.
constexpr double kMakespanTie = 0.005;

}  // namespace

std::vector<std::size_t> interleave(const std::vector<MoveSpec>& specs,
                                    const std::vector<std::size_t>& network) {
  std::vector<int> sources;
  std::map<int, std::vector<std::size_t>> bySource;
  for (std::size_t i : network) {
    auto& list = bySource[specs[i].src];
    if (list.empty()) sources.push_back(specs[i].src);
    list.push_back(i);
  }
  std::vector<std::size_t> order;
  for (std::size_t round = 0; order.size() < network.size(); ++round) {
    for (int s : sources) {
      const auto& list = bySource[s];
      if (round < list.size()) order.push_back(list[round]);
    }
  }
  return order;
}

std::vector<std::size_t> batchSizes(const VacateRequest& req, const std::vector<MoveSpec>& specs,
                                    const std::vector<std::size_t>& network, std::size_t n) {
  std::vector<std::size_t> ks;
  if (req.batchSize > 0) {
    ks.push_back(std::min<std::size_t>(req.batchSize, n));
  } else {
    std::set<std::size_t> set;
    for (std::size_t k = 1; k < n; k *= 2) set.insert(k);
    std::set<int> sources;
    for (std::size_t i : network) sources.insert(specs[i].src);
    for (std::size_t k = sources.size(); k > 0 && k < n; k *= 2) set.insert(k);
    set.insert(n);
    ks.assign(set.begin(), set.end());
  }
  return ks;
}

Result<StrategyResult> simulate(const Models& m, const Cluster& c,
                                const std::vector<MoveSpec>& specs,
                                const std::vector<std::size_t>& order,
                                const std::vector<std::size_t>& inPlace, std::size_t k,
                                FairShare& share) {
  const VacateRequest& req = c.req;
  StrategyResult r;
  r.k = k;
  r.moves.resize(specs.size());
  double t = 0;
  std::size_t batch = 0;
  std::vector<MoveEval> evals;
  std::vector<Flow> flows;
  std::vector<std::size_t> members;
  std::vector<double> shares;
  for (std::size_t first = 0; first < order.size() || (batch == 0 && !inPlace.empty());
       first += k, ++batch) {
    members.assign(order.begin() + static_cast<std::ptrdiff_t>(std::min(first, order.size())),
                   order.begin() + static_cast<std::ptrdiff_t>(std::min(first + k, order.size())));
    if (batch == 0) members.insert(members.end(), inPlace.begin(), inPlace.end());
    // Shares with the whole batch on the network: the bandwidth each model is evaluated at.
    flows.assign(members.size(), Flow{});
    std::vector<char> all(members.size(), 1);
    for (std::size_t j = 0; j < members.size(); ++j)
      flows[j].resources = &specs[members[j]].resources;
    share.rates(flows, all);
    shares.resize(members.size());
    for (std::size_t j = 0; j < members.size(); ++j) {
      shares[j] = std::isfinite(flows[j].rate) ? flows[j].rate : 0;
    }
    evals.assign(members.size(), MoveEval{});
    for (std::size_t j = 0; j < members.size(); ++j) {
      const MoveSpec& s = specs[members[j]];
      const double bw = shares[j] > 0 ? shares[j] : 1;
      auto e = evaluateMove(m, req, req.vms[s.vm], s, bw);
      if (!e) return e.status();
      evals[j] = std::move(*e);
      flows[j].eval = &evals[j];
    }
    const double end = simulateBatch(flows, t, share);
    for (std::size_t j = 0; j < members.size(); ++j) {
      const MoveSpec& s = specs[members[j]];
      const VmSnapshot& vm = req.vms[s.vm];
      const MoveEval& e = evals[j];
      const Flow& f = flows[j];
      PlannedMove& pm = r.moves[members[j]];
      pm.vmId = vm.id;
      pm.fromHost = vm.host;
      pm.toHost = s.suspend ? (req.suspendStore.empty() ? vm.host : req.suspendStore)
                            : c.ix.hosts[s.dst].name;
      pm.mode = e.mode;
      pm.batch = static_cast<std::uint32_t>(batch);
      pm.startOffsetNs = secondsToNs(t);
      pm.endOffsetNs = secondsToNs(f.end);
      pm.transferredBytes = static_cast<std::uint64_t>(e.transferredBytes);
      pm.memoryBytes = vm.memoryBytes;
      double down = e.modelDowntimeS;
      if (e.downFromSegments && f.downStart >= 0 && f.downEnd >= 0) down = f.downEnd - f.downStart;
      if (s.suspend) down = f.end - f.downStart;  // until resumed: completeSuspensions()
      pm.downtimeNs = secondsToNs(down);
      pm.diskSyncNs = secondsToNs(e.diskSyncS);
      pm.networkLimitBytesPerSec = shares[j];
      pm.diskWriteLimitBytesPerSec = e.diskCapBytesPerSec;
      if (!e.note.empty()) r.notes.push_back(e.note);
      r.energyJ += e.energyJ;
      if (!s.suspend) {
        r.maxVmTimeS = std::max(r.maxVmTimeS, f.end - t);
        r.maxVmDowntimeS = std::max(r.maxVmDowntimeS, down);
      }
    }
    t = end;
  }
  r.makespanS = t;
  return r;
}

Result<std::size_t> pickStrategy(const VacateRequest& req,
                                 const std::vector<StrategyResult>& results, std::size_t n) {
  const StrategyResult* best = nullptr;
  auto faster = [](const StrategyResult* a, const StrategyResult& b) {
    return !a || b.quantileMakespanS < a->quantileMakespanS;
  };
  if (req.objective == VacateObjective::kMakespan) {
    double fastest = kInf;
    for (auto& r : results) fastest = std::min(fastest, r.quantileMakespanS);
    for (auto& r : results) {
      if (r.quantileMakespanS > fastest * (1 + kMakespanTie)) continue;
      if (!best || r.maxVmTimeS < best->maxVmTimeS) best = &r;
    }
  } else if (req.maxVmTimeNs > 0 || req.maxVmDowntimeNs > 0) {
    const StrategyResult* least = nullptr;
    for (auto& r : results) {
      if (!least || r.maxVmTimeS < least->maxVmTimeS) least = &r;
      if (req.maxVmTimeNs > 0 && secondsToNs(r.maxVmTimeS) > req.maxVmTimeNs) continue;
      if (req.maxVmDowntimeNs > 0 && secondsToNs(r.maxVmDowntimeS) > req.maxVmDowntimeNs) continue;
      if (faster(best, r)) best = &r;
    }
    if (!best) {
      return Status::rejected(
          "no strategy keeps every VM's migration within the bound: the gentlest (" +
          strategyName(least->k, n) + ") takes up to " +
          formatDuration(secondsToNs(least->maxVmTimeS)) + " per VM with up to " +
          formatDuration(secondsToNs(least->maxVmDowntimeS)) + " of downtime");
    }
  } else {
    for (auto& r : results) {
      if (r.feasible && (!best || r.maxVmTimeS < best->maxVmTimeS)) best = &r;
    }
    if (!best) {
      for (auto& r : results) {
        if (faster(best, r)) best = &r;
      }
    }
  }
  return static_cast<std::size_t>(best - results.data());
}

std::string strategyName(std::size_t k, std::size_t moves) {
  if (k <= 1) return "sequential";
  if (k >= moves) return "parallel";
  return "batched(" + std::to_string(k) + ")";
}

}  // namespace vrm::planner::vacate
