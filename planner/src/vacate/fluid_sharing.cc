// The fluid model of concurrent moves: see fluid_sharing.h.
#include "vacate/fluid_sharing.h"

#include <algorithm>
#include <limits>

namespace vrm::planner::vacate {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Skips the empty segments ahead of f (noting the downtime they start or end) and starts the
// next; marks f done at `now` after its last.
void enterSegment(Flow& f, double now) {
  const auto& segs = f.eval->segments;
  while (f.segment < segs.size() && segs[f.segment].amount <= 0) {
    if (segs[f.segment].downStarts && f.downStart < 0) f.downStart = now;
    if (segs[f.segment].downEnds) f.downEnd = now;
    ++f.segment;
  }
  if (f.segment == segs.size()) {
    f.done = true;
    f.end = now;
    return;
  }
  const Segment& s = segs[f.segment];
  if (s.downStarts && f.downStart < 0) f.downStart = now;
  f.remaining = s.amount;
  f.tolerance = 1e-9 * s.amount;
}

}  // namespace

FairShare::FairShare(const std::vector<double>& capacity)
    : capacity_(capacity),
      left_(capacity.size(), 0),
      users_(capacity.size(), 0),
      flowsOn_(capacity.size()) {}

void FairShare::rates(std::vector<Flow>& flows, const std::vector<char>& active) {
  touched_.clear();
  for (std::size_t i = 0; i < flows.size(); ++i) {
    flows[i].rate = 0;
    if (!active[i]) continue;
    if (flows[i].resources->empty()) {
      flows[i].rate = kInf;
      continue;
    }
    for (int r : *flows[i].resources) {
      if (users_[r] == 0) {
        touched_.push_back(r);
        left_[r] = capacity_[r];
        flowsOn_[r].clear();
      }
      ++users_[r];
      flowsOn_[r].push_back(static_cast<int>(i));
    }
  }
  frozen_.assign(flows.size(), 0);
  live_.assign(touched_.begin(), touched_.end());
  while (true) {
    // Drop saturated resources as we go: most receivers saturate in the first rounds.
    double level = kInf;
    std::size_t kept = 0;
    for (int r : live_) {
      if (users_[r] == 0) continue;
      live_[kept++] = r;
      level = std::min(level, left_[r] / users_[r]);
    }
    live_.resize(kept);
    if (kept == 0) break;
    for (int r : live_) {
      if (users_[r] == 0 || left_[r] / users_[r] > level * (1 + 1e-12)) continue;
      for (int f : flowsOn_[r]) {
        if (frozen_[f]) continue;
        frozen_[f] = 1;
        flows[f].rate = level;
        for (int r2 : *flows[f].resources) {
          left_[r2] -= level;
          --users_[r2];
        }
      }
    }
  }
  for (int r : touched_) users_[r] = 0;
}

double simulateBatch(std::vector<Flow>& flows, double t0, FairShare& share) {
  std::vector<char> onNetwork(flows.size(), 0);
  std::size_t running = 0;
  for (auto& f : flows) {
    f.segment = 0;
    f.done = false;
    f.downStart = f.downEnd = -1;
    enterSegment(f, t0);
    if (!f.done) ++running;
  }
  double now = t0;
  bool changed = true;
  while (running > 0) {
    if (changed) {
      for (std::size_t i = 0; i < flows.size(); ++i) {
        onNetwork[i] = !flows[i].done && flows[i].eval->segments[flows[i].segment].network;
      }
      share.rates(flows, onNetwork);
      changed = false;
    }
    double dt = kInf;
    for (std::size_t i = 0; i < flows.size(); ++i) {
      const Flow& f = flows[i];
      if (f.done) continue;
      dt = std::min(dt, onNetwork[i] ? f.remaining / f.rate : f.remaining);
    }
    if (!(dt < kInf)) dt = 0;  // cannot happen: every network flow has a positive rate
    now += dt;
    for (std::size_t i = 0; i < flows.size(); ++i) {
      Flow& f = flows[i];
      if (f.done) continue;
      f.remaining -= onNetwork[i] ? f.rate * dt : dt;
      if (f.remaining > f.tolerance) continue;
      const Segment& s = f.eval->segments[f.segment];
      if (s.downEnds) f.downEnd = now;
      ++f.segment;
      enterSegment(f, now);
      const bool nowNetwork = !f.done && f.eval->segments[f.segment].network;
      if (f.done) --running;
      if (f.done || nowNetwork != static_cast<bool>(onNetwork[i])) changed = true;
    }
  }
  double end = t0;
  for (const auto& f : flows) end = std::max(end, f.end);
  return end;
}

}  // namespace vrm::planner::vacate
