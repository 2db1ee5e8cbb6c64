// Pieces every backend's long operations share: the observation a migration, park or unpark
// starts from, completion events, and progress reported once per tenth.
#pragma once

#include <optional>
#include <string>

#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler::backend {

// What is known of a move before it runs: the VM's id, memory, non-zero memory and dirty rate,
// the hosts and the mode (fromHost == toHost for parks and unparks, mode kSuspend).
MigrationObservation observationOf(const VmInfo& vm, const std::string& fromHost,
                                   const std::string& toHost, MigrationMode mode);

// A kCompleted event of operation `id` with `status` (and nothing else set).
OperationEvent completedEvent(OperationId id, Status status = Status::ok());

// Reports an operation's progress at most once per tenth of it (0.0-0.1, 0.1-0.2, ...), so an
// agent polling every few milliseconds sends vrmd ten progress messages, not thousands.
class ProgressSteps {
 public:
  // A kProgress event when `fraction` reaches a tenth not reported yet; nullopt otherwise.
  std::optional<OperationEvent> next(OperationId id, double fraction, std::uint64_t bytesSent,
                                     std::uint64_t bytesTotal, const std::string& phase);

 private:
  int lastStep_ = -1;
};

}  // namespace vrm::vmscheduler::backend
