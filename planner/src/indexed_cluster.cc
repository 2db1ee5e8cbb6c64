// IndexedCluster: contract in vrm/planner/indexed_cluster.h.
#include "vrm/planner/indexed_cluster.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "indexed_cluster_impl.h"

namespace vrm::planner {

void peakBooked(const std::vector<CapacityBooking>& bookings, TimeNs now, std::int64_t& cpu,
                std::int64_t& mem, bool& exclusive) {
  std::vector<std::pair<TimeNs, int>> events;  // (time, +index+1 start / -(index+1) end)
  for (std::size_t i = 0; i < bookings.size(); ++i) {
    const auto& b = bookings[i];
    if (b.endNs <= now || b.endNs <= b.startNs) continue;
    if (b.exclusive) exclusive = true;
    events.push_back({std::max(b.startNs, now), static_cast<int>(i) + 1});
    events.push_back({b.endNs, -(static_cast<int>(i) + 1)});
  }
  // Ends sort before starts at the same instant: intervals are half-open.
  std::sort(events.begin(), events.end());
  std::int64_t c = 0, m = 0;
  cpu = mem = 0;
  for (const auto& [t, e] : events) {
    const auto& b = bookings[static_cast<std::size_t>(std::abs(e) - 1)];
    const int sign = e > 0 ? 1 : -1;
    c += sign * static_cast<std::int64_t>(b.cpuCores);
    m += sign * static_cast<std::int64_t>(b.memoryBytes);
    cpu = std::max(cpu, c);
    mem = std::max(mem, m);
  }
}

void IndexedCluster::Impl::derive(int h) {
  if (receivable[h]) groups[groupOf[h]].byRoom.erase({-roomMem[h], h});
  const HostSnapshot& host = hosts[h];
  std::int64_t cpu = 0, mem = 0;
  bool exclusive = false;
  peakBooked(host.bookings, nowNs, cpu, mem, exclusive);
  roomCpu[h] = std::max<std::int64_t>(0, static_cast<std::int64_t>(host.freeCpuCores) - cpu);
  roomMem[h] = std::max<std::int64_t>(0, static_cast<std::int64_t>(host.freeMemoryBytes) - mem);
  receivable[h] = host.canReceive && !exclusive;
  if (host.bookings.empty()) {
    withBookings.erase(h);
  } else {
    withBookings.insert(h);
  }
  auto key = std::make_pair(host.nicBandwidthBytesPerSec, linksOfHost[h]);
  auto [it, added] = groupByKey.emplace(key, static_cast<int>(groups.size()));
  if (added) groups.push_back(Group{key.first, key.second, {}});
  groupOf[h] = it->second;
  if (receivable[h]) groups[groupOf[h]].byRoom.insert({-roomMem[h], h});
}

namespace {

Status checkNic(const HostSnapshot& host) {
  if (!(host.nicBandwidthBytesPerSec > 0) || !std::isfinite(host.nicBandwidthBytesPerSec)) {
    return Status::invalid("host '" + host.name + "': NIC bandwidth must be positive");
  }
  return Status::ok();
}

}  // namespace

Result<IndexedCluster> IndexedCluster::create(std::vector<HostSnapshot> hosts,
                                              std::vector<SharedLink> links, TimeNs nowNs) {
  auto ix = std::make_unique<Impl>();
  ix->hosts = std::move(hosts);
  ix->links = std::move(links);
  ix->nowNs = nowNs;
  const int n = ix->hostCount();
  ix->hostIndex.reserve(static_cast<std::size_t>(n));
  for (int h = 0; h < n; ++h) {
    const HostSnapshot& host = ix->hosts[h];
    if (!ix->hostIndex.emplace(host.name, h).second) {
      return Status::invalid("duplicate host '" + host.name + "'");
    }
    if (Status s = checkNic(host); !s) return s;
  }
  ix->linksOfHost.resize(n);
  for (std::size_t l = 0; l < ix->links.size(); ++l) {
    const SharedLink& link = ix->links[l];
    if (!(link.bandwidthBytesPerSec > 0) || !std::isfinite(link.bandwidthBytesPerSec)) {
      return Status::invalid("link '" + link.name + "': bandwidth must be positive");
    }
    for (const auto& name : link.hosts) {
      auto it = ix->hostIndex.find(name);
      if (it == ix->hostIndex.end()) {
        return Status::invalid("link '" + link.name + "' names unknown host '" + name + "'");
      }
      ix->linksOfHost[it->second].push_back(static_cast<int>(l));
    }
  }
  for (auto& l : ix->linksOfHost) {
    std::sort(l.begin(), l.end());
    l.erase(std::unique(l.begin(), l.end()), l.end());
  }
  if (!ix->links.empty() && ix->links.size() <= 64) {
    ix->linkMask.assign(n, 0);
    for (int h = 0; h < n; ++h) {
      for (int l : ix->linksOfHost[h]) ix->linkMask[h] |= std::uint64_t{1} << l;
    }
  }
  ix->roomCpu.assign(n, 0);
  ix->roomMem.assign(n, 0);
  ix->receivable.assign(n, 0);
  ix->groupOf.assign(n, 0);
  for (int h = 0; h < n; ++h) ix->derive(h);
  return IndexedCluster(std::move(ix));
}

IndexedCluster::IndexedCluster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IndexedCluster::IndexedCluster(IndexedCluster&&) noexcept = default;
IndexedCluster& IndexedCluster::operator=(IndexedCluster&&) noexcept = default;
IndexedCluster::~IndexedCluster() = default;

Status IndexedCluster::updateHost(HostSnapshot host) {
  auto it = impl_->hostIndex.find(host.name);
  if (it == impl_->hostIndex.end()) {
    return Status::notFound("host '" + host.name + "' is not in the indexed cluster");
  }
  if (Status s = checkNic(host); !s) return s;
  impl_->hosts[it->second] = std::move(host);
  impl_->derive(it->second);
  return Status::ok();
}

void IndexedCluster::setNow(TimeNs nowNs) {
  if (nowNs == impl_->nowNs) return;
  impl_->nowNs = nowNs;
  const std::vector<int> hosts(impl_->withBookings.begin(), impl_->withBookings.end());
  for (int h : hosts) impl_->derive(h);
}

TimeNs IndexedCluster::nowNs() const { return impl_->nowNs; }
std::size_t IndexedCluster::size() const { return impl_->hosts.size(); }
const std::vector<HostSnapshot>& IndexedCluster::hosts() const { return impl_->hosts; }
const std::vector<SharedLink>& IndexedCluster::links() const { return impl_->links; }

const HostSnapshot* IndexedCluster::find(std::string_view name) const {
  auto it = impl_->hostIndex.find(std::string(name));
  return it == impl_->hostIndex.end() ? nullptr : &impl_->hosts[it->second];
}

}  // namespace vrm::planner
