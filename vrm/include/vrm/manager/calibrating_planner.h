// The planner vrmd plans with, refitted from the migrations and clones it has watched.
//
// A CostAwareVacatePlanner whose live and suspend-copy-resume models are re-calibrated online
// (planner::OnlineCalibrator, one per mode) from observed migrations of each mode: at start from
// the store, then after every `refitEvery` new observations of a mode; until a mode has
// `minObservations` its model keeps the defaults. Suspend-copy-resume observations carry their
// save, copy and restore phases and are fitted per phase. A fit that fails keeps the previous
// model and is logged; planning never waits on it.
//
// Honest about uncertainty: every observation is first predicted by the model in force, which
// has not been fitted on it; the last `heldOutWindow` of those errors per mode are reported
// (report(), metricsText()) and, when a request brings fewer than planner::kMinErrorSamples
// relative errors of its own, their relative values widen the plan's makespan to its quantile.
// Plans without a quantile of their own (VacateRequest::quantile == 0) are made at `quantile`.
//
// Dirty-rate history (Liu eqs. 11-13): the dirty rate QEMU measured during each VM's live
// migrations (the newest `dirtyRateHistory`), from the observations, is handed to the planner as
// VmSnapshot::dirtyRateHistoryBytesPerSec of requests that bring none (liu-refined and
// qemu-precopy read it).
//
// Clone times: observeClone() feeds a planner::CloneTimeModel; a request naming its template
// (VacateRequest::cloneTemplate) is planned with the calibrated clone time of its hosts, so a
// slow clone moves the next latest safe start earlier.
//
// Observations are converted with the nominal bandwidth the migration had (the slower of the
// two hosts' NICs, from the cluster description; the measured goodput when a host is unknown),
// which is what the calibrators' factors are defined against.
//
// Not thread-safe: vrmd's one event loop plans and observes.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vrm/planner/calibration.h"
#include "vrm/planner/clone_time_model.h"
#include "vrm/planner/cost_aware_vacate_planner.h"
#include "vrm/planner/online_calibration.h"
#include "vrm/protocol/reservation.h"

namespace vrm::manager {

struct CalibratingPlannerOptions {
  std::string liveModel = "qemu-precopy";
  std::string scrModel = "qemu-scr";
  std::size_t minObservations = 5;  // per mode, before its model is fitted
  std::size_t refitEvery = 10;      // new observations of a mode between fits
  std::size_t keepLatest = 500;     // observations per mode the fit uses (newest)
  std::size_t heldOutWindow = 50;   // held-out errors kept per mode (the report's N)
  double quantile = 0.95;           // of the makespan, for requests without one; in (0, 1)
  // Requests without a dirty-rate quantile plan each VM at this quantile of its recent samples
  // (VmSnapshot::dirtyRateSamplesBytesPerSec); 0 = at its current sample.
  double dirtyRateQuantile = 0.9;
  std::size_t dirtyRateHistory = 8;  // per-VM migration dirty rates kept (Liu eq. 11-13)
  // Host name -> nominal NIC bandwidth (bytes/s), for the conversion above.
  std::map<std::string, double> nicBandwidthByHost;
  planner::CloneTimeOptions clones;
};

// What the last fit of a mode gave, for logs and operators.
struct CalibrationSummary {
  std::string model;
  int observations = 0;
  std::optional<double> r2TotalTime;
  double rmseTotalTimeS = 0;
};

// One mode's model and its error on observations it was not fitted on.
struct ModeReport {
  std::string mode;   // "live", "suspend-copy-resume"
  std::string model;  // its model's name
  std::size_t observations = 0;
  std::size_t fits = 0;
  bool calibrated = false;  // false: still the defaults
  planner::HeldOutSummary heldOut;
};

class CalibratingPlanner final : public planner::VacatePlanner {
 public:
  // Errors: as CostAwareVacatePlanner::create for unknown model names; invalid-argument for a
  // quantile outside (0, 1).
  static Result<std::unique_ptr<CalibratingPlanner>> create(CalibratingPlannerOptions options);

  Result<VacatePlan> plan(const planner::VacateRequest& request) const override;
  Result<VacatePlan> plan(const planner::IndexedCluster& cluster,
                          const planner::VacateRequest& request) const override;

  // Adds observations (from the store at start, or one just completed) and refits the models of
  // the modes that reached their next fit. Observations without a positive duration, and parks
  // (nothing crosses the network), are ignored.
  void observe(const std::vector<MigrationObservation>& observations);
  // A clone of `templateName` on `host` took `durationNs` (clone command to the VM answering).
  void observeClone(const std::string& templateName, const std::string& host, TimeNs durationNs);

  // The last successful fit per mode ("live", "suspend-copy-resume"); absent until fitted.
  const std::map<std::string, CalibrationSummary>& fitted() const { return fitted_; }
  // Both modes, live first.
  std::vector<ModeReport> report() const;
  // report() as Prometheus text exposition lines (vrm_model_* families), for /metrics.
  std::string metricsText() const;
  // metricsText() as of the last observe(): the one member that is thread-safe (the web server
  // serves /metrics from its own thread).
  std::string metricsSnapshot() const;
  const planner::CloneTimeModel& cloneTimes() const { return clones_; }

 private:
  explicit CalibratingPlanner(CalibratingPlannerOptions options);
  std::optional<planner::MigrationObservation> convert(const MigrationObservation& o) const;
  planner::VacateRequest adjusted(const planner::VacateRequest& request) const;
  Status rebuild();

  CalibratingPlannerOptions options_;
  std::map<std::string, std::unique_ptr<planner::OnlineCalibrator>> modes_;  // mode -> model
  std::map<std::string, CalibrationSummary> fitted_;
  planner::CloneTimeModel clones_;
  std::map<std::string, std::vector<double>> dirtyHistory_;  // VM id -> QEMU's dirty rates
  std::unique_ptr<planner::CostAwareVacatePlanner> current_;
  mutable std::mutex metricsMutex_;
  std::string metrics_;  // guarded by metricsMutex_
};

}  // namespace vrm::manager
