// Calibrator: what each fit does, and why it is shaped so, is in vrm/planner/calibration.h. The
// fits live in fitting/ (planner/src only):
//   solvers.h          least squares with non-negative coefficients, Nelder-Mead
//   fit_support.h      predicting every observation, storing fitted coefficients with notes
//   model_fits.h       one fit per model (link_fits.cc, scr_fits.cc, qemu_precopy_fit.cc)
// The calibrated model and the quantiles are in calibrated_model.cc, the text formats in
// calibration_io.cc.
#include "vrm/planner/calibration.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "fitting/fit_support.h"
#include "fitting/model_fits.h"

namespace vrm::planner {
namespace {

using fitting::where;

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

}  // namespace

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
    if (Status s = fitting::fitZhao(c, observations); !s) return s;
  } else if (model == "qemu-scr") {
    if (Status s = fitting::fitQemuScr(c, observations); !s) return s;
  } else if (model == "qemu-precopy") {
    if (Status s = fitting::fitQemuPrecopy(c, observations); !s) return s;
  } else {
    if (Status s = fitting::fitLink(c, observations); !s) return s;
    if (model == "liu-refined") {
      if (Status s = fitting::fitLiuGamma(c, observations, options_.maxSearchEvaluations); !s)
        return s;
    }
    if (model == "liu-base" || model == "liu-refined") {
      if (Status s = fitting::fitLiuEnergy(c, observations); !s) return s;
    }
  }
  if (Status s = fillResiduals(c, observations); !s) return s;
  if (c.totalTimeResidualsS.size() < observations.size()) {
    c.notes.push_back(std::to_string(observations.size() - c.totalTimeResidualsS.size()) +
                      " observation(s) have no finite prediction and no residual");
  }
  return c;
}

}  // namespace vrm::planner
