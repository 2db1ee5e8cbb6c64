// Domain types of the reservation API: reservations, their lifecycle and moves, hosts, and the
// commands exchanged with agents (the VM record is vm.h). Shared by vrmd and the clients. Wire
// (Cap'n Proto) types are converted to these at the edge (wire_convert.h), and closed sets that
// travel as text (objective, displaced) are enums here, parsed once at that edge; nothing past
// the edge sees a capnp reader or compares such text. Value types, not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vrm/protocol/plan.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"
#include "vrm/protocol/vm.h"

namespace vrm {

// requested -> admitted -> vacating -> preparing -> ready -> active -> ending -> done,
// plus the terminal rejected, cancelled and failed.
enum class ReservationState {
  kRequested,
  kAdmitted,
  kVacating,
  kPreparing,
  kReady,
  kActive,
  kEnding,
  kDone,
  kRejected,
  kCancelled,
  kFailed,
};
const char* stateName(ReservationState state);  // "admitted", ...
std::optional<ReservationState> stateFromName(const std::string& name);
bool isTerminal(ReservationState state);

enum class ReservationKind { kDedicated, kShared };

// What a dedicated reservation's vacate plan optimises: the makespan (all moves done soonest),
// or the degradation of the VMs moved (each VM's own migration time or downtime bounded).
enum class Objective { kMakespan, kDegradation };
const char* objectiveName(Objective objective);  // "makespan", "degradation"
// "" reads as kMakespan (the default); anything else unknown is invalid-argument, saying so.
Result<Objective> objectiveFromName(std::string_view name);

// What a dedicated reservation's displaced VMs do once its window ends: stay where the vacate
// put them, or return to the host they came from.
enum class Displaced { kStay, kReturn };
const char* displacedName(Displaced displaced);  // "stay", "return"
// "" reads as nullopt (not said: stay); an unknown name is invalid-argument, saying so.
Result<std::optional<Displaced>> displacedFromName(std::string_view name);

struct ReservationRequest {
  std::string owner;
  ReservationKind kind = ReservationKind::kDedicated;
  std::uint32_t hostCount = 0;         // dedicated: how many hosts
  std::vector<std::string> hostNames;  // dedicated: or exactly these
  TimeNs startNs = 0;
  TimeNs endNs = 0;
  std::string templateName;
  std::uint32_t vmsPerHost = 0;  // dedicated: 0 = template default
  std::uint32_t vmCount = 0;     // shared: how many VMs
  bool dryRun = false;
  std::string label;
  Objective objective = Objective::kMakespan;  // dedicated
  TimeNs maxVmTimeNs = 0;  // kDegradation: bound on each VM's own migration time (0 = none)
  // Dedicated: what displaced VMs do once the window ends; nullopt = not said (they stay). A
  // shared reservation displaces nothing, so saying anything there is an error.
  std::optional<Displaced> displaced;
  // Dedicated: the quantile of its vacate's predicted makespan the latest safe start is set by,
  // in (0, 1); 0 = vrmd's default (vrmd --quantile).
  double quantile = 0;
  // The owner's OpenSSH public key, one line "TYPE BASE64 [comment]" (checkSshPublicKey() in
  // ssh_key.h); backends that can put it into a clone's account do so. "" = none.
  std::string sshPublicKey;

  bool returnsDisplaced() const { return displaced == Displaced::kReturn; }
};

enum class MoveState { kPlanned, kRunning, kDone, kFailed, kSkipped };
const char* moveStateName(MoveState state);

// Execution state of one move.
struct MoveProgress {
  MoveState state = MoveState::kPlanned;
  TimeNs actualStartNs = 0;
  TimeNs actualEndNs = 0;
};

// A move's identity within its reservation: given when the move is created, never reused (not
// after a re-plan replaces moves either), so commands, progress reports and caps refer to a
// move by it whatever happens to the list around it.
enum class MoveId : std::uint32_t {};
inline std::uint32_t moveIdValue(MoveId id) { return static_cast<std::uint32_t>(id); }

// Why a move exists. kVacate and kPark belong to the vacate plan (a VM leaves a host to be
// vacated: migrated to PlannedMove::toHost, or parked on its host, mode kPark); kReturn and
// kUnpark to the teardown after the window, or after a cancel or failure (a displaced VM
// migrated home, a parked VM unparked where it is, mode kPark, fromHost == toHost).
enum class MovePurpose { kVacate, kPark, kReturn, kUnpark };
const char* movePurposeName(MovePurpose purpose);  // "vacate", "park", "return", "unpark"
inline bool isVacatePurpose(MovePurpose p) {
  return p == MovePurpose::kVacate || p == MovePurpose::kPark;
}

struct Move {
  MoveId id{};
  MovePurpose purpose = MovePurpose::kVacate;
  PlannedMove planned;  // offsets from the plan's latest safe start; unused by returns
  MoveProgress progress;

