#include "json_codec.h"

#include <array>
#include <charconv>
#include <nlohmann/json.hpp>
#include <system_error>

namespace vrm::etcd::codec {
namespace {

using json = nlohmann::json;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// A field of the answer is missing or of the wrong type. Thrown only inside this file and caught
// by decode(), which turns it into kBadResponse: the codec boundary.
struct Malformed {
  std::string what;
};

const json* field(const json& object, const char* name) {
  if (!object.is_object()) throw Malformed{"expected an object"};
  const auto it = object.find(name);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

const json& object(const json& object, const char* name) {
  const json* f = field(object, name);
  if (f == nullptr || !f->is_object()) throw Malformed{std::string(name) + " is not an object"};
  return *f;
}

// int64 and uint64 come as decimal strings (proto3 JSON) or, from some encoders, numbers.
template <typename Int>
Int integer(const json& object, const char* name) {
  const json* f = field(object, name);
  if (f == nullptr) return 0;
  if (f->is_number_integer()) {
    if constexpr (std::is_unsigned_v<Int>) {
      if (f->is_number_unsigned()) return f->get<Int>();
      if (f->get<std::int64_t>() < 0) throw Malformed{std::string(name) + " is negative"};
      return static_cast<Int>(f->get<std::int64_t>());
    } else {
      if (f->is_number_unsigned() &&
          f->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
        throw Malformed{std::string(name) + " is out of range"};
      }
      return f->get<Int>();
    }
  }
  if (!f->is_string()) throw Malformed{std::string(name) + " is not an integer"};
  const std::string& s = f->get_ref<const std::string&>();
  Int value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    throw Malformed{std::string(name) + " is not an integer: \"" + s.substr(0, 40) + "\""};
  }
  return value;
}

std::int64_t int64(const json& o, const char* name) { return integer<std::int64_t>(o, name); }
std::uint64_t uint64(const json& o, const char* name) { return integer<std::uint64_t>(o, name); }

bool boolean(const json& object, const char* name) {
  const json* f = field(object, name);
  if (f == nullptr) return false;
  if (!f->is_boolean()) throw Malformed{std::string(name) + " is not a boolean"};
  return f->get<bool>();
}

std::string string(const json& object, const char* name) {
  const json* f = field(object, name);
  if (f == nullptr) return {};
  if (!f->is_string()) throw Malformed{std::string(name) + " is not a string"};
  return f->get<std::string>();
}

std::string bytes(const json& object, const char* name) {
  const json* f = field(object, name);
  if (f == nullptr) return {};
  if (!f->is_string()) throw Malformed{std::string(name) + " is not base64 text"};
  auto decoded = base64Decode(f->get_ref<const std::string&>());
  if (!decoded) throw Malformed{std::string(name) + " is not valid base64"};
  return std::move(*decoded);
}

// Elements of an optional array field.
const json& array(const json& object, const char* name) {
  static const json kEmpty = json::array();
  const json* f = field(object, name);
  if (f == nullptr) return kEmpty;
  if (!f->is_array()) throw Malformed{std::string(name) + " is not an array"};
  return *f;
}

ResponseHeader header(const json& answer) {
  ResponseHeader h;
  const json* f = field(answer, "header");
  if (f == nullptr) throw Malformed{"no header"};
  if (!f->is_object()) throw Malformed{"header is not an object"};
  h.clusterId = uint64(*f, "cluster_id");
  h.memberId = uint64(*f, "member_id");
  h.revision = int64(*f, "revision");
  h.raftTerm = uint64(*f, "raft_term");
  return h;
}

// A nested response's header (txn responses) carries only the revision; tolerate its absence.
ResponseHeader optionalHeader(const json& answer) {
  return field(answer, "header") == nullptr ? ResponseHeader{} : header(answer);
}

KeyValue keyValue(const json& j) {
  if (!j.is_object()) throw Malformed{"kv is not an object"};
  KeyValue kv;
  kv.key = bytes(j, "key");
  kv.value = bytes(j, "value");
  kv.createRevision = int64(j, "create_revision");
  kv.modRevision = int64(j, "mod_revision");
  kv.version = int64(j, "version");
  kv.lease = int64(j, "lease");
  return kv;
}

std::vector<KeyValue> keyValues(const json& answer, const char* name) {
  std::vector<KeyValue> kvs;
  for (const json& e : array(answer, name)) kvs.push_back(keyValue(e));
  return kvs;
}

RangeResponse rangeResponse(const json& j, bool needHeader) {
  RangeResponse r;
  r.header = needHeader ? header(j) : optionalHeader(j);
  r.kvs = keyValues(j, "kvs");
  r.more = boolean(j, "more");
  r.count = int64(j, "count");
  return r;
}

PutResponse putResponse(const json& j, bool needHeader) {
  PutResponse r;
  r.header = needHeader ? header(j) : optionalHeader(j);
  if (const json* prev = field(j, "prev_kv")) r.prevKv = keyValue(*prev);
  return r;
}

DeleteRangeResponse deleteRangeResponse(const json& j, bool needHeader) {
  DeleteRangeResponse r;
  r.header = needHeader ? header(j) : optionalHeader(j);
  r.deleted = int64(j, "deleted");
  r.prevKvs = keyValues(j, "prev_kvs");
  return r;
}

LeaderKey leaderKey(const json& j) {
  if (!j.is_object()) throw Malformed{"leader is not an object"};
  LeaderKey k;
  k.name = bytes(j, "name");
  k.key = bytes(j, "key");
  k.rev = int64(j, "rev");
  k.lease = int64(j, "lease");
  return k;
}

Error badResponse(const std::string& where, const std::string& why) {
  return Error(ErrorCode::kBadResponse, "etcd at " + where + " sent a malformed answer: " + why);
}

// Parses `text` and hands the JSON to `decodeJson`; every malformation becomes kBadResponse.
template <typename T, typename F>
Result<T> decode(std::string_view text, const std::string& where, F decodeJson) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return badResponse(where, "not JSON");
  if (!j.is_object()) return badResponse(where, "not a JSON object");
  try {
    return decodeJson(j);
  } catch (const Malformed& m) {
    return badResponse(where, m.what);
  } catch (const json::exception& e) {
    return badResponse(where, e.what());
  }
}

// The "result" of a streamed line, or the Error its "error" carries.
Result<const json*> streamResult(const json& line, const std::string& where) {
  if (const json* error = field(line, "error")) {
    if (!error->is_object()) return badResponse(where, "error is not an object");
    const json* code = field(*error, "grpc_code");
    const int grpcCode = code != nullptr && code->is_number_integer() ? code->get<int>() : -1;
    return classifyError(grpcCode, string(*error, "message"), where);
  }
  const json* result = field(line, "result");
  if (result == nullptr || !result->is_object()) return badResponse(where, "no result");
  return result;
}

json compareJson(const Compare& c) {
  static constexpr std::array<const char*, 5> kTargets = {"VERSION", "CREATE", "MOD", "VALUE",
                                                          "LEASE"};
  static constexpr std::array<const char*, 4> kOps = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  json j = {{"target", kTargets[static_cast<int>(c.target)]},
            {"result", kOps[static_cast<int>(c.op)]},
            {"key", base64Encode(c.key)}};
  switch (c.target) {
    case Compare::Target::kVersion:
      j["version"] = std::to_string(c.number);
      break;
    case Compare::Target::kCreateRevision:
      j["create_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kModRevision:
      j["mod_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kValue:
      j["value"] = base64Encode(c.value);
      break;
    case Compare::Target::kLease:
      j["lease"] = std::to_string(c.number);
      break;
  }
  return j;
}

json rangeJson(const RangeRequest& r) {
  json j = {{"key", base64Encode(r.key)}};
  if (!r.rangeEnd.empty()) j["range_end"] = base64Encode(r.rangeEnd);
  if (r.limit != 0) j["limit"] = std::to_string(r.limit);
  if (r.revision != 0) j["revision"] = std::to_string(r.revision);
  if (r.keysOnly) j["keys_only"] = true;
  if (r.countOnly) j["count_only"] = true;
  if (r.serializable) j["serializable"] = true;
  return j;
}

json putJson(const PutRequest& r) {
  json j = {{"key", base64Encode(r.key)}, {"value", base64Encode(r.value)}};
  if (r.lease != 0) j["lease"] = std::to_string(r.lease);
  if (r.prevKv) j["prev_kv"] = true;
  return j;
}

json deleteRangeJson(const DeleteRangeRequest& r) {
  json j = {{"key", base64Encode(r.key)}};
  if (!r.rangeEnd.empty()) j["range_end"] = base64Encode(r.rangeEnd);
  if (r.prevKv) j["prev_kv"] = true;
  return j;
}

json requestOpJson(const RequestOp& op) {
  if (const auto* r = std::get_if<RangeRequest>(&op)) return {{"request_range", rangeJson(*r)}};
  if (const auto* p = std::get_if<PutRequest>(&op)) return {{"request_put", putJson(*p)}};
  return {{"request_delete_range", deleteRangeJson(std::get<DeleteRangeRequest>(op))}};
}

json leaderKeyJson(const LeaderKey& k) {
  return {{"name", base64Encode(k.name)},
          {"key", base64Encode(k.key)},
          {"rev", std::to_string(k.rev)},
          {"lease", std::to_string(k.lease)}};
}

// Per-field overhead of protobuf (tag + length) in the size estimate.
constexpr std::size_t kFieldBytes = 4;

std::size_t opBytes(const RequestOp& op) {
  if (const auto* p = std::get_if<PutRequest>(&op)) return requestBytes(*p);
  if (const auto* r = std::get_if<RangeRequest>(&op)) {
    return r->key.size() + r->rangeEnd.size() + 4 * kFieldBytes;
  }
  const auto& d = std::get<DeleteRangeRequest>(op);
  return d.key.size() + d.rangeEnd.size() + 3 * kFieldBytes;
}

bool contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

std::string base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 |
                       static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += rest == 2 ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  static const std::array<signed char, 256> kValue = [] {
    std::array<signed char, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = i;
    return t;
  }();
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    unsigned v = 0;
    for (int k = 0; k < 4 - pad; ++k) {
      const signed char d = kValue[static_cast<unsigned char>(text[i + k])];
      if (d < 0) return std::nullopt;
      v = v << 6 | static_cast<unsigned>(d);
    }
    v <<= 6 * pad;
    // Bits below the last encoded byte must be zero in canonical base64.
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) return std::nullopt;
    out += static_cast<char>(v >> 16 & 0xff);
    if (pad < 2) out += static_cast<char>(v >> 8 & 0xff);
    if (pad < 1) out += static_cast<char>(v & 0xff);
  }
  return out;
}

