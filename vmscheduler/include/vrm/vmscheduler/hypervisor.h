// The hypervisor behind one vmschedd: inventory, migrate, suspend/resume, clone, destroy.
//
// A Hypervisor is a plug point: one implementation per backend, chosen by name through
// Hypervisor::create(): "sim", "qemu" and "libvirt". The interface is asynchronous the way real
// backends are: long operations (migration, clone) are started with an operation id chosen by
// the caller and finish later, reported by poll().
//
// Thread safety: none. One Hypervisor is owned and driven by one thread (the agent's event
// loop). Time: backends that need time read it only from the `now` given to poll(), never from
// a clock of their own, so tests can run them deterministically. (Backends driving real
// hypervisors measure how long the real operations took with a steady clock, and place those
// durations on the poll() timeline.)
// Errors: expected failures are Status / Result values, never exceptions:
//   not-found         the VM id is unknown on this host
//   rejected          the VM is busy (e.g. migrating out), the id already exists, or there is
//                     not enough free memory / cores
//   invalid-argument  the request itself is impossible (zero memory, migrate to self, ...)
// Units: bytes, bytes per second, TimeNs (int64 ns).
// Restarts: a backend whose guests outlive the agent (qemu) may resume, when it is created,
// operations an earlier agent started, under their ids; poll() then reports their completion
// although no call in this process started them, and starting one again with its id and VM
// attaches to it (ok, one completion) instead of starting another.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vrm/protocol/cluster.h"
#include "vrm/protocol/reservation.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::vmscheduler {

// Chosen by the caller, unique among the operations in flight (the agent uses the command id).
using OperationId = std::uint64_t;

// The agent reports the protocol's types (vrm/protocol/reservation.h) for what vrmd reads back
// (VmState::kParked: saved to VmInfo::stateFile on this host and stopped; it holds no cores or
// memory).
using VmState = vrm::VmState;
// A backend migrates live or suspend-copy-resume; kSuspend is never a migration (the agent
// refuses it): it marks the observation of a park or unpark (startPark()).
using MigrationMode = vrm::MoveMode;
using MigrationObservation = vrm::MigrationObservation;

using vrm::vmStateName;  // protocol/vm.h

struct HostInfo {
  std::string name;
  std::uint32_t cpuCores = 0;
  std::uint64_t memoryBytes = 0;
  double nicBandwidthBytesPerSec = 0;
};

struct VmInfo {
  std::string id;
  std::uint32_t cpuCores = 1;
  std::uint64_t memoryBytes = 0;
  std::uint64_t nonzeroMemoryBytes = 0;  // resident non-zero pages: what a migration sends
  double dirtyRateBytesPerSec = 0;
  std::uint64_t diskBytes = 0;
  VmState state = VmState::kRunning;
  std::string reservationId;  // empty for long-lived VMs
  std::string address;
  std::string templateName;  // empty unless cloned from a template
  // The cluster file's allow_live / allow_suspend for the VM: reported to vrmd, whose planner
  // uses only the modes allowed; they travel with the VM (prepareIncoming() keeps them).
  bool allowLive = true;
  bool allowSuspend = true;
  std::string stateFile;  // kParked: where its saved state is (a path; the sim names one)
  double diskDirtyRateBytesPerSec = 0;  // the guest's disk write rate, as last measured
  // Measured for the migration models where the backend can (protocol/vm.h; the qemu backend
  // fills them, others leave them empty):
  std::vector<double> dirtyRateSamplesBytesPerSec;  // recent samples, oldest first
  std::uint64_t modifiedMemoryBytes = 0;
  std::string workload;  // "cpu", "memory" or ""
  // A clone's handle as its clone operation returned it (VmHandle), kept so that vrmd can set
  // the handle from the inventory when it missed the answer. Empty / 0 for other VMs.
  std::string account;
  std::uint32_t sshPort = 0;
  std::string addressSource;
};

struct MigrationSpec {
  std::string vmId;
  std::string destinationHost;
  std::string destinationEndpoint;  // from the destination's prepareIncoming()
  MigrationMode mode = MigrationMode::kLive;
  double maxBandwidthBytesPerSec = 0;  // 0 = unlimited (the NIC's bandwidth)
  TimeNs downtimeLimitNs = 0;          // 0 = backend default; the sim ignores it
  // The plan's cap on the guest's disk writes while its local disks are copied (seed 004's
  // broker: the copy converges only if the guest writes slower than it is sent), applied before
  // the copy starts; 0 = none. Backends that copy no disk ignore it.
  double diskWriteLimitBytesPerSec = 0;
};

struct CloneSpec {
  std::string vmId;  // chosen by vrmd
  std::string templateName;
  std::uint32_t cpuCores = 1;
  std::uint64_t memoryBytes = 0;
  std::string reservationId;
  TimeNs bootTimeNs = 0;  // clone + boot until the VM answers (the sim takes exactly this long)
  // The reservation owner's OpenSSH public key, already checked by vrmd (ssh_key.h); a backend
  // that can puts it into the clone's `account` (qemu: kernel+initramfs templates). "" = none.
  std::string sshPublicKey;
};

// How to reach a cloned VM. `addressSource` says where address and port come from (a host
// port forward, a DHCP lease, the configured name, ...): a backend reports what is there and
// leaves address empty, saying why, rather than guess one.
struct VmHandle {
  std::string vmId;
  std::string host;
  std::string address;
  std::string account;
  std::uint32_t port = 0;  // ssh's port at address; 0 = not known or no ssh
  std::string addressSource;
};

