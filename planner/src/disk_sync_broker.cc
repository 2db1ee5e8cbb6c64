// Tsakalozos et al.'s Broker (Algorithms 1-2); contract and reading in disk_sync_broker.h.
#include "vrm/planner/disk_sync_broker.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace vrm::planner {

Result<DiskSyncBroker> DiskSyncBroker::create(const DiskSyncBrokerOptions& options) {
  if (!std::isfinite(options.danger) || !std::isfinite(options.warning) || options.danger < 1 ||
      options.warning < options.danger) {
    return Status::invalid("broker thresholds must satisfy 1 <= danger <= warning");
  }
  if (options.quietPeriodsToLift < 0) {
    return Status::invalid("broker quiet periods before lifting must be >= 0");
  }
  if (!std::isfinite(options.increaseBytesPerSec) || options.increaseBytesPerSec <= 0) {
    return Status::invalid("broker increase step must be positive");
  }
  return DiskSyncBroker(options);
}

Result<DiskSyncDecision> DiskSyncBroker::step(const DiskSyncObservation& o) {
  auto bad = [](double v) { return !std::isfinite(v) || v < 0; };
  if (bad(o.diskLeftBytes) || bad(o.netRateBytesPerSec) || bad(o.diskRateBytesPerSec)) {
    return Status::invalid("disk left and rates must be finite and >= 0");
  }
  if (!std::isfinite(o.timeToDeadlineS)) return Status::invalid("time to deadline must be finite");

  constexpr double kInf = std::numeric_limits<double>::infinity();
  DiskSyncDecision d;
  // Alg. 1 line 3.
  if (o.diskLeftBytes == 0) {
    d.timeLeftS = 0;
  } else if (o.netRateBytesPerSec <= o.diskRateBytesPerSec) {
    d.timeLeftS = kInf;
  } else {
    d.timeLeftS = o.diskLeftBytes / (o.netRateBytesPerSec - o.diskRateBytesPerSec);
  }
  // Alg. 1 line 4: the ratio of time to the deadline to projected time left.
  if (d.timeLeftS == 0) {
    d.deadlineRatio = o.timeToDeadlineS >= 0 ? kInf : -kInf;
  } else if (d.timeLeftS == kInf) {
    d.deadlineRatio = o.timeToDeadlineS > 0 ? 0 : -kInf;
  } else {
    d.deadlineRatio = o.timeToDeadlineS / d.timeLeftS;
  }

  quietPeriods_ = o.backOffRequested ? 0 : quietPeriods_ + 1;
  d.inDanger = d.deadlineRatio < options_.danger;
  if (!d.inDanger) {  // Alg. 1 lines 6-7 (run every period, see the header)
    const std::optional<double> next = setNetworkLimit(o.backOffRequested, o.netRateBytesPerSec);
    if (next) {
      d.network = DiskSyncDecision::Network::kSetLimit;
      d.networkLimitBytesPerSec = *next;
      limit_ = next;
    } else if (limit_) {
      d.network = DiskSyncDecision::Network::kLift;
      limit_.reset();
    }
  }
  // Alg. 1 lines 9-10; the cap keeps Expression 1 true at the current network rate.
  if (d.deadlineRatio <= options_.warning) {
    d.limitDisk = true;
    d.diskLimitBytesPerSec =
        o.timeToDeadlineS > 0
            ? std::max(0.0, o.netRateBytesPerSec - o.diskLeftBytes / o.timeToDeadlineS)
            : 0;
  }
  return d;
}

std::optional<double> DiskSyncBroker::setNetworkLimit(bool backOff, double netRate) {
  if (lastActionReduce_) {  // Alg. 2 lines 1-7
    if (backOff) return netRate / 2;
    lastOk_ = netRate;
    lastActionReduce_ = false;
    return netRate;
  }
  // Alg. 2 lines 8-18 ("increase bandwidth", also the initial state).
  if (backOff) {
    lastActionReduce_ = true;
    return lastOk_ ? *lastOk_ : netRate / 2;
  }
  lastOk_ = netRate;
  if (!limit_ || quietPeriods_ > options_.quietPeriodsToLift) return std::nullopt;
  return netRate + options_.increaseBytesPerSec;
}

}  // namespace vrm::planner
