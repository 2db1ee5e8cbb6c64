#include "vrm/manager/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <memory>

#include "vrm/protocol/wire_convert.h"

namespace vrm::manager {

using protocol::fromWire;
using protocol::toWire;
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_reservation', 1);
CREATE TABLE IF NOT EXISTS reservations (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  state TEXT NOT NULL,
  start_ns INTEGER NOT NULL,
  end_ns INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL,
  body BLOB NOT NULL            -- Cap'n Proto vrm.Reservation
);
CREATE INDEX IF NOT EXISTS reservations_state ON reservations (state);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  reservation_id TEXT NOT NULL,
  time_ns INTEGER NOT NULL,
  state TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_reservation ON events (reservation_id);
CREATE TABLE IF NOT EXISTS observations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  vm_id TEXT NOT NULL, from_host TEXT NOT NULL, to_host TEXT NOT NULL, mode TEXT NOT NULL,
  memory_bytes INTEGER NOT NULL, nonzero_memory_bytes INTEGER NOT NULL,
  dirty_rate REAL NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
  setup_ns INTEGER NOT NULL, downtime_ns INTEGER NOT NULL, transferred_bytes INTEGER NOT NULL,
  rounds INTEGER NOT NULL, bandwidth REAL NOT NULL,
  save_ns INTEGER NOT NULL DEFAULT 0, copy_ns INTEGER NOT NULL DEFAULT 0,
  restore_ns INTEGER NOT NULL DEFAULT 0
);
)sql";

// Columns added to `observations` after its first version: stores written before them get
// the columns (with 0, "not measured") when opened.
constexpr const char* kObservationPhaseColumns[] = {"save_ns", "copy_ns", "restore_ns"};

Status sqliteError(sqlite3* db, const std::string& what) {
  return Status::internal(what + ": " + sqlite3_errmsg(db));
}

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  bool ok() const { return stmt_ != nullptr; }
  sqlite3_stmt* get() { return stmt_; }
  void bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void bindBlob(int i, const std::string& s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
  int step() { return sqlite3_step(stmt_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

std::string text(sqlite3_stmt* s, int col) {
  const unsigned char* p = sqlite3_column_text(s, col);
  return p ? reinterpret_cast<const char*>(p) : "";
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::unavailable("cannot open store '" + path + "': " + msg);
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db));
  sqlite3_busy_timeout(db, 5000);
  // WAL: readers never block the writer; synchronous=FULL so a commit survives power loss.
  if (Status s = store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"); !s) return s;
  if (Status s = store->exec(kSchema); !s) return s;
  for (const char* column : kObservationPhaseColumns) {
    bool present = false;
    {
      Stmt info(db, "PRAGMA table_info(observations)");
      if (!info.ok()) return sqliteError(db, "read observations columns");
      while (info.step() == SQLITE_ROW) present = present || text(info.get(), 1) == column;
    }
    if (present) continue;
    const std::string sql = std::string("ALTER TABLE observations ADD COLUMN ") + column +
                            " INTEGER NOT NULL DEFAULT 0";
    if (Status s = store->exec(sql.c_str()); !s) return s;
  }
  return store;
}

SqliteStore::~SqliteStore() { sqlite3_close(db_); }

Status SqliteStore::setQueryOnly(bool on) {
  return exec(on ? "PRAGMA query_only = ON" : "PRAGMA query_only = OFF");
}

Status SqliteStore::commit() {
  Status s = exec("COMMIT");
  // SQLite's advice for a failed COMMIT (disk full, I/O error): roll back explicitly, or the
  // transaction may stay open and every later BEGIN fail even once space is back.
  if (!s) (void)exec("ROLLBACK");
  return s;
}

Status SqliteStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::internal(std::string("store: ") + msg);
  }
  return Status::ok();
}

Result<std::string> SqliteStore::allocateReservationId() {
  // No write of its own: the id is made durable by the transaction that saves its reservation
  // (saveReservation raises the counter). An id whose reservation was never saved may be handed
  // out again after a restart, which is harmless: nobody was told of it. This halves the
  // synchronous commits per submission.
  if (nextReservation_ == 0) {
    Stmt sel(db_, "SELECT value FROM meta WHERE key = 'next_reservation'");
    if (!sel.ok() || sel.step() != SQLITE_ROW) return sqliteError(db_, "allocate reservation id");
    nextReservation_ = std::max<std::int64_t>(1, sqlite3_column_int64(sel.get(), 0));
  }
  return "r" + std::to_string(nextReservation_++);
}

Status SqliteStore::saveReservations(const std::vector<const Reservation*>& reservations) {
  return written([&]() -> Status {
    if (Status s = exec("BEGIN IMMEDIATE"); !s) return s;
    for (const Reservation* r : reservations) {
      Status s = writeReservation(*r);
      if (s && !r->events.empty()) s = writeEvent(r->id, r->events.back());
      if (!s) {
        (void)exec("ROLLBACK");
        return s;
      }
    }
    return commit();
  }());
}

