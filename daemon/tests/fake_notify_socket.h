// The service manager's end of systemd's notify protocol, for tests: a unix datagram socket the
// test binds, whose path goes into $NOTIFY_SOCKET as systemd sets it for a Type=notify unit.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace vrm::daemon::testing {

class FakeNotifySocket {
 public:
  FakeNotifySocket() {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("vrm-notify-" + std::to_string(getpid()) + "-" + std::to_string(counter++)))
                .string();
    std::filesystem::remove(path_);
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      throw std::runtime_error("cannot bind " + path_);
    }
  }
  ~FakeNotifySocket() {
    close(fd_);
    std::filesystem::remove(path_);
  }
  FakeNotifySocket(const FakeNotifySocket&) = delete;
  FakeNotifySocket& operator=(const FakeNotifySocket&) = delete;

  // The value for $NOTIFY_SOCKET.
  const std::string& path() const { return path_; }

  // The next datagram, waiting at most `timeout` for it (0: only one already sent); "" when
  // none came. sd_notify() sends synchronously: what a call sent is there when it returns.
  std::string next(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return "";
    char buffer[4096];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace vrm::daemon::testing
