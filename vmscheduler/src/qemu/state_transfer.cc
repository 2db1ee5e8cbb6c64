#include "qemu/state_transfer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

namespace vrm::vmscheduler {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kMaxLine = 512;
// How much of a refused sender's stream the receiver reads and discards before it closes, and for
// how long at most: enough for the sender to notice the refusal (it looks for an answer between
// chunks), bounded so a sender that never looks cannot hold the receiver's thread.
constexpr std::uint64_t kMaxDrainBytes = 64ull << 20;
constexpr std::chrono::milliseconds kMaxDrainTime{2000};

std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

void setTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool writeAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// One '\n'-terminated line (without it); nullopt on EOF, error, timeout or an overlong line.
std::optional<std::string> readLine(int fd) {
  std::string line;
  char c = 0;
  while (line.size() < kMaxLine) {
    const ssize_t n = ::recv(fd, &c, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    if (c == '\n') return line;
    line.push_back(c);
  }
  return std::nullopt;
}

// True when the peer has written something (or closed) that `fd` has not read yet; never blocks.
bool answerPending(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

// Reads and discards what the peer still sends until it closes, at most `maxBytes` and until
// `deadline`. A socket closed with unread bytes sends a reset, and a reset may overtake (and so
// destroy) the answer written just before it; draining first lets the answer arrive.
void drain(int fd, std::uint64_t maxBytes, Clock::time_point deadline) {
  std::vector<char> buf(kChunk);
  std::uint64_t got = 0;
  while (got < maxBytes) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the sender closed (or the owner shut the socket down)
    got += static_cast<std::uint64_t>(n);
  }
}

// Why the receiver did not answer `expected`: its FAILED reason when it gave one.
Status answerStatus(const std::optional<std::string>& line, const std::string& to,
                    const char* expected) {
  if (!line) {
    return Status::unavailable("state receiver " + to + " closed or timed out before " + expected);
  }
  if (line->rfind("FAILED", 0) == 0) {
    return Status::unavailable("destination " + to + ": " +
                               (line->size() > 7 ? line->substr(7) : std::string("failed")));
  }
  return Status::unavailable("state receiver " + to + " answered '" + *line + "' before " +
                             expected);
}

// A send to the receiver failed: its FAILED reason if it left one, else the socket error.
Status sendFailure(int fd, const std::string& to) {
  const Status err = Status::unavailable(errnoText(("send to " + to).c_str()));
  if (!answerPending(fd)) return err;
  const auto line = readLine(fd);
  if (line && line->rfind("FAILED", 0) == 0) return answerStatus(line, to, "RECEIVED");
  return err;
}

sockaddr_in ipv4(const std::string& host, int port, bool& ok) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  ok = inet_pton(AF_INET, host.c_str(), &sa.sin_addr) == 1;
  return sa;
}

}  // namespace

// --- sender -------------------------------------------------------------------------------

StateSender::StateSender(std::string path, std::uint64_t bytes, std::string host, int port,
                         std::string vmId, double bytesPerSec, std::chrono::milliseconds timeout)
    : path_(std::move(path)),
      host_(std::move(host)),
      vmId_(std::move(vmId)),
      bytes_(bytes),
      port_(port),
      bytesPerSec_(bytesPerSec),
      timeout_(timeout) {
  thread_ = std::thread([this] { run(); });
}

StateSender::~StateSender() {
  aborted_ = true;
  if (const int fd = fd_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  if (const int fd = fd_.load(); fd >= 0) ::close(fd);
}

std::optional<StateSender::Outcome> StateSender::outcome() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outcome_;
}

void StateSender::fail(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  outcome_ = Outcome{std::move(status), {}, {}};
}

void StateSender::setBytesPerSec(double bytesPerSec) {
  bytesPerSec_.store(bytesPerSec);
  rateVersion_.fetch_add(1);
}

