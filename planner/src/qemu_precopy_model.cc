// "qemu-precopy": QEMU's RAM pre-copy. Contract and keys are in vrm/planner/qemu_precopy_model.h.
//
// The stop test mirrors migration_iteration_run(): complete when the pending dirty bytes are 0 or
// below threshold_size = bandwidth * downtime_limit. In this model every pass runs at B, so QEMU's
// measured bandwidth equals B. The dirty set evolves as p_{k+1} = min(D * p_k / B, cap): once it
// fails to shrink it never shrinks again, which is what makes the plateau test exact.
#include "vrm/planner/qemu_precopy_model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models.h"

namespace vrm::planner {
namespace {

const ModelParameters& qemuDefaults() {
  static const ModelParameters kDefaults = {
      {"downtime_limit_s", 0.3}, {"max_bandwidth_bytes_per_s", 0},
      {"page_size_bytes", 4096}, {"zero_page_bytes", 9},
      {"max_passes", 1000},
  };
  return kDefaults;
}

class QemuPrecopyModel final : public MigrationModel {
 public:
  explicit QemuPrecopyModel(ModelParameters params) : params_(std::move(params)) {}
  std::string_view name() const override { return kQemuPrecopyModelName; }
  ModelParameters parameters() const override { return params_; }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    if (Status s = validateProfiles(vm, link); !s) return s;
    double bandwidth = link.bandwidthBytesPerSec;
    if (params_.at("max_bandwidth_bytes_per_s") > 0) {
      bandwidth = std::min(bandwidth, params_.at("max_bandwidth_bytes_per_s"));
    }
    const double threshold = bandwidth * params_.at("downtime_limit_s");
    const double cap = vm.writableWorkingSetBytes > 0
                           ? std::min(vm.writableWorkingSetBytes, vm.memoryBytes)
                           : vm.memoryBytes;
    const double d = vm.dirtyRateBytesPerSec;
    const int maxPasses = static_cast<int>(params_.at("max_passes"));

    MigrationEstimate e;
    if (link.preOverheadS > 0) e.phases.push_back({"setup", link.preOverheadS});
    const double zeroPages = (vm.memoryBytes - vm.nonzeroBytes()) / params_.at("page_size_bytes");
    double sent = vm.nonzeroBytes() + zeroPages * params_.at("zero_page_bytes");
    double passTime = sent / bandwidth;
    double elapsed = passTime;
    e.phases.push_back({"pass 0", passTime});
    int passes = 1;

    double pending = std::min(d * passTime, cap);
    double previous = -1;  // the dirty set the last pass started from; -1: none yet
    bool converges = false;
    while (true) {
      if (pending == 0 || pending < threshold) {
        converges = true;
        break;
      }
      // (p / B) * D can miss p by an ulp when D == B, hence the relative tolerance.
      const bool stalled = previous >= 0 && std::abs(pending - previous) <= 1e-9 * previous;
      if (stalled || passes >= maxPasses) break;  // at the plateau, or the guard
      // Shrinking sets head for the threshold; growing ones (D > B) rise to the cap and stall.
      previous = pending;
      passTime = pending / bandwidth;
      e.phases.push_back({"pass " + std::to_string(passes), passTime});
      sent += pending;
      elapsed += passTime;
      ++passes;
      pending = std::min(d * passTime, cap);
    }

    const double downtime = pending / bandwidth;
    e.phases.push_back({"stop-and-copy", downtime});
    if (link.postOverheadS > 0) e.phases.push_back({"commit", link.postOverheadS});
    e.converges = converges;
    e.downtimeS = downtime;
    e.totalTimeS = link.preOverheadS + elapsed + downtime + link.postOverheadS;
    e.transferredBytes = sent + pending;
    e.rounds = passes + 1;
    e.extras["bandwidth_bytes_per_s"] = bandwidth;
    e.extras["threshold_bytes"] = threshold;
    e.extras["final_dirty_bytes"] = pending;
    return e;
  }

 private:
  ModelParameters params_;
};

}  // namespace

Result<std::unique_ptr<MigrationModel>> makeQemuPrecopyModel(const ModelParameters& params) {
  auto merged = mergeParameters(kQemuPrecopyModelName, qemuDefaults(), params);
  if (!merged) return merged.status();
  const auto& p = *merged;
  if (p.at("downtime_limit_s") < 0) return Status::invalid("downtime_limit_s must be >= 0");
  if (p.at("max_bandwidth_bytes_per_s") < 0) {
    return Status::invalid("max_bandwidth_bytes_per_s must be >= 0 (0 = link goodput)");
  }
  if (!(p.at("page_size_bytes") > 0)) return Status::invalid("page_size_bytes must be > 0");
  if (p.at("zero_page_bytes") < 0) return Status::invalid("zero_page_bytes must be >= 0");
  const double passes = p.at("max_passes");
  if (passes < 1 || passes != std::floor(passes) || passes > 1e6) {
    return Status::invalid("max_passes must be a whole number in [1, 1000000]");
  }
  return std::unique_ptr<MigrationModel>(new QemuPrecopyModel(std::move(*merged)));
}

}  // namespace vrm::planner
