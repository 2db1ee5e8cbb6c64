// The week's figures as one JSON document, a readable table of it, and the plot's data
// (tests/week/README.md "Figures" defines each; week_report.h computes the parts).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "journal.h"
#include "vrm/protocol/cluster.h"
#include "week_report.h"
#include "week_workload.h"

namespace vrm::week {

struct WeekInputs {
  std::vector<ReservationRecord> reservations;
  ClusterSpec cluster;
  JournalRecords journal;
  Workload workload;
  nlohmann::json driverLog;  // vrm_week_driver --log
  nlohmann::json run;        // what the runner records: knobs, scale, load, wall time
  // Results vrmd's log (vrmd.log) says it ignored for commands it had issued and forgotten
  // ("result for unknown command"): each is something an agent did that nobody owns now.
  std::size_t unknownResults = 0;
};

nlohmann::json weekFigures(const WeekInputs& in);

// The figures for people: a few tables of plain text.
std::string figuresTable(const nlohmann::json& figures);

// gnuplot data files: per vacated host "day lead_min", per vacate "day error_pct".
std::string leadPlotData(const nlohmann::json& figures);
std::string errorPlotData(const nlohmann::json& figures);

}  // namespace vrm::week
