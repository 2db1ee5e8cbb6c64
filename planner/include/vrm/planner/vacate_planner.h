// Vacate planning: which VMs go where, in what order, and when vacating must start.
//
// Input is a snapshot of the cluster (hosts with capacity still free from the vacate start
// onward, VMs and where they run) plus the reservation's hosts, start, clone time and margin.
// Output is a VacatePlan: each move with its predicted window relative to the vacate start,
// the makespan, and the latest safe start = reservation start - clone time - makespan - margin.
// Pure code: no I/O, no clock. plan() is const and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vrm/planner/migration_model.h"
#include "vrm/protocol/plan.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::planner {

// Capacity another party holds on a host over [startNs, endNs): another reservation's clones, a
// pending move's VM, maintenance. Times are absolute.
struct CapacityBooking {
  TimeNs startNs = 0;
  TimeNs endNs = kTimeInfinity;
  std::uint32_t cpuCores = 0;
  std::uint64_t memoryBytes = 0;
  bool exclusive = false;  // the whole host is taken (another reservation's dedicated host)
  std::string owner;       // who holds it, for messages ("reservation r7")
};

struct HostSnapshot {
  std::string name;
  std::uint32_t cpuCores = 0;
  std::uint64_t memoryBytes = 0;
  double nicBandwidthBytesPerSec = 0;
  // Capacity free on this host from the vacate start until the reservation ends, after every
  // VM it runs and every booking (other reservations, incoming moves) is subtracted.
  std::uint32_t freeCpuCores = 0;
  std::uint64_t freeMemoryBytes = 0;
  bool canReceive = true;  // false: unreachable, or booked by another reservation
  // Added for CostAwareVacatePlanner (the skeleton's planner ignores them):
  // Future bookings not yet subtracted from free*: a destination must have room for a VM under
  // the peak of the bookings that end after VacateRequest::nowNs (displaced VMs stay where they
  // land), and a host with any booking overlapping [nowNs, reservationEndNs) is not a candidate
  // for vacating.
  std::vector<CapacityBooking> bookings;
  bool canVacate = true;  // false: unreachable, receiving another vacate's VMs, pinned...
};

struct VmSnapshot {
  std::string id;
  std::string host;
  std::uint32_t cpuCores = 1;
  std::uint64_t memoryBytes = 0;
  std::uint64_t nonzeroMemoryBytes = 0;
  double dirtyRateBytesPerSec = 0;
  bool allowLive = true;
  bool allowSuspend = true;
  // Added for CostAwareVacatePlanner:
  std::uint64_t diskBytes = 0;          // local disk to synchronise (0 = shared storage)
  double diskDirtyRateBytesPerSec = 0;  // block-dirtying rate of that disk
  std::vector<double> dirtyRateHistoryBytesPerSec;  // Liu eqs. 11-13, oldest first
  std::uint64_t modifiedMemoryBytes = 0;            // Zhao's suspend-phase input
  std::string workload;                             // "cpu", "memory" or "" (Zhao recovery time)
  // Added for issue 20 (what the agents measure):
  // The agent's recent periodic dirty-rate samples, oldest first (dirtyRateBytesPerSec is the
  // newest); VacateRequest::dirtyRateQuantile plans with a quantile of them.
  std::vector<double> dirtyRateSamplesBytesPerSec;
  std::uint64_t writableWorkingSetBytes = 0;  // pages rewritten continuously; 0 = unknown
};

// A network element several migrations may share, e.g. a rack uplink. A migration crosses it when
// exactly one of its two ends is in `hosts` (the link is the cut between `hosts` and the rest).
// NICs need no entry: every host's NIC is a resource of its own (full duplex: sending and
// receiving are separate).
struct SharedLink {
  std::string name;
  double bandwidthBytesPerSec = 0;
  std::vector<std::string> hosts;
};

enum class VacateObjective {
  kMakespan,     // finish the vacate soonest
  kDegradation,  // disturb each VM least (or within maxVmTimeNs) while meeting the deadline
};
const char* vacateObjectiveName(VacateObjective objective);  // "makespan", "degradation"

enum class SuspendPolicy {
  kNever,       // a VM without a destination makes plan() fail (rejected)
  kWhenNoRoom,  // a VM without a destination that allows suspension is suspended for the
                // reservation and resumed on its source afterwards (MoveMode::kSuspend)
};

// The plan vocabulary lives in protocol (plan.h) because vrmd and clients share it.
using vrm::MoveMode;
using vrm::moveModeName;
using vrm::PlannedMove;
using vrm::VacatePlan;

