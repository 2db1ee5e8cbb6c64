// Migration cost models: how long moving one VM takes, before doing it.
//
// A MigrationModel maps a VM profile and a link profile to an estimate (total time, downtime,
// bytes, rounds, per-phase times, energy where the model has it). Implementations reproduce the
// seed papers (see README "Migration models"); each documents its parameters and their defaults.
// Models are pure: no I/O, no threads, no clock; estimate() is const and thread-safe.
// Units: bytes, bytes per second and seconds (double), because the models are continuous math;
// the planner converts to TimeNs at its edge.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vrm/protocol/status.h"

namespace vrm::planner {

// Per-interval dirtied-page counts (Akoush et al.'s HIST model input): entry i is the number of
// distinct pages dirtied during [i*intervalS, (i+1)*intervalS).
struct DirtyLog {
  double intervalS = 1.0;
  std::vector<double> dirtiedPages;
};

struct VmProfile {
  double memoryBytes = 0;
  double nonzeroMemoryBytes = -1;   // resident non-zero memory; < 0 means "= memoryBytes"
  double dirtyRateBytesPerSec = 0;  // current dirty-rate sample
  // Weighted mean dirty rates of this VM's previous migrations, oldest first (Liu eq. 11-13).
  std::vector<double> dirtyRateHistoryBytesPerSec;
  double writableWorkingSetBytes = 0;  // hot pages rewritten continuously; 0 = unknown
  double modifiedMemoryBytes = 0;      // memory modified since last sync (Zhao suspend phase)
  double diskBytes = 0;                // local disk to synchronise (0 = shared storage)
  double diskDirtyRateBytesPerSec = 0;
  std::optional<DirtyLog> dirtyLog;  // page-dirtying trace, for trace-driven models
  std::string workload;              // "cpu", "memory" or "" (Zhao recovery time)

  double nonzeroBytes() const { return nonzeroMemoryBytes < 0 ? memoryBytes : nonzeroMemoryBytes; }
};

struct LinkProfile {
  double bandwidthBytesPerSec = 0;  // goodput available to this migration
  double preOverheadS = 0;          // setup before any byte moves (reservation, connection)
  double postOverheadS = 0;         // commit/cleanup after the last byte
  // What the path can carry when nothing throttles the migration (the slowest NIC or link on
  // it), for the parts a hypervisor sends unthrottled: QEMU's stop-and-copy. 0 = unknown (the
  // models then use bandwidthBytesPerSec). Never below bandwidthBytesPerSec in a valid profile.
  double lineRateBytesPerSec = 0;
};

struct PhaseTime {
  std::string name;  // "suspend", "copy", "resume", "round 1", "stop-and-copy", ...
  double seconds = 0;
};

struct MigrationEstimate {
  double totalTimeS = 0;
  double downtimeS = 0;
  double transferredBytes = 0;
  int rounds = 0;
  std::vector<PhaseTime> phases;
  std::optional<double> energyJ;  // Liu's energy model
  bool converges = true;          // qemu-precopy: false when the stop test is never met
  bool feasible = true;           // tsakalozos-disk: Expression 1 holds for the deadline
  // Model-specific extra figures (bounds, sync time, recovery time...), JSON-printable.
  std::map<std::string, double> extras;
};

// Named free parameters, e.g. {"gamma_a", -0.0463}. Each model lists its keys and defaults;
// unknown keys are an error so that a typo in a params file is not silently ignored.
using ModelParameters = std::map<std::string, double>;

class MigrationModel {
 public:
  virtual ~MigrationModel() = default;
  virtual std::string_view name() const = 0;
  // Errors: invalid-argument for impossible profiles (negative sizes, zero bandwidth...).
  virtual Result<MigrationEstimate> estimate(const VmProfile& vm,
                                             const LinkProfile& link) const = 0;
  // The parameters in force (defaults overlaid with what was given).
  virtual ModelParameters parameters() const = 0;
};

// Creates a model by name ("simple", "zhao-scr", "liu-base", ...). Errors: not-found for an
// unknown name (the message lists the known ones), invalid-argument for unknown or out-of-range
// parameters.
Result<std::unique_ptr<MigrationModel>> createMigrationModel(std::string_view name,
                                                             const ModelParameters& params = {});
// The names createMigrationModel() accepts.
std::vector<std::string> migrationModelNames();

// Common input checks every model applies first.
Status validateProfiles(const VmProfile& vm, const LinkProfile& link);

}  // namespace vrm::planner
