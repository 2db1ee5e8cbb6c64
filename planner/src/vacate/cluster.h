// The cluster as one call of CostAwareVacatePlanner sees it (planner/src only): the hosts and
// links of an IndexedCluster, the request's VMs by host, and the contention model's resources.
//
// Resources are numbered 2h for host h's sending NIC, 2h + 1 for its receiving NIC, then one per
// SharedLink, then the suspend store's NIC when the request names a store. A Cluster refers to
// the request and the index it was made from: both must outlive it. Read-only once made.
#pragma once

#include <map>
#include <vector>

#include "indexed_cluster_impl.h"
#include "vrm/planner/vacate_planner.h"

namespace vrm::planner::vacate {

struct Cluster {
  const VacateRequest& req;
  const IndexedCluster::Impl& ix;
  bool exhaustive = false;                    // CostAwareVacatePlannerOptions::exhaustivePlacement
  std::map<int, std::vector<int>> vmsOnHost;  // host index -> indices into req.vms
  std::vector<int> vmHost;                    // host index of each of req.vms
  // Resources: 2h = h's sending NIC, 2h+1 = its receiving NIC, then links, then the store.
  int storeResource = -1;

  Cluster(const VacateRequest& r, const IndexedCluster::Impl& i) : req(r), ix(i) {}
  int hostCount() const { return ix.hostCount(); }
  int tx(int h) const { return 2 * h; }
  int rx(int h) const { return 2 * h + 1; }
  int link(int l) const { return 2 * hostCount() + l; }
  // Bytes per second resource r carries.
  double capacity(int r) const {
    if (r < 2 * hostCount())
      return ix.hosts[static_cast<std::size_t>(r / 2)].nicBandwidthBytesPerSec;
    if (r == storeResource) return req.suspendStoreBandwidthBytesPerSec;
    return ix.links[static_cast<std::size_t>(r - 2 * hostCount())].bandwidthBytesPerSec;
  }
};

// The request's VMs placed on the index's hosts. Errors: invalid-argument for a VM on an unknown
// host, or a suspend store without a positive bandwidth.
Result<Cluster> indexVms(const VacateRequest& req, const IndexedCluster::Impl& ix, bool exhaustive);

// Indices into req.vms of the VMs on host h (empty for a host without VMs).
const std::vector<int>& vmsOn(const Cluster& c, int h);

// Links a migration from host a to host b crosses: those holding exactly one of the two, in
// ascending order, into `out` (cleared first).
void crossedLinks(const Cluster& c, int a, int b, std::vector<int>& out);

}  // namespace vrm::planner::vacate
