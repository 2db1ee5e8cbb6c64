#include "sim_ground_truth.h"

#include <algorithm>
#include <cmath>
#include <limits>
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
  MigrationRun run(in, random);
  while (!run.done()) {
    run.advance(run.secondsLeft(in.bandwidthBytesPerSec), in.bandwidthBytesPerSec, true);
  }
  return run.outcome();
}

MigrationRun::MigrationRun(const GroundTruthInput& in, SimRandom random)
    : MigrationRun(in, random, false, 0) {}

MigrationRun MigrationRun::rule(const GroundTruthInput& in, double bytes) {
  return MigrationRun(in, SimRandom(0), true, bytes);
}

MigrationRun::MigrationRun(const GroundTruthInput& in, SimRandom random, bool rule,
                           double ruleBytes)
    : in_(in), random_(random), rule_(rule), ruleBytes_(ruleBytes) {
  const double zeroBytes = std::max(0.0, in.memoryBytes - in.nonzeroMemoryBytes);
  firstPassBytes_ = in.nonzeroMemoryBytes + zeroBytes / kPageBytes * kZeroPageWireBytes;
  wws_ = std::min(std::max(8.0 * in.meanDirtyRateBytesPerSec, 64.0 * 1024 * 1024),
                  in.nonzeroMemoryBytes);
  out_.setupS = rule_ ? kSetupMeanS : kSetupMeanS * random_.logNormalFactor(0.2);
  segment_ = Segment::kSetup;
  remaining_ = out_.setupS;
}

void MigrationRun::startTransfer(Segment segment, double bytes) {
  segment_ = segment;
  segmentBytes_ = bytes;
  remaining_ = bytes;
  segmentSeconds_ = 0;
  factor_ = rule_ ? 1.0 : random_.uniform(0.88, 0.98);
  roundDirtyRate_ = 0;
  if (segment == Segment::kRound && !rule_ && in_.meanDirtyRateBytesPerSec > 0) {
    roundDirtyRate_ = in_.meanDirtyRateBytesPerSec * random_.logNormalFactor(0.3);
  }
}

double MigrationRun::secondsLeft(double rate) const {
  if (done()) return 0;
  if (!sending()) return remaining_;
  const double goodput = rate * factor_;
  return goodput > 0 ? remaining_ / goodput : std::numeric_limits<double>::infinity();
}

void MigrationRun::advance(double seconds, double rate, bool segmentEnds) {
  if (done()) return;
  if (segmentEnds) {
    if (sending()) {
      segmentSeconds_ += secondsLeft(rate);
      sent_ += remaining_;
    }
    remaining_ = 0;
    ++segmentIndex_;
    endSegment();
    return;
  }
  if (sending()) {
    const double bytes = std::min(remaining_, rate * factor_ * seconds);
    remaining_ -= bytes;
    sent_ += bytes;
    segmentSeconds_ += seconds;
  } else {
    remaining_ = std::max(0.0, remaining_ - seconds);
  }
}

void MigrationRun::endSegment() {
  const bool live = in_.mode == MigrationMode::kLive;
  auto commit = [&] {
    out_.commitS = rule_ ? kCommitMeanS : kCommitMeanS * random_.logNormalFactor(0.3);
    segment_ = Segment::kCommit;
    remaining_ = out_.commitS;
  };
  // Stops pre-copy: what the last round dirtied is copied with the VM paused.
  auto stopAndCopy = [&](double toSend) {
    const double precopyS = out_.precopyS();
    out_.measuredDirtyRateBytesPerSec = precopyS > 0 ? weightedRate_ / precopyS : 0;
    out_.stopCopyBytes = toSend;
    if (toSend > 0) {
      startTransfer(Segment::kStopCopy, toSend);
    } else {
      out_.stopCopyS = 0;
      commit();
    }
  };
  switch (segment_) {
    case Segment::kSetup:
      if (!live) {
        out_.measuredDirtyRateBytesPerSec =
            rule_ ? in_.meanDirtyRateBytesPerSec
                  : (in_.meanDirtyRateBytesPerSec > 0
                         ? in_.meanDirtyRateBytesPerSec * random_.logNormalFactor(0.3)
                         : 0);
        out_.stopCopyBytes = rule_ ? ruleBytes_ : firstPassBytes_;
        startTransfer(Segment::kStopCopy, out_.stopCopyBytes);
      } else {
        startTransfer(Segment::kRound, rule_ ? ruleBytes_ : firstPassBytes_);
      }
      return;
    case Segment::kRound: {
      GroundTruthRound r;
      r.bytes = segmentBytes_;
      r.seconds = segmentSeconds_;
      r.dirtyRateBytesPerSec = roundDirtyRate_;
      out_.precopy.push_back(r);
      weightedRate_ += r.dirtyRateBytesPerSec * r.seconds;
      if (rule_) {
        out_.measuredDirtyRateBytesPerSec = in_.meanDirtyRateBytesPerSec;
        out_.stopCopyBytes = 0;
        out_.stopCopyS = 0;
        commit();
        return;
      }
      // Distinct bytes dirtied during the round: uniform writes over the working set saturate.
      const double dirtied =
          wws_ > 0 ? wws_ * (1.0 - std::exp(-r.dirtyRateBytesPerSec * r.seconds / wws_)) : 0;
      const double toSend = std::ceil(dirtied / kPageBytes) * kPageBytes;
      if (toSend <= kStopBytes) return stopAndCopy(toSend);
      if (out_.precopy.size() >= kMaxPrecopyRounds ||
          out_.precopyBytes() > kMaxSentFactor * in_.memoryBytes) {
        out_.converged = false;
        return stopAndCopy(toSend);
      }
      startTransfer(Segment::kRound, toSend);
      return;
    }
    case Segment::kStopCopy:
      out_.stopCopyS = segmentSeconds_;
      commit();
      return;
    case Segment::kCommit:
      segment_ = Segment::kDone;
      return;
    case Segment::kDone:
      return;
  }
}

const char* MigrationRun::phase() const {
  switch (segment_) {
    case Segment::kSetup:
      return "setup";
    case Segment::kRound:
      return "copy";
    case Segment::kStopCopy:
      return in_.mode == MigrationMode::kLive ? "commit" : "copy";
    case Segment::kCommit:
    case Segment::kDone:
      return "commit";
  }
  return "commit";
}

std::vector<double> fairShares(double capacity, const std::vector<double>& caps) {
  std::vector<double> rates(caps.size(), 0);
  std::vector<std::size_t> open(caps.size());
  for (std::size_t i = 0; i < caps.size(); ++i) open[i] = i;
  double left = capacity;
  // Water-filling: give every open transfer an equal share; those capped below it take their
  // cap and leave the rest to the others.
  while (!open.empty()) {
    const double share = left / static_cast<double>(open.size());
    std::vector<std::size_t> still;
    for (std::size_t i : open) {
      if (caps[i] <= share) {
        rates[i] = caps[i];
        left -= caps[i];
      } else {
        still.push_back(i);
      }
    }
    if (still.size() == open.size()) {
      for (std::size_t i : still) rates[i] = share;
      break;
    }
    open = std::move(still);
  }
  return rates;
}

}  // namespace vrm::vmscheduler::sim
