#include "vrm/manager/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

namespace vrm::manager {
namespace {

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
TEST(StoreTest, SaveAndLoadRoundTrip) {
  auto store = Store::open(":memory:");
  ASSERT_TRUE(store.isOk());
  ASSERT_TRUE((*store)->saveReservation(sample("r1")).isOk());
  auto loaded = (*store)->loadReservations();
  ASSERT_TRUE(loaded.isOk());
  ASSERT_EQ(loaded->size(), 1u);
  const Reservation& r = (*loaded)[0];
  EXPECT_EQ(r.hosts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.plannedMoves()[0].toHost, "c");
  EXPECT_EQ(r.moves[0].progress.state, MoveState::kRunning);
  EXPECT_EQ(r.moves[0].progress.actualStartNs, 7);
  EXPECT_EQ(r.clones[0].address, "addr");
  EXPECT_EQ(r.events[0].message, "admitted");
  EXPECT_EQ(*(*store)->countEvents("r1"), 1);
}

// Ensures ids are never reused after reopening the database file, and data persists.
TEST(StoreTest, IdsAndDataSurviveReopen) {
  auto dir = std::filesystem::temp_directory_path() / ("vrm-store-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "vrm.db").string();
  {
    auto store = Store::open(path);
    ASSERT_TRUE(store.isOk());
    EXPECT_EQ(*(*store)->allocateReservationId(), "r1");
    EXPECT_EQ(*(*store)->allocateReservationId(), "r2");
    ASSERT_TRUE((*store)->saveReservation(sample("r2")).isOk());
  }
  {
    auto store = Store::open(path);
    EXPECT_EQ(*(*store)->allocateReservationId(), "r3");
    EXPECT_EQ((*store)->loadReservations()->size(), 1u);
  }
  std::filesystem::remove_all(dir);
}

// Ensures allocating an id writes nothing (it works on a store that refuses writes, so a
// submission costs one commit, not two) and that the id is taken for good when its reservation
// is saved: after reopening, the next id follows the highest saved one; an id that was only
// allocated may come again (nobody was told of it).
TEST(StoreTest, IdIsTakenWhenItsReservationIsSaved) {
  auto dir = std::filesystem::temp_directory_path() / ("vrm-store-ids-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "vrm.db").string();
  {
    auto store = Store::open(path);
    ASSERT_TRUE(store.isOk());
    ASSERT_TRUE((*store)->setQueryOnly(true).isOk());
    EXPECT_EQ(*(*store)->allocateReservationId(), "r1");
    EXPECT_EQ(*(*store)->allocateReservationId(), "r2");
    ASSERT_TRUE((*store)->setQueryOnly(false).isOk());
    ASSERT_TRUE((*store)->saveReservation(sample("r1")).isOk());
  }
  {
    auto store = Store::open(path);
    EXPECT_EQ(*(*store)->allocateReservationId(), "r2");
    EXPECT_EQ(*(*store)->allocateReservationId(), "r3");
    ASSERT_TRUE((*store)->saveReservation(sample("r3")).isOk());
  }
  {
    auto store = Store::open(path);
    EXPECT_EQ(*(*store)->allocateReservationId(), "r4");
  }
  std::filesystem::remove_all(dir);
}

// Ensures re-saving with the same last event does not duplicate it in the log.
TEST(StoreTest, EventLogAppendsOnlyNewEvents) {
  auto store = std::move(*Store::open(":memory:"));
  Reservation r = sample("r1");
  ASSERT_TRUE(store->saveReservation(r).isOk());
  ASSERT_TRUE(store->saveReservation(r).isOk());
  r.events.push_back({2, ReservationState::kVacating, "vacating"});
  ASSERT_TRUE(store->saveReservation(r).isOk());
  EXPECT_EQ(*store->countEvents("r1"), 2);
}

// Ensures an unopenable path is a typed error, not a crash.
TEST(StoreTest, UnopenablePathIsUnavailable) {
  auto store = Store::open("/nonexistent-dir/x/vrm.db");
  ASSERT_FALSE(store.isOk());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
}

// Ensures migration observations are kept for the calibrator.
TEST(StoreTest, ObservationsRoundTrip) {
  auto store = std::move(*Store::open(":memory:"));
  MigrationObservation o;
  o.vmId = "v";
  o.mode = MoveMode::kSuspendCopyResume;
  o.transferredBytes = 1234;
  o.saveNs = 11;
  o.copyNs = 22;
  o.restoreNs = 33;
  ASSERT_TRUE(store->saveObservation(o).isOk());
  auto all = store->loadObservations();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].transferredBytes, 1234u);
  EXPECT_EQ((*all)[0].mode, MoveMode::kSuspendCopyResume);
  EXPECT_EQ((*all)[0].saveNs, 11);
  EXPECT_EQ((*all)[0].copyNs, 22);
  EXPECT_EQ((*all)[0].restoreNs, 33);
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

}  // namespace
}  // namespace vrm::manager
