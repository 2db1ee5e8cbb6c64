// plan: an offline "what if" - the vacate plan for a reservation on a cluster description file,
// computed here with the planner library, without vrmd.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "vrm/client/time_spec.h"
#include "vrm/planner/cost_aware_vacate_planner.h"
#include "vrm/planner/vm_adapter.h"
#include "vrm/protocol/cluster.h"
#include "vrm/protocol/units.h"

namespace vrm::vrmctl {
namespace {

struct PlanArgs {
  std::string cluster;
  std::uint32_t hosts = 0;
  std::vector<std::string> hostNames;
  std::string start, duration, templateName;
  std::string objective = "makespan";
  std::string maxVmTime, maxVmDowntime;
  double quantile = 0.95;
  double relativeError = 0.2;
  std::string margin = "60s";
  std::uint32_t batch = 0;
  std::string liveModel = "qemu-precopy";
  std::string scrModel = "zhao-scr";
  std::string suspendPolicy = "when-no-room";
};

// The request a cluster file describes: every host's free capacity is what its VMs leave.
planner::VacateRequest requestFromCluster(const ClusterSpec& spec, const TemplateSpec& tmpl) {
  planner::VacateRequest req;
  for (const auto& h : spec.hosts) {
    planner::HostSnapshot s;
    s.name = h.name;
    s.cpuCores = h.cpuCores;
    s.memoryBytes = h.memoryBytes;
    s.nicBandwidthBytesPerSec = h.nicBandwidthBytesPerSec;
    std::uint32_t cores = 0;
    std::uint64_t mem = 0;
    for (const auto& v : h.vms) {
      cores += v.cpuCores;
      mem += v.memoryBytes;
      planner::VmSnapshot vs = planner::toVmSnapshot(v);
      vs.host = h.name;  // where the file lists it
      req.vms.push_back(std::move(vs));
    }
    s.freeCpuCores = cores >= h.cpuCores ? 0 : h.cpuCores - cores;
    s.freeMemoryBytes = mem >= h.memoryBytes ? 0 : h.memoryBytes - mem;
    req.hosts.push_back(std::move(s));
  }
  req.cloneTimeNs = tmpl.cloneTimeNs;
  req.cloneCpuCoresPerHost = tmpl.cpuCores * tmpl.vmsPerHost;
  req.cloneMemoryBytesPerHost = tmpl.memoryBytes * tmpl.vmsPerHost;
  return req;
}

nlohmann::json planJson(const VacatePlan& p, TimeNs reservationStartNs) {
  auto moves = nlohmann::json::array();
  for (const auto& m : p.moves) {
    nlohmann::json j = {{"vm", m.vmId},
                        {"from", m.fromHost},
                        {"to", m.toHost},
                        {"mode", moveModeName(m.mode)},
                        {"batch", m.batch},
                        {"start_s", nsToSeconds(m.startOffsetNs)},
                        {"end_s", nsToSeconds(m.endOffsetNs)},
                        {"transferred_bytes", m.transferredBytes},
                        {"downtime_s", nsToSeconds(m.downtimeNs)},
                        {"network_limit_bytes_per_s", m.networkLimitBytesPerSec}};
    if (m.diskSyncNs > 0) {
      j["disk_sync_s"] = nsToSeconds(m.diskSyncNs);
      j["disk_write_limit_bytes_per_s"] = m.diskWriteLimitBytesPerSec;
    }
    if (m.resumeAtNs > 0) j["resume_at"] = formatTime(m.resumeAtNs);
    moves.push_back(std::move(j));
  }
  nlohmann::json j = {{"hosts", p.hosts},
                      {"strategy", p.strategy},
                      {"batch_size", p.batchSize},
                      {"objective", p.objective},
                      {"model", p.model},
                      {"moves", moves},
                      {"makespan_s", nsToSeconds(p.makespanNs)},
                      {"quantile", p.quantile},
                      {"makespan_quantile_s", nsToSeconds(p.makespanQuantileNs)},
                      {"makespan_lower_bound_s", nsToSeconds(p.makespanLowerBoundNs)},
                      {"max_vm_time_s", nsToSeconds(p.maxVmTimeNs)},
                      {"energy_j", p.energyJ},
                      {"clone_time_s", nsToSeconds(p.cloneTimeNs)},
                      {"margin_s", nsToSeconds(p.marginNs)},
                      {"reservation_start", formatTime(reservationStartNs)},
                      {"latest_safe_start", formatTime(p.latestSafeStartNs)},
                      {"latest_safe_start_ns", p.latestSafeStartNs},
                      {"feasible", p.feasible},
                      {"notes", p.notes}};
  if (!p.feasible) j["earliest_feasible_start"] = formatTime(p.earliestFeasibleStartNs);
  return j;
}

std::string pad(const std::string& s, std::size_t w) {
  return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' ');
}

std::string seconds(TimeNs ns) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << nsToSeconds(ns) << "s";
  return o.str();
}

