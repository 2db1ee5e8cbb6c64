// vrm::etcd::Election against a real 3-member etcd cluster: one leader at a time, handover on
// stop, a leader that loses its etcd member (paused) or its network (a TCP proxy cut) steps down
// before anyone else leads, a leader process paused past its lease (SIGSTOP) commits nothing
// after another took over, and a deposed leader's fence is refused. The lease TTL is etcd's
// minimum with the harness's timing (2 s); the waits are bounded by it, not sleeps for order.
#include "vrm/etcd/election.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "child_process.h"
#include "etcd_cluster.h"
#include "shared_cluster.h"
#include "vrm/etcd/client.h"

namespace vrm::etcd {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::EtcdCluster;
using testing::EtcdClusterOptions;
using testing::TcpProxy;
using Clock = std::chrono::steady_clock;
using Kind = LeadershipEvent::Kind;

constexpr auto kTtl = 2s;

// Records a candidate's events; another candidate may be asked whether it leads at the moment
// each kElected arrives (`rival`).
class Recorder {
 public:
  Election::Listener listener() {
    return [this](const LeadershipEvent& e) {
      std::lock_guard lock(mu_);
      if (e.kind == Kind::kElected && rival_ != nullptr) rivalLeadingAtElection_ |= rival_();
      events_.push_back(e);
      changed_.notify_all();
    };
  }
  void watchRival(std::function<bool()> rivalLeads) {
    std::lock_guard lock(mu_);
    rival_ = std::move(rivalLeads);
  }
  // The first event of `kind` from index `from` on, within `timeout`.
  std::optional<LeadershipEvent> waitFor(Kind kind, std::chrono::milliseconds timeout,
                                         std::size_t from = 0,
                                         const std::string& leaderValue = "") {
    std::unique_lock lock(mu_);
    std::optional<LeadershipEvent> found;
    changed_.wait_for(lock, timeout, [&] {
      for (std::size_t i = from; i < events_.size(); ++i) {
        if (events_[i].kind == kind &&
            (leaderValue.empty() || events_[i].leaderValue == leaderValue)) {
          found = events_[i];
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return events_.size();
  }
  int count(Kind kind) const {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& e : events_) n += e.kind == kind;
    return n;
  }
  bool rivalLeadingAtElection() const {
    std::lock_guard lock(mu_);
    return rivalLeadingAtElection_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<LeadershipEvent> events_;
  std::function<bool()> rival_;
  bool rivalLeadingAtElection_ = false;
};

class ElectionTest : public testing::SharedEtcdClusterTest {
 protected:
  void SetUp() override {
    SharedEtcdClusterTest::SetUp();
    if (!ready()) return;
    name_ = "/" + testName() + "/leader";
    client_ = std::move(*Client::create(clientOptions(cluster_->clientEndpoints())));
  }

  static ClientOptions clientOptions(std::vector<std::string> endpoints) {
    ClientOptions o;
    o.endpoints = std::move(endpoints);
    o.attemptTimeout = 500ms;
    o.callTimeout = 2s;
    return o;
  }
  std::unique_ptr<Election> candidate(const std::vector<std::string>& endpoints,
                                      const std::string& value, Recorder& recorder) {
    ElectionOptions options;
    options.name = name_;
    options.value = value;
    options.leaseTtl = kTtl;
    auto e = Election::start(clientOptions(endpoints), options, recorder.listener());
    EXPECT_TRUE(e.isOk()) << e.error().toString();
    return std::move(*e);
  }
  // A member that is not raft's leader (pausing or killing it leaves etcd's quorum alone).
  int follower() {
    auto status = client_->memberStatus(0);
    EXPECT_TRUE(status.isOk());
    for (int i = 0; i < cluster_->size(); ++i) {
      auto s = client_->memberStatus(i);
      if (s && s->header.memberId != status->leader) return i;
    }
    return -1;
  }
  std::vector<std::string> othersThan(int member) {
    std::vector<std::string> out;
    for (int i = 0; i < cluster_->size(); ++i) {
      if (i != member) out.push_back(cluster_->clientEndpoint(i));
    }
    return out;
  }
  Result<TxnResponse> commitAs(const Fence& fence, const std::string& value) {
    TxnRequest txn;
    txn.success.push_back(PutRequest{name_ + "-data", value, 0, false});
    return Election::commitFenced(*client_, fence, txn);
  }

  std::string name_;
  std::unique_ptr<Client> client_;
};

TEST_F(ElectionTest, OneLeaderAndHandoverOnStop) {
  // The first candidate leads and the second follows it (knowing its value); when the leader
  // stops, its lease is revoked and the follower leads well before the TTL would have run out.
  Recorder ra, rb;
  auto a = candidate(cluster_->clientEndpoints(), "A", ra);
  ASSERT_TRUE(ra.waitFor(Kind::kElected, 10s));
  auto b = candidate(cluster_->clientEndpoints(), "B", rb);
  rb.watchRival([&] { return a->isLeader(); });
  ASSERT_TRUE(rb.waitFor(Kind::kLeaderChanged, 5s, 0, "A")) << "B never learned that A leads";
  EXPECT_TRUE(a->isLeader());
  EXPECT_FALSE(b->isLeader());
  EXPECT_EQ(b->leaderValue(), "A");
  ASSERT_TRUE(commitAs(*a->fence(), "A").isOk());

  const Fence fenceA = *a->fence();
  a->stop();
  EXPECT_FALSE(a->isLeader());
  // stop() revoked A's lease: its key is gone now, not at the TTL's end.
  auto keys = client_->range(RangeRequest::single(fenceA.leaderKey));
  ASSERT_TRUE(keys.isOk());
  EXPECT_TRUE(keys->kvs.empty()) << "A's key outlived stop()";
  ASSERT_TRUE(rb.waitFor(Kind::kElected, 10s)) << "B never led after A stopped";
  EXPECT_FALSE(rb.rivalLeadingAtElection());
  EXPECT_TRUE(ra.waitFor(Kind::kSteppedDown, 1s));
  auto refused = commitAs(fenceA, "A after stop");
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.error().code(), ErrorCode::kDeposed);
  ASSERT_TRUE(commitAs(*b->fence(), "B").isOk());
}

TEST_F(ElectionTest, FollowerStopWithdrawsItsKey) {
  // A follower that stops leaves the queue: only the leader's key remains.
  Recorder ra, rb;
  auto a = candidate(cluster_->clientEndpoints(), "A", ra);
  ASSERT_TRUE(ra.waitFor(Kind::kElected, 10s));
  auto b = candidate(cluster_->clientEndpoints(), "B", rb);
  ASSERT_TRUE(rb.waitFor(Kind::kLeaderChanged, 5s, 0, "A"));
  b->stop();
  auto keys = client_->range(RangeRequest::prefix(name_ + "/"));
  ASSERT_TRUE(keys.isOk());
  EXPECT_EQ(keys->kvs.size(), 1u);
  EXPECT_TRUE(a->isLeader());
}

TEST_F(ElectionTest, LeaderSurvivesTheLossOfItsMember) {
  // Killing the member the leader's client talks to (not raft's leader) moves its renewals to
  // another member: it never steps down and its fence stays valid.
  const int f = follower();
  ASSERT_GE(f, 0);
  std::vector<std::string> endpoints = {cluster_->clientEndpoint(f)};
  for (const auto& e : othersThan(f)) endpoints.push_back(e);
  Recorder ra;
  auto a = candidate(endpoints, "A", ra);
  ASSERT_TRUE(ra.waitFor(Kind::kElected, 10s));
  const Fence fence = *a->fence();
  ASSERT_TRUE(cluster_->kill(f).isOk());
  // Two TTLs: renewals must have gone elsewhere for the lease to live.
  EXPECT_FALSE(ra.waitFor(Kind::kSteppedDown, 2 * kTtl)) << "stepped down after losing a member";
  ASSERT_TRUE(a->isLeader());
  EXPECT_EQ(a->fence()->revision, fence.revision);
  EXPECT_TRUE(commitAs(fence, "A").isOk());
  ASSERT_TRUE(cluster_->restart(f).isOk());
}

TEST_F(ElectionTest, LeaderCutOffByAPausedMemberStepsDownBeforeAnotherLeads) {
  // A reaches etcd only through member p; p is paused (SIGSTOP) past A's lease. A steps down
  // by its own clock; B, which reaches the others, leads only after that; once p continues, A
  // follows B and its old fence is refused.
  const int p = follower();
  ASSERT_GE(p, 0);
  Recorder ra, rb;
  auto a = candidate({cluster_->clientEndpoint(p)}, "A", ra);
  ASSERT_TRUE(ra.waitFor(Kind::kElected, 10s));
  const Fence fenceA = *a->fence();
  auto b = candidate(othersThan(p), "B", rb);
  rb.watchRival([&] { return a->isLeader(); });
  ASSERT_TRUE(rb.waitFor(Kind::kLeaderChanged, 5s, 0, "A"));

  ASSERT_TRUE(cluster_->pause(p).isOk());
  ASSERT_TRUE(ra.waitFor(Kind::kSteppedDown, kTtl + 2s)) << "A kept leading without renewals";
  EXPECT_FALSE(a->isLeader());
  ASSERT_TRUE(rb.waitFor(Kind::kElected, kTtl + 8s)) << "B never led";
  EXPECT_FALSE(rb.rivalLeadingAtElection()) << "two leaders at once";
  ASSERT_TRUE(cluster_->resume(p).isOk());

  const std::size_t seen = ra.size();
  ASSERT_TRUE(ra.waitFor(Kind::kLeaderChanged, 10s, seen, "B")) << "A never followed B";
  EXPECT_FALSE(a->isLeader());
  auto refused = commitAs(fenceA, "A");
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.error().code(), ErrorCode::kDeposed);
  EXPECT_TRUE(commitAs(*b->fence(), "B").isOk());
}

TEST_F(ElectionTest, PartitionedLeaderStepsDownBeforeAnotherLeads) {
  // A talks to etcd through a TCP proxy that is cut: its renewals time out, it steps down at
  // its lease's deadline, then B leads; after the heal A follows B.
  auto proxy = TcpProxy::start(TCP_PROXY_PATH, cluster_->clientPort(0));
  ASSERT_TRUE(proxy.isOk()) << proxy.status().toString();
  Recorder ra, rb;
  auto a = candidate({(*proxy)->endpoint()}, "A", ra);
  ASSERT_TRUE(ra.waitFor(Kind::kElected, 10s));
  const Fence fenceA = *a->fence();
  auto b = candidate(othersThan(0), "B", rb);
  rb.watchRival([&] { return a->isLeader(); });
  ASSERT_TRUE(rb.waitFor(Kind::kLeaderChanged, 5s, 0, "A"));

  (*proxy)->partition();
  ASSERT_TRUE(ra.waitFor(Kind::kSteppedDown, kTtl + 2s)) << "A kept leading when cut off";
  ASSERT_TRUE(rb.waitFor(Kind::kElected, kTtl + 8s)) << "B never led";
  EXPECT_FALSE(rb.rivalLeadingAtElection()) << "two leaders at once";
  (*proxy)->reset();  // TCP gave up on the long partition
  (*proxy)->heal();

  const std::size_t seen = ra.size();
  ASSERT_TRUE(ra.waitFor(Kind::kLeaderChanged, 10s, seen, "B")) << "A never followed B";
  EXPECT_EQ(commitAs(fenceA, "A").error().code(), ErrorCode::kDeposed);
}

TEST_F(ElectionTest, LeaderProcessPausedPastItsLeaseCommitsNothingAfterWaking) {
  // A leader in its own process, committing fenced every 50 ms, is stopped (SIGSTOP) past its
  // lease; B leads and commits. A continues: it steps down at once, and neither its output nor
  // etcd's history shows a commit of A at or after B's term began.
  const std::string key = name_ + "-data";
  auto a = ChildProcess::start({CAMPAIGNER_PATH, "--endpoints", cluster_->endpointList(), "--name",
                                name_, "--value", "A", "--ttl", "2", "--commit-key", key,
                                "--commit-interval-ms", "50"});
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  auto starts = [](const char* prefix) {
    return [prefix](const std::string& l) { return l.rfind(prefix, 0) == 0; };
  };
  ASSERT_GE((*a)->waitForLine(starts("elected "), 0, 10s), 0);
  ASSERT_GE((*a)->waitForLine(starts("commit ok "), 0, 5s), 0);
  const std::string elected = (*a)->lines()[(*a)->waitForLine(starts("elected "), 0, 0s)];
  const Fence fenceA{elected.substr(8, elected.rfind(' ') - 8),
                     std::stoll(elected.substr(elected.rfind(' ') + 1)), 0};

  Recorder rb;
  auto b = candidate(cluster_->clientEndpoints(), "B", rb);
  ASSERT_TRUE(rb.waitFor(Kind::kLeaderChanged, 5s, 0, "A"));
  (*a)->signal(SIGSTOP);
  const std::size_t pausedAt = (*a)->lines().size();
  auto electedB = rb.waitFor(Kind::kElected, kTtl + 8s);
  ASSERT_TRUE(electedB) << "B never led while A was stopped";
  const std::int64_t termB = electedB->fence->revision;
  ASSERT_TRUE(commitAs(*electedB->fence, "B:1").isOk());
  (*a)->signal(SIGCONT);
  const int down = (*a)->waitForLine(starts("stepped-down "), pausedAt, 5s);
  ASSERT_GE(down, 0) << "A did not step down after waking";
  ASSERT_GE((*a)->waitForLine(starts("leader B"), pausedAt, 10s), 0) << "A never followed B";
  ASSERT_TRUE(commitAs(*b->fence(), "B:2").isOk());

  // A's own account: every commit it saw applied predates B's term.
  for (const std::string& line : (*a)->lines()) {
    if (line.rfind("commit ok ", 0) != 0) continue;
    EXPECT_LT(std::stoll(line.substr(10)), termB) << line;
  }
  // etcd's account: in the key's history no A value follows a B value.
  Watcher history = client_->watch(WatchRequest{key, "", 1, false});
  std::vector<std::string> values;
  while (values.empty() || values.back() != "B:2") {
    auto batch = history.next(Clock::now() + 5s);
    ASSERT_TRUE(batch.isOk()) << batch.error().toString();
    ASSERT_TRUE(batch->has_value()) << "history ended early";
    for (const Event& e : (*batch)->events) values.push_back(e.kv.value);
  }
  bool seenB = false;
  for (const std::string& v : values) {
    seenB |= v[0] == 'B';
    EXPECT_FALSE(seenB && v[0] == 'A') << "A committed " << v << " after B's term began";
  }
  EXPECT_EQ(commitAs(fenceA, "A late").error().code(), ErrorCode::kDeposed);
  (*a)->signal(SIGTERM);
  EXPECT_EQ((*a)->wait(10s), 0);
}

TEST(ElectionOptionsTest, BadOptionsAreInvalidArguments) {
  // No name, a TTL under a second, an interval that does not fit in the TTL.
  ClientOptions client;
  client.endpoints = {"127.0.0.1:1"};
  ElectionOptions o;
  EXPECT_EQ(Election::start(client, o, nullptr).error().code(), ErrorCode::kInvalidArgument);
  o.name = "/x";
  o.leaseTtl = 0s;
  EXPECT_EQ(Election::start(client, o, nullptr).error().code(), ErrorCode::kInvalidArgument);
  o.leaseTtl = 2s;
  o.renewInterval = 2s;
  EXPECT_EQ(Election::start(client, o, nullptr).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vrm::etcd
