// The qemu backend's settings, read from its parameters (the list, with defaults, is in
// qemu_hypervisor.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::vmscheduler::qemu {

struct QemuTemplate {
  std::string kernel, initrd, append;  // a direct-kernel template
  std::string image;                   // or a disk template (qcow2 base image)
  std::string ready;                   // console text marking a clone ready ("": QEMU running)
  // The guest runs an SSH server on port 22 (template.NAME.ssh=on): a clone is ready only once
  // its SSH banner answers through the host's network, its handle gives the ssh line, and the
  // owner's key goes into `account` (kernel templates: on the kernel command line as
  // vrm.ssh_key=TYPE,BASE64, which tests/guest/build-guest-ssh.sh's init writes out).
  bool ssh = false;
  std::string account = "root";  // template.NAME.account: the account handles name
  // template.NAME.data-disk (kernel templates): a raw disk of this many bytes attached as the
  // guest's first virtio disk, DISK-DIR/ID.data.raw, made (sparse) at the VM's first start and
  // removed when it is destroyed. 0 = none.
  std::uint64_t dataDiskBytes = 0;
};

// How the host's guests are networked (parameter network).
enum class GuestNetworkMode {
  kNone,    // no NIC (-nodefaults): handles are the QMP socket
  kUser,    // QEMU user-mode networking, guest port 22 forwarded from forward-address:PORT
  kBridge,  // a tap on an existing bridge through qemu-bridge-helper; the guest's address
            // comes from the bridge's DHCP server, which the agent does not see
};

struct QemuConfig {
  std::string binary = "qemu-system-x86_64";
  // TCG unless told otherwise: a /dev/kvm that opens is no proof KVM works (on these machines it
  // opens, and guests under it never run).
  std::string accel = "tcg";
  std::string runDir, stageDir, parkDir;
  std::string vmStateDir;  // one state file per guest (vm_state_file.h); default <run-dir>/vms
  // The guests' disks (qcow2 overlays, data disks); default run-dir. Two agents given the same
  // directory share storage: a VM migrates with its disk in place (nothing is copied).
  std::string diskDir;
  // disk-storage=local: disk-dir is this host's own (share-nothing): an incoming VM's data disk
  // is made empty here and filled over NBD by its source's mirror (disk_mirror.h); shared (the
  // default): the disk is already there.
  bool localDiskStorage = false;
  std::string migrationAddress = "127.0.0.1";
  int firstPort = 49200, lastPort = 49399;
  GuestNetworkMode network = GuestNetworkMode::kNone;
  std::string bridge;                        // network=bridge: its name (must exist)
  std::string forwardAddress = "127.0.0.1";  // network=user: where forwarded ports listen
  TimeNs bootTimeoutNs = 120 * kNsPerSec;
  TimeNs migrationTimeoutNs = 600 * kNsPerSec;
  int maxRounds = 60;
  TimeNs dirtyRateIntervalNs = 30 * kNsPerSec;
  std::string initialTemplate;
  std::map<std::string, QemuTemplate> templates;
};

// Reads and checks the parameters of host `hostName`: unknown names, malformed values, templates
// that name unreadable files or neither/both of kernel and image, a binary not found, and a
// bridge that does not exist are invalid-argument naming the parameter. Creates nothing.
// `sysClassNet` is where network devices are listed (tests pass a directory of their own).
Result<QemuConfig> parseQemuConfig(const std::string& hostName,
                                   const std::map<std::string, std::string>& params,
                                   const std::string& sysClassNet = "/sys/class/net");

}  // namespace vrm::vmscheduler::qemu
