// The commands vrmd has sent to agents and not yet seen answered: their ids, what each does
// for which reservation, their deadlines, the ones held back until an op is saved, the drops
// of incoming VMs, and the outbox the server sends from. One of the units of vrmd's core
// (docs/architecture.md); the Manager owns one.
//
// Contract:
//  * The tracker decides nothing about reservations and calls nothing back: it records, looks
//    up and queues. What a command's answer, expiry or resend means is the caller's; the
//    tracker returns the entries concerned (an answered PendingCommand, the ids overdue, the
//    ids sent again) and the caller acts on them.
//  * Ids are unique for the tracker's life and start at `firstId` (vrmd seeds it from the
//    clock, so that ids never repeat across restarts: agents de-duplicate by id).
//  * Staging: between beginStaging() and releaseStaged() / discardStaged(), issued commands
//    get their ids but wait aside, neither pending nor in the outbox; released, they become
//    pending and queued in the order issued; discarded, they are gone (an op that failed to
//    save issued nothing an agent may act on).
//  * A command is never forgotten while an answer to it may come: one past its deadline is
//    either abandoned (still pending, without a deadline, until its answer or the agent's
//    inventory settles it) or given up (taken out, its id remembered so that a late answer is
//    known as late, not as a stranger's). Only an id this tracker never issued, or one given up
//    long ago (kGivenUpKept later ones), is unknown.
//  * Deadlines and times are the caller's clock, TimeNs (ns).
//  * Not thread-safe: one event loop (vrmd's) owns it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "vrm/manager/capacity_calendar.h"
#include "vrm/protocol/reservation.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

// What a pending command does. Move steps name their move by id, clone steps their clone by
// index. kPark / kUnpark: a kPark move parks its VM on its source; its kUnpark move unparks it.
enum class CommandStep {
  kPrepareIncoming,
  kMigrate,
  kFinishIncoming,
  kClone,
  kDestroy,
  kSetBandwidth,  // caps or uncaps the move's running migration; nothing waits on it
  kPark,
  kUnpark,
};

// A command sent for a reservation and not yet answered.
struct PendingCommand {
  std::string reservationId;
  CommandStep step;
  MoveId move{};          // move steps
  std::size_t clone = 0;  // kClone, kDestroy: index in Reservation::clones
  std::string host;
  AgentCommand command;               // as sent, to send again under the same id
  TimeNs deadlineNs = kTimeInfinity;  // unanswered by then: failed (ManagerOptions)
  TimeNs sentNs = 0;                  // when it was first sent
  // Past its deadline but not given up (a command that changes an agent's state: a migrate
  // whose VM may still be leaving its source, a commit, a park or unpark, a clone, a destroy an
  // agent slow under load may yet answer): kept, without a deadline, until its answer or the
  // agent's inventory settles it (Manager::expireCommands).
  bool abandoned = false;
  TimeNs abandonedNs = 0;  // when it was abandoned: an inventory sent after it is news
  // kClone: how long after the answer what it made is gone at the latest if its reservation has
  // ended (a destroy's deadline: the teardown destroys it at once); see leftoverGoneBy().
  TimeNs undoneWithinNs = 0;
};

class CommandTracker {
 public:
  explicit CommandTracker(std::uint64_t firstId) : firstId_(firstId), nextId_(firstId) {}

  // --- sending ---
  // Gives `p.command` the next id, records it pending and queues it (or stages it while
  // staging). Returns the id.
  std::uint64_t issue(PendingCommand p);
  void beginStaging();
  bool staging() const { return staging_; }
  // The staged commands become pending and are queued, in the order issued.
  void releaseStaged();
  void discardStaged();
  // Commands to send at `nowNs`, in order; empties the outbox. A command that was held back
  // gets the time it waited added to its deadline: it starts running when it is sent.
  std::vector<AgentCommand> takeOutbox(TimeNs nowNs);
  // Puts `commands` (from takeOutbox(), in order) back at the head of the outbox at `nowNs`:
  // they wait for the next takeOutbox(), and their deadlines do not run meanwhile (an op not
  // yet saved holds its commands back; the agent has not seen them, so cannot be late).
  void holdBack(std::vector<AgentCommand> commands, TimeNs nowNs);

