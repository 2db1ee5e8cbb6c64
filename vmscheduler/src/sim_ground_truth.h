// The sim backend's ground truth: how long a migration "really" takes on a simulated host.
//
// It is deliberately NOT one of the planner's models, so that model error shows in the sim as it
// would on real hosts. Live migrations follow a Xen-like pre-copy loop, round by round, where
//  * the VM writes at a rate drawn afresh each round around its mean (log-normal, sigma 0.3),
//    uniformly at random over a writable working set W = clamp(8 s x mean rate, 64 MiB, non-zero
//    memory); the distinct bytes dirtied in t seconds at rate R are W (1 - exp(-R t / W)) (the
//    page-level expectation of uniform writes: rewrites of a dirty page cost nothing, so the dirty
//    set saturates, unlike the planner's linear or min(W, R t) models);
//  * each round's goodput is the nominal bandwidth times a factor drawn uniformly in
//    [0.88, 0.98] (protocol overhead and jitter);
//  * round 1 sends the non-zero pages plus an 8-byte marker per zero page; round k+1 sends what
//    round k dirtied;
//  * after round k: stop when it dirtied at most 50 pages (converged), when k reaches 29 rounds,
//    or when more than 3 x memory has been sent (forced, as Xen's xc_domain_save); then the VM
//    pauses for the stop-and-copy of the last dirty set and resumes at the destination.
// Suspend-copy-resume pauses the VM, sends the non-zero pages once (same goodput draw), resumes.
// Setup is 0.5 s and commit (resume at the destination) 0.1 s, each times a log-normal factor of
// mean 1 (sigma 0.2 and 0.3). All draws come from a SimRandom, so a seed reproduces everything.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "vrm/protocol/time.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler::sim {

inline constexpr double kPageBytes = 4096;
inline constexpr double kZeroPageWireBytes = 8;
inline constexpr double kStopBytes = 50 * kPageBytes;
inline constexpr std::uint32_t kMaxPrecopyRounds = 29;
inline constexpr double kMaxSentFactor = 3;
inline constexpr double kSetupMeanS = 0.5;
inline constexpr double kCommitMeanS = 0.1;

// A small portable generator (splitmix64): the same seed gives the same draws on every platform
// and standard library, unlike std::*_distribution.
class SimRandom {
 public:
  explicit SimRandom(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  double uniform();  // [0, 1)
  double uniform(double lo, double hi);
  double normal();                       // standard normal (Box-Muller)
  double logNormalFactor(double sigma);  // mean 1
 private:
  std::uint64_t state_;
};

// A seed for one migration from the host's seed, the VM and the host's migration count.
std::uint64_t migrationSeed(std::uint64_t hostSeed, std::string_view vmId, std::uint64_t count);

struct GroundTruthInput {
  MigrationMode mode = MigrationMode::kLive;
  double memoryBytes = 0;
  double nonzeroMemoryBytes = 0;
  double meanDirtyRateBytesPerSec = 0;  // 0 for a suspended VM
  double bandwidthBytesPerSec = 0;      // nominal: min(NIC, limit)
};

struct GroundTruthRound {
  double bytes = 0;
  double seconds = 0;
  double dirtyRateBytesPerSec = 0;  // the rate drawn for this round
};

struct GroundTruthOutcome {
  double setupS = 0;
  std::vector<GroundTruthRound> precopy;  // live only; empty for suspend-copy-resume
  double stopCopyBytes = 0;               // live: the final dirty set; SCR: the whole copy
  double stopCopyS = 0;
  double commitS = 0;
  bool converged = true;  // live: false when the round or volume limit forced the stop

  double precopyS() const;
  double precopyBytes() const;
  double totalS() const { return setupS + precopyS() + stopCopyS + commitS; }
  double downtimeS() const { return stopCopyS + commitS; }
  double transferredBytes() const { return precopyBytes() + stopCopyBytes; }
  std::uint32_t rounds() const { return static_cast<std::uint32_t>(precopy.size()) + 1; }
  // Measured goodput: bytes over the time spent sending them.
  double goodputBytesPerSec() const;
  // Measured dirty rate: the time-weighted mean of the rounds' rates (live), or one sample of the
  // VM's rate taken before it was paused (suspend-copy-resume).
  double measuredDirtyRateBytesPerSec = 0;
};

GroundTruthOutcome simulateMigration(const GroundTruthInput& in, SimRandom& random);

}  // namespace vrm::vmscheduler::sim
