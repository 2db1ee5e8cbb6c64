#include "vrm/manager/admission_metrics.h"

#include <algorithm>
#include <iterator>
#include <vector>

namespace vrm::manager {
namespace {

// The ways a submit comes in: the `via` label's value, and what it is (for the help text).
struct Path {
  const char* via;
  const char* what;
};
constexpr Path kPaths[] = {{AdmissionMetrics::kViaZmq, "vrmctl, the client library"},
                           {AdmissionMetrics::kViaWeb, "the web calendar and HTTP API"}};

bool isKnownPath(const std::string& via) {
  return std::any_of(std::begin(kPaths), std::end(kPaths),
                     [&](const Path& p) { return via == p.via; });
}

const char* decisionName(SubmitDecision d) {
  switch (d) {
    case SubmitDecision::kAdmitted:
      return "admitted";
    case SubmitDecision::kRejected:
      return "rejected";
    case SubmitDecision::kError:
      return "error";
  }
  return "error";
}

}  // namespace

MetricHistogram AdmissionMetrics::newHistogram() {
  return MetricHistogram(
      std::vector<double>(std::begin(kLatencyBuckets), std::end(kLatencyBuckets)));
}

void AdmissionMetrics::record(const std::string& via, SubmitDecision decision, bool dryRun,
                              double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  latencyByVia_.try_emplace(via, newHistogram()).first->second.observe(seconds);
  if (dryRun) {
    ++dryRuns_[via];
  } else {
    ++decisions_[{via, decision}];
  }
}

std::string AdmissionMetrics::text() const {
  std::lock_guard<std::mutex> lock(mutex_);
  // Every known path, and any other one recorded.
  std::vector<std::string> paths;
  std::string ways;
  for (const Path& p : kPaths) {
    paths.push_back(p.via);
    ways += std::string(ways.empty() ? "" : " or ") + p.via + " (" + p.what + ")";
  }
  for (const auto& [via, h] : latencyByVia_) {
    if (!isKnownPath(via)) paths.push_back(via);
  }
  std::string out;
  appendMetricHeader(out, "vrm_admission_latency_seconds", "histogram",
                     "Time vrmd took to answer a submit (decode, admission, store commit), by the "
                     "way it came in: " +
                         ways + ".");
  for (const auto& via : paths) {
    auto it = latencyByVia_.find(via);
    const std::string labels = "via=\"" + metricLabelValue(via) + "\"";
    if (it != latencyByVia_.end()) {
      it->second.appendSamples(out, "vrm_admission_latency_seconds", labels);
    } else {
      newHistogram().appendSamples(out, "vrm_admission_latency_seconds", labels);
    }
  }
  appendMetricHeader(out, "vrm_admissions_total", "counter",
                     "Submits (not dry runs) by decision: admitted, rejected, or error (refused "
                     "before admission: malformed, unauthorized, store failure).");
  for (const auto& via : paths) {
    for (SubmitDecision d :
         {SubmitDecision::kAdmitted, SubmitDecision::kRejected, SubmitDecision::kError}) {
      auto it = decisions_.find({via, d});
      out += "vrm_admissions_total{via=\"" + metricLabelValue(via) + "\",decision=\"" +
             decisionName(d) + "\"} " + std::to_string(it == decisions_.end() ? 0 : it->second) +
             "\n";
    }
  }
  appendMetricHeader(out, "vrm_admission_dry_runs_total", "counter",
                     "Dry-run submits (admission judged, nothing booked).");
  for (const auto& via : paths) {
    auto it = dryRuns_.find(via);
    out += "vrm_admission_dry_runs_total{via=\"" + metricLabelValue(via) + "\"} " +
           std::to_string(it == dryRuns_.end() ? 0 : it->second) + "\n";
  }
  return out;
}

}  // namespace vrm::manager
