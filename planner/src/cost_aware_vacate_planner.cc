// CostAwareVacatePlanner: contract, contention model and objectives are in
// vrm/planner/cost_aware_vacate_planner.h. This file wires the steps listed there; each lives in
// its own unit under vacate/ (planner/src only):
//   cluster.h        the cluster as one call sees it, and the contention resources
//   host_choice.h    step 1: which hosts may be vacated, the cheapest ones to vacate
//   destinations.h   step 2: where each VM goes
//   moves.h          the moves of a placement: the resources each uses, its segments, costed
//   fluid_sharing.h  concurrent moves sharing NICs and links (max-min fair)
//   strategies.h     step 3: sequential / batched / parallel, simulated, and the objective's pick
//   deadline.h       step 4: makespan at the quantile, latest safe start, disk-write caps
#include "vrm/planner/cost_aware_vacate_planner.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vacate/cluster.h"
#include "vacate/deadline.h"
#include "vacate/destinations.h"
#include "vacate/host_choice.h"
#include "vacate/moves.h"
#include "vacate/strategies.h"
#include "vrm/planner/tsakalozos_disk_model.h"
#include "vrm/planner/zhao_scr_model.h"
#include "vrm/protocol/units.h"

namespace vrm::planner {

using vacate::Cluster;
using vacate::Models;
using vacate::MoveSpec;
using vacate::StrategyResult;

CostAwareVacatePlanner::CostAwareVacatePlanner(std::shared_ptr<const MigrationModel> liveModel,
                                               std::shared_ptr<const MigrationModel> scrModel,
                                               CostAwareVacatePlannerOptions options)
    : live_(std::move(liveModel)), scr_(std::move(scrModel)), options_(options) {
  // Both have only valid defaults, so creation cannot fail.
  suspend_ = std::shared_ptr<const MigrationModel>(*createMigrationModel(kZhaoScrModelName));
  disk_ = std::shared_ptr<const MigrationModel>(*createMigrationModel(tsakalozos::kDiskModel));
}

Result<std::unique_ptr<CostAwareVacatePlanner>> CostAwareVacatePlanner::create(
    std::string_view liveModel, std::string_view scrModel, CostAwareVacatePlannerOptions options) {
  auto live = createMigrationModel(liveModel);
  if (!live) return live.status();
  auto scr = createMigrationModel(scrModel);
  if (!scr) return scr.status();
  return std::make_unique<CostAwareVacatePlanner>(
      std::shared_ptr<const MigrationModel>(std::move(*live)),
      std::shared_ptr<const MigrationModel>(std::move(*scr)), options);
}

namespace {

Status checkPlanRequest(const VacateRequest& req) {
  if (req.quantile != 0 && !(req.quantile > 0 && req.quantile < 1)) {
    return Status::invalid("quantile must be between 0 and 1 (exclusive), or 0 for the default");
  }
  if (req.dirtyRateQuantile != 0 && !(req.dirtyRateQuantile > 0 && req.dirtyRateQuantile < 1)) {
    return Status::invalid("dirty-rate quantile must be between 0 and 1 (exclusive), or 0");
  }
  if (!(req.relativeErrorStdDev >= 0) || !std::isfinite(req.relativeErrorStdDev)) {
    return Status::invalid("relative error must be >= 0");
  }
  return Status::ok();
}

}  // namespace

Result<std::vector<std::string>> CostAwareVacatePlanner::chooseHosts(const VacateRequest& req,
                                                                     std::size_t count) const {
  if (count == 0) return Status::invalid("the number of hosts to choose must be positive");
  auto ix = IndexedCluster::create(req.hosts, req.links, req.nowNs);
  if (!ix) return ix.status();
  auto c = vacate::indexVms(req, ix->impl(), options_.exhaustivePlacement);
  if (!c) return c.status();
  const Models m{live_.get(), scr_.get(), suspend_.get(), disk_.get(), options_};
  return vacate::chooseHostsIn(m, *c, count);
}

Result<VacatePlan> CostAwareVacatePlanner::plan(const VacateRequest& req) const {
  if (Status s = checkPlanRequest(req); !s) return s;
  auto ix = IndexedCluster::create(req.hosts, req.links, req.nowNs);
  if (!ix) return ix.status();
  return planIndexed(*ix, req);
}

Result<VacatePlan> CostAwareVacatePlanner::plan(const IndexedCluster& cluster,
                                                const VacateRequest& req) const {
  if (Status s = checkPlanRequest(req); !s) return s;
  if (req.nowNs != cluster.nowNs()) {
    return Status::invalid("the cluster was indexed for another time than the request's");
  }
  return planIndexed(cluster, req);
}

Result<VacatePlan> CostAwareVacatePlanner::planIndexed(const IndexedCluster& cluster,
                                                       const VacateRequest& req) const {
  if (!(options_.quantile > 0 && options_.quantile < 1)) {
    return Status::invalid("the planner's default quantile must be between 0 and 1 (exclusive)");
  }
  auto indexed = vacate::indexVms(req, cluster.impl(), options_.exhaustivePlacement);
  if (!indexed) return indexed.status();
  const Cluster& c = *indexed;
  const Models m{live_.get(), scr_.get(), suspend_.get(), disk_.get(), options_};

  // Step 1: hosts.
  std::vector<std::string> hosts = req.hostsToVacate;
  if (hosts.empty()) {
    if (req.hostCount == 0) return Status::invalid("name the hosts to vacate or how many");
    auto chosen = vacate::chooseHostsIn(m, c, req.hostCount);
    if (!chosen) return chosen.status();
    hosts = std::move(*chosen);
  }
  std::vector<char> vacating(c.hostCount(), 0);
  for (const auto& name : hosts) {
    auto it = c.ix.hostIndex.find(name);
    if (it == c.ix.hostIndex.end()) {
      return Status::invalid("unknown host '" + name + "' to vacate");
    }
    if (vacating[it->second]) return Status::invalid("host '" + name + "' named twice");
    vacating[it->second] = 1;
    if (std::string why = vacate::whyNotVacatable(req, c.ix.hosts[it->second]); !why.empty()) {
      return Status::rejected(std::move(why));
    }
  }

  // Step 2: destinations, and the moves with the resources they use.
  const vacate::Placement placement = vacate::place(c, vacating);
  std::vector<std::string> notes;
  auto moves = vacate::specifyMoves(c, placement, notes);
  if (!moves) return moves.status();
  std::vector<MoveSpec>& specs = *moves;
  std::vector<std::size_t> network, inPlace;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    (specs[i].resources.empty() ? inPlace : network).push_back(i);
  }
  const std::vector<std::size_t> order = vacate::interleave(specs, network);
  const std::vector<double> capacity = vacate::numberResourcesLocally(c, specs);

