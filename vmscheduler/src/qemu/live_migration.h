// Live migration over TCP: the source sets max-bandwidth and downtime-limit and migrates to the
// destination's waiting QEMU (tcp:ADDR:PORT from prepareIncoming()); progress comes from
// query-migrate. When the destination exports an empty data disk (its endpoint's disk=, a
// share-nothing host), the disk is mirrored into it first (disk_mirror.h, at the same cap, the
// guest's disk writes capped at the spec's diskWriteLimitBytesPerSec meanwhile); the memory
// migration starts once the mirror is ready and pauses before the switch-over, where the mirror
// completes with the guest stopped (phases "disk", then "copy"). The observation's
// transferredBytes then counts memory and disk bytes (as libvirt's data-processed does), its
// startNs is the mirror's start; when it completes, the source QEMU is killed and the VM leaves
// this host. A migration past max-rounds dirty-sync rounds or migration-timeout is cancelled and
// reported as not converging (rejected), the VM running on here. Phase durations come from QEMU's
// own query-migrate figures.
#pragma once

#include <memory>

#include "qemu/disk_mirror.h"
#include "qemu/qemu_operation.h"
#include "qemu/qemu_support.h"

namespace vrm::vmscheduler::qemu {

class LiveMigration final : public OutgoingOperation {
 public:
  // Starts migrating `vm` (running or suspended, checked by the caller) to `destination`.
  // Errors (nothing started, the VM as before): internal with QEMU's message.
  static Result<std::unique_ptr<LiveMigration>> start(QemuHost& host, QemuVm& vm, OperationId id,
                                                      const MigrationSpec& spec,
                                                      const IncomingEndpoint& destination);

  // The live migration `m` of `vm` that QEMU ran on while no agent watched (an agent restart),
  // followed from here under its command's id: its observation starts at m.startNs, its
  // timeouts count from there, and on failure the VM runs again if it ran before.
  static std::unique_ptr<LiveMigration> resume(const QemuHost& host, const QemuVm& vm,
                                               const VmStateRecord::Migration& m);

  std::optional<Status> setBandwidth(QemuHost& host, double maxBytesPerSec) override;

 protected:
  bool step(QemuHost& host, QemuVm& vm, TimeNs now, std::vector<OperationEvent>& out) override;
  void onStart(TimeNs now) override {
    if (!resumed_) OutgoingOperation::onStart(now);
  }

 private:
  LiveMigration(OperationId id, const VmInfo& vm, MigrationObservation obs, MigrationSpec spec)
      : OutgoingOperation(id, vm, std::move(obs)), spec_(std::move(spec)) {}

  // The disk phase's step: false until the memory migration runs (or the operation is over).
  bool stepDisk(QemuHost& host, QemuVm& vm, TimeNs now, std::vector<OperationEvent>& out);
  // At pre-switchover: completes the mirror, then lets the switch-over continue.
  void stepSwitchover(QemuVm& vm, std::vector<OperationEvent>& out);
  // Fails the migration, the mirror (if any) stopped and removed first.
  void failWithMirror(QemuVm& vm, Status status, std::vector<OperationEvent>& out);
  std::string timedOut(const QemuHost& host, TimeNs now, int rounds) const;

  bool resumed_ = false;
  std::optional<DiskMirror> mirror_;  // share-nothing: the data disk's mirror
  IncomingEndpoint destination_;
  bool memoryStarted_ = true;  // false while the mirror's first pass runs
  TimeNs memoryStartNs_ = 0;
  std::uint64_t diskCopiedBytes_ = 0;

  MigrationSpec spec_;
  std::string cancelReason_;         // set when we cancelled the migration ourselves
  double lastDirtyBytesPerSec_ = 0;  // query-migrate's last dirty-pages-rate, in bytes/s
};

// The bandwidth a migration out of `host` runs at: min(NIC, maxBytesPerSec if > 0), with
// kUnlimitedBytesPerSec standing for a host without a NIC figure.
double migrationBandwidth(const HostInfo& host, double maxBytesPerSec);

}  // namespace vrm::vmscheduler::qemu
