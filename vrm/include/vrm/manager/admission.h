// Admission: whether a new reservation fits, and with which plan. A dedicated reservation gets
// hosts to vacate (tried cheapest vacate first), the vacate plan, its latest safe start and its
// clones' places; a shared one gets its clones' places. One of the units of vrmd's core
// (docs/architecture.md); the Manager owns one and applies what it decides.
//
// Contract:
//  * Admission decides and the Manager acts: decide() returns an AdmissionDecision (admitted
//    with its plan, or refused with the reason and, when known, the earliest start that would
//    fit). It changes no reservation, stores nothing, sends nothing and calls nothing back:
//    the Manager records the decision (the transition and its event), stores and books it.
//  * It reads the inventory's hosts, the reservations, the bookings (BookingProjection) and the
//    admission views (AdmissionIndex), which the caller has brought up to date (the calendar
//    refreshed, the index told what changed: Manager::refreshViews) before decide(). It writes
//    to none of them, except through the projection's tentative checks, which leave the
//    bookings as they were (BookingProjection's contract), and the index's caches (a shared
//    decision tells the index what the projection's last refresh changed, if anything).
//  * The candidate is new: not among the reservations (a re-admission takes the old one off
//    first). Move ids are given from its nextMoveId; a refused plan's ids are given back.
//  * Two paths with the same decisions (AdmissionEquivalenceTest): kIndexed, vrmd's, plans from
//    the AdmissionIndex's index kept across admissions and checks a dedicated reservation by
//    rebuilding only its own hosts, and places a shared one's clones on the hosts that the
//    index of hosts with room (HostRoomIndex) offers; kFullSnapshot, the reference for that
//    test, plans from a snapshot of every host, checks by rebuilding every host it touches and
//    places clones by asking every host (slow at thousands of hosts). Both place first fit in
//    host-name order (HostRoomIndexTest.SharedPlacesAsTheWalkOverEveryHost).
//  * Time is TimeNs (ns) passed in (the Manager's clock); intervals are half-open [from, to).
//  * Not thread-safe: one event loop (vrmd's) owns it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "vrm/manager/admission_index.h"
#include "vrm/manager/booking_projection.h"
#include "vrm/planner/vacate_planner.h"
#include "vrm/protocol/cluster.h"
#include "vrm/protocol/reservation.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

enum class AdmissionPath {
  kIndexed,       // vrmd's: the indexes kept across admissions, the checks of the own hosts
  kFullSnapshot,  // the reference AdmissionEquivalenceTest checks kIndexed against
};

struct AdmissionOptions {
  // ManagerOptions' fields of the same names document them.
  TimeNs marginNs = 60 * kNsPerSec;
  TimeNs planningLatencyNs = kNsPerSec;
  double quantile = 0.95;
  AdmissionPath path = AdmissionPath::kIndexed;
};

// What admission decided about a candidate.
struct AdmissionDecision {
  bool admitted = false;
  // The candidate as decided: admitted, with its plan, moves, hosts and clones; refused, with
  // what a refusal keeps of them (a dedicated one none; a shared one its plan's times). Its
  // state and events are as they were given: the Manager records the decision.
  Reservation reservation;
  // The event's message when admitted ("admitted on h1, h2; ..."), the reason when refused.
  std::string message;
  // Refused: the earliest start at which the same request would be in time (0: not known).
  TimeNs earliestFeasibleStartNs = 0;
};

class Admission {
 public:
  // Every reference must outlive the admission. `hosts`: the inventory's; `vacateErrors`: the
  // relative makespan errors of completed vacates (the latest safe start's quantile).
  Admission(const planner::VacatePlanner& planner, const std::map<std::string, HostRecord>& hosts,
            const std::map<std::string, Reservation>& reservations, BookingProjection& projection,
            AdmissionIndex& index, const std::vector<double>& vacateErrors,
            AdmissionOptions options);

  // Decides on `candidate` (validated: its request names known hosts, a template `tmpl`, a
  // window after now) at `nowNs`. See the contract.
  AdmissionDecision decide(Reservation candidate, const TemplateSpec& tmpl, TimeNs nowNs);

 private:
  AdmissionDecision decideDedicated(Reservation r, const TemplateSpec& tmpl, TimeNs now);
  AdmissionDecision decideShared(Reservation r, const TemplateSpec& tmpl, TimeNs now);
  // Books new reservation r tentatively and says whether a host it touches becomes
  // overbooked, leaving the bookings as they were (the path's check).
  BookingCheck check(const Reservation& r, const TemplateSpec& tmpl);

  const planner::VacatePlanner& planner_;
  const std::map<std::string, HostRecord>& hosts_;
  const std::map<std::string, Reservation>& reservations_;
  BookingProjection& projection_;
  AdmissionIndex& index_;
  const std::vector<double>& vacateErrors_;
  AdmissionOptions options_;
};

}  // namespace vrm::manager