void StateSender::run() {
  const std::string to = host_ + ":" + std::to_string(port_);
  const int file = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (file < 0) return fail(Status::internal(errnoText(("open " + path_).c_str())));
  struct FileCloser {
    int fd;
    ~FileCloser() { ::close(fd); }
  } closer{file};
  bool ok = false;
  const sockaddr_in sa = ipv4(host_, port_, ok);
  if (!ok)
    return fail(Status::invalid("state endpoint host '" + host_ + "' is not an IPv4 address"));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(Status::internal(errnoText("socket")));
  fd_ = fd;  // closed by the destructor, after the join
  if (aborted_) return fail(Status::unavailable("state transfer aborted"));
  setTimeouts(fd, timeout_);
  const auto start = Clock::now();
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    return fail(Status::unavailable(errnoText(("connect to state receiver " + to).c_str())));
  }
  // Whatever ends the transfer, the receiver sees the end of the stream at once (its refusal
  // drain, or its wait for the bytes, ends) rather than when this object is destroyed.
  struct WriteShutter {
    int fd;
    ~WriteShutter() { ::shutdown(fd, SHUT_WR); }
  } shutter{fd};
  const std::string header = "VRMSTATE1 " + vmId_ + " " + std::to_string(bytes_) + "\n";
  if (!writeAll(fd, header.data(), header.size())) return fail(sendFailure(fd, to));
  // The receiver's next line: nullopt if it is `expected`, else why not.
  auto reply = [&](const char* expected) -> std::optional<Status> {
    auto line = readLine(fd);
    if (line && *line == expected) return std::nullopt;
    return answerStatus(line, to, expected);
  };
  if (auto err = reply("READY")) return fail(std::move(*err));
  std::vector<char> buf(kChunk);
  std::uint64_t sent = 0;
  unsigned paceVersion = rateVersion_.load();
  auto paceFrom = start;
  std::uint64_t paceSent = 0;
  while (sent < bytes_) {
    if (aborted_) return fail(Status::unavailable("state transfer aborted"));
    // The receiver only speaks mid-copy to refuse (it failed to write, or is going away): stop
    // and report its reason while it is still draining, before its close can reset the stream.
    if (answerPending(fd)) return fail(answerStatus(readLine(fd), to, "RECEIVED"));
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, bytes_ - sent));
    const ssize_t n = ::read(file, buf.data(), want);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return fail(Status::internal("staged state " + path_ + " ended after " +
                                   std::to_string(sent) + " of " + std::to_string(bytes_) +
                                   " bytes"));
    }
    if (!writeAll(fd, buf.data(), static_cast<std::size_t>(n))) {
      return fail(sendFailure(fd, to));
    }
    sent += static_cast<std::uint64_t>(n);
    sent_ = sent;
    // Pace to the bandwidth limit, counted from the last change of the limit; sleep in short
    // slices so that a new limit (setBytesPerSec) or an abort takes effect promptly.
    for (;;) {
      if (const unsigned v = rateVersion_.load(); v != paceVersion) {
        paceVersion = v;
        paceFrom = Clock::now();
        paceSent = sent - static_cast<std::uint64_t>(n);
      }
      const double rate = bytesPerSec_.load();
      if (rate <= 0 || aborted_) break;
      const auto due =
          paceFrom + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                         static_cast<double>(sent - paceSent) / rate));
      const auto now = Clock::now();
      if (now >= due) break;
      std::this_thread::sleep_for(
          std::min<Clock::duration>(due - now, std::chrono::milliseconds(50)));
    }
  }
  if (auto err = reply("RECEIVED")) return fail(std::move(*err));
  const auto received = Clock::now();
  received_ = true;
  if (auto err = reply("RESTORED")) return fail(std::move(*err));
  const auto restored = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  outcome_ = Outcome{Status::ok(), received - start, restored - received};
}

// --- receiver -----------------------------------------------------------------------------

Result<std::unique_ptr<StateReceiver>> StateReceiver::listen(const std::string& address, int port,
                                                             std::string path, std::string vmId,
                                                             std::chrono::milliseconds timeout) {
  bool ok = false;
  const sockaddr_in sa = ipv4(address, port, ok);
  if (!ok) return Status::invalid("migration-address '" + address + "' is not an IPv4 address");
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::internal(errnoText("socket"));
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 1) != 0) {
    const std::string why =
        errnoText(("listen on " + address + ":" + std::to_string(port)).c_str());
    ::close(fd);
    return Status::unavailable(why);
  }
  if (port == 0) {  // the system chose one: the sender needs to know which
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
      const std::string why = errnoText("getsockname");
      ::close(fd);
      return Status::internal(why);
    }
    port = ntohs(bound.sin_port);
  }
  return std::unique_ptr<StateReceiver>(
      new StateReceiver(fd, port, std::move(path), std::move(vmId), timeout));
}

