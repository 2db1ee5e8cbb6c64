// Pieces of the libvirt backend shared by its facade (libvirt_hypervisor.cc) and its operations
// (libvirt_operations.cc): RAII owners of libvirt objects, typed errors from libvirt's, domain
// lookup, the VM metadata vrm keeps in each domain, and the XML helpers for templates.
// Thread safety: every function may be called from a worker thread (libvirt connections are
// thread safe); none keeps state.
#pragma once

#include <libvirt/libvirt.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler::libvirt_detail {

using SteadyClock = std::chrono::steady_clock;
TimeNs since(SteadyClock::time_point t0);

// Once per process: virInitialize() and an error handler that keeps libvirt off stderr.
void initLibvirtOnce();

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

// The Status for the calling thread's last libvirt error, prefixed with `what`.
Status lastError(const std::string& what);
// The domain named `vmId`. Errors: not-found "vm 'ID' is not on host 'HOST'", else lastError's.
Result<Domain> lookup(virConnectPtr conn, const std::string& vmId, const std::string& host);
// A libvirt domain state as the VmState the agent reports.
VmState stateOf(int libvirtState);
std::string xmlEscape(const std::string& text);

// Where a clone's address comes from (the backend's address-source setting).
enum class AddressSource {
  kNone,   // not looked up: the handle has no address
  kLease,  // the DHCP lease of the libvirt network (VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE)
  kAgent,  // the QEMU guest agent in the guest (VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT)
};
const char* addressSourceName(AddressSource source);  // "none", "lease", "agent"

// What vrm keeps in a domain's metadata (namespace LibvirtHypervisor::kMetadataNamespace), so it
// survives agent restarts and travels with the domain when it migrates.
struct Tags {
  std::string reservationId;
  std::string templateName;
  std::string address;        // the clone's address once known, empty before
  std::string addressSource;  // addressSourceName() of where `address` came from
  // The memory vrm asked for, in KiB; inventory() reports it rather than the domain's maximum,
  // which libvirt rounds up (to a whole MiB for QEMU).
  std::uint64_t requestedMemoryKib = 0;
};
Tags tagsOf(virDomainPtr dom);
// The metadata element holding `tags`.
std::string tagsXml(const Tags& tags);
// Writes `tags` into the domain's metadata: its persistent definition, and the running domain's
// (which a migration carries) when it runs. Errors: lastError's.
Status setTags(virDomainPtr dom, const Tags& tags);

// The MAC address of a clone's NIC, a function of its id only (52:54:00 and 24 bits of the id's
// FNV-1a hash), so a clone made again gets the same one and DHCP servers see a stable client.
std::string macFor(const std::string& vmId);

// The NIC a clone gets on its host (the backend's network or bridge setting).
struct CloneNic {
  enum class Kind { kNone, kNetwork, kBridge } kind = Kind::kNone;
  std::string name;  // the libvirt network or the host bridge
};
// `xml` with the clone's NIC: with no <interface> in it, one of `nic` (virtio, MAC `mac`) is added
// before </devices>; a template's own first <interface> without a <mac> gets `mac`.
std::string withNic(std::string xml, const CloneNic& nic, const std::string& mac);
// The libvirt networks `xml`'s interfaces name (<source network='X'/>).
std::vector<std::string> networksOf(const std::string& xml);
// The target devices ("vda", ...) of the disks of domain `xml` a share-nothing migration copies:
// disks (device='disk') on a file or block device, neither read-only nor shareable.
std::vector<std::string> localDisksOf(const std::string& xml);
// The bytes a share-nothing migration of `dom` copies: the allocation (virDomainGetBlockInfo) of
// each of its localDisksOf() summed; 0 when libvirt cannot say (no disks, a driver without it).
std::uint64_t localDiskBytes(virDomainPtr dom);
// One look at the domain's IPv4 address from `source` on the NIC with MAC `mac` (any NIC but
// loopback when `mac` is empty). Returns the address, or empty when the source does not know it
// yet (no lease yet, guest agent not connected yet). Errors: lastError's for anything else.
Result<std::string> addressOf(virDomainPtr dom, AddressSource source, const std::string& mac);
// Removes a domain's persistent definition, if it has one.
void undefine(virDomainPtr dom);

// Fills the measured fields of `obs` from completed-job statistics (virDomainGetJobStats):
// setup, downtime, bytes, rounds (QEMU's memory iteration count), goodput over the transfer and
// dirty rate (pages/s x page size). Fields the statistics lack are left as they were.
void applyJobStats(virTypedParameterPtr params, int count, MigrationObservation& obs);
// A template's XML made into the domain XML of `spec` (see libvirt_hypervisor.h).
std::string instantiateTemplate(std::string xml, const CloneSpec& spec);

}  // namespace vrm::vmscheduler::libvirt_detail
