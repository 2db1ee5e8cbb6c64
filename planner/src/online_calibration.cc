// OnlineCalibrator: contract in vrm/planner/online_calibration.h.
#include "vrm/planner/online_calibration.h"

#include <algorithm>
#include <cmath>

namespace vrm::planner {
namespace {

// Observed phase columns and the phase names models give them.
struct PhaseColumn {
  std::optional<double> MigrationObservation::*observed;
  const char* names[2];
  const char* label;
};
constexpr PhaseColumn kPhaseColumns[] = {
    {&MigrationObservation::suspendS, {"save", "suspend"}, "save"},
    {&MigrationObservation::copyS, {"copy", "copy"}, "copy"},
    {&MigrationObservation::resumeS, {"restore", "resume"}, "restore"},
};

}  // namespace

OnlineCalibrator::OnlineCalibrator(std::string model, OnlineCalibrationOptions options,
                                   std::shared_ptr<const MigrationModel> defaults)
    : model_(std::move(model)), options_(std::move(options)), current_(std::move(defaults)) {}

Result<std::unique_ptr<OnlineCalibrator>> OnlineCalibrator::create(
    std::string model, OnlineCalibrationOptions options) {
  auto defaults = createMigrationModel(model, options.initial);
  if (!defaults) return defaults.status();
  options.minObservations = std::max<std::size_t>(options.minObservations, 2);
  options.refitEvery = std::max<std::size_t>(options.refitEvery, 1);
  options.keepLatest = std::max(options.keepLatest, options.minObservations);
  return std::unique_ptr<OnlineCalibrator>(
      new OnlineCalibrator(std::move(model), std::move(options),
                           std::shared_ptr<const MigrationModel>(std::move(*defaults))));
}

bool OnlineCalibrator::observe(const MigrationObservation& row) {
  LinkProfile link;
  link.bandwidthBytesPerSec = row.bandwidthBytesPerSec;
  auto e = current_->estimate(row.vm, link);
  if (!e || !(row.totalTimeS > 0)) return false;
  if (options_.heldOutWindow > 0 && std::isfinite(e->totalTimeS) && e->totalTimeS > 0) {
    HeldOutPrediction h;
    h.observedS = row.totalTimeS;
    h.predictedS = e->totalTimeS;
    if (row.downtimeS && std::isfinite(e->downtimeS)) {
      h.observedDowntimeS = row.downtimeS;
      h.predictedDowntimeS = e->downtimeS;
    }
    for (const PhaseColumn& col : kPhaseColumns) {
      const std::optional<double>& observed = row.*col.observed;
      if (!observed) continue;
      for (const PhaseTime& p : e->phases) {
        if (p.name == col.names[0] || p.name == col.names[1]) {
          h.phases[col.label] = {*observed, p.seconds};
          break;
        }
      }
    }
    h.fromDefaults = !calibration_;
    heldOut_.push_back(std::move(h));
    while (heldOut_.size() > options_.heldOutWindow) heldOut_.pop_front();
  }
  rows_.push_back(row);
  while (rows_.size() > options_.keepLatest) rows_.pop_front();
  ++sinceFit_;
  if (rows_.size() >= options_.minObservations && (!tried_ || sinceFit_ >= options_.refitEvery)) {
    return refit();
  }
  return false;
}

bool OnlineCalibrator::refit() {
  tried_ = true;
  sinceFit_ = 0;
  CalibratorOptions calibratorOptions;
  calibratorOptions.initial = options_.initial;
  const std::vector<MigrationObservation> rows(rows_.begin(), rows_.end());
  auto fit = Calibrator(calibratorOptions).fit(model_, rows);
  if (!fit) {
    lastError_ = fit.status().message();
    return false;
  }
  auto model = createCalibratedModel(*fit);
  if (!model) {
    lastError_ = model.status().message();
    return false;
  }
  current_ = std::shared_ptr<const MigrationModel>(std::move(*model));
  calibration_ = std::move(*fit);
  lastError_.clear();
  ++fits_;
  return true;
}

HeldOutSummary OnlineCalibrator::summary() const { return summarizeHeldOut(heldOut_); }

HeldOutSummary summarizeHeldOut(const std::deque<HeldOutPrediction>& predictions) {
  HeldOutSummary s;
  std::map<std::string, std::pair<double, std::size_t>> phases;
  for (const HeldOutPrediction& h : predictions) {
    const double rel = (h.observedS - h.predictedS) / h.predictedS;
    s.relativeErrors.push_back(rel);
    s.meanAbsRelativeError += std::abs(rel);
    s.worstAbsRelativeError = std::max(s.worstAbsRelativeError, std::abs(rel));
    s.meanAbsErrorS += std::abs(h.observedS - h.predictedS);
    ++s.count;
    if (h.observedDowntimeS && h.predictedDowntimeS) {
      const double d = std::abs(*h.observedDowntimeS - *h.predictedDowntimeS);
      s.meanAbsDowntimeErrorS += d;
      s.worstAbsDowntimeErrorS = std::max(s.worstAbsDowntimeErrorS, d);
      ++s.downtimeCount;
    }
    for (const auto& [name, op] : h.phases) {
      auto& [sum, n] = phases[name];
      sum += std::abs(op.first - op.second);
      ++n;
    }
  }
  if (s.count > 0) {
    s.meanAbsRelativeError /= static_cast<double>(s.count);
    s.meanAbsErrorS /= static_cast<double>(s.count);
  }
  if (s.downtimeCount > 0) s.meanAbsDowntimeErrorS /= static_cast<double>(s.downtimeCount);
  for (const auto& [name, sn] : phases) {
    s.meanAbsPhaseErrorS[name] = sn.first / static_cast<double>(sn.second);
  }
  return s;
}

}  // namespace vrm::planner
