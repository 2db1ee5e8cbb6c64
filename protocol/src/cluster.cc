#include "vrm/protocol/cluster.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "vrm/protocol/units.h"

namespace vrm {
namespace {

// Reads typed fields out of one YAML map, remembering the first error with its path.
class Fields {
 public:
  Fields(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {}

  std::string text(const char* key, bool required = true) {
    YAML::Node v = node_[key];
    if (!v) {
      if (required) fail(key, "is required");
      return {};
    }
    if (!v.IsScalar()) {
      fail(key, "must be a string");
      return {};
    }
    return v.as<std::string>();
  }

  template <typename T, typename Parse>
  T quantity(const char* key, T fallback, Parse parse, bool required) {
    YAML::Node v = node_[key];
    if (!v) {
      if (required) fail(key, "is required");
      return fallback;
    }
    if (!v.IsScalar()) {
      fail(key, "must be a scalar");
      return fallback;
    }
    auto r = parse(v.as<std::string>());
    if (!r) {
      fail(key, r.status().message());
      return fallback;
    }
    return static_cast<T>(*r);
  }

  std::uint64_t bytes(const char* key, std::uint64_t fallback, bool required = false) {
    return quantity<std::uint64_t>(key, fallback, parseBytes, required);
  }
  double rate(const char* key, double fallback, bool required = false) {
    return quantity<double>(key, fallback, parseRateBytesPerSec, required);
  }
  TimeNs duration(const char* key, TimeNs fallback) {
    return quantity<TimeNs>(key, fallback, parseDurationNs, false);
  }
  std::uint32_t count(const char* key, std::uint32_t fallback, bool required = false) {
    YAML::Node v = node_[key];
    if (!v) {
      if (required) fail(key, "is required");
      return fallback;
    }
    try {
      long long n = v.as<long long>();
      if (n < 0 || n > 1'000'000) {
        fail(key, "must be between 0 and 1000000");
        return fallback;
      }
      return static_cast<std::uint32_t>(n);
    } catch (const YAML::Exception&) {
      fail(key, "must be a whole number");
      return fallback;
    }
  }
  bool flag(const char* key, bool fallback) {
    YAML::Node v = node_[key];
    if (!v) return fallback;
    try {
      return v.as<bool>();
    } catch (const YAML::Exception&) {
      fail(key, "must be true or false");
      return fallback;
    }
  }

  void fail(const std::string& key, const std::string& why) {
    if (error_.isOk()) error_ = Status::invalid(path_ + "." + key + ": " + why);
  }
  const Status& error() const { return error_; }
  const std::string& path() const { return path_; }

 private:
  const YAML::Node& node_;
  std::string path_;
  Status error_;
};

Result<VmSpec> parseVm(const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) return Status::invalid(path + ": must be a map");
  Fields f(node, path);
  VmSpec vm;
  vm.id = f.text("id");
  vm.cpuCores = f.count("cpu_cores", 1);
  vm.memoryBytes = f.bytes("memory", 0, true);
  vm.nonzeroMemoryBytes = f.bytes("nonzero_memory", vm.memoryBytes);
  vm.dirtyRateBytesPerSec = f.rate("dirty_rate", 0);
  vm.diskBytes = f.bytes("disk", 0);
  vm.allowLive = f.flag("allow_live", true);
  vm.allowSuspend = f.flag("allow_suspend", true);
  if (!f.error().isOk()) return f.error();
  if (vm.id.empty()) return Status::invalid(path + ".id: must not be empty");
  if (vm.memoryBytes == 0) return Status::invalid(path + ".memory: must be positive");
  if (vm.nonzeroMemoryBytes > vm.memoryBytes) {
    return Status::invalid(path + ".nonzero_memory: exceeds memory");
  }
  if (!vm.allowLive && !vm.allowSuspend) {
    return Status::invalid(path + ": allow_live and allow_suspend cannot both be false");
  }
  return vm;
}

Result<HostSpec> parseHost(const YAML::Node& node, const std::string& path, double defaultNic) {
  if (!node.IsMap()) return Status::invalid(path + ": must be a map");
  Fields f(node, path);
  HostSpec host;
  host.name = f.text("name");
  host.cpuCores = f.count("cpu_cores", 0, true);
  host.memoryBytes = f.bytes("memory", 0, true);
  host.nicBandwidthBytesPerSec = f.rate("nic_bandwidth", defaultNic, defaultNic <= 0);
  if (!f.error().isOk()) return f.error();
  if (host.name.empty()) return Status::invalid(path + ".name: must not be empty");
  if (host.cpuCores == 0) return Status::invalid(path + ".cpu_cores: must be positive");
  if (host.memoryBytes == 0) return Status::invalid(path + ".memory: must be positive");
  if (host.nicBandwidthBytesPerSec <= 0) {
    return Status::invalid(path + ".nic_bandwidth: must be positive");
  }
  if (YAML::Node vms = node["vms"]) {
    if (!vms.IsSequence()) return Status::invalid(path + ".vms: must be a list");
    std::uint64_t mem = 0;
    std::uint64_t cores = 0;
    for (std::size_t i = 0; i < vms.size(); ++i) {
      auto vm = parseVm(vms[i], path + ".vms[" + std::to_string(i) + "]");
      if (!vm) return vm.status();
      mem += vm->memoryBytes;
      cores += vm->cpuCores;
      vm->host = host.name;
      host.vms.push_back(std::move(*vm));
    }
    if (mem > host.memoryBytes) {
      return Status::invalid(path + ": its VMs need more memory than the host has");
    }
    if (cores > host.cpuCores) {
      return Status::invalid(path + ": its VMs need more CPU cores than the host has");
    }
  }
  return host;
}

Result<TemplateSpec> parseTemplate(const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) return Status::invalid(path + ": must be a map");
  Fields f(node, path);
  TemplateSpec t;
  t.name = f.text("name");
  t.cpuCores = f.count("cpu_cores", 1);
  t.memoryBytes = f.bytes("memory", 0, true);
  t.cloneTimeNs = f.duration("clone_time", t.cloneTimeNs);
  t.vmsPerHost = f.count("vms_per_host", 1);
  if (!f.error().isOk()) return f.error();
  if (t.name.empty()) return Status::invalid(path + ".name: must not be empty");
  if (t.memoryBytes == 0) return Status::invalid(path + ".memory: must be positive");
  if (t.cpuCores == 0) return Status::invalid(path + ".cpu_cores: must be positive");
  if (t.vmsPerHost == 0) return Status::invalid(path + ".vms_per_host: must be positive");
  return t;
}

}  // namespace

