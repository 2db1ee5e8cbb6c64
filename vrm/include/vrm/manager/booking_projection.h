// The capacity calendar derived from vrmd's state: each host's bookings follow from the VMs its
// agent reports, the reservations touching it (their moves, clones, exclusive windows and the
// way home of displaced VMs) and the drops of incoming VMs in flight. One of the units of vrmd's
// core (docs/architecture.md); the Manager owns one.
//
// Contract:
//  * Derived, never edited by hand: a host's bookings are rebuilt from those inputs, lazily, at
//    the next refresh() after touchHost(host), or touch(r) of a reservation touching it. Whoever
//    changes an input says so: the Manager touches the host of every HostChange with
//    bookingsStale and every reservation whose plan, moves or clones it changed.
//  * It reads its inputs (the inventory, the reservations, the command tracker's drops, the
//    templates), changes none of them and calls nothing back. What it changed it keeps for the
//    caches derived from the bookings (the admission views): takeChanges() returns the hosts
//    whose bookings changed since it was last called.
//  * The checks book a reservation tentatively and say whether a host it touches becomes
//    overbooked, and leave everything as it was: a reservation that is not among the
//    reservations is never added to them (the projection holds it aside while checking), and
//    one that is keeps its bookings only when told to (`keep`) and the check passed.
//  * A host already overbooked before a check (agents reported more than vrmd knew, an ended
//    reservation's leftovers) fails it only if the reservation makes the overbooking worse
//    (CapacityCalendar::worseThan).
//  * Time is the injected Clock's, TimeNs (ns); every interval is half-open [from, to).
//  * Not thread-safe: one event loop (vrmd's) owns it.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "vrm/manager/capacity_calendar.h"
#include "vrm/protocol/cluster.h"
#include "vrm/protocol/reservation.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

class CommandTracker;
class Inventory;

// Every host a reservation involves: its hosts, its vacate moves' sources and destinations, its
// clones' hosts (a teardown move goes between hosts its vacate move already named).
std::set<std::string> hostsTouchedBy(const Reservation& r);

// An ended reservation whose agents may still change a host (a running move or return, a clone
// being made): its effects stay booked until vrmd sees them settle.
bool stillActing(const Reservation& r);

// The hosts whose bookings changed since the last takeChanges().
struct BookingChanges {
  // Rebuilt from their inputs: their VMs or the reservations touching them may have changed.
  std::set<std::string> rebuilt;
  // Only some clones of a shared reservation booked or taken back (bookAdmittedShared, the
  // shared check): their VMs are as they were, their free capacity is not.
  std::set<std::string> rebooked;
};

// What a check found: the first violation (a host in name order), empty when none.
struct BookingCheck {
  std::string violation;  // "host H would be overbooked: ..."
  std::string host;       // the host it names

  bool ok() const { return violation.empty(); }
};

class BookingProjection {
 public:
  // Every reference must outlive the projection. `marginNs`: ManagerOptions::marginNs (a shared
  // reservation's clones start that long before they must answer).
  BookingProjection(const Clock& clock, const Inventory& inventory, const CommandTracker& commands,
                    const std::map<std::string, Reservation>& reservations,
                    const std::vector<TemplateSpec>& templates, TimeNs marginNs);

  // --- a reservation's times, as booked ---
  // When r starts being prepared: a dedicated one's latest safe start, a shared one's clone
  // start (its start - the template's clone time - the margin).
  TimeNs prepareAt(const Reservation& r) const;
  // When r's clones are planned to be made: after its vacate's planned makespan (dedicated).
  TimeNs cloneStart(const Reservation& r) const;
  // When r's clones are booked from: cloneStart, or later if a move of its vacate ends later.
  TimeNs clonesFrom(const Reservation& r) const;
  // The absolute window [start, end) of vacate move `m` of r: from its actual start once it
  // started, else as planned and as late as the latest-started move of its batch or before.
  std::pair<TimeNs, TimeNs> moveWindow(const Reservation& r, const Move& m) const;