std::string encodeRange(const RangeRequest& r) { return rangeJson(r).dump(); }
std::string encodePut(const PutRequest& r) { return putJson(r).dump(); }
std::string encodeDeleteRange(const DeleteRangeRequest& r) { return deleteRangeJson(r).dump(); }

std::string encodeTxn(const TxnRequest& r) {
  json compare = json::array();
  for (const Compare& c : r.compare) compare.push_back(compareJson(c));
  json success = json::array();
  for (const RequestOp& op : r.success) success.push_back(requestOpJson(op));
  json failure = json::array();
  for (const RequestOp& op : r.failure) failure.push_back(requestOpJson(op));
  return json{{"compare", compare}, {"success", success}, {"failure", failure}}.dump();
}

std::string encodeCompaction(std::int64_t revision, bool physical) {
  return json{{"revision", std::to_string(revision)}, {"physical", physical}}.dump();
}

std::string encodeLeaseGrant(std::int64_t ttlSeconds, std::int64_t id) {
  json j = {{"TTL", std::to_string(ttlSeconds)}};
  if (id != 0) j["ID"] = std::to_string(id);
  return j.dump();
}

std::string encodeLeaseId(std::int64_t id) { return json{{"ID", std::to_string(id)}}.dump(); }

std::string encodeCampaign(const std::string& name, std::int64_t lease, const std::string& value) {
  return json{{"name", base64Encode(name)},
              {"lease", std::to_string(lease)},
              {"value", base64Encode(value)}}
      .dump();
}

