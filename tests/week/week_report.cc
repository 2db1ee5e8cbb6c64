#include "week_report.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "vrm/client/time_spec.h"

namespace vrm::week {

namespace {

using nlohmann::json;

constexpr TimeNs kDayNs = 86400 * kNsPerSec;

TimeNs timeOf(const json& j, const char* key) {
  if (!j.contains(key) || !j.at(key).is_string() || j.at(key).get<std::string>().empty()) return 0;
  auto t = client::parseTimeSpec(j.at(key).get<std::string>(), 0);
  if (!t) throw std::runtime_error(std::string(key) + ": " + t.status().message());
  return *t;
}

// Resources a VM in `state` holds on its host (a parked VM holds none; "gone" is not there).
bool holds(const std::string& state) { return state != "parked" && state != "gone"; }

bool longLived(const JournalVm& v) { return v.reservationId.empty(); }

}  // namespace

TimeNs ReservationRecord::firstEvent(const std::string& s) const {
  for (const auto& e : events) {
    if (e.state == s) return e.timeNs;
  }
  return 0;
}

Result<std::vector<ReservationRecord>> parseReservations(const std::string& text) {
  try {
    const json all = json::parse(text);
    if (!all.is_array()) return Status::invalid("reservations: want a JSON array");
    std::vector<ReservationRecord> out;
    for (const auto& j : all) {
      ReservationRecord r;
      r.id = j.at("id").get<std::string>();
      r.label = j.value("label", "");
      r.owner = j.value("owner", "");
      r.kind = j.at("kind").get<std::string>();
      r.state = j.at("state").get<std::string>();
      r.reason = j.value("reason", "");
      r.displaced = j.value("displaced", "");
      r.startNs = j.at("start_ns").get<TimeNs>();
      r.endNs = j.at("end_ns").get<TimeNs>();
      r.hosts = j.value("hosts", std::vector<std::string>{});
      r.atRisk = j.value("at_risk", false);
      const json& p = j.at("plan");
      r.strategy = p.value("strategy", "");
      r.makespanS = p.value("makespan_s", 0.0);
      r.makespanQuantileS = p.value("makespan_quantile_s", 0.0);
      r.quantile = p.value("quantile", 0.0);
      r.cloneTimeS = p.value("clone_time_s", 0.0);
      r.marginS = p.value("margin_s", 0.0);
      r.latestSafeStartNs = p.value("latest_safe_start_ns", TimeNs{0});
      for (const auto& m : p.value("moves", json::array())) {
        MoveRecord mr;
        mr.vm = m.at("vm").get<std::string>();
        mr.from = m.at("from").get<std::string>();
        mr.to = m.at("to").get<std::string>();
        mr.mode = m.value("mode", "");
        mr.state = m.value("state", "");
        mr.batch = m.value("batch", 0u);
        mr.plannedStartS = m.value("start_s", 0.0);
        mr.plannedEndS = m.value("end_s", 0.0);
        mr.actualStartNs = timeOf(m, "actual_start");
        mr.actualEndNs = timeOf(m, "actual_end");
        r.moves.push_back(std::move(mr));
      }
      for (const auto& e : j.value("events", json::array())) {
        r.events.push_back({timeOf(e, "time"), e.value("state", ""), e.value("message", "")});
      }
      out.push_back(std::move(r));
    }
    return out;
  } catch (const std::exception& e) {
    return Status::invalid(std::string("reservations: ") + e.what());
  }
}

double quantileOf(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

std::string reasonKind(const std::string& reason) {
  static const std::regex kVm("w[0-9]{3}-v[0-9]+"), kHost("w[0-9]{3}"), kId("\\br[0-9]+\\b"),
      kTime("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z?"),
      kNumber("[0-9]+([.][0-9]+)?(h|m|s|ms|%| ?[KMGT]i?B(/s)?)?"), kSpaces("  +");
  std::string s = std::regex_replace(reason, kVm, "VM");
  s = std::regex_replace(s, kHost, "HOST");
  s = std::regex_replace(s, kId, "RES");
  s = std::regex_replace(s, kTime, "TIME");
  s = std::regex_replace(s, kNumber, "N");
  s = std::regex_replace(s, kSpaces, " ");
  return s;
}

std::vector<DedicatedOutcome> dedicatedOutcomes(const std::vector<ReservationRecord>& rs,
                                                TimeNs weekStartNs) {
  std::vector<DedicatedOutcome> out;
  for (const auto& r : rs) {
    if (!r.dedicated()) continue;
    DedicatedOutcome o;
    o.r = &r;
    const TimeNs admitted = r.firstEvent("admitted");
    const TimeNs cancelled = r.firstEvent("cancelled");
    const TimeNs failed = r.firstEvent("failed");
    o.counted = admitted != 0 && !(cancelled != 0 && cancelled < r.startNs);
    o.readyNs = r.firstEvent("ready");
    o.vacatingNs = r.firstEvent("vacating");
    o.preparingNs = r.firstEvent("preparing");
    if (o.vacatingNs) {
      o.day = static_cast<int>((o.vacatingNs - weekStartNs) / kDayNs);
    }
    if (o.vacatingNs && o.preparingNs) o.vacateActualS = nsToSeconds(o.preparingNs - o.vacatingNs);
    o.onTime = o.counted && o.readyNs != 0 && o.readyNs <= r.startNs &&
               !(failed != 0 && failed <= r.startNs);
    if (o.counted && !o.onTime) {
      const TimeNs when = o.readyNs ? o.readyNs : failed ? failed : r.endNs;
      o.lateByS = nsToSeconds(when - r.startNs);
      if (failed != 0 && (!o.readyNs || failed <= r.startNs)) {
        o.why = "failed: " + r.reason;
      } else {
        // The largest of: the vacate began late (vrmd behind its clock), it ran longer than
        // predicted at the quantile plus the margin, the clones took longer than the template
        // says.
        const double startLagS = o.vacatingNs && r.latestSafeStartNs
                                     ? nsToSeconds(o.vacatingNs - r.latestSafeStartNs)
                                     : 0;
        const double budgetS =
            (r.makespanQuantileS > 0 ? r.makespanQuantileS : r.makespanS) + r.marginS;
        const double overrunS = o.vacateActualS >= 0 ? o.vacateActualS - budgetS : 0;
        const double cloneOverS =
            o.readyNs && o.preparingNs ? nsToSeconds(o.readyNs - o.preparingNs) - r.cloneTimeS : 0;
        char buf[256];
        if (startLagS >= overrunS && startLagS >= cloneOverS) {
          std::snprintf(buf, sizeof buf, "vacate began %.1f s after its latest safe start",
                        startLagS);
        } else if (overrunS >= cloneOverS) {
          std::snprintf(buf, sizeof buf,
                        "vacate took %.1f s against %.1f s predicted at the quantile + %.0f s "
                        "margin",
                        o.vacateActualS, budgetS - r.marginS, r.marginS);
        } else {
          std::snprintf(buf, sizeof buf, "clones took %.1f s against %.1f s",
                        nsToSeconds(o.readyNs - o.preparingNs), r.cloneTimeS);
        }
        o.why = buf;
      }
    }
    out.push_back(o);
  }
  return out;
}

double agentDownS(const JournalRecords& journal, const std::string& host, TimeNs fromNs,
                  TimeNs toNs) {
  TimeNs down = 0, downSince = -1;
  auto add = [&](TimeNs a, TimeNs b) {
    down += std::max<TimeNs>(0, std::min(b, toNs) - std::max(a, fromNs));
  };
  for (const auto& a : journal.agents) {
    if (a.host != host) continue;
    if (!a.up && downSince < 0) downSince = a.timeNs;
    if (a.up && downSince >= 0) {
      add(downSince, a.timeNs);
      downSince = -1;
    }
  }
  if (downSince >= 0) add(downSince, toNs);
  return nsToSeconds(down);
}

std::vector<HostLead> idleLeads(const std::vector<DedicatedOutcome>& outcomes,
                                const JournalRecords& journal, TimeNs weekStartNs,
                                std::size_t* alreadyEmpty) {
  // Each host's journal, in time order.
  std::map<std::string, std::vector<const JournalVm*>> byHost;
  for (const auto& v : journal.vms) byHost[v.host].push_back(&v);
  for (auto& [h, list] : byHost) {
    std::stable_sort(list.begin(), list.end(),
                     [](const JournalVm* a, const JournalVm* b) { return a->timeNs < b->timeNs; });
  }
  std::vector<HostLead> out;
  std::size_t empty = 0;
  for (const auto& o : outcomes) {
    if (!o.counted || !o.vacatingNs || !o.preparingNs) continue;
    const ReservationRecord& r = *o.r;
    for (const auto& host : r.hosts) {
      // Long-lived VMs holding resources on the host, replayed up to the vacate; then the last
      // moment it became empty before the start (or, if late, the first after it).
      std::map<std::string, bool> on;
      std::size_t count = 0;
      auto apply = [&](const JournalVm& v) {
        if (!longLived(v)) return;
        const bool now = holds(v.state);
        bool& was = on[v.vm];
        if (now != was) count += now ? 1 : static_cast<std::size_t>(-1);
        was = now;
      };
      const auto& list = byHost[host];
      std::size_t i = 0;
      for (; i < list.size() && list[i]->timeNs <= o.vacatingNs; ++i) apply(*list[i]);
      if (count == 0) {
        ++empty;
        continue;
      }
      TimeNs emptyAt = 0;
      for (; i < list.size(); ++i) {
        if (list[i]->timeNs > r.startNs && emptyAt) break;
        const std::size_t before = count;
        apply(*list[i]);
        if (count == 0 && before > 0) emptyAt = list[i]->timeNs;
        if (count > 0) emptyAt = 0;
      }
      if (!emptyAt) continue;  // never emptied (failed): no lead to speak of
      HostLead l;
      l.reservation = r.id;
      l.host = host;
      l.day = static_cast<int>((o.vacatingNs - weekStartNs) / kDayNs);
      l.emptyNs = emptyAt;
      for (const auto& m : r.moves) {
        if (m.from == host && m.actualEndNs) l.vrmdEmptyNs = std::max(l.vrmdEmptyNs, m.actualEndNs);
      }
      l.leadS = nsToSeconds(r.startNs - emptyAt) - r.cloneTimeS;
      l.marginS = r.marginS;
      l.makespanS = o.vacateActualS;
      out.push_back(l);
    }
  }
  if (alreadyEmpty) *alreadyEmpty = empty;
  return out;
}

std::vector<MoveTiming> moveTimings(const std::vector<ReservationRecord>& rs,
                                    const JournalRecords& journal) {
  // Each (host, VM)'s records, in time order.
  std::map<std::pair<std::string, std::string>, std::vector<const JournalVm*>> byVm;
  for (const auto& v : journal.vms) byVm[{v.host, v.vm}].push_back(&v);
  for (auto& [key, list] : byVm) {
    std::stable_sort(list.begin(), list.end(),
                     [](const JournalVm* a, const JournalVm* b) { return a->timeNs < b->timeNs; });
  }
  std::vector<MoveTiming> out;
  for (const auto& r : rs) {
    for (const auto& m : r.moves) {
      if (m.state != "done" || !m.actualStartNs || !m.actualEndNs) continue;
      auto it = byVm.find({m.from, m.vm});
      if (it == byVm.end()) continue;
      MoveTiming t;
      for (const JournalVm* v : it->second) {
        if (v->timeNs < m.actualStartNs) continue;
        if (!t.agentStartNs && v->state == "migrating-out") {
          t.agentStartNs = v->timeNs;
        } else if (t.agentStartNs && (v->state == "gone" || v->state == "parked")) {
          t.agentEndNs = v->timeNs;
          break;
        } else if (t.agentStartNs && v->state == "running") {
          t.agentStartNs = 0;  // that attempt failed (agent lost): the next one counts
        }
      }
      if (!t.agentStartNs || !t.agentEndNs || t.agentEndNs > m.actualEndNs) continue;
      t.reservation = r.id;
      t.vm = m.vm;
      t.mode = m.mode;
      t.dispatchS = nsToSeconds(t.agentStartNs - m.actualStartNs);
      t.completionS = nsToSeconds(m.actualEndNs - t.agentEndNs);
      t.predictedS = m.plannedEndS - m.plannedStartS;
      t.agentS = nsToSeconds(t.agentEndNs - t.agentStartNs);
      t.vrmdS = nsToSeconds(m.actualEndNs - m.actualStartNs);
      out.push_back(t);
    }
  }
  return out;
}

std::vector<Violation> checkInvariants(const std::vector<ReservationRecord>& rs,
                                       const ClusterSpec& cluster, const JournalRecords& journal) {
  std::vector<Violation> out;
  auto add = [&](std::string kind, std::string detail) {
    if (out.size() < 200) out.push_back({std::move(kind), std::move(detail)});
  };
  // Every reservation ended, with a reason where it did not run to the end.
  for (const auto& r : rs) {
    if (r.state != "done" && r.state != "rejected" && r.state != "cancelled" &&
        r.state != "failed") {
      add("not-terminal", r.id + " (" + r.label + ") is " + r.state);
    } else if (r.state != "done" && r.reason.empty()) {
      add("no-reason", r.id + " (" + r.label + ") is " + r.state + " without a reason");
    }
    if (r.events.empty() || r.events.back().message.empty()) {
      add("no-reason", r.id + " (" + r.label + ") has no final event message");
    }
  }
  // No host in two dedicated windows at once (from the vacate's start: the host is promised).
  std::map<std::string, std::vector<const ReservationRecord*>> dedicatedOn;
  for (const auto& r : rs) {
    if (!r.dedicated() || r.firstEvent("admitted") == 0) continue;
    for (const auto& h : r.hosts) dedicatedOn[h].push_back(&r);
  }
  for (const auto& [h, list] : dedicatedOn) {
    for (std::size_t a = 0; a < list.size(); ++a) {
      for (std::size_t b = a + 1; b < list.size(); ++b) {
        const auto* x = list[a];
        const auto* y = list[b];
        // Only what both really held: up to their end, or their cancel / failure.
        auto endOf = [](const ReservationRecord* r) {
          TimeNs e = r->endNs;
          for (const char* s : {"cancelled", "failed"}) {
            if (TimeNs t = r->firstEvent(s)) e = std::min(e, t);
          }
          return e;
        };
        auto startOf = [](const ReservationRecord* r) {
          return std::max(r->startNs, r->firstEvent("ready"));
        };
        if (x->firstEvent("ready") && y->firstEvent("ready") && startOf(x) < endOf(y) &&
            startOf(y) < endOf(x)) {
          add("double-booked", "host " + h + " in " + x->id + " and " + y->id + " at once");
        }
      }
    }
  }
  // Replay the journal in time order: capacity per host, presence of every long-lived VM.
  std::map<std::string, const HostSpec*> hostSpec;
  std::set<std::string> longLivedIds;
  for (const auto& h : cluster.hosts) {
    hostSpec[h.name] = &h;
    for (const auto& v : h.vms) longLivedIds.insert(v.id);
  }
  std::vector<const JournalVm*> ordered;
  for (const auto& v : journal.vms) ordered.push_back(&v);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const JournalVm* a, const JournalVm* b) { return a->timeNs < b->timeNs; });
  struct Held {
    std::uint64_t cores = 0, memory = 0;
  };
  std::map<std::string, std::map<std::string, JournalVm>> onHost;  // host -> vm -> last record
  std::map<std::string, std::set<std::string>> whereIs;            // vm -> hosts listing it
  std::set<std::string> reportedOver, reportedDup, reportedLost;
  for (const JournalVm* v : ordered) {
    auto& vms = onHost[v->host];
    if (v->state == "gone") {
      vms.erase(v->vm);
      whereIs[v->vm].erase(v->host);
    } else {
      vms[v->vm] = *v;
      whereIs[v->vm].insert(v->host);
    }
    Held held;
    for (const auto& [id, x] : vms) {
      if (!holds(x.state)) continue;
      held.cores += x.cores;
      held.memory += x.memoryBytes;
    }
    if (auto spec = hostSpec.find(v->host); spec != hostSpec.end()) {
      if ((held.cores > spec->second->cpuCores || held.memory > spec->second->memoryBytes) &&
          reportedOver.insert(v->host).second) {
        add("overbooked", "host " + v->host + " held " + std::to_string(held.cores) + " cores / " +
                              std::to_string(held.memory >> 30) + " GiB at " +
                              formatTime(v->timeNs));
      }
    }
    if (!longLivedIds.count(v->vm)) continue;
    const auto& where = whereIs[v->vm];
    if (where.empty() && reportedLost.insert(v->vm).second) {
      add("lost", v->vm + " on no host at " + formatTime(v->timeNs));
    }
    int running = 0;
    for (const auto& h : where) {
      const std::string& s = onHost[h][v->vm].state;
      running += s == "running" || s == "suspended" || s == "parked";
    }
    if (running > 1 && reportedDup.insert(v->vm).second) {
      add("duplicated",
          v->vm + " running on " + std::to_string(running) + " hosts at " + formatTime(v->timeNs));
    }
  }
  // At the end: every long-lived VM on exactly one host and running; no clone left.
  for (const auto& id : longLivedIds) {
    const auto& where = whereIs[id];
    if (where.size() != 1) {
      add(where.empty() ? "lost" : "duplicated",
          id + " is on " + std::to_string(where.size()) + " hosts at the end");
    } else if (const std::string& s = onHost[*where.begin()][id].state; s != "running") {
      add("stranded", id + " is " + s + " on " + *where.begin() + " at the end");
    }
  }
  for (const auto& [host, vms] : onHost) {
    for (const auto& [id, v] : vms) {
      if (!v.reservationId.empty()) {
        add("clone-left", id + " of " + v.reservationId + " still on " + host + " at the end");
      }
    }
  }
  // A dedicated host said ready ran nothing else in its window [max(start, ready), end): no
  // long-lived VM holding resources there when it opened, none arriving during it.
  std::map<std::string, std::vector<const JournalVm*>> byHost;
  for (const JournalVm* v : ordered) byHost[v->host].push_back(v);
  for (const auto& r : rs) {
    const TimeNs ready = r.firstEvent("ready");
    if (!r.dedicated() || !ready) continue;
    const TimeNs from = std::max(r.startNs, ready);
    TimeNs to = r.endNs;
    for (const char* s : {"cancelled", "failed", "ending"}) {
      if (TimeNs t = r.firstEvent(s)) to = std::min(to, t);
    }
    if (from >= to) continue;  // cancelled (or failed) before its window opened
    for (const auto& h : r.hosts) {
      std::map<std::string, std::string> atFrom;
      for (const JournalVm* v : byHost[h]) {
        if (v->timeNs >= from) break;
        if (longLived(*v)) atFrom[v->vm] = v->state;
      }
      for (const auto& [vm, st] : atFrom) {
        if (holds(st))
          add("not-vacated", h + " of " + r.id + " holds " + vm + " when its window opens");
      }
      for (const JournalVm* v : byHost[h]) {
        if (v->timeNs < from) continue;
        if (v->timeNs >= to) break;
        if (longLived(*v) && holds(v->state)) {
          add("not-vacated",
              h + " of " + r.id + " holds " + v->vm + " in its window at " + formatTime(v->timeNs));
        }
      }
    }
  }
  return out;
}

}  // namespace vrm::week
