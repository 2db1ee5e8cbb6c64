#include "vrm/client/request_parser.h"

#include <gtest/gtest.h>

#include <functional>

namespace vrm::client {
namespace {

constexpr TimeNs kNow = 1'795'000'000 * kNsPerSec;  // 2026-11-18T...; injected, never read
constexpr TimeNs kHour = 3600 * kNsPerSec;
constexpr char kKey[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKDLIabwrbChxMufAdl0KXARt4BoFMMlaai4zxaChfqq alice@lab";

RequestDraft dedicated() {
  RequestDraft d;
  d.hosts = "1";
  d.start = "+2h";
  d.duration = "1h";
  d.templateName = "bmi";
  return d;
}

// Ensures a dedicated draft with every field becomes the request it says, relative times read
// against the injected now.
TEST(RequestParserTest, DedicatedDraftBecomesTheRequest) {
  RequestDraft d = dedicated();
  d.hosts = "2";
  d.hostNames = {"node1", "node2"};
  d.vmsPerHost = "3";
  d.label = "bmi session";
  d.owner = "lab-bmi";
  d.objective = "degradation";
  d.maxVmTime = "30s";
  d.displaced = "return";
  d.dryRun = "true";
  d.sshPublicKey = std::string(kKey) + "\n";
  auto r = parseRequest(d, kNow);
  ASSERT_TRUE(r.isOk()) << r.error().message();
  EXPECT_EQ(r->kind, ReservationKind::kDedicated);
  EXPECT_EQ(r->hostCount, 2u);
  EXPECT_EQ(r->hostNames, (std::vector<std::string>{"node1", "node2"}));
  EXPECT_EQ(r->vmsPerHost, 3u);
  EXPECT_EQ(r->startNs, kNow + 2 * kHour);
  EXPECT_EQ(r->endNs, kNow + 3 * kHour);
  EXPECT_EQ(r->templateName, "bmi");
  EXPECT_EQ(r->label, "bmi session");
  EXPECT_EQ(r->owner, "lab-bmi");
  EXPECT_EQ(r->objective, Objective::kDegradation);
  EXPECT_EQ(r->maxVmTimeNs, 30 * kNsPerSec);
  EXPECT_EQ(r->displaced, Displaced::kReturn);
  EXPECT_TRUE(r->dryRun);
  EXPECT_EQ(r->sshPublicKey, kKey) << "the trailing newline is dropped";
}

// Ensures the defaults: makespan, displaced not said, no dry run, end from an explicit time, and
// a shared draft is shared.
TEST(RequestParserTest, DefaultsAndSharedDrafts) {
  RequestDraft d = dedicated();
  d.duration.clear();
  d.end = "+5h";
  auto r = parseRequest(d, kNow);
  ASSERT_TRUE(r.isOk()) << r.error().message();
  EXPECT_EQ(r->objective, Objective::kMakespan);
  EXPECT_FALSE(r->displaced.has_value());
  EXPECT_FALSE(r->dryRun);
  EXPECT_EQ(r->endNs, kNow + 5 * kHour);
  EXPECT_EQ(r->maxVmTimeNs, 0);

  RequestDraft s;
  s.vms = "4";
  s.startNs = std::to_string(kNow + kHour);
  s.endNs = std::to_string(kNow + 2 * kHour);
  s.templateName = "bmi";
  s.dryRun = "false";
  auto shared = parseRequest(s, kNow);
  ASSERT_TRUE(shared.isOk()) << shared.error().message();
  EXPECT_EQ(shared->kind, ReservationKind::kShared);
  EXPECT_EQ(shared->vmCount, 4u);
  EXPECT_EQ(shared->hostCount, 0u);
  EXPECT_EQ(shared->startNs, kNow + kHour);
  EXPECT_EQ(shared->endNs, kNow + 2 * kHour);
}

// Ensures every mistake is refused with the field that holds it and a reason saying why.
TEST(RequestParserTest, MistakesNameTheirField) {
  struct Case {
    const char* what;
    std::function<void(RequestDraft&)> change;
    RequestField field;
    const char* reason;  // a part of the reason
  };
  const Case cases[] = {
      {"count not a number", [](auto& d) { d.hosts = "two"; }, RequestField::kHosts,
       "whole number"},
      {"negative count", [](auto& d) { d.hosts = "-1"; }, RequestField::kHosts, "whole number"},
      {"count too large", [](auto& d) { d.vmsPerHost = "100001"; }, RequestField::kVmsPerHost,
       "100000"},
      {"no hosts", [](auto& d) { d.hosts = "0"; }, RequestField::kHosts, "how many hosts"},
      {"shared and dedicated", [](auto& d) { d.vms = "2"; }, RequestField::kVms, "excludes"},
      {"empty host name", [](auto& d) { d.hostNames = {""}; }, RequestField::kHostNames, "empty"},
      {"no start", [](auto& d) { d.start.clear(); }, RequestField::kStart, "required"},
      {"bad start", [](auto& d) { d.start = "soonish"; }, RequestField::kStart, "ISO 8601"},
      {"start twice", [](auto& d) { d.startNs = "5"; }, RequestField::kStartNs, "not both"},
      {"start_ns not a number", [](auto& d) { d.start.clear(), d.startNs = "1e9"; },
       RequestField::kStartNs, "integer"},
      {"bad duration", [](auto& d) { d.duration = "1parsec"; }, RequestField::kDuration, ""},
      {"zero duration", [](auto& d) { d.duration = "0s"; }, RequestField::kDuration, "0"},
      {"duration past the end of time", [](auto& d) { d.duration = "106751d"; },
       RequestField::kDuration, "too long"},
      {"duration and end", [](auto& d) { d.end = "+5h"; }, RequestField::kDuration,
       "exactly one of duration and end"},
      {"neither duration nor end", [](auto& d) { d.duration.clear(); }, RequestField::kDuration,
       "exactly one of duration and end"},
      {"end before start", [](auto& d) { d.duration.clear(), d.end = "+1h"; }, RequestField::kEnd,
       "end must be after start"},
      {"no template", [](auto& d) { d.templateName.clear(); }, RequestField::kTemplate, "required"},
      {"label too long", [](auto& d) { d.label = std::string(1001, 'x'); }, RequestField::kLabel,
       "too long"},
      {"unknown objective", [](auto& d) { d.objective = "fastest"; }, RequestField::kObjective,
       "'fastest'"},
      {"bad max VM time", [](auto& d) { d.objective = "degradation", d.maxVmTime = "soon"; },
       RequestField::kMaxVmTime, ""},
      {"max VM time without degradation", [](auto& d) { d.maxVmTime = "30s"; },
       RequestField::kMaxVmTime, "degradation"},
      {"unknown displaced", [](auto& d) { d.displaced = "home"; }, RequestField::kDisplaced,
       "(stay, return)"},
      {"displaced on shared", [](auto& d) { d.hosts.clear(), d.vms = "1", d.displaced = "stay"; },
       RequestField::kDisplaced, "shared"},
      {"dry run not a boolean", [](auto& d) { d.dryRun = "yes"; }, RequestField::kDryRun,
       "true or false"},
      {"private key", [](auto& d) { d.sshPublicKey = "-----BEGIN OPENSSH PRIVATE KEY-----"; },
       RequestField::kSshPublicKey, ""},
  };
  for (const auto& c : cases) {
    RequestDraft d = dedicated();
    c.change(d);
    auto r = parseRequest(d, kNow);
    ASSERT_FALSE(r.isOk()) << c.what;
    EXPECT_EQ(r.error().field, c.field) << c.what << ": " << r.error().message();
    EXPECT_NE(r.error().reason.find(c.reason), std::string::npos)
        << c.what << ": " << r.error().message();
    EXPECT_FALSE(r.error().reason.empty()) << c.what;
    EXPECT_EQ(r.error().status().code(), StatusCode::kInvalidArgument);
  }
}

// Ensures a start that is not after the injected now is refused, however it is given (the web
// page and vrmctl read now from vrmd, whose clock may run faster than ours).
TEST(RequestParserTest, StartMustBeAfterNow) {
  for (const char* start : {"now", "2001-01-01T00:00:00Z", "1970-01-01T00:00:01Z"}) {
    RequestDraft d = dedicated();
    d.start = start;
    auto r = parseRequest(d, kNow);
    ASSERT_FALSE(r.isOk()) << start;
    EXPECT_EQ(r.error().field, RequestField::kStart) << start;
    EXPECT_NE(r.error().reason.find("not in the future"), std::string::npos) << r.error().message();
  }
  RequestDraft d = dedicated();
  d.start.clear();
  d.startNs = std::to_string(kNow - 1);
  auto past = parseRequest(d, kNow);
  ASSERT_FALSE(past.isOk());
  EXPECT_EQ(past.error().field, RequestField::kStartNs);
  d.startNs = std::to_string(kNow + 1);
  EXPECT_TRUE(parseRequest(d, kNow).isOk()) << "one nanosecond ahead is the future";
  // The same text is the past or the future depending on the now given.
  d = dedicated();
  d.start = "2026-12-03T10:00:00Z";
  EXPECT_TRUE(parseRequest(d, 0).isOk());
  EXPECT_FALSE(parseRequest(d, kTimeInfinity / 2).isOk());
}

// Ensures the two spellings of an error share the reason and differ only in the field's name:
// the JSON member for the web API, the flag for vrmctl.
TEST(RequestParserTest, MessagesNameTheFieldAsEachEdgeSpellsIt) {
  RequestDraft d = dedicated();
  d.maxVmTime = "30s";
  auto r = parseRequest(d, kNow);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.error().message(), "max_vm_time: " + r.error().reason);
  EXPECT_EQ(r.error().flagMessage(), "--max-vm-time: " + r.error().reason);
  EXPECT_EQ(r.error().status().message(), r.error().message());
  RequestError body{RequestField::kBody, "unknown field 'x'"};
  EXPECT_EQ(body.message(), "unknown field 'x'");
  EXPECT_EQ(body.flagMessage(), "unknown field 'x'");
  EXPECT_STREQ(requestFieldName(RequestField::kHostNames), "host_names");
  EXPECT_STREQ(requestFieldFlag(RequestField::kHostNames), "--host");
  EXPECT_STREQ(requestFieldFlag(RequestField::kSshPublicKey), "--ssh-key");
}

// Ensures the web API's JSON body becomes the same draft as vrmctl's flags, so both reach vrmd
// as the same request, displaced and max_vm_time included.
TEST(RequestParserTest, JsonBodyIsTheSameDraftAsTheFlags) {
  auto fromJson = requestDraftFromJson(R"({
      "hosts": 1, "host_names": ["node1"], "start": "+2h", "duration": "1h",
      "template": "bmi", "vms_per_host": 2, "label": "x", "owner": null,
      "objective": "degradation", "max_vm_time": "10min", "displaced": "return",
      "dry_run": true, "ssh_public_key": null})");
  ASSERT_TRUE(fromJson.isOk()) << fromJson.error().message();
  RequestDraft flags = dedicated();
  flags.hostNames = {"node1"};
  flags.vmsPerHost = "2";
  flags.label = "x";
  flags.objective = "degradation";
  flags.maxVmTime = "10min";
  flags.displaced = "return";
  flags.dryRun = "true";
  auto a = parseRequest(*fromJson, kNow);
  auto b = parseRequest(flags, kNow);
  ASSERT_TRUE(a.isOk()) << a.error().message();
  ASSERT_TRUE(b.isOk()) << b.error().message();
  EXPECT_EQ(a->hostCount, b->hostCount);
  EXPECT_EQ(a->hostNames, b->hostNames);
  EXPECT_EQ(a->startNs, b->startNs);
  EXPECT_EQ(a->endNs, b->endNs);
  EXPECT_EQ(a->vmsPerHost, b->vmsPerHost);
  EXPECT_EQ(a->label, b->label);
  EXPECT_EQ(a->objective, Objective::kDegradation);
  EXPECT_EQ(a->maxVmTimeNs, 10 * 60 * kNsPerSec);
  EXPECT_EQ(a->maxVmTimeNs, b->maxVmTimeNs);
  EXPECT_EQ(a->displaced, Displaced::kReturn);
  EXPECT_EQ(a->displaced, b->displaced);
  EXPECT_EQ(a->dryRun, b->dryRun);

