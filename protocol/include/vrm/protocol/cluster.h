// The cluster description: hosts, their existing VMs, and the VM templates reservations clone.
//
// Written by operators in YAML (see examples/cluster.yaml) and read by vmschedd (the sim
// backend's initial VMs), vrmd (templates) and `vrmctl plan` (offline planning). Quantities take
// units (see units.h). Every error names the offending entry, e.g.
// "hosts[2].vms[0].memory: unknown size unit 'GB/s' ...".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"
#include "vrm/protocol/vm.h"

namespace vrm {

// A VM the cluster file lists: the one VM record (vm.h), with host set to the host it is listed
// under, nonzeroMemoryBytes defaulted to memoryBytes, and the run-time fields (state,
// reservation, address, template, state file) at their defaults.
using VmSpec = VmRecord;

struct HostSpec {
  std::string name;
  std::uint32_t cpuCores = 0;
  std::uint64_t memoryBytes = 0;
  double nicBandwidthBytesPerSec = 0;
  std::vector<VmSpec> vms;
};

struct TemplateSpec {
  std::string name;
  std::uint32_t cpuCores = 1;
  std::uint64_t memoryBytes = 0;
  TimeNs cloneTimeNs = 30 * kNsPerSec;  // clone + boot until the VM answers
  std::uint32_t vmsPerHost = 1;         // clones per dedicated host by default
};

struct ClusterSpec {
  std::vector<HostSpec> hosts;
  std::vector<TemplateSpec> templates;

  const HostSpec* findHost(std::string_view name) const;
  const TemplateSpec* findTemplate(std::string_view name) const;
};

// Parses YAML text. Checks: names unique, capacities positive, every host's VMs fit its
// capacity, nonzero memory <= memory.
Result<ClusterSpec> parseClusterSpec(std::string_view yaml);
Result<ClusterSpec> loadClusterSpec(const std::string& path);

}  // namespace vrm
