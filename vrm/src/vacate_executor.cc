#include "vrm/manager/vacate_executor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>

#include "vrm/manager/reservation_events.h"
#include "vrm/protocol/units.h"

namespace vrm::manager {

VacateExecutor::VacateExecutor(const Clock& clock, const planner::VacatePlanner& planner,
                               const Inventory& inventory, const CommandTracker& commands,
                               BookingProjection& projection, AdmissionIndex& index,
                               Replanner& replanner, const std::vector<double>& vacateErrors,
                               VacateOptions options)
    : clock_(clock),
      planner_(planner),
      inventory_(inventory),
      commands_(commands),
      projection_(projection),
      index_(index),
      replanner_(replanner),
      vacateErrors_(vacateErrors),
      options_(options) {}

VacateEffects VacateExecutor::drive(Reservation& r) {
  VacateEffects out;
  driveMoves(r, out);
  if (r.state == ReservationState::kPreparing) out.vacated = true;
  if (r.state == ReservationState::kVacating) assessVacate(r, out);
  driveCaps(r, out);
  return out;
}

VacateEffects VacateExecutor::driveCaps(Reservation& r) {
  VacateEffects out;
  driveCaps(r, out);
  return out;
}

VacateEffects VacateExecutor::aroundLostHosts(Reservation& r, const std::set<std::string>& lost) {
  VacateEffects out;
  std::string lostSource;
  bool lostDestination = false;
  std::uint32_t current = UINT32_MAX;
  for (const auto& move : r.moves) {
    if (!move.isVacate()) continue;
    const auto& m = move.planned;
    if (move.pendingOrRunning()) current = std::min(current, m.batch);
    if (move.progress.state != MoveState::kPlanned) continue;
    lostDestination |= lost.count(m.toHost) > 0;
    if (lost.count(m.fromHost)) lostSource = m.fromHost;
  }
  if (lostDestination) {
    std::uint32_t unused = 0;
    const Replan outcome = replanRemaining(
        r, current, clock_.now() + replanner_.projectedTimeLeft(r, &unused, /*runningOnly=*/true),
        /*force=*/true, /*park=*/false, out);
    if (!outcome.message.empty()) {
      note(r, "a destination became unreachable; " + outcome.message);
    }
  }
  if (!lostSource.empty() && !r.atRisk) {
    r.atRisk = true;
    r.riskReason = "host " + lostSource +
                   " being vacated is unreachable; its VMs move when "
                   "its agent is back";
    note(r, "at-risk: " + r.riskReason);
  }
  return out;
}

void VacateExecutor::driveMoves(Reservation& r, VacateEffects& out) {
  const TimeNs now = clock_.now();
  // The lowest batch with unfinished moves runs; the next starts when it is done. A batch whose
  // moves all turn out to be unnecessary is passed over at once.
  while (true) {
    std::uint32_t batch = UINT32_MAX;
    for (const auto& m : r.moves) {
      if (m.isVacate() && m.pendingOrRunning()) batch = std::min(batch, m.planned.batch);
    }
    if (batch == UINT32_MAX) {
      transition(r, ReservationState::kPreparing,
                 "hosts vacated; cloning " + std::to_string(r.clones.size()) + " VMs");
      return;
    }
    bool busy = false;
    for (auto& m : r.moves) {  // note() adds no moves
      const auto& move = m.planned;
      if (!m.isVacate() || move.batch != batch) continue;
      if (m.progress.state == MoveState::kRunning) busy = true;
      if (m.progress.state != MoveState::kPlanned) continue;
      // Until both agents are back (after a restart, or a blip) their inventories are not
      // known: wait rather than send into the void or skip a VM we cannot see yet.
      if (!inventory_.ready(move.fromHost) || !inventory_.ready(move.toHost)) {
        busy = true;
        continue;
      }
      const VmRecord* vm = inventory_.findVm(move.fromHost, move.vmId);
      if (!vm) {
        // Already gone from the source (moved by an earlier vacate, or destroyed).
        m.progress.state = MoveState::kSkipped;
        note(r, move.vmId + " is no longer on " + move.fromHost + "; move skipped");
        continue;
      }
      busy = true;
      m.progress.state = MoveState::kRunning;
      m.progress.actualStartNs = now;
      if (m.purpose == MovePurpose::kPark) {
        // No destination: parked on its source for the window, unparked after it.
        AgentCommand cmd;
        cmd.kind = AgentCommand::Kind::kPark;
        cmd.host = move.fromHost;
        cmd.vmId = move.vmId;
        out.commands.push_back({std::move(cmd), CommandStep::kPark, m.id});
        note(r, "parking " + move.vmId + " on " + move.fromHost + " until " +
                    formatTime(move.resumeAtNs > 0 ? move.resumeAtNs : r.request.endNs));
        continue;
      }
      AgentCommand cmd;
      cmd.kind = AgentCommand::Kind::kPrepareIncoming;
      cmd.host = move.toHost;
      cmd.vmId = move.vmId;
      cmd.vm = *vm;
      out.commands.push_back({std::move(cmd), CommandStep::kPrepareIncoming, m.id});
      note(r, "moving " + move.vmId + " " + move.fromHost + " -> " + move.toHost + " (" +
                  moveModeName(move.mode) + ", " + formatBytes(move.transferredBytes) + ")");
    }
    if (busy) return;
  }
}

AfterMoveFailure VacateExecutor::failMove(Reservation& r, MoveId id,
                                          const std::string& reason) const {
  const Move* m = r.findMove(id);
  if (!m || m->isVacate()) return AfterMoveFailure::kFailReservation;
  const PlannedMove& move = m->planned;
  note(r, reason + "; " + move.vmId + " stays on " +
              (inventory_.findVm(move.toHost, move.vmId) ? move.toHost : move.fromHost));
  return AfterMoveFailure::kTeardownGoesOn;
}

void VacateExecutor::assessVacate(Reservation& r, VacateEffects& out) {
  const std::optional<Assessment> a = replanner_.assess(r);
  if (!a) return;  // not due, or on time
  double ratio = a->ratio;
  std::uint32_t unused = 0;
  if (replanner_.mayReplan(r.id)) {
    // First the moves not started alongside the running ones (these capped to make room), then,
    // if that does not pay, after them.
    Replan outcome = replanAlongsideRunning(r, a->batch, out);
    if (!outcome.replaced) {
      Replan after = replanRemaining(r, a->batch + 1,
                                     a->nowNs + replanner_.projectedTimeLeft(r, &unused, true),
                                     /*force=*/false, /*park=*/false, out);
      if (after.replaced || outcome.message.empty()) outcome = after;
    }
    if (!outcome.message.empty()) {
      replanner_.countReplan(r.id);
      note(r, "warning: timetodeadline/timeleft " + fmt::format("{:.2f}", ratio) +
                  " <= " + fmt::format("{:.2f}", replanner_.options().warningRatio) + "; " +
                  outcome.message);
      ratio = a->ratioOf(replanner_.projectedTimeLeft(r, &unused));
    }
  }
  // Still projected to miss the deadline: park the VMs not started that allow it instead of
  // migrating them (a park is a local save, no network) and unpark them after the window.
  // (Counted apart: the warning's re-plans above may have used up their count by now.)
  if (ratio < replanner_.options().dangerRatio && replanner_.mayPark(r.id)) {
    const Replan outcome =
        replanRemaining(r, a->batch + 1, a->nowNs + replanner_.projectedTimeLeft(r, &unused, true),
                        /*force=*/false, /*park=*/true, out);
    if (!outcome.message.empty()) {
      replanner_.countPark(r.id);
      note(r, "danger: timetodeadline/timeleft " + fmt::format("{:.2f}", ratio) + " < " +
                  fmt::format("{:.2f}", replanner_.options().dangerRatio) + "; " + outcome.message);
      ratio = a->ratioOf(replanner_.projectedTimeLeft(r, &unused));
    }
  }
  if (ratio < replanner_.options().dangerRatio && !r.atRisk) {
    const TimeNs finish = a->projectedEndNs();
    r.atRisk = true;
    r.riskReason = "vacating is projected to end at " + formatTime(finish) + ", " +
                   formatDuration(finish - a->deadlineNs) + " after cloning must begin (" +
                   formatTime(a->deadlineNs) + ") for the start at " +
                   formatTime(r.request.startNs);
    spdlog::warn("{} at risk: {}", r.id, r.riskReason);
    note(r, "at-risk: " + r.riskReason);
  }
}

Result<VacatePlan> VacateExecutor::planRest(Reservation& r, const std::set<MoveId>& rest,
                                            TimeNs fromNs,
                                            const std::map<std::string, double>& nicInUse,
                                            bool park, VacateEffects& out) {
  // Plan the remaining VMs against the cluster without this reservation's remaining moves.
  std::set<std::string> restVms;
  for (const auto& m : r.moves) {
    if (rest.count(m.id)) restVms.insert(m.planned.vmId);
  }
  const Reservation original = r;
  r.moves.erase(std::remove_if(r.moves.begin(), r.moves.end(),
                               [&](const Move& m) { return rest.count(m.id) > 0; }),
                r.moves.end());
  for (const auto& h : hostsTouchedBy(original)) projection_.touchHost(h);
  projection_.refresh();
  refreshViews();
  planner::VacateRequest req = index_.snapshot(r, clock_.now());
  r = original;
  projection_.touch(r);
  out.touched = true;
  projection_.refresh();
  for (auto& h : req.hosts) {
    if (auto u = nicInUse.find(h.name); u != nicInUse.end()) {
      h.nicBandwidthBytesPerSec = std::max(h.nicBandwidthBytesPerSec - u->second, 0.0);
    }
  }
  req.vms = index_.vmsToVacate(r.hosts);  // snapshot() lists no VMs: those of the vacated hosts
  req.vms.erase(std::remove_if(req.vms.begin(), req.vms.end(),
                               [&](const planner::VmSnapshot& v) { return !restVms.count(v.id); }),
                req.vms.end());
  req.hostsToVacate = r.hosts;
  req.reservationStartNs = r.request.startNs;
  req.reservationEndNs = r.request.endNs;
  req.cloneTimeNs = r.plan.cloneTimeNs;
  req.marginNs = 0;
  req.nowNs = fromNs;
  req.objective = planner::VacateObjective::kMakespan;  // catching up: fastest wins
  req.quantile = r.plan.quantile > 0 && r.plan.quantile < 1 ? r.plan.quantile : options_.quantile;
  req.relativeErrorSamples = vacateErrors_;
  req.cloneTemplate = r.request.templateName;
  // A VM left without a destination is parked for the window rather than failing the re-plan
  // (the planner only parks VMs that allow suspension).
  req.suspendPolicy = planner::SuspendPolicy::kWhenNoRoom;
  if (park) {
    // Every one of them parked: no host receives them.
    for (auto& h : req.hosts) h.canReceive = false;
  }
  return planner_.plan(req);
}

bool VacateExecutor::applyRest(Reservation& r, const Reservation& original,
                               const std::set<MoveId>& rest, const VacatePlan& plan,
                               std::uint32_t base, TimeNs fromNs, std::string* violation,
                               VacateEffects& out) {
  // Hosts over capacity with the plan as it is: the new one may not overbook any other
  // (the check passes over hosts already over once the moves replaced are taken off; a
  // plan that parks VMs brings them back after the window: see readmit(), fuzz_manager_ops).
  projection_.refresh();
  std::set<std::string> wasOver;
  for (const auto& h : hostsTouchedBy(original)) {
    if (projection_.bookings().overbooked(h)) wasOver.insert(h);
  }
  r.moves.erase(std::remove_if(r.moves.begin(), r.moves.end(),
                               [&](const Move& m) { return rest.count(m.id) > 0; }),
                r.moves.end());
  // Hosts overbooked without the moves replaced are not the new plan's fault (the check).
  for (const auto& h : hostsTouchedBy(original)) projection_.touchHost(h);
  projection_.refresh();
  // The new moves follow the moves that stay, at offsets from the vacate start as before, with
  // new ids: what refers to the moves that stay (commands, progress, caps) still does.
  const TimeNs shift = fromNs - r.plan.latestSafeStartNs;
  for (auto m : plan.moves) {
    m.batch += base;
    m.startOffsetNs += shift;
    m.endOffsetNs += shift;
    const MovePurpose purpose =
        m.mode == MoveMode::kPark ? MovePurpose::kPark : MovePurpose::kVacate;
    r.addMove(purpose, std::move(m));
  }
  out.touched = true;  // the check touches r (advanced by the next tick, as touched)
  *violation = projection_.check(r, /*keep=*/true).violation;
  if (violation->empty()) {
    projection_.refresh();
    std::set<std::string> hosts = hostsTouchedBy(original);
    for (const auto& h : hostsTouchedBy(r)) hosts.insert(h);
    for (const auto& h : hosts) {
      std::string over;
      if (!wasOver.count(h) && projection_.bookings().overbooked(h, &over)) {
        *violation = "host " + h + " would be overbooked: " + over;
        break;
      }
    }
  }
  if (violation->empty()) return true;
  r = original;
  projection_.touch(r);
  projection_.refresh();
  return false;
}

VacateExecutor::Replan VacateExecutor::replanRemaining(Reservation& r, std::uint32_t firstBatch,
                                                       TimeNs fromNs, bool force, bool park,
                                                       VacateEffects& out) {
  // Parking applies to VMs that allow suspension and are not parked by the plan already.
  const RestSelection selected = selectRest(r, firstBatch, [&](const PlannedMove& m) {
    if (!park) return true;
    const VmRecord* vm = inventory_.findVm(m.fromHost, m.vmId);
    return m.mode != MoveMode::kPark && vm && vm->allowSuspend;
  });
  const std::set<MoveId>& rest = selected.rest;
  if (rest.empty()) return {};
  const TimeNs oldSpan = selected.oldSpanNs;
  const std::string what = "the " + std::to_string(rest.size()) + " moves not started" +
                           (park ? " as parks on their hosts" : "");

  auto plan = planRest(r, rest, fromNs, {}, park, out);
  if (!plan) {
    return {false,
            "re-planning " + what + " failed (" + plan.status().message() + "); keeping the plan"};
  }
  if (!force && static_cast<double>(plan->makespanNs) > 0.95 * static_cast<double>(oldSpan)) {
    return {false, "re-planning " + what + " gains nothing (" + plan->strategy + ": " +
                       formatDuration(plan->makespanNs) + " vs " + formatDuration(oldSpan) +
                       "); keeping the plan"};
  }
  const Reservation original = r;
  r.plan.notes.push_back(
      "re-planned at " + formatTime(clock_.now()) + ": " + std::to_string(rest.size()) +
      " moves, " + (park ? "parked instead of migrated, " : "") + plan->strategy + ", " +
      formatDuration(plan->makespanNs) + " instead of " + formatDuration(oldSpan));
  std::string violation;
  if (!applyRest(r, original, rest, *plan, selected.base, fromNs, &violation, out)) {
    return {false,
            "the faster re-plan does not fit the calendar (" + violation + "); keeping the plan"};
  }
  return {true, "re-planned " + what + ": " + plan->strategy + ", " +
                    formatDuration(plan->makespanNs) + " instead of " + formatDuration(oldSpan)};
}

VacateExecutor::Replan VacateExecutor::replanAlongsideRunning(Reservation& r, std::uint32_t batch,
                                                              VacateEffects& out) {
  const TimeNs now = clock_.now();
  const auto [rest, running] = splitAlongside(r, batch);
  if (rest.empty() || running.empty()) return {};
  // Pass 1 on whole NICs says how many new moves start at once through each NIC (k). The
  // running moves there are capped at the share each of k + running moves would get, and
  // pass 2 plans the new moves on what those caps leave: its shares then equal the caps.
  auto first = planRest(r, rest, now, {}, /*park=*/false, out);
  if (!first) return {};
  const NicShares nics = shareNics(r, running, first->moves, inventory_.hosts());
  if (nics.share.empty()) return {};  // the new moves share no NIC with the running ones
  auto plan = planRest(r, rest, now, nics.inUse, /*park=*/false, out);
  if (!plan) return {};

  const Reservation original = r;
  // Each running move sharing a NIC is capped at its smallest share, and lasts accordingly.
  const RunningCaps caps = replanner_.capRunning(r, running, nics.share, now);
  for (const RunningCap& c : caps.caps) {
    PlannedMove& m = r.findMove(c.move)->planned;
    m.replanCapBytesPerSec = c.capBytesPerSec;
    m.endOffsetNs = c.endOffsetNs;
  }
  const std::size_t capped = caps.caps.size();
  const double lowestCap = caps.lowestCapBytesPerSec;
  std::uint32_t unused = 0;
  const TimeNs before = replanner_.projectedTimeLeft(original, &unused);
  const TimeNs after = std::max(caps.timeLeftNs, plan->makespanNs);
  const std::string what = "the " + std::to_string(rest.size()) + " moves not started";
  if (static_cast<double>(after) > 0.95 * static_cast<double>(before)) {
    r = original;
    return {false, "starting " + what + " alongside the running ones gains nothing (" +
                       formatDuration(after) + " vs " + formatDuration(before) + ")"};
  }
  r.plan.notes.push_back("re-planned at " + formatTime(now) + ": " + std::to_string(rest.size()) +
                         " moves alongside the " + std::to_string(running.size()) + " running, " +
                         plan->strategy + "; " + std::to_string(capped) + " running capped at " +
                         formatRate(lowestCap));
  std::string violation;
  if (!applyRest(r, original, rest, *plan, batch, now, &violation, out)) {
    return {false, "starting " + what + " alongside the running ones does not fit the calendar (" +
                       violation + ")"};
  }
  // A capped move takes longer: its command's deadline follows its new predicted end.
  out.migrationsSlowed = true;
  driveCaps(r, out);
  return {true, "re-planned " + what + " alongside the " + std::to_string(running.size()) +
                    " running: " + plan->strategy + ", " + formatDuration(after) + " instead of " +
                    formatDuration(before) + "; " + std::to_string(capped) + " running capped at " +
                    formatRate(lowestCap) + " while they share a NIC"};
}

void VacateExecutor::driveCaps(Reservation& r, VacateEffects& out) {
  for (const CapChange& change : replanner_.capChanges(r)) {
    const PlannedMove& m = r.findMove(change.move)->planned;  // note() adds no moves
    // Only a migration the source runs can be capped (the migrate command carries the cap when
    // it is sent later: Manager::settle). Not known what was sent (vrmd restarted): send it.
    bool migrating = inFlight(r, CommandStep::kMigrate, change.move, out);
    if (const VmRecord* vm = inventory_.findVm(m.fromHost, m.vmId)) {
      migrating |= vm->state == VmState::kMigratingOut && inventory_.ready(m.fromHost);
    }
    if (!migrating) continue;
    if (inFlight(r, CommandStep::kSetBandwidth, change.move, out))
      continue;  // its answer comes first
    const double want = change.bytesPerSec;
    replanner_.capSent(r.id, change.move, want);
    AgentCommand cmd;
    cmd.kind = AgentCommand::Kind::kSetBandwidth;
    cmd.host = m.fromHost;
    cmd.vmId = m.vmId;
    cmd.maxBandwidthBytesPerSec = want;
    out.commands.push_back({std::move(cmd), CommandStep::kSetBandwidth, change.move});
    note(r, want > 0 ? "capping " + m.vmId + "'s migration at " + formatRate(want) +
                           " while re-planned moves share its NIC"
                     : "lifting the cap on " + m.vmId +
                           "'s migration: the moves sharing its NIC have ended");
  }
}

bool VacateExecutor::inFlight(const Reservation& r, CommandStep step, MoveId move,
                              const VacateEffects& out) const {
  return commands_.inFlight(r.id, step, move) ||
         std::any_of(out.commands.begin(), out.commands.end(),
                     [&](const MoveCommand& c) { return c.step == step && c.move == move; });
}

void VacateExecutor::refreshViews() {
  projection_.refresh();
  index_.bookingsChanged(projection_.takeChanges());
}

void VacateExecutor::transition(Reservation& r, ReservationState to,
                                const std::string& message) const {
  recordTransition(r, to, clock_.now(), message);
}

void VacateExecutor::note(Reservation& r, const std::string& message) const {
  recordNote(r, clock_.now(), message);
}

}  // namespace vrm::manager
