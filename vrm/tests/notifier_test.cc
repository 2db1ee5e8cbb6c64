// The Notifier on a ManualClock: which events reach which webhook, the signature, the retry
// schedule and the before-end event. No network: posts are taken and outcomes given by hand.
#include "vrm/manager/notifier.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace vrm::manager {
namespace {

constexpr TimeNs kMin = 60 * kNsPerSec;

Webhook hook(const std::string& owner, std::set<NotificationKind> kinds,
             const std::string& url = "http://127.0.0.1:9/hook") {
  Webhook w;
  w.owner = owner;
  w.url = *parseWebhookUrl(url);
  w.secret = "s3cret";
  w.kinds = std::move(kinds);
  return w;
}

// A reservation of `owner` with window [start, end), its log ending with `events`.
struct Lifecycle {
  Reservation r;
  explicit Lifecycle(const std::string& owner, TimeNs start = 1000 * kMin,
                     TimeNs end = 1120 * kMin) {
    r.id = "r7";
    r.request.owner = owner;
    r.request.startNs = start;
    r.request.endNs = end;
    r.state = ReservationState::kRequested;
    r.events.push_back({1, ReservationState::kRequested, "requested by " + owner});
  }
  // Appends an event (a transition when `state` differs) and returns it.
  ReservationEvent step(ReservationState state, const std::string& message, TimeNs t) {
    r.state = state;
    r.events.push_back({t, state, message});
    return r.events.back();
  }
};

std::string headerOf(const WebhookPost& post, const std::string& name) {
  for (const auto& [n, v] : post.headers) {
    if (n == name) return v;
  }
  return "";
}

// RFC 4231's test case 2: a receiver computing HMAC-SHA256 gets the same hex.
TEST(NotifierTest, SignatureIsHmacSha256OfTheBody) {
  EXPECT_EQ(webhookSignature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// Only the owner's webhooks, only the kinds they asked for; notes and other states are not
// notifications; at-risk (a note) is.
TEST(NotifierTest, FiltersByOwnerAndKind) {
  ManualClock clock(5);
  Notifier n(clock, {hook("alice", {NotificationKind::kReady, NotificationKind::kAtRisk}),
                     hook("bob", {NotificationKind::kAdmitted, NotificationKind::kReady})});
  Lifecycle l("alice");
  n.observe(l.step(ReservationState::kAdmitted, "admitted: plan ...", 2), l.r);
  n.observe(l.step(ReservationState::kAdmitted, "re-planned because ...", 3), l.r);  // a note
  n.observe(l.step(ReservationState::kVacating, "latest safe start reached", 4), l.r);
  n.observe(l.step(ReservationState::kVacating, "at-risk: projected 20 s late", 5), l.r);
  ClonePlacement c;
  c.vmId = "c1";
  c.host = "h1";
  c.state = CloneState::kRunning;
  c.address = "10.0.0.9";
  c.account = "lab";
  c.port = 22;
  l.r.clones = {c};
  n.observe(l.step(ReservationState::kReady, "ready: 10.0.0.9", 6), l.r);

  auto due = n.takeDue();
  ASSERT_EQ(due.size(), 2u);  // at-risk and ready, to alice's webhook; bob hears nothing
  EXPECT_EQ(headerOf(due[0], "X-Vrm-Event"), "at-risk");
  EXPECT_EQ(headerOf(due[1], "X-Vrm-Event"), "ready");
  const auto ready = nlohmann::json::parse(due[1].body);
  EXPECT_EQ(ready["id"], "r7.e5");  // its place in the reservation's log: stable
  EXPECT_EQ(ready["reservation"], "r7");
  EXPECT_EQ(ready["owner"], "alice");
  EXPECT_EQ(ready["state"], "ready");
  ASSERT_EQ(ready["handles"].size(), 1u);
  EXPECT_EQ(ready["handles"][0]["address"], "10.0.0.9");
  EXPECT_EQ(ready["handles"][0]["ssh"], "ssh -p 22 lab@10.0.0.9");
  EXPECT_EQ(headerOf(due[1], "X-Vrm-Signature"), webhookSignature("s3cret", due[1].body));
  EXPECT_EQ(headerOf(due[1], "X-Vrm-Delivery"), "r7.e5");
}

// Each terminal outcome is its kind: done is "ended", failed and cancelled carry the reason.
TEST(NotifierTest, EndedFailedCancelled) {
  ManualClock clock(5);
  Notifier n(clock, {hook("alice", {NotificationKind::kEnded, NotificationKind::kFailed,
                                    NotificationKind::kCancelled})});
  Lifecycle done("alice");
  n.observe(done.step(ReservationState::kEnding, "window ended", 2), done.r);
  n.observe(done.step(ReservationState::kDone, "reservation ended", 3), done.r);
  Lifecycle failed("alice");
  failed.r.id = "r8";
  failed.r.reason = "host h1 unreachable";
  n.observe(failed.step(ReservationState::kFailed, "host h1 unreachable", 4), failed.r);
  auto due = n.takeDue();
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(headerOf(due[0], "X-Vrm-Event"), "ended");
  EXPECT_EQ(headerOf(due[1], "X-Vrm-Event"), "failed");
  EXPECT_EQ(nlohmann::json::parse(due[1].body)["reason"], "host h1 unreachable");
}

// 5 s, 10 s, 20 s, ... capped at 10 min; never two attempts of one delivery at once.
TEST(NotifierTest, RetriesWithCappedExponentialBackoff) {
  RetryPolicy p;
  EXPECT_EQ(retryDelayNs(p, 1), 5 * kNsPerSec);
  EXPECT_EQ(retryDelayNs(p, 2), 10 * kNsPerSec);
  EXPECT_EQ(retryDelayNs(p, 3), 20 * kNsPerSec);
  EXPECT_EQ(retryDelayNs(p, 8), 10 * kMin);  // 640 s capped
  EXPECT_EQ(retryDelayNs(p, 1000), 10 * kMin);

  ManualClock clock(0);
  Notifier n(clock, {hook("alice", {NotificationKind::kAdmitted})});
  Lifecycle l("alice");
  n.observe(l.step(ReservationState::kAdmitted, "admitted", 0), l.r);
  auto first = n.takeDue();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(n.takeDue().empty()) << "in flight: not posted again";
  EXPECT_EQ(n.nextWakeNs(), kTimeInfinity);
  n.onOutcome({first[0].attemptId, false, "HTTP 500"});
  EXPECT_EQ(n.nextWakeNs(), 5 * kNsPerSec);
  clock.set(5 * kNsPerSec - 1);
  EXPECT_TRUE(n.takeDue().empty());
  clock.set(5 * kNsPerSec);
  auto second = n.takeDue();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].body, first[0].body);  // the same event, the same id
  n.onOutcome({second[0].attemptId, false, "connection refused"});
  EXPECT_EQ(n.nextWakeNs(), 15 * kNsPerSec);

  auto shown = n.deliveriesOf("r7");
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].state, DeliveryState::kFailing);
  EXPECT_EQ(shown[0].attempts, 2u);
  EXPECT_EQ(shown[0].lastError, "connection refused");
  EXPECT_EQ(shown[0].nextAttemptNs, 15 * kNsPerSec);
  EXPECT_EQ(shown[0].url, "http://127.0.0.1:9/hook");

  clock.set(15 * kNsPerSec);
  auto third = n.takeDue();
  ASSERT_EQ(third.size(), 1u);
  n.onOutcome({third[0].attemptId, true, ""});
  shown = n.deliveriesOf("r7");
  EXPECT_EQ(shown[0].state, DeliveryState::kDelivered);
  EXPECT_EQ(shown[0].attempts, 3u);
  EXPECT_EQ(n.nextWakeNs(), kTimeInfinity);
  clock.advance(3600 * kNsPerSec);
  EXPECT_TRUE(n.takeDue().empty()) << "delivered: never again";
}

