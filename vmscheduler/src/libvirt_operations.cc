#include "libvirt_operations.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>

#include "libvirt_hypervisor.h"
#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::libvirt_detail {

Result<OpenedConnection> OpenedConnection::open(const WorkConnection& c) {
  if (c.uri.empty()) return OpenedConnection(c.shared, false);
  virConnectPtr conn = virConnectOpen(c.uri.c_str());
  if (!conn) {
    Status s = lastError("connect to libvirt at '" + c.uri + "'");
    return Status::unavailable(s.message());
  }
  return OpenedConnection(conn, true);
}

OpenedConnection::~OpenedConnection() {
  if (owned_ && conn_) virConnectClose(conn_);
}

WorkResult SaveMigrationWork::run() {
  WorkResult r;
  auto opened = OpenedConnection::open(conn_);
  if (!opened.isOk()) {
    r.status = opened.status();
    return r;
  }
  virConnectPtr conn = opened->get();
  const auto t0 = SteadyClock::now();
  auto dom = lookup(conn, vmId_, host_);
  if (!dom.isOk()) {
    r.status = dom.status();
    return r;
  }
  r.migration.setupNs = since(t0);
  const auto t1 = SteadyClock::now();
  if (virDomainSaveFlags(dom->ptr, path_.c_str(), nullptr, 0) < 0) {
    r.status = lastError("save vm '" + vmId_ + "' to " + path_);
    return r;
  }
  r.migration.downtimeNs = since(t1);
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path_, ec);
  r.migration.transferredBytes = ec ? 0 : bytes;
  r.migration.rounds = 1;
  if (r.migration.downtimeNs > 0) {
    r.migration.bandwidthBytesPerSec =
        static_cast<double>(r.migration.transferredBytes) / nsToSeconds(r.migration.downtimeNs);
  }
  undefine(dom->ptr);
  r.elapsedNs = since(t0);
  return r;
}

namespace {

// Caps the guest's writes to disk `dev` at `bytesPerSec` (blkio write_bytes_sec, live).
Status limitWrites(virDomainPtr dom, const std::string& dev, double bytesPerSec) {
  virTypedParameterPtr params = nullptr;
  int count = 0;
  int capacity = 0;
  virTypedParamsAddULLong(&params, &count, &capacity, VIR_DOMAIN_BLOCK_IOTUNE_WRITE_BYTES_SEC,
                          static_cast<unsigned long long>(std::max(1.0, bytesPerSec)));
  const int rc = virDomainSetBlockIoTune(dom, dev.c_str(), params, count, VIR_DOMAIN_AFFECT_LIVE);
  virTypedParamsFree(params, count);
  if (rc < 0) return lastError("cap the disk writes of '" + dev + "' before its copy");
  return Status::ok();
}

}  // namespace

WorkResult UriMigrationWork::run() {
  WorkResult r;
  auto opened = OpenedConnection::open(conn_);
  if (!opened.isOk()) {
    r.status = opened.status();
    return r;
  }
  virConnectPtr conn = opened->get();
  const auto t0 = SteadyClock::now();
  auto dom = lookup(conn, vmId_, host_);
  if (!dom.isOk()) {
    r.status = dom.status();
    return r;
  }
  virTypedParameterPtr params = nullptr;
  int count = 0;
  int capacity = 0;
  const double maxBandwidth = maxBandwidth_->load();
  if (maxBandwidth > 0) {
    const auto mib = static_cast<unsigned long long>(
        std::max(1.0, std::floor(maxBandwidth / (1024.0 * 1024.0))));
    virTypedParamsAddULLong(&params, &count, &capacity, VIR_MIGRATE_PARAM_BANDWIDTH, mib);
  }
  if (downtimeLimitNs_ > 0 &&
      virDomainMigrateSetMaxDowntime(dom->ptr, downtimeLimitNs_ / kNsPerMs, 0) < 0) {
    spdlog::warn("{}", lastError("downtime limit for '" + vmId_ + "' (ignored)").toString());
  }
  unsigned flags = VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST;
  if (live_) flags |= VIR_MIGRATE_LIVE;
  if (disks_.copy) {
    CString xml{virDomainGetXMLDesc(dom->ptr, 0)};
    const std::vector<std::string> disks = xml.s ? localDisksOf(xml.s) : std::vector<std::string>();
    for (const std::string& dev : disks) {
      if (disks_.writeLimitBytesPerSec <= 0) continue;
      if (Status s = limitWrites(dom->ptr, dev, disks_.writeLimitBytesPerSec); !s) {
        virTypedParamsFree(params, count);
        r.status = s;
        return r;
      }
    }
    for (const std::string& dev : disks) {
      virTypedParamsAddString(&params, &count, &capacity, VIR_MIGRATE_PARAM_MIGRATE_DISKS,
                              dev.c_str());
    }
    if (!disks.empty()) flags |= VIR_MIGRATE_NON_SHARED_DISK;
  }
  const int rc = virDomainMigrateToURI3(dom->ptr, uri_.c_str(), params, count, flags);
  virTypedParamsFree(params, count);
  if (rc < 0) {
    r.status = lastError("migrate vm '" + vmId_ + "' to " + uri_);
    return r;
  }
  r.elapsedNs = since(t0);
  int type = 0;
  virTypedParameterPtr stats = nullptr;
  int nstats = 0;
  if (virDomainGetJobStats(dom->ptr, &type, &stats, &nstats, VIR_DOMAIN_JOB_STATS_COMPLETED) == 0) {
    applyJobStats(stats, nstats, r.migration);
    virTypedParamsFree(stats, nstats);
  }
  undefine(dom->ptr);
  return r;
}