  // --- what changed ---
  // r's plan, moves or clones changed (or r is new): every host it touches is rebuilt at the
  // next refresh(), and r is counted among the reservations touching them from now on.
  void touch(const Reservation& r);
  // Something the host's bookings are derived from changed (its record, its VMs, a drop).
  void touchHost(const std::string& host);
  // Rebuilds every host touched since the last refresh.
  void refresh();
  // The calendar lets go of the past (CapacityCalendar::forgetBefore): `now` is the caller's
  // clock, the Manager's at its tick. No answer about `now` or later changes, so no cache
  // derived from the bookings is told (a host overbooked only before `now` is checked again).
  void forgetBefore(TimeNs now);

  // --- the bookings ---
  // The calendar as it stands (call refresh() first to have it up to date).
  const CapacityCalendar& bookings() const { return calendar_; }
  // The calendar brought up to date.
  const CapacityCalendar& calendar();
  // Hosts receiving VMs of a planned or running move (of a live reservation, or a running one
  // of an ended one): derived with the bookings, brought up to date.
  const std::set<std::string>& receiving();
  // The reservations ever touched with a host among theirs, by id (some may have ended, or be
  // gone); empty for a host none touched.
  const std::set<std::string>& reservationsTouching(const std::string& host) const;
  // calendar().overbooked(host), remembered until the host is next rebuilt (a full scan of a
  // busy host is costly). Does not refresh.
  bool overbooked(const std::string& host);

  // Books the clones of shared reservation `r`, admitted just now, exactly as a rebuild of its
  // hosts would, without rebuilding them (they may hold thousands of bookings), and files r
  // under them. False, with nothing done, when one of its hosts is stale or already runs one of
  // its clones' ids: then touch(r) instead.
  [[nodiscard]] bool bookAdmittedShared(const Reservation& r, const TemplateSpec& tmpl);

  // --- checks (see the contract) ---
  // The reference check: r booked on every host it touches by rebuilding them, every one
  // checked over all time. `keep`: r is among the reservations and its new bookings stay
  // when the check passes (else they are derived again from the reservations as they are).
  BookingCheck check(const Reservation& r, bool keep);
  // A new shared reservation (no moves) adds only its clones on [cloneStart, end): booked,
  // that window checked, taken back. The same verdict and message as check(r, false). Empty
  // when it cannot be done that way (a host stale, a clone's id already on its host).
  std::optional<BookingCheck> checkNewShared(const Reservation& r, const TemplateSpec& tmpl);
  // A new dedicated reservation: its own hosts (vacated, cloned to) rebuilt with it, the hosts
  // only receiving its VMs given its bookings there for the check and checked from the first
  // of them on. The same verdict and message as check(r, false).
  BookingCheck checkNewDedicated(const Reservation& r);

  // The hosts whose bookings changed since the last call (see BookingChanges). Empties them.
  BookingChanges takeChanges();

 private:
  const TemplateSpec* findTemplate(const std::string& name) const;
  // The reservation `id`: the one held aside while it is checked, else the reservations'.
  const Reservation* find(const std::string& id) const;
  void rebuildHost(const std::string& host);
  // Books vacate move m of r on `host`'s NIC for the move's window.
  void bookMoveNic(const std::string& host, const Reservation& r, const Move& m);
  // r's clones booked (or taken back: `undo`) on [cloneStart, end), as rebuildHost books them.
  void bookSharedClones(const Reservation& r, const TemplateSpec& tmpl, bool undo);
  // Clones of r are not yet booked anywhere and can be booked without a rebuild.
  bool canBookSharedClones(const Reservation& r) const;

  const Clock& clock_;
  const Inventory& inventory_;
  const CommandTracker& commands_;
  const std::map<std::string, Reservation>& reservations_;
  const std::vector<TemplateSpec>& templates_;
  TimeNs marginNs_;

  CapacityCalendar calendar_;
  std::set<std::string> stale_;                            // touched, rebuilt at refresh()
  std::map<std::string, std::set<std::string>> touching_;  // host -> reservation ids
  std::set<std::string> receiving_;                        // derived in rebuildHost
  std::map<std::string, bool> overbooked_;                 // overbooked() since the rebuild
  const Reservation* checking_ = nullptr;                  // a new reservation being checked
  BookingChanges changes_;
};

}  // namespace vrm::manager
