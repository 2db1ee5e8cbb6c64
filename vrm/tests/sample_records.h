// The host and VM records that the unit tests of vrmd's core (the booking projection, the
// admission index, admission) build their inventories from: an 8-core 16 GiB host on a 1 Gbit/s
// NIC, and a 2-core VM whose memory is all nonzero.
#pragma once

#include <cstdint>
#include <string>

#include "vrm/manager/inventory.h"

namespace vrm::manager::sample {

inline constexpr std::uint64_t kGiB = 1ull << 30;

inline HostRecord host(const std::string& name) {
  HostRecord h;
  h.name = name;
  h.cpuCores = 8;
  h.memoryBytes = 16 * kGiB;
  h.nicBandwidthBytesPerSec = 125e6;
  return h;
}

inline VmRecord vm(const std::string& id, std::uint64_t memoryBytes = 2 * kGiB) {
  VmRecord v;
  v.id = id;
  v.cpuCores = 2;
  v.memoryBytes = v.nonzeroMemoryBytes = memoryBytes;
  return v;
}

}  // namespace vrm::manager::sample
