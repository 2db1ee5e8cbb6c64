// /metrics of the admission path: how long vrmd took to decide each submit and what it decided,
// by the way the submit came in (every path: vrmctl and the client library over ZeroMQ, the web
// calendar over inproc), in the Prometheus text format. The server records; the web server's
// thread reads text(). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "vrm/protocol/metrics_text.h"

namespace vrm::manager {

// What became of one submit.
enum class SubmitDecision { kAdmitted, kRejected, kError };

class AdmissionMetrics {
 public:
  // Upper bounds (seconds) of the latency buckets: sub-millisecond shared admissions up to the
  // seconds a large dedicated plan may take.
  static constexpr double kLatencyBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                               0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

  // The ways a submit comes in: what record() is told and the `via` label says.
  static constexpr const char* kViaZmq = "zmq";  // the client endpoint: vrmctl, the client library
  static constexpr const char* kViaWeb = "web";  // the web calendar and HTTP API, over inproc

  // A submit that came in `via` (kViaZmq, kViaWeb) was answered after `seconds` (decoding,
  // admission and the store's commit). Dry runs are timed as admissions but counted apart.
  void record(const std::string& via, SubmitDecision decision, bool dryRun, double seconds);

  // The families vrm_admission_latency_seconds{via} (histogram), vrm_admissions_total{via,decision}
  // and vrm_admission_dry_runs_total{via} (counters), complete with # HELP and # TYPE; every
  // series of both paths is present from the start, at zero.
  std::string text() const;

 private:
  static MetricHistogram newHistogram();

  mutable std::mutex mutex_;
  std::map<std::string, MetricHistogram> latencyByVia_;
  std::map<std::pair<std::string, SubmitDecision>, std::uint64_t> decisions_;
  std::map<std::string, std::uint64_t> dryRuns_;
};

}  // namespace vrm::manager