  // Lower bound: uncontended volumes, per resource, plus the smallest lead-in and tail.
  auto lowerBound = vacate::makespanLowerBoundS(m, req, specs, capacity);
  if (!lowerBound) return lowerBound.status();

  // Step 3: strategies.
  const std::size_t n = std::max<std::size_t>(order.size(), 1);
  const double quantile = req.quantile > 0 ? req.quantile : options_.quantile;
  const double qf = vacate::quantileFactor(req, quantile);
  vacate::FairShare share(capacity);
  std::vector<StrategyResult> results;
  for (std::size_t k : vacate::batchSizes(req, specs, network, n)) {
    auto r = vacate::simulate(m, c, specs, order, inPlace, k, share);
    if (!r) return r.status();
    vacate::applyDeadline(req, qf, *lowerBound, *r);
    results.push_back(std::move(*r));
  }

  // The objective picks one.
  auto best = vacate::pickStrategy(req, results, n);
  if (!best) return best.status();

  // Step 4: the plan.
  StrategyResult& chosen = results[*best];
  VacatePlan plan;
  plan.strategy = specs.empty() ? "none" : vacate::strategyName(chosen.k, n);
  plan.objective = vacateObjectiveName(req.objective);
  plan.hosts = hosts;
  plan.batchSize = static_cast<std::uint32_t>(chosen.k);
  std::set<std::string> models;
  for (const auto& mv : chosen.moves) {
    if (mv.mode == MoveMode::kLive && live_) models.insert(std::string(live_->name()));
    if (mv.mode == MoveMode::kSuspendCopyResume && scr_) models.insert(std::string(scr_->name()));
    if (mv.diskSyncNs > 0) models.insert(tsakalozos::kDiskModel);
  }
  for (const auto& name : models) plan.model += (plan.model.empty() ? "" : "+") + name;
  plan.cloneTimeNs = req.cloneTimeNs;
  plan.marginNs = req.marginNs;
  plan.makespanNs = secondsToNs(chosen.makespanS);
  plan.quantile = quantile;
  plan.makespanQuantileNs = secondsToNs(chosen.quantileMakespanS);
  plan.makespanLowerBoundNs = secondsToNs(*lowerBound);
  plan.maxVmTimeNs = secondsToNs(chosen.maxVmTimeS);
  plan.energyJ = chosen.energyJ;
  plan.latestSafeStartNs = chosen.latestSafeStartNs;
  plan.feasible = chosen.feasible;
  if (!plan.feasible) {
    plan.earliestFeasibleStartNs = vacate::earliestFeasibleStartNs(req, plan.makespanQuantileNs);
  }
  plan.notes = notes;
  plan.notes.insert(plan.notes.end(), chosen.notes.begin(), chosen.notes.end());

  vacate::completeSuspensions(m, req, specs, chosen);
  vacate::limitDiskWrites(req, specs, chosen);
  // Moves in execution order: by batch, then start, as vrmd runs them.
  plan.moves = std::move(chosen.moves);
  std::stable_sort(plan.moves.begin(), plan.moves.end(), [](const auto& a, const auto& b) {
    return a.batch != b.batch ? a.batch < b.batch : a.startOffsetNs < b.startOffsetNs;
  });
  return plan;
}

}  // namespace vrm::planner
