// vrm_etcd against a real 3-member etcd 3.4 cluster on loopback (tests/ha/etcd_cluster.h):
// KV and txn semantics, leases that expire when renewals stop, elections and fencing, a watch
// that resumes after its member is killed, NOSPACE and too-large requests as typed refusals.
// Skipped when etcd is not installed.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "etcd_cluster.h"
#include "shared_cluster.h"
#include "vrm/etcd/client.h"

namespace vrm::etcd {
namespace {

using namespace std::chrono_literals;
using testing::EtcdCluster;
using testing::EtcdClusterOptions;
using Clock = std::chrono::steady_clock;

std::unique_ptr<Client> connect(const std::vector<std::string>& endpoints,
                                std::size_t maxRequestBytes = 1536 * 1024) {
  ClientOptions options;
  options.endpoints = endpoints;
  options.attemptTimeout = 1500ms;
  options.callTimeout = 6s;
  options.maxRequestBytes = maxRequestBytes;
  auto client = Client::create(options);
  EXPECT_TRUE(client.isOk());
  return std::move(*client);
}

class EtcdClientTest : public testing::SharedEtcdClusterTest {
 protected:
  void SetUp() override {
    SharedEtcdClusterTest::SetUp();
    if (!ready()) return;
    client_ = connect(cluster_->clientEndpoints());
    prefix_ = "/" + testName() + "/";
  }

