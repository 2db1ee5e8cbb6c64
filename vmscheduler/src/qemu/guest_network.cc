#include "qemu/guest_network.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "vrm/protocol/ssh_key.h"

namespace vrm::vmscheduler::qemu {

namespace {

// Closes its descriptor when it goes.
struct Socket {
  int fd = -1;
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
};

bool toAddress(const std::string& address, int port, sockaddr_in& out) {
  std::memset(&out, 0, sizeof out);
  out.sin_family = AF_INET;
  out.sin_port = htons(static_cast<std::uint16_t>(port));
  return inet_pton(AF_INET, address.c_str(), &out.sin_addr) == 1;
}

}  // namespace

std::string stableMac(const std::string& vmId) {
  // FNV-1a, 64 bits; its low 24 bits after the locally administered QEMU prefix.
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : vmId) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char mac[18];
  std::snprintf(mac, sizeof mac, "52:54:00:%02x:%02x:%02x", static_cast<unsigned>((h >> 16) & 0xff),
                static_cast<unsigned>((h >> 8) & 0xff), static_cast<unsigned>(h & 0xff));
  return mac;
}

Result<int> freeTcpPort(const std::string& address) {
  sockaddr_in sa;
  if (!toAddress(address, 0, sa)) {
    return Status::invalid("qemu parameter forward-address: not an IPv4 address: '" + address +
                           "'");
  }
  Socket s{::socket(AF_INET, SOCK_STREAM, 0)};
  if (s.fd < 0) return Status::internal("socket: " + std::string(std::strerror(errno)));
  if (::bind(s.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return Status::internal("no free port on " + address + ": " + std::strerror(errno));
  }
  socklen_t len = sizeof sa;
  if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    return Status::internal("getsockname: " + std::string(std::strerror(errno)));
  }
  return static_cast<int>(ntohs(sa.sin_port));
}

Result<GuestNic> guestNicFor(const QemuConfig& config, const std::string& vmId) {
  GuestNic nic;
  const std::string device = "virtio-net-pci,netdev=net0,mac=" + stableMac(vmId);
  switch (config.network) {
    case GuestNetworkMode::kNone:
      return nic;
    case GuestNetworkMode::kUser: {
      // The port is free when chosen and QEMU binds it a moment later; another process taking
      // it in between makes QEMU exit, which the launch reports.
      auto port = freeTcpPort(config.forwardAddress);
      if (!port) return port.status();
      nic.forwardPort = *port;
      nic.args = {"-netdev",
                  "user,id=net0,hostfwd=tcp:" + config.forwardAddress + ":" +
                      std::to_string(*port) + "-:22",
                  "-device", device};
      return nic;
    }
    case GuestNetworkMode::kBridge:
      nic.args = {"-netdev", "bridge,id=net0,br=" + config.bridge, "-device", device};
      return nic;
  }
  return nic;
}

VmHandle handleFor(const QemuConfig& config, const QemuTemplate& t, const std::string& hostName,
                   const std::string& vmId, int forwardPort, const std::string& qmpPath) {
  VmHandle h{vmId, hostName, "", t.account};
  if (config.network == GuestNetworkMode::kUser && t.ssh && forwardPort > 0) {
    h.address = config.forwardAddress;
    h.port = static_cast<std::uint32_t>(forwardPort);
    h.addressSource = "user-mode network: host " + hostName + " forwards " + config.forwardAddress +
                      ":" + std::to_string(forwardPort) + " to the guest's port 22";
  } else if (config.network == GuestNetworkMode::kBridge) {
    h.addressSource = "bridge " + config.bridge + " on " + hostName + ", MAC " + stableMac(vmId) +
                      ": the address is the bridge's DHCP lease for that MAC, which the agent "
                      "does not see";
  } else {
    h.address = "unix:" + qmpPath;
    h.addressSource = "QMP socket on " + hostName + " (the template runs no SSH server)";
  }
  return h;
}

Result<std::string> kernelKeyArgument(const std::string& key, const std::string& append) {
  std::string value = sshPublicKeyWithoutComment(key);
  for (char& c : value) {
    if (c == ' ') c = ',';
  }
  std::string arg = " vrm.ssh_key=" + value;
  if (append.size() + arg.size() > kMaxKernelCommandLineBytes) {
    return Status::invalid("the SSH public key (" + std::to_string(value.size()) +
                           " bytes) does not fit on the template's kernel command line (" +
                           std::to_string(kMaxKernelCommandLineBytes) +
                           " bytes at most): use an ed25519 or ecdsa key");
  }
  return arg;
}

bool sshBannerAnswers(const std::string& address, int port, std::chrono::milliseconds timeout) {
  sockaddr_in sa;
  if (port <= 0 || !toAddress(address, port, sa)) return false;
  Socket s{::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)};
  if (s.fd < 0) return false;
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) {
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string got;
  while (got.size() < 4) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{s.fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[64];
    const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n <= 0) return false;  // closed: nothing listens behind the forward yet
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got.compare(0, 4, "SSH-") == 0;
}

}  // namespace vrm::vmscheduler::qemu
