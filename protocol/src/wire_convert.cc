#include "vrm/protocol/wire_convert.h"

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <algorithm>

#include "vrm/protocol/codec.h"
#include "vrm/protocol/ssh_key.h"

namespace vrm::protocol {

wire::StatusCode toWire(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return wire::StatusCode::OK;
    case StatusCode::kRejected:
      return wire::StatusCode::REJECTED;
    case StatusCode::kInvalidArgument:
      return wire::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return wire::StatusCode::NOT_FOUND;
    case StatusCode::kUnauthorized:
      return wire::StatusCode::UNAUTHORIZED;
    case StatusCode::kInternal:
      return wire::StatusCode::INTERNAL;
    case StatusCode::kUnavailable:
      return wire::StatusCode::UNAVAILABLE;
  }
  return wire::StatusCode::INTERNAL;
}

StatusCode fromWire(wire::StatusCode code) {
  switch (code) {
    case wire::StatusCode::OK:
      return StatusCode::kOk;
    case wire::StatusCode::REJECTED:
      return StatusCode::kRejected;
    case wire::StatusCode::INVALID_ARGUMENT:
      return StatusCode::kInvalidArgument;
    case wire::StatusCode::NOT_FOUND:
      return StatusCode::kNotFound;
    case wire::StatusCode::UNAUTHORIZED:
      return StatusCode::kUnauthorized;
    case wire::StatusCode::INTERNAL:
      return StatusCode::kInternal;
    case wire::StatusCode::UNAVAILABLE:
      return StatusCode::kUnavailable;
  }
  return StatusCode::kInternal;  // an enum value from a newer peer
}

void toWire(const Status& status, wire::Status::Builder out) {
  out.setCode(toWire(status.code()));
  out.setMessage(status.message());
}

Status fromWire(wire::Status::Reader in) {
  StatusCode code = fromWire(in.getCode());
  if (code == StatusCode::kOk) return Status::ok();
  return Status(code, toStd(in.getMessage()));
}

wire::ReservationState toWire(ReservationState s) {
  return static_cast<wire::ReservationState>(static_cast<int>(s));
}

ReservationState fromWire(wire::ReservationState s) {
  int v = static_cast<int>(s);
  if (v < 0 || v > static_cast<int>(ReservationState::kFailed)) return ReservationState::kFailed;
  return static_cast<ReservationState>(v);
}

static_assert(static_cast<int>(wire::ReservationState::FAILED) ==
              static_cast<int>(ReservationState::kFailed));

void toWire(const ReservationRequest& in, wire::ReservationRequest::Builder out) {
  out.setOwner(in.owner);
  out.setKind(in.kind == ReservationKind::kShared ? wire::ReservationKind::SHARED
                                                  : wire::ReservationKind::DEDICATED);
  out.setHostCount(in.hostCount);
  auto names = out.initHostNames(static_cast<unsigned>(in.hostNames.size()));
  for (unsigned i = 0; i < in.hostNames.size(); ++i) names.set(i, in.hostNames[i]);
  out.setStartNs(in.startNs);
  out.setEndNs(in.endNs);
  out.setTemplate(in.templateName);
  out.setVmsPerHost(in.vmsPerHost);
  out.setVmCount(in.vmCount);
  out.setDryRun(in.dryRun);
  out.setLabel(in.label);
  out.setObjective(objectiveName(in.objective));
  out.setMaxVmTimeNs(in.maxVmTimeNs);
  out.setDisplaced(in.displaced ? displacedName(*in.displaced) : "");
  out.setQuantile(in.quantile);
  out.setSshPublicKey(in.sshPublicKey);
}

