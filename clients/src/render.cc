#include "vrm/client/render.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vrm/protocol/units.h"

namespace vrm::client {

using nlohmann::json;

namespace {

json toJson(const Reservation& r) {
  json moves = json::array();
  for (const auto& move : r.moves) {
    if (!move.isVacate()) continue;  // the plan's moves; returns are not listed
    const auto& m = move.planned;
    json jm = {{"vm", m.vmId},
               {"from", m.fromHost},
               {"to", m.toHost},
               {"mode", moveModeName(m.mode)},
               {"batch", m.batch},
               {"start_s", nsToSeconds(m.startOffsetNs)},
               {"end_s", nsToSeconds(m.endOffsetNs)},
               {"transferred_bytes", m.transferredBytes},
               {"memory_bytes", m.memoryBytes},
               {"downtime_s", nsToSeconds(m.downtimeNs)}};
    jm["state"] = moveStateName(move.progress.state);
    if (move.progress.actualStartNs) jm["actual_start"] = formatTime(move.progress.actualStartNs);
    if (move.progress.actualEndNs) jm["actual_end"] = formatTime(move.progress.actualEndNs);
    moves.push_back(jm);
  }
  json handles = json::array();
  json clones = json::array();
  for (const auto& c : r.clones) {
    clones.push_back({{"vm", c.vmId}, {"host", c.host}, {"state", cloneStateName(c.state)}});
    // Hidden handles (another owner's reservation) have no address: listed as clones only.
    if (c.hasHandle()) {
      handles.push_back({{"vm", c.vmId},
                         {"host", c.host},
                         {"address", c.address},
                         {"account", c.account},
                         {"port", c.port},
                         {"address_source", c.addressSource},
                         {"ssh", c.sshCommand()}});
    }
  }
  json events = json::array();
  for (const auto& e : r.events) {
    events.push_back(
        {{"time", formatTime(e.timeNs)}, {"state", stateName(e.state)}, {"message", e.message}});
  }
  json j = {
      {"id", r.id},
      {"owner", r.request.owner},
      {"kind", r.request.kind == ReservationKind::kShared ? "shared" : "dedicated"},
      {"state", stateName(r.state)},
      {"reason", r.reason},
      {"label", r.request.label},
      {"template", r.request.templateName},
      {"start", formatTime(r.request.startNs)},
      {"end", formatTime(r.request.endNs)},
      {"start_ns", r.request.startNs},
      {"end_ns", r.request.endNs},
      {"hosts", r.hosts},
      {"plan",
       {{"strategy", r.plan.strategy},
        {"model", r.plan.model},
        {"makespan_s", nsToSeconds(r.plan.makespanNs)},
        {"clone_time_s", nsToSeconds(r.plan.cloneTimeNs)},
        {"margin_s", nsToSeconds(r.plan.marginNs)},
        {"latest_safe_start", r.plan.latestSafeStartNs ? formatTime(r.plan.latestSafeStartNs) : ""},
        {"latest_safe_start_ns", r.plan.latestSafeStartNs},
        {"moves", moves},
        {"makespan_quantile_s", nsToSeconds(r.plan.makespanQuantileNs)},
        {"quantile", r.plan.quantile}}},
      {"clones", clones},
      {"handles", handles},
      {"events", events},
      {"created", formatTime(r.createdNs)},
  };
  if (r.request.kind == ReservationKind::kShared) {
    j["vm_count"] = r.request.vmCount;
  } else {
    j["host_count"] = r.hosts.empty() ? r.request.hostCount : r.hosts.size();
    j["vms_per_host"] = r.request.vmsPerHost;
  }
  if (r.earliestFeasibleStartNs) {
    j["earliest_feasible_start"] = formatTime(r.earliestFeasibleStartNs);
    j["earliest_feasible_start_ns"] = r.earliestFeasibleStartNs;
  }
  j["at_risk"] = r.atRisk;
  if (r.atRisk) j["risk_reason"] = r.riskReason;
  if (r.request.kind == ReservationKind::kDedicated) {
    j["displaced"] = displacedName(r.request.displaced.value_or(Displaced::kStay));
  }
  return j;
}

std::string pad(const std::string& s, std::size_t w) {
  return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' ');
}

std::string clockOf(TimeNs t) { return formatTime(t).substr(11, 8); }

}  // namespace

