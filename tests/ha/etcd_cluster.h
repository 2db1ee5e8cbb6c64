// A real etcd cluster on loopback for tests: N members of Debian's etcd-server (3.4), ports
// chosen by the OS, data in a temporary directory; members can be killed, stopped, restarted,
// paused (SIGSTOP) and resumed. Used from GoogleTest (construct one in a fixture) and from shell
// scripts through the etcd_cluster program (etcd_cluster_main.cc), which keeps the cluster's
// state in its directory between invocations.
//
// Ports: etcd cannot bind port 0, so the harness binds sockets to port 0, reads the ports the OS
// gave, closes them and hands them to etcd. Another process may take one in between: a member
// that then fails to bind is detected and the whole cluster is started again on new ports (up
// to `startAttempts` times).
//
// Processes: members started by a test die with it (PR_SET_PDEATHSIG; start and restart them
// from the thread that owns the EtcdCluster). Members started by the etcd_cluster program
// outlive it (detached) until `etcd_cluster stop`. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vrm/protocol/status.h"

namespace vrm::testing {

struct EtcdClusterOptions {
  int members = 3;
  // etcd's --quota-backend-bytes; 0 = etcd's default (2 GiB). A small one makes NOSPACE easy.
  std::int64_t quotaBackendBytes = 0;
  // etcd's raft timing (its defaults). Faster settings flap on a loaded 2-core machine.
  int heartbeatMs = 100;
  int electionMs = 1000;
  // Parent of the data directory; empty = $VRM_ETCD_DATA_ROOT, else $TMPDIR, else /tmp.
  std::string dataRoot;
  std::string etcdBinary = "etcd";
  int startAttempts = 5;
  std::chrono::milliseconds readyTimeout{30000};
  // Members die with the process that started them (tests); false for the CLI.
  bool dieWithParent = true;
  // Keep the data directory when the cluster is destroyed (also: VRM_KEEP_ETCD_DATA=1).
  bool keepData = false;
};

class EtcdCluster {
 public:
  // Starts every member and waits until each has a raft leader. A missing etcd binary is
  // not-found (tests skip on it); anything else that fails names the member and quotes its log.
  static Result<std::unique_ptr<EtcdCluster>> start(EtcdClusterOptions options);
  // Loads a cluster that the etcd_cluster program started in `dir` (its cluster.state).
  static Result<std::unique_ptr<EtcdCluster>> attach(const std::string& dir);
  // Stops every member it started (SIGKILL after 5 s of SIGTERM) and removes the data, unless
  // attached or told to keep it.
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  int size() const { return static_cast<int>(members_.size()); }
  // "127.0.0.1:PORT" of member i's client URL.
  std::string clientEndpoint(int i) const;
  std::vector<std::string> clientEndpoints() const;
  // "127.0.0.1:P1,127.0.0.1:P2,..." (what vrmd's --store etcd:// takes).
  std::string endpointList() const;
  int clientPort(int i) const;
  int peerPort(int i) const;
  pid_t pid(int i) const;  // 0 while down
  bool running(int i) const;
  const std::string& dir() const { return dir_; }
  std::string logPath(int i) const;

  // SIGKILL, and reaped (or gone) before returning.
  Status kill(int i);
  // SIGTERM (a clean shutdown), then SIGKILL after 5 s.
  Status stop(int i);
  // Starts a member that is down again, on the same ports and data; waits until ready.
  Status restart(int i);
  // SIGSTOP / SIGCONT; returns once the process is stopped / running.
  Status pause(int i);
  Status resume(int i);
  // Waits until member i answers and follows a raft leader that is not down or paused.
  Status waitReady(int i, std::chrono::milliseconds timeout);
  // Stops every member (the destructor does too).
  void stopAll();

  // The members outlive this object (the CLI's start): the destructor leaves them running.
  void detach() { attached_ = true; }

  // Writes the state (ports, pids) for a later attach(); the CLI calls it after each change.
  Status save() const;

 private:
  struct Member {
    std::string name;
    int clientPort = 0;
    int peerPort = 0;
    pid_t pid = 0;
    std::string dataDir;
    std::string id;  // etcd's member id (decimal), learned from its answers
    bool paused = false;
  };
  EtcdCluster() = default;
  Status launchAll(std::string* failureLog);
  Status launch(int i);
  std::vector<std::string> arguments(int i) const;
  bool exited(int i);  // reaps it when ours
  Status signalAndWait(int i, int signal, std::chrono::milliseconds grace);

  EtcdClusterOptions options_;
  std::string dir_;
  std::string token_;
  std::vector<Member> members_;
  bool attached_ = false;
};

}  // namespace vrm::testing
