// `vrmctl report`: how the cluster was used over a window [from, to), computed from what vrmd's
// list answers carry (every reservation with its window, state, hosts, plan, moves and events).
// Pure functions of their arguments.
//
// What each figure means (README "Usage report"):
//   reservations, state_*   reservations whose window overlaps [from, to), by their state now
//   host_hours              dedicated reservations: hosts x the part of the window inside
//                           [from, to), cut at the cancel or failure of one that ended early;
//                           rejected and requested ones held nothing
//   vm_hours                the same for shared reservations: VMs x hours
//   vacates                 vacates that finished inside [from, to) (their last move's end)
//   vacate_s / _predicted_s their actual time (first move's start to last move's end) and the
//                           plan's predicted makespan, summed
//   vacate_error_mean/worst (actual - predicted) / predicted over those vacates: the mean, and the
//                           one furthest from 0; null without vacates
//   vacate_moves, vacate_move_s, vacate_move_predicted_s, vacate_planned_bytes
//                           the vacates' moves (migrations and parks) that finished in [from, to):
//                           how many, their actual and predicted seconds, and the bytes the plan
//                           expected them to transfer. The bytes actually moved are not in any
//                           answer of vrmd (the agents report them, vrmd keeps them to calibrate
//                           its models only), so they are not here.
// By host, a reservation counts in the row of each of its hosts (its vacate too), a move in the
// row of the host it left; the total counts each once. Not here, for want of the data in vrmd's
// answers or in vrm at all: used vs idle time of the clones, maintenance time, projects.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "vrm/protocol/reservation.h"

namespace vrm::vrmctl {

enum class ReportGrouping { kNone, kOwner, kHost };
// "owner", "host" (and "" for kNone); "project" and anything else are invalid-argument, saying
// why.
Result<ReportGrouping> reportGroupingFromName(const std::string& name);

struct UsageRow {
  std::string group;  // the owner or host; "" in the total
  std::size_t reservations = 0;
  std::map<ReservationState, std::size_t> states;
  double hostHours = 0;
  double vmHours = 0;
  std::size_t vacates = 0;
  double vacateSeconds = 0, vacatePredictedSeconds = 0;
  std::vector<double> vacateErrors;  // one ratio per vacate with a predicted makespan
  std::size_t vacateMoves = 0;
  double vacateMoveSeconds = 0, vacateMovePredictedSeconds = 0;
  std::uint64_t vacatePlannedBytes = 0;
};

struct UsageReport {
  TimeNs fromNs = 0, toNs = 0;
  ReportGrouping by = ReportGrouping::kNone;
  std::vector<UsageRow> rows;  // by group name; empty for kNone
  UsageRow total;
};

// The report of `reservations` (any set: those outside the window count nothing) over
// [fromNs, toNs), toNs > fromNs.
UsageReport usageReport(const std::vector<Reservation>& reservations, TimeNs fromNs, TimeNs toNs,
                        ReportGrouping by);

// An array of one object per row, the total last ("total": true, "group": ""), each with every
// field (a state_* per state), so CSV columns are the same whatever the data.
nlohmann::json usageReportJson(const UsageReport& report);
// A table for people.
std::string usageReportText(const UsageReport& report);

}  // namespace vrm::vrmctl
