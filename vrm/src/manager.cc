#include "vrm/manager/manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "vrm/manager/reservation_events.h"
#include "vrm/planner/vm_adapter.h"
#include "vrm/protocol/units.h"

namespace vrm::manager {
namespace {

bool overlaps(TimeNs a0, TimeNs a1, TimeNs b0, TimeNs b1) { return a0 < b1 && b0 < a1; }

// A clone's handle as its agent keeps it in the inventory (when the clone's answer was missed).
void takeHandle(ClonePlacement& c, const VmRecord& vm) {
  c.address = vm.address;
  c.account = vm.account;
  c.port = vm.sshPort;
  c.addressSource = vm.addressSource;
}

bool runningInto(const Move& m, const std::string& host, const std::string& vmId) {
  return m.progress.state == MoveState::kRunning && m.planned.toHost == host &&
         m.planned.vmId == vmId;
}

// When r's vacate ended: its last move's end (0 before any).
TimeNs vacateEndNs(const Reservation& r) {
  TimeNs end = 0;
  for (const auto& m : r.moves) {
    if (m.isVacate()) end = std::max(end, m.progress.actualEndNs);
  }
  return end;
}

// (actual - mean predicted) / mean predicted makespan of r's vacate once all of its moves are
// done: from the first move's start to the last one's end, against the mean of the plan r was
// admitted with (a re-plan of the rest keeps it: the lateness that made it re-plan is what the
// quantile is for). None while a move is not done, when one was skipped or failed (not the
// vacate planned), and when it only parked VMs: a park's error is seconds, which the margin is
// for, and parks' relative errors (2.5 s predicted, 5-11 s taken in issue 18's week) would
// otherwise set every vacate's quantile.
std::optional<double> vacateMakespanError(const Reservation& r) {
  if (r.request.kind != ReservationKind::kDedicated || r.plan.makespanNs <= 0) {
    return std::nullopt;
  }
  TimeNs first = kTimeInfinity;
  TimeNs last = 0;
  bool migrated = false;
  for (const auto& m : r.moves) {
    if (!m.isVacate()) continue;
    const MoveProgress& p = m.progress;
    if (p.state != MoveState::kDone || p.actualStartNs <= 0 || p.actualEndNs < p.actualStartNs) {
      return std::nullopt;
    }
    first = std::min(first, p.actualStartNs);
    last = std::max(last, p.actualEndNs);
    if (m.purpose != MovePurpose::kPark) migrated = true;
  }
  if (!migrated || last <= first) return std::nullopt;
  return static_cast<double>(last - first - r.plan.makespanNs) /
         static_cast<double>(r.plan.makespanNs);
}

// Keeps r's vacate error (if it has one) as the newest of `errors`, bounded.
void keepVacateError(std::vector<double>& errors, const Reservation& r) {
  const std::optional<double> error = vacateMakespanError(r);
  if (!error) return;
  errors.push_back(*error);
  constexpr std::size_t kKeep = 200;  // recent behaviour matters most: the last weeks' vacates
  if (errors.size() > kKeep) errors.erase(errors.begin());
}

}  // namespace

Manager::Manager(const Clock& clock, Store& store, const planner::VacatePlanner& planner,
                 std::vector<TemplateSpec> templates, ManagerOptions options)
    : clock_(clock),
      store_(store),
      planner_(planner),
      templates_(std::move(templates)),
      options_(options),
      inventory_(options.heartbeatTimeoutNs),
      hosts_(inventory_.hosts()),
      registry_(store),
      reservations_(registry_.inPlace()),
      // Seeded from the clock so ids never repeat across restarts: agents de-duplicate by id.
      commands_(static_cast<std::uint64_t>(std::max<TimeNs>(clock.now(), 1))),
      startedNs_(clock.now()),
      replanner_(clock, {options.warningRatio, options.dangerRatio, options.assessPeriodNs}),
      projection_(clock, inventory_, commands_, registry_.all(), templates_, options.marginNs),
      index_(inventory_, projection_.bookings()),
      admission_(
          planner_, inventory_.hosts(), registry_.all(), projection_, index_, vacateErrors_,
          {options.marginNs, options.planningLatencyNs, options.quantile, options.admissionPath}),
      vacate_(clock, planner_, inventory_, commands_, projection_, index_, replanner_,
              vacateErrors_, {options.quantile}),
      teardown_(clock, inventory_, commands_, projection_, templates_) {}

Status Manager::recover() {
  if (Status s = registry_.recover(); !s) return s;
  // The vacates' errors again, in the order the vacates ended.
  std::vector<std::pair<TimeNs, const Reservation*>> vacated;
  for (const auto& [id, r] : registry_.all()) {
    if (vacateMakespanError(r)) vacated.push_back({vacateEndNs(r), &r});
  }
  std::sort(vacated.begin(), vacated.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [end, r] : vacated) keepVacateError(vacateErrors_, *r);
  for (const auto& [id, r] : registry_.all()) {
    if (!isTerminal(r.state)) touch(r);  // rebuild the calendars from the store
    dirty_.insert(id);                   // the first tick files it by its state
  }
  spdlog::info("recovered {} reservations from the store", reservations_.size());
  return Status::ok();
}

const TemplateSpec* Manager::findTemplate(const std::string& name) const {
  for (const auto& t : templates_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Admission

Status Manager::validate(const ReservationRequest& req, const TemplateSpec** tmpl) const {
  const TimeNs now = clock_.now();
  if (req.endNs <= req.startNs) return Status::invalid("end must be after start");
  if (req.startNs <= now) {
    return Status::invalid("start " + formatTime(req.startNs) + " is in the past (now " +
                           formatTime(now) + ")");
  }
  *tmpl = findTemplate(req.templateName);
  if (!*tmpl) {
    std::string known;
    for (const auto& t : templates_) known += (known.empty() ? "" : ", ") + t.name;
    return Status::invalid("unknown template '" + req.templateName +
                           "' (known: " + (known.empty() ? "none" : known) + ")");
  }
  if (req.kind == ReservationKind::kShared) {
    if (req.displaced) {
      return Status::invalid("a shared reservation displaces no VMs (drop --displaced)");
    }
    if (req.vmCount == 0) return Status::invalid("a shared reservation needs at least one VM");
    if (!req.hostNames.empty() || req.hostCount != 0) {
      return Status::invalid("a shared reservation takes a VM count, not hosts");
    }
    return Status::ok();
  }
  if (req.maxVmTimeNs < 0) return Status::invalid("max VM time cannot be negative");
  if (req.maxVmTimeNs > 0 && req.objective != Objective::kDegradation) {
    return Status::invalid("a max VM time needs the degradation objective");
  }
  if (req.hostCount == 0 && req.hostNames.empty()) {
    return Status::invalid("a dedicated reservation needs at least one host");
  }
  if (!req.hostNames.empty() && req.hostCount != 0 && req.hostCount != req.hostNames.size()) {
    return Status::invalid("host count " + std::to_string(req.hostCount) + " disagrees with " +
                           std::to_string(req.hostNames.size()) + " named hosts");
  }
  std::set<std::string> seen;
  for (const auto& name : req.hostNames) {
    if (!hosts_.count(name)) return Status::invalid("unknown host '" + name + "'");
    if (!seen.insert(name).second) return Status::invalid("host '" + name + "' named twice");
  }
  const std::size_t wanted = req.hostNames.empty() ? req.hostCount : req.hostNames.size();
  if (wanted > hosts_.size()) {
    return Status::invalid("asked for " + std::to_string(wanted) + " hosts but the cluster has " +
                           std::to_string(hosts_.size()));
  }
  return Status::ok();
}

Result<Reservation> Manager::submit(ReservationRequest request) {
  const TimeNs now = clock_.now();
  const TemplateSpec* tmpl = nullptr;
  if (Status s = validate(request, &tmpl); !s) return s;
  if (request.kind == ReservationKind::kDedicated && request.vmsPerHost == 0) {
    request.vmsPerHost = tmpl->vmsPerHost;
  }
  Reservation r;
  r.request = std::move(request);
  r.createdNs = now;
  r.updatedNs = now;
  if (r.request.dryRun) {
    r.id = "dry-run";
  } else {
    auto id = store_.allocateReservationId();
    if (!id) return id.status();
    r.id = *id;
  }
  r.events.push_back({now, ReservationState::kRequested, "requested by " + r.request.owner});
  Reservation out = admit(std::move(r), *tmpl);
  if (out.request.dryRun) return out;
  // Durable before the client hears about it.
  AdmitReservation admit(out);
  if (auto applied = registry_.apply(admit); !applied) return applied.status();
  spdlog::info(
      "{} {} for {}: {}", out.id, stateName(out.state), out.request.owner,
      out.state == ReservationState::kRejected ? out.reason : "hosts " + [&] {
        std::string h;
        for (const auto& x : out.hosts) h += (h.empty() ? "" : ",") + x;
        return h;
      }());
  // A shared one is booked exactly as a rebuild would: no need to rebuild its (often busy) hosts.
  if (out.state != ReservationState::kAdmitted || out.request.kind != ReservationKind::kShared ||
      !projection_.bookAdmittedShared(out, *tmpl)) {
    touch(out);
  }
  dirty_.insert(out.id);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bookings (BookingProjection) and the admission views derived from them

void Manager::touch(const Reservation& r) {
  dirty_.insert(r.id);
  projection_.touch(r);
}

void Manager::refreshViews() {
  projection_.refresh();
  index_.bookingsChanged(projection_.takeChanges());
}

Reservation Manager::admit(Reservation candidate, const TemplateSpec& tmpl) {
  refreshViews();
  AdmissionDecision d = admission_.decide(std::move(candidate), tmpl, clock_.now());
  Reservation& r = d.reservation;
  if (d.admitted) {
    transition(r, ReservationState::kAdmitted, d.message);
  } else {
    r.reason = d.message;
    r.earliestFeasibleStartNs = d.earliestFeasibleStartNs;
    transition(r, ReservationState::kRejected, d.message);
  }
  return std::move(r);
}

// ---------------------------------------------------------------------------------------------
// Queries and cancel

Result<Reservation> Manager::get(const std::string& id) const {
  auto it = reservations_.find(id);
  if (it == reservations_.end()) return Status::notFound("no reservation '" + id + "'");
  return it->second;
}

std::vector<Reservation> Manager::list(const ListFilter& f) const {
  std::vector<Reservation> out;
  for (const auto& [id, r] : reservations_) {
    if (!f.owner.empty() && r.request.owner != f.owner) continue;
    if (!f.states.empty() &&
        std::find(f.states.begin(), f.states.end(), r.state) == f.states.end()) {
      continue;
    }
    TimeNs to = f.toNs == 0 ? kTimeInfinity : f.toNs;
    if (!overlaps(r.request.startNs, r.request.endNs, f.fromNs, to)) continue;
    out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const Reservation& a, const Reservation& b) {
    return a.createdNs != b.createdNs ? a.createdNs < b.createdNs : a.id < b.id;
  });
  return out;
}

// Cancels a non-terminal reservation: moves already running finish (their results are still
// handled); no new move starts; clones are torn down.
class Manager::Cancel final : public ReservationOp {
 public:
  Cancel(Manager& manager, std::string id, std::string reason)
      : manager_(manager), id_(std::move(id)), reason_(std::move(reason)) {}
  std::string describe() const override { return "cancel " + id_; }
  bool perform(ReservationDraft& draft) override {
    Reservation* r = draft.edit(id_);
    if (!r || isTerminal(r->state)) return false;
    const ReservationState was = r->state;
    r->reason = reason_;
    for (auto& m : r->moves) {
      if (m.isVacate() && m.progress.state == MoveState::kPlanned) {
        m.progress.state = MoveState::kSkipped;
      }
    }
    manager_.transition(*r, ReservationState::kCancelled, reason_ + " while " + stateName(was));
    manager_.startTeardown(*r);
    return true;
  }

 private:
  Manager& manager_;
  std::string id_;
  std::string reason_;
};

Result<Reservation> Manager::cancel(const std::string& id, const std::string& requester,
                                    bool asAdmin) {
  auto it = reservations_.find(id);
  if (it == reservations_.end()) return Status::notFound("no reservation '" + id + "'");
  Reservation& r = it->second;
  if (!asAdmin && !requester.empty() && requester != r.request.owner) {
    return Status::unauthorized("reservation " + id + " belongs to " + r.request.owner);
  }
  if (isTerminal(r.state)) {
    return Status::rejected("reservation " + id + " is already " + stateName(r.state));
  }
  Cancel op(*this, id,
            "cancelled by " + (requester.empty() ? std::string("an operator") : requester) +
                (asAdmin && !requester.empty() && requester != r.request.owner ? " (admin)" : ""));
  if (auto applied = commit(op); !applied) {
    // Not stored, so not done: a crash would bring the reservation back. Nothing changed (nor
    // any teardown command released): say so rather than acknowledge a cancel that may not hold.
    return Status::internal("cannot store the cancellation of " + id + ": " +
                            applied.status().message());
  }
  Reservation cancelled = reservations_.at(id);     // repairAfter may rehash reservations_
  ReservationRegistry::Batch batch(registry_, id);  // the repairs it causes, saved together
  repairAfter(cancelled);
  return cancelled;
}

Result<std::vector<std::string>> Manager::commit(ReservationOp& op) {
  commands_.beginStaging();
  auto applied = registry_.apply(op);
  if (!applied) {
    commands_.discardStaged();
    return applied;
  }
  commands_.releaseStaged();
  for (const auto& id : *applied) {
    touch(reservations_.at(id));
    dirty_.insert(id);
  }
  return applied;
}

std::vector<HostRecord> Manager::hosts() const {
  std::vector<HostRecord> out;
  for (const auto& [name, h] : inventory_.hosts()) out.push_back(h);
  return out;
}

std::vector<VmRecord> Manager::vms() const { return inventory_.allVms(); }

// ---------------------------------------------------------------------------------------------
// Agents

void Manager::apply(const HostChange& change) {
  if (change.bookingsStale) touchHost(change.host);
  // Before the resend: a command for a guest that is gone fails rather than going out again.
  for (const LostVm& lost : change.lost) onLost(change.host, lost);
  // A restarted agent knows nothing of them; a running one ignores them.
  if (change.cameBack) resendPending(change.host);
  if (change.reported) {
    dropOrphanIncoming(change.host);
    onRelisted(change.host);
  }
}

void Manager::onRelisted(const std::string& host) {
  // Only onLost() fails a clone of a reservation that goes on; an ended one's failed clone
  // listed again is a leftover either way (lost before the reservation was ready, or made
  // after its command failed).
  std::vector<std::pair<std::string, std::string>> found;  // (reservation id, vm id)
  for (const VmRecord& v : inventory_.vmsOn(host)) {
    if (v.reservationId.empty() ||
        (v.state != VmState::kRunning && v.state != VmState::kSuspended)) {
      continue;
    }
    auto rit = reservations_.find(v.reservationId);
    if (rit == reservations_.end()) continue;
    for (const ClonePlacement& c : rit->second.clones) {
      if (c.vmId == v.id && c.host == host && c.state == CloneState::kFailed) {
        found.emplace_back(rit->first, v.id);
      }
    }
  }
  for (const auto& entry : found) {
    const std::string& vmId = entry.second;  // a named reference: C++17 lambdas cannot capture
                                             // structured bindings (clang refuses)
    Reservation& r = reservations_.at(entry.first);
    auto c = std::find_if(r.clones.begin(), r.clones.end(), [&](const ClonePlacement& p) {
      return p.vmId == vmId && p.host == host && p.state == CloneState::kFailed;
    });
    const VmRecord* vm = findVm(host, vmId);
    if (c == r.clones.end() || !vm) continue;
    ReservationRegistry::Batch batch(registry_, r.id);
    c->state = CloneState::kRunning;
    if (c->address.empty()) takeHandle(*c, *vm);
    const bool ended = isTerminal(r.state) || r.state == ReservationState::kEnding;
    const std::string what = "found: host " + host + " lists VM " + vmId + " again (" +
                             vmStateName(vm->state) + "), reported lost before; ";
    spdlog::warn("{}: {}", r.id, what + (ended ? "destroying it" : "it runs again"));
    note(r, what + (ended ? "the reservation has ended: destroying it" : "it runs again"));
    if (ended) startTeardown(r);
    persist(r);
  }
}

void Manager::onLost(const std::string& host, const LostVm& lost) {
  if (lost.vmId.empty()) return;  // nothing to match it with (the agent logged it)
  const std::string what = "host " + host + " lost VM " + lost.vmId + " (" +
                           vmStateName(lost.lastState) + "): " + lost.reason;
  auto liveClone = [&](Reservation& r) {
    return std::find_if(r.clones.begin(), r.clones.end(), [&](const ClonePlacement& c) {
      return c.vmId == lost.vmId && c.host == host &&
             (c.state == CloneState::kCloning || c.state == CloneState::kRunning);
    });
  };
  // The reservations it served, told first: a displaced VM's (its move or return not done yet),
  // a clone's. Ids kept: failing one may re-plan others.
  std::vector<std::string> served;
  for (auto& [id, r] : reservations_) {
    const bool moving = std::any_of(r.moves.begin(), r.moves.end(), [&](const Move& m) {
      return m.planned.vmId == lost.vmId &&
             (m.planned.fromHost == host || m.planned.toHost == host) &&
             (m.progress.state == MoveState::kPlanned || m.progress.state == MoveState::kRunning);
    });
    if (!moving && liveClone(r) == r.clones.end()) continue;
    served.push_back(id);
    note(r, "lost: " + what);
    persist(r);
  }
  // Its unanswered commands fail, each through its step's own path: where the VM's absence
  // settles the step (a park, a destroy), as if the agent had answered not-found; a migration,
  // a clone or a commit as refused (reconcile would otherwise commit a migration's incoming
  // copy, which a source lost mid-way never finished).
  std::vector<std::pair<std::uint64_t, Status>> failed;
  for (const auto& [id, p] : commands_.pending()) {
    const std::string& vmId =
        p.command.kind == AgentCommand::Kind::kPrepareIncoming ? p.command.vm.id : p.command.vmId;
    if (p.host != host || vmId != lost.vmId) continue;
    const bool absenceSettles = p.step == Step::kPark || p.step == Step::kUnpark ||
                                p.step == Step::kDestroy || p.step == Step::kSetBandwidth;
    failed.emplace_back(id, absenceSettles ? Status::notFound(what) : Status::rejected(what));
  }
  for (auto& [id, status] : failed) {
    AgentResult result;
    result.commandId = id;
    result.status = std::move(status);
    onResult(host, result);
  }
  // A clone still counted as made or being made. Ending or ended: its teardown's destroy
  // finds it gone.
  for (const std::string& id : served) {
    auto rit = reservations_.find(id);
    if (rit == reservations_.end()) continue;
    Reservation& r = rit->second;
    auto clone = liveClone(r);
    if (clone == r.clones.end() || isTerminal(r.state) || r.state == ReservationState::kEnding) {
      continue;
    }
    ReservationRegistry::Batch batch(registry_, r.id);
    clone->state = CloneState::kFailed;
    if (r.state != ReservationState::kReady && r.state != ReservationState::kActive) {
      fail(r, "clone " + lost.vmId + " on " + host +
                  " was lost before the reservation was ready: " + lost.reason);
    } else {
      // The others keep running for their owner: failing the reservation would destroy them.
      const auto running = std::count_if(r.clones.begin(), r.clones.end(), [](const auto& c) {
        return c.state == CloneState::kRunning;
      });
      r.atRisk = true;
      r.riskReason = "clone " + lost.vmId + " on " + host + " was lost (" + lost.reason + "); " +
                     std::to_string(running) + " of " + std::to_string(r.clones.size()) +
                     " clones still run";
      note(r, "at-risk: " + r.riskReason);
    }
    persist(r);
  }
}

Status Manager::onRegister(const HostRecord& host, const std::vector<VmRecord>& vms,
                           const std::vector<LostVm>& lost) {
  Result<HostChange> change = inventory_.registerHost(host, vms, clock_.now(), lost);
  if (!change) return change.status();
  apply(*change);
  return Status::ok();
}

Status Manager::onHeartbeat(const std::string& host, const std::vector<VmRecord>& vms,
                            const std::vector<LostVm>& lost) {
  Result<HostChange> change = inventory_.heartbeat(host, vms, clock_.now(), lost);
  if (!change) return change.status();
  apply(*change);
  return Status::ok();
}

void Manager::onProgress(const std::string& host, const AgentProgress& progress) {
  spdlog::debug("progress from {}: command {} {:.0f}% {}", host, progress.commandId,
                progress.fraction * 100, progress.phase);
  const Pending* p = commands_.find(progress.commandId);
  if (!p || (p->step != Step::kMigrate && p->step != Step::kPark)) return;
  if (!(progress.fraction >= 0 && progress.fraction <= 1)) return;  // NaN or nonsense
  replanner_.onProgress(p->reservationId, p->move, progress.fraction);
}

void Manager::onSendFailed(std::uint64_t commandId, const std::string& why) {
  const Pending* p = commands_.find(commandId);
  if (!p) {
    // A drop that did not go out stays in flight (its room booked) and is sent again with the
    // host's other unanswered commands when its agent is back (resendPending).
    if (auto host = commands_.dropHost(commandId)) {
      apply(inventory_.sendFailed(*host, why, /*unreachable=*/false));
    }
    return;
  }
  // Copies: onResult erases the pending entry that `p` points into (fuzz_manager_ops found
  // the use after free).
  const std::string host = p->host;
  const bool abandoned = p->abandoned;
  // Nobody is connected as that host: unreachable until its agent heartbeats again, and
  // nothing is settled from what we last heard of it until then.
  apply(inventory_.sendFailed(host, why, /*unreachable=*/true));
  // An abandoned migrate's source may still hold the answer: it is asked again on reconnect.
  if (abandoned) return;
  AgentResult r;
  r.commandId = commandId;
  r.status = Status::unavailable(why);
  onResult(host, r);
}

void Manager::onResult(const std::string& host, const AgentResult& result) {
  const Pending* found = commands_.find(result.commandId);
  if (!found) {
    if (onDropResult(host, result)) return;
    if (const Pending* late = commands_.givenUp(result.commandId)) {
      const Pending p = *late;
      settleGivenUp(host, p, result);
      return;
    }
    if (commands_.answered(result.commandId)) {
      // Sent again (its agent reconnected) and answered again, or answered twice.
      spdlog::debug("repeated result for command {} from {} ignored", result.commandId, host);
      return;
    }
    if (!commands_.issuedHere(result.commandId)) {
      // An earlier vrmd's (ids start from the clock): reconcile() settles its work from the
      // agents' inventories.
      spdlog::warn("result for command {} from {} of an earlier run of vrmd ignored",
                   result.commandId, host);
      return;
    }
    // Issued by this vrmd and forgotten: whatever the agent did is nobody's now (a clone never
    // destroyed, a VM parked for good). Every command that changes an agent's state is kept
    // until settled, so this is a bug, counted for the invariant checks (tests/faults, week).
    ++unknownResults_;
    spdlog::error("result for unknown command {} from {} ignored", result.commandId, host);
    return;
  }
  if (found->host != host) {
    // An agent speaks only for its own host: another host's answer settles nothing.
    spdlog::warn("result for command {} came from {} instead of {}: ignored", result.commandId,
                 host, found->host);
    return;
  }
  settle(*commands_.take(result.commandId), result);
}

void Manager::settleGivenUp(const std::string& host, const Pending& p, const AgentResult& result) {
  if (p.host != host) {
    spdlog::warn("late result for command {} came from {} instead of {}: ignored", result.commandId,
                 host, p.host);
    return;
  }
  const std::string what = std::string(commandKindName(p.command.kind)) + " command " +
                           std::to_string(result.commandId) + " from " + host;
  if (p.step == Step::kPrepareIncoming && result.status) {
    // The destination prepared a copy after all: nobody migrates into it (its move was planned
    // again or failed at the deadline), unless a move sent since brings the same VM there.
    bool expected = false;
    for (const auto& id : projection_.reservationsTouching(host)) {
      auto rit = reservations_.find(id);
      if (rit == reservations_.end()) continue;
      for (const auto& m : rit->second.moves) {
        expected = expected || runningInto(m, host, p.command.vmId);
      }
    }
    spdlog::warn("late answer to {} (given up at its deadline){}", what,
                 expected ? "" : "; dropping the copy it prepared");
    if (!expected) {
      dropIncoming(host, p.command.vmId,
                   {p.command.vm.cpuCores, static_cast<std::int64_t>(p.command.vm.memoryBytes), 0});
    }
    return;
  }
  // Nothing else given up leaves anything behind on the agent: a set-bandwidth changes a
  // migration that is settled by its own command, a failed prepare made nothing.
  spdlog::warn("late answer to {} (given up at its deadline) ignored: {}", what,
               result.status.toString());
}

void Manager::settle(const Pending& p, const AgentResult& result) {
  auto rit = reservations_.find(p.reservationId);
  if (rit == reservations_.end()) return;
  Reservation& r = rit->second;
  const TimeNs now = clock_.now();
  // What the result changes (r, and reservations re-planned because of it) is saved together,
  // r first.
  ReservationRegistry::Batch batch(registry_, r.id);

  // A move step's move: found by id, so a re-plan in between cannot mislead it. (A reference
  // into r.moves holds only until something adds moves: advance() and failMove() may.)
  Move* mv = nullptr;
  if (p.step != Step::kClone && p.step != Step::kDestroy) {
    mv = r.findMove(p.move);
    if (!mv) {
      spdlog::warn("{}: result for command {} of a move no longer planned ignored", r.id,
                   result.commandId);
      return;
    }
  }

  switch (p.step) {
    case Step::kPrepareIncoming: {
      const PlannedMove move = mv->planned;
      if (!result.status && result.status.code() == StatusCode::kUnavailable && mv->isVacate() &&
          r.state == ReservationState::kVacating) {
        // The destination's agent is gone: nothing started, the VM is still on its source.
        // Send its move, and the others waiting for that host, elsewhere.
        mv->progress.state = MoveState::kPlanned;
        mv->progress.actualStartNs = 0;
        note(r, "destination " + move.toHost + " cannot receive " + move.vmId + " (" +
                    result.status.message() + ")");
        apply(inventory_.markUnreachable(move.toHost));
        persist(r);
        replanAroundLostHosts();
        return;
      }
      if (!result.status) {
        mv->progress.state = MoveState::kFailed;
        failMove(r, p.move,
                 "destination " + move.toHost + " cannot receive " + move.vmId + ": " +
                     result.status.toString());
        break;
      }
      AgentCommand cmd;
      cmd.kind = AgentCommand::Kind::kMigrate;
      cmd.host = move.fromHost;
      cmd.vmId = move.vmId;
      cmd.destinationHost = move.toHost;
      cmd.destinationEndpoint = result.incomingEndpoint;
      cmd.mode = move.mode;
      if (move.replanCapBytesPerSec > 0) {
        // Capped from the start; driveCaps() lifts it if nothing shares its NICs any more.
        cmd.maxBandwidthBytesPerSec = move.replanCapBytesPerSec;
        replanner_.capSent(r.id, p.move, move.replanCapBytesPerSec);
      }
      issue(std::move(cmd), r.id, Step::kMigrate, p.move);
      break;
    }
    case Step::kMigrate: {
      const PlannedMove move = mv->planned;
      replanner_.forgetProgress(r.id, p.move);
      replanner_.forgetCap(r.id, p.move);
      if (result.status.code() == StatusCode::kNotFound) {
        // The source no longer has it: a restarted agent whose migration finished before it
        // died. The destination's incoming copy may be the only one: reconcile() commits it
        // (or re-moves the VM) from the inventories instead of dropping it.
        note(r, move.vmId + " is no longer on " + move.fromHost + "; settling its move");
        break;
      }
      if (!result.status) {
        // Drop the half-prepared VM at the destination; it still runs at the source.
        const VmRecord* vm = findVm(move.fromHost, move.vmId);
        dropIncoming(move.toHost, move.vmId,
                     {vm ? vm->cpuCores : 1, static_cast<std::int64_t>(move.memoryBytes), 0});
        mv->progress.state = MoveState::kFailed;
        failMove(r, p.move,
                 "migration of " + move.vmId + " from " + move.fromHost +
                     " failed: " + result.status.toString());
        break;
      }
      if (result.migrated) {
        if (Status s = store_.saveObservation(*result.migrated); !s) {
          spdlog::error("cannot store migration observation: {}", s.toString());
        }
        if (options_.onObservation) options_.onObservation(*result.migrated);
      }
      for (const HostChange& c : inventory_.moveVm(move.vmId, move.fromHost, move.toHost)) {
        apply(c);
      }
      AgentCommand cmd;
      cmd.kind = AgentCommand::Kind::kFinishIncoming;
      cmd.host = move.toHost;
      cmd.vmId = move.vmId;
      cmd.commit = true;
      issue(std::move(cmd), r.id, Step::kFinishIncoming, p.move);
      break;
    }
    case Step::kFinishIncoming: {
      const PlannedMove move = mv->planned;
      auto& prog = mv->progress;
      if (result.status.code() == StatusCode::kUnavailable) {
        // Not delivered, and the source has already let the VM go: failing the move would strand
        // it on the destination, uncommitted. reconcile() commits it once that agent is back.
        note(r, "cannot reach " + move.toHost + " to commit " + move.vmId + "; will retry");
        break;
      }
      if (!result.status) {
        prog.state = MoveState::kFailed;
        failMove(r, p.move,
                 "destination " + move.toHost + " could not commit " + move.vmId + ": " +
                     result.status.toString());
        break;
      }
      prog.state = MoveState::kDone;
      prog.actualEndNs = now;
      // After a timed-out commit vrmd's view held the copy as incoming.
      apply(inventory_.setVmState(move.toHost, move.vmId, VmState::kRunning));
      if (!mv->isVacate()) {
        note(r, "returned " + move.vmId + " home " + move.fromHost + " -> " + move.toHost + " in " +
                    formatDuration(prog.actualEndNs - prog.actualStartNs));
      } else {
        note(r, "moved " + move.vmId + " " + move.fromHost + " -> " + move.toHost + " in " +
                    formatDuration(prog.actualEndNs - prog.actualStartNs) + " (predicted " +
                    formatDuration(move.endOffsetNs - move.startOffsetNs) + ")");
      }
      advance(r);
      break;
    }
    case Step::kPark:
    case Step::kUnpark: {
      const bool park = p.step == Step::kPark;
      const PlannedMove move = mv->planned;
      auto& prog = mv->progress;
      replanner_.forgetProgress(r.id, p.move);
      if (result.status.code() == StatusCode::kNotFound) {
        // Gone from its host (destroyed meanwhile): nothing to park or unpark.
        prog.state = MoveState::kSkipped;
        note(r, move.vmId + " is no longer on " + move.fromHost + "; not " +
                    (park ? "parked" : "unparked"));
        advance(r);
        break;
      }
      if (!result.status) {
        prog.state = MoveState::kFailed;
        prog.actualEndNs = now;
        // A failed park leaves the VM running on its source (the vacate fails); a failed unpark
        // leaves it parked there, noted, for an operator.
        failMove(r, p.move,
                 std::string(park ? "parking " : "unparking ") + move.vmId + " on " +
                     move.fromHost + " failed: " + result.status.toString() +
                     (park ? "" : "; it stays parked"));
        break;
      }
      if (result.migrated) {
        MigrationObservation o = *result.migrated;
        o.mode = MoveMode::kPark;
        if (Status s = store_.saveObservation(o); !s) {
          spdlog::error("cannot store park observation: {}", s.toString());
        }
        if (options_.onObservation) options_.onObservation(o);
      }
      // Our view of the host follows at once: a parked VM holds no room until its resume.
      apply(inventory_.setVmState(move.fromHost, move.vmId,
                                  park ? VmState::kParked : VmState::kRunning,
                                  /*clearStateFile=*/!park));
      prog.state = MoveState::kDone;
      prog.actualEndNs = now;
      if (park) {
        note(r, "parked " + move.vmId + " on " + move.fromHost + " in " +
                    formatDuration(prog.actualEndNs - prog.actualStartNs) + " (predicted " +
                    formatDuration(move.endOffsetNs - move.startOffsetNs) + ")");
      } else {
        note(r, "unparked " + move.vmId + " on " + move.fromHost + " in " +
                    formatDuration(prog.actualEndNs - prog.actualStartNs));
      }
      advance(r);
      break;
    }
    case Step::kClone: {
      auto& c = r.clones[p.clone];
      if (!result.status) {
        c.state = CloneState::kFailed;
        fail(r, "clone " + c.vmId + " on " + c.host + " failed: " + result.status.toString());
        break;
      }
      c.state = CloneState::kRunning;
      if (options_.onClone) options_.onClone(r.request.templateName, c.host, now - p.sentNs);
      if (result.cloned) {
        c.address = result.cloned->address;
        c.account = result.cloned->account;
        c.port = result.cloned->port;
        c.addressSource = result.cloned->addressSource;
      }
      // Our view of the host follows our own actions at once, not at the next heartbeat.
      VmRecord vm;
      vm.id = c.vmId;
      vm.host = c.host;
      vm.reservationId = r.id;
      vm.address = c.address;
      vm.account = c.account;
      vm.sshPort = c.port;
      vm.addressSource = c.addressSource;
      vm.templateName = r.request.templateName;
      if (const TemplateSpec* t = findTemplate(r.request.templateName)) {
        vm.cpuCores = t->cpuCores;
        vm.memoryBytes = vm.nonzeroMemoryBytes = t->memoryBytes;
      }
      apply(inventory_.addVm(vm));
      if (isTerminal(r.state)) {
        startTeardown(r);  // cancelled or failed while cloning: do not leak the VM
      } else {
        note(r, "cloned " + c.vmId + " on " + c.host + " at " + c.address);
        advance(r);
      }
      break;
    }
    case Step::kSetBandwidth: {
      // The migration may have ended meanwhile (rejected, not found): nothing to do. Not
      // delivered: forget what was sent, so driveCaps() sends it again.
      if (!result.status) {
        spdlog::info("{}: bandwidth cap of move {} not applied: {}", r.id, moveIdValue(p.move),
                     result.status.toString());
        if (result.status.code() == StatusCode::kUnavailable) replanner_.forgetCap(r.id, p.move);
      }
      return;
    }
    case Step::kDestroy: {
      auto& c = r.clones[p.clone];
      if (!result.status && result.status.code() != StatusCode::kNotFound) {
        spdlog::error("{}: destroy of {} on {} failed: {}", r.id, c.vmId, c.host,
                      result.status.toString());
        c.state = CloneState::kRunning;  // retried by a later tick, once the agent answers
        persist(r);
        // Booked with no end until then (CommandTracker::leftoverGoneBy): later bookings of the
        // host may not fit.
        if (isTerminal(r.state)) repairAfter(r);
        return;
      } else {
        c.state = CloneState::kDestroyed;
        apply(inventory_.dropVm(c.host, c.vmId));
      }
      advance(r);
      break;
    }
  }
  persist(r);
}

void Manager::dropIncoming(const std::string& host, const std::string& vmId, const Usage& size) {
  if (commands_.drop(host, vmId, size)) touchHost(host);  // else already on its way
}

bool Manager::onDropResult(const std::string& host, const AgentResult& result) {
  const std::optional<std::string> vmId = commands_.settleDrop(host, result.commandId);
  if (!vmId) return false;
  if (!result.status && result.status.code() != StatusCode::kNotFound) {
    spdlog::warn("agent {} could not drop incoming {}: {}", host, *vmId, result.status.toString());
  } else if (const VmRecord* vm = findVm(host, *vmId); vm && vm->state == VmState::kIncoming) {
    apply(inventory_.dropVm(host, *vmId));
  }
  // Refused: the shell, if any, shows in the next inventory and dropOrphanIncoming retries.
  touchHost(host);
  return true;
}

void Manager::dropOrphanIncoming(const std::string& host) {
  std::vector<std::pair<std::string, Usage>> orphans;
  for (const auto& v : inventory_.vmsOn(host)) {
    if (v.state != VmState::kIncoming || commands_.dropping(host, v.id)) continue;
    bool expected = false;
    for (const auto& id : projection_.reservationsTouching(host)) {
      auto rit = reservations_.find(id);
      if (rit == reservations_.end()) continue;
      for (const auto& m : rit->second.moves) {
        expected = expected || runningInto(m, host, v.id);
      }
      if (expected) break;
    }
    if (!expected) {
      orphans.emplace_back(v.id, Usage{v.cpuCores, static_cast<std::int64_t>(v.memoryBytes), 0});
    }
  }
  for (const auto& [id, size] : orphans) {
    spdlog::warn("agent {} holds incoming {} that no move brings in: dropping it", host, id);
    dropIncoming(host, id, size);
  }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

void Manager::transition(Reservation& r, ReservationState to, const std::string& message) {
  recordTransition(r, to, clock_.now(), message);
}

void Manager::note(Reservation& r, const std::string& message) {
  recordNote(r, clock_.now(), message);
}

void Manager::persist(Reservation& r) {
  touch(r);
  if (registry_.saveInPlace(r.id)) dirty_.insert(r.id);
}

void Manager::retryUnsaved() {
  for (const auto& id : registry_.retryUnsaved()) {
    touch(reservations_.at(id));
    dirty_.insert(id);
  }
}

std::vector<std::pair<ReservationEvent, Reservation>> Manager::takeEvents() {
  return registry_.takeEvents();
}

void Manager::repairAfter(const Reservation& cause) {
  refreshCalendar();
  for (const auto& host : hostsTouchedBy(cause)) {
    std::vector<std::string> victims;
    for (const auto& id : projection_.reservationsTouching(host)) {
      auto it = reservations_.find(id);
      if (it != reservations_.end() && it->second.state == ReservationState::kAdmitted) {
        victims.push_back(id);
      }
    }
    // The newest promise gives way first.
    std::sort(victims.begin(), victims.end(), [&](const auto& a, const auto& b) {
      return reservations_.at(a).createdNs > reservations_.at(b).createdNs;
    });
    for (const auto& id : victims) {
      if (!projection_.bookings().overbooked(host)) break;
      readmit(id, cause.id + " ended before vacating " + host);
    }
  }
}

void Manager::readmit(const std::string& id, const std::string& why) {
  Reservation old = reservations_.at(id);
  // Admission checks only hosts not already over capacity, and taking the old plan off the
  // books can overbook some: the VMs it was to move away stay, where later reservations counted
  // on their room. The new plan must not leave over capacity a host that was not with the old
  // one (a plan that parks those VMs brings them back after the window; fuzz_manager_ops).
  refreshCalendar();
  std::set<std::string> wasOver;
  for (const auto& h : hostsTouchedBy(old)) {
    if (projection_.bookings().overbooked(h)) wasOver.insert(h);
  }
  // Take it off the books and run admission again for the same request.
  reservations_.erase(id);
  touch(old);
  refreshCalendar();
  Reservation fresh;
  fresh.id = old.id;
  fresh.request = old.request;
  fresh.createdNs = old.createdNs;
  fresh.events = old.events;
  fresh.nextMoveId = old.nextMoveId;  // move ids are never given twice
  const TemplateSpec* t = findTemplate(old.request.templateName);
  Result<Reservation> again = Status::internal("template vanished");
  if (t) {
    again = admit(fresh, *t);
  }
  std::string overbooks;
  if (again && again->state == ReservationState::kAdmitted) {
    reservations_[id] = *again;
    touch(*again);
    refreshCalendar();
    std::set<std::string> hosts = hostsTouchedBy(old);
    for (const auto& h : hostsTouchedBy(*again)) hosts.insert(h);
    for (const auto& h : hosts) {
      std::string over;
      if (!wasOver.count(h) && projection_.bookings().overbooked(h, &over)) {
        overbooks = "not enough capacity: host " + h + " would be overbooked: " + over;
        break;
      }
    }
    reservations_.erase(id);
    for (const auto& h : hosts) touchHost(h);
  }
  Reservation next = old;
  if (again && again->state == ReservationState::kAdmitted && overbooks.empty()) {
    next = std::move(*again);
    next.events.back().message = "re-planned because " + why + ": " + next.events.back().message;
  } else {
    next.reason = "re-planning failed after " + why + ": " +
                  (!overbooks.empty() ? overbooks
                   : again            ? again->reason
                                      : again.status().message());
    next.plan = old.plan;
    transition(next, ReservationState::kFailed, next.reason);
    for (auto& m : next.moves) {
      if (m.progress.state == MoveState::kPlanned) m.progress.state = MoveState::kSkipped;
    }
    for (auto& c : next.clones) {
      if (c.state == CloneState::kPending) c.state = CloneState::kDestroyed;
    }
  }
  spdlog::warn("{}: {}", next.id, next.events.back().message);
  reservations_[id] = next;
  touch(next);
  persist(reservations_[id]);
  refreshCalendar();
  // Failed, its vacate will not happen: as after fail(), reservations that counted on it may no
  // longer fit (fuzz_manager_ops found a host overbooked this way).
  if (next.state == ReservationState::kFailed) repairAfter(next);
}

void Manager::replanAroundLostHosts() {
  std::set<std::string> lost;
  for (const auto& [name, h] : hosts_) {
    if (!h.reachable) lost.insert(name);
  }
  if (lost.empty()) return;
  ReservationRegistry::Batch batch(registry_, "");  // one loss, one transaction
  std::vector<std::string> affected;
  for (const auto& [id, r] : reservations_) {
    if (r.state != ReservationState::kAdmitted) continue;
    bool touches = false;
    for (const auto& h : r.hosts) touches |= lost.count(h) > 0;
    for (const auto& m : r.moves) {
      touches |= lost.count(m.planned.fromHost) || lost.count(m.planned.toHost);
    }
    for (const auto& c : r.clones) touches |= lost.count(c.host) > 0;
    if (touches) affected.push_back(id);
  }
  for (const auto& id : affected) readmit(id, "an agent it depends on became unreachable");

  // Vacates under way: moves not started towards a lost destination go elsewhere; a lost host
  // being vacated cannot be emptied until its agent returns, so the promise is at risk.
  for (auto& [id, r] : reservations_) {
    if (r.state != ReservationState::kVacating) continue;
    applyVacate(r, vacate_.aroundLostHosts(r, lost));
    persist(r);
  }
}

void Manager::fail(Reservation& r, const std::string& reason) {
  if (isTerminal(r.state)) {
    note(r, reason);
    return;
  }
  spdlog::error("{} failed: {}", r.id, reason);
  r.reason = reason;
  for (auto& m : r.moves) {
    if (m.isVacate() && m.progress.state == MoveState::kPlanned) {
      m.progress.state = MoveState::kSkipped;
    }
  }
  transition(r, ReservationState::kFailed, reason);
  startTeardown(r);
  touch(r);
  repairAfter(r);
}

void Manager::startTeardown(Reservation& r) { applyTeardown(r, teardown_.start(r)); }

void Manager::applyTeardown(Reservation& r, TeardownEffects effects) {
  for (TeardownCommand& c : effects.commands) {
    issue(std::move(c.command), r.id, c.step, c.move, c.clone);
  }
}

bool Manager::leftoverCommand(const Pending& p) const {
  if (p.abandoned || (p.step != Step::kClone && p.step != Step::kDestroy)) return false;
  auto r = reservations_.find(p.reservationId);
  return r != reservations_.end() && isTerminal(r->second.state);
}

std::uint64_t Manager::issue(AgentCommand cmd, const std::string& reservationId, Step step,
                             MoveId move, std::size_t clone) {
  const TimeNs now = clock_.now();
  TimeNs deadline = kTimeInfinity;
  if (auto r = reservations_.find(reservationId); r != reservations_.end()) {
    deadline = commandDeadline(r->second, step, move, now);
  }
  const bool debug = spdlog::should_log(spdlog::level::debug);
  const std::string what =
      debug ? fmt::format("{} {} on {}", commandKindName(cmd.kind), cmd.vmId, cmd.host) : "";
  std::string host = cmd.host;
  PendingCommand p{reservationId,   step,           move,     clone,
                   std::move(host), std::move(cmd), deadline, now};
  // What a clone makes, its reservation ended, the teardown destroys within a destroy's bound.
  if (step == Step::kClone) p.undoneWithinNs = options_.slowCommandTimeoutNs;
  // Staged while an op is performed: released by commit() once the op is stored.
  const std::uint64_t id = commands_.issue(std::move(p));
  if (debug) spdlog::debug("{}: {} (command {})", reservationId, what, id);
  return id;
}

void Manager::resendPending(const std::string& host) {
  const TimeNs now = clock_.now();
  std::size_t n = 0;
  for (std::uint64_t id : commands_.resend(host, &n)) {
    const Pending& p = *commands_.find(id);
    // A move sent again starts again: its time until now (the agent's outage) is not
    // migration time, and must not teach the planner that migrations are slow.
    auto r = reservations_.find(p.reservationId);
    if (r != reservations_.end() && !p.abandoned) {
      commands_.setDeadline(id, commandDeadline(r->second, p.step, p.move, now));
    }
    // A migration started again runs at the cap its command carries.
    if (p.step == Step::kMigrate) {
      replanner_.capSent(p.reservationId, p.move, p.command.maxBandwidthBytesPerSec);
    }
    if ((p.step == Step::kPrepareIncoming || p.step == Step::kMigrate || p.step == Step::kPark) &&
        r != reservations_.end()) {
      if (Move* m = r->second.findMove(p.move)) m->progress.actualStartNs = now;
      touch(r->second);
    }
    // An ended reservation's leftover is booked until its command's deadline: the new one.
    if ((p.step == Step::kClone || p.step == Step::kDestroy) && r != reservations_.end()) {
      touch(r->second);
    }
  }
  if (n) spdlog::info("agent {}: sending its {} unanswered commands again", host, n);
}

TimeNs Manager::commandDeadline(const Reservation& r, Step step, MoveId move, TimeNs sentNs) const {
  const Move* target = r.findMove(move);
  switch (step) {
    case Step::kMigrate: {
      TimeNs predicted = 0;
      if (target) {
        const PlannedMove& m = target->planned;
        predicted = std::max<TimeNs>(m.endOffsetNs - m.startOffsetNs, 0);
      }
      return sentNs +
             static_cast<TimeNs>(static_cast<double>(predicted) * options_.commandTimeoutFactor) +
             options_.commandTimeoutFloorNs;
    }
    case Step::kPark:
    case Step::kUnpark: {
      // A park's predicted time is its move's (the save); an unpark's, the park's it undoes
      // (reading the state back costs about what writing it did).
      const PlannedMove* park = nullptr;
      if (target && target->isVacate()) {
        park = &target->planned;
      } else if (target) {
        for (const auto& m : r.moves) {
          if (m.purpose == MovePurpose::kPark && m.planned.vmId == target->planned.vmId) {
            park = &m.planned;
          }
        }
      }
      const TimeNs predicted =
          park ? std::max<TimeNs>(park->endOffsetNs - park->startOffsetNs, 0) : 0;
      return sentNs +
             static_cast<TimeNs>(static_cast<double>(predicted) * options_.commandTimeoutFactor) +
             options_.commandTimeoutFloorNs;
    }
    case Step::kClone: {
      // A template slower to clone than the bound still gets its own time, with the factor.
      const TemplateSpec* t = findTemplate(r.request.templateName);
      const TimeNs own = t ? static_cast<TimeNs>(static_cast<double>(t->cloneTimeNs) *
                                                 options_.commandTimeoutFactor) +
                                 options_.commandTimeoutFloorNs
                           : 0;
      return sentNs + std::max(options_.slowCommandTimeoutNs, own);
    }
    case Step::kDestroy:
      return sentNs + options_.slowCommandTimeoutNs;
    default:
      return sentNs + options_.commandTimeoutFloorNs;
  }
}

void Manager::expireCommands() {
  const TimeNs now = clock_.now();
  std::vector<std::uint64_t> expired;
  // Overdue, and an abandoned command each time (its VM may have got there meanwhile); only to
  // agents that are there and silent on the command: an unreachable one is handled as such
  // (its commands are sent again, with new deadlines, when it is back). But an ended
  // reservation's clone or destroy is abandoned at its deadline all the same: its leftover is
  // booked until then (CommandTracker::leftoverGoneBy), and with no end once nothing says when
  // it goes.
  for (std::uint64_t id : commands_.overdue(now)) {
    const Pending& p = *commands_.find(id);
    if (agentReady(p.host) || leftoverCommand(p)) expired.push_back(id);
  }
  for (std::uint64_t id : expired) {
    const Pending* found = commands_.find(id);
    if (!found) continue;  // settled by an earlier expiry's consequences
    const Pending p = *found;
    ReservationRegistry::Batch batch(registry_, p.reservationId);
    AgentResult result;
    result.commandId = id;
    auto r = reservations_.find(p.reservationId);
    if (p.step == Step::kMigrate && r != reservations_.end()) {
      // The agents' inventories (their heartbeats) say where the VM is: moved, and only the
      // answer was lost, or still at the source.
      const Move* m = r->second.findMove(p.move);
      const PlannedMove move = m ? m->planned : PlannedMove{};
      const VmRecord* atDest = findVm(move.toHost, move.vmId);
      if (!findVm(move.fromHost, move.vmId) && atDest) {
        spdlog::warn("{}: no answer to migrate command {} from {}, but {} is on {}: moved",
                     p.reservationId, id, p.host, move.vmId, move.toHost);
        onResult(p.host, result);
        continue;
      }
    }
    if (p.step == Step::kFinishIncoming && p.abandoned) {
      // A commit whose answer is late or lost: the destination's inventory shows it done.
      const VmRecord* vm = findVm(p.host, p.command.vmId);
      if (vm && vm->state == VmState::kRunning) {
        spdlog::warn("{}: no answer to commit command {} from {}, but {} runs there: committed",
                     p.reservationId, id, p.host, p.command.vmId);
        onResult(p.host, result);
      }
      continue;
    }
    if ((p.step == Step::kPark || p.step == Step::kUnpark) && r != reservations_.end()) {
      // A park or unpark whose answer is late or lost: the agent's inventory says where it got.
      const bool park = p.step == Step::kPark;
      const Move* m = r->second.findMove(p.move);
      const PlannedMove move = m ? m->planned : PlannedMove{};
      const VmRecord* vm = findVm(move.fromHost, move.vmId);
      if (!vm || vm->state == (park ? VmState::kParked : VmState::kRunning)) {
        const char* found = !vm ? "gone" : (park ? "parked" : "running");
        spdlog::warn("{}: no answer to {} command {} from {}, but {} is {}", p.reservationId,
                     commandKindName(p.command.kind), id, p.host, move.vmId, found);
        if (!vm) result.status = Status::notFound(move.vmId + " is gone from " + p.host);
        onResult(p.host, result);
        continue;
      }
      if (p.abandoned) continue;  // still waiting for its answer
    }
    if ((p.step == Step::kClone || p.step == Step::kDestroy) && r != reservations_.end() &&
        p.clone < r->second.clones.size()) {
      expireClone(id, p, r->second);
      continue;
    }
    if (p.abandoned) continue;  // still waiting for its source's answer
    const std::string why = "host " + p.host + " did not answer its " +
                            commandKindName(p.command.kind) + " command " + std::to_string(id) +
                            (p.command.vmId.empty() ? "" : " for " + p.command.vmId) +
                            " in time (deadline " + formatTime(p.deadlineNs) + ")";
    spdlog::warn("{}: {}", p.reservationId, why);
    // A move past its deadline whose answer may still come: it fails its reservation (a vacate
    // move) or is noted, but stays running, without a deadline, until the answer or the agents'
    // inventories settle it (each expiry looks at the abandoned ones again).
    auto keepWaiting = [&](const std::string& waiting) {
      commands_.abandon(id, now);
      const Move* m = r->second.findMove(p.move);
      if (m && m->isVacate()) {
        fail(r->second, waiting);
      } else {
        note(r->second, waiting);
      }
      persist(r->second);
    };
    if ((p.step == Step::kPark || p.step == Step::kUnpark) && r != reservations_.end()) {
      // Still saving or restoring, or its answer on the way (an agent slow under load): failing
      // the move now would leave a VM that ends up parked with nobody to unpark it (the
      // disk-full campaign, seed 140580, ended with two VMs parked for good). A late park fails
      // its reservation, as any move past its deadline does, but stays running until the
      // agent's answer (or inventory) settles it, and the teardown then unparks what was parked.
      keepWaiting(std::string(p.step == Step::kPark ? "parking " : "unparking ") + p.command.vmId +
                  " on " + p.host + " failed: " + why + "; waiting for " + p.host + "'s answer");
      continue;
    }
    if (p.step == Step::kMigrate && r != reservations_.end()) {
      // The source may still be migrating the VM, or have migrated it with its answer held up
      // on the way (a partition shorter than the heartbeat timeout): dropping the destination's
      // copy now could leave the VM on neither host. The move fails its reservation now but
      // stays running, the copy kept and booked, until the source's answer (late, or repeated
      // when its agent reconnects) commits or drops it (the partition campaign lost VMs so).
      keepWaiting("migration of " + p.command.vmId + " from " + p.host + " failed: " + why +
                  "; its copy on " + p.command.destinationHost + " waits for " + p.host +
                  "'s answer");
      continue;
    }
    if (p.step == Step::kFinishIncoming && p.command.commit && r != reservations_.end()) {
      // The source has let the VM go: only this commit brings it to life, and an agent that
      // restarted meanwhile (its heartbeat timeout not yet passed) still holds the copy. Kept
      // until answered (repeated when the agent is back); vrmd's view, which took the commit
      // for done when the source answered, holds the copy as incoming again until the
      // destination's inventory says otherwise (the kill-agent campaign lost a VM whose move
      // was settled from that view, its copy then dropped as an orphan).
      commands_.abandon(id, now);
      apply(inventory_.setVmState(p.host, p.command.vmId, VmState::kIncoming));
      note(r->second, why + "; waiting for " + p.host + " to commit " + p.command.vmId);
      persist(r->second);
      continue;
    }
    // Nothing of it needs undoing if it happens late (a prepare's copy is dropped when its
    // late answer comes, settleGivenUp): given up, and its late answer known as such.
    result.status = Status::unavailable(why);
    commands_.giveUp(id);
    settle(p, result);
  }
}

void Manager::expireClone(std::uint64_t id, const Pending& p, Reservation& r) {
  const bool clone = p.step == Step::kClone;
  const std::string& vmId = p.command.vmId;
  AgentResult result;
  result.commandId = id;
  if (!agentReady(p.host)) {
    // An ended reservation's leftover (leftoverCommand): its agent may make or keep the VM
    // once it is back, so from now on it is booked with no end, until that agent says.
    commands_.abandon(id, clock_.now());
    note(r, "host " + p.host + " is unreachable past the deadline of its " +
                commandKindName(p.command.kind) + " command for " + vmId + "; " + vmId +
                " stays booked until " + p.host + " says where it is");
    persist(r);
    repairAfter(r);
    return;
  }
  // The agent's inventory says where it got: made (only the answer was lost), or, reported at
  // or after the deadline without the VM, not made (a clone) or gone (a destroy). A VM still
  // being made or destroyed there keeps its command waiting.
  const VmRecord* vm = findVm(p.host, vmId);
  auto h = hosts_.find(p.host);
  const bool reportedSince = h != hosts_.end() && h->second.lastHeartbeatNs >=
                                                      (p.abandoned ? p.abandonedNs : p.deadlineNs);
  if (clone && vm && vm->state == VmState::kRunning) {
    spdlog::warn("{}: no answer to clone command {} from {}, but {} runs there: cloned", r.id, id,
                 p.host, vmId);
    ClonePlacement handle;
    handle.vmId = vmId;
    handle.host = p.host;
    takeHandle(handle, *vm);
    result.cloned = handle;
    onResult(p.host, result);
    return;
  }
  if (!vm && reportedSince) {
    spdlog::warn("{}: no answer to {} command {} from {}, and its inventory has no {}: {}", r.id,
                 commandKindName(p.command.kind), id, p.host, vmId, clone ? "not made" : "gone");
    result.status = Status::notFound(vmId + (clone ? " was not made on " : " is gone from ") +
                                     p.host + " (its inventory after the command's deadline)");
    onResult(p.host, result);
    return;
  }
  if (p.abandoned) return;  // still waiting for its answer
  // Past its deadline, its answer may still come (an agent slow under load): failing it now
  // would leave a clone the agent then makes with nobody to destroy it (the disk-full campaign
  // and the week left such clones behind). The clone fails its reservation, as a command past
  // its deadline does, but stays cloning (booked with no end) until the agent's answer or
  // inventory settles it, and the teardown then destroys what was made. A destroy waits the
  // same way: the VM is there until the agent says it is gone.
  const std::string why = "host " + p.host + " did not answer its " +
                          commandKindName(p.command.kind) + " command " + std::to_string(id) +
                          " for " + vmId + " in time (deadline " + formatTime(p.deadlineNs) +
                          "); waiting for " + p.host + "'s answer";
  spdlog::warn("{}: {}", r.id, why);
  commands_.abandon(id, clock_.now());
  if (clone && !isTerminal(r.state)) {
    fail(r, "clone " + vmId + " on " + p.host + " failed: " + why);
    persist(r);
    return;
  }
  note(r, why);
  persist(r);
  repairAfter(r);  // its leftover's booking has no end now
}

void Manager::applyVacate(Reservation& r, VacateEffects effects) {
  for (MoveCommand& c : effects.commands) issue(std::move(c.command), r.id, c.step, c.move);
  if (effects.touched) dirty_.insert(r.id);
  if (effects.migrationsSlowed) {
    // A capped move takes longer: its command's deadline follows its new predicted end.
    for (const auto& [id, p] : commands_.pending()) {
      if (p.reservationId != r.id || p.step != Step::kMigrate) continue;
      const Move* m = r.findMove(p.move);
      if (!m || !m->isVacate()) continue;
      commands_.setDeadline(id, std::max(p.deadlineNs, commandDeadline(r, Step::kMigrate, p.move,
                                                                       m->progress.actualStartNs)));
    }
  }
  if (effects.vacated) keepVacateError(vacateErrors_, r);
}

void Manager::failMove(Reservation& r, MoveId id, const std::string& reason) {
  if (vacate_.failMove(r, id, reason) == AfterMoveFailure::kFailReservation) {
    fail(r, reason);
  } else {
    advance(r);
  }
}

// After a restart nothing is in flight: settle moves and clones that were running from what the
// agents report, re-issuing what did not happen. Waits until the hosts involved registered.
// Moves are walked by index and looked up again after each step: failMove() may add moves.
void Manager::reconcile(Reservation& r) {
  for (std::size_t i = 0; i < r.moves.size(); ++i) {
    if (r.moves[i].progress.state != MoveState::kRunning) continue;
    const MoveId id = r.moves[i].id;
    if (inFlight(r.id, Step::kPrepareIncoming, id) || inFlight(r.id, Step::kMigrate, id) ||
        inFlight(r.id, Step::kFinishIncoming, id) || inFlight(r.id, Step::kPark, id) ||
        inFlight(r.id, Step::kUnpark, id)) {
      continue;
    }
    const PlannedMove move = r.moves[i].planned;
    auto& prog = r.moves[i].progress;
    const bool vacate = r.moves[i].isVacate();
    if (move.mode == MoveMode::kPark) {
      // A park (or its unpark) whose answer was lost: the agent's inventory says where it got.
      if (!agentReady(move.fromHost)) continue;
      const VmRecord* vm = findVm(move.fromHost, move.vmId);
      const bool park = vacate;
      if (!vm) {
        prog.state = MoveState::kSkipped;
        note(r, move.vmId + " is no longer on " + move.fromHost + "; not " +
                    (park ? "parked" : "unparked"));
      } else if (vm->state == (park ? VmState::kParked : VmState::kRunning)) {
        prog.state = MoveState::kDone;
        prog.actualEndNs = clock_.now();
        note(r, std::string(park ? "parked " : "unparked ") + move.vmId + " on " + move.fromHost +
                    " (settled from its agent's inventory)");
      } else if (vm->state == VmState::kRunning || vm->state == VmState::kParked ||
                 vm->state == VmState::kSuspended) {
        // Not done: ask again (parking a parked VM, or unparking a running one, is a no-op).
        prog.state = MoveState::kPlanned;
        note(r, "re-issuing the " + std::string(park ? "park" : "unpark") + " of " + move.vmId +
                    " after a restart");
      }  // otherwise busy there (saving): wait for the next inventory
      continue;
    }
    // Only from inventories the agents sent since they were last reachable.
    if (!agentReady(move.fromHost) || !agentReady(move.toHost)) continue;
    const VmRecord* atDest = findVm(move.toHost, move.vmId);
    const VmRecord* atSource = findVm(move.fromHost, move.vmId);
    if (atSource && atSource->state == VmState::kMigratingOut) {
      // Still running there, its command sent before a restart of vrmd: its deadline counts
      // from the move's stored start (ManagerOptions::commandTimeoutFactor).
      // Past it the reservation fails, but the move stays running and the destination keeps
      // its copy until the source has finished (commit) or given up (drop): dropping it while
      // the VM is still leaving could leave it on neither host (as in expireCommands).
      const TimeNs deadline = commandDeadline(r, Step::kMigrate, id, prog.actualStartNs);
      if (!vacate || clock_.now() < deadline || isTerminal(r.state)) continue;
      fail(r, "host " + move.fromHost + " did not finish its migrate command for " + move.vmId +
                  " within " + formatDuration(deadline - prog.actualStartNs) +
                  " of its start; its copy on " + move.toHost + " waits for it");
      continue;
    }
    if (atDest && atDest->state == VmState::kRunning && !atSource) {
      // Migrated and committed while nobody was listening: committing again would be refused.
      prog.state = MoveState::kDone;
      prog.actualEndNs = clock_.now();
      note(r, "moved " + move.vmId + " " + move.fromHost + " -> " + move.toHost +
                  " (settled from the agents' inventories)");
      continue;
    }
    if (atDest && (!atSource || atDest->state != VmState::kIncoming)) {
      // The migration finished while we were away; make sure the destination committed it.
      AgentCommand cmd;
      cmd.kind = AgentCommand::Kind::kFinishIncoming;
      cmd.host = move.toHost;
      cmd.vmId = move.vmId;
      cmd.commit = true;
      issue(std::move(cmd), r.id, Step::kFinishIncoming, id);
    } else if (atSource) {
      if (atDest) {  // a stale prepared copy: drop it before trying again
        dropIncoming(move.toHost, move.vmId,
                     {atDest->cpuCores, static_cast<std::int64_t>(atDest->memoryBytes), 0});
        apply(inventory_.dropVm(move.toHost, move.vmId));
      }
      prog.state = MoveState::kPlanned;
      note(r, "re-issuing the move of " + move.vmId + " after a restart");
    } else {
      prog.state = MoveState::kFailed;
      failMove(r, id,
               "VM " + move.vmId + " is on neither " + move.fromHost + " nor " + move.toHost);
    }
  }
  for (std::size_t i = 0; i < r.clones.size(); ++i) {
    auto& c = r.clones[i];
    bool cloning = c.state == CloneState::kCloning && !cloneInFlight(r.id, Step::kClone, i);
    bool destroying = c.state == CloneState::kDestroying && !cloneInFlight(r.id, Step::kDestroy, i);
    if ((!cloning && !destroying) || !inventory_.registeredSinceStart(c.host)) continue;
    const VmRecord* vm = findVm(c.host, c.vmId);
    if (cloning && vm && vm->state == VmState::kCloning) {
      // Sent before a restart of vrmd, still cloning: given the slow-command bound from the
      // later of its planned start and the restart.
      const TimeNs from = std::max(cloneStart(r), startedNs_);
      const TimeNs deadline = commandDeadline(r, Step::kClone, MoveId{}, from);
      if (clock_.now() >= deadline && !isTerminal(r.state)) {
        c.state = CloneState::kFailed;
        fail(r, "clone " + c.vmId + " on " + c.host + " failed: host " + c.host +
                    " did not finish its clone command within " + formatDuration(deadline - from));
        return;
      }
      continue;
    }
    if (cloning) {
      if (vm && vm->state == VmState::kRunning) {
        c.state = CloneState::kRunning;
        takeHandle(c, *vm);
      } else if (!vm) {
        c.state = CloneState::kPending;  // Teardown::driveClones re-issues it
      }
    } else {
      c.state = vm ? CloneState::kRunning : CloneState::kDestroyed;  // teardown re-issues
    }
  }
}

void Manager::advance(Reservation& r) {
  const TimeNs now = clock_.now();
  for (int guard = 0; guard < 16; ++guard) {
    const ReservationState before = r.state;
    reconcile(r);
    switch (r.state) {
      case ReservationState::kAdmitted:
        if (now >= prepareAt(r)) {
          if (r.request.kind == ReservationKind::kDedicated) {
            transition(r, ReservationState::kVacating,
                       "latest safe start reached: vacating " +
                           std::to_string(r.vacateMoveCount()) + " VMs");
          } else {
            transition(r, ReservationState::kPreparing,
                       "cloning " + std::to_string(r.clones.size()) + " VMs");
          }
        }
        break;
      case ReservationState::kVacating:
        applyVacate(r, vacate_.drive(r));
        break;
      case ReservationState::kPreparing:
        applyTeardown(r, teardown_.driveClones(r));
        break;
      case ReservationState::kReady:
        if (now >= r.request.startNs) transition(r, ReservationState::kActive, "started");
        break;
      case ReservationState::kActive:
        if (now >= r.request.endNs) {
          transition(r, ReservationState::kEnding, "window ended; destroying its VMs");
        }
        break;
      case ReservationState::kEnding:
      case ReservationState::kCancelled:
      case ReservationState::kFailed:
        // Moves still running after a cancel or failure lose their caps too.
        applyVacate(r, vacate_.driveCaps(r));
        applyTeardown(r, teardown_.drive(r));
        break;
      default:
        break;
    }
    if (r.state == before) break;
  }
  if ((r.state == ReservationState::kVacating || r.state == ReservationState::kPreparing) &&
      now >= r.request.startNs) {
    // Waiting for an agent that is gone would break the promise silently: past the start, a
    // reservation that still needs an unreachable host fails, with the reason.
    std::string gone;
    for (const auto& m : r.moves) {
      if (!gone.empty()) break;
      if (!m.isVacate() || m.progress.state != MoveState::kPlanned) continue;
      for (const auto* h : {&m.planned.fromHost, &m.planned.toHost}) {
        if (auto it = hosts_.find(*h); it != hosts_.end() && !it->second.reachable) gone = *h;
      }
    }
    for (const auto& c : r.clones) {
      if (!gone.empty() || c.state != CloneState::kPending) continue;
      if (auto it = hosts_.find(c.host); it != hosts_.end() && !it->second.reachable) gone = c.host;
    }
    if (!gone.empty()) {
      fail(r, "not ready at its start: host " + gone + " it needs is unreachable");
    } else if (!r.lateNoted) {
      r.lateNoted = true;
      note(r, "late: the reservation's start has passed before its hosts were ready");
    }
  }
}

bool Manager::expireSilentHosts(TimeNs now) {
  // Judged where the server has read every agent frame, not at now (agentFramesReadUntil).
  const TimeNs readUntil = agentsReadUntilNs_ ? std::min(now, *agentsReadUntilNs_) : now;
  const std::vector<HostChange> lost = inventory_.expireSilent(now, readUntil);
  for (const HostChange& c : lost) apply(c);
  return !lost.empty();
}

void Manager::unschedule(const std::string& id) {
  busy_.erase(id);
  if (auto d = dueAt_.find(id); d != dueAt_.end()) {
    due_.erase({d->second, id});
    dueAt_.erase(d);
  }
}

void Manager::schedule(const Reservation& r) {
  unschedule(r.id);
  auto dueAt = [&](TimeNs t) {
    due_.emplace(t, r.id);
    dueAt_[r.id] = t;
  };
  switch (r.state) {
    case ReservationState::kAdmitted:
      dueAt(prepareAt(r));
      return;
    case ReservationState::kReady:
      dueAt(r.request.startNs);
      return;
    case ReservationState::kActive:
      dueAt(r.request.endNs);
      return;
    case ReservationState::kDone:
    case ReservationState::kRejected:
      return;
    case ReservationState::kCancelled:
    case ReservationState::kFailed: {
      // Final once its teardown is over: no clone left to destroy, no move to settle (a
      // restart leaves running moves to reconcile()), no VM to bring home.
      const bool clonesGone = std::all_of(r.clones.begin(), r.clones.end(), [](const auto& c) {
        return c.state == CloneState::kDestroyed || c.state == CloneState::kFailed;
      });
      const bool moving = std::any_of(r.moves.begin(), r.moves.end(), [](const Move& m) {
        return m.isVacate() && m.progress.state == MoveState::kRunning;
      });
      // Nor a parked VM to unpark (its unpark not yet created, or not settled).
      bool unparking = Teardown::parksVms(r) && !r.hasTeardownMoves();
      for (const auto& m : r.moves) {
        unparking |= m.purpose == MovePurpose::kUnpark && m.pendingOrRunning();
      }
      if (clonesGone && !moving && !unparking && !r.request.returnsDisplaced()) return;
      busy_.insert(r.id);
      return;
    }
    default:
      busy_.insert(r.id);
      return;
  }
}

void Manager::tick() {
  if (registry_.anyUnsaved()) retryUnsaved();  // the store may have room again
  const TimeNs now = clock_.now();
  projection_.forgetBefore(now);  // the calendar lets the past go (issue 19 item 1)
  // Promises that depend on a host that just went away are re-planned (or failed, with the
  // reason) now, not when their vacate would have started.
  if (expireSilentHosts(now)) replanAroundLostHosts();
  expireCommands();
  // What has something to do: changed since the last tick, under way, or due by now. In id
  // order, as when every reservation was walked.
  std::set<std::string> work;
  work.swap(dirty_);
  work.insert(busy_.begin(), busy_.end());
  while (!due_.empty() && due_.begin()->first <= now) {
    work.insert(due_.begin()->second);
    dueAt_.erase(due_.begin()->second);
    due_.erase(due_.begin());
  }
  lastTickAdvanced_ = 0;
  for (const auto& id : work) {
    auto it = reservations_.find(id);
    if (it == reservations_.end()) {
      unschedule(id);
      continue;
    }
    Reservation& r = it->second;
    if (r.state != ReservationState::kDone && r.state != ReservationState::kRejected) {
      // r's change and those of the reservations it re-plans are saved together, r first.
      ReservationRegistry::Batch batch(registry_, id);
      ++lastTickAdvanced_;
      const std::size_t events = r.events.size();
      const auto clonesBefore = r.clones.size();
      std::vector<int> before;
      for (const auto& m : r.moves) before.push_back(static_cast<int>(m.progress.state));
      for (const auto& c : r.clones) before.push_back(static_cast<int>(c.state));
      advance(r);
      std::vector<int> after;
      for (const auto& m : r.moves) after.push_back(static_cast<int>(m.progress.state));
      for (const auto& c : r.clones) after.push_back(static_cast<int>(c.state));
      if (r.events.size() != events || before != after || clonesBefore != r.clones.size()) {
        persist(r);
      }
    }
    // Just advanced: filed by its state now, not advanced again for its own change. (Looked
    // up again: a re-plan while advancing may have replaced it in reservations_.)
    dirty_.erase(id);
    if (auto again = reservations_.find(id); again != reservations_.end()) {
      schedule(again->second);
    } else {
      unschedule(id);
    }
  }
}

TimeNs Manager::nextWakeNs() const {
  if (!dirty_.empty()) return clock_.now();
  TimeNs next = due_.empty() ? kTimeInfinity : due_.begin()->first;
  for (const auto& id : busy_) {
    auto it = reservations_.find(id);
    if (it == reservations_.end()) continue;
    const Reservation& r = it->second;
    switch (r.state) {
      case ReservationState::kVacating:
        next = std::min(next, replanner_.nextAssessNs(id));
        [[fallthrough]];
      case ReservationState::kPreparing:
        // The start is when a reservation still waiting for a lost agent fails.
        if (r.request.startNs > clock_.now()) next = std::min(next, r.request.startNs);
        break;
      default:
        break;
    }
  }
  next = std::min(next, inventory_.nextSilenceCheckNs());
  for (const auto& [id, p] : commands_.pending()) {
    if (agentReady(p.host) || leftoverCommand(p)) next = std::min(next, p.deadlineNs);
  }
  return next;
}

std::vector<AgentCommand> Manager::takeOutbox() {
  std::vector<AgentCommand> out;
  std::vector<AgentCommand> held;
  const TimeNs now = clock_.now();
  for (AgentCommand& cmd : commands_.takeOutbox(now)) {
    const Pending* p = commands_.find(cmd.id);
    const bool waits = p && registry_.unsaved(p->reservationId);
    (waits ? held : out).push_back(std::move(cmd));
  }
  commands_.holdBack(std::move(held), now);
  return out;
}

}  // namespace vrm::manager
