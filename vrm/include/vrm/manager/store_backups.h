// Online backups of vrmd's store, served to admins in chunks (ClientRequest.backup).
//
// A backup is a snapshot (Store::snapshot: a consistent SQLite database file, checked) read
// piece by piece, so a store larger than one frame still travels: the first read takes the
// snapshot and returns its first chunk, later reads name it by id and offset. Snapshots live in
// memory; only the newest `keptSnapshots` are kept (an abandoned backup costs at most that many
// copies), and one is dropped once its last byte has been read. Ids are random, so a client
// still reading from a vrmd that restarted gets notFound, never another snapshot's bytes.
// Not thread-safe: vrmd's event loop owns it, as it owns the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <random>
#include <string>

#include "vrm/manager/store.h"
#include "vrm/protocol/reservation.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

struct StoreBackupsOptions {
  // Largest `data` of one chunk. Default 1 MiB: far below the 16 MiB frame limit of clients.
  std::size_t chunkBytes = 1u << 20;
  // Snapshots kept at once. Default 2.
  std::size_t keptSnapshots = 2;
};

class StoreBackups {
 public:
  // `store` and `clock` must outlive this object.
  StoreBackups(Store& store, const Clock& clock, StoreBackupsOptions options = {});

  // snapshotId "" (offset must be 0): takes a new snapshot and returns its first chunk.
  // Otherwise the chunk of that snapshot starting at `offset`; offset == totalBytes gives an
  // empty chunk. Errors: notFound (unknown or dropped snapshot: start again), invalid-argument
  // (offset past the end, or a first read not at 0), internal (the store could not be copied).
  Result<BackupChunk> read(const std::string& snapshotId, std::uint64_t offset);

  std::size_t snapshotsHeld() const { return snapshots_.size(); }

 private:
  struct Held {
    std::string id;
    Store::Snapshot snapshot;
    TimeNs takenAtNs = 0;
  };
  std::string newId();

  Store& store_;
  const Clock& clock_;
  StoreBackupsOptions options_;
  std::deque<Held> snapshots_;  // oldest first
  std::mt19937_64 ids_;
};

}  // namespace vrm::manager
