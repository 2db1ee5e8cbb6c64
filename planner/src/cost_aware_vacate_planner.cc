// CostAwareVacatePlanner: contract, contention model and objectives are in
// vrm/planner/cost_aware_vacate_planner.h. This file follows the steps listed there.
#include "vrm/planner/cost_aware_vacate_planner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <string_view>
#include <unordered_map>

#include "indexed_cluster_impl.h"
#include "vrm/planner/tsakalozos_disk_model.h"
#include "vrm/planner/zhao_scr_model.h"
#include "vrm/protocol/units.h"

namespace vrm::planner {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Makespans closer than this (relative) count as equal for the makespan objective.
constexpr double kMakespanTie = 0.005;
// A local disk dirtied at this fraction of the move's share or more gets its writes capped there.
constexpr double kDiskDirtyCapFraction = 0.5;

// ---------------------------------------------------------------------------------------------
// The cluster for one call: the hosts and links of an IndexedCluster, the request's VMs by host.

struct Cluster {
  const VacateRequest& req;
  const IndexedCluster::Impl& ix;
  bool exhaustive = false;                    // CostAwareVacatePlannerOptions::exhaustivePlacement
  std::map<int, std::vector<int>> vmsOnHost;  // host index -> indices into req.vms
  std::vector<int> vmHost;                    // host index of each of req.vms
  // Resources: 2h = h's sending NIC, 2h+1 = its receiving NIC, then links, then the store.
  int storeResource = -1;

  Cluster(const VacateRequest& r, const IndexedCluster::Impl& i) : req(r), ix(i) {}
  int hostCount() const { return ix.hostCount(); }
  int tx(int h) const { return 2 * h; }
  int rx(int h) const { return 2 * h + 1; }
  int link(int l) const { return 2 * hostCount() + l; }
  double capacity(int r) const {
    if (r < 2 * hostCount())
      return ix.hosts[static_cast<std::size_t>(r / 2)].nicBandwidthBytesPerSec;
    if (r == storeResource) return req.suspendStoreBandwidthBytesPerSec;
    return ix.links[static_cast<std::size_t>(r - 2 * hostCount())].bandwidthBytesPerSec;
  }
};

Result<Cluster> indexVms(const VacateRequest& req, const IndexedCluster::Impl& ix,
                         bool exhaustive) {
  Cluster c(req, ix);
  c.exhaustive = exhaustive;
  if (!req.suspendStore.empty()) {
    if (!(req.suspendStoreBandwidthBytesPerSec > 0)) {
      return Status::invalid("suspend store '" + req.suspendStore + "' needs a positive bandwidth");
    }
    c.storeResource = 2 * c.hostCount() + static_cast<int>(ix.links.size());
  }
  c.vmHost.reserve(req.vms.size());
  for (std::size_t i = 0; i < req.vms.size(); ++i) {
    auto it = ix.hostIndex.find(req.vms[i].host);
    if (it == ix.hostIndex.end()) {
      return Status::invalid("VM '" + req.vms[i].id + "' runs on unknown host '" + req.vms[i].host +
                             "'");
    }
    c.vmHost.push_back(it->second);
    c.vmsOnHost[it->second].push_back(static_cast<int>(i));
  }
  return c;
}

const std::vector<int>& vmsOn(const Cluster& c, int h) {
  static const std::vector<int> kNone;
  auto it = c.vmsOnHost.find(h);
  return it == c.vmsOnHost.end() ? kNone : it->second;
}

// Links a migration from a to b crosses: those holding exactly one of the two.
void crossedLinks(const Cluster& c, int a, int b, std::vector<int>& out) {
  out.clear();
  if (!c.ix.linkMask.empty()) {  // up to 64 links: one XOR
    for (std::uint64_t x = c.ix.linkMask[a] ^ c.ix.linkMask[b]; x != 0; x &= x - 1) {
      out.push_back(__builtin_ctzll(x));
    }
    return;
  }
  const auto& la = c.ix.linksOfHost[a];
  const auto& lb = c.ix.linksOfHost[b];
  std::set_symmetric_difference(la.begin(), la.end(), lb.begin(), lb.end(),
                                std::back_inserter(out));
}

// ---------------------------------------------------------------------------------------------
// Step 2: destinations.

struct Placement {
  std::vector<int> vms;   // moved VMs, indices into req.vms, in placement order
  std::vector<int> dest;  // host index per entry of vms; -1: no receiver had room
  int unplaced = 0;
  int unplacedNotSuspendable = 0;  // unplaced VMs that may not be suspended
  int firstUnplaced = -1;          // VM index, for messages
};

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

// ---------------------------------------------------------------------------------------------
// Moves as segments.

struct Segment {
  bool network = false;
  double amount = 0;        // seconds (fixed) or bytes (network)
  bool downStarts = false;  // the VM stops when this segment starts
  bool downEnds = false;    // ... and runs again when it ends
};

struct MoveEval {
  MoveMode mode = MoveMode::kLive;
  std::vector<Segment> segments;
  double modelDowntimeS = 0;  // live: the model's downtime at the share
  bool downFromSegments = false;
  double transferredBytes = 0;
  double energyJ = 0;
  double diskSyncS = 0;
  double diskCapBytesPerSec = 0;  // 0 = disk writes not capped
  double memoryNetworkS = 0;      // memory migration time at the share (Expression 1's VMM_time)
  double totalS = 0;              // at the share, uncontended by anything else
  std::string note;
};

struct MoveSpec {
  int vm = 0;
  int src = 0;
  int dst = -1;  // host index; -1 = suspended
  bool suspend = false;
  std::vector<int> resources;
  double soloBandwidth = kInf;  // the smallest capacity among its resources
};

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

// ---------------------------------------------------------------------------------------------
// Fluid sharing.

struct Flow {
  const MoveEval* eval = nullptr;
  const std::vector<int>* resources = nullptr;
  std::size_t segment = 0;
  double remaining = 0;
  double tolerance = 0;
  double rate = 0;
  double end = 0;
  double downStart = -1;
  double downEnd = -1;
  bool done = false;
};

class FairShare {
 public:
  explicit FairShare(const std::vector<double>& capacity)
      : capacity_(capacity),
        left_(capacity.size(), 0),
        users_(capacity.size(), 0),
        flowsOn_(capacity.size()) {}

