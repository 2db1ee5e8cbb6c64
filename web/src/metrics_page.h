// /metrics: vrmd's state as seen through the client API (reservations by state, moves, hosts,
// VMs, the vacate predictions' errors) and the web server's own counters, in the Prometheus
// text exposition format 0.0.4.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vrm/protocol/reservation.h"

namespace vrm::web {

// What the web server counts itself. Not thread-safe: the serving thread alone updates it.
class WebCounters {
 public:
  // Upper bounds (seconds) of the admission latency histogram's buckets.
  static constexpr std::array<double, 10> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                             0.025,  0.05,  0.1,    0.25,  1.0};

  // A submit vrmd decided ("admitted" or "rejected") after `seconds` (round trip).
  void recordDecision(bool rejected, double seconds);
  // A submit vrmd did not decide (unreachable, invalid, ...): counted, not timed.
  void recordSubmitError() { admissions_["error"]++; }
  // An HTTP response sent with status `code`.
  void recordResponse(unsigned code) { responsesByCode_[code]++; }

  // Append the admission families (latency histogram, decisions) and the responses family
  // (# HELP, # TYPE and samples) to `out`.
  void renderAdmissions(std::string& out) const;
  void renderResponses(std::string& out) const;

 private:
  std::array<std::uint64_t, kLatencyBuckets.size()> latencyBucketCounts_{};
  double latencySumSeconds_ = 0;
  std::uint64_t latencyCount_ = 0;
  std::map<std::string, std::uint64_t> admissions_;  // decision -> count
  std::map<unsigned, std::uint64_t> responsesByCode_;
};

// The whole page: vrmd's state from `reservations`, `hosts` and `vmCount`, then `counters`,
// then `extra` (complete families, appended as is).
std::string metricsText(const std::vector<Reservation>& reservations,
                        const std::vector<HostRecord>& hosts, std::size_t vmCount,
                        const WebCounters& counters, const std::string& extra);

}  // namespace vrm::web