namespace {

// Every field but the two closed sets that travel as text.
ReservationRequest requestFields(wire::ReservationRequest::Reader in) {
  ReservationRequest r;
  r.owner = toStd(in.getOwner());
  r.kind = in.getKind() == wire::ReservationKind::SHARED ? ReservationKind::kShared
                                                         : ReservationKind::kDedicated;
  r.hostCount = in.getHostCount();
  for (auto n : in.getHostNames()) r.hostNames.push_back(toStd(n));
  r.startNs = in.getStartNs();
  r.endNs = in.getEndNs();
  r.templateName = toStd(in.getTemplate());
  r.vmsPerHost = in.getVmsPerHost();
  r.vmCount = in.getVmCount();
  r.dryRun = in.getDryRun();
  r.label = toStd(in.getLabel());
  r.maxVmTimeNs = in.getMaxVmTimeNs();
  r.quantile = in.getQuantile();
  r.sshPublicKey = toStd(in.getSshPublicKey());
  return r;
}

}  // namespace

ReservationRequest fromWire(wire::ReservationRequest::Reader in) {
  ReservationRequest r = requestFields(in);
  if (auto objective = objectiveFromName(toStd(in.getObjective()))) r.objective = *objective;
  if (auto displaced = displacedFromName(toStd(in.getDisplaced()))) r.displaced = *displaced;
  return r;
}

Result<ReservationRequest> requestFromWire(wire::ReservationRequest::Reader in) {
  ReservationRequest r = requestFields(in);
  auto objective = objectiveFromName(toStd(in.getObjective()));
  if (!objective) return objective.status();
  r.objective = *objective;
  auto displaced = displacedFromName(toStd(in.getDisplaced()));
  if (!displaced) return displaced.status();
  r.displaced = *displaced;
  if (r.quantile != 0 && !(r.quantile > 0 && r.quantile < 1)) {
    return Status::invalid("quantile must be between 0 and 1 (exclusive), or 0 for vrmd's default");
  }
  if (!r.sshPublicKey.empty()) {
    if (Status s = checkSshPublicKey(r.sshPublicKey); !s) {
      return Status::invalid("sshPublicKey: " + s.message());
    }
  }
  return r;
}

wire::MigrationMode toWire(MoveMode m) {
  switch (m) {
    case MoveMode::kLive:
      return wire::MigrationMode::LIVE;
    case MoveMode::kSuspendCopyResume:
      return wire::MigrationMode::SUSPEND_COPY_RESUME;
    case MoveMode::kPark:
      return wire::MigrationMode::SUSPEND;
  }
  return wire::MigrationMode::LIVE;
}

MoveMode fromWire(wire::MigrationMode m) {
  switch (m) {
    case wire::MigrationMode::SUSPEND_COPY_RESUME:
      return MoveMode::kSuspendCopyResume;
    case wire::MigrationMode::SUSPEND:
      return MoveMode::kPark;
    default:
      return MoveMode::kLive;
  }
}

namespace {

template <typename E>
E clampEnum(E v, E max, E fallback) {
  return static_cast<int>(v) >= 0 && static_cast<int>(v) <= static_cast<int>(max) ? v : fallback;
}

}  // namespace