  // Max-min fair rates (progressive filling) for flows[i] with active[i] set; others get 0.
  void rates(std::vector<Flow>& flows, const std::vector<char>& active) {
    touched_.clear();
    for (std::size_t i = 0; i < flows.size(); ++i) {
      flows[i].rate = 0;
      if (!active[i]) continue;
      if (flows[i].resources->empty()) {
        flows[i].rate = kInf;
        continue;
      }
      for (int r : *flows[i].resources) {
        if (users_[r] == 0) {
          touched_.push_back(r);
          left_[r] = capacity_[r];
          flowsOn_[r].clear();
        }
        ++users_[r];
        flowsOn_[r].push_back(static_cast<int>(i));
      }
    }
    frozen_.assign(flows.size(), 0);
    live_.assign(touched_.begin(), touched_.end());
    while (true) {
      // Drop saturated resources as we go: most receivers saturate in the first rounds.
      double level = kInf;
      std::size_t kept = 0;
      for (int r : live_) {
        if (users_[r] == 0) continue;
        live_[kept++] = r;
        level = std::min(level, left_[r] / users_[r]);
      }
      live_.resize(kept);
      if (kept == 0) break;
      for (int r : live_) {
        if (users_[r] == 0 || left_[r] / users_[r] > level * (1 + 1e-12)) continue;
        for (int f : flowsOn_[r]) {
          if (frozen_[f]) continue;
          frozen_[f] = 1;
          flows[f].rate = level;
          for (int r2 : *flows[f].resources) {
            left_[r2] -= level;
            --users_[r2];
          }
        }
      }
    }
    for (int r : touched_) users_[r] = 0;
  }

