// "qemu-precopy": QEMU 7.2's RAM pre-copy. Contract, keys and what each step mirrors in QEMU are
// in vrm/planner/qemu_precopy_model.h.
//
// Numerics: each round is computed in closed form (its number of rate-limit windows and what it
// leaves unsent), so the cost is one loop iteration per dirty-bitmap sync, not per window. Pages
// are handled as continuous bytes; the rounding QEMU does per page is below the model's error.
#include "vrm/planner/qemu_precopy_model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models.h"
#include "vrm/planner/liu_model.h"

namespace vrm::planner {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

const ModelParameters& qemuDefaults() {
  static const ModelParameters kDefaults = {
      {"downtime_limit_s", 0.3},
      {"max_bandwidth_bytes_per_s", 0},
      {"page_size_bytes", 4096},
      {"page_header_bytes", 8},
      {"zero_page_bytes", 9},
      {"check_interval_s", 0.1},
      {"setup_s", 0.05},
      {"setup_s_per_gib", 0},
      {"bitmap_sync_s_per_gib", 0},
      {"downtime_base_s", 0.002},
      {"switchover_bandwidth_bytes_per_s", 0},
      {"max_throughput_bytes_per_s", 0},
      {"dirty_rate_mu", 0.7},
      {"dirty_rate_phi", 0.5},
      {"max_passes", 1000},
  };
  return kDefaults;
}

// The parameters read on every estimate, looked up once.
struct Params {
  double downtimeLimitS, maxBandwidth, pageSize, pageHeader, zeroPage, windowS, setupS, setupPerGiB,
      syncPerGiB, downtimeBaseS, switchoverBandwidth, maxThroughput, mu, phi;
  int maxPasses;
};

class QemuPrecopyModel final : public MigrationModel {
 public:
  explicit QemuPrecopyModel(ModelParameters params) : params_(std::move(params)) {
    const auto& p = params_;
    q_ = {p.at("downtime_limit_s"),
          p.at("max_bandwidth_bytes_per_s"),
          p.at("page_size_bytes"),
          p.at("page_header_bytes"),
          p.at("zero_page_bytes"),
          p.at("check_interval_s"),
          p.at("setup_s"),
          p.at("setup_s_per_gib"),
          p.at("bitmap_sync_s_per_gib"),
          p.at("downtime_base_s"),
          p.at("switchover_bandwidth_bytes_per_s"),
          p.at("max_throughput_bytes_per_s"),
          p.at("dirty_rate_mu"),
          p.at("dirty_rate_phi"),
          static_cast<int>(p.at("max_passes"))};
  }
  std::string_view name() const override { return kQemuPrecopyModelName; }
  ModelParameters parameters() const override { return params_; }

