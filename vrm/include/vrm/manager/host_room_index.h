// Which hosts may have room for a shared reservation's clones over a window, found without
// asking every host's calendar (issue 19: a first-fit walk over 10,000 hosts asked hundreds of
// full ones per admission). Time ahead is cut into fixed slots (an hour by default, from the
// slot holding now); for each host and slot it keeps the memory and cores left free at the
// slot's busiest instant, and for the time after the last slot the most left free at its least
// busy instant; for each block of hosts (in name order) the most of each over its hosts. A slot
// wholly inside the window that leaves a host less than the demand rules the host out: its free
// capacity over the window cannot be more. A block whose best host is ruled out by one slot is
// skipped whole. One of the units of vrmd's core; the AdmissionIndex owns one.
//
// Contract:
//  * Never hides a host with room: every host on which CapacityCalendar::free(host, from, to)
//    leaves at least the demand (memory and cores) is among the candidates, which come in host
//    name order (the hosts map's order). Candidates may lack room: the caller asks the calendar
//    exactly, and its bookings check stays the final word. So a first fit over the candidates
//    places exactly as one over every host.
//  * A cache derived from the hosts map (names and records, read only; hosts are only ever added,
//    as the Inventory's are) and the calendar (read only, capacities included). Whoever changes
//    a host's bookings says so (bookingsChanged(), with BookingProjection::takeChanges()) before
//    the next candidates(): a host not told keeps the slots it had. A host new to the map is
//    noticed by itself.
//  * Forgetting the past (CapacityCalendar::forgetBefore) needs no telling: it changes only
//    instants before the horizon, and no slot starting before the horizon rules anything out.
//    A clock set back only leaves fewer slots to rule with.
//  * Cost: memory 8 bytes per host and slot (1.5 KiB per host by default); a told host costs one
//    walk of its changes from the first slot on, at the next candidates(); moving into a new
//    slot costs every host a walk of its changes from the new slots on; candidates() costs the
//    blocks plus, in the blocks not skipped, the hosts times the slots looked at.
//  * Calls nothing back; decides nothing. Time is TimeNs (ns) passed in; half-open windows.
//  * Not thread-safe: one event loop (vrmd's) owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vrm/manager/booking_projection.h"
#include "vrm/manager/capacity_calendar.h"
#include "vrm/protocol/cluster.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

struct HostRoomOptions {
  // Length of a slot. A window rules with the slots wholly inside it: one shorter than two
  // slots may contain none (then only the time after the last slot rules). Default 1 h.
  TimeNs slotNs = 3600 * kNsPerSec;
  // Slots kept ahead, from the one holding now. Default 192 (8 days at 1 h).
  std::uint32_t slotCount = 192;
  // Hosts per block (consecutive in name order). Default 64.
  std::uint32_t blockHosts = 64;
  // Most slots a window looks at (spread evenly over those inside it). Default 32.
  std::uint32_t slotsPerQuery = 32;
};

class HostRoomIndex {
 public:
  // `hosts` (the inventory's) and `calendar` must outlive the index.
  HostRoomIndex(const std::map<std::string, HostRecord>& hosts, const CapacityCalendar& calendar,
                HostRoomOptions options = {});

  // The hosts whose bookings changed (rebuilt or rebooked): their slots are derived again at
  // the next candidates(). Hosts not in the hosts map are ignored.
  void bookingsChanged(const BookingChanges& changes);

  class Candidates;
  // The hosts that may leave `memoryBytes` and `cpuCores` free over [from, to), in name order
  // (see the contract), the slots brought up to date first; `nowNs` places the first slot.
  Candidates candidates(TimeNs from, TimeNs to, std::int64_t memoryBytes, std::int64_t cpuCores,
                        TimeNs nowNs);

  // Upper bounds of what a host leaves free in a slot (or after the last), in MiB (rounded up)
  // and cores; negative when overbooked.
  struct Room {
    std::int32_t memoryMiB = 0;
    std::int32_t cpuCores = 0;
  };

 private:
  struct Row {
    const HostRecord* host = nullptr;  // a node of the hosts map, stable
    std::vector<Room> slots;           // by slot number modulo slotCount (column())
    Room tail;                         // after the last slot
    std::size_t position = 0;          // in order_
    bool stale = true;                 // to be derived (listed in staleRows_)
  };
  // Up to date at `now`: the hosts laid out, the slots moved on, told hosts and their blocks
  // derived again.
  void refresh(TimeNs now);
  // Derives the row's slots numbered [first, base_ + slotCount) and its tail.
  void deriveRow(Row& row, std::int64_t first);
  void deriveBlock(std::size_t block);
  // The block's figures after `row`, one of its hosts, changed from `before` / `tailBefore`.
  void updateBlock(std::size_t block, const std::vector<Room>& before, const Room& tailBefore,
                   const Row& row);
  std::size_t column(std::int64_t slot) const;

  const std::map<std::string, HostRecord>& hosts_;
  const CapacityCalendar& calendar_;
  HostRoomOptions options_;

  std::map<std::string, Row> rows_;
  std::vector<Row*> order_;  // every host's row, in name order
  // Per block: the most any of its hosts leaves, per slot (as in Row::slots) and after.
  std::vector<std::vector<Room>> blockSlots_;
  std::vector<Room> blockTail_;
  std::vector<bool> blockStale_;
  std::vector<Row*> staleRows_;  // told since the last refresh
  std::vector<Room> before_;     // a row's slots before it is derived again (refresh)
  std::int64_t base_ = 0;        // number of the first slot kept
  bool started_ = false;         // base_ set by a first refresh

  friend class Candidates;
};

// The candidates of one query, in name order. Valid until the index is next used.
class HostRoomIndex::Candidates {
 public:
  // The next host that may have room; null when none is left.
  const HostRecord* next();
  // Hosts looked at one by one so far (those in skipped blocks are not).
  std::size_t hostsLookedAt() const { return looked_; }

 private:
  friend class HostRoomIndex;
  Candidates(const HostRoomIndex& index, std::vector<std::size_t> columns, bool tail, Room demand);
  // Whether the slots looked at (and the tail, when the window reaches it) leave less than the
  // demand in `slots` / `after`.
  bool ruledOut(const std::vector<Room>& slots, const Room& after) const;

  const HostRoomIndex* index_;
  std::vector<std::size_t> columns_;
  bool tail_;
  Room demand_;
  std::size_t next_ = 0;
  std::size_t looked_ = 0;
};

}  // namespace vrm::manager
