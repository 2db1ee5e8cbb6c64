// "liu-base" and "liu-refined": Liu et al.'s live pre-copy models (HPDC'11, Section 3), plus the
// dirty-rate history, energy and cost helpers of liu_model.h. Contracts and parameter keys are in
// that header; the comments here explain how the paper's text maps onto code.
#include "vrm/planner/liu_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "models.h"

namespace vrm::planner {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
// A guard against absurd loop bounds from a params file; Xen's default is 29.
constexpr double kMaxRoundsLimit = 10000;

bool nonNegative(double v) { return std::isfinite(v) && v >= 0; }

const ModelParameters& liuBaseDefaults() {
  static const ModelParameters kDefaults = {
      {"threshold_pages", 50}, {"page_size_bytes", 4096},         {"max_rounds", 29},
      {"resume_time_s", 0.02}, {"energy_alpha_j_per_mib", 0.512}, {"energy_beta_j", 20.165},
  };
  return kDefaults;
}

const ModelParameters& liuRefinedDefaults() {
  static const ModelParameters kDefaults = [] {
    ModelParameters p = liuBaseDefaults();
    p.insert({{"gamma_a", -0.0463},
              {"gamma_b", -0.0001},
              {"gamma_c", 0.3586},
              {"mu", 0.7},
              {"phi", 0.5}});
    return p;
  }();
  return kDefaults;
}

Status checkLiuParameters(const ModelParameters& p) {
  if (!nonNegative(p.at("threshold_pages"))) return Status::invalid("threshold_pages must be >= 0");
  if (!(p.at("page_size_bytes") > 0)) return Status::invalid("page_size_bytes must be > 0");
  const double rounds = p.at("max_rounds");
  if (!nonNegative(rounds) || rounds != std::floor(rounds) || rounds > kMaxRoundsLimit) {
    return Status::invalid("max_rounds must be a whole number in [0, 10000]");
  }
  if (!nonNegative(p.at("resume_time_s"))) return Status::invalid("resume_time_s must be >= 0");
  if (p.count("mu")) {
    const double mu = p.at("mu");
    if (!(mu >= 0 && mu <= 1)) return Status::invalid("mu must be in [0, 1]");
    const double phi = p.at("phi");
    if (!(phi >= 0 && phi <= 1)) return Status::invalid("phi must be in [0, 1]");
  }
  return Status::ok();
}

// The parts of an estimate both Liu models share once the per-round volumes are known.
// `volumes` holds V_0..V_last, the last one being the stop-and-copy round.
MigrationEstimate finishEstimate(const std::vector<double>& volumes, double rateBytesPerSec,
                                 const LinkProfile& link, const ModelParameters& p) {
  MigrationEstimate e;
  if (link.preOverheadS > 0) e.phases.push_back({"setup", link.preOverheadS});
  double tMig = 0;
  double vMig = 0;
  for (std::size_t i = 0; i < volumes.size(); ++i) {
    const double t = volumes[i] / rateBytesPerSec;
    const bool last = i + 1 == volumes.size();
    e.phases.push_back({last ? "stop-and-copy" : "round " + std::to_string(i), t});
    tMig += t;
    vMig += volumes[i];
  }
  const double resume = p.at("resume_time_s");
  e.phases.push_back({"resume", resume});
  if (link.postOverheadS > 0) e.phases.push_back({"commit", link.postOverheadS});
  e.rounds = static_cast<int>(volumes.size());
  e.transferredBytes = vMig;
  e.downtimeS = volumes.back() / rateBytesPerSec + resume;  // eq. 7 / Algorithm 1 line 11
  e.totalTimeS = link.preOverheadS + tMig + resume + link.postOverheadS;
  e.energyJ = liuMigrationEnergyJ(vMig, p.at("energy_alpha_j_per_mib"), p.at("energy_beta_j"));
  e.extras["t_mig_s"] = tMig;
  e.extras["resume_time_s"] = resume;
  return e;
}

class LiuBaseModel final : public MigrationModel {
 public:
  explicit LiuBaseModel(ModelParameters params) : params_(std::move(params)) {}
  std::string_view name() const override { return "liu-base"; }
  ModelParameters parameters() const override { return params_; }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    if (Status s = validateProfiles(vm, link); !s) return s;
    const double vMem = vm.memoryBytes;
    const double r = link.bandwidthBytesPerSec;
    const double vThd = params_.at("threshold_pages") * params_.at("page_size_bytes");
    const int maxRounds = static_cast<int>(params_.at("max_rounds"));
    const double lambda = vm.dirtyRateBytesPerSec / r;  // eq. 3

