// Value types of etcd's v3 API (api/etcdserverpb/rpc.proto, v3election.proto), as much of it as
// vrm uses. Keys and values are raw bytes in std::string (the JSON gateway's base64 is this
// library's business). Revisions, lease ids and TTLs are etcd's int64; member and cluster ids
// its uint64. Fields left at their defaults are etcd's defaults.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace vrm::etcd {

// The header of every answer: which member answered, at which store revision.
struct ResponseHeader {
  std::uint64_t clusterId = 0;
  std::uint64_t memberId = 0;
  std::int64_t revision = 0;  // the store's revision when the answer was made
  std::uint64_t raftTerm = 0;
};

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t createRevision = 0;  // revision of the put that created the key (0: absent)
  std::int64_t modRevision = 0;     // revision of its last change
  std::int64_t version = 0;         // number of puts since creation
  std::int64_t lease = 0;           // lease the key is attached to (0: none)
};

// The smallest key greater than every key starting with `prefix` (etcd's range_end for a
// prefix): "a/" -> "a0"; "" or all-0xff -> "\0" (every key).
std::string prefixEnd(const std::string& prefix);

// Keys in [key, rangeEnd); rangeEnd empty = the key alone; "\0" = every key >= key.
struct RangeRequest {
  std::string key;
  std::string rangeEnd;
  std::int64_t limit = 0;     // 0 = no limit
  std::int64_t revision = 0;  // read as of this revision; 0 = the newest
  bool keysOnly = false;
  bool countOnly = false;
  // false (default): linearizable (through the raft leader); true: the member's local copy.
  bool serializable = false;

  static RangeRequest single(std::string key);
  static RangeRequest prefix(const std::string& prefix);
};

struct RangeResponse {
  ResponseHeader header;
  std::vector<KeyValue> kvs;  // in key order
  bool more = false;          // `limit` cut the answer short
  std::int64_t count = 0;     // keys in the range (all of them, also when cut short)
};

struct PutRequest {
  std::string key;
  std::string value;
  std::int64_t lease = 0;  // attach to this lease; 0 = none
  bool prevKv = false;     // return the previous key-value
};

struct PutResponse {
  ResponseHeader header;
  std::optional<KeyValue> prevKv;
};

struct DeleteRangeRequest {
  std::string key;
  std::string rangeEnd;  // as in RangeRequest
  bool prevKv = false;
};

struct DeleteRangeResponse {
  ResponseHeader header;
  std::int64_t deleted = 0;
  std::vector<KeyValue> prevKvs;
};

// One condition of a transaction: `target` of `key` compared with a number or a value.
struct Compare {
  enum class Target { kVersion, kCreateRevision, kModRevision, kValue, kLease };
  enum class Op { kEqual, kGreater, kLess, kNotEqual };

  Target target = Target::kVersion;
  Op op = Op::kEqual;
  std::string key;
  std::int64_t number = 0;  // for every target but kValue
  std::string value;        // for kValue

  // createRevision(key) == 0 is "the key does not exist".
  static Compare createRevision(std::string key, Op op, std::int64_t revision);
  static Compare modRevision(std::string key, Op op, std::int64_t revision);
  static Compare version(std::string key, Op op, std::int64_t version);
  static Compare valueIs(std::string key, Op op, std::string value);
  static Compare lease(std::string key, Op op, std::int64_t leaseId);
};

using RequestOp = std::variant<RangeRequest, PutRequest, DeleteRangeRequest>;
using ResponseOp = std::variant<RangeResponse, PutResponse, DeleteRangeResponse>;

// If every compare holds, the success ops run, else the failure ops; atomically, as one
// revision (if any op writes).
struct TxnRequest {
  std::vector<Compare> compare;
  std::vector<RequestOp> success;
  std::vector<RequestOp> failure;
};

struct TxnResponse {
  ResponseHeader header;
  bool succeeded = false;             // the compares held
  std::vector<ResponseOp> responses;  // one per op that ran, in order
};

struct LeaseGrant {
  ResponseHeader header;
  std::int64_t id = 0;
  std::int64_t ttlSeconds = 0;  // as granted: etcd raises a TTL below its minimum
};

struct LeaseKeepAlive {
  ResponseHeader header;
  std::int64_t id = 0;
  std::int64_t ttlSeconds = 0;  // the lease's new remaining time (> 0; 0 becomes kLeaseNotFound)
};

struct LeaseTimeToLive {
  ResponseHeader header;
  std::int64_t id = 0;
  std::int64_t ttlSeconds = 0;  // remaining; -1 when the lease does not exist
  std::int64_t grantedTtlSeconds = 0;
};

// The key a campaign created: the leader is the campaigner whose key under the election's name
// has the smallest create revision. `rev` (that create revision) is what fences a leader.
struct LeaderKey {
  std::string name;  // the election
  std::string key;   // name + "/" + lease id in hex
  std::int64_t rev = 0;
  std::int64_t lease = 0;
};

struct Campaign {
  ResponseHeader header;
  LeaderKey leader;
};

struct Leader {
  ResponseHeader header;
  KeyValue kv;  // the leader's key, with its proclaimed value
};

struct MemberStatus {
  ResponseHeader header;  // memberId: the member that answered
  std::string version;
  std::int64_t dbSizeBytes = 0;       // the backend file
  std::int64_t dbSizeInUseBytes = 0;  // what a defragmentation would leave
  std::uint64_t leader = 0;           // its raft leader's member id; 0 = none known
  std::uint64_t raftIndex = 0;
  std::uint64_t raftTerm = 0;
  std::uint64_t raftAppliedIndex = 0;
  std::vector<std::string> errors;
  bool isLearner = false;
};

enum class AlarmType { kNone, kNoSpace, kCorrupt };

struct Alarm {
  std::uint64_t memberId = 0;
  AlarmType type = AlarmType::kNone;
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for a delete: the key and the delete's mod revision
  std::optional<KeyValue> prevKv;
};

struct WatchRequest {
  std::string key;
  std::string rangeEnd;            // as in RangeRequest
  std::int64_t startRevision = 0;  // first revision to report; 0 = from the next change on
  bool prevKv = false;
};

// The events of one watch answer, in revision order.
struct WatchBatch {
  ResponseHeader header;
  std::vector<Event> events;
};

}  // namespace vrm::etcd
