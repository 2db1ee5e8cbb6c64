#include "libvirt_hypervisor.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>

#include "vrm/protocol/units.h"

namespace vrm::vmscheduler {
namespace {

using SteadyClock = std::chrono::steady_clock;

TimeNs since(SteadyClock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - t0).count();
}

extern "C" void quietLibvirtErrors(void*, virErrorPtr) {}

void initLibvirtOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, quietLibvirtErrors);
  });
}

// Owns one virDomainPtr.
struct Domain {
  virDomainPtr ptr = nullptr;
  explicit Domain(virDomainPtr p = nullptr) : ptr(p) {}
  Domain(const Domain&) = delete;
  Domain& operator=(const Domain&) = delete;
  Domain(Domain&& o) noexcept : ptr(std::exchange(o.ptr, nullptr)) {}
  Domain& operator=(Domain&& o) noexcept {
    std::swap(ptr, o.ptr);
    return *this;
  }
  ~Domain() {
    if (ptr) virDomainFree(ptr);
  }
  explicit operator bool() const { return ptr != nullptr; }
};

// A C string libvirt allocated, freed on scope exit.
struct CString {
  char* s = nullptr;
  ~CString() { free(s); }
};

Result<Domain> lookup(virConnectPtr conn, const std::string& vmId, const std::string& host) {
  Domain d(virDomainLookupByName(conn, vmId.c_str()));
  if (!d) {
    Status s = libvirt_detail::lastError("vm '" + vmId + "' on host '" + host + "'");
    if (s.code() == StatusCode::kNotFound) {
      return Status::notFound("vm '" + vmId + "' is not on host '" + host + "'");
    }
    return s;
  }
  return d;
}

VmState stateOf(int libvirtState) {
  switch (libvirtState) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
    case VIR_DOMAIN_NOSTATE:
      return VmState::kRunning;
    default:
      return VmState::kSuspended;  // paused, shut off, shutting down, crashed, PM-suspended
  }
}

std::string xmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string xmlUnescape(std::string text) {
  const std::pair<const char*, char> entities[] = {
      {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}, {"&quot;", '"'}, {"&amp;", '&'}};
  for (const auto& [entity, c] : entities) {
    for (std::size_t at = text.find(entity); at != std::string::npos;
         at = text.find(entity, at + 1)) {
      text.replace(at, std::strlen(entity), 1, c);
    }
  }
  return text;
}

// The value of attribute `name` in an element written by libvirt (either quote style).
std::string attribute(const std::string& xml, const std::string& name) {
  for (char quote : {'"', '\''}) {
    const std::string key = " " + name + "=" + quote;
    const auto at = xml.find(key);
    if (at == std::string::npos) continue;
    const auto begin = at + key.size();
    const auto end = xml.find(quote, begin);
    if (end == std::string::npos) return {};
    return xmlUnescape(xml.substr(begin, end - begin));
  }
  return {};
}

struct Tags {
  std::string reservationId;
  std::string templateName;
};

Tags tagsOf(virDomainPtr dom) {
  CString meta{virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                                    LibvirtHypervisor::kMetadataNamespace, 0)};
  if (!meta.s) return {};
  const std::string xml = meta.s;
  return {attribute(xml, "reservation"), attribute(xml, "template")};
}

// Position of the opening tag `<tag` followed by a space, '>' or '/', or npos.
std::size_t findOpen(const std::string& xml, const std::string& tag, std::size_t from = 0) {
  for (std::size_t at = xml.find("<" + tag, from); at != std::string::npos;
       at = xml.find("<" + tag, at + 1)) {
    const char next = at + tag.size() + 1 < xml.size() ? xml[at + tag.size() + 1] : '\0';
    if (next == ' ' || next == '>' || next == '/' || next == '\t' || next == '\n') return at;
  }
  return std::string::npos;
}

// Replaces the first <tag ...>text</tag> element: its text only (keepAttributes) or all of it.
void replaceElement(std::string& xml, const std::string& tag, const std::string& text,
                    bool keepAttributes, const std::string& attributes = "") {
  const auto open = findOpen(xml, tag);
  if (open == std::string::npos) return;
  const auto openEnd = xml.find('>', open);
  const auto close = xml.find("</" + tag + ">", open);
  if (openEnd == std::string::npos || close == std::string::npos || close < openEnd) return;
  const std::string head =
      keepAttributes ? xml.substr(open, openEnd - open + 1) : "<" + tag + attributes + ">";
  xml.replace(open, close + tag.size() + 3 - open, head + text + "</" + tag + ">");
}

void replaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

