// "qemu-scr": staged suspend-copy-resume by phase. Contract and keys are in
// vrm/planner/qemu_scr_model.h.
#include "vrm/planner/qemu_scr_model.h"

#include <cmath>

#include "models.h"

namespace vrm::planner {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

const ModelParameters& qemuScrDefaults() {
  static const ModelParameters kDefaults = {
      {"page_size_bytes", 4096},       {"page_header_bytes", 8}, {"zero_page_bytes", 9},
      {"device_state_bytes", 2300000}, {"save_base_s", 0.23},    {"save_s_per_gib", 0.3},
      {"save_s_per_memory_gib", 1.16}, {"copy_base_s", 0.03},    {"copy_bandwidth_factor", 1.0},
      {"restore_base_s", 0.43},        {"restore_s_per_gib", 0}, {"handoff_s", 0.03},
  };
  return kDefaults;
}

class QemuScrModel final : public MigrationModel {
 public:
  explicit QemuScrModel(ModelParameters params) : params_(std::move(params)) {}
  std::string_view name() const override { return kQemuScrModelName; }
  ModelParameters parameters() const override { return params_; }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    if (Status s = validateProfiles(vm, link); !s) return s;
    const auto& p = params_;
    const double page = p.at("page_size_bytes");
    const double nonzero = vm.nonzeroBytes();
    const double state = nonzero * (page + p.at("page_header_bytes")) / page +
                         (vm.memoryBytes - nonzero) / page * p.at("zero_page_bytes") +
                         p.at("device_state_bytes");
    const double stateGiB = state / kGiB;
    const double save = p.at("save_base_s") + p.at("save_s_per_gib") * stateGiB +
                        p.at("save_s_per_memory_gib") * vm.memoryBytes / kGiB;
    const double copy =
        p.at("copy_base_s") + p.at("copy_bandwidth_factor") * state / link.bandwidthBytesPerSec;
    const double restore = p.at("restore_base_s") + p.at("restore_s_per_gib") * stateGiB;
    const double handoff = p.at("handoff_s");

    MigrationEstimate e;
    if (link.preOverheadS > 0) e.phases.push_back({"setup", link.preOverheadS});
    e.phases.push_back({"save", save});
    e.phases.push_back({"copy", copy});
    e.phases.push_back({"restore", restore});
    e.phases.push_back({"handoff", handoff});
    if (link.postOverheadS > 0) e.phases.push_back({"commit", link.postOverheadS});
    e.downtimeS = save + copy + restore + handoff;
    e.totalTimeS = link.preOverheadS + e.downtimeS + link.postOverheadS;
    e.transferredBytes = state;
    e.rounds = 1;
    e.extras["state_bytes"] = state;
    return e;
  }

 private:
  ModelParameters params_;
};

}  // namespace

Result<std::unique_ptr<MigrationModel>> makeQemuScrModel(const ModelParameters& params) {
  auto merged = mergeParameters(kQemuScrModelName, qemuScrDefaults(), params);
  if (!merged) return merged.status();
  for (const auto& [key, value] : *merged) {
    if (!(value >= 0)) return Status::invalid("qemu-scr parameter '" + key + "' must be >= 0");
  }
  if (!(merged->at("page_size_bytes") > 0)) return Status::invalid("page_size_bytes must be > 0");
  if (!(merged->at("copy_bandwidth_factor") > 0)) {
    return Status::invalid("copy_bandwidth_factor must be > 0");
  }
  return std::unique_ptr<MigrationModel>(new QemuScrModel(std::move(*merged)));
}

}  // namespace vrm::planner
