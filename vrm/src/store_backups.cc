#include "vrm/manager/store_backups.h"

#include <algorithm>
#include <cstdio>

namespace vrm::manager {

StoreBackups::StoreBackups(Store& store, const Clock& clock, StoreBackupsOptions options)
    : store_(store), clock_(clock), options_(options), ids_(std::random_device{}()) {
  options_.chunkBytes = std::max<std::size_t>(options_.chunkBytes, 1);
  options_.keptSnapshots = std::max<std::size_t>(options_.keptSnapshots, 1);
}

std::string StoreBackups::newId() {
  char id[24];
  std::snprintf(id, sizeof id, "b%016llx", static_cast<unsigned long long>(ids_()));
  return id;
}

Result<BackupChunk> StoreBackups::read(const std::string& snapshotId, std::uint64_t offset) {
  auto held = snapshots_.end();
  if (snapshotId.empty()) {
    if (offset != 0) return Status::invalid("a new backup starts at offset 0");
    auto snapshot = store_.snapshot();
    if (!snapshot) return snapshot.status();
    if (snapshots_.size() >= options_.keptSnapshots) snapshots_.pop_front();
    snapshots_.push_back({newId(), std::move(*snapshot), clock_.now()});
    held = std::prev(snapshots_.end());
  } else {
    held = std::find_if(snapshots_.begin(), snapshots_.end(),
                        [&](const Held& h) { return h.id == snapshotId; });
    if (held == snapshots_.end()) {
      return Status::notFound("backup snapshot " + snapshotId +
                              " is gone (vrmd restarted, or newer backups replaced it): start "
                              "the backup again");
    }
  }
  const std::string& bytes = held->snapshot.bytes;
  if (offset > bytes.size()) {
    return Status::invalid("offset " + std::to_string(offset) + " is past the end of snapshot " +
                           held->id + " (" + std::to_string(bytes.size()) + " bytes)");
  }
  BackupChunk chunk;
  chunk.snapshotId = held->id;
  chunk.totalBytes = bytes.size();
  chunk.offset = offset;
  chunk.data = bytes.substr(offset, options_.chunkBytes);
  chunk.reservations = held->snapshot.reservations;
  chunk.takenAtNs = held->takenAtNs;
  // Read to the end: nobody needs it again (a retry of the last read starts a new backup).
  if (offset + chunk.data.size() == bytes.size()) snapshots_.erase(held);
  return chunk;
}

}  // namespace vrm::manager