 private:
  const std::vector<double>& capacity_;
  std::vector<double> left_;
  std::vector<int> users_;
  std::vector<std::vector<int>> flowsOn_;
  std::vector<int> touched_;
  std::vector<int> live_;
  std::vector<char> frozen_;
};

void enterSegment(Flow& f, double now) {
  const auto& segs = f.eval->segments;
  while (f.segment < segs.size() && segs[f.segment].amount <= 0) {
    if (segs[f.segment].downStarts && f.downStart < 0) f.downStart = now;
    if (segs[f.segment].downEnds) f.downEnd = now;
    ++f.segment;
  }
  if (f.segment == segs.size()) {
    f.done = true;
    f.end = now;
    return;
  }
  const Segment& s = segs[f.segment];
  if (s.downStarts && f.downStart < 0) f.downStart = now;
  f.remaining = s.amount;
  f.tolerance = 1e-9 * s.amount;
}

// Runs one batch from t0; returns when its last move ends. Flow end and down times are set.
double simulateBatch(std::vector<Flow>& flows, double t0, FairShare& share) {
  std::vector<char> onNetwork(flows.size(), 0);
  std::size_t running = 0;
  for (auto& f : flows) {
    f.segment = 0;
    f.done = false;
    f.downStart = f.downEnd = -1;
    enterSegment(f, t0);
    if (!f.done) ++running;
  }
  double now = t0;
  bool changed = true;
  while (running > 0) {
    if (changed) {
      for (std::size_t i = 0; i < flows.size(); ++i) {
        onNetwork[i] = !flows[i].done && flows[i].eval->segments[flows[i].segment].network;
      }
      share.rates(flows, onNetwork);
      changed = false;
    }
    double dt = kInf;
    for (std::size_t i = 0; i < flows.size(); ++i) {
      const Flow& f = flows[i];
      if (f.done) continue;
      dt = std::min(dt, onNetwork[i] ? f.remaining / f.rate : f.remaining);
    }
    if (!(dt < kInf)) dt = 0;  // cannot happen: every network flow has a positive rate
    now += dt;
    for (std::size_t i = 0; i < flows.size(); ++i) {
      Flow& f = flows[i];
      if (f.done) continue;
      f.remaining -= onNetwork[i] ? f.rate * dt : dt;
      if (f.remaining > f.tolerance) continue;
      const Segment& s = f.eval->segments[f.segment];
      if (s.downEnds) f.downEnd = now;
      ++f.segment;
      enterSegment(f, now);
      const bool nowNetwork = !f.done && f.eval->segments[f.segment].network;
      if (f.done) --running;
      if (f.done || nowNetwork != static_cast<bool>(onNetwork[i])) changed = true;
    }
  }
  double end = t0;
  for (const auto& f : flows) end = std::max(end, f.end);
  return end;
}

// ---------------------------------------------------------------------------------------------
// Quantiles.

double normalQuantile(double q) {
  // Bisection on the normal CDF, 0.5 * erfc(-x / sqrt(2)); 60 halvings reach double precision.
  double lo = -10, hi = 10;
  for (int i = 0; i < 100; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < q) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return 0.5 * (lo + hi);
}

double quantileFactor(const VacateRequest& req, double q) {
  if (req.relativeErrorSamples.size() >= kMinErrorSamples) {
    std::vector<double> s = req.relativeErrorSamples;
    std::sort(s.begin(), s.end());
    const double pos = q * static_cast<double>(s.size() - 1);
    const std::size_t i = static_cast<std::size_t>(pos);
    const double frac = pos - static_cast<double>(i);
    const double r = i + 1 < s.size() ? s[i] + frac * (s[i + 1] - s[i]) : s[i];
    return std::max(0.0, 1 + r);
  }
  return std::max(0.0, 1 + normalQuantile(q) * req.relativeErrorStdDev);
}

std::string strategyName(std::size_t k, std::size_t moves) {
  if (k <= 1) return "sequential";
  if (k >= moves) return "parallel";
  return "batched(" + std::to_string(k) + ")";
}

}  // namespace

// ---------------------------------------------------------------------------------------------

CostAwareVacatePlanner::CostAwareVacatePlanner(std::shared_ptr<const MigrationModel> liveModel,
                                               std::shared_ptr<const MigrationModel> scrModel,
                                               CostAwareVacatePlannerOptions options)
    : live_(std::move(liveModel)), scr_(std::move(scrModel)), options_(options) {
  // Both have only valid defaults, so creation cannot fail.
  suspend_ = std::shared_ptr<const MigrationModel>(*createMigrationModel(kZhaoScrModelName));
  disk_ = std::shared_ptr<const MigrationModel>(*createMigrationModel(tsakalozos::kDiskModel));
}

Result<std::unique_ptr<CostAwareVacatePlanner>> CostAwareVacatePlanner::create(
    std::string_view liveModel, std::string_view scrModel, CostAwareVacatePlannerOptions options) {
  auto live = createMigrationModel(liveModel);
  if (!live) return live.status();
  auto scr = createMigrationModel(scrModel);
  if (!scr) return scr.status();
  return std::make_unique<CostAwareVacatePlanner>(
      std::shared_ptr<const MigrationModel>(std::move(*live)),
      std::shared_ptr<const MigrationModel>(std::move(*scr)), options);
}

