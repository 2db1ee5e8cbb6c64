// vrm::etcd::RecordStore against a real 3-member etcd cluster: commits a follower's copy sees
// whole, values over etcd's 1.5 MiB limit, batches over its 128 operations seen atomically, a
// deposed leader committing nothing, a successor finishing a journal entry and collecting
// orphaned chunks, a follower behind compacted history reloading, NOSPACE refusing commits
// until reclaimSpace().
#include "vrm/etcd/record_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "etcd_cluster.h"
#include "shared_cluster.h"

namespace vrm::etcd {
namespace {

using namespace std::chrono_literals;
using testing::EtcdCluster;
using testing::EtcdClusterOptions;
using Clock = std::chrono::steady_clock;

std::unique_ptr<Client> connect(const std::vector<std::string>& endpoints) {
  ClientOptions options;
  options.endpoints = endpoints;
  options.callTimeout = 10s;
  return std::move(*Client::create(options));
}

// Campaigns on `name` with a new lease and returns the fence once elected.
Fence lead(Client& client, const std::string& name) {
  auto lease = client.leaseGrant(60);
  EXPECT_TRUE(lease.isOk());
  auto campaign = client.startCampaign(name, lease->id, "x");
  EXPECT_TRUE(campaign.isOk());
  auto key = campaign->wait(Clock::now() + 10s);
  EXPECT_TRUE(key.isOk() && key->has_value());
  return Fence{(*key)->key, (*key)->rev, lease->id};
}

std::unique_ptr<RecordStore> storeOn(Client& client, const std::string& prefix,
                                     bool leaveJournal = false) {
  RecordStoreOptions options;
  options.prefix = prefix;
  options.leaveJournalUnfinishedForTesting = leaveJournal;
  auto store = RecordStore::create(&client, options);
  EXPECT_TRUE(store.isOk());
  EXPECT_TRUE((*store)->load().isOk());
  return std::move(*store);
}

std::int64_t countKeys(Client& client, const std::string& prefix) {
  RangeRequest r = RangeRequest::prefix(prefix);
  r.countOnly = true;
  return client.range(r)->count;
}

class RecordStoreTest : public testing::SharedEtcdClusterTest {
 protected:
  void SetUp() override {
    SharedEtcdClusterTest::SetUp();
    if (!ready()) return;
    prefix_ = "/" + testName() + "/data/";
    election_ = "/" + testName() + "/leader";
    leaderClient_ = connect(cluster_->clientEndpoints());
    followerClient_ = connect(cluster_->clientEndpoints());
  }

