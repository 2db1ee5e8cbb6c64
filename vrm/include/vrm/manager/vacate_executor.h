// Execution of a running vacate: starting its moves batch by batch, deadline tracking (seed
// 004's warning and danger ratios: ManagerOptions::warningRatio), re-planning the moves not
// started (after the running ones, alongside them with the running ones capped, or as parks),
// the bandwidth caps of running migrations, and planning around a lost destination. One of the
// units of vrmd's core (docs/architecture.md); the Manager owns one and applies what it returns.
//
// Contract:
//  * The executor drives one reservation per call, `r`, which must be the element of the
//    reservations the BookingProjection reads (the ReservationRegistry's, changed in place: its
//    compatibility path). It changes r in place (its moves' progress, its plan and moves when a
//    re-plan is kept, its events, its at-risk mark) and saves nothing: the caller persists r.
//  * Commands are returned, not sent: every command it wants issued comes back in
//    VacateEffects::commands, in order, and the Manager issues them (ids, deadlines, staging
//    while an op is performed) before its next call. So is what else the Manager must do: r
//    touched (advance it at the next tick), the deadlines of r's capped migrations to follow
//    their new predicted ends, the vacate over. What follows a failed move (the reservation
//    fails, or the teardown goes on) is returned by failMove(); it calls nothing back.
//  * A re-plan plans against the bookings without r's moves it replaces: it takes them off r,
//    touches and refreshes the projection, and puts r back as it was before it returns, so the
//    bookings are r's again. A re-plan kept is checked by the projection (the bookings must fit,
//    and no host it touches may become overbooked that was not); one that does not fit leaves r
//    as it was.
//  * It reads the inventory (hosts, VMs, whether an agent is ready) and the command tracker
//    (what is in flight), and writes the Replanner's state of deadline tracking (re-plans
//    counted, caps sent), the projection's bookings (touch, refresh, checks) and the admission
//    index's views (told what changed), as the Manager's other paths do.
//  * Time is the injected Clock's, TimeNs (ns); rates are bytes/s.
//  * Not thread-safe: one event loop (vrmd's) owns it.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "vrm/manager/admission_index.h"
#include "vrm/manager/booking_projection.h"
#include "vrm/manager/command_tracker.h"
#include "vrm/manager/inventory.h"
#include "vrm/manager/replanner.h"
#include "vrm/planner/vacate_planner.h"
#include "vrm/protocol/reservation.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

struct VacateOptions {
  // A re-plan plans at the quantile of r's plan, or at this one when r's has none (its
  // ManagerOptions field of the same name documents it). Default 0.95.
  double quantile = 0.95;
};

// A command for move `move` of the reservation driven, to be issued by the caller.
struct MoveCommand {
  AgentCommand command;
  CommandStep step = CommandStep::kPrepareIncoming;
  MoveId move{};
};

// What a call did besides changing r in place: for the caller to apply, in this order.
struct VacateEffects {
  // Commands to issue, in order (prepare-incoming, park, set-bandwidth).
  std::vector<MoveCommand> commands;
  // r's moves were replaced, or taken off and put back while re-planning (its bookings
  // touched): the next tick advances r.
  bool touched = false;
  // Running migrations of r were capped, so they take longer: the deadlines of r's pending
  // migrate commands follow their moves' new predicted ends (never earlier than they were).
  bool migrationsSlowed = false;
  // drive(): every vacate move has ended and r is preparing now (its vacate's error is known).
  bool vacated = false;
};

// What follows a failed move step (the caller marked the move failed).
enum class AfterMoveFailure {
  kFailReservation,  // a vacate move (or one no longer known): r fails with the reason
  kTeardownGoesOn,   // a teardown move: its VM stays where it is (noted); advance r
};

class VacateExecutor {
 public:
  // Every reference must outlive the executor. `vacateErrors`: the relative makespan errors of
  // completed vacates, which a re-plan's quantile is taken over.
  VacateExecutor(const Clock& clock, const planner::VacatePlanner& planner,
                 const Inventory& inventory, const CommandTracker& commands,
                 BookingProjection& projection, AdmissionIndex& index, Replanner& replanner,
                 const std::vector<double>& vacateErrors, VacateOptions options);

