// Clone time per template and host, calibrated from observed clones like migrations are.
//
// A reservation's latest safe start is its start minus the clone time, the vacate's makespan and
// the margin, so a clone slower than the template's configured figure makes every plan late.
// CloneTimeModel keeps the newest `keepLatest` clone durations per (template, host) and answers
// the clone time to plan with at a quantile:
//  * a host with at least `minObservations` clones of the template: their empirical q-quantile;
//  * else, the template with at least `minObservations` clones on any hosts: their q-quantile;
//  * else: the larger of the configured time and the slowest clone seen (one slow clone is
//    reason enough to plan for it again; one fast one is not reason to trust less).
// For several hosts (a reservation clones on each in parallel) the slowest host's answer.
//
// Pure code, no clock; not thread-safe (one owner feeds it).
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "vrm/protocol/time.h"

namespace vrm::planner {

struct CloneTimeOptions {
  std::size_t minObservations = 3;
  std::size_t keepLatest = 50;
};

class CloneTimeModel {
 public:
  explicit CloneTimeModel(CloneTimeOptions options = {}) : options_(options) {}

  // Records one clone of `templateName` on `host` that took `durationNs` from the clone command
  // until the VM answered. Non-positive durations are ignored.
  void observe(const std::string& templateName, const std::string& host, TimeNs durationNs);

  // The clone time to plan with on `hosts` (empty: any host), q in (0, 1).
  TimeNs cloneTimeNs(const std::string& templateName, const std::vector<std::string>& hosts,
                     TimeNs configuredNs, double q) const;

  // Observations of `templateName` (on `host`, or on all hosts when empty).
  std::size_t observations(const std::string& templateName, const std::string& host = "") const;

 private:
  TimeNs onHost(const std::string& templateName, const std::string& host, TimeNs configuredNs,
                double q) const;
  CloneTimeOptions options_;
  std::map<std::pair<std::string, std::string>, std::deque<TimeNs>> byHost_;
  std::map<std::string, std::deque<TimeNs>> byTemplate_;
};

}  // namespace vrm::planner
