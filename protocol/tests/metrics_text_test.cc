#include "vrm/protocol/metrics_text.h"

#include <gtest/gtest.h>

#include <cmath>

namespace vrm {
namespace {

// Ensures a histogram prints cumulative buckets in the text format's order, +Inf equal to the
// count, and that a value on a bound falls in that bound's bucket (le is "less or equal").
TEST(MetricHistogramTest, CumulativeBucketsSumAndCount) {
  MetricHistogram h({0.1, 1, 0.01});  // sorted on construction
  for (double v : {0.005, 0.01, 0.5, 1.0, 7.0}) h.observe(v);
  h.observe(std::nan(""));  // not a value: ignored
  std::string out;
  h.appendSamples(out, "vrm_x_seconds", "via=\"web\"");
  EXPECT_EQ(out,
            "vrm_x_seconds_bucket{via=\"web\",le=\"0.01\"} 2\n"
            "vrm_x_seconds_bucket{via=\"web\",le=\"0.1\"} 2\n"
            "vrm_x_seconds_bucket{via=\"web\",le=\"1\"} 4\n"
            "vrm_x_seconds_bucket{via=\"web\",le=\"+Inf\"} 5\n"
            "vrm_x_seconds_sum{via=\"web\"} 8.515\n"
            "vrm_x_seconds_count{via=\"web\"} 5\n");
  EXPECT_EQ(h.count(), 5u);
  std::string bare;
  MetricHistogram({1}).appendSamples(bare, "vrm_y_ratio", "");
  EXPECT_EQ(bare,
            "vrm_y_ratio_bucket{le=\"1\"} 0\nvrm_y_ratio_bucket{le=\"+Inf\"} 0\n"
            "vrm_y_ratio_sum 0\nvrm_y_ratio_count 0\n");
}

// Ensures numbers, label values and headers are written as the exposition format wants them.
TEST(MetricTextTest, NumbersLabelsAndHeaders) {
  EXPECT_EQ(formatMetricNumber(3), "3");
  EXPECT_EQ(formatMetricNumber(0.0025), "0.0025");
  EXPECT_EQ(formatMetricNumber(-0.05), "-0.05");
  EXPECT_EQ(formatMetricNumber(INFINITY), "+Inf");
  EXPECT_EQ(formatMetricNumber(std::nan("")), "NaN");
  EXPECT_EQ(metricLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  std::string out;
  appendMetricHeader(out, "vrm_hosts", "gauge", "Hosts by agent health.");
  EXPECT_EQ(out, "# HELP vrm_hosts Hosts by agent health.\n# TYPE vrm_hosts gauge\n");
}

}  // namespace
}  // namespace vrm