  bool isVacate() const { return isVacatePurpose(purpose); }
  // Still to happen or happening: booked, and waited for.
  bool pendingOrRunning() const {
    return progress.state == MoveState::kPlanned || progress.state == MoveState::kRunning;
  }
};

enum class CloneState { kPending, kCloning, kRunning, kDestroying, kDestroyed, kFailed };
const char* cloneStateName(CloneState state);

// A clone and, once running, its handle: how its owner reaches it.
struct ClonePlacement {
  std::string vmId;
  std::string host;
  CloneState state = CloneState::kPending;
  std::string address;  // "" = not known (addressSource says why) or hidden from the caller
  std::string account;
  std::uint32_t port = 0;     // ssh's port at address; 0 = not known or not reachable by ssh
  std::string addressSource;  // where address and port come from (the backend says, never guesses)

  // A handle is shown only to who may see it: hideHandles() clears these fields.
  bool hasHandle() const { return state == CloneState::kRunning && !address.empty(); }
  // "ssh -p PORT ACCOUNT@ADDRESS", or "" without an address, a port and an account.
  std::string sshCommand() const;
};

struct ReservationEvent {
  TimeNs timeNs = 0;
  ReservationState state = ReservationState::kRequested;
  std::string message;
};

struct Reservation {
  std::string id;
  ReservationRequest request;
  ReservationState state = ReservationState::kRequested;
  std::string reason;              // why rejected / cancelled / failed
  std::vector<std::string> hosts;  // dedicated hosts (vacated) or shared placement hosts
  PlanSummary plan;                // the vacate plan's figures (empty for shared reservations)
  // Every move, in the order they were created: the vacate plan's (kVacate, kPark; a re-plan
  // replaces those not started by new ones at the end), then, after the window, the teardown's
  // (kReturn, kUnpark). Ids are unique within the reservation.
  std::vector<Move> moves;
  MoveId nextMoveId{1};  // the id the next move created gets
  std::vector<ClonePlacement> clones;
  std::vector<ReservationEvent> events;
  TimeNs createdNs = 0;
  TimeNs updatedNs = 0;
  TimeNs earliestFeasibleStartNs = 0;  // on rejection, when known
  // Set by the executor when, during the vacate, the projected finish leaves less slack before
  // the deadline than its danger threshold allows (seed 004's Alg. 1); the owner is told by an
  // "at-risk:" event. It stays set as a record once raised.
  bool atRisk = false;
  std::string riskReason;
  // The owner was told once (an event) that the start passed before the hosts were ready.
  bool lateNoted = false;
  // Ended early (cancelled, failed): the owner was told once that its returns and unparks are
  // over (the "returns done: ..." event).
  bool returnsNoted = false;

