// Helpers shared by the backends' suites against real guests and daemons (libvirtd, qemu):
// running a setup script, the machine's load for the figures they print, and printing a
// migration's observation in one format, so figures of different suites compare.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <utility>

#include "test_text.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler::guest_test {

inline constexpr std::uint64_t kMiB = 1024 * 1024;

// Runs a shell command; returns its exit status (-1 when it did not exit) and what it wrote to
// stdout and stderr.
inline std::pair<int, std::string> run(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// The machine's 1-minute load average, printed with every figure (the figures mean little
// without it on a shared machine).
inline double loadAverage() {
  double load = 0;
  std::istringstream(testing_text::readFile("/proc/loadavg")) >> load;
  return load;
}

// The "[ measured ]" line of a migration's observation with the load, and for suspend-copy-resume
// its phases when they were measured.
inline void printObservation(const char* what, const MigrationObservation& o) {
  std::printf(
      "[ measured ] %s: total %.3f s, setup %.3f s, downtime %.3f s, %.1f MiB sent in %u "
      "rounds at %.1f MiB/s (memory %.1f MiB, resident %.1f MiB, dirty rate %.2f MiB/s; "
      "load %.2f)\n",
      what, static_cast<double>(o.endNs - o.startNs) / 1e9, static_cast<double>(o.setupNs) / 1e9,
      static_cast<double>(o.downtimeNs) / 1e9, static_cast<double>(o.transferredBytes) / kMiB,
      o.rounds, o.bandwidthBytesPerSec / kMiB, static_cast<double>(o.memoryBytes) / kMiB,
      static_cast<double>(o.nonzeroMemoryBytes) / kMiB, o.dirtyRateBytesPerSec / kMiB,
      loadAverage());
  if (o.mode == MigrationMode::kSuspendCopyResume && o.saveNs + o.copyNs + o.restoreNs > 0) {
    std::printf("[ measured ] %s phases: save %.3f s, copy %.3f s, restore %.3f s\n", what,
                static_cast<double>(o.saveNs) / 1e9, static_cast<double>(o.copyNs) / 1e9,
                static_cast<double>(o.restoreNs) / 1e9);
  }
}

}  // namespace vrm::vmscheduler::guest_test
