// Deadline tracking of running vacates (seed 004, Algorithm 1): how long a vacate still needs,
// when to look again, whether it is behind, which moves a re-plan may replace, how the NICs
// shared with running moves are split, and which bandwidth caps the running migrations
// should carry. One of the units of vrmd's core (docs/architecture.md); the Manager owns one.
//
// Contract:
//  * The Replanner decides, the Manager acts: it plans nothing against the calendar, sends no
//    command and changes no reservation. It returns values (an Assessment, the moves a re-plan
//    may replace, NIC shares, the caps for the running moves, the cap changes to send) and the
//    Manager plans, books, issues and notes them, then tells the Replanner what it did
//    (countReplan, capSent).
//  * It owns the state of deadline tracking only: the latest progress report of each running
//    migration, the cap last sent to each, when each vacating reservation is next assessed and
//    how often it was re-planned. None of it is stored: after a restart progress reports come
//    again and the wanted caps are sent again (idempotent).
//  * Time is the injected Clock's, TimeNs (ns); rates are bytes/s.
//  * Not thread-safe: one event loop (vrmd's) owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "vrm/protocol/reservation.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

// The thresholds of deadline tracking; the Manager copies them from its ManagerOptions, whose
// fields of the same names document them.
struct DeadlineTrackingOptions {
  double warningRatio = 1.1;
  double dangerRatio = 1.0;
  TimeNs assessPeriodNs = 5 * kNsPerSec;
};

// A vacate found behind (timetodeadline / timeleft <= warningRatio) when assessed.
struct Assessment {
  TimeNs nowNs = 0;            // when assessed
  std::uint32_t batch = 0;     // the lowest unfinished batch
  TimeNs timeLeftNs = 0;       // projected time the vacate still needs (mean, not scaled)
  TimeNs deadlineNs = 0;       // when cloning must begin: start - clone time
  double quantileScale = 1.0;  // the plan's makespan at its quantile / its mean makespan
  double ratio = 0;            // ratioOf(timeLeftNs)

  // timetodeadline / timeleft at the plan's quantile, as admission judged: at the latest safe
  // start it is 1 + margin / makespan-at-quantile whatever the error distribution.
  double ratioOf(TimeNs timeLeftNs) const;
  // When the vacate is projected to end, at the plan's quantile.
  TimeNs projectedEndNs() const;
};

// The moves a re-plan replaces, chosen by selectRest.
struct RestSelection {
  std::set<MoveId> rest;
  TimeNs oldSpanNs = 0;    // the planned spans of their batches, added up
  std::uint32_t base = 0;  // the first batch of the new moves: after the moves that stay
};

// The vacate moves not started of batches >= `firstBatch` that `eligible` accepts; every
// other vacate move stays (a re-plan puts the new moves after the last batch of those).
RestSelection selectRest(const Reservation& r, std::uint32_t firstBatch,
                         const std::function<bool(const PlannedMove&)>& eligible);

// The moves of r's batches >= `batch`, split for the bandwidth-limit action: those not
// started (the re-plan's rest) and those running through NICs (parks use none).
struct AlongsideSplit {
  std::set<MoveId> rest;
  std::vector<MoveId> running;
};
AlongsideSplit splitAlongside(const Reservation& r, std::uint32_t batch);

// How each NIC that running moves share with the first batch of a re-plan is divided.
struct NicShares {
  std::map<std::string, double> share;  // host -> the share of each move through its NIC
  std::map<std::string, double> inUse;  // host -> what the running moves there keep
};
// `running`: r's running moves; `firstPlan`: the re-plan made on whole NICs, whose batch 0
// says how many new moves (k) start through each NIC at once. Each NIC with both is split
// evenly among its k + running moves. Empty: the new moves share no NIC with the running ones.
NicShares shareNics(const Reservation& r, const std::vector<MoveId>& running,
                    const std::vector<PlannedMove>& firstPlan,
                    const std::map<std::string, HostRecord>& hosts);

