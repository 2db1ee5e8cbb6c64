// The gateway's JSON: answers as etcd 3.4 sends them decode to the values they carry; every
// malformed answer becomes a typed error (never an exception or a crash); etcd's error texts
// map to their codes.
#include "json_codec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace vrm::etcd::codec {
namespace {

using json = nlohmann::json;

const std::string kWhere = "127.0.0.1:2379";
const std::string kHeader =
    R"("header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952",)"
    R"("revision":"8","raft_term":"2"})";

TEST(Base64Test, RoundTripsEveryLengthAndByte) {
  // Every length mod 3, and every byte value, survive encode then decode.
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 1) {
    const std::string bytes = all.substr(0, n);
    const auto decoded = base64Decode(base64Encode(bytes));
    ASSERT_TRUE(decoded.has_value()) << n;
    EXPECT_EQ(*decoded, bytes);
  }
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("f"), "Zg==");
}

TEST(Base64Test, RejectsAnythingButCanonicalBase64) {
  // Wrong length, foreign characters, padding in the middle and non-zero pad bits are refused.
  for (const char* bad :
       {"Zm9", "Zm9v!", "Zm==Zm9v", "Zm9v\n", "Zh==", "Zm9=", "====", "Z===", "Zm9v Zm9v"}) {
    EXPECT_FALSE(base64Decode(bad).has_value()) << bad;
  }
}

TEST(JsonCodecTest, DecodesARangeAnswer) {
  // A range answer as etcd 3.4 sends it: int64 as strings, bytes as base64, defaults omitted.
  const std::string body = "{" + kHeader +
                           R"(,"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3",)"
                           R"("version":"2","value":"YmF6","lease":"77"}],"count":"1"})";
  const auto r = decodeRange(body, kWhere);
  ASSERT_TRUE(r.isOk()) << r.error().toString();
  EXPECT_EQ(r->header.revision, 8);
  EXPECT_EQ(r->header.memberId, 3319814642761637952u);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].key, "foo");
  EXPECT_EQ(r->kvs[0].value, "baz");
  EXPECT_EQ(r->kvs[0].createRevision, 2);
  EXPECT_EQ(r->kvs[0].modRevision, 3);
  EXPECT_EQ(r->kvs[0].version, 2);
  EXPECT_EQ(r->kvs[0].lease, 77);
  EXPECT_EQ(r->count, 1);
  EXPECT_FALSE(r->more);
}

TEST(JsonCodecTest, DecodesATxnAnswerWithNestedResponses) {
  // A failed txn's range answer and a succeeded one's put answer, with headers of revision only.
  const std::string failed =
      "{" + kHeader +
      R"(,"responses":[{"response_range":{"header":{"revision":"3"},"kvs":[{"key":"Zm9v",)"
      R"("create_revision":"2","mod_revision":"3","version":"2","value":"YmF6"}],"count":"1"}}]})";
  auto r = decodeTxn(failed, kWhere);
  ASSERT_TRUE(r.isOk()) << r.error().toString();
  EXPECT_FALSE(r->succeeded);
  ASSERT_EQ(r->responses.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<RangeResponse>(r->responses[0]));
  EXPECT_EQ(std::get<RangeResponse>(r->responses[0]).kvs.at(0).value, "baz");

  const std::string ok = "{" + kHeader +
                         R"(,"succeeded":true,"responses":[{"response_put":{"header":)"
                         R"({"revision":"3"}}},{"response_delete_range":{"deleted":"2"}}]})";
  r = decodeTxn(ok, kWhere);
  ASSERT_TRUE(r.isOk()) << r.error().toString();
  EXPECT_TRUE(r->succeeded);
  ASSERT_EQ(r->responses.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<PutResponse>(r->responses[0]));
  EXPECT_EQ(std::get<DeleteRangeResponse>(r->responses[1]).deleted, 2);
}