std::string encodeProclaim(const LeaderKey& leader, const std::string& value) {
  return json{{"leader", leaderKeyJson(leader)}, {"value", base64Encode(value)}}.dump();
}

std::string encodeElectionName(const std::string& name) {
  return json{{"name", base64Encode(name)}}.dump();
}

std::string encodeResign(const LeaderKey& leader) {
  return json{{"leader", leaderKeyJson(leader)}}.dump();
}

std::string encodeWatchCreate(const WatchRequest& r) {
  json create = {{"key", base64Encode(r.key)}};
  if (!r.rangeEnd.empty()) create["range_end"] = base64Encode(r.rangeEnd);
  if (r.startRevision != 0) create["start_revision"] = std::to_string(r.startRevision);
  if (r.prevKv) create["prev_kv"] = true;
  return json{{"create_request", create}}.dump();
}

std::string encodeAlarm(AlarmAction action, std::uint64_t memberId, AlarmType type) {
  static constexpr std::array<const char*, 3> kActions = {"GET", "ACTIVATE", "DEACTIVATE"};
  static constexpr std::array<const char*, 3> kTypes = {"NONE", "NOSPACE", "CORRUPT"};
  json j = {{"action", kActions[static_cast<int>(action)]},
            {"alarm", kTypes[static_cast<int>(type)]}};
  if (memberId != 0) j["memberID"] = std::to_string(memberId);
  return j.dump();
}

