// createCalibratedModel and the quantiles of calibration.h: a model's estimates through a
// calibration, raised to a quantile.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vrm/planner/calibration.h"

namespace vrm::planner {
namespace {

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
