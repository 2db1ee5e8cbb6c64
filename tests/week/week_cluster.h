// The week's simulated cluster: N hosts of three generations running long-lived VMs of a
// realistic mix, generated from a seed (tests/week/README: "The cluster").
//
//  * hosts: 60% 64 cores / 512 GiB / 10 GbE, 25% 32 cores / 256 GiB / 10 GbE, 15% older
//    24 cores / 128 GiB / 1 GbE; each filled with VMs to 40-70% of its memory and at most 80% of
//    its cores;
//  * VMs: 2-64 GiB (mostly 4-16), cores in proportion, 20-95% of memory resident (non-zero),
//    dirty rates log-normal around 3 MB/s with 5% write-heavy databases at 60-200 MB/s; 7% may
//    not be live-migrated (allow_live: false) and 10% may not be paused (allow_suspend: false);
//  * templates: bmi-decoder (dedicated, 2 per host, 8 cores / 32 GiB, 90 s to clone and boot),
//    small (2 cores / 4 GiB, 30 s) and medium (4 cores / 16 GiB, 45 s) for shared bookings.
// Deterministic: the same seed and host count give the same cluster everywhere.
#pragma once

#include <cstdint>
#include <string>

#include "vrm/protocol/cluster.h"

namespace vrm::week {

struct ClusterOptions {
  std::uint64_t seed = 1;
  std::uint32_t hosts = 100;
};

ClusterSpec generateCluster(const ClusterOptions& options);

// The cluster as a YAML file vrmd, the agents and `vrmctl plan` read (examples/cluster.yaml's
// format; sizes in bytes, rates in bytes per second, so that nothing is rounded).
std::string clusterYaml(const ClusterSpec& cluster);

// Host i's name: "w001", "w002", ...
std::string hostName(std::uint32_t i);

}  // namespace vrm::week
