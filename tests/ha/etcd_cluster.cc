// clang-format off
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it
// clang-format on
#include "etcd_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace vrm::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using namespace std::chrono_literals;

std::string url(int port) { return "http://127.0.0.1:" + std::to_string(port); }

// `count` distinct free loopback ports: all bound at once (so they differ), then released.
Result<std::vector<int>> freePorts(int count) {
  asio::io_context io;
  std::vector<tcp::acceptor> held;
  std::vector<int> ports;
  try {
    for (int i = 0; i < count; ++i) {
      held.emplace_back(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      ports.push_back(held.back().local_endpoint().port());
    }
  } catch (const boost::system::system_error& e) {
    return Status::unavailable(std::string("cannot find free ports: ") + e.what());
  }
  return ports;
}

// POSTs to 127.0.0.1:port and returns the body of a 200 answer; nullopt on anything else.
std::optional<std::string> post(int port, const std::string& path, const std::string& body,
                                std::chrono::milliseconds timeout) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::request<http::string_body> request{http::verb::post, path, 11};
  request.set(http::field::host, "127.0.0.1");
  request.body() = body;
  request.prepare_payload();
  http::response<http::string_body> response;
  bool ok = false;
  stream.expires_after(timeout);
  stream.async_connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
      [&](beast::error_code ec) {
        if (ec) return;
        http::async_write(stream, request, [&](beast::error_code wec, std::size_t) {
          if (wec) return;
          http::async_read(stream, buffer, response, [&](beast::error_code rec, std::size_t) {
            ok = !rec && response.result_int() == 200;
          });
        });
      });
  io.run_for(timeout + 100ms);
  if (!ok) return std::nullopt;
  return response.body();
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string tail(const std::string& text, std::size_t bytes) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

bool onPath(const std::string& binary) {
  if (binary.find('/') != std::string::npos) return ::access(binary.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && ::access((dir + "/" + binary).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// The process's state letter from /proc/PID/stat ('R', 'S', 'T' stopped, 'Z' zombie), or 0.
char processState(pid_t pid) {
  const std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? 0 : stat[close + 2];
}

}  // namespace

Result<std::unique_ptr<EtcdCluster>> EtcdCluster::start(EtcdClusterOptions options) {
  if (options.members < 1) return Status::invalid("an etcd cluster needs at least one member");
  if (!onPath(options.etcdBinary)) {
    return Status::notFound("etcd is not installed (" + options.etcdBinary +
                            "; scripts/install-deps.sh installs etcd-server)");
  }
  std::string root = options.dataRoot;
  for (const char* env : {"VRM_ETCD_DATA_ROOT", "TMPDIR"}) {
    if (root.empty() && std::getenv(env) != nullptr) root = std::getenv(env);
  }
  if (root.empty()) root = "/tmp";
  std::string pattern = root + "/vrm-etcd-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    return Status::unavailable("cannot make a directory under " + root + ": " +
                               std::strerror(errno));
  }
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster());
  cluster->options_ = options;
  cluster->dir_ = pattern;
  cluster->token_ = "vrm-" + fs::path(pattern).filename().string();
  std::string lastFailure;
  for (int attempt = 1; attempt <= options.startAttempts; ++attempt) {
    auto ports = freePorts(2 * options.members);
    if (!ports.isOk()) return ports.status();
    cluster->members_.clear();
    for (int i = 0; i < options.members; ++i) {
      Member m;
      m.name = "m" + std::to_string(i);
      m.clientPort = (*ports)[2 * i];
      m.peerPort = (*ports)[2 * i + 1];
      m.dataDir = cluster->dir_ + "/" + m.name;
      std::error_code ignored;
      fs::remove_all(m.dataDir, ignored);
      fs::remove(cluster->logPath(i), ignored);
      cluster->members_.push_back(m);
    }
    std::string failureLog;
    const Status launched = cluster->launchAll(&failureLog);
    if (launched.isOk()) return cluster;
    cluster->stopAll();
    lastFailure = launched.toString();
    // Someone took one of the ports between our release and etcd's bind: new ports.
    if (failureLog.find("address already in use") == std::string::npos) break;
  }
  return Status::unavailable("etcd cluster did not start: " + lastFailure);
}

