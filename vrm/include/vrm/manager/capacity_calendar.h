// Booked capacity per host over time: CPU cores, memory and NIC bandwidth, each a Boost.ICL
// interval_map of summed usage over half-open [from, to) intervals, plus exclusive windows
// (a dedicated reservation owns the whole host).
//
// Bookings are plain additions; the calendar does not know what they are for. The manager
// derives them from its state (VMs, plans, reservations) and rebuilds a host's bookings when
// that state changes, so the calendar never drifts from the truth it is derived from.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
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
  // The earliest instant after `now` from which free(host, t, kTimeInfinity) or
  // exclusiveOwner(host, t, kTimeInfinity) may differ from their value at t = now (the end of
  // the first booked segment still running at `now`); kTimeInfinity if never. Lets callers
  // cache "free from now on". Logarithmic in the host's segments.
  TimeNs stableUntil(const std::string& host, TimeNs now) const;

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
  HostCalendar& at(const std::string& host);
  const HostCalendar* find(const std::string& host) const;
  std::map<std::string, std::unique_ptr<HostCalendar>> hosts_;
};

}  // namespace vrm::manager
