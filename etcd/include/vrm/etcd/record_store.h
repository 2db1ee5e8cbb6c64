// A keyspace of records (key -> bytes of any size) kept in etcd under a prefix, written only by
// the elected leader and copied, warm, by every replica: what vrmd's replicated store is built
// on. The values are opaque here (vrmd stores a reservation's Cap'n Proto encoding, as in
// SQLite).
//
// Commits. commit() applies a batch of puts and deletes atomically: every replica sees all of
// it or none. Each etcd transaction carries the leader's fence, so a deposed leader's commit
// fails (kDeposed) and applies nothing. etcd bounds a transaction (1.5 MiB, 128 operations):
//  * a value over `inlineBytes` is split into chunks of `chunkBytes`, written first under a new
//    generation (their own transactions), and the record's head points at them;
//  * a batch that still does not fit one transaction is written first as one journal entry
//    (itself chunked if large) in one transaction, the commit point; then its heads are applied
//    in as many transactions as needed and the entry deleted. Readers apply a journal entry
//    when they see it, so the intermediate states are never visible through records(); a leader
//    that dies half-way leaves the entry to its successor, which finishes it (takeOver).
// Chunks no head refers to (a leader died before its commit point) are deleted by takeOver.
//
// Layout under PREFIX: r/KEY the record's head ('I' + value, or 'C' + a chunk reference),
// c/GEN/NNNNNN the chunks of generation GEN, j/SEQ pending journal entries, m/commit the last
// commit's sequence number (written by every commit: how a new leader knows it has caught up).
//
// The copy. load() reads the whole prefix at one revision (paged); catchUp() follows a watch
// from there (a follower, on a helper thread); syncToLatest() brings the copy up to the last
// commit (a new leader, before acting). A leader's own commits update its copy directly.
//
// Threading: like the Client it uses, one owner thread at a time; the Client must outlive it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vrm/etcd/client.h"
#include "vrm/etcd/election.h"
#include "vrm/etcd/error.h"

namespace vrm::etcd {

struct RecordStoreOptions {
  // Key prefix of the keyspace, e.g. "/vrm/" (vrmd's etcd://.../prefix).
  std::string prefix;
  // Values up to this size are stored in their head; larger ones in chunks. Default 64 KiB.
  std::size_t inlineBytes = 64 * 1024;
  // Size of one chunk. Default 256 KiB.
  std::size_t chunkBytes = 256 * 1024;
  // Budget of one transaction, under etcd's --max-request-bytes (1.5 MiB) with room for the
  // protobuf's overhead. Default 1 MiB.
  std::size_t txnBytes = 1024 * 1024;
  // Operations in one transaction: etcd's --max-txn-ops (default 128).
  std::size_t maxTxnOps = 128;
  // Keys per page when loading. Default 128 (pages stay under 64 MiB answers with 256 KiB
  // chunks).
  std::int64_t pageKeys = 128;
  // Tests only: stop a journalled commit at its commit point, as a leader that dies there
  // does, leaving the entry for takeOver() to finish.
  bool leaveJournalUnfinishedForTesting = false;
};

struct Mutation {
  std::string key;
  std::optional<std::string> value;  // nullopt: delete the record

  static Mutation put(std::string key, std::string value) {
    return {std::move(key), std::move(value)};
  }
  static Mutation erase(std::string key) { return {std::move(key), std::nullopt}; }
};

class RecordStore {
 public:
  // Checks the options (kInvalidArgument: chunks that do not fit a transaction, an empty
  // prefix, ...). Does not read anything yet.
  static Result<std::unique_ptr<RecordStore>> create(Client* client, RecordStoreOptions options);
  ~RecordStore();

  // Reads the whole keyspace at one revision, replacing the copy.
  Result<void> load();
  // Applies what changed since (a watch) until `deadline` or until nothing more is pending;
  // returns how many changes were applied. History compacted past the copy: loads again.
  Result<int> catchUp(SteadyTime deadline);
  // Catches up at least to the last commit (read linearizably): after it, the copy holds every
  // commit acknowledged before the call.
  Result<void> syncToLatest(SteadyTime deadline);
  // For a new leader, before it acts: syncToLatest, finish a journal entry a deposed leader
  // left, delete orphaned chunks.
  Result<void> takeOver(const Fence& fence, SteadyTime deadline);

  // Applies `mutations` atomically (later ones of the same key win). Returns the revision at
  // which they became visible. kDeposed: not leader (nothing applied); kNoSpace: etcd is full
  // (nothing applied); kRequestTooLarge: one batch can not be journalled (over ~100 MiB);
  // kTimeout / kUnavailable / kBadResponse: the outcome is unknown until syncToLatest().
  Result<std::int64_t> commit(const Fence& fence, const std::vector<Mutation>& mutations);

  // The copy: every record's current value.
  const std::map<std::string, std::string>& records() const { return records_; }
  // The etcd revision the copy reflects.
  std::int64_t revision() const { return revision_; }
  // Sequence number of the last commit the copy holds (0: none yet).
  std::int64_t commitSequence() const { return commitSeq_; }

  // Drops etcd's history older than the copy's revision minus `keepRevisions` (watches of
  // followers further behind load again). The leader calls it now and then.
  Result<void> compactHistory(std::int64_t keepRevisions);
  // What a leader does when commits fail with kNoSpace: compacts all history, defragments
  // every member in turn (each blocks while it runs) and disarms the NOSPACE alarms, so that
  // writes pass again if the records themselves fit the quota.
  Result<void> reclaimSpace();

  struct Stats {
    std::int64_t commits = 0;
    std::int64_t journalled = 0;  // commits that did not fit one transaction
    std::int64_t transactions = 0;
    std::int64_t chunkedValues = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  RecordStore(Client* client, RecordStoreOptions options);
  void clear();
  // Applies one change of the keyspace (a put's value, or a delete) to the copy.
  Result<void> applyChange(const std::string& key, const std::optional<std::string>& value,
                           std::int64_t modRevision);
  Result<void> applyHead(const std::string& record, const std::string& head);
  Result<std::string> assemble(const std::string& reference) const;
  Result<void> applyJournal(const std::string& head);
  // The head for `value`, with its chunk puts appended to `chunks` when it is large (in a new
  // generation named after fenceRevision_).
  std::string headFor(const std::string& value, std::vector<PutRequest>* chunks);
  // Runs `ops` in fenced transactions within the budget; the revision of the last.
  Result<std::int64_t> runFenced(const Fence& fence, std::vector<RequestOp> ops);
  Result<std::int64_t> finishJournal(const Fence& fence, const std::string& journalKey,
                                     const std::string& head);

  Client* client_;
  RecordStoreOptions options_;
  std::map<std::string, std::string> records_;
  std::map<std::string, std::string> chunkGeneration_;  // record -> generation of its chunks
  std::map<std::string, std::string> chunks_;           // chunk key -> bytes
  std::map<std::string, std::string> journals_;         // pending journal key -> head
  std::int64_t revision_ = 0;
  std::int64_t commitSeq_ = 0;
  std::int64_t commitRevision_ = 0;  // mod revision of m/commit
  std::int64_t generation_ = 0;      // chunk generations made in this process
  std::int64_t fenceRevision_ = 0;   // the term of the commit being made
  std::int64_t compactedRevision_ = 0;
  std::optional<Watcher> watcher_;
  Stats stats_;
};

}  // namespace vrm::etcd
