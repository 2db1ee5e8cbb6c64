// Calibrator and CalibratedModel. What each fit does, and why it is shaped so, is in
// vrm/planner/calibration.h; the comments here explain the numerics.
#include "vrm/planner/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>
#include <string>

#include "models.h"

namespace vrm::planner {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kMiB = 1024.0 * 1024.0;
// A bandwidth at which every transfer takes no time: the model's estimate there is the part of
// its time that no link can shorten (K_i in calibration.h).
constexpr double kUnboundedBandwidth = 1e18;
// The goodput factor is kept within this range so that a degenerate regression cannot send the
// models to absurd bandwidths.
constexpr double kMinGoodput = 1e-3;
constexpr double kMaxGoodput = 1e3;

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string where(const MigrationObservation& o, std::size_t index) {
  return o.line > 0 ? "observation line " + std::to_string(o.line)
                    : "observation #" + std::to_string(index + 1);
}

// ---------------------------------------------------------------------------------------------
// Least squares with non-negative coefficients.

enum class Coef { kFitted, kAtZero, kUnidentified };

struct LinearFit {
  std::vector<double> coef;
  std::vector<Coef> state;
};

// Minimises sum_i (y_i - rows_i . b)^2 subject to b >= 0. Columns the rows cannot identify
// (all zero, or collinear with the others) keep `prior`; a coefficient that comes out negative is
// pinned at 0 and the rest refitted (a simple active set; each pass pins one more, so it ends).
// Columns are scaled to unit RMS before the normal equations are solved, which keeps seconds,
// GiB and GiB^2 columns comparable.
LinearFit fitNonNegative(const std::vector<std::vector<double>>& rows, const std::vector<double>& y,
                         const std::vector<double>& prior) {
  const std::size_t p = prior.size();
  const std::size_t n = rows.size();
  LinearFit fit{prior, std::vector<Coef>(p, Coef::kFitted)};
  auto pinnedValue = [&](std::size_t j) { return fit.state[j] == Coef::kAtZero ? 0.0 : prior[j]; };
  for (std::size_t pass = 0; pass <= p; ++pass) {
    std::vector<std::size_t> cols;
    for (std::size_t j = 0; j < p; ++j) {
      if (fit.state[j] == Coef::kFitted) cols.push_back(j);
    }
    std::vector<double> r = y;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < p; ++j) {
        if (fit.state[j] != Coef::kFitted) r[i] -= rows[i][j] * pinnedValue(j);
      }
    }
    const std::size_t m = cols.size();
    std::vector<double> scale(m, 0);
    bool restart = false;
    for (std::size_t k = 0; k < m && !restart; ++k) {
      for (std::size_t i = 0; i < n; ++i) scale[k] += rows[i][cols[k]] * rows[i][cols[k]];
      scale[k] = std::sqrt(scale[k] / static_cast<double>(n));
      if (!(scale[k] > 0)) {
        fit.state[cols[k]] = Coef::kUnidentified;
        restart = true;
      }
    }
    if (restart) continue;
    // Normal equations [A | b] on scaled columns; Gaussian elimination with partial pivoting.
    std::vector<std::vector<double>> a(m, std::vector<double>(m + 1, 0));
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < m; ++k) {
        const double xk = rows[i][cols[k]] / scale[k];
        for (std::size_t l = 0; l < m; ++l) a[k][l] += xk * rows[i][cols[l]] / scale[l];
        a[k][m] += xk * r[i];
      }
    }
    const double tolerance = 1e-9 * static_cast<double>(n);
    for (std::size_t k = 0; k < m && !restart; ++k) {
      std::size_t best = k;
      for (std::size_t row = k + 1; row < m; ++row) {
        if (std::abs(a[row][k]) > std::abs(a[best][k])) best = row;
      }
      if (std::abs(a[best][k]) < tolerance) {
        fit.state[cols[k]] = Coef::kUnidentified;
        restart = true;
        break;
      }
      std::swap(a[k], a[best]);
      for (std::size_t row = k + 1; row < m; ++row) {
        const double f = a[row][k] / a[k][k];
        for (std::size_t l = k; l <= m; ++l) a[row][l] -= f * a[k][l];
      }
    }
    if (restart) continue;
    std::vector<double> b(m, 0);
    for (std::size_t k = m; k-- > 0;) {
      double s = a[k][m];
      for (std::size_t l = k + 1; l < m; ++l) s -= a[k][l] * b[l];
      b[k] = s / a[k][k];
    }
    std::size_t worst = m;
    for (std::size_t k = 0; k < m; ++k) {
      if (b[k] < 0 && (worst == m || b[k] < b[worst])) worst = k;
    }
    if (worst != m) {
      fit.state[cols[worst]] = Coef::kAtZero;
      continue;
    }
    for (std::size_t j = 0; j < p; ++j) fit.coef[j] = pinnedValue(j);
    for (std::size_t k = 0; k < m; ++k) fit.coef[cols[k]] = b[k] / scale[k];
    return fit;
  }
  for (std::size_t j = 0; j < p; ++j) fit.coef[j] = pinnedValue(j);
  return fit;
}

