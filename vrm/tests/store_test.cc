// The Store contract (store.h), run against every implementation (store_test_backend.h):
// SQLite here, etcd in tests/ha (ha_store_test). Below the contract, SQLite's own tests and
// the parsing of --store values.
#include "vrm/manager/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "store_test_backend.h"
#include "vrm/manager/sqlite_store.h"

namespace vrm::manager {
namespace {

using testing::StoreBackend;
using testing::StoreBackendFactory;
using testing::StoreContractTest;

Reservation sample(const std::string& id) {
  Reservation r;
  r.id = id;
  r.request.owner = "lab";
  r.request.hostCount = 2;
  r.request.startNs = 100;
  r.request.endNs = 200;
  r.request.templateName = "t";
  r.state = ReservationState::kAdmitted;
  r.hosts = {"a", "b"};
  r.plan.strategy = "sequential";
  PlannedMove m;
  m.vmId = "v";
  m.fromHost = "a";
  m.toHost = "c";
  m.endOffsetNs = 5;
  r.addMove(MovePurpose::kVacate, m).progress = {MoveState::kRunning, 7, 0};
  r.clones.push_back({"r1-t-1", "a", CloneState::kRunning, "addr", "vrm"});
  r.events.push_back({1, ReservationState::kAdmitted, "admitted"});
  return r;
}

// Ensures a reservation round-trips through the store with plan, moves, clones and events.
TEST_P(StoreContractTest, SaveAndLoadRoundTrip) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->saveReservation(sample("r1")).isOk());
  EXPECT_EQ(store->lastError(), StoreError::kNone);
  auto loaded = store->loadReservations();
  ASSERT_TRUE(loaded.isOk());
  ASSERT_EQ(loaded->size(), 1u);
  const Reservation& r = (*loaded)[0];
  EXPECT_EQ(r.hosts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.plannedMoves()[0].toHost, "c");
  EXPECT_EQ(r.moves[0].progress.state, MoveState::kRunning);
  EXPECT_EQ(r.moves[0].progress.actualStartNs, 7);
  EXPECT_EQ(r.clones[0].address, "addr");
  EXPECT_EQ(r.events[0].message, "admitted");
  EXPECT_EQ(*store->countEvents("r1"), 1);
}

// Ensures ids are never reused after reopening the store, and data persists.
TEST_P(StoreContractTest, IdsAndDataSurviveReopen) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(*store->allocateReservationId(), "r1");
    EXPECT_EQ(*store->allocateReservationId(), "r2");
    ASSERT_TRUE(store->saveReservation(sample("r2")).isOk());
  }
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(*store->allocateReservationId(), "r3");
    EXPECT_EQ(store->loadReservations()->size(), 1u);
    EXPECT_EQ(*store->countEvents("r2"), 1);
  }
}

// Ensures allocating an id writes nothing (it works on a store that refuses writes, so a
// submission costs one commit, not two) and that the id is taken for good when its reservation
// is saved: after reopening, the next id follows the highest saved one; an id that was only
// allocated may come again (nobody was told of it).
TEST_P(StoreContractTest, IdIsTakenWhenItsReservationIsSaved) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->setQueryOnly(true).isOk());
    EXPECT_EQ(*store->allocateReservationId(), "r1");
    EXPECT_EQ(*store->allocateReservationId(), "r2");
    ASSERT_TRUE(store->setQueryOnly(false).isOk());
    ASSERT_TRUE(store->saveReservation(sample("r1")).isOk());
  }
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(*store->allocateReservationId(), "r2");
    EXPECT_EQ(*store->allocateReservationId(), "r3");
    ASSERT_TRUE(store->saveReservation(sample("r3")).isOk());
  }
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(*store->allocateReservationId(), "r4");
  }
}

// Ensures re-saving with the same last event does not duplicate it in the log.
TEST_P(StoreContractTest, EventLogAppendsOnlyNewEvents) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  Reservation r = sample("r1");
  ASSERT_TRUE(store->saveReservation(r).isOk());
  ASSERT_TRUE(store->saveReservation(r).isOk());
  r.events.push_back({2, ReservationState::kVacating, "vacating"});
  ASSERT_TRUE(store->saveReservation(r).isOk());
  EXPECT_EQ(*store->countEvents("r1"), 2);
  EXPECT_EQ(*store->countEvents("r2"), 0);
}