Status SqliteStore::written(Status s) {
  lastError_ = s ? StoreError::kNone : StoreError::kIo;
  return s;
}

Status SqliteStore::writeReservation(const Reservation& r) {
  Stmt up(
      db_,
      "INSERT OR REPLACE INTO reservations (id, owner, state, start_ns, end_ns, updated_ns, body)"
      " VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!up.ok()) return sqliteError(db_, "save reservation");
  up.bind(1, r.id);
  up.bind(2, r.request.owner);
  up.bind(3, std::string(stateName(r.state)));
  up.bind(4, static_cast<std::int64_t>(r.request.startNs));
  up.bind(5, static_cast<std::int64_t>(r.request.endNs));
  up.bind(6, static_cast<std::int64_t>(r.updatedNs));
  up.bindBlob(7, protocol::serializeReservation(r));
  if (up.step() != SQLITE_DONE) return sqliteError(db_, "save reservation " + r.id);
  if (const std::int64_t n = reservationIdNumber(r.id); n > 0) {
    // Its id is taken for good: never handed out again, even after a restart.
    if (Status s = raiseNextReservation(n + 1); !s) return s;
  }
  return Status::ok();
}

Status SqliteStore::raiseNextReservation(std::int64_t next) {
  Stmt up(db_, "UPDATE meta SET value = MAX(value, ?) WHERE key = 'next_reservation'");
  if (!up.ok()) return sqliteError(db_, "save reservation id");
  up.bind(1, next);
  if (up.step() != SQLITE_DONE) return sqliteError(db_, "save reservation id");
  return Status::ok();
}

Status SqliteStore::writeEvent(const std::string& reservationId, const ReservationEvent& e) {
  Stmt ev(db_,
          "INSERT INTO events (reservation_id, time_ns, state, message) "
          "SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM events WHERE reservation_id = ? "
          "AND time_ns = ? AND state = ? AND message = ?)");
  if (!ev.ok()) return sqliteError(db_, "save event");
  for (int base : {0, 4}) {
    ev.bind(base + 1, reservationId);
    ev.bind(base + 2, static_cast<std::int64_t>(e.timeNs));
    ev.bind(base + 3, std::string(stateName(e.state)));
    ev.bind(base + 4, e.message);
  }
  if (ev.step() != SQLITE_DONE) return sqliteError(db_, "save event for " + reservationId);
  return Status::ok();
}

Status SqliteStore::importContents(const Contents& contents) {
  return written([&]() -> Status {
    if (Status s = exec("BEGIN IMMEDIATE"); !s) return s;
    Status s = raiseNextReservation(contents.nextReservation);
    for (std::size_t i = 0; s && i < contents.reservations.size(); ++i) {
      s = writeReservation(contents.reservations[i]);
    }
    for (std::size_t i = 0; s && i < contents.events.size(); ++i) {
      s = writeEvent(contents.events[i].first, contents.events[i].second);
    }
    for (std::size_t i = 0; s && i < contents.observations.size(); ++i) {
      s = writeObservation(contents.observations[i]);
    }
    if (!s) {
      (void)exec("ROLLBACK");
      return s;
    }
    return commit();
  }());
}

Result<std::vector<Reservation>> SqliteStore::loadReservations() {
  Stmt sel(db_, "SELECT id, body FROM reservations ORDER BY rowid");
  if (!sel.ok()) return sqliteError(db_, "load reservations");
  std::vector<Reservation> out;
  int rc;
  while ((rc = sel.step()) == SQLITE_ROW) {
    const void* blob = sqlite3_column_blob(sel.get(), 1);
    int size = sqlite3_column_bytes(sel.get(), 1);
    auto r = protocol::parseReservation(blob, static_cast<std::size_t>(size));
    if (!r) {
      return Status::internal("store: reservation " + text(sel.get(), 0) +
                              " is corrupt: " + r.status().message());
    }
    out.push_back(std::move(*r));
  }
  if (rc != SQLITE_DONE) return sqliteError(db_, "load reservations");
  return out;
}

Status SqliteStore::saveObservation(const MigrationObservation& o) {
  return written(writeObservation(o));
}

Status SqliteStore::writeObservation(const MigrationObservation& o) {
  Stmt ins(db_,
           "INSERT INTO observations (vm_id, from_host, to_host, mode, memory_bytes, "
           "nonzero_memory_bytes, dirty_rate, start_ns, end_ns, setup_ns, downtime_ns, "
           "transferred_bytes, rounds, bandwidth, save_ns, copy_ns, restore_ns) "
           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!ins.ok()) return sqliteError(db_, "save observation");
  ins.bind(1, o.vmId);
  ins.bind(2, o.fromHost);
  ins.bind(3, o.toHost);
  ins.bind(4, std::string(moveModeName(o.mode)));
  ins.bind(5, static_cast<std::int64_t>(o.memoryBytes));
  ins.bind(6, static_cast<std::int64_t>(o.nonzeroMemoryBytes));
  ins.bind(7, o.dirtyRateBytesPerSec);
  ins.bind(8, static_cast<std::int64_t>(o.startNs));
  ins.bind(9, static_cast<std::int64_t>(o.endNs));
  ins.bind(10, static_cast<std::int64_t>(o.setupNs));
  ins.bind(11, static_cast<std::int64_t>(o.downtimeNs));
  ins.bind(12, static_cast<std::int64_t>(o.transferredBytes));
  ins.bind(13, static_cast<std::int64_t>(o.rounds));
  ins.bind(14, o.bandwidthBytesPerSec);
  ins.bind(15, static_cast<std::int64_t>(o.saveNs));
  ins.bind(16, static_cast<std::int64_t>(o.copyNs));
  ins.bind(17, static_cast<std::int64_t>(o.restoreNs));
  if (ins.step() != SQLITE_DONE) return sqliteError(db_, "save observation");
  return Status::ok();
}

Result<std::vector<MigrationObservation>> SqliteStore::loadObservations() {
  Stmt sel(db_,
           "SELECT vm_id, from_host, to_host, mode, memory_bytes, nonzero_memory_bytes, "
           "dirty_rate, start_ns, end_ns, setup_ns, downtime_ns, transferred_bytes, rounds, "
           "bandwidth, save_ns, copy_ns, restore_ns FROM observations ORDER BY seq");
  if (!sel.ok()) return sqliteError(db_, "load observations");
  std::vector<MigrationObservation> out;
  while (sel.step() == SQLITE_ROW) {
    sqlite3_stmt* s = sel.get();
    MigrationObservation o;
    o.vmId = text(s, 0);
    o.fromHost = text(s, 1);
    o.toHost = text(s, 2);
    const std::string mode = text(s, 3);
    o.mode = mode == "live"      ? MoveMode::kLive
             : mode == "suspend" ? MoveMode::kSuspend  // a park or unpark
                                 : MoveMode::kSuspendCopyResume;
    o.memoryBytes = static_cast<std::uint64_t>(sqlite3_column_int64(s, 4));
    o.nonzeroMemoryBytes = static_cast<std::uint64_t>(sqlite3_column_int64(s, 5));
    o.dirtyRateBytesPerSec = sqlite3_column_double(s, 6);
    o.startNs = sqlite3_column_int64(s, 7);
    o.endNs = sqlite3_column_int64(s, 8);
    o.setupNs = sqlite3_column_int64(s, 9);
    o.downtimeNs = sqlite3_column_int64(s, 10);
    o.transferredBytes = static_cast<std::uint64_t>(sqlite3_column_int64(s, 11));
    o.rounds = static_cast<std::uint32_t>(sqlite3_column_int64(s, 12));
    o.bandwidthBytesPerSec = sqlite3_column_double(s, 13);
    o.saveNs = sqlite3_column_int64(s, 14);
    o.copyNs = sqlite3_column_int64(s, 15);
    o.restoreNs = sqlite3_column_int64(s, 16);
    out.push_back(std::move(o));
  }
  return out;
}

Result<Store::Snapshot> SqliteStore::snapshot() {
  sqlite3* raw = nullptr;
  if (sqlite3_open(":memory:", &raw) != SQLITE_OK) {
    sqlite3_close(raw);
    return Status::internal("backup: cannot open an in-memory database");
  }
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> copy(raw, sqlite3_close);
  sqlite3_backup* backup = sqlite3_backup_init(copy.get(), "main", db_, "main");
  if (backup == nullptr) return sqliteError(copy.get(), "backup: start");
  const int stepped = sqlite3_backup_step(backup, -1);
  if (sqlite3_backup_finish(backup) != SQLITE_OK || stepped != SQLITE_DONE) {
    return sqliteError(copy.get(), "backup: copy the pages");
  }
  Snapshot out;
  {
    Stmt check(copy.get(), "PRAGMA integrity_check");
    if (!check.ok() || check.step() != SQLITE_ROW) return sqliteError(copy.get(), "backup: check");
    if (const std::string verdict = text(check.get(), 0); verdict != "ok") {
      return Status::internal("backup: the copy fails SQLite's integrity check: " + verdict);
    }
    Stmt count(copy.get(), "SELECT COUNT(*) FROM reservations");
    if (!count.ok() || count.step() != SQLITE_ROW) {
      return sqliteError(copy.get(), "backup: count reservations");
    }
    out.reservations = static_cast<std::uint32_t>(sqlite3_column_int64(count.get(), 0));
  }
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(copy.get(), "main", &size, 0);
  if (bytes == nullptr) return Status::internal("backup: out of memory serializing the copy");
  out.bytes.assign(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(size));
  sqlite3_free(bytes);
  return out;
}

Result<std::int64_t> SqliteStore::countEvents(const std::string& reservationId) {
  Stmt sel(db_, "SELECT COUNT(*) FROM events WHERE reservation_id = ?");
  if (!sel.ok()) return sqliteError(db_, "count events");
  sel.bind(1, reservationId);
  if (sel.step() != SQLITE_ROW) return sqliteError(db_, "count events");
  return static_cast<std::int64_t>(sqlite3_column_int64(sel.get(), 0));
}

}  // namespace vrm::manager
