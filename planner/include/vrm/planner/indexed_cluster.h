// A cluster's hosts and shared links, indexed once for many vacate plans.
//
// Planning from a VacateRequest indexes every host of the cluster on each call. vrmd plans
// several trial vacates per admission in a cluster of thousands of hosts, so it keeps one
// IndexedCluster and updates the few hosts that changed instead (issue 5, "Speed"); the planner
// then receives only the VMs of the hosts it vacates. Plans from an IndexedCluster are
// identical to plans from a VacateRequest listing the same hosts and links
// (VacatePlanner::plan(const IndexedCluster&, const VacateRequest&)).
//
// The index also keeps the receivers ordered by free room, grouped by what decides a receiver's
// score when it has received nothing yet (NIC bandwidth and shared links), so a VM's
// destination is found among the hosts the plan already uses plus one host per group.
//
// A value type (movable, not copyable). Not thread-safe to update; concurrent const use (plans)
// is safe.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "vrm/planner/vacate_planner.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::planner {

class IndexedCluster {
 public:
  // Indexes `hosts` and `links` as of `nowNs` (the VacateRequest::nowNs of the plans it serves:
  // a host's room for incoming VMs excludes its bookings that end after nowNs).
  // Errors: invalid-argument for a duplicate host name, a NIC or link bandwidth that is not
  // positive and finite, or a link naming an unknown host (as plan() reports them).
  static Result<IndexedCluster> create(std::vector<HostSnapshot> hosts,
                                       std::vector<SharedLink> links, TimeNs nowNs);

  IndexedCluster(IndexedCluster&&) noexcept;
  IndexedCluster& operator=(IndexedCluster&&) noexcept;
  ~IndexedCluster();

  // Replaces the host of the same name (capacity, free room, bookings, flags), logarithmic in
  // the cluster size. Errors: not-found for a name the index does not hold (create a new
  // index to add hosts), invalid-argument for a NIC bandwidth that is not positive and finite
  // (the index is then unchanged).
  Status updateHost(HostSnapshot host);
  // Re-derives, for a new `nowNs`, the room of the hosts that have bookings.
  void setNow(TimeNs nowNs);

  TimeNs nowNs() const;
  std::size_t size() const;
  const std::vector<HostSnapshot>& hosts() const;  // in the order given to create()
  const std::vector<SharedLink>& links() const;
  const HostSnapshot* find(std::string_view name) const;  // null when unknown

  struct Impl;  // planner/src/indexed_cluster_impl.h; the planner reads it directly
  const Impl& impl() const { return *impl_; }

 private:
  explicit IndexedCluster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vrm::planner