namespace {

void writeMove(const Move& move, wire::PlannedMove::Builder w) {
  const PlannedMove& m = move.planned;
  w.setId(moveIdValue(move.id));
  w.setVmId(m.vmId);
  w.setFromHost(m.fromHost);
  w.setToHost(m.toHost);
  w.setMode(toWire(m.mode));
  w.setBatch(m.batch);
  w.setStartOffsetNs(m.startOffsetNs);
  w.setEndOffsetNs(m.endOffsetNs);
  w.setTransferredBytes(m.transferredBytes);
  w.setDowntimeNs(m.downtimeNs);
  w.setMemoryBytes(m.memoryBytes);
  w.setResumeAtNs(m.resumeAtNs);
  w.setDiskSyncNs(m.diskSyncNs);
  w.setNetworkLimitBytesPerSec(m.networkLimitBytesPerSec);
  w.setReplanCapBytesPerSec(m.replanCapBytesPerSec);
  w.setDiskWriteLimitBytesPerSec(m.diskWriteLimitBytesPerSec);
  w.setState(static_cast<wire::MoveState>(static_cast<int>(move.progress.state)));
  w.setActualStartNs(move.progress.actualStartNs);
  w.setActualEndNs(move.progress.actualEndNs);
}

PlannedMove readMove(wire::PlannedMove::Reader w) {
  PlannedMove m;
  m.vmId = toStd(w.getVmId());
  m.fromHost = toStd(w.getFromHost());
  m.toHost = toStd(w.getToHost());
  m.mode = fromWire(w.getMode());
  m.batch = w.getBatch();
  m.startOffsetNs = w.getStartOffsetNs();
  m.endOffsetNs = w.getEndOffsetNs();
  m.transferredBytes = w.getTransferredBytes();
  m.downtimeNs = w.getDowntimeNs();
  m.memoryBytes = w.getMemoryBytes();
  m.resumeAtNs = w.getResumeAtNs();
  m.diskSyncNs = w.getDiskSyncNs();
  m.networkLimitBytesPerSec = w.getNetworkLimitBytesPerSec();
  m.replanCapBytesPerSec = w.getReplanCapBytesPerSec();
  m.diskWriteLimitBytesPerSec = w.getDiskWriteLimitBytesPerSec();
  return m;
}

MoveProgress readProgress(wire::PlannedMove::Reader w) {
  MoveProgress p;
  p.state = static_cast<MoveState>(
      static_cast<int>(clampEnum(w.getState(), wire::MoveState::SKIPPED, wire::MoveState::FAILED)));
  p.actualStartNs = w.getActualStartNs();
  p.actualEndNs = w.getActualEndNs();
  return p;
}

}  // namespace

void toWire(const Reservation& in, wire::Reservation::Builder out) {
  out.setId(in.id);
  toWire(in.request, out.initRequest());
  out.setState(toWire(in.state));
  out.setReason(in.reason);
  auto hosts = out.initHosts(static_cast<unsigned>(in.hosts.size()));
  for (unsigned i = 0; i < in.hosts.size(); ++i) hosts.set(i, in.hosts[i]);

  auto plan = out.initPlan();
  plan.setStrategy(in.plan.strategy);
  plan.setModel(in.plan.model);
  plan.setMakespanNs(in.plan.makespanNs);
  plan.setCloneTimeNs(in.plan.cloneTimeNs);
  plan.setMarginNs(in.plan.marginNs);
  plan.setLatestSafeStartNs(in.plan.latestSafeStartNs);
  plan.setObjective(in.plan.objective);
  auto planHosts = plan.initHosts(static_cast<unsigned>(in.plan.hosts.size()));
  for (unsigned i = 0; i < in.plan.hosts.size(); ++i) planHosts.set(i, in.plan.hosts[i]);
  plan.setBatchSize(in.plan.batchSize);
  plan.setQuantile(in.plan.quantile);
  plan.setMakespanQuantileNs(in.plan.makespanQuantileNs);
  plan.setMakespanLowerBoundNs(in.plan.makespanLowerBoundNs);
  plan.setMaxVmTimeNs(in.plan.maxVmTimeNs);
  plan.setEnergyJ(in.plan.energyJ);
  plan.setFeasible(in.plan.feasible);
  plan.setEarliestFeasibleStartNs(in.plan.earliestFeasibleStartNs);
  auto notes = plan.initNotes(static_cast<unsigned>(in.plan.notes.size()));
  for (unsigned i = 0; i < in.plan.notes.size(); ++i) notes.set(i, in.plan.notes[i]);
  // The vacate plan's moves are the plan's, the teardown's the reservation's returns.
  const auto vacateMoves = static_cast<unsigned>(in.vacateMoveCount());
  auto moves = plan.initMoves(vacateMoves);
  auto returns = out.initReturns(static_cast<unsigned>(in.moves.size()) - vacateMoves);
  unsigned forward = 0, back = 0;
  for (const auto& m : in.moves) writeMove(m, m.isVacate() ? moves[forward++] : returns[back++]);
  out.setNextMoveId(moveIdValue(in.nextMoveId));
  out.setLateNoted(in.lateNoted);
  out.setReturnsNoted(in.returnsNoted);

  // Handles only where there is one to give: a clone whose handle was hidden from the caller
  // (hideHandles) is listed in clones, not as an empty handle.
  std::vector<const ClonePlacement*> running;
  for (const auto& c : in.clones) {
    if (c.hasHandle()) running.push_back(&c);
  }
  auto handles = out.initHandles(static_cast<unsigned>(running.size()));
  for (unsigned i = 0; i < running.size(); ++i) {
    handles[i].setVmId(running[i]->vmId);
    handles[i].setHost(running[i]->host);
    handles[i].setAddress(running[i]->address);
    handles[i].setAccount(running[i]->account);
    handles[i].setPort(running[i]->port);
    handles[i].setAddressSource(running[i]->addressSource);
    handles[i].setSsh(running[i]->sshCommand());
  }
  auto clones = out.initClones(static_cast<unsigned>(in.clones.size()));
  for (unsigned i = 0; i < in.clones.size(); ++i) {
    const auto& c = in.clones[i];
    clones[i].setVmId(c.vmId);
    clones[i].setHost(c.host);
    clones[i].setState(static_cast<wire::CloneState>(static_cast<int>(c.state)));
    clones[i].setAddress(c.address);
    clones[i].setAccount(c.account);
    clones[i].setPort(c.port);
    clones[i].setAddressSource(c.addressSource);
  }
  auto events = out.initEvents(static_cast<unsigned>(in.events.size()));
  for (unsigned i = 0; i < in.events.size(); ++i) {
    events[i].setTimeNs(in.events[i].timeNs);
    events[i].setState(toWire(in.events[i].state));
    events[i].setMessage(in.events[i].message);
  }
  out.setCreatedNs(in.createdNs);
  out.setUpdatedNs(in.updatedNs);
  out.setEarliestFeasibleStartNs(in.earliestFeasibleStartNs);
  out.setAtRisk(in.atRisk);
  out.setRiskReason(in.riskReason);
}

