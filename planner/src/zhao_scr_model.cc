// "zhao-scr": suspend-copy-resume (Zhao & Figueiredo, VTDC'07). Contract and keys are in
// vrm/planner/zhao_scr_model.h.
//
// Where the defaults come from. The paper reports shapes, not coefficients (its figures are
// regression plots), so the defaults are anchored on its testbed: Gigabit Ethernet (125 MB/s raw;
// FTP over TCP delivers about 94% of it), a local EXT3 disk of "about 50MB/s", 256 MB - 1 GB VMs.
//  * copy, RAM-backed: linear and network-bound, S / (0.94 B): copy_bandwidth_factor = 1/0.94 =
//    1.064, i.e. 9.14 s/GiB on 1 GbE. Taking B from the link (not a fixed s/GiB) keeps the model
//    right on faster links and when parallel moves share one.
//  * copy, disk-backed: small states go at network speed, a 1 GiB state is throttled to the disk
//    (1 GiB / 50 MB/s = 21.5 s). A quadratic through t(0) = 0 with the network slope at 0 and
//    t(1 GiB) = 21.5 s on 1 GbE gives copy_disk_s_per_gib2 = 21.5 - 9.14 = 12.3 s/GiB^2. Like the
//    paper's fit it is only trustworthy over the sizes it was fitted on; beyond ~1 GiB it grows
//    faster than a disk-bound line, so refit it on your hosts.
//  * suspend with modified memory: the modified pages are written to the memory state file on
//    the local disk, so 1 GiB / 50 MB/s = 21.5 s per modified GiB (Fig. 5, "nearly
//    proportionally").
//  * suspend and resume base: "relatively stable", "small", growing "slightly" with memory. The
//    web-server case (512 MB VMs, migration ~9 s) leaves ~4.4 s beside a 4.6 s copy; 1.5 s +
//    0.5 s/GiB for each of suspend and resume is 3.5 s there, the rest being the web server's
//    modified memory.
//  * recovery: +2 s CPU-bound, +5 s memory-bound (Section 3.3.2); web servers recover in "a few
//    seconds", so unknown workloads get the smaller measured figure.
#include "vrm/planner/zhao_scr_model.h"

#include <cmath>

#include "models.h"

namespace vrm::planner {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

const ModelParameters& zhaoDefaults() {
  static const ModelParameters kDefaults = {
      {"destination_disk", 0},
      {"suspend_base_s", 1.5},
      {"suspend_s_per_gib", 0.5},
      {"suspend_s_per_modified_gib", 21.5},
      {"copy_base_s", 0},
      {"copy_bandwidth_factor", 1.064},
      {"copy_disk_s_per_gib2", 12.3},
      {"resume_time_s", 1.5},
      {"resume_s_per_gib", 0.5},
      {"recovery_cpu_s", 2},
      {"recovery_memory_s", 5},
      {"recovery_other_s", 2},
  };
  return kDefaults;
}

class ZhaoScrModel final : public MigrationModel {
 public:
  explicit ZhaoScrModel(ModelParameters params) : params_(std::move(params)) {}
  std::string_view name() const override { return kZhaoScrModelName; }
  ModelParameters parameters() const override { return params_; }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    if (Status s = validateProfiles(vm, link); !s) return s;
    if (!std::isfinite(vm.modifiedMemoryBytes) || vm.modifiedMemoryBytes < 0) {
      return Status::invalid("modified memory must be >= 0");
    }
    if (vm.modifiedMemoryBytes > vm.memoryBytes) {
      return Status::invalid("modified memory exceeds memory size");
    }
    const auto& p = params_;
    const double memGiB = vm.memoryBytes / kGiB;
    const double stateBytes = vm.memoryBytes + vm.diskBytes;
    const double stateGiB = stateBytes / kGiB;

    const double suspend = p.at("suspend_base_s") + p.at("suspend_s_per_gib") * memGiB +
                           p.at("suspend_s_per_modified_gib") * vm.modifiedMemoryBytes / kGiB;
    double copy = p.at("copy_base_s") +
                  p.at("copy_bandwidth_factor") * stateBytes / link.bandwidthBytesPerSec;
    if (p.at("destination_disk") == 1) copy += p.at("copy_disk_s_per_gib2") * stateGiB * stateGiB;
    const double resume = p.at("resume_time_s") + p.at("resume_s_per_gib") * memGiB;

    double recovery = p.at("recovery_other_s");
    if (vm.workload == "cpu") recovery = p.at("recovery_cpu_s");
    if (vm.workload == "memory") recovery = p.at("recovery_memory_s");

    MigrationEstimate e;
    if (link.preOverheadS > 0) e.phases.push_back({"setup", link.preOverheadS});
    e.phases.push_back({"suspend", suspend});
    e.phases.push_back({"copy", copy});
    e.phases.push_back({"resume", resume});
    if (link.postOverheadS > 0) e.phases.push_back({"commit", link.postOverheadS});
    e.downtimeS = suspend + copy + resume;
    e.totalTimeS = link.preOverheadS + e.downtimeS + link.postOverheadS;
    e.transferredBytes = stateBytes;
    e.rounds = 1;
    e.extras["recovery_time_s"] = recovery;
    e.extras["degradation_time_s"] = e.downtimeS + recovery;
    e.extras["state_bytes"] = stateBytes;
    return e;
  }

 private:
  ModelParameters params_;
};

}  // namespace

Result<std::unique_ptr<MigrationModel>> makeZhaoScrModel(const ModelParameters& params) {
  auto merged = mergeParameters(kZhaoScrModelName, zhaoDefaults(), params);
  if (!merged) return merged.status();
  for (const auto& [key, value] : *merged) {
    if (value < 0) return Status::invalid("zhao-scr parameter '" + key + "' must be >= 0");
  }
  const double disk = merged->at("destination_disk");
  if (disk != 0 && disk != 1) {
    return Status::invalid("destination_disk must be 0 (RAM-backed) or 1 (disk-backed)");
  }
  if (!(merged->at("copy_bandwidth_factor") > 0)) {
    return Status::invalid("copy_bandwidth_factor must be > 0");
  }
  return std::unique_ptr<MigrationModel>(new ZhaoScrModel(std::move(*merged)));
}

}  // namespace vrm::planner
