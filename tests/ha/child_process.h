// Programs the HA tests run beside etcd: a child process whose stdout is read line by line (the
// campaigner of election_test), and tests/faults/tcp_proxy on an OS-chosen port, which cuts a
// client off from one member on command. Both die with the test (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vrm/protocol/status.h"

namespace vrm::testing {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with stdout read into lines; stderr goes to `stderrPath` (or is
  // inherited when empty).
  static Result<std::unique_ptr<ChildProcess>> start(std::vector<std::string> argv,
                                                     const std::string& stderrPath = "");
  ~ChildProcess();  // SIGKILL and reap
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Sends a signal (SIGSTOP, SIGCONT, SIGTERM, ...).
  void signal(int sig);
  // Every line so far.
  std::vector<std::string> lines() const;
  // The index of the first line from `from` on that `match` accepts, waiting up to `timeout`;
  // -1 if none came.
  int waitForLine(const std::function<bool(const std::string&)>& match, std::size_t from,
                  std::chrono::milliseconds timeout) const;
  // Waits for the process to exit (after SIGTERM, say); its exit status or -1.
  int wait(std::chrono::milliseconds timeout);

 private:
  ChildProcess() = default;
  void readLoop(int fd);

  pid_t pid_ = 0;
  std::thread reader_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::vector<std::string> lines_;
  bool closed_ = false;
};

// tests/faults/tcp_proxy between a client and 127.0.0.1:toPort.
class TcpProxy {
 public:
  // `binary`: the tcp_proxy executable.
  static Result<std::unique_ptr<TcpProxy>> start(const std::string& binary, int toPort);
  int port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  // Nothing passes either way; connections stay open (bytes wait in the kernel).
  void partition();
  void heal();
  // Closes every connection.
  void reset();

 private:
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
  // Each command is acknowledged on stdout; wait for it so the cut is in force on return.
  void command(int sig, const char* ack);
};

}  // namespace vrm::testing
