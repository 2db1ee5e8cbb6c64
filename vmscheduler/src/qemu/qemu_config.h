// The qemu backend's settings, read from its parameters (the list, with defaults, is in
// qemu_hypervisor.h).
#pragma once

#include <map>
#include <string>

#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::vmscheduler::qemu {

struct QemuTemplate {
  std::string kernel, initrd, append;  // a direct-kernel template
  std::string image;                   // or a disk template (qcow2 base image)
  std::string ready;                   // console text marking a clone ready ("": QEMU running)
};

struct QemuConfig {
  std::string binary = "qemu-system-x86_64";
  // TCG unless told otherwise: a /dev/kvm that opens is no proof KVM works (on these machines it
  // opens, and guests under it never run).
  std::string accel = "tcg";
  std::string runDir, stageDir, parkDir;
  std::string vmStateDir;  // one state file per guest (vm_state_file.h); default <run-dir>/vms
  std::string migrationAddress = "127.0.0.1";
  int firstPort = 49200, lastPort = 49399;
  TimeNs bootTimeoutNs = 120 * kNsPerSec;
  TimeNs migrationTimeoutNs = 600 * kNsPerSec;
  int maxRounds = 60;
  TimeNs dirtyRateIntervalNs = 30 * kNsPerSec;
  std::string initialTemplate;
  std::map<std::string, QemuTemplate> templates;
};

// Reads and checks the parameters of host `hostName`: unknown names, malformed values, templates
// that name unreadable files or neither/both of kernel and image, and a binary not found are
// invalid-argument naming the parameter. Creates nothing.
Result<QemuConfig> parseQemuConfig(const std::string& hostName,
                                   const std::map<std::string, std::string>& params);

}  // namespace vrm::vmscheduler::qemu
