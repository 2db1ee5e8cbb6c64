#include "qemu/qemu_config.h"

#include <unistd.h>

#include <sstream>

#include "backend/params.h"
#include "qemu/qemu_support.h"

namespace vrm::vmscheduler::qemu {

Result<QemuConfig> parseQemuConfig(const std::string& hostName,
                                   const std::map<std::string, std::string>& params) {
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
    } else if (field == "ready") {
      t.ready = value;
    } else {
      return Status::invalid("unknown qemu template field '" + field + "' in template." + rest);
    }
  }
  if (Status s = p.finish(); !s) return s;
  for (const auto& [name, t] : config.templates) {
    if (t.kernel.empty() == t.image.empty()) {
      return Status::invalid("qemu template '" + name + "' needs exactly one of kernel or image");
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
  return config;
}

}  // namespace vrm::vmscheduler::qemu
