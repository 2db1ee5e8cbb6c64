#include "vrm/protocol/reservation.h"

namespace vrm {

namespace {
constexpr const char* kStateNames[] = {"requested", "admitted",  "vacating", "preparing",
                                       "ready",     "active",    "ending",   "done",
                                       "rejected",  "cancelled", "failed"};
}

const char* stateName(ReservationState state) { return kStateNames[static_cast<int>(state)]; }

std::optional<ReservationState> stateFromName(const std::string& name) {
  for (int i = 0; i <= static_cast<int>(ReservationState::kFailed); ++i) {
    if (name == kStateNames[i]) return static_cast<ReservationState>(i);
  }
  return std::nullopt;
}

bool isTerminal(ReservationState state) {
  return state == ReservationState::kDone || state == ReservationState::kRejected ||
         state == ReservationState::kCancelled || state == ReservationState::kFailed;
}

const char* moveStateName(MoveState state) {
  switch (state) {
    case MoveState::kPlanned:
      return "planned";
    case MoveState::kRunning:
      return "running";
    case MoveState::kDone:
      return "done";
    case MoveState::kFailed:
      return "failed";
    case MoveState::kSkipped:
      return "skipped";
  }
  return "unknown";
}

const char* cloneStateName(CloneState state) {
  switch (state) {
    case CloneState::kPending:
      return "pending";
    case CloneState::kCloning:
      return "cloning";
    case CloneState::kRunning:
      return "running";
    case CloneState::kDestroying:
      return "destroying";
    case CloneState::kDestroyed:
      return "destroyed";
    case CloneState::kFailed:
      return "failed";
  }
  return "unknown";
}

const char* moveModeName(MoveMode mode) {
  switch (mode) {
    case MoveMode::kLive:
      return "live";
    case MoveMode::kSuspendCopyResume:
      return "suspend-copy-resume";
    case MoveMode::kSuspend:
      return "suspend";
  }
  return "unknown";
}

const char* commandKindName(AgentCommand::Kind kind) {
  using K = AgentCommand::Kind;
  switch (kind) {
    case K::kPrepareIncoming:
      return "prepare-incoming";
    case K::kMigrate:
      return "migrate";
    case K::kFinishIncoming:
      return "finish-incoming";
    case K::kSuspend:
      return "suspend";
    case K::kResume:
      return "resume";
    case K::kClone:
      return "clone";
    case K::kDestroy:
      return "destroy";
    case K::kSetBandwidth:
      return "set-bandwidth";
    case K::kPark:
      return "park";
    case K::kUnpark:
      return "unpark";
  }
  return "unknown";
}

}  // namespace vrm
