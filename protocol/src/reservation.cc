#include "vrm/protocol/reservation.h"

#include "vrm/protocol/webhook_delivery.h"

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

const char* deliveryStateName(DeliveryState state) {
  switch (state) {
    case DeliveryState::kPending:
      return "pending";
    case DeliveryState::kDelivered:
      return "delivered";
    case DeliveryState::kFailing:
      return "failing";
    case DeliveryState::kGaveUp:
      return "gave-up";
  }
  return "?";
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

std::string ClonePlacement::sshCommand() const {
  if (address.empty() || port == 0 || account.empty()) return "";
  // An IPv6 literal needs no brackets in user@host form; -p carries the port.
  return "ssh -p " + std::to_string(port) + " " + account + "@" + address;
}

const char* vmStateName(VmState state) {
  switch (state) {
    case VmState::kRunning:
      return "running";
    case VmState::kSuspended:
      return "suspended";
    case VmState::kMigratingOut:
      return "migrating-out";
    case VmState::kIncoming:
      return "incoming";
    case VmState::kCloning:
      return "cloning";
    case VmState::kParked:
      return "parked";
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
    case MoveMode::kPark:
      return "suspend";
  }
  return "unknown";
}

const char* objectiveName(Objective objective) {
  return objective == Objective::kDegradation ? "degradation" : "makespan";
}

Result<Objective> objectiveFromName(std::string_view name) {
  if (name.empty() || name == "makespan") return Objective::kMakespan;
  if (name == "degradation") return Objective::kDegradation;
  return Status::invalid("objective must be 'makespan' or 'degradation', not '" +
                         std::string(name) + "'");
}

const char* displacedName(Displaced displaced) {
  return displaced == Displaced::kReturn ? "return" : "stay";
}

Result<std::optional<Displaced>> displacedFromName(std::string_view name) {
  if (name.empty()) return std::optional<Displaced>{};
  if (name == "stay") return std::optional<Displaced>{Displaced::kStay};
  if (name == "return") return std::optional<Displaced>{Displaced::kReturn};
  return Status::invalid("displaced must be 'stay' or 'return', not '" + std::string(name) + "'");
}

const char* movePurposeName(MovePurpose purpose) {
  switch (purpose) {
    case MovePurpose::kVacate:
      return "vacate";
    case MovePurpose::kPark:
      return "park";
    case MovePurpose::kReturn:
      return "return";
    case MovePurpose::kUnpark:
      return "unpark";
  }
  return "unknown";
}

Move& Reservation::addMove(MovePurpose purpose, PlannedMove planned) {
  Move m;
  m.id = nextMoveId;
  m.purpose = purpose;
  m.planned = std::move(planned);
  nextMoveId = MoveId{moveIdValue(nextMoveId) + 1};
  moves.push_back(std::move(m));
  return moves.back();
}

Move* Reservation::findMove(MoveId id) {
  for (auto& m : moves) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

const Move* Reservation::findMove(MoveId id) const {
  for (const auto& m : moves) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

std::size_t Reservation::vacateMoveCount() const {
  std::size_t n = 0;
  for (const auto& m : moves) n += m.isVacate();
  return n;
}

std::vector<PlannedMove> Reservation::plannedMoves() const {
  std::vector<PlannedMove> out;
  for (const auto& m : moves) {
    if (m.isVacate()) out.push_back(m.planned);
  }
  return out;
}

bool Reservation::hasTeardownMoves() const {
  for (const auto& m : moves) {
    if (!m.isVacate()) return true;
  }
  return false;
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