// A delivery still failing past giveUpAfterNs is given up, and shown so.
TEST(NotifierTest, GivesUpAfterThePolicysLimit) {
  ManualClock clock(0);
  RetryPolicy p;
  p.giveUpAfterNs = 30 * kNsPerSec;  // 5 + 10 = 15 s, then 35 s is past it
  Notifier n(clock, {hook("alice", {NotificationKind::kAdmitted})}, p);
  Lifecycle l("alice");
  n.observe(l.step(ReservationState::kAdmitted, "admitted", 0), l.r);
  for (int attempt = 0; attempt < 3; ++attempt) {
    clock.set(std::max<TimeNs>(clock.now(), n.nextWakeNs()));
    auto due = n.takeDue();
    ASSERT_EQ(due.size(), 1u) << "attempt " << attempt;
    n.onOutcome({due[0].attemptId, false, "HTTP 503"});
  }
  auto shown = n.deliveriesOf("r7");
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].state, DeliveryState::kGaveUp);
  EXPECT_EQ(shown[0].attempts, 3u);
  EXPECT_EQ(n.nextWakeNs(), kTimeInfinity);
}

// before-end=30m fires once, 30 minutes before the end, with the handles; not earlier, not
// again; and nextWakeNs() says when, so the loop wakes for it.
TEST(NotifierTest, BeforeEndFiresOnceNMinutesAhead) {
  ManualClock clock(0);
  Webhook w = hook("alice", {NotificationKind::kBeforeEnd});
  w.beforeEndNs = 30 * kMin;
  Notifier n(clock, {w});
  Lifecycle l("alice", 100 * kMin, 220 * kMin);
  n.observe(l.step(ReservationState::kAdmitted, "admitted", 0), l.r);
  EXPECT_TRUE(n.takeDue().empty());
  EXPECT_EQ(n.nextWakeNs(), 190 * kMin);
  clock.set(100 * kMin);
  n.observe(l.step(ReservationState::kActive, "started", 100 * kMin), l.r);
  clock.set(190 * kMin - 1);
  EXPECT_TRUE(n.takeDue().empty());
  clock.set(190 * kMin);
  auto due = n.takeDue();
  ASSERT_EQ(due.size(), 1u);
  const auto body = nlohmann::json::parse(due[0].body);
  EXPECT_EQ(body["kind"], "before-end");
  EXPECT_EQ(body["id"], "r7.before-end");
  EXPECT_EQ(body["secondsBeforeEnd"], 1800);
  EXPECT_EQ(body["timeNs"], 190 * kMin);
  EXPECT_TRUE(body.contains("handles"));
  n.onOutcome({due[0].attemptId, true, ""});
  clock.set(200 * kMin);
  EXPECT_TRUE(n.takeDue().empty()) << "once";
  n.observe(l.step(ReservationState::kActive, "a note", 200 * kMin), l.r);
  EXPECT_TRUE(n.takeDue().empty()) << "once, whatever else happens";
}

