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

// The whole migration at a constant rate (in.bandwidthBytesPerSec): MigrationRun driven alone.
GroundTruthOutcome simulateMigration(const GroundTruthInput& in, SimRandom& random);

// One migration's ground truth advanced step by step, for a host whose NIC several migrations
// share, so the rate one gets changes whenever another starts or stops sending. It is a sequence
// of segments: setup (a fixed duration), transfers (the pre-copy rounds and the stop-and-copy;
// for suspend-copy-resume the one copy), whose durations follow from the rate they get, and
// commit (fixed). A round's dirtying follows from its actual duration. Random draws happen when
// a segment starts, in the order simulateMigration() has always made them, so a migration that
// keeps one rate throughout is exactly simulateMigration(). `rate` below is the nominal NIC share
// in bytes/s (at most in.bandwidthBytesPerSec); a transfer's goodput is rate x its drawn factor.
class MigrationRun {
 public:
  MigrationRun(const GroundTruthInput& in, SimRandom random);
  // The sim's fixed rule instead of the pre-copy simulation: setup kSetupMeanS, one transfer of
  // `bytes` at the full rate, commit kCommitMeanS, no draws (live: the transfer is the one
  // pre-copy round and nothing is left for the stop-and-copy; suspend-copy-resume: it is the
  // copy).
  static MigrationRun rule(const GroundTruthInput& in, double bytes);

  bool done() const { return segment_ == Segment::kDone; }
  // In a transfer segment: needs a share of the NIC.
  bool sending() const { return segment_ == Segment::kRound || segment_ == Segment::kStopCopy; }
  // Seconds until the current segment ends at `rate` (transfers; fixed segments ignore it).
  double secondsLeft(double rate) const;
  // Advances `seconds` at `rate`. With `segmentEnds` the current segment ends now (its exact
  // remainder is used, whatever `seconds` says) and the next one starts.
  void advance(double seconds, double rate, bool segmentEnds);
  // "setup", "copy" (pre-copy, or suspend-copy-resume's copy), "commit" (stop-and-copy, resume).
  const char* phase() const;
  double sentBytes() const { return sent_; }
  // Counts segments ended so far: changes exactly when a new segment starts.
  int segmentIndex() const { return segmentIndex_; }
  // The measured outcome; complete once done().
  const GroundTruthOutcome& outcome() const { return out_; }

 private:
  enum class Segment { kSetup, kRound, kStopCopy, kCommit, kDone };
  MigrationRun(const GroundTruthInput& in, SimRandom random, bool rule, double ruleBytes);
  void startTransfer(Segment segment, double bytes);
  void endSegment();

  GroundTruthInput in_;
  SimRandom random_;
  bool rule_ = false;
  double ruleBytes_ = 0;
  double firstPassBytes_ = 0;
  double wws_ = 0;
  Segment segment_ = Segment::kSetup;
  double remaining_ = 0;       // seconds (setup, commit) or bytes (transfers)
  double factor_ = 1;          // the current transfer's goodput factor
  double segmentBytes_ = 0;    // the current transfer's size
  double segmentSeconds_ = 0;  // time spent in the current transfer so far
  double roundDirtyRate_ = 0;
  double sent_ = 0;  // bytes sent so far (all transfers)
  double weightedRate_ = 0;
  int segmentIndex_ = 0;
  GroundTruthOutcome out_;
};

// Max-min fair shares of a NIC of `capacity` bytes/s among transfers capped at `caps` (each
// transfer's own bandwidth limit): equal shares, and what a capped transfer cannot use goes to
// the others. Returns one rate per cap, in order.
std::vector<double> fairShares(double capacity, const std::vector<double>& caps);

}  // namespace vrm::vmscheduler::sim