Reservation fromWire(wire::Reservation::Reader in) {
  Reservation r;
  r.id = toStd(in.getId());
  r.request = fromWire(in.getRequest());
  r.state = fromWire(in.getState());
  r.reason = toStd(in.getReason());
  for (auto h : in.getHosts()) r.hosts.push_back(toStd(h));
  auto plan = in.getPlan();
  r.plan.strategy = toStd(plan.getStrategy());
  r.plan.model = toStd(plan.getModel());
  r.plan.makespanNs = plan.getMakespanNs();
  r.plan.cloneTimeNs = plan.getCloneTimeNs();
  r.plan.marginNs = plan.getMarginNs();
  r.plan.latestSafeStartNs = plan.getLatestSafeStartNs();
  r.plan.objective = toStd(plan.getObjective());
  for (auto h : plan.getHosts()) r.plan.hosts.push_back(toStd(h));
  r.plan.batchSize = plan.getBatchSize();
  r.plan.quantile = plan.getQuantile();
  r.plan.makespanQuantileNs = plan.getMakespanQuantileNs();
  r.plan.makespanLowerBoundNs = plan.getMakespanLowerBoundNs();
  r.plan.maxVmTimeNs = plan.getMaxVmTimeNs();
  r.plan.energyJ = plan.getEnergyJ();
  r.plan.feasible = plan.getFeasible();
  r.plan.earliestFeasibleStartNs = plan.getEarliestFeasibleStartNs();
  for (auto n : plan.getNotes()) r.plan.notes.push_back(toStd(n));
  // The purpose follows from the list a move is in and its mode.
  bool idsKnown = true;
  auto read = [&](wire::PlannedMove::Reader w, MovePurpose purpose, MovePurpose ifParked) {
    Move m;
    m.id = MoveId{w.getId()};
    m.planned = readMove(w);
    m.progress = readProgress(w);
    m.purpose = m.planned.mode == MoveMode::kPark ? ifParked : purpose;
    idsKnown &= w.getId() != 0;
    r.moves.push_back(std::move(m));
  };
  for (auto w : plan.getMoves()) read(w, MovePurpose::kVacate, MovePurpose::kPark);
  for (auto w : in.getReturns()) read(w, MovePurpose::kReturn, MovePurpose::kUnpark);
  // Stored before moves had ids (or by a peer that does not set them): numbered in order.
  std::uint32_t next = std::max<std::uint32_t>(in.getNextMoveId(), 1);
  for (std::size_t i = 0; i < r.moves.size(); ++i) {
    if (!idsKnown) r.moves[i].id = MoveId{static_cast<std::uint32_t>(i + 1)};
    next = std::max(next, moveIdValue(r.moves[i].id) + 1);
  }
  r.nextMoveId = MoveId{next};
  r.lateNoted = in.getLateNoted();
  r.returnsNoted = in.getReturnsNoted();
  for (auto c : in.getClones()) {
    ClonePlacement p;
    p.vmId = toStd(c.getVmId());
    p.host = toStd(c.getHost());
    p.state = static_cast<CloneState>(static_cast<int>(
        clampEnum(c.getState(), wire::CloneState::FAILED, wire::CloneState::FAILED)));
    p.address = toStd(c.getAddress());
    p.account = toStd(c.getAccount());
    p.port = c.getPort();
    p.addressSource = toStd(c.getAddressSource());
    r.clones.push_back(std::move(p));
  }
  for (auto e : in.getEvents()) {
    r.events.push_back({e.getTimeNs(), fromWire(e.getState()), toStd(e.getMessage())});
  }
  r.createdNs = in.getCreatedNs();
  r.updatedNs = in.getUpdatedNs();
  r.earliestFeasibleStartNs = in.getEarliestFeasibleStartNs();
  r.atRisk = in.getAtRisk();
  r.riskReason = toStd(in.getRiskReason());
  return r;
}

