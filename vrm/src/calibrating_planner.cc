// CalibratingPlanner: contract in vrm/manager/calibrating_planner.h.
#include "vrm/manager/calibrating_planner.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "vrm/protocol/metrics_text.h"

namespace vrm::manager {

namespace {

constexpr const char* kLive = "live";
constexpr const char* kScr = "suspend-copy-resume";

std::optional<double> seconds(TimeNs ns) {
  if (ns <= 0) return std::nullopt;
  return nsToSeconds(ns);
}

}  // namespace

CalibratingPlanner::CalibratingPlanner(CalibratingPlannerOptions options)
    : options_(std::move(options)), clones_(options_.clones) {}

Result<std::unique_ptr<CalibratingPlanner>> CalibratingPlanner::create(
    CalibratingPlannerOptions options) {
  if (!(options.quantile > 0 && options.quantile < 1)) {
    return Status::invalid("quantile must be between 0 and 1 (exclusive), e.g. 0.95");
  }
  if (options.dirtyRateQuantile != 0 &&
      !(options.dirtyRateQuantile > 0 && options.dirtyRateQuantile < 1)) {
    return Status::invalid("dirty-rate quantile must be between 0 and 1 (exclusive), or 0");
  }
  std::unique_ptr<CalibratingPlanner> p(new CalibratingPlanner(std::move(options)));
  planner::OnlineCalibrationOptions online;
  online.minObservations = p->options_.minObservations;
  online.refitEvery = p->options_.refitEvery;
  online.keepLatest = p->options_.keepLatest;
  online.heldOutWindow = p->options_.heldOutWindow;
  for (const auto& [mode, model] :
       {std::pair{kLive, p->options_.liveModel}, std::pair{kScr, p->options_.scrModel}}) {
    auto c = planner::OnlineCalibrator::create(model, online);
    if (!c) return c.status();
    p->modes_[mode] = std::move(*c);
  }
  if (Status s = p->rebuild(); !s) return s;
  p->metrics_ = p->metricsText();
  return p;
}

planner::VacateRequest CalibratingPlanner::adjusted(const planner::VacateRequest& request) const {
  planner::VacateRequest req = request;
  if (!req.cloneTemplate.empty()) {
    const double q = req.quantile > 0 ? req.quantile : options_.quantile;
    req.cloneTimeNs = clones_.cloneTimeNs(req.cloneTemplate, req.hostsToVacate, req.cloneTimeNs, q);
  }
  if (req.dirtyRateQuantile == 0) req.dirtyRateQuantile = options_.dirtyRateQuantile;
  for (planner::VmSnapshot& vm : req.vms) {
    if (!vm.dirtyRateHistoryBytesPerSec.empty()) continue;
    if (auto it = dirtyHistory_.find(vm.id); it != dirtyHistory_.end()) {
      vm.dirtyRateHistoryBytesPerSec = it->second;
    }
  }
  if (req.relativeErrorSamples.size() < planner::kMinErrorSamples) {
    // The held-out errors of both modes; of the calibrated models once they have enough.
    std::vector<double> all, calibrated;
    for (const auto& [mode, c] : modes_) {
      const auto& held = c->heldOut();
      for (const auto& h : held) {
        const double rel = (h.observedS - h.predictedS) / h.predictedS;
        all.push_back(rel);
        if (!h.fromDefaults) calibrated.push_back(rel);
      }
    }
    const auto& use = calibrated.size() >= planner::kMinErrorSamples ? calibrated : all;
    if (use.size() >= planner::kMinErrorSamples) req.relativeErrorSamples = use;
  }
  return req;
}

Result<VacatePlan> CalibratingPlanner::plan(const planner::VacateRequest& request) const {
  return current_->plan(adjusted(request));
}

Result<VacatePlan> CalibratingPlanner::plan(const planner::IndexedCluster& cluster,
                                            const planner::VacateRequest& request) const {
  return current_->plan(cluster, adjusted(request));
}

std::optional<planner::MigrationObservation> CalibratingPlanner::convert(
    const MigrationObservation& o) const {
  if (o.endNs <= o.startNs || o.memoryBytes == 0) return std::nullopt;
  planner::MigrationObservation row;
  row.vm.memoryBytes = static_cast<double>(o.memoryBytes);
  if (o.nonzeroMemoryBytes > 0 && o.nonzeroMemoryBytes <= o.memoryBytes) {
    row.vm.nonzeroMemoryBytes = static_cast<double>(o.nonzeroMemoryBytes);
  }
  row.vm.dirtyRateBytesPerSec = std::max(o.dirtyRateBytesPerSec, 0.0);
  double nominal = 0;
  auto from = options_.nicBandwidthByHost.find(o.fromHost);
  auto to = options_.nicBandwidthByHost.find(o.toHost);
  if (from != options_.nicBandwidthByHost.end() && to != options_.nicBandwidthByHost.end()) {
    nominal = std::min(from->second, to->second);
  }
  row.bandwidthBytesPerSec = nominal > 0 ? nominal : o.bandwidthBytesPerSec;
  if (!(row.bandwidthBytesPerSec > 0)) return std::nullopt;
  row.totalTimeS = nsToSeconds(o.endNs - o.startNs);
  if (o.downtimeNs > 0) row.downtimeS = nsToSeconds(o.downtimeNs);
  if (o.transferredBytes > 0) row.transferredBytes = static_cast<double>(o.transferredBytes);
  if (o.mode == MoveMode::kLive) {
    row.setupS = seconds(o.setupNs);
  } else if (o.saveNs > 0 && o.copyNs > 0 && o.restoreNs > 0) {  // all three, or none
    row.suspendS = seconds(o.saveNs);
    row.copyS = seconds(o.copyNs);
    row.resumeS = seconds(o.restoreNs);
  }
  return row;
}

void CalibratingPlanner::observe(const std::vector<MigrationObservation>& observations) {
  bool changed = false;
  for (const auto& o : observations) {
    if (o.mode == MoveMode::kSuspend) continue;  // no transfer to learn from
    auto row = convert(o);
    if (!row) continue;
    if (o.mode == MoveMode::kLive && o.dirtyRateBytesPerSec >= 0) {
      auto& history = dirtyHistory_[o.vmId];
      history.push_back(o.dirtyRateBytesPerSec);
      if (history.size() > options_.dirtyRateHistory) history.erase(history.begin());
    }
    const char* mode = o.mode == MoveMode::kLive ? kLive : kScr;
    planner::OnlineCalibrator& c = *modes_.at(mode);
    const std::size_t fitsBefore = c.fits();
    const bool refitted = c.observe(*row);
    changed |= refitted;
    if (refitted) {
      const planner::Calibration& fit = *c.calibration();
      CalibrationSummary& s = fitted_[mode];
      s.model = c.modelName();
      s.observations = fit.observations;
      s.r2TotalTime = fit.r2TotalTime;
      s.rmseTotalTimeS = fit.rmseTotalTimeS;
      const planner::HeldOutSummary held = c.summary();
      spdlog::info(
          "calibrated {} for {} migrations from {} observations: R^2 {}, RMSE {:.3f} s; "
          "held-out error over the last {}: mean {:.1f} %, worst {:.1f} %",
          s.model, mode, s.observations,
          s.r2TotalTime ? fmt::format("{:.4f}", *s.r2TotalTime) : "n/a", s.rmseTotalTimeS,
          held.count, 100 * held.meanAbsRelativeError, 100 * held.worstAbsRelativeError);
    } else if (!c.lastError().empty() && c.fits() == fitsBefore &&
               c.observations() >= options_.minObservations) {
      spdlog::warn(
          "calibration of {} ({}) from {} migrations failed, keeping the previous model: {}",
          c.modelName(), mode, c.observations(), c.lastError());
    }
  }
  if (changed) {
    if (Status s = rebuild(); !s)
      spdlog::error("calibration: cannot rebuild the planner: {}", s.toString());
  }
  std::string text = metricsText();
  std::lock_guard<std::mutex> lock(metricsMutex_);
  metrics_ = std::move(text);
}

std::string CalibratingPlanner::metricsSnapshot() const {
  std::lock_guard<std::mutex> lock(metricsMutex_);
  return metrics_;
}

void CalibratingPlanner::observeClone(const std::string& templateName, const std::string& host,
                                      TimeNs durationNs) {
  clones_.observe(templateName, host, durationNs);
}

Status CalibratingPlanner::rebuild() {
  planner::CostAwareVacatePlannerOptions options;
  options.quantile = options_.quantile;
  current_ = std::make_unique<planner::CostAwareVacatePlanner>(modes_.at(kLive)->model(),
                                                               modes_.at(kScr)->model(), options);
  return Status::ok();
}

std::vector<ModeReport> CalibratingPlanner::report() const {
  std::vector<ModeReport> out;
  for (const char* mode : {kLive, kScr}) {
    const planner::OnlineCalibrator& c = *modes_.at(mode);
    ModeReport r;
    r.mode = mode;
    r.model = c.modelName();
    r.observations = c.observations();
    r.fits = c.fits();
    r.calibrated = c.calibration().has_value();
    r.heldOut = c.summary();
    out.push_back(std::move(r));
  }
  return out;
}

std::string CalibratingPlanner::metricsText() const {
  // Every family labelled by the mode and the model in force for it (protocol/metrics_text.h
  // writes the headers, numbers and label values as the other units of /metrics do).
  std::string out;
  const auto modes = report();
  auto labels = [](const ModeReport& r) {
    return "mode=\"" + metricLabelValue(r.mode) + "\",model=\"" + metricLabelValue(r.model) + "\"";
  };
  auto each = [&](const char* name, const char* type, const char* help, auto value) {
    appendMetricHeader(out, name, type, help);
    for (const ModeReport& r : modes) {
      out += std::string(name) + "{" + labels(r) + "} " + formatMetricNumber(value(r)) + "\n";
    }
  };
  each("vrm_model_observations", "gauge", "Observed migrations the model of a mode is fitted on.",
       [](const ModeReport& r) { return static_cast<double>(r.observations); });
  each("vrm_model_fits_total", "counter", "Successful refits of the model of a mode.",
       [](const ModeReport& r) { return static_cast<double>(r.fits); });
  each("vrm_model_heldout_predictions", "gauge",
       "Recent observations the model in force predicted before it was fitted on them.",
       [](const ModeReport& r) { return static_cast<double>(r.heldOut.count); });
  // A gauge with a mean and a worst series per mode.
  auto meanAndWorst = [&](const char* name, const char* help, double planner::HeldOutSummary::*mean,
                          double planner::HeldOutSummary::*worst) {
    appendMetricHeader(out, name, "gauge", help);
    for (const ModeReport& r : modes) {
      for (const auto& [stat, v] :
           {std::pair{"mean", r.heldOut.*mean}, std::pair{"worst", r.heldOut.*worst}}) {
        out += std::string(name) + "{" + labels(r) + ",stat=\"" + stat + "\"} " +
               formatMetricNumber(v) + "\n";
      }
    }
  };
  meanAndWorst("vrm_model_heldout_total_time_error_ratio",
               "|observed - predicted| / predicted total time over those held-out predictions.",
               &planner::HeldOutSummary::meanAbsRelativeError,
               &planner::HeldOutSummary::worstAbsRelativeError);
  meanAndWorst("vrm_model_heldout_downtime_error_seconds",
               "|observed - predicted| downtime over the held-out predictions.",
               &planner::HeldOutSummary::meanAbsDowntimeErrorS,
               &planner::HeldOutSummary::worstAbsDowntimeErrorS);
  appendMetricHeader(
      out, "vrm_model_heldout_phase_error_seconds", "gauge",
      "Mean |observed - predicted| time of each suspend-copy-resume phase, held out.");
  for (const ModeReport& r : modes) {
    for (const auto& [phase, v] : r.heldOut.meanAbsPhaseErrorS) {
      out += "vrm_model_heldout_phase_error_seconds{" + labels(r) + ",phase=\"" +
             metricLabelValue(phase) + "\"} " + formatMetricNumber(v) + "\n";
    }
  }
  return out;
}

}  // namespace vrm::manager
