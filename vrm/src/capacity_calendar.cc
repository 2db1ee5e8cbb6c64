#include "vrm/manager/capacity_calendar.h"

// Boost.ICL stays inside this file: it is template-heavy and nothing else needs it.
#include <algorithm>
#include <boost/icl/interval_map.hpp>
#include <set>

namespace vrm::manager {

namespace icl = boost::icl;
using Interval = icl::right_open_interval<TimeNs>;
// Summed usage; segments that add back to 0 are absorbed (partial_absorber, the default).
using UsageMap = icl::interval_map<TimeNs, std::int64_t, icl::partial_absorber, std::less,
                                   icl::inplace_plus, icl::inter_section, Interval>;
// Owners of exclusive windows; a segment with two owners is a double booking.
using OwnerMap = icl::interval_map<TimeNs, std::set<std::string>, icl::partial_absorber, std::less,
                                   icl::inplace_plus, icl::inter_section, Interval>;

struct CapacityCalendar::HostCalendar {
  Usage capacity;
  UsageMap cpu, memory, nic;
  OwnerMap exclusive;
};

class CapacityCalendar::Bookings {
 public:
  explicit Bookings(const HostCalendar& h) : copy(h) {}
  HostCalendar copy;
};

namespace {

std::int64_t peakOf(const UsageMap& map, TimeNs from, TimeNs to) {
  std::int64_t peak = 0;
  auto range = map.equal_range(Interval(from, to));
  for (auto it = range.first; it != range.second; ++it) peak = std::max(peak, it->second);
  return peak;
}

template <typename Map>
std::pair<typename Map::const_iterator, typename Map::const_iterator> segments(const Map& map,
                                                                               TimeNs from,
                                                                               TimeNs to) {
  if (from == kTimeMinusInfinity && to == kTimeInfinity) return {map.begin(), map.end()};
  return map.equal_range(Interval(from, to));
}

// Upper bound of the first segment of `map` ending after `now`.
template <typename Map>
TimeNs firstEndAfter(const Map& map, TimeNs now) {
  auto it = map.lower_bound(Interval(now, now + 1));  // first segment with upper > now
  return it == map.end() ? kTimeInfinity : it->first.upper();
}

bool exceeds(const UsageMap& map, std::int64_t cap, const char* what, std::string* why,
             TimeNs from = kTimeMinusInfinity, TimeNs to = kTimeInfinity) {
  auto [begin, end] = segments(map, from, to);
  for (auto it = begin; it != end; ++it) {
    const auto& [iv, v] = *it;
    if (v > cap) {
      if (why) {
        *why = std::string(what) + " booked " + std::to_string(v) + " > capacity " +
               std::to_string(cap) + " from " + formatTime(iv.lower());
      }
      return true;
    }
  }
  return false;
}

}  // namespace

CapacityCalendar::CapacityCalendar() = default;
CapacityCalendar::~CapacityCalendar() = default;
CapacityCalendar::CapacityCalendar(CapacityCalendar&&) noexcept = default;
CapacityCalendar& CapacityCalendar::operator=(CapacityCalendar&&) noexcept = default;

CapacityCalendar::HostCalendar& CapacityCalendar::at(const std::string& host) {
  auto& slot = hosts_[host];
  if (!slot) slot = std::make_unique<HostCalendar>();
  return *slot;
}

const CapacityCalendar::HostCalendar* CapacityCalendar::find(const std::string& host) const {
  auto it = hosts_.find(host);
  return it == hosts_.end() ? nullptr : it->second.get();
}

void CapacityCalendar::setCapacity(const std::string& host, const Usage& capacity) {
  at(host).capacity = capacity;
}

Usage CapacityCalendar::capacity(const std::string& host) const {
  const HostCalendar* h = find(host);
  return h ? h->capacity : Usage{};
}

void CapacityCalendar::clearHost(const std::string& host) {
  HostCalendar& h = at(host);
  h.cpu.clear();
  h.memory.clear();
  h.nic.clear();
  h.exclusive.clear();
}

void CapacityCalendar::book(const std::string& host, TimeNs from, TimeNs to, const Usage& u) {
  if (from >= to) return;
  HostCalendar& h = at(host);
  Interval iv(from, to);
  if (u.cpuCores) h.cpu += std::make_pair(iv, u.cpuCores);
  if (u.memoryBytes) h.memory += std::make_pair(iv, u.memoryBytes);
  if (u.nicBytesPerSec) h.nic += std::make_pair(iv, u.nicBytesPerSec);
}

void CapacityCalendar::unbook(const std::string& host, TimeNs from, TimeNs to, const Usage& u) {
  book(host, from, to, {-u.cpuCores, -u.memoryBytes, -u.nicBytesPerSec});
}

void CapacityCalendar::bookExclusive(const std::string& host, TimeNs from, TimeNs to,
                                     const std::string& owner) {
  if (from >= to) return;
  at(host).exclusive += std::make_pair(Interval(from, to), std::set<std::string>{owner});
}

Usage CapacityCalendar::peak(const std::string& host, TimeNs from, TimeNs to) const {
  const HostCalendar* h = find(host);
  if (!h || from >= to) return {};
  return {peakOf(h->cpu, from, to), peakOf(h->memory, from, to), peakOf(h->nic, from, to)};
}

Usage CapacityCalendar::free(const std::string& host, TimeNs from, TimeNs to) const {
  Usage cap = capacity(host);
  Usage p = peak(host, from, to);
  return {cap.cpuCores - p.cpuCores, cap.memoryBytes - p.memoryBytes,
          cap.nicBytesPerSec - p.nicBytesPerSec};
}

std::optional<std::string> CapacityCalendar::exclusiveOwner(const std::string& host, TimeNs from,
                                                            TimeNs to,
                                                            const std::string& except) const {
  const HostCalendar* h = find(host);
  if (!h || from >= to) return std::nullopt;
  auto range = h->exclusive.equal_range(Interval(from, to));
  for (auto it = range.first; it != range.second; ++it) {
    for (const auto& owner : it->second) {
      if (owner != except) return owner;
    }
  }
  return std::nullopt;
}

bool CapacityCalendar::overbooked(const std::string& host, std::string* why) const {
  return overbookedWithin(host, kTimeMinusInfinity, kTimeInfinity, why);
}

std::shared_ptr<const CapacityCalendar::Bookings> CapacityCalendar::copyOf(
    const std::string& host) const {
  const HostCalendar* h = find(host);
  return std::make_shared<const Bookings>(h ? *h : HostCalendar{});
}

namespace {

// Where `after` books more than `before` and more than `cap`.
bool deeper(const UsageMap& after, const UsageMap& before, std::int64_t cap, const char* what,
            std::string* why) {
  UsageMap added = after;
  added -= before;
  for (const auto& [iv, v] : added) {
    if (v <= 0) continue;
    if (exceeds(after, cap, what, why, iv.lower(), iv.upper())) return true;
  }
  return false;
}

}  // namespace

bool CapacityCalendar::worseThan(const std::string& host, const Bookings& before,
                                 std::string* why) const {
  const HostCalendar* h = find(host);
  if (!h) return false;
  const HostCalendar& b = before.copy;
  if (deeper(h->cpu, b.cpu, h->capacity.cpuCores, "cpu cores", why) ||
      deeper(h->memory, b.memory, h->capacity.memoryBytes, "memory bytes", why) ||
      deeper(h->nic, b.nic, h->capacity.nicBytesPerSec, "nic bytes/s", why)) {
    return true;
  }
  for (const auto& [iv, owners] : h->exclusive) {
    if (owners.size() < 2) continue;
    std::set<std::string> had;
    auto range = b.exclusive.equal_range(iv);
    for (auto it = range.first; it != range.second; ++it)
      had.insert(it->second.begin(), it->second.end());
    for (const auto& o : owners) {
      if (had.count(o)) continue;
      if (why)
        *why = "exclusive window of " + o + " overlaps another from " + formatTime(iv.lower());
      return true;
    }
  }
  return false;
}

TimeNs CapacityCalendar::stableUntil(const std::string& host, TimeNs now) const {
  const HostCalendar* h = find(host);
  if (!h) return kTimeInfinity;
  return std::min({firstEndAfter(h->cpu, now), firstEndAfter(h->memory, now),
                   firstEndAfter(h->nic, now), firstEndAfter(h->exclusive, now)});
}

bool CapacityCalendar::overbookedWithin(const std::string& host, TimeNs from, TimeNs to,
                                        std::string* why) const {
  const HostCalendar* h = find(host);
  if (!h || from >= to) return false;
  if (exceeds(h->cpu, h->capacity.cpuCores, "cpu cores", why, from, to) ||
      exceeds(h->memory, h->capacity.memoryBytes, "memory bytes", why, from, to) ||
      exceeds(h->nic, h->capacity.nicBytesPerSec, "nic bytes/s", why, from, to)) {
    return true;
  }
  auto [begin, end] = segments(h->exclusive, from, to);
  for (auto it = begin; it != end; ++it) {
    const auto& [iv, owners] = *it;
    if (owners.size() > 1) {
      if (why) *why = "two exclusive owners from " + formatTime(iv.lower());
      return true;
    }
  }
  return false;
}

std::vector<std::string> CapacityCalendar::hosts() const {
  std::vector<std::string> out;
  for (const auto& [name, h] : hosts_) out.push_back(name);
  return out;
}

}  // namespace vrm::manager