void toWire(const HostRecord& in, wire::HostInfo::Builder out) {
  out.setName(in.name);
  out.setCpuCores(in.cpuCores);
  out.setMemoryBytes(in.memoryBytes);
  out.setNicBandwidthBytesPerSec(in.nicBandwidthBytesPerSec);
  out.setReachable(in.reachable);
  out.setLastHeartbeatNs(in.lastHeartbeatNs);
}

HostRecord fromWire(wire::HostInfo::Reader in) {
  HostRecord h;
  h.name = toStd(in.getName());
  h.cpuCores = in.getCpuCores();
  h.memoryBytes = in.getMemoryBytes();
  h.nicBandwidthBytesPerSec = in.getNicBandwidthBytesPerSec();
  h.reachable = in.getReachable();
  h.lastHeartbeatNs = in.getLastHeartbeatNs();
  return h;
}

wire::VmState toWire(VmState state) {
  switch (state) {
    case VmState::kRunning:
      return wire::VmState::RUNNING;
    case VmState::kSuspended:
      return wire::VmState::SUSPENDED;
    case VmState::kMigratingOut:
      return wire::VmState::MIGRATING_OUT;
    case VmState::kIncoming:
      return wire::VmState::INCOMING;
    case VmState::kCloning:
      return wire::VmState::CLONING;
    case VmState::kParked:
      return wire::VmState::PARKED;
  }
  return wire::VmState::RUNNING;
}

VmState fromWire(wire::VmState state) {
  switch (state) {
    case wire::VmState::RUNNING:
      return VmState::kRunning;
    case wire::VmState::SUSPENDED:
      return VmState::kSuspended;
    case wire::VmState::MIGRATING_OUT:
      return VmState::kMigratingOut;
    case wire::VmState::INCOMING:
      return VmState::kIncoming;
    case wire::VmState::CLONING:
      return VmState::kCloning;
    case wire::VmState::PARKED:
      return VmState::kParked;
  }
  return VmState::kRunning;  // a state added to the schema after this side was built
}

