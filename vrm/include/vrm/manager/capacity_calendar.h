// Booked capacity per host over time: CPU cores, memory and NIC bandwidth, each a Boost.ICL
// interval_map of summed usage over half-open [from, to) intervals, plus exclusive windows
// (a dedicated reservation owns the whole host).
//
// Bookings are plain additions; the calendar does not know what they are for. The manager
// derives them from its state (VMs, plans, reservations) and rebuilds a host's bookings when
// that state changes, so the calendar never drifts from the truth it is derived from.
//
// Cost: book, unbook, peak, free, overbooked, overbookedWithin and stableUntil are logarithmic
// in the host's booked changes (usageSteps plus the changes it lists), however many bookings
// overlap the window asked about and however much history the host keeps; exclusiveOwner is
// logarithmic plus the exclusive windows overlapping the window; worseThan and copyOf are linear in
// the host's bookings. forgetBefore() lets the past go (memory), without changing any answer about
// the present or the future. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vrm/protocol/time.h"

namespace vrm::manager {

// Earliest representable time: "since forever" for bookings of VMs already running.
inline constexpr TimeNs kTimeMinusInfinity = std::numeric_limits<TimeNs>::min() / 2;

struct Usage {
  std::int64_t cpuCores = 0;
  std::int64_t memoryBytes = 0;
  std::int64_t nicBytesPerSec = 0;

  Usage& operator+=(const Usage& o) {
    cpuCores += o.cpuCores;
    memoryBytes += o.memoryBytes;
    nicBytesPerSec += o.nicBytesPerSec;
    return *this;
  }
  bool fitsWithin(const Usage& cap) const {
    return cpuCores <= cap.cpuCores && memoryBytes <= cap.memoryBytes &&
           nicBytesPerSec <= cap.nicBytesPerSec;
  }
};

class CapacityCalendar {
 public:
  CapacityCalendar();
  ~CapacityCalendar();
  CapacityCalendar(CapacityCalendar&&) noexcept;
  CapacityCalendar& operator=(CapacityCalendar&&) noexcept;

  void setCapacity(const std::string& host, const Usage& capacity);
  Usage capacity(const std::string& host) const;
  // Drops every booking and exclusive window of `host` (capacity stays).
  void clearHost(const std::string& host);

  // Adds `usage` on [from, to); to = kTimeInfinity books forever. Empty intervals are ignored.
  void book(const std::string& host, TimeNs from, TimeNs to, const Usage& usage);
  // Takes back exactly what book() with the same arguments added (integer sums: the calendar
  // is then as if that booking had never been made).
  void unbook(const std::string& host, TimeNs from, TimeNs to, const Usage& usage);
  // Marks [from, to) as owned by `owner` alone.
  void bookExclusive(const std::string& host, TimeNs from, TimeNs to, const std::string& owner);

  // Highest booked usage at any instant of [from, to), per resource independently.
  Usage peak(const std::string& host, TimeNs from, TimeNs to) const;
  // The booked usage over [from, to) as steps (t, usage from t until the next step's t): the
  // first at `from`, then one at each change inside (from, to), in time order. Instants before
  // the horizon read as the horizon, as in peak(): the first step is then at the horizon. So
  // peak(host, a, b) for from <= a < b <= to is the highest of the step holding at a and those
  // inside (a, b), none below 0. An unknown host: one step of nothing. Empty when from >= to.
  // Logarithmic plus the changes inside the window (a caller deriving many windows at once
  // walks them once instead of asking peak() for each).
  std::vector<std::pair<TimeNs, Usage>> usageSteps(const std::string& host, TimeNs from,
                                                   TimeNs to) const;
  // capacity - peak over [from, to); components may be negative when overbooked.
  Usage free(const std::string& host, TimeNs from, TimeNs to) const;
  // An owner, other than `except`, of an exclusive window overlapping [from, to).
  std::optional<std::string> exclusiveOwner(const std::string& host, TimeNs from, TimeNs to,
                                            const std::string& except = "") const;
  // True when at some instant bookings exceed capacity, or an exclusive window overlaps
  // another exclusive window. `why` describes the first violation.
  bool overbooked(const std::string& host, std::string* why = nullptr) const;
  // The same, looking only at instants of [from, to): enough after bookings confined to that
  // window were added to a host that was not overbooked (same `why` as the full check).
  bool overbookedWithin(const std::string& host, TimeNs from, TimeNs to,
                        std::string* why = nullptr) const;
  // An instant after `now` before which free(host, t, kTimeInfinity) and
  // exclusiveOwner(host, t, kTimeInfinity) keep their value at t = now: the first instant after
  // `now` at which some booked usage falls, or an exclusive window ends; kTimeInfinity if none.
  // Lets callers cache "free from now on". Logarithmic in the host's bookings.
  TimeNs stableUntil(const std::string& host, TimeNs now) const;

  // The past: from now on every instant before `t` reads as `t` itself, on every host: usage,
  // peaks, exclusive owners, the overbooking checks (and the instant their messages name is no
  // earlier than `t`). Bookings that end at or before `t` are dropped, and the part before `t`
  // of the others is kept as one sum per host, so history costs no memory. Book and unbook stay
  // exact inverses. The horizon never moves back: forgetBefore(t2 < t) does nothing, and a
  // clock set back before `t` sees the calendar as at `t` (ask only what is safely past).
  // Constant time: each host lets its past go at its next change.
  void forgetBefore(TimeNs t);
  // The horizon set by forgetBefore(); kTimeMinusInfinity when nothing was forgotten.
  TimeNs forgottenBefore() const;

  // What the calendar holds, for memory accounting.
  struct Footprint {
    std::size_t changes = 0;            // usage changes kept (about two per booking)
    std::size_t usageBytes = 0;         // memory they take (the hosts' node pools)
    std::size_t exclusiveSegments = 0;  // segments of exclusive windows
  };
  Footprint footprint() const;

  // An opaque copy of one host's bookings, taken before adding some (see worseThan).
  class Bookings;
  std::shared_ptr<const Bookings> copyOf(const std::string& host) const;
  // For a host that was already overbooked when `before` was copied (agents reported more than
  // vrmd knew, a failed reservation's leftovers): true when, at some instant, the bookings now
  // exceed capacity and exceed what `before` booked then, or an exclusive window now overlaps
  // one it did not overlap in `before`. What was added may not deepen or widen an overbooking.
  bool worseThan(const std::string& host, const Bookings& before, std::string* why) const;

  std::vector<std::string> hosts() const;

 private:
  struct HostCalendar;
  // The host's calendar, created if new, its past let go up to the horizon first.
  HostCalendar& at(const std::string& host);
  const HostCalendar* find(const std::string& host) const;
  // A booking of [from, to) under the horizon: false when it lies wholly before it (nothing to
  // book), else `from` folded into the past when it starts at or before it.
  bool clampToHorizon(TimeNs& from, TimeNs to) const;
  // The window a query of [from, to) looks at: instants before the horizon read as it.
  std::pair<TimeNs, TimeNs> queried(TimeNs from, TimeNs to) const;

  std::map<std::string, std::unique_ptr<HostCalendar>> hosts_;
  TimeNs horizon_ = std::numeric_limits<TimeNs>::min();  // forgetBefore(); min = none
};

}  // namespace vrm::manager
