// The helpers of fit_support.h.
#include "fitting/fit_support.h"

#include <algorithm>
#include <cstdio>

namespace vrm::planner::fitting {
namespace {

LinkProfile linkFor(const MigrationObservation& o, double goodput, double overheadS) {
  LinkProfile link;
  link.bandwidthBytesPerSec = o.bandwidthBytesPerSec * goodput;
  link.preOverheadS = overheadS;
  return link;
}

}  // namespace

std::string formatShort(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string where(const MigrationObservation& o, std::size_t index) {
  return o.line > 0 ? "observation line " + std::to_string(o.line)
                    : "observation #" + std::to_string(index + 1);
}

Result<std::vector<MigrationEstimate>> predictAll(const MigrationModel& model,
                                                  const std::vector<MigrationObservation>& obs,
                                                  double goodput, double overheadS) {
  std::vector<MigrationEstimate> out;
  out.reserve(obs.size());
  for (std::size_t i = 0; i < obs.size(); ++i) {
    auto e = model.estimate(obs[i].vm, linkFor(obs[i], goodput, overheadS));
    if (!e) return Status::invalid(where(obs[i], i) + ": " + e.status().message());
    out.push_back(std::move(*e));
  }
  return out;
}

std::vector<double> priors(const ModelParameters& params, const std::vector<std::string>& keys) {
  std::vector<double> v;
  for (const auto& k : keys) v.push_back(params.at(k));
  return v;
}

bool phasesObserved(const std::vector<MigrationObservation>& obs) {
  return std::all_of(obs.begin(), obs.end(), [](const MigrationObservation& o) {
    return o.suspendS && o.copyS && o.resumeS;
  });
}

void applyFit(const LinearFit& fit, const std::vector<std::string>& keys, ModelParameters& params,
              std::vector<std::string>& notes) {
  for (std::size_t j = 0; j < keys.size(); ++j) {
    params[keys[j]] = fit.coef[j];
    if (fit.state[j] == Coef::kUnidentified) {
      notes.push_back(keys[j] + " kept at " + formatShort(fit.coef[j]) +
                      ": not identifiable from these observations");
    } else if (fit.state[j] == Coef::kAtZero) {
      notes.push_back(keys[j] + " pinned at 0: the unconstrained fit was negative");
    }
  }
}

}  // namespace vrm::planner::fitting
