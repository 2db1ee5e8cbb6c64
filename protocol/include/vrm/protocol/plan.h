// A vacate plan as the whole system sees it: what the planner produces, vrmd executes and
// stores, and clients display. Times are TimeNs; offsets are relative to the vacate start.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vrm/protocol/time.h"

namespace vrm {

// How a VM leaves its host. kPark: no destination has room, so the VM is parked for the
// reservation: its agent saves its state to a file on the source and stops it, and it is
// unparked there at PlannedMove::resumeAtNs (toHost == fromHost). kSuspend is the same value
// under its older name, kept until the planner and the agents use kPark; on the wire and in
// JSON it is "suspend".
enum class MoveMode { kLive, kSuspendCopyResume, kPark, kSuspend = kPark };
const char* moveModeName(MoveMode mode);  // "live", "suspend-copy-resume", "suspend"

struct PlannedMove {
  std::string vmId;
  std::string fromHost;
  std::string toHost;
  MoveMode mode = MoveMode::kLive;
  std::uint32_t batch = 0;   // moves of one batch run concurrently
  TimeNs startOffsetNs = 0;  // relative to the vacate start
  TimeNs endOffsetNs = 0;
  std::uint64_t transferredBytes = 0;
  std::uint64_t memoryBytes = 0;
  TimeNs downtimeNs = 0;
  // Fields below were added with the cost-aware planner; 0 means "not applicable".
  TimeNs resumeAtNs = 0;                 // kPark: when to unpark it on fromHost (absolute)
  TimeNs diskSyncNs = 0;                 // local-disk synchronisation inside the move (Expr. 1)
  double networkLimitBytesPerSec = 0;    // the bandwidth share the plan assumes (broker limit)
  double diskWriteLimitBytesPerSec = 0;  // cap on the VM's disk writes the broker would apply
  // Set by vrmd when a re-plan starts moves alongside this one while it runs: its migration is
  // capped at this rate while other unfinished moves of its batch share one of its NICs, and
  // uncapped once they have ended (so the re-plan's moves get the share they were planned with).
  double replanCapBytesPerSec = 0;
};

// A plan's figures without its moves: what a reservation keeps of the plan it was admitted
// with (its moves become the reservation's Move list, reservation.h).
struct PlanSummary {
  std::string strategy;   // "sequential", "parallel", "batched(k)"
  std::string model;      // migration model used
  TimeNs makespanNs = 0;  // predicted mean
  TimeNs cloneTimeNs = 0;
  TimeNs marginNs = 0;
  // reservation start - clone time - makespan at the quantile - margin (the skeleton's planner
  // has no quantile and uses the mean).
  TimeNs latestSafeStartNs = 0;
  // Fields below were added with the cost-aware planner; the skeleton's planner leaves them at
  // their defaults.
  std::string objective;               // "makespan" or "degradation"
  std::vector<std::string> hosts;      // the hosts vacated
  std::uint32_t batchSize = 0;         // moves per batch (1 = sequential)
  double quantile = 0;                 // confidence quantile of makespanQuantileNs
  TimeNs makespanQuantileNs = 0;       // makespan at `quantile`
  TimeNs makespanLowerBoundNs = 0;     // no schedule of these moves can be faster
  TimeNs maxVmTimeNs = 0;              // longest single migration (suspensions excluded)
  double energyJ = 0;                  // Liu eq. 15 summed over the moves
  bool feasible = true;                // false: even starting now misses the start
  TimeNs earliestFeasibleStartNs = 0;  // when !feasible: earliest start that would work
  std::vector<std::string> notes;      // suspensions, non-converging moves, disk caps
};

// What a planner returns: the figures and the moves, in batch order.
struct VacatePlan : PlanSummary {
  std::vector<PlannedMove> moves;
};

}  // namespace vrm
