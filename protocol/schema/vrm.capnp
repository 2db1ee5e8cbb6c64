# Wire schemas for vrm. One message per ZeroMQ frame (after routing frames).
#
# Conventions: times are Int64 nanoseconds since the Unix epoch (TimeNs), durations Int64 ns,
# sizes UInt64 bytes, rates Float64 bytes per second. Intervals are half-open [start, end).
# Every request carries a requestId that its reply echoes; every reply carries a Status.
@0xc4b1d0f6a2e37a91;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("vrm::wire");

enum StatusCode {
  ok @0;
  rejected @1;         # well-formed but refused (no capacity, too late, conflict)
  invalidArgument @2;  # malformed or impossible request
  notFound @3;
  unauthorized @4;
  internal @5;
  unavailable @6;      # a needed peer (agent, daemon) cannot be reached
}

struct Status {
  code @0 :StatusCode;
  message @1 :Text;    # one line a person can act on; empty when ok
}

# ---------------------------------------------------------------------------------------------
# Shared vocabulary

struct HostInfo {
  name @0 :Text;
  cpuCores @1 :UInt32;
  memoryBytes @2 :UInt64;
  nicBandwidthBytesPerSec @3 :Float64;
  reachable @4 :Bool;           # filled by vrmd in replies to clients
  lastHeartbeatNs @5 :Int64;    # filled by vrmd in replies to clients
}

enum VmState {
  running @0;
  suspended @1;
  migratingOut @2;
  incoming @3;        # prepared as a migration destination, not yet committed
  cloning @4;
  parked @5;          # saved to stateFile on its host and stopped: holds no cores or memory
}

struct VmInfo {
  id @0 :Text;
  host @1 :Text;
  cpuCores @2 :UInt32;
  memoryBytes @3 :UInt64;
  nonzeroMemoryBytes @4 :UInt64;     # resident, non-zero pages: what a migration really sends
  dirtyRateBytesPerSec @5 :Float64;
  state @6 :VmState;
  reservationId @7 :Text;            # empty for long-lived VMs
  address @8 :Text;
  diskBytes @9 :UInt64;
  template @10 :Text;
  # From the cluster file (allow_live, allow_suspend), reported by the agent and carried with the
  # VM when it migrates; the planner uses only the modes allowed.
  allowLive @11 :Bool = true;
  allowSuspend @12 :Bool = true;
  stateFile @13 :Text;               # parked: where its saved state is (backend specific)
  diskDirtyRateBytesPerSec @14 :Float64;  # the guest's write rate on its local disk (measured)
  # Measured by the agent for the migration models (issue 20); empty / 0 = not measured.
  dirtyRateSamples @15 :List(Float64);  # recent dirty-rate samples, bytes/s, oldest first
  modifiedMemoryBytes @16 :UInt64;      # memory modified over the last sampling interval
  workload @17 :Text;                   # "cpu", "memory" or ""
  # How to reach a clone, as its agent knows it (VmHandle's fields): vrmd sets a handle from
  # the inventory when it did not see the clone's answer (a restart of vrmd mid-clone).
  account @18 :Text;
  sshPort @19 :UInt32;                  # ssh's port at address; 0 = not known / not ssh
  addressSource @20 :Text;
}

# A guest its host lost without being asked to (its QEMU exited, or a restarted agent could not
# find it again). Agents report every one they lost since they started; vrmd acts once per
# (host, id, lostAtNs).
struct LostVm {
  id @0 :Text;                   # "" when the agent could not tell which (a corrupt state file)
  reservationId @1 :Text;
  lastState @2 :VmState;         # as listed last
  reason @3 :Text;               # what happened, for a person
  lostAtNs @4 :Int64;            # agent's clock when it noticed
}

enum MigrationMode {
  live @0;               # pre-copy live migration
  suspendCopyResume @1;  # Zhao & Figueiredo's suspend, copy, resume
  suspend @2;            # suspended for the reservation, resumed on its source afterwards
}

