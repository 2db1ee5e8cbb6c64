// The one adapter from vrm's VM record (protocol/vm.h) to the planner's input (VmSnapshot):
// vrmd's admission and re-plans and `vrmctl plan` hand VMs to a planner only through it, so a
// field the planner learns to use (a VM's disk, its dirty-rate history, its workload class)
// reaches every planning path by being copied here once.
//
// Pure function. A VmRecord's nonzeroMemoryBytes of 0 means "not known" and is read as its
// memoryBytes (a migration then sends everything).
#pragma once

#include <algorithm>

#include "vrm/planner/vacate_planner.h"
#include "vrm/protocol/vm.h"

namespace vrm::planner {

inline VmSnapshot toVmSnapshot(const VmRecord& vm) {
  VmSnapshot s;
  s.id = vm.id;
  s.host = vm.host;
  s.cpuCores = vm.cpuCores;
  s.memoryBytes = vm.memoryBytes;
  s.nonzeroMemoryBytes = vm.nonzeroMemoryBytes ? vm.nonzeroMemoryBytes : vm.memoryBytes;
  s.dirtyRateBytesPerSec = vm.dirtyRateBytesPerSec;
  s.allowLive = vm.allowLive;
  s.allowSuspend = vm.allowSuspend;
  s.diskBytes = vm.diskBytes;
  s.diskDirtyRateBytesPerSec = vm.diskDirtyRateBytesPerSec;
  s.dirtyRateSamplesBytesPerSec = vm.dirtyRateSamplesBytesPerSec;
  s.modifiedMemoryBytes = std::min(vm.modifiedMemoryBytes, vm.memoryBytes);
  s.workload = vm.workload;
  return s;
}

}  // namespace vrm::planner
