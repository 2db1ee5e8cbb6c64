// The "libvirt" backend: Xen, KVM and VMware hosts through libvirt's C API.
//
// Parameters (HypervisorOptions::params; unknown keys are an error; named as in every backend,
// backend/params.h: the older template_xml_dir, state_dir (or state-dir), migration_uri and
// park_dir still work):
//   uri               required. The libvirt connection URI, e.g. "qemu:///system",
//                     "xen:///system", "esx://host/", or in tests "test:///default" (one node
//                     shared by every connection of the process) / "test:///abs/path/node.xml"
//                     (a fresh node per connection: use one per simulated host).
//   template-xml-dir  optional. Clone templates are the files <dir>/<template>.xml.
//   template.NAME     optional, any number. Inline domain XML of template NAME (wins over the dir).
//   stage-dir         optional. Where incoming save images are written; a host with a stage-dir
//                     and no migration-uri receives VMs by save/restore (see below).
//   migration-uri     optional. The libvirt URI peers migrate to for live migration, e.g.
//                     "qemu+tcp://h2/system" (peer-to-peer: the source libvirtd connects to it).
//   park-dir          optional. Where parked VMs' save images are kept (<dir>/<vm>.vrmpark); a
//                     local directory is best. Default: stage-dir; with neither, parking is
//                     rejected.
//   threads           "auto" (default), "on" or "off". On: long calls (migrate, save, define and
//                     start) run on a worker thread each, on a libvirt connection of their own
//                     (libvirt holds back a connection's other calls while a peer-to-peer
//                     migration runs on it), and finish through poll(); off: they run inside
//                     poll(). Auto is off for test:// URIs (instant calls) and on otherwise.
//   network           optional. The libvirt network clones are attached to (<interface
//                     type='network'>), e.g. "default"; checked at start (exists, active).
//   bridge            optional, instead of network. A host bridge clones are attached to
//                     (<interface type='bridge'>); checked at start where the driver lists host
//                     interfaces. A clone's NIC is virtio with the MAC macFor(vm id) (stable per
//                     VM); a template with an <interface> of its own keeps it (it gets the MAC).
//   address-source    "lease" (default with network): the DHCP lease of the libvirt network
//                     (virDomainInterfaceAddresses, source LEASE); "agent": the QEMU guest agent
//                     in the guest (source AGENT; the template needs the org.qemu.guest_agent.0
//                     channel); "none" (default otherwise): no address. A clone is handed back
//                     only once its source names an IPv4 address of its NIC.
//   address-timeout   a clone without an address after this is destroyed and failed
//                     (unavailable). Default 120s.
//   account           the login account handles name. Default "vrm".
//   migration-timeout a live migration still running after this is cancelled
//                     (virDomainAbortJob) and reported as not converging (rejected). Default
//                     600s; 0s disables.
//   max-rounds        likewise past this many memory iterations. Default 60; 0 disables.
//   disk-migration    "shared" (default): a migration to a libvirt URI sends memory only (the
//                     destination sees the same disk images); "copy": share-nothing, libvirt
//                     also copies the VM's writable local disks (localDisksOf():
//                     VIR_MIGRATE_NON_SHARED_DISK with VIR_MIGRATE_PARAM_MIGRATE_DISKS; QEMU
//                     mirrors them to an NBD export on the destination at the migration's
//                     bandwidth cap, then the memory follows). The MigrationSpec's disk write cap
//                     is set on each copied disk (blkio write_bytes_sec, live) before the start;
//                     it travels with the domain. Not possible with libvirt 9.0 (measured, see
//                     README): changing that cap or the copy's rate while it runs (block tuning
//                     and block-job speed wait for the migration job; virDomainMigrateSetMaxSpeed
//                     changes the memory stream only) and incremental copies (NON_SHARED_INC is
//                     refused), so seed 004's broker cannot steer a libvirt disk sync once begun.
//   disk-dir          optional. Where this host keeps VMs' local disks, as libvirtd sees it (it
//                     must exist). A host receiving share-nothing migrations needs a libvirt
//                     storage pool over the directory of each incoming disk (libvirt creates the
//                     disk there, empty, before the copy); with disk-dir the agent makes a
//                     transient dir pool over it at start when there is none.
// Read and checked at start (libvirt_startup_checks.h), each an invalid-argument naming the
// setting with libvirt's reason: the uri opens; the network or bridge exists; every template
// (inline and in template-xml-dir) is defined under a probe name and undefined again, so
// libvirt's parser and the driver judge it (XML, virtualization type, emulator, the networks it
// names); a read-only connection is unauthorized.
// HostInfo: cores and memory from virNodeGetInfo; the NIC bandwidth from the HostSpec (libvirt
// does not know it). VMs: every libvirt domain, named by its domain name. Running/blocked
// domains are running; paused, shut-off, crashed and PM-suspended ones are suspended (resume()
// starts a shut-off domain). Memory is the domain's maximum; non-zero memory its current
// balloon size unless the HostSpec lists the VM (then the HostSpec's figures, and its dirty
// rate, which libvirt does not report, and disk size). The disk size is otherwise what a
// share-nothing migration copies: the allocation of its local disks (localDiskBytes()); the disk
// write rate is not reported (libvirt's block stats give totals only). Reservation, template, the
// clone's address and its source, and the memory vrm asked for are kept in the domain's metadata
// (namespace kMetadataNamespace, libvirt_detail::Tags), so they survive agent restarts and
// migrations; a clone's memory is reported as asked (libvirt may round it up).
//
// Migration: the destination chooses how VMs arrive, through prepareIncoming()'s endpoint:
//   "save:<path>"  (no migration-uri, a stage-dir) the source saves the VM to <path>
//                  (virDomainSaveFlags; a stage-dir on storage both hosts see) and undefines it;
//                  finishIncoming(commit) on the destination restores it (virDomainRestore,
//                  synchronously, on the calling thread) and defines it persistently. This is
//                  suspend-copy-resume whatever the mode asked, and it is how migration is tested
//                  on the test driver, which has no migration. The observation's downtime covers
//                  the save only (the restore happens later).
//   a libvirt URI  (migration-uri) virDomainMigrateToURI3 with PEER2PEER | PERSIST_DEST, plus
//                  LIVE for live mode (without it libvirt pauses the VM for the copy: suspend-
//                  copy-resume), the max bandwidth as VIR_MIGRATE_PARAM_BANDWIDTH and the
//                  downtime limit through virDomainMigrateSetMaxDowntime where the driver has it.
//                  The source domain is undefined afterwards. Progress and the observation come
//                  from virDomainGetJobStats where the driver has job statistics (QEMU); without
//                  them, setup, downtime, bytes, rounds and dirty rate are 0 ("not measured").
// Measured times are wall-clock durations of the libvirt calls (steady clock); an observation
// starts at the `now` of the poll() that started it (inline) or of the last poll() before it
// (worker) and ends that duration later.
//
// Parking: startPark() saves the domain with virDomainSaveFlags to <park-dir>/<vm>.vrmpark (the
// domain stops; a persistent one stays defined, shut off); inventory() lists a shut-off domain
// with such an image as kParked with that stateFile, so a parked VM is found again after an
// agent restart. startUnpark() restores it (virDomainRestore) and removes the image. A parked
// VM's cores and memory count as free; an unpark in flight (listed incoming) holds them again. The
// observation's saveNs / restoreNs are the libvirt calls' durations and transferredBytes the
// image's size.
//
// Clones: the template's XML with "{{name}}", "{{memory_kib}}", "{{vcpus}}" replaced when
// present; otherwise the first <name>'s text becomes the VM id, <uuid> is dropped, and <memory>,
// <currentMemory> and <vcpu> are set from the CloneSpec. Disks are used as the template names
// them (give each clone its own image with "{{name}}" in the disk path). The NIC of the network
// or bridge setting is added. (Unlike the qemu backend, no workaround for QEMU 7.2's TCG
// migration bug with RAM sizes that are multiples of 256 KiB: libvirt rounds every size up to a
// whole MiB; the tests run QEMU through tests/libvirt/qemu-tcg.sh instead.) The clone is defined
// (virDomainDefineXML), tagged, and started (virDomainCreate); then its address source is asked
// every 250 ms until it names the NIC's IPv4 address (the handle: vm, host, that address, the
// account), the domain stops, or address-timeout passes. A clone that fails after its define is
// destroyed and undefined.
//
// Errors: libvirt errors become typed Status values carrying libvirt's message: no such domain
// -> not-found; XML errors and invalid arguments -> invalid-argument; operations the VM's state
// or the driver does not allow -> rejected; authentication -> unauthorized; a lost connection ->
// unavailable; anything else -> internal (libvirt's "Attempt to migrate guest to the same host"
// is an internal error). create() fails as listed under "Checked at start".
//
// Thread safety: as every Hypervisor, driven by one thread. Worker threads only make libvirt
// calls (libvirt connections are thread-safe) on values copied for them and hand their result
// back through a future that poll() collects; the destructor waits for them. Creating the first
// instance installs a process-wide libvirt error handler that stops libvirt printing errors to
// stderr (they are returned as Status instead).
#pragma once