// A recovered reservation (track) gets its before-end; one whose end passed while vrmd was
// down does not, and does not keep the loop awake.
TEST(NotifierTest, TrackedReservationsGetTheirBeforeEnd) {
  ManualClock clock(195 * kMin);
  Notifier n(clock, {hook("alice", {NotificationKind::kBeforeEnd})});  // 60 min
  Lifecycle live("alice", 100 * kMin, 220 * kMin);
  live.step(ReservationState::kActive, "started", 100 * kMin);
  Lifecycle over("alice", 100 * kMin, 150 * kMin);
  over.r.id = "r9";
  over.step(ReservationState::kActive, "started", 100 * kMin);
  n.track(live.r);
  n.track(over.r);
  auto due = n.takeDue();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(due[0].body)["reservation"], "r7");
  EXPECT_EQ(n.nextWakeNs(), kTimeInfinity);
}

// A window shorter than the lead is told at its start.
TEST(NotifierTest, ShortWindowIsToldAtItsStart) {
  ManualClock clock(0);
  Notifier n(clock, {hook("alice", {NotificationKind::kBeforeEnd})});  // 60 min
  Lifecycle l("alice", 100 * kMin, 130 * kMin);
  n.observe(l.step(ReservationState::kAdmitted, "admitted", 0), l.r);
  EXPECT_EQ(n.nextWakeNs(), 100 * kMin);
}

// The file: a URL that is not http(s) is refused naming the file, line and field; events are
// checked by name; before-end takes its lead.
TEST(NotifierTest, ParsesTheWebhooksFile) {
  auto ok = parseWebhooks(
      "# comment\n"
      "owner alice https://hooks.example:8443/vrm?t=1 k1 admitted,before-end=30m,ended\n"
      "owner bob http://[::1]/h k2 all  # trailing comment\n",
      "webhooks");
  ASSERT_TRUE(ok) << ok.status().message();
  ASSERT_EQ(ok->size(), 2u);
  const Webhook& a = (*ok)[0];
  EXPECT_EQ(a.owner, "alice");
  EXPECT_TRUE(a.url.https);
  EXPECT_EQ(a.url.host, "hooks.example");
  EXPECT_EQ(a.url.port, 8443);
  EXPECT_EQ(a.url.target, "/vrm?t=1");
  EXPECT_EQ(a.url.shown(), "https://hooks.example:8443/vrm");
  EXPECT_EQ(a.beforeEndNs, 30 * kMin);
  EXPECT_EQ(a.kinds.size(), 3u);
  EXPECT_EQ((*ok)[1].url.host, "::1");
  EXPECT_EQ((*ok)[1].url.port, 80);
  EXPECT_EQ((*ok)[1].kinds.size(), 8u);

  auto ftp = parseWebhooks("owner alice ftp://h/x k admitted\n", "webhooks");
  ASSERT_FALSE(ftp);
  EXPECT_EQ(ftp.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ftp.status().message(), "webhooks:1: url 'ftp://h/x' is not http:// or https://");
  auto unknown = parseWebhooks("\nowner alice http://h/ k admitted,startd\n", "w");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.status().message().find("w:2: events: unknown event 'startd'"),
            std::string::npos)
      << unknown.status().message();
  EXPECT_FALSE(parseWebhooks("owner alice http://h/ k\n", "w"));             // no events
  EXPECT_FALSE(parseWebhooks("project lab http://h/ k all\n", "w"));         // not yet
  EXPECT_FALSE(parseWebhooks("owner a http://h:0/ k all\n", "w"));           // port
  EXPECT_FALSE(parseWebhooks("owner a http:///x k all\n", "w"));             // no host
  EXPECT_FALSE(parseWebhooks("owner a http://h/ k ready=5m\n", "w"));        // lead on ready
  EXPECT_FALSE(parseWebhooks("owner a http://h/ k before-end=-5m\n", "w"));  // negative
}

}  // namespace
}  // namespace vrm::manager