std::string planText(const VacatePlan& p, const std::string& templateName, TimeNs startNs) {
  std::ostringstream o;
  std::string hosts;
  for (const auto& h : p.hosts) hosts += (hosts.empty() ? "" : ", ") + h;
  o << "Vacate " << hosts << " for " << templateName << " at " << formatTime(startNs) << " ("
    << p.objective << " objective)\n";
  o << "Strategy     " << p.strategy << ": " << p.moves.size() << " moves, models " << p.model
    << "\n";
  o << "Makespan     " << formatDuration(p.makespanNs) << " mean, "
    << formatDuration(p.makespanQuantileNs) << " at q=" << p.quantile << ", lower bound "
    << formatDuration(p.makespanLowerBoundNs) << "\n";
  o << "Per VM       longest migration " << formatDuration(p.maxVmTimeNs) << "; energy "
    << std::fixed << std::setprecision(0) << p.energyJ << " J\n";
  o << "Latest start " << formatTime(p.latestSafeStartNs) << " = start - clone "
    << formatDuration(p.cloneTimeNs) << " - makespan@q - margin " << formatDuration(p.marginNs)
    << "\n";
  if (!p.feasible) {
    o << "NOT FEASIBLE even starting now; earliest feasible reservation start "
      << formatTime(p.earliestFeasibleStartNs) << "\n";
  }
  for (const auto& n : p.notes) o << "Note: " << n << "\n";
  if (p.moves.empty()) {
    o << "\nNothing to move.\n";
    return o.str();
  }
  o << "\n"
    << pad("VM", 14) << pad("FROM", 10) << pad("TO", 10) << pad("MODE", 20) << pad("BATCH", 6)
    << pad("START", 9) << pad("END", 9) << pad("BYTES", 11) << "DOWNTIME\n";
  for (const auto& m : p.moves) {
    o << pad(m.vmId, 14) << pad(m.fromHost, 10) << pad(m.toHost, 10)
      << pad(moveModeName(m.mode), 20) << pad(std::to_string(m.batch), 6)
      << pad(seconds(m.startOffsetNs), 9) << pad(seconds(m.endOffsetNs), 9)
      << pad(formatBytes(static_cast<double>(m.transferredBytes)), 11)
      << (m.mode == MoveMode::kSuspend && m.resumeAtNs ? "until " + formatTime(m.resumeAtNs)
                                                       : formatDuration(m.downtimeNs))
      << "\n";
  }
  // A small text timeline: '=' while a move runs, '#' while a suspension runs.
  constexpr int kWidth = 50;
  const TimeNs span = std::max<TimeNs>(p.makespanNs, 1);
  o << "\nTimeline     0" << std::string(kWidth - 1, ' ') << seconds(p.makespanNs) << "\n";
  for (const auto& m : p.moves) {
    const int a = static_cast<int>(static_cast<double>(m.startOffsetNs) / span * kWidth);
    int b = static_cast<int>(std::ceil(static_cast<double>(m.endOffsetNs) / span * kWidth));
    b = std::clamp(b, a + 1, kWidth);
    std::string bar(kWidth, ' ');
    for (int i = a; i < b; ++i) bar[i] = m.mode == MoveMode::kSuspend ? '#' : '=';
    o << pad(m.vmId, 13) << "|" << bar << "|\n";
  }
  return o.str();
}

