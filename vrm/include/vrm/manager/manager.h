// The Virtual Resource Manager's core: admission, the reservation lifecycle, and execution of
// vacate plans through agents. No sockets here: the server (server.h) decodes messages into the
// calls below and sends what takeOutbox() returns, so tests drive the manager directly with a
// ManualClock.
//
// Lifecycle (ARCHITECTURE.md): requested -> admitted -> vacating -> preparing -> ready ->
// active -> ending -> done, or rejected / cancelled / failed with a reason. Every transition is
// saved to the Store before the call returns, so what a client was told survives a crash.
//
// The jobs live in units (docs/architecture.md) that return what happened: a running vacate in
// the VacateExecutor (VacateEffects), clones, unparks and returns in the Teardown
// (TeardownEffects), deadline tracking in the Replanner, bookings in the BookingProjection.
// The Manager applies their effects: it issues their commands, files reservations for the next
// tick, and saves what changed.
//
// Not thread-safe: one event loop owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vrm/manager/admission.h"
#include "vrm/manager/admission_index.h"
#include "vrm/manager/booking_projection.h"
#include "vrm/manager/capacity_calendar.h"
#include "vrm/manager/command_tracker.h"
#include "vrm/manager/inventory.h"
#include "vrm/manager/replanner.h"
#include "vrm/manager/reservation_registry.h"
#include "vrm/manager/store.h"
#include "vrm/manager/teardown.h"
#include "vrm/manager/vacate_executor.h"
#include "vrm/planner/indexed_cluster.h"
#include "vrm/planner/vacate_planner.h"
#include "vrm/protocol/cluster.h"
#include "vrm/protocol/reservation.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

struct ManagerOptions {
  // Slack between the end of vacating and the start of cloning. Default 60 s.
  TimeNs marginNs = 60 * kNsPerSec;
  // Admission requires latest safe start >= now + this (time to plan and dispatch). Default 1 s.
  TimeNs planningLatencyNs = kNsPerSec;
  // An agent silent for this long is unreachable. Default 30 s.
  TimeNs heartbeatTimeoutNs = 30 * kNsPerSec;

  // Deadline tracking of running vacates (seed 004, Algorithm 1). Every `assessPeriodNs` the
  // executor projects the time the vacate still needs (timeleft: the running batch from its
  // moves' progress reports, later batches as planned, scaled to the plan's quantile) and
  // compares it with the time left before clones must start (timetodeadline = start - clone
  // time - now):
  //  * ratio = timetodeadline / timeleft <= warningRatio: the moves not started yet are
  //    re-planned (the planner may pick more parallelism, or suspend-copy-resume for VMs whose
  //    live migration would not converge at their share): first to start now, alongside the
  //    running moves, which are then capped at the share the new plan gives a move through
  //    their NICs until the moves sharing those end (the bandwidth-limit action); if that does
  //    not pay, from the end of the running batch. A new plan replaces the old one when it
  //    finishes at least 5% sooner and its bookings fit;
  //  * ratio < dangerRatio: the reservation is marked at risk and its owner told ("at-risk:"
  //    event), after any re-plan.
  // The paper's 3.0 / 4.0 suit tasks whose deadline is hours away; vrmd starts each vacate at its
  // latest safe start, so the slack is the margin plus the quantile's headroom and the
  // defaults sit just above 1 (1.0: projected to miss the deadline).
  // Called with every migration observation after it is stored (vrmd: the calibrating
  // planner). Empty = nobody listens.
  std::function<void(const MigrationObservation&)> onObservation;
  // Called with every clone that succeeded: its template, host and time from the command to the
  // VM answering (vrmd: the calibrating planner's clone times). Empty = nobody listens.
  std::function<void(const std::string&, const std::string&, TimeNs)> onClone;

  double warningRatio = 1.1;
  double dangerRatio = 1.0;
  TimeNs assessPeriodNs = 5 * kNsPerSec;

