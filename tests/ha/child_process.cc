#include "child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vrm::testing {

using namespace std::chrono_literals;

Result<std::unique_ptr<ChildProcess>> ChildProcess::start(std::vector<std::string> argv,
                                                          const std::string& stderrPath) {
  if (argv.empty()) return Status::invalid("no program to start");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::unavailable(std::strerror(errno));
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Status::unavailable(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::dup2(fds[1], 1);
    if (!stderrPath.empty()) {
      const int err = ::open(stderrPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (err >= 0) ::dup2(err, 2);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->pid_ = pid;
  child->reader_ = std::thread([c = child.get(), fd = fds[0]] { c->readLoop(fd); });
  return child;
}

void ChildProcess::readLoop(int fd) {
  std::string partial;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buffer, static_cast<std::size_t>(n));
    std::size_t start = 0;
    std::vector<std::string> complete;
    for (std::size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      complete.push_back(partial.substr(start, nl - start));
    }
    partial.erase(0, start);
    if (!complete.empty()) {
      std::lock_guard lock(mu_);
      for (auto& line : complete) lines_.push_back(std::move(line));
      changed_.notify_all();
    }
  }
  ::close(fd);
  std::lock_guard lock(mu_);
  closed_ = true;
  changed_.notify_all();
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (reader_.joinable()) reader_.join();
}

void ChildProcess::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

std::vector<std::string> ChildProcess::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

int ChildProcess::waitForLine(const std::function<bool(const std::string&)>& match,
                              std::size_t from, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  std::size_t next = from;
  while (true) {
    for (; next < lines_.size(); ++next) {
      if (match(lines_[next])) return static_cast<int>(next);
    }
    if (closed_) return -1;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && next >= lines_.size()) {
      return -1;
    }
  }
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = 0;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(5ms);
  }
  return -1;
}

Result<std::unique_ptr<TcpProxy>> TcpProxy::start(const std::string& binary, int toPort) {
  auto process = ChildProcess::start({binary, "--listen", "0", "--to", std::to_string(toPort)});
  if (!process.isOk()) return process.status();
  const int line = (*process)->waitForLine(
      [](const std::string& l) { return l.rfind("listening ", 0) == 0; }, 0, 10s);
  if (line < 0) return Status::unavailable("tcp_proxy did not start listening");
  std::unique_ptr<TcpProxy> proxy(new TcpProxy());
  proxy->port_ = std::stoi((*process)->lines()[line].substr(10));
  proxy->process_ = std::move(*process);
  return proxy;
}

void TcpProxy::command(int sig, const char* ack) {
  const std::size_t from = process_->lines().size();
  process_->signal(sig);
  process_->waitForLine([ack](const std::string& l) { return l == ack; }, from, 5s);
}

void TcpProxy::partition() { command(SIGUSR1, "partitioned"); }
void TcpProxy::heal() { command(SIGUSR2, "healed"); }
void TcpProxy::reset() { command(SIGHUP, "reset"); }

}  // namespace vrm::testing