std::string addressOf(virDomainPtr dom, const std::string& fallback) {
  virDomainInterfacePtr* ifaces = nullptr;
  const int n =
      virDomainInterfaceAddresses(dom, &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
  std::string address;
  for (int i = 0; i < n; ++i) {
    for (unsigned j = 0; address.empty() && j < ifaces[i]->naddrs; ++j) {
      if (ifaces[i]->addrs[j].addr) address = ifaces[i]->addrs[j].addr;
    }
    virDomainInterfaceFree(ifaces[i]);
  }
  free(ifaces);
  return address.empty() ? fallback : address;
}

// Removes a domain's persistent definition, if it has one.
void undefine(virDomainPtr dom) {
  if (virDomainIsPersistent(dom) != 1) return;
  if (virDomainUndefineFlags(
          dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0) {
    (void)virDomainUndefine(dom);
  }
}

}  // namespace

namespace libvirt_detail {

Status lastError(const std::string& what) {
  virErrorPtr e = virGetLastError();
  const int code = e ? e->code : VIR_ERR_INTERNAL_ERROR;
  const std::string message =
      what + ": " + (e && e->message ? std::string(e->message) : "unknown libvirt error");
  switch (code) {
    case VIR_ERR_NO_DOMAIN:
      return Status::notFound(message);
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_INVALID_ARG:
    case VIR_ERR_CONFIG_UNSUPPORTED:
    case VIR_ERR_INVALID_DOMAIN:
    case VIR_ERR_INVALID_CONN:
      return Status::invalid(message);
    case VIR_ERR_OPERATION_INVALID:
    case VIR_ERR_OPERATION_FAILED:
    case VIR_ERR_OPERATION_UNSUPPORTED:
    case VIR_ERR_ARGUMENT_UNSUPPORTED:
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_OPERATION_DENIED:
    case VIR_ERR_DOM_EXIST:
    case VIR_ERR_MIGRATE_UNSAFE:
    case VIR_ERR_OPERATION_TIMEOUT:
      return Status::rejected(message);
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_CANCELLED:
    case VIR_ERR_AUTH_UNAVAILABLE:
    case VIR_ERR_ACCESS_DENIED:
      return Status::unauthorized(message);
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_SYSTEM_ERROR:
    case VIR_ERR_RPC:
      return Status::unavailable(message);
    default:
      return Status::internal(message);
  }
}

void applyJobStats(virTypedParameterPtr params, int count, MigrationObservation& obs) {
  unsigned long long v = 0;
  auto get = [&](const char* key) { return virTypedParamsGetULLong(params, count, key, &v) == 1; };
  TimeNs elapsedNs = 0;
  if (get(VIR_DOMAIN_JOB_TIME_ELAPSED)) elapsedNs = static_cast<TimeNs>(v) * kNsPerMs;
  if (get(VIR_DOMAIN_JOB_SETUP_TIME)) obs.setupNs = static_cast<TimeNs>(v) * kNsPerMs;
  if (get(VIR_DOMAIN_JOB_DOWNTIME)) obs.downtimeNs = static_cast<TimeNs>(v) * kNsPerMs;
  if (get(VIR_DOMAIN_JOB_DATA_PROCESSED) || get(VIR_DOMAIN_JOB_MEMORY_PROCESSED)) {
    obs.transferredBytes = v;
  }
  if (get(VIR_DOMAIN_JOB_MEMORY_ITERATION)) obs.rounds = static_cast<std::uint32_t>(v);
  const TimeNs sendingNs = elapsedNs - obs.setupNs;
  if (obs.transferredBytes > 0 && sendingNs > 0) {
    obs.bandwidthBytesPerSec = static_cast<double>(obs.transferredBytes) / nsToSeconds(sendingNs);
  } else if (get(VIR_DOMAIN_JOB_MEMORY_BPS)) {
    obs.bandwidthBytesPerSec = static_cast<double>(v);
  }
  if (get(VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE)) {
    const double pagesPerSec = static_cast<double>(v);
    const double pageBytes = get(VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE) ? static_cast<double>(v) : 4096;
    obs.dirtyRateBytesPerSec = pagesPerSec * pageBytes;
  }
}

std::string instantiateTemplate(std::string xml, const CloneSpec& spec) {
  const bool placeholders = xml.find("{{name}}") != std::string::npos;
  replaceAll(xml, "{{name}}", xmlEscape(spec.vmId));
  replaceAll(xml, "{{memory_kib}}", std::to_string(spec.memoryBytes / 1024));
  replaceAll(xml, "{{vcpus}}", std::to_string(spec.cpuCores));
  if (placeholders) return xml;
  replaceElement(xml, "name", xmlEscape(spec.vmId), true);
  if (auto uuid = findOpen(xml, "uuid"); uuid != std::string::npos) {
    const auto close = xml.find("</uuid>", uuid);
    if (close != std::string::npos) xml.erase(uuid, close + 7 - uuid);
  }
  if (spec.memoryBytes > 0) {
    const std::string kib = std::to_string(spec.memoryBytes / 1024);
    replaceElement(xml, "memory", kib, false, " unit='KiB'");
    replaceElement(xml, "currentMemory", kib, false, " unit='KiB'");
  }
  if (spec.cpuCores > 0) replaceElement(xml, "vcpu", std::to_string(spec.cpuCores), true);
  return xml;
}

}  // namespace libvirt_detail

using libvirt_detail::lastError;

Result<std::unique_ptr<Hypervisor>> LibvirtHypervisor::create(const HypervisorOptions& options) {
  initLibvirtOnce();
  const HostSpec& spec = options.host;
  if (spec.name.empty()) return Status::invalid("libvirt host needs a name");
  std::unique_ptr<LibvirtHypervisor> hv(new LibvirtHypervisor());
  std::string threads = "auto";
  for (const auto& [key, value] : options.params) {
    if (key == "uri") {
      hv->uri_ = value;
    } else if (key == "template_xml_dir") {
      hv->templateDir_ = value;
    } else if (key.rfind("template.", 0) == 0 && key.size() > 9) {
      hv->inlineTemplates_[key.substr(9)] = value;
    } else if (key == "state_dir") {
      hv->stateDir_ = value;
    } else if (key == "migration_uri") {
      hv->migrationUri_ = value;
    } else if (key == "park_dir") {
      hv->parkDir_ = value;
    } else if (key == "threads") {
      if (value != "auto" && value != "on" && value != "off") {
        return Status::invalid("libvirt parameter threads must be auto, on or off, got '" + value +
                               "'");
      }
      threads = value;
    } else {
      return Status::invalid("unknown libvirt parameter '" + key +
                             "' (known: uri, template_xml_dir, template.NAME, state_dir, "
                             "migration_uri, park_dir, threads)");
    }
  }
  if (hv->uri_.empty()) return Status::invalid("libvirt backend needs the parameter uri");
  if (hv->parkDir_.empty()) hv->parkDir_ = hv->stateDir_;
  if (!hv->templateDir_.empty() && !std::filesystem::is_directory(hv->templateDir_)) {
    return Status::invalid("libvirt template_xml_dir '" + hv->templateDir_ +
                           "' is not a directory");
  }
  hv->threaded_ = threads == "on" || (threads == "auto" && hv->uri_.rfind("test:", 0) != 0);

  hv->conn_ = virConnectOpen(hv->uri_.c_str());
  if (!hv->conn_) {
    return Status::invalid(lastError("cannot connect to libvirt at '" + hv->uri_ + "'").message());
  }
  virNodeInfo node;
  if (virNodeGetInfo(hv->conn_, &node) < 0) {
    return Status::invalid(lastError("libvirt at '" + hv->uri_ + "': node info").message());
  }
  hv->host_.name = spec.name;
  hv->host_.cpuCores = node.cpus;
  hv->host_.memoryBytes = static_cast<std::uint64_t>(node.memory) * 1024;
  hv->host_.nicBandwidthBytesPerSec = spec.nicBandwidthBytesPerSec;
  for (const VmSpec& v : spec.vms) hv->hints_[v.id] = v;
  return std::unique_ptr<Hypervisor>(std::move(hv));
}

LibvirtHypervisor::~LibvirtHypervisor() {
  waitForWorkers();
  ops_.clear();
  if (conn_) virConnectClose(conn_);
}

void LibvirtHypervisor::waitForWorkers() {
  for (auto& [id, op] : ops_) {
    if (op.future.valid()) op.future.wait();
  }
}

std::string LibvirtHypervisor::migrationEndpoint() const {
  if (!migrationUri_.empty()) return migrationUri_;
  if (!stateDir_.empty()) return "save:" + stateDir_;
  return uri_;
}

std::vector<VmInfo> LibvirtHypervisor::inventory() const {
  std::map<std::string, VmInfo> vms;
  virDomainPtr* doms = nullptr;
  const int n = virConnectListAllDomains(conn_, &doms, 0);
  if (n < 0) spdlog::warn("{}", lastError("libvirt inventory of " + host_.name).toString());
  for (int i = 0; i < n; ++i) {
    Domain dom(doms[i]);
    VmInfo vm;
    vm.id = virDomainGetName(dom.ptr);
    virDomainInfo info;
    if (virDomainGetInfo(dom.ptr, &info) < 0) continue;  // vanished meanwhile
    vm.state = stateOf(info.state);
    if (info.state == VIR_DOMAIN_SHUTOFF && !parkDir_.empty()) {
      std::error_code ec;
      const std::string image = parkImage(vm.id);
      if (std::filesystem::exists(image, ec)) {
        vm.state = VmState::kParked;
        vm.stateFile = image;
      }
    }
    vm.cpuCores = info.nrVirtCpu;
    vm.memoryBytes = static_cast<std::uint64_t>(info.maxMem) * 1024;
    vm.nonzeroMemoryBytes = std::min<std::uint64_t>(info.memory * 1024ull, vm.memoryBytes);
    if (auto hint = hints_.find(vm.id); hint != hints_.end()) {
      vm.nonzeroMemoryBytes = std::min(hint->second.nonzeroMemoryBytes, vm.memoryBytes);
      vm.dirtyRateBytesPerSec = hint->second.dirtyRateBytesPerSec;
      vm.diskBytes = hint->second.diskBytes;
      vm.allowLive = hint->second.allowLive;
      vm.allowSuspend = hint->second.allowSuspend;
    }
    const Tags tags = tagsOf(dom.ptr);
    vm.reservationId = tags.reservationId;
    vm.templateName = tags.templateName;
    if (auto a = addresses_.find(vm.id); a != addresses_.end()) vm.address = a->second;
    vms[vm.id] = std::move(vm);
  }
  free(doms);
  for (const auto& [id, local] : parking_) {
    auto it = vms.find(id);
    if (it != vms.end()) {
      it->second.state =
          local == Operation::Local::kPark ? VmState::kMigratingOut : VmState::kIncoming;
    }
  }
  for (const auto& [id, busy] : busy_) {
    auto it = vms.find(id);
    if (it == vms.end() || busy.state != VmState::kMigratingOut) {
      vms[id] = busy;  // incoming or cloning: libvirt does not have it (complete) yet
    } else {
      it->second.state = VmState::kMigratingOut;
    }
  }
  std::vector<VmInfo> out;
  out.reserve(vms.size());
  for (auto& [id, vm] : vms) out.push_back(std::move(vm));
  return out;
}

Status LibvirtHypervisor::checkRoom(std::uint32_t cores, std::uint64_t memoryBytes) const {
  std::uint64_t usedMemory = 0;
  std::uint64_t usedCores = 0;
  for (const VmInfo& vm : inventory()) {
    if (vm.state == VmState::kParked) continue;
    usedMemory += vm.memoryBytes;
    usedCores += vm.cpuCores;
  }
  const std::uint64_t freeMemory =
      host_.memoryBytes > usedMemory ? host_.memoryBytes - usedMemory : 0;
  const std::uint64_t freeCores = host_.cpuCores > usedCores ? host_.cpuCores - usedCores : 0;
  if (memoryBytes > freeMemory) {
    return Status::rejected("not enough free memory on host '" + host_.name + "': need " +
                            formatBytes(static_cast<double>(memoryBytes)) + ", free " +
                            formatBytes(static_cast<double>(freeMemory)));
  }
  if (cores > freeCores) {
    return Status::rejected("not enough free cpu cores on host '" + host_.name + "': need " +
                            std::to_string(cores) + ", free " + std::to_string(freeCores));
  }
  return Status::ok();
}

Status LibvirtHypervisor::checkIdle(const std::string& vmId) const {
  if (auto p = parking_.find(vmId); p != parking_.end()) {
    return Status::rejected("vm '" + vmId + "' is busy (" +
                            (p->second == Operation::Local::kPark ? "parking" : "unparking") + ")");
  }
  if (auto it = busy_.find(vmId); it != busy_.end()) {
    return Status::rejected("vm '" + vmId + "' is busy (" + vmStateName(it->second.state) + ")");
  }
  return Status::ok();
}

Result<std::string> LibvirtHypervisor::prepareIncoming(const VmInfo& vm) {
  if (vm.id.empty()) return Status::invalid("incoming vm has no id");
  if (vm.memoryBytes == 0 || vm.cpuCores == 0) {
    return Status::invalid("incoming vm '" + vm.id + "' needs positive memory and cpu cores");
  }
  if (busy_.count(vm.id) || lookup(conn_, vm.id, host_.name).isOk()) {
    return Status::rejected("vm id '" + vm.id + "' already exists on host '" + host_.name + "'");
  }
  std::string endpoint;
  if (!migrationUri_.empty()) {
    endpoint = migrationUri_;
  } else if (!stateDir_.empty()) {
    const std::string path = stateDir_ + "/" + vm.id + ".vrmsave";
    incomingPaths_[vm.id] = path;
    endpoint = "save:" + path;
  } else {
    return Status::rejected("host '" + host_.name +
                            "' cannot receive VMs: its libvirt backend has neither a "
                            "migration_uri nor a state_dir");
  }
  if (Status s = checkRoom(vm.cpuCores, vm.memoryBytes); !s) {
    incomingPaths_.erase(vm.id);
    return s;
  }
  VmInfo incoming = vm;
  incoming.state = VmState::kIncoming;
  busy_[vm.id] = std::move(incoming);
  return endpoint;
}

Status LibvirtHypervisor::finishIncoming(const std::string& vmId, bool commit) {
  auto it = busy_.find(vmId);
  if (it == busy_.end()) {
    if (lookup(conn_, vmId, host_.name).isOk()) {
      return Status::rejected("vm '" + vmId + "' is not incoming (already on host '" + host_.name +
                              "')");
    }
    return Status::notFound("vm '" + vmId + "' is not on host '" + host_.name + "'");
  }
  if (it->second.state != VmState::kIncoming) {
    return Status::rejected("vm '" + vmId + "' is not incoming (" + vmStateName(it->second.state) +
                            ")");
  }
  std::string path;
  if (auto p = incomingPaths_.find(vmId); p != incomingPaths_.end()) path = p->second;
  if (!commit) {
    busy_.erase(it);
    incomingPaths_.erase(vmId);
    if (!path.empty()) std::filesystem::remove(path);
    return Status::ok();
  }
  auto arrived = lookup(conn_, vmId, host_.name);  // peer-to-peer migration defines it itself
  if (!arrived.isOk()) {
    if (path.empty() || !std::filesystem::exists(path)) {
      return Status::rejected("vm '" + vmId + "' has not arrived on host '" + host_.name + "'");
    }
    if (virDomainRestore(conn_, path.c_str()) < 0) {
      return lastError("restore vm '" + vmId + "' on host '" + host_.name + "' from " + path);
    }
    arrived = lookup(conn_, vmId, host_.name);
    if (!arrived.isOk()) return arrived.status();
    // A restored domain is transient; keep it defined like it was at the source.
    CString xml{virDomainGetXMLDesc(arrived->ptr, VIR_DOMAIN_XML_SECURE)};
    Domain persistent(xml.s ? virDomainDefineXML(conn_, xml.s) : nullptr);
    if (!persistent) {
      spdlog::warn("{}", lastError("define restored vm '" + vmId + "'").toString());
    }
    std::filesystem::remove(path);
  }
  busy_.erase(it);
  incomingPaths_.erase(vmId);
  return Status::ok();
}

Status LibvirtHypervisor::startMigration(OperationId id, const MigrationSpec& spec) {
  if (Status s = checkIdle(spec.vmId); !s) return s;
  auto dom = lookup(conn_, spec.vmId, host_.name);
  if (!dom.isOk()) return dom.status();
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  if (spec.destinationHost.empty()) return Status::invalid("migration needs a destination host");
  if (spec.destinationHost == host_.name) {
    return Status::invalid("vm '" + spec.vmId + "' cannot migrate to its own host");
  }
  if (spec.maxBandwidthBytesPerSec < 0 || !std::isfinite(spec.maxBandwidthBytesPerSec)) {
    return Status::invalid("max bandwidth must be a finite rate >= 0");
  }
  if (spec.destinationEndpoint.empty()) {
    return Status::invalid("migration of '" + spec.vmId + "' needs the destination's endpoint");
  }
  VmInfo vm;
  for (VmInfo& v : inventory()) {
    if (v.id == spec.vmId) vm = std::move(v);
  }

  Operation op;
  op.isMigration = true;
  op.vmId = spec.vmId;
  MigrationObservation& obs = op.observation;
  obs.vmId = spec.vmId;
  obs.fromHost = host_.name;
  obs.toHost = spec.destinationHost;
  obs.mode = spec.mode;
  obs.memoryBytes = vm.memoryBytes;
  obs.nonzeroMemoryBytes = vm.nonzeroMemoryBytes;
  obs.dirtyRateBytesPerSec = vm.dirtyRateBytesPerSec;

  virConnectPtr conn = conn_;
  const std::string vmId = spec.vmId;
  const std::string host = host_.name;
  if (spec.destinationEndpoint.rfind("save:", 0) == 0) {
    // Suspend-copy-resume through a save image the destination restores.
    obs.mode = MigrationMode::kSuspendCopyResume;
    const std::string path = spec.destinationEndpoint.substr(5);
    op.work = [conn, vmId, host, path]() -> WorkResult {
      WorkResult r;
      const auto t0 = SteadyClock::now();
      auto dom = lookup(conn, vmId, host);
      if (!dom.isOk()) {
        r.status = dom.status();
        return r;
      }
      r.migration.setupNs = since(t0);
      const auto t1 = SteadyClock::now();
      if (virDomainSaveFlags(dom->ptr, path.c_str(), nullptr, 0) < 0) {
        r.status = lastError("save vm '" + vmId + "' to " + path);
        return r;
      }
      r.migration.downtimeNs = since(t1);
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(path, ec);
      r.migration.transferredBytes = ec ? 0 : bytes;
      r.migration.rounds = 1;
      if (r.migration.downtimeNs > 0) {
        r.migration.bandwidthBytesPerSec =
            static_cast<double>(r.migration.transferredBytes) / nsToSeconds(r.migration.downtimeNs);
      }
      undefine(dom->ptr);
      r.elapsedNs = since(t0);
      return r;
    };
  } else {
    const std::string uri = spec.destinationEndpoint;
    const bool live = spec.mode == MigrationMode::kLive;
    op.maxBandwidth = std::make_shared<std::atomic<double>>(spec.maxBandwidthBytesPerSec);
    const auto capRef = op.maxBandwidth;
    const TimeNs downtimeLimitNs = spec.downtimeLimitNs;
    op.work = [conn, vmId, host, uri, live, capRef, downtimeLimitNs]() -> WorkResult {
      WorkResult r;
      const auto t0 = SteadyClock::now();
      auto dom = lookup(conn, vmId, host);
      if (!dom.isOk()) {
        r.status = dom.status();
        return r;
      }
      virTypedParameterPtr params = nullptr;
      int count = 0;
      int capacity = 0;
      const double maxBandwidth = capRef->load();
      if (maxBandwidth > 0) {
        const auto mib = static_cast<unsigned long long>(
            std::max(1.0, std::floor(maxBandwidth / (1024.0 * 1024.0))));
        virTypedParamsAddULLong(&params, &count, &capacity, VIR_MIGRATE_PARAM_BANDWIDTH, mib);
      }
      if (downtimeLimitNs > 0 &&
          virDomainMigrateSetMaxDowntime(dom->ptr, downtimeLimitNs / kNsPerMs, 0) < 0) {
        spdlog::warn("{}", lastError("downtime limit for '" + vmId + "' (ignored)").toString());
      }
      unsigned flags = VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST;
      if (live) flags |= VIR_MIGRATE_LIVE;
      const int rc = virDomainMigrateToURI3(dom->ptr, uri.c_str(), params, count, flags);
      virTypedParamsFree(params, count);
      if (rc < 0) {
        r.status = lastError("migrate vm '" + vmId + "' to " + uri);
        return r;
      }
      r.elapsedNs = since(t0);
      int type = 0;
      virTypedParameterPtr stats = nullptr;
      int nstats = 0;
      if (virDomainGetJobStats(dom->ptr, &type, &stats, &nstats, VIR_DOMAIN_JOB_STATS_COMPLETED) ==
          0) {
        libvirt_detail::applyJobStats(stats, nstats, r.migration);
        virTypedParamsFree(stats, nstats);
      }
      undefine(dom->ptr);
      return r;
    };
  }
  auto& placed = ops_.emplace(id, std::move(op)).first->second;
  vm.state = VmState::kMigratingOut;
  busy_[spec.vmId] = vm;
  if (threaded_) launch(placed);
  return Status::ok();
}

void LibvirtHypervisor::launch(Operation& op) {
  op.started = true;
  op.startNs = lastPollNs_;
  op.future = std::async(std::launch::async, std::move(op.work));
}

Status LibvirtHypervisor::setMigrationBandwidth(const std::string& vmId, double maxBytesPerSec) {
  if (maxBytesPerSec < 0 || !std::isfinite(maxBytesPerSec)) {
    return Status::invalid("max bandwidth must be a finite rate >= 0");
  }
  for (auto& [id, op] : ops_) {
    if (!op.isMigration || op.vmId != vmId) continue;
    if (!op.maxBandwidth) {
      // A save image (suspend-copy-resume) has no network stream to throttle here.
      return Status::ok();
    }
    op.maxBandwidth->store(maxBytesPerSec);
    if (!op.started) return Status::ok();  // the work migrates with the new cap
    // In libvirt's unit MiB/s; "unlimited" is the NIC, or QEMU's largest value.
    constexpr double kMiB = 1024.0 * 1024.0;
    double bytes = maxBytesPerSec > 0 ? maxBytesPerSec : host_.nicBandwidthBytesPerSec;
    const unsigned long mib =
        bytes > 0 ? static_cast<unsigned long>(std::max(1.0, std::floor(bytes / kMiB)))
                  : static_cast<unsigned long>(INT64_MAX / (1024 * 1024));
    auto dom = lookup(conn_, vmId, host_.name);
    if (!dom.isOk()) return dom.status();
    if (virDomainMigrateSetMaxSpeed(dom->ptr, mib, 0) < 0) {
      return lastError("set the migration bandwidth of vm '" + vmId + "'");
    }
    return Status::ok();
  }
  if (!busy_.count(vmId) && !lookup(conn_, vmId, host_.name).isOk()) {
    return Status::notFound("vm '" + vmId + "' is not on host '" + host_.name + "'");
  }
  return Status::rejected("vm '" + vmId + "' is not migrating out");
}

Status LibvirtHypervisor::suspend(const std::string& vmId) {
  auto dom = lookup(conn_, vmId, host_.name);
  if (!dom.isOk()) return busy_.count(vmId) ? checkIdle(vmId) : dom.status();
  if (Status s = checkIdle(vmId); !s) return s;
  virDomainInfo info;
  if (virDomainGetInfo(dom->ptr, &info) < 0) return lastError("state of vm '" + vmId + "'");
  if (stateOf(info.state) == VmState::kSuspended) return Status::ok();
  if (virDomainSuspend(dom->ptr) < 0) return lastError("suspend vm '" + vmId + "'");
  return Status::ok();
}

Status LibvirtHypervisor::resume(const std::string& vmId) {
  auto dom = lookup(conn_, vmId, host_.name);
  if (!dom.isOk()) return busy_.count(vmId) ? checkIdle(vmId) : dom.status();
  if (Status s = checkIdle(vmId); !s) return s;
  if (std::error_code ec; !parkDir_.empty() && std::filesystem::exists(parkImage(vmId), ec)) {
    return Status::rejected("vm '" + vmId + "' is parked (unpark it)");
  }
  virDomainInfo info;
  if (virDomainGetInfo(dom->ptr, &info) < 0) return lastError("state of vm '" + vmId + "'");
  if (info.state == VIR_DOMAIN_PAUSED) {
    if (virDomainResume(dom->ptr) < 0) return lastError("resume vm '" + vmId + "'");
  } else if (stateOf(info.state) == VmState::kSuspended) {
    if (virDomainCreate(dom->ptr) < 0) return lastError("start vm '" + vmId + "'");
  }
  return Status::ok();
}

std::string LibvirtHypervisor::parkImage(const std::string& vmId) const {
  return parkDir_ + "/" + vmId + ".vrmpark";
}

void LibvirtHypervisor::completeAtOnce(OperationId id) {
  OperationEvent done;
  done.opId = id;
  done.kind = OperationEvent::Kind::kCompleted;
  immediate_.push_back(std::move(done));
}

Status LibvirtHypervisor::startPark(OperationId id, const std::string& vmId) {
  if (Status s = checkIdle(vmId); !s) return s;
  auto dom = lookup(conn_, vmId, host_.name);
  if (!dom.isOk()) return dom.status();
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  if (parkDir_.empty()) {
    return Status::rejected("host '" + host_.name +
                            "' cannot park VMs: its libvirt backend has no park_dir or state_dir");
  }
  VmInfo vm;
  for (VmInfo& v : inventory()) {
    if (v.id == vmId) vm = std::move(v);
  }
  if (vm.state == VmState::kParked) {
    completeAtOnce(id);  // a retried park
    return Status::ok();
  }
  Operation op;
  op.isMigration = false;
  op.local = Operation::Local::kPark;
  op.vmId = vmId;
  MigrationObservation& obs = op.observation;
  obs.vmId = vmId;
  obs.fromHost = obs.toHost = host_.name;
  obs.mode = MigrationMode::kSuspend;
  obs.memoryBytes = vm.memoryBytes;
  obs.nonzeroMemoryBytes = vm.nonzeroMemoryBytes;
  obs.dirtyRateBytesPerSec = vm.dirtyRateBytesPerSec;
  virConnectPtr conn = conn_;
  const std::string host = host_.name;
  const std::string path = parkImage(vmId);
  op.work = [conn, vmId, host, path]() -> WorkResult {
    WorkResult r;
    const auto t0 = SteadyClock::now();
    auto dom = lookup(conn, vmId, host);
    if (!dom.isOk()) {
      r.status = dom.status();
      return r;
    }
    if (virDomainIsPersistent(dom->ptr) == 0) {
      // A transient domain would vanish once saved, and with it our record that it is parked.
      CString xml{virDomainGetXMLDesc(dom->ptr, VIR_DOMAIN_XML_SECURE)};
      Domain persistent(xml.s ? virDomainDefineXML(conn, xml.s) : nullptr);
      if (!persistent) {
        r.status = lastError("define vm '" + vmId + "' before parking it");
        return r;
      }
    }
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    if (virDomainSaveFlags(dom->ptr, path.c_str(), nullptr, 0) < 0) {
      r.status = lastError("park vm '" + vmId + "' to " + path);
      std::filesystem::remove(path, ec);
      return r;
    }
    r.elapsedNs = since(t0);
    r.migration.saveNs = r.elapsedNs;
    r.migration.downtimeNs = r.elapsedNs;
    const auto bytes = std::filesystem::file_size(path, ec);
    r.migration.transferredBytes = ec ? 0 : bytes;
    r.migration.rounds = 1;
    return r;
  };
  parking_[vmId] = Operation::Local::kPark;
  auto& placed = ops_.emplace(id, std::move(op)).first->second;
  if (threaded_) launch(placed);
  return Status::ok();
}

Status LibvirtHypervisor::startUnpark(OperationId id, const std::string& vmId) {
  if (Status s = checkIdle(vmId); !s) return s;
  auto dom = lookup(conn_, vmId, host_.name);
  if (!dom.isOk()) return dom.status();
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  VmInfo vm;
  for (VmInfo& v : inventory()) {
    if (v.id == vmId) vm = std::move(v);
  }
  if (vm.state != VmState::kParked) {
    completeAtOnce(id);  // running already: a retried unpark
    return Status::ok();
  }
  if (Status s = checkRoom(vm.cpuCores, vm.memoryBytes); !s) {
    return Status::rejected("cannot unpark vm '" + vmId + "': " + s.message());
  }
  Operation op;
  op.isMigration = false;
  op.local = Operation::Local::kUnpark;
  op.vmId = vmId;
  MigrationObservation& obs = op.observation;
  obs.vmId = vmId;
  obs.fromHost = obs.toHost = host_.name;
  obs.mode = MigrationMode::kSuspend;
  obs.memoryBytes = vm.memoryBytes;
  obs.nonzeroMemoryBytes = vm.nonzeroMemoryBytes;
  obs.dirtyRateBytesPerSec = vm.dirtyRateBytesPerSec;
  virConnectPtr conn = conn_;
  const std::string path = vm.stateFile;
  op.work = [conn, vmId, path]() -> WorkResult {
    WorkResult r;
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    r.migration.transferredBytes = ec ? 0 : bytes;
    const auto t0 = SteadyClock::now();
    if (virDomainRestore(conn, path.c_str()) < 0) {
      r.status = lastError("unpark vm '" + vmId + "' from " + path);
      return r;
    }
    r.elapsedNs = since(t0);
    r.migration.restoreNs = r.elapsedNs;
    r.migration.downtimeNs = r.elapsedNs;
    r.migration.rounds = 1;
    std::filesystem::remove(path, ec);  // running again: the image is stale now
    return r;
  };
  parking_[vmId] = Operation::Local::kUnpark;
  auto& placed = ops_.emplace(id, std::move(op)).first->second;
  if (threaded_) launch(placed);
  return Status::ok();
}

Result<std::string> LibvirtHypervisor::templateXml(const std::string& name) const {
  if (auto it = inlineTemplates_.find(name); it != inlineTemplates_.end()) return it->second;
  if (!templateDir_.empty() && !name.empty() && name.find('/') == std::string::npos &&
      name[0] != '.') {
    const std::string path = templateDir_ + "/" + name + ".xml";
    std::ifstream in(path);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      return text.str();
    }
  }
  return Status::invalid(
      "no clone template '" + name + "' on host '" + host_.name + "'" +
      (templateDir_.empty() ? std::string() : " (looked in " + templateDir_ + ")"));
}