std::size_t requestBytes(const PutRequest& r) {
  return r.key.size() + r.value.size() + 4 * kFieldBytes;
}

std::size_t requestBytes(const TxnRequest& r) {
  std::size_t n = 0;
  for (const Compare& c : r.compare) n += c.key.size() + c.value.size() + 4 * kFieldBytes;
  for (const RequestOp& op : r.success) n += opBytes(op) + kFieldBytes;
  for (const RequestOp& op : r.failure) n += opBytes(op) + kFieldBytes;
  return n;
}

Result<RangeResponse> decodeRange(std::string_view body, const std::string& where) {
  return decode<RangeResponse>(body, where, [](const json& j) { return rangeResponse(j, true); });
}

Result<PutResponse> decodePut(std::string_view body, const std::string& where) {
  return decode<PutResponse>(body, where, [](const json& j) { return putResponse(j, true); });
}

Result<DeleteRangeResponse> decodeDeleteRange(std::string_view body, const std::string& where) {
  return decode<DeleteRangeResponse>(body, where,
                                     [](const json& j) { return deleteRangeResponse(j, true); });
}

Result<TxnResponse> decodeTxn(std::string_view body, const std::string& where) {
  return decode<TxnResponse>(body, where, [](const json& j) {
    TxnResponse r;
    r.header = header(j);
    r.succeeded = boolean(j, "succeeded");
    for (const json& op : array(j, "responses")) {
      if (const json* range = field(op, "response_range")) {
        r.responses.emplace_back(rangeResponse(*range, false));
      } else if (const json* put = field(op, "response_put")) {
        r.responses.emplace_back(putResponse(*put, false));
      } else if (const json* del = field(op, "response_delete_range")) {
        r.responses.emplace_back(deleteRangeResponse(*del, false));
      } else {
        throw Malformed{"a txn response of an unknown kind"};
      }
    }
    return r;
  });
}

Result<ResponseHeader> decodeHeaderOnly(std::string_view body, const std::string& where) {
  return decode<ResponseHeader>(body, where, [](const json& j) { return header(j); });
}

