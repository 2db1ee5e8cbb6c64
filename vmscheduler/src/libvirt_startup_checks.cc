#include "libvirt_startup_checks.h"

#include <libvirt/virterror.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace vrm::vmscheduler::libvirt_detail {

Result<LibvirtSettings> readSettings(backend::BackendParams& params) {
  LibvirtSettings s;
  s.uri = params.take("uri").value_or("");
  s.templateDir = params.take("template-xml-dir").value_or("");
  s.inlineTemplates = params.takePrefixed("template.");
  s.stageDir = params.take("stage-dir").value_or("");
  s.migrationUri = params.take("migration-uri").value_or("");
  s.parkDir = params.take("park-dir").value_or("");
  auto threads = params.takeChoice("threads", {"auto", "on", "off"});
  if (!threads) return threads.status();
  const std::string network = params.take("network").value_or("");
  const std::string bridge = params.take("bridge").value_or("");
  auto source = params.takeChoice("address-source", {"lease", "agent", "none"});
  if (!source) return source.status();
  auto addressTimeout = params.takeDuration("address-timeout");
  if (!addressTimeout) return addressTimeout.status();
  s.addressTimeoutNs = addressTimeout->value_or(s.addressTimeoutNs);
  s.account = params.take("account").value_or(s.account);
  auto migrationTimeout = params.takeDuration("migration-timeout");
  if (!migrationTimeout) return migrationTimeout.status();
  s.migrationTimeoutNs = migrationTimeout->value_or(s.migrationTimeoutNs);
  auto maxRounds = params.takeUnsigned("max-rounds");
  if (!maxRounds) return maxRounds.status();
  s.maxRounds = maxRounds->value_or(s.maxRounds);
  auto disks = params.takeChoice("disk-migration", {"shared", "copy"});
  if (!disks) return disks.status();
  s.diskMigration =
      disks->value_or("shared") == "copy" ? DiskMigration::kCopy : DiskMigration::kShared;
  s.diskDir = params.take("disk-dir").value_or("");
  if (Status st = params.finish(); !st) return st;
  if (s.uri.empty()) return Status::invalid("libvirt backend needs the parameter uri");
  if (!network.empty() && !bridge.empty()) {
    return params.invalid("bridge", "and network cannot both be given (a clone has one NIC)");
  }
  if (!network.empty()) s.nic = {CloneNic::Kind::kNetwork, network};
  if (!bridge.empty()) s.nic = {CloneNic::Kind::kBridge, bridge};
  // Default: the lease where libvirt's network hands them out, else nothing to ask.
  const std::string sourceName = source->value_or(network.empty() ? "none" : "lease");
  s.addressSource = sourceName == "lease"   ? AddressSource::kLease
                    : sourceName == "agent" ? AddressSource::kAgent
                                            : AddressSource::kNone;
  if (s.addressSource == AddressSource::kLease && network.empty()) {
    return params.invalid("address-source",
                          "lease needs a libvirt network (the network parameter): a bridge's "
                          "DHCP server is not libvirt's; use agent");
  }
  if (s.parkDir.empty()) s.parkDir = s.stageDir;
  // The stage dir receives save images from other hosts' libvirtds: it must exist before any
  // prepare-incoming names a file in it (libvirtd creates the file, not its directory).
  if (!s.stageDir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(s.stageDir, ec);
    if (ec) return params.invalid("stage-dir", "'" + s.stageDir + "': " + ec.message());
  }
  if (!s.templateDir.empty() && !std::filesystem::is_directory(s.templateDir)) {
    return Status::invalid("libvirt template-xml-dir '" + s.templateDir + "' is not a directory");
  }
  const std::string threadsMode = threads->value_or("auto");
  s.threaded = threadsMode == "on" || (threadsMode == "auto" && s.uri.rfind("test:", 0) != 0);
  return s;
}

Result<std::string> templateXml(const LibvirtSettings& settings, const std::string& name,
                                const std::string& host) {
  if (auto it = settings.inlineTemplates.find(name); it != settings.inlineTemplates.end()) {
    return it->second;
  }
  const std::string& dir = settings.templateDir;
  if (!dir.empty() && !name.empty() && name.find('/') == std::string::npos && name[0] != '.') {
    std::ifstream in(dir + "/" + name + ".xml");
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      return text.str();
    }
  }
  return Status::invalid("no clone template '" + name + "' on host '" + host + "'" +
                         (dir.empty() ? std::string() : " (looked in " + dir + ")"));
}

