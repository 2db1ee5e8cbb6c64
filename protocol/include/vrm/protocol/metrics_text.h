// Prometheus' text exposition format (0.0.4), as vrmd's /metrics writes it from several units (the
// web server's view of vrmd, the admission path, the calibrating planner): family headers, numbers,
// label values and a cumulative histogram, so that every family follows the same conventions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vrm {

// "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram, summary).
void appendMetricHeader(std::string& out, const std::string& name, const char* type,
                        const std::string& help);

// A sample value: integers as integers, others with up to 9 significant digits ("0.0025").
std::string formatMetricNumber(double v);

// A label value with backslash, double quote and newline escaped (the format's only escapes).
std::string metricLabelValue(const std::string& s);

// A histogram's buckets, sum and count. Not thread-safe: its owner serialises observe() and
// appendSamples().
class MetricHistogram {
 public:
  // `upperBounds`: the buckets' upper bounds, ascending (+Inf is implied).
  explicit MetricHistogram(std::vector<double> upperBounds);

  void observe(double value);

  // name_bucket{labels,le="..."} (cumulative), name_sum{labels} and name_count{labels}; `labels`
  // is "" or complete pairs without braces ('via="web"').
  void appendSamples(std::string& out, const std::string& name, const std::string& labels) const;

  std::uint64_t count() const { return count_; }

 private:
  std::vector<double> upperBounds_;
  std::vector<std::uint64_t> bucketCounts_;  // not cumulative: values in (previous bound, bound]
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace vrm