  // Appends a move with the next id; returns it.
  Move& addMove(MovePurpose purpose, PlannedMove planned);
  Move* findMove(MoveId id);
  const Move* findMove(MoveId id) const;
  // Moves of the vacate plan (kVacate, kPark) and of the teardown (kReturn, kUnpark).
  std::size_t vacateMoveCount() const;
  bool hasTeardownMoves() const;
  // The vacate plan's moves as planned (a copy, in order): what a client shows as "the plan".
  std::vector<PlannedMove> plannedMoves() const;
};

// A host as the manager knows it, from its agent's registration and heartbeats.
struct HostRecord {
  std::string name;
  std::uint32_t cpuCores = 0;
  std::uint64_t memoryBytes = 0;
  double nicBandwidthBytesPerSec = 0;
  std::string backend;
  std::string migrationEndpoint;
  bool reachable = false;
  TimeNs lastHeartbeatNs = 0;
};

// One piece of an online backup of vrmd's store (ClientRequest.backup): bytes
// [offset, offset + data.size()) of a consistent snapshot, an SQLite database file of totalBytes
// holding `reservations` reservations, taken at vrmd's clock takenAtNs.
struct BackupChunk {
  std::string snapshotId;
  std::uint64_t totalBytes = 0;
  std::uint64_t offset = 0;
  std::string data;
  std::uint32_t reservations = 0;
  TimeNs takenAtNs = 0;
};

// Measured phases of one completed migration, reported by the agent that ran it and fed to the
// calibrator. Every figure is what the backend measured, not what it was asked for or what a
// model predicts; 0 in setupNs, downtimeNs, transferredBytes, rounds or dirtyRateBytesPerSec means
// "not measured" (e.g. a libvirt driver without job statistics). mode is what happened (a libvirt
// save/restore migration is suspend-copy-resume even if live was asked). endNs - startNs is the
// total time; rounds counts the pre-copy rounds plus the stop-and-copy (1 for
// suspend-copy-resume); bandwidthBytesPerSec is the measured goodput (bytes over the time spent
// sending them), not the nominal link rate; dirtyRateBytesPerSec is the rate measured during the
// migration (the sim: mean over pre-copy; libvirt/QEMU: the job's last dirty-rate figure).
// Also the result of a park / unpark: mode kPark, fromHost = toHost = the host, saveNs (park:
// stop + write the state file) or restoreNs (unpark: read it back until the VM runs),
// transferredBytes = the state's size.
struct MigrationObservation {
  std::string vmId, fromHost, toHost;
  MoveMode mode = MoveMode::kLive;
  std::uint64_t memoryBytes = 0, nonzeroMemoryBytes = 0, transferredBytes = 0;
  double dirtyRateBytesPerSec = 0, bandwidthBytesPerSec = 0;
  TimeNs startNs = 0, endNs = 0, setupNs = 0, downtimeNs = 0;
  std::uint32_t rounds = 0;
  // Suspend-copy-resume's phases, measured separately so each can be calibrated (0 for live
  // migrations, or not measured): save = stop the VM and write its state to the source's staging
  // dir; copy = move the staged state into the destination's staging dir; restore = the
  // destination loads it (paused, ready to resume). Their sum is at most endNs - startNs.
  TimeNs saveNs = 0, copyNs = 0, restoreNs = 0;
};

// A command for one agent. Only the fields of its kind are meaningful.
struct AgentCommand {
  // kSuspend / kResume pause a VM in memory; kPark saves it to disk and stops it (freeing its
  // host's cores and memory), kUnpark restores and runs it again on the same host.
  enum class Kind {
    kPrepareIncoming,
    kMigrate,
    kFinishIncoming,
    kSuspend,
    kResume,
    kClone,
    kDestroy,
    kSetBandwidth,  // cap (or uncap) the VM's running outgoing migration
    kPark,
    kUnpark,
  };
  std::uint64_t id = 0;
  std::string host;  // agent that executes it
  Kind kind = Kind::kDestroy;
  std::string vmId;
  VmRecord vm;                      // prepareIncoming
  std::string destinationHost;      // migrate
  std::string destinationEndpoint;  // migrate
  MoveMode mode = MoveMode::kLive;
  double maxBandwidthBytesPerSec = 0;  // migrate, setBandwidth: 0 = unlimited
  bool commit = true;                  // finishIncoming
  std::string templateName;            // clone
  std::uint32_t cpuCores = 0;          // clone
  std::uint64_t memoryBytes = 0;       // clone
  std::string reservationId;           // clone
  TimeNs bootTimeNs = 0;               // clone
  std::string sshPublicKey;            // clone: the owner's key ("" = none)
};
const char* commandKindName(AgentCommand::Kind kind);

// An agent's answer to one command.
struct AgentResult {
  std::uint64_t commandId = 0;
  Status status;
  std::string incomingEndpoint;
  std::optional<MigrationObservation> migrated;  // migrate, park, unpark
  std::optional<ClonePlacement> cloned;          // vmId, host, address, account
};

struct AgentProgress {
  std::uint64_t commandId = 0;
  double fraction = 0;
  std::uint64_t bytesSent = 0, bytesTotal = 0;
  std::string phase;
};

struct ListFilter {
  std::string owner;                     // empty = any
  std::vector<ReservationState> states;  // empty = any
  TimeNs fromNs = 0, toNs = 0;           // overlapping [from, to); 0 = unbounded
};

}  // namespace vrm