std::string reservationJson(const Reservation& r, int indent) { return toJson(r).dump(indent); }

std::string reservationJson(const Reservation& r, const std::vector<WebhookDelivery>& deliveries,
                            int indent) {
  json j = toJson(r);
  if (!deliveries.empty()) {
    json a = json::array();
    for (const auto& d : deliveries) {
      json jd = {{"url", d.url},
                 {"event", d.eventId},
                 {"kind", d.kind},
                 {"state", deliveryStateName(d.state)},
                 {"attempts", d.attempts}};
      if (!d.lastError.empty()) jd["last_error"] = d.lastError;
      if (d.lastAttemptNs) jd["last_attempt"] = formatTime(d.lastAttemptNs);
      if (d.nextAttemptNs) jd["next_attempt"] = formatTime(d.nextAttemptNs);
      a.push_back(std::move(jd));
    }
    j["webhooks"] = std::move(a);
  }
  return j.dump(indent);
}

std::string webhookDeliveriesText(const std::vector<WebhookDelivery>& deliveries, TimeNs now) {
  std::map<std::string, std::vector<const WebhookDelivery*>> byUrl;
  std::vector<std::string> order;
  for (const auto& d : deliveries) {
    if (!byUrl.count(d.url)) order.push_back(d.url);
    byUrl[d.url].push_back(&d);
  }
  std::ostringstream o;
  for (const auto& url : order) {
    std::map<DeliveryState, int> counts;
    const WebhookDelivery* stuck = nullptr;  // the oldest not delivered
    std::uint32_t attempts = 0;
    for (const auto* d : byUrl[url]) {
      ++counts[d->state];
      attempts += d->attempts;
      if (d->state != DeliveryState::kDelivered && !stuck) stuck = d;
    }
    const int total = static_cast<int>(byUrl[url].size());
    o << "  webhook   " << url << ": ";
    if (!stuck) {
      o << "delivered (" << total << " event" << (total == 1 ? "" : "s") << ", " << attempts
        << " attempt" << (attempts == 1 ? "" : "s") << ")\n";
      continue;
    }
    o << (counts[DeliveryState::kFailing] || counts[DeliveryState::kGaveUp] ? "failing" : "pending")
      << " (" << counts[DeliveryState::kDelivered] << " of " << total << " delivered";
    if (counts[DeliveryState::kGaveUp]) o << ", " << counts[DeliveryState::kGaveUp] << " given up";
    o << "); " << stuck->kind << ": " << deliveryStateName(stuck->state) << ", " << stuck->attempts
      << " attempt" << (stuck->attempts == 1 ? "" : "s");
    if (!stuck->lastError.empty()) o << ", last error: " << stuck->lastError;
    if (stuck->nextAttemptNs && stuck->state == DeliveryState::kFailing) {
      o << ", next try "
        << (now && stuck->nextAttemptNs > now ? "in " + formatDuration(stuck->nextAttemptNs - now)
                                              : std::string("now"));
    }
    o << "\n";
  }
  return o.str();
}

std::string reservationsJson(const std::vector<Reservation>& rs, int indent) {
  json a = json::array();
  for (const auto& r : rs) a.push_back(toJson(r));
  return a.dump(indent);
}

std::string hostsJson(const std::vector<HostRecord>& hosts, int indent) {
  json a = json::array();
  for (const auto& h : hosts) {
    a.push_back({{"name", h.name},
                 {"cpu_cores", h.cpuCores},
                 {"memory_bytes", h.memoryBytes},
                 {"nic_bandwidth_bytes_per_sec", h.nicBandwidthBytesPerSec},
                 {"reachable", h.reachable},
                 {"last_heartbeat", h.lastHeartbeatNs ? formatTime(h.lastHeartbeatNs) : ""}});
  }
  return a.dump(indent);
}

std::string vmsJson(const std::vector<VmRecord>& vms, int indent) {
  static const char* kStates[] = {"running",  "suspended", "migrating-out",
                                  "incoming", "cloning",   "parked"};
  json a = json::array();
  for (const auto& v : vms) {
    a.push_back({{"id", v.id},
                 {"host", v.host},
                 {"cpu_cores", v.cpuCores},
                 {"memory_bytes", v.memoryBytes},
                 {"nonzero_memory_bytes", v.nonzeroMemoryBytes},
                 {"dirty_rate_bytes_per_sec", v.dirtyRateBytesPerSec},
                 {"state", kStates[static_cast<int>(v.state)]},
                 {"reservation", v.reservationId},
                 {"address", v.address},
                 {"ssh_port", v.sshPort}});
  }
  return a.dump(indent);
}