WorkResult ParkWork::run() {
  WorkResult r;
  auto opened = OpenedConnection::open(conn_);
  if (!opened.isOk()) {
    r.status = opened.status();
    return r;
  }
  virConnectPtr conn = opened->get();
  const auto t0 = SteadyClock::now();
  auto dom = lookup(conn, vmId_, host_);
  if (!dom.isOk()) {
    r.status = dom.status();
    return r;
  }
  if (virDomainIsPersistent(dom->ptr) == 0) {
    // A transient domain would vanish once saved, and with it our record that it is parked.
    CString xml{virDomainGetXMLDesc(dom->ptr, VIR_DOMAIN_XML_SECURE)};
    Domain persistent(xml.s ? virDomainDefineXML(conn, xml.s) : nullptr);
    if (!persistent) {
      r.status = lastError("define vm '" + vmId_ + "' before parking it");
      return r;
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  if (virDomainSaveFlags(dom->ptr, path_.c_str(), nullptr, 0) < 0) {
    r.status = lastError("park vm '" + vmId_ + "' to " + path_);
    std::filesystem::remove(path_, ec);
    return r;
  }
  r.elapsedNs = since(t0);
  r.migration.saveNs = r.elapsedNs;
  r.migration.downtimeNs = r.elapsedNs;
  const auto bytes = std::filesystem::file_size(path_, ec);
  r.migration.transferredBytes = ec ? 0 : bytes;
  r.migration.rounds = 1;
  return r;
}

WorkResult UnparkWork::run() {
  WorkResult r;
  auto opened = OpenedConnection::open(conn_);
  if (!opened.isOk()) {
    r.status = opened.status();
    return r;
  }
  virConnectPtr conn = opened->get();
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path_, ec);
  r.migration.transferredBytes = ec ? 0 : bytes;
  const auto t0 = SteadyClock::now();
  if (virDomainRestore(conn, path_.c_str()) < 0) {
    r.status = lastError("unpark vm '" + vmId_ + "' from " + path_);
    return r;
  }
  r.elapsedNs = since(t0);
  r.migration.restoreNs = r.elapsedNs;
  r.migration.downtimeNs = r.elapsedNs;
  r.migration.rounds = 1;
  std::filesystem::remove(path_, ec);  // running again: the image is stale now
  return r;
}

WorkResult CloneWork::run() {
  WorkResult r;
  auto opened = OpenedConnection::open(conn_);
  if (!opened.isOk()) {
    r.status = opened.status();
    return r;
  }
  virConnectPtr conn = opened->get();
  const auto t0 = SteadyClock::now();
  const std::string what = "clone '" + vmId_ + "' on host '" + host_ + "'";
  Domain dom(virDomainDefineXML(conn, domainXml_.c_str()));
  if (!dom) {
    r.status = lastError("define " + what);
    return r;
  }
  if (Status s = setTags(dom.ptr, tags_); !s) spdlog::warn("{}: {}", what, s.toString());
  if (virDomainCreate(dom.ptr) < 0) {
    r.status = lastError("start " + what);
    undefine(dom.ptr);
    return r;
  }
  std::string address;
  const auto deadline = t0 + std::chrono::nanoseconds(wait_.timeoutNs);
  while (wait_.source != AddressSource::kNone) {
    auto found = addressOf(dom.ptr, wait_.source, wait_.mac);
    if (!found.isOk()) {
      r.status = Status(found.status().code(), what + ": " + found.status().message());
    } else if (!found->empty()) {
      address = *found;
      break;
    } else if (virDomainIsActive(dom.ptr) != 1) {
      r.status =
          Status::unavailable(what + " stopped before " + wait_.where + " had an address for it");
    } else if (SteadyClock::now() >= deadline) {
      r.status = Status::unavailable(what + " has no address from " + wait_.where + " after " +
                                     formatDuration(wait_.timeoutNs) +
                                     " (is the guest's NIC up and asking?); destroyed");
    }
    if (!r.status) {
      if (virDomainIsActive(dom.ptr) == 1) (void)virDomainDestroy(dom.ptr);
      undefine(dom.ptr);
      return r;
    }
    std::this_thread::sleep_for(std::chrono::nanoseconds(wait_.intervalNs));
  }
  tags_.address = address;
  tags_.addressSource = addressSourceName(wait_.source);
  if (Status s = setTags(dom.ptr, tags_); !s) spdlog::warn("{}: {}", what, s.toString());
  r.clone = VmHandle{vmId_, host_, address, account_};
  r.addressSource = wait_.source;
  r.elapsedNs = since(t0);
  return r;
}

}  // namespace vrm::vmscheduler::libvirt_detail