Status LibvirtHypervisor::startClone(OperationId id, const CloneSpec& spec) {
  if (spec.vmId.empty()) return Status::invalid("clone needs a vm id");
  if (spec.memoryBytes == 0 || spec.cpuCores == 0) {
    return Status::invalid("clone '" + spec.vmId + "' needs positive memory and cpu cores");
  }
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  const std::string fallbackAddress = spec.vmId + "." + host_.name;
  if (busy_.count(spec.vmId)) {
    return Status::rejected("vm id '" + spec.vmId + "' already exists on host '" + host_.name +
                            "'");
  }
  if (auto existing = lookup(conn_, spec.vmId, host_.name); existing.isOk()) {
    const Tags tags = tagsOf(existing->ptr);
    if (tags.templateName != spec.templateName || tags.reservationId != spec.reservationId) {
      return Status::rejected("vm id '" + spec.vmId + "' already exists on host '" + host_.name +
                              "'");
    }
    // A retried clone that already finished: report the same handle again.
    OperationEvent done;
    done.opId = id;
    done.kind = OperationEvent::Kind::kCompleted;
    auto a = addresses_.find(spec.vmId);
    done.clone =
        VmHandle{spec.vmId, host_.name, a != addresses_.end() ? a->second : fallbackAddress, "vrm"};
    immediate_.push_back(std::move(done));
    return Status::ok();
  }
  auto xml = templateXml(spec.templateName);
  if (!xml.isOk()) return xml.status();
  if (Status s = checkRoom(spec.cpuCores, spec.memoryBytes); !s) return s;

  const std::string domainXml = libvirt_detail::instantiateTemplate(*xml, spec);
  const std::string metadata = "<vm reservation='" + xmlEscape(spec.reservationId) +
                               "' template='" + xmlEscape(spec.templateName) + "'/>";
  virConnectPtr conn = conn_;
  const std::string vmId = spec.vmId;
  const std::string host = host_.name;
  Operation op;
  op.isMigration = false;
  op.vmId = spec.vmId;
  op.work = [conn, vmId, host, domainXml, metadata, fallbackAddress]() -> WorkResult {
    WorkResult r;
    const auto t0 = SteadyClock::now();
    Domain dom(virDomainDefineXML(conn, domainXml.c_str()));
    if (!dom) {
      r.status = lastError("define clone '" + vmId + "' on host '" + host + "'");
      return r;
    }
    if (virDomainSetMetadata(dom.ptr, VIR_DOMAIN_METADATA_ELEMENT, metadata.c_str(), "vrm",
                             kMetadataNamespace, VIR_DOMAIN_AFFECT_CONFIG) < 0) {
      spdlog::warn("{}", lastError("tag clone '" + vmId + "'").toString());
    }
    if (virDomainCreate(dom.ptr) < 0) {
      r.status = lastError("start clone '" + vmId + "' on host '" + host + "'");
      undefine(dom.ptr);
      return r;
    }
    r.clone = VmHandle{vmId, host, addressOf(dom.ptr, fallbackAddress), "vrm"};
    r.elapsedNs = since(t0);
    return r;
  };
  VmInfo placeholder;
  placeholder.id = spec.vmId;
  placeholder.cpuCores = spec.cpuCores;
  placeholder.memoryBytes = spec.memoryBytes;
  placeholder.nonzeroMemoryBytes = spec.memoryBytes;
  placeholder.state = VmState::kCloning;
  placeholder.reservationId = spec.reservationId;
  placeholder.templateName = spec.templateName;
  busy_[spec.vmId] = std::move(placeholder);
  auto& placed = ops_.emplace(id, std::move(op)).first->second;
  if (threaded_) launch(placed);
  return Status::ok();
}