// Something that happened to an operation in flight, reported by poll().
struct OperationEvent {
  enum class Kind { kProgress, kCompleted };
  OperationId opId = 0;
  Kind kind = Kind::kProgress;

  // kProgress
  double fraction = 0;  // 0..1
  std::uint64_t bytesSent = 0;
  std::uint64_t bytesTotal = 0;
  std::string phase;  // "setup", "copy", "commit", "clone", ...

  // kCompleted: the outcome, and on success exactly one of these for the operation's kind.
  Status status;
  std::optional<MigrationObservation> migration;
  std::optional<VmHandle> clone;
};

// A guest the host lost without being asked to (protocol/vm.h): its QEMU (or domain) exited,
// or an agent restart could not find it again. The agent reports these to vrmd.
using LostVm = vrm::LostVm;

// Backend configuration. `host` describes the machine (the sim takes capacity and initial VMs
// from it; real backends will take only the name and discover the rest). `params` holds
// backend-specific settings (e.g. a libvirt URI); unknown keys are an error.
struct HypervisorOptions {
  HostSpec host;
  std::map<std::string, std::string> params;
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;

  // Builds the backend called `name` ("sim"). Errors: invalid-argument for an unknown backend or
  // options it cannot use (e.g. VMs that do not fit the host).
  static Result<std::unique_ptr<Hypervisor>> create(std::string_view name,
                                                    const HypervisorOptions& options);

  virtual std::string_view backendName() const = 0;  // "sim"
  virtual HostInfo hostInfo() const = 0;
  // Where peers send migration streams to this host (backend specific, e.g. "sim://h1").
  virtual std::string migrationEndpoint() const = 0;
  // Every VM on the host, in every state, ordered by id.
  virtual std::vector<VmInfo> inventory() const = 0;

  // Reserves capacity for `vm` arriving by migration and lists it in state incoming.
  // Returns the endpoint the source must send to. Errors: rejected (id exists, no room).
  virtual Result<std::string> prepareIncoming(const VmInfo& vm) = 0;
  // commit=true: the prepared VM now runs here; commit=false: drop it and free its capacity.
  // Errors: not-found, rejected (the VM is not incoming).
  virtual Status finishIncoming(const std::string& vmId, bool commit) = 0;

  // Starts migrating a VM away; completion (with a MigrationObservation) comes from poll(), after
  // which the VM is gone from inventory(). The VM is migratingOut meanwhile.
  // Errors (nothing started): not-found, rejected (busy), invalid-argument.
  virtual Status startMigration(OperationId op, const MigrationSpec& spec) = 0;
  // Changes the bandwidth cap of the VM's running outgoing migration to `maxBytesPerSec`
  // (0 = unlimited: the NIC's bandwidth), from now on; the rest of the migration runs at the
  // new cap. Errors: not-found (unknown VM), rejected (the VM is not migrating out),
  // invalid-argument (negative or non-finite rate), or the backend's error applying it.
  virtual Status setMigrationBandwidth(const std::string& vmId, double maxBytesPerSec) = 0;

  // Suspending a suspended VM, or resuming a running one, is ok (idempotent).
  // Errors: not-found, rejected (busy: migrating, incoming, cloning).
  virtual Status suspend(const std::string& vmId) = 0;
  virtual Status resume(const std::string& vmId) = 0;

  // Parking, for a reservation that needs the host while no other host has room for the VM:
  // startPark() saves the VM's state to a file on this host and stops it, freeing its cores and
  // memory; it stays in inventory() as kParked with its stateFile (also across a restart of the
  // agent) until startUnpark() restores it from that file and runs it again, here. Completion,
  // with a MigrationObservation of mode kSuspend, comes from poll(). Parking a parked VM, or
  // unparking a running one, completes at once with ok (vrmd retries commands). A parked VM can
  // be destroyed (its state file goes too), not migrated, suspended or resumed. While parking the
  // VM is listed kMigratingOut, while unparking kIncoming (busy, its room held), so whoever
  // reads the inventory (vrmd after a restart) can tell an operation in flight from one to
  // ask for again.
  // Errors (nothing started): not-found, rejected (busy; unpark: not enough free cores/memory).
  virtual Status startPark(OperationId op, const std::string& vmId) = 0;
  virtual Status startUnpark(OperationId op, const std::string& vmId) = 0;

  // Starts cloning a VM from a template; completion (with a VmHandle) comes from poll(). The VM
  // is listed in state cloning meanwhile. Re-cloning an id that already finished cloning with the
  // same template and reservation succeeds again with the same handle (vrmd retries clones).
  // Errors (nothing started): rejected (id exists, no room), invalid-argument.
  virtual Status startClone(OperationId op, const CloneSpec& spec) = 0;

  // Removes a VM and frees its capacity. A VM still cloning is removed and its clone operation
  // completes as rejected. Errors: not-found, rejected (migrating out).
  virtual Status destroy(const std::string& vmId) = 0;

  // Advances the backend to `now` and returns what happened since the last call, in order.
  // `now` must not decrease between calls.
  virtual std::vector<OperationEvent> poll(TimeNs now) = 0;
  // When poll() next has something to report; kTimeInfinity when nothing is in flight, and a
  // time at or before the last poll's `now` when poll() should be called right away.
  virtual TimeNs nextEventTime() const = 0;

  // Every guest lost since the backend was created, oldest first; grows only. Backends that
  // cannot lose guests behind the agent's back (the sim) have none.
  virtual const std::vector<LostVm>& lostVms() const;
};

}  // namespace vrm::vmscheduler
