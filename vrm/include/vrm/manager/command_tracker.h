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
  // Past its deadline but not given up (a migrate whose VM may still be leaving its source, a
  // commit, a park or unpark an agent slow under load may yet answer): kept, without a
  // deadline, until its answer or the agent's inventory settles it (Manager::expireCommands).
  bool abandoned = false;
};

class CommandTracker {
 public:
  explicit CommandTracker(std::uint64_t firstId) : nextId_(firstId) {}

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
  // No deadline any more, waiting for an answer however late (PendingCommand::abandoned).
  void abandon(std::uint64_t id);
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

  std::uint64_t nextId_;
  std::map<std::uint64_t, PendingCommand> pending_;
  bool staging_ = false;
  std::vector<PendingCommand> staged_;
  std::map<std::pair<std::string, std::string>, Drop> drops_;  // (host, vm) -> drop in flight
  std::vector<AgentCommand> outbox_;
  std::map<std::uint64_t, TimeNs> heldSince_;  // held back, not sent since: id -> first held
};

}  // namespace vrm::manager
