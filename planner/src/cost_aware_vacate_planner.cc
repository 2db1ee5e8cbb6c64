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
// The cluster, indexed for one call.

struct Cluster {
  const VacateRequest& req;
  std::unordered_map<std::string_view, int> hostIndex;
  std::vector<std::vector<int>> vmsOnHost;    // indices into req.vms
  std::vector<std::vector<int>> linksOfHost;  // sorted link indices whose `hosts` hold the host
  std::vector<std::uint64_t> linkMask;        // the same as bits, when there are <= 64 links
  // Room for incoming VMs from nowNs on: free* minus the peak of the bookings ending after nowNs.
  std::vector<std::int64_t> roomCpu;
  std::vector<std::int64_t> roomMem;
  std::vector<bool> receivable;  // canReceive and no exclusive booking ending after nowNs
  // Resources: 2h = h's sending NIC, 2h+1 = its receiving NIC, then links, then the store.
  std::vector<double> capacity;
  int storeResource = -1;

  explicit Cluster(const VacateRequest& r) : req(r) {}
  int hostCount() const { return static_cast<int>(req.hosts.size()); }
  int tx(int h) const { return 2 * h; }
  int rx(int h) const { return 2 * h + 1; }
  int link(int l) const { return 2 * hostCount() + l; }
};

// The peak concurrent use of the bookings that end after `now` (a sweep over their intervals).
void peakBooked(const std::vector<CapacityBooking>& bookings, TimeNs now, std::int64_t& cpu,
                std::int64_t& mem, bool& exclusive) {
  std::vector<std::pair<TimeNs, int>> events;  // (time, +index+1 start / -(index+1) end)
  for (std::size_t i = 0; i < bookings.size(); ++i) {
    const auto& b = bookings[i];
    if (b.endNs <= now || b.endNs <= b.startNs) continue;
    if (b.exclusive) exclusive = true;
    events.push_back({std::max(b.startNs, now), static_cast<int>(i) + 1});
    events.push_back({b.endNs, -(static_cast<int>(i) + 1)});
  }
  // Ends sort before starts at the same instant: intervals are half-open.
  std::sort(events.begin(), events.end());
  std::int64_t c = 0, m = 0;
  cpu = mem = 0;
  for (const auto& [t, e] : events) {
    const auto& b = bookings[static_cast<std::size_t>(std::abs(e) - 1)];
    const int sign = e > 0 ? 1 : -1;
    c += sign * static_cast<std::int64_t>(b.cpuCores);
    m += sign * static_cast<std::int64_t>(b.memoryBytes);
    cpu = std::max(cpu, c);
    mem = std::max(mem, m);
  }
}

