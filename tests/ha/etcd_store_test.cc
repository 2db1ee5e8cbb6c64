// vrmd's EtcdStore against a real 3-member etcd cluster: the Store contract of
// vrm/tests/store_test.cc (compiled into this binary with VRM_STORE_TEST_ETCD), then what only
// a replicated store has to get right: a deposed replica writes nothing and says so (fenced
// out), ids never repeat across replicas and restarts, reservations and batches over etcd's
// request limits are committed whole, NOSPACE is a typed error and space can be reclaimed.
#include "vrm/manager/etcd_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "etcd_cluster.h"
#include "shared_cluster.h"
#include "store_test_backend.h"
#include "vrm/etcd/client.h"
#include "vrm/protocol/wire_convert.h"

namespace vrm::manager {
namespace {

using namespace std::chrono_literals;
using testing::StoreBackend;
using testing::StoreBackendFactory;
using testing::StoreContractTest;
using vrm::testing::EtcdCluster;
using Clock = std::chrono::steady_clock;

// One replica's leadership, driven by the test: campaign() elects it with a new lease (after
// earlier holders are gone), revoke() ends it at etcd while source() keeps handing out the old
// fence (a replica that does not know yet), forget() empties source() (one that knows).
class Leadership {
 public:
  Leadership(const std::vector<std::string>& endpoints, std::string name)
      : name_(std::move(name)), fence_(std::make_shared<std::optional<etcd::Fence>>()) {
    etcd::ClientOptions options;
    options.endpoints = endpoints;
    options.callTimeout = 10s;
    client_ = std::move(*etcd::Client::create(options));
  }
  ~Leadership() { revoke(); }

  Status campaign() {
    auto lease = client_->leaseGrant(60);
    if (!lease) return lease.status();
    lease_ = lease->id;
    auto call = client_->startCampaign(name_, lease_, "replica");
    if (!call) return call.status();
    auto key = call->wait(Clock::now() + 20s);
    if (!key) return key.status();
    if (!key->has_value()) return Status::unavailable("not elected within 20 s");
    *fence_ = etcd::Fence{(*key)->key, (*key)->rev, lease_};
    return Status::ok();
  }
  void revoke() {
    if (lease_ != 0) (void)client_->leaseRevoke(lease_);
    lease_ = 0;
  }
  void forget() { fence_->reset(); }
  FenceSource source() const {
    return [fence = fence_] { return *fence; };
  }

 private:
  std::string name_;
  std::unique_ptr<etcd::Client> client_;
  std::int64_t lease_ = 0;
  std::shared_ptr<std::optional<etcd::Fence>> fence_;
};

class EtcdStoreTest : public vrm::testing::SharedEtcdClusterTest {
 public:
  // The shared cluster for the contract tests' backend (started by the first caller).
  static Result<EtcdCluster*> cluster() {
    SetUpTestSuite();
    if (cluster_ == nullptr) return *startError_;
    return cluster_;
  }

 protected:
  void SetUp() override {
    SharedEtcdClusterTest::SetUp();
    if (!ready()) return;
    prefix_ = "/" + testName() + "/";
  }
  std::unique_ptr<Leadership> replica() {
    return std::make_unique<Leadership>(cluster_->clientEndpoints(),
                                        EtcdStore::electionName(prefix_));
  }
  EtcdStoreOptions options() const {
    EtcdStoreOptions o;
    o.client.endpoints = cluster_->clientEndpoints();
    o.client.callTimeout = 10s;
    o.prefix = prefix_;
    return o;
  }
  // Elects `leadership` and opens a store under its fence.
  std::unique_ptr<EtcdStore> openAs(Leadership& leadership) {
    EXPECT_TRUE(leadership.campaign().isOk());
    auto store = EtcdStore::open(options(), leadership.source());
    EXPECT_TRUE(store.isOk()) << store.status().toString();
    return store ? std::move(*store) : nullptr;
  }

