// A generated cluster for scale figures (tests/bench/admission_bench.cc, tests/load/): `hosts`
// hosts of 64 cores, 512 GiB and 10 GbE, each running 10 VMs of 1-4 cores and 1-16 GiB (30-90%
// non-zero, dirtying up to 40 MB/s), plus a generated mix of reservation requests to book.
// Deterministic: host i and request i are the same in every program and run.
#pragma once

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "vrm/protocol/cluster.h"
#include "vrm/protocol/reservation.h"

namespace vrm::scale {

inline constexpr std::uint64_t kGiB = 1ull << 30;
inline constexpr std::uint32_t kVmsPerHost = 10;

inline std::string hostName(std::uint32_t i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "h%05u", i);
  return buf;
}

inline HostRecord generatedHost(std::uint32_t i) {
  HostRecord h;
  h.name = hostName(i);
  h.cpuCores = 64;
  h.memoryBytes = 512 * kGiB;
  h.nicBandwidthBytesPerSec = 1.25e9;
  h.backend = "fake";
  h.migrationEndpoint = "fake://" + h.name;
  return h;
}

inline std::vector<VmRecord> generatedVms(std::uint32_t i) {
  std::mt19937 rng(1000003u * i + 17);
  std::uniform_int_distribution<int> cores(1, 4), sizeExp(0, 4), pct(30, 90), dirty(0, 100);
  std::vector<VmRecord> vms;
  for (std::uint32_t v = 0; v < kVmsPerHost; ++v) {
    VmRecord vm;
    vm.id = hostName(i) + "-vm" + std::to_string(v);
    vm.host = hostName(i);
    vm.cpuCores = static_cast<std::uint32_t>(cores(rng));
    vm.memoryBytes = (1ull << sizeExp(rng)) * kGiB;
    vm.nonzeroMemoryBytes = vm.memoryBytes / 100 * static_cast<std::uint64_t>(pct(rng));
    vm.dirtyRateBytesPerSec = 0.4e6 * dirty(rng);
    vms.push_back(std::move(vm));
  }
  return vms;
}

// "small": 2 cores / 4 GiB shared clones; "node": 8 cores / 16 GiB, one per dedicated host.
inline std::vector<TemplateSpec> generatedTemplates() {
  return {TemplateSpec{"small", 2, 4 * kGiB, 30 * kNsPerSec, 1},
          TemplateSpec{"node", 8, 16 * kGiB, 60 * kNsPerSec, 1}};
}

// Booking mix: 19 of 20 shared (1-4 small VMs), 1 of 20 dedicated (one host), starting
// uniformly 2 h - 7 days after `now`, lasting 1-8 h.
inline ReservationRequest generatedRequest(std::uint32_t i, TimeNs now) {
  std::mt19937 rng(7919u * i + 3);
  std::uniform_int_distribution<TimeNs> start(2 * 3600 * kNsPerSec, 7 * 24 * 3600 * kNsPerSec);
  std::uniform_int_distribution<TimeNs> length(3600 * kNsPerSec, 8 * 3600 * kNsPerSec);
  std::uniform_int_distribution<int> vms(1, 4);
  ReservationRequest r;
  r.owner = "load" + std::to_string(i % 16);
  r.startNs = now + start(rng);
  r.endNs = r.startNs + length(rng);
  if (i % 20 == 19) {
    r.kind = ReservationKind::kDedicated;
    r.hostCount = 1;
    r.templateName = "node";
  } else {
    r.kind = ReservationKind::kShared;
    r.vmCount = static_cast<std::uint32_t>(vms(rng));
    r.templateName = "small";
  }
  return r;
}

}  // namespace vrm::scale
