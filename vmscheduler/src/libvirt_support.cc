#include "libvirt_support.h"

#include <libvirt/virterror.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "libvirt_hypervisor.h"
#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::libvirt_detail {

namespace {

extern "C" void quietLibvirtErrors(void*, virErrorPtr) {}

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

}  // namespace

TimeNs since(SteadyClock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - t0).count();
}

void initLibvirtOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, quietLibvirtErrors);
  });
}

Result<Domain> lookup(virConnectPtr conn, const std::string& vmId, const std::string& host) {
  Domain d(virDomainLookupByName(conn, vmId.c_str()));
  if (!d) {
    Status s = lastError("vm '" + vmId + "' on host '" + host + "'");
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

Tags tagsOf(virDomainPtr dom) {
  CString meta{virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                                    LibvirtHypervisor::kMetadataNamespace, 0)};
  if (!meta.s) return {};
  const std::string xml = meta.s;
  return {attribute(xml, "reservation"), attribute(xml, "template")};
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

void undefine(virDomainPtr dom) {
  if (virDomainIsPersistent(dom) != 1) return;
  if (virDomainUndefineFlags(
          dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0) {
    (void)virDomainUndefine(dom);
  }
}

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

std::string tagsXml(const std::string& reservationId, const std::string& templateName) {
  return "<vm reservation='" + xmlEscape(reservationId) + "' template='" + xmlEscape(templateName) +
         "'/>";
}

}  // namespace vrm::vmscheduler::libvirt_detail
