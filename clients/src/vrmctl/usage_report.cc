#include "usage_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "vrm/protocol/units.h"

namespace vrm::vrmctl {

using nlohmann::json;

Result<ReportGrouping> reportGroupingFromName(const std::string& name) {
  if (name.empty()) return ReportGrouping::kNone;
  if (name == "owner") return ReportGrouping::kOwner;
  if (name == "host") return ReportGrouping::kHost;
  if (name == "project") {
    return Status::invalid(
        "--by project: vrm has no projects yet (issue 15 item 3); use --by owner or --by host");
  }
  return Status::invalid("--by: unknown grouping '" + name + "' (owner, host)");
}

namespace {

constexpr double kNsPerHour = 3600.0 * kNsPerSec;

// When a reservation stopped holding what it was given: its end, or the time of the event that
// cancelled or failed it, if earlier.
TimeNs heldUntil(const Reservation& r) {
  TimeNs until = r.request.endNs;
  if (r.state == ReservationState::kCancelled || r.state == ReservationState::kFailed) {
    for (const auto& e : r.events) {
      if (e.state == r.state) {
        until = std::min(until, e.timeNs);
        break;
      }
    }
  }
  return until;
}

// Whether the reservation held hosts or VMs at all (rejected and requested ones never did).
bool held(const Reservation& r) {
  return r.state != ReservationState::kRejected && r.state != ReservationState::kRequested;
}

// Hours of [start, end) inside [from, to).
double clippedHours(TimeNs start, TimeNs end, TimeNs from, TimeNs to) {
  const TimeNs a = std::max(start, from), b = std::min(end, to);
  return b > a ? static_cast<double>(b - a) / kNsPerHour : 0;
}

struct Vacate {
  bool finished = false;
  TimeNs startNs = 0, endNs = 0;
};

// A vacate is finished when none of its moves is planned or running and one at least ran.
Vacate vacateOf(const Reservation& r) {
  Vacate v;
  bool any = false;
  for (const auto& m : r.moves) {
    if (!m.isVacate()) continue;
    if (m.pendingOrRunning()) return v;
    if (m.progress.state != MoveState::kDone || !m.progress.actualEndNs) continue;
    v.startNs = any ? std::min(v.startNs, m.progress.actualStartNs) : m.progress.actualStartNs;
    v.endNs = std::max(v.endNs, m.progress.actualEndNs);
    any = true;
  }
  v.finished = any;
  return v;
}

bool inWindow(TimeNs t, TimeNs from, TimeNs to) { return t >= from && t < to; }

// Adds what `r` contributes to `row`; `hostFilter` ("" = all) restricts it to one host's share.
void addReservation(UsageRow& row, const Reservation& r, TimeNs from, TimeNs to,
                    const std::string& hostFilter) {
  const bool overlapping = r.request.startNs < to && r.request.endNs > from;
  if (overlapping) {
    ++row.reservations;
    ++row.states[r.state];
  }
  if (overlapping && held(r)) {
    const double hours = clippedHours(r.request.startNs, heldUntil(r), from, to);
    if (r.request.kind == ReservationKind::kDedicated) {
      row.hostHours += hours * (hostFilter.empty() ? static_cast<double>(r.hosts.size()) : 1.0);
    } else {
      double vms = r.request.vmCount;
      if (!hostFilter.empty()) {
        if (!r.clones.empty()) {
          vms = static_cast<double>(
              std::count_if(r.clones.begin(), r.clones.end(),
                            [&](const auto& c) { return c.host == hostFilter; }));
        } else if (!r.hosts.empty()) {
          vms /= static_cast<double>(r.hosts.size());
        }
      }
      row.vmHours += hours * vms;
    }
  }
  const Vacate v = vacateOf(r);
  if (v.finished && inWindow(v.endNs, from, to)) {
    ++row.vacates;
    const double actual = nsToSeconds(v.endNs - v.startNs);
    const double predicted = nsToSeconds(r.plan.makespanNs);
    row.vacateSeconds += actual;
    row.vacatePredictedSeconds += predicted;
    if (predicted > 0) row.vacateErrors.push_back((actual - predicted) / predicted);
  }
  for (const auto& m : r.moves) {
    if (!m.isVacate() || m.progress.state != MoveState::kDone) continue;
    if (!inWindow(m.progress.actualEndNs, from, to)) continue;
    if (!hostFilter.empty() && m.planned.fromHost != hostFilter) continue;
    ++row.vacateMoves;
    row.vacateMoveSeconds += nsToSeconds(m.progress.actualEndNs - m.progress.actualStartNs);
    row.vacateMovePredictedSeconds += nsToSeconds(m.planned.endOffsetNs - m.planned.startOffsetNs);
    row.vacatePlannedBytes += m.planned.transferredBytes;
  }
}

// The hosts whose rows `r` is in: its hosts, and the sources of its moves.
std::vector<std::string> hostsOf(const Reservation& r) {
  std::vector<std::string> hosts = r.hosts;
  for (const auto& m : r.moves) {
    if (m.isVacate()) hosts.push_back(m.planned.fromHost);
  }
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  return hosts;
}

// Whether a host row of `host` takes `r`'s whole-reservation figures (counts, hours, vacate):
// only the rows of its own hosts; a host it merely moved VMs off gets those moves.
bool isOwnHost(const Reservation& r, const std::string& host) {
  return std::find(r.hosts.begin(), r.hosts.end(), host) != r.hosts.end();
}

std::optional<double> meanOf(const std::vector<double>& xs) {
  if (xs.empty()) return std::nullopt;
  double sum = 0;
  for (double x : xs) sum += x;
  return sum / static_cast<double>(xs.size());
}

std::optional<double> worstOf(const std::vector<double>& xs) {
  if (xs.empty()) return std::nullopt;
  return *std::max_element(xs.begin(), xs.end(),
                           [](double a, double b) { return std::fabs(a) < std::fabs(b); });
}

// Rounded for output: hours and seconds to the millisecond, ratios to 1e-6, so equal inputs
// print equal text.
double rounded(double x, double unit) { return std::round(x / unit) * unit; }

json rowJson(const UsageReport& report, const UsageRow& row, bool total) {
  static const char* kBy[] = {"all", "owner", "host"};
  json j = {
      {"group", row.group},
      {"total", total},
      {"by", kBy[static_cast<int>(report.by)]},
      {"from", formatTime(report.fromNs)},
      {"to", formatTime(report.toNs)},
      {"reservations", row.reservations},
      {"host_hours", rounded(row.hostHours, 1e-6)},
      {"vm_hours", rounded(row.vmHours, 1e-6)},
      {"vacates", row.vacates},
      {"vacate_s", rounded(row.vacateSeconds, 1e-3)},
      {"vacate_predicted_s", rounded(row.vacatePredictedSeconds, 1e-3)},
      {"vacate_moves", row.vacateMoves},
      {"vacate_move_s", rounded(row.vacateMoveSeconds, 1e-3)},
      {"vacate_move_predicted_s", rounded(row.vacateMovePredictedSeconds, 1e-3)},
      {"vacate_planned_bytes", row.vacatePlannedBytes},
  };
  auto ratio = [](std::optional<double> x) { return x ? json(rounded(*x, 1e-6)) : json(nullptr); };
  j["vacate_error_mean"] = ratio(meanOf(row.vacateErrors));
  j["vacate_error_worst"] = ratio(worstOf(row.vacateErrors));
  for (int s = 0; s <= static_cast<int>(ReservationState::kFailed); ++s) {
    const auto state = static_cast<ReservationState>(s);
    auto it = row.states.find(state);
    j[std::string("state_") + stateName(state)] = it == row.states.end() ? 0 : it->second;
  }
  return j;
}

std::string percent(std::optional<double> x) {
  if (!x) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%%", *x * 100);
  return buf;
}

std::string fixed(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

}  // namespace

UsageReport usageReport(const std::vector<Reservation>& reservations, TimeNs fromNs, TimeNs toNs,
                        ReportGrouping by) {
  UsageReport report;
  report.fromNs = fromNs;
  report.toNs = toNs;
  report.by = by;
  std::map<std::string, UsageRow> groups;
  for (const auto& r : reservations) {
    addReservation(report.total, r, fromNs, toNs, "");
    if (by == ReportGrouping::kOwner) {
      addReservation(groups[r.request.owner], r, fromNs, toNs, "");
    } else if (by == ReportGrouping::kHost) {
      for (const auto& host : hostsOf(r)) {
        UsageRow share;
        addReservation(share, r, fromNs, toNs, host);
        UsageRow& row = groups[host];
        if (isOwnHost(r, host)) {
          row.reservations += share.reservations;
          for (const auto& [s, n] : share.states) row.states[s] += n;
          row.hostHours += share.hostHours;
          row.vmHours += share.vmHours;
          row.vacates += share.vacates;
          row.vacateSeconds += share.vacateSeconds;
          row.vacatePredictedSeconds += share.vacatePredictedSeconds;
          row.vacateErrors.insert(row.vacateErrors.end(), share.vacateErrors.begin(),
                                  share.vacateErrors.end());
        }
        row.vacateMoves += share.vacateMoves;
        row.vacateMoveSeconds += share.vacateMoveSeconds;
        row.vacateMovePredictedSeconds += share.vacateMovePredictedSeconds;
        row.vacatePlannedBytes += share.vacatePlannedBytes;
      }
    }
  }
  for (auto& [name, row] : groups) {
    const bool empty = row.reservations == 0 && row.vacates == 0 && row.vacateMoves == 0;
    if (empty) continue;  // a reservation outside the window, and nothing of it inside
    row.group = name;
    report.rows.push_back(std::move(row));
  }
  return report;
}

json usageReportJson(const UsageReport& report) {
  json rows = json::array();
  for (const auto& row : report.rows) rows.push_back(rowJson(report, row, false));
  rows.push_back(rowJson(report, report.total, true));
  return rows;
}

std::string usageReportText(const UsageReport& report) {
  static const char* kBy[] = {"", " by owner", " by host"};
  std::string out = "usage from " + formatTime(report.fromNs) + " to " + formatTime(report.toNs) +
                    kBy[static_cast<int>(report.by)] + "\n";
  std::vector<std::vector<std::string>> table = {{report.by == ReportGrouping::kHost    ? "HOST"
                                                  : report.by == ReportGrouping::kOwner ? "OWNER"
                                                                                        : "",
                                                  "RESERVATIONS", "HOST-H", "VM-H", "VACATES",
                                                  "VACATE", "PREDICTED", "ERROR MEAN", "WORST",
                                                  "MOVES", "PLANNED BYTES", "STATES"}};
  auto line = [&](const UsageRow& row, const std::string& name) {
    std::string states;
    for (const auto& [s, n] : row.states) {
      states += (states.empty() ? "" : " ") + std::string(stateName(s)) + "=" + std::to_string(n);
    }
    table.push_back({name, std::to_string(row.reservations), fixed(row.hostHours, 2),
                     fixed(row.vmHours, 2), std::to_string(row.vacates),
                     row.vacates ? formatDuration(secondsToNs(row.vacateSeconds)) : "-",
                     row.vacates ? formatDuration(secondsToNs(row.vacatePredictedSeconds)) : "-",
                     percent(meanOf(row.vacateErrors)), percent(worstOf(row.vacateErrors)),
                     std::to_string(row.vacateMoves),
                     formatBytes(static_cast<double>(row.vacatePlannedBytes)),
                     states.empty() ? "-" : states});
  };
  for (const auto& row : report.rows) line(row, row.group);
  line(report.total, "total");
  if (report.by == ReportGrouping::kNone) table[0][0] = "";
  std::vector<std::size_t> widths(table[0].size(), 0);
  for (const auto& cells : table) {
    for (std::size_t i = 0; i < cells.size(); ++i) widths[i] = std::max(widths[i], cells[i].size());
  }
  for (const auto& cells : table) {
    std::string text;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const bool last = i + 1 == cells.size();
      text += last ? cells[i] : cells[i] + std::string(widths[i] - cells[i].size() + 2, ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  }
  return out;
}

}  // namespace vrm::vrmctl
