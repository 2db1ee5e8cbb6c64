// A vacate plan as the whole system sees it: what the planner produces, vrmd executes and
// stores, and clients display. Times are TimeNs; offsets are relative to the vacate start.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vrm/protocol/time.h"

namespace vrm {

enum class MoveMode { kLive, kSuspendCopyResume };
const char* moveModeName(MoveMode mode);  // "live", "suspend-copy-resume"

struct PlannedMove {
  std::string vmId;
  std::string fromHost;
  std::string toHost;
  MoveMode mode = MoveMode::kLive;
  std::uint32_t batch = 0;      // moves of one batch run concurrently
  TimeNs startOffsetNs = 0;     // relative to the vacate start
  TimeNs endOffsetNs = 0;
  std::uint64_t transferredBytes = 0;
  std::uint64_t memoryBytes = 0;
  TimeNs downtimeNs = 0;
};

struct VacatePlan {
  std::string strategy;  // "sequential", ...
  std::string model;     // migration model used
  std::vector<PlannedMove> moves;
  TimeNs makespanNs = 0;
  TimeNs cloneTimeNs = 0;
  TimeNs marginNs = 0;
  TimeNs latestSafeStartNs = 0;
};

}  // namespace vrm
