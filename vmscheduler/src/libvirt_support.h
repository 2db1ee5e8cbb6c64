// Pieces of the libvirt backend shared by its facade (libvirt_hypervisor.cc) and its operations
// (libvirt_operations.cc): RAII owners of libvirt objects, typed errors from libvirt's, domain
// lookup, the VM metadata vrm keeps in each domain, and the XML helpers for templates.
// Thread safety: every function may be called from a worker thread (libvirt connections are
// thread safe); none keeps state.
#pragma once

#include <libvirt/libvirt.h>

#include <chrono>
#include <string>
#include <utility>

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

// What vrm keeps in a domain's metadata (namespace LibvirtHypervisor::kMetadataNamespace).
struct Tags {
  std::string reservationId;
  std::string templateName;
};
Tags tagsOf(virDomainPtr dom);
// The metadata element for a clone of `templateName` for `reservationId`.
std::string tagsXml(const std::string& reservationId, const std::string& templateName);

// The first address libvirt's lease source knows for the domain, else `fallback`.
std::string addressOf(virDomainPtr dom, const std::string& fallback);
// Removes a domain's persistent definition, if it has one.
void undefine(virDomainPtr dom);

// Fills the measured fields of `obs` from completed-job statistics (virDomainGetJobStats):
// setup, downtime, bytes, rounds (QEMU's memory iteration count), goodput over the transfer and
// dirty rate (pages/s x page size). Fields the statistics lack are left as they were.
void applyJobStats(virTypedParameterPtr params, int count, MigrationObservation& obs);
// A template's XML made into the domain XML of `spec` (see libvirt_hypervisor.h).
std::string instantiateTemplate(std::string xml, const CloneSpec& spec);

}  // namespace vrm::vmscheduler::libvirt_detail
