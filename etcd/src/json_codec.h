// The JSON of etcd's v3 gateway (grpc-gateway's mapping of rpc.proto: original field names,
// int64 as decimal strings, bytes as base64, enums by name, default values omitted) to and from
// this library's value types. Pure functions, no I/O: the edge where an untrusted answer becomes
// typed values or an Error, never a crash (etcd_codec_test feeds it malformed answers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vrm/etcd/error.h"
#include "vrm/etcd/types.h"

namespace vrm::etcd::codec {

std::string base64Encode(std::string_view bytes);
// Strict standard base64 with padding; nullopt on anything else.
std::optional<std::string> base64Decode(std::string_view text);

// Request bodies.
std::string encodeRange(const RangeRequest& r);
std::string encodePut(const PutRequest& r);
std::string encodeDeleteRange(const DeleteRangeRequest& r);
std::string encodeTxn(const TxnRequest& r);
std::string encodeCompaction(std::int64_t revision, bool physical);
std::string encodeLeaseGrant(std::int64_t ttlSeconds, std::int64_t id);
std::string encodeLeaseId(std::int64_t id);  // revoke, keepalive, timetolive
std::string encodeCampaign(const std::string& name, std::int64_t lease, const std::string& value);
std::string encodeProclaim(const LeaderKey& leader, const std::string& value);
std::string encodeElectionName(const std::string& name);  // leader, observe
std::string encodeResign(const LeaderKey& leader);
std::string encodeWatchCreate(const WatchRequest& r);
enum class AlarmAction { kGet, kActivate, kDeactivate };
std::string encodeAlarm(AlarmAction action, std::uint64_t memberId, AlarmType type);

// What etcd counts against --max-request-bytes is the protobuf encoding of the request; this is
// a close lower bound of it (keys, values and a few bytes per field), used to refuse a request
// that cannot pass before sending it.
std::size_t requestBytes(const PutRequest& r);
std::size_t requestBytes(const TxnRequest& r);

// Answers of unary calls (an HTTP 200 body). `where` names the member for messages.
Result<RangeResponse> decodeRange(std::string_view body, const std::string& where);
Result<PutResponse> decodePut(std::string_view body, const std::string& where);
Result<DeleteRangeResponse> decodeDeleteRange(std::string_view body, const std::string& where);
Result<TxnResponse> decodeTxn(std::string_view body, const std::string& where);
Result<ResponseHeader> decodeHeaderOnly(std::string_view body, const std::string& where);
Result<LeaseGrant> decodeLeaseGrant(std::string_view body, const std::string& where);
Result<LeaseTimeToLive> decodeLeaseTimeToLive(std::string_view body, const std::string& where);
Result<Campaign> decodeCampaign(std::string_view body, const std::string& where);
Result<Leader> decodeLeader(std::string_view body, const std::string& where);
Result<MemberStatus> decodeMemberStatus(std::string_view body, const std::string& where);
Result<std::vector<Alarm>> decodeAlarms(std::string_view body, const std::string& where);

// One line of a streamed answer: {"result": {...}} or {"error": {...}}.
// Keepalive answers are streamed: kLeaseNotFound when the lease is gone (TTL 0 or absent).
Result<LeaseKeepAlive> decodeKeepAliveLine(std::string_view line, const std::string& where);
Result<Leader> decodeObserveLine(std::string_view line, const std::string& where);

struct WatchMessage {
  ResponseHeader header;
  bool created = false;
  bool canceled = false;
  std::int64_t compactRevision = 0;  // > 0: the start revision was compacted away
  std::string cancelReason;
  std::vector<Event> events;
};
Result<WatchMessage> decodeWatchLine(std::string_view line, const std::string& where);

// The Error for an answer that is not a success: etcd's error JSON (unary: {"error", "code",
// "message"}; streamed: {"error": {"grpc_code", "http_code", "message"}}) classified by etcd's
// error texts (rpctypes) and gRPC codes; anything else is kBadResponse with the HTTP status.
Error errorFromAnswer(int httpStatus, std::string_view body, const std::string& where);
// The same for an error message and gRPC code already taken from JSON.
Error classifyError(int grpcCode, const std::string& message, const std::string& where);

}  // namespace vrm::etcd::codec
