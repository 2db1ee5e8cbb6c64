#include "vrm/manager/store_backups.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "sample_reservation.h"

namespace vrm::manager {
namespace {

class StoreBackupsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("vrm-backups-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto opened = Store::open((dir_ / "vrm.db").string());
    ASSERT_TRUE(opened.isOk()) << opened.status().toString();
    store_ = std::move(*opened);
    saveMany(1, 40);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Saves reservations r<from>..r<to> in one transaction.
  void saveMany(int from, int to) {
    std::vector<Reservation> rs;
    for (int i = from; i <= to; ++i) rs.push_back(admittedReservation("r" + std::to_string(i)));
    std::vector<const Reservation*> ptrs;
    for (const auto& r : rs) ptrs.push_back(&r);
    ASSERT_TRUE(store_->saveReservations(ptrs));
  }

  // Reads a whole backup the way a client does; returns its bytes.
  std::string readAll(StoreBackups& backups, BackupChunk* first = nullptr) {
    auto chunk = backups.read("", 0);
    EXPECT_TRUE(chunk.isOk()) << chunk.status().toString();
    if (!chunk) return "";
    if (first) *first = *chunk;
    std::string bytes = chunk->data;
    while (bytes.size() < chunk->totalBytes) {
      chunk = backups.read(chunk->snapshotId, bytes.size());
      EXPECT_TRUE(chunk.isOk()) << chunk.status().toString();
      if (!chunk || chunk->data.empty()) break;
      bytes += chunk->data;
    }
    return bytes;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  ManualClock clock_{5000};
};

// Ensures a backup read in many small chunks is a database Store::open reads back with every
// reservation (the restore path), and that the snapshot is dropped once read to the end.
TEST_F(StoreBackupsTest, ChunksReassembleIntoAStoreThatRestores) {
  StoreBackups backups(*store_, clock_, {.chunkBytes = 1000});
  BackupChunk first;
  const std::string bytes = readAll(backups, &first);
  EXPECT_GT(first.totalBytes, 3000u) << "the test wants several chunks";
  EXPECT_EQ(bytes.size(), first.totalBytes);
  EXPECT_EQ(first.reservations, 40u);
  EXPECT_EQ(first.takenAtNs, 5000);
  EXPECT_EQ(backups.snapshotsHeld(), 0u);

  const auto restored = dir_ / "restored.db";
  std::ofstream(restored, std::ios::binary) << bytes;
  auto reopened = Store::open(restored.string());
  ASSERT_TRUE(reopened.isOk()) << reopened.status().toString();
  auto loaded = (*reopened)->loadReservations();
  ASSERT_TRUE(loaded.isOk());
  EXPECT_EQ(loaded->size(), 40u);
  EXPECT_EQ(*(*reopened)->countEvents("r7"), 1);
  // Ids go on after the restored ones, never reusing them.
  EXPECT_EQ(*(*reopened)->allocateReservationId(), *store_->allocateReservationId());
}

// Ensures a snapshot is the store as it was when taken: writes after the first chunk do not
// appear in the rest of the backup.
TEST_F(StoreBackupsTest, SnapshotIsConsistentWhileTheStoreChanges) {
  StoreBackups backups(*store_, clock_, {.chunkBytes = 512});
  auto chunk = backups.read("", 0);
  ASSERT_TRUE(chunk.isOk());
  std::string bytes = chunk->data;
  saveMany(41, 200);
  while (bytes.size() < chunk->totalBytes) {
    auto next = backups.read(chunk->snapshotId, bytes.size());
    ASSERT_TRUE(next.isOk()) << next.status().toString();
    EXPECT_EQ(next->totalBytes, chunk->totalBytes);
    bytes += next->data;
  }
  const auto restored = dir_ / "restored.db";
  std::ofstream(restored, std::ios::binary) << bytes;
  auto reopened = Store::open(restored.string());
  ASSERT_TRUE(reopened.isOk());
  EXPECT_EQ((*reopened)->loadReservations()->size(), 40u);
}

// Ensures bad reads get typed errors: an unknown id, a first read not at 0, an offset past the
// end; and that only the newest snapshots are kept.
TEST_F(StoreBackupsTest, BadReadsAreTypedAndOldSnapshotsAreDropped) {
  StoreBackups backups(*store_, clock_, {.chunkBytes = 100, .keptSnapshots = 2});
  EXPECT_EQ(backups.read("b0123", 0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(backups.read("", 100).status().code(), StatusCode::kInvalidArgument);
  auto a = backups.read("", 0);
  ASSERT_TRUE(a.isOk());
  EXPECT_EQ(backups.read(a->snapshotId, a->totalBytes + 1).status().code(),
            StatusCode::kInvalidArgument);
  auto b = backups.read("", 0);
  auto c = backups.read("", 0);
  ASSERT_TRUE(b.isOk() && c.isOk());
  EXPECT_NE(b->snapshotId, c->snapshotId);
  EXPECT_EQ(backups.snapshotsHeld(), 2u);
  EXPECT_EQ(backups.read(a->snapshotId, 100).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(backups.read(b->snapshotId, 100).isOk());
}

}  // namespace
}  // namespace vrm::manager
