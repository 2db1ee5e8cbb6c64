// Measures a running guest's memory from outside its QEMU: how much is non-zero (what a
// migration really sends: QEMU sends a zero page as a 9-byte marker) and how much changed since
// the previous sample (memory modified over the interval, Zhao's modified memory).
//
// The resident size of the guest RAM mapping, which the backend reported before, overstates the
// non-zero memory: pages the guest zeroed (Linux zeroes what it allocates) are resident too; on
// the project's test guests by 15-25 %. The sampler reads a fixed random sample of the mapping's
// pages: /proc/PID/pagemap says which are present (bit 63) or swapped (bit 62), /proc/PID/mem
// gives their contents. nonzero = mapping size x (present non-zero or swapped sampled pages /
// sampled pages); the standard error is below sqrt(0.25 / pages) of the size (0.8 % with the
// default 4,096 pages). Modified = mapping size x (sampled pages whose content hash changed) /
// sampled pages, from the second sample on.
//
// Needs read access to the process's pagemap and mem (the agent is QEMU's parent and owner).
// Cost: two preads per sampled page, 16 MiB read at most with the defaults. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vrm/protocol/status.h"

namespace vrm::vmscheduler::qemu {

struct GuestMemorySample {
  std::uint64_t nonzeroBytes = 0;
  std::optional<std::uint64_t> modifiedBytes;  // since the previous sample; absent the first time
  std::size_t sampledPages = 0;
};

// Zhao & Figueiredo's two workload classes (Section 3.3.2), from what the agent measures: a
// guest dirtying at least 8 MiB/s or 1 % of its memory per second is "memory" bound; else one
// keeping half a host core busy or more is "cpu" bound; else "" (idle or unknown). Pure.
std::string classifyWorkload(double dirtyRateBytesPerSec, std::uint64_t memoryBytes,
                             double cpuCoresBusy);

class GuestMemorySampler {
 public:
  explicit GuestMemorySampler(std::size_t pages = 4096, std::uint64_t seed = 0x5eed);

  // Samples the mapping [start, start + size) of process `pid`. A different mapping than last
  // time (the VM's QEMU was replaced) starts afresh. Errors: unavailable when pagemap or mem
  // cannot be read (the message says which).
  Result<GuestMemorySample> sample(pid_t pid, std::uint64_t start, std::uint64_t size);

 private:
  std::size_t pages_;
  std::uint64_t seed_;
  pid_t pid_ = -1;
  std::uint64_t start_ = 0, size_ = 0;
  std::vector<std::uint64_t> offsets_;  // page offsets into the mapping, the same every sample
  std::vector<std::uint64_t> hashes_;   // content hash per sampled page (0 = absent)
};

}  // namespace vrm::vmscheduler::qemu