StateReceiver::StateReceiver(int listenFd, int port, std::string path, std::string vmId,
                             std::chrono::milliseconds timeout)
    : port_(port),
      path_(std::move(path)),
      vmId_(std::move(vmId)),
      timeout_(timeout),
      listenFd_(listenFd) {
  thread_ = std::thread([this] { run(); });
}

StateReceiver::~StateReceiver() {
  aborted_ = true;
  if (const int fd = listenFd_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
  if (const int fd = connFd_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  if (const int fd = listenFd_.load(); fd >= 0) ::close(fd);
  if (const int fd = connFd_.load(); fd >= 0) ::close(fd);
  ::unlink(path_.c_str());
}

std::string StateReceiver::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void StateReceiver::fail(const std::string& why, bool drainSender) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = why;
  }
  ::unlink(path_.c_str());
  if (const int fd = connFd_.load(); fd >= 0) {
    const std::string line = "FAILED " + why + "\n";
    (void)writeAll(fd, line.data(), line.size());
    ::shutdown(fd, SHUT_WR);
    // The owner destroys this object as soon as it sees kFailed, closing the socket; so first
    // let the sender read the reason (it stops sending and closes when it does).
    if (drainSender) drain(fd, kMaxDrainBytes, Clock::now() + std::min(timeout_, kMaxDrainTime));
  }
  phase_ = Phase::kFailed;
}

void StateReceiver::finish(const Status& restore) {
  if (phase_ != Phase::kReceived) return;
  // The sender has sent everything and only waits for this answer: nothing to drain.
  if (!restore.isOk()) return fail("restore failed: " + restore.message(), false);
  if (const int fd = connFd_.load(); fd >= 0) {
    (void)writeAll(fd, "RESTORED\n", 9);
    ::shutdown(fd, SHUT_RDWR);
  }
  ::unlink(path_.c_str());
  phase_ = Phase::kFinished;
}

void StateReceiver::run() {
  int conn = -1;
  for (;;) {
    conn = ::accept4(listenFd_.load(), nullptr, nullptr, SOCK_CLOEXEC);
    if (conn >= 0 || errno != EINTR) break;
  }
  if (conn < 0) {
    if (!aborted_) fail(errnoText("accept"), false);
    return;
  }
  connFd_ = conn;
  // One transfer per receiver: a second sender (a stray one, or a retry) is refused at once
  // instead of waiting in the backlog until its timeout.
  ::shutdown(listenFd_.load(), SHUT_RDWR);
  if (aborted_) return;
  setTimeouts(conn, timeout_);
  phase_ = Phase::kReceiving;
  auto header = readLine(conn);
  if (!header) return fail("no state header from the sender", true);
  std::istringstream in(*header);
  std::string magic, vm;
  std::uint64_t bytes = 0;
  if (!(in >> magic >> vm >> bytes) || magic != "VRMSTATE1") {
    return fail("bad state header '" + header->substr(0, 80) + "'", true);
  }
  if (vm != vmId_)
    return fail("this endpoint expects the state of vm '" + vmId_ + "', not '" + vm + "'", true);
  const int file = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (file < 0) return fail(errnoText(("create " + path_).c_str()), true);
  if (!writeAll(conn, "READY\n", 6)) {
    ::close(file);
    return fail("the sender went away", true);
  }
  std::vector<char> buf(kChunk);
  std::uint64_t got = 0;
  bool ok = true;
  std::string why;
  while (got < bytes) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, bytes - got));
    const ssize_t n = ::recv(conn, buf.data(), want, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      why = "the sender stopped after " + std::to_string(got) + " of " + std::to_string(bytes) +
            " bytes";
      break;
    }
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = ::write(file, buf.data() + off, static_cast<std::size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        ok = false;
        why = errnoText(("write " + path_).c_str());
        break;
      }
      off += w;
    }
    if (!ok) break;
    got += static_cast<std::uint64_t>(n);
  }
  // The state must be on the staging medium before the copy counts as done (a no-op on tmpfs).
  if (ok && ::fsync(file) != 0) {
    ok = false;
    why = errnoText(("fsync " + path_).c_str());
  }
  ::close(file);
  if (!ok) return fail(why, true);
  if (!writeAll(conn, "RECEIVED\n", 9)) return fail("the sender went away", true);
  phase_ = Phase::kReceived;
}

}  // namespace vrm::vmscheduler