TEST(JsonCodecTest, MalformedAnswersAreBadResponses) {
  // Whatever the server sends, decoding returns a value or kBadResponse naming the member.
  const std::vector<std::string> bad = {
      "",
      "not json",
      "[1,2]",
      "\"text\"",
      "{}",  // no header
      R"({"header":5})",
      R"({"header":{"revision":"x"}})",
      R"({"header":{"revision":"12x"}})",
      R"({"header":{"revision":"99999999999999999999"}})",
      R"({"header":{"revision":true}})",
      R"({"header":{"member_id":"-1"}})",
      "{" + kHeader + R"(,"kvs":{"key":"Zm9v"}})",
      "{" + kHeader + R"(,"kvs":[5]})",
      "{" + kHeader + R"(,"kvs":[{"key":"!!!!"}]})",
      "{" + kHeader + R"(,"kvs":[{"key":7}]})",
      "{" + kHeader + R"(,"more":"yes"})",
      "{" + kHeader + R"(,"count":1.5})",
      std::string(100000, '[') + std::string(100000, ']'),
      "{\"header\":{\"revision\":\"1\"}" + std::string(5000, ' '),  // truncated
  };
  for (const std::string& body : bad) {
    const auto r = decodeRange(body, kWhere);
    ASSERT_FALSE(r.isOk()) << body.substr(0, 80);
    EXPECT_EQ(r.error().code(), ErrorCode::kBadResponse) << body.substr(0, 80);
    EXPECT_NE(r.error().message().find(kWhere), std::string::npos);
  }
  EXPECT_EQ(
      decodeTxn("{" + kHeader + R"(,"responses":[{"response_what":{}}]})", kWhere).error().code(),
      ErrorCode::kBadResponse);
  EXPECT_EQ(decodeCampaign("{" + kHeader + R"(,"leader":{"name":"YQ=="}})", kWhere).error().code(),
            ErrorCode::kBadResponse);
  EXPECT_EQ(decodeAlarms(R"({"alarms":[{"alarm":"FIRE"}]})", kWhere).error().code(),
            ErrorCode::kBadResponse);
  EXPECT_EQ(decodeWatchLine(R"({"result":{)" + kHeader + R"(,"events":[{"type":"MOVE","kv":{}}]}})",
                            kWhere)
                .error()
                .code(),
            ErrorCode::kBadResponse);
  EXPECT_EQ(decodeLeaseGrant("{" + kHeader + "}", kWhere).error().code(), ErrorCode::kBadResponse);
}

TEST(JsonCodecTest, EtcdErrorTextsMapToTheirCodes) {
  // The texts etcd 3.4 sends (rpctypes), as unary and as streamed errors.
  struct Case {
    int http;
    std::string body;
    ErrorCode code;
  };
  const std::vector<Case> cases = {
      {429,
       R"({"error":"etcdserver: mvcc: database space exceeded","message":"etcdserver: mvcc: )"
       R"(database space exceeded","code":8})",
       ErrorCode::kNoSpace},
      {400, R"({"error":"etcdserver: request is too large","code":3})",
       ErrorCode::kRequestTooLarge},
      {429,
       R"j({"message":"grpc: received message larger than max (3000011 vs. 2097152)","code":8})j",
       ErrorCode::kRequestTooLarge},
      {400, R"({"message":"etcdserver: too many operations in txn request","code":3})",
       ErrorCode::kRequestTooLarge},
      {404, R"({"message":"etcdserver: requested lease not found","code":5})",
       ErrorCode::kLeaseNotFound},
      {400, R"({"message":"etcdserver: mvcc: required revision has been compacted","code":11})",
       ErrorCode::kCompacted},
      {503, R"({"message":"etcdserver: no leader","code":14})", ErrorCode::kUnavailable},
      {503, R"({"message":"etcdserver: request timed out","code":14})", ErrorCode::kTimeout},
      {500, R"({"message":"election: no leader","code":2})", ErrorCode::kNotFound},
      {500, R"({"message":"election: not leader","code":2})", ErrorCode::kDeposed},
      {400, R"({"message":"invalid character 'o' in literal null","code":3})",
       ErrorCode::kInvalidArgument},
      {500, R"({"message":"something new","code":13})", ErrorCode::kServer},
      {200, R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}})",
       ErrorCode::kUnavailable},
      {404, "404 page not found\n", ErrorCode::kBadResponse},
      {502, "", ErrorCode::kBadResponse},
      {500, std::string("\x01\x02\xff", 3), ErrorCode::kBadResponse},
  };
  for (const Case& c : cases) {
    const Error e = errorFromAnswer(c.http, c.body, kWhere);
    EXPECT_EQ(e.code(), c.code) << c.body << " -> " << e.toString();
  }
}

