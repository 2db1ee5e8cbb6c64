#include "qemu/qemu_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>

namespace vrm::vmscheduler::qemu {

using nlohmann::json;

bool onPath(const std::string& binary) {
  if (binary.find('/') != std::string::npos) return access(binary.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && access((dir + "/" + binary).c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string qemuMemoryArg(std::uint64_t memoryBytes) {
  std::uint64_t kib = (memoryBytes + 1023) / 1024;
  if (kib % 256 == 0) kib += 8;
  return std::to_string(kib) + "k";
}

std::string describeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

std::string tailOf(const std::string& path, std::size_t bytes) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > bytes) text = text.substr(text.size() - bytes);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

bool fileContains(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.find(needle) != std::string::npos;
}

Status runProgram(const std::vector<std::string>& argv) {
  int pipeFds[2];
  if (pipe(pipeFds) != 0) return Status::internal("pipe: " + std::string(std::strerror(errno)));
  pid_t pid = fork();
  if (pid < 0) return Status::internal("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    dup2(pipeFds[1], 1);
    dup2(pipeFds[1], 2);
    close(pipeFds[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipeFds[1]);
  std::string output;
  char buf[512];
  ssize_t n;
  while ((n = read(pipeFds[0], buf, sizeof buf)) > 0) output.append(buf, static_cast<size_t>(n));
  close(pipeFds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::ok();
  return Status::internal(argv[0] + " " + describeExit(status) + ": " + output);
}

bool portFree(const std::string& address, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  close(fd);
  return ok;
}

Status syncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::internal("open " + path + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::internal("fsync " + path + ": " + std::strerror(err));
  return Status::ok();
}

Status writeFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.flush()) return Status::internal("cannot write " + tmp);
  }
  if (Status s = syncFile(tmp); !s) return s;
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::internal("cannot replace " + path + ": " + std::strerror(errno));
  }
  return Status::ok();
}

Status checkWritableDir(const std::string& dir) {
  std::string probe = dir + "/.vrm-write-probe-XXXXXX";
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) {
    return Status::unavailable("cannot make files in " + dir + ": " + std::strerror(errno));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return Status::ok();
}

std::uint64_t fileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

TimeNs steadyNsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
      .count();
}

bool stageableName(const std::string& id) {
  if (id.empty() || id[0] == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

double jsonNumber(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

int dirtyRateSamplePagesPerGiB(std::uint64_t memoryBytes) {
  constexpr double kSamplesPerGuest = 4096, kGiB = 1024.0 * 1024.0 * 1024.0;
  if (memoryBytes == 0) return 512;
  const double perGiB = std::ceil(kSamplesPerGuest * kGiB / static_cast<double>(memoryBytes));
  return static_cast<int>(std::clamp(perGiB, 512.0, 16384.0));
}

double dirtyRateFromReading(double mibPerSec) {
  constexpr double kMiB = 1024.0 * 1024.0;
  return mibPerSec >= 1 ? (std::floor(mibPerSec) + 0.5) * kMiB : 0;
}

namespace {

// Parses "tcp:HOST:PORT".
bool parseTcpEndpoint(const std::string& endpoint, std::string& host, int& port) {
  if (endpoint.rfind("tcp:", 0) != 0) return false;
  const auto colon = endpoint.rfind(':');
  if (colon <= 4) return false;
  host = endpoint.substr(4, colon - 4);
  try {
    port = std::stoi(endpoint.substr(colon + 1));
  } catch (...) {
    return false;
  }
  return port > 0 && port < 65536;
}

}  // namespace

bool parseIncomingEndpoint(const std::string& endpoint, IncomingEndpoint& out) {
  const auto semi = endpoint.find(';');
  out.qemu = endpoint.substr(0, semi);
  std::string host;
  int port = 0;
  if (!parseTcpEndpoint(out.qemu, host, port)) return false;
  std::string rest = semi == std::string::npos ? "" : endpoint.substr(semi + 1);
  // Each optional part once, in order: state=, then disk=.
  for (auto [key, host, port] : {std::tuple{"state=", &out.stateHost, &out.statePort},
                                 {"disk=", &out.diskHost, &out.diskPort}}) {
    if (rest.rfind(key, 0) != 0) continue;
    const auto next = rest.find(';');
    if (!parseTcpEndpoint(rest.substr(std::strlen(key), next - std::strlen(key)), *host, *port)) {
      return false;
    }
    rest = next == std::string::npos ? "" : rest.substr(next + 1);
  }
  return rest.empty();
}

}  // namespace vrm::vmscheduler::qemu