int runPlan(const Context& ctx, const PlanArgs& a) {
  if ((a.hosts > 0) == !a.hostNames.empty()) {
    return ctx.fail(Status::invalid("give exactly one of --hosts N and --host NAME"));
  }
  if (!(a.quantile > 0 && a.quantile < 1)) {
    return ctx.fail(Status::invalid("--quantile must be between 0 and 1 (exclusive)"));
  }
  if (!(a.relativeError >= 0)) return ctx.fail(Status::invalid("--relative-error must be >= 0"));
  auto spec = loadClusterSpec(a.cluster);
  if (!spec) return ctx.fail(Status::invalid(spec.status().message()));
  const TemplateSpec* tmpl = spec->findTemplate(a.templateName);
  if (!tmpl) {
    std::string known;
    for (const auto& t : spec->templates) known += (known.empty() ? "" : ", ") + t.name;
    return ctx.fail(Status::invalid("--template: no template '" + a.templateName + "' in " +
                                    a.cluster + " (known: " + (known.empty() ? "none" : known) +
                                    ")"));
  }
  const TimeNs now = SystemClock().now();
  auto start = client::parseTimeSpec(a.start, now);
  if (!start) return ctx.fail(Status::invalid("--start: " + start.status().message()));
  auto duration = parseDurationNs(a.duration);
  if (!duration) return ctx.fail(Status::invalid("--duration: " + duration.status().message()));
  auto margin = parseDurationNs(a.margin);
  if (!margin) return ctx.fail(Status::invalid("--margin: " + margin.status().message()));

  planner::VacateRequest req = requestFromCluster(*spec, *tmpl);
  req.nowNs = now;
  req.reservationStartNs = *start;
  req.reservationEndNs = *start + *duration;
  req.marginNs = *margin;
  req.quantile = a.quantile;
  req.relativeErrorStdDev = a.relativeError;
  req.batchSize = a.batch;
  req.hostsToVacate = a.hostNames;
  req.hostCount = a.hosts;
  if (a.objective == "makespan") {
    req.objective = planner::VacateObjective::kMakespan;
  } else if (a.objective == "degradation") {
    req.objective = planner::VacateObjective::kDegradation;
  } else {
    return ctx.fail(Status::invalid("--objective: use makespan or degradation"));
  }
  if (a.suspendPolicy == "never") {
    req.suspendPolicy = planner::SuspendPolicy::kNever;
  } else if (a.suspendPolicy == "when-no-room") {
    req.suspendPolicy = planner::SuspendPolicy::kWhenNoRoom;
  } else {
    return ctx.fail(Status::invalid("--suspend: use never or when-no-room"));
  }
  for (auto [text, field, flag] :
       {std::tuple{&a.maxVmTime, &req.maxVmTimeNs, "--max-vm-time"},
        std::tuple{&a.maxVmDowntime, &req.maxVmDowntimeNs, "--max-vm-downtime"}}) {
    if (text->empty()) continue;
    auto d = parseDurationNs(*text);
    if (!d) return ctx.fail(Status::invalid(std::string(flag) + ": " + d.status().message()));
    *field = *d;
  }
  if ((req.maxVmTimeNs || req.maxVmDowntimeNs) &&
      req.objective != planner::VacateObjective::kDegradation) {
    return ctx.fail(
        Status::invalid("--max-vm-time and --max-vm-downtime need "
                        "--objective degradation"));
  }
  for (const auto& name : a.hostNames) {
    if (!spec->findHost(name)) {
      return ctx.fail(Status::invalid("--host: no host '" + name + "' in " + a.cluster));
    }
  }

  auto planner = planner::CostAwareVacatePlanner::create(a.liveModel, a.scrModel);
  if (!planner) return ctx.fail(Status::invalid(planner.status().message()));
  auto plan = (*planner)->plan(req);
  if (!plan) return ctx.fail(plan.status());
  if (ctx.json) {
    std::cout << planJson(*plan, req.reservationStartNs).dump(2) << "\n";
  } else {
    std::cout << planText(*plan, tmpl->name, req.reservationStartNs);
  }
  if (!plan->feasible) {
    std::cerr << "vrmctl: rejected: the vacate cannot finish by " << formatTime(*start)
              << " even if it starts now; earliest feasible start "
              << formatTime(plan->earliestFeasibleStartNs) << "\n";
    return kExitRejected;
  }
  return kExitOk;
}

}  // namespace

void addPlanCommand(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<PlanArgs>();
  auto* cmd = app.add_subcommand(
      "plan",
      "offline what-if: which hosts to vacate, where their VMs go, in what order, and when "
      "vacating must start (no vrmd needed)");
  cmd->add_option("--cluster", args->cluster, "cluster description file (YAML)")->required();
  cmd->add_option("--hosts", args->hosts, "how many hosts to vacate (chosen cheapest first)");
  cmd->add_option("--host", args->hostNames, "a host to vacate (repeatable)");
  cmd->add_option("--start", args->start, "reservation start: ISO 8601, 'now' or +DURATION")
      ->required();
  cmd->add_option("--duration", args->duration, "reservation length, e.g. 2h")->required();
  cmd->add_option("--template", args->templateName, "VM template the reservation clones")
      ->required();
  cmd->add_option("--objective", args->objective, "makespan or degradation")->capture_default_str();
  cmd->add_option("--max-vm-time", args->maxVmTime,
                  "degradation: bound on each VM's own migration time");
  cmd->add_option("--max-vm-downtime", args->maxVmDowntime,
                  "degradation: bound on each VM's downtime");
  cmd->add_option("--quantile", args->quantile, "confidence quantile of the makespan")
      ->capture_default_str();
  cmd->add_option("--relative-error", args->relativeError,
                  "relative standard deviation of predictions (no history offline)")
      ->capture_default_str();
  cmd->add_option("--margin", args->margin, "safety margin before cloning")->capture_default_str();
  cmd->add_option("--batch", args->batch, "force batches of K moves (1 = sequential)");
  cmd->add_option("--live-model", args->liveModel, "model for live migrations")
      ->capture_default_str();
  cmd->add_option("--scr-model", args->scrModel, "model for suspend-copy-resume")
      ->capture_default_str();
  cmd->add_option("--suspend", args->suspendPolicy,
                  "VMs no host has room for: when-no-room (suspend them) or never (fail)")
      ->capture_default_str();
  cmd->add_flag("--json", ctx.json, "machine-readable output");
  cmd->callback([&ctx, args] { ctx.exitCode = runPlan(ctx, *args); });
}

}  // namespace vrm::vrmctl
