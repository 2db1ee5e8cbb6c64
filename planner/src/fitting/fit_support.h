// What the fits of Calibrator share (planner/src only): predicting every observation at a
// calibrated link, storing a linear fit's coefficients with notes, and naming observations in
// messages. Pure.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "fitting/solvers.h"
#include "vrm/planner/calibration.h"
#include "vrm/planner/migration_model.h"

namespace vrm::planner::fitting {

inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
inline constexpr double kMiB = 1024.0 * 1024.0;

// A number with 6 significant digits, for notes.
std::string formatShort(double v);

// "observation line N" (from a file), else "observation #index+1", for messages.
std::string where(const MigrationObservation& o, std::size_t index);

// The model's estimate of every observation at its bandwidth times `goodput`, with `overheadS`
// before. Errors: invalid-argument naming the observation the model cannot predict.
Result<std::vector<MigrationEstimate>> predictAll(const MigrationModel& model,
                                                  const std::vector<MigrationObservation>& obs,
                                                  double goodput, double overheadS);

// The values of `keys` in `params`, in order (the priors of a linear fit); every key must be there.
std::vector<double> priors(const ModelParameters& params, const std::vector<std::string>& keys);

// True when every observation has suspend_s, copy_s and resume_s (phases fitted one by one).
bool phasesObserved(const std::vector<MigrationObservation>& obs);

// Stores fitted coefficients under `keys` and notes the ones the data could not identify.
void applyFit(const LinearFit& fit, const std::vector<std::string>& keys, ModelParameters& params,
              std::vector<std::string>& notes);

}  // namespace vrm::planner::fitting
