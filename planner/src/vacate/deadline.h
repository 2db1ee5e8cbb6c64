// Step 4 of CostAwareVacatePlanner::plan (planner/src only), the timing: the makespan at the
// quantile, when vacating must start for the reservation, and what keeps each move in its window.
//
//  * Makespan at quantile q: with >= kMinErrorSamples relative residuals, makespan x (1 + their
//    empirical q-quantile); otherwise makespan x (1 + z_q x relativeErrorStdDev), z_q the standard
//    normal quantile; never below the lower bound.
//  * Lower bound: max over resources of (shortest fixed lead-in of a move using it + its moves'
//    network volumes at full, uncontended bandwidth / its capacity + shortest fixed tail), and no
//    less than the longest single move run alone.
//  * Latest safe start = reservationStartNs - cloneTimeNs - makespan at the quantile - marginNs;
//    feasible when it is >= nowNs, and otherwise the earliest feasible start is nowNs +
//    cloneTimeNs + makespan at the quantile + marginNs.
//  * Local disks (seed 004's deadline scheme): the broker's disk-write cap keeping Expression 1,
//    Disk_size / (Net_Rate - Dirty_Rate) + VMM_time <= finish_time, true within each move's window
//    stretched like the makespan.
// Pure.
#pragma once

#include <vector>

#include "vacate/moves.h"
#include "vacate/strategies.h"

namespace vrm::planner::vacate {

// What the makespan is multiplied by at quantile q in (0, 1) (>= 0).
double quantileFactor(const VacateRequest& req, double q);

// The lower bound above, in seconds, for the moves `specs` whose resources index `capacity`.
// Errors: evaluateMove's.
Result<double> makespanLowerBoundS(const Models& m, const VacateRequest& req,
                                   const std::vector<MoveSpec>& specs,
                                   const std::vector<double>& capacity);

// Sets r's makespan at the quantile, latest safe start and feasibility from its makespan.
void applyDeadline(const VacateRequest& req, double quantileFactor, double lowerBoundS,
                   StrategyResult& r);

// When vacating could start at the earliest, for a plan that is not feasible now.
TimeNs earliestFeasibleStartNs(const VacateRequest& req, TimeNs makespanQuantileNs);

// Suspended VMs (specs[i].suspend) are down from their suspension (vacating from the chosen
// strategy's latest safe start) until they are resumed when the reservation ends: sets their
// moves' resumeAtNs and whole downtime. Nothing changes without a reservation end.
void completeSuspensions(const Models& m, const VacateRequest& req,
                         const std::vector<MoveSpec>& specs, StrategyResult& chosen);

// For each of chosen's moves with a disk to synchronise: finish_time = its planned duration
// stretched like the makespan at the quantile, VMM_time = the part of it after the disk is in
// sync, and the cap Net_Rate - Disk_size / (finish_time - VMM_time), kept under any cap
// evaluateMove set.
void limitDiskWrites(const VacateRequest& req, const std::vector<MoveSpec>& specs,
                     StrategyResult& chosen);

}  // namespace vrm::planner::vacate