# ---------------------------------------------------------------------------------------------
# Client <-> vrmd

enum ReservationKind {
  dedicated @0;   # vacate whole hosts, then clone the template's VMs there
  shared @1;      # place VMs where there is room, no vacate
}

struct ReservationRequest {
  owner @0 :Text;
  kind @1 :ReservationKind;
  hostCount @2 :UInt32;          # dedicated: number of hosts wanted (or 0 with hostNames)
  hostNames @3 :List(Text);      # dedicated: explicit hosts
  startNs @4 :Int64;
  endNs @5 :Int64;
  template @6 :Text;             # VM template to clone
  vmsPerHost @7 :UInt32;         # dedicated: clones per host (0 = template default)
  vmCount @8 :UInt32;            # shared: number of VMs
  dryRun @9 :Bool;               # admission decision only; books nothing
  label @10 :Text;               # free text shown in listings
  objective @11 :Text;           # dedicated: "makespan" (default) or "degradation"
  maxVmTimeNs @12 :Int64;        # degradation: bound on each VM's own migration time (0 = none)
  displaced @13 :Text;           # dedicated: what displaced VMs do after the window:
                                 # "stay" (default, "" too) or "return" (migrate back home)
  quantile @14 :Float64;         # dedicated: makespan quantile of its plan, (0, 1); 0 = default
  sshPublicKey @15 :Text;        # the owner's OpenSSH public key ("TYPE BASE64 [comment]"), put
                                 # into its clones at clone time; "" = none
}

enum ReservationState {
  requested @0;
  admitted @1;
  vacating @2;
  preparing @3;
  ready @4;
  active @5;
  ending @6;
  done @7;
  rejected @8;
  cancelled @9;
  failed @10;
}

enum MoveState {
  planned @0;
  running @1;
  done @2;
  failed @3;
  skipped @4;
}

struct PlannedMove {
  vmId @0 :Text;
  fromHost @1 :Text;
  toHost @2 :Text;
  mode @3 :MigrationMode;
  batch @4 :UInt32;
  startOffsetNs @5 :Int64;       # relative to the vacate start
  endOffsetNs @6 :Int64;
  transferredBytes @7 :UInt64;
  downtimeNs @8 :Int64;
  state @9 :MoveState;
  actualStartNs @10 :Int64;      # 0 until it starts
  actualEndNs @11 :Int64;        # 0 until it ends
  memoryBytes @12 :UInt64;
  resumeAtNs @13 :Int64;                   # suspend: when to resume it (0 = not suspended)
  diskSyncNs @14 :Int64;                   # local-disk synchronisation (Tsakalozos Expr. 1)
  networkLimitBytesPerSec @15 :Float64;    # bandwidth share the plan assumes
  diskWriteLimitBytesPerSec @16 :Float64;  # broker's cap on the VM's disk writes (0 = none)
  replanCapBytesPerSec @17 :Float64;       # cap while a re-plan's moves share its NICs (0 = none)
  id @18 :UInt32;                          # the move's id in its reservation (0: stored before ids)
}

struct VacatePlan {
  strategy @0 :Text;             # "sequential", "parallel", "batched(k)"
  model @1 :Text;                # migration model used for the predictions
  moves @2 :List(PlannedMove);
  makespanNs @3 :Int64;
  cloneTimeNs @4 :Int64;
  marginNs @5 :Int64;
  latestSafeStartNs @6 :Int64;
  objective @7 :Text;                # "makespan", "degradation" ("" = skeleton planner)
  hosts @8 :List(Text);              # the hosts vacated
  batchSize @9 :UInt32;
  quantile @10 :Float64;
  makespanQuantileNs @11 :Int64;
  makespanLowerBoundNs @12 :Int64;
  maxVmTimeNs @13 :Int64;
  energyJ @14 :Float64;
  feasible @15 :Bool = true;
  earliestFeasibleStartNs @16 :Int64;
  notes @17 :List(Text);
}

