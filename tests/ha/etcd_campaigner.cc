// etcd_campaigner: one candidate of an election (vrm::etcd::Election) as its own process, so
// that election_test can pause it with SIGSTOP. While it leads it commits a counter to
// --commit-key every --commit-interval-ms, fenced. Each line on stdout is one thing that
// happened (flushed at once):
//
//   elected KEY REV           this process leads (its fence: leader key and create revision)
//   stepped-down REASON
//   leader VALUE              another candidate (or none: empty) leads
//   commit ok REV VALUE       a fenced commit applied at revision REV
//   commit refused CODE       a fenced commit refused (deposed: the fence no longer holds)
//
//   etcd_campaigner --endpoints H:P,... --name NAME --value V [--ttl S] --commit-key K
//                   [--commit-interval-ms MS]
// SIGTERM ends the candidacy (resigning) and exits 0.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "vrm/etcd/client.h"
#include "vrm/etcd/election.h"

namespace {

volatile std::sig_atomic_t gStop = 0;
std::mutex gOut;

void say(const std::string& line) {
  std::lock_guard lock(gOut);
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

int usage() {
  std::fprintf(stderr,
               "usage: etcd_campaigner --endpoints H:P,... --name NAME --value V [--ttl S] "
               "--commit-key K [--commit-interval-ms MS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vrm::etcd;
  std::string endpoints, name, value, commitKey;
  long ttl = 2, intervalMs = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string arg = argv[i + 1];
    if (flag == "--endpoints") {
      endpoints = arg;
    } else if (flag == "--name") {
      name = arg;
    } else if (flag == "--value") {
      value = arg;
    } else if (flag == "--commit-key") {
      commitKey = arg;
    } else if (flag == "--ttl") {
      ttl = std::strtol(arg.c_str(), nullptr, 10);
    } else if (flag == "--commit-interval-ms") {
      intervalMs = std::strtol(arg.c_str(), nullptr, 10);
    } else {
      return usage();
    }
  }
  auto list = splitEndpoints(endpoints);
  if (argc % 2 != 1 || !list || name.empty() || commitKey.empty() || ttl < 1 || intervalMs < 1) {
    return usage();
  }
  std::signal(SIGTERM, [](int) { gStop = 1; });

  ClientOptions clientOptions;
  clientOptions.endpoints = *list;
  clientOptions.attemptTimeout = std::chrono::milliseconds(500);
  clientOptions.callTimeout = std::chrono::milliseconds(1500);
  ElectionOptions options;
  options.name = name;
  options.value = value;
  options.leaseTtl = std::chrono::seconds(ttl);
  auto election = Election::start(clientOptions, options, [](const LeadershipEvent& e) {
    switch (e.kind) {
      case LeadershipEvent::Kind::kElected:
        say("elected " + e.fence->leaderKey + " " + std::to_string(e.fence->revision));
        break;
      case LeadershipEvent::Kind::kSteppedDown:
        say("stepped-down " + e.reason);
        break;
      case LeadershipEvent::Kind::kLeaderChanged:
        say("leader " + e.leaderValue);
        break;
    }
  });
  if (!election) {
    std::fprintf(stderr, "etcd_campaigner: %s\n", election.error().toString().c_str());
    return 1;
  }
  auto client = Client::create(clientOptions);
  if (!client) return 1;
  for (long n = 1; !gStop; ++n) {
    if (const auto fence = (*election)->fence()) {
      TxnRequest txn;
      const std::string v = value + ":" + std::to_string(n);
      txn.success.push_back(PutRequest{commitKey, v, 0, false});
      auto committed = Election::commitFenced(**client, *fence, txn);
      if (committed) {
        say("commit ok " + std::to_string(committed->header.revision) + " " + v);
      } else {
        say(std::string("commit refused ") + errorCodeName(committed.error().code()));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(intervalMs));
  }
  (*election)->stop();
  return 0;
}
