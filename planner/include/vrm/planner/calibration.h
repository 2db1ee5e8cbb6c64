// Calibration of migration models from observed migrations, and predictions at a quantile.
//
// A Calibrator fits a model's free parameters to observed migrations by least squares, reports
// R^2 and keeps the residuals (observed - predicted) so that a prediction can be given at a
// quantile ("the 99th percentile of total time"). Everything here is pure: no I/O, no clock, no
// threads; the CSV and parameters-file functions take and return text (vrmctl and vrmd read and
// write the files). All functions are thread-safe; models made by createCalibratedModel() are
// immutable and may be shared.
//
// What is fitted (every fit is deterministic):
//  * qemu-precopy (its own fit): setup_s and setup_s_per_gib by least squares on the observed
//    setup_s (with guests of a single size setup_s_per_gib alone, setup_s kept: QEMU's setup is
//    work per page), else setup_s as the constant that best fits the totals; the goodput factor,
//    which scales QEMU's rate limit and with it its stop threshold, by a grid search refined by
//    golden sections on the squared error of total time (the window count makes that error a
//    step function); then downtime_base_s and switchover_bandwidth_bytes_per_s by least squares of
//    the observed downtimes of runs the model sees converge on the bytes it leaves for the
//    stop-and-copy, and the goodput search once more. overhead_s stays 0.
//  * qemu-scr (its own fit): device_state_bytes as the median of observed staged-state bytes
//    (transferred_bytes) beyond the memory stream; with suspend_s (= save), copy_s and resume_s
//    (= restore) on every row, save on (1, S GiB, M GiB) (with guests of one size the memory
//    column keeps its prior), copy on (1, S / B), restore on (1, S GiB), S the observed state,
//    M the memory, and handoff_s the median of what the phases leave of the total; without
//    them the total on (1, S GiB, S / B), booked to save and copy.
//  * Link calibration, every other model but zhao-scr: an overhead overhead_s (added to the link's
//    pre-overhead) and an effective goodput factor goodput_factor (the link bandwidth is
//    multiplied by it). Let K_i be the model's bandwidth-independent time (its prediction at an
//    unbounded bandwidth: Liu's resume time, Tsakalozos' VMM time, 0 for QEMU/Akoush) and x_i the
//    model's transfer time at the nominal bandwidth for the bytes it predicts at the effective
//    one, g * (P_i(g B_i) - K_i). Then T_i - K_i = overhead_s + x_i / g is a linear regression of
//    time on bytes/bandwidth, solved by least squares with overhead_s >= 0 and 1/g > 0. For dirty
//    VMs x_i depends on g (more rounds on a slower link), so the regression is repeated with the
//    new g until g moves by less than 1e-9 (relative), at most 50 times.
//  * zhao-scr: each phase is linear in its coefficients (zhao_scr_model.h). With suspend_s,
//    copy_s and resume_s observed on every row, three least-squares fits (suspend on 1, M, modified
//    GiB; copy on 1, S/B and, for destination_disk = 1, S^2; resume on 1, M). Without them, the
//    total time is fitted on 1, M, modified, S/B (, S^2), the constant and the per-GiB memory term
//    being booked to suspend (resume_time_s, resume_s_per_gib and copy_base_s set to 0).
//  * liu-base / liu-refined: the link calibration, then, when energy_j is observed on at least
//    two rows, E = alpha * V_MiB + beta by least squares (V = observed transferred bytes, else the
//    model's), giving energy_alpha_j_per_mib and energy_beta_j (liu-refined: after the gamma fit).
//  * liu-refined: gamma = a*T + b*D + c is not observed; (gamma_a, gamma_b, gamma_c) and the
//    goodput factor (which also shapes the per-round volumes) minimise the squared error of
//    predicted total time, the overhead re-solved in closed form at each point, by a Nelder-Mead
//    search over (a, b, c, log g) started from the link calibration and restarted once from its
//    best point (CalibratorOptions::maxSearchEvaluations evaluations in all). gamma is clamped to
//    [0, 1] inside the model, so a, b, c are identifiable only as far as the observations reach
//    unclamped gammas; the fit is judged on total time (R^2), not on recovering a, b, c.
// Linear fits keep every coefficient >= 0 (each is a time, an energy or a factor) by an active
// set: a coefficient that comes out negative is pinned at 0 and the rest refitted. A coefficient
// the observations cannot identify (its column is all zero or collinear with others, e.g. no row
// had modified memory) keeps its starting value; the Calibration's notes say which.
//
// Prediction at a quantile q (CalibratedModel): mean prediction + the empirical q-quantile of the
// residuals (linear interpolation between order statistics), for total time and for downtime
// separately, floored at 0. Without residuals, a relative error: the prediction times
// (1 + relative_error * z_q), z_q the standard normal quantile (relative_error defaults to 0.1).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vrm/planner/migration_model.h"
#include "vrm/protocol/status.h"

