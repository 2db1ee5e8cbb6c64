// Webhook notifications of reservation events (README: Notifications; issue 15 item 4).
//
// The Notifier turns the reservation events vrmd commits (Manager::takeEvents(): each event with
// the reservation as it stood after it) and the clock (the "N minutes before the end" events)
// into HTTP POSTs owed to the webhooks configured for the reservation's owner, and keeps how
// each delivery fares: it retries a failed one with capped exponential backoff until it is
// delivered or the retry policy gives up, and answers `vrmctl show` (deliveriesOf). It does no
// I/O: it returns the posts due (takeDue) and is told their outcomes (onOutcome); the HTTP is
// a WebhookSender's (webhook_sender.h), on threads of its own, so a down or slow endpoint never
// holds up vrmd's event loop.
//
// Delivery is at least once per (event, webhook), each POST carrying a stable event id that a
// receiver deduplicates on. Deliveries are kept in memory only: those still pending when vrmd
// stops are lost (a restarted vrmd does not resend the events committed before it started),
// except the before-end events, which a restarted vrmd fires again when it is still before
// the end (track()), with the same id.
//
// Not thread-safe: one event loop owns it. The clock must outlive it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vrm/protocol/reservation.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"
#include "vrm/protocol/webhook_delivery.h"

namespace vrm::manager {

// What a webhook may be told of. A closed set: the names are the configuration's and the
// body's "kind".
enum class NotificationKind {
  kAdmitted,       // "admitted"
  kVacateStarted,  // "vacate-started": the latest safe start came, its hosts are being vacated
  kAtRisk,         // "at-risk": the vacate is projected to miss its deadline
  kReady,          // "ready": every clone runs; the body carries their handles
  kBeforeEnd,      // "before-end": the window ends in Webhook::beforeEndNs (handles included)
  kEnded,          // "ended": the window is over and its VMs are destroyed (state done)
  kFailed,         // "failed", with the reason
  kCancelled,      // "cancelled"
};
const char* notificationKindName(NotificationKind kind);
std::optional<NotificationKind> notificationKindFromName(std::string_view name);

// An http:// or https:// URL, split for the HTTP client.
struct WebhookUrl {
  bool https = false;
  std::string host;  // a name, an IPv4 address, or an IPv6 address without its brackets
  std::uint16_t port = 0;
  std::string target;  // path and query, "/" at least
  std::string text;    // the URL as configured
  // The URL without its query string: what `vrmctl show` prints (a query may carry a token).
  std::string shown() const;
};
// invalid-argument, saying why, unless `url` is http://HOST[:PORT][/PATH] or https://...
// (no user info, a port in 1..65535).
Result<WebhookUrl> parseWebhookUrl(const std::string& url);

// One configured webhook. Today a webhook is an owner's; a project's would add a `project`
// subject here (and a "project NAME ..." line in the file), matched the same way.
struct Webhook {
  std::string owner;
  WebhookUrl url;
  std::string secret;                        // the HMAC-SHA256 key of the X-Vrm-Signature header
  std::set<NotificationKind> kinds;          // what it is told of
  TimeNs beforeEndNs = 60 * 60 * kNsPerSec;  // kBeforeEnd: how long before the end. Default 60 min
};

// The webhooks file (vrmd --webhooks FILE), one webhook a line, '#' starts a comment:
//   owner NAME URL SECRET EVENTS
// EVENTS is "all" or a comma-separated list of kinds, where before-end may say how long before
// the end: "admitted,ready,before-end=30m,ended,failed" (default 60m). Errors are
// invalid-argument naming `source`, the line and the field ("webhooks:3: url 'ftp://h/' is not
// http:// or https://").
Result<std::vector<Webhook>> parseWebhooks(const std::string& text, const std::string& source);
// Reads and parses the file at `path` (invalid-argument also when it cannot be read).
Result<std::vector<Webhook>> loadWebhooks(const std::string& path);

// "sha256=" and the lower-case hex HMAC-SHA256 of `body` keyed by `secret`: the X-Vrm-Signature
// header a receiver checks (README: Notifications shows how).
std::string webhookSignature(const std::string& secret, std::string_view body);

// When failed deliveries are tried again: the n-th retry waits min(firstRetryNs x 2^(n-1),
// maxRetryNs) after the failed attempt; a delivery still failing giveUpAfterNs after its event
// is given up (DeliveryState::kGaveUp, shown by vrmctl show). Times are vrmd's clock.
struct RetryPolicy {
  TimeNs firstRetryNs = 5 * kNsPerSec;           // default 5 s
  TimeNs maxRetryNs = 10 * 60 * kNsPerSec;       // default 10 min
  TimeNs giveUpAfterNs = 24 * 3600 * kNsPerSec;  // default 24 h
  // Delivered and given-up deliveries are forgotten this long after they settled. Default 24 h.
  TimeNs keepSettledNs = 24 * 3600 * kNsPerSec;
};
// The wait before retry number `retry` (1 = the first retry).
TimeNs retryDelayNs(const RetryPolicy& policy, std::uint32_t retry);

// One POST to make. The sender adds nothing: the headers are all here.
struct WebhookPost {
  std::uint64_t attemptId = 0;  // echoed in its outcome
  WebhookUrl url;
  std::string body;  // JSON
  std::vector<std::pair<std::string, std::string>> headers;
};
struct WebhookPostOutcome {
  std::uint64_t attemptId = 0;
  bool delivered = false;  // the endpoint answered 2xx
  std::string error;       // otherwise why: "HTTP 500", "connection refused", "timed out"
};

class Notifier {
 public:
  Notifier(const Clock& clock, std::vector<Webhook> webhooks, RetryPolicy retry = {});