std::string reservationText(const Reservation& r, TimeNs now) {
  std::ostringstream o;
  o << r.id << "  " << stateName(r.state) << "  owner " << r.request.owner;
  if (!r.request.label.empty()) o << "  \"" << r.request.label << "\"";
  o << "\n";
  if (!r.reason.empty()) o << "  reason    " << r.reason << "\n";
  if (r.atRisk) o << "  AT RISK   " << r.riskReason << "\n";
  if (r.earliestFeasibleStartNs) {
    o << "  earliest feasible start  " << formatTime(r.earliestFeasibleStartNs) << "\n";
  }
  o << "  window    " << formatTime(r.request.startNs) << " -> " << formatTime(r.request.endNs)
    << " (" << formatDuration(r.request.endNs - r.request.startNs) << ")\n";
  if (r.request.kind == ReservationKind::kShared) {
    o << "  request   " << r.request.vmCount << " x " << r.request.templateName << " (shared)\n";
  } else {
    o << "  request   "
      << (r.request.hostNames.empty() ? r.request.hostCount : r.request.hostNames.size())
      << " dedicated host(s), " << r.request.vmsPerHost << " x " << r.request.templateName
      << " each\n";
  }
  if (!r.hosts.empty()) {
    o << "  hosts     ";
    for (std::size_t i = 0; i < r.hosts.size(); ++i) o << (i ? ", " : "") << r.hosts[i];
    o << "\n";
  }
  if (r.request.kind == ReservationKind::kDedicated && r.plan.latestSafeStartNs) {
    o << "  plan      " << r.vacateMoveCount() << " moves, " << r.plan.strategy << " ("
      << r.plan.model << " model), makespan " << formatDuration(r.plan.makespanNs) << ", clone "
      << formatDuration(r.plan.cloneTimeNs) << ", margin " << formatDuration(r.plan.marginNs)
      << "\n";
    o << "  latest safe start  " << formatTime(r.plan.latestSafeStartNs);
    if (now && r.plan.latestSafeStartNs > now) {
      o << "  (in " << formatDuration(r.plan.latestSafeStartNs - now) << ")";
    }
    o << "\n";
    if (r.vacateMoveCount() > 0) {
      o << "    " << pad("vm", 14) << pad("from", 10) << pad("to", 10) << pad("mode", 21)
        << pad("batch", 6) << pad("start", 10) << pad("end", 10) << pad("bytes", 12) << "state\n";
      const TimeNs span = std::max<TimeNs>(r.plan.makespanNs, 1);
      for (const auto& move : r.moves) {
        if (!move.isVacate()) continue;
        const auto& m = move.planned;
        o << "    " << pad(m.vmId, 14) << pad(m.fromHost, 10) << pad(m.toHost, 10)
          << pad(moveModeName(m.mode), 21) << pad(std::to_string(m.batch), 6)
          << pad(formatDuration(m.startOffsetNs), 10) << pad(formatDuration(m.endOffsetNs), 10)
          << pad(formatBytes(static_cast<double>(m.transferredBytes)), 12)
          << moveStateName(move.progress.state) << "\n";
      }
      // A small timeline: one row per move, 40 columns across the makespan, or across the
      // latest end when a re-plan of a late vacate moved moves past it.
      TimeNs until = span;
      for (const auto& move : r.moves) {
        if (move.isVacate()) until = std::max(until, move.planned.endOffsetNs);
      }
      o << "  timeline (0 .. " << formatDuration(until) << ")\n";
      for (const auto& move : r.moves) {
        if (!move.isVacate()) continue;
        const auto& m = move.planned;
        int a = std::clamp(static_cast<int>(40 * m.startOffsetNs / until), 0, 39);
        int b = std::max(a + 1, static_cast<int>(40 * m.endOffsetNs / until));
        o << "    " << pad(m.vmId, 14) << "|" << std::string(a, ' ')
          << std::string(std::min(b, 40) - a, '#') << std::string(40 - std::min(b, 40), ' ')
          << "|\n";
      }
    }
  }
  bool anyHandle = false;
  for (const auto& c : r.clones) {
    if (!c.hasHandle()) continue;
    if (!anyHandle) o << "  handles\n";
    anyHandle = true;
    const std::string ssh = c.sshCommand();
    o << "    " << pad(c.vmId, 26) << pad(c.host, 10)
      << (ssh.empty() ? pad(c.address, 34) + "account " + c.account : ssh) << "\n";
    if (!c.addressSource.empty()) o << "      address from " << c.addressSource << "\n";
  }
  if (!r.events.empty()) {
    o << "  events\n";
    for (const auto& e : r.events) {
      o << "    " << formatTime(e.timeNs) << "  " << pad(stateName(e.state), 10) << e.message
        << "\n";
    }
  }
  return o.str();
}

