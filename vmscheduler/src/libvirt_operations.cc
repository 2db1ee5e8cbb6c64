#include "libvirt_operations.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "libvirt_hypervisor.h"
#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::libvirt_detail {

WorkResult SaveMigrationWork::run() {
  WorkResult r;
  const auto t0 = SteadyClock::now();
  auto dom = lookup(conn_, vmId_, host_);
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

WorkResult UriMigrationWork::run() {
  WorkResult r;
  const auto t0 = SteadyClock::now();
  auto dom = lookup(conn_, vmId_, host_);
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
  const auto t0 = SteadyClock::now();
  auto dom = lookup(conn_, vmId_, host_);
  if (!dom.isOk()) {
    r.status = dom.status();
    return r;
  }
  if (virDomainIsPersistent(dom->ptr) == 0) {
    // A transient domain would vanish once saved, and with it our record that it is parked.
    CString xml{virDomainGetXMLDesc(dom->ptr, VIR_DOMAIN_XML_SECURE)};
    Domain persistent(xml.s ? virDomainDefineXML(conn_, xml.s) : nullptr);
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
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path_, ec);
  r.migration.transferredBytes = ec ? 0 : bytes;
  const auto t0 = SteadyClock::now();
  if (virDomainRestore(conn_, path_.c_str()) < 0) {
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
  const auto t0 = SteadyClock::now();
  Domain dom(virDomainDefineXML(conn_, domainXml_.c_str()));
  if (!dom) {
    r.status = lastError("define clone '" + vmId_ + "' on host '" + host_ + "'");
    return r;
  }
  if (virDomainSetMetadata(dom.ptr, VIR_DOMAIN_METADATA_ELEMENT, metadata_.c_str(), "vrm",
                           LibvirtHypervisor::kMetadataNamespace, VIR_DOMAIN_AFFECT_CONFIG) < 0) {
    spdlog::warn("{}", lastError("tag clone '" + vmId_ + "'").toString());
  }
  if (virDomainCreate(dom.ptr) < 0) {
    r.status = lastError("start clone '" + vmId_ + "' on host '" + host_ + "'");
    undefine(dom.ptr);
    return r;
  }
  r.clone = VmHandle{vmId_, host_, addressOf(dom.ptr, fallbackAddress_), "vrm"};
  r.elapsedNs = since(t0);
  return r;
}

}  // namespace vrm::vmscheduler::libvirt_detail
