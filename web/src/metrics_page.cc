#include "metrics_page.h"

#include <cmath>
#include <sstream>

#include "http_text.h"
#include "vrm/protocol/units.h"

namespace vrm::web {
namespace {

void head(std::ostream& o, const char* name, const char* type, const char* help) {
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
}

}  // namespace

void WebCounters::recordDecision(bool rejected, double seconds) {
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) latencyBucketCounts_[i]++;
  }
  latencySumSeconds_ += seconds;
  latencyCount_++;
  admissions_[rejected ? "rejected" : "admitted"]++;
}

void WebCounters::renderAdmissions(std::string& out) const {
  std::ostringstream o;
  head(o, "vrm_admission_latency_seconds", "histogram",
       "Time vrmd took to decide submits made through the web server (round trip).");
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    o << "vrm_admission_latency_seconds_bucket{le=\"" << formatNumber(kLatencyBuckets[i]) << "\"} "
      << latencyBucketCounts_[i] << "\n";
  }
  o << "vrm_admission_latency_seconds_bucket{le=\"+Inf\"} " << latencyCount_ << "\n";
  o << "vrm_admission_latency_seconds_sum " << formatNumber(latencySumSeconds_) << "\n";
  o << "vrm_admission_latency_seconds_count " << latencyCount_ << "\n";
  head(o, "vrm_admissions_total", "counter", "Submits made through the web server, by decision.");
  for (const char* d : {"admitted", "rejected", "error"}) {
    auto it = admissions_.find(d);
    o << "vrm_admissions_total{decision=\"" << d << "\"} "
      << (it == admissions_.end() ? 0 : it->second) << "\n";
  }
  out += o.str();
}

void WebCounters::renderResponses(std::string& out) const {
  std::ostringstream o;
  head(o, "vrm_web_responses_total", "counter", "HTTP responses of the web server, by status.");
  for (const auto& [code, count] : responsesByCode_) {
    o << "vrm_web_responses_total{code=\"" << code << "\"} " << count << "\n";
  }
  out += o.str();
}

std::string metricsText(const std::vector<Reservation>& reservations,
                        const std::vector<HostRecord>& hosts, std::size_t vmCount,
                        const WebCounters& counters, const std::string& extra) {
  std::map<std::string, int> byState;
  for (int s = 0; s <= static_cast<int>(ReservationState::kFailed); ++s) {
    byState[stateName(static_cast<ReservationState>(s))] = 0;
  }
  int running = 0, planned = 0, observed = 0, atRisk = 0;
  double errorSum = 0, absErrorSum = 0, relErrorSum = 0;
  int relCount = 0;
  for (const auto& r : reservations) {
    byState[stateName(r.state)]++;
    atRisk += r.atRisk && !isTerminal(r.state);
    for (const auto& move : r.moves) {
      if (!move.isVacate()) continue;  // the vacate plan's moves
      const auto& m = move.progress;
      if (m.state == MoveState::kRunning) running++;
      if (m.state == MoveState::kPlanned && !isTerminal(r.state)) planned++;
      if (m.state == MoveState::kDone && m.actualStartNs && m.actualEndNs >= m.actualStartNs) {
        const auto& p = move.planned;
        const double predicted = nsToSeconds(p.endOffsetNs - p.startOffsetNs);
        const double actual = nsToSeconds(m.actualEndNs - m.actualStartNs);
        errorSum += actual - predicted;
        absErrorSum += std::abs(actual - predicted);
        if (predicted > 0) {
          relErrorSum += std::abs(actual - predicted) / predicted;
          relCount++;
        }
        observed++;
      }
    }
  }
  std::size_t reachable = 0;
  for (const auto& h : hosts) reachable += h.reachable;

  std::ostringstream o;
  head(o, "vrm_reservations", "gauge", "Reservations known to vrmd, by state.");
  for (const auto& [state, count] : byState) {
    o << "vrm_reservations{state=\"" << labelValue(state) << "\"} " << count << "\n";
  }
  head(o, "vrm_reservations_at_risk", "gauge",
       "Unfinished reservations whose vacate is projected to miss its deadline.");
  o << "vrm_reservations_at_risk " << atRisk << "\n";
  head(o, "vrm_migrations_in_flight", "gauge", "Planned moves running now.");
  o << "vrm_migrations_in_flight " << running << "\n";
  head(o, "vrm_migrations_pending", "gauge",
       "Planned moves not started yet, of reservations that are not finished.");
  o << "vrm_migrations_pending " << planned << "\n";
  head(o, "vrm_hosts", "gauge", "Hosts by agent health.");
  o << "vrm_hosts{reachable=\"true\"} " << reachable << "\n";
  o << "vrm_hosts{reachable=\"false\"} " << hosts.size() - reachable << "\n";
  head(o, "vrm_vms", "gauge", "VMs on all hosts, the reservations' clones included.");
  o << "vrm_vms " << vmCount << "\n";
  std::string out = o.str();
  counters.renderAdmissions(out);
  o.str("");
  head(o, "vrm_migration_prediction_error_seconds", "summary",
       "Actual minus predicted duration of completed moves (vrmd's clock), over the plans of "
       "every stored reservation.");
  o << "vrm_migration_prediction_error_seconds_sum " << formatNumber(errorSum) << "\n";
  o << "vrm_migration_prediction_error_seconds_count " << observed << "\n";
  head(o, "vrm_migration_prediction_abs_error_seconds_sum", "gauge",
       "Sum of |actual - predicted| duration of completed moves.");
  o << "vrm_migration_prediction_abs_error_seconds_sum " << formatNumber(absErrorSum) << "\n";
  head(o, "vrm_migration_prediction_relative_error_mean", "gauge",
       "Mean of |actual - predicted| / predicted over completed moves (0 when none).");
  o << "vrm_migration_prediction_relative_error_mean "
    << formatNumber(relCount ? relErrorSum / relCount : 0) << "\n";
  out += o.str();
  counters.renderResponses(out);
  out += extra;
  return out;
}

}  // namespace vrm::web
