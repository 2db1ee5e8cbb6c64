// The "simple" model: the VM is stopped, its non-zero memory crosses the link at full goodput,
// and it resumes. total = pre + nonzero / bandwidth + post, downtime = total. It is the
// skeleton's rule and the baseline the paper models are compared with.
#include <cmath>

#include "models.h"

namespace vrm::planner {

Status validateProfiles(const VmProfile& vm, const LinkProfile& link) {
  auto bad = [](double v) { return !std::isfinite(v) || v < 0; };
  if (bad(vm.memoryBytes) || vm.memoryBytes == 0) {
    return Status::invalid("memory size must be positive");
  }
  if (vm.nonzeroMemoryBytes >= 0 && vm.nonzeroMemoryBytes > vm.memoryBytes) {
    return Status::invalid("non-zero memory exceeds memory size");
  }
  if (bad(vm.dirtyRateBytesPerSec)) return Status::invalid("dirty rate must be >= 0");
  if (bad(vm.writableWorkingSetBytes)) return Status::invalid("writable working set must be >= 0");
  if (bad(vm.diskBytes) || bad(vm.diskDirtyRateBytesPerSec)) {
    return Status::invalid("disk size and disk dirty rate must be >= 0");
  }
  if (!std::isfinite(link.bandwidthBytesPerSec) || link.bandwidthBytesPerSec <= 0) {
    return Status::invalid("bandwidth must be positive");
  }
  if (bad(link.preOverheadS) || bad(link.postOverheadS)) {
    return Status::invalid("overheads must be >= 0");
  }
  if (bad(link.lineRateBytesPerSec)) return Status::invalid("line rate must be >= 0");
  for (double r : vm.dirtyRateHistoryBytesPerSec) {
    if (bad(r)) return Status::invalid("dirty-rate history entries must be >= 0");
  }
  return Status::ok();
}

Result<ModelParameters> mergeParameters(std::string_view model, const ModelParameters& defaults,
                                        const ModelParameters& given) {
  ModelParameters out = defaults;
  for (const auto& [key, value] : given) {
    if (!defaults.count(key)) {
      std::string known;
      for (const auto& [k, v] : defaults) known += (known.empty() ? "" : ", ") + k;
      return Status::invalid("model '" + std::string(model) + "' has no parameter '" + key +
                             "' (known: " + (known.empty() ? "none" : known) + ")");
    }
    if (!std::isfinite(value)) {
      return Status::invalid("parameter '" + key + "' must be a finite number");
    }
    out[key] = value;
  }
  return out;
}

namespace {

class SimpleModel final : public MigrationModel {
 public:
  explicit SimpleModel(ModelParameters params) : params_(std::move(params)) {}
  std::string_view name() const override { return "simple"; }
  ModelParameters parameters() const override { return params_; }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    if (Status s = validateProfiles(vm, link); !s) return s;
    MigrationEstimate e;
    const double copy = vm.nonzeroBytes() / link.bandwidthBytesPerSec;
    e.phases = {{"setup", link.preOverheadS}, {"copy", copy}, {"commit", link.postOverheadS}};
    e.totalTimeS = link.preOverheadS + copy + link.postOverheadS;
    e.downtimeS = e.totalTimeS;
    e.transferredBytes = vm.nonzeroBytes();
    e.rounds = 1;
    return e;
  }

 private:
  ModelParameters params_;
};

}  // namespace

Result<std::unique_ptr<MigrationModel>> makeSimpleModel(const ModelParameters& params) {
  auto merged = mergeParameters("simple", {}, params);
  if (!merged) return merged.status();
  return std::unique_ptr<MigrationModel>(new SimpleModel(std::move(*merged)));
}

}  // namespace vrm::planner