std::string reservationsTable(const std::vector<Reservation>& rs) {
  std::ostringstream o;
  o << pad("ID", 6) << pad("STATE", 10) << pad("OWNER", 12) << pad("START", 22) << pad("END", 22)
    << pad("HOSTS", 20) << "TEMPLATE\n";
  for (const auto& r : rs) {
    std::string hosts;
    for (const auto& h : r.hosts) hosts += (hosts.empty() ? "" : ",") + h;
    if (r.request.kind == ReservationKind::kShared) {
      hosts = std::to_string(r.request.vmCount) + " VMs";
    }
    o << pad(r.id, 6) << pad(stateName(r.state), 10) << pad(r.request.owner, 12)
      << pad(formatTime(r.request.startNs), 22) << pad(formatTime(r.request.endNs), 22)
      << pad(hosts.empty() ? "-" : hosts, 20) << r.request.templateName << "\n";
  }
  return o.str();
}

std::string hostsTable(const std::vector<HostRecord>& hosts, const std::vector<VmRecord>& vms,
                       TimeNs now) {
  std::map<std::string, std::pair<std::uint64_t, std::uint32_t>> used;
  std::map<std::string, int> count;
  for (const auto& v : vms) {
    used[v.host].first += v.memoryBytes;
    used[v.host].second += v.cpuCores;
    count[v.host]++;
  }
  std::ostringstream o;
  o << pad("HOST", 10) << pad("STATE", 12) << pad("CORES", 10) << pad("MEMORY", 24)
    << pad("NIC", 14) << pad("VMS", 5) << "LAST HEARTBEAT\n";
  for (const auto& h : hosts) {
    o << pad(h.name, 10) << pad(h.reachable ? "up" : "unreachable", 12)
      << pad(std::to_string(used[h.name].second) + "/" + std::to_string(h.cpuCores), 10)
      << pad(formatBytes(static_cast<double>(used[h.name].first)) + " / " +
                 formatBytes(static_cast<double>(h.memoryBytes)),
             24)
      << pad(formatRate(h.nicBandwidthBytesPerSec), 14) << pad(std::to_string(count[h.name]), 5)
      << (h.lastHeartbeatNs ? formatDuration(now - h.lastHeartbeatNs) + " ago" : "-") << "\n";
  }
  return o.str();
}

std::string vmsTable(const std::vector<VmRecord>& vms) {
  static const char* kStates[] = {"running",  "suspended", "migrating-out",
                                  "incoming", "cloning",   "parked"};
  std::ostringstream o;
  o << pad("VM", 26) << pad("HOST", 10) << pad("STATE", 14) << pad("CORES", 6) << pad("MEMORY", 12)
    << pad("NONZERO", 12) << pad("DIRTY RATE", 14) << pad("ADDRESS", 22) << "RESERVATION\n";
  for (const auto& v : vms) {
    // With ssh's port where it is not 22's usual place (a qemu clone's forwarded port).
    std::string address = v.address.empty() ? "-" : v.address;
    if (!v.address.empty() && v.sshPort != 0) address += ":" + std::to_string(v.sshPort);
    o << pad(v.id, 26) << pad(v.host, 10) << pad(kStates[static_cast<int>(v.state)], 14)
      << pad(std::to_string(v.cpuCores), 6)
      << pad(formatBytes(static_cast<double>(v.memoryBytes)), 12)
      << pad(formatBytes(static_cast<double>(v.nonzeroMemoryBytes)), 12)
      << pad(formatBytes(v.dirtyRateBytesPerSec) + "/s", 14) << pad(address, 22)
      << (v.reservationId.empty() ? "-" : v.reservationId) << "\n";
  }
  return o.str();
}

}  // namespace vrm::client
