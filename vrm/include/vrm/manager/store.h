// Durable state of vrmd in SQLite (WAL mode).
//
// A reservation is saved whole (its Cap'n Proto encoding plus indexed columns) together with its
// newest event, in one transaction, before the client is answered: nothing acknowledged is lost.
// Migration observations are kept for the calibrator. Not thread-safe: one owner (vrmd's event
// loop) calls it. Every error is a Status with SQLite's message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vrm/protocol/reservation.h"

struct sqlite3;

namespace vrm::manager {

class Store {
 public:
  // Opens or creates the database at `path` (":memory:" for tests) and its schema.
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Returns a fresh reservation id ("r1", "r2", ...): never the id of a reservation saved
  // before, also across restarts. Costs no write: saving the reservation takes its id for good
  // (an id allocated but never saved may come again after a restart; nobody knew it).
  Result<std::string> allocateReservationId();
  // Inserts or replaces the reservation and appends its last event (if any) to the event log,
  // atomically.
  Status saveReservation(const Reservation& reservation);
  // Saves several reservations (each with its last event) in ONE transaction, in the given
  // order: all of them or, on any error, none.
  Status saveReservations(const std::vector<const Reservation*>& reservations);
  Result<std::vector<Reservation>> loadReservations();

  Status saveObservation(const MigrationObservation& observation);
  Result<std::vector<MigrationObservation>> loadObservations();

  // Number of rows in the event log for one reservation (tests, audits).
  Result<std::int64_t> countEvents(const std::string& reservationId);

  // A consistent copy of the whole database, as the bytes of an SQLite database file that
  // Store::open reads back (the restore path), taken with SQLite's online backup API and checked
  // with `PRAGMA integrity_check` before it is returned. Copies every page in one step: the
  // loop that owns this store is its only writer, so nothing changes meanwhile, and a store of a
  // few hundred MB is copied in well under a second. Errors: internal with SQLite's message.
  struct Snapshot {
    std::string bytes;
    std::uint32_t reservations = 0;
  };
  Result<Snapshot> snapshot();

  // While on, every write fails (SQLite's query_only) and reads still work: how tests make the
  // store fail the way a full disk does.
  Status setQueryOnly(bool on);

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  // The statements of one reservation's save, inside a transaction the caller opened.
  Status writeReservation(const Reservation& reservation);
  // COMMIT, rolling back when it fails.
  Status commit();
  sqlite3* db_;
  std::int64_t nextReservation_ = 0;  // 0 = not read from the meta table yet
};

}  // namespace vrm::manager