  // Dedicated admission plans with the vacate's makespan at this quantile (of the observed
  // relative errors of completed moves, or of a normal error before there are enough): the
  // latest safe start's headroom. In (0, 1). Default 0.95.
  double quantile = 0.95;

  // kIndexed (vrmd's): dedicated admission plans from an index of every host kept across
  // admissions and checks a new reservation by rebuilding only its own hosts. kFullSnapshot is
  // the reference AdmissionEquivalenceTest checks it against (same decisions; slow at
  // thousands of hosts): for that test only (see admission.h).
  AdmissionPath admissionPath = AdmissionPath::kIndexed;

  // Command deadlines: an agent that heartbeats but never answers a command must not stall its
  // reservation. A migration or park must be answered within its predicted duration x
  // commandTimeoutFactor + commandTimeoutFloorNs of being sent (an unpark: its park's predicted
  // duration); prepare-incoming,
  // finish-incoming and set-bandwidth (quick, synchronous on the agent) within the floor;
  // destroy within slowCommandTimeoutNs, clone within that or its template's clone time x the
  // factor + the floor, whichever is longer. On expiry the command counts as failed
  // ("unavailable: host H did not answer its C command for V within D"), unless the agents'
  // inventories show it done, and the usual failure path follows (the move is re-planned
  // elsewhere, or the reservation fails with that reason). After a vrmd restart the same
  // deadlines are derived from the store (a running move: from its actual start).
  // Defaults 3, 60 s and 10 min.
  double commandTimeoutFactor = 3.0;
  TimeNs commandTimeoutFloorNs = 60 * kNsPerSec;
  TimeNs slowCommandTimeoutNs = 600 * kNsPerSec;
};

class Manager {
 public:
  // `clock`, `store` and `planner` must outlive the manager.
  Manager(const Clock& clock, Store& store, const planner::VacatePlanner& planner,
          std::vector<TemplateSpec> templates, ManagerOptions options = {});

  // Loads reservations from the store (after a restart). In-flight moves and clones are
  // reconciled against agents' inventories once their hosts have registered again.
  Status recover();

  // --- client API ---
  // Admits or rejects. Returns the stored reservation (state admitted or rejected); errors are
  // invalid-argument for malformed requests and internal for store failures. A dry run returns
  // the decision without storing or booking anything (id "dry-run").
  Result<Reservation> submit(ReservationRequest request);
  Result<Reservation> get(const std::string& id) const;
  std::vector<Reservation> list(const ListFilter& filter) const;
  // Cancels at any non-terminal state, cleaning up. `requester` must be the owner, or empty for
  // an operator, or `asAdmin` (an administrator named `requester`). Errors: not-found,
  // unauthorized, rejected (already terminal), internal when the store cannot save the
  // cancellation (nothing changes then).
  Result<Reservation> cancel(const std::string& id, const std::string& requester,
                             bool asAdmin = false);
  std::vector<HostRecord> hosts() const;
  std::vector<VmRecord> vms() const;

  // --- agent API ---
  // `lost`: the guests the agent lost since it started (it repeats them in every report); each
  // is acted on once (Inventory): an error-level event on the reservations it served, its
  // unanswered commands failed, its reservation failed (a clone lost before the reservation was
  // ready) or marked at risk (a clone lost after: the others keep running). A clone reported
  // lost that its host lists again (an agent that could not re-attach it, "left running, not
  // listed", and a later one that did) is found: it runs again for its owner, or, its
  // reservation ended, is destroyed; at-risk stays raised, as a record.
  Status onRegister(const HostRecord& host, const std::vector<VmRecord>& vms,
                    const std::vector<LostVm>& lost = {});
  // not-found when the host has not registered (the agent must register again).
  Status onHeartbeat(const std::string& host, const std::vector<VmRecord>& vms,
                     const std::vector<LostVm>& lost = {});
  void onProgress(const std::string& host, const AgentProgress& progress);
  // An answer to a pending command settles it; a late answer to one given up at its deadline
  // is cleaned up after; a repeated answer is ignored. An answer to a command this vrmd never
  // issued is ignored at warning level (an earlier vrmd's: reconcile() settles its work from
  // the inventories), and to one it issued but no longer tracks at error level, counted by
  // resultsForUnknownCommands(): vrmd forgot something an agent did.
  void onResult(const std::string& host, const AgentResult& result);
  // The command could not be delivered (agent gone): handled as a failed result.
  void onSendFailed(std::uint64_t commandId, const std::string& why);
  std::size_t resultsForUnknownCommands() const { return unknownResults_; }

