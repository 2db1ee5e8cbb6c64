// The qemu-precopy fit of model_fits.h.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "fitting/fit_support.h"
#include "fitting/model_fits.h"

namespace vrm::planner::fitting {

// qemu-precopy: the setup from observed setup times, per GiB before a constant (else the constant
// that best fits the totals), the goodput factor (which scales the rate limit and with it QEMU's
// threshold) by a search over a grid refined by golden sections (the window count makes the
// error a step function of it, so a local search alone can stall), and the downtime's fixed part
// and switchover rate by a linear fit on the bytes each converging run leaves for the
// stop-and-copy.
Status fitQemuPrecopy(Calibration& c, const std::vector<MigrationObservation>& obs) {
  ModelParameters& p = c.parameters;
  std::vector<std::vector<double>> setupRows;
  std::vector<double> setupY;
  for (const MigrationObservation& o : obs) {
    if (!o.setupS) continue;
    setupRows.push_back({o.vm.memoryBytes / kGiB, 1});
    setupY.push_back(*o.setupS);
  }
  const bool setupObserved = setupRows.size() >= 2;
  if (setupObserved) {
    // The per-GiB column first: when the sizes cannot separate the two (every guest of one
    // size), the per-GiB part is the one fitted and setup_s keeps its prior, because what QEMU's
    // setup does (the dirty bitmaps, the first sync, starting dirty logging) is work per page;
    // fitted as a constant instead, a larger guest's setup is predicted too short.
    applyFit(fitNonNegative(setupRows, setupY, {p.at("setup_s_per_gib"), p.at("setup_s")}),
             {"setup_s_per_gib", "setup_s"}, p, c.notes);
    c.notes.push_back("setup_s_per_gib, setup_s fitted on the observed setup_s");
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

}  // namespace vrm::planner::fitting