struct VmHandle {
  vmId @0 :Text;
  host @1 :Text;
  address @2 :Text;
  account @3 :Text;
  port @4 :UInt32;               # where ssh listens at address (0 = not known / not ssh)
  addressSource @5 :Text;        # where address and port come from, e.g. "user-mode forward"
  ssh @6 :Text;                  # a ready command line ("ssh -p PORT ACCOUNT@ADDRESS"), or ""
}

enum CloneState {
  pending @0;     # placed, not yet asked for
  cloning @1;     # clone command sent
  running @2;     # handle returned
  destroying @3;  # destroy command sent
  destroyed @4;
  failed @5;
}

# One VM the reservation clones: where, and how far it got. vmId is chosen at admission so that
# a retried clone or destroy is idempotent.
struct ClonePlacement {
  vmId @0 :Text;
  host @1 :Text;
  state @2 :CloneState;
  address @3 :Text;
  account @4 :Text;
  port @5 :UInt32;               # as in VmHandle
  addressSource @6 :Text;
}

struct ReservationEvent {
  timeNs @0 :Int64;
  state @1 :ReservationState;
  message @2 :Text;
}

struct Reservation {
  id @0 :Text;
  request @1 :ReservationRequest;
  state @2 :ReservationState;
  reason @3 :Text;               # why rejected / failed / cancelled
  hosts @4 :List(Text);          # hosts booked for the reservation
  plan @5 :VacatePlan;
  handles @6 :List(VmHandle);
  events @7 :List(ReservationEvent);
  createdNs @8 :Int64;
  earliestFeasibleStartNs @9 :Int64;   # on rejection: a start that would be admitted (0 = unknown)
  clones @10 :List(ClonePlacement);
  updatedNs @11 :Int64;
  atRisk @12 :Bool;              # the executor projects the vacate to miss its deadline
  riskReason @13 :Text;          # why, as last assessed
  returns @14 :List(PlannedMove);  # displaced VMs going home after the window (with progress)
  nextMoveId @15 :UInt32;        # the id the reservation's next move gets (0: stored before ids)
  lateNoted @16 :Bool;           # the owner was told the start passed before the hosts were ready
  returnsNoted @17 :Bool;        # ended early: the owner was told its returns and unparks are over
}

# Published by vrmd on its events endpoint (ZeroMQ PUB) for every committed reservation event.
# Frames: topic "<reservationId>|", then this message.
struct EventNotice {
  reservationId @0 :Text;
  event @1 :ReservationEvent;
  state @2 :ReservationState;    # the reservation's state after the event
  movesDone @3 :UInt32;          # progress of the vacate
  movesTotal @4 :UInt32;
  clonesRunning @5 :UInt32;
  clonesTotal @6 :UInt32;
}

struct ListFilter {
  owner @0 :Text;                # empty = any
  states @1 :List(ReservationState);  # empty = any
  fromNs @2 :Int64;              # overlapping [fromNs, toNs); 0 = unbounded
  toNs @3 :Int64;
}

# An online backup of vrmd's store, read in chunks (admins only). The first request names no
# snapshot: vrmd takes one (SQLite's backup API, a consistent copy) and answers with its first
# chunk; the client asks for the rest by snapshot id and offset. vrmd keeps only its newest
# snapshots and drops one once its last byte has been read (notFound then: start again).
struct BackupRequest {
  snapshotId @0 :Text;           # "" = take a new snapshot
  offset @1 :UInt64;             # byte offset into the snapshot
}

struct BackupChunk {
  snapshotId @0 :Text;
  totalBytes @1 :UInt64;         # size of the whole snapshot (an SQLite database file)
  offset @2 :UInt64;             # where `data` starts
  data @3 :Data;                 # empty only past the end
  reservations @4 :UInt32;       # reservations in the snapshot
  takenAtNs @5 :Int64;           # vrmd's clock when the snapshot was taken
}

