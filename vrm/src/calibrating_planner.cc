#include "vrm/manager/calibrating_planner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace vrm::manager {

namespace {

constexpr const char* kLive = "live";
constexpr const char* kScr = "suspend-copy-resume";

}  // namespace

CalibratingPlanner::CalibratingPlanner(CalibratingPlannerOptions options)
    : options_(std::move(options)) {}

Result<std::unique_ptr<CalibratingPlanner>> CalibratingPlanner::create(
    CalibratingPlannerOptions options) {
  std::unique_ptr<CalibratingPlanner> p(new CalibratingPlanner(std::move(options)));
  if (Status s = p->rebuild(); !s) return s;
  return p;
}

Result<VacatePlan> CalibratingPlanner::plan(const planner::VacateRequest& request) const {
  return current_->plan(request);
}

Result<VacatePlan> CalibratingPlanner::plan(const planner::IndexedCluster& cluster,
                                            const planner::VacateRequest& request) const {
  return current_->plan(cluster, request);
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
  return row;
}

void CalibratingPlanner::observe(const std::vector<MigrationObservation>& observations) {
  std::set<std::string> due;
  for (const auto& o : observations) {
    auto row = convert(o);
    if (!row) continue;
    const std::string mode = o.mode == MoveMode::kLive ? kLive : kScr;
    if (o.mode == MoveMode::kSuspend) continue;  // no transfer to learn from
    auto& rows = rows_[mode];
    rows.push_back(std::move(*row));
    if (rows.size() > options_.keepLatest) rows.erase(rows.begin());
    const std::size_t since = ++sinceFit_[mode];
    // The first fit as soon as there are enough rows, then one per `refitEvery` new rows
    // (also after a failed attempt, so a bad batch is not refitted on every observation).
    if (rows.size() >= options_.minObservations &&
        (!tried_.count(mode) || since >= options_.refitEvery)) {
      due.insert(mode);
    }
  }
  bool changed = false;
  for (const auto& mode : due) changed |= refit(mode);
  if (changed) {
    if (Status s = rebuild(); !s)
      spdlog::error("calibration: cannot rebuild the planner: {}", s.toString());
  }
}

bool CalibratingPlanner::refit(const std::string& mode) {
  const std::string model = mode == kLive ? options_.liveModel : options_.scrModel;
  const auto& rows = rows_[mode];
  tried_.insert(mode);
  auto fit = planner::Calibrator().fit(model, rows);
  if (!fit) {
    spdlog::warn("calibration of {} ({}) from {} migrations failed, keeping the previous model: {}",
                 model, mode, rows.size(), fit.status().toString());
    sinceFit_[mode] = 0;  // wait for `refitEvery` more before trying again
    return false;
  }
  auto calibrated = planner::createCalibratedModel(*fit);
  if (!calibrated) {
    spdlog::warn("calibrated {} model unusable: {}", model, calibrated.status().toString());
    sinceFit_[mode] = 0;
    return false;
  }
  models_[mode] = std::shared_ptr<const planner::MigrationModel>(std::move(*calibrated));
  CalibrationSummary& s = fitted_[mode];
  s.model = model;
  s.observations = fit->observations;
  s.r2TotalTime = fit->r2TotalTime;
  s.rmseTotalTimeS = fit->rmseTotalTimeS;
  sinceFit_[mode] = 0;
  spdlog::info("calibrated {} for {} migrations from {} observations: R^2 {}, RMSE {:.3f} s", model,
               mode, s.observations, s.r2TotalTime ? fmt::format("{:.4f}", *s.r2TotalTime) : "n/a",
               s.rmseTotalTimeS);
  return true;
}

Status CalibratingPlanner::rebuild() {
  auto base = planner::CostAwareVacatePlanner::create(options_.liveModel, options_.scrModel);
  if (!base) return base.status();
  if (models_.empty()) {
    current_ = std::move(*base);
    return Status::ok();
  }
  // Fitted models replace the defaults; a mode not fitted yet keeps its default model.
  auto pick =
      [&](const char* mode,
          const std::string& name) -> Result<std::shared_ptr<const planner::MigrationModel>> {
    if (auto it = models_.find(mode); it != models_.end()) return it->second;
    auto m = planner::createMigrationModel(name);
    if (!m) return m.status();
    return std::shared_ptr<const planner::MigrationModel>(std::move(*m));
  };
  auto live = pick(kLive, options_.liveModel);
  if (!live) return live.status();
  auto scr = pick(kScr, options_.scrModel);
  if (!scr) return scr.status();
  current_ = std::make_unique<planner::CostAwareVacatePlanner>(*live, *scr, (*base)->options());
  return Status::ok();
}

}  // namespace vrm::manager
