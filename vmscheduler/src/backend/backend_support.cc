#include <algorithm>

#include "backend/operation_support.h"
#include "backend/vm_table.h"
#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::backend {

Status busy(const std::string& vmId, const std::string& what) {
  return Status::rejected("vm '" + vmId + "' is busy (" + what + ")");
}

Status busy(const VmInfo& vm) { return busy(vm.id, vmStateName(vm.state)); }

Status notOnHost(const std::string& vmId, const std::string& host) {
  return Status::notFound("vm '" + vmId + "' is not on host '" + host + "'");
}

Status alreadyOnHost(const std::string& vmId, const std::string& host) {
  return Status::rejected("vm id '" + vmId + "' already exists on host '" + host + "'");
}

void HostRoom::add(const VmInfo& vm) {
  if (vm.state == VmState::kParked) return;
  usedCores_ += vm.cpuCores;
  usedMemoryBytes_ += vm.memoryBytes;
}

Status HostRoom::fits(std::uint32_t cores, std::uint64_t memoryBytes) const {
  const std::uint64_t freeMemory =
      host_.memoryBytes > usedMemoryBytes_ ? host_.memoryBytes - usedMemoryBytes_ : 0;
  const std::uint64_t freeCores = host_.cpuCores > usedCores_ ? host_.cpuCores - usedCores_ : 0;
  if (memoryBytes > freeMemory) {
    return Status::rejected("not enough free memory on host '" + host_.name + "': need " +
                            formatBytes(static_cast<double>(memoryBytes)) + ", free " +
                            formatBytes(static_cast<double>(freeMemory)));
  }
  if (cores > freeCores) {
    return Status::rejected("not enough free cpu cores on host '" + host_.name + "': need " +
                            std::to_string(cores) + ", free " + std::to_string(freeCores));
  }
  return Status::ok();
}

MigrationObservation observationOf(const VmInfo& vm, const std::string& fromHost,
                                   const std::string& toHost, MigrationMode mode) {
  MigrationObservation obs;
  obs.vmId = vm.id;
  obs.fromHost = fromHost;
  obs.toHost = toHost;
  obs.mode = mode;
  obs.memoryBytes = vm.memoryBytes;
  obs.nonzeroMemoryBytes = vm.nonzeroMemoryBytes;
  obs.dirtyRateBytesPerSec = vm.dirtyRateBytesPerSec;
  return obs;
}

OperationEvent completedEvent(OperationId id, Status status) {
  OperationEvent e;
  e.opId = id;
  e.kind = OperationEvent::Kind::kCompleted;
  e.status = std::move(status);
  return e;
}

std::optional<OperationEvent> ProgressSteps::next(OperationId id, double fraction,
                                                  std::uint64_t bytesSent, std::uint64_t bytesTotal,
                                                  const std::string& phase) {
  const int step = std::clamp(static_cast<int>(fraction * 10), 0, 9);
  if (step <= lastStep_) return std::nullopt;
  lastStep_ = step;
  OperationEvent e;
  e.opId = id;
  e.kind = OperationEvent::Kind::kProgress;
  e.fraction = fraction;
  e.bytesSent = bytesSent;
  e.bytesTotal = bytesTotal;
  e.phase = phase;
  return e;
}

}  // namespace vrm::vmscheduler::backend