// Ensures a batch is saved whole, each reservation with its last event, and that a refused
// write (the store failing as a full disk does) applies nothing and says why.
TEST_P(StoreContractTest, BatchIsAllOrNothing) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  Reservation a = sample("r1"), b = sample("r2");
  ASSERT_TRUE(store->saveReservations({&a, &b}).isOk());
  a.events.push_back({3, ReservationState::kCancelled, "cancelled"});
  Reservation c = sample("r3");
  ASSERT_TRUE(store->setQueryOnly(true).isOk());
  const Status refused = store->saveReservations({&a, &c});
  EXPECT_FALSE(refused.isOk());
  EXPECT_EQ(store->lastError(), StoreError::kIo) << storeErrorName(store->lastError());
  ASSERT_TRUE(store->setQueryOnly(false).isOk());
  EXPECT_EQ(store->loadReservations()->size(), 2u);
  EXPECT_EQ(*store->countEvents("r1"), 1);
  ASSERT_TRUE(store->saveReservations({&a, &c}).isOk());
  EXPECT_EQ(store->lastError(), StoreError::kNone);
  EXPECT_EQ(store->loadReservations()->size(), 3u);
  EXPECT_EQ(*store->countEvents("r1"), 2);
  EXPECT_EQ(*store->countEvents("r3"), 1);
}

// Ensures migration observations are kept, oldest first, across a reopen.
TEST_P(StoreContractTest, ObservationsRoundTrip) {
  MigrationObservation o;
  o.vmId = "v";
  o.mode = MoveMode::kSuspendCopyResume;
  o.transferredBytes = 1234;
  o.dirtyRateBytesPerSec = 1.0 / 3;
  o.saveNs = 11;
  o.copyNs = 22;
  o.restoreNs = 33;
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->saveObservation(o).isOk());
    o.vmId = "w";
    o.mode = MoveMode::kLive;
    ASSERT_TRUE(store->saveObservation(o).isOk());
  }
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto all = store->loadObservations();
  ASSERT_TRUE(all.isOk()) << all.status().toString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].vmId, "v");
  EXPECT_EQ((*all)[0].transferredBytes, 1234u);
  EXPECT_EQ((*all)[0].mode, MoveMode::kSuspendCopyResume);
  EXPECT_EQ((*all)[0].dirtyRateBytesPerSec, 1.0 / 3);
  EXPECT_EQ((*all)[0].saveNs, 11);
  EXPECT_EQ((*all)[0].copyNs, 22);
  EXPECT_EQ((*all)[0].restoreNs, 33);
  EXPECT_EQ((*all)[1].vmId, "w");
  EXPECT_EQ((*all)[1].mode, MoveMode::kLive);
}

// Ensures a snapshot is an SQLite file that Store::open reads back with every reservation, its
// event log, the observations and the id counter (the restore path, for either store).
TEST_P(StoreContractTest, SnapshotReadsBackAsAnSqliteStore) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  Reservation r = sample("r7");
  ASSERT_TRUE(store->saveReservation(r).isOk());
  r.events.push_back({2, ReservationState::kVacating, "vacating"});
  ASSERT_TRUE(store->saveReservation(r).isOk());
  ASSERT_TRUE(store->saveReservation(sample("other")).isOk());
  MigrationObservation o;
  o.vmId = "v";
  ASSERT_TRUE(store->saveObservation(o).isOk());
  auto snapshot = store->snapshot();
  ASSERT_TRUE(snapshot.isOk()) << snapshot.status().toString();
  EXPECT_EQ(snapshot->reservations, 2u);
  const std::string path =
      ::testing::TempDir() + "vrm-snapshot-" + std::to_string(getpid()) + "-" + testName();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(snapshot->bytes.data(), 1, snapshot->bytes.size(), f),
              snapshot->bytes.size());
    std::fclose(f);
  }
  {
    auto restored = Store::open(path);
    ASSERT_TRUE(restored.isOk()) << restored.status().toString();
    EXPECT_EQ((*restored)->loadReservations()->size(), 2u);
    EXPECT_EQ(*(*restored)->countEvents("r7"), 2);
    EXPECT_EQ(*(*restored)->countEvents("other"), 1);
    EXPECT_EQ((*restored)->loadObservations()->size(), 1u);
    EXPECT_EQ(*(*restored)->allocateReservationId(), "r8");
  }
  std::filesystem::remove(path);
}

#ifndef VRM_STORE_TEST_ETCD

// SQLite at a file of its own per test.
class SqliteBackend : public StoreBackend {
 public:
  explicit SqliteBackend(const std::string& test)
      : dir_(std::filesystem::path(::testing::TempDir()) /
             ("vrm-store-" + test + "-" + std::to_string(getpid()))) {
    std::filesystem::create_directories(dir_);
  }
  ~SqliteBackend() override { std::filesystem::remove_all(dir_); }
  Result<std::unique_ptr<Store>> open() override { return Store::open((dir_ / "vrm.db").string()); }

 private:
  std::filesystem::path dir_;
};

INSTANTIATE_TEST_SUITE_P(Store, StoreContractTest,
                         ::testing::Values(StoreBackendFactory{
                             "Sqlite",
                             [](const std::string& test) -> Result<std::unique_ptr<StoreBackend>> {
                               return std::unique_ptr<StoreBackend>(
                                   std::make_unique<SqliteBackend>(test));
                             }}),
                         testing::storeBackendName);