TEST(JsonCodecTest, WatchLinesCarryEventsCancellationAndErrors) {
  // Created, an event batch with a delete, a cancellation for compaction, and an error line.
  auto created = decodeWatchLine(R"({"result":{)" + kHeader + R"(,"created":true}})", kWhere);
  ASSERT_TRUE(created.isOk()) << created.error().toString();
  EXPECT_TRUE(created->created);
  EXPECT_TRUE(created->events.empty());

  auto events = decodeWatchLine(
      R"({"result":{)" + kHeader +
          R"(,"events":[{"kv":{"key":"dw==","create_revision":"7","mod_revision":"7",)"
          R"("version":"1","value":"eA=="}},{"type":"DELETE","kv":{"key":"dw==",)"
          R"("mod_revision":"8"}}]}})",
      kWhere);
  ASSERT_TRUE(events.isOk()) << events.error().toString();
  ASSERT_EQ(events->events.size(), 2u);
  EXPECT_EQ(events->events[0].type, Event::Type::kPut);
  EXPECT_EQ(events->events[0].kv.value, "x");
  EXPECT_EQ(events->events[1].type, Event::Type::kDelete);
  EXPECT_EQ(events->events[1].kv.modRevision, 8);

  auto compacted = decodeWatchLine(
      R"({"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"5"}})", kWhere);
  ASSERT_TRUE(compacted.isOk()) << compacted.error().toString();
  EXPECT_TRUE(compacted->canceled);
  EXPECT_EQ(compacted->compactRevision, 5);

  auto error = decodeWatchLine(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}})", kWhere);
  ASSERT_FALSE(error.isOk());
  EXPECT_EQ(error.error().code(), ErrorCode::kUnavailable);
}

TEST(JsonCodecTest, KeepAliveOfAnExpiredLeaseIsLeaseNotFound) {
  // etcd answers a keepalive of an expired lease with the lease id and no TTL.
  auto alive =
      decodeKeepAliveLine(R"({"result":{)" + kHeader + R"(,"ID":"42","TTL":"3"}})", kWhere);
  ASSERT_TRUE(alive.isOk()) << alive.error().toString();
  EXPECT_EQ(alive->ttlSeconds, 3);
  auto expired = decodeKeepAliveLine(R"({"result":{)" + kHeader + R"(,"ID":"42"}})", kWhere);
  ASSERT_FALSE(expired.isOk());
  EXPECT_EQ(expired.error().code(), ErrorCode::kLeaseNotFound);
}

TEST(JsonCodecTest, EncodesATxnTheGatewayReads) {
  // Compares by enum name with the field of their target, ops as request_* objects, bytes in
  // base64, int64 as strings.
  TxnRequest txn;
  txn.compare.push_back(Compare::createRevision("lead", Compare::Op::kEqual, 12));
  txn.compare.push_back(Compare::valueIs("v", Compare::Op::kNotEqual, "x"));
  txn.success.push_back(PutRequest{"k", "val", 7, false});
  txn.failure.push_back(RangeRequest::prefix("k/"));
  txn.failure.push_back(DeleteRangeRequest{"d", "", true});
  const json j = json::parse(encodeTxn(txn));
  EXPECT_EQ(j["compare"][0]["target"], "CREATE");
  EXPECT_EQ(j["compare"][0]["result"], "EQUAL");
  EXPECT_EQ(j["compare"][0]["create_revision"], "12");
  EXPECT_EQ(j["compare"][0]["key"], base64Encode("lead"));
  EXPECT_EQ(j["compare"][1]["target"], "VALUE");
  EXPECT_EQ(j["compare"][1]["result"], "NOT_EQUAL");
  EXPECT_EQ(j["compare"][1]["value"], base64Encode("x"));
  EXPECT_EQ(j["success"][0]["request_put"]["value"], base64Encode("val"));
  EXPECT_EQ(j["success"][0]["request_put"]["lease"], "7");
  EXPECT_EQ(j["failure"][0]["request_range"]["range_end"], base64Encode("k0"));
  EXPECT_EQ(j["failure"][1]["request_delete_range"]["prev_kv"], true);
  EXPECT_GE(requestBytes(txn), 4u + 1 + 1 + 1 + 3 + 2 + 1);
}

TEST(JsonCodecTest, PrefixEndIsTheNextKeyAfterThePrefix) {
  // etcd's range_end for a prefix: last byte incremented, trailing 0xff dropped.
  EXPECT_EQ(prefixEnd("a/"), "a0");
  EXPECT_EQ(prefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefixEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
  EXPECT_EQ(prefixEnd(""), std::string(1, '\0'));
}

}  // namespace
}  // namespace vrm::etcd::codec