namespace {

// invalid-argument naming `setting` when libvirt has no active network `name`.
Status checkNetwork(virConnectPtr conn, const std::string& uri, const std::string& name,
                    const std::string& setting) {
  virNetworkPtr net = virNetworkLookupByName(conn, name.c_str());
  if (!net) {
    Status s = lastError(setting + ": no libvirt network '" + name + "' at '" + uri + "'");
    return s.code() == StatusCode::kNotFound || s.code() == StatusCode::kInternal
               ? Status::invalid(s.message())
               : s;
  }
  const int active = virNetworkIsActive(net);
  virNetworkFree(net);
  if (active == 0) {
    return Status::invalid(setting + ": libvirt network '" + name + "' at '" + uri +
                           "' is not active (virsh net-start " + name + ")");
  }
  return Status::ok();
}

// invalid-argument (unauthorized for a read-only connection) naming `setting` when libvirt does
// not accept template `name`, or one of its networks is missing.
Status checkTemplate(virConnectPtr conn, const LibvirtSettings& settings, const std::string& name,
                     const std::string& xml, const std::string& setting,
                     const std::string& uriSetting) {
  // Define it under a name nothing else uses and undefine it again: libvirt's own parser and the
  // driver's checks (virtualization type, emulator, devices) judge it, here rather than at the
  // first clone. A read-only or refused connection fails here too.
  CloneSpec probe{
      "vrm-check-" + std::to_string(::getpid()) + "-" + name, name, 1, 128ull << 20, "", 0};
  std::string domainXml =
      withNic(instantiateTemplate(xml, probe), settings.nic, macFor(probe.vmId));
  // (Not VIR_DOMAIN_DEFINE_VALIDATE: checking against libvirt's RelaxNG schema costs seconds of
  // CPU per template, and the parser and the driver's checks already catch what would not run.)
  Domain dom(virDomainDefineXML(conn, domainXml.c_str()));
  if (!dom) {
    Status s = lastError(setting + " is refused by libvirt at '" + settings.uri + "'");
    if (s.code() == StatusCode::kUnauthorized) {  // the connection, not the template
      return Status::unauthorized(uriSetting + " may not define domains (checking " + setting +
                                  "): " + s.message());
    }
    return Status::invalid(s.message());
  }
  undefine(dom.ptr);
  for (const std::string& network : networksOf(domainXml)) {
    if (Status s = checkNetwork(conn, settings.uri, network, setting); !s) return s;
  }
  return Status::ok();
}

// The storage pool over `dir` (see checkConnected()): found by its target path and started, or
// made as a transient dir pool (gone when libvirtd restarts; the next agent start makes it again).
Status ensureDiskPool(virConnectPtr conn, const std::string& dir, const std::string& setting) {
  if (virStoragePoolPtr pool = virStoragePoolLookupByTargetPath(conn, dir.c_str())) {
    const int rc = virStoragePoolIsActive(pool) == 1 ? 0 : virStoragePoolCreate(pool, 0);
    virStoragePoolFree(pool);
    if (rc < 0) {
      return Status::invalid(
          lastError(setting + ": cannot start the storage pool over '" + dir + "'").message());
    }
    return Status::ok();
  }
  const std::string name = "vrm-disks-" + std::to_string(std::hash<std::string>{}(dir) % 1000000);
  const std::string xml = "<pool type='dir'><name>" + xmlEscape(name) + "</name><target><path>" +
                          xmlEscape(dir) + "</path></target></pool>";
  virStoragePoolPtr pool = virStoragePoolCreateXML(conn, xml.c_str(), 0);
  if (!pool) {
    Status s = lastError(setting + ": cannot make a storage pool over '" + dir + "'");
    return s.code() == StatusCode::kUnauthorized ? s : Status::invalid(s.message());
  }
  virStoragePoolFree(pool);
  return Status::ok();
}

}  // namespace

Status checkConnected(virConnectPtr conn, const LibvirtSettings& settings, const std::string& host,
                      const backend::BackendParams& params) {
  const CloneNic& nic = settings.nic;
  if (nic.kind == CloneNic::Kind::kNetwork) {
    if (Status s = checkNetwork(conn, settings.uri, nic.name, params.describe("network")); !s) {
      return s;
    }
  }
  if (nic.kind == CloneNic::Kind::kBridge) {
    virInterfacePtr iface = virInterfaceLookupByName(conn, nic.name.c_str());
    if (iface) {
      virInterfaceFree(iface);
    } else if (virErrorPtr e = virGetLastError(); e && e->code == VIR_ERR_NO_INTERFACE) {
      return Status::invalid(params.describe("bridge") + ": host '" + host +
                             "' has no interface '" + nic.name + "' (libvirt at '" + settings.uri +
                             "')");
    }  // a driver without the interface API: the first clone's start will say
  }
  if (!settings.diskDir.empty()) {
    if (Status s = ensureDiskPool(conn, settings.diskDir, params.describe("disk-dir")); !s) {
      return s;
    }
  }
  const std::string uriSetting = params.describe("uri");
  for (const auto& [name, xml] : settings.inlineTemplates) {
    if (Status s = checkTemplate(conn, settings, name, xml, params.describe("template." + name),
                                 uriSetting);
        !s) {
      return s;
    }
  }
  if (settings.templateDir.empty()) return Status::ok();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(settings.templateDir, ec)) {
    if (entry.path().extension() != ".xml") continue;
    const std::string name = entry.path().stem().string();
    if (settings.inlineTemplates.count(name)) continue;
    auto xml = templateXml(settings, name, host);
    if (!xml.isOk()) return xml.status();
    const std::string setting = "libvirt template " + entry.path().string();
    if (Status s = checkTemplate(conn, settings, name, *xml, setting, uriSetting); !s) return s;
  }
  return Status::ok();
}

}  // namespace vrm::vmscheduler::libvirt_detail