void toWire(const MigrationObservation& in, wire::MigrationObservation::Builder out) {
  out.setVmId(in.vmId);
  out.setFromHost(in.fromHost);
  out.setToHost(in.toHost);
  out.setMode(toWire(in.mode));
  out.setMemoryBytes(in.memoryBytes);
  out.setNonzeroMemoryBytes(in.nonzeroMemoryBytes);
  out.setDirtyRateBytesPerSec(in.dirtyRateBytesPerSec);
  out.setStartNs(in.startNs);
  out.setEndNs(in.endNs);
  out.setSetupNs(in.setupNs);
  out.setDowntimeNs(in.downtimeNs);
  out.setTransferredBytes(in.transferredBytes);
  out.setRounds(in.rounds);
  out.setBandwidthBytesPerSec(in.bandwidthBytesPerSec);
  out.setSaveNs(in.saveNs);
  out.setCopyNs(in.copyNs);
  out.setRestoreNs(in.restoreNs);
}

MigrationObservation fromWire(wire::MigrationObservation::Reader in) {
  MigrationObservation o;
  o.vmId = toStd(in.getVmId());
  o.fromHost = toStd(in.getFromHost());
  o.toHost = toStd(in.getToHost());
  o.mode = fromWire(in.getMode());
  o.memoryBytes = in.getMemoryBytes();
  o.nonzeroMemoryBytes = in.getNonzeroMemoryBytes();
  o.dirtyRateBytesPerSec = in.getDirtyRateBytesPerSec();
  o.startNs = in.getStartNs();
  o.endNs = in.getEndNs();
  o.setupNs = in.getSetupNs();
  o.downtimeNs = in.getDowntimeNs();
  o.transferredBytes = in.getTransferredBytes();
  o.rounds = in.getRounds();
  o.bandwidthBytesPerSec = in.getBandwidthBytesPerSec();
  o.saveNs = in.getSaveNs();
  o.copyNs = in.getCopyNs();
  o.restoreNs = in.getRestoreNs();
  return o;
}

void toWire(const VmRecord& in, wire::VmInfo::Builder out) {
  out.setId(in.id);
  out.setHost(in.host);
  out.setCpuCores(in.cpuCores);
  out.setMemoryBytes(in.memoryBytes);
  out.setNonzeroMemoryBytes(in.nonzeroMemoryBytes);
  out.setDirtyRateBytesPerSec(in.dirtyRateBytesPerSec);
  out.setState(toWire(in.state));
  out.setReservationId(in.reservationId);
  out.setAddress(in.address);
  out.setDiskBytes(in.diskBytes);
  out.setTemplate(in.templateName);
  out.setAllowLive(in.allowLive);
  out.setAllowSuspend(in.allowSuspend);
  out.setStateFile(in.stateFile);
  out.setDiskDirtyRateBytesPerSec(in.diskDirtyRateBytesPerSec);
  auto samples = out.initDirtyRateSamples(
      static_cast<unsigned>(std::min<std::size_t>(in.dirtyRateSamplesBytesPerSec.size(), 1024)));
  for (unsigned i = 0; i < samples.size(); ++i) samples.set(i, in.dirtyRateSamplesBytesPerSec[i]);
  out.setModifiedMemoryBytes(in.modifiedMemoryBytes);
  out.setWorkload(in.workload);
  out.setAccount(in.account);
  out.setSshPort(in.sshPort);
  out.setAddressSource(in.addressSource);
}

VmRecord fromWire(wire::VmInfo::Reader in) {
  VmRecord v;
  v.id = toStd(in.getId());
  v.host = toStd(in.getHost());
  v.cpuCores = in.getCpuCores();
  v.memoryBytes = in.getMemoryBytes();
  v.nonzeroMemoryBytes = in.getNonzeroMemoryBytes();
  v.dirtyRateBytesPerSec = in.getDirtyRateBytesPerSec();
  v.state = fromWire(in.getState());
  v.reservationId = toStd(in.getReservationId());
  v.address = toStd(in.getAddress());
  v.diskBytes = in.getDiskBytes();
  v.templateName = toStd(in.getTemplate());
  v.allowLive = in.getAllowLive();
  v.allowSuspend = in.getAllowSuspend();
  v.stateFile = toStd(in.getStateFile());
  v.diskDirtyRateBytesPerSec = in.getDiskDirtyRateBytesPerSec();
  for (double d : in.getDirtyRateSamples()) v.dirtyRateSamplesBytesPerSec.push_back(d);
  v.modifiedMemoryBytes = in.getModifiedMemoryBytes();
  v.workload = toStd(in.getWorkload());
  v.account = toStd(in.getAccount());
  v.sshPort = in.getSshPort();
  v.addressSource = toStd(in.getAddressSource());
  return v;
}