// Stores fitted coefficients under `keys` and notes the ones the data could not identify.
void applyFit(const LinearFit& fit, const std::vector<std::string>& keys, ModelParameters& params,
              std::vector<std::string>& notes) {
  for (std::size_t j = 0; j < keys.size(); ++j) {
    params[keys[j]] = fit.coef[j];
    if (fit.state[j] == Coef::kUnidentified) {
      notes.push_back(keys[j] + " kept at " + fmt(fit.coef[j]) +
                      ": not identifiable from these observations");
    } else if (fit.state[j] == Coef::kAtZero) {
      notes.push_back(keys[j] + " pinned at 0: the unconstrained fit was negative");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Nelder-Mead: a small deterministic simplex search for the parameters that are not linear.

struct SearchResult {
  std::vector<double> best;
  double value = 0;
  int evaluations = 0;
};

SearchResult nelderMead(const std::function<double(const std::vector<double>&)>& f,
                        const std::vector<double>& start, const std::vector<double>& steps,
                        int maxEvaluations) {
  const std::size_t n = start.size();
  std::vector<std::vector<double>> x(n + 1, start);
  for (std::size_t j = 0; j < n; ++j) x[j + 1][j] += steps[j];
  std::vector<double> fx(n + 1);
  int evals = 0;
  auto eval = [&](const std::vector<double>& p) {
    ++evals;
    return f(p);
  };
  for (std::size_t i = 0; i <= n; ++i) fx[i] = eval(x[i]);
  auto along = [&](const std::vector<double>& c, const std::vector<double>& worst, double t) {
    std::vector<double> p(n);
    for (std::size_t j = 0; j < n; ++j) p[j] = c[j] + t * (worst[j] - c[j]);
    return p;
  };
  while (evals < maxEvaluations) {
    std::vector<std::size_t> order(n + 1);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return fx[a] < fx[b]; });
    std::vector<std::vector<double>> xs;
    std::vector<double> fs;
    for (std::size_t i : order) {
      xs.push_back(x[i]);
      fs.push_back(fx[i]);
    }
    x = std::move(xs);
    fx = std::move(fs);
    if (fx[n] - fx[0] <= 1e-12 * (std::abs(fx[0]) + 1e-300)) break;
    std::vector<double> centroid(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) centroid[j] += x[i][j] / static_cast<double>(n);
    }
    const auto reflected = along(centroid, x[n], -1);
    const double fr = eval(reflected);
    if (fr < fx[0]) {
      const auto expanded = along(centroid, x[n], -2);
      const double fe = eval(expanded);
      x[n] = fe < fr ? expanded : reflected;
      fx[n] = std::min(fe, fr);
    } else if (fr < fx[n - 1]) {
      x[n] = reflected;
      fx[n] = fr;
    } else {
      const bool outside = fr < fx[n];
      const auto contracted = along(centroid, x[n], outside ? -0.5 : 0.5);
      const double fc = eval(contracted);
      if (fc < std::min(fr, fx[n])) {
        x[n] = contracted;
        fx[n] = fc;
      } else {
        for (std::size_t i = 1; i <= n; ++i) {  // shrink towards the best point
          for (std::size_t j = 0; j < n; ++j) x[i][j] = x[0][j] + 0.5 * (x[i][j] - x[0][j]);
          fx[i] = eval(x[i]);
        }
      }
    }
  }
  const auto best = std::min_element(fx.begin(), fx.end()) - fx.begin();
  return {x[best], fx[best], evals};
}

