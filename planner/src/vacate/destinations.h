// Step 2 of CostAwareVacatePlanner::plan (planner/src only): where each VM of the vacated hosts
// goes.
//
// VMs are placed in decreasing memory order (stable: equal sizes keep cluster order). Each goes
// to the receiver with room for it (its indexed room minus what this placement already put
// there) whose receiving NIC and crossed shared links would be least loaded, in seconds of
// transfer, after taking it; ties (within 1e-9, relative) go to the host with more free memory,
// then to the first in cluster order. Receivers are hosts not vacated and receivable in the
// index. Unless Cluster::exhaustive, only the receivers used so far and the roomiest fitting host
// of each IndexedCluster group are scored (the same choice; every receiver is scored when two
// different scores fall within the tie tolerance, where the order is not transitive).
// Pure and deterministic; its cost grows with the VMs placed and the receivers they use.
#pragma once

#include <string>
#include <vector>

#include "vacate/cluster.h"

namespace vrm::planner::vacate {

struct Placement {
  std::vector<int> vms;   // moved VMs, indices into req.vms, in placement order
  std::vector<int> dest;  // host index per entry of vms; -1: no receiver had room
  int unplaced = 0;
  int unplacedNotSuspendable = 0;  // unplaced VMs that may not be suspended
  int firstUnplaced = -1;          // VM index, for messages
};

// Places every VM of the hosts with vacating[h] set (one entry per host of the cluster).
Placement place(const Cluster& c, const std::vector<char>& vacating);

// "no host has room for VM 'id' (size, cores) from host": why `vm` was not placed.
std::string noRoomMessage(const VmSnapshot& vm);

}  // namespace vrm::planner::vacate
