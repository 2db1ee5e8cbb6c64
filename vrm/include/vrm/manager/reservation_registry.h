// The reservations of vrmd, their durable copy and the events owed to their clients: one owner
// for the three, so that what memory holds, what the store holds and what clients were told
// cannot drift apart (the Mesos registrar shape).
//
// A change of reservations is a ReservationOp. apply() performs it on drafts (copies of the
// reservations it touches), saves every draft in ONE store transaction, in the order the op
// first touched them (the cause first), and only then installs the drafts in memory and queues
// their new events. When the store refuses the transaction (disk full, I/O error), nothing
// changes: memory, events and the caller's commands (which it releases only on success) stay as
// they were, and the op's error is returned.
//
// Compatibility path (issue 12 item 1, in progress): code of the Manager not yet written as ops
// changes reservations in place through inPlace() and saves them with saveInPlace(); a save the
// store refuses then leaves the reservation ahead of the store, marked unsaved until a later
// saveInPlace() or retryUnsaved() succeeds (the Manager holds its commands back meanwhile).
//
// Not thread-safe: one event loop owns it. The store must outlive the registry.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "vrm/manager/store.h"
#include "vrm/protocol/reservation.h"

namespace vrm::manager {

class ReservationRegistry;

// The reservations an op is changing: copies of the committed ones, made on first edit.
class ReservationDraft {
 public:
  // The reservation as the op sees it (its draft if it edited it): null if there is none.
  const Reservation* find(const std::string& id) const;
  // A copy of reservation `id` to change (the same copy on every call): null if there is none.
  Reservation* edit(const std::string& id);
  // A new reservation (its id must not exist yet); returns its draft.
  Reservation& add(Reservation reservation);
  // Ids of the drafts in the order the op first touched them (the order they are saved in).
  const std::vector<std::string>& touched() const { return order_; }

 private:
  friend class ReservationRegistry;
  explicit ReservationDraft(const std::map<std::string, Reservation>& committed)
      : committed_(committed) {}
  const std::map<std::string, Reservation>& committed_;
  std::map<std::string, Reservation> drafts_;
  std::vector<std::string> order_;
};

// One change of reservations (admit, cancel, ...). perform() changes the draft and says whether
// it changed anything (false: nothing is saved). It may be called once per apply(); an op that
// fails to save may be applied again later (it starts again from the committed state).
class ReservationOp {
 public:
  virtual ~ReservationOp() = default;
  // What the op does, for logs ("admit r3").
  virtual std::string describe() const = 0;
  virtual bool perform(ReservationDraft& draft) = 0;
};

// Admission's decision: a new reservation, admitted or rejected.
class AdmitReservation final : public ReservationOp {
 public:
  explicit AdmitReservation(Reservation reservation) : reservation_(std::move(reservation)) {}
  std::string describe() const override;
  bool perform(ReservationDraft& draft) override;

 private:
  Reservation reservation_;
};

class ReservationRegistry {
 public:
  explicit ReservationRegistry(Store& store) : store_(store) {}
  ReservationRegistry(const ReservationRegistry&) = delete;
  ReservationRegistry& operator=(const ReservationRegistry&) = delete;

  // Loads every stored reservation (after a restart); their events count as published.
  Status recover();

  const Reservation* find(const std::string& id) const;
  const std::map<std::string, Reservation>& all() const { return reservations_; }

  // Performs `op` on drafts, saves them in one transaction and installs them (see the file
  // comment). Returns the ids it changed, in save order (empty: the op changed nothing).
  // Errors: the store's (internal); nothing changed then.
  Result<std::vector<std::string>> apply(ReservationOp& op);

  // Events committed since the last call, oldest first, each with the reservation as it stood
  // after it. Empties the queue.
  std::vector<std::pair<ReservationEvent, Reservation>> takeEvents();

  // --- compatibility path (see the file comment) ---
  // The reservations, to change in place. Whoever changes one must saveInPlace() it.
  std::map<std::string, Reservation>& inPlace() { return reservations_; }
  // Saves reservation `id` as it stands and queues its new events. On failure it stays
  // unsaved (unsaved()) with the store's reason, and its events wait for a successful save.
  Status saveInPlace(const std::string& id);
  // Saves the unsaved reservations again; returns the ids now saved.
  std::vector<std::string> retryUnsaved();
  bool unsaved(const std::string& id) const { return unsaved_.count(id) > 0; }
  bool anyUnsaved() const { return !unsaved_.empty(); }
  // One change of several reservations on the compatibility path (a failure that re-plans
  // others): the saveInPlace() calls between beginBatch() and the matching endBatch() only mark
  // their reservations; the outermost endBatch() saves them all in ONE transaction, `cause`
  // first (when it is among them), then the others in the order they were marked, and queues
  // their events in that order. Refused, every one of them stays unsaved (nothing published).
  // Nested batches join the outermost (its cause counts).
  void beginBatch(const std::string& cause);
  Status endBatch();
  // A batch for the scope of the object: begun when built, ended (its error left in unsaved())
  // when destroyed.
  class Batch {
   public:
    Batch(ReservationRegistry& registry, const std::string& cause) : registry_(registry) {
      registry_.beginBatch(cause);
    }
    ~Batch() { (void)registry_.endBatch(); }
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    ReservationRegistry& registry_;
  };

 private:
  // Queues r's events not yet published.
  void publishNew(const Reservation& r);
  // Saves `ids` (those still in memory) in one transaction and publishes them, in that order;
  // refused: each is unsaved with the reason.
  Status saveTogether(const std::vector<std::string>& ids);

  Store& store_;
  std::map<std::string, Reservation> reservations_;
  std::vector<std::pair<ReservationEvent, Reservation>> events_;
  std::map<std::string, std::size_t> publishedEvents_;  // reservation -> events published
  std::map<std::string, std::string> unsaved_;          // reservation -> why the store refused
  int batchDepth_ = 0;
  std::string batchCause_;
  std::vector<std::string> batch_;  // marked in the open batch, in order, once each
};

}  // namespace vrm::manager