Status EtcdCluster::launchAll(std::string* failureLog) {
  for (int i = 0; i < size(); ++i) {
    if (Status s = launch(i); !s.isOk()) return s;
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.readyTimeout;
  for (int i = 0; i < size(); ++i) {
    while (true) {
      for (int k = 0; k < size(); ++k) {
        if (exited(k)) {
          *failureLog = readFile(logPath(k));
          return Status::unavailable("member " + members_[k].name +
                                     " exited during start: " + tail(*failureLog, 600));
        }
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        return Status::unavailable("member " + members_[i].name +
                                   " not ready in time: " + tail(readFile(logPath(i)), 600));
      }
      if (waitReady(i, 200ms).isOk()) break;
    }
  }
  return Status::ok();
}

std::vector<std::string> EtcdCluster::arguments(int i) const {
  const Member& m = members_[i];
  std::string initial;
  for (const Member& peer : members_) {
    initial += (initial.empty() ? "" : ",") + peer.name + "=" + url(peer.peerPort);
  }
  std::vector<std::string> args = {
      options_.etcdBinary,
      "--name=" + m.name,
      "--data-dir=" + m.dataDir,
      "--listen-client-urls=" + url(m.clientPort),
      "--advertise-client-urls=" + url(m.clientPort),
      "--listen-peer-urls=" + url(m.peerPort),
      "--initial-advertise-peer-urls=" + url(m.peerPort),
      "--initial-cluster=" + initial,
      "--initial-cluster-state=new",
      "--initial-cluster-token=" + token_,
      "--heartbeat-interval=" + std::to_string(options_.heartbeatMs),
      "--election-timeout=" + std::to_string(options_.electionMs),
      "--logger=zap",
      "--log-level=warn",
  };
  if (options_.quotaBackendBytes > 0) {
    args.push_back("--quota-backend-bytes=" + std::to_string(options_.quotaBackendBytes));
  }
  return args;
}

Status EtcdCluster::launch(int i) {
  Member& m = members_[i];
  if (m.pid != 0 && !exited(i)) return Status::invalid("member " + m.name + " is running");
  // Everything the child needs is made before fork: after it, only async-signal-safe calls.
  const std::vector<std::string> args = arguments(i);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string log = logPath(i);
  const bool dieWithParent = options_.dieWithParent;
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Status::unavailable(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    if (dieWithParent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
    } else {
      ::setsid();
    }
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int in = ::open("/dev/null", O_RDONLY);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    if (in >= 0) ::dup2(in, 0);
    // Nothing else the caller had open goes with the member: a member detached from a test
    // that was killed (its EXIT trap never ran) must not keep, say, the test's lock file open.
    ::close_range(3, ~0U, 0);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  m.pid = pid;
  return Status::ok();
}

bool EtcdCluster::exited(int i) {
  Member& m = members_[i];
  if (m.pid == 0) return true;
  int status = 0;
  const pid_t r = ::waitpid(m.pid, &status, WNOHANG);
  if (r == m.pid) {
    m.pid = 0;
    return true;
  }
  if (r == 0) return false;  // our child, alive
  // Not our child (attached from the CLI): alive while it exists, is no zombie, and is still
  // the etcd of this member (a recycled pid would not name its data directory).
  const char state = processState(m.pid);
  const std::string cmdline = readFile("/proc/" + std::to_string(m.pid) + "/cmdline");
  if (state == 0 || state == 'Z' || cmdline.find(m.dataDir) == std::string::npos) {
    m.pid = 0;
    return true;
  }
  return false;
}

Status EtcdCluster::signalAndWait(int i, int signal, std::chrono::milliseconds grace) {
  if (exited(i)) return Status::ok();
  ::kill(members_[i].pid, signal);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!exited(i)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      if (signal == SIGKILL) {
        return Status::internal("member " + members_[i].name + " survived SIGKILL");
      }
      return signalAndWait(i, SIGKILL, 5s);
    }
    std::this_thread::sleep_for(5ms);
  }
  return Status::ok();
}

Status EtcdCluster::kill(int i) {
  if (members_[i].pid != 0 && processState(members_[i].pid) == 'T') {
    ::kill(members_[i].pid, SIGCONT);  // a stopped process dies of SIGKILL too; be explicit
  }
  members_[i].paused = false;
  return signalAndWait(i, SIGKILL, 5s);
}

Status EtcdCluster::stop(int i) {
  if (members_[i].pid != 0 && processState(members_[i].pid) == 'T') {
    ::kill(members_[i].pid, SIGCONT);
  }
  members_[i].paused = false;
  return signalAndWait(i, SIGTERM, 5s);
}

Status EtcdCluster::restart(int i) {
  if (!exited(i)) return Status::invalid("member " + members_[i].name + " is still running");
  if (Status s = launch(i); !s.isOk()) return s;
  const auto deadline = std::chrono::steady_clock::now() + options_.readyTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (exited(i)) {
      return Status::unavailable("member " + members_[i].name +
                                 " exited on restart: " + tail(readFile(logPath(i)), 600));
    }
    if (waitReady(i, 200ms).isOk()) return Status::ok();
  }
  return Status::unavailable("member " + members_[i].name + " not ready after restart");
}

Status EtcdCluster::pause(int i) {
  if (exited(i)) return Status::invalid("member " + members_[i].name + " is not running");
  ::kill(members_[i].pid, SIGSTOP);
  members_[i].paused = true;
  for (int k = 0; k < 1000 && processState(members_[i].pid) != 'T'; ++k) {
    std::this_thread::sleep_for(1ms);
  }
  return processState(members_[i].pid) == 'T'
             ? Status::ok()
             : Status::internal("member " + members_[i].name + " did not stop");
}

Status EtcdCluster::resume(int i) {
  if (exited(i)) return Status::invalid("member " + members_[i].name + " is not running");
  ::kill(members_[i].pid, SIGCONT);
  members_[i].paused = false;
  for (int k = 0; k < 1000 && processState(members_[i].pid) == 'T'; ++k) {
    std::this_thread::sleep_for(1ms);
  }
  return processState(members_[i].pid) != 'T'
             ? Status::ok()
             : Status::internal("member " + members_[i].name + " did not continue");
}

