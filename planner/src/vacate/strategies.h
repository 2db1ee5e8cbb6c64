// Step 3 of CostAwareVacatePlanner::plan (planner/src only): sequential, batched or parallel
// execution, each simulated, and the one the objective picks.
//
// The network moves, interleaved across source hosts (round robin over the sources in the order
// of their largest VM, each source's VMs largest first), are cut into batches of k; a batch starts
// when the previous one has ended (the way vrmd executes batches); moves that use no resource
// (suspensions kept in place) join the first batch. Each move is costed at its max-min share with
// its whole batch on the network (so a dirtying VM that converges alone may not in a crowd), then
// the batch is run in the fluid model (fluid_sharing.h).
// Pure; the FairShare passed in is scratch and not thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "vacate/cluster.h"
#include "vacate/fluid_sharing.h"
#include "vacate/moves.h"

namespace vrm::planner::vacate {

// One strategy, simulated. Times in seconds from the vacate start.
struct StrategyResult {
  std::size_t k = 0;               // batch size
  std::vector<PlannedMove> moves;  // in the order of the specs
  std::vector<std::string> notes;
  double makespanS = 0;
  double maxVmTimeS = 0;      // over the moves that are not suspensions
  double maxVmDowntimeS = 0;  // likewise
  double energyJ = 0;
  // Set by the deadline step (deadline.h), not by simulate().
  double quantileMakespanS = 0;
  TimeNs latestSafeStartNs = 0;
  bool feasible = true;
};

// The moves specs[network[i]] in execution order: interleaved across their sources.
std::vector<std::size_t> interleave(const std::vector<MoveSpec>& specs,
                                    const std::vector<std::size_t>& network);

// The batch sizes to simulate for n >= 1 network moves (n = 1 when there are none): the request's
// batchSize (at most n) when set, else 1, 2, 4, ... below n, the number of sources and its
// doublings below n, and n; ascending, without repeats.
std::vector<std::size_t> batchSizes(const VacateRequest& req, const std::vector<MoveSpec>& specs,
                                    const std::vector<std::size_t>& network, std::size_t n);

// The plan with batches of k of the moves `order` (then `inPlace` in the first batch). The specs'
// resources index `share`'s capacities. Errors: evaluateMove's.
Result<StrategyResult> simulate(const Models& m, const Cluster& c,
                                const std::vector<MoveSpec>& specs,
                                const std::vector<std::size_t>& order,
                                const std::vector<std::size_t>& inPlace, std::size_t k,
                                FairShare& share);

// The index in `results` (non-empty, deadline step done) of the strategy the objective picks:
//  * makespan: the smallest makespan at the quantile; makespans within 0.5% count as equal and
//    the one with the shorter longest per-VM time wins (less parallelism for nothing is worse);
//  * degradation with maxVmTimeNs / maxVmDowntimeNs: the fastest whose every migration stays
//    within the bounds (suspensions are exempt); none -> rejected, naming the gentlest;
//  * degradation without bounds: the shortest longest per-VM time among the feasible ones; if none
//    is feasible, the fastest.
// `n` is the number of network moves, for strategyName().
Result<std::size_t> pickStrategy(const VacateRequest& req,
                                 const std::vector<StrategyResult>& results, std::size_t n);

// "sequential" (k <= 1), "parallel" (k >= moves) or "batched(k)".
std::string strategyName(std::size_t k, std::size_t moves);

}  // namespace vrm::planner::vacate
