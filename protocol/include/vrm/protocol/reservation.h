// Domain types of the reservation API: reservations, their lifecycle, hosts, VMs and the
// commands exchanged with agents. Shared by vrmd and the clients. Wire (Cap'n Proto) types are
// converted to these at the edge (wire_convert.h); nothing past the edge sees a capnp reader.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vrm/protocol/plan.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

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
  std::string objective;   // dedicated: "makespan" (default, "" too) or "degradation"
  TimeNs maxVmTimeNs = 0;  // degradation: bound on each VM's own migration time (0 = none)
  // dedicated: what displaced VMs do once the window ends: "stay" ("" too) where the vacate put
  // them, or "return" to the host they came from.
  std::string displaced;
};

enum class MoveState { kPlanned, kRunning, kDone, kFailed, kSkipped };
const char* moveStateName(MoveState state);

// Execution state of one planned move, parallel to VacatePlan::moves.
struct MoveProgress {
  MoveState state = MoveState::kPlanned;
  TimeNs actualStartNs = 0;
  TimeNs actualEndNs = 0;
};

enum class CloneState { kPending, kCloning, kRunning, kDestroying, kDestroyed, kFailed };
const char* cloneStateName(CloneState state);

struct ClonePlacement {
  std::string vmId;
  std::string host;
  CloneState state = CloneState::kPending;
  std::string address;
  std::string account;
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
  std::string reason;               // why rejected / cancelled / failed
  std::vector<std::string> hosts;   // dedicated hosts (vacated) or shared placement hosts
  VacatePlan plan;                  // empty for shared reservations
  std::vector<MoveProgress> moves;  // parallel to plan.moves
  std::vector<ClonePlacement> clones;
  // request.displaced == "return": the moves taking displaced VMs home after the window (created
  // when it ends), with their progress.
  std::vector<PlannedMove> returns;
  std::vector<MoveProgress> returnProgress;
  std::vector<ReservationEvent> events;
  TimeNs createdNs = 0;
  TimeNs updatedNs = 0;
  TimeNs earliestFeasibleStartNs = 0;  // on rejection, when known
  // Set by the executor when, during the vacate, the projected finish leaves less slack before
  // the deadline than its danger threshold allows (seed 004's Alg. 1); the owner is told by an
  // "at-risk:" event. It stays set as a record once raised.
  bool atRisk = false;
  std::string riskReason;
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

// kParked: saved to VmRecord::stateFile on its host and stopped (it holds no cores or memory
// there until it is unparked).
enum class VmState { kRunning, kSuspended, kMigratingOut, kIncoming, kCloning, kParked };

struct VmRecord {
  std::string id;
  std::string host;
  std::uint32_t cpuCores = 1;
  std::uint64_t memoryBytes = 0;
  std::uint64_t nonzeroMemoryBytes = 0;
  double dirtyRateBytesPerSec = 0;
  VmState state = VmState::kRunning;
  std::string reservationId;
  std::string address;
  std::uint64_t diskBytes = 0;
  std::string templateName;
  bool allowLive = true;     // may be live-migrated (cluster file: allow_live)
  bool allowSuspend = true;  // may be suspended-copied-resumed or parked (allow_suspend)
  std::string stateFile;     // kParked: where its saved state is
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
// Also the result of a park / unpark: mode kSuspend, fromHost = toHost = the host, saveNs (park:
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