namespace vrm::planner {

// One observed migration: what the model is given, and what was measured.
struct MigrationObservation {
  VmProfile vm;                     // memory, non-zero memory, dirty rate, WWS, modified, disk...
  double bandwidthBytesPerSec = 0;  // nominal goodput the migration was given
  double totalTimeS = 0;            // measured, required
  std::optional<double> downtimeS;
  std::optional<double> transferredBytes;
  std::optional<double> suspendS;  // Zhao's phases
  std::optional<double> copyS;
  std::optional<double> resumeS;
  std::optional<double> energyJ;  // Liu's energy
  std::optional<double> setupS;   // qemu-precopy: QEMU's setup-time
  int line = 0;                   // CSV line it came from, for messages (0 = not from a file)
};

// CSV of observed migrations. The first line that is not blank or a '#' comment is the header;
// columns may come in any order; units are in the names; values are plain non-negative numbers
// (workload is text); an empty cell means "not measured" (allowed in optional columns only).
//   required: memory_bytes, bandwidth_bytes_per_sec, total_time_s
//   optional inputs: nonzero_memory_bytes, dirty_rate_bytes_per_sec, wws_bytes,
//     modified_memory_bytes, disk_bytes, disk_dirty_rate_bytes_per_sec, workload
//   optional measurements: downtime_s, transferred_bytes, suspend_s, copy_s, resume_s, energy_j,
//     setup_s
// Errors: invalid-argument "observations line N: reason" for an unknown, duplicate or missing
// column, a row with the wrong number of fields, a value that is not a finite number >= 0, an
// impossible profile (zero memory or bandwidth, non-zero memory above memory), and a file
// without data rows.
inline constexpr const char* kObservationsCsvHeader =
    "memory_bytes,nonzero_memory_bytes,dirty_rate_bytes_per_sec,wws_bytes,modified_memory_bytes,"
    "disk_bytes,disk_dirty_rate_bytes_per_sec,workload,bandwidth_bytes_per_sec,total_time_s,"
    "downtime_s,transferred_bytes,suspend_s,copy_s,resume_s,energy_j,setup_s";
Result<std::vector<MigrationObservation>> parseObservationsCsv(std::string_view text);

// A fitted model: its parameters, the link calibration and the fit's residuals.
struct Calibration {
  std::string model;
  ModelParameters parameters;  // the model's keys (all of them, as in force after the fit)
  double overheadS = 0;        // key overhead_s: added to LinkProfile::preOverheadS
  double goodputFactor = 1;    // key goodput_factor: multiplies the link bandwidth (> 0)
  double relativeError = 0.1;  // key relative_error: quantile spread without residuals (>= 0)

  int observations = 0;               // rows the fit used
  std::optional<double> r2TotalTime;  // 1 - SSres/SStot; absent when SStot == 0
  std::optional<double> r2Downtime;   // over rows with a measured downtime
  double rmseTotalTimeS = 0;
  // Observed - predicted, ascending (keys total_time_residuals_s, downtime_residuals_s).
  std::vector<double> totalTimeResidualsS;
  std::vector<double> downtimeResidualsS;
  // Residual quantiles read from a file without the residual lists (keys
  // total_time_residual_p99_s etc.); used only when the lists are empty and q matches.
  std::map<double, double> totalTimeQuantilesS;
  std::map<double, double> downtimeQuantilesS;
  std::vector<std::string> notes;  // what was fitted and what was kept, for people
};

struct CalibratorOptions {
  ModelParameters initial;          // starting values overlaid on the model's defaults
  double relativeError = 0.1;       // copied into Calibration::relativeError
  int maxSearchEvaluations = 2000;  // Nelder-Mead budget (liu-refined's gamma)
};

class Calibrator {
 public:
  explicit Calibrator(CalibratorOptions options = {}) : options_(std::move(options)) {}

  // Fits `model` to `observations`. Errors: not-found for an unknown model; invalid-argument for
  // fewer than 2 observations, an impossible observation (the message names its line), a
  // negative time, or a model that cannot predict an observation (e.g. akoush-hist without a
  // dirty log).
  Result<Calibration> fit(std::string_view model,
                          const std::vector<MigrationObservation>& observations) const;

 private:
  CalibratorOptions options_;
};

// The empirical q-quantile of ascending `sorted` (linear interpolation; q in [0, 1]); 0 if empty.
double residualQuantile(const std::vector<double>& sorted, double q);
// The standard normal quantile z_q for q in (0, 1).
double normalQuantile(double q);

// The quantiles written to parameters files and printed by vrmctl calibrate.
inline constexpr double kReportedQuantiles[] = {0.5, 0.9, 0.95, 0.99};

// Parameters file: "key = value" lines, '#' comments, blank lines ignored. Keys: model (text),
// observations, overhead_s, goodput_factor, relative_error, r2_total_time, r2_downtime,
// rmse_total_time_s, total_time_residual_pNN_s / downtime_residual_pNN_s (NN in 50, 90, 95, 99),
// total_time_residuals_s / downtime_residuals_s (space-separated numbers), and every other key is
// one of the model's parameters. formatCalibration writes notes as comments and numbers with 17
// significant digits, so parse(format(c)) == c (notes aside).
std::string formatCalibration(const Calibration& calibration);
// Errors: invalid-argument "params line N: reason" for a line without '=', a duplicate key, a
// value that is not a number, no model line, or a goodput_factor <= 0. Model keys are checked
// when the model is created.
Result<Calibration> parseCalibration(std::string_view text);

// The calibrated model: `calibration.model` with its parameters, the link calibration applied to
// every estimate, and, with a quantile in (0, 1), total time and downtime raised to that
// quantile (extras total_time_mean_s, downtime_mean_s and quantile keep the mean figures, and a
// "quantile margin" phase the difference). parameters() lists the model's keys plus overhead_s
// and goodput_factor.
// Errors: as createMigrationModel, and invalid-argument for a quantile outside (0, 1).
Result<std::unique_ptr<MigrationModel>> createCalibratedModel(
    const Calibration& calibration, std::optional<double> quantile = std::nullopt);

}  // namespace vrm::planner
