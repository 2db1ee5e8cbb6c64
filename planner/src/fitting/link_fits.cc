// The link calibration and Liu's fits of model_fits.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "fitting/fit_support.h"
#include "fitting/model_fits.h"

namespace vrm::planner::fitting {
namespace {

// A bandwidth at which every transfer takes no time: the model's estimate there is the part of
// its time that no link can shorten (K_i in calibration.h).
constexpr double kUnboundedBandwidth = 1e18;
// The goodput factor is kept within this range so that a degenerate regression cannot send the
// models to absurd bandwidths.
constexpr double kMinGoodput = 1e-3;
constexpr double kMaxGoodput = 1e3;

}  // namespace

// The link calibration of calibration.h: overhead and goodput factor by a linear regression of
// T_i - K_i on x_i = g (P_i(g B_i) - K_i), repeated until g settles.
Status fitLink(Calibration& c, const std::vector<MigrationObservation>& obs) {
  auto model = createMigrationModel(c.model, c.parameters);
  if (!model) return model.status();
  std::vector<double> fixedPart(obs.size(), 0);
  for (std::size_t i = 0; i < obs.size(); ++i) {
    LinkProfile link;
    link.bandwidthBytesPerSec = kUnboundedBandwidth;
    auto e = (*model)->estimate(obs[i].vm, link);
    if (!e) return Status::invalid(where(obs[i], i) + ": " + e.status().message());
    fixedPart[i] = std::isfinite(e->totalTimeS) ? e->totalTimeS : 0;
  }
  double g = c.goodputFactor;
  double overhead = c.overheadS;
  int iterations = 0;
  std::size_t used = 0;
  bool identified = true;
  for (; iterations < 50; ++iterations) {
    auto predicted = predictAll(**model, obs, g, 0);
    if (!predicted) return predicted.status();
    std::vector<std::vector<double>> rows;
    std::vector<double> y;
    for (std::size_t i = 0; i < obs.size(); ++i) {
      const double p = (*predicted)[i].totalTimeS;
      if (!std::isfinite(p)) continue;
      rows.push_back({1.0, g * (p - fixedPart[i])});
      y.push_back(obs[i].totalTimeS - fixedPart[i]);
    }
    used = rows.size();
    if (used < 2) {
      return Status::invalid("model '" + c.model + "' predicts a finite time for " +
                             std::to_string(used) + " observation(s); at least 2 are needed");
    }
    const LinearFit fit = fitNonNegative(rows, y, {overhead, 1 / g});
    overhead = fit.coef[0];
    identified = fit.state[1] == Coef::kFitted && fit.coef[1] > 0;
    if (!identified) break;
    const double next = std::clamp(1 / fit.coef[1], kMinGoodput, kMaxGoodput);
    const bool settled = std::abs(next - g) <= 1e-9 * g;
    g = next;
    if (settled) break;
  }
  c.goodputFactor = g;
  c.overheadS = overhead;
  if (!identified) {
    c.notes.push_back("goodput_factor kept at " + formatShort(g) +
                      ": transfer times do not vary enough across the observations");
  }
  if (used < obs.size()) {
    c.notes.push_back(std::to_string(obs.size() - used) +
                      " observation(s) left out of the link fit: the model predicts no finite "
                      "time for them");
  }
  return Status::ok();
}

// liu-refined's gamma (a, b, c), jointly with the goodput factor (both shape the per-round
// volumes, so fitting them in turn would stop short): Nelder-Mead on the squared error of total
// time over (a, b, c, log g), the overhead re-solved in closed form at each point. The search is
// restarted once from its best point, the usual remedy for a simplex that collapsed early.
Status fitLiuGamma(Calibration& c, const std::vector<MigrationObservation>& obs,
                   int maxEvaluations) {
  const std::vector<std::string> keys = {"gamma_a", "gamma_b", "gamma_c"};
  auto overheadAndSse = [&](const std::vector<double>& x) -> std::pair<double, double> {
    constexpr double kWorst = std::numeric_limits<double>::max();
    ModelParameters p = c.parameters;
    for (std::size_t j = 0; j < keys.size(); ++j) p[keys[j]] = x[j];
    const double g = std::exp(x[3]);
    if (!(g >= kMinGoodput && g <= kMaxGoodput)) return {0, kWorst};
    auto model = createMigrationModel(c.model, p);
    if (!model) return {0, kWorst};
    auto predicted = predictAll(**model, obs, g, 0);
    if (!predicted) return {0, kWorst};
    double mean = 0;
    for (std::size_t i = 0; i < obs.size(); ++i) {
      mean += (obs[i].totalTimeS - (*predicted)[i].totalTimeS) / static_cast<double>(obs.size());
    }
    const double overhead = std::max(0.0, mean);  // the intercept in closed form
    double s = 0;
    for (std::size_t i = 0; i < obs.size(); ++i) {
      const double r = obs[i].totalTimeS - (*predicted)[i].totalTimeS - overhead;
      s += r * r;
    }
    return {overhead, std::isfinite(s) ? s : kWorst};
  };
  auto sse = [&](const std::vector<double>& x) { return overheadAndSse(x).second; };
  std::vector<double> start;
  for (const auto& k : keys) start.push_back(c.parameters.at(k));
  start.push_back(std::log(c.goodputFactor));
  // Steps of the order of each term's effect on gamma over typical rounds (seconds, MiB/s).
  const std::vector<double> steps = {std::max(0.02, std::abs(start[0]) / 2),
                                     std::max(2e-4, std::abs(start[1]) / 2),
                                     std::max(0.1, std::abs(start[2]) / 2), 0.1};
  SearchResult result = nelderMead(sse, start, steps, maxEvaluations / 2);
  const int firstEvaluations = result.evaluations;
  result = nelderMead(sse, result.best, steps, maxEvaluations - firstEvaluations);
  for (std::size_t j = 0; j < keys.size(); ++j) c.parameters[keys[j]] = result.best[j];
  c.goodputFactor = std::exp(result.best[3]);
  c.overheadS = overheadAndSse(result.best).first;
  c.notes.push_back(
      "gamma_a, gamma_b, gamma_c and goodput_factor fitted by Nelder-Mead on total "
      "time (" +
      std::to_string(firstEvaluations + result.evaluations) + " evaluations)");
  return Status::ok();
}

// Liu's eq. 15 energy coefficients from (V_mig, E) pairs.
Status fitLiuEnergy(Calibration& c, const std::vector<MigrationObservation>& obs) {
  std::vector<std::size_t> rowsWithEnergy;
  for (std::size_t i = 0; i < obs.size(); ++i) {
    if (obs[i].energyJ) rowsWithEnergy.push_back(i);
  }
  if (rowsWithEnergy.size() < 2) {
    c.notes.push_back("energy coefficients kept: fewer than 2 observations have energy_j");
    return Status::ok();
  }
  auto model = createMigrationModel(c.model, c.parameters);
  if (!model) return model.status();
  auto predicted = predictAll(**model, obs, c.goodputFactor, c.overheadS);
  if (!predicted) return predicted.status();
  std::vector<std::vector<double>> rows;
  std::vector<double> y;
  for (std::size_t i : rowsWithEnergy) {
    const double bytes = obs[i].transferredBytes.value_or((*predicted)[i].transferredBytes);
    if (!std::isfinite(bytes)) continue;
    rows.push_back({bytes / kMiB, 1.0});
    y.push_back(*obs[i].energyJ);
  }
  const LinearFit fit = fitNonNegative(
      rows, y, {c.parameters.at("energy_alpha_j_per_mib"), c.parameters.at("energy_beta_j")});
  applyFit(fit, {"energy_alpha_j_per_mib", "energy_beta_j"}, c.parameters, c.notes);
  return Status::ok();
}

}  // namespace vrm::planner::fitting