  // Advances every reservation to the clock's now: starts vacates at their latest safe start,
  // issues moves and clones, activates, ends, and marks silent agents unreachable.
  // Costs O(log n) per reservation or host with something due, not O(n): it advances only
  // reservations changed since the last tick, those under way (vacating, preparing, ending,
  // tearing down), and those whose next clock deadline has passed.
  void tick();
  // The clock time at which tick() next has something to do (kTimeInfinity if nothing).
  TimeNs nextWakeNs() const;
  // The caller (the server) has read every agent frame that had arrived by clock time `t`.
  // A host is unreachable when its last heartbeat is older than the timeout at the last such
  // `t`, not at now: a heartbeat still queued because vrmd itself was slow to read it does not
  // make its host unreachable. Until called, tick() judges at now (tests without a server).
  void agentFramesReadUntil(TimeNs t) { agentsReadUntilNs_ = t; }
  // Reservations the last tick() advanced: what it cost (tests, statistics).
  std::size_t lastTickAdvanced() const { return lastTickAdvanced_; }
  // Commands to send, in order. Empties the outbox, except for commands of reservations whose
  // state the store has not taken yet (disk full): those wait for it.
  std::vector<AgentCommand> takeOutbox();

  // Reservation events committed since the last call, oldest first, each with the
  // reservation as it stood after it. Empties the queue. (The server publishes them.)
  std::vector<std::pair<ReservationEvent, Reservation>> takeEvents();

  // The booked capacity of every host, brought up to date. Exposed for tests and operators:
  // an admitted reservation never leaves a host overbooked at any instant.
  const CapacityCalendar& calendar() { return projection_.calendar(); }

 private:
  using Step = CommandStep;
  using Pending = PendingCommand;

  // Admission's decision on `candidate` (new: not among the reservations), the views
  // refreshed first, recorded on it: admitted or rejected (reason, earliest feasible start),
  // with the transition's event. Neither stored nor booked.
  Reservation admit(Reservation candidate, const TemplateSpec& tmpl);
  Status validate(const ReservationRequest& req, const TemplateSpec** tmpl) const;
  TimeNs prepareAt(const Reservation& r) const { return projection_.prepareAt(r); }
  TimeNs cloneStart(const Reservation& r) const { return projection_.cloneStart(r); }

  // The bookings are the BookingProjection's, derived from the inventory and the reservations.
  // Invariant: every HostChange of the inventory goes through apply() (which touches the hosts
  // whose bookings are stale), and whoever changes a reservation's plan, moves or clones calls
  // touch() (persist() and commit() do). touch() also has the next tick advance r.
  void touch(const Reservation& r);
  void touchHost(const std::string& host) { projection_.touchHost(host); }
  void refreshCalendar() { projection_.refresh(); }
  // refreshCalendar(), then the AdmissionIndex is told which hosts' bookings changed since the
  // last call (BookingChanges): before reading it.
  void refreshViews();
  // After `cause` ended early (its vacate did not happen), hosts it touched may be overbooked
  // in the future by reservations that counted on that vacate: re-plan those not yet started,
  // newest first, and fail the ones that no longer fit, with the reason.
  void repairAfter(const Reservation& cause);
  // Takes reservation `id` (admitted, not started) off the books and admits its request again;
  // on failure it becomes failed with `why` and the reason.
  void readmit(const std::string& id, const std::string& why);
  // Re-plans admitted reservations that depend on an unreachable host.
  void replanAroundLostHosts();

