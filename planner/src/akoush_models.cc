// Akoush et al.'s Xen pre-copy models: "akoush-bounds" (eqs. 3-4), "akoush-avg" (Algorithm 1)
// and "akoush-hist" (Algorithm 1 driven by a dirty log). Semantics and parameters are documented
// in vrm/planner/akoush_models.h.
#include "vrm/planner/akoush_models.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "models.h"

namespace vrm::planner {
namespace {

using namespace akoush;  // NOLINT: the key constants

const ModelParameters& pageDefaults() {
  static const ModelParameters kDefaults = {{kPageBytes, 4096}};
  return kDefaults;
}

ModelParameters simulationDefaults(bool hist) {
  ModelParameters d = {{kPageBytes, 4096},
                       {kStopPages, 50},
                       {kMaxIterations, 29},
                       {kMaxFactor, 3},
                       {kBatchPages, 1024}};
  if (hist) d[kStartOffsetS] = 0;
  return d;
}

Status checkParameters(std::string_view model, const ModelParameters& p) {
  auto positive = [&](const char* key) -> Status {
    auto it = p.find(key);
    if (it != p.end() && !(it->second > 0)) {
      return Status::invalid("model '" + std::string(model) + "': " + key + " must be positive");
    }
    return Status::ok();
  };
  auto nonNegative = [&](const char* key) -> Status {
    auto it = p.find(key);
    if (it != p.end() && !(it->second >= 0)) {
      return Status::invalid("model '" + std::string(model) + "': " + key + " must be >= 0");
    }
    return Status::ok();
  };
  for (const char* key : {kPageBytes, kMaxFactor, kBatchPages}) {
    if (Status s = positive(key); !s) return s;
  }
  for (const char* key : {kStopPages, kStartOffsetS}) {
    if (Status s = nonNegative(key); !s) return s;
  }
  if (auto it = p.find(kMaxIterations); it != p.end()) {
    if (it->second < 1 || it->second != std::floor(it->second) || it->second > 1e6) {
      return Status::invalid("model '" + std::string(model) +
                             "': max_iterations must be a whole number in [1, 1e6]");
    }
  }
  return Status::ok();
}

Status checkVm(const VmProfile& vm, const LinkProfile& link, double pageBytes) {
  if (Status s = validateProfiles(vm, link); !s) return s;
  if (vm.memoryBytes < pageBytes) return Status::invalid("memory is smaller than one page");
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// akoush-bounds

class AkoushBoundsModel final : public MigrationModel {
 public:
  explicit AkoushBoundsModel(ModelParameters params) : params_(std::move(params)) {}
  std::string_view name() const override { return kBoundsModel; }
  ModelParameters parameters() const override { return params_; }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    const double page = params_.at(kPageBytes);
    if (Status s = checkVm(vm, link, page); !s) return s;
    const double b = link.bandwidthBytesPerSec;
    const double m = vm.memoryBytes;
    const double overheads = link.preOverheadS + link.postOverheadS;
    const double upperBytes = 5 * m - page;  // eq. 3 and its footnote 1

    MigrationEstimate e;
    e.extras["total_time_min_s"] = overheads + m / b;
    e.extras["total_time_max_s"] = overheads + upperBytes / b;
    e.extras["downtime_min_s"] = link.postOverheadS;
    e.extras["downtime_max_s"] = link.postOverheadS + m / b;
    // The upper-bound scenario: pre-copy rounds send 3M - 1 page, one more round sends M and
    // crosses 3M, then stop-and-copy sends all of M again. With at most M per round that is at
    // least 3 + 1 rounds of pre-copy and the final round.
    e.totalTimeS = e.extras["total_time_max_s"];
    e.downtimeS = e.extras["downtime_max_s"];
    e.transferredBytes = upperBytes;
    e.rounds = 5;
    e.converges = false;  // the upper bound is reached only when Xen forces the stop
    e.phases = {{"pre-migration", link.preOverheadS},
                {"pre-copy", (4 * m - page) / b},
                {"stop-and-copy", m / b},
                {"post-migration", link.postOverheadS}};
    return e;
  }

 private:
  ModelParameters params_;
};

// ---------------------------------------------------------------------------------------------
// Algorithm 1 at batch granularity, shared by AVG and HIST.

struct SimulationParams {
  double pageBytes;
  double stopPages;
  int maxIterations;
  double maxFactor;
  double batchPages;