  std::string prefix_;
};

// The contract tests' backend: a prefix per test, each open() by a replica elected anew once
// the previous one's lease is revoked (a restart).
class EtcdBackend : public StoreBackend {
 public:
  EtcdBackend(EtcdCluster* cluster, const std::string& test)
      : cluster_(cluster), prefix_("/contract-" + test + "/") {}
  Result<std::unique_ptr<Store>> open() override {
    leadership_.reset();  // revokes the previous replica's lease
    leadership_ =
        std::make_unique<Leadership>(cluster_->clientEndpoints(), EtcdStore::electionName(prefix_));
    if (Status s = leadership_->campaign(); !s) return s;
    EtcdStoreOptions options;
    options.client.endpoints = cluster_->clientEndpoints();
    options.client.callTimeout = 10s;
    options.prefix = prefix_;
    auto store = EtcdStore::open(options, leadership_->source());
    if (!store) return store.status();
    return std::unique_ptr<Store>(std::move(*store));
  }

 private:
  EtcdCluster* cluster_;
  std::string prefix_;
  std::unique_ptr<Leadership> leadership_;
};

INSTANTIATE_TEST_SUITE_P(Store, StoreContractTest,
                         ::testing::Values(StoreBackendFactory{
                             "Etcd",
                             [](const std::string& test) -> Result<std::unique_ptr<StoreBackend>> {
                               auto cluster = EtcdStoreTest::cluster();
                               if (!cluster) return cluster.status();
                               return std::unique_ptr<StoreBackend>(
                                   std::make_unique<EtcdBackend>(*cluster, test));
                             }}),
                         testing::storeBackendName);

Reservation reservation(const std::string& id, const std::string& owner) {
  Reservation r;
  r.id = id;
  r.request.owner = owner;
  r.request.hostCount = 1;
  r.request.startNs = 100;
  r.request.endNs = 200;
  r.state = ReservationState::kAdmitted;
  r.events.push_back({1, ReservationState::kAdmitted, "admitted by " + owner});
  return r;
}

// Ensures a replica deposed at etcd (its lease gone) while it still believes it leads commits
// nothing: its write fails with kFencedOut and so does every later one, and etcd holds only
// what the new leader wrote.
TEST_F(EtcdStoreTest, ADeposedReplicaIsFencedOutAndWritesNothing) {
  auto a = replica();
  auto storeA = openAs(*a);
  ASSERT_NE(storeA, nullptr);
  ASSERT_TRUE(storeA->saveReservation(reservation("r1", "a")).isOk());
  const std::int64_t termA = storeA->term();
  a->revoke();  // deposed at etcd; storeA's source still hands out the old fence
  auto b = replica();
  auto storeB = openAs(*b);
  ASSERT_NE(storeB, nullptr);
  EXPECT_GT(storeB->term(), termA);

  const Status refused = storeA->saveReservation(reservation("r2", "a-deposed"));
  EXPECT_FALSE(refused.isOk());
  EXPECT_EQ(storeA->lastError(), StoreError::kFencedOut) << refused.toString();
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.message().find("fenced out"), std::string::npos) << refused.message();
  EXPECT_EQ(storeA->term(), 0);
  EXPECT_FALSE(storeA->saveObservation(MigrationObservation{}).isOk());
  EXPECT_EQ(storeA->lastError(), StoreError::kFencedOut);