namespace {

// Everything plan() and chooseHosts() need from the planner, bundled for the helpers below.
struct Models {
  const MigrationModel* live;
  const MigrationModel* scr;
  const MigrationModel* suspend;
  const MigrationModel* disk;
  const CostAwareVacatePlannerOptions& options;
};

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

VmProfile profileOf(const VmSnapshot& vm, double dirtyRateQuantile = 0) {
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

// A suspension's (kSuspend) save and restore: the suspend-copy-resume model's phases when it has
// them (qemu-scr's save/restore, zhao-scr's suspend/resume), else zhao-scr's defaults.
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

// One strategy, simulated.
struct StrategyResult {
  std::size_t k = 0;
  std::vector<PlannedMove> moves;  // in the order of the specs
  std::vector<std::string> notes;
  double makespanS = 0;
  double maxVmTimeS = 0;
  double maxVmDowntimeS = 0;
  double energyJ = 0;
  double quantileMakespanS = 0;
  TimeNs latestSafeStartNs = 0;
  bool feasible = true;
};

// The network moves interleaved across sources: round robin over source hosts in the order of
// their largest VM, each host's VMs largest first.
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
      if (s.suspend) down = f.end - f.downStart;  // until resumed; completed in plan()
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

// CostAwareVacatePlanner::chooseHosts on a cluster already indexed.
Result<std::vector<std::string>> chooseHostsIn(const Models& m, const Cluster& c,
                                               std::size_t count) {
  const VacateRequest& req = c.req;
  if (count == 0) return Status::invalid("the number of hosts to choose must be positive");
  const TimeNs windowEnd = req.reservationEndNs > 0 ? req.reservationEndNs : kTimeInfinity;

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
    const HostSnapshot& host = c.ix.hosts[h];
    std::string why;
    if (!host.canVacate) {
      why = "host " + host.name + " cannot be vacated";
    } else if (host.cpuCores < req.cloneCpuCoresPerHost ||
               host.memoryBytes < req.cloneMemoryBytesPerHost) {
      why = "host " + host.name + " is too small for the reservation's VMs";
    } else {
      for (const auto& b : host.bookings) {
        if (b.startNs < windowEnd && req.nowNs < b.endNs) {
          why = "host " + host.name + " is needed by " + (b.owner.empty() ? "a booking" : b.owner) +
                " in the window";
          break;
        }
      }
    }
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

Status checkPlanRequest(const VacateRequest& req) {
  if (req.quantile != 0 && !(req.quantile > 0 && req.quantile < 1)) {
    return Status::invalid("quantile must be between 0 and 1 (exclusive), or 0 for the default");
  }
  if (req.dirtyRateQuantile != 0 && !(req.dirtyRateQuantile > 0 && req.dirtyRateQuantile < 1)) {
    return Status::invalid("dirty-rate quantile must be between 0 and 1 (exclusive), or 0");
  }
  if (!(req.relativeErrorStdDev >= 0) || !std::isfinite(req.relativeErrorStdDev)) {
    return Status::invalid("relative error must be >= 0");
  }
  return Status::ok();
}

}  // namespace

Result<std::vector<std::string>> CostAwareVacatePlanner::chooseHosts(const VacateRequest& req,
                                                                     std::size_t count) const {
  if (count == 0) return Status::invalid("the number of hosts to choose must be positive");
  auto ix = IndexedCluster::create(req.hosts, req.links, req.nowNs);
  if (!ix) return ix.status();
  auto c = indexVms(req, ix->impl(), options_.exhaustivePlacement);
  if (!c) return c.status();
  const Models m{live_.get(), scr_.get(), suspend_.get(), disk_.get(), options_};
  return chooseHostsIn(m, *c, count);
}

Result<VacatePlan> CostAwareVacatePlanner::plan(const VacateRequest& req) const {
  if (Status s = checkPlanRequest(req); !s) return s;
  auto ix = IndexedCluster::create(req.hosts, req.links, req.nowNs);
  if (!ix) return ix.status();
  return planIndexed(*ix, req);
}

Result<VacatePlan> CostAwareVacatePlanner::plan(const IndexedCluster& cluster,
                                                const VacateRequest& req) const {
  if (Status s = checkPlanRequest(req); !s) return s;
  if (req.nowNs != cluster.nowNs()) {
    return Status::invalid("the cluster was indexed for another time than the request's");
  }
  return planIndexed(cluster, req);
}

Result<VacatePlan> CostAwareVacatePlanner::planIndexed(const IndexedCluster& cluster,
                                                       const VacateRequest& req) const {
  if (!(options_.quantile > 0 && options_.quantile < 1)) {
    return Status::invalid("the planner's default quantile must be between 0 and 1 (exclusive)");
  }
  auto indexed = indexVms(req, cluster.impl(), options_.exhaustivePlacement);
  if (!indexed) return indexed.status();
  const Cluster& c = *indexed;
  const Models m{live_.get(), scr_.get(), suspend_.get(), disk_.get(), options_};
  const TimeNs windowEnd = req.reservationEndNs > 0 ? req.reservationEndNs : kTimeInfinity;

  // Step 1: hosts.
  std::vector<std::string> hosts = req.hostsToVacate;
  if (hosts.empty()) {
    if (req.hostCount == 0) return Status::invalid("name the hosts to vacate or how many");
    auto chosen = chooseHostsIn(m, c, req.hostCount);
    if (!chosen) return chosen.status();
    hosts = std::move(*chosen);
  }
  std::vector<char> vacating(c.hostCount(), 0);
  for (const auto& name : hosts) {
    auto it = c.ix.hostIndex.find(name);
    if (it == c.ix.hostIndex.end()) {
      return Status::invalid("unknown host '" + name + "' to vacate");
    }
    if (vacating[it->second]) return Status::invalid("host '" + name + "' named twice");
    vacating[it->second] = 1;
    const HostSnapshot& host = c.ix.hosts[it->second];
    if (!host.canVacate) return Status::rejected("host " + name + " cannot be vacated");
    if (host.cpuCores < req.cloneCpuCoresPerHost ||
        host.memoryBytes < req.cloneMemoryBytesPerHost) {
      return Status::rejected("host " + name + " is too small for the reservation's VMs");
    }
    for (const auto& b : host.bookings) {
      if (b.startNs < windowEnd && req.nowNs < b.endNs) {
        return Status::rejected("host " + name + " is needed by " +
                                (b.owner.empty() ? "a booking" : b.owner) + " in the window");
      }
    }
  }

  // Step 2: destinations.
  Placement placement = place(c, vacating);
  std::vector<MoveSpec> specs;
  std::vector<std::string> notes;
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
  std::vector<std::size_t> network, inPlace;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    (specs[i].resources.empty() ? inPlace : network).push_back(i);
  }
  const std::vector<std::size_t> order = interleave(specs, network);

  // From here on resources are numbered among those the moves use (the fair-share state is
  // then sized by the plan, not by the cluster); the numbering changes no computation.
  std::vector<double> capacity;
  {
    std::unordered_map<int, int> local;
    for (auto& s : specs) {
      for (int& r : s.resources) {
        auto [it, added] = local.emplace(r, static_cast<int>(capacity.size()));
        if (added) capacity.push_back(c.capacity(r));
        r = it->second;
      }
    }
  }

  // Lower bound: uncontended volumes, per resource, plus the smallest lead-in and tail.
  double lowerBound = 0;
  {
    std::vector<double> bytes(capacity.size(), 0);
    std::vector<double> minLead(capacity.size(), kInf), minTail(capacity.size(), kInf);
    for (const auto& s : specs) {
      const double bw = s.resources.empty() ? 1 : s.soloBandwidth;
      auto e = evaluateMove(m, req, req.vms[s.vm], s, bw);
      if (!e) return e.status();
      lowerBound = std::max(lowerBound, e->totalS);
      for (int r : s.resources) {
        bytes[r] += networkBytes(e->segments);
        minLead[r] = std::min(minLead[r], lead(e->segments));
        minTail[r] = std::min(minTail[r], tail(e->segments));
      }
    }
    for (std::size_t r = 0; r < bytes.size(); ++r) {
      if (bytes[r] > 0) {
        lowerBound = std::max(lowerBound, minLead[r] + bytes[r] / capacity[r] + minTail[r]);
      }
    }
  }

  // Step 3: strategies.
  std::vector<std::size_t> ks;
  const std::size_t n = std::max<std::size_t>(order.size(), 1);
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
  const double quantile = req.quantile > 0 ? req.quantile : options_.quantile;
  const double qf = quantileFactor(req, quantile);
  FairShare share(capacity);
  std::vector<StrategyResult> results;
  for (std::size_t k : ks) {
    auto r = simulate(m, c, specs, order, inPlace, k, share);
    if (!r) return r.status();
    r->quantileMakespanS = std::max(r->makespanS * qf, lowerBound);
    r->latestSafeStartNs =
        req.reservationStartNs - req.cloneTimeNs - secondsToNs(r->quantileMakespanS) - req.marginNs;
    r->feasible = r->latestSafeStartNs >= req.nowNs;
    results.push_back(std::move(*r));
  }

  // The objective picks one.
  StrategyResult* best = nullptr;
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
    StrategyResult* least = nullptr;
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

  // Step 4: the plan.
  StrategyResult& chosen = *best;
  VacatePlan plan;
  plan.strategy = specs.empty() ? "none" : strategyName(chosen.k, n);
  plan.objective = vacateObjectiveName(req.objective);
  plan.hosts = hosts;
  plan.batchSize = static_cast<std::uint32_t>(chosen.k);
  std::set<std::string> models;
  for (const auto& mv : chosen.moves) {
    if (mv.mode == MoveMode::kLive && live_) models.insert(std::string(live_->name()));
    if (mv.mode == MoveMode::kSuspendCopyResume && scr_) models.insert(std::string(scr_->name()));
    if (mv.diskSyncNs > 0) models.insert(tsakalozos::kDiskModel);
  }
  for (const auto& name : models) plan.model += (plan.model.empty() ? "" : "+") + name;
  plan.cloneTimeNs = req.cloneTimeNs;
  plan.marginNs = req.marginNs;
  plan.makespanNs = secondsToNs(chosen.makespanS);
  plan.quantile = quantile;
  plan.makespanQuantileNs = secondsToNs(chosen.quantileMakespanS);
  plan.makespanLowerBoundNs = secondsToNs(lowerBound);
  plan.maxVmTimeNs = secondsToNs(chosen.maxVmTimeS);
  plan.energyJ = chosen.energyJ;
  plan.latestSafeStartNs = chosen.latestSafeStartNs;
  plan.feasible = chosen.feasible;
  if (!plan.feasible) {
    plan.earliestFeasibleStartNs =
        req.nowNs + req.cloneTimeNs + plan.makespanQuantileNs + req.marginNs;
  }
  plan.notes = notes;
  plan.notes.insert(plan.notes.end(), chosen.notes.begin(), chosen.notes.end());

  // Suspended VMs are down from their suspension (vacating from the latest safe start) until
  // they are resumed when the reservation ends.
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (!specs[i].suspend) continue;
    PlannedMove& mv = chosen.moves[i];
    if (req.reservationEndNs > 0) {
      auto phases = suspendPhases(m, profileOf(req.vms[specs[i].vm]), 1);
      const double resumeS = phases ? phases->second : 0;
      mv.resumeAtNs = req.reservationEndNs;
      const TimeNs downFrom = plan.latestSafeStartNs + mv.endOffsetNs - mv.downtimeNs;
      mv.downtimeNs = req.reservationEndNs + secondsToNs(resumeS) - downFrom;
    }
  }
  // The broker's disk cap keeping Expression 1 true within each move's window at the quantile:
  // finish_time = its planned duration stretched like the makespan, VMM_time = the part of it
  // after the disk is in sync; the cap is Net_Rate - Disk_size / (finish_time - VMM_time).
  const double stretch = chosen.makespanS > 0 ? chosen.quantileMakespanS / chosen.makespanS : 1;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    PlannedMove& mv = chosen.moves[i];
    if (mv.diskSyncNs <= 0 || mv.networkLimitBytesPerSec <= 0) continue;
    const double duration = nsToSeconds(mv.endOffsetNs - mv.startOffsetNs);
    const double vmmS = std::max(0.0, duration - nsToSeconds(mv.diskSyncNs));
    const double forSync = duration * stretch - vmmS;
    if (forSync <= 0) continue;
    const double limit =
        std::max(0.0, mv.networkLimitBytesPerSec -
                          static_cast<double>(req.vms[specs[i].vm].diskBytes) / forSync);
    mv.diskWriteLimitBytesPerSec =
        mv.diskWriteLimitBytesPerSec > 0 ? std::min(mv.diskWriteLimitBytesPerSec, limit) : limit;
  }
  // Moves in execution order: by batch, then start, as vrmd runs them.
  plan.moves = std::move(chosen.moves);
  std::stable_sort(plan.moves.begin(), plan.moves.end(), [](const auto& a, const auto& b) {
    return a.batch != b.batch ? a.batch < b.batch : a.startOffsetNs < b.startOffsetNs;
  });
  return plan;
}

}  // namespace vrm::planner
