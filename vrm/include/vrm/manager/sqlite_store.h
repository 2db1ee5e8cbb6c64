// vrmd's state in one SQLite file (WAL mode, synchronous=FULL): the embedded default store
// (`--store sqlite:PATH`). Keeps Store's contract (store.h); every error is a Status with
// SQLite's message and lastError() kIo. Not thread-safe: one owner calls it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vrm/manager/store.h"

struct sqlite3;

namespace vrm::manager {

class SqliteStore final : public Store {
 public:
  // Opens or creates the database at `path` (":memory:" for tests) and its schema; a store
  // written by an older vrmd gets the columns added since. unavailable: cannot open the file.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Result<std::string> allocateReservationId() override;
  Status saveReservations(const std::vector<const Reservation*>& reservations) override;
  Result<std::vector<Reservation>> loadReservations() override;
  Status saveObservation(const MigrationObservation& observation) override;
  Result<std::vector<MigrationObservation>> loadObservations() override;
  Result<std::int64_t> countEvents(const std::string& reservationId) override;
  // Taken with SQLite's online backup API. Copies every page in one step: the loop that owns
  // this store is its only writer, so nothing changes meanwhile, and a store of a few hundred MB
  // is copied in well under a second.
  Result<Snapshot> snapshot() override;
  StoreError lastError() const override { return lastError_; }
  // SQLite's query_only pragma.
  Status setQueryOnly(bool on) override;

  // Everything another store holds, for importContents.
  struct Contents {
    std::vector<Reservation> reservations;
    std::vector<std::pair<std::string, ReservationEvent>> events;  // reservation id, event
    std::vector<MigrationObservation> observations;                // oldest first
    std::int64_t nextReservation = 1;  // the id counter: "rN" ids below it are taken
  };
  // Writes `contents` into this store in one transaction (how EtcdStore::snapshot makes its
  // SQLite copy).
  Status importContents(const Contents& contents);

 private:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  // The statements of one save, inside a transaction the caller opened.
  Status writeReservation(const Reservation& reservation);
  Status writeEvent(const std::string& reservationId, const ReservationEvent& event);
  Status writeObservation(const MigrationObservation& observation);
  Status raiseNextReservation(std::int64_t next);
  // COMMIT, rolling back when it fails.
  Status commit();
  // Records the outcome of a write in lastError_ and returns it.
  Status written(Status s);
  sqlite3* db_;
  std::int64_t nextReservation_ = 0;  // 0 = not read from the meta table yet
  StoreError lastError_ = StoreError::kNone;
};

}  // namespace vrm::manager