Result<LeaseGrant> decodeLeaseGrant(std::string_view body, const std::string& where) {
  return decode<LeaseGrant>(body, where, [&](const json& j) -> Result<LeaseGrant> {
    // etcd reports some grant failures inside a 200 answer.
    if (const std::string error = string(j, "error"); !error.empty()) {
      return classifyError(-1, error, where);
    }
    LeaseGrant g{header(j), int64(j, "ID"), int64(j, "TTL")};
    if (g.id == 0 || g.ttlSeconds <= 0) throw Malformed{"a lease grant without ID or TTL"};
    return g;
  });
}

Result<LeaseTimeToLive> decodeLeaseTimeToLive(std::string_view body, const std::string& where) {
  return decode<LeaseTimeToLive>(body, where, [](const json& j) {
    return LeaseTimeToLive{header(j), int64(j, "ID"), int64(j, "TTL"), int64(j, "grantedTTL")};
  });
}

Result<Campaign> decodeCampaign(std::string_view body, const std::string& where) {
  return decode<Campaign>(body, where, [](const json& j) {
    Campaign c{header(j), leaderKey(object(j, "leader"))};
    if (c.leader.key.empty() || c.leader.rev <= 0) throw Malformed{"a leader without key or rev"};
    return c;
  });
}

Result<Leader> decodeLeader(std::string_view body, const std::string& where) {
  return decode<Leader>(body, where, [](const json& j) {
    return Leader{header(j), keyValue(object(j, "kv"))};
  });
}

Result<MemberStatus> decodeMemberStatus(std::string_view body, const std::string& where) {
  return decode<MemberStatus>(body, where, [](const json& j) {
    MemberStatus s;
    s.header = header(j);
    s.version = string(j, "version");
    s.dbSizeBytes = int64(j, "dbSize");
    s.dbSizeInUseBytes = int64(j, "dbSizeInUse");
    s.leader = uint64(j, "leader");
    s.raftIndex = uint64(j, "raftIndex");
    s.raftTerm = uint64(j, "raftTerm");
    s.raftAppliedIndex = uint64(j, "raftAppliedIndex");
    for (const json& e : array(j, "errors")) {
      if (!e.is_string()) throw Malformed{"errors holds a non-string"};
      s.errors.push_back(e.get<std::string>());
    }
    s.isLearner = boolean(j, "isLearner");
    return s;
  });
}

Result<std::vector<Alarm>> decodeAlarms(std::string_view body, const std::string& where) {
  return decode<std::vector<Alarm>>(body, where, [](const json& j) {
    std::vector<Alarm> alarms;
    for (const json& a : array(j, "alarms")) {
      Alarm alarm{uint64(a, "memberID"), AlarmType::kNone};
      const std::string type = string(a, "alarm");
      if (type == "NOSPACE") {
        alarm.type = AlarmType::kNoSpace;
      } else if (type == "CORRUPT") {
        alarm.type = AlarmType::kCorrupt;
      } else if (!type.empty() && type != "NONE") {
        throw Malformed{"unknown alarm " + type.substr(0, 40)};
      }
      alarms.push_back(alarm);
    }
    return alarms;
  });
}

Result<LeaseKeepAlive> decodeKeepAliveLine(std::string_view line, const std::string& where) {
  return decode<LeaseKeepAlive>(line, where, [&](const json& j) -> Result<LeaseKeepAlive> {
    auto result = streamResult(j, where);
    if (!result) return result.error();
    const json& r = **result;
    LeaseKeepAlive k{header(r), int64(r, "ID"), int64(r, "TTL")};
    if (k.ttlSeconds <= 0) {
      return Error(ErrorCode::kLeaseNotFound,
                   "etcd at " + where + ": lease " + std::to_string(k.id) + " has expired");
    }
    return k;
  });
}

Result<Leader> decodeObserveLine(std::string_view line, const std::string& where) {
  return decode<Leader>(line, where, [&](const json& j) -> Result<Leader> {
    auto result = streamResult(j, where);
    if (!result) return result.error();
    return Leader{header(**result), keyValue(object(**result, "kv"))};
  });
}

