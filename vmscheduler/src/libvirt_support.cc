#include "libvirt_support.h"

#include <libvirt/virterror.h>
#include <strings.h>

#include <cstdio>
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

const char* addressSourceName(AddressSource source) {
  switch (source) {
    case AddressSource::kLease:
      return "lease";
    case AddressSource::kAgent:
      return "agent";
    case AddressSource::kNone:
      break;
  }
  return "none";
}

Tags tagsOf(virDomainPtr dom) {
  CString meta{virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                                    LibvirtHypervisor::kMetadataNamespace, 0)};
  if (!meta.s) return {};
  const std::string xml = meta.s;
  Tags tags{attribute(xml, "reservation"), attribute(xml, "template"), attribute(xml, "address"),
            attribute(xml, "address-source"), 0};
  const std::string kib = attribute(xml, "memory-kib");
  if (!kib.empty() && kib.find_first_not_of("0123456789") == std::string::npos && kib.size() < 16) {
    tags.requestedMemoryKib = std::stoull(kib);
  }
  return tags;
}

std::string tagsXml(const Tags& tags) {
  std::string xml = "<vm reservation='" + xmlEscape(tags.reservationId) + "' template='" +
                    xmlEscape(tags.templateName) + "'";
  if (!tags.address.empty()) xml += " address='" + xmlEscape(tags.address) + "'";
  if (!tags.addressSource.empty()) {
    xml += " address-source='" + xmlEscape(tags.addressSource) + "'";
  }
  if (tags.requestedMemoryKib > 0) {
    xml += " memory-kib='" + std::to_string(tags.requestedMemoryKib) + "'";
  }
  return xml + "/>";
}

Status setTags(virDomainPtr dom, const Tags& tags) {
  unsigned flags = 0;
  if (virDomainIsPersistent(dom) == 1) flags |= VIR_DOMAIN_AFFECT_CONFIG;
  if (virDomainIsActive(dom) == 1) flags |= VIR_DOMAIN_AFFECT_LIVE;
  if (flags == 0) return Status::ok();
  if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, tagsXml(tags).c_str(), "vrm",
                           LibvirtHypervisor::kMetadataNamespace, flags) < 0) {
    return lastError("tag vm");
  }
  return Status::ok();
}

std::string macFor(const std::string& vmId) {
  std::uint32_t hash = 2166136261u;  // FNV-1a, 32 bits
  for (unsigned char c : vmId) {
    hash ^= c;
    hash *= 16777619u;
  }
  char mac[18];
  std::snprintf(mac, sizeof mac, "52:54:00:%02x:%02x:%02x", (hash >> 16) & 0xff, (hash >> 8) & 0xff,
                hash & 0xff);
  return mac;
}

std::string withNic(std::string xml, const CloneNic& nic, const std::string& mac) {
  const std::string macElement = "<mac address='" + mac + "'/>";
  if (const auto iface = findOpen(xml, "interface"); iface != std::string::npos) {
    const auto openEnd = xml.find('>', iface);
    const auto close = xml.find("</interface>", iface);
    if (openEnd == std::string::npos || xml[openEnd - 1] == '/' || close == std::string::npos) {
      return xml;  // <interface .../> or broken: libvirt's validation will say
    }
    if (findOpen(xml.substr(openEnd, close - openEnd), "mac") == std::string::npos) {
      xml.insert(openEnd + 1, macElement);
    }
    return xml;
  }
  if (nic.kind == CloneNic::Kind::kNone) return xml;
  const auto devicesEnd = xml.rfind("</devices>");
  const std::string source =
      nic.kind == CloneNic::Kind::kNetwork
          ? "<interface type='network'><source network='" + xmlEscape(nic.name) + "'/>"
          : "<interface type='bridge'><source bridge='" + xmlEscape(nic.name) + "'/>";
  const std::string element = source + macElement + "<model type='virtio'/></interface>";
  if (devicesEnd != std::string::npos) {
    xml.insert(devicesEnd, element);
  } else if (const auto domainEnd = xml.rfind("</domain>"); domainEnd != std::string::npos) {
    xml.insert(domainEnd, "<devices>" + element + "</devices>");
  }
  return xml;
}