  // Applies `op` through the registry (one store transaction). The commands issued while it is
  // performed are released into the outbox only once it is stored; on failure they are dropped
  // and nothing changed. On success the reservations it changed are touched and advanced by
  // the next tick. Returns their ids, cause first.
  Result<std::vector<std::string>> commit(ReservationOp& op);
  class Cancel;  // the op of cancel()

  void transition(Reservation& r, ReservationState to, const std::string& message);
  void note(Reservation& r, const std::string& message);
  // Compatibility path for the changes not yet written as ops: saves r (changed in place in
  // the registry). When the store fails (disk full), r stays unsaved in the registry: its
  // commands wait in the outbox (an agent never acts on a state a crash would forget) and
  // tick() saves it again.
  void persist(Reservation& r);
  void retryUnsaved();
  // Sends the commands still unanswered by `host` again, under their ids: after it registers
  // (a restarted agent) or speaks again after a silence (a partition may have lost them). An
  // agent runs a command id at most once and answers a repeat with its result.
  void resendPending(const std::string& host);
  void advance(Reservation& r);
  // The host's agent registered since vrmd started, is heartbeating, and took our last send.
  bool agentReady(const std::string& host) const { return inventory_.ready(host); }
  // Applies what the VacateExecutor returned for r: issues its commands (in order), has the
  // next tick advance r if it was touched, moves the deadlines of its capped migrations, and
  // keeps the error of a vacate that ended.
  void applyVacate(Reservation& r, VacateEffects effects);
  // When an unanswered command to `move` of r (move steps) or to a clone of r is given up
  // (ManagerOptions).
  TimeNs commandDeadline(const Reservation& r, Step step, MoveId move, TimeNs sentNs) const;
  // Fails commands past their deadline through the failure path of their step (only those to
  // agents that are reachable and connected: the others wait for the agent, as before).
  void expireCommands();
  // expireCommands() for clone or destroy p (command `id`) of r: settled from the agent's
  // inventory, or abandoned (a clone fails its live reservation) until its answer comes.
  void expireClone(std::uint64_t id, const Pending& p, Reservation& r);
  void reconcile(Reservation& r);
  void fail(Reservation& r, const std::string& reason);
  // A move step failed: a vacate move fails the reservation; a teardown move leaves its VM
  // where it is (noted) and the teardown goes on (VacateExecutor::failMove decides).
  void failMove(Reservation& r, MoveId move, const std::string& reason);
  // Teardown::start(r), applied.
  void startTeardown(Reservation& r);
  // Issues the commands the Teardown returned for r, in order.
  void applyTeardown(Reservation& r, TeardownEffects effects);
  // A clone or destroy of an ended reservation: expired at its deadline even while its agent
  // is unreachable (expiry only makes its leftover's booking open-ended).
  bool leftoverCommand(const Pending& p) const;
  // What the answer `result` to pending command p (taken out of commands_) changes.
  void settle(const Pending& p, const AgentResult& result);
  // A late answer to command p, given up at its deadline: cleans up what it did.
  void settleGivenUp(const std::string& host, const Pending& p, const AgentResult& result);
  // Queues `cmd` for move `move` (move steps) or clone `clone` (kClone, kDestroy) of the
  // reservation.
  std::uint64_t issue(AgentCommand cmd, const std::string& reservationId, Step step, MoveId move,
                      std::size_t clone = 0);
  bool inFlight(const std::string& reservationId, Step step, MoveId move) const {
    return commands_.inFlight(reservationId, step, move);
  }
  bool cloneInFlight(const std::string& reservationId, Step step, std::size_t clone) const {
    return commands_.cloneInFlight(reservationId, step, clone);
  }
  const VmRecord* findVm(const std::string& host, const std::string& vmId) const {
    return inventory_.findVm(host, vmId);
  }
  // Acts on what the inventory says happened to a host: rebuilds its bookings, sends its
  // unanswered commands again, drops stray incoming VMs. (Re-planning around a lost host is
  // the caller's: tick() does it once for every host it found silent.)
  void apply(const HostChange& change);
  // Acts on a guest `host` lost (apply(), before any resend): see onRegister.
  void onLost(const std::string& host, const LostVm& lost);
  // Clones onLost() marked failed that `host`'s own report lists again (apply()): see
  // onRegister.
  void onRelisted(const std::string& host);
  // Tells `host` to discard a prepared, uncommitted incoming VM. Until the agent answers, the
  // VM's room stays booked there (a drop in flight): the shell exists until the agent says it is
  // gone.
  void dropIncoming(const std::string& host, const std::string& vmId, const Usage& size);
  // Settles a drop's answer; false if `commandId` is not a drop sent to `host`.
  bool onDropResult(const std::string& host, const AgentResult& result);
  // Drops incoming VMs an agent reports that no running move or return is bringing in (left
  // by a drop that never arrived, or by a vrmd that restarted and forgot its drops).
  void dropOrphanIncoming(const std::string& host);
  const TemplateSpec* findTemplate(const std::string& name) const;