    // Eq. 8: n is the first round whose volume V_mem * lambda^n (eq. 4) is <= V_thd.
    int n = maxRounds;
    bool converges = false;
    if (vMem <= vThd) {
      n = 0;  // log_lambda of a ratio >= 1 is <= 0: the whole memory is the last round
      converges = true;
    } else if (lambda == 0) {
      n = std::min(1, maxRounds);  // nothing is dirtied: V_1 = 0; log_0 is undefined
      converges = n == 1;
    } else if (lambda < 1) {
      // A tiny tolerance so that exact powers (V_thd / V_mem == lambda^k) give k, not k + 1.
      const double x = std::log(vThd / vMem) / std::log(lambda);
      const double rounds = std::ceil(x - 1e-9);
      if (rounds <= maxRounds) {
        n = std::max(0, static_cast<int>(rounds));
        converges = true;
      }
    }

    // Eq. 4: V_i = V_mem * lambda^i. Listing the rounds makes the per-round phases; their sum is
    // eq. 5 and is checked against the closed form below.
    std::vector<double> volumes;
    for (int i = 0; i <= n; ++i) volumes.push_back(vMem * std::pow(lambda, i));
    MigrationEstimate e = finishEstimate(volumes, r, link, params_);
    // Eqs. 5 and 6 in closed form (lambda = 1 is the limit V_mem * (n + 1)).
    const double sum = lambda == 1 ? n + 1.0 : (1 - std::pow(lambda, n + 1)) / (1 - lambda);
    e.transferredBytes = vMem * sum;
    e.extras["t_mig_s"] = vMem / r * sum;
    e.totalTimeS =
        link.preOverheadS + vMem / r * sum + params_.at("resume_time_s") + link.postOverheadS;
    e.energyJ = liuMigrationEnergyJ(e.transferredBytes, params_.at("energy_alpha_j_per_mib"),
                                    params_.at("energy_beta_j"));
    e.converges = converges;
    e.extras["lambda"] = lambda;
    e.extras["n"] = n;
    return e;
  }

 private:
  ModelParameters params_;
};

class LiuRefinedModel final : public MigrationModel {
 public:
  explicit LiuRefinedModel(ModelParameters params) : params_(std::move(params)) {}
  std::string_view name() const override { return "liu-refined"; }
  ModelParameters parameters() const override { return params_; }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    if (Status s = validateProfiles(vm, link); !s) return s;
    // Section 3.2: with a history, D is the current sample blended (eq. 13) with the EWMA
    // (eq. 12) of the previous migrations' weighted means (eq. 11, kept by the VRM).
    double d = vm.dirtyRateBytesPerSec;
    if (!vm.dirtyRateHistoryBytesPerSec.empty()) {
      auto ewma = ewmaDirtyRate(vm.dirtyRateHistoryBytesPerSec, params_.at("mu"));
      if (!ewma) return ewma.status();
      auto blended = blendDirtyRate(d, *ewma, params_.at("phi"));
      if (!blended) return blended.status();
      d = *blended;
    }
    const double r = link.bandwidthBytesPerSec;
    const double vThd = params_.at("threshold_pages") * params_.at("page_size_bytes");
    const int maxRounds = static_cast<int>(params_.at("max_rounds"));
    const double a = params_.at("gamma_a");
    const double b = params_.at("gamma_b");
    const double c = params_.at("gamma_c");

    // Algorithm 1, line by line. v[i] is V_i; the loop runs i = 0..max_round as in line 3.
    std::vector<double> v = {vm.memoryBytes};  // line 2
    bool stopped = false;
    double skippedBytes = 0;  // sum of W_{i+1} over the rounds that deferred hot pages
    double lastW = 0;
    for (int i = 0; i <= maxRounds; ++i) {
      const double t = v[i] / r;                                            // line 4
      const double gamma = std::clamp(a * t + b * d / kMiB + c, 0.0, 1.0);  // line 5, eq. 10
      const double w = gamma * t * d;                                       // line 6, eq. 9
      const double next = t * d - w;                                        // line 7
      if (next <= vThd || next > v[i]) {                                    // line 8
        v.push_back(t * d);  // line 9: the last round also sends the skipped hot pages
        stopped = true;
        break;
      }
      skippedBytes += w;
      lastW = w;
      v.push_back(next);
    }
    if (!stopped) {
      // max_round passed without the stop test: Xen then stops the VM and sends everything
      // dirtied during the last pre-copy round, hot pages included.
      v.back() = v[v.size() - 2] / r * d;
      skippedBytes -= lastW;
    }
    // Lines 10-16, summing every round executed (the paper's sums stop at max_round, which would
    // drop the final round whenever the loop breaks early or runs out).
    MigrationEstimate e = finishEstimate(v, r, link, params_);
    e.converges = stopped;
    e.extras["dirty_rate_bytes_per_s"] = d;
    e.extras["wws_deferred_bytes"] = skippedBytes;
    return e;
  }

 private:
  ModelParameters params_;
};

}  // namespace

