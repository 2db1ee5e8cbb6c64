#include "vrm/manager/teardown.h"

#include <algorithm>
#include <string>
#include <utility>

#include "vrm/manager/reservation_events.h"
#include "vrm/protocol/units.h"

namespace vrm::manager {

Teardown::Teardown(const Clock& clock, const Inventory& inventory, const CommandTracker& commands,
                   BookingProjection& projection, const std::vector<TemplateSpec>& templates)
    : clock_(clock),
      inventory_(inventory),
      commands_(commands),
      projection_(projection),
      templates_(templates) {}

TeardownEffects Teardown::start(Reservation& r) {
  TeardownEffects out;
  start(r, out);
  return out;
}

TeardownEffects Teardown::driveClones(Reservation& r) {
  TeardownEffects out;
  driveClones(r, out);
  return out;
}

TeardownEffects Teardown::drive(Reservation& r) {
  TeardownEffects out;
  driveTeardown(r, out);
  return out;
}

void Teardown::start(Reservation& r, TeardownEffects& out) {
  for (std::size_t i = 0; i < r.clones.size(); ++i) {
    auto& c = r.clones[i];
    if (c.state == CloneState::kPending) c.state = CloneState::kDestroyed;
    if (c.state == CloneState::kRunning &&
        !commands_.cloneInFlight(r.id, CommandStep::kDestroy, i)) {
      // An unreachable agent cannot destroy anything; retry when it is back.
      if (!inventory_.ready(c.host)) continue;
      AgentCommand cmd;
      cmd.kind = AgentCommand::Kind::kDestroy;
      cmd.host = c.host;
      cmd.vmId = c.vmId;
      c.state = CloneState::kDestroying;
      out.commands.push_back({std::move(cmd), CommandStep::kDestroy, MoveId{}, i});
    }
  }
}

bool Teardown::parksVms(const Reservation& r) {
  for (const auto& m : r.moves) {
    if (m.purpose == MovePurpose::kPark &&
        (m.progress.state == MoveState::kDone || m.progress.state == MoveState::kRunning)) {
      return true;
    }
  }
  return false;
}

bool Teardown::driveReturns(Reservation& r, TeardownEffects& out) {
  const TimeNs now = clock_.now();
  if (!r.hasTeardownMoves()) {
    std::uint32_t k = 0;
    std::size_t parked = 0;
    std::vector<std::pair<MovePurpose, PlannedMove>> teardown;
    for (const auto& m : r.moves) {
      if (!m.isVacate() || m.progress.state != MoveState::kDone) continue;
      const PlannedMove& out = m.planned;
      const bool park = m.purpose == MovePurpose::kPark;
      if (!park && !r.request.returnsDisplaced()) continue;
      parked += park;
      PlannedMove back;
      back.vmId = out.vmId;
      back.fromHost = park ? out.fromHost : out.toHost;  // a parked VM is unparked where it is
      back.toHost = out.fromHost;
      back.mode = out.mode;
      back.batch = k++;
      back.memoryBytes = out.memoryBytes;
      back.transferredBytes = out.transferredBytes;
      teardown.emplace_back(park ? MovePurpose::kUnpark : MovePurpose::kReturn, std::move(back));
    }
    if (teardown.empty()) return true;
    for (auto& [purpose, back] : teardown) r.addMove(purpose, std::move(back));
    if (parked) note(r, "unparking " + std::to_string(parked) + " parked VMs");
    if (teardown.size() > parked) {
      note(r, "returning " + std::to_string(teardown.size() - parked) +
                  " displaced VMs home, one at a time");
    }
  }
  // Parked VMs first, all at once: each is restored from its own host's disk, and a displaced
  // VM's home may be where one of them waits. (note() adds no moves.)
  bool unparking = false;
  for (auto& m : r.moves) {
    const PlannedMove& move = m.planned;
    auto& prog = m.progress;
    if (m.purpose != MovePurpose::kUnpark) continue;
    if (prog.state == MoveState::kRunning) unparking = true;
    if (prog.state != MoveState::kPlanned) continue;
    if (!inventory_.ready(move.fromHost)) {
      unparking = true;  // wait for its agent (its VM's room stays booked meanwhile)
      continue;
    }
    const VmRecord* vm = inventory_.findVm(move.fromHost, move.vmId);
    if (!vm) {
      prog.state = MoveState::kSkipped;
      note(r, move.vmId + " is no longer on " + move.fromHost + "; not unparked");
      continue;
    }
    prog.state = MoveState::kRunning;
    prog.actualStartNs = now;
    AgentCommand cmd;
    cmd.kind = AgentCommand::Kind::kUnpark;
    cmd.host = move.fromHost;
    cmd.vmId = move.vmId;
    out.commands.push_back({std::move(cmd), CommandStep::kUnpark, m.id, 0});
    unparking = true;
  }
  if (unparking) return false;
  for (auto& m : r.moves) {
    auto& prog = m.progress;
    if (m.purpose != MovePurpose::kReturn) continue;
    if (prog.state == MoveState::kRunning) return false;
    if (prog.state != MoveState::kPlanned) continue;
    const PlannedMove& move = m.planned;
    if (!inventory_.ready(move.fromHost) || !inventory_.ready(move.toHost)) return false;
    const VmRecord* vm = inventory_.findVm(move.fromHost, move.vmId);
    if (!vm || vm->state == VmState::kIncoming) {
      prog.state = MoveState::kSkipped;
      note(r, move.vmId + " is no longer on " + move.fromHost + "; not returned");
      continue;
    }
    // Home may have been promised to someone else since (its capacity was kept for the VM, but
    // an exclusive window means the host must stay empty): then the VM stays where it is.
    if (auto owner = projection_.bookings().exclusiveOwner(move.toHost, now, kTimeInfinity, r.id)) {
      prog.state = MoveState::kSkipped;
      note(r, move.vmId + " stays on " + move.fromHost + ": its home " + move.toHost +
                  " is reserved by " + *owner);
      continue;
    }
    // A reservation that ended early (cancelled, failed) no longer keeps room at home: check it.
    if (isTerminal(r.state)) {
      projection_.refresh();
      const Usage free = projection_.bookings().free(move.toHost, now, kTimeInfinity);
      if (free.memoryBytes < static_cast<std::int64_t>(vm->memoryBytes) ||
          free.cpuCores < static_cast<std::int64_t>(vm->cpuCores)) {
        prog.state = MoveState::kSkipped;
        note(r, move.vmId + " stays on " + move.fromHost + ": its home " + move.toHost +
                    " has no room for it any more");
        continue;
      }
    }
    prog.state = MoveState::kRunning;
    prog.actualStartNs = now;
    AgentCommand cmd;
    cmd.kind = AgentCommand::Kind::kPrepareIncoming;
    cmd.host = move.toHost;
    cmd.vmId = move.vmId;
    cmd.vm = *vm;
    out.commands.push_back({std::move(cmd), CommandStep::kPrepareIncoming, m.id, 0});
    note(r, "returning " + move.vmId + " " + move.fromHost + " -> " + move.toHost);
    return false;
  }
  return true;
}

void Teardown::driveClones(Reservation& r, TeardownEffects& out) {
  const TemplateSpec* t = findTemplate(r.request.templateName);
  bool allRunning = true;
  for (std::size_t i = 0; i < r.clones.size(); ++i) {
    auto& c = r.clones[i];
    if (c.state != CloneState::kRunning) allRunning = false;
    if (c.state != CloneState::kPending || !t || !inventory_.ready(c.host)) continue;
    AgentCommand cmd;
    cmd.kind = AgentCommand::Kind::kClone;
    cmd.host = c.host;
    cmd.vmId = c.vmId;
    cmd.templateName = t->name;
    cmd.cpuCores = t->cpuCores;
    cmd.memoryBytes = t->memoryBytes;
    cmd.reservationId = r.id;
    cmd.bootTimeNs = t->cloneTimeNs;
    cmd.sshPublicKey = r.request.sshPublicKey;
    c.state = CloneState::kCloning;
    out.commands.push_back({std::move(cmd), CommandStep::kClone, MoveId{}, i});
  }
  if (allRunning) {
    std::string handles;
    for (const auto& c : r.clones) handles += (handles.empty() ? "" : ", ") + c.address;
    transition(r, ReservationState::kReady, "ready: " + handles);
  }
}

void Teardown::driveTeardown(Reservation& r, TeardownEffects& out) {
  start(r, out);
  bool allGone = std::all_of(r.clones.begin(), r.clones.end(), [](const ClonePlacement& c) {
    return c.state == CloneState::kDestroyed || c.state == CloneState::kFailed;
  });
  if (allGone && (r.request.returnsDisplaced() || parksVms(r))) {
    // After the window, or after a cancel or failure that stopped the vacate half-way (a roll
    // back): once no move of the vacate is running any more.
    const bool moving = std::any_of(r.moves.begin(), r.moves.end(), [](const Move& m) {
      return m.isVacate() && m.progress.state == MoveState::kRunning;
    });
    if (moving || !driveReturns(r, out)) return;
  }
  // "N of M displaced VMs returned home", "N of M parked VMs unparked", as they apply.
  auto returnsSummary = [&]() {
    std::size_t returned = 0, total = 0, unparked = 0, parked = 0;
    for (const auto& m : r.moves) {
      const bool done = m.progress.state == MoveState::kDone;
      if (m.purpose == MovePurpose::kUnpark) {
        ++parked;
        unparked += done;
      } else if (m.purpose == MovePurpose::kReturn) {
        ++total;
        returned += done;
      }
    }
    std::string text;
    if (r.request.returnsDisplaced()) {
      text = std::to_string(returned) + " of " + std::to_string(total) +
             " displaced VMs returned home";
    }
    if (parked) {
      text += (text.empty() ? "" : "; ") + std::to_string(unparked) + " of " +
              std::to_string(parked) + " parked VMs unparked";
    }
    return text;
  };
  if (allGone && isTerminal(r.state) && r.hasTeardownMoves() &&
      (r.request.returnsDisplaced() || parksVms(r)) && !r.returnsNoted) {
    r.returnsNoted = true;
    note(r, "returns done: " + returnsSummary());
  }
  if (allGone && r.state == ReservationState::kEnding) {
    const std::string summary = returnsSummary();
    transition(r, ReservationState::kDone,
               "reservation ended; its VMs are destroyed" +
                   (summary.empty() ? std::string() : "; " + summary));
  }
}

const TemplateSpec* Teardown::findTemplate(const std::string& name) const {
  for (const auto& t : templates_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

void Teardown::transition(Reservation& r, ReservationState to, const std::string& message) const {
  recordTransition(r, to, clock_.now(), message);
}

void Teardown::note(Reservation& r, const std::string& message) const {
  recordNote(r, clock_.now(), message);
}

}  // namespace vrm::manager