  static SimulationParams from(const ModelParameters& p) {
    return {p.at(kPageBytes), p.at(kStopPages), static_cast<int>(p.at(kMaxIterations)),
            p.at(kMaxFactor), p.at(kBatchPages)};
  }
};

struct SimulationOutcome {
  MigrationEstimate estimate;
  double lastPrecopyEndS = 0;  // transfer time (after pre-overhead) when the VM was paused
};

// `dirtied(t0, t1)` is the number of distinct pages dirtied in [t0, t1), times measured in
// seconds from the first byte sent; the simulation caps it at the region size.
template <typename Dirtied>
SimulationOutcome simulatePrecopy(const VmProfile& vm, const LinkProfile& link,
                                  const SimulationParams& p, const Dirtied& dirtied) {
  const double pages = vm.memoryBytes / p.pageBytes;
  const double region = vm.writableWorkingSetBytes > 0
                            ? std::min(pages, vm.writableWorkingSetBytes / p.pageBytes)
                            : pages;
  const double linkPagesPerS = link.bandwidthBytesPerSec / p.pageBytes;
  auto dirtiedInRegion = [&](double t0, double t1) { return std::min(region, dirtied(t0, t1)); };

  SimulationOutcome out;
  MigrationEstimate& e = out.estimate;
  e.phases.push_back({"pre-migration", link.preOverheadS});

  double t = 0;  // seconds of transfer so far
  double totalSent = 0;
  double skippedTotal = 0;
  double toSend = pages;           // this round's to-send set size
  double toSendInRegion = region;  // how many of them can be re-dirtied (and so skipped)
  double finalPages = 0;
  int round = 0;
  while (true) {
    ++round;
    const double roundStart = t;
    double sent = 0;
    double skipped = 0;
    double unscanned = 1;  // fraction of the address space the scan has not reached yet
    while (unscanned > 0) {
      // Peek: the fraction of the region re-dirtied since this round began.
      const double dirtyFraction = dirtiedInRegion(roundStart, t) / region;
      const double remainingSkips = unscanned * toSendInRegion * dirtyFraction;
      const double sendable = unscanned * toSend - remainingSkips;
      if (sendable <= p.batchPages) {  // the rest of the scan fills at most one batch
        sent += sendable;
        skipped += remainingSkips;
        t += sendable / linkPagesPerS;
        unscanned = 0;
      } else {
        const double share = p.batchPages / sendable;  // of the remaining scan, for one batch
        sent += p.batchPages;
        skipped += share * remainingSkips;
        t += p.batchPages / linkPagesPerS;
        unscanned *= 1 - share;
      }
    }
    totalSent += sent;
    skippedTotal += skipped;
    e.phases.push_back({"round " + std::to_string(round), t - roundStart});
    const double dirtiedThisRound = dirtiedInRegion(roundStart, t);
    const bool fewPages = sent + skipped < p.stopPages;
    if (fewPages || round >= p.maxIterations || totalSent > pages * p.maxFactor) {
      e.converges = fewPages;
      finalPages = dirtiedThisRound;
      break;
    }
    toSend = dirtiedThisRound;
    toSendInRegion = dirtiedThisRound;
  }

  out.lastPrecopyEndS = t;
  const double stopCopyS = finalPages / linkPagesPerS;
  e.phases.push_back({"stop-and-copy", stopCopyS});
  e.phases.push_back({"post-migration", link.postOverheadS});
  e.rounds = round + 1;
  e.totalTimeS = link.preOverheadS + t + stopCopyS + link.postOverheadS;
  e.downtimeS = stopCopyS + link.postOverheadS;
  e.transferredBytes = (totalSent + finalPages) * p.pageBytes;
  e.extras["precopy_bytes"] = totalSent * p.pageBytes;
  e.extras["stop_copy_bytes"] = finalPages * p.pageBytes;
  e.extras["skipped_pages"] = skippedTotal;
  return out;
}

class AkoushAvgModel final : public MigrationModel {
 public:
  explicit AkoushAvgModel(ModelParameters params) : params_(std::move(params)) {}
  std::string_view name() const override { return kAvgModel; }
  ModelParameters parameters() const override { return params_; }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    const SimulationParams p = SimulationParams::from(params_);
    if (Status s = checkVm(vm, link, p.pageBytes); !s) return s;
    const double ratePagesPerS = vm.dirtyRateBytesPerSec / p.pageBytes;
    auto dirtied = [ratePagesPerS](double t0, double t1) { return ratePagesPerS * (t1 - t0); };
    return simulatePrecopy(vm, link, p, dirtied).estimate;
  }