Status LibvirtHypervisor::destroy(const std::string& vmId) {
  if (parking_.count(vmId)) return checkIdle(vmId);
  if (auto it = busy_.find(vmId); it != busy_.end()) {
    switch (it->second.state) {
      case VmState::kMigratingOut:
        return Status::rejected("vm '" + vmId + "' is busy (migrating-out)");
      case VmState::kIncoming:
        busy_.erase(it);
        if (auto p = incomingPaths_.find(vmId); p != incomingPaths_.end()) {
          std::filesystem::remove(p->second);
          incomingPaths_.erase(p);
        }
        return Status::ok();
      default:  // cloning: the clone's requester still gets its one completion
        for (auto op = ops_.begin(); op != ops_.end(); ++op) {
          if (op->second.vmId != vmId || op->second.isMigration) continue;
          if (op->second.started) {
            op->second.cancelled = true;  // the worker's domain is removed when it returns
          } else {
            OperationEvent done;
            done.opId = op->first;
            done.kind = OperationEvent::Kind::kCompleted;
            done.status =
                Status::rejected("vm '" + vmId + "' was destroyed before its clone finished");
            immediate_.push_back(std::move(done));
            ops_.erase(op);
          }
          break;
        }
        busy_.erase(it);
        return Status::ok();
    }
  }
  auto dom = lookup(conn_, vmId, host_.name);
  if (!dom.isOk()) return dom.status();
  if (virDomainIsActive(dom->ptr) == 1 && virDomainDestroy(dom->ptr) < 0) {
    return lastError("destroy vm '" + vmId + "'");
  }
  undefine(dom->ptr);
  addresses_.erase(vmId);
  if (!parkDir_.empty()) {
    std::error_code ec;
    std::filesystem::remove(parkImage(vmId), ec);  // a parked VM's saved state goes with it
  }
  return Status::ok();
}