Result<Cluster> indexCluster(const VacateRequest& req) {
  Cluster c(req);
  const int n = c.hostCount();
  c.vmsOnHost.resize(n);
  c.linksOfHost.resize(n);
  c.roomCpu.resize(n);
  c.roomMem.resize(n);
  c.receivable.resize(n);
  c.capacity.assign(2 * n + req.links.size() + 1, 0);
  for (int h = 0; h < n; ++h) {
    const HostSnapshot& host = req.hosts[h];
    if (!c.hostIndex.emplace(host.name, h).second) {
      return Status::invalid("duplicate host '" + host.name + "'");
    }
    if (!(host.nicBandwidthBytesPerSec > 0) || !std::isfinite(host.nicBandwidthBytesPerSec)) {
      return Status::invalid("host '" + host.name + "': NIC bandwidth must be positive");
    }
    c.capacity[c.tx(h)] = c.capacity[c.rx(h)] = host.nicBandwidthBytesPerSec;
    std::int64_t cpu = 0, mem = 0;
    bool exclusive = false;
    peakBooked(host.bookings, req.nowNs, cpu, mem, exclusive);
    c.roomCpu[h] = std::max<std::int64_t>(0, static_cast<std::int64_t>(host.freeCpuCores) - cpu);
    c.roomMem[h] = std::max<std::int64_t>(0, static_cast<std::int64_t>(host.freeMemoryBytes) - mem);
    c.receivable[h] = host.canReceive && !exclusive;
  }
  for (std::size_t l = 0; l < req.links.size(); ++l) {
    const SharedLink& link = req.links[l];
    if (!(link.bandwidthBytesPerSec > 0) || !std::isfinite(link.bandwidthBytesPerSec)) {
      return Status::invalid("link '" + link.name + "': bandwidth must be positive");
    }
    c.capacity[c.link(static_cast<int>(l))] = link.bandwidthBytesPerSec;
    for (const auto& name : link.hosts) {
      auto it = c.hostIndex.find(name);
      if (it == c.hostIndex.end()) {
        return Status::invalid("link '" + link.name + "' names unknown host '" + name + "'");
      }
      c.linksOfHost[it->second].push_back(static_cast<int>(l));
    }
  }
  for (auto& links : c.linksOfHost) {
    std::sort(links.begin(), links.end());
    links.erase(std::unique(links.begin(), links.end()), links.end());
  }
  if (!req.links.empty() && req.links.size() <= 64) {
    c.linkMask.assign(n, 0);
    for (int h = 0; h < n; ++h) {
      for (int l : c.linksOfHost[h]) c.linkMask[h] |= std::uint64_t{1} << l;
    }
  }
  if (!req.suspendStore.empty()) {
    if (!(req.suspendStoreBandwidthBytesPerSec > 0)) {
      return Status::invalid("suspend store '" + req.suspendStore + "' needs a positive bandwidth");
    }
    c.storeResource = static_cast<int>(c.capacity.size()) - 1;
    c.capacity[c.storeResource] = req.suspendStoreBandwidthBytesPerSec;
  }
  for (std::size_t i = 0; i < req.vms.size(); ++i) {
    auto it = c.hostIndex.find(req.vms[i].host);
    if (it == c.hostIndex.end()) {
      return Status::invalid("VM '" + req.vms[i].id + "' runs on unknown host '" + req.vms[i].host +
                             "'");
    }
    c.vmsOnHost[it->second].push_back(static_cast<int>(i));
  }
  return c;
}