  ASSERT_TRUE(storeB->saveReservation(reservation("r2", "b")).isOk());
  b->revoke();
  auto c = replica();
  auto storeC = openAs(*c);
  ASSERT_NE(storeC, nullptr);
  auto loaded = storeC->loadReservations();
  ASSERT_TRUE(loaded.isOk());
  ASSERT_EQ(loaded->size(), 2u);
  for (const Reservation& r : *loaded) EXPECT_NE(r.request.owner, "a-deposed");
  EXPECT_EQ(*storeC->countEvents("r2"), 1);
  EXPECT_EQ(storeC->loadObservations()->size(), 0u);
}

// Ensures a replica that knows it no longer leads (its election emptied the fence) refuses
// writes locally, and takeOver() in a new term lets it write again.
TEST_F(EtcdStoreTest, NoFenceIsFencedOutUntilTakeOver) {
  auto a = replica();
  auto store = openAs(*a);
  ASSERT_NE(store, nullptr);
  a->forget();
  EXPECT_FALSE(store->saveReservation(reservation("r1", "a")).isOk());
  EXPECT_EQ(store->lastError(), StoreError::kFencedOut);
  EXPECT_FALSE(store->takeOver().isOk());  // still no fence
  a->revoke();
  ASSERT_TRUE(a->campaign().isOk());  // elected again: a new term
  ASSERT_TRUE(store->takeOver().isOk());
  EXPECT_TRUE(store->saveReservation(reservation("r1", "a")).isOk());
  EXPECT_EQ(store->lastError(), StoreError::kNone);
}

// Ensures a commit sent to a cluster that does not answer (every member paused) is
// kOutcomeUnknown, not a crash or a false "not applied", and that the next write first reads
// back from etcd, so ids and the event log go on from what etcd really holds.
TEST_F(EtcdStoreTest, AnUnansweredCommitIsOutcomeUnknownAndReadBack) {
  auto a = replica();
  ASSERT_TRUE(a->campaign().isOk());
  EtcdStoreOptions o = options();
  o.client.attemptTimeout = 300ms;
  o.client.callTimeout = 1s;
  auto opened = EtcdStore::open(o, a->source());
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  auto& store = *opened;
  ASSERT_TRUE(store->saveReservation(reservation(*store->allocateReservationId(), "a")).isOk());
  for (int i = 0; i < cluster_->size(); ++i) ASSERT_TRUE(cluster_->pause(i).isOk());
  const Status unanswered = store->saveReservation(reservation("r2", "a"));
  for (int i = 0; i < cluster_->size(); ++i) ASSERT_TRUE(cluster_->resume(i).isOk());
  EXPECT_FALSE(unanswered.isOk());
  EXPECT_EQ(store->lastError(), StoreError::kOutcomeUnknown) << unanswered.toString();
  for (int i = 0; i < cluster_->size(); ++i) ASSERT_TRUE(cluster_->waitReady(i, 30s).isOk());
  // The request may still have been applied when the members woke (it sat in their socket
  // buffers): either way the id handed out next follows what etcd holds.
  auto id = store->allocateReservationId();
  ASSERT_TRUE(id.isOk()) << id.status().toString();
  const bool applied = store->loadReservations()->size() == 2;
  EXPECT_EQ(*id, applied ? "r3" : "r2");
  std::printf("the unanswered commit was %s\n", applied ? "applied" : "not applied");
  ASSERT_TRUE(store->saveReservation(reservation(*id, "a")).isOk());
  EXPECT_EQ(store->lastError(), StoreError::kNone);
  EXPECT_EQ(*store->countEvents("r2"), 1);
  EXPECT_EQ(store->loadReservations()->size(), applied ? 3u : 2u);
}

// Ensures reservation ids never repeat across replicas and restarts: each leader continues
// from the highest id any earlier leader saved.
TEST_F(EtcdStoreTest, IdsNeverRepeatAcrossReplicasAndRestarts) {
  std::set<std::string> saved;
  for (int term = 0; term < 4; ++term) {
    auto leader = replica();
    auto store = openAs(*leader);
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 3; ++i) {
      auto id = store->allocateReservationId();
      ASSERT_TRUE(id.isOk());
      EXPECT_TRUE(saved.insert(*id).second) << *id << " handed out twice";
      ASSERT_TRUE(store->saveReservation(reservation(*id, "t" + std::to_string(term))).isOk());
    }
    (void)store->allocateReservationId();  // allocated, never saved: may come again
  }
  std::set<std::string> expected;
  for (int i = 1; i <= 12; ++i) expected.insert("r" + std::to_string(i));
  EXPECT_EQ(saved, expected);
}

