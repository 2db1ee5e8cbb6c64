#include "vrm/protocol/metrics_text.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace vrm {

void appendMetricHeader(std::string& out, const std::string& name, const char* type,
                        const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

std::string formatMetricNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream o;
  o.precision(9);
  o << v;
  return o.str();
}

std::string metricLabelValue(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

MetricHistogram::MetricHistogram(std::vector<double> upperBounds)
    : upperBounds_(std::move(upperBounds)), bucketCounts_(upperBounds_.size(), 0) {
  std::sort(upperBounds_.begin(), upperBounds_.end());
}

void MetricHistogram::observe(double value) {
  if (std::isnan(value)) return;
  auto it = std::lower_bound(upperBounds_.begin(), upperBounds_.end(), value);
  if (it != upperBounds_.end())
    ++bucketCounts_[static_cast<std::size_t>(it - upperBounds_.begin())];
  sum_ += value;
  ++count_;
}

void MetricHistogram::appendSamples(std::string& out, const std::string& name,
                                    const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < upperBounds_.size(); ++i) {
    cumulative += bucketCounts_[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + formatMetricNumber(upperBounds_[i]) +
           "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(count_) + "\n";
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + formatMetricNumber(sum_) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

}  // namespace vrm
