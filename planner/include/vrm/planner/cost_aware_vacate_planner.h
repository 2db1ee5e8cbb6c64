// The VRM's vacate planner: which hosts to vacate, where each VM goes, in what order, and when
// vacating must start - with the contention of concurrent migrations modelled.
//
// Seed 000 (Zhao & Figueiredo, Section 3.4) found that migrating VMs in parallel finishes the
// whole vacate sooner (suspend and resume phases overlap) but makes each VM's own migration much
// slower (the copies share the NIC). This planner predicts both effects and picks the strategy
// for the operator's objective.
//
// Steps of plan(request):
//  1. Hosts: request.hostsToVacate, or chooseHosts(request, request.hostCount).
//  2. Destinations: VMs in decreasing memory order; each goes to the receiver with room for it
//     (free CPU and memory minus the peak of its future bookings, minus what the plan already
//     put there) whose receiving NIC and crossed shared links would be least loaded, in seconds
//     of transfer, after taking it; ties (within 1e-9) go to the host with more free memory,
//     then to the first in cluster order. Receivers are hosts that are not vacated,
//     canReceive, and have no exclusive booking ending after nowNs. Receivers that received
//     nothing yet score alike within their IndexedCluster group, so only the hosts the plan
//     already uses and the roomiest fitting host of each group are scored (all of them when
//     two different scores fall within the tie tolerance, where the order is not transitive).
//     A VM no receiver fits is suspended (MoveMode::kSuspend) when the policy and the VM allow
//     it, else plan() fails.
//  3. Strategy: the moves, interleaved across source hosts (round robin, largest first), are cut
//     into batches of k for k in {1, 2, 4, ..., the number of sources and its multiples, all};
//     a batch starts when the previous one has ended (the way vrmd executes batches). Every k is
//     simulated and the objective picks one (see "Objectives").
//  4. Timing: per-move start and end, makespan (mean and at the quantile), a lower bound, the
//     latest safe start and feasibility.
//
// Contention model (a fluid model). Resources are each host's sending NIC, each host's receiving
// NIC, each SharedLink, and the suspend store's NIC; a migration uses its source's sending NIC,
// its destination's receiving NIC and every link it crosses. A move is a sequence of segments,
// each either fixed (setup, suspend or save, resume or restore, handoff, commit: they take the
// same time however many moves run, so they overlap freely) or network (a volume of bytes: a
// live migration's passes, a suspend-copy-resume's copy, which share the links). Moves of one batch
// in a network segment share the resources by max-min fairness (progressive filling), recomputed
// whenever a move enters or leaves a network segment. The volumes come from each move's
// MigrationModel evaluated at its share when the whole batch is on the network (so a dirtying VM
// that converges alone may not converge in a crowd: it then falls back to suspend-copy-resume when
// allowed); network time at that share times the share is the volume, which later moves at whatever
// rate the fair share gives it. Evaluating the volume at the lowest share is conservative for live
// migration (more bandwidth later means fewer re-dirtied pages than assumed).
// A local disk (VmSnapshot::diskBytes > 0, seed 004) is synchronised first, while the VM runs:
// Disk_size / (Net_Rate - Dirty_Rate) at the move's share is a network segment before the memory
// migration. When the disk is dirtied at half the share or more the broker would cap its writes
// (Algorithm 1's warning): the plan caps them at half the share and says so.
//
// Objectives:
//  * makespan: the smallest makespan at the quantile; makespans within 0.5% count as equal and
//    the one with the shorter longest per-VM time wins (less parallelism for nothing is worse).
//  * degradation with maxVmTimeNs / maxVmDowntimeNs: the fastest plan whose every migration
//    stays within the bounds (suspensions are exempt: their downtime is the reservation); none
//    -> rejected. Without bounds: the plan with the shortest longest per-VM time that still
//    meets the deadline (latest safe start >= nowNs); if none meets it, the fastest.
//
// Timing details. makespan at quantile q: with >= kMinErrorSamples relative residuals, makespan
// x (1 + empirical q-quantile of the residuals); otherwise makespan x (1 + z_q x
// relativeErrorStdDev) (z_q the standard normal quantile); never below the lower bound. Lower
// bound: max over resources of (shortest fixed lead-in of a move using it + its moves' network
// volumes at full, uncontended bandwidth / its bandwidth + shortest fixed tail), and no less than
// the longest single move run alone. Latest safe start = reservationStartNs - cloneTimeNs -
// makespan at the quantile - marginNs; feasible = latest safe start >= nowNs, and otherwise
// earliestFeasibleStartNs = nowNs + cloneTimeNs + makespan at the quantile + marginNs.
// Energy: MigrationEstimate::energyJ when the model gives it, else Liu eq. 15 on the bytes.
//
// Pure code: no I/O, no clock; plan() and chooseHosts() are const and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vrm/planner/indexed_cluster.h"
#include "vrm/planner/liu_model.h"
#include "vrm/planner/vacate_planner.h"

