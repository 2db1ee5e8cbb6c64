// Step 2 of CostAwareVacatePlanner::plan: see destinations.h.
#include "vacate/destinations.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <unordered_map>

#include "vrm/protocol/units.h"

namespace vrm::planner::vacate {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A receiver's score for a VM of `bytes` from `src`: seconds of transfer its receiving NIC and
// the links the move crosses would carry after taking it (the most loaded of them).
double score(const Cluster& c, int src, int h, double rxBytes, const std::vector<double>& linkBytes,
             double bytes, std::vector<int>& crossed) {
  double s = (rxBytes + bytes) / c.capacity(c.rx(h));
  if (!c.ix.linkMask.empty()) {
    for (std::uint64_t x = c.ix.linkMask[src] ^ c.ix.linkMask[h]; x != 0; x &= x - 1) {
      const int l = __builtin_ctzll(x);
      s = std::max(s, (linkBytes[l] + bytes) / c.capacity(c.link(l)));
    }
  } else if (!c.ix.links.empty()) {
    crossedLinks(c, src, h, crossed);
    for (int l : crossed) s = std::max(s, (linkBytes[l] + bytes) / c.capacity(c.link(l)));
  }
  return s;
}

// A candidate destination in the order of step 2: the lowest score wins, then (among scores
// within 1e-9 of each other) the most free memory, then the first host in cluster order.
struct Fold {
  int best = -1;
  double bestScore = kInf;
  std::int64_t bestMem = -1;
  void offer(int h, double score, std::int64_t mem) {
    const bool tie = std::abs(score - bestScore) <= 1e-9 * std::max(score, 1e-9);
    if (score < bestScore && !tie) {
      best = h, bestScore = score, bestMem = mem;
    } else if (tie && mem > bestMem) {
      best = h, bestMem = mem;
    }
  }
};

}  // namespace

Placement place(const Cluster& c, const std::vector<char>& vacating) {
  const VacateRequest& req = c.req;
  const IndexedCluster::Impl& ix = c.ix;
  Placement p;
  for (const auto& [h, vms] : c.vmsOnHost) {  // in host order, as the cluster lists them
    if (vacating[h]) p.vms.insert(p.vms.end(), vms.begin(), vms.end());
  }
  std::stable_sort(p.vms.begin(), p.vms.end(),
                   [&](int a, int b) { return req.vms[a].memoryBytes > req.vms[b].memoryBytes; });
  // What is left on the receivers this placement used; the others have their indexed room.
  struct Taken {
    std::int64_t cpu = 0, mem = 0;
    double rxBytes = 0;
  };
  std::unordered_map<int, Taken> taken;
  std::vector<double> linkBytes(ix.links.size(), 0);
  std::vector<int> crossed;
  struct Candidate {
    int host;
    double score;
    std::int64_t mem;
  };
  std::vector<Candidate> candidates;
  std::vector<double> scores;
  p.dest.reserve(p.vms.size());
  for (int v : p.vms) {
    const VmSnapshot& vm = req.vms[v];
    const int src = c.vmHost[v];
    const double bytes = static_cast<double>(vm.nonzeroMemoryBytes + vm.diskBytes);
    const auto needCpu = static_cast<std::int64_t>(vm.cpuCores);
    const auto needMem = static_cast<std::int64_t>(vm.memoryBytes);
    // Every receiver, in cluster order: the definition of the choice.
    auto exhaustive = [&] {
      Fold f;
      for (int h = 0; h < c.hostCount(); ++h) {
        if (vacating[h] || !ix.receivable[h]) continue;
        auto t = taken.find(h);
        const Taken room = t != taken.end() ? t->second : Taken{ix.roomCpu[h], ix.roomMem[h], 0};
        if (room.cpu < needCpu || room.mem < needMem) continue;
        f.offer(h, score(c, src, h, room.rxBytes, linkBytes, bytes, crossed), room.mem);
      }
      return f.best;
    };
    int best = -1;
    if (c.exhaustive) {
      best = exhaustive();
    } else {
      // The receivers used so far, and in each group of untouched receivers (equal scores) the
      // one the order above prefers: the most memory, then the first. When no two different
      // scores are within the tie tolerance, the order is lexicographic (score, -memory, host)
      // and its minimum is among these; otherwise ties are not transitive and only the full
      // scan defines the choice.
      candidates.clear();
      for (const auto& [h, t] : taken) {
        if (t.cpu < needCpu || t.mem < needMem) continue;
        candidates.push_back({h, score(c, src, h, t.rxBytes, linkBytes, bytes, crossed), t.mem});
      }
      for (const auto& g : ix.groups) {
        for (const auto& [negMem, h] : g.byRoom) {
          if (-negMem < needMem) break;
          if (vacating[h] || ix.roomCpu[h] < needCpu || taken.count(h)) continue;
          candidates.push_back({h, score(c, src, h, 0, linkBytes, bytes, crossed), -negMem});
          break;
        }
      }
      scores.clear();
      for (const auto& k : candidates) scores.push_back(k.score);
      std::sort(scores.begin(), scores.end());
      bool nearTie = false;
      for (std::size_t i = 1; i < scores.size() && !nearTie; ++i) {
        nearTie = scores[i] != scores[i - 1] &&
                  scores[i] - scores[i - 1] <= 1e-9 * std::max(scores[i], 1e-9);
      }
      if (nearTie) {
        best = exhaustive();
      } else {
        std::sort(candidates.begin(), candidates.end(),
                  [](const Candidate& a, const Candidate& b) { return a.host < b.host; });
        Fold f;
        for (const auto& k : candidates) f.offer(k.host, k.score, k.mem);
        best = f.best;
      }
    }
    p.dest.push_back(best);
    if (best < 0) {
      if (p.unplaced++ == 0) p.firstUnplaced = v;
      if (!vm.allowSuspend) ++p.unplacedNotSuspendable;
      continue;
    }
    auto [t, fresh] = taken.try_emplace(best);
    if (fresh) t->second = Taken{ix.roomCpu[best], ix.roomMem[best], 0};
    t->second.cpu -= vm.cpuCores;
    t->second.mem -= static_cast<std::int64_t>(vm.memoryBytes);
    t->second.rxBytes += bytes;
    if (!ix.links.empty()) {
      crossedLinks(c, src, best, crossed);
      for (int l : crossed) linkBytes[l] += bytes;
    }
  }
  return p;
}

std::string noRoomMessage(const VmSnapshot& vm) {
  return "no host has room for VM '" + vm.id + "' (" + formatBytes(vm.memoryBytes) + ", " +
         std::to_string(vm.cpuCores) + " cores) from " + vm.host;
}

}  // namespace vrm::planner::vacate
