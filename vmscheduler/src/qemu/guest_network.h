// The network side of a qemu guest: its NIC's QEMU arguments (a stable MAC; user-mode
// networking with a forwarded SSH port, or a tap on a bridge), the handle that says how to reach
// it and where that address comes from, the owner's key for the kernel command line, and the
// check that its SSH server answers.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "qemu/qemu_config.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler::qemu {

// "52:54:00:XX:XX:XX" from a hash of the VM id: the same on every host and every launch, so a
// migrated or restarted guest keeps its MAC (and a bridge's DHCP server its lease).
std::string stableMac(const std::string& vmId);

// A TCP port free on `address` now, chosen by the OS (bind to port 0). Errors: internal.
Result<int> freeTcpPort(const std::string& address);

struct GuestNic {
  std::vector<std::string> args;  // appended to QEMU's command line; empty for network=none
  int forwardPort = 0;            // network=user: the host port forwarded to guest port 22
};

// The NIC of VM `vmId` on a host with `config`: virtio-net with stableMac(vmId) on a user-mode
// netdev whose hostfwd=tcp:FORWARD-ADDRESS:PORT-:22 uses a freeTcpPort(), or on
// `-netdev bridge,br=BRIDGE` (qemu-bridge-helper). Errors: internal (no free port).
Result<GuestNic> guestNicFor(const QemuConfig& config, const std::string& vmId);

// How to reach a clone: network=user with an SSH template: forward-address, the forwarded port,
// the template's account; network=bridge: no address (the bridge's DHCP server has it, not the
// agent), saying so with the MAC; otherwise the QMP socket. addressSource says which, always.
VmHandle handleFor(const QemuConfig& config, const QemuTemplate& t, const std::string& hostName,
                   const std::string& vmId, int forwardPort, const std::string& qmpPath);

// " vrm.ssh_key=TYPE,BASE64" for a kernel command line (the key's comment dropped, its space a
// comma: tests/guest/build-guest-ssh.sh's init reads it back). The key must have passed
// checkSshPublicKey(). Errors: invalid-argument when the key and the template's append would
// pass kMaxKernelCommandLineBytes.
inline constexpr std::size_t kMaxKernelCommandLineBytes = 2047;  // x86's COMMAND_LINE_SIZE - 1
Result<std::string> kernelKeyArgument(const std::string& key, const std::string& append);

// True when a TCP connection to address:port yields an SSH server's banner ("SSH-") within
// `timeout`. (A user-mode forward accepts connections while the guest is not listening, so the
// connect alone proves nothing.)
bool sshBannerAnswers(const std::string& address, int port, std::chrono::milliseconds timeout);

}  // namespace vrm::vmscheduler::qemu