Status EtcdCluster::waitReady(int i, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const auto body =
        post(members_[i].clientPort, "/v3/maintenance/status", "{}", std::max(remaining, 50ms));
    if (body) {
      const json j = json::parse(*body, nullptr, false);
      if (j.is_object() && j.contains("header") && j["header"].is_object() &&
          j["header"].contains("member_id") && j["header"]["member_id"].is_string()) {
        members_[i].id = j["header"]["member_id"].get<std::string>();
      }
      // Ready when it follows a leader that is up: just after the leader was killed or
      // paused, the others still name it until their election timeout.
      if (j.is_object() && j.contains("leader") && j["leader"].is_string() && j["leader"] != "0") {
        bool leaderDown = false;
        for (const Member& m : members_) {
          leaderDown |= m.id == j["leader"].get<std::string>() && (m.pid == 0 || m.paused);
        }
        if (!leaderDown) return Status::ok();
      }
    }
    std::this_thread::sleep_for(20ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return Status::unavailable("member " + members_[i].name + " has no raft leader");
}

void EtcdCluster::stopAll() {
  for (int i = 0; i < size(); ++i) (void)kill(i);
}

EtcdCluster::~EtcdCluster() {
  if (attached_) return;
  stopAll();
  const char* keep = std::getenv("VRM_KEEP_ETCD_DATA");
  if (!options_.keepData && !(keep != nullptr && std::string(keep) == "1")) {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
}

std::string EtcdCluster::clientEndpoint(int i) const {
  return "127.0.0.1:" + std::to_string(members_[i].clientPort);
}

std::vector<std::string> EtcdCluster::clientEndpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(clientEndpoint(i));
  return out;
}

std::string EtcdCluster::endpointList() const {
  std::string out;
  for (int i = 0; i < size(); ++i) out += (i == 0 ? "" : ",") + clientEndpoint(i);
  return out;
}

int EtcdCluster::clientPort(int i) const { return members_[i].clientPort; }
int EtcdCluster::peerPort(int i) const { return members_[i].peerPort; }
pid_t EtcdCluster::pid(int i) const { return members_[i].pid; }

bool EtcdCluster::running(int i) const {
  return members_[i].pid != 0 && processState(members_[i].pid) != 0 &&
         processState(members_[i].pid) != 'Z';
}

std::string EtcdCluster::logPath(int i) const { return dir_ + "/m" + std::to_string(i) + ".log"; }

Status EtcdCluster::save() const {
  json members = json::array();
  for (const Member& m : members_) {
    members.push_back({{"name", m.name},
                       {"client_port", m.clientPort},
                       {"peer_port", m.peerPort},
                       {"pid", m.pid},
                       {"data_dir", m.dataDir},
                       {"id", m.id},
                       {"paused", m.paused}});
  }
  const json state = {{"members", members},
                      {"token", token_},
                      {"quota_backend_bytes", options_.quotaBackendBytes},
                      {"heartbeat_ms", options_.heartbeatMs},
                      {"election_ms", options_.electionMs},
                      {"etcd", options_.etcdBinary}};
  const std::string path = dir_ + "/cluster.state";
  std::ofstream out(path + ".tmp");
  out << state.dump(2) << "\n";
  out.close();
  if (!out || std::rename((path + ".tmp").c_str(), path.c_str()) != 0) {
    return Status::unavailable("cannot write " + path);
  }
  return Status::ok();
}

Result<std::unique_ptr<EtcdCluster>> EtcdCluster::attach(const std::string& dir) {
  const std::string path = dir + "/cluster.state";
  const json state = json::parse(readFile(path), nullptr, false);
  if (!state.is_object() || !state.contains("members") || !state["members"].is_array()) {
    return Status::notFound("no etcd cluster state in " + path);
  }
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster());
  try {
    cluster->dir_ = dir;
    cluster->attached_ = true;
    cluster->token_ = state.at("token").get<std::string>();
    cluster->options_.quotaBackendBytes = state.at("quota_backend_bytes").get<std::int64_t>();
    cluster->options_.heartbeatMs = state.at("heartbeat_ms").get<int>();
    cluster->options_.electionMs = state.at("election_ms").get<int>();
    cluster->options_.etcdBinary = state.at("etcd").get<std::string>();
    cluster->options_.dieWithParent = false;
    for (const json& m : state["members"]) {
      cluster->members_.push_back(
          Member{m.at("name").get<std::string>(), m.at("client_port").get<int>(),
                 m.at("peer_port").get<int>(), m.at("pid").get<pid_t>(),
                 m.at("data_dir").get<std::string>(), m.at("id").get<std::string>(),
                 m.at("paused").get<bool>()});
    }
  } catch (const json::exception& e) {
    return Status::invalid(path + ": " + e.what());
  }
  cluster->options_.members = cluster->size();
  return cluster;
}

}  // namespace vrm::testing
