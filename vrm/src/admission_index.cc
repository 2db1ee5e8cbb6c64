#include "vrm/manager/admission_index.h"

#include <algorithm>

#include "vrm/manager/inventory.h"
#include "vrm/planner/vm_adapter.h"

namespace vrm::manager {

AdmissionIndex::AdmissionIndex(const Inventory& inventory, const CapacityCalendar& bookings,
                               HostRoomOptions room)
    : inventory_(inventory),
      hosts_(inventory.hosts()),
      calendar_(bookings),
      room_(inventory.hosts(), bookings, room) {}

void AdmissionIndex::bookingsChanged(const BookingChanges& changes) {
  room_.bookingsChanged(changes);
  for (const auto& host : changes.rebuilt) {
    if (auto v = views_.find(host); v != views_.end()) {
      v->second.vmsStale = true;
      viewsDue_.insert(host);
    }
  }
  for (const auto& host : changes.rebooked) {
    if (auto v = views_.find(host); v != views_.end()) {
      v->second.freeStale = true;
      viewsDue_.insert(host);
    }
  }
}

void AdmissionIndex::refreshView(const std::string& name, const HostRecord& h, HostView& v,
                                 TimeNs now) {
  if (v.vmsStale) {
    v.snap.name = name;
    v.snap.cpuCores = h.cpuCores;
    v.snap.memoryBytes = h.memoryBytes;
    v.snap.nicBandwidthBytesPerSec = h.nicBandwidthBytesPerSec;
    v.vms.clear();
    if (v.ranked) byVacateBytes_.erase({v.vacateBytes, name});
    v.vacateBytes = 0;
    {
      for (const auto& vm : inventory_.vmsOn(name)) {
        if (vm.state == VmState::kIncoming) continue;  // counted on its source
        // Another reservation's clone leaves when that reservation ends, which the exclusive
        // windows and shared-clone checks place before any vacate of this host.
        if (!vm.reservationId.empty()) continue;
        planner::VmSnapshot vs = planner::toVmSnapshot(vm);
        vs.host = name;
        v.vacateBytes += vs.nonzeroMemoryBytes;
        v.vms.push_back(std::move(vs));
      }
    }
    byVacateBytes_.insert({v.vacateBytes, name});
    v.ranked = true;
    v.vmsStale = false;
    v.freeStale = true;
  }
  if (v.freeStale || now < v.computedAt || now >= v.validUntil) {
    // What stays free from now on, after every booking (VMs, incoming moves, clones).
    // Displaced VMs stay where they land, so a destination must also be free of exclusive
    // windows forever: another reservation's vacate plan would not know about the newcomer.
    Usage free = calendar_.free(name, now, kTimeInfinity);
    v.snap.freeMemoryBytes =
        static_cast<std::uint64_t>(std::max<std::int64_t>(free.memoryBytes, 0));
    v.snap.freeCpuCores = static_cast<std::uint32_t>(std::max<std::int64_t>(free.cpuCores, 0));
    v.exclusiveOwner = calendar_.exclusiveOwner(name, now, kTimeInfinity);
    v.computedAt = now;
    latestView_ = std::max(latestView_, now);
    if (v.expires) viewExpiries_.erase({v.validUntil, name});
    v.validUntil = calendar_.stableUntil(name, now);
    v.expires = v.validUntil != kTimeInfinity;
    if (v.expires) viewExpiries_.insert({v.validUntil, name});
    v.freeStale = false;
    v.indexStale = true;
    indexDue_.insert(name);
  }
}

bool AdmissionIndex::canReceive(const std::string& name, const HostRecord& h, const HostView& v,
                                const Reservation& candidate, TimeNs now) const {
  bool exclusive = v.exclusiveOwner.has_value();
  if (exclusive && *v.exclusiveOwner == candidate.id) {  // rare: ask without the candidate
    exclusive = calendar_.exclusiveOwner(name, now, kTimeInfinity, candidate.id).has_value();
  }
  return h.reachable && !exclusive;
}

planner::VacateRequest AdmissionIndex::snapshot(const Reservation& candidate, TimeNs nowNs) {
  planner::VacateRequest req;
  const TimeNs now = nowNs;
  req.hosts.reserve(hosts_.size());
  auto vit = views_.begin();
  for (const auto& [name, h] : hosts_) {
    // views_ holds a subset of hosts_'s names, walked in step: no lookups.
    if (vit == views_.end() || vit->first != name) vit = views_.emplace_hint(vit, name, HostView{});
    HostView& v = vit->second;
    ++vit;
    refreshView(name, h, v, now);
    req.hosts.push_back(v.snap);
    req.hosts.back().canReceive = canReceive(name, h, v, candidate, now);
  }
  return req;
}

const planner::IndexedCluster* AdmissionIndex::cluster(const Reservation& candidate,
                                                       bool candidateBooked, TimeNs now,
                                                       TimeNs planNowNs) {
  // Hosts are only ever added: a new one means a new index.
  const bool rebuild = !cluster_ || cluster_->size() != hosts_.size();
  // A candidate already booked may own exclusive windows, which it does not conflict with:
  // canReceive is then decided for it, for every host (rare: re-planning).
  const bool ownsWindows = candidateBooked;
  auto index = [&](const std::string& name, const HostRecord& h, HostView& v) -> Status {
    const bool receive = canReceive(name, h, v, candidate, now);
    if (!v.indexStale && receive == v.indexedCanReceive) return Status::ok();
    planner::HostSnapshot snap = v.snap;
    snap.canReceive = receive;
    if (Status s = cluster_->updateHost(std::move(snap)); !s) return s;
    v.indexStale = false;
    v.indexedCanReceive = receive;
    return Status::ok();
  };
  auto fail = [&] {  // plan from snapshot() this time; index again next time
    cluster_.reset();
    return nullptr;
  };
  if (rebuild || ownsWindows || candidateSpecific_ || now < latestView_) {
    // Every host: refresh its view, index it when it changed.
    std::vector<planner::HostSnapshot> all;
    if (rebuild) {
      cluster_.reset();
      all.reserve(hosts_.size());
    } else {
      cluster_->setNow(planNowNs);
    }
    hostSlots_.clear();
    hostSlots_.reserve(hosts_.size());
    auto vit = views_.begin();
    for (const auto& [name, h] : hosts_) {
      if (vit == views_.end() || vit->first != name) {
        vit = views_.emplace_hint(vit, name, HostView{});
      }
      HostView& v = vit->second;
      ++vit;
      hostSlots_.push_back({&name, &h, &v, h.reachable});
      refreshView(name, h, v, now);
      if (!rebuild) {
        if (!index(name, h, v)) return fail();
        continue;
      }
      v.indexStale = false;
      v.indexedCanReceive = canReceive(name, h, v, candidate, now);
      all.push_back(v.snap);
      all.back().canReceive = v.indexedCanReceive;
    }
    if (rebuild) {
      auto ix = planner::IndexedCluster::create(std::move(all), {}, planNowNs);
      if (!ix) return fail();
      cluster_ = std::move(*ix);
    }
    viewsDue_.clear();
    indexDue_.clear();
    candidateSpecific_ = ownsWindows;
    return &*cluster_;
  }
  // Only what changed: views marked stale or expired, hosts whose reachability changed.
  cluster_->setNow(planNowNs);
  auto refresh = [&](const std::string& name) {
    auto h = hosts_.find(name);
    if (h != hosts_.end()) refreshView(name, h->second, views_[name], now);
  };
  const std::vector<std::string> due(viewsDue_.begin(), viewsDue_.end());
  viewsDue_.clear();
  for (const auto& name : due) refresh(name);
  while (!viewExpiries_.empty() && viewExpiries_.begin()->first <= now) {
    const std::string name = viewExpiries_.begin()->second;
    auto h = hosts_.find(name);
    if (h == hosts_.end()) {
      viewExpiries_.erase(viewExpiries_.begin());
      continue;
    }
    refreshView(name, h->second, views_[name], now);  // replaces its entry by a later one
  }
  for (auto& slot : hostSlots_) {
    if (slot.host->reachable == slot.reachable) continue;
    slot.reachable = slot.host->reachable;
    indexDue_.insert(*slot.name);
  }
  for (const auto& name : indexDue_) {
    auto h = hosts_.find(name);
    if (h == hosts_.end()) continue;
    HostView& v = views_[name];
    if (!index(name, h->second, v)) {
      indexDue_.clear();
      return fail();
    }
  }
  indexDue_.clear();
  return &*cluster_;
}

std::vector<planner::VmSnapshot> AdmissionIndex::vmsToVacate(std::vector<std::string> hosts) const {
  std::sort(hosts.begin(), hosts.end());  // the cluster's order
  std::vector<planner::VmSnapshot> vms;
  for (const auto& h : hosts) {
    auto v = views_.find(h);
    if (v != views_.end()) vms.insert(vms.end(), v->second.vms.begin(), v->second.vms.end());
  }
  return vms;
}

}  // namespace vrm::manager
