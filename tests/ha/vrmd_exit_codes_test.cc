// vrmd's exit statuses at start, as systemd's Restart= sees them (vrmd.8, EXIT STATUS): the
// real vrmd, started into each failure. 2 = the configuration cannot work (the unit does not
// restart); 75 = something it needs is not available now (the unit restarts it).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "child_process.h"

namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;
using vrm::testing::ChildProcess;

constexpr int kBadConfiguration = 2;
constexpr int kCannotStartNow = 75;

// A TCP socket listening on 127.0.0.1 at a port the OS chose: that port is in use.
class ListeningSocket {
 public:
  ListeningSocket() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 4) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
    }
    port_ = ntohs(addr.sin_port);
  }
  ~ListeningSocket() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class VrmdExitCodesTest : public ::testing::Test {
 protected:
  VrmdExitCodesTest() {
    dir_ = fs::temp_directory_path() / ("vrm-exit-codes-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  ~VrmdExitCodesTest() override { fs::remove_all(dir_); }

  // vrmd's command line: options that start it (a store in the test's directory, OS-chosen
  // ports, no web; --insecure unless `insecure` is false), each of `args` (an option and its
  // value, or a lone flag) replacing the base's value of that option or added.
  std::vector<std::string> argv(const std::vector<std::string>& args, bool insecure = true) {
    std::vector<std::pair<std::string, std::string>> options = {
        {"--cluster", VRM_CLUSTER_FILE},
        {"--store", "sqlite:" + (dir_ / "vrm.db").string()},
        {"--clients", "tcp://127.0.0.1:*"},
        {"--agents", "tcp://127.0.0.1:*"},
        {"--events", "off"},
        {"--http", "off"}};
    std::vector<std::string> out = {VRMD_PATH};
    if (insecure) out.push_back("--insecure");
    std::vector<std::string> flags;
    for (std::size_t i = 0; i < args.size(); ++i) {
      const bool hasValue = i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0;
      if (!hasValue) {
        flags.push_back(args[i]);
        continue;
      }
      auto it = std::find_if(options.begin(), options.end(),
                             [&](const auto& o) { return o.first == args[i]; });
      if (it != options.end()) {
        it->second = args[i + 1];
      } else {
        options.emplace_back(args[i], args[i + 1]);
      }
      ++i;
    }
    for (const auto& [option, value] : options) {
      out.push_back(option);
      out.push_back(value);
    }
    out.insert(out.end(), flags.begin(), flags.end());
    return out;
  }
  // Runs vrmd with argv(args, insecure) to its end: its exit status; its stderr is in log().
  int run(const std::vector<std::string>& args, bool insecure = true) {
    fs::remove(dir_ / "vrmd.log");
    auto child = ChildProcess::start(argv(args, insecure), (dir_ / "vrmd.log").string());
    if (!child) {
      ADD_FAILURE() << child.status().toString();
      return -1;
    }
    // Bounded, not a timing assertion: each of these starts fails within a second or two.
    return (*child)->wait(seconds(60));
  }
  std::string log() const {
    std::ifstream in(dir_ / "vrmd.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  fs::path dir_;
};

// Ensures the options every other case starts from do start vrmd, so that each failure below
// is the one its case adds; SIGTERM then exits 0.
TEST_F(VrmdExitCodesTest, TheBaseOptionsStartAndSigtermExitsZero) {
  auto child = ChildProcess::start(argv({}), (dir_ / "vrmd.log").string());
  ASSERT_TRUE(child) << child.status().toString();
  // vrmd logs (on stdout) "listening for clients" once it serves.
  ASSERT_GE((*child)->waitForLine(
                [](const std::string& line) {
                  return line.find("listening for clients") != std::string::npos;
                },
                0, seconds(60)),
            0)
      << log();
  (*child)->signal(SIGTERM);
  EXPECT_EQ((*child)->wait(seconds(60)), 0) << log();
}

// Ensures configuration errors exit 2, each naming what to mend: an unknown flag, a cluster file
// that cannot be read, a key file that cannot be read, a malformed --store.
TEST_F(VrmdExitCodesTest, ConfigurationErrorsExitTwo) {
  std::ofstream(dir_ / "authorized") << "";
  struct Case {
    std::vector<std::string> args;
    std::string said;
    bool insecure = true;
  };
  for (const Case& c : std::vector<Case>{
           {{"--no-such-flag"}, "--no-such-flag"},
           {{"--cluster", (dir_ / "missing.yaml").string()}, "missing.yaml"},
           {{"--curve-secret", (dir_ / "missing.key").string(), "--authorized",
             (dir_ / "authorized").string()},
            "--curve-secret",
            false},
           {{"--store", "etcd:127.0.0.1:2379"}, "--store"},
       }) {
    EXPECT_EQ(run(c.args, c.insecure), kBadConfiguration) << c.args.front() << ":\n" << log();
    EXPECT_NE(log().find(c.said), std::string::npos) << log();
  }
}

// Ensures a client, agent or web port already in use exits 75 (the unit tries again later),
// saying which address.
TEST_F(VrmdExitCodesTest, APortInUseExitsSeventyFive) {
  ListeningSocket taken;
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(taken.port());
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--clients", endpoint},
           {"--agents", endpoint},
           {"--http", "127.0.0.1:" + std::to_string(taken.port())}}) {
    EXPECT_EQ(run(args), kCannotStartNow) << args.front() << ":\n" << log();
    EXPECT_NE(log().find(std::to_string(taken.port())), std::string::npos) << log();
    EXPECT_NE(log().find("try again later"), std::string::npos) << log();
  }
}

// Ensures a store that cannot be opened now (its directory missing: a mount not there yet)
// exits 75.
TEST_F(VrmdExitCodesTest, AStoreThatCannotBeOpenedExitsSeventyFive) {
  EXPECT_EQ(run({"--store", "sqlite:" + (dir_ / "not-mounted" / "vrm.db").string()}),
            kCannotStartNow)
      << log();
  EXPECT_NE(log().find("not-mounted"), std::string::npos) << log();
}

// Ensures an etcd that does not answer (nothing listens at its port) exits 75, naming it.
TEST_F(VrmdExitCodesTest, AnEtcdThatDoesNotAnswerExitsSeventyFive) {
  ListeningSocket freed;
  const std::string port = std::to_string(freed.port());
  freed.close();  // nothing listens there now
  EXPECT_EQ(run({"--store", "etcd://127.0.0.1:" + port, "--advertise", "tcp://127.0.0.1:5555"}),
            kCannotStartNow)
      << log();
  EXPECT_NE(log().find("does not answer"), std::string::npos) << log();
  EXPECT_NE(log().find("127.0.0.1:" + port), std::string::npos) << log();
}

}  // namespace