struct VacateRequest {
  std::vector<HostSnapshot> hosts;  // every host in the cluster
  std::vector<VmSnapshot> vms;      // every VM in the cluster
  std::vector<std::string> hostsToVacate;
  TimeNs reservationStartNs = 0;
  TimeNs cloneTimeNs = 0;
  TimeNs marginNs = 0;

  // Fields below are read by CostAwareVacatePlanner only; their defaults keep old callers valid.
  // The earliest the vacate can start (vrmd: now + planning latency). Deadline checks and
  // bookings are relative to it.
  TimeNs nowNs = 0;
  TimeNs reservationEndNs = 0;  // 0 = unknown (suspended VMs then have no resume time)
  // When hostsToVacate is empty: choose this many hosts among candidateHosts (empty = every
  // host), cheapest first by Liu eq. 18 (see CostAwareVacatePlanner::chooseHosts).
  std::uint32_t hostCount = 0;
  std::vector<std::string> candidateHosts;
  // What a vacated host must hold for the reservation (template x VMs per host); 0 = no check.
  std::uint32_t cloneCpuCoresPerHost = 0;
  std::uint64_t cloneMemoryBytesPerHost = 0;
  std::vector<SharedLink> links;
  VacateObjective objective = VacateObjective::kMakespan;
  // Per-VM bounds for kDegradation (0 = none): a move's own time (end - start) and downtime.
  TimeNs maxVmTimeNs = 0;
  TimeNs maxVmDowntimeNs = 0;
  // 0 = the planner chooses the strategy; k = batches of exactly k moves (1 = sequential).
  std::uint32_t batchSize = 0;
  // makespan at this quantile sets the latest safe start, in (0, 1); 0 = the planner's default
  // (CostAwareVacatePlannerOptions::quantile, 0.95; the skeleton's planner ignores it).
  double quantile = 0;
  // The calibrator's relative residuals of past vacates, (actual - predicted) / predicted; with
  // at least kMinErrorSamples of them their empirical quantile is used, otherwise a normal error
  // with this relative standard deviation.
  std::vector<double> relativeErrorSamples;
  double relativeErrorStdDev = 0.2;
  SuspendPolicy suspendPolicy = SuspendPolicy::kWhenNoRoom;
  // Where suspended VMs' state goes: "" = stays on the source (no network), else a store reached
  // at suspendStoreBandwidthBytesPerSec (the copy then shares the source NIC like a migration).
  std::string suspendStore;
  double suspendStoreBandwidthBytesPerSec = 0;
  // Added for issue 20: 0 = plan each VM at its current dirty-rate sample; q in (0, 1) = at the
  // q-quantile of its samples (VmSnapshot::dirtyRateSamplesBytesPerSec) and the current one.
  double dirtyRateQuantile = 0;
  // The template the reservation clones (for a calibrated clone time; empty = not known).
  std::string cloneTemplate;
};

inline constexpr std::size_t kMinErrorSamples = 5;

class IndexedCluster;  // vrm/planner/indexed_cluster.h

class VacatePlanner {
 public:
  virtual ~VacatePlanner() = default;
  // Errors: rejected when some VM has no destination with room (the message names it);
  // invalid-argument for an unknown host to vacate.
  virtual Result<VacatePlan> plan(const VacateRequest& request) const = 0;
  // The plan for `request` with the hosts and links of `cluster` in place of request.hosts and
  // request.links (both ignored): the same plan as plan() for a request listing them.
  // request.vms need only hold the VMs of the hosts to vacate (of the candidates, when the
  // planner chooses hosts); request.nowNs must be cluster.nowNs() (invalid-argument
  // otherwise). This default copies the cluster into a request; CostAwareVacatePlanner plans
  // from the index without touching every host.
  virtual Result<VacatePlan> plan(const IndexedCluster& cluster,
                                  const VacateRequest& request) const;
};

// The skeleton's planner: destinations by first fit in decreasing memory order, skipping hosts
// being vacated; moves one after another; times from `model` at each source NIC's bandwidth.
// Suspend-copy-resume for VMs that disallow live migration, live otherwise.
class SequentialVacatePlanner final : public VacatePlanner {
 public:
  explicit SequentialVacatePlanner(std::shared_ptr<const MigrationModel> model);
  using VacatePlanner::plan;
  Result<VacatePlan> plan(const VacateRequest& request) const override;

 private:
  std::shared_ptr<const MigrationModel> model_;
};

// Bytes a vacate of `host` must move (sum of its VMs' non-zero memory): the cost by which the
// skeleton's admission ranks candidate hosts, cheapest first.
std::uint64_t vacateBytes(const VacateRequest& request, const std::string& host);

}  // namespace vrm::planner