 private:
  ModelParameters params_;
};

// The log as a cumulative page count over time, repeated cyclically past its end.
class LogDirtying {
 public:
  LogDirtying(const DirtyLog& log, double startOffsetS)
      : entries_(log.dirtiedPages), intervalS_(log.intervalS), offsetS_(startOffsetS) {
    prefix_.reserve(entries_.size() + 1);
    prefix_.push_back(0);
    for (double c : entries_) prefix_.push_back(prefix_.back() + c);
  }

  double operator()(double t0, double t1) const {
    return cumulative(offsetS_ + t1) - cumulative(offsetS_ + t0);
  }
  double durationS() const { return intervalS_ * static_cast<double>(entries_.size()); }
  double offsetS() const { return offsetS_; }

 private:
  // Pages dirtied in [0, t) of the (cyclic) log, linear within an interval.
  double cumulative(double t) const {
    const double n = static_cast<double>(entries_.size());
    const double x = t / intervalS_;
    const double cycles = std::floor(x / n);
    const double within = x - cycles * n;
    const size_t i = std::min(entries_.size() - 1, static_cast<size_t>(within));
    return cycles * prefix_.back() + prefix_[i] + (within - static_cast<double>(i)) * entries_[i];
  }

  const std::vector<double>& entries_;
  double intervalS_;
  double offsetS_;
  std::vector<double> prefix_;
};

class AkoushHistModel final : public MigrationModel {
 public:
  explicit AkoushHistModel(ModelParameters params) : params_(std::move(params)) {}
  std::string_view name() const override { return kHistModel; }
  ModelParameters parameters() const override { return params_; }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    const SimulationParams p = SimulationParams::from(params_);
    if (Status s = checkVm(vm, link, p.pageBytes); !s) return s;
    if (!vm.dirtyLog) return Status::invalid("akoush-hist needs a dirty log (VmProfile::dirtyLog)");
    const DirtyLog& log = *vm.dirtyLog;
    if (log.dirtiedPages.empty()) return Status::invalid("dirty log is empty");
    if (!std::isfinite(log.intervalS) || log.intervalS <= 0) {
      return Status::invalid("dirty log interval must be positive");
    }
    for (double c : log.dirtiedPages) {
      if (!std::isfinite(c) || c < 0) return Status::invalid("dirty log counts must be >= 0");
    }
    const LogDirtying dirtied(log, params_.at(kStartOffsetS));
    SimulationOutcome out = simulatePrecopy(vm, link, p, dirtied);
    out.estimate.extras["log_wrapped"] =
        dirtied.offsetS() + out.lastPrecopyEndS > dirtied.durationS() ? 1 : 0;
    return std::move(out.estimate);
  }

 private:
  ModelParameters params_;
};

template <typename Model>
Result<std::unique_ptr<MigrationModel>> make(const char* name, const ModelParameters& defaults,
                                             const ModelParameters& params) {
  auto merged = mergeParameters(name, defaults, params);
  if (!merged) return merged.status();
  if (Status s = checkParameters(name, *merged); !s) return s;
  return std::unique_ptr<MigrationModel>(new Model(std::move(*merged)));
}

}  // namespace

Result<std::unique_ptr<MigrationModel>> makeAkoushBoundsModel(const ModelParameters& params) {
  return make<AkoushBoundsModel>(kBoundsModel, pageDefaults(), params);
}

Result<std::unique_ptr<MigrationModel>> makeAkoushAvgModel(const ModelParameters& params) {
  return make<AkoushAvgModel>(kAvgModel, simulationDefaults(false), params);
}

Result<std::unique_ptr<MigrationModel>> makeAkoushHistModel(const ModelParameters& params) {
  return make<AkoushHistModel>(kHistModel, simulationDefaults(true), params);
}

}  // namespace vrm::planner