// Links a migration from a to b crosses: those holding exactly one of the two.
void crossedLinks(const Cluster& c, int a, int b, std::vector<int>& out) {
  out.clear();
  if (!c.linkMask.empty()) {  // up to 64 links: one XOR
    for (std::uint64_t x = c.linkMask[a] ^ c.linkMask[b]; x != 0; x &= x - 1) {
      out.push_back(__builtin_ctzll(x));
    }
    return;
  }
  const auto& la = c.linksOfHost[a];
  const auto& lb = c.linksOfHost[b];
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

Placement place(const Cluster& c, const std::vector<char>& vacating) {
  const VacateRequest& req = c.req;
  Placement p;
  for (int h = 0; h < c.hostCount(); ++h) {
    if (vacating[h]) p.vms.insert(p.vms.end(), c.vmsOnHost[h].begin(), c.vmsOnHost[h].end());
  }
  std::stable_sort(p.vms.begin(), p.vms.end(),
                   [&](int a, int b) { return req.vms[a].memoryBytes > req.vms[b].memoryBytes; });
  std::vector<int> receivers;
  for (int h = 0; h < c.hostCount(); ++h) {
    if (!vacating[h] && c.receivable[h]) receivers.push_back(h);
  }
  std::vector<std::int64_t> cpu = c.roomCpu, mem = c.roomMem;
  std::vector<double> rxBytes(c.hostCount(), 0), linkBytes(req.links.size(), 0);
  std::vector<int> crossed;
  p.dest.reserve(p.vms.size());
  for (int v : p.vms) {
    const VmSnapshot& vm = req.vms[v];
    const int src = c.hostIndex.at(vm.host);
    const double bytes = static_cast<double>(vm.nonzeroMemoryBytes + vm.diskBytes);
    int best = -1;
    double bestScore = kInf;
    std::int64_t bestMem = -1;
    for (int h : receivers) {
      if (cpu[h] < static_cast<std::int64_t>(vm.cpuCores) ||
          mem[h] < static_cast<std::int64_t>(vm.memoryBytes)) {
        continue;
      }
      double score = (rxBytes[h] + bytes) / c.capacity[c.rx(h)];
      if (!c.linkMask.empty()) {
        for (std::uint64_t x = c.linkMask[src] ^ c.linkMask[h]; x != 0; x &= x - 1) {
          const int l = __builtin_ctzll(x);
          score = std::max(score, (linkBytes[l] + bytes) / c.capacity[c.link(l)]);
        }
      } else if (!req.links.empty()) {
        crossedLinks(c, src, h, crossed);
        for (int l : crossed) {
          score = std::max(score, (linkBytes[l] + bytes) / c.capacity[c.link(l)]);
        }
      }
      const bool tie = std::abs(score - bestScore) <= 1e-9 * std::max(score, 1e-9);
      if (score < bestScore && !tie) {
        best = h, bestScore = score, bestMem = mem[h];
      } else if (tie && mem[h] > bestMem) {
        best = h, bestMem = mem[h];
      }
    }
    p.dest.push_back(best);
    if (best < 0) {
      if (p.unplaced++ == 0) p.firstUnplaced = v;
      if (!vm.allowSuspend) ++p.unplacedNotSuspendable;
      continue;
    }
    cpu[best] -= vm.cpuCores;
    mem[best] -= static_cast<std::int64_t>(vm.memoryBytes);
    rxBytes[best] += bytes;
    if (!req.links.empty()) {
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

bool isLeadingPhase(const std::string& name) {
  return name == "setup" || name == "suspend" || name == "pre-migration";
}
bool isTrailingPhase(const std::string& name) {
  return name == "resume" || name == "commit" || name == "post-migration";
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

double quantileFactor(const VacateRequest& req) {
  if (req.relativeErrorSamples.size() >= kMinErrorSamples) {
    std::vector<double> s = req.relativeErrorSamples;
    std::sort(s.begin(), s.end());
    const double pos = req.quantile * static_cast<double>(s.size() - 1);
    const std::size_t i = static_cast<std::size_t>(pos);
    const double frac = pos - static_cast<double>(i);
    const double r = i + 1 < s.size() ? s[i] + frac * (s[i + 1] - s[i]) : s[i];
    return std::max(0.0, 1 + r);
  }
  return std::max(0.0, 1 + normalQuantile(req.quantile) * req.relativeErrorStdDev);
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

VmProfile profileOf(const VmSnapshot& vm) {
  VmProfile p;
  p.memoryBytes = static_cast<double>(vm.memoryBytes);
  p.nonzeroMemoryBytes = static_cast<double>(vm.nonzeroMemoryBytes);
  p.dirtyRateBytesPerSec = vm.dirtyRateBytesPerSec;
  p.dirtyRateHistoryBytesPerSec = vm.dirtyRateHistoryBytesPerSec;
  p.modifiedMemoryBytes = static_cast<double>(vm.modifiedMemoryBytes);
  p.workload = vm.workload;
  return p;  // disk fields stay 0: the disk is synchronised separately (Expression 1)
}

Result<MoveEval> evaluateMove(const Models& m, const VacateRequest& req, const VmSnapshot& vm,
                              const MoveSpec& spec, double bandwidth) {
  MoveEval e;
  VmProfile profile = profileOf(vm);
  if (spec.suspend) {
    LinkProfile link;
    link.bandwidthBytesPerSec = spec.resources.empty() ? 1 : bandwidth;
    auto est = m.suspend->estimate(profile, link);
    if (!est) return Status(est.status().code(), "VM '" + vm.id + "': " + est.status().message());
    double suspendS = 0;
    for (const auto& ph : est->phases) {
      if (ph.name == "suspend") suspendS = ph.seconds;
    }
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
    } else if (ph.name == "suspend") {
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
                            : req.hosts[s.dst].name;
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

}  // namespace

Result<std::vector<std::string>> CostAwareVacatePlanner::chooseHosts(const VacateRequest& req,
                                                                     std::size_t count) const {
  if (count == 0) return Status::invalid("the number of hosts to choose must be positive");
  auto indexed = indexCluster(req);
  if (!indexed) return indexed.status();
  const Cluster& c = *indexed;
  const Models m{live_.get(), scr_.get(), suspend_.get(), disk_.get(), options_};
  const TimeNs windowEnd = req.reservationEndNs > 0 ? req.reservationEndNs : kTimeInfinity;

  std::vector<int> pool;
  if (req.candidateHosts.empty()) {
    pool.resize(c.hostCount());
    std::iota(pool.begin(), pool.end(), 0);
  } else {
    for (const auto& name : req.candidateHosts) {
      auto it = c.hostIndex.find(name);
      if (it == c.hostIndex.end()) return Status::invalid("unknown candidate host '" + name + "'");
      pool.push_back(it->second);
    }
  }
  std::string firstReason;
  std::vector<int> candidates;
  for (int h : pool) {
    const HostSnapshot& host = req.hosts[h];
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
    for (int v : c.vmsOnHost[h]) {
      auto e = evaluateMove(m, req, req.vms[v], spec, c.capacity[c.tx(h)]);
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
    auto ranking = rankMigrationCandidates(costs, options_.weights);
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
      chosen.push_back(req.hosts[h].name);
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

Result<VacatePlan> CostAwareVacatePlanner::plan(const VacateRequest& req) const {
  if (!(req.quantile > 0 && req.quantile < 1)) {
    return Status::invalid("quantile must be between 0 and 1 (exclusive)");
  }
  if (!(req.relativeErrorStdDev >= 0) || !std::isfinite(req.relativeErrorStdDev)) {
    return Status::invalid("relative error must be >= 0");
  }
  auto indexed = indexCluster(req);
  if (!indexed) return indexed.status();
  const Cluster& c = *indexed;
  const Models m{live_.get(), scr_.get(), suspend_.get(), disk_.get(), options_};
  const TimeNs windowEnd = req.reservationEndNs > 0 ? req.reservationEndNs : kTimeInfinity;

  // Step 1: hosts.
  std::vector<std::string> hosts = req.hostsToVacate;
  if (hosts.empty()) {
    if (req.hostCount == 0) return Status::invalid("name the hosts to vacate or how many");
    auto chosen = chooseHosts(req, req.hostCount);
    if (!chosen) return chosen.status();
    hosts = std::move(*chosen);
  }
  std::vector<char> vacating(c.hostCount(), 0);
  for (const auto& name : hosts) {
    auto it = c.hostIndex.find(name);
    if (it == c.hostIndex.end()) return Status::invalid("unknown host '" + name + "' to vacate");
    if (vacating[it->second]) return Status::invalid("host '" + name + "' named twice");
    vacating[it->second] = 1;
    const HostSnapshot& host = req.hosts[it->second];
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
    s.src = c.hostIndex.at(vm.host);
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
    for (int r : s.resources) s.soloBandwidth = std::min(s.soloBandwidth, c.capacity[r]);
    specs.push_back(std::move(s));
  }
  std::vector<std::size_t> network, inPlace;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    (specs[i].resources.empty() ? inPlace : network).push_back(i);
  }
  const std::vector<std::size_t> order = interleave(specs, network);

  // Lower bound: uncontended volumes, per resource, plus the smallest lead-in and tail.
  double lowerBound = 0;
  {
    std::vector<double> bytes(c.capacity.size(), 0);
    std::vector<double> minLead(c.capacity.size(), kInf), minTail(c.capacity.size(), kInf);
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
        lowerBound = std::max(lowerBound, minLead[r] + bytes[r] / c.capacity[r] + minTail[r]);
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
  const double qf = quantileFactor(req);
  FairShare share(c.capacity);
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
  plan.quantile = req.quantile;
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
      LinkProfile link;
      link.bandwidthBytesPerSec = 1;
      auto est = suspend_->estimate(profileOf(req.vms[specs[i].vm]), link);
      double resumeS = 0;
      if (est) {
        for (const auto& ph : est->phases) {
          if (ph.name == "resume") resumeS = ph.seconds;
        }
      }
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