std::optional<OperationEvent> LibvirtHypervisor::progressOf(OperationId id, Operation& op) {
  if (!op.isMigration) return std::nullopt;
  auto dom = lookup(conn_, op.vmId, host_.name);
  if (!dom.isOk()) return std::nullopt;
  int type = 0;
  virTypedParameterPtr stats = nullptr;
  int n = 0;
  if (virDomainGetJobStats(dom->ptr, &type, &stats, &n, 0) < 0) return std::nullopt;
  unsigned long long processed = 0;
  unsigned long long total = 0;
  (void)virTypedParamsGetULLong(stats, n, VIR_DOMAIN_JOB_DATA_PROCESSED, &processed);
  (void)virTypedParamsGetULLong(stats, n, VIR_DOMAIN_JOB_DATA_TOTAL, &total);
  virTypedParamsFree(stats, n);
  if (type == VIR_DOMAIN_JOB_NONE || processed == op.lastBytesSent) return std::nullopt;
  op.lastBytesSent = processed;
  OperationEvent e;
  e.opId = id;
  e.kind = OperationEvent::Kind::kProgress;
  e.phase = "copy";
  e.bytesSent = processed;
  e.bytesTotal = total;
  e.fraction = total > 0 ? std::min(1.0, static_cast<double>(processed) / total) : 0;
  return e;
}

