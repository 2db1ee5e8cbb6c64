#include "vrm/manager/etcd_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>

#include "vrm/manager/sqlite_store.h"
#include "vrm/protocol/wire_convert.h"

namespace vrm::manager {
namespace {

using etcd::ErrorCode;
using etcd::Mutation;
using nlohmann::json;

constexpr const char* kCounterKey = "meta/next_reservation";
constexpr const char* kReservations = "res/";
constexpr const char* kEvents = "ev/";
constexpr const char* kObservations = "obs/";

// A reservation id as one key segment: '%' and '/' escaped, so no id's keys are a prefix of
// another's.
std::string keySegment(const std::string& id) {
  std::string out;
  for (char c : id) {
    if (c == '%' || c == '/') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// Sequence numbers padded so that key order is numeric order.
std::string sequenceKey(std::int64_t n) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016lld", static_cast<long long>(n));
  return buf;
}

std::int64_t sequenceOf(const std::string& key) {
  const std::size_t slash = key.rfind('/');
  std::int64_t n = 0;
  const char* begin = key.data() + slash + 1;
  std::from_chars(begin, key.data() + key.size(), n);
  return n;
}

// The records whose keys start with `prefix`, as [begin, end) of the copy.
template <typename Map>
auto rangeOf(const Map& records, const std::string& prefix) {
  auto begin = records.lower_bound(prefix);
  auto end = begin;
  while (end != records.end() && end->first.compare(0, prefix.size(), prefix) == 0) ++end;
  return std::make_pair(begin, end);
}

std::string encodeEvent(const ReservationEvent& e) {
  return json{{"time_ns", e.timeNs}, {"state", stateName(e.state)}, {"message", e.message}}.dump();
}

Result<ReservationEvent> decodeEvent(const std::string& key, const std::string& text) {
  json j = json::parse(text, nullptr, false);
  ReservationEvent e;
  if (!j.is_object() || !j["time_ns"].is_number_integer() || !j["state"].is_string() ||
      !j["message"].is_string()) {
    return Status::internal("store: event " + key + " is corrupt");
  }
  auto state = stateFromName(j["state"].get<std::string>());
  if (!state) return Status::internal("store: event " + key + " has an unknown state");
  e.timeNs = j["time_ns"].get<std::int64_t>();
  e.state = *state;
  e.message = j["message"].get<std::string>();
  return e;
}

std::string encodeObservation(const MigrationObservation& o) {
  return json{{"vm_id", o.vmId},
              {"from_host", o.fromHost},
              {"to_host", o.toHost},
              {"mode", moveModeName(o.mode)},
              {"memory_bytes", o.memoryBytes},
              {"nonzero_memory_bytes", o.nonzeroMemoryBytes},
              {"transferred_bytes", o.transferredBytes},
              {"dirty_rate", o.dirtyRateBytesPerSec},
              {"bandwidth", o.bandwidthBytesPerSec},
              {"start_ns", o.startNs},
              {"end_ns", o.endNs},
              {"setup_ns", o.setupNs},
              {"downtime_ns", o.downtimeNs},
              {"rounds", o.rounds},
              {"save_ns", o.saveNs},
              {"copy_ns", o.copyNs},
              {"restore_ns", o.restoreNs}}
      .dump();
}

Result<MigrationObservation> decodeObservation(const std::string& key, const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Status::internal("store: observation " + key + " is corrupt");
  MigrationObservation o;
  try {
    o.vmId = j.at("vm_id").get<std::string>();
    o.fromHost = j.at("from_host").get<std::string>();
    o.toHost = j.at("to_host").get<std::string>();
    const std::string mode = j.at("mode").get<std::string>();
    o.mode = mode == "live"      ? MoveMode::kLive
             : mode == "suspend" ? MoveMode::kSuspend
                                 : MoveMode::kSuspendCopyResume;
    o.memoryBytes = j.at("memory_bytes").get<std::uint64_t>();
    o.nonzeroMemoryBytes = j.at("nonzero_memory_bytes").get<std::uint64_t>();
    o.transferredBytes = j.at("transferred_bytes").get<std::uint64_t>();
    o.dirtyRateBytesPerSec = j.at("dirty_rate").get<double>();
    o.bandwidthBytesPerSec = j.at("bandwidth").get<double>();
    o.startNs = j.at("start_ns").get<std::int64_t>();
    o.endNs = j.at("end_ns").get<std::int64_t>();
    o.setupNs = j.at("setup_ns").get<std::int64_t>();
    o.downtimeNs = j.at("downtime_ns").get<std::int64_t>();
    o.rounds = j.at("rounds").get<std::uint32_t>();
    o.saveNs = j.value("save_ns", std::int64_t{0});
    o.copyNs = j.value("copy_ns", std::int64_t{0});
    o.restoreNs = j.value("restore_ns", std::int64_t{0});
  } catch (const json::exception& e) {
    // The codec boundary: a malformed record becomes a typed error.
    return Status::internal("store: observation " + key + " is corrupt: " + e.what());
  }
  return o;
}

}  // namespace

EtcdStore::EtcdStore(EtcdStoreOptions options, FenceSource fence,
                     std::unique_ptr<etcd::Client> client,
                     std::unique_ptr<etcd::RecordStore> records)
    : options_(std::move(options)),
      fence_(std::move(fence)),
      client_(std::move(client)),
      records_(std::move(records)) {}

EtcdStore::~EtcdStore() = default;

Result<std::unique_ptr<EtcdStore>> EtcdStore::open(EtcdStoreOptions options, FenceSource fence) {
  if (options.prefix.empty() || options.prefix.front() != '/' || options.prefix.back() != '/') {
    return Status::invalid("etcd store: the prefix must start and end with '/': " + options.prefix);
  }
  if (!fence) return Status::invalid("etcd store: no fence source");
  auto client = etcd::Client::create(options.client);
  if (!client) return client.status();
  etcd::RecordStoreOptions recordOptions = options.records;
  recordOptions.prefix = recordPrefix(options.prefix);
  auto records = etcd::RecordStore::create(client->get(), recordOptions);
  if (!records) return records.status();
  std::unique_ptr<EtcdStore> store(
      new EtcdStore(std::move(options), std::move(fence), std::move(*client), std::move(*records)));
  if (auto loaded = store->records_->load(); !loaded) {
    return Status::unavailable("etcd store: cannot load " + recordOptions.prefix + ": " +
                               loaded.error().toString());
  }
  if (Status s = store->takeOver(); !s) return s;
  return store;
}

etcd::SteadyTime EtcdStore::syncDeadline() const {
  return std::chrono::steady_clock::now() + options_.syncTimeout;
}

std::int64_t EtcdStore::storedCounter() const {
  const auto& records = records_->records();
  std::int64_t n = 0;
  if (auto it = records.find(kCounterKey); it != records.end()) {
    std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
  }
  return std::max<std::int64_t>(n, 1);
}

std::int64_t EtcdStore::counterInCopy() const {
  const auto& records = records_->records();
  std::int64_t next = storedCounter();
  // Also past every saved id, whatever the counter says.
  const auto [begin, end] = rangeOf(records, kReservations);
  for (auto it = begin; it != end; ++it) {
    next = std::max(next, reservationIdNumber(it->first.substr(4)) + 1);
  }
  return next;
}

Status EtcdStore::takeOver() {
  const std::optional<etcd::Fence> fence = fence_();
  if (!fence) return Status::unavailable("etcd store: this replica does not lead");
  if (auto taken = records_->takeOver(*fence, syncDeadline()); !taken) {
    return Status::unavailable("etcd store: taking over at term " +
                               std::to_string(fence->revision) + ": " + taken.error().toString());
  }
  term_ = fence->revision;
  fencedOut_ = false;
  needsSync_ = false;
  nextReservation_ = std::max(nextReservation_, counterInCopy());
  spdlog::info("etcd store: leading at term {} (revision {}, {} records)", term_,
               records_->revision(), records_->records().size());
  return Status::ok();
}

Status EtcdStore::failed(StoreError error, std::string message) {
  lastError_ = error;
  return error == StoreError::kIo || error == StoreError::kTooLarge
             ? Status::internal(std::move(message))
             : Status::unavailable(std::move(message));
}

Status EtcdStore::catchUp() {
  if (!needsSync_) return Status::ok();
  if (auto synced = records_->syncToLatest(syncDeadline()); !synced) {
    return Status::unavailable("etcd store: cannot read back after an unanswered commit: " +
                               synced.error().toString());
  }
  needsSync_ = false;
  nextReservation_ = std::max(nextReservation_, counterInCopy());
  return Status::ok();
}

Result<etcd::Fence> EtcdStore::beginWrite() {
  if (queryOnly_) return failed(StoreError::kIo, "etcd store: writes are off (query only)");
  std::optional<etcd::Fence> fence;
  if (!fencedOut_) fence = fence_();
  if (!fence || fence->revision != term_) {
    if (!fencedOut_) {
      spdlog::error("etcd store: fenced out of term {}: this replica no longer leads", term_);
    }
    fencedOut_ = true;
    return failed(StoreError::kFencedOut,
                  "etcd store: fenced out: this replica no longer leads (term " +
                      std::to_string(term_) + " ended); nothing was written");
  }
  if (Status s = catchUp(); !s) {
    lastError_ = StoreError::kUnavailable;
    return s;
  }
  return *fence;
}

Status EtcdStore::commit(const etcd::Fence& fence, const std::vector<Mutation>& mutations) {
  auto committed = records_->commit(fence, mutations);
  if (committed) {
    lastError_ = StoreError::kNone;
    if (options_.compactEveryCommits > 0 &&
        ++commitsSinceCompaction_ >= options_.compactEveryCommits) {
      commitsSinceCompaction_ = 0;
      if (auto compacted = records_->compactHistory(options_.keepRevisions); !compacted) {
        spdlog::warn("etcd store: compacting history: {}", compacted.error().toString());
      }
    }
    return Status::ok();
  }
  const etcd::Error& e = committed.error();
  switch (e.code()) {
    case ErrorCode::kDeposed:
    case ErrorCode::kCompareFailed:
      spdlog::error("etcd store: fenced out of term {}: {}", term_, e.toString());
      fencedOut_ = true;
      return failed(StoreError::kFencedOut,
                    "etcd store: fenced out: another replica leads now (term " +
                        std::to_string(term_) + " ended); nothing was written");
    case ErrorCode::kNoSpace:
      spdlog::error(
          "etcd store: etcd is out of space (NOSPACE alarm, --quota-backend-bytes reached): "
          "refusing writes until space is reclaimed (compact, defragment, disarm): {}",
          e.toString());
      return failed(StoreError::kNoSpace,
                    "etcd store: etcd is out of space (NOSPACE alarm): nothing was written");
    case ErrorCode::kRequestTooLarge:
    case ErrorCode::kInvalidArgument:
      return failed(StoreError::kTooLarge, "etcd store: " + e.toString());
    default:
      // Sent and not answered, or answered badly: it may have been applied.
      needsSync_ = true;
      return failed(StoreError::kOutcomeUnknown, "etcd store: the commit's outcome is unknown (" +
                                                     e.toString() + "); it may have been applied");
  }
}

Status EtcdStore::setQueryOnly(bool on) {
  queryOnly_ = on;
  return Status::ok();
}

Status EtcdStore::reclaimSpace() {
  if (auto reclaimed = records_->reclaimSpace(); !reclaimed) {
    return Status::unavailable("etcd store: reclaiming space: " + reclaimed.error().toString());
  }
  return Status::ok();
}

Result<std::string> EtcdStore::allocateReservationId() {
  if (Status s = catchUp(); !s) return s;
  return "r" + std::to_string(nextReservation_++);
}

Status EtcdStore::saveReservations(const std::vector<const Reservation*>& reservations) {
  auto fence = beginWrite();
  if (!fence) return fence.status();
  const auto& records = records_->records();
  std::vector<Mutation> mutations;
  // Events added by this batch, per reservation (a batch may save one reservation twice).
  std::map<std::string, std::vector<std::string>> added;
  const std::int64_t stored = storedCounter();
  std::int64_t counter = stored;
  for (const Reservation* r : reservations) {
    const std::string segment = keySegment(r->id);
    mutations.push_back(Mutation::put(kReservations + segment, protocol::serializeReservation(*r)));
    counter = std::max(counter, reservationIdNumber(r->id) + 1);
    if (r->events.empty()) continue;
    const ReservationEvent& last = r->events.back();
    const std::string logPrefix = kEvents + segment + "/";
    const auto [begin, end] = rangeOf(records, logPrefix);
    // The encoding is deterministic (JSON with sorted keys): equal events, equal bytes.
    const std::string encoded = encodeEvent(last);
    bool logged = false;
    for (auto it = begin; it != end && !logged; ++it) logged = it->second == encoded;
    const std::int64_t lastSeq = begin == end ? 0 : sequenceOf(std::prev(end)->first);
    auto& mine = added[segment];
    for (const std::string& e : mine) logged = logged || e == encoded;
    if (logged) continue;
    mine.push_back(encoded);
    mutations.push_back(
        Mutation::put(logPrefix + sequenceKey(lastSeq + std::ssize(mine)), encoded));
  }
  if (counter > stored) mutations.push_back(Mutation::put(kCounterKey, std::to_string(counter)));
  if (Status s = commit(*fence, mutations); !s) return s;
  nextReservation_ = std::max(nextReservation_, counter);
  return Status::ok();
}

Result<std::vector<Reservation>> EtcdStore::loadReservations() {
  std::vector<Reservation> out;
  const auto [begin, end] = rangeOf(records_->records(), kReservations);
  for (auto it = begin; it != end; ++it) {
    auto r = protocol::parseReservation(it->second.data(), it->second.size());
    if (!r) {
      return Status::internal("store: reservation " + it->first +
                              " is corrupt: " + r.status().message());
    }
    out.push_back(std::move(*r));
  }
  return out;
}

Status EtcdStore::saveObservation(const MigrationObservation& observation) {
  auto fence = beginWrite();
  if (!fence) return fence.status();
  const auto [begin, end] = rangeOf(records_->records(), kObservations);
  const std::int64_t next = begin == end ? 1 : sequenceOf(std::prev(end)->first) + 1;
  return commit(*fence, {Mutation::put(std::string(kObservations) + sequenceKey(next),
                                       encodeObservation(observation))});
}

Result<std::vector<MigrationObservation>> EtcdStore::loadObservations() {
  std::vector<MigrationObservation> out;
  const auto [begin, end] = rangeOf(records_->records(), kObservations);
  for (auto it = begin; it != end; ++it) {
    auto o = decodeObservation(it->first, it->second);
    if (!o) return o.status();
    out.push_back(std::move(*o));
  }
  return out;
}

Result<std::int64_t> EtcdStore::countEvents(const std::string& reservationId) {
  const auto [begin, end] = rangeOf(records_->records(), kEvents + keySegment(reservationId) + "/");
  return static_cast<std::int64_t>(std::distance(begin, end));
}

Result<Store::Snapshot> EtcdStore::snapshot() {
  SqliteStore::Contents contents;
  auto reservations = loadReservations();
  if (!reservations) return reservations.status();
  contents.reservations = std::move(*reservations);
  auto observations = loadObservations();
  if (!observations) return observations.status();
  contents.observations = std::move(*observations);
  contents.nextReservation = counterInCopy();
  std::map<std::string, std::string> idOfSegment;
  for (const Reservation& r : contents.reservations) idOfSegment[keySegment(r.id)] = r.id;
  const auto [begin, end] = rangeOf(records_->records(), kEvents);
  for (auto it = begin; it != end; ++it) {
    const std::string segment =
        it->first.substr(3, it->first.rfind('/') - 3);  // "ev/" SEGMENT "/" SEQ
    auto e = decodeEvent(it->first, it->second);
    if (!e) return e.status();
    auto id = idOfSegment.find(segment);
    contents.events.emplace_back(id == idOfSegment.end() ? segment : id->second, std::move(*e));
  }
  auto copy = SqliteStore::open(":memory:");
  if (!copy) return Status::internal("backup: " + copy.status().message());
  if (Status s = (*copy)->importContents(contents); !s) {
    return Status::internal("backup: " + s.message());
  }
  return (*copy)->snapshot();
}

}  // namespace vrm::manager