#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/params.h"
#include "libvirt_operations.h"
#include "libvirt_startup_checks.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler {

class LibvirtHypervisor final : public Hypervisor {
 public:
  static constexpr const char* kMetadataNamespace = "https://vrm.invalid/xmlns/libvirt-vm/1";

  // Errors: invalid-argument for a missing or unusable URI, unknown parameters, a host without a
  // name, or an unreadable template-xml-dir.
  static Result<std::unique_ptr<Hypervisor>> create(const HypervisorOptions& options);
  ~LibvirtHypervisor() override;

  std::string_view backendName() const override { return "libvirt"; }
  HostInfo hostInfo() const override { return host_; }
  std::string migrationEndpoint() const override;
  std::vector<VmInfo> inventory() const override;

  Result<std::string> prepareIncoming(const VmInfo& vm) override;
  Status finishIncoming(const std::string& vmId, bool commit) override;
  Status startMigration(OperationId op, const MigrationSpec& spec) override;
  Status setMigrationBandwidth(const std::string& vmId, double maxBytesPerSec) override;
  Status suspend(const std::string& vmId) override;
  Status resume(const std::string& vmId) override;
  Status startClone(OperationId op, const CloneSpec& spec) override;
  Status startPark(OperationId op, const std::string& vmId) override;
  Status startUnpark(OperationId op, const std::string& vmId) override;
  Status destroy(const std::string& vmId) override;
  std::vector<OperationEvent> poll(TimeNs now) override;
  TimeNs nextEventTime() const override;

