// Step 4 of CostAwareVacatePlanner::plan, the timing: see deadline.h.
#include "vacate/deadline.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace vrm::planner::vacate {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double normalQuantile(double q) {
  // Bisection on the normal CDF, 0.5 * erfc(-x / sqrt(2)); 60 halvings reach double precision.
  double lo = -10, hi = 10;
  for (int i = 0; i < 100; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < q) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return 0.5 * (lo + hi);
}

}  // namespace

double quantileFactor(const VacateRequest& req, double q) {
  if (req.relativeErrorSamples.size() >= kMinErrorSamples) {
    std::vector<double> s = req.relativeErrorSamples;
    std::sort(s.begin(), s.end());
    const double pos = q * static_cast<double>(s.size() - 1);
    const std::size_t i = static_cast<std::size_t>(pos);
    const double frac = pos - static_cast<double>(i);
    const double r = i + 1 < s.size() ? s[i] + frac * (s[i + 1] - s[i]) : s[i];
    return std::max(0.0, 1 + r);
  }
  return std::max(0.0, 1 + normalQuantile(q) * req.relativeErrorStdDev);
}

Result<double> makespanLowerBoundS(const Models& m, const VacateRequest& req,
                                   const std::vector<MoveSpec>& specs,
                                   const std::vector<double>& capacity) {
  double lowerBound = 0;
  std::vector<double> bytes(capacity.size(), 0);
  std::vector<double> minLead(capacity.size(), kInf), minTail(capacity.size(), kInf);
  for (const auto& s : specs) {
    const double bw = s.resources.empty() ? 1 : s.soloBandwidth;
    auto e = evaluateMove(m, req, req.vms[s.vm], s, bw);
    if (!e) return e.status();
    lowerBound = std::max(lowerBound, e->totalS);
    for (int r : s.resources) {
      bytes[r] += networkBytes(e->segments);
      minLead[r] = std::min(minLead[r], lead(e->segments));
      minTail[r] = std::min(minTail[r], tail(e->segments));
    }
  }
  for (std::size_t r = 0; r < bytes.size(); ++r) {
    if (bytes[r] > 0) {
      lowerBound = std::max(lowerBound, minLead[r] + bytes[r] / capacity[r] + minTail[r]);
    }
  }
  return lowerBound;
}

void applyDeadline(const VacateRequest& req, double quantileFactor, double lowerBoundS,
                   StrategyResult& r) {
  r.quantileMakespanS = std::max(r.makespanS * quantileFactor, lowerBoundS);
  r.latestSafeStartNs =
      req.reservationStartNs - req.cloneTimeNs - secondsToNs(r.quantileMakespanS) - req.marginNs;
  r.feasible = r.latestSafeStartNs >= req.nowNs;
}

TimeNs earliestFeasibleStartNs(const VacateRequest& req, TimeNs makespanQuantileNs) {
  return req.nowNs + req.cloneTimeNs + makespanQuantileNs + req.marginNs;
}

void completeSuspensions(const Models& m, const VacateRequest& req,
                         const std::vector<MoveSpec>& specs, StrategyResult& chosen) {
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (!specs[i].suspend) continue;
    PlannedMove& mv = chosen.moves[i];
    if (req.reservationEndNs > 0) {
      auto phases = suspendPhases(m, profileOf(req.vms[specs[i].vm]), 1);
      const double resumeS = phases ? phases->second : 0;
      mv.resumeAtNs = req.reservationEndNs;
      const TimeNs downFrom = chosen.latestSafeStartNs + mv.endOffsetNs - mv.downtimeNs;
      mv.downtimeNs = req.reservationEndNs + secondsToNs(resumeS) - downFrom;
    }
  }
}

void limitDiskWrites(const VacateRequest& req, const std::vector<MoveSpec>& specs,
                     StrategyResult& chosen) {
  const double stretch = chosen.makespanS > 0 ? chosen.quantileMakespanS / chosen.makespanS : 1;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    PlannedMove& mv = chosen.moves[i];
    if (mv.diskSyncNs <= 0 || mv.networkLimitBytesPerSec <= 0) continue;
    const double duration = nsToSeconds(mv.endOffsetNs - mv.startOffsetNs);
    const double vmmS = std::max(0.0, duration - nsToSeconds(mv.diskSyncNs));
    const double forSync = duration * stretch - vmmS;
    if (forSync <= 0) continue;
    const double limit =
        std::max(0.0, mv.networkLimitBytesPerSec -
                          static_cast<double>(req.vms[specs[i].vm].diskBytes) / forSync);
    mv.diskWriteLimitBytesPerSec =
        mv.diskWriteLimitBytesPerSec > 0 ? std::min(mv.diskWriteLimitBytesPerSec, limit) : limit;
  }
}

}  // namespace vrm::planner::vacate