void toWire(const LostVm& in, wire::LostVm::Builder out) {
  out.setId(in.vmId);
  out.setReservationId(in.reservationId);
  out.setLastState(toWire(in.lastState));
  out.setReason(in.reason);
  out.setLostAtNs(in.lostAtNs);
}

LostVm fromWire(wire::LostVm::Reader in) {
  LostVm v;
  v.vmId = toStd(in.getId());
  v.reservationId = toStd(in.getReservationId());
  v.lastState = fromWire(in.getLastState());
  v.reason = toStd(in.getReason());
  v.lostAtNs = in.getLostAtNs();
  return v;
}

void toWire(const AgentCommand& in, wire::AgentCommand::Builder out) {
  out.setCommandId(in.id);
  using K = AgentCommand::Kind;
  switch (in.kind) {
    case K::kPrepareIncoming:
      toWire(in.vm, out.initPrepareIncoming());
      break;
    case K::kMigrate: {
      auto m = out.initMigrate();
      m.setVmId(in.vmId);
      m.setDestinationHost(in.destinationHost);
      m.setDestinationEndpoint(in.destinationEndpoint);
      m.setMode(toWire(in.mode));
      m.setMaxBandwidthBytesPerSec(in.maxBandwidthBytesPerSec);
      break;
    }
    case K::kFinishIncoming: {
      auto f = out.initFinishIncoming();
      f.setVmId(in.vmId);
      f.setCommit(in.commit);
      break;
    }
    case K::kSuspend:
      out.setSuspend(in.vmId);
      break;
    case K::kResume:
      out.setResume(in.vmId);
      break;
    case K::kClone: {
      auto c = out.initClone();
      c.setVmId(in.vmId);
      c.setTemplate(in.templateName);
      c.setCpuCores(in.cpuCores);
      c.setMemoryBytes(in.memoryBytes);
      c.setReservationId(in.reservationId);
      c.setBootTimeNs(in.bootTimeNs);
      c.setSshPublicKey(in.sshPublicKey);
      break;
    }
    case K::kDestroy:
      out.setDestroy(in.vmId);
      break;
    case K::kSetBandwidth: {
      auto b = out.initSetMigrationBandwidth();
      b.setVmId(in.vmId);
      b.setMaxBandwidthBytesPerSec(in.maxBandwidthBytesPerSec);
      break;
    }
    case K::kPark:
      out.setPark(in.vmId);
      break;
    case K::kUnpark:
      out.setUnpark(in.vmId);
      break;
  }
}

AgentResult fromWire(wire::CommandResult::Reader in) {
  AgentResult r;
  r.commandId = in.getCommandId();
  r.status = fromWire(in.getStatus());
  switch (in.which()) {
    case wire::CommandResult::INCOMING_ENDPOINT:
      r.incomingEndpoint = toStd(in.getIncomingEndpoint());
      break;
    case wire::CommandResult::MIGRATED: {
      r.migrated = fromWire(in.getMigrated());
      break;
    }
    case wire::CommandResult::CLONED: {
      auto h = in.getCloned();
      ClonePlacement c;
      c.vmId = toStd(h.getVmId());
      c.host = toStd(h.getHost());
      c.address = toStd(h.getAddress());
      c.account = toStd(h.getAccount());
      c.port = h.getPort();
      c.addressSource = toStd(h.getAddressSource());
      c.state = CloneState::kRunning;
      r.cloned = c;
      break;
    }
    default:
      break;
  }
  return r;
}

AgentProgress fromWire(wire::CommandProgress::Reader in) {
  return {in.getCommandId(), in.getFraction(), in.getBytesSent(), in.getBytesTotal(),
          toStd(in.getPhase())};
}