struct ClientRequest {
  requestId @0 :UInt64;
  union {
    submit @1 :ReservationRequest;
    get @2 :Text;                # reservation id
    list @3 :ListFilter;
    cancel @4 :Text;             # reservation id
    hosts @5 :Void;
    vms @6 :Void;
    backup @8 :BackupRequest;
  }
  requester @7 :Text;            # who asks (owner checks on cancel); empty = operator
}

struct ClientReply {
  requestId @0 :UInt64;
  status @1 :Status;
  nowNs @2 :Int64;               # vrmd's clock when replying
  union {
    none @3 :Void;
    reservation @4 :Reservation; # submit, get, cancel
    reservations @5 :List(Reservation);
    hosts @6 :List(HostInfo);
    vms @7 :List(VmInfo);
    backup @8 :BackupChunk;
  }
  # Set by a replica that does not lead (a standby vrmd on etcd), on every reply, with status
  # unavailable and nothing else: send the request again to the leader it names. Unset when
  # this replica served the request.
  notLeader @9 :NotLeader;
  # get: how the webhooks configured for the reservation's owner (vrmd --webhooks) fared with
  # its events, one entry per event and webhook, oldest first; empty to callers who may not act
  # for the owner, and when vrmd has no webhooks. (Added in session 31: additions only.)
  deliveries @10 :List(WebhookDelivery);
}

# One reservation event's delivery to one webhook (README: Notifications).
struct WebhookDelivery {
  url @0 :Text;                  # the webhook's URL, without its query string
  eventId @1 :Text;              # the id in the POSTed body ("r5.e3", "r5.before-end")
  kind @2 :Text;                 # "admitted", "vacate-started", "at-risk", "ready", ...
  state @3 :WebhookDeliveryState;
  attempts @4 :UInt32;           # POSTs made so far
  lastError @5 :Text;            # why the last attempt failed ("" when none has)
  lastAttemptNs @6 :Int64;       # vrmd's clock; 0 = not attempted yet
  nextAttemptNs @7 :Int64;       # pending / failing: when it is tried next
}

enum WebhookDeliveryState {
  pending @0;                    # not attempted yet, or an attempt under way
  delivered @1;                  # answered 2xx
  failing @2;                    # the last attempt failed; tried again at nextAttemptNs
  gaveUp @3;                     # still failing when vrmd stopped trying (vrmd --webhooks' cap)
}

# "Not the leader": where a replica that does not lead says the leader is (README: High
# availability).
struct NotLeader {
  leaderEndpoint @0 :Text;       # the leader's advertised endpoint (vrmd --advertise); empty =
                                 # no leader known (an election under way, etcd unreachable)
}

# ---------------------------------------------------------------------------------------------
# vrmd <-> agent (vmschedd). Agents connect a DEALER whose identity is their host name.

struct AgentRegister {
  host @0 :HostInfo;
  vms @1 :List(VmInfo);
  backend @2 :Text;              # "sim", "qemu", "libvirt"
  migrationEndpoint @3 :Text;    # where peers send migration streams (backend specific)
  lost @4 :List(LostVm);         # guests lost since the agent started, oldest first (bounded)
}

struct AgentHeartbeat {
  timeNs @0 :Int64;
  vms @1 :List(VmInfo);          # current inventory
  lost @2 :List(LostVm);         # as in AgentRegister
}

struct MigrateCommand {
  vmId @0 :Text;
  destinationHost @1 :Text;
  destinationEndpoint @2 :Text;  # returned by the destination's prepareIncoming
  mode @3 :MigrationMode;
  maxBandwidthBytesPerSec @4 :Float64;   # 0 = unlimited
  downtimeLimitNs @5 :Int64;             # 0 = backend default
}

struct CloneCommand {
  vmId @0 :Text;                 # chosen by vrmd so a retried clone is idempotent
  template @1 :Text;
  cpuCores @2 :UInt32;
  memoryBytes @3 :UInt64;
  reservationId @4 :Text;
  bootTimeNs @5 :Int64;          # expected clone + boot time (sim backends take this long)
  sshPublicKey @6 :Text;         # the reservation owner's key, for the clone's account ("" = none)
}