  // A committed event with the reservation as it stood after it (in commit order). Queues a
  // delivery to every webhook of the owner that wants its kind; other events (requested,
  // notes, ...) are ignored. Also follows the reservation's window for before-end.
  void observe(const ReservationEvent& event, const Reservation& r);
  // A reservation recovered at start: its before-end is followed (see the file comment); its
  // past events are not sent.
  void track(const Reservation& r);

  // The posts due at the clock's now: new deliveries, retries whose time came, before-end
  // events whose time came (each once per reservation and webhook). Each is in flight until
  // its onOutcome(); a delivery is never in flight twice.
  std::vector<WebhookPost> takeDue();
  // An attempt's outcome (unknown ids, e.g. of a delivery forgotten meanwhile, are ignored).
  void onOutcome(const WebhookPostOutcome& outcome);
  // The clock time at which takeDue() next has something (kTimeInfinity if nothing).
  TimeNs nextWakeNs() const;

  // The reservation's deliveries, oldest first.
  std::vector<WebhookDelivery> deliveriesOf(const std::string& reservationId) const;
  bool empty() const { return webhooks_.empty(); }

 private:
  struct Delivery {
    std::string reservationId;
    std::size_t webhook = 0;  // index into webhooks_
    std::string body;
    WebhookDelivery status;
    TimeNs createdNs = 0;
    TimeNs settledNs = 0;  // delivered or given up; 0 while not
    bool inFlight = false;
  };
  // A reservation whose before-end is still to come.
  struct Window {
    Reservation reservation;      // as last seen (the body's handles)
    std::set<std::size_t> fired;  // webhooks told already
  };

  void queue(NotificationKind kind, const std::string& eventId, const ReservationEvent& event,
             const Reservation& r);
  void follow(const Reservation& r);
  TimeNs beforeEndAt(const Reservation& r, const Webhook& w) const;
  void fireBeforeEnd(TimeNs now);
  void forgetSettled(TimeNs now);

  const Clock& clock_;
  std::vector<Webhook> webhooks_;
  RetryPolicy retry_;
  std::map<std::uint64_t, Delivery> deliveries_;  // by attempt id base (creation order)
  std::uint64_t nextId_ = 1;
  std::map<std::string, Window> windows_;  // reservation id -> window followed
};

}  // namespace vrm::manager