// ---------------------------------------------------------------------------------------------
// Predictions for every observation.

LinkProfile linkFor(const MigrationObservation& o, double goodput, double overheadS) {
  LinkProfile link;
  link.bandwidthBytesPerSec = o.bandwidthBytesPerSec * goodput;
  link.preOverheadS = overheadS;
  return link;
}

Result<std::vector<MigrationEstimate>> predictAll(const MigrationModel& model,
                                                  const std::vector<MigrationObservation>& obs,
                                                  double goodput, double overheadS) {
  std::vector<MigrationEstimate> out;
  out.reserve(obs.size());
  for (std::size_t i = 0; i < obs.size(); ++i) {
    auto e = model.estimate(obs[i].vm, linkFor(obs[i], goodput, overheadS));
    if (!e) return Status::invalid(where(obs[i], i) + ": " + e.status().message());
    out.push_back(std::move(*e));
  }
  return out;
}

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
    c.notes.push_back("goodput_factor kept at " + fmt(g) +
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

// A fitted copy factor of 0 would mean an infinitely fast link: the scr fits keep the prior.
void keepCopyFactorPositive(Calibration& c, double bandwidthFactor) {
  if (c.parameters.at("copy_bandwidth_factor") > 0) return;
  c.parameters["copy_bandwidth_factor"] = bandwidthFactor;
  c.notes.push_back("copy_bandwidth_factor kept at " + fmt(bandwidthFactor) +
                    ": a factor of 0 would mean an infinitely fast link");
}

// zhao-scr's phase coefficients: per phase when the phases were measured, else on total time.
Status fitZhao(Calibration& c, const std::vector<MigrationObservation>& obs) {
  ModelParameters& p = c.parameters;
  const bool disk = p.at("destination_disk") == 1;
  const bool phases = std::all_of(obs.begin(), obs.end(), [](const MigrationObservation& o) {
    return o.suspendS && o.copyS && o.resumeS;
  });
  std::vector<std::vector<double>> suspendRows, copyRows, resumeRows, totalRows;
  std::vector<double> suspendY, copyY, resumeY, totalY;
  for (const MigrationObservation& o : obs) {
    const double memGiB = o.vm.memoryBytes / kGiB;
    const double modGiB = o.vm.modifiedMemoryBytes / kGiB;
    const double state = o.vm.memoryBytes + o.vm.diskBytes;
    const double perBandwidth = state / o.bandwidthBytesPerSec;
    const double state2 = (state / kGiB) * (state / kGiB);
    suspendRows.push_back({1, memGiB, modGiB});
    copyRows.push_back(disk ? std::vector<double>{1, perBandwidth, state2}
                            : std::vector<double>{1, perBandwidth});
    resumeRows.push_back({1, memGiB});
    totalRows.push_back(disk ? std::vector<double>{1, memGiB, modGiB, perBandwidth, state2}
                             : std::vector<double>{1, memGiB, modGiB, perBandwidth});
    if (phases) {
      suspendY.push_back(*o.suspendS);
      copyY.push_back(*o.copyS);
      resumeY.push_back(*o.resumeS);
    }
    totalY.push_back(o.totalTimeS);
  }
  std::vector<std::string> copyKeys = {"copy_base_s", "copy_bandwidth_factor"};
  if (disk) copyKeys.push_back("copy_disk_s_per_gib2");
  auto priors = [&](const std::vector<std::string>& keys) {
    std::vector<double> v;
    for (const auto& k : keys) v.push_back(p.at(k));
    return v;
  };
  const double bandwidthFactor = p.at("copy_bandwidth_factor");
  if (phases) {
    const std::vector<std::string> suspendKeys = {"suspend_base_s", "suspend_s_per_gib",
                                                  "suspend_s_per_modified_gib"};
    const std::vector<std::string> resumeKeys = {"resume_time_s", "resume_s_per_gib"};
    applyFit(fitNonNegative(suspendRows, suspendY, priors(suspendKeys)), suspendKeys, p, c.notes);
    applyFit(fitNonNegative(copyRows, copyY, priors(copyKeys)), copyKeys, p, c.notes);
    applyFit(fitNonNegative(resumeRows, resumeY, priors(resumeKeys)), resumeKeys, p, c.notes);
    c.notes.push_back("zhao-scr phases fitted separately on suspend_s, copy_s, resume_s");
  } else {
    std::vector<std::string> keys = {"suspend_base_s", "suspend_s_per_gib",
                                     "suspend_s_per_modified_gib", "copy_bandwidth_factor"};
    std::vector<double> prior = {
        p.at("suspend_base_s") + p.at("resume_time_s") + p.at("copy_base_s"),
        p.at("suspend_s_per_gib") + p.at("resume_s_per_gib"), p.at("suspend_s_per_modified_gib"),
        bandwidthFactor};
    if (disk) {
      keys.push_back("copy_disk_s_per_gib2");
      prior.push_back(p.at("copy_disk_s_per_gib2"));
    }
    p["resume_time_s"] = 0;
    p["resume_s_per_gib"] = 0;
    p["copy_base_s"] = 0;
    applyFit(fitNonNegative(totalRows, totalY, prior), keys, p, c.notes);
    c.notes.push_back(
        "zhao-scr fitted on total time (no suspend_s/copy_s/resume_s on every row): constant and "
        "per-GiB terms booked to suspend; resume_time_s, resume_s_per_gib, copy_base_s set to 0");
  }
  keepCopyFactorPositive(c, bandwidthFactor);
  return Status::ok();
}

// qemu-scr's phases, each from its own column when every row has them, else the total. The
// state size of a row is its observed transferred bytes (the staged file) when known, else the
// model's; device_state_bytes is refitted as the median of (observed - modelled) state.
Status fitQemuScr(Calibration& c, const std::vector<MigrationObservation>& obs) {
  ModelParameters& p = c.parameters;
  auto model = createMigrationModel(c.model, p);
  if (!model) return model.status();
  std::vector<double> stateExcess;
  std::vector<double> state(obs.size());
  for (std::size_t i = 0; i < obs.size(); ++i) {
    LinkProfile link;
    link.bandwidthBytesPerSec = obs[i].bandwidthBytesPerSec;
    auto e = (*model)->estimate(obs[i].vm, link);
    if (!e) return Status::invalid(where(obs[i], i) + ": " + e.status().message());
    state[i] = e->transferredBytes;
    if (obs[i].transferredBytes) {
      stateExcess.push_back(*obs[i].transferredBytes -
                            (e->transferredBytes - p.at("device_state_bytes")));
      state[i] = *obs[i].transferredBytes;
    }
  }
  if (!stateExcess.empty()) {
    std::sort(stateExcess.begin(), stateExcess.end());
    p["device_state_bytes"] = std::max(0.0, residualQuantile(stateExcess, 0.5));
    c.notes.push_back("device_state_bytes fitted as the median state beyond the memory stream");
  }
  const bool phases = std::all_of(obs.begin(), obs.end(), [](const MigrationObservation& o) {
    return o.suspendS && o.copyS && o.resumeS;
  });
  auto priors = [&](const std::vector<std::string>& keys) {
    std::vector<double> v;
    for (const auto& k : keys) v.push_back(p.at(k));
    return v;
  };
  const double bandwidthFactor = p.at("copy_bandwidth_factor");
  std::vector<std::vector<double>> perGiB, perBandwidth, total;
  std::vector<double> saveY, copyY, restoreY, handoffY, totalY;
  for (std::size_t i = 0; i < obs.size(); ++i) {
    const double gib = state[i] / kGiB;
    const double overBandwidth = state[i] / obs[i].bandwidthBytesPerSec;
    perGiB.push_back({1, gib});
    perBandwidth.push_back({1, overBandwidth});
    total.push_back({1, gib, overBandwidth});
    totalY.push_back(obs[i].totalTimeS);
    if (phases) {
      saveY.push_back(*obs[i].suspendS);
      copyY.push_back(*obs[i].copyS);
      restoreY.push_back(*obs[i].resumeS);
      handoffY.push_back(obs[i].totalTimeS - *obs[i].suspendS - *obs[i].copyS - *obs[i].resumeS);
    }
  }
  if (phases) {
    const std::vector<std::string> saveKeys = {"save_base_s", "save_s_per_gib"};
    const std::vector<std::string> copyKeys = {"copy_base_s", "copy_bandwidth_factor"};
    const std::vector<std::string> restoreKeys = {"restore_base_s", "restore_s_per_gib"};
    applyFit(fitNonNegative(perGiB, saveY, priors(saveKeys)), saveKeys, p, c.notes);
    applyFit(fitNonNegative(perBandwidth, copyY, priors(copyKeys)), copyKeys, p, c.notes);
    applyFit(fitNonNegative(perGiB, restoreY, priors(restoreKeys)), restoreKeys, p, c.notes);
    std::sort(handoffY.begin(), handoffY.end());
    p["handoff_s"] = std::max(0.0, residualQuantile(handoffY, 0.5));
    c.notes.push_back(
        "qemu-scr phases fitted separately on suspend_s (save), copy_s, resume_s (restore); "
        "handoff_s is the median of the rest");
  } else {
    const std::vector<std::string> keys = {"save_base_s", "save_s_per_gib",
                                           "copy_bandwidth_factor"};
    const std::vector<double> prior = {
        p.at("save_base_s") + p.at("copy_base_s") + p.at("restore_base_s") + p.at("handoff_s"),
        p.at("save_s_per_gib") + p.at("restore_s_per_gib"), bandwidthFactor};
    for (const char* k : {"copy_base_s", "restore_base_s", "restore_s_per_gib", "handoff_s"}) {
      p[k] = 0;
    }
    applyFit(fitNonNegative(total, totalY, prior), keys, p, c.notes);
    c.notes.push_back(
        "qemu-scr fitted on total time (no suspend_s/copy_s/resume_s on every row): the fixed "
        "and per-GiB terms are booked to save");
  }
  keepCopyFactorPositive(c, bandwidthFactor);
  return Status::ok();
}

// qemu-precopy: the setup from observed setup times (else the constant that best fits the
// totals), the goodput factor (which scales the rate limit and with it QEMU's threshold) by a
// search over a grid refined by golden sections (the window count makes the error a step
// function of it, so a local search alone can stall), and the downtime's fixed part and
// switchover rate by a linear fit on the bytes each converging run leaves for the stop-and-copy.
Status fitQemuPrecopy(Calibration& c, const std::vector<MigrationObservation>& obs) {
  ModelParameters& p = c.parameters;
  std::vector<std::vector<double>> setupRows;
  std::vector<double> setupY;
  for (const MigrationObservation& o : obs) {
    if (!o.setupS) continue;
    setupRows.push_back({1, o.vm.memoryBytes / kGiB});
    setupY.push_back(*o.setupS);
  }
  const bool setupObserved = setupRows.size() >= 2;
  if (setupObserved) {
    applyFit(fitNonNegative(setupRows, setupY, {p.at("setup_s"), p.at("setup_s_per_gib")}),
             {"setup_s", "setup_s_per_gib"}, p, c.notes);
    c.notes.push_back("setup_s, setup_s_per_gib fitted on the observed setup_s");
  }
  // Squared error of total time at goodput g and throughput ceiling cap (0 = none); without
  // observed setups the setup constant is re-solved in closed form (the mean residual, >= 0)
  // and returned through `setup`.
  auto sse = [&](double g, double cap, double* setup) {
    ModelParameters q = p;
    if (!setupObserved) q["setup_s"] = 0;
    q["max_throughput_bytes_per_s"] = cap;
    auto model = createMigrationModel(c.model, q);
    if (!model) return std::numeric_limits<double>::max();
    auto predicted = predictAll(**model, obs, g, 0);
    if (!predicted) return std::numeric_limits<double>::max();
    double mean = 0;
    for (std::size_t i = 0; i < obs.size(); ++i) {
      mean += (obs[i].totalTimeS - (*predicted)[i].totalTimeS) / static_cast<double>(obs.size());
    }
    const double constant = setupObserved ? 0 : std::max(0.0, mean);
    if (setup) *setup = setupObserved ? p.at("setup_s") : constant;
    double s = 0;
    for (std::size_t i = 0; i < obs.size(); ++i) {
      const double r = obs[i].totalTimeS - (*predicted)[i].totalTimeS - constant;
      s += r * r;
    }
    return s;
  };
  // Narrows [lo, hi] (logarithms) around the minimum of f by golden sections.
  auto golden = [](const std::function<double(double)>& f, double lo, double hi) {
    const double phi = (std::sqrt(5.0) - 1) / 2;
    double x1 = hi - phi * (hi - lo), x2 = lo + phi * (hi - lo);
    double f1 = f(x1), f2 = f(x2);
    for (int k = 0; k < 40; ++k) {
      if (f1 <= f2) {
        hi = x2, x2 = x1, f2 = f1, x1 = hi - phi * (hi - lo), f1 = f(x1);
      } else {
        lo = x1, x1 = x2, f1 = f2, x2 = lo + phi * (hi - lo), f2 = f(x2);
      }
    }
    return (lo + hi) / 2;
  };
  // The goodput factor on a grid, refined by golden sections. The throughput ceiling is kept as
  // given: fitted too, it chased the noise of a loaded host (README, Accuracy).
  const double cap = p.at("max_throughput_bytes_per_s");
  auto fitGoodput = [&] {
    constexpr double kLo = 0.5, kHi = 2.0;
    constexpr int kGrid = 301;
    double bestG = 1, bestValue = std::numeric_limits<double>::max();
    for (int k = 0; k < kGrid; ++k) {
      const double g = kLo * std::pow(kHi / kLo, static_cast<double>(k) / (kGrid - 1));
      const double v = sse(g, cap, nullptr);
      if (v < bestValue) bestG = g, bestValue = v;
    }
    const double step = std::pow(kHi / kLo, 1.0 / (kGrid - 1));
    double g = std::exp(golden([&](double x) { return sse(std::exp(x), cap, nullptr); },
                               std::log(bestG / step), std::log(bestG * step)));
    if (sse(g, cap, nullptr) > bestValue) g = bestG;
    double setup = p.at("setup_s");
    sse(g, cap, &setup);
    c.goodputFactor = g;
    p["setup_s"] = setup;
  };
  fitGoodput();
  // Downtime = downtime_base_s + sync + switchover bytes / rate, on converging runs.
  auto model = createMigrationModel(c.model, p);
  if (!model) return model.status();
  auto predicted = predictAll(**model, obs, c.goodputFactor, 0);
  if (!predicted) return predicted.status();
  std::vector<std::vector<double>> rows;
  std::vector<double> y;
  const double syncS = p.at("bitmap_sync_s_per_gib");
  for (std::size_t i = 0; i < obs.size(); ++i) {
    const MigrationEstimate& e = (*predicted)[i];
    if (!obs[i].downtimeS || !e.converges) continue;
    rows.push_back({1, e.extras.at("switchover_bytes")});
    y.push_back(*obs[i].downtimeS - syncS * obs[i].vm.memoryBytes / kGiB);
  }
  if (rows.size() >= 2) {
    const double rate = p.at("switchover_bandwidth_bytes_per_s");
    const LinearFit fit =
        fitNonNegative(rows, y, {p.at("downtime_base_s"), rate > 0 ? 1 / rate : 0});
    p["downtime_base_s"] = fit.coef[0];
    if (fit.state[1] == Coef::kFitted && fit.coef[1] > 0) {
      p["switchover_bandwidth_bytes_per_s"] = 1 / fit.coef[1];
      c.notes.push_back("downtime_base_s and switchover_bandwidth_bytes_per_s fitted on " +
                        std::to_string(rows.size()) + " converging runs' downtimes");
    } else {
      c.notes.push_back(
          "switchover_bandwidth_bytes_per_s kept: the downtimes do not grow with "
          "the bytes left for the stop-and-copy");
    }
    fitGoodput();  // the totals include the downtime just refitted
  } else {
    c.notes.push_back("downtime parameters kept: fewer than 2 converging runs with a downtime");
  }
  c.notes.push_back("goodput_factor fitted by a grid and golden-section search on total time" +
                    std::string(setupObserved ? "" : ", setup_s as the mean remaining time"));
  return Status::ok();
}

// R^2, RMSE and sorted residuals of the calibrated model's mean predictions.
Status fillResiduals(Calibration& c, const std::vector<MigrationObservation>& obs) {
  auto model = createCalibratedModel(c);
  if (!model) return model.status();
  c.totalTimeResidualsS.clear();
  c.downtimeResidualsS.clear();
  std::vector<double> totals, downs;
  for (std::size_t i = 0; i < obs.size(); ++i) {
    LinkProfile link;
    link.bandwidthBytesPerSec = obs[i].bandwidthBytesPerSec;
    auto e = (*model)->estimate(obs[i].vm, link);
    if (!e) return Status::invalid(where(obs[i], i) + ": " + e.status().message());
    if (std::isfinite(e->totalTimeS)) {
      c.totalTimeResidualsS.push_back(obs[i].totalTimeS - e->totalTimeS);
      totals.push_back(obs[i].totalTimeS);
    }
    if (obs[i].downtimeS && std::isfinite(e->downtimeS)) {
      c.downtimeResidualsS.push_back(*obs[i].downtimeS - e->downtimeS);
      downs.push_back(*obs[i].downtimeS);
    }
  }
  auto r2 = [](const std::vector<double>& observed,
               const std::vector<double>& residuals) -> std::optional<double> {
    if (observed.empty()) return std::nullopt;
    const double mean = std::accumulate(observed.begin(), observed.end(), 0.0) /
                        static_cast<double>(observed.size());
    double total = 0, res = 0;
    for (double v : observed) total += (v - mean) * (v - mean);
    for (double r : residuals) res += r * r;
    if (!(total > 0)) return std::nullopt;
    return 1 - res / total;
  };
  c.r2TotalTime = r2(totals, c.totalTimeResidualsS);
  c.r2Downtime = r2(downs, c.downtimeResidualsS);
  double ss = 0;
  for (double r : c.totalTimeResidualsS) ss += r * r;
  c.rmseTotalTimeS =
      totals.empty() ? 0 : std::sqrt(ss / static_cast<double>(c.totalTimeResidualsS.size()));
  std::sort(c.totalTimeResidualsS.begin(), c.totalTimeResidualsS.end());
  std::sort(c.downtimeResidualsS.begin(), c.downtimeResidualsS.end());
  return Status::ok();
}

Status checkObservation(const MigrationObservation& o, std::size_t index) {
  LinkProfile link;
  link.bandwidthBytesPerSec = o.bandwidthBytesPerSec;
  if (Status s = validateProfiles(o.vm, link); !s) {
    return Status::invalid(where(o, index) + ": " + s.message());
  }
  auto bad = [](std::optional<double> v) { return v && !(std::isfinite(*v) && *v >= 0); };
  if (!(std::isfinite(o.totalTimeS) && o.totalTimeS >= 0) || bad(o.downtimeS) ||
      bad(o.transferredBytes) || bad(o.suspendS) || bad(o.copyS) || bad(o.resumeS) ||
      bad(o.energyJ) || bad(o.setupS)) {
    return Status::invalid(where(o, index) + ": measured times, bytes and energy must be >= 0");
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------

class CalibratedModel final : public MigrationModel {
 public:
  CalibratedModel(std::unique_ptr<MigrationModel> inner, const Calibration& c,
                  std::optional<double> quantile)
      : inner_(std::move(inner)),
        goodput_(c.goodputFactor),
        overheadS_(c.overheadS),
        quantile_(quantile) {
    if (!quantile) return;
    const double z = normalQuantile(*quantile);
    total_ = spread(c.totalTimeResidualsS, c.totalTimeQuantilesS, *quantile, c.relativeError * z);
    down_ = spread(c.downtimeResidualsS, c.downtimeQuantilesS, *quantile, c.relativeError * z);
  }

  std::string_view name() const override { return inner_->name(); }

  ModelParameters parameters() const override {
    ModelParameters p = inner_->parameters();
    p["overhead_s"] = overheadS_;
    p["goodput_factor"] = goodput_;
    return p;
  }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    LinkProfile calibrated = link;
    calibrated.bandwidthBytesPerSec *= goodput_;
    calibrated.preOverheadS += overheadS_;
    auto e = inner_->estimate(vm, calibrated);
    if (!e || !quantile_) return e;
    const double meanTotal = e->totalTimeS;
    const double meanDown = e->downtimeS;
    e->extras["total_time_mean_s"] = meanTotal;
    e->extras["downtime_mean_s"] = meanDown;
    e->extras["quantile"] = *quantile_;
    e->downtimeS = std::max(0.0, down_.apply(meanDown));
    if (std::isfinite(meanTotal)) {
      e->totalTimeS = std::max(e->downtimeS, total_.apply(meanTotal));
      e->phases.push_back({"quantile margin", e->totalTimeS - meanTotal});
    }
    return e;
  }

 private:
  // Either an additive offset (empirical residual quantile) or a relative factor.
  struct Spread {
    bool additive = true;
    double value = 0;
    double apply(double mean) const { return additive ? mean + value : mean * (1 + value); }
  };

  static Spread spread(const std::vector<double>& residuals, const std::map<double, double>& fixed,
                       double q, double relative) {
    if (!residuals.empty()) return {true, residualQuantile(residuals, q)};
    for (const auto& [level, value] : fixed) {
      if (std::abs(level - q) < 1e-9) return {true, value};
    }
    return {false, relative};
  }

  std::unique_ptr<MigrationModel> inner_;
  double goodput_;
  double overheadS_;
  std::optional<double> quantile_;
  Spread total_;
  Spread down_;
};

}  // namespace

double residualQuantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double h = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

double normalQuantile(double q) {
  // Bisection on the CDF 0.5 * erfc(-z / sqrt 2): exact to double precision in 100 steps, and
  // only run once per model construction.
  double lo = -40, hi = 40;
  for (int i = 0; i < 100; ++i) {
    const double mid = (lo + hi) / 2;
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < q ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

Result<Calibration> Calibrator::fit(std::string_view model,
                                    const std::vector<MigrationObservation>& observations) const {
  auto base = createMigrationModel(model, options_.initial);
  if (!base) return base.status();
  if (observations.size() < 2) {
    return Status::invalid("calibration needs at least 2 observations, got " +
                           std::to_string(observations.size()));
  }
  if (!(options_.relativeError >= 0) || !std::isfinite(options_.relativeError)) {
    return Status::invalid("relative error must be >= 0");
  }
  for (std::size_t i = 0; i < observations.size(); ++i) {
    if (Status s = checkObservation(observations[i], i); !s) return s;
  }
  Calibration c;
  c.model = std::string(model);
  c.parameters = (*base)->parameters();
  c.relativeError = options_.relativeError;
  c.observations = static_cast<int>(observations.size());
  if (model == "zhao-scr") {
    if (Status s = fitZhao(c, observations); !s) return s;
  } else if (model == "qemu-scr") {
    if (Status s = fitQemuScr(c, observations); !s) return s;
  } else if (model == "qemu-precopy") {
    if (Status s = fitQemuPrecopy(c, observations); !s) return s;
  } else {
    if (Status s = fitLink(c, observations); !s) return s;
    if (model == "liu-refined") {
      if (Status s = fitLiuGamma(c, observations, options_.maxSearchEvaluations); !s) return s;
    }
    if (model == "liu-base" || model == "liu-refined") {
      if (Status s = fitLiuEnergy(c, observations); !s) return s;
    }
  }
  if (Status s = fillResiduals(c, observations); !s) return s;
  if (c.totalTimeResidualsS.size() < observations.size()) {
    c.notes.push_back(std::to_string(observations.size() - c.totalTimeResidualsS.size()) +
                      " observation(s) have no finite prediction and no residual");
  }
  return c;
}

Result<std::unique_ptr<MigrationModel>> createCalibratedModel(const Calibration& calibration,
                                                              std::optional<double> quantile) {
  if (quantile && !(*quantile > 0 && *quantile < 1)) {
    return Status::invalid("quantile must be in (0, 1), e.g. 0.99");
  }
  if (!(calibration.goodputFactor > 0) || !std::isfinite(calibration.goodputFactor)) {
    return Status::invalid("goodput_factor must be a positive number");
  }
  if (!(calibration.overheadS >= 0) || !std::isfinite(calibration.overheadS)) {
    return Status::invalid("overhead_s must be >= 0");
  }
  if (!(calibration.relativeError >= 0) || !std::isfinite(calibration.relativeError)) {
    return Status::invalid("relative_error must be >= 0");
  }
  auto inner = createMigrationModel(calibration.model, calibration.parameters);
  if (!inner) return inner.status();
  return std::unique_ptr<MigrationModel>(
      new CalibratedModel(std::move(*inner), calibration, quantile));
}

}  // namespace vrm::planner
