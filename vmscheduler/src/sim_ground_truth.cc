#include "sim_ground_truth.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace vrm::vmscheduler::sim {

std::uint64_t SimRandom::next() {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double SimRandom::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double SimRandom::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

double SimRandom::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]: log() stays finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double SimRandom::logNormalFactor(double sigma) {
  return std::exp(sigma * normal() - 0.5 * sigma * sigma);
}

std::uint64_t migrationSeed(std::uint64_t hostSeed, std::string_view vmId, std::uint64_t count) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the VM id
  for (char c : vmId) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  SimRandom mix(hostSeed ^ h);
  mix.next();
  return mix.next() ^ (count * 0x9e3779b97f4a7c15ull);
}

double GroundTruthOutcome::precopyS() const {
  double s = 0;
  for (const auto& r : precopy) s += r.seconds;
  return s;
}

double GroundTruthOutcome::precopyBytes() const {
  double b = 0;
  for (const auto& r : precopy) b += r.bytes;
  return b;
}

double GroundTruthOutcome::goodputBytesPerSec() const {
  const double s = precopyS() + (stopCopyBytes > 0 ? stopCopyS : 0);
  return s > 0 ? transferredBytes() / s : 0;
}

GroundTruthOutcome simulateMigration(const GroundTruthInput& in, SimRandom& random) {
  GroundTruthOutcome out;
  out.setupS = kSetupMeanS * random.logNormalFactor(0.2);
  const double zeroBytes = std::max(0.0, in.memoryBytes - in.nonzeroMemoryBytes);
  const double firstPassBytes = in.nonzeroMemoryBytes + zeroBytes / kPageBytes * kZeroPageWireBytes;
  auto goodput = [&] { return in.bandwidthBytesPerSec * random.uniform(0.88, 0.98); };

  if (in.mode == MigrationMode::kSuspendCopyResume) {
    out.measuredDirtyRateBytesPerSec =
        in.meanDirtyRateBytesPerSec > 0 ? in.meanDirtyRateBytesPerSec * random.logNormalFactor(0.3)
                                        : 0;
    out.stopCopyBytes = firstPassBytes;
    out.stopCopyS = firstPassBytes / goodput();
    out.commitS = kCommitMeanS * random.logNormalFactor(0.3);
    return out;
  }

  const double mean = in.meanDirtyRateBytesPerSec;
  const double wws = std::min(std::max(8.0 * mean, 64.0 * 1024 * 1024), in.nonzeroMemoryBytes);
  double toSend = firstPassBytes;
  double sent = 0;
  double weightedRate = 0;
  for (std::uint32_t round = 1;; ++round) {
    GroundTruthRound r;
    r.bytes = toSend;
    r.seconds = toSend / goodput();
    r.dirtyRateBytesPerSec = mean > 0 ? mean * random.logNormalFactor(0.3) : 0;
    out.precopy.push_back(r);
    sent += r.bytes;
    weightedRate += r.dirtyRateBytesPerSec * r.seconds;
    // Distinct bytes dirtied during the round: uniform writes over the working set saturate.
    const double dirtied =
        wws > 0 ? wws * (1.0 - std::exp(-r.dirtyRateBytesPerSec * r.seconds / wws)) : 0;
    toSend = std::ceil(dirtied / kPageBytes) * kPageBytes;
    if (toSend <= kStopBytes) break;
    if (round >= kMaxPrecopyRounds || sent > kMaxSentFactor * in.memoryBytes) {
      out.converged = false;
      break;
    }
  }
  const double precopyS = out.precopyS();
  out.measuredDirtyRateBytesPerSec = precopyS > 0 ? weightedRate / precopyS : 0;
  out.stopCopyBytes = toSend;
  out.stopCopyS = toSend > 0 ? toSend / goodput() : 0;
  out.commitS = kCommitMeanS * random.logNormalFactor(0.3);
  return out;
}

}  // namespace vrm::vmscheduler::sim
