// The Broker controller of Tsakalozos et al. (Algorithms 1 and 2) as a pure state machine.
//
// While a local disk is synchronised to the target host, the executor calls step() once per
// monitoring period with what MigrateFS reports (bytes left, network and disk-write rates) and
// the time left to the deadline; the broker answers whether to change the migration's network
// limit and whether to cap the VM's disk writes. It has no clock and no threads: time enters only
// as observations, so tests and the executor drive it period by period.
//
// Per period (Algorithm 1):
//   timeleft  = diskLeft / (netRate - diskRate)          (+infinity when netRate <= diskRate)
//   ratio     = timeToDeadline / timeleft                (timetodeadline / timeleft, Alg. 1)
//   inDanger  = ratio < danger      -> back-off requests are ignored, the network limit is kept,
//                                      and others should be told to back off (signalDanger)
//   warning   = ratio <= warning    -> cap the disk write rate (limitDisk)
//   otherwise (ratio >= danger) Algorithm 2 sets the network limit from the back-off flag:
//     after a reduction:  back-off -> limit = netRate / 2                      (halve)
//                         quiet    -> lastOk = netRate, limit = netRate, switch to increasing
//     while increasing:   back-off -> limit = lastOk (or netRate / 2 if none yet), reducing
//                         quiet    -> lastOk = netRate; more than n consecutive quiet periods
//                                     -> lift the limit, else limit = netRate + C
// Thresholds are ratios (3.0 = the paper's 300%); danger <= warning, so a task first gets a
// warning (its disk is capped), then, with less slack, is in danger (it stops yielding bandwidth).
//
// Reading of the paper where it is ambiguous:
//  * Alg. 1 line 6 calls setNetworkLimit only when `backoff == true`, which would leave
//    Alg. 2's quiet branches (linear increase, lifting the limit) unreachable. We run Alg. 2 every
//    period the task is not in danger, passing the back-off flag through.
//  * The text states the warning test as timeleft/timetodeadline > warning, the algorithm as
//    timetodeadline/timeleft <= warning; only the latter makes "first a warning, then danger"
//    hold with danger < warning, so we follow the algorithm.
//  * Alg. 2 never sets lastAction; a reduction (halving, reverting to lastOk) makes it "reduce",
//    anything else "increase". The initial state is "increase" with no limit and no lastOk.
//    Without a limit in force there is nothing to increase, so a quiet period keeps the task
//    unlimited (it still records lastOk = netRate, line 12); a back-off reverts to lastOk, or
//    halves the current rate when no quiet period has been seen yet.
//  * consecutivePeriodsWithoutBackOff counts the current period and is reset by any back-off
//    request, including one ignored because the task is in danger.
//  * setDiskLimit's value is not given; we return the largest disk-write rate for which
//    Expression 1 still holds at the current network rate: netRate - diskLeft / timeToDeadline
//    (>= 0). Callers that must reserve the hypervisor's time pass timeToDeadline = deadline -
//    now - VMM_time.
//
// Thread safety: none; one executor owns a broker and calls step() sequentially.
#pragma once

#include <optional>

#include "vrm/protocol/status.h"

namespace vrm::planner {

struct DiskSyncBrokerOptions {
  double danger = 3.0;   // ratio threshold below which the task is in danger (paper: 300%)
  double warning = 4.0;  // ratio threshold at or below which disk writes are capped (400%)
  // Consecutive quiet periods after which the network limit is lifted (Alg. 2's n; the paper
  // gives no value).
  int quietPeriodsToLift = 5;
  // Linear increase step C in bytes per second (Alg. 2's C; the paper gives no value).
  double increaseBytesPerSec = 10.0 * 1024 * 1024;
};

// What MigrateFS reports for one period, and the time left.
struct DiskSyncObservation {
  double diskLeftBytes = 0;        // blocks still to send (task.diskleft)
  double netRateBytesPerSec = 0;   // current network transfer rate (task.netrate)
  double diskRateBytesPerSec = 0;  // current block-dirtying rate (task.diskrate)
  double timeToDeadlineS = 0;      // deadline - now (may be <= 0 when late)
  bool backOffRequested = false;   // shouldBackOff(): congestion or another task in danger
};

struct DiskSyncDecision {
  enum class Network {
    kKeep,      // leave the current limit (or its absence) as it is
    kSetLimit,  // apply networkLimitBytesPerSec
    kLift,      // remove the network limit
  };
  Network network = Network::kKeep;
  double networkLimitBytesPerSec = 0;  // meaningful for kSetLimit
  bool limitDisk = false;              // warning: cap the VM's disk writes
  double diskLimitBytesPerSec = 0;     // meaningful when limitDisk
  bool inDanger = false;               // tell brokers sharing the path to back off
  double timeLeftS = 0;                // Alg. 1 timeleft (may be +infinity)
  double deadlineRatio = 0;            // timetodeadline / timeleft
};

class DiskSyncBroker {
 public:
  // Errors: invalid-argument unless 1 <= danger <= warning (finite), quietPeriodsToLift >= 0
  // and increaseBytesPerSec > 0.
  static Result<DiskSyncBroker> create(const DiskSyncBrokerOptions& options = {});

  // One monitoring period. Errors: invalid-argument for negative or non-finite disk left or
  // rates, or a non-finite time to deadline; the state is then unchanged.
  Result<DiskSyncDecision> step(const DiskSyncObservation& observation);

  // The limit in force after the last step (nullopt = unlimited).
  std::optional<double> networkLimitBytesPerSec() const { return limit_; }
  // Alg. 2's task.lastOKnetlimit (nullopt until a rate was seen to cause no congestion).
  std::optional<double> lastOkNetworkBytesPerSec() const { return lastOk_; }
  int consecutiveQuietPeriods() const { return quietPeriods_; }
  bool reducing() const { return lastActionReduce_; }

 private:
  explicit DiskSyncBroker(const DiskSyncBrokerOptions& options) : options_(options) {}
  // Algorithm 2; returns the new limit (nullopt = lift).
  std::optional<double> setNetworkLimit(bool backOff, double netRate);

  DiskSyncBrokerOptions options_;
  std::optional<double> limit_;
  std::optional<double> lastOk_;
  bool lastActionReduce_ = false;
  int quietPeriods_ = 0;
};

}  // namespace vrm::planner
