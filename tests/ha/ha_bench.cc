// ha_bench: figures for the README's HA section, measured on a real etcd cluster the program
// starts itself (tests/ha/etcd_cluster.h; data under $TMPDIR, on disk, so fsyncs are real).
//
//   ha_bench commit [--ops N] [--value-bytes B] [--batch K]
//       N commits of one B-byte record (a reservation's encoding is ~2 KiB) through
//       RecordStore, fenced, one at a time; then the same records in batches of K; then the
//       same N single-record commits to SQLite as vrmd's store makes them (WAL,
//       synchronous=FULL, one transaction each). Latency p50 / p99 / max and commits per second.
//   ha_bench store [--ops N] [--moves M]
//       What one admission costs vrmd's store: N times, allocate an id and save a new
//       reservation (M planned moves, one event) through EtcdStore (fenced, on the cluster) and
//       through SqliteStore (a file under $TMPDIR). Latency of the save p50 / p99 / max.
//   ha_bench failover [--rounds N] [--ttl S]
//       Three candidates (etcd_campaigner processes) on one election; each round kill -9 the
//       leader and time until another prints "elected"; a new candidate replaces the dead one.
//       Time from the kill to the new leader, p50 / max.
//
// Prints one line per figure; run it by hand (it is smoke-tested by ctest with tiny counts).
#include <signal.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "etcd_cluster.h"
#include "vrm/etcd/client.h"
#include "vrm/etcd/election.h"
#include "vrm/etcd/record_store.h"
#include "vrm/manager/etcd_store.h"
#include "vrm/manager/store.h"
#include "vrm/protocol/wire_convert.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using vrm::testing::ChildProcess;
using vrm::testing::EtcdCluster;
using vrm::testing::EtcdClusterOptions;
namespace etcd = vrm::etcd;

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void report(const char* what, std::vector<double> latenciesMs, double seconds, long records) {
  std::sort(latenciesMs.begin(), latenciesMs.end());
  auto at = [&](double q) {
    return latenciesMs[std::min(latenciesMs.size() - 1,
                                static_cast<std::size_t>(q * latenciesMs.size()))];
  };
  std::printf("%-34s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  %8.1f records/s\n", what, at(0.5),
              at(0.99), latenciesMs.back(), records / seconds);
}

// 0 with a running cluster, or the exit status (77: etcd is not installed).
int startCluster(std::unique_ptr<EtcdCluster>* out) {
  auto cluster = EtcdCluster::start(EtcdClusterOptions{});
  if (!cluster.isOk()) {
    std::fprintf(stderr, "ha_bench: %s\n", cluster.status().toString().c_str());
    return cluster.status().code() == vrm::StatusCode::kNotFound ? 77 : 1;
  }
  *out = std::move(*cluster);
  return 0;
}

long flag(int argc, char** argv, const char* name, long fallback) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == name) return std::strtol(argv[i + 1], nullptr, 10);
  }
  return fallback;
}