  const Clock& clock_;
  Store& store_;
  const planner::VacatePlanner& planner_;
  std::vector<TemplateSpec> templates_;
  ManagerOptions options_;

  // The agents' hosts, their VMs and liveness; hosts_ is its map of hosts, read-only.
  Inventory inventory_;
  const std::map<std::string, HostRecord>& hosts_;
  // Owns the reservations, their store and their events; reservations_ is its map, for the
  // code not yet written as ops (the compatibility path).
  ReservationRegistry registry_;
  std::map<std::string, Reservation>& reservations_;
  // Pending commands (staged while an op is performed: commit()), drops, the outbox.
  CommandTracker commands_;
  TimeNs startedNs_;  // when this manager was built (after a restart: the recovery)
  // (actual - admitted mean) / mean makespan of completed vacates, one per vacate, newest last
  // (bounded): the planner sets latest safe starts at the requested quantile of these.
  std::vector<double> vacateErrors_;
  // Deadline tracking: progress reports, caps sent, when to assess, re-plans counted.
  Replanner replanner_;
  // The bookings derived from the inventory and the reservations (brought up to date by
  // refreshCalendar()).
  BookingProjection projection_;
  // The admission views of every host and the planner's index of them, derived from the
  // inventory and the bookings (refreshViews() tells it what changed).
  AdmissionIndex index_;
  // Decides on new reservations from the bookings and index_; admit() records its decisions.
  Admission admission_;
  // Drives running vacates (moves, deadline tracking, re-plans, caps); applyVacate() applies
  // what it returns.
  VacateExecutor vacate_;
  // Makes and destroys clones, unparks parked VMs and brings displaced VMs home;
  // applyTeardown() issues what it returns.
  Teardown teardown_;

  // What tick() has to do. Invariant: every reservation that is neither final (done, rejected,
  // or cancelled/failed with its teardown over) is in dirty_, due_ or busy_.
  // Files `r` under due_ or busy_ (or neither) by its state; after it was advanced.
  void schedule(const Reservation& r);
  void unschedule(const std::string& id);
  // Marks hosts silent for longer than the timeout unreachable; true if any was.
  bool expireSilentHosts(TimeNs now);
  // Changed since the last tick (touch(), publishNew()): advanced by the next one.
  std::set<std::string> dirty_;
  // Admitted, ready and active reservations wait only for the clock: (deadline, id), by time.
  std::set<std::pair<TimeNs, std::string>> due_;
  std::map<std::string, TimeNs> dueAt_;
  // Under way: they wait for agents as well as the clock, so every tick advances them.
  std::set<std::string> busy_;
  std::optional<TimeNs> agentsReadUntilNs_;
  std::size_t unknownResults_ = 0;  // resultsForUnknownCommands()
  std::size_t lastTickAdvanced_ = 0;
};

}  // namespace vrm::manager
