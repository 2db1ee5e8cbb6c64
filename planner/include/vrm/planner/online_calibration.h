// Online calibration: a model refitted as observed migrations arrive, honest about its error.
//
// An OnlineCalibrator holds one model of one migration mode. Each observation is first predicted
// by the model in force - the defaults until the first fit, then the latest calibration - which
// has not been fitted on it; that held-out error is recorded (the last `heldOutWindow` of them).
// Then the observation joins the fitting set (the newest `keepLatest`), and the model is refitted
// when due: as soon as `minObservations` are there, then after every `refitEvery` new ones (also
// after a failed fit, so a bad batch is not refitted on every observation). A failed fit keeps
// the previous model and says why in lastError().
//
// The held-out errors are what the model will most likely do next, so they - not the fit's
// in-sample residuals - are what the planner should widen its plans by and what operators see
// (vrmd's /metrics, vrmctl calibrate --report).
//
// Pure code, no clock or I/O; not thread-safe (one owner feeds it).
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vrm/planner/calibration.h"
#include "vrm/planner/migration_model.h"

namespace vrm::planner {

struct OnlineCalibrationOptions {
  std::size_t minObservations = 5;  // before the first fit
  std::size_t refitEvery = 10;      // new observations between fits
  std::size_t keepLatest = 500;     // observations the fit uses (the newest)
  std::size_t heldOutWindow = 50;   // held-out errors kept (the N of "the last N")
  ModelParameters initial;          // starting values overlaid on the model's defaults
};

// One observation as the model in force predicted it before being fitted on it.
struct HeldOutPrediction {
  double observedS = 0;
  double predictedS = 0;
  std::optional<double> observedDowntimeS, predictedDowntimeS;
  // Phases observed and predicted ("save"/"suspend", "copy", "restore"/"resume"), seconds.
  std::map<std::string, std::pair<double, double>> phases;
  bool fromDefaults = true;  // predicted with the defaults (no fit yet)
};

// The held-out errors in figures. Relative errors are (observed - predicted) / predicted.
struct HeldOutSummary {
  std::size_t count = 0;
  double meanAbsRelativeError = 0;   // total time
  double worstAbsRelativeError = 0;  // total time
  double meanAbsErrorS = 0;          // total time
  std::size_t downtimeCount = 0;
  double meanAbsDowntimeErrorS = 0;
  double worstAbsDowntimeErrorS = 0;
  std::map<std::string, double> meanAbsPhaseErrorS;  // per phase
  std::vector<double> relativeErrors;                // signed, oldest first
};

class OnlineCalibrator {
 public:
  // Errors: as createMigrationModel for an unknown model or bad initial parameters.
  static Result<std::unique_ptr<OnlineCalibrator>> create(std::string model,
                                                          OnlineCalibrationOptions options = {});

  // Records the held-out prediction of `row`, adds it and refits when due. Returns true when the
  // model in force changed. A row the model cannot predict (an impossible profile) is dropped and
  // counts as neither.
  bool observe(const MigrationObservation& row);

  const std::string& modelName() const { return model_; }
  // The model in force: the calibrated one (mean predictions) or the defaults.
  std::shared_ptr<const MigrationModel> model() const { return current_; }
  // The last successful fit; absent until there is one.
  const std::optional<Calibration>& calibration() const { return calibration_; }
  std::size_t observations() const { return rows_.size(); }
  std::size_t fits() const { return fits_; }
  const std::string& lastError() const { return lastError_; }
  const std::deque<HeldOutPrediction>& heldOut() const { return heldOut_; }
  HeldOutSummary summary() const;

 private:
  OnlineCalibrator(std::string model, OnlineCalibrationOptions options,
                   std::shared_ptr<const MigrationModel> defaults);
  bool refit();

  std::string model_;
  OnlineCalibrationOptions options_;
  std::shared_ptr<const MigrationModel> current_;
  std::optional<Calibration> calibration_;
  std::deque<MigrationObservation> rows_;
  std::deque<HeldOutPrediction> heldOut_;
  std::size_t sinceFit_ = 0;
  std::size_t fits_ = 0;
  bool tried_ = false;
  std::string lastError_;
};

// Held-out figures of predictions, as OnlineCalibrator::summary() computes them.
HeldOutSummary summarizeHeldOut(const std::deque<HeldOutPrediction>& predictions);

}  // namespace vrm::planner