namespace vrm::planner {

struct CostAwareVacatePlannerOptions {
  // Eq. 18 weights (downtime, migration time, traffic, energy) ranking candidate hosts.
  MigrationCostWeights weights;
  // Setup and commit time around every migration (LinkProfile overheads), seconds.
  double preOverheadS = 0;
  double postOverheadS = 0;
  // Step 2 scores every receiver for every VM, as the planner did before IndexedCluster kept
  // receivers grouped by room (default false: only the hosts the plan already uses and the
  // roomiest fitting host of each group are scored, which picks the same destinations). The
  // reference the grouped search is tested against; slow at thousands of hosts.
  bool exhaustivePlacement = false;
  // The quantile of the makespan a request without one (VacateRequest::quantile == 0) is
  // planned at, in (0, 1).
  double quantile = 0.95;
};

class CostAwareVacatePlanner final : public VacatePlanner {
 public:
  // `liveModel` predicts live migrations (e.g. qemu-precopy, liu-refined) and `scrModel`
  // suspend-copy-resume (zhao-scr). Either may be null: that mode is then never planned.
  // Suspensions (MoveMode::kSuspend) take the suspend-copy-resume model's save and restore
  // phases (qemu-scr's "save"/"restore", zhao-scr's "suspend"/"resume"); without one, zhao-scr's
  // defaults.
  CostAwareVacatePlanner(std::shared_ptr<const MigrationModel> liveModel,
                         std::shared_ptr<const MigrationModel> scrModel,
                         CostAwareVacatePlannerOptions options = {});

  // Models by name (createMigrationModel). Errors: as createMigrationModel.
  static Result<std::unique_ptr<CostAwareVacatePlanner>> create(
      std::string_view liveModel = "qemu-precopy", std::string_view scrModel = "zhao-scr",
      CostAwareVacatePlannerOptions options = {});

  // Errors: invalid-argument for unknown hosts, a quantile outside (0, 1), neither hosts nor a
  // host count; rejected when hosts cannot be chosen, a VM has no destination and may not be
  // suspended, or no strategy meets the degradation bounds (the message says why).
  Result<VacatePlan> plan(const VacateRequest& request) const override;
  // The same plan from an index kept across calls (see VacatePlanner and IndexedCluster): its
  // cost grows with the VMs to move and the hosts receiving them, not with the cluster.
  Result<VacatePlan> plan(const IndexedCluster& cluster,
                          const VacateRequest& request) const override;

  // The `count` hosts to vacate, cheapest first: candidates are request.candidateHosts (or every
  // host) that canVacate, fit cloneCpuCoresPerHost / cloneMemoryBytesPerHost when empty, and hold
  // no booking overlapping [nowNs, reservationEndNs). Each is costed by Liu eq. 18 over the sums
  // of its VMs' solo estimates (downtime, time, bytes, energy) at its NIC bandwidth, each metric
  // normalised by its maximum over the candidates. Candidates are taken in cost order as long as
  // every VM of the set still finds a destination; sets that need suspensions are used only
  // when no set without them exists (fewest suspensions first).
  // Errors: rejected with the reason when fewer than `count` hosts qualify; invalid-argument for
  // an unknown candidate or count 0.
  Result<std::vector<std::string>> chooseHosts(const VacateRequest& request,
                                               std::size_t count) const;

  const CostAwareVacatePlannerOptions& options() const { return options_; }

 private:
  Result<VacatePlan> planIndexed(const IndexedCluster& cluster, const VacateRequest& req) const;
  std::shared_ptr<const MigrationModel> live_;
  std::shared_ptr<const MigrationModel> scr_;
  std::shared_ptr<const MigrationModel> suspend_;  // zhao-scr defaults, for kSuspend phases
  std::shared_ptr<const MigrationModel> disk_;     // tsakalozos-disk, for local disks
  CostAwareVacatePlannerOptions options_;
};

}  // namespace vrm::planner
