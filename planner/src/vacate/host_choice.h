// Step 1 of CostAwareVacatePlanner::plan (planner/src only): which hosts may be vacated, and
// the cheapest ones to vacate (CostAwareVacatePlanner::chooseHosts, whose header states the
// choice).
// Pure.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "vacate/cluster.h"
#include "vacate/moves.h"

namespace vrm::planner::vacate {

// Why `host` may not be vacated for the request's reservation, for a person: it cannot be
// vacated, it is too small for the reservation's VMs (cloneCpuCoresPerHost /
// cloneMemoryBytesPerHost), or a booking overlaps [nowNs, reservationEndNs). Empty when it may.
std::string whyNotVacatable(const VacateRequest& req, const HostSnapshot& host);

// CostAwareVacatePlanner::chooseHosts on a cluster already indexed.
Result<std::vector<std::string>> chooseHostsIn(const Models& m, const Cluster& c,
                                               std::size_t count);

}  // namespace vrm::planner::vacate