  auto ns = requestDraftFromJson(R"({"start_ns": 1234, "end_ns": -5, "dry_run": false})");
  ASSERT_TRUE(ns.isOk());
  EXPECT_EQ(ns->startNs, "1234");
  EXPECT_EQ(ns->endNs, "-5");
  EXPECT_EQ(ns->dryRun, "false");
}

// Ensures a body of the wrong shape or with members of the wrong JSON type is refused, naming
// the member (or the body).
TEST(RequestParserTest, JsonMistakesNameTheirMember) {
  struct Case {
    const char* body;
    RequestField field;
    const char* reason;
  };
  const Case cases[] = {
      {R"({"hosts": 1,)", RequestField::kBody, "malformed JSON"},
      {"[1, 2]", RequestField::kBody, "JSON object"},
      {R"({"hots": 1})", RequestField::kBody, "unknown field 'hots'"},
      {R"({"hosts": "two"})", RequestField::kHosts, "whole number"},
      {R"({"vms": 1.5})", RequestField::kVms, "whole number"},
      {R"({"host_names": "node1"})", RequestField::kHostNames, "list of host names"},
      {R"({"host_names": [1]})", RequestField::kHostNames, "list of host names"},
      {R"({"start_ns": "soon"})", RequestField::kStartNs, "integer"},
      {R"({"dry_run": "yes"})", RequestField::kDryRun, "true or false"},
      {R"({"max_vm_time": 30})", RequestField::kMaxVmTime, "string"},
      {R"({"displaced": true})", RequestField::kDisplaced, "string"},
  };
  for (const auto& c : cases) {
    auto d = requestDraftFromJson(c.body);
    ASSERT_FALSE(d.isOk()) << c.body;
    EXPECT_EQ(d.error().field, c.field) << c.body << ": " << d.error().message();
    EXPECT_NE(d.error().reason.find(c.reason), std::string::npos) << d.error().message();
  }
  // A negative count passes the JSON type check and is refused by the parser, naming it.
  auto negative = requestDraftFromJson(R"({"hosts": -1})");
  ASSERT_TRUE(negative.isOk());
  auto r = parseRequest(*negative, kNow);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.error().message().rfind("hosts: must be a whole number", 0), 0u)
      << r.error().message();
}

}  // namespace
}  // namespace vrm::client
