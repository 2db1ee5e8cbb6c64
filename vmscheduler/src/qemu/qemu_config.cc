#include "qemu/qemu_config.h"

#include <unistd.h>

#include <sstream>

#include "backend/params.h"
#include "qemu/qemu_support.h"
#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::qemu {

Result<QemuConfig> parseQemuConfig(const std::string& hostName,
                                   const std::map<std::string, std::string>& params,
                                   const std::string& sysClassNet) {
  backend::BackendParams p("qemu", params, {{"state-dir", "stage-dir"}});
  if (!p.status()) return p.status();
  QemuConfig config;
  config.runDir = "/tmp/vrm-qemu-" + hostName;
  config.stageDir = "/dev/shm/vrm-" + hostName;
  if (auto v = p.take("binary")) config.binary = *v;
  auto accel = p.takeChoice("accel", {"tcg", "kvm"});
  if (!accel) return accel.status();
  if (*accel) config.accel = **accel;
  if (auto v = p.take("run-dir")) config.runDir = *v;
  if (auto v = p.take("stage-dir")) config.stageDir = *v;
  if (auto v = p.take("park-dir")) config.parkDir = *v;
  if (auto v = p.take("vm-state-dir")) config.vmStateDir = *v;
  if (auto v = p.take("disk-dir")) config.diskDir = *v;
  auto storage = p.takeChoice("disk-storage", {"shared", "local"});
  if (!storage) return storage.status();
  config.localDiskStorage = *storage == "local";
  if (auto v = p.take("migration-address")) config.migrationAddress = *v;
  if (auto v = p.take("migration-ports")) {
    int first = 0, last = 0;
    char dash = 0;
    std::istringstream in(*v);
    if (!(in >> first >> dash >> last) || dash != '-' || first <= 0 || last < first ||
        last > 65535) {
      return p.invalid("migration-ports", "must be FIRST-LAST, got '" + *v + "'");
    }
    config.firstPort = first;
    config.lastPort = last;
  }
  auto network = p.takeChoice("network", {"none", "user", "bridge"});
  if (!network) return network.status();
  if (*network == "user") config.network = GuestNetworkMode::kUser;
  if (*network == "bridge") config.network = GuestNetworkMode::kBridge;
  if (auto v = p.take("bridge")) config.bridge = *v;
  if (auto v = p.take("forward-address")) config.forwardAddress = *v;
  if (config.network == GuestNetworkMode::kBridge) {
    if (config.bridge.empty()) return p.invalid("bridge", "network=bridge needs bridge=NAME");
    // A bridge is a network device with a bridge/ directory; a plain NIC of that name is not.
    if (access((sysClassNet + "/" + config.bridge + "/bridge").c_str(), F_OK) != 0) {
      return p.invalid("bridge", "no bridge '" + config.bridge + "' on this host (" + sysClassNet +
                                     "/" + config.bridge + "/bridge is missing)");
    }
  } else if (!config.bridge.empty()) {
    return p.invalid("bridge", "is only for network=bridge");
  }
  for (auto [key, field] : {std::pair{"boot-timeout", &config.bootTimeoutNs},
                            {"migration-timeout", &config.migrationTimeoutNs},
                            {"dirty-rate-interval", &config.dirtyRateIntervalNs}}) {
    auto d = p.takeDuration(key);
    if (!d) return d.status();
    if (*d) *field = **d;
  }
  auto rounds = p.takeInteger("max-rounds");
  if (!rounds) return rounds.status();
  if (*rounds) config.maxRounds = static_cast<int>(**rounds);
  if (auto v = p.take("initial-template")) config.initialTemplate = *v;
  for (const auto& [rest, value] : p.takePrefixed("template.")) {
    const auto dot = rest.rfind('.');
    if (dot == std::string::npos || dot == 0) {
      return Status::invalid("qemu parameter template." + rest + ": no name");
    }
    const std::string name = rest.substr(0, dot);
    const std::string field = rest.substr(dot + 1);
    QemuTemplate& t = config.templates[name];
    if (field == "kernel") {
      t.kernel = value;
    } else if (field == "initrd") {
      t.initrd = value;
    } else if (field == "append") {
      t.append = value;
    } else if (field == "image") {
      t.image = value;
    } else if (field == "data-disk") {
      auto bytes = parseBytes(value);
      if (!bytes || *bytes == 0) {
        return Status::invalid("qemu parameter template." + rest + ": a size like 64MiB, got '" +
                               value + "'");
      }
      t.dataDiskBytes = *bytes;
    } else if (field == "ready") {
      t.ready = value;
    } else if (field == "account") {
      if (value.empty()) return Status::invalid("qemu parameter template." + rest + ": empty");
      t.account = value;
    } else if (field == "ssh") {
      if (value != "on" && value != "off") {
        return Status::invalid("qemu parameter template." + rest + ": must be on or off, got '" +
                               value + "'");
      }
      t.ssh = value == "on";
    } else {
      return Status::invalid("unknown qemu template field '" + field + "' in template." + rest);
    }
  }
  if (Status s = p.finish(); !s) return s;
  for (const auto& [name, t] : config.templates) {
    if (t.kernel.empty() == t.image.empty()) {
      return Status::invalid("qemu template '" + name + "' needs exactly one of kernel or image");
    }
    if (t.dataDiskBytes > 0 && t.kernel.empty()) {
      return Status::invalid("qemu template '" + name +
                             "': data-disk is for kernel templates (an image template's clones "
                             "have their overlay)");
    }
    if (t.ssh && config.network == GuestNetworkMode::kNone) {
      return Status::invalid("qemu template '" + name +
                             "': ssh=on needs a network (parameter network=user or bridge)");
    }
    for (const std::string* path : {&t.kernel, &t.initrd, &t.image}) {
      if (!path->empty() && access(path->c_str(), R_OK) != 0) {
        return Status::invalid("qemu template '" + name + "': cannot read " + *path);
      }
    }
  }
  if (!onPath(config.binary)) {
    return Status::invalid("qemu binary '" + config.binary + "' not found");
  }
  if (config.parkDir.empty()) config.parkDir = config.runDir + "/parked";
  if (config.vmStateDir.empty()) config.vmStateDir = config.runDir + "/vms";
  if (config.diskDir.empty()) config.diskDir = config.runDir;
  return config;
}

}  // namespace vrm::vmscheduler::qemu
