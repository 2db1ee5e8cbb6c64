#include "vrm/manager/admission_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace vrm::manager {
namespace {

// Ensures both known paths (zmq, web) are present from the start at zero, named in the help
// from the one table that lists them, and that another path recorded is listed after them.
TEST(AdmissionMetricsTest, KnownPathsAtZeroFromTheStartAndOthersAfter) {
  AdmissionMetrics metrics;
  std::string text = metrics.text();
  for (const char* via : {AdmissionMetrics::kViaZmq, AdmissionMetrics::kViaWeb}) {
    const std::string label = std::string("via=\"") + via + "\"";
    EXPECT_NE(text.find("vrm_admission_latency_seconds_count{" + label + "} 0\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("vrm_admissions_total{" + label + ",decision=\"rejected\"} 0\n"),
              std::string::npos);
    EXPECT_NE(text.find("vrm_admission_dry_runs_total{" + label + "} 0\n"), std::string::npos);
  }
  EXPECT_NE(text.find("way it came in: zmq (vrmctl, the client library) or web (the web "
                      "calendar and HTTP API)."),
            std::string::npos)
      << text;

  metrics.record(AdmissionMetrics::kViaWeb, SubmitDecision::kAdmitted, false, 0.002);
  metrics.record("other", SubmitDecision::kRejected, false, 0.1);
  metrics.record("other", SubmitDecision::kAdmitted, true, 0.1);
  text = metrics.text();
  EXPECT_NE(text.find("vrm_admission_latency_seconds_count{via=\"web\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("vrm_admissions_total{via=\"web\",decision=\"admitted\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("vrm_admissions_total{via=\"other\",decision=\"rejected\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("vrm_admission_dry_runs_total{via=\"other\"} 1\n"), std::string::npos);
  EXPECT_LT(text.find("vrm_admission_latency_seconds_count{via=\"web\"}"),
            text.find("vrm_admission_latency_seconds_count{via=\"other\"}"))
      << "the known paths first";
}

}  // namespace
}  // namespace vrm::manager