  Result<MigrationEstimate> estimate(const VmProfile& vm, const LinkProfile& link) const override {
    if (Status s = validateProfiles(vm, link); !s) return s;
    double b = link.bandwidthBytesPerSec;
    if (q_.maxBandwidth > 0) b = std::min(b, q_.maxBandwidth);
    double unthrottled = q_.switchoverBandwidth;
    if (!(unthrottled > 0)) {
      unthrottled = std::max(link.bandwidthBytesPerSec, link.lineRateBytesPerSec);
    }
    if (q_.maxThroughput > 0) {  // the host cannot send faster, throttled or not
      b = std::min(b, q_.maxThroughput);
      unthrottled = std::min(unthrottled, q_.maxThroughput);
    }
    const double window = q_.windowS;
    const double threshold = b * q_.downtimeLimitS;
    const double mem = vm.memoryBytes;
    const double nonzero = vm.nonzeroBytes();
    const double cap =
        vm.writableWorkingSetBytes > 0 ? std::min(vm.writableWorkingSetBytes, mem) : mem;
    double d = vm.dirtyRateBytesPerSec;
    if (!vm.dirtyRateHistoryBytesPerSec.empty()) {
      auto ewma = ewmaDirtyRate(vm.dirtyRateHistoryBytesPerSec, q_.mu);
      if (!ewma) return ewma.status();
      d = q_.phi * d + (1 - q_.phi) * *ewma;
    }
    const double dirtyCost = (q_.pageSize + q_.pageHeader) / q_.pageSize;
    const double bulkCost =
        (nonzero * dirtyCost + (mem - nonzero) * q_.zeroPage / q_.pageSize) / mem;
    const double syncS = q_.syncPerGiB * mem / kGiB;
    const double budget = b * q_.windowS;  // bytes per window

    MigrationEstimate e;
    const double setup = link.preOverheadS + q_.setupS + q_.setupPerGiB * mem / kGiB + syncS;
    if (setup > 0) e.phases.push_back({"setup", setup});
    double pending = mem;  // RAM bytes marked dirty: all of it after the setup's sync
    double cost = bulkCost;
    double sent = 0, elapsed = 0, windows = 0;
    int syncs = 1;
    bool converges = false;
    for (int pass = 0;; ++pass) {
      const double perWindow = budget / cost;  // RAM bytes a full window sends
      const double n = pending > threshold ? std::floor((pending - threshold) / perWindow) + 1 : 1;
      double left = pending - n * perWindow;
      double passS = n * window;
      if (left <= 0) {  // the pages ran out inside the last window: it ends there, unthrottled
        passS = (n - 1) * window + (pending - (n - 1) * perWindow) * cost / unthrottled;
        left = 0;
      }
      windows += n;
      sent += (pending - left) * cost;
      passS += syncS;
      elapsed += passS;
      e.phases.push_back({"pass " + std::to_string(pass), passS});
      const double dirtied = std::min(d * passS, cap);
      const double next = std::min(left + dirtied, mem);
      cost = next > 0 ? (left * cost + (next - left) * dirtyCost) / next : dirtyCost;
      ++syncs;
      const bool shrank = next < pending * (1 - 1e-12);
      pending = next;
      if (pending == 0 || pending < threshold) {
        converges = true;
        break;
      }
      // A dirty set that no longer shrinks never gets below T (it only grows to the cap).
      if (!shrank || pass + 1 >= q_.maxPasses) break;
    }

    const double finalBytes = pending * cost;
    const double downtime = q_.downtimeBaseS + syncS + finalBytes / unthrottled;
    ++syncs;  // migration_completion's last sync, with the VM stopped
    e.phases.push_back({"stop-and-copy", downtime});
    if (link.postOverheadS > 0) e.phases.push_back({"commit", link.postOverheadS});
    e.converges = converges;
    e.downtimeS = downtime;
    e.totalTimeS = setup + elapsed + downtime + link.postOverheadS;
    e.transferredBytes = sent + finalBytes;
    e.rounds = syncs;
    e.extras["bandwidth_bytes_per_s"] = b;
    e.extras["threshold_bytes"] = threshold;
    e.extras["final_dirty_bytes"] = pending;
    e.extras["windows"] = windows;
    e.extras["switchover_bytes_per_s"] = unthrottled;
    e.extras["switchover_bytes"] = finalBytes;
    return e;
  }

 private:
  ModelParameters params_;
  Params q_;
};

}  // namespace

Result<std::unique_ptr<MigrationModel>> makeQemuPrecopyModel(const ModelParameters& params) {
  auto merged = mergeParameters(kQemuPrecopyModelName, qemuDefaults(), params);
  if (!merged) return merged.status();
  const auto& p = *merged;
  for (const auto& [key, value] : p) {
    if (!(std::isfinite(value) && value >= 0)) {
      return Status::invalid("qemu-precopy parameter '" + key + "' must be a number >= 0");
    }
  }
  if (!(p.at("page_size_bytes") > 0)) return Status::invalid("page_size_bytes must be > 0");
  if (!(p.at("check_interval_s") > 0)) return Status::invalid("check_interval_s must be > 0");
  for (const char* weight : {"dirty_rate_mu", "dirty_rate_phi"}) {
    if (p.at(weight) > 1) return Status::invalid(std::string(weight) + " must be in [0, 1]");
  }
  const double passes = p.at("max_passes");
  if (passes < 1 || passes != std::floor(passes) || passes > 1e6) {
    return Status::invalid("max_passes must be a whole number in [1, 1000000]");
  }
  return std::unique_ptr<MigrationModel>(new QemuPrecopyModel(std::move(*merged)));
}

}  // namespace vrm::planner
