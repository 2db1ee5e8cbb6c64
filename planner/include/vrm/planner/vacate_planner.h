// Vacate planning: which VMs go where, in what order, and when vacating must start.
//
// Input is a snapshot of the cluster (hosts with capacity still free from the vacate start
// onward, VMs and where they run) plus the reservation's hosts, start, clone time and margin.
// Output is a VacatePlan: each move with its predicted window relative to the vacate start,
// the makespan, and the latest safe start = reservation start - clone time - makespan - margin.
// Pure code: no I/O, no clock. plan() is const and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vrm/planner/migration_model.h"
#include "vrm/protocol/plan.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::planner {

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
};

// The plan vocabulary lives in protocol (plan.h) because vrmd and clients share it.
using vrm::MoveMode;
using vrm::moveModeName;
using vrm::PlannedMove;
using vrm::VacatePlan;

struct VacateRequest {
  std::vector<HostSnapshot> hosts;       // every host in the cluster
  std::vector<VmSnapshot> vms;           // every VM in the cluster
  std::vector<std::string> hostsToVacate;
  TimeNs reservationStartNs = 0;
  TimeNs cloneTimeNs = 0;
  TimeNs marginNs = 0;
};

class VacatePlanner {
 public:
  virtual ~VacatePlanner() = default;
  // Errors: rejected when some VM has no destination with room (the message names it);
  // invalid-argument for an unknown host to vacate.
  virtual Result<VacatePlan> plan(const VacateRequest& request) const = 0;
};

// The skeleton's planner: destinations by first fit in decreasing memory order, skipping hosts
// being vacated; moves one after another; times from `model` at each source NIC's bandwidth.
// Suspend-copy-resume for VMs that disallow live migration, live otherwise.
class SequentialVacatePlanner final : public VacatePlanner {
 public:
  explicit SequentialVacatePlanner(std::shared_ptr<const MigrationModel> model);
  Result<VacatePlan> plan(const VacateRequest& request) const override;

 private:
  std::shared_ptr<const MigrationModel> model_;
};

// Bytes a vacate of `host` must move (sum of its VMs' non-zero memory): the cost by which the
// skeleton's admission ranks candidate hosts, cheapest first.
std::uint64_t vacateBytes(const VacateRequest& request, const std::string& host);

}  // namespace vrm::planner
