// vacate::Cluster: see cluster.h.
#include "vacate/cluster.h"

#include <algorithm>
#include <iterator>

namespace vrm::planner::vacate {

Result<Cluster> indexVms(const VacateRequest& req, const IndexedCluster::Impl& ix,
                         bool exhaustive) {
  Cluster c(req, ix);
  c.exhaustive = exhaustive;
  if (!req.suspendStore.empty()) {
    if (!(req.suspendStoreBandwidthBytesPerSec > 0)) {
      return Status::invalid("suspend store '" + req.suspendStore + "' needs a positive bandwidth");
    }
    c.storeResource = 2 * c.hostCount() + static_cast<int>(ix.links.size());
  }
  c.vmHost.reserve(req.vms.size());
  for (std::size_t i = 0; i < req.vms.size(); ++i) {
    auto it = ix.hostIndex.find(req.vms[i].host);
    if (it == ix.hostIndex.end()) {
      return Status::invalid("VM '" + req.vms[i].id + "' runs on unknown host '" + req.vms[i].host +
                             "'");
    }
    c.vmHost.push_back(it->second);
    c.vmsOnHost[it->second].push_back(static_cast<int>(i));
  }
  return c;
}

const std::vector<int>& vmsOn(const Cluster& c, int h) {
  static const std::vector<int> kNone;
  auto it = c.vmsOnHost.find(h);
  return it == c.vmsOnHost.end() ? kNone : it->second;
}

void crossedLinks(const Cluster& c, int a, int b, std::vector<int>& out) {
  out.clear();
  if (!c.ix.linkMask.empty()) {  // up to 64 links: one XOR
    for (std::uint64_t x = c.ix.linkMask[a] ^ c.ix.linkMask[b]; x != 0; x &= x - 1) {
      out.push_back(__builtin_ctzll(x));
    }
    return;
  }
  const auto& la = c.ix.linksOfHost[a];
  const auto& lb = c.ix.linksOfHost[b];
  std::set_symmetric_difference(la.begin(), la.end(), lb.begin(), lb.end(),
                                std::back_inserter(out));
}

}  // namespace vrm::planner::vacate