  std::unique_ptr<Client> client_;
  std::string prefix_;
};

TEST_F(EtcdClientTest, PutRangeAndDeleteFollowRevisions) {
  // Puts create keys at increasing revisions, a second put bumps version and mod revision but
  // not the create revision, a prefix range lists keys in order, a prefix delete removes them.
  auto a = client_->put(PutRequest{prefix_ + "a", "1", 0, false});
  ASSERT_TRUE(a.isOk()) << a.error().toString();
  auto b = client_->put(PutRequest{prefix_ + "b", "2", 0, false});
  ASSERT_TRUE(b.isOk());
  EXPECT_GT(b->header.revision, a->header.revision);
  auto again = client_->put(PutRequest{prefix_ + "a", "3", 0, true});
  ASSERT_TRUE(again.isOk());
  ASSERT_TRUE(again->prevKv.has_value());
  EXPECT_EQ(again->prevKv->value, "1");

  auto range = client_->range(RangeRequest::prefix(prefix_));
  ASSERT_TRUE(range.isOk()) << range.error().toString();
  ASSERT_EQ(range->kvs.size(), 2u);
  EXPECT_EQ(range->kvs[0].key, prefix_ + "a");
  EXPECT_EQ(range->kvs[0].value, "3");
  EXPECT_EQ(range->kvs[0].version, 2);
  EXPECT_EQ(range->kvs[0].createRevision, a->header.revision);
  EXPECT_EQ(range->kvs[0].modRevision, again->header.revision);
  EXPECT_EQ(range->kvs[1].key, prefix_ + "b");

  RangeRequest limited = RangeRequest::prefix(prefix_);
  limited.limit = 1;
  auto page = client_->range(limited);
  ASSERT_TRUE(page.isOk());
  EXPECT_EQ(page->kvs.size(), 1u);
  EXPECT_TRUE(page->more);
  EXPECT_EQ(page->count, 2);

  // Reading at an older revision sees the old value.
  RangeRequest old = RangeRequest::single(prefix_ + "a");
  old.revision = a->header.revision;
  auto before = client_->range(old);
  ASSERT_TRUE(before.isOk());
  EXPECT_EQ(before->kvs.at(0).value, "1");

  auto deleted = client_->deleteRange(DeleteRangeRequest{prefix_, prefixEnd(prefix_), false});
  ASSERT_TRUE(deleted.isOk());
  EXPECT_EQ(deleted->deleted, 2);
  EXPECT_TRUE(client_->range(RangeRequest::prefix(prefix_))->kvs.empty());
}

TEST_F(EtcdClientTest, TxnComparesChooseTheBranch) {
  // Create-if-absent succeeds once; compare-and-swap on the mod revision succeeds only with the
  // current one; commitIf turns a failed compare into kCompareFailed with nothing applied.
  const std::string key = prefix_ + "k";
  TxnRequest create;
  create.compare.push_back(Compare::createRevision(key, Compare::Op::kEqual, 0));
  create.success.push_back(PutRequest{key, "first", 0, false});
  create.failure.push_back(RangeRequest::single(key));
  auto first = client_->txn(create);
  ASSERT_TRUE(first.isOk()) << first.error().toString();
  EXPECT_TRUE(first->succeeded);
  create.success[0] = PutRequest{key, "second", 0, false};
  auto second = client_->txn(create);
  ASSERT_TRUE(second.isOk());
  EXPECT_FALSE(second->succeeded);
  ASSERT_EQ(second->responses.size(), 1u);
  EXPECT_EQ(std::get<RangeResponse>(second->responses[0]).kvs.at(0).value, "first");

  const std::int64_t mod = first->header.revision;
  TxnRequest cas;
  cas.compare.push_back(Compare::modRevision(key, Compare::Op::kEqual, mod));
  cas.compare.push_back(Compare::valueIs(key, Compare::Op::kEqual, "first"));
  cas.success.push_back(PutRequest{key, "swapped", 0, false});
  auto swapped = client_->commitIf(cas);
  ASSERT_TRUE(swapped.isOk()) << swapped.error().toString();
  auto stale = client_->commitIf(cas);  // the mod revision has moved on
  ASSERT_FALSE(stale.isOk());
  EXPECT_EQ(stale.error().code(), ErrorCode::kCompareFailed);
  EXPECT_EQ(client_->range(RangeRequest::single(key))->kvs.at(0).value, "swapped");
}

TEST_F(EtcdClientTest, LeaseExpiresWhenKeepalivesStop) {
  // A key on a lease lives past the TTL while the lease is renewed, and goes when renewals
  // stop; the lease is then unknown to renewals and puts.
  auto lease = client_->leaseGrant(2);
  ASSERT_TRUE(lease.isOk()) << lease.error().toString();
  const std::int64_t id = lease->id;
  const auto ttl = std::chrono::seconds(lease->ttlSeconds);
  const std::string key = prefix_ + "leased";
  ASSERT_TRUE(client_->put(PutRequest{key, "v", id, false}).isOk());
  const auto renewUntil = Clock::now() + ttl + 1s;
  while (Clock::now() < renewUntil) {
    auto renewed = client_->leaseKeepAlive(id);
    ASSERT_TRUE(renewed.isOk()) << renewed.error().toString();
    EXPECT_GT(renewed->ttlSeconds, 0);
    // etcd's lease clock is real time: half a TTL between renewals, as a holder would.
    std::this_thread::sleep_for(ttl / 2);
  }
  ASSERT_EQ(client_->range(RangeRequest::single(key))->kvs.size(), 1u) << "expired while renewed";

  // Renewals stop: the key's delete event comes within the TTL (plus etcd's expiry sweep).
  Watcher watcher = client_->watch(WatchRequest{key, "", 0, false});
  bool deleted = false;
  const auto deadline = Clock::now() + ttl + 5s;
  while (!deleted && Clock::now() < deadline) {
    auto batch = watcher.next(deadline);
    ASSERT_TRUE(batch.isOk()) << batch.error().toString();
    if (!batch->has_value()) continue;
    for (const Event& e : (*batch)->events) deleted |= e.type == Event::Type::kDelete;
  }
  EXPECT_TRUE(deleted) << "the leased key outlived its lease";
  auto late = client_->leaseKeepAlive(id);
  ASSERT_FALSE(late.isOk());
  EXPECT_EQ(late.error().code(), ErrorCode::kLeaseNotFound);
  auto put = client_->put(PutRequest{key, "v", id, false});
  ASSERT_FALSE(put.isOk());
  EXPECT_EQ(put.error().code(), ErrorCode::kLeaseNotFound);
  EXPECT_EQ(client_->leaseTimeToLive(id)->ttlSeconds, -1);
}

TEST_F(EtcdClientTest, SecondCampaignerWinsOnlyAfterTheFirstResigns) {
  // Two campaigns on one election: the second waits, queued behind the first, and is elected
  // once the first resigns.
  const std::string name = prefix_ + "election";
  auto leaseA = client_->leaseGrant(30);
  auto leaseB = client_->leaseGrant(30);
  ASSERT_TRUE(leaseA.isOk() && leaseB.isOk());
  auto a = client_->startCampaign(name, leaseA->id, "A");
  ASSERT_TRUE(a.isOk()) << a.error().toString();
  auto elected = a->wait(Clock::now() + 5s);
  ASSERT_TRUE(elected.isOk()) << elected.error().toString();
  ASSERT_TRUE(elected->has_value());
  const LeaderKey keyA = **elected;

  auto b = client_->startCampaign(name, leaseB->id, "B");
  ASSERT_TRUE(b.isOk());
  // B's key is queued after A's (a later create revision), and A still leads.
  auto queued = client_->range(RangeRequest::prefix(name + "/"));
  ASSERT_TRUE(queued.isOk());
  for (int i = 0; i < 50 && queued->kvs.size() < 2; ++i) {
    auto waiting = b->wait(Clock::now() + 20ms);
    ASSERT_TRUE(waiting.isOk());
    ASSERT_FALSE(waiting->has_value()) << "B elected while A leads";
    queued = client_->range(RangeRequest::prefix(name + "/"));
  }
  ASSERT_EQ(queued->kvs.size(), 2u);
  EXPECT_GT(queued->kvs[0].createRevision == keyA.rev ? queued->kvs[1].createRevision
                                                      : queued->kvs[0].createRevision,
            keyA.rev);
  auto still = b->wait(Clock::now() + 300ms);
  ASSERT_TRUE(still.isOk());
  EXPECT_FALSE(still->has_value()) << "B elected while A leads";
  auto leader = client_->leader(name);
  ASSERT_TRUE(leader.isOk());
  EXPECT_EQ(leader->kv.value, "A");

  ASSERT_TRUE(client_->proclaim(keyA, "A2").isOk());
  EXPECT_EQ(client_->leader(name)->kv.value, "A2");
  ASSERT_TRUE(client_->resign(keyA).isOk());
  auto bElected = b->wait(Clock::now() + 5s);
  ASSERT_TRUE(bElected.isOk()) << bElected.error().toString();
  ASSERT_TRUE(bElected->has_value());
  EXPECT_EQ(client_->leader(name)->kv.value, "B");
  // A's key is gone: proclaiming with it is refused.
  auto stale = client_->proclaim(keyA, "A3");
  ASSERT_FALSE(stale.isOk());
  EXPECT_EQ(stale.error().code(), ErrorCode::kDeposed);
  ASSERT_TRUE(client_->leaseRevoke(leaseA->id).isOk());
  ASSERT_TRUE(client_->leaseRevoke(leaseB->id).isOk());
  EXPECT_EQ(client_->leader(name).error().code(), ErrorCode::kNotFound);
}

TEST_F(EtcdClientTest, SecondCampaignerWinsAfterTheFirstLeaseExpires) {
  // A leader that stops renewing is replaced once its lease has expired, not before.
  const std::string name = prefix_ + "election";
  auto leaseA = client_->leaseGrant(2);
  auto leaseB = client_->leaseGrant(10);
  ASSERT_TRUE(leaseA.isOk() && leaseB.isOk());
  auto a = client_->startCampaign(name, leaseA->id, "A");
  ASSERT_TRUE(a.isOk());
  ASSERT_TRUE(a->wait(Clock::now() + 5s)->has_value());
  auto b = client_->startCampaign(name, leaseB->id, "B");
  ASSERT_TRUE(b.isOk());
  std::optional<LeaderKey> keyB;
  const auto deadline = Clock::now() + std::chrono::seconds(leaseA->ttlSeconds) + 6s;
  while (!keyB && Clock::now() < deadline) {
    auto outcome = b->wait(Clock::now() + 500ms);
    ASSERT_TRUE(outcome.isOk()) << outcome.error().toString();
    if (outcome->has_value()) {
      keyB = **outcome;
    } else {
      ASSERT_TRUE(client_->leaseKeepAlive(leaseB->id).isOk());  // only B renews
    }
  }
  ASSERT_TRUE(keyB.has_value()) << "B never elected after A's lease expired";
  EXPECT_EQ(client_->leaseTimeToLive(leaseA->id)->ttlSeconds, -1)
      << "B elected while A's lease lives";
  ASSERT_TRUE(client_->leaseRevoke(leaseB->id).isOk());
}

TEST_F(EtcdClientTest, FencedTxnFailsForADeposedLeader) {
  // A txn guarded by the leader key's create revision commits while that leader leads and is
  // refused, with nothing applied, once it is deposed, also after it campaigns again.
  const std::string name = prefix_ + "election";
  const std::string data = prefix_ + "data";
  auto leaseA = client_->leaseGrant(30);
  ASSERT_TRUE(leaseA.isOk());
  auto a = client_->startCampaign(name, leaseA->id, "A");
  ASSERT_TRUE(a.isOk());
  const LeaderKey keyA = **a->wait(Clock::now() + 5s);
  auto fenced = [&](const LeaderKey& leader, const std::string& value) {
    TxnRequest txn;
    txn.compare.push_back(Compare::createRevision(leader.key, Compare::Op::kEqual, leader.rev));
    txn.success.push_back(PutRequest{data, value, 0, false});
    return client_->commitIf(txn);
  };
  ASSERT_TRUE(fenced(keyA, "by A").isOk());

  ASSERT_TRUE(client_->leaseRevoke(leaseA->id).isOk());  // A is deposed (its lease is gone)
  auto leaseB = client_->leaseGrant(30);
  auto b = client_->startCampaign(name, leaseB->id, "B");
  ASSERT_TRUE(b.isOk());
  const LeaderKey keyB = **b->wait(Clock::now() + 5s);
  ASSERT_TRUE(fenced(keyB, "by B").isOk());
  auto refused = fenced(keyA, "by deposed A");
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.error().code(), ErrorCode::kCompareFailed);