Result<double> weightedMeanDirtyRate(const std::vector<RoundDirtyRate>& rounds) {
  if (rounds.empty()) return Status::invalid("no pre-copy rounds to average");
  double weighted = 0;
  double time = 0;
  for (const RoundDirtyRate& round : rounds) {
    if (!nonNegative(round.dirtyRateBytesPerSec) || !nonNegative(round.durationS)) {
      return Status::invalid("round dirty rates and durations must be >= 0");
    }
    weighted += round.dirtyRateBytesPerSec * round.durationS;
    time += round.durationS;
  }
  if (time == 0) return Status::invalid("pre-copy rounds have zero total duration");
  return weighted / time;
}

Result<double> ewmaDirtyRate(const std::vector<double>& historyBytesPerSec, double mu) {
  if (historyBytesPerSec.empty()) return Status::invalid("dirty-rate history is empty");
  if (!(mu >= 0 && mu <= 1)) return Status::invalid("mu must be in [0, 1]");
  double ewma = 0;
  for (std::size_t m = 0; m < historyBytesPerSec.size(); ++m) {
    const double mean = historyBytesPerSec[m];
    if (!nonNegative(mean)) return Status::invalid("dirty-rate history entries must be >= 0");
    ewma = m == 0 ? mean : mu * mean + (1 - mu) * ewma;
  }
  return ewma;
}

Result<double> blendDirtyRate(double currentSampleBytesPerSec, double ewmaBytesPerSec, double phi) {
  if (!nonNegative(currentSampleBytesPerSec) || !nonNegative(ewmaBytesPerSec)) {
    return Status::invalid("dirty rates must be >= 0");
  }
  if (!(phi >= 0 && phi <= 1)) return Status::invalid("phi must be in [0, 1]");
  return phi * currentSampleBytesPerSec + (1 - phi) * ewmaBytesPerSec;
}

double liuMigrationEnergyJ(double transferredBytes, double alphaJPerMiB, double betaJ) {
  return alphaJPerMiB * transferredBytes / kMiB + betaJ;
}

Result<MigrationCostRanking> rankMigrationCandidates(
    const std::vector<MigrationEstimate>& candidates, const MigrationCostWeights& weights) {
  if (candidates.empty()) return Status::invalid("no migration candidates to rank");
  const double w[4] = {weights.downtime, weights.migrationTime, weights.traffic, weights.energy};
  double weightSum = 0;
  for (double x : w) {
    if (!nonNegative(x)) return Status::invalid("cost weights must be >= 0");
    weightSum += x;
  }
  if (std::abs(weightSum - 1) > 1e-9) return Status::invalid("cost weights must sum to 1");

  std::vector<std::array<double, 4>> metrics;
  std::array<double, 4> maxima = {0, 0, 0, 0};
  for (const MigrationEstimate& e : candidates) {
    if (weights.energy > 0 && !e.energyJ) {
      return Status::invalid("a candidate has no energy estimate but the energy weight is > 0");
    }
    const std::array<double, 4> m = {e.downtimeS, e.totalTimeS, e.transferredBytes,
                                     e.energyJ.value_or(0)};
    for (std::size_t k = 0; k < 4; ++k) {
      if (!nonNegative(m[k])) return Status::invalid("candidate metrics must be >= 0");
      maxima[k] = std::max(maxima[k], m[k]);
    }
    metrics.push_back(m);
  }
  MigrationCostRanking ranking;
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    double cost = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      if (maxima[k] > 0) cost += w[k] * metrics[i][k] / maxima[k];
    }
    ranking.costs.push_back(cost);
    if (cost < ranking.costs[ranking.cheapestIndex]) ranking.cheapestIndex = i;
  }
  return ranking;
}

Result<std::unique_ptr<MigrationModel>> makeLiuBaseModel(const ModelParameters& params) {
  auto merged = mergeParameters("liu-base", liuBaseDefaults(), params);
  if (!merged) return merged.status();
  if (Status s = checkLiuParameters(*merged); !s) return s;
  return std::unique_ptr<MigrationModel>(new LiuBaseModel(std::move(*merged)));
}

Result<std::unique_ptr<MigrationModel>> makeLiuRefinedModel(const ModelParameters& params) {
  auto merged = mergeParameters("liu-refined", liuRefinedDefaults(), params);
  if (!merged) return merged.status();
  if (Status s = checkLiuParameters(*merged); !s) return s;
  return std::unique_ptr<MigrationModel>(new LiuRefinedModel(std::move(*merged)));
}

}  // namespace vrm::planner