OperationEvent LibvirtHypervisor::complete(OperationId id, Operation& op, WorkResult result) {
  OperationEvent e;
  e.opId = id;
  e.kind = OperationEvent::Kind::kCompleted;
  if (op.local != Operation::Local::kNone) {
    parking_.erase(op.vmId);
  } else {
    busy_.erase(op.vmId);
  }
  if (!result.status) {
    e.status = std::move(result.status);
    return e;
  }
  if (op.local != Operation::Local::kNone) {
    MigrationObservation obs = op.observation;
    const MigrationObservation& m = result.migration;
    obs.startNs = op.startNs;
    obs.endNs = op.startNs + result.elapsedNs;
    obs.saveNs = m.saveNs;
    obs.restoreNs = m.restoreNs;
    obs.downtimeNs = m.downtimeNs;
    obs.transferredBytes = m.transferredBytes;
    obs.rounds = m.rounds;
    e.migration = std::move(obs);
    return e;
  }
  if (op.isMigration) {
    MigrationObservation obs = op.observation;
    const MigrationObservation& m = result.migration;
    obs.startNs = op.startNs;
    obs.endNs = op.startNs + result.elapsedNs;
    obs.setupNs = m.setupNs;
    obs.downtimeNs = m.downtimeNs;
    obs.transferredBytes = m.transferredBytes;
    obs.rounds = m.rounds;
    obs.bandwidthBytesPerSec = m.bandwidthBytesPerSec;
    if (m.dirtyRateBytesPerSec > 0) obs.dirtyRateBytesPerSec = m.dirtyRateBytesPerSec;
    e.migration = std::move(obs);
    return e;
  }
  if (op.cancelled) {
    if (auto dom = lookup(conn_, op.vmId, host_.name); dom.isOk()) {
      if (virDomainIsActive(dom->ptr) == 1) (void)virDomainDestroy(dom->ptr);
      undefine(dom->ptr);
    }
    e.status = Status::rejected("vm '" + op.vmId + "' was destroyed before its clone finished");
    return e;
  }
  addresses_[op.vmId] = result.clone.address;
  e.clone = std::move(result.clone);
  return e;
}

std::vector<OperationEvent> LibvirtHypervisor::poll(TimeNs now) {
  lastPollNs_ = std::max(lastPollNs_, now);
  std::vector<OperationEvent> events = std::move(immediate_);
  immediate_.clear();
  for (auto it = ops_.begin(); it != ops_.end();) {
    Operation& op = it->second;
    std::optional<WorkResult> result;
    if (!op.started) {  // inline mode
      op.started = true;
      op.startNs = now;
      result = op.work();
    } else if (op.future.valid() &&
               op.future.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      result = op.future.get();
    }
    if (result) {
      events.push_back(complete(it->first, op, std::move(*result)));
      it = ops_.erase(it);
      continue;
    }
    if (auto progress = progressOf(it->first, op)) events.push_back(std::move(*progress));
    ++it;
  }
  return events;
}

TimeNs LibvirtHypervisor::nextEventTime() const {
  if (!immediate_.empty()) return lastPollNs_;
  TimeNs next = kTimeInfinity;
  for (const auto& [id, op] : ops_) {
    if (!op.started) return lastPollNs_;
    // Workers: look again in a second for progress or completion.
    next = std::min(next, lastPollNs_ + kNsPerSec);
  }
  return next;
}

}  // namespace vrm::vmscheduler