std::vector<std::string> networksOf(const std::string& xml) {
  std::vector<std::string> out;
  for (auto at = findOpen(xml, "interface"); at != std::string::npos;
       at = findOpen(xml, "interface", at + 1)) {
    const auto close = xml.find("</interface>", at);
    const std::string iface = xml.substr(at, close == std::string::npos ? close : close - at);
    if (attribute(iface.substr(0, iface.find('>')), "type") != "network") continue;
    const auto source = findOpen(iface, "source");
    if (source == std::string::npos) continue;
    const std::string name =
        attribute(iface.substr(source, iface.find('>', source) - source), "network");
    if (!name.empty()) out.push_back(name);
  }
  return out;
}

std::vector<std::string> localDisksOf(const std::string& xml) {
  std::vector<std::string> out;
  for (auto at = findOpen(xml, "disk"); at != std::string::npos;
       at = findOpen(xml, "disk", at + 1)) {
    const auto close = xml.find("</disk>", at);
    const std::string disk = xml.substr(at, close == std::string::npos ? close : close - at);
    const std::string open = disk.substr(0, disk.find('>'));
    const std::string type = attribute(open, "type");
    const std::string device = attribute(open, "device");
    if ((type != "file" && type != "block") || (!device.empty() && device != "disk")) continue;
    if (findOpen(disk, "readonly") != std::string::npos) continue;
    if (findOpen(disk, "shareable") != std::string::npos) continue;
    const auto target = findOpen(disk, "target");
    if (target == std::string::npos) continue;
    const std::string dev = attribute(disk.substr(target, disk.find('>', target) - target), "dev");
    if (!dev.empty()) out.push_back(dev);
  }
  return out;
}

std::uint64_t localDiskBytes(virDomainPtr dom) {
  CString xml{virDomainGetXMLDesc(dom, 0)};
  if (!xml.s) return 0;
  std::uint64_t bytes = 0;
  for (const std::string& dev : localDisksOf(xml.s)) {
    virDomainBlockInfo info;
    if (virDomainGetBlockInfo(dom, dev.c_str(), &info, 0) == 0) bytes += info.allocation;
  }
  return bytes;
}

Result<std::string> addressOf(virDomainPtr dom, AddressSource source, const std::string& mac) {
  if (source == AddressSource::kNone) return std::string();
  virDomainInterfacePtr* ifaces = nullptr;
  const int n = virDomainInterfaceAddresses(dom, &ifaces,
                                            source == AddressSource::kLease
                                                ? VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE
                                                : VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
                                            0);
  if (n < 0) {
    virErrorPtr e = virGetLastError();
    // The guest agent is not up yet (early boot): not an error, ask again later.
    if (e && (e->code == VIR_ERR_AGENT_UNRESPONSIVE || e->code == VIR_ERR_AGENT_UNSYNCED)) {
      return std::string();
    }
    return lastError(std::string("address of the vm from its ") + addressSourceName(source));
  }
  std::string address;
  for (int i = 0; i < n; ++i) {
    const virDomainInterfacePtr iface = ifaces[i];
    const bool ours =
        mac.empty() ? (iface->name == nullptr || std::strcmp(iface->name, "lo") != 0)
                    : (iface->hwaddr != nullptr && strcasecmp(iface->hwaddr, mac.c_str()) == 0);
    for (unsigned j = 0; ours && address.empty() && j < iface->naddrs; ++j) {
      const virDomainIPAddress& a = iface->addrs[j];
      if (a.type == VIR_IP_ADDR_TYPE_IPV4 && a.addr && std::strncmp(a.addr, "127.", 4) != 0) {
        address = a.addr;
      }
    }
    virDomainInterfaceFree(iface);
  }
  free(ifaces);
  return address;
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
    case VIR_ERR_DOM_EXIST:
    case VIR_ERR_MIGRATE_UNSAFE:
    case VIR_ERR_OPERATION_TIMEOUT:
      return Status::rejected(message);
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_CANCELLED:
    case VIR_ERR_AUTH_UNAVAILABLE:
    case VIR_ERR_ACCESS_DENIED:
    case VIR_ERR_OPERATION_DENIED:  // "operation forbidden": a read-only connection, an ACL
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

}  // namespace vrm::vmscheduler::libvirt_detail
