#include "vrm/manager/host_room_index.h"

// Why the bounds hold. The calendar's free capacity over a window is the capacity minus the
// peak of the usage over it, and the peak over a window is at least the peak over any slot
// wholly inside it (the slot's instants are the window's), and at least the usage at any of its
// instants, so at least the least usage after the last slot when the window reaches past it.
// A slot's value is the peak the calendar itself reads (its usageSteps, horizon included), so a
// slot starting at or after the horizon reads the same whenever it was derived, as long as the
// host's bookings did not change; the tail only grows as the horizon passes into it.
// Memory is rounded up to MiB and both figures are clamped towards more room, so a bound is
// never below the truth.
#include <algorithm>
#include <limits>
#include <utility>

namespace vrm::manager {
namespace {

constexpr std::int64_t kMiB = 1 << 20;

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
std::int64_t ceilDiv(std::int64_t a, std::int64_t b) { return -floorDiv(-a, b); }

std::int32_t clamp32(std::int64_t v) {
  return static_cast<std::int32_t>(std::clamp<std::int64_t>(
      v, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()));
}

HostRoomIndex::Room roomOf(const Usage& capacity, std::int64_t peakMemoryBytes,
                           std::int64_t peakCpuCores) {
  // peak() reads no usage below 0.
  const std::int64_t mem = capacity.memoryBytes - std::max<std::int64_t>(peakMemoryBytes, 0);
  const std::int64_t cores = capacity.cpuCores - std::max<std::int64_t>(peakCpuCores, 0);
  return {clamp32(ceilDiv(mem, kMiB)), clamp32(cores)};
}

bool lacks(const HostRoomIndex::Room& have, const HostRoomIndex::Room& want) {
  return have.memoryMiB < want.memoryMiB || have.cpuCores < want.cpuCores;
}

}  // namespace

HostRoomIndex::HostRoomIndex(const std::map<std::string, HostRecord>& hosts,
                             const CapacityCalendar& calendar, HostRoomOptions options)
    : hosts_(hosts), calendar_(calendar), options_(options) {
  options_.slotNs = std::max<TimeNs>(options_.slotNs, 1);
  options_.slotCount = std::max<std::uint32_t>(options_.slotCount, 1);
  options_.blockHosts = std::max<std::uint32_t>(options_.blockHosts, 1);
  options_.slotsPerQuery = std::max<std::uint32_t>(options_.slotsPerQuery, 1);
}

void HostRoomIndex::bookingsChanged(const BookingChanges& changes) {
  for (const auto* hosts : {&changes.rebuilt, &changes.rebooked}) {
    for (const auto& name : *hosts) {
      auto it = rows_.find(name);
      if (it == rows_.end() || it->second.stale) continue;  // new: laid out, derived later
      it->second.stale = true;
      staleRows_.push_back(&it->second);
    }
  }
}

std::size_t HostRoomIndex::column(std::int64_t slot) const {
  const auto n = static_cast<std::int64_t>(options_.slotCount);
  return static_cast<std::size_t>(((slot % n) + n) % n);
}

void HostRoomIndex::refresh(TimeNs now) {
  if (order_.size() != hosts_.size()) {  // hosts added: lay them out again, in name order
    order_.clear();
    order_.reserve(hosts_.size());
    auto rit = rows_.begin();
    for (const auto& [name, h] : hosts_) {
      if (rit == rows_.end() || rit->first != name) {
        rit = rows_.emplace_hint(rit, name, Row{});
        rit->second.slots.resize(options_.slotCount);
        staleRows_.push_back(&rit->second);
      }
      Row& row = rit->second;
      ++rit;
      row.host = &h;
      row.position = order_.size();
      order_.push_back(&row);
    }
    const std::size_t blocks = (order_.size() + options_.blockHosts - 1) / options_.blockHosts;
    blockSlots_.assign(blocks, std::vector<Room>(options_.slotCount));
    blockTail_.assign(blocks, Room{});
    blockStale_.assign(blocks, true);
  }
  const std::int64_t current = floorDiv(now, options_.slotNs);
  if (!started_) {
    base_ = current;
    started_ = true;
  } else if (current > base_) {
    // The slots now behind give their columns to the new ones at the far end.
    const std::int64_t oldEnd = base_ + options_.slotCount;
    const bool all = current - base_ >= static_cast<std::int64_t>(options_.slotCount);
    base_ = current;
    for (Row* row : order_) {
      if (row->stale) continue;
      if (all) {
        row->stale = true;
        staleRows_.push_back(row);
      } else {
        deriveRow(*row, oldEnd);
      }
    }
    std::fill(blockStale_.begin(), blockStale_.end(), true);
  }
  for (Row* row : staleRows_) {
    if (!row->stale) continue;  // told twice
    const std::size_t block = row->position / options_.blockHosts;
    if (blockStale_[block]) {  // derived whole below
      deriveRow(*row, base_);
      continue;
    }
    before_ = row->slots;
    const Room tailBefore = row->tail;
    deriveRow(*row, base_);
    updateBlock(block, before_, tailBefore, *row);
  }
  staleRows_.clear();
  for (std::size_t b = 0; b < blockStale_.size(); ++b) {
    if (blockStale_[b]) deriveBlock(b);
  }
}

void HostRoomIndex::deriveRow(Row& row, std::int64_t first) {
  const std::string& name = row.host->name;
  const TimeNs slot = options_.slotNs;
  const std::int64_t end = base_ + options_.slotCount;
  const Usage cap = calendar_.capacity(name);
  const auto steps = calendar_.usageSteps(name, first * slot, kTimeInfinity);
  std::size_t i = 0;
  Usage cur = steps.front().second;  // a window ending at infinity has a first step
  for (std::int64_t s = first; s < end; ++s) {
    const TimeNs a = s * slot, b = a + slot;
    // The step holding at a (a slot before the horizon reads wrong here; none is ever used).
    while (i < steps.size() && steps[i].first <= a) cur = steps[i++].second;
    std::int64_t mem = cur.memoryBytes, cores = cur.cpuCores;
    for (; i < steps.size() && steps[i].first < b; ++i) {
      cur = steps[i].second;
      mem = std::max(mem, cur.memoryBytes);
      cores = std::max(cores, cur.cpuCores);
    }
    row.slots[column(s)] = roomOf(cap, mem, cores);
  }
  const TimeNs after = end * slot;
  while (i < steps.size() && steps[i].first <= after) cur = steps[i++].second;
  std::int64_t mem = cur.memoryBytes, cores = cur.cpuCores;
  for (; i < steps.size(); ++i) {
    mem = std::min(mem, steps[i].second.memoryBytes);
    cores = std::min(cores, steps[i].second.cpuCores);
  }
  row.tail = roomOf(cap, mem, cores);
  row.stale = false;
}

void HostRoomIndex::deriveBlock(std::size_t block) {
  constexpr Room kLeast{std::numeric_limits<std::int32_t>::min(),
                        std::numeric_limits<std::int32_t>::min()};
  std::vector<Room>& best = blockSlots_[block];
  std::fill(best.begin(), best.end(), kLeast);
  Room tail = kLeast;
  const std::size_t from = block * options_.blockHosts;
  const std::size_t to = std::min(order_.size(), from + options_.blockHosts);
  for (std::size_t p = from; p < to; ++p) {
    const Row& row = *order_[p];
    for (std::size_t c = 0; c < best.size(); ++c) {
      best[c].memoryMiB = std::max(best[c].memoryMiB, row.slots[c].memoryMiB);
      best[c].cpuCores = std::max(best[c].cpuCores, row.slots[c].cpuCores);
    }
    tail.memoryMiB = std::max(tail.memoryMiB, row.tail.memoryMiB);
    tail.cpuCores = std::max(tail.cpuCores, row.tail.cpuCores);
  }
  blockTail_[block] = tail;
  blockStale_[block] = false;
}

void HostRoomIndex::updateBlock(std::size_t block, const std::vector<Room>& before,
                                const Room& tailBefore, const Row& row) {
  // A host's figure above its block's raises it; one that was the block's best and fell may
  // leave another host the best: that column is taken again over the block's hosts.
  const std::size_t from = block * options_.blockHosts;
  const std::size_t to = std::min(order_.size(), from + options_.blockHosts);
  auto update = [&](Room& best, const Room& was, const Room& now, auto&& again) {
    if (now.memoryMiB > best.memoryMiB) {
      best.memoryMiB = now.memoryMiB;
    } else if (now.memoryMiB < was.memoryMiB && was.memoryMiB == best.memoryMiB) {
      std::int32_t m = std::numeric_limits<std::int32_t>::min();
      for (std::size_t p = from; p < to; ++p) m = std::max(m, again(*order_[p]).memoryMiB);
      best.memoryMiB = m;
    }
    if (now.cpuCores > best.cpuCores) {
      best.cpuCores = now.cpuCores;
    } else if (now.cpuCores < was.cpuCores && was.cpuCores == best.cpuCores) {
      std::int32_t m = std::numeric_limits<std::int32_t>::min();
      for (std::size_t p = from; p < to; ++p) m = std::max(m, again(*order_[p]).cpuCores);
      best.cpuCores = m;
    }
  };
  std::vector<Room>& best = blockSlots_[block];
  for (std::size_t c = 0; c < best.size(); ++c) {
    update(best[c], before[c], row.slots[c],
           [c](const Row& r) -> const Room& { return r.slots[c]; });
  }
  update(blockTail_[block], tailBefore, row.tail,
         [](const Row& r) -> const Room& { return r.tail; });
}

HostRoomIndex::Candidates HostRoomIndex::candidates(TimeNs from, TimeNs to,
                                                    std::int64_t memoryBytes, std::int64_t cpuCores,
                                                    TimeNs nowNs) {
  refresh(nowNs);
  const TimeNs slot = options_.slotNs;
  const std::int64_t end = base_ + options_.slotCount;
  std::vector<std::size_t> columns;
  bool tail = false;
  if (from < to) {
    // The slots wholly inside [from, to), kept, and starting at or after the horizon.
    const std::int64_t lo =
        std::max(ceilDiv(std::max(from, calendar_.forgottenBefore()), slot), base_);
    const std::int64_t hi = std::min(floorDiv(to, slot), end);
    if (lo < hi) {
      const std::int64_t count = hi - lo;
      const std::int64_t asked = std::min<std::int64_t>(count, options_.slotsPerQuery);
      for (std::int64_t k = 0; k < asked; ++k) columns.push_back(column(lo + k * count / asked));
    }
    tail = to > end * slot;
  }
  const Room demand{clamp32(ceilDiv(memoryBytes, kMiB)), clamp32(cpuCores)};
  return Candidates(*this, std::move(columns), tail, demand);
}

HostRoomIndex::Candidates::Candidates(const HostRoomIndex& index, std::vector<std::size_t> columns,
                                      bool tail, Room demand)
    : index_(&index), columns_(std::move(columns)), tail_(tail), demand_(demand) {}

bool HostRoomIndex::Candidates::ruledOut(const std::vector<Room>& slots, const Room& after) const {
  for (const std::size_t c : columns_) {
    if (lacks(slots[c], demand_)) return true;
  }
  return tail_ && lacks(after, demand_);
}

const HostRecord* HostRoomIndex::Candidates::next() {
  const auto& order = index_->order_;
  const std::size_t block = index_->options_.blockHosts;
  while (next_ < order.size()) {
    if (next_ % block == 0) {
      const std::size_t b = next_ / block;
      if (ruledOut(index_->blockSlots_[b], index_->blockTail_[b])) {
        next_ += block;
        continue;
      }
    }
    const Row& row = *order[next_++];
    ++looked_;
    if (!ruledOut(row.slots, row.tail)) return row.host;
  }
  return nullptr;
}

}  // namespace vrm::manager