  std::string prefix_, election_;
  std::unique_ptr<Client> leaderClient_, followerClient_;
};

TEST_F(RecordStoreTest, CommitsReachTheFollowersCopy) {
  // A small batch is one transaction; a follower's watch brings its copy to the same records,
  // revision and commit sequence; a fresh load agrees.
  const Fence fence = lead(*leaderClient_, election_);
  auto leader = storeOn(*leaderClient_, prefix_);
  auto follower = storeOn(*followerClient_, prefix_);
  auto r1 = leader->commit(fence, {Mutation::put("a", "1"), Mutation::put("b", "2")});
  ASSERT_TRUE(r1.isOk()) << r1.error().toString();
  EXPECT_EQ(leader->stats().transactions, 1);
  auto r2 = leader->commit(fence, {Mutation::put("a", "3"), Mutation::erase("b"),
                                   Mutation::put("c", "x"), Mutation::put("c", "4")});
  ASSERT_TRUE(r2.isOk());
  const std::map<std::string, std::string> expected = {{"a", "3"}, {"c", "4"}};
  EXPECT_EQ(leader->records(), expected);
  ASSERT_TRUE(follower->syncToLatest(Clock::now() + 10s).isOk());
  EXPECT_EQ(follower->records(), expected);
  EXPECT_EQ(follower->commitSequence(), 2);
  EXPECT_EQ(follower->revision(), *r2);
  auto fresh = storeOn(*followerClient_, prefix_);
  EXPECT_EQ(fresh->records(), expected);
  EXPECT_EQ(fresh->commitSequence(), 2);
}

TEST_F(RecordStoreTest, ValuesOverTheRequestLimitAreChunked) {
  // A 3 MiB value (twice etcd's request limit) is committed in chunks and read back whole by a
  // follower and by a fresh load; replacing it by a small value deletes its chunks.
  const Fence fence = lead(*leaderClient_, election_);
  auto leader = storeOn(*leaderClient_, prefix_);
  auto follower = storeOn(*followerClient_, prefix_);
  std::string big(3 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7919 % 251);
  auto committed = leader->commit(fence, {Mutation::put("plan", big), Mutation::put("s", "1")});
  ASSERT_TRUE(committed.isOk()) << committed.error().toString();
  EXPECT_GT(leader->stats().transactions, 1);
  EXPECT_EQ(leader->stats().chunkedValues, 1);
  ASSERT_TRUE(follower->syncToLatest(Clock::now() + 10s).isOk());
  EXPECT_EQ(follower->records().at("plan"), big);
  EXPECT_EQ(storeOn(*followerClient_, prefix_)->records().at("plan"), big);
  EXPECT_GT(countKeys(*leaderClient_, prefix_ + "c/"), 0);

  ASSERT_TRUE(leader->commit(fence, {Mutation::put("plan", "small")}).isOk());
  EXPECT_EQ(countKeys(*leaderClient_, prefix_ + "c/"), 0) << "replaced chunks left behind";
  ASSERT_TRUE(follower->syncToLatest(Clock::now() + 10s).isOk());
  EXPECT_EQ(follower->records().at("plan"), "small");
}

TEST_F(RecordStoreTest, ABatchOverTheOperationLimitIsSeenAtomically) {
  // 300 records in one batch need several transactions; a follower catching up concurrently
  // sees either none or all of the new values, never a part.
  const Fence fence = lead(*leaderClient_, election_);
  auto leader = storeOn(*leaderClient_, prefix_);
  std::vector<Mutation> first, second;
  for (int i = 0; i < 300; ++i) {
    first.push_back(Mutation::put("r" + std::to_string(i), "v1"));
    second.push_back(Mutation::put("r" + std::to_string(i), "v2"));
  }
  ASSERT_TRUE(leader->commit(fence, first).isOk());
  auto follower = storeOn(*followerClient_, prefix_);
  ASSERT_EQ(follower->records().size(), 300u);
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, checks{0};
  std::thread watcher([&] {
    while (true) {
      const bool last = done.load();
      auto caught = follower->catchUp(Clock::now() + 20ms);
      ASSERT_TRUE(caught.isOk()) << caught.error().toString();
      int v2 = 0;
      for (const auto& [key, value] : follower->records()) v2 += value == "v2";
      if (v2 != 0 && v2 != 300) ++torn;
      ++checks;
      if (last && v2 == 300) break;
    }
  });
  const auto journalled = leader->stats().journalled;
  auto committed = leader->commit(fence, second);
  done = true;
  watcher.join();
  ASSERT_TRUE(committed.isOk()) << committed.error().toString();
  EXPECT_EQ(leader->stats().journalled, journalled + 1);
  EXPECT_EQ(torn.load(), 0) << "a follower saw a part of the batch";
  EXPECT_GT(checks.load(), 1);
  EXPECT_EQ(countKeys(*leaderClient_, prefix_ + "j/"), 0) << "journal entry left behind";
}

TEST_F(RecordStoreTest, ADeposedLeaderCommitsNothing) {
  // Once another candidate leads, the old leader's commit fails with kDeposed and changes
  // neither etcd nor its copy; the new leader takes over and commits.
  const Fence fenceA = lead(*leaderClient_, election_);
  auto a = storeOn(*leaderClient_, prefix_);
  ASSERT_TRUE(a->commit(fenceA, {Mutation::put("k", "A")}).isOk());
  ASSERT_TRUE(leaderClient_->leaseRevoke(fenceA.leaseId).isOk());
  const Fence fenceB = lead(*followerClient_, election_);
  auto late = a->commit(fenceA, {Mutation::put("k", "late A"), Mutation::put("new", "A")});
  ASSERT_FALSE(late.isOk());
  EXPECT_EQ(late.error().code(), ErrorCode::kDeposed) << late.error().toString();
  EXPECT_EQ(a->records().at("k"), "A");
  std::string big(2 << 20, 'a');
  EXPECT_EQ(a->commit(fenceA, {Mutation::put("big", big)}).error().code(), ErrorCode::kDeposed);

  auto b = storeOn(*followerClient_, prefix_);
  ASSERT_TRUE(b->takeOver(fenceB, Clock::now() + 10s).isOk());
  EXPECT_EQ(b->records(), (std::map<std::string, std::string>{{"k", "A"}}));
  EXPECT_EQ(countKeys(*followerClient_, prefix_ + "c/"), 0) << "the deposed leader's chunks";
  ASSERT_TRUE(b->commit(fenceB, {Mutation::put("k", "B")}).isOk());
}

TEST_F(RecordStoreTest, TakeOverFinishesAJournalEntryALeaderLeft) {
  // A leader stops at the commit point of a 200-record batch (as if it died there): readers
  // already see the whole batch; its successor applies the heads and removes the entry.
  const Fence fenceA = lead(*leaderClient_, election_);
  auto a = storeOn(*leaderClient_, prefix_, /*leaveJournal=*/true);
  std::vector<Mutation> batch;
  for (int i = 0; i < 200; ++i) batch.push_back(Mutation::put("r" + std::to_string(i), "v"));
  batch.push_back(Mutation::put("plan", std::string(1 << 20, 'p')));
  ASSERT_TRUE(a->commit(fenceA, batch).isOk());
  EXPECT_EQ(countKeys(*leaderClient_, prefix_ + "j/"), 1);
  EXPECT_EQ(countKeys(*leaderClient_, prefix_ + "r/"), 0);
  EXPECT_EQ(storeOn(*followerClient_, prefix_)->records().size(), 201u);

  ASSERT_TRUE(leaderClient_->leaseRevoke(fenceA.leaseId).isOk());
  const Fence fenceB = lead(*followerClient_, election_);
  auto b = storeOn(*followerClient_, prefix_);
  ASSERT_TRUE(b->takeOver(fenceB, Clock::now() + 10s).isOk());
  EXPECT_EQ(countKeys(*followerClient_, prefix_ + "j/"), 0);
  EXPECT_EQ(countKeys(*followerClient_, prefix_ + "r/"), 201);
  EXPECT_EQ(b->records().size(), 201u);
  EXPECT_EQ(storeOn(*followerClient_, prefix_)->records().at("plan"), std::string(1 << 20, 'p'));
}

TEST_F(RecordStoreTest, TakeOverDeletesOrphanedChunks) {
  // Chunks a leader staged before dying short of its commit point are deleted by the next
  // leader; chunks of live records stay.
  const Fence fence = lead(*leaderClient_, election_);
  auto leader = storeOn(*leaderClient_, prefix_);
  ASSERT_TRUE(leader->commit(fence, {Mutation::put("plan", std::string(1 << 20, 'x'))}).isOk());
  const std::int64_t live = countKeys(*leaderClient_, prefix_ + "c/");
  ASSERT_GT(live, 0);
  for (int i = 0; i < 3; ++i) {  // the layout of record_store.h: c/GEN/NNNNNN
    ASSERT_TRUE(
        leaderClient_
            ->put(PutRequest{prefix_ + "c/dead-1/00000" + std::to_string(i), "junk", 0, false})
            .isOk());
  }
  auto next = storeOn(*followerClient_, prefix_);
  ASSERT_TRUE(next->takeOver(fence, Clock::now() + 10s).isOk());
  EXPECT_EQ(countKeys(*followerClient_, prefix_ + "c/"), live);
  EXPECT_EQ(next->records().at("plan"), std::string(1 << 20, 'x'));
}

TEST_F(RecordStoreTest, AFollowerBehindCompactedHistoryLoadsAgain) {
  // The leader compacts history past a follower's copy; the follower's next catch-up reads the
  // whole keyspace again and ends up with the same records.
  const Fence fence = lead(*leaderClient_, election_);
  auto leader = storeOn(*leaderClient_, prefix_);
  auto follower = storeOn(*followerClient_, prefix_);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(leader->commit(fence, {Mutation::put("k", std::to_string(i))}).isOk());
  }
  ASSERT_TRUE(leader->compactHistory(0).isOk());
  ASSERT_TRUE(follower->syncToLatest(Clock::now() + 10s).isOk());
  EXPECT_EQ(follower->records(), leader->records());
  EXPECT_EQ(follower->commitSequence(), 5);
}

TEST(RecordStoreNoSpaceTest, NoSpaceRefusesCommitsUntilSpaceIsReclaimed) {
  // With a 4 MiB quota, overwriting a few large records fills etcd with history: the commit
  // that does not fit fails with kNoSpace and changes nothing; reclaimSpace() (compact,
  // defragment, disarm) lets the next commit pass.
  EtcdClusterOptions options;
  options.quotaBackendBytes = 4 << 20;
  auto cluster = EtcdCluster::start(options);
  if (!cluster.isOk() && cluster.status().code() == StatusCode::kNotFound) {
    GTEST_SKIP() << cluster.status().toString();
  }
  ASSERT_TRUE(cluster.isOk()) << cluster.status().toString();
  auto client = connect((*cluster)->clientEndpoints());
  const Fence fence = lead(*client, "/leader");
  auto store = storeOn(*client, "/data/");
  std::optional<Error> refusal;
  std::map<std::string, std::string> before;
  for (int i = 0; i < 100 && !refusal; ++i) {
    before = store->records();
    auto committed = store->commit(
        fence, {Mutation::put("r" + std::to_string(i % 3),
                              std::string(200 * 1024, static_cast<char>('a' + i % 26)))});
    // (A commit that timed out on a slow disk is neither: fill on.)
    if (!committed && committed.error().code() != ErrorCode::kTimeout) {
      refusal = committed.error();
    }
  }
  ASSERT_TRUE(refusal.has_value()) << "quota never reached";
  EXPECT_EQ(refusal->code(), ErrorCode::kNoSpace) << refusal->toString();
  EXPECT_EQ(store->records(), before) << "a refused commit changed the copy";
  ASSERT_TRUE(store->reclaimSpace().isOk());
  auto committed = store->commit(fence, {Mutation::put("r0", "small")});
  EXPECT_TRUE(committed.isOk()) << committed.error().toString();
  EXPECT_EQ(storeOn(*client, "/data/")->records().at("r0"), "small");
}

}  // namespace
}  // namespace vrm::etcd
