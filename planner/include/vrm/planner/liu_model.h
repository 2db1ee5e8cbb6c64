// Liu et al., "Performance and Energy Modeling for Live Migration of Virtual Machines" (HPDC'11):
// the helpers the VRM uses around the "liu-base" and "liu-refined" migration models.
//
// The models themselves are created with createMigrationModel("liu-base" | "liu-refined").
// liu-base is eqs. 1-8: lambda = D / R, n = min(ceil(log_lambda(V_thd / V_mem)), max_rounds)
// (n = max_rounds when lambda >= 1), geometric sums for V_mig and T_mig, T_down = T_n + T_resume.
// liu-refined is Algorithm 1 with the writable-working-set ratio gamma = a*T_i + b*D + c (T in s,
// D in MiB/s, clamped to [0, 1]); it estimates D from the VM's dirty-rate history (eqs. 11-13)
// blended with the current sample when VmProfile::dirtyRateHistoryBytesPerSec is not empty.
// Both fill energyJ with E = alpha * V_mig[MiB] + beta (eqs. 15, 17).
// V_mem is VmProfile::memoryBytes (Xen sends every page, zero or not), D the dirty rate and R the
// link goodput. totalTimeS = pre-overhead + T_mig + T_resume + post-overhead; the paper's T_mig
// (eq. 6, the sum of the transfer rounds) is in extras["t_mig_s"]. rounds counts every transfer
// round including the stop-and-copy one; phases are "round 0", "round 1", ..., "stop-and-copy",
// "resume". converges is false when the stop test was not met within max_rounds.
// liu-base takes eqs. 4-6 literally when lambda >= 1: each round then exceeds the last (the paper
// calls this case "not applicable" to the base model), so its figures are only a ranking signal;
// converges = false flags it. liu-refined handles it through the V_{i+1} > V_i stop test.
// liu-refined runs Algorithm 1's loop "for i = 0 to max_round" as written, so with the final
// stop-and-copy it sends at most max_rounds + 2 rounds (liu-base, eq. 8: max_rounds + 1).
//
// Parameter keys (defaults):            vrmctl predict flag
//   threshold_pages         50           --threshold     V_thd, in pages (Xen's value)
//   page_size_bytes         4096                         size of one page of V_thd
//   max_rounds              29           --max-rounds    whole number >= 0 (Xen's value)
//   resume_time_s           0.02         --resume-time   T_resume (Section 3.1)
//   energy_alpha_j_per_mib  0.512                        alpha of eq. 17
//   energy_beta_j           20.165                       beta of eq. 17
// liu-refined only:
//   gamma_a                 -0.0463                      coefficient of T_i [s]
//   gamma_b                 -0.0001                      coefficient of D [MiB/s]
//   gamma_c                 0.3586                       constant term
//   mu                      0.7                          EWMA weight of eq. 12, in [0, 1]
//   phi                     0.5                          eq. 13 weight of the sample, in [0, 1]
//
// All functions here are pure and thread-safe.
#pragma once

#include <cstddef>
#include <vector>

#include "vrm/planner/migration_model.h"
#include "vrm/protocol/status.h"

namespace vrm::planner {

// One pre-copy round as logged by the migration daemon.
struct RoundDirtyRate {
  double dirtyRateBytesPerSec = 0;
  double durationS = 0;
};

// Eq. 11: the time-weighted mean dirty rate of one migration, sum(D_i * T_i) / sum(T_i).
// Errors: invalid-argument for no rounds, a negative or non-finite figure, or zero total time.
Result<double> weightedMeanDirtyRate(const std::vector<RoundDirtyRate>& rounds);

// Eq. 12 folded over a VM's history of per-migration means (eq. 11), oldest first:
// D^_1 = Dbar_1, D^_m = mu * Dbar_m + (1 - mu) * D^_{m-1}. Returns D^ after the newest entry.
// Errors: invalid-argument for an empty history, negative entries or mu outside [0, 1].
Result<double> ewmaDirtyRate(const std::vector<double>& historyBytesPerSec, double mu);

// Eq. 13: D~ = phi * S + (1 - phi) * D^, the current sample S blended with the EWMA D^.
// Errors: invalid-argument for negative rates or phi outside [0, 1].
Result<double> blendDirtyRate(double currentSampleBytesPerSec, double ewmaBytesPerSec, double phi);

// Eq. 15: E = alpha * V_mig + beta, V_mig in MiB (2^20 bytes), E in joules.
double liuMigrationEnergyJ(double transferredBytes, double alphaJPerMiB = 0.512,
                           double betaJ = 20.165);

// Weights a, b, c, d of eq. 18; they must be >= 0 and sum to 1.
struct MigrationCostWeights {
  double downtime = 0.25;       // a, on T_down = MigrationEstimate::downtimeS
  double migrationTime = 0.25;  // b, on T_mig = MigrationEstimate::totalTimeS
  double traffic = 0.25;        // c, on V_mig = MigrationEstimate::transferredBytes
  double energy = 0.25;         // d, on E_mig = MigrationEstimate::energyJ
};

struct MigrationCostRanking {
  std::vector<double> costs;      // C(VM_i) per candidate, in the order given; each in [0, 1]
  std::size_t cheapestIndex = 0;  // the lowest cost; the first one on ties
};

// Eq. 18, C(VM_i) = a*T_down + b*T_mig + c*V_mig + d*E_mig, each metric divided by its maximum
// over `candidates` (a metric that is 0 for every candidate contributes 0).
// Errors: invalid-argument for no candidates, weights that are negative or do not sum to 1,
// negative metrics, or a positive energy weight with a candidate lacking energyJ.
Result<MigrationCostRanking> rankMigrationCandidates(
    const std::vector<MigrationEstimate>& candidates, const MigrationCostWeights& weights = {});

}  // namespace vrm::planner
