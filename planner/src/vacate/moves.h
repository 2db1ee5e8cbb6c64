// The moves of a vacate plan (planner/src only): what each uses, and its segments, costed.
//
// specifyMoves() turns a placement into moves: a placed VM's move uses its source's sending NIC,
// its destination's receiving NIC and every link it crosses; an unplaced VM is suspended (when
// the request's policy and the VM allow it), to the suspend store's NIC when there is a store,
// else in place with no resource.
//
// A move is a sequence of segments, each either fixed (setup, suspend or save, resume or restore,
// handoff, commit: seconds that do not depend on what else runs) or network (bytes that share the
// move's resources with the other moves of its batch; see fluid_sharing.h). evaluateMove() costs
// a move at a given bandwidth share with the planner's models:
//  * a suspension (MoveMode::kSuspend): the suspend-copy-resume model's save, then the VM's
//    memory to the suspend store when it has one;
//  * otherwise a local disk (VmSnapshot::diskBytes > 0, seed 004) is synchronised first while the
//    VM runs, Disk_size / (Net_Rate - Dirty_Rate) at the share as a network segment; a disk dirtied
//    at half the share or more gets its writes capped at half the share, and a note says so;
//  * then memory: live when the VM allows it and the live model converges at the share, else
//    suspend-copy-resume when allowed, else live with a forced switchover (and a note).
// The network volume of a segment is its time at the share times the share.
// Pure; the models are shared, immutable and thread-safe.
#pragma once

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "vacate/cluster.h"
#include "vacate/destinations.h"
#include "vrm/planner/cost_aware_vacate_planner.h"
#include "vrm/planner/migration_model.h"
#include "vrm/planner/vacate_planner.h"

namespace vrm::planner::vacate {

struct Segment {
  bool network = false;
  double amount = 0;        // seconds (fixed) or bytes (network)
  bool downStarts = false;  // the VM stops when this segment starts
  bool downEnds = false;    // ... and runs again when it ends
};

struct MoveEval {
  MoveMode mode = MoveMode::kLive;
  std::vector<Segment> segments;
  double modelDowntimeS = 0;  // live: the model's downtime at the share
  bool downFromSegments = false;
  double transferredBytes = 0;
  double energyJ = 0;
  double diskSyncS = 0;
  double diskCapBytesPerSec = 0;  // 0 = disk writes not capped
  double memoryNetworkS = 0;      // memory migration time at the share (Expression 1's VMM_time)
  double totalS = 0;              // at the share, uncontended by anything else
  std::string note;
};

struct MoveSpec {
  int vm = 0;
  int src = 0;
  int dst = -1;  // host index; -1 = suspended
  bool suspend = false;
  std::vector<int> resources;  // contention resources it uses (see cluster.h)
  double soloBandwidth = std::numeric_limits<double>::infinity();  // least capacity among them
};

// The planner's models and options, for the helpers of plan() and chooseHosts(). `live` and
// `scr` may be null (that mode is then never planned); `suspend` (zhao-scr defaults) and `disk`
// (tsakalozos-disk) are not.
struct Models {
  const MigrationModel* live;
  const MigrationModel* scr;
  const MigrationModel* suspend;
  const MigrationModel* disk;
  const CostAwareVacatePlannerOptions& options;
};

// One move per entry of placement.vms, in that order; a note per suspension. Errors: rejected
// when a VM has no destination and may not be suspended (the message says why).
Result<std::vector<MoveSpec>> specifyMoves(const Cluster& c, const Placement& placement,
                                           std::vector<std::string>& notes);

// Renumbers the specs' resources 0, 1, ... among those the moves use (so that the fluid model is
// sized by the plan, not by the cluster; the numbering changes no computation) and returns the
// capacity of each, bytes/s.
std::vector<double> numberResourcesLocally(const Cluster& c, std::vector<MoveSpec>& specs);

// Seconds of the fixed segments before the first network one / after the last one, and the bytes
// of all network segments.
double lead(const std::vector<Segment>& s);
double tail(const std::vector<Segment>& s);
double networkBytes(const std::vector<Segment>& s);

// The model input for `vm`. With a dirty-rate quantile q in (0, 1) and recent samples, the dirty
// rate is the q-quantile of the samples and the current one (a VM that dirties in bursts is
// planned for its bursts), else the current sample. Disk fields stay 0: the disk is synchronised
// separately (Expression 1).
VmProfile profileOf(const VmSnapshot& vm, double dirtyRateQuantile = 0);

// A suspension's save and restore seconds at `bandwidth`: the suspend-copy-resume model's phases
// when it has them (qemu-scr's save/restore, zhao-scr's suspend/resume), else zhao-scr's defaults.
// Errors: the model's; internal when no model gives both phases.
Result<std::pair<double, double>> suspendPhases(const Models& m, const VmProfile& profile,
                                                double bandwidth);

// `vm` moved as `spec` says at `bandwidth` (bytes/s, > 0), alone. Errors: the model's, with the
// VM's id; invalid-argument when the VM allows no mode the planner has a model for.
Result<MoveEval> evaluateMove(const Models& m, const VacateRequest& req, const VmSnapshot& vm,
                              const MoveSpec& spec, double bandwidth);

}  // namespace vrm::planner::vacate