Result<WatchMessage> decodeWatchLine(std::string_view line, const std::string& where) {
  return decode<WatchMessage>(line, where, [&](const json& j) -> Result<WatchMessage> {
    auto result = streamResult(j, where);
    if (!result) return result.error();
    const json& r = **result;
    WatchMessage m;
    m.header = header(r);
    m.created = boolean(r, "created");
    m.canceled = boolean(r, "canceled");
    m.compactRevision = int64(r, "compact_revision");
    m.cancelReason = string(r, "cancel_reason");
    for (const json& e : array(r, "events")) {
      Event event;
      const std::string type = string(e, "type");
      if (type == "DELETE") {
        event.type = Event::Type::kDelete;
      } else if (!type.empty() && type != "PUT") {
        throw Malformed{"unknown event type " + type.substr(0, 40)};
      }
      event.kv = keyValue(object(e, "kv"));
      if (const json* prev = field(e, "prev_kv")) event.prevKv = keyValue(*prev);
      m.events.push_back(std::move(event));
    }
    return m;
  });
}

Error classifyError(int grpcCode, const std::string& message, const std::string& where) {
  const std::string text = "etcd at " + where + ": " + message;
  // etcd's error texts (etcdserver/api/v3rpc/rpctypes) are its protocol for telling errors
  // apart; the gRPC code alone lumps several together (8 is both NOSPACE and a too-large
  // message; 14 both "no leader" and a timed-out proposal).
  if (contains(message, "database space exceeded")) return {ErrorCode::kNoSpace, text};
  if (contains(message, "request is too large") || contains(message, "larger than max") ||
      contains(message, "too many operations in txn")) {
    return {ErrorCode::kRequestTooLarge, text};
  }
  if (contains(message, "requested lease not found")) return {ErrorCode::kLeaseNotFound, text};
  if (contains(message, "required revision has been compacted")) {
    return {ErrorCode::kCompacted, text};
  }
  if (contains(message, "election: no leader")) return {ErrorCode::kNotFound, text};
  if (contains(message, "election: not leader")) return {ErrorCode::kDeposed, text};
  // Refused before any proposal: certainly not applied, another member may serve it.
  if (contains(message, "etcdserver: no leader") || contains(message, "not capable") ||
      contains(message, "too many requests")) {
    return {ErrorCode::kUnavailable, text};
  }
  // A proposal whose fate is unknown.
  if (contains(message, "timed out") || contains(message, "leader changed") ||
      contains(message, "server stopped")) {
    return {ErrorCode::kTimeout, text};
  }
  switch (grpcCode) {
    case 3:   // InvalidArgument
    case 11:  // OutOfRange
      return {ErrorCode::kInvalidArgument, text};
    case 4:  // DeadlineExceeded
      return {ErrorCode::kTimeout, text};
    case 5:  // NotFound
      return {ErrorCode::kNotFound, text};
    default:
      return {ErrorCode::kServer, text};
  }
}

Error errorFromAnswer(int httpStatus, std::string_view body, const std::string& where) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  const std::string status = "HTTP " + std::to_string(httpStatus);
  if (j.is_object()) {
    // Unary: {"error": "...", "code": N, "message": "..."}.
    const auto error = j.find("error");
    const auto message = j.find("message");
    const auto code = j.find("code");
    if (message != j.end() && message->is_string()) {
      const int grpcCode = code != j.end() && code->is_number_integer() ? code->get<int>() : -1;
      return classifyError(grpcCode, message->get<std::string>(), where);
    }
    if (error != j.end() && error->is_string()) {
      return classifyError(-1, error->get<std::string>(), where);
    }
    // Streamed: {"error": {"grpc_code": N, "message": "..."}}.
    if (error != j.end() && error->is_object()) {
      const auto m = error->find("message");
      const auto c = error->find("grpc_code");
      if (m != error->end() && m->is_string()) {
        const int grpcCode = c != error->end() && c->is_number_integer() ? c->get<int>() : -1;
        return classifyError(grpcCode, m->get<std::string>(), where);
      }
    }
  }
  std::string excerpt(body.substr(0, 120));
  for (char& c : excerpt) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return badResponse(where, status + (excerpt.empty() ? "" : ": " + excerpt));
}

}  // namespace vrm::etcd::codec
