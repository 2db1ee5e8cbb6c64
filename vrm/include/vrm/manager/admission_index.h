// What admission plans from: every host as the planner sees it from now on (its capacity, what
// stays free of it after every booking, whether it may receive VMs), the VMs a vacate of each
// host would move, and the planner's index of all of them, kept across admissions so that only
// the hosts that changed are derived and indexed again; and the index of the hosts with room
// over a window (HostRoomIndex) that shared admission places from, told of the same changes.
// One of the units of vrmd's core (docs/architecture.md); the Manager owns one.
//
// Contract:
//  * A cache derived from the Inventory's hosts and VMs and the capacity calendar, both read
//    only. Whoever changes the bookings says which hosts changed (bookingsChanged(), with the
//    BookingProjection's takeChanges()); a host whose record or VMs changed has its bookings
//    rebuilt, so it is among those. The views of other hosts are derived again only when the
//    calendar says their free capacity may change (CapacityCalendar::stableUntil) or the clock
//    went back before they were computed.
//  * The calendar must be up to date (BookingProjection::refresh()) and its changes told
//    before snapshot() or cluster() is called: they read it.
//  * Whether a host may receive a candidate's VMs (reachable, no exclusive window from now on
//    other than the candidate's own) is decided per candidate, never cached for another.
//  * Decides nothing and changes nothing outside itself; calls nothing back.
//  * Time is TimeNs (ns) passed in (the Manager's clock); intervals are half-open [from, to).
//  * Not thread-safe: one event loop (vrmd's) owns it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "vrm/manager/booking_projection.h"
#include "vrm/manager/capacity_calendar.h"
#include "vrm/manager/host_room_index.h"
#include "vrm/planner/indexed_cluster.h"
#include "vrm/planner/vacate_planner.h"
#include "vrm/protocol/cluster.h"
#include "vrm/protocol/reservation.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

class Inventory;

class AdmissionIndex {
 public:
  // `inventory` and `bookings` (the BookingProjection's calendar) must outlive the index.
  // `room`: the slots and blocks of hostsWithRoom() (defaults: HostRoomOptions).
  AdmissionIndex(const Inventory& inventory, const CapacityCalendar& bookings,
                 HostRoomOptions room = {});

  // The hosts whose bookings changed (BookingProjection::takeChanges()): a rebuilt host's VMs
  // and free capacity are derived again, a rebooked one's free capacity; both are told to
  // hostsWithRoom().
  void bookingsChanged(const BookingChanges& changes);

  // The hosts that may have room over a window, in name order (shared admission's first fit).
  HostRoomIndex& hostsWithRoom() { return room_; }

  // Every host (in name order) as the planner sees it from `nowNs` on, canReceive decided for
  // `candidate`; VMs are left out (a plan only needs those of the hosts it vacates:
  // vmsToVacate). Only hosts whose view changed are computed.
  planner::VacateRequest snapshot(const Reservation& candidate, TimeNs nowNs);

  // The same hosts as snapshot(), in the planner's index kept across calls: only the hosts
  // whose view or reachability changed are indexed again. `candidateBooked`: the candidate is
  // among the reservations and may own exclusive windows (a re-plan): canReceive is then
  // decided for it on every host. `planNowNs`: the plans' VacateRequest::nowNs. Null when the
  // hosts cannot be indexed (a NIC without bandwidth): plan from snapshot() instead. The
  // pointer is valid until the next call.
  const planner::IndexedCluster* cluster(const Reservation& candidate, bool candidateBooked,
                                         TimeNs nowNs, TimeNs planNowNs);

  // The VMs a vacate of `hosts` moves, in the cluster's order (as a full snapshot lists them):
  // the VMs the inventory lists on them, without incoming VMs and other reservations' clones.
  // Those of hosts not viewed yet (no snapshot() or cluster() since they registered) are not
  // known: none.
  std::vector<planner::VmSnapshot> vmsToVacate(std::vector<std::string> hosts) const;

  // Every host viewed, cheapest vacate first: (bytes a vacate moves, name). Up to date after
  // snapshot() or cluster(): the order in which admission tries dedicated candidates.
  const std::set<std::pair<std::uint64_t, std::string>>& byVacateBytes() const {
    return byVacateBytes_;
  }

 private:
  // Per host, what snapshot() needs, cached. vmsStale when the host was rebuilt (inventory or
  // reservations changed); the free capacity and exclusive owner "from now on" are kept until
  // the calendar's stableUntil() or a booking change (both told by bookingsChanged()).
  struct HostView {
    bool vmsStale = true;
    bool freeStale = true;
    TimeNs computedAt = 0;
    TimeNs validUntil = 0;
    planner::HostSnapshot snap;  // canReceive is decided per call (reachability, candidate)
    std::optional<std::string> exclusiveOwner;  // first owner of a window in [computedAt, inf)
    std::vector<planner::VmSnapshot> vms;       // what a vacate of the host moves
    std::uint64_t vacateBytes = 0;              // planner::vacateBytes of the host
    bool indexStale = true;          // snap changed since cluster_ last took it (indexDue_)
    bool indexedCanReceive = false;  // the canReceive cluster_ holds for the host
    bool ranked = false;             // (vacateBytes, name) is in byVacateBytes_
    bool expires = false;            // (validUntil, name) is in viewExpiries_
  };
  // Brings `name`'s view up to date at `now`; canReceive is left to the caller.
  void refreshView(const std::string& name, const HostRecord& h, HostView& v, TimeNs now);
  // Whether `name` can receive VMs planned for `candidate` (reachable, no exclusive window).
  bool canReceive(const std::string& name, const HostRecord& h, const HostView& v,
                  const Reservation& candidate, TimeNs now) const;

  const Inventory& inventory_;
  const std::map<std::string, HostRecord>& hosts_;  // the inventory's
  const CapacityCalendar& calendar_;

  std::map<std::string, HostView> views_;
  // The planner's index of every host (cluster()), and the dedicated candidates in the order
  // admission tries them: fewest bytes to move, then by name.
  std::optional<planner::IndexedCluster> cluster_;
  std::set<std::pair<std::uint64_t, std::string>> byVacateBytes_;
  // What cluster() must look at instead of every host: views marked stale since it last ran,
  // views whose free capacity expires (validUntil, host), views whose snapshot changed since
  // cluster_ took it, and every host's reachability as cluster_ last saw it.
  std::set<std::string> viewsDue_;
  std::set<std::pair<TimeNs, std::string>> viewExpiries_;
  std::set<std::string> indexDue_;
  struct HostSlot {
    const std::string* name;
    const HostRecord* host;  // nodes of hosts_, stable (Inventory)
    HostView* view;          // nodes of views_, stable
    bool reachable;
  };
  std::vector<HostSlot> hostSlots_;
  // The latest `now` a view was computed at: a clock set back before it makes every view
  // suspect (refreshView recomputes a view computed in the future).
  TimeNs latestView_ = 0;
  bool candidateSpecific_ = false;  // cluster_ holds canReceive decided for one candidate
  HostRoomIndex room_;
};

}  // namespace vrm::manager
