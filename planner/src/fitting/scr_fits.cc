// The suspend-copy-resume fits of model_fits.h: zhao-scr and qemu-scr.
#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "fitting/fit_support.h"
#include "fitting/model_fits.h"

namespace vrm::planner::fitting {
namespace {

// A fitted copy factor of 0 would mean an infinitely fast link: the scr fits keep the prior.
void keepCopyFactorPositive(Calibration& c, double bandwidthFactor) {
  if (c.parameters.at("copy_bandwidth_factor") > 0) return;
  c.parameters["copy_bandwidth_factor"] = bandwidthFactor;
  c.notes.push_back("copy_bandwidth_factor kept at " + formatShort(bandwidthFactor) +
                    ": a factor of 0 would mean an infinitely fast link");
}

// Without every phase observed: the total time fitted on `keys` from `prior`, the terms that
// cannot be told apart from them (`zeroed`) set to 0, and `note` saying where they went.
void fitOnTotalTime(Calibration& c, const std::vector<std::vector<double>>& rows,
                    const std::vector<double>& y, const std::vector<std::string>& keys,
                    const std::vector<double>& prior, std::initializer_list<const char*> zeroed,
                    const char* note) {
  for (const char* k : zeroed) c.parameters[k] = 0;
  applyFit(fitNonNegative(rows, y, prior), keys, c.parameters, c.notes);
  c.notes.push_back(note);
}

}  // namespace

// zhao-scr's phase coefficients: per phase when the phases were measured, else on total time.
Status fitZhao(Calibration& c, const std::vector<MigrationObservation>& obs) {
  ModelParameters& p = c.parameters;
  const bool disk = p.at("destination_disk") == 1;
  const bool phases = phasesObserved(obs);
  std::vector<std::vector<double>> suspendRows, copyRows, resumeRows, totalRows;
  std::vector<double> suspendY, copyY, resumeY, totalY;
  for (const MigrationObservation& o : obs) {
    const double memGiB = o.vm.memoryBytes / kGiB;
    const double modGiB = o.vm.modifiedMemoryBytes / kGiB;
    const double state = o.vm.memoryBytes + o.vm.diskBytes;
    const double perBandwidth = state / o.bandwidthBytesPerSec;
    const double state2 = (state / kGiB) * (state / kGiB);
    suspendRows.push_back({1, memGiB, modGiB});
    copyRows.push_back(disk ? std::vector<double>{1, perBandwidth, state2}
                            : std::vector<double>{1, perBandwidth});
    resumeRows.push_back({1, memGiB});
    totalRows.push_back(disk ? std::vector<double>{1, memGiB, modGiB, perBandwidth, state2}
                             : std::vector<double>{1, memGiB, modGiB, perBandwidth});
    if (phases) {
      suspendY.push_back(*o.suspendS);
      copyY.push_back(*o.copyS);
      resumeY.push_back(*o.resumeS);
    }
    totalY.push_back(o.totalTimeS);
  }
  std::vector<std::string> copyKeys = {"copy_base_s", "copy_bandwidth_factor"};
  if (disk) copyKeys.push_back("copy_disk_s_per_gib2");
  const double bandwidthFactor = p.at("copy_bandwidth_factor");
  if (phases) {
    const std::vector<std::string> suspendKeys = {"suspend_base_s", "suspend_s_per_gib",
                                                  "suspend_s_per_modified_gib"};
    const std::vector<std::string> resumeKeys = {"resume_time_s", "resume_s_per_gib"};
    applyFit(fitNonNegative(suspendRows, suspendY, priors(p, suspendKeys)), suspendKeys, p,
             c.notes);
    applyFit(fitNonNegative(copyRows, copyY, priors(p, copyKeys)), copyKeys, p, c.notes);
    applyFit(fitNonNegative(resumeRows, resumeY, priors(p, resumeKeys)), resumeKeys, p, c.notes);
    c.notes.push_back("zhao-scr phases fitted separately on suspend_s, copy_s, resume_s");
  } else {
    std::vector<std::string> keys = {"suspend_base_s", "suspend_s_per_gib",
                                     "suspend_s_per_modified_gib", "copy_bandwidth_factor"};
    std::vector<double> prior = {
        p.at("suspend_base_s") + p.at("resume_time_s") + p.at("copy_base_s"),
        p.at("suspend_s_per_gib") + p.at("resume_s_per_gib"), p.at("suspend_s_per_modified_gib"),
        bandwidthFactor};
    if (disk) {
      keys.push_back("copy_disk_s_per_gib2");
      prior.push_back(p.at("copy_disk_s_per_gib2"));
    }
    fitOnTotalTime(c, totalRows, totalY, keys, prior,
                   {"resume_time_s", "resume_s_per_gib", "copy_base_s"},
                   "zhao-scr fitted on total time (no suspend_s/copy_s/resume_s on every row): "
                   "constant and per-GiB terms booked to suspend; resume_time_s, "
                   "resume_s_per_gib, copy_base_s set to 0");
  }
  keepCopyFactorPositive(c, bandwidthFactor);
  return Status::ok();
}

// qemu-scr's phases, each from its own column when every row has them, else the total. The
// state size of a row is its observed transferred bytes (the staged file) when known, else the
// model's; device_state_bytes is refitted as the median of (observed - modelled) state.
Status fitQemuScr(Calibration& c, const std::vector<MigrationObservation>& obs) {
  ModelParameters& p = c.parameters;
  auto model = createMigrationModel(c.model, p);
  if (!model) return model.status();
  std::vector<double> stateExcess;
  std::vector<double> state(obs.size());
  for (std::size_t i = 0; i < obs.size(); ++i) {
    LinkProfile link;
    link.bandwidthBytesPerSec = obs[i].bandwidthBytesPerSec;
    auto e = (*model)->estimate(obs[i].vm, link);
    if (!e) return Status::invalid(where(obs[i], i) + ": " + e.status().message());
    state[i] = e->transferredBytes;
    if (obs[i].transferredBytes) {
      stateExcess.push_back(*obs[i].transferredBytes -
                            (e->transferredBytes - p.at("device_state_bytes")));
      state[i] = *obs[i].transferredBytes;
    }
  }
  if (!stateExcess.empty()) {
    std::sort(stateExcess.begin(), stateExcess.end());
    p["device_state_bytes"] = std::max(0.0, residualQuantile(stateExcess, 0.5));
    c.notes.push_back("device_state_bytes fitted as the median state beyond the memory stream");
  }
  const bool phases = phasesObserved(obs);
  const double bandwidthFactor = p.at("copy_bandwidth_factor");
  std::vector<std::vector<double>> perGiB, saveRows, perBandwidth, total;
  std::vector<double> saveY, copyY, restoreY, handoffY, totalY;
  for (std::size_t i = 0; i < obs.size(); ++i) {
    const double gib = state[i] / kGiB;
    const double overBandwidth = state[i] / obs[i].bandwidthBytesPerSec;
    perGiB.push_back({1, gib});
    // The memory column last: with guests of one size it cannot be told from the constant, and
    // keeps its prior (the default, measured over guests of several sizes).
    saveRows.push_back({1, gib, obs[i].vm.memoryBytes / kGiB});
    perBandwidth.push_back({1, overBandwidth});
    total.push_back({1, gib, overBandwidth, obs[i].vm.memoryBytes / kGiB});
    totalY.push_back(obs[i].totalTimeS);
    if (phases) {
      saveY.push_back(*obs[i].suspendS);
      copyY.push_back(*obs[i].copyS);
      restoreY.push_back(*obs[i].resumeS);
      handoffY.push_back(obs[i].totalTimeS - *obs[i].suspendS - *obs[i].copyS - *obs[i].resumeS);
    }
  }
  if (phases) {
    const std::vector<std::string> saveKeys = {"save_base_s", "save_s_per_gib",
                                               "save_s_per_memory_gib"};
    const std::vector<std::string> copyKeys = {"copy_base_s", "copy_bandwidth_factor"};
    const std::vector<std::string> restoreKeys = {"restore_base_s", "restore_s_per_gib"};
    applyFit(fitNonNegative(saveRows, saveY, priors(p, saveKeys)), saveKeys, p, c.notes);
    applyFit(fitNonNegative(perBandwidth, copyY, priors(p, copyKeys)), copyKeys, p, c.notes);
    applyFit(fitNonNegative(perGiB, restoreY, priors(p, restoreKeys)), restoreKeys, p, c.notes);
    std::sort(handoffY.begin(), handoffY.end());
    p["handoff_s"] = std::max(0.0, residualQuantile(handoffY, 0.5));
    c.notes.push_back(
        "qemu-scr phases fitted separately on suspend_s (save), copy_s, resume_s (restore); "
        "handoff_s is the median of the rest");
  } else {
    const std::vector<std::string> keys = {"save_base_s", "save_s_per_gib", "copy_bandwidth_factor",
                                           "save_s_per_memory_gib"};
    const std::vector<double> prior = {
        p.at("save_base_s") + p.at("copy_base_s") + p.at("restore_base_s") + p.at("handoff_s"),
        p.at("save_s_per_gib") + p.at("restore_s_per_gib"), bandwidthFactor,
        p.at("save_s_per_memory_gib")};
    fitOnTotalTime(c, total, totalY, keys, prior,
                   {"copy_base_s", "restore_base_s", "restore_s_per_gib", "handoff_s"},
                   "qemu-scr fitted on total time (no suspend_s/copy_s/resume_s on every row): "
                   "the fixed and per-GiB terms are booked to save");
  }
  keepCopyFactorPositive(c, bandwidthFactor);
  return Status::ok();
}

}  // namespace vrm::planner::fitting
