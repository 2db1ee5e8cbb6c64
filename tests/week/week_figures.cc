#include "week_figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

namespace vrm::week {

namespace {

using nlohmann::json;

constexpr double kDayS = 86400;

json stats(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return {{"n", v.size()},
          {"median", quantileOf(v, 0.5)},
          {"p95", quantileOf(v, 0.95)},
          {"mean", v.empty() ? 0.0 : sum / static_cast<double>(v.size())},
          {"max", v.empty() ? 0.0 : *std::max_element(v.begin(), v.end())}};
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
bool startsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Counts by reason kind, most frequent first, each with one example.
json byKind(const std::vector<std::string>& reasons) {
  std::map<std::string, std::pair<int, std::string>> kinds;
  for (const auto& r : reasons) {
    auto& k = kinds[reasonKind(r)];
    if (k.first++ == 0) k.second = r;
  }
  std::vector<std::pair<std::string, std::pair<int, std::string>>> sorted(kinds.begin(),
                                                                          kinds.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  json out = json::array();
  for (const auto& [kind, k] : sorted) {
    out.push_back({{"kind", kind}, {"count", k.first}, {"example", k.second}});
  }
  return out;
}

json admission(const std::vector<ReservationRecord>& rs, const std::string& kind) {
  int submitted = 0, admitted = 0;
  std::vector<std::string> rejections;
  for (const auto& r : rs) {
    if (r.kind != kind) continue;
    ++submitted;
    if (r.firstEvent("admitted")) {
      ++admitted;
    } else {
      rejections.push_back(r.reason);
    }
  }
  return {{"submitted", submitted},
          {"admitted", admitted},
          {"rejected", submitted - admitted},
          {"admitted_pct", submitted ? 100.0 * admitted / submitted : 0.0},
          {"rejections", byKind(rejections)}};
}

}  // namespace

json weekFigures(const WeekInputs& in) {
  const TimeNs week0 = in.workload.options.weekStartNs;
  const auto& rs = in.reservations;
  json f;
  f["run"] = in.run.is_object() ? in.run : json::object();
  f["run"]["week_start"] = formatTime(week0);
  f["run"]["days"] = in.workload.options.days;
  f["run"]["hosts"] = in.cluster.hosts.size();
  std::size_t vms = 0;
  for (const auto& h : in.cluster.hosts) vms += h.vms.size();
  f["run"]["long_lived_vms"] = vms;

  // What the driver did, and how far behind its clock it was.
  std::vector<double> driverLate, downS;
  int losses = 0;
  const json driverLog = in.driverLog.is_object() ? in.driverLog : json::object();
  for (const auto& a : driverLog.value("actions", json::array())) {
    driverLate.push_back(a.value("late_s", 0.0));
    if (a.value("kind", "") == "restart-vrmd") downS.push_back(a.value("down_s", 0.0));
    if (a.value("kind", "") == "lose-agent") ++losses;
  }
  f["driver"] = {{"actions", driverLate.size()},
                 {"late_s", stats(driverLate)},
                 {"vrmd_restarts", downS.size()},
                 {"vrmd_down_s", downS},
                 {"agents_lost", losses}};

  f["admission"] = {{"dedicated", admission(rs, "dedicated")}, {"shared", admission(rs, "shared")}};

  // On time.
  const auto outcomes = dedicatedOutcomes(rs, week0);
  int admitted = 0, cancelledBefore = 0, counted = 0, onTime = 0, failedAhead = 0;
  int missesWithAgentLost = 0;
  json misses = json::array();
  std::vector<std::string> missKinds;
  std::vector<double> startLagS, readyAheadS;
  for (const auto& o : outcomes) {
    if (!o.r->firstEvent("admitted")) continue;
    ++admitted;
    if (!o.counted) {
      ++cancelledBefore;
      continue;
    }
    ++counted;
    if (o.vacatingNs && o.r->latestSafeStartNs) {
      startLagS.push_back(nsToSeconds(o.vacatingNs - o.r->latestSafeStartNs));
    }
    if (o.readyNs) readyAheadS.push_back(nsToSeconds(o.r->startNs - o.readyNs));
    if (o.onTime) {
      ++onTime;
      continue;
    }
    if (!o.vacatingNs && o.r->firstEvent("failed")) ++failedAhead;
    // A timing miss while one of its hosts' agents was lost (a fault the week injected) says
    // so: nothing can make a host ready while its agent is away.
    std::string why = o.why;
    double downS = 0;
    if (o.vacatingNs && !o.r->firstEvent("failed")) {
      const TimeNs until = o.readyNs ? o.readyNs : o.r->endNs;
      for (const auto& h : o.r->hosts) {
        const double d = agentDownS(in.journal, h, o.vacatingNs, until);
        if (d > 0) {
          why += "; the agent of " + h + " was lost for " + std::to_string(std::lround(d)) +
                 " s of it";
        }
        downS = std::max(downS, d);
      }
    }
    missesWithAgentLost += downS > 0;
    missKinds.push_back(why);
    misses.push_back({{"id", o.r->id},
                      {"label", o.r->label},
                      {"hosts", o.r->hosts},
                      {"start", formatTime(o.r->startNs)},
                      {"late_by_s", o.lateByS},
                      {"why", why},
                      {"agent_lost_s", downS},
                      {"at_risk", o.r->atRisk}});
  }
  f["on_time"] = {{"dedicated_admitted", admitted},
                  {"cancelled_before_start", cancelledBefore},
                  {"counted", counted},
                  {"on_time", onTime},
                  {"on_time_pct", counted ? 100.0 * onTime / counted : 100.0},
                  // Failed before their vacate began (admission / repair failures, not the
                  // vacate's timing): the on-time rate of the others measures just in time.
                  {"failed_before_vacate", failedAhead},
                  {"timing_on_time_pct",
                   counted - failedAhead > 0 ? 100.0 * onTime / (counted - failedAhead) : 100.0},
                  // ... and of those, leaving out the misses whose host's agent was lost.
                  {"misses_with_agent_lost", missesWithAgentLost},
                  {"timing_on_time_without_lost_agents_pct",
                   counted - failedAhead - missesWithAgentLost > 0
                       ? 100.0 * onTime / (counted - failedAhead - missesWithAgentLost)
                       : 100.0},
                  {"misses", misses},
                  {"misses_by_cause", byKind(missKinds)},
                  {"vacate_start_lag_s", stats(startLagS)},
                  {"ready_before_start_s", stats(readyAheadS)}};

  // Idle lead.
  std::size_t alreadyEmpty = 0;
  const auto leads = idleLeads(outcomes, in.journal, week0, &alreadyEmpty);
  std::vector<double> lead, margin, makespan, normExcess, vrmdLag;
  std::map<int, std::vector<double>> leadByDay;
  json leadSeries = json::array();
  double hostHours = 0, idealHours = 0;
  int withinTarget = 0;
  for (const auto& l : leads) {
    lead.push_back(l.leadS);
    margin.push_back(l.marginS);
    makespan.push_back(l.makespanS);
    if (l.makespanS > 0) normExcess.push_back((l.leadS - l.marginS) / l.makespanS);
    withinTarget += l.leadS <= l.marginS + 0.2 * l.makespanS;
    if (l.vrmdEmptyNs) vrmdLag.push_back(nsToSeconds(l.vrmdEmptyNs - l.emptyNs));
    leadByDay[l.day].push_back(l.leadS);
    hostHours += std::max(0.0, l.leadS) / 3600;
    idealHours += l.marginS / 3600;
    leadSeries.push_back(
        {nsToSeconds(l.emptyNs - week0) / kDayS, l.leadS / 60, l.host, l.reservation});
  }
  const double medianMargin = quantileOf(margin, 0.5), medianMakespan = quantileOf(makespan, 0.5);
  const double target = medianMargin + 0.2 * medianMakespan;
  json leadDays = json::array();
  for (const auto& [day, v] : leadByDay) {
    leadDays.push_back({{"day", day + 1}, {"lead_s", stats(v)}});
  }
  f["idle_lead"] = {
      {"host_vacates", leads.size()},
      {"hosts_already_empty", alreadyEmpty},
      {"lead_s", stats(lead)},
      {"host_hours", hostHours},
      {"ideal_host_hours", idealHours},
      {"margin_s", medianMargin},
      {"vacate_makespan_s", stats(makespan)},
      {"target_median_lead_s", target},
      {"target_met", !lead.empty() && quantileOf(lead, 0.5) <= target},
      {"within_own_target_pct",
       leads.empty() ? 0.0 : 100.0 * withinTarget / static_cast<double>(leads.size())},
      {"excess_over_margin_per_makespan", stats(normExcess)},
      {"vrmd_sees_empty_later_s", stats(vrmdLag)},
      {"by_day", leadDays}};

  // The protocol's share of each move: vrmd's start to the agent's, the agent's end to vrmd's.
  const auto timings = moveTimings(rs, in.journal);
  std::vector<double> dispatch, completion;
  std::map<std::string, std::pair<TimeNs, TimeNs>> agentSpan;  // reservation -> agents' vacate
  for (const auto& t : timings) {
    dispatch.push_back(t.dispatchS);
    completion.push_back(t.completionS);
    auto [it, fresh] = agentSpan.emplace(t.reservation, std::pair{t.agentStartNs, t.agentEndNs});
    if (!fresh) {
      it->second.first = std::min(it->second.first, t.agentStartNs);
      it->second.second = std::max(it->second.second, t.agentEndNs);
    }
  }
  const double scale = f["run"].value("time_scale", 0.0);
  auto realMs = [&](const std::vector<double>& v, double q) {
    return scale > 0 ? 1000 * quantileOf(v, q) / scale : 0.0;
  };
  f["lag"] = {{"moves", timings.size()},
              {"dispatch_s", stats(dispatch)},
              {"completion_s", stats(completion)},
              {"dispatch_real_ms_median", realMs(dispatch, 0.5)},
              {"completion_real_ms_median", realMs(completion, 0.5)}};

  // Vacate prediction error, by day, and per move: as vrmd saw it (its events), and as the
  // agents did (first migration start to last departure: the model against the sim's ground
  // truth, without the protocol's lag).
  std::map<int, std::vector<double>> errByDay, absByDay, moveAbsByDay, agentErrByDay, agentAbsByDay;
  std::map<int, std::pair<int, int>> overQuantileByDay;  // (vacates over the quantile, all)
  std::vector<double> err, absErr, agentErr;
  // The plan's makespan at the quantile over its mean: the spread vrmd budgets for.
  std::vector<double> quantileRatio;
  std::map<int, std::vector<double>> quantileRatioByDay;
  json errSeries = json::array();
  for (const auto& o : outcomes) {
    if (!o.counted || o.vacateActualS < 0 || o.r->moves.empty() || o.r->makespanS <= 0) continue;
    const double e = 100 * (o.vacateActualS - o.r->makespanS) / o.r->makespanS;
    err.push_back(e);
    absErr.push_back(std::abs(e));
    errByDay[o.day].push_back(e);
    absByDay[o.day].push_back(std::abs(e));
    if (o.r->makespanQuantileS > 0) {
      const double ratio = o.r->makespanQuantileS / o.r->makespanS;
      quantileRatio.push_back(ratio);
      quantileRatioByDay[o.day].push_back(ratio);
    }
    auto& q = overQuantileByDay[o.day];
    q.second++;
    if (o.r->makespanQuantileS > 0 && o.vacateActualS > o.r->makespanQuantileS) q.first++;
    if (auto span = agentSpan.find(o.r->id); span != agentSpan.end()) {
      const double agentS = nsToSeconds(span->second.second - span->second.first);
      const double ea = 100 * (agentS - o.r->makespanS) / o.r->makespanS;
      agentErr.push_back(ea);
      agentErrByDay[o.day].push_back(ea);
      agentAbsByDay[o.day].push_back(std::abs(ea));
    }
    errSeries.push_back({nsToSeconds(o.vacatingNs - week0) / kDayS, e, o.r->id,
                         o.r->makespanQuantileS > 0 ? o.r->makespanQuantileS / o.r->makespanS : 0});
  }
  std::vector<double> moveAbs;
  for (const auto& r : rs) {
    if (!r.dedicated()) continue;
    const TimeNs vac = r.firstEvent("vacating");
    for (const auto& m : r.moves) {
      if (m.state != "done" || !m.actualStartNs || !m.actualEndNs) continue;
      const double predicted = m.plannedEndS - m.plannedStartS;
      if (predicted <= 0 || m.mode == "suspend") continue;
      const double e =
          100 * std::abs(nsToSeconds(m.actualEndNs - m.actualStartNs) - predicted) / predicted;
      moveAbs.push_back(e);
      const TimeNs at = vac ? vac : m.actualStartNs;
      moveAbsByDay[static_cast<int>((at - week0) / (86400 * kNsPerSec))].push_back(e);
    }
  }
  json errDays = json::array();
  for (const auto& [day, v] : errByDay) {
    const auto q = overQuantileByDay[day];
    errDays.push_back({{"day", day + 1},
                       {"vacates", v.size()},
                       {"median_error_pct", quantileOf(v, 0.5)},
                       {"median_abs_error_pct", quantileOf(absByDay[day], 0.5)},
                       {"p95_abs_error_pct", quantileOf(absByDay[day], 0.95)},
                       {"over_quantile_pct", q.second ? 100.0 * q.first / q.second : 0.0},
                       {"quantile_over_mean", quantileOf(quantileRatioByDay[day], 0.5)},
                       {"agent_median_error_pct", quantileOf(agentErrByDay[day], 0.5)},
                       {"agent_median_abs_error_pct", quantileOf(agentAbsByDay[day], 0.5)},
                       {"moves", moveAbsByDay[day].size()},
                       {"move_median_abs_error_pct", quantileOf(moveAbsByDay[day], 0.5)}});
  }
  f["prediction"] = {{"vacates", err.size()},
                     {"error_pct", stats(err)},
                     {"abs_error_pct", stats(absErr)},
                     {"agent_error_pct", stats(agentErr)},
                     {"move_abs_error_pct", stats(moveAbs)},
                     {"quantile_over_mean", stats(quantileRatio)},
                     {"by_day", errDays},
                     {"first_day", errDays.empty() ? json() : errDays.front()},
                     {"last_day", errDays.empty() ? json() : errDays.back()}};

  // What vrmd did along the way.
  int replanned = 0, warnings = 0, parkReplans = 0, parked = 0, plannedParks = 0, atRisk = 0,
      lateNotes = 0, readmitted = 0, destLost = 0, timeouts = 0, caps = 0, returned = 0, moves = 0,
      movesFailed = 0, movesSkipped = 0;
  std::map<std::string, int> modes;
  std::vector<std::string> failures;
  for (const auto& r : rs) {
    atRisk += r.atRisk;
    if (r.state == "failed") failures.push_back(r.reason);
    for (const auto& m : r.moves) {
      ++moves;
      ++modes[m.mode];
      plannedParks += m.mode == "suspend";
      movesFailed += m.state == "failed";
      movesSkipped += m.state == "skipped";
    }
    for (const auto& e : r.events) {
      const std::string& m = e.message;
      if (startsWith(m, "warning:")) {
        ++warnings;
        replanned += contains(m, "; re-planned");
      }
      if (startsWith(m, "danger:") && contains(m, "; re-planned")) ++parkReplans;
      if (startsWith(m, "parked ")) ++parked;
      if (startsWith(m, "late:")) ++lateNotes;
      if (startsWith(m, "re-planned because")) ++readmitted;
      if (startsWith(m, "a destination became unreachable; re-planned")) ++destLost;
      if (contains(m, "did not answer")) ++timeouts;
      if (startsWith(m, "capping")) ++caps;
      if (startsWith(m, "returned ")) ++returned;
    }
  }
  f["execution"] = {{"moves", moves},
                    {"moves_by_mode", modes},
                    {"moves_failed", movesFailed},
                    {"moves_skipped", movesSkipped},
                    {"deadline_warnings", warnings},
                    {"re_plans", replanned},
                    {"park_re_plans", parkReplans},
                    {"parks_planned", plannedParks},
                    {"parks_done", parked},
                    {"at_risk", atRisk},
                    {"late_notes", lateNotes},
                    {"re_admitted", readmitted},
                    {"re_planned_lost_destination", destLost},
                    {"command_timeouts", timeouts},
                    {"bandwidth_caps", caps},
                    {"displaced_returned_home", returned},
                    {"failed", failures.size()},
                    {"failures", byKind(failures)}};

  auto violations = checkInvariants(rs, in.cluster, in.journal);
  if (in.unknownResults > 0) {
    violations.push_back({"unknown-result", "vrmd ignored " + std::to_string(in.unknownResults) +
                                                " results for commands it had forgotten (vrmd.log: "
                                                "\"result for unknown command\")"});
  }
  json v = json::array();
  std::map<std::string, int> vKinds;
  for (const auto& x : violations) {
    v.push_back({{"kind", x.kind}, {"detail", x.detail}});
    ++vKinds[x.kind];
  }
  f["invariants"] = {{"ok", violations.empty()}, {"by_kind", vKinds}, {"violations", v}};
  f["series"] = {{"lead", leadSeries}, {"error", errSeries}};
  return f;
}

std::string figuresTable(const json& f) {
  std::ostringstream o;
  char b[512];
  const json& run = f["run"];
  const json& ot = f["on_time"];
  const json& il = f["idle_lead"];
  const json& pr = f["prediction"];
  const json& ex = f["execution"];
  std::snprintf(b, sizeof b, "vrm week: %d hosts, %d long-lived VMs, %d days from %s, seed %s\n",
                run.value("hosts", 0), run.value("long_lived_vms", 0), run.value("days", 0),
                run.value("week_start", "").c_str(), run.value("seed", json("?")).dump().c_str());
  o << b;
  if (run.contains("knobs")) o << "knobs: " << run["knobs"].dump() << "\n";
  if (run.contains("time_scale")) {
    std::snprintf(b, sizeof b, "clock x%s, wall %s s, load before/after: %s / %s\n",
                  run["time_scale"].dump().c_str(), run.value("wall_s", json("?")).dump().c_str(),
                  run.value("uptime_before", "?").c_str(), run.value("uptime_after", "?").c_str());
    o << b;
  }
  o << "\n";
  auto line = [&](const char* what, const std::string& value) {
    std::snprintf(b, sizeof b, "  %-46s %s\n", what, value.c_str());
    o << b;
  };
  auto num = [](double x, const char* fmt = "%.1f") {
    char s[64];
    std::snprintf(s, sizeof s, fmt, x);
    return std::string(s);
  };
  o << "on time (dedicated)\n";
  line("admitted / cancelled before start / counted",
       std::to_string(ot["dedicated_admitted"].get<int>()) + " / " +
           std::to_string(ot["cancelled_before_start"].get<int>()) + " / " +
           std::to_string(ot["counted"].get<int>()));
  line("ready before the start", std::to_string(ot["on_time"].get<int>()) + " (" +
                                     num(ot["on_time_pct"].get<double>(), "%.2f") + " %)");
  line("of those whose vacate began (not failed ahead)",
       num(ot["timing_on_time_pct"].get<double>(), "%.2f") + " % (" +
           std::to_string(ot["failed_before_vacate"].get<int>()) + " failed before it)");
  line("... and without the misses whose host's agent was lost",
       num(ot["timing_on_time_without_lost_agents_pct"].get<double>(), "%.2f") + " % (" +
           std::to_string(ot["misses_with_agent_lost"].get<int>()) + " such misses)");
  line("vacate start after latest safe start, s (med/p95/max)",
       num(ot["vacate_start_lag_s"]["median"].get<double>(), "%.2f") + " / " +
           num(ot["vacate_start_lag_s"]["p95"].get<double>(), "%.2f") + " / " +
           num(ot["vacate_start_lag_s"]["max"].get<double>(), "%.2f"));
  for (const auto& m : ot["misses"]) {
    o << "    miss " << m["id"].get<std::string>() << " (" << m["label"].get<std::string>() << ", "
      << m["start"].get<std::string>() << "): " << num(m["late_by_s"].get<double>())
      << " s late: " << m["why"].get<std::string>() << "\n";
  }
  o << "\nidle lead (host empty -> start - clone time)\n";
  line("vacated hosts (and hosts that had nothing to move)",
       std::to_string(il["host_vacates"].get<int>()) + " (" +
           std::to_string(il["hosts_already_empty"].get<int>()) + ")");
  line("lead, s: median / p95 / mean", num(il["lead_s"]["median"].get<double>()) + " / " +
                                           num(il["lead_s"]["p95"].get<double>()) + " / " +
                                           num(il["lead_s"]["mean"].get<double>()));
  line("idle host-hours (ideal = margin only)",
       num(il["host_hours"].get<double>(), "%.2f") + " (" +
           num(il["ideal_host_hours"].get<double>(), "%.2f") + ")");
  line("target: median lead <= margin + 20 % makespan",
       num(il["target_median_lead_s"].get<double>()) +
           " s: " + (il["target_met"].get<bool>() ? "met" : "NOT met"));
  line("vacate makespan, s: median / p95", num(il["vacate_makespan_s"]["median"].get<double>()) +
                                               " / " +
                                               num(il["vacate_makespan_s"]["p95"].get<double>()));
  o << "\nvacate prediction error (actual - predicted) / predicted\n";
  line("vacates: median error / median |error| / p95 |error|",
       std::to_string(pr["vacates"].get<int>()) + ": " +
           num(pr["error_pct"]["median"].get<double>()) + " % / " +
           num(pr["abs_error_pct"]["median"].get<double>()) + " % / " +
           num(pr["abs_error_pct"]["p95"].get<double>()) + " %");
  line("agents' view (no protocol lag): median error",
       num(pr["agent_error_pct"]["median"].get<double>()) + " %");
  o << "    day  vacates  median err  median |err|  over quantile  quantile/mean  agents' median "
       "err  moves  move median |err|\n";
  for (const auto& d : pr["by_day"]) {
    std::snprintf(
        b, sizeof b,
        "    %3d  %7d  %8.1f %%  %10.1f %%  %11.1f %%  %13.2f  %16.1f %%  %5d  %14.1f %%\n",
        d["day"].get<int>(), d["vacates"].get<int>(), d["median_error_pct"].get<double>(),
        d["median_abs_error_pct"].get<double>(), d["over_quantile_pct"].get<double>(),
        d["quantile_over_mean"].get<double>(), d["agent_median_error_pct"].get<double>(),
        d["moves"].get<int>(), d["move_median_abs_error_pct"].get<double>());
    o << b;
  }
  const json& lag = f["lag"];
  line("per move: vrmd start -> agent start, s (median/p95)",
       num(lag["dispatch_s"]["median"].get<double>(), "%.2f") + " / " +
           num(lag["dispatch_s"]["p95"].get<double>(), "%.2f") + " (" +
           num(lag["dispatch_real_ms_median"].get<double>(), "%.1f") + " ms real)");
  line("per move: agent end -> vrmd end, s (median/p95)",
       num(lag["completion_s"]["median"].get<double>(), "%.2f") + " / " +
           num(lag["completion_s"]["p95"].get<double>(), "%.2f") + " (" +
           num(lag["completion_real_ms_median"].get<double>(), "%.1f") + " ms real)");
  o << "\nexecution\n";
  line("moves (by mode)", std::to_string(ex["moves"].get<int>()) + " " +
                              ex["moves_by_mode"].dump() + ", failed " +
                              std::to_string(ex["moves_failed"].get<int>()));
  line("deadline warnings / re-plans / park re-plans",
       std::to_string(ex["deadline_warnings"].get<int>()) + " / " +
           std::to_string(ex["re_plans"].get<int>()) + " / " +
           std::to_string(ex["park_re_plans"].get<int>()));
  line("parks planned / done", std::to_string(ex["parks_planned"].get<int>()) + " / " +
                                   std::to_string(ex["parks_done"].get<int>()));
  line("at risk / late / re-admitted / command timeouts",
       std::to_string(ex["at_risk"].get<int>()) + " / " +
           std::to_string(ex["late_notes"].get<int>()) + " / " +
           std::to_string(ex["re_admitted"].get<int>()) + " / " +
           std::to_string(ex["command_timeouts"].get<int>()));
  line("failed reservations", std::to_string(ex["failed"].get<int>()));
  for (const auto& k : ex["failures"]) {
    o << "    " << k["count"].get<int>() << " x " << k["example"].get<std::string>() << "\n";
  }
  o << "\nadmission\n";
  for (const char* kind : {"dedicated", "shared"}) {
    const json& a = f["admission"][kind];
    line((std::string(kind) + ": submitted / admitted").c_str(),
         std::to_string(a["submitted"].get<int>()) + " / " +
             std::to_string(a["admitted"].get<int>()) + " (" +
             num(a["admitted_pct"].get<double>()) + " %)");
    for (const auto& k : a["rejections"]) {
      o << "    " << k["count"].get<int>() << " x " << k["example"].get<std::string>() << "\n";
    }
  }
  const json& d = f["driver"];
  o << "\nfaults: " << d["vrmd_restarts"].get<int>() << " vrmd restarts (down "
    << d["vrmd_down_s"].dump() << " s simulated), " << d["agents_lost"].get<int>()
    << " agents lost; driver behind its clock by median "
    << num(d["late_s"]["median"].get<double>(), "%.2f") << " s, max "
    << num(d["late_s"]["max"].get<double>(), "%.2f") << " s\n";
  const json& inv = f["invariants"];
  o << "\ninvariants: " << (inv["ok"].get<bool>() ? "all hold" : "VIOLATED") << "\n";
  for (const auto& v : inv["violations"]) {
    o << "    " << v["kind"].get<std::string>() << ": " << v["detail"].get<std::string>() << "\n";
  }
  return o.str();
}

std::string leadPlotData(const json& f) {
  std::ostringstream o;
  o << "# day_of_week idle_lead_min host reservation\n";
  for (const auto& p : f["series"]["lead"]) {
    o << p[0].get<double>() << " " << p[1].get<double>() << " " << p[2].get<std::string>() << " "
      << p[3].get<std::string>() << "\n";
  }
  return o.str();
}

std::string errorPlotData(const json& f) {
  std::ostringstream o;
  o << "# day_of_week vacate_prediction_error_pct reservation makespan_quantile_over_mean\n";
  for (const auto& p : f["series"]["error"]) {
    o << p[0].get<double>() << " " << p[1].get<double>() << " " << p[2].get<std::string>() << " "
      << (p.size() > 3 ? p[3].get<double>() : 0.0) << "\n";
  }
  return o.str();
}

}  // namespace vrm::week
