#include "metrics_page.h"

#include <algorithm>
#include <iterator>

#include "vrm/protocol/metrics_text.h"
#include "vrm/protocol/units.h"

namespace vrm::web {
namespace {

MetricHistogram predictionErrorHistogram() {
  return MetricHistogram(
      std::vector<double>(std::begin(kPredictionErrorBuckets), std::end(kPredictionErrorBuckets)));
}

// A vacate that has finished (every move done or skipped, one at least done): how long it ran,
// first start to last end, against its plan's mean makespan. False for anything else.
bool vacateError(const Reservation& r, double* ratio) {
  TimeNs first = kTimeInfinity, last = 0;
  bool any = false;
  for (const auto& move : r.moves) {
    if (!move.isVacate()) continue;
    const auto& p = move.progress;
    if (p.state == MoveState::kSkipped) continue;
    if (p.state != MoveState::kDone || !p.actualStartNs || p.actualEndNs < p.actualStartNs) {
      return false;
    }
    first = std::min(first, p.actualStartNs);
    last = std::max(last, p.actualEndNs);
    any = true;
  }
  if (!any || r.plan.makespanNs <= 0) return false;
  *ratio = static_cast<double>(last - first - r.plan.makespanNs) /
           static_cast<double>(r.plan.makespanNs);
  return true;
}

}  // namespace

void WebCounters::renderResponses(std::string& out) const {
  appendMetricHeader(out, "vrm_web_responses_total", "counter",
                     "HTTP responses of the web server, by status.");
  for (const auto& [code, count] : responsesByCode_) {
    out += "vrm_web_responses_total{code=\"" + std::to_string(code) + "\"} " +
           std::to_string(count) + "\n";
  }
}

std::string metricsText(const std::vector<Reservation>& reservations,
                        const std::vector<HostRecord>& hosts, std::size_t vmCount,
                        const WebCounters& counters, const std::string& extra) {
  std::map<std::string, int> byState;
  for (int s = 0; s <= static_cast<int>(ReservationState::kFailed); ++s) {
    byState[stateName(static_cast<ReservationState>(s))] = 0;
  }
  int running = 0, planned = 0, atRisk = 0;
  double moveErrorSeconds = 0;
  std::uint64_t movesObserved = 0;
  MetricHistogram moveErrors = predictionErrorHistogram();
  MetricHistogram vacateErrors = predictionErrorHistogram();
  for (const auto& r : reservations) {
    byState[stateName(r.state)]++;
    atRisk += r.atRisk && !isTerminal(r.state);
    if (double ratio; vacateError(r, &ratio)) vacateErrors.observe(ratio);
    for (const auto& move : r.moves) {
      if (!move.isVacate()) continue;  // the vacate plan's moves
      const auto& m = move.progress;
      if (m.state == MoveState::kRunning) running++;
      if (m.state == MoveState::kPlanned && !isTerminal(r.state)) planned++;
      if (m.state == MoveState::kDone && m.actualStartNs && m.actualEndNs >= m.actualStartNs) {
        const auto& p = move.planned;
        const double predicted = nsToSeconds(p.endOffsetNs - p.startOffsetNs);
        const double actual = nsToSeconds(m.actualEndNs - m.actualStartNs);
        moveErrorSeconds += actual - predicted;
        movesObserved++;
        if (predicted > 0) moveErrors.observe((actual - predicted) / predicted);
      }
    }
  }
  std::size_t reachable = 0;
  for (const auto& h : hosts) reachable += h.reachable;

  std::string o;
  appendMetricHeader(o, "vrm_build_info", "gauge", "Always 1; the version of vrmd serving.");
  o += "vrm_build_info{version=\"" + metricLabelValue(VRM_VERSION) + "\"} 1\n";
  appendMetricHeader(o, "vrm_reservations", "gauge", "Reservations known to vrmd, by state.");
  for (const auto& [state, count] : byState) {
    o += "vrm_reservations{state=\"" + metricLabelValue(state) + "\"} " + std::to_string(count) +
         "\n";
  }
  appendMetricHeader(o, "vrm_reservations_at_risk", "gauge",
                     "Unfinished reservations whose vacate is projected to miss its deadline.");
  o += "vrm_reservations_at_risk " + std::to_string(atRisk) + "\n";
  appendMetricHeader(o, "vrm_migrations_in_flight", "gauge", "Planned moves running now.");
  o += "vrm_migrations_in_flight " + std::to_string(running) + "\n";
  appendMetricHeader(o, "vrm_migrations_pending", "gauge",
                     "Planned moves not started yet, of reservations that are not finished.");
  o += "vrm_migrations_pending " + std::to_string(planned) + "\n";
  appendMetricHeader(o, "vrm_hosts", "gauge", "Hosts by agent health.");
  o += "vrm_hosts{reachable=\"true\"} " + std::to_string(reachable) + "\n";
  o += "vrm_hosts{reachable=\"false\"} " + std::to_string(hosts.size() - reachable) + "\n";
  appendMetricHeader(o, "vrm_vms", "gauge", "VMs on all hosts, the reservations' clones included.");
  o += "vrm_vms " + std::to_string(vmCount) + "\n";
  appendMetricHeader(o, "vrm_migration_prediction_error_seconds", "summary",
                     "Actual minus predicted duration of completed moves (vrmd's clock), over the "
                     "plans of every stored reservation.");
  o += "vrm_migration_prediction_error_seconds_sum " + formatMetricNumber(moveErrorSeconds) + "\n";
  o += "vrm_migration_prediction_error_seconds_count " + std::to_string(movesObserved) + "\n";
  appendMetricHeader(o, "vrm_migration_prediction_error_ratio", "histogram",
                     "(actual - predicted) / predicted duration of completed moves, over the plans "
                     "of every stored reservation.");
  moveErrors.appendSamples(o, "vrm_migration_prediction_error_ratio", "");
  appendMetricHeader(
      o, "vrm_vacate_prediction_error_ratio", "histogram",
      "(actual - predicted) / predicted time of finished vacates, first move's start "
      "to last move's end against the plan's mean makespan, over every stored "
      "reservation: what the latest safe start's margin must absorb.");
  vacateErrors.appendSamples(o, "vrm_vacate_prediction_error_ratio", "");
  counters.renderResponses(o);
  o += extra;
  return o;
}

}  // namespace vrm::web
