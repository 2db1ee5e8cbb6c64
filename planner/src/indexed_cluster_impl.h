// IndexedCluster's internals, shared with CostAwareVacatePlanner (planner/src only).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "vrm/planner/indexed_cluster.h"

namespace vrm::planner {

struct IndexedCluster::Impl {
  std::vector<HostSnapshot> hosts;
  std::vector<SharedLink> links;
  TimeNs nowNs = 0;
  std::unordered_map<std::string, int> hostIndex;
  std::vector<std::vector<int>> linksOfHost;  // sorted link indices whose `hosts` hold the host
  std::vector<std::uint64_t> linkMask;        // the same as bits, when there are 1..64 links
  // Room for incoming VMs from nowNs on: free* minus the peak of the bookings ending after nowNs.
  std::vector<std::int64_t> roomCpu;
  std::vector<std::int64_t> roomMem;
  std::vector<char> receivable;  // canReceive and no exclusive booking ending after nowNs
  std::set<int> withBookings;    // hosts whose room depends on nowNs

  // Receivers that have received nothing in a plan score the same for a VM when they have the
  // same receiving NIC bandwidth and the same links: one group each, ordered by room (most
  // memory first, then index), holding exactly the receivable hosts.
  struct Group {
    double rxBandwidth = 0;
    std::vector<int> links;
    std::set<std::pair<std::int64_t, int>> byRoom;  // (-roomMem, host index)
  };
  std::vector<Group> groups;
  std::map<std::pair<double, std::vector<int>>, int> groupByKey;
  std::vector<int> groupOf;

  int hostCount() const { return static_cast<int>(hosts.size()); }
  // Recomputes host h's room, receivability and group from hosts[h] and nowNs.
  void derive(int h);
};

// The peak concurrent use of the bookings that end after `now` (a sweep over their intervals);
// `exclusive` is set when one of them is exclusive.
void peakBooked(const std::vector<CapacityBooking>& bookings, TimeNs now, std::int64_t& cpu,
                std::int64_t& mem, bool& exclusive);

}  // namespace vrm::planner