  // --- pending commands ---
  const std::map<std::uint64_t, PendingCommand>& pending() const { return pending_; }
  // Null if `id` is not pending.
  const PendingCommand* find(std::uint64_t id) const;
  // Removes and returns the pending command `id` (answered); empty if it is not pending.
  std::optional<PendingCommand> take(std::uint64_t id);
  bool inFlight(const std::string& reservationId, CommandStep step, MoveId move) const;
  bool cloneInFlight(const std::string& reservationId, CommandStep step, std::size_t clone) const;
  // Pending commands whose deadline is at or before `nowNs`, and every abandoned one (its VM
  // may have arrived meanwhile), by id; not those held back (holdBack) and not yet sent.
  std::vector<std::uint64_t> overdue(TimeNs nowNs) const;
  void setDeadline(std::uint64_t id, TimeNs deadlineNs);
  // No deadline any more, waiting for an answer however late (PendingCommand::abandoned), since
  // `nowNs`.
  void abandon(std::uint64_t id, TimeNs nowNs);
  // Takes the pending command `id` out as given up (its reservation was told it failed), and
  // remembers it: a late answer is then givenUp(), not unknown. Empty if `id` is not pending.
  std::optional<PendingCommand> giveUp(std::uint64_t id);
  // The given-up command `id` (the most recent kGivenUpKept); null if it is not one.
  const PendingCommand* givenUp(std::uint64_t id) const;
  // The command `id` was answered (taken) lately (the most recent kGivenUpKept): a repeated
  // answer (an agent answers a command sent again with its result again).
  bool answered(std::uint64_t id) const { return answered_.count(id) > 0; }
  // Held back (holdBack) and not sent since.
  bool heldBack(std::uint64_t id) const { return heldSince_.count(id) > 0; }
  // When what clone `clone` of reservation `reservationId` may have left on its host (it is being
  // made or destroyed) is known gone at the latest: its pending clone command's deadline plus
  // the command's undoneWithinNs, or its pending destroy's deadline. kTimeInfinity when nothing
  // says: neither is pending, or it is abandoned, held back (its deadline moves when it is
  // sent) or at or past its deadline at `nowNs`. What an ended reservation leaves is booked
  // until then (BookingProjection), so that a later booking of its host is not refused for a
  // leftover due to go, and not promised a host a late one may still take.
  TimeNs leftoverGoneBy(const std::string& reservationId, std::size_t clone, TimeNs nowNs) const;
  // True if `id` is one this tracker issued (a pending, answered, given-up or dropped command,
  // or a drop); false for ids of an earlier vrmd (ids start from the clock) or made up.
  bool issuedHere(std::uint64_t id) const { return id >= firstId_ && id < nextId_; }
  static constexpr std::size_t kGivenUpKept = 4096;
  // Queues again the commands to `host` that are pending (and every drop in flight there),
  // except those still in the outbox, under their ids. Returns the pending ids queued again,
  // by id; `queued` (if not null) gets how many commands went back to the outbox in all.
  std::vector<std::uint64_t> resend(const std::string& host, std::size_t* queued = nullptr);

  // --- drops of prepared, uncommitted incoming VMs ---
  // Queues a drop of `vmId` on `host` (a finish-incoming without commit). Until its answer,
  // the VM's room (`size`) stays booked there. False (nothing queued) if one is on its way.
  bool drop(const std::string& host, const std::string& vmId, const Usage& size);
  bool dropping(const std::string& host, const std::string& vmId) const {
    return drops_.count({host, vmId}) > 0;
  }
  // The answer `commandId` from `host` settles a drop there: returns its VM, forgets the drop.
  // Empty if `commandId` is not a drop sent to `host`.
  std::optional<std::string> settleDrop(const std::string& host, std::uint64_t commandId);
  // The host of drop `commandId`; empty if it is not a drop in flight.
  std::optional<std::string> dropHost(std::uint64_t commandId) const;
  // (VM, room) of every drop in flight on `host`, by VM id.
  std::vector<std::pair<std::string, Usage>> dropsOn(const std::string& host) const;

 private:
  struct Drop {
    std::uint64_t commandId;
    Usage size;
    AgentCommand command;  // to send again when the agent is back
  };

  std::uint64_t firstId_;
  std::uint64_t nextId_;
  std::map<std::uint64_t, PendingCommand> pending_;
  std::map<std::uint64_t, PendingCommand> givenUp_;  // by id, so the oldest goes first
  std::set<std::uint64_t> answered_;                 // the same, of answered ones (and drops)
  bool staging_ = false;
  std::vector<PendingCommand> staged_;
  std::map<std::pair<std::string, std::string>, Drop> drops_;  // (host, vm) -> drop in flight
  std::vector<AgentCommand> outbox_;
  std::map<std::uint64_t, TimeNs> heldSince_;  // held back, not sent since: id -> first held
};

}  // namespace vrm::manager