// Ensures an unopenable path is a typed error, not a crash.
TEST(StoreTest, UnopenablePathIsUnavailable) {
  auto store = Store::open("/nonexistent-dir/x/vrm.db");
  ASSERT_FALSE(store.isOk());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
}

// Ensures a store written before the suspend-copy-resume phase columns existed opens (the
// columns are added, old rows read 0 = not measured) and keeps new phases.
TEST(StoreTest, OldObservationsTableGetsPhaseColumns) {
  const std::string path =
      ::testing::TempDir() + "vrm-store-old-" + std::to_string(getpid()) + ".db";
  std::remove(path.c_str());
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* old =
        "CREATE TABLE observations (seq INTEGER PRIMARY KEY AUTOINCREMENT, vm_id TEXT NOT NULL, "
        "from_host TEXT NOT NULL, to_host TEXT NOT NULL, mode TEXT NOT NULL, memory_bytes INTEGER "
        "NOT NULL, nonzero_memory_bytes INTEGER NOT NULL, dirty_rate REAL NOT NULL, start_ns "
        "INTEGER NOT NULL, end_ns INTEGER NOT NULL, setup_ns INTEGER NOT NULL, downtime_ns INTEGER "
        "NOT NULL, transferred_bytes INTEGER NOT NULL, rounds INTEGER NOT NULL, bandwidth REAL NOT "
        "NULL); INSERT INTO observations VALUES (1,'old','a','b','live',1,1,0,0,0,0,0,7,1,1);";
    ASSERT_EQ(sqlite3_exec(db, old, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto opened = Store::open(path);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  auto store = std::move(*opened);
  MigrationObservation o;
  o.vmId = "new";
  o.mode = MoveMode::kSuspendCopyResume;
  o.copyNs = 5;
  ASSERT_TRUE(store->saveObservation(o).isOk());
  auto all = store->loadObservations();
  ASSERT_TRUE(all.isOk()) << all.status().toString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].vmId, "old");
  EXPECT_EQ((*all)[0].transferredBytes, 7u);
  EXPECT_EQ((*all)[0].copyNs, 0);
  EXPECT_EQ((*all)[1].copyNs, 5);
  store.reset();
  std::remove(path.c_str());
}

// Ensures every form of --store parses to its location, and the legacy bare path still means
// an SQLite file.
TEST(StoreLocationTest, ParsesSqliteAndEtcdForms) {
  auto bare = parseStoreLocation("vrm.db");
  ASSERT_TRUE(bare.isOk());
  EXPECT_EQ(bare->kind, StoreLocation::Kind::kSqlite);
  EXPECT_EQ(bare->path, "vrm.db");
  auto sqlite = parseStoreLocation("sqlite:/var/lib/vrm/vrm.db");
  ASSERT_TRUE(sqlite.isOk());
  EXPECT_EQ(sqlite->path, "/var/lib/vrm/vrm.db");
  EXPECT_EQ(sqlite->toString(), "sqlite:/var/lib/vrm/vrm.db");
  auto etcd = parseStoreLocation("etcd://h1:2379,10.0.0.2:2380");
  ASSERT_TRUE(etcd.isOk()) << etcd.status().toString();
  EXPECT_EQ(etcd->kind, StoreLocation::Kind::kEtcd);
  EXPECT_EQ(etcd->endpoints, (std::vector<std::string>{"h1:2379", "10.0.0.2:2380"}));
  EXPECT_EQ(etcd->prefix, "/vrm/");
  auto prefixed = parseStoreLocation("etcd://h1:2379/site/a/");
  ASSERT_TRUE(prefixed.isOk());
  EXPECT_EQ(prefixed->prefix, "/site/a/");
  EXPECT_EQ(prefixed->toString(), "etcd://h1:2379/site/a/");
}

// Ensures a malformed --store value is an invalid-argument error that says what is wrong.
TEST(StoreLocationTest, MalformedValuesAreInvalidArguments) {
  for (const char* bad :
       {"", "sqlite:", "etcd://", "etcd:///vrm", "etcd://h1", "etcd://h1:0", "etcd://h1:99999",
        "etcd://h1:2379,", "etcd://h1:x", "etcd://h1:2379//a", "mysql://db/vrm", "etcd:h1:2379"}) {
    auto location = parseStoreLocation(bad);
    EXPECT_FALSE(location.isOk()) << bad << " parsed as " << location->toString();
    if (!location) {
      EXPECT_EQ(location.status().code(), StatusCode::kInvalidArgument) << bad;
      EXPECT_NE(location.status().message().find("--store"), std::string::npos) << bad;
    }
  }
}

#endif  // VRM_STORE_TEST_ETCD

}  // namespace
}  // namespace vrm::manager
