#include "libvirt_hypervisor.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "backend/operation_support.h"
#include "backend/params.h"
#include "backend/vm_table.h"
#include "libvirt_startup_checks.h"
#include "libvirt_support.h"
#include "vrm/protocol/units.h"

namespace vrm::vmscheduler {

using namespace libvirt_detail;

Result<std::unique_ptr<Hypervisor>> LibvirtHypervisor::create(const HypervisorOptions& options) {
  initLibvirtOnce();
  const HostSpec& spec = options.host;
  if (spec.name.empty()) return Status::invalid("libvirt host needs a name");
  std::unique_ptr<LibvirtHypervisor> hv(new LibvirtHypervisor());
  backend::BackendParams params("libvirt", options.params, {{"state-dir", "stage-dir"}});
  if (!params.status()) return params.status();
  auto settings = readSettings(params);
  if (!settings.isOk()) return settings.status();
  hv->settings_ = std::move(settings).value();
  const std::string& uri = hv->settings_.uri;
  hv->conn_ = virConnectOpen(uri.c_str());
  if (!hv->conn_) {
    return Status::invalid(
        lastError(params.describe("uri") + ": cannot connect to '" + uri + "'").message());
  }
  virNodeInfo node;
  if (virNodeGetInfo(hv->conn_, &node) < 0) {
    return Status::invalid(lastError(params.describe("uri") + ": node info").message());
  }
  hv->host_.name = spec.name;
  hv->host_.cpuCores = node.cpus;
  hv->host_.memoryBytes = static_cast<std::uint64_t>(node.memory) * 1024;
  hv->host_.nicBandwidthBytesPerSec = spec.nicBandwidthBytesPerSec;
  for (const VmSpec& v : spec.vms) hv->hints_[v.id] = v;
  if (Status s = checkConnected(hv->conn_, hv->settings_, spec.name, params); !s) return s;
  return std::unique_ptr<Hypervisor>(std::move(hv));
}

LibvirtHypervisor::~LibvirtHypervisor() {
  waitForWorkers();
  ops_.clear();
  if (conn_) virConnectClose(conn_);
}

libvirt_detail::WorkConnection LibvirtHypervisor::workConnection() const {
  // Not for the test driver: there a new connection to test:///FILE is a new, empty node.
  const bool own = settings_.threaded && settings_.uri.rfind("test:", 0) != 0;
  return {conn_, own ? settings_.uri : std::string()};
}

Result<std::string> LibvirtHypervisor::domainXml(const std::string& vmId) const {
  auto dom = lookup(conn_, vmId, host_.name);
  if (!dom.isOk()) return dom.status();
  CString xml{virDomainGetXMLDesc(dom->ptr, 0)};
  if (!xml.s) return lastError("xml of vm '" + vmId + "'");
  return std::string(xml.s);
}

void LibvirtHypervisor::waitForWorkers() {
  for (auto& [id, op] : ops_) {
    if (op.future.valid()) op.future.wait();
  }
}

std::string LibvirtHypervisor::migrationEndpoint() const {
  if (!settings_.migrationUri.empty()) return settings_.migrationUri;
  if (!settings_.stageDir.empty()) return "save:" + settings_.stageDir;
  return settings_.uri;
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
    if (info.state == VIR_DOMAIN_SHUTOFF && !settings_.parkDir.empty()) {
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
    if (vm.diskBytes == 0) vm.diskBytes = localDiskBytes(dom.ptr);  // the HostSpec's wins
    const Tags tags = tagsOf(dom.ptr);
    vm.reservationId = tags.reservationId;
    vm.templateName = tags.templateName;
    vm.address = tags.address;
    if (!tags.reservationId.empty() && !tags.address.empty()) {
      vm.account = settings_.account;  // as the clone's handle gave it (no port: not known)
      vm.addressSource = tags.addressSource;
    }
    if (tags.requestedMemoryKib > 0 && tags.requestedMemoryKib * 1024 <= vm.memoryBytes) {
      vm.memoryBytes = tags.requestedMemoryKib * 1024;  // the size vrm asked for (Tags)
      vm.nonzeroMemoryBytes = std::min(vm.nonzeroMemoryBytes, vm.memoryBytes);
    }
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
  return backend::checkRoom(host_, inventory(), cores, memoryBytes);
}

Status LibvirtHypervisor::checkIdle(const std::string& vmId) const {
  if (auto p = parking_.find(vmId); p != parking_.end()) {
    return backend::busy(vmId, p->second == Operation::Local::kPark ? "parking" : "unparking");
  }
  if (auto it = busy_.find(vmId); it != busy_.end()) {
    return backend::busy(it->second);
  }
  return Status::ok();
}

Result<std::string> LibvirtHypervisor::prepareIncoming(const VmInfo& vm) {
  if (vm.id.empty()) return Status::invalid("incoming vm has no id");
  if (vm.memoryBytes == 0 || vm.cpuCores == 0) {
    return Status::invalid("incoming vm '" + vm.id + "' needs positive memory and cpu cores");
  }
  if (busy_.count(vm.id) || lookup(conn_, vm.id, host_.name).isOk()) {
    return backend::alreadyOnHost(vm.id, host_.name);
  }
  std::string endpoint;
  if (!settings_.migrationUri.empty()) {
    endpoint = settings_.migrationUri;
  } else if (!settings_.stageDir.empty()) {
    const std::string path = settings_.stageDir + "/" + vm.id + ".vrmsave";
    incomingPaths_[vm.id] = path;
    endpoint = "save:" + path;
  } else {
    return Status::rejected("host '" + host_.name +
                            "' cannot receive VMs: its libvirt backend has neither a "
                            "migration-uri nor a stage-dir");
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
  if (spec.diskWriteLimitBytesPerSec < 0 || !std::isfinite(spec.diskWriteLimitBytesPerSec)) {
    return Status::invalid("disk write limit must be a finite rate >= 0");
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
  op.observation = backend::observationOf(vm, host_.name, spec.destinationHost, spec.mode);
  MigrationObservation& obs = op.observation;

  const std::string vmId = spec.vmId;
  const std::string host = host_.name;
  if (spec.destinationEndpoint.rfind("save:", 0) == 0) {
    // Suspend-copy-resume through a save image the destination restores.
    obs.mode = MigrationMode::kSuspendCopyResume;
    const std::string path = spec.destinationEndpoint.substr(5);
    op.work = std::make_shared<SaveMigrationWork>(workConnection(), vmId, host, path);
  } else {
    const std::string uri = spec.destinationEndpoint;
    const bool live = spec.mode == MigrationMode::kLive;
    op.live = live;
    op.maxBandwidth = std::make_shared<std::atomic<double>>(spec.maxBandwidthBytesPerSec);
    const auto capRef = op.maxBandwidth;
    const TimeNs downtimeLimitNs = spec.downtimeLimitNs;
    const DiskCopy disks{settings_.diskMigration == DiskMigration::kCopy,
                         spec.diskWriteLimitBytesPerSec};
    op.work = std::make_shared<UriMigrationWork>(workConnection(), vmId, host, uri, live, capRef,
                                                 downtimeLimitNs, disks);
  }
  auto& placed = ops_.emplace(id, std::move(op)).first->second;
  vm.state = VmState::kMigratingOut;
  busy_[spec.vmId] = vm;
  if (settings_.threaded) launch(placed);
  return Status::ok();
}

void LibvirtHypervisor::launch(Operation& op) {
  op.started = true;
  op.startNs = lastPollNs_;
  op.future = std::async(std::launch::async, [work = op.work] { return work->run(); });
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
  if (std::error_code ec;
      !settings_.parkDir.empty() && std::filesystem::exists(parkImage(vmId), ec)) {
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
  return settings_.parkDir + "/" + vmId + ".vrmpark";
}

void LibvirtHypervisor::completeAtOnce(OperationId id) {
  immediate_.push_back(backend::completedEvent(id));
}

Status LibvirtHypervisor::startPark(OperationId id, const std::string& vmId) {
  if (Status s = checkIdle(vmId); !s) return s;
  auto dom = lookup(conn_, vmId, host_.name);
  if (!dom.isOk()) return dom.status();
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  if (settings_.parkDir.empty()) {
    return Status::rejected("host '" + host_.name +
                            "' cannot park VMs: its libvirt backend has no park-dir or stage-dir");
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
  op.observation = backend::observationOf(vm, host_.name, host_.name, MigrationMode::kSuspend);
  const std::string host = host_.name;
  const std::string path = parkImage(vmId);
  op.work = std::make_shared<ParkWork>(workConnection(), vmId, host, path);
  parking_[vmId] = Operation::Local::kPark;
  auto& placed = ops_.emplace(id, std::move(op)).first->second;
  if (settings_.threaded) launch(placed);
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
  op.observation = backend::observationOf(vm, host_.name, host_.name, MigrationMode::kSuspend);
  const std::string path = vm.stateFile;
  op.work = std::make_shared<UnparkWork>(workConnection(), vmId, path);
  parking_[vmId] = Operation::Local::kUnpark;
  auto& placed = ops_.emplace(id, std::move(op)).first->second;
  if (settings_.threaded) launch(placed);
  return Status::ok();
}

Status LibvirtHypervisor::startClone(OperationId id, const CloneSpec& spec) {
  if (spec.vmId.empty()) return Status::invalid("clone needs a vm id");
  if (spec.memoryBytes == 0 || spec.cpuCores == 0) {
    return Status::invalid("clone '" + spec.vmId + "' needs positive memory and cpu cores");
  }
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
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
    OperationEvent done = backend::completedEvent(id);
    done.clone = VmHandle{spec.vmId, host_.name, tags.address, settings_.account};
    immediate_.push_back(std::move(done));
    return Status::ok();
  }
  auto xml = templateXml(settings_, spec.templateName, host_.name);
  if (!xml.isOk()) return xml.status();
  if (Status s = checkRoom(spec.cpuCores, spec.memoryBytes); !s) return s;

  Tags tags;
  tags.reservationId = spec.reservationId;
  tags.templateName = spec.templateName;
  tags.requestedMemoryKib = spec.memoryBytes / 1024;
  const std::string mac = macFor(spec.vmId);
  const std::string domainXml = withNic(instantiateTemplate(*xml, spec), settings_.nic, mac);
  AddressWait wait;
  wait.source = settings_.addressSource;
  wait.mac = mac;
  wait.timeoutNs = settings_.addressTimeoutNs;
  wait.where = settings_.addressSource == AddressSource::kLease
                   ? "the DHCP lease of libvirt network '" + settings_.nic.name + "'"
                   : "the guest agent";
  Operation op;
  op.isMigration = false;
  op.vmId = spec.vmId;
  op.work = std::make_shared<CloneWork>(workConnection(), spec.vmId, host_.name, domainXml,
                                        std::move(tags), std::move(wait), settings_.account);
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
  if (settings_.threaded) launch(placed);
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
            immediate_.push_back(backend::completedEvent(
                op->first,
                Status::rejected("vm '" + vmId + "' was destroyed before its clone finished")));
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
  if (!settings_.parkDir.empty()) {
    std::error_code ec;
    std::filesystem::remove(parkImage(vmId), ec);  // a parked VM's saved state goes with it
  }
  return Status::ok();
}

std::optional<OperationEvent> LibvirtHypervisor::progressOf(OperationId id, Operation& op,
                                                            TimeNs now) {
  if (!op.isMigration) return std::nullopt;
  auto dom = lookup(conn_, op.vmId, host_.name);
  if (!dom.isOk()) return std::nullopt;
  int type = 0;
  virTypedParameterPtr stats = nullptr;
  int n = 0;
  if (virDomainGetJobStats(dom->ptr, &type, &stats, &n, 0) < 0) return std::nullopt;
  unsigned long long processed = 0;
  unsigned long long total = 0;
  unsigned long long remaining = 0;
  unsigned long long rounds = 0;
  unsigned long long dirtyPages = 0;
  (void)virTypedParamsGetULLong(stats, n, VIR_DOMAIN_JOB_DATA_PROCESSED, &processed);
  (void)virTypedParamsGetULLong(stats, n, VIR_DOMAIN_JOB_DATA_TOTAL, &total);
  (void)virTypedParamsGetULLong(stats, n, VIR_DOMAIN_JOB_DATA_REMAINING, &remaining);
  (void)virTypedParamsGetULLong(stats, n, VIR_DOMAIN_JOB_MEMORY_ITERATION, &rounds);
  (void)virTypedParamsGetULLong(stats, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, &dirtyPages);
  virTypedParamsFree(stats, n);
  if (type == VIR_DOMAIN_JOB_NONE) return std::nullopt;
  if (op.live && op.abortReason.empty()) {
    // libvirt (like QEMU) lets a live migration that cannot converge run for ever; stop it as the
    // qemu backend does, and report why when the migration call returns.
    if (op.watchedSinceNs == 0) op.watchedSinceNs = now;
    const TimeNs elapsed = now - op.watchedSinceNs;
    std::string why;
    if (settings_.maxRounds > 0 && rounds > settings_.maxRounds) {
      why = std::to_string(rounds) + " rounds";
    } else if (settings_.migrationTimeoutNs > 0 && elapsed > settings_.migrationTimeoutNs) {
      why = formatDuration(elapsed);
    }
    if (!why.empty()) {
      op.abortReason = "live migration of vm '" + op.vmId + "' did not converge after " + why +
                       " (" + formatBytes(static_cast<double>(remaining)) +
                       " still to send, dirty rate " +
                       formatBytes(static_cast<double>(dirtyPages) * 4096) +
                       "/s): cancelled, the vm keeps running on " + host_.name;
      if (virDomainAbortJob(dom->ptr) < 0) {
        spdlog::warn("{}", lastError("cancel the migration of '" + op.vmId + "'").toString());
      }
    }
  }
  if (processed == op.lastBytesSent) return std::nullopt;
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

OperationEvent LibvirtHypervisor::complete(OperationId id, Operation& op, WorkResult result,
                                           TimeNs now) {
  // A worker launched before the agent's first poll() has no start on the poll timeline: place it
  // back from this poll by what it measured.
  if (op.startNs == 0) op.startNs = std::max<TimeNs>(0, now - result.elapsedNs);
  OperationEvent e;
  e.opId = id;
  e.kind = OperationEvent::Kind::kCompleted;
  if (op.local != Operation::Local::kNone) {
    parking_.erase(op.vmId);
  } else {
    busy_.erase(op.vmId);
  }
  if (!result.status) {
    e.status =
        op.abortReason.empty()
            ? std::move(result.status)
            : Status::rejected(op.abortReason + " (libvirt: " + result.status.message() + ")");
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
      result = op.work->run();
    } else if (op.future.valid() &&
               op.future.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      result = op.future.get();
    }
    if (result) {
      events.push_back(complete(it->first, op, std::move(*result), now));
      it = ops_.erase(it);
      continue;
    }
    if (auto progress = progressOf(it->first, op, now)) events.push_back(std::move(*progress));
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