struct AgentCommand {
  commandId @0 :UInt64;
  union {
    prepareIncoming @1 :VmInfo;  # get ready to receive this VM; reply carries the endpoint
    migrate @2 :MigrateCommand;
    finishIncoming @3 :FinishIncoming;
    suspend @4 :Text;            # vm id
    resume @5 :Text;             # vm id
    clone @6 :CloneCommand;
    destroy @7 :Text;            # vm id
    setMigrationBandwidth @8 :SetMigrationBandwidth;
    # Save the VM's state to a file on its host and stop it, freeing its cores and memory; it
    # stays listed as parked (also after an agent restart) until unparked. Result: migrated with
    # mode suspend and saveNs. Parking a parked VM succeeds again (vrmd retries).
    park @9 :Text;               # vm id
    # Restore a parked VM from its state file and run it again, on the same host. Result:
    # migrated with mode suspend and restoreNs. Unparking a running VM succeeds again.
    unpark @10 :Text;            # vm id
  }
}

# Changes the bandwidth cap of the VM's running outgoing migration (vrmd caps running moves
# while a re-plan's moves share their NICs, and lifts the cap when those end). Errors:
# not-found (no such VM), rejected (the VM is not migrating out).
struct SetMigrationBandwidth {
  vmId @0 :Text;
  maxBandwidthBytesPerSec @1 :Float64;   # 0 = unlimited (the NIC's bandwidth)
}

struct FinishIncoming {
  vmId @0 :Text;
  commit @1 :Bool;               # true: the VM now lives here; false: drop the prepared VM
}

# Measured phases of one completed migration: what the calibrator learns from. Also the result
# of park / unpark: mode suspend, fromHost = toHost = the host, transferredBytes = the state's
# size, saveNs (park: stop + write the state file) or restoreNs (unpark: load it until running).
struct MigrationObservation {
  vmId @0 :Text;
  fromHost @1 :Text;
  toHost @2 :Text;
  mode @3 :MigrationMode;
  memoryBytes @4 :UInt64;
  nonzeroMemoryBytes @5 :UInt64;
  dirtyRateBytesPerSec @6 :Float64;
  startNs @7 :Int64;
  endNs @8 :Int64;
  setupNs @9 :Int64;
  downtimeNs @10 :Int64;
  transferredBytes @11 :UInt64;
  rounds @12 :UInt32;
  bandwidthBytesPerSec @13 :Float64;
  # Suspend-copy-resume's phases (0 = live, or not measured): stop + save to the staging dir,
  # copy to the destination's staging dir, restore there.
  saveNs @14 :Int64;
  copyNs @15 :Int64;
  restoreNs @16 :Int64;
}

struct CommandProgress {
  commandId @0 :UInt64;
  fraction @1 :Float64;          # 0..1
  bytesSent @2 :UInt64;
  bytesTotal @3 :UInt64;
  phase @4 :Text;
}

struct CommandResult {
  commandId @0 :UInt64;
  status @1 :Status;
  union {
    none @2 :Void;
    incomingEndpoint @3 :Text;   # prepareIncoming
    migrated @4 :MigrationObservation;
    cloned @5 :VmHandle;
  }
}

struct AgentMessage {
  union {
    register @0 :AgentRegister;
    heartbeat @1 :AgentHeartbeat;
    progress @2 :CommandProgress;
    result @3 :CommandResult;
  }
}

# vrmd -> agent
struct ManagerMessage {
  union {
    registered @0 :Status;       # answer to register
    command @1 :AgentCommand;
    # A replica that does not lead (a standby vrmd on etcd) answers every agent message with
    # this and nothing else: register with another replica (vmschedd tries the next endpoint
    # of its --vrmd list). leaderEndpoint is the leader's client endpoint, for logs: agents
    # find the leader's agent endpoint among their own list.
    notLeader @2 :NotLeader;
  }
}