// Ensures a reservation over etcd's 1.5 MiB request limit and a batch over one transaction
// (more than 128 operations, over 1 MiB) are committed whole, each etcd transaction under the
// client's 1.5 MiB check, and read back whole by the next leader.
TEST_F(EtcdStoreTest, LargeReservationsAndBatchesStayUnderTheRequestLimit) {
  auto a = replica();
  auto store = openAs(*a);
  ASSERT_NE(store, nullptr);
  Reservation big = reservation("r1", "big");
  for (int i = 0; i < 12000; ++i) {
    PlannedMove m;
    m.vmId = "vm-" + std::to_string(i) + std::string(200, 'x');
    m.fromHost = "host-a";
    m.toHost = "host-b";
    big.addMove(MovePurpose::kVacate, m);
  }
  std::vector<Reservation> batch;
  for (int i = 2; i <= 301; ++i) {
    batch.push_back(reservation("r" + std::to_string(i), std::string(8 * 1024, 'o')));
  }
  std::vector<const Reservation*> pointers;
  for (const Reservation& r : batch) pointers.push_back(&r);
  const std::size_t bigBytes = protocol::serializeReservation(big).size();
  EXPECT_GT(bigBytes, 2u << 20);
  std::size_t batchBytes = 0;
  for (const Reservation& r : batch) batchBytes += protocol::serializeReservation(r).size();
  const auto t0 = Clock::now();
  ASSERT_TRUE(store->saveReservation(big).isOk()) << storeErrorName(store->lastError());
  const auto t1 = Clock::now();
  ASSERT_TRUE(store->saveReservations(pointers).isOk()) << storeErrorName(store->lastError());
  const auto t2 = Clock::now();
  const auto ms = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  std::printf(
      "one reservation of %zu bytes: %lld ms; a batch of 300 (%zu bytes): %lld ms; "
      "%lld etcd transactions in all\n",
      bigBytes, static_cast<long long>(ms(t1 - t0)), batchBytes,
      static_cast<long long>(ms(t2 - t1)),
      static_cast<long long>(store->recordStats().transactions));
  EXPECT_GE(store->recordStats().chunkedValues, 1);
  EXPECT_GE(store->recordStats().journalled, 1);
  a->revoke();
  auto b = replica();
  auto next = openAs(*b);
  ASSERT_NE(next, nullptr);
  auto loaded = next->loadReservations();
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  ASSERT_EQ(loaded->size(), 301u);
  for (const Reservation& r : *loaded) {
    if (r.id == "r1") {
      EXPECT_EQ(r.moves.size(), 12000u);
    }
  }
  EXPECT_EQ(*next->countEvents("r301"), 1);
  EXPECT_EQ(*next->allocateReservationId(), "r302");
}

// Ensures etcd's NOSPACE alarm is a typed error, not a crash: with a 4 MiB quota, overwriting a
// large reservation fills etcd with history until a save fails with kNoSpace and applies
// nothing; reclaimSpace() (compact, defragment, disarm) lets the next save pass.
TEST(EtcdStoreNoSpaceTest, NoSpaceIsATypedErrorUntilSpaceIsReclaimed) {
  vrm::testing::EtcdClusterOptions clusterOptions;
  clusterOptions.quotaBackendBytes = 4 << 20;
  auto cluster = EtcdCluster::start(clusterOptions);
  if (!cluster.isOk() && cluster.status().code() == StatusCode::kNotFound) {
    GTEST_SKIP() << cluster.status().toString();
  }
  ASSERT_TRUE(cluster.isOk()) << cluster.status().toString();
  Leadership leadership((*cluster)->clientEndpoints(), EtcdStore::electionName("/vrm/"));
  ASSERT_TRUE(leadership.campaign().isOk());
  EtcdStoreOptions options;
  options.client.endpoints = (*cluster)->clientEndpoints();
  options.client.callTimeout = 10s;
  options.compactEveryCommits = 0;  // let history pile up
  auto opened = EtcdStore::open(options, leadership.source());
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  auto& store = *opened;
  std::optional<Status> refusal;
  std::string lastSaved;
  for (int i = 0; i < 100 && !refusal; ++i) {
    const std::string owner(200 * 1024, static_cast<char>('a' + i % 26));
    const Status s = store->saveReservation(reservation("r1", owner));
    if (s) lastSaved = owner;
    // (A commit that timed out on a slow disk is neither: fill on.)
    if (!s && store->lastError() != StoreError::kOutcomeUnknown) refusal = s;
  }
  ASSERT_TRUE(refusal.has_value()) << "quota never reached";
  EXPECT_EQ(store->lastError(), StoreError::kNoSpace) << refusal->toString();
  EXPECT_EQ(refusal->code(), StatusCode::kUnavailable);
  EXPECT_NE(refusal->message().find("NOSPACE"), std::string::npos) << refusal->message();
  ASSERT_EQ(store->loadReservations()->size(), 1u);
  EXPECT_EQ(store->loadReservations()->at(0).request.owner, lastSaved) << "a refusal applied";
  ASSERT_TRUE(store->reclaimSpace().isOk());
  const Status after = store->saveReservation(reservation("r1", "small"));
  EXPECT_TRUE(after.isOk()) << after.toString();
  EXPECT_EQ(store->lastError(), StoreError::kNone);
}

}  // namespace
}  // namespace vrm::manager
