// Share-nothing disk migration, both halves of QEMU's NBD storage migration
// (docs/interop/live-block-operations.rst, "QMP invocation for live storage migration"): the
// destination's incoming QEMU exports the VM's empty disk writable over NBD; the source mirrors
// its disk into that export (blockdev-mirror, sync=full) while the guest runs, and the memory
// migration starts once the mirror is ready (source and copy in step, guest writes copied as they
// come). The memory migration pauses before the switch-over (pause-before-switchover): the guest
// is stopped then, so completing the mirror there (block-job-cancel of a ready job: a final sync,
// the copy consistent) leaves the destination's disk exactly the source's; then the switch-over
// continues. The destination stops its NBD server before it runs the guest.
//
// Functions of the QMP connection they are given; not thread safe; errors are internal with
// QEMU's message unless said otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "qemu/qmp_client.h"
#include "vrm/protocol/status.h"

namespace vrm::vmscheduler::qemu {

// The guest's data disk as QEMU names it: the block backend of `-drive if=virtio` (the first).
inline constexpr const char* kDataDiskDevice = "virtio0";
// The name the destination exports the disk under.
inline constexpr const char* kDiskExportName = "vrm-disk";

// Destination: starts QEMU's NBD server on ADDRESS:PORT and exports the VM's data disk writable
// (block-export-add, which also activates the incoming QEMU's disk for the source's writes).
Status startDiskExport(QmpClient& qmp, const std::string& address, int port);
// Destination: stops the NBD server and its export (nbd-server-stop); before the guest runs.
Status stopDiskExport(QmpClient& qmp);

// Source: the mirror of the VM's data disk into the destination's export.
class DiskMirror {
 public:
  enum class State {
    kCopying,     // the first full pass (and any writes meanwhile)
    kReady,       // source and copy in step: the memory migration may start
    kCompleting,  // complete() asked for the final sync
    kCompleted,   // the copy is the source's disk (the job concluded without error)
    kFailed,      // the job ended with an error (failure() says which)
  };
  struct Progress {
    State state = State::kCopying;
    std::uint64_t copiedBytes = 0;  // the job's progress: disk bytes sent, re-sent writes too
    std::uint64_t totalBytes = 0;   // its current estimate of all it will send
    std::string error;              // kFailed: QEMU's reason
  };

  // Adds the export at HOST:PORT as a block node and starts mirroring `device` into it at
  // `speedBytesPerSec` (0 = unlimited); a `writeLimitBytesPerSec` > 0 caps the guest's writes to
  // the disk (block_set_io_throttle bps_wr) until the mirror ends, so that the copy converges.
  // On error nothing is left behind.
  static Result<DiskMirror> start(QmpClient& qmp, const std::string& host, int port,
                                  double speedBytesPerSec, double writeLimitBytesPerSec);

  // The job's state now (query-jobs); nullopt when QEMU did not answer (ask again).
  std::optional<Progress> poll(QmpClient& qmp);
  // A new rate for the rest of the copy (block-job-set-speed; 0 = unlimited).
  Status setSpeed(QmpClient& qmp, double bytesPerSec);
  // The guest is stopped: ends a ready mirror with a final sync (block-job-cancel); poll()
  // reports kCompleted once the copy is consistent.
  Status complete(QmpClient& qmp);
  // Stops the mirror (forced) and removes the job, the target node and the write cap: the VM's
  // disk as before. Best effort; idempotent.
  void abort(QmpClient& qmp);
  // Removes the concluded job and the target node (after kCompleted or kFailed), lifts the cap.
  void release(QmpClient& qmp);

  static constexpr const char* kJobId = "vrm-disk-mirror";
  static constexpr const char* kTargetNode = "vrm-disk-target";

 private:
  explicit DiskMirror(bool writeCapped) : writeCapped_(writeCapped) {}
  bool writeCapped_ = false;
  bool completing_ = false;
  bool released_ = false;
};

}  // namespace vrm::vmscheduler::qemu
