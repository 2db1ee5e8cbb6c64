// The fit of each model's parameters (planner/src only), as calibration.h describes them. Each
// takes a Calibration whose model, parameters (the starting values), overhead and goodput factor
// are set, and the observations (already checked: at least 2, possible profiles, measurements
// >= 0); it fits in place and adds notes of what it fitted and kept. Deterministic and pure.
// Errors: invalid-argument naming an observation the model cannot predict, or too few finite
// predictions; the model factory's for parameters it rejects.
#pragma once

#include <vector>

#include "vrm/planner/calibration.h"

namespace vrm::planner::fitting {

// Link calibration (every model but zhao-scr, qemu-scr and qemu-precopy): overhead_s and
// goodput_factor by the regression of T_i - K_i on the transfer times, repeated until g settles.
Status fitLink(Calibration& c, const std::vector<MigrationObservation>& obs);
// liu-refined: gamma_a, gamma_b, gamma_c and the goodput factor by Nelder-Mead on total time,
// within `maxEvaluations` evaluations (after fitLink).
Status fitLiuGamma(Calibration& c, const std::vector<MigrationObservation>& obs,
                   int maxEvaluations);
// liu-base / liu-refined: energy_alpha_j_per_mib and energy_beta_j from the rows with energy_j
// (kept, with a note, when fewer than 2 have it).
Status fitLiuEnergy(Calibration& c, const std::vector<MigrationObservation>& obs);
// zhao-scr: the phase coefficients, per phase when every row has suspend_s, copy_s and resume_s,
// else on total time.
Status fitZhao(Calibration& c, const std::vector<MigrationObservation>& obs);
// qemu-scr: device_state_bytes, then save, copy, restore and handoff, per phase or on total time.
Status fitQemuScr(Calibration& c, const std::vector<MigrationObservation>& obs);
// qemu-precopy: setup, the goodput factor, and the downtime's base and switchover rate.
Status fitQemuPrecopy(Calibration& c, const std::vector<MigrationObservation>& obs);

}  // namespace vrm::planner::fitting
