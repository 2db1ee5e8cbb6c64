// /metrics: vrmd's state as seen through the client API (reservations by state, moves, hosts,
// VMs, how far the vacates and their moves ran from their predictions), the web server's own
// responses, and what vrmd adds (the admission path's latency and decisions, the models'
// held-out errors), in the Prometheus text exposition format 0.0.4.
//
// Conventions (checked by web_test's metric audit): every name starts with vrm_, counters end in
// _total, durations are _seconds, relative errors _ratio; labels take a few fixed values (state,
// via, decision, code, mode, model), never ids.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vrm/protocol/reservation.h"

namespace vrm::web {

// What the web server counts itself. Not thread-safe: the serving thread alone updates it.
class WebCounters {
 public:
  // An HTTP response sent with status `code`.
  void recordResponse(unsigned code) { responsesByCode_[code]++; }

  // Append the responses family (# HELP, # TYPE and samples) to `out`.
  void renderResponses(std::string& out) const;

 private:
  std::map<unsigned, std::uint64_t> responsesByCode_;
};

// Upper bounds of the prediction-error histograms' buckets, as (actual - predicted) / predicted:
// from finishing in half the predicted time to taking twice as long.
inline constexpr double kPredictionErrorBuckets[] = {-0.5, -0.25, -0.1, -0.05, 0,
                                                     0.05, 0.1,   0.25, 0.5,   1};

// The whole page: vrm_build_info, vrmd's state from `reservations`, `hosts` and `vmCount`, then
// `counters`, then `extra` (complete families, appended as is).
std::string metricsText(const std::vector<Reservation>& reservations,
                        const std::vector<HostRecord>& hosts, std::size_t vmCount,
                        const WebCounters& counters, const std::string& extra);

}  // namespace vrm::web
