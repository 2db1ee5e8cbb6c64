// vrmd's state on an etcd cluster (`--store etcd://H1:2379,H2:2379[/prefix]`): the store of a
// replica, built on etcd::RecordStore (a keyspace copied in memory, committed atomically) and
// fenced by etcd::Election.
//
// Fencing. Every write is one RecordStore commit whose etcd transactions each carry the
// compare "create revision of this replica's leader key == its term", so it succeeds only while
// this replica leads. The fence comes from a FenceSource on every write (vrmd:
// Election::fence(), empty as soon as leadership can no longer be proven locally). The store
// works for one term, the one it took over in: a write when the source has no fence, a fence of
// another term, or a commit etcd refuses as deposed fails with StoreError::kFencedOut, applies
// nothing, and so does every later write until takeOver() is called in a new term (after which
// the caller must reload what it holds in memory: another leader may have written meanwhile).
//
// Layout under PREFIX (default /vrm/): PREFIX leader/ the election (electionName()), PREFIX data/
// the records (recordPrefix()): res/ID a reservation (Cap'n Proto, as in SQLite), ev/ID/SEQ its
// event log (JSON), obs/SEQ the observations (JSON), meta/next_reservation the id counter.
//
// Ids. allocateReservationId() writes nothing; a save raises meta/next_reservation in the same
// transaction, and takeOver() reads it after catching up with every earlier commit, so no
// leader, later or after a restart, hands out a saved reservation's id again.
//
// Limits. Each etcd transaction stays under etcd's 1.5 MiB request limit and 128 operations:
// large reservations are chunked and batches over one transaction journalled by RecordStore
// (record_store.h). NOSPACE (etcd's quota reached) is StoreError::kNoSpace with a message that
// says so, never a crash; reclaimSpace() compacts, defragments and disarms. History is compacted
// every `compactEveryCommits` commits.
//
// Unknown outcomes. A commit that was sent and not answered is kOutcomeUnknown: it may have
// been applied. The next write (or id allocation) first catches up with etcd, so what it
// computes (ids, event sequence numbers) accounts for it.
//
// Reads (loadReservations, countEvents, snapshot, ...) come from the copy: no etcd round trip.
// Blocking: every write is one or a few etcd round trips (bounded by the client's timeouts);
// one owner thread, as for every Store.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vrm/etcd/client.h"
#include "vrm/etcd/election.h"
#include "vrm/etcd/record_store.h"
#include "vrm/manager/store.h"

namespace vrm::manager {

struct EtcdStoreOptions {
  // The members (endpoints) and the client's timeouts.
  etcd::ClientOptions client;
  // Key prefix of this vrm cluster's state, starting and ending with '/'. Default "/vrm/".
  std::string prefix = "/vrm/";
  // The record store's limits (its prefix is set from `prefix`).
  etcd::RecordStoreOptions records;
  // Longest catch-up with etcd (open, takeOver, the read-back after an unknown outcome).
  // Default 10 s.
  std::chrono::milliseconds syncTimeout{10000};
  // History is compacted to the last `keepRevisions` revisions every this many commits (0:
  // never). Defaults 1000 and 1000.
  std::int64_t compactEveryCommits = 1000;
  std::int64_t keepRevisions = 1000;
};

// The fence of this replica's current term, or nullopt while it does not (provably) lead.
using FenceSource = std::function<std::optional<etcd::Fence>()>;

class EtcdStore final : public Store {
 public:
  // The election's name and the records' prefix under a --store prefix.
  static std::string electionName(const std::string& prefix) { return prefix + "leader"; }
  static std::string recordPrefix(const std::string& prefix) { return prefix + "data/"; }

  // Connects, loads the whole keyspace and takes over in the fence's current term (finishing
  // what a dead leader left half-done). invalid-argument: bad options; unavailable: etcd
  // cannot be reached or there is no fence (this replica does not lead); internal: a record
  // that cannot be read.
  static Result<std::unique_ptr<EtcdStore>> open(EtcdStoreOptions options, FenceSource fence);
  ~EtcdStore() override;
  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  Result<std::string> allocateReservationId() override;
  Status saveReservations(const std::vector<const Reservation*>& reservations) override;
  Result<std::vector<Reservation>> loadReservations() override;
  Status saveObservation(const MigrationObservation& observation) override;
  Result<std::vector<MigrationObservation>> loadObservations() override;
  Result<std::int64_t> countEvents(const std::string& reservationId) override;
  // The copy at one revision, written into an in-memory SQLite store and copied as its file.
  Result<Snapshot> snapshot() override;
  StoreError lastError() const override { return lastError_; }
  // Refuses writes locally (kIo) while on.
  Status setQueryOnly(bool on) override;

  // Starts working in the fence source's current term: catches up with every commit, finishes
  // a journalled batch a deposed leader left, deletes orphaned chunks and re-reads the id
  // counter. For a replica elected again (a later phase: vrmd then reloads its Manager).
  // unavailable when there is no fence or etcd cannot be reached.
  Status takeOver();
  // What to do after kNoSpace: compact all history, defragment every member, disarm the alarm.
  // Writes pass again if the records themselves fit the quota.
  Status reclaimSpace();

  // The term (leader key's create revision) writes are fenced with; 0 when fenced out.
  std::int64_t term() const { return fencedOut_ ? 0 : term_; }
  const etcd::RecordStore::Stats& recordStats() const { return records_->stats(); }

 private:
  EtcdStore(EtcdStoreOptions options, FenceSource fence, std::unique_ptr<etcd::Client> client,
            std::unique_ptr<etcd::RecordStore> records);
  // Checks that a write may go ahead (not read-only, not fenced out, caught up after an unknown
  // outcome) and returns the fence to commit with.
  Result<etcd::Fence> beginWrite();
  // Commits `mutations` with `fence`, mapping etcd's errors to StoreError.
  Status commit(const etcd::Fence& fence, const std::vector<etcd::Mutation>& mutations);
  Status failed(StoreError error, std::string message);
  Status catchUp();
  // meta/next_reservation as the copy holds it (at least 1).
  std::int64_t storedCounter() const;
  // Past it and past every saved "rN" id (a scan: for takeOver and snapshots).
  std::int64_t counterInCopy() const;
  etcd::SteadyTime syncDeadline() const;

  EtcdStoreOptions options_;
  FenceSource fence_;
  std::unique_ptr<etcd::Client> client_;
  std::unique_ptr<etcd::RecordStore> records_;
  std::int64_t term_ = 0;
  bool fencedOut_ = false;
  bool needsSync_ = false;
  bool queryOnly_ = false;
  std::int64_t nextReservation_ = 1;
  std::int64_t commitsSinceCompaction_ = 0;
  StoreError lastError_ = StoreError::kNone;
};

}  // namespace vrm::manager
