// Fuzz target: the cluster description parser (protocol/cluster.h parseClusterSpec), which
// reads operators' YAML files for vrmd, vmschedd and `vrmctl plan`.
//
// Contract checked: any text gives a ClusterSpec or an invalid-argument Status (never an
// exception, crash or sanitizer report), and an accepted spec satisfies what the header
// promises: unique names, positive capacities, every host's VMs fit it, nonzero <= memory.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string_view>

#include "vrm/protocol/cluster.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "accepted cluster spec breaks its contract: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto spec = vrm::parseClusterSpec(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!spec) {
    if (spec.status().code() != vrm::StatusCode::kInvalidArgument) fail("error is not invalid");
    if (spec.status().message().empty()) fail("error without a message");
    return 0;
  }
  std::set<std::string_view> hostNames, vmIds, templateNames;
  for (const auto& h : spec->hosts) {
    if (!hostNames.insert(h.name).second) fail("duplicate host name");
    if (h.cpuCores == 0 || h.memoryBytes == 0) fail("host without capacity");
    std::uint64_t cores = 0, memory = 0;
    for (const auto& v : h.vms) {
      if (!vmIds.insert(v.id).second) fail("duplicate VM id");
      if (v.nonzeroMemoryBytes > v.memoryBytes) fail("nonzero memory above memory");
      cores += v.cpuCores;
      memory += v.memoryBytes;
      if (memory < v.memoryBytes) fail("VM memory sum overflows");
    }
    if (cores > h.cpuCores || memory > h.memoryBytes) fail("VMs do not fit their host");
  }
  for (const auto& t : spec->templates) {
    if (!templateNames.insert(t.name).second) fail("duplicate template name");
    if (t.cpuCores == 0 || t.memoryBytes == 0) fail("template without capacity");
  }
  return 0;
}