  // The domain XML libvirt has for `vmId` (diagnostics, tests). Errors: not-found, lastError's.
  Result<std::string> domainXml(const std::string& vmId) const;

  // Blocks until every worker thread has returned (the next poll() then reports them). For tests
  // of the threaded mode and for shutdown.
  void waitForWorkers();

 private:
  using WorkResult = libvirt_detail::WorkResult;
  struct Operation {
    bool isMigration = true;
    // Not a migration: a clone, or (when set) a park or an unpark of vmId.
    enum class Local { kNone, kPark, kUnpark } local = Local::kNone;
    std::string vmId;
    std::shared_ptr<libvirt_detail::LibvirtWork> work;  // inline mode: run by the first poll()
    std::future<WorkResult> future;                     // worker mode
    bool started = false;
    bool cancelled = false;     // clone whose VM was destroyed meanwhile
    bool live = false;          // a live migration to a libvirt URI
    std::string abortReason;    // set when progressOf() cancelled it
    TimeNs watchedSinceNs = 0;  // the poll that first saw it running (its migration-timeout)
    TimeNs startNs = 0;
    std::uint64_t lastBytesSent = 0;
    // Migration: its bandwidth cap (bytes/s, 0 = unlimited), shared with the work so a cap set
    // before the work starts is the one it migrates with.
    std::shared_ptr<std::atomic<double>> maxBandwidth;
    MigrationObservation observation;  // what is known before it runs
    VmHandle handle;
  };

  LibvirtHypervisor() = default;
  // What a long operation runs on: its own connection in worker mode (see WorkConnection).
  libvirt_detail::WorkConnection workConnection() const;
  Status checkRoom(std::uint32_t cores, std::uint64_t memoryBytes) const;
  // Rejected when the VM is migrating out, cloning or incoming here.
  Status checkIdle(const std::string& vmId) const;
  std::string parkImage(const std::string& vmId) const;
  // Queues an ok completion of `op` for the next poll() (a park or unpark already done).
  void completeAtOnce(OperationId op);
  void launch(Operation& op);
  OperationEvent complete(OperationId id, Operation& op, WorkResult result, TimeNs now);
  // A progress event of migration `op` from libvirt's job statistics, if it moved on; cancels a
  // live migration past max-rounds or migration-timeout (op.abortReason says why).
  std::optional<OperationEvent> progressOf(OperationId id, Operation& op, TimeNs now);

  virConnectPtr conn_ = nullptr;
  libvirt_detail::LibvirtSettings settings_;
  HostInfo host_;
  std::map<std::string, VmSpec> hints_;  // HostSpec VMs by id

  std::map<std::string, VmInfo> busy_;  // VMs migrating out, cloning or incoming, by id
  std::map<std::string, Operation::Local> parking_;   // VMs being parked or unparked, by id
  std::map<std::string, std::string> incomingPaths_;  // save image per incoming VM
  std::map<OperationId, Operation> ops_;
  std::vector<OperationEvent> immediate_;
  TimeNs lastPollNs_ = 0;
};

}  // namespace vrm::vmscheduler
