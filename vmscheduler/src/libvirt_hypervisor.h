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
//                     start) run on a worker thread each and finish through poll(); off: they
//                     run inside poll(). Auto is off for test:// URIs (instant calls) and on
//                     otherwise.
// HostInfo: cores and memory from virNodeGetInfo; the NIC bandwidth from the HostSpec (libvirt
// does not know it). VMs: every libvirt domain, named by its domain name. Running/blocked
// domains are running; paused, shut-off, crashed and PM-suspended ones are suspended (resume()
// starts a shut-off domain). Memory is the domain's maximum; non-zero memory its current
// balloon size unless the HostSpec lists the VM (then the HostSpec's figures, and its dirty
// rate and disk size, which libvirt does not report). Reservation and template are kept in
// the domain's metadata (namespace kMetadataNamespace), so they survive agent restarts.
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
// them (give each clone its own image with "{{name}}" in the disk path). The clone is defined
// (virDomainDefineXML), tagged, and started (virDomainCreate); its address is the first address
// libvirt's lease source knows, else "<vm>.<host>".
//
// Errors: libvirt errors become typed Status values carrying libvirt's message: no such domain
// -> not-found; XML errors and invalid arguments -> invalid-argument; operations the VM's state
// or the driver does not allow -> rejected; authentication -> unauthorized; a lost connection ->
// unavailable; anything else -> internal. create() fails with invalid-argument when the URI
// cannot be opened.
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

#include "libvirt_operations.h"
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
    bool cancelled = false;  // clone whose VM was destroyed meanwhile
    TimeNs startNs = 0;
    std::uint64_t lastBytesSent = 0;
    // Migration: its bandwidth cap (bytes/s, 0 = unlimited), shared with the work so a cap set
    // before the work starts is the one it migrates with.
    std::shared_ptr<std::atomic<double>> maxBandwidth;
    MigrationObservation observation;  // what is known before it runs
    VmHandle handle;
  };

  LibvirtHypervisor() = default;
  Status checkRoom(std::uint32_t cores, std::uint64_t memoryBytes) const;
  // Rejected when the VM is migrating out, cloning or incoming here.
  Status checkIdle(const std::string& vmId) const;
  Result<std::string> templateXml(const std::string& name) const;
  std::string parkImage(const std::string& vmId) const;
  // Queues an ok completion of `op` for the next poll() (a park or unpark already done).
  void completeAtOnce(OperationId op);
  void launch(Operation& op);
  OperationEvent complete(OperationId id, Operation& op, WorkResult result);
  std::optional<OperationEvent> progressOf(OperationId id, Operation& op);

  virConnectPtr conn_ = nullptr;
  std::string uri_;
  bool threaded_ = false;
  HostInfo host_;
  std::map<std::string, VmSpec> hints_;  // HostSpec VMs by id
  std::string templateDir_;
  std::map<std::string, std::string> inlineTemplates_;
  std::string stateDir_;
  std::string migrationUri_;
  std::string parkDir_;

  std::map<std::string, VmInfo> busy_;  // VMs migrating out, cloning or incoming, by id
  std::map<std::string, Operation::Local> parking_;   // VMs being parked or unparked, by id
  std::map<std::string, std::string> incomingPaths_;  // save image per incoming VM
  std::map<std::string, std::string> addresses_;      // clone addresses, by VM id
  std::map<OperationId, Operation> ops_;
  std::vector<OperationEvent> immediate_;
  TimeNs lastPollNs_ = 0;
};

}  // namespace vrm::vmscheduler