ListFilter fromWire(wire::ListFilter::Reader in) {
  ListFilter f;
  f.owner = toStd(in.getOwner());
  for (auto s : in.getStates()) f.states.push_back(fromWire(s));
  f.fromNs = in.getFromNs();
  f.toNs = in.getToNs();
  return f;
}

void toWire(const ListFilter& in, wire::ListFilter::Builder out) {
  out.setOwner(in.owner);
  auto states = out.initStates(static_cast<unsigned>(in.states.size()));
  for (unsigned i = 0; i < in.states.size(); ++i) states.set(i, toWire(in.states[i]));
  out.setFromNs(in.fromNs);
  out.setToNs(in.toNs);
}

void toWire(const BackupChunk& in, wire::BackupChunk::Builder out) {
  out.setSnapshotId(in.snapshotId);
  out.setTotalBytes(in.totalBytes);
  out.setOffset(in.offset);
  out.setData(kj::arrayPtr(reinterpret_cast<const capnp::byte*>(in.data.data()), in.data.size()));
  out.setReservations(in.reservations);
  out.setTakenAtNs(in.takenAtNs);
}

BackupChunk fromWire(wire::BackupChunk::Reader in) {
  BackupChunk c;
  c.snapshotId = toStd(in.getSnapshotId());
  c.totalBytes = in.getTotalBytes();
  c.offset = in.getOffset();
  auto data = in.getData();
  c.data.assign(reinterpret_cast<const char*>(data.begin()), data.size());
  c.reservations = in.getReservations();
  c.takenAtNs = in.getTakenAtNs();
  return c;
}

void toWire(const WebhookDelivery& in, wire::WebhookDelivery::Builder out) {
  out.setUrl(in.url);
  out.setEventId(in.eventId);
  out.setKind(in.kind);
  switch (in.state) {
    case DeliveryState::kPending:
      out.setState(wire::WebhookDeliveryState::PENDING);
      break;
    case DeliveryState::kDelivered:
      out.setState(wire::WebhookDeliveryState::DELIVERED);
      break;
    case DeliveryState::kFailing:
      out.setState(wire::WebhookDeliveryState::FAILING);
      break;
    case DeliveryState::kGaveUp:
      out.setState(wire::WebhookDeliveryState::GAVE_UP);
      break;
  }
  out.setAttempts(in.attempts);
  out.setLastError(in.lastError);
  out.setLastAttemptNs(in.lastAttemptNs);
  out.setNextAttemptNs(in.nextAttemptNs);
}

WebhookDelivery fromWire(wire::WebhookDelivery::Reader in) {
  WebhookDelivery d;
  d.url = toStd(in.getUrl());
  d.eventId = toStd(in.getEventId());
  d.kind = toStd(in.getKind());
  switch (in.getState()) {
    case wire::WebhookDeliveryState::DELIVERED:
      d.state = DeliveryState::kDelivered;
      break;
    case wire::WebhookDeliveryState::FAILING:
      d.state = DeliveryState::kFailing;
      break;
    case wire::WebhookDeliveryState::GAVE_UP:
      d.state = DeliveryState::kGaveUp;
      break;
    default:  // pending, or a state newer than this side
      d.state = DeliveryState::kPending;
      break;
  }
  d.attempts = in.getAttempts();
  d.lastError = toStd(in.getLastError());
  d.lastAttemptNs = in.getLastAttemptNs();
  d.nextAttemptNs = in.getNextAttemptNs();
  return d;
}

std::string serializeReservation(const Reservation& r) {
  capnp::MallocMessageBuilder b;
  toWire(r, b.initRoot<wire::Reservation>());
  auto words = capnp::messageToFlatArray(b);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

Result<Reservation> parseReservation(const void* data, std::size_t size) {
  auto frame = protocol::decodeFrame(data, size);
  if (!frame) return frame.status();
  auto root = frame->root<wire::Reservation>();
  if (!root) return root.status();
  return fromWire(*root);
}

}  // namespace vrm::protocol
