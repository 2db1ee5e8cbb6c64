// The week's workload: what the lab users, the teams and the operators do, as a list of actions
// at simulated times, generated from a seed (tests/week/README: "The workload").
//
//  * dedicated bookings, BMI-style: 1-4 hosts (45/25/15/15%) of 2 x bmi-decoder each, for 1-3 h
//    (quarter-hour steps), booked 30 min to 3 days ahead (log-uniform), starting on the quarter
//    hour between 07:00 and 21:00; about 24 a weekday per 100 hosts, a third of that at
//    weekends, submitted mostly in working hours; 95% send displaced VMs home afterwards;
//  * shared bookings: 1-8 small or medium VMs for 2-24 h, booked 10 min to 2 days ahead, about
//    12 a weekday per 100 hosts;
//  * cancellations: 8% of dedicated bookings before their vacate, 3% during it (aimed a few
//    seconds after its latest safe start), 3% during the window (released early); 10% of shared;
//  * agents lost and returning: random hosts at random times, and hosts aimed at, the source or a
//    destination of a running vacate;
//  * vrmd restarts (kill -9, restarted on the same store): one at a quiet hour, one aimed at a
//    running vacate.
// Bookings that would be made before the week starts (its backlog) are submitted at its start.
// Actions aimed at a vacate are resolved by the driver from the booking's latest safe start; if
// the booking is not admitted they happen at `atNs` (a fallback) instead.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vrm/protocol/reservation.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::week {

struct WorkloadOptions {
  std::uint64_t seed = 1;
  TimeNs weekStartNs = 0;  // the first simulated day starts here (00:00 UTC is best)
  std::uint32_t days = 7;
  std::vector<std::string> hosts;  // agents that may be lost
  double load = 1.0;               // booking rates are per 100 hosts, times hosts/100, times this
  double dedicatedPerWeekday = 24;
  double sharedPerWeekday = 12;
  std::uint32_t agentLosses = 4;   // half at random, half aimed at a vacate's source/destination
  std::uint32_t vrmdRestarts = 2;  // the first at a quiet hour, the others aimed at vacates
  std::string objective;           // of every dedicated booking ("" = vrmd's default, makespan)
};

enum class ActionKind { kSubmit, kCancel, kLoseAgent, kRestartVrmd };
const char* actionKindName(ActionKind kind);

struct Action {
  ActionKind kind = ActionKind::kSubmit;
  TimeNs atNs = 0;  // when; for an action aimed at a vacate: the fallback time
  // submit: the booking's label (unique in the workload); cancel, aimed actions: the booking's.
  std::string label;
  ReservationRequest request;  // submit
  // Aimed at the vacate of booking `label`: at its latest safe start + afterVacateStartNs.
  bool duringVacate = false;
  TimeNs afterVacateStartNs = 0;
  // lose-agent: the host, or (aimed) "source" / "destination" of the booking's first move.
  std::string host;
  std::string role;
  TimeNs durationNs = 0;  // lose-agent: how long the agent stays away
};

struct Workload {
  WorkloadOptions options;
  std::vector<Action> actions;  // by atNs
};

Workload generateWorkload(const WorkloadOptions& options);

// JSON round trip (the file the driver reads; times in ns since the epoch).
std::string workloadJson(const Workload& workload);
Result<Workload> parseWorkloadJson(const std::string& text);

}  // namespace vrm::week
