// Durable state of vrmd: the plug point between the core and where its state lives.
//
// Two implementations: SqliteStore (sqlite_store.h, one file in WAL mode, the embedded
// default) and EtcdStore (etcd_store.h, a keyspace on an etcd cluster, written only by the
// elected replica and fenced by its leadership). `--store` names one (parseStoreLocation).
//
// The contract both keep. A reservation is saved whole together with its newest event, in one
// transaction, before the client is answered: what was acknowledged is never lost. A batch of
// reservations is one transaction: all or none. Migration observations are kept for the
// calibrator. Reservation ids never repeat: a saved reservation's id is never handed out
// again, by this process, after a restart, or (EtcdStore) by another replica that leads later.
//
// Errors are Status values a person can act on; a failed write applied nothing unless
// lastError() says its outcome is unknown. lastError() tells failures apart for callers that
// must act differently on them (fenced out: stop acting as leader; no space: refuse admissions).
//
// Threading: not thread-safe; one owner (vrmd's event loop) calls it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vrm/protocol/reservation.h"

namespace vrm::manager {

// Why the last write of a store failed (kNone after a write that succeeded).
enum class StoreError {
  kNone,
  // The medium refused it (SQLite: disk full, I/O error, read-only). Nothing was applied.
  kIo,
  // This replica no longer leads (EtcdStore: its leader key's create revision changed, or its
  // lease ran out): nothing was applied, and nothing will be until it is elected again and
  // takes over. Stop acting as leader.
  kFencedOut,
  // etcd's NOSPACE alarm is raised (its backend reached --quota-backend-bytes): nothing was
  // applied; writes fail until space is reclaimed (compaction, defragmentation, disarm).
  kNoSpace,
  // The write was sent and not answered (timeout, lost member): it may or may not have been
  // applied. The store reads back before its next write, so ids stay unique either way.
  kOutcomeUnknown,
  // One transaction's worth of data is beyond what the store can take at all.
  kTooLarge,
  // The store could not be reached; the write was certainly not applied.
  kUnavailable,
};

// Stable lower-case name ("fenced-out", "no-space", ...), for logs and metrics.
const char* storeErrorName(StoreError error);

// Where the state lives, as `--store` names it:
//   sqlite:PATH                         an SQLite file (PATH alone, no scheme, means the same)
//   etcd://H1:2379,H2:2379[/PREFIX]     an etcd cluster's members; keys under /PREFIX/ (/vrm/)
struct StoreLocation {
  enum class Kind { kSqlite, kEtcd };
  Kind kind = Kind::kSqlite;
  std::string path;                    // kSqlite
  std::vector<std::string> endpoints;  // kEtcd: "HOST:PORT" each, at least one
  std::string prefix;                  // kEtcd: starts and ends with '/'

  // "sqlite:vrm.db", "etcd://h1:2379,h2:2379/vrm/"
  std::string toString() const;
};

// Parses a --store value. invalid-argument, naming what is wrong: an unknown scheme, an empty
// path, no endpoint, an endpoint that is not HOST:PORT with a port in 1..65535, a prefix with
// empty segments.
Result<StoreLocation> parseStoreLocation(const std::string& value);

class Store {
 public:
  virtual ~Store() = default;

  // The SQLite store at `path` (":memory:" for tests), opened or created: SqliteStore::open.
  static Result<std::unique_ptr<Store>> open(const std::string& path);

  // Returns a fresh reservation id ("r1", "r2", ...): never the id of a reservation saved
  // before. Costs no write: saving the reservation takes its id for good (an id allocated but
  // never saved may come again after a restart or a change of leader; nobody knew it).
  virtual Result<std::string> allocateReservationId() = 0;
  // Inserts or replaces the reservation and appends its last event (if any, and not already
  // logged) to the event log, atomically.
  Status saveReservation(const Reservation& reservation) {
    return saveReservations({&reservation});
  }
  // Saves several reservations (each with its last event) in ONE transaction, in the given
  // order: all of them or, on any error, none.
  virtual Status saveReservations(const std::vector<const Reservation*>& reservations) = 0;
  // Every saved reservation (any order).
  virtual Result<std::vector<Reservation>> loadReservations() = 0;

  virtual Status saveObservation(const MigrationObservation& observation) = 0;
  // Every saved observation, oldest first.
  virtual Result<std::vector<MigrationObservation>> loadObservations() = 0;

  // Number of entries in the event log for one reservation (tests, audits).
  virtual Result<std::int64_t> countEvents(const std::string& reservationId) = 0;

  // A consistent copy of the whole state, as the bytes of an SQLite database file that
  // Store::open reads back (the restore path; also how an etcd-backed vrmd's state moves to
  // one SQLite file), checked with `PRAGMA integrity_check`. Errors: internal.
  struct Snapshot {
    std::string bytes;
    std::uint32_t reservations = 0;
  };
  virtual Result<Snapshot> snapshot() = 0;

  // Why the last write failed; kNone after one that succeeded (or before any).
  virtual StoreError lastError() const = 0;

  // Tests only: while on, every write fails (kIo) and reads still work, the way a full disk
  // makes a store fail.
  virtual Status setQueryOnly(bool on) = 0;
};

// The number of an id of the form "rN" (N > 0), or 0 for any other id: what both stores use to
// keep ids from repeating.
std::int64_t reservationIdNumber(const std::string& id);

}  // namespace vrm::manager