// A running move capped so that re-planned moves sharing its NICs get their shares.
struct RunningCap {
  MoveId move{};
  double capBytesPerSec = 0;  // PlannedMove::replanCapBytesPerSec
  TimeNs endOffsetNs = 0;     // PlannedMove::endOffsetNs: its predicted end, moved out
};
struct RunningCaps {
  std::vector<RunningCap> caps;  // in the order of `running`; only the moves on a shared NIC
  TimeNs timeLeftNs = 0;         // when the slowest running move ends from now, caps included
  double lowestCapBytesPerSec = 0;
};

// A bandwidth cap to send to a running migration (0: lift it).
struct CapChange {
  MoveId move{};
  double bytesPerSec = 0;
};

class Replanner {
 public:
  Replanner(const Clock& clock, DeadlineTrackingOptions options)
      : clock_(clock), options_(options) {}

  const DeadlineTrackingOptions& options() const { return options_; }

  // --- what the agents report ---
  // The latest progress of move `move` of reservation `reservationId` (a migration or a park):
  // `fraction` in [0, 1] of all its phases, reported now.
  void onProgress(const std::string& reservationId, MoveId move, double fraction);
  // The move ended (or was answered): its progress no longer projects anything.
  void forgetProgress(const std::string& reservationId, MoveId move);
  // The progress last reported, if any: (fraction, when).
  std::optional<std::pair<double, TimeNs>> progress(const std::string& reservationId,
                                                    MoveId move) const;

  // --- projections ---
  // Projected time move m of r still needs: a running move from its progress reports (or its
  // overrun), a planned one or a running one whose start is not known as planned, others 0.
  TimeNs moveTimeLeft(const Reservation& r, const Move& m) const;
  // Projected time the vacate still needs (mean, not scaled), with the lowest unfinished batch
  // (UINT32_MAX: none, and 0 left); `runningOnly`: only the moves of that batch already
  // running (when it would end if nothing else started).
  TimeNs projectedTimeLeft(const Reservation& r, std::uint32_t* runningBatch,
                           bool runningOnly = false) const;

  // --- assessing ---
  // A vacating reservation is assessed at its first call and then once every assessPeriodNs:
  // its projection, if it is behind (ratio <= warningRatio). Empty when not due, nothing is
  // left, or it is on time.
  std::optional<Assessment> assess(const Reservation& r);
  // When `reservationId` is next assessed; kTimeInfinity if it never was.
  TimeNs nextAssessNs(const std::string& reservationId) const;
  // At most three re-plans of each kind per reservation: a warning's (alongside the running
  // moves, or after them), and a danger's (the rest parked), counted apart.
  bool mayReplan(const std::string& reservationId) const;
  void countReplan(const std::string& reservationId);
  bool mayPark(const std::string& reservationId) const;
  void countPark(const std::string& reservationId);

  // --- the bandwidth-limit action ---
  // The caps of r's `running` moves that share a NIC in `share`, for a re-plan whose moves
  // start at `nowNs`: each at its smallest share, its predicted end moved out to what its bytes
  // left take at that rate.
  RunningCaps capRunning(const Reservation& r, const std::vector<MoveId>& running,
                         const std::map<std::string, double>& share, TimeNs nowNs) const;
  // For each running vacate move of r with a re-plan cap: the cap it should carry now (its cap
  // while another unfinished move of its batch shares one of its NICs, none once none does),
  // where that differs from the last sent. The caller sends only to a migration its source
  // runs, and records what it sent (capSent).
  std::vector<CapChange> capChanges(const Reservation& r) const;
  void capSent(const std::string& reservationId, MoveId move, double bytesPerSec);
  // Not known any more what the migration runs at (ended, or the cap was not delivered):
  // capChanges() proposes its cap again.
  void forgetCap(const std::string& reservationId, MoveId move);

 private:
  using MoveKey = std::pair<std::string, MoveId>;

  const Clock& clock_;
  DeadlineTrackingOptions options_;
  std::map<MoveKey, std::pair<double, TimeNs>> moveFractions_;  // -> (fraction, when)
  std::map<MoveKey, double> sentCaps_;  // -> bytes/s last sent (0 = uncapped)
  std::map<std::string, TimeNs> nextAssessNs_;
  std::map<std::string, int> replans_;
  std::map<std::string, int> parkReplans_;
};

}  // namespace vrm::manager
