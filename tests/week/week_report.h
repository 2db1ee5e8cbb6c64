// The week's figures, from what vrmd exposes (every reservation as `vrmctl --json list` prints
// it: events with times, the plan with planned and actual move times) and the agents' journal
// (journal.h: when each host really became empty, and the invariants vrmd cannot vouch for).
// Definitions (tests/week/README.md "Figures"):
//  * counted dedicated reservation: admitted, and not cancelled before its start;
//  * on time: its "ready" event is at or before its start; a miss is late by (ready, or the
//    failure, or the end) - start, and is given the largest of its causes;
//  * idle lead of a vacated host: start - clone time - the moment the host last became empty
//    of long-lived VMs (the journal); hosts already empty when the vacate began are left out.
//    The ideal is the margin (a vacate that took exactly its prediction at the quantile);
//  * vacate prediction error: (actual - predicted) / predicted of the makespan, actual from the
//    "vacating" event to the "preparing" one ("hosts vacated"), predicted the plan's mean;
//  * invariants: no host over its cores or memory at any instant, no two overlapping dedicated
//    windows on one host, no long-lived VM missing or running on two hosts at any instant, each
//    on exactly one host and running at the end, no clone left, no long-lived VM on a ready
//    dedicated host in its window, every reservation terminal with a reason.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "journal.h"
#include "vrm/protocol/cluster.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::week {

struct MoveRecord {
  std::string vm, from, to, mode, state;
  std::uint32_t batch = 0;
  double plannedStartS = 0, plannedEndS = 0;  // offsets from the latest safe start
  TimeNs actualStartNs = 0, actualEndNs = 0;  // 0 = did not happen
};

struct EventRecord {
  TimeNs timeNs = 0;
  std::string state, message;
};

// One reservation as vrmctl's JSON gives it (the fields the figures use).
struct ReservationRecord {
  std::string id, label, owner, kind, state, reason, displaced;
  TimeNs startNs = 0, endNs = 0;
  std::vector<std::string> hosts;
  std::string strategy;
  double makespanS = 0, makespanQuantileS = 0, quantile = 0, cloneTimeS = 0, marginS = 0;
  TimeNs latestSafeStartNs = 0;
  std::vector<MoveRecord> moves;
  std::vector<EventRecord> events;
  bool atRisk = false;

  bool dedicated() const { return kind == "dedicated"; }
  // The first event entering `state`, 0 if none.
  TimeNs firstEvent(const std::string& state) const;
};

// Errors: invalid-argument when the text is not vrmctl's JSON list of reservations.
Result<std::vector<ReservationRecord>> parseReservations(const std::string& json);

// A dedicated reservation's outcome.
struct DedicatedOutcome {
  const ReservationRecord* r = nullptr;
  bool counted = false;  // admitted and not cancelled before its start
  bool onTime = false;
  TimeNs readyNs = 0, vacatingNs = 0, preparingNs = 0;
  double lateByS = 0;         // misses: how late (ready, failure or end) - start
  std::string why;            // misses: the cause
  double vacateActualS = -1;  // vacating -> preparing; -1 = not vacated
  int day = -1;               // day of the week the vacate began (0-based), -1 if it did not
};
std::vector<DedicatedOutcome> dedicatedOutcomes(const std::vector<ReservationRecord>& rs,
                                                TimeNs weekStartNs);

struct HostLead {
  std::string reservation, host;
  int day = 0;
  TimeNs emptyNs = 0;      // the journal: when the host last became empty before the start
  TimeNs vrmdEmptyNs = 0;  // vrmd: the last move off the host ended
  double leadS = 0;        // start - clone time - emptyNs
  double marginS = 0, makespanS = 0;
};
// Idle leads of every vacated host of the counted dedicated reservations that were vacated;
// `alreadyEmpty` counts the hosts that had nothing to move.
std::vector<HostLead> idleLeads(const std::vector<DedicatedOutcome>& outcomes,
                                const JournalRecords& journal, TimeNs weekStartNs,
                                std::size_t* alreadyEmpty);

// How one completed move of a vacate looked from both sides: vrmd's actual start and end
// against the source agent's (the journal: the VM turned migrating-out, then gone or parked).
// dispatch = agent start - vrmd start (the prepare-incoming round trip and the migrate command
// reaching the agent); completion = vrmd end - agent end (the result and the commit round
// trip). Under an accelerated clock each real millisecond of these costs `scale` ms of
// simulated time.
struct MoveTiming {
  std::string reservation, vm, mode;
  TimeNs agentStartNs = 0, agentEndNs = 0;
  double dispatchS = 0, completionS = 0;
  double predictedS = 0, agentS = 0, vrmdS = 0;
};
std::vector<MoveTiming> moveTimings(const std::vector<ReservationRecord>& rs,
                                    const JournalRecords& journal);

struct Violation {
  std::string kind;  // "overbooked", "double-booked", "lost", "duplicated", ...
  std::string detail;
};
// `endNs`: when the run ended (the inventories are judged there).
std::vector<Violation> checkInvariants(const std::vector<ReservationRecord>& rs,
                                       const ClusterSpec& cluster, const JournalRecords& journal);

// Seconds of [fromNs, toNs] during which `host`'s agent was down by the journal's agent records
// (a loss the week injected): 0 when it stayed up.
double agentDownS(const JournalRecords& journal, const std::string& host, TimeNs fromNs,
                  TimeNs toNs);

// A failure or rejection reason with hosts, VMs, ids, times and numbers blanked, so that
// reasons of one kind count together ("host H conflicts with reservation R").
std::string reasonKind(const std::string& reason);

// Median / quantile (linear interpolation) of `v`; 0 for an empty vector.
double quantileOf(std::vector<double> v, double q);

}  // namespace vrm::week