  // Advances vacating reservation r: the lowest batch with unfinished moves runs (a move whose
  // VM is gone from its source is skipped; a move waits while either of its agents is not
  // ready); the next starts when it is done; once none is left r is preparing (vacated). While
  // vacating it is assessed (once every assessPeriodNs) and, behind, re-planned or marked at
  // risk; then its running migrations get the caps they should carry (driveCaps).
  VacateEffects drive(Reservation& r);
  // Each running move of r with a re-plan cap gets the cap it should have now: its cap while
  // another unfinished move of its batch shares one of its NICs, none (0) once none does. Only
  // a migration its source runs (in flight, or seen migrating out) is sent one, and not while
  // an earlier cap's answer is awaited.
  VacateEffects driveCaps(Reservation& r);
  // Hosts `lost` became unreachable while r is vacating: its moves not started towards a lost
  // destination are re-planned from the end of the running ones (kept even if not faster), and
  // a lost host being vacated marks r at risk (its VMs move when its agent is back).
  VacateEffects aroundLostHosts(Reservation& r, const std::set<std::string>& lost);
  // Move `move` of r failed with `reason`: see AfterMoveFailure. A teardown move's failure is
  // noted on r here.
  AfterMoveFailure failMove(Reservation& r, MoveId move, const std::string& reason) const;

 private:
  struct Replan {
    bool replaced = false;
    std::string message;  // what happened ("" = nothing to re-plan)
  };

  void driveMoves(Reservation& r, VacateEffects& out);
  // Deadline tracking while vacating: acts on what the Replanner's assessment says.
  void assessVacate(Reservation& r, VacateEffects& out);
  // Re-plans the moves not started of batches >= `firstBatch` to start at `fromNs`, after the
  // moves that stay; keeps the new plan when its bookings fit and (unless `force`: a
  // destination was lost) it is at least 5% faster than the old. `park`: only the moves whose
  // VMs may be suspended are re-planned, as parks on their sources.
  Replan replanRemaining(Reservation& r, std::uint32_t firstBatch, TimeNs fromNs, bool force,
                         bool park, VacateEffects& out);
  // The bandwidth-limit action: the moves not started of batches >= `batch` re-planned to start
  // now, alongside the running moves, on the NIC bandwidth those leave them, and each running
  // move sharing a NIC with them capped at the share the new plan gives a move there. Kept
  // when its bookings fit and it ends at least 5% sooner than the current projection.
  Replan replanAlongsideRunning(Reservation& r, std::uint32_t batch, VacateEffects& out);
  // Plans the VMs of moves `rest` of r from `fromNs` (hosts' NICs reduced by `nicInUse`),
  // without r's moves `rest` in the calendar while planning. A VM left without a destination
  // is parked (if it allows it); `park`: every one is parked.
  Result<VacatePlan> planRest(Reservation& r, const std::set<MoveId>& rest, TimeNs fromNs,
                              const std::map<std::string, double>& nicInUse, bool park,
                              VacateEffects& out);
  // Replaces r's moves `rest` by `plan`'s, new moves with new ids at the end (batches from
  // `base`, times from `fromNs`); undone (false, with the violation) when the bookings do not
  // fit. `original` is r before.
  bool applyRest(Reservation& r, const Reservation& original, const std::set<MoveId>& rest,
                 const VacatePlan& plan, std::uint32_t base, TimeNs fromNs, std::string* violation,
                 VacateEffects& out);
  void driveCaps(Reservation& r, VacateEffects& out);
  // A command for `step` of `move` of r is pending, or among those this call returns.
  bool inFlight(const Reservation& r, CommandStep step, MoveId move,
                const VacateEffects& out) const;
  // The projection refreshed, then the admission index told which hosts' bookings changed.
  void refreshViews();
  // As the Manager records them: an event at the clock's now (a transition to `to`, or a note at
  // r's state).
  void transition(Reservation& r, ReservationState to, const std::string& message) const;
  void note(Reservation& r, const std::string& message) const;

  const Clock& clock_;
  const planner::VacatePlanner& planner_;
  const Inventory& inventory_;
  const CommandTracker& commands_;
  BookingProjection& projection_;
  AdmissionIndex& index_;
  Replanner& replanner_;
  const std::vector<double>& vacateErrors_;
  VacateOptions options_;
};

}  // namespace vrm::manager
