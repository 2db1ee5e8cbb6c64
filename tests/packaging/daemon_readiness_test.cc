// vrmd and vmschedd as systemd runs them (Type=notify): the real programs, started with a
// $NOTIFY_SOCKET the test binds, options from a config file, OS-chosen ports on loopback.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "../../daemon/tests/fake_notify_socket.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using vrm::daemon::testing::FakeNotifySocket;

// Bound for every wait: a daemon that does not get there within it has failed (not a timing
// assertion: the readiness itself is what is checked).
constexpr milliseconds kPatience = seconds(60);

// A daemon run as a child: its environment extended by `env`, stderr into a file.
class Daemon {
 public:
  Daemon(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
         const fs::path& log)
      : log_(log) {
    std::vector<std::string> envStrings;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string kv = *e;
      if (!env.count(kv.substr(0, kv.find('=')))) envStrings.push_back(kv);
    }
    for (const auto& [k, v] : env) envStrings.push_back(k + "=" + v);
    const bool watchdogOfChild = env.count("WATCHDOG_USEC") > 0;
    pid_ = fork();
    if (pid_ == 0) {
      // WATCHDOG_PID names the daemon itself, as systemd sets it.
      if (watchdogOfChild) envStrings.push_back("WATCHDOG_PID=" + std::to_string(getpid()));
      std::vector<char*> args, envp;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      for (const auto& e : envStrings) envp.push_back(const_cast<char*>(e.c_str()));
      envp.push_back(nullptr);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, STDERR_FILENO);
      dup2(fd, STDOUT_FILENO);
      execve(args[0], args.data(), envp.data());
      _exit(127);
    }
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  }
  ~Daemon() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (pidfd_ >= 0) close(pidfd_);
  }

  void signal(int sig) { kill(pid_, sig); }
  // The exit code once the process ended within `timeout` (-1: still running, 128+N: signal N).
  int waitExit(milliseconds timeout) {
    pollfd p{pidfd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return -1;
    int status = 0;
    waitpid(pid_, &status, 0);
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  bool running() {
    pollfd p{pidfd_, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
  }
  std::string log() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool exited_ = false;
};

// The datagrams until one starting with `prefix` (that one included), waiting at most kPatience
// and giving up early when the daemon ended.
std::vector<std::string> until(FakeNotifySocket& socket, Daemon& daemon,
                               const std::string& prefix) {
  std::vector<std::string> seen;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string d = socket.next(milliseconds(200));
    if (!d.empty()) {
      seen.push_back(d);
      if (d.rfind(prefix, 0) == 0) return seen;
    } else if (!daemon.running()) {
      break;
    }
  }
  ADD_FAILURE() << "no '" << prefix << "' notification; the daemon said:\n" << daemon.log();
  return seen;
}

// STATUS=... words of a notification, key=value.
std::map<std::string, std::string> statusWords(const std::string& datagram) {
  std::map<std::string, std::string> words;
  const auto at = datagram.find("STATUS=");
  if (at == std::string::npos) return words;
  std::istringstream in(datagram.substr(at + 7));
  for (std::string w; in >> w;) {
    const auto eq = w.find('=');
    if (eq != std::string::npos) words[w.substr(0, eq)] = w.substr(eq + 1);
  }
  return words;
}

// The port of "tcp://127.0.0.1:41000" or "http://127.0.0.1:41000/".
int portOf(const std::string& endpoint) {
  const auto colon = endpoint.rfind(':');
  return colon == std::string::npos ? 0 : std::atoi(endpoint.c_str() + colon + 1);
}

bool acceptsTcp(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

class DaemonReadinessTest : public ::testing::Test {
 protected:
  DaemonReadinessTest() {
    dir_ = fs::temp_directory_path() / ("vrm-readiness-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  ~DaemonReadinessTest() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }

  fs::path dir_;
};

// Ensures vrmd says READY=1 only after recovering its store, names in STATUS the endpoints it
// bound with the ports the OS chose (every one reachable), keeps the watchdog fed, and stops
// cleanly on SIGTERM; and that vmschedd says READY=1 once registered with that vrmd.
TEST_F(DaemonReadinessTest, ReadyNamesBoundPortsAndSigtermStopsCleanly) {
  const fs::path config = write("vrmd.conf",
                                "# as /etc/vrm/vrmd.conf would say it\n"
                                "cluster = \"" VRM_CLUSTER_FILE
                                "\"\n"
                                "store = \"" +
                                    (dir_ / "vrm.db").string() +
                                    "\"\n"
                                    "insecure = true\n"
                                    "clients = \"tcp://127.0.0.1:*\"\n"
                                    "agents = \"tcp://127.0.0.1:*\"\n"
                                    "events = \"tcp://127.0.0.1:*\"\n"
                                    "http = \"127.0.0.1:8080\"\n");
  FakeNotifySocket systemd;
  // The flag overrides the file's fixed port with an OS-chosen one.
  Daemon vrmd({VRMD_PATH, "--config", config.string(), "--http", "127.0.0.1:0"},
              {{"NOTIFY_SOCKET", systemd.path()}, {"WATCHDOG_USEC", "2000000"}}, dir_ / "vrmd.log");
  std::vector<std::string> seen = until(systemd, vrmd, "READY=1");
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front().rfind("STATUS=recovering the store", 0), 0u) << seen.front();
  auto status = statusWords(seen.back());
  for (const char* key : {"clients", "agents", "events", "http"}) {
    ASSERT_TRUE(status.count(key)) << key << " missing in " << seen.back();
    EXPECT_GT(portOf(status[key]), 0) << key << ": " << status[key];
    EXPECT_TRUE(acceptsTcp(portOf(status[key]))) << key << ": " << status[key];
  }
  EXPECT_NE(portOf(status["http"]), 8080) << status["http"];
  until(systemd, vrmd, "WATCHDOG=1");

  FakeNotifySocket agentSystemd;
  Daemon agent({VMSCHEDD_PATH, "--host", "node1", "--cluster", VRM_CLUSTER_FILE, "--vrmd",
                status["agents"], "--backend", "sim"},
               {{"NOTIFY_SOCKET", agentSystemd.path()}}, dir_ / "vmschedd.log");
  seen = until(agentSystemd, agent, "READY=1");
  ASSERT_FALSE(seen.empty());
  EXPECT_NE(seen.back().find("STATUS=registered host node1 with vrmd at " + status["agents"]),
            std::string::npos)
      << seen.back();

  agent.signal(SIGTERM);
  until(agentSystemd, agent, "STOPPING=1");
  EXPECT_EQ(agent.waitExit(kPatience), 0) << agent.log();
  vrmd.signal(SIGTERM);
  until(systemd, vrmd, "STOPPING=1");
  EXPECT_EQ(vrmd.waitExit(kPatience), 0) << vrmd.log();
}

// Ensures a config file with a misspelt key or a bad value keeps vrmd from starting, with an
// error naming the file and the key, and nothing said to systemd.
TEST_F(DaemonReadinessTest, BadConfigStopsTheStartNamingTheKey) {
  struct Case {
    std::string line, expected;
  };
  for (const Case& c : {Case{"clientz = \"tcp://127.0.0.1:*\"", "unknown key 'clientz'"},
                        Case{"quantile = 7", "--quantile"}}) {
    const fs::path config =
        write("bad.conf", "cluster = \"" VRM_CLUSTER_FILE "\"\ninsecure = true\n" + c.line + "\n");
    FakeNotifySocket systemd;
    Daemon vrmd({VRMD_PATH, "--config", config.string()}, {{"NOTIFY_SOCKET", systemd.path()}},
                dir_ / "bad.log");
    EXPECT_EQ(vrmd.waitExit(kPatience), 2);
    const std::string log = vrmd.log();
    EXPECT_NE(log.find("vrmd: config " + config.string() + ": "), std::string::npos) << log;
    EXPECT_NE(log.find(c.expected), std::string::npos) << log;
    EXPECT_EQ(systemd.next(), "");
  }
}

// Ensures vrmd without keys, as a fresh package install leaves it, refuses to start and says
// what to do.
TEST_F(DaemonReadinessTest, NoKeysNoStart) {
  const fs::path config = write("nokeys.conf", "cluster = \"" VRM_CLUSTER_FILE "\"\n");
  Daemon vrmd({VRMD_PATH, "--config", config.string()}, {}, dir_ / "nokeys.log");
  EXPECT_EQ(vrmd.waitExit(kPatience), 2);
  EXPECT_NE(vrmd.log().find("vrmctl keygen vrmd"), std::string::npos) << vrmd.log();
}

}  // namespace
