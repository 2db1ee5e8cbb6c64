// The planner vrmd plans with, refitted from the migrations it has watched.
//
// A CostAwareVacatePlanner whose live and suspend-copy-resume models are re-calibrated
// (planner::Calibrator) from observed migrations of each mode: at start from the store, then
// after every `refitEvery` new observations of a mode. Until a mode has `minObservations`
// observations its model keeps the defaults. A fit that fails (too few identifiable rows, an
// impossible observation) keeps the previous model and is logged; planning never waits on it.
//
// Observations are converted with the nominal bandwidth the migration had (the slower of the
// two hosts' NICs, from the cluster description; the measured goodput when a host is unknown),
// which is what the calibrator's link factor is defined against.
//
// Not thread-safe: vrmd's one event loop plans and observes.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vrm/planner/calibration.h"
#include "vrm/planner/cost_aware_vacate_planner.h"
#include "vrm/protocol/reservation.h"

namespace vrm::manager {

struct CalibratingPlannerOptions {
  std::string liveModel = "qemu-precopy";
  std::string scrModel = "zhao-scr";
  std::size_t minObservations = 5;  // per mode, before its model is fitted
  std::size_t refitEvery = 10;      // new observations of a mode between fits
  std::size_t keepLatest = 500;     // observations per mode the fit uses (newest)
  // Host name -> nominal NIC bandwidth (bytes/s), for the conversion above.
  std::map<std::string, double> nicBandwidthByHost;
};

// What the last fit of a mode gave, for logs and operators.
struct CalibrationSummary {
  std::string model;
  int observations = 0;
  std::optional<double> r2TotalTime;
  double rmseTotalTimeS = 0;
};

class CalibratingPlanner final : public planner::VacatePlanner {
 public:
  // Errors: as CostAwareVacatePlanner::create for unknown model names.
  static Result<std::unique_ptr<CalibratingPlanner>> create(CalibratingPlannerOptions options);

  Result<VacatePlan> plan(const planner::VacateRequest& request) const override;
  Result<VacatePlan> plan(const planner::IndexedCluster& cluster,
                          const planner::VacateRequest& request) const override;

  // Adds observations (from the store at start, or one just completed) and refits the models of
  // the modes that reached their next fit. Observations without a positive duration are ignored.
  void observe(const std::vector<MigrationObservation>& observations);

  // The last successful fit per mode ("live", "suspend-copy-resume"); absent until fitted.
  const std::map<std::string, CalibrationSummary>& fitted() const { return fitted_; }

 private:
  explicit CalibratingPlanner(CalibratingPlannerOptions options);
  std::optional<planner::MigrationObservation> convert(const MigrationObservation& o) const;
  bool refit(const std::string& mode);  // true when the mode got a new model
  Status rebuild();

  CalibratingPlannerOptions options_;
  std::map<std::string, std::vector<planner::MigrationObservation>> rows_;  // mode -> rows
  std::map<std::string, std::size_t> sinceFit_;
  std::set<std::string> tried_;
  std::map<std::string, std::shared_ptr<const planner::MigrationModel>> models_;  // mode -> fitted
  std::map<std::string, CalibrationSummary> fitted_;
  std::unique_ptr<planner::CostAwareVacatePlanner> current_;
};

}  // namespace vrm::manager