const HostSpec* ClusterSpec::findHost(std::string_view name) const {
  for (const auto& h : hosts) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

const TemplateSpec* ClusterSpec::findTemplate(std::string_view name) const {
  for (const auto& t : templates) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<ClusterSpec> parseClusterSpec(std::string_view yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Status::invalid(std::string("cluster description is not valid YAML: ") + e.what());
  }
  if (!root.IsMap()) return Status::invalid("cluster description must be a YAML map");
  double defaultNic = 0;
  if (YAML::Node d = root["defaults"]) {
    if (!d.IsMap()) return Status::invalid("defaults: must be a map");
    Fields f(d, "defaults");
    defaultNic = f.rate("nic_bandwidth", 0);
    if (!f.error().isOk()) return f.error();
  }
  ClusterSpec spec;
  std::set<std::string> hostNames, vmIds, templateNames;
  YAML::Node hosts = root["hosts"];
  if (!hosts || !hosts.IsSequence() || hosts.size() == 0) {
    return Status::invalid("hosts: a non-empty list of hosts is required");
  }
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    std::string path = "hosts[" + std::to_string(i) + "]";
    auto h = parseHost(hosts[i], path, defaultNic);
    if (!h) return h.status();
    if (!hostNames.insert(h->name).second) {
      return Status::invalid(path + ".name: duplicate host '" + h->name + "'");
    }
    for (const auto& vm : h->vms) {
      if (!vmIds.insert(vm.id).second) {
        return Status::invalid(path + ": duplicate VM id '" + vm.id + "'");
      }
    }
    spec.hosts.push_back(std::move(*h));
  }
  if (YAML::Node templates = root["templates"]) {
    if (!templates.IsSequence()) return Status::invalid("templates: must be a list");
    for (std::size_t i = 0; i < templates.size(); ++i) {
      std::string path = "templates[" + std::to_string(i) + "]";
      auto t = parseTemplate(templates[i], path);
      if (!t) return t.status();
      if (!templateNames.insert(t->name).second) {
        return Status::invalid(path + ".name: duplicate template '" + t->name + "'");
      }
      spec.templates.push_back(std::move(*t));
    }
  }
  return spec;
}

Result<ClusterSpec> loadClusterSpec(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::notFound("cannot open cluster description '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  auto spec = parseClusterSpec(ss.str());
  if (!spec) return Status(spec.status().code(), path + ": " + spec.status().message());
  return spec;
}

}  // namespace vrm