int commitBench(int argc, char** argv) {
  const long ops = flag(argc, argv, "--ops", 500);
  const long valueBytes = flag(argc, argv, "--value-bytes", 2048);
  const long batch = flag(argc, argv, "--batch", 16);
  std::unique_ptr<EtcdCluster> cluster;
  if (const int rc = startCluster(&cluster); rc != 0) return rc;
  etcd::ClientOptions options;
  options.endpoints = cluster->clientEndpoints();
  auto client = std::move(*etcd::Client::create(options));
  auto lease = client->leaseGrant(60);
  auto campaign = client->startCampaign("/bench/leader", lease->id, "bench");
  const auto key = **campaign->wait(Clock::now() + 10s);
  const etcd::Fence fence{key.key, key.rev, lease->id};
  etcd::RecordStoreOptions storeOptions;
  storeOptions.prefix = "/bench/data/";
  auto store = std::move(*etcd::RecordStore::create(client.get(), storeOptions));
  if (!store->load()) return 1;
  const std::string value(static_cast<std::size_t>(valueBytes), 'r');

  std::vector<double> latencies;
  auto started = Clock::now();
  for (long i = 0; i < ops; ++i) {
    const auto t = Clock::now();
    if (!store->commit(fence, {etcd::Mutation::put("r" + std::to_string(i), value)})) {
      std::fprintf(stderr, "ha_bench: commit failed\n");
      return 1;
    }
    latencies.push_back(ms(Clock::now() - t));
  }
  report("etcd, 1 record per commit", latencies,
         std::chrono::duration<double>(Clock::now() - started).count(), ops);

  latencies.clear();
  started = Clock::now();
  for (long i = 0; i < ops; i += batch) {
    std::vector<etcd::Mutation> mutations;
    for (long k = i; k < std::min(ops, i + batch); ++k) {
      mutations.push_back(etcd::Mutation::put("b" + std::to_string(k), value));
    }
    const auto t = Clock::now();
    if (!store->commit(fence, mutations)) return 1;
    latencies.push_back(ms(Clock::now() - t));
  }
  const std::string batched = "etcd, " + std::to_string(batch) + " records per commit";
  report(batched.c_str(), latencies, std::chrono::duration<double>(Clock::now() - started).count(),
         ops);

  // SQLite as vrmd's Store uses it: WAL, synchronous=FULL, one transaction per save.
  const std::string path = cluster->dir() + "/bench.db";
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
               "CREATE TABLE r (id TEXT PRIMARY KEY, data BLOB);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO r VALUES (?, ?)", -1, &insert, nullptr);
  latencies.clear();
  started = Clock::now();
  for (long i = 0; i < ops; ++i) {
    const auto t = Clock::now();
    const std::string id = "r" + std::to_string(i);
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_bind_text(insert, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(insert, 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    sqlite3_step(insert);
    sqlite3_reset(insert);
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return 1;
    latencies.push_back(ms(Clock::now() - t));
  }
  report("sqlite, 1 record per commit", latencies,
         std::chrono::duration<double>(Clock::now() - started).count(), ops);
  sqlite3_finalize(insert);
  sqlite3_close(db);
  return 0;
}

int failoverBench(int argc, char** argv) {
  const long rounds = flag(argc, argv, "--rounds", 20);
  const long ttl = flag(argc, argv, "--ttl", 3);
  std::unique_ptr<EtcdCluster> cluster;
  if (const int rc = startCluster(&cluster); rc != 0) return rc;
  int next = 0;
  auto spawn = [&] {
    const std::string value = "c" + std::to_string(next++);
    auto child =
        ChildProcess::start({CAMPAIGNER_PATH, "--endpoints", cluster->endpointList(), "--name",
                             "/bench/leader", "--value", value, "--ttl", std::to_string(ttl),
                             "--commit-key", "/bench/data", "--commit-interval-ms", "200"});
    return std::move(*child);
  };
  std::vector<std::unique_ptr<ChildProcess>> candidates;
  for (int i = 0; i < 3; ++i) candidates.push_back(spawn());
  auto elected = [](const std::string& l) { return l.rfind("elected ", 0) == 0; };
  std::vector<double> times;
  for (long round = 0; round < rounds; ++round) {
    // The leader: the candidate whose last elected line is not followed by a step-down.
    int leader = -1;
    const auto deadline = Clock::now() + 30s;
    while (leader < 0 && Clock::now() < deadline) {
      for (std::size_t i = 0; i < candidates.size(); ++i) {
        const auto lines = candidates[i]->lines();
        for (const std::string& l : lines) {
          if (elected(l)) leader = static_cast<int>(i);
          if (l.rfind("stepped-down", 0) == 0 && leader == static_cast<int>(i)) leader = -1;
        }
        if (leader >= 0) break;
      }
      if (leader < 0) std::this_thread::sleep_for(10ms);
    }
    if (leader < 0) return 1;
    std::vector<std::size_t> seen;
    for (const auto& c : candidates) seen.push_back(c->lines().size());
    // Somewhere in the renewal period, so the figure covers the whole lease.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::rand() % (ttl * 1000 / 3)));
    const auto killed = Clock::now();
    candidates[leader]->signal(SIGKILL);
    double took = -1;
    while (took < 0 && Clock::now() - killed < 30s) {
      for (std::size_t i = 0; i < candidates.size() && took < 0; ++i) {
        if (static_cast<int>(i) == leader) continue;
        if (candidates[i]->waitForLine(elected, seen[i], 5ms) >= 0) {
          took = ms(Clock::now() - killed);
        }
      }
    }
    if (took < 0) return 1;
    times.push_back(took);
    candidates[leader] = spawn();
  }
  std::sort(times.begin(), times.end());
  std::printf(
      "failover (TTL %ld s, %ld rounds): kill -9 of the leader to a new leader: "
      "p50 %.0f ms, max %.0f ms\n",
      ttl, rounds, times[times.size() / 2], times.back());
  return 0;
}

// A reservation as admission saves it: a plan of `moves` moves and its first event.
vrm::Reservation admitted(const std::string& id, long moves) {
  vrm::Reservation r;
  r.id = id;
  r.request.owner = "lab";
  r.request.hostCount = 2;
  r.request.startNs = 1'000'000'000;
  r.request.endNs = 2'000'000'000;
  r.request.templateName = "bmi";
  r.state = vrm::ReservationState::kAdmitted;
  r.hosts = {"node-0001", "node-0002"};
  for (long i = 0; i < moves; ++i) {
    vrm::PlannedMove m;
    m.vmId = "vm-" + std::to_string(i);
    m.fromHost = "node-0001";
    m.toHost = "node-" + std::to_string(100 + i);
    m.endOffsetNs = 30'000'000'000;
    r.addMove(vrm::MovePurpose::kVacate, m);
  }
  r.events.push_back({1, vrm::ReservationState::kAdmitted, "admitted"});
  return r;
}

// N admissions' saves on `store`; false when one fails.
bool saveAdmissions(vrm::manager::Store& store, const char* what, long ops, long moves) {
  std::vector<double> latencies;
  const auto begin = Clock::now();
  for (long i = 0; i < ops; ++i) {
    auto id = store.allocateReservationId();
    if (!id) return false;
    const vrm::Reservation r = admitted(*id, moves);
    const auto t0 = Clock::now();
    if (vrm::Status s = store.saveReservation(r); !s) {
      std::fprintf(stderr, "ha_bench: %s: %s\n", what, s.toString().c_str());
      return false;
    }
    latencies.push_back(ms(Clock::now() - t0));
  }
  report(what, latencies, std::chrono::duration<double>(Clock::now() - begin).count(), ops);
  return true;
}

int storeBench(int argc, char** argv) {
  const long ops = flag(argc, argv, "--ops", 500);
  const long moves = flag(argc, argv, "--moves", 8);
  std::unique_ptr<EtcdCluster> cluster;
  if (int rc = startCluster(&cluster); rc != 0) return rc;
  std::printf("a reservation of %zu bytes (%ld moves)\n",
              vrm::protocol::serializeReservation(admitted("r1", moves)).size(), moves);
  auto client = etcd::Client::create({cluster->clientEndpoints()});
  auto lease = (*client)->leaseGrant(60);
  auto campaign =
      (*client)->startCampaign(vrm::manager::EtcdStore::electionName("/vrm/"), lease->id, "bench");
  auto key = campaign->wait(Clock::now() + 10s);
  if (!key || !key->has_value()) return 1;
  const etcd::Fence fence{(*key)->key, (*key)->rev, lease->id};
  vrm::manager::EtcdStoreOptions options;
  options.client.endpoints = cluster->clientEndpoints();
  auto store = vrm::manager::EtcdStore::open(options, [fence] { return fence; });
  if (!store) {
    std::fprintf(stderr, "ha_bench: %s\n", store.status().toString().c_str());
    return 1;
  }
  if (!saveAdmissions(**store, "EtcdStore, one admission's save", ops, moves)) return 1;
  const std::string path = cluster->dir() + "/bench-store.db";
  auto sqlite = vrm::manager::Store::open(path);
  if (!sqlite || !saveAdmissions(**sqlite, "SqliteStore, one admission's save", ops, moves)) {
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "commit") return commitBench(argc, argv);
  if (mode == "failover") return failoverBench(argc, argv);
  if (mode == "store") return storeBench(argc, argv);
  std::fprintf(stderr, "usage: ha_bench commit|store|failover [options] (see the source)\n");
  return 2;
}
