// CloneTimeModel: contract in vrm/planner/clone_time_model.h.
#include "vrm/planner/clone_time_model.h"

#include <algorithm>
#include <cmath>

namespace vrm::planner {
namespace {

TimeNs quantileOf(const std::deque<TimeNs>& samples, double q) {
  std::vector<TimeNs> s(samples.begin(), samples.end());
  std::sort(s.begin(), s.end());
  const double h = std::clamp(q, 0.0, 1.0) * static_cast<double>(s.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + static_cast<TimeNs>(std::llround((h - static_cast<double>(lo)) *
                                                  static_cast<double>(s[hi] - s[lo])));
}

}  // namespace

void CloneTimeModel::observe(const std::string& templateName, const std::string& host,
                             TimeNs durationNs) {
  if (durationNs <= 0) return;
  for (auto* samples : {&byHost_[{templateName, host}], &byTemplate_[templateName]}) {
    samples->push_back(durationNs);
    while (samples->size() > options_.keepLatest) samples->pop_front();
  }
}

TimeNs CloneTimeModel::onHost(const std::string& templateName, const std::string& host,
                              TimeNs configuredNs, double q) const {
  if (!host.empty()) {
    auto it = byHost_.find({templateName, host});
    if (it != byHost_.end() && it->second.size() >= options_.minObservations) {
      return quantileOf(it->second, q);
    }
  }
  auto it = byTemplate_.find(templateName);
  if (it == byTemplate_.end() || it->second.empty()) return configuredNs;
  if (it->second.size() >= options_.minObservations) return quantileOf(it->second, q);
  return std::max(configuredNs, *std::max_element(it->second.begin(), it->second.end()));
}

TimeNs CloneTimeModel::cloneTimeNs(const std::string& templateName,
                                   const std::vector<std::string>& hosts, TimeNs configuredNs,
                                   double q) const {
  if (hosts.empty()) return onHost(templateName, "", configuredNs, q);
  TimeNs worst = 0;
  for (const std::string& h : hosts)
    worst = std::max(worst, onHost(templateName, h, configuredNs, q));
  return worst;
}

std::size_t CloneTimeModel::observations(const std::string& templateName,
                                         const std::string& host) const {
  if (host.empty()) {
    auto it = byTemplate_.find(templateName);
    return it == byTemplate_.end() ? 0 : it->second.size();
  }
  auto it = byHost_.find({templateName, host});
  return it == byHost_.end() ? 0 : it->second.size();
}

}  // namespace vrm::planner
