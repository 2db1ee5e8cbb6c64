#include "vrm/etcd/record_store.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>

#include "json_codec.h"

namespace vrm::etcd {
namespace {

using std::chrono::steady_clock;

constexpr char kInline = 'I';
constexpr char kChunked = 'C';

Error corrupt(const std::string& why) {
  return Error(ErrorCode::kBadResponse, "etcd record store is inconsistent: " + why);
}

std::string digits(std::int64_t n, int width) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%0*lld", width, static_cast<long long>(n));
  return buffer;
}

bool startsWith(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

std::optional<std::int64_t> parseInt(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// A chunk reference "GEN:COUNT:SIZE".
struct ChunkRef {
  std::string generation;
  std::int64_t count = 0;
  std::int64_t size = 0;
};

std::optional<ChunkRef> parseRef(std::string_view text) {
  const auto a = text.find(':');
  const auto b = a == std::string_view::npos ? a : text.find(':', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  const auto count = parseInt(text.substr(a + 1, b - a - 1));
  const auto size = parseInt(text.substr(b + 1));
  if (a == 0 || !count || !size || *count < 1 || *size < 0) return std::nullopt;
  return ChunkRef{std::string(text.substr(0, a)), *count, *size};
}

// A journal entry: the heads a batch writes, as (record, head or nullopt = delete), in a
// length-prefixed binary form (big-endian lengths).
using Entries = std::vector<std::pair<std::string, std::optional<std::string>>>;

void putLength(std::string& out, std::uint64_t n) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>(n >> shift & 0xff);
}

std::string encodeEntries(const Entries& entries) {
  std::string out;
  for (const auto& [key, head] : entries) {
    out += head ? '\1' : '\0';
    putLength(out, key.size());
    out += key;
    if (head) {
      putLength(out, head->size());
      out += *head;
    }
  }
  return out;
}

std::optional<Entries> decodeEntries(const std::string& bytes) {
  Entries entries;
  std::size_t at = 0;
  auto length = [&](std::uint64_t* n) {
    if (bytes.size() - at < 8) return false;
    *n = 0;
    for (int i = 0; i < 8; ++i) *n = *n << 8 | static_cast<unsigned char>(bytes[at++]);
    return *n <= bytes.size() - at;
  };
  while (at < bytes.size()) {
    const char kind = bytes[at++];
    std::uint64_t n = 0;
    if ((kind != '\0' && kind != '\1') || !length(&n)) return std::nullopt;
    std::string key = bytes.substr(at, n);
    at += n;
    std::optional<std::string> head;
    if (kind == '\1') {
      if (!length(&n)) return std::nullopt;
      head = bytes.substr(at, n);
      at += n;
    }
    entries.emplace_back(std::move(key), std::move(head));
  }
  return entries;
}

std::size_t opBytes(const RequestOp& op) {
  TxnRequest one;
  one.success.push_back(op);
  return codec::requestBytes(one);
}

}  // namespace

Result<std::unique_ptr<RecordStore>> RecordStore::create(Client* client,
                                                         RecordStoreOptions options) {
  // Room in a transaction for the fence, the failure read and a key next to the largest value.
  constexpr std::size_t kOverhead = 4096;
  if (client == nullptr || options.prefix.empty()) {
    return Error(ErrorCode::kInvalidArgument, "record store: no client or an empty prefix");
  }
  if (options.chunkBytes == 0 || options.inlineBytes == 0 ||
      options.chunkBytes + kOverhead > options.txnBytes ||
      options.inlineBytes + kOverhead > options.txnBytes) {
    return Error(ErrorCode::kInvalidArgument,
                 "record store: inline values and chunks must fit in a transaction's budget");
  }
  if (options.maxTxnOps < 4 || options.pageKeys < 1) {
    return Error(ErrorCode::kInvalidArgument,
                 "record store: at least 4 operations per transaction and 1 key per page");
  }
  return std::unique_ptr<RecordStore>(new RecordStore(client, std::move(options)));
}

RecordStore::RecordStore(Client* client, RecordStoreOptions options)
    : client_(client), options_(std::move(options)) {}

RecordStore::~RecordStore() = default;

void RecordStore::clear() {
  records_.clear();
  chunkGeneration_.clear();
  chunks_.clear();
  journals_.clear();
  revision_ = 0;
  commitSeq_ = 0;
  commitRevision_ = 0;
}

Result<std::string> RecordStore::assemble(const std::string& reference) const {
  const auto ref = parseRef(reference);
  if (!ref) return corrupt("bad chunk reference \"" + reference.substr(0, 60) + "\"");
  std::string value;
  value.reserve(static_cast<std::size_t>(ref->size));
  const std::string base = options_.prefix + "c/" + ref->generation + "/";
  for (std::int64_t i = 0; i < ref->count; ++i) {
    const auto chunk = chunks_.find(base + digits(i, 6));
    if (chunk == chunks_.end()) {
      return corrupt("chunk " + std::to_string(i) + " of generation " + ref->generation +
                     " is missing");
    }
    value += chunk->second;
  }
  if (static_cast<std::int64_t>(value.size()) != ref->size) {
    return corrupt("generation " + ref->generation + " has the wrong size");
  }
  return value;
}

Result<void> RecordStore::applyHead(const std::string& record, const std::string& head) {
  if (head.empty()) return corrupt("empty head of " + record);
  if (head[0] == kInline) {
    records_[record] = head.substr(1);
    chunkGeneration_.erase(record);
    return {};
  }
  if (head[0] != kChunked) return corrupt("unknown head kind of " + record);
  auto value = assemble(head.substr(1));
  if (!value) return value.error();
  records_[record] = std::move(*value);
  chunkGeneration_[record] = parseRef(head.substr(1))->generation;
  return {};
}

Result<void> RecordStore::applyJournal(const std::string& head) {
  std::string bytes;
  if (!head.empty() && head[0] == kInline) {
    bytes = head.substr(1);
  } else if (!head.empty() && head[0] == kChunked) {
    auto assembled = assemble(head.substr(1));
    if (!assembled) return assembled.error();
    bytes = std::move(*assembled);
  } else {
    return corrupt("bad journal head");
  }
  const auto entries = decodeEntries(bytes);
  if (!entries) return corrupt("undecodable journal entry");
  for (const auto& [record, recordHead] : *entries) {
    if (recordHead) {
      if (auto applied = applyHead(record, *recordHead); !applied) return applied;
    } else {
      records_.erase(record);
      chunkGeneration_.erase(record);
    }
  }
  return {};
}

Result<void> RecordStore::applyChange(const std::string& key,
                                      const std::optional<std::string>& value,
                                      std::int64_t modRevision) {
  if (!startsWith(key, options_.prefix)) return {};
  const std::string rel = key.substr(options_.prefix.size());
  if (startsWith(rel, "r/")) {
    const std::string record = rel.substr(2);
    if (value) return applyHead(record, *value);
    records_.erase(record);
    chunkGeneration_.erase(record);
  } else if (startsWith(rel, "c/")) {
    if (value) {
      chunks_[key] = *value;
    } else {
      chunks_.erase(key);
    }
  } else if (startsWith(rel, "j/")) {
    if (!value) {
      journals_.erase(key);
      return {};
    }
    journals_[key] = *value;
    return applyJournal(*value);
  } else if (rel == "m/commit" && value) {
    const auto seq = parseInt(*value);
    if (!seq) return corrupt("bad commit marker");
    commitSeq_ = *seq;
    commitRevision_ = modRevision;
  }
  return {};  // other keys under the prefix are not this store's
}

Result<void> RecordStore::load() {
  clear();
  watcher_.reset();
  std::vector<KeyValue> all;
  RangeRequest page = RangeRequest::prefix(options_.prefix);
  page.limit = options_.pageKeys;
  while (true) {
    auto answer = client_->range(page);
    if (!answer) return answer.error();
    if (page.revision == 0) page.revision = answer->header.revision;  // one snapshot
    for (KeyValue& kv : answer->kvs) all.push_back(std::move(kv));
    if (!answer->more || answer->kvs.empty()) break;
    page.key = all.back().key + std::string(1, '\0');
  }
  // Chunks and the marker first, then heads, then journal entries (whose heads are newer than
  // the records a half-finished journal left).
  for (const char* kind : {"c/", "m/", "r/", "j/"}) {
    const std::string start = options_.prefix + kind;
    for (const KeyValue& kv : all) {
      if (!startsWith(kv.key, start)) continue;
      if (auto applied = applyChange(kv.key, kv.value, kv.modRevision); !applied) {
        return applied.error();
      }
    }
  }
  revision_ = page.revision;
  return {};
}

Result<int> RecordStore::catchUp(SteadyTime deadline) {
  if (!watcher_) {
    watcher_.emplace(client_->watch(
        WatchRequest{options_.prefix, prefixEnd(options_.prefix), revision_ + 1, false}));
  }
  int applied = 0;
  SteadyTime wait = deadline;
  while (true) {
    auto batch = watcher_->next(wait);
    if (!batch && batch.error().code() == ErrorCode::kCompacted) {
      // Fell behind the retained history: read everything again.
      if (auto loaded = load(); !loaded) return loaded.error();
      return applied + 1;
    }
    if (!batch) return batch.error();
    if (!batch->has_value()) return applied;
    // One transaction's events share a revision and come in one batch: skip what the copy
    // already holds (its own commits, a reload) by the revision before the batch.
    const std::int64_t held = revision_;
    for (const Event& e : (*batch)->events) {
      if (e.kv.modRevision <= held) continue;
      const std::optional<std::string> value =
          e.type == Event::Type::kPut ? std::optional<std::string>(e.kv.value) : std::nullopt;
      if (auto done = applyChange(e.kv.key, value, e.kv.modRevision); !done) return done.error();
      revision_ = std::max(revision_, e.kv.modRevision);
      ++applied;
    }
    // Drain what is already there, without waiting for more.
    wait = std::min(deadline, steady_clock::now() + std::chrono::milliseconds(5));
  }
}

Result<void> RecordStore::syncToLatest(SteadyTime deadline) {
  auto marker = client_->range(RangeRequest::single(options_.prefix + "m/commit"));
  if (!marker) return marker.error();
  const std::int64_t latest = marker->kvs.empty() ? 0 : marker->kvs[0].modRevision;
  while (revision_ < latest) {
    if (steady_clock::now() >= deadline) {
      return Error(ErrorCode::kTimeout, "record store copy at revision " +
                                            std::to_string(revision_) + ", the last commit is at " +
                                            std::to_string(latest));
    }
    auto caught = catchUp(deadline);
    if (!caught) return caught.error();
  }
  return {};
}

std::string RecordStore::headFor(const std::string& value, std::vector<PutRequest>* chunks) {
  if (value.size() <= options_.inlineBytes) return std::string(1, kInline) + value;
  ++stats_.chunkedValues;
  // Unique across leaders (each term's fence revision differs) and within this process.
  const std::string generation = digits(fenceRevision_, 12) + "-" + digits(++generation_, 8);
  const std::string base = options_.prefix + "c/" + generation + "/";
  std::int64_t count = 0;
  for (std::size_t at = 0; at < value.size(); at += options_.chunkBytes, ++count) {
    chunks->push_back(
        PutRequest{base + digits(count, 6), value.substr(at, options_.chunkBytes), 0, false});
  }
  return std::string(1, kChunked) + generation + ":" + std::to_string(count) + ":" +
         std::to_string(value.size());
}

Result<std::int64_t> RecordStore::runFenced(const Fence& fence, std::vector<RequestOp> ops) {
  std::int64_t revision = 0;
  std::size_t at = 0;
  while (at < ops.size()) {
    TxnRequest txn;
    std::size_t bytes = 0;
    // Leave room for the fence's compare and the failure read commitFenced adds.
    while (at < ops.size() && txn.success.size() + 1 < options_.maxTxnOps &&
           (txn.success.empty() || bytes + opBytes(ops[at]) <= options_.txnBytes)) {
      bytes += opBytes(ops[at]);
      txn.success.push_back(std::move(ops[at++]));
    }
    auto committed = Election::commitFenced(*client_, fence, std::move(txn));
    ++stats_.transactions;
    if (!committed) return committed.error();
    revision = committed->header.revision;
  }
  return revision;
}

Result<std::int64_t> RecordStore::finishJournal(const Fence& fence, const std::string& journalKey,
                                                const std::string& head) {
  std::string bytes;
  std::optional<std::string> journalGeneration;
  if (head[0] == kInline) {
    bytes = head.substr(1);
  } else {
    auto assembled = assemble(head.substr(1));
    if (!assembled) return assembled.error();
    bytes = std::move(*assembled);
    journalGeneration = parseRef(head.substr(1))->generation;
  }
  const auto entries = decodeEntries(bytes);
  if (!entries) return corrupt("undecodable journal entry " + journalKey);
  std::vector<RequestOp> ops;
  for (const auto& [record, recordHead] : *entries) {
    const std::string key = options_.prefix + "r/" + record;
    if (recordHead) {
      ops.emplace_back(PutRequest{key, *recordHead, 0, false});
    } else {
      ops.emplace_back(DeleteRangeRequest{key, "", false});
    }
  }
  ops.emplace_back(DeleteRangeRequest{journalKey, "", false});
  if (journalGeneration) {
    const std::string base = options_.prefix + "c/" + *journalGeneration + "/";
    ops.emplace_back(DeleteRangeRequest{base, prefixEnd(base), false});
  }
  auto revision = runFenced(fence, std::move(ops));
  if (!revision) return revision;
  journals_.erase(journalKey);
  if (journalGeneration) {
    const std::string base = options_.prefix + "c/" + *journalGeneration + "/";
    chunks_.erase(chunks_.lower_bound(base), chunks_.lower_bound(prefixEnd(base)));
  }
  revision_ = std::max(revision_, *revision);
  return revision;
}

Result<void> RecordStore::takeOver(const Fence& fence, SteadyTime deadline) {
  if (auto synced = syncToLatest(deadline); !synced) return synced;
  fenceRevision_ = fence.revision;
  // A journal entry a deposed leader committed but did not finish: its heads go in now.
  const auto pending = journals_;
  for (const auto& [key, head] : pending) {
    if (auto finished = finishJournal(fence, key, head); !finished) return finished.error();
  }
  // Chunks no head refers to: a leader died between staging them and its commit point, or
  // between a commit and deleting the generations it replaced.
  std::set<std::string> referenced;
  for (const auto& [record, generation] : chunkGeneration_) referenced.insert(generation);
  std::set<std::string> orphans;
  const std::string chunkPrefix = options_.prefix + "c/";
  for (const auto& [key, bytes] : chunks_) {
    const std::string generation =
        key.substr(chunkPrefix.size(), key.find('/', chunkPrefix.size()) - chunkPrefix.size());
    if (!referenced.count(generation)) orphans.insert(generation);
  }
  std::vector<RequestOp> deletes;
  for (const std::string& generation : orphans) {
    const std::string base = chunkPrefix + generation + "/";
    deletes.emplace_back(DeleteRangeRequest{base, prefixEnd(base), false});
  }
  if (deletes.empty()) return {};
  auto revision = runFenced(fence, std::move(deletes));
  if (!revision) return revision.error();
  for (const std::string& generation : orphans) {
    const std::string base = chunkPrefix + generation + "/";
    chunks_.erase(chunks_.lower_bound(base), chunks_.lower_bound(prefixEnd(base)));
  }
  revision_ = std::max(revision_, *revision);
  return {};
}

Result<std::int64_t> RecordStore::commit(const Fence& fence,
                                         const std::vector<Mutation>& mutations) {
  fenceRevision_ = fence.revision;
  // A journal of this leader's last commit still unfinished (a transient failure): first.
  const auto pending = journals_;
  for (const auto& [key, head] : pending) {
    if (auto finished = finishJournal(fence, key, head); !finished) return finished.error();
  }
  std::map<std::string, std::optional<std::string>> last;  // later mutations of a key win
  for (const Mutation& m : mutations) last[m.key] = m.value;
  std::vector<PutRequest> chunkPuts;
  Entries entries;
  std::set<std::string> replaced;  // generations of chunks the batch makes unreferenced
  for (const auto& [record, value] : last) {
    entries.emplace_back(
        record, value ? std::optional(headFor(*value, &chunkPuts)) : std::optional<std::string>());
    if (const auto g = chunkGeneration_.find(record); g != chunkGeneration_.end()) {
      replaced.insert(g->second);
    }
  }
  const std::int64_t seq = commitSeq_ + 1;
  const std::string markerKey = options_.prefix + "m/commit";
  std::vector<RequestOp> ops;
  for (const PutRequest& p : chunkPuts) ops.emplace_back(p);
  for (const auto& [record, head] : entries) {
    const std::string key = options_.prefix + "r/" + record;
    if (head) {
      ops.emplace_back(PutRequest{key, *head, 0, false});
    } else {
      ops.emplace_back(DeleteRangeRequest{key, "", false});
    }
  }
  std::vector<RequestOp> replacedDeletes;
  for (const std::string& generation : replaced) {
    const std::string base = options_.prefix + "c/" + generation + "/";
    replacedDeletes.emplace_back(DeleteRangeRequest{base, prefixEnd(base), false});
  }
  std::size_t bytes = 0;
  for (const RequestOp& op : ops) bytes += opBytes(op);
  const std::size_t count = ops.size() + replacedDeletes.size() + 1;

  std::int64_t revision = 0;
  std::optional<std::string> journalKey, journalHead;
  if (count + 1 < options_.maxTxnOps && bytes + 256 <= options_.txnBytes) {
    // The common case: one transaction.
    TxnRequest txn;
    txn.success = std::move(ops);
    for (RequestOp& op : replacedDeletes) txn.success.push_back(std::move(op));
    txn.success.emplace_back(PutRequest{markerKey, std::to_string(seq), 0, false});
    auto committed = Election::commitFenced(*client_, fence, std::move(txn));
    ++stats_.transactions;
    if (!committed) return committed.error();
    revision = committed->header.revision;
  } else {
    // Stage the chunks, then commit the journal entry in one transaction: the commit point.
    ++stats_.journalled;
    std::vector<RequestOp> staging(chunkPuts.begin(), chunkPuts.end());
    std::vector<PutRequest> journalChunks;
    journalKey = options_.prefix + "j/" + digits(seq, 20);
    journalHead = headFor(encodeEntries(entries), &journalChunks);
    staging.insert(staging.end(), journalChunks.begin(), journalChunks.end());
    if (auto staged = runFenced(fence, std::move(staging)); !staged) return staged.error();
    for (const PutRequest& p : journalChunks) chunks_[p.key] = p.value;
    TxnRequest point;
    point.success.emplace_back(PutRequest{*journalKey, *journalHead, 0, false});
    point.success.emplace_back(PutRequest{markerKey, std::to_string(seq), 0, false});
    auto committed = Election::commitFenced(*client_, fence, std::move(point));
    ++stats_.transactions;
    if (!committed) return committed.error();
    revision = committed->header.revision;
  }

  // Committed: the copy follows, as a reader of these changes would.
  for (const PutRequest& p : chunkPuts) chunks_[p.key] = p.value;
  for (const auto& [record, head] : entries) {
    if (head) {
      if (auto applied = applyHead(record, *head); !applied) return applied.error();
    } else {
      records_.erase(record);
      chunkGeneration_.erase(record);
    }
  }
  commitSeq_ = seq;
  commitRevision_ = revision;
  revision_ = std::max(revision_, revision);
  ++stats_.commits;
  if (!journalKey) {
    for (const std::string& generation : replaced) {
      const std::string base = options_.prefix + "c/" + generation + "/";
      chunks_.erase(chunks_.lower_bound(base), chunks_.lower_bound(prefixEnd(base)));
    }
    return revision;
  }
  journals_[*journalKey] = *journalHead;
  if (options_.leaveJournalUnfinishedForTesting) return revision;
  // Finish the entry now; if that fails the commit still stands (it is in the journal), and
  // the next commit or the next leader finishes it. Replaced chunks are collected by takeOver.
  (void)finishJournal(fence, *journalKey, *journalHead);
  if (journals_.empty()) {
    for (const std::string& generation : replaced) {
      const std::string base = options_.prefix + "c/" + generation + "/";
      std::vector<RequestOp> del = {DeleteRangeRequest{base, prefixEnd(base), false}};
      if (runFenced(fence, std::move(del))) {
        chunks_.erase(chunks_.lower_bound(base), chunks_.lower_bound(prefixEnd(base)));
      }
    }
  }
  return revision;
}

Result<void> RecordStore::compactHistory(std::int64_t keepRevisions) {
  const std::int64_t target = revision_ - keepRevisions;
  if (target <= compactedRevision_) return {};
  if (auto compacted = client_->compact(target); !compacted) return compacted;
  compactedRevision_ = target;
  return {};
}

Result<void> RecordStore::reclaimSpace() {
  // Compact at the newest revision there is (not only the copy's).
  auto now = client_->range(RangeRequest::single(options_.prefix + "m/commit"));
  if (!now) return now.error();
  if (auto compacted = client_->compact(now->header.revision, /*physical=*/true); !compacted) {
    return compacted;
  }
  compactedRevision_ = now->header.revision;
  for (std::size_t i = 0; i < client_->memberCount(); ++i) {
    if (auto defragmented = client_->defragment(i); !defragmented) return defragmented;
  }
  auto alarms = client_->alarms();
  if (!alarms) return alarms.error();
  for (const Alarm& alarm : *alarms) {
    if (alarm.type != AlarmType::kNoSpace) continue;
    if (auto disarmed = client_->disarmAlarm(alarm); !disarmed) return disarmed;
  }
  return {};
}

}  // namespace vrm::etcd