  // A campaigns again with a new lease: a new key and create revision; the old fence stays dead.
  auto leaseA2 = client_->leaseGrant(30);
  auto a2 = client_->startCampaign(name, leaseA2->id, "A");
  ASSERT_TRUE(a2.isOk());
  ASSERT_TRUE(client_->resign(keyB).isOk());
  const LeaderKey keyA2 = **a2->wait(Clock::now() + 5s);
  EXPECT_GT(keyA2.rev, keyA.rev);
  EXPECT_FALSE(fenced(keyA, "by old A").isOk());
  ASSERT_TRUE(fenced(keyA2, "by new A").isOk());
  EXPECT_EQ(client_->range(RangeRequest::single(data))->kvs.at(0).value, "by new A");
  (void)client_->leaseRevoke(leaseB->id);
  (void)client_->leaseRevoke(leaseA2->id);
}

TEST_F(EtcdClientTest, WatchResumesAfterItsMemberIsKilled) {
  // A watch from a revision delivers every later event once, in order, although the member its
  // stream is on is killed half-way: it reopens on another member from the next revision.
  auto first = client_->put(PutRequest{prefix_ + "0", "0", 0, false});
  ASSERT_TRUE(first.isOk());
  Watcher watcher =
      client_->watch(WatchRequest{prefix_, prefixEnd(prefix_), first->header.revision, false});
  std::vector<std::int64_t> revisions;
  std::vector<std::string> keys;
  auto collect = [&](std::size_t want, Clock::duration within) {
    const auto deadline = Clock::now() + within;
    while (keys.size() < want && Clock::now() < deadline) {
      auto batch = watcher.next(deadline);
      ASSERT_TRUE(batch.isOk()) << batch.error().toString();
      if (!batch->has_value()) continue;
      for (const Event& e : (*batch)->events) {
        revisions.push_back(e.kv.modRevision);
        keys.push_back(e.kv.key);
      }
    }
  };
  collect(1, 10s);
  ASSERT_EQ(keys.size(), 1u);
  const std::string on = watcher.endpoint();
  int member = -1;
  for (int i = 0; i < cluster_->size(); ++i) {
    if (cluster_->clientEndpoint(i) == on) member = i;
  }
  ASSERT_GE(member, 0) << on;
  ASSERT_TRUE(cluster_->kill(member).isOk());
  // If it was raft's leader, writes wait for a new one (a write sent meanwhile may time out,
  // and one retried after a timeout could apply twice).
  for (int i = 0; i < cluster_->size(); ++i) {
    if (i != member) {
      ASSERT_TRUE(cluster_->waitReady(i, 15s).isOk());
    }
  }
  for (int i = 1; i <= 5; ++i) {
    auto put = client_->put(PutRequest{prefix_ + std::to_string(i), "v", 0, false});
    ASSERT_TRUE(put.isOk()) << put.error().toString();
  }
  collect(6, 20s);
  ASSERT_EQ(keys.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(keys[i], prefix_ + std::to_string(i));
  for (std::size_t i = 1; i < revisions.size(); ++i) EXPECT_GT(revisions[i], revisions[i - 1]);
  EXPECT_GE(watcher.reconnects(), 1);
  EXPECT_NE(watcher.endpoint(), on);
  ASSERT_TRUE(cluster_->restart(member).isOk());
}

TEST_F(EtcdClientTest, WatchOfACompactedRevisionIsCompacted) {
  // After compaction, reading or watching from a revision before it is kCompacted.
  auto old = client_->put(PutRequest{prefix_ + "k", "1", 0, false});
  auto now = client_->put(PutRequest{prefix_ + "k", "2", 0, false});
  ASSERT_TRUE(old.isOk() && now.isOk());
  ASSERT_TRUE(client_->compact(now->header.revision).isOk());
  ASSERT_TRUE(client_->compact(now->header.revision).isOk()) << "compacting again is harmless";
  RangeRequest read = RangeRequest::single(prefix_ + "k");
  read.revision = old->header.revision;
  EXPECT_EQ(client_->range(read).error().code(), ErrorCode::kCompacted);
  Watcher watcher = client_->watch(WatchRequest{prefix_ + "k", "", old->header.revision, false});
  auto batch = watcher.next(Clock::now() + 10s);
  ASSERT_FALSE(batch.isOk());
  EXPECT_EQ(batch.error().code(), ErrorCode::kCompacted);
}

TEST_F(EtcdClientTest, TooLargeRequestsAreRefusedCleanly) {
  // A txn over etcd's 1.5 MiB limit is refused before sending by default, and by the server
  // when the client does not check (both kRequestTooLarge, nothing applied); the client goes on
  // working.
  TxnRequest big;
  for (int i = 0; i < 2; ++i) {
    big.success.push_back(
        PutRequest{prefix_ + std::to_string(i), std::string(1 << 20, 'x'), 0, false});
  }
  auto refused = client_->txn(big);
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.error().code(), ErrorCode::kRequestTooLarge);

  auto unchecked = connect(cluster_->clientEndpoints(), /*maxRequestBytes=*/0);
  auto server = unchecked->txn(big);
  ASSERT_FALSE(server.isOk());
  EXPECT_EQ(server.error().code(), ErrorCode::kRequestTooLarge) << server.error().toString();
  auto huge = unchecked->put(PutRequest{prefix_ + "h", std::string(3 << 20, 'x'), 0, false});
  ASSERT_FALSE(huge.isOk());
  EXPECT_EQ(huge.error().code(), ErrorCode::kRequestTooLarge) << huge.error().toString();
  EXPECT_TRUE(client_->range(RangeRequest::prefix(prefix_))->kvs.empty());
  EXPECT_TRUE(unchecked->put(PutRequest{prefix_ + "small", "ok", 0, false}).isOk());
}

TEST_F(EtcdClientTest, NoQuorumIsATypedFailureAndRecovers) {
  // With two members of three killed, a write fails in bounded time with kUnavailable or
  // kTimeout (the survivor has no leader); once they are back it succeeds.
  ASSERT_TRUE(cluster_->kill(1).isOk());
  ASSERT_TRUE(cluster_->kill(2).isOk());
  const auto started = Clock::now();
  auto put = client_->put(PutRequest{prefix_ + "k", "v", 0, false});
  ASSERT_FALSE(put.isOk());
  EXPECT_TRUE(put.error().code() == ErrorCode::kUnavailable ||
              put.error().code() == ErrorCode::kTimeout)
      << put.error().toString();
  EXPECT_LT(Clock::now() - started, 10s);
  ASSERT_TRUE(cluster_->restart(1).isOk());
  ASSERT_TRUE(cluster_->restart(2).isOk());
  auto again = client_->put(PutRequest{prefix_ + "k", "v", 0, false});
  EXPECT_TRUE(again.isOk()) << again.error().toString();
}

TEST_F(EtcdClientTest, MemberStatusNamesOneRaftLeader) {
  // Every member reports the same raft leader and its own id.
  std::set<std::uint64_t> leaders, members;
  for (std::size_t i = 0; i < client_->memberCount(); ++i) {
    auto status = client_->memberStatus(i);
    ASSERT_TRUE(status.isOk()) << status.error().toString();
    EXPECT_EQ(status->version.rfind("3.4", 0), 0u) << status->version;
    EXPECT_GT(status->dbSizeBytes, 0);
    leaders.insert(status->leader);
    members.insert(status->header.memberId);
  }
  EXPECT_EQ(leaders.size(), 1u);
  EXPECT_EQ(members.size(), 3u);
  EXPECT_TRUE(members.count(*leaders.begin()));
  EXPECT_TRUE(client_->alarms()->empty());
}

TEST(EtcdNoSpaceTest, NoSpaceAlarmIsATypedRefusalAndRecoverable) {
  // A cluster with a 4 MiB quota fills up: writes are refused with kNoSpace and the alarm is
  // listed, reads still work; compaction, defragmentation and disarming make writes work again.
  EtcdClusterOptions options;
  options.quotaBackendBytes = 4 << 20;
  auto cluster = EtcdCluster::start(options);
  if (!cluster.isOk() && cluster.status().code() == StatusCode::kNotFound) {
    GTEST_SKIP() << cluster.status().toString();
  }
  ASSERT_TRUE(cluster.isOk()) << cluster.status().toString();
  auto client = connect((*cluster)->clientEndpoints());
  std::optional<Error> refusal;
  std::int64_t lastRevision = 0;
  for (int i = 0; i < 200 && !refusal; ++i) {
    auto put =
        client->put(PutRequest{"/fill/" + std::to_string(i % 4),
                               std::string(256 * 1024, static_cast<char>('a' + i % 26)), 0, false});
    if (put) {
      lastRevision = put->header.revision;
    } else if (put.error().code() != ErrorCode::kTimeout) {  // slow disk under load: go on
      refusal = put.error();
    }
  }
  ASSERT_TRUE(refusal.has_value()) << "4 MiB quota never reached";
  EXPECT_EQ(refusal->code(), ErrorCode::kNoSpace) << refusal->toString();
  auto alarms = client->alarms();
  ASSERT_TRUE(alarms.isOk());
  ASSERT_FALSE(alarms->empty());
  EXPECT_EQ(alarms->at(0).type, AlarmType::kNoSpace);
  EXPECT_EQ(client->put(PutRequest{"/small", "x", 0, false}).error().code(), ErrorCode::kNoSpace);
  EXPECT_TRUE(client->range(RangeRequest::prefix("/fill/")).isOk()) << "reads stop under NOSPACE";
  Status s = client->txn(TxnRequest{{}, {PutRequest{"/t", "x", 0, false}}, {}}).status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.toString();

  // Recovery, as an operator (or vrmd's compactor) does it.
  ASSERT_TRUE(client->compact(lastRevision, /*physical=*/true).isOk());
  for (std::size_t i = 0; i < client->memberCount(); ++i) {
    ASSERT_TRUE(client->defragment(i).isOk());
  }
  // Every member that refused a write raised its own alarm: disarm what is listed now.
  auto raised = client->alarms();
  ASSERT_TRUE(raised.isOk());
  for (const Alarm& alarm : *raised) ASSERT_TRUE(client->disarmAlarm(alarm).isOk());
  EXPECT_TRUE(client->alarms()->empty());
  auto put = client->put(PutRequest{"/small", "x", 0, false});
  EXPECT_TRUE(put.isOk()) << put.error().toString();
}

}  // namespace
}  // namespace vrm::etcd
