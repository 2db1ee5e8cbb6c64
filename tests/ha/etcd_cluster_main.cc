// etcd_cluster: the test harness of etcd_cluster.h for shell scripts. The cluster's state lives
// in its directory between invocations; members run detached until `stop`.
//
//   etcd_cluster start [--root DIR] [--members N] [--quota-backend-bytes B]
//                      [--heartbeat-ms MS] [--election-ms MS]   prints the cluster's directory
//   etcd_cluster endpoints DIR             "127.0.0.1:P1,127.0.0.1:P2,..."
//   etcd_cluster endpoint DIR I            "127.0.0.1:P" of member I (0-based)
//   etcd_cluster status DIR                one line per member: name endpoint pid state
//   etcd_cluster kill|term|restart|pause|resume DIR I
//   etcd_cluster wait-ready DIR I [SECONDS]
//   etcd_cluster stop DIR                  stops every member and removes DIR
//
// Exit status: 0 done, 1 failed (the reason on stderr), 2 usage, 77 etcd is not installed.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "etcd_cluster.h"

namespace {

using vrm::Status;
using vrm::testing::EtcdCluster;
using vrm::testing::EtcdClusterOptions;

int usage() {
  std::fprintf(stderr,
               "usage: etcd_cluster start [--root DIR] [--members N] [--quota-backend-bytes B] "
               "[--heartbeat-ms MS] [--election-ms MS]\n"
               "       etcd_cluster endpoints|status|stop DIR\n"
               "       etcd_cluster endpoint|kill|term|restart|pause|resume DIR I\n"
               "       etcd_cluster wait-ready DIR I [SECONDS]\n");
  return 2;
}

int fail(const Status& s) {
  std::fprintf(stderr, "etcd_cluster: %s\n", s.toString().c_str());
  return s.code() == vrm::StatusCode::kNotFound ? 77 : 1;
}

bool parseInt(const std::string& text, long long* out) {
  char* end = nullptr;
  *out = std::strtoll(text.c_str(), &end, 10);
  return !text.empty() && end != nullptr && *end == '\0';
}

int start(const std::vector<std::string>& args) {
  EtcdClusterOptions options;
  options.dieWithParent = false;
  options.keepData = true;
  for (std::size_t i = 0; i < args.size(); i += 2) {
    if (i + 1 >= args.size()) return usage();
    long long value = 0;
    const bool numeric = parseInt(args[i + 1], &value);
    if (args[i] == "--root") {
      options.dataRoot = args[i + 1];
    } else if (args[i] == "--members" && numeric && value >= 1 && value <= 9) {
      options.members = static_cast<int>(value);
    } else if (args[i] == "--quota-backend-bytes" && numeric && value >= 0) {
      options.quotaBackendBytes = value;
    } else if (args[i] == "--heartbeat-ms" && numeric && value > 0) {
      options.heartbeatMs = static_cast<int>(value);
    } else if (args[i] == "--election-ms" && numeric && value > 0) {
      options.electionMs = static_cast<int>(value);
    } else {
      return usage();
    }
  }
  auto cluster = EtcdCluster::start(options);
  if (!cluster.isOk()) return fail(cluster.status());
  if (Status s = (*cluster)->save(); !s.isOk()) {
    (*cluster)->stopAll();
    return fail(s);
  }
  (*cluster)->detach();
  std::cout << (*cluster)->dir() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage();
  const std::string command = args[0];
  if (command == "start") return start({args.begin() + 1, args.end()});
  if (args.size() < 2) return usage();
  auto attached = EtcdCluster::attach(args[1]);
  if (!attached.isOk()) return fail(attached.status());
  EtcdCluster& cluster = **attached;

  if (command == "endpoints" && args.size() == 2) {
    std::cout << cluster.endpointList() << std::endl;
    return 0;
  }
  if (command == "status" && args.size() == 2) {
    for (int i = 0; i < cluster.size(); ++i) {
      std::cout << "m" << i << " " << cluster.clientEndpoint(i) << " " << cluster.pid(i) << " "
                << (cluster.running(i) ? "running" : "down") << "\n";
    }
    return 0;
  }
  if (command == "stop" && args.size() == 2) {
    cluster.stopAll();
    std::error_code ignored;
    std::filesystem::remove_all(cluster.dir(), ignored);
    return 0;
  }
  long long member = -1;
  if (args.size() < 3 || !parseInt(args[2], &member) || member < 0 || member >= cluster.size()) {
    return usage();
  }
  const int i = static_cast<int>(member);
  if (command == "endpoint" && args.size() == 3) {
    std::cout << cluster.clientEndpoint(i) << std::endl;
    return 0;
  }
  Status s = Status::invalid("unknown command " + command);
  if (command == "wait-ready" && args.size() <= 4) {
    long long seconds = 30;
    if (args.size() == 4 && (!parseInt(args[3], &seconds) || seconds <= 0)) return usage();
    s = cluster.waitReady(i, std::chrono::seconds(seconds));
  } else if (args.size() != 3) {
    return usage();
  } else if (command == "kill") {
    s = cluster.kill(i);
  } else if (command == "term") {
    s = cluster.stop(i);
  } else if (command == "restart") {
    s = cluster.restart(i);
  } else if (command == "pause") {
    s = cluster.pause(i);
  } else if (command == "resume") {
    s = cluster.resume(i);
  } else {
    return usage();
  }
  if (s.isOk()) s = cluster.save();
  return s.isOk() ? 0 : fail(s);
}
