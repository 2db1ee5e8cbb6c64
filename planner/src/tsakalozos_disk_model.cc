// "tsakalozos-disk": Expression 1 of Tsakalozos et al. (see vrm/planner/tsakalozos_disk_model.h).
#include "vrm/planner/tsakalozos_disk_model.h"

#include <limits>

#include "models.h"

namespace vrm::planner {
namespace {

using namespace tsakalozos;  // NOLINT: the key constants

class TsakalozosDiskModel final : public MigrationModel {
 public:
  explicit TsakalozosDiskModel(ModelParameters params) : params_(std::move(params)) {}
  std::string_view name() const override { return kDiskModel; }
  ModelParameters parameters() const override { return params_; }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    if (Status s = validateProfiles(vm, link); !s) return s;
    const double deadline = params_.at(kDeadlineS);
    const double vmm = params_.at(kVmmTimeS);
    const double net = link.bandwidthBytesPerSec;
    const double dirty = vm.diskDirtyRateBytesPerSec;
    const double disk = vm.diskBytes;

    MigrationEstimate e;
    e.extras["vmm_time_s"] = vmm;
    if (deadline > 0) e.extras["deadline_s"] = deadline;
    e.rounds = dirty > 0 ? 2 : 1;
    if (disk > 0 && dirty >= net) {
      // Blocks are dirtied at least as fast as they cross the link: phase 2 never ends.
      e.converges = false;
      e.feasible = false;
      e.totalTimeS = std::numeric_limits<double>::infinity();
      e.downtimeS = link.postOverheadS;
      e.transferredBytes = std::numeric_limits<double>::infinity();
      e.phases = {{"pre-migration", link.preOverheadS}, {"disk copy", disk / net}};
      return e;
    }
    const double sync = disk > 0 ? disk / (net - dirty) : 0;
    const double firstPass = disk / net;
    e.extras["sync_time_s"] = sync;
    e.phases = {{"pre-migration", link.preOverheadS},
                {"disk copy", firstPass},
                {"disk dirty sync", sync - firstPass},
                {"vmm migration", vmm},
                {"post-migration", link.postOverheadS}};
    e.totalTimeS = link.preOverheadS + sync + vmm + link.postOverheadS;
    e.downtimeS = link.postOverheadS;
    e.transferredBytes = net * sync + dirty * vmm;
    if (deadline > 0) {
      e.feasible = e.totalTimeS <= deadline;  // Expression 1
      e.extras["slack_s"] = deadline - e.totalTimeS;
      if (e.totalTimeS > 0) e.extras["deadline_ratio"] = deadline / e.totalTimeS;
    }
    return e;
  }

 private:
  ModelParameters params_;
};

}  // namespace

Result<std::unique_ptr<MigrationModel>> makeTsakalozosDiskModel(const ModelParameters& params) {
  auto merged = mergeParameters(kDiskModel, {{kDeadlineS, 0}, {kVmmTimeS, 0}}, params);
  if (!merged) return merged.status();
  if (merged->at(kDeadlineS) < 0) {
    return Status::invalid("model 'tsakalozos-disk': deadline_s must be >= 0 (0 = no deadline)");
  }
  if (merged->at(kVmmTimeS) < 0) {
    return Status::invalid("model 'tsakalozos-disk': vmm_time_s must be >= 0");
  }
  return std::unique_ptr<MigrationModel>(new TsakalozosDiskModel(std::move(*merged)));
}

}  // namespace vrm::planner
