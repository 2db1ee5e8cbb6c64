#include "vrm/manager/notifier.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vrm/protocol/units.h"

namespace vrm::manager {

namespace {

constexpr std::pair<NotificationKind, const char*> kKindNames[] = {
    {NotificationKind::kAdmitted, "admitted"},
    {NotificationKind::kVacateStarted, "vacate-started"},
    {NotificationKind::kAtRisk, "at-risk"},
    {NotificationKind::kReady, "ready"},
    {NotificationKind::kBeforeEnd, "before-end"},
    {NotificationKind::kEnded, "ended"},
    {NotificationKind::kFailed, "failed"},
    {NotificationKind::kCancelled, "cancelled"},
};

// The manager marks at-risk with a note whose text starts so (manager.h, dangerRatio); the
// event carries no kind of its own, so this prefix is the one place that reads event text.
// (A kind on ReservationEvent would be the better contract; manager.cc is being rewritten.)
constexpr std::string_view kAtRiskPrefix = "at-risk:";

// What kind of notification `event` is, if any: a transition into one of the states owners are
// told of, or the at-risk note. A transition is an event whose state differs from the one before
// it in the reservation's log; `index` is its position there.
std::optional<NotificationKind> classify(const ReservationEvent& event, const Reservation& r,
                                         std::size_t index) {
  const bool transition = index == 0 || r.events[index - 1].state != event.state;
  if (transition) {
    switch (event.state) {
      case ReservationState::kAdmitted:
        return NotificationKind::kAdmitted;
      case ReservationState::kVacating:
        return NotificationKind::kVacateStarted;
      case ReservationState::kReady:
        return NotificationKind::kReady;
      case ReservationState::kDone:
        return NotificationKind::kEnded;
      case ReservationState::kFailed:
        return NotificationKind::kFailed;
      case ReservationState::kCancelled:
        return NotificationKind::kCancelled;
      default:
        break;
    }
  }
  if (std::string_view(event.message).substr(0, kAtRiskPrefix.size()) == kAtRiskPrefix) {
    return NotificationKind::kAtRisk;
  }
  return std::nullopt;
}

// The event's position in r's log: the events of one save are at its end, so search from there.
std::optional<std::size_t> indexOf(const ReservationEvent& event, const Reservation& r) {
  for (std::size_t i = r.events.size(); i-- > 0;) {
    const auto& e = r.events[i];
    if (e.timeNs == event.timeNs && e.state == event.state && e.message == event.message) return i;
  }
  return std::nullopt;
}

bool withHandles(NotificationKind kind) {
  return kind == NotificationKind::kReady || kind == NotificationKind::kBeforeEnd;
}

std::string bodyOf(NotificationKind kind, const std::string& eventId, const ReservationEvent& event,
                   const Reservation& r, TimeNs beforeEndNs) {
  nlohmann::json j;
  j["id"] = eventId;
  j["kind"] = notificationKindName(kind);
  j["reservation"] = r.id;
  j["owner"] = r.request.owner;
  if (!r.request.label.empty()) j["label"] = r.request.label;
  j["timeNs"] = event.timeNs;
  j["time"] = formatTime(event.timeNs);
  j["state"] = stateName(r.state);
  j["message"] = event.message;
  j["startNs"] = r.request.startNs;
  j["endNs"] = r.request.endNs;
  j["hosts"] = r.hosts;
  if (kind == NotificationKind::kBeforeEnd) j["secondsBeforeEnd"] = beforeEndNs / kNsPerSec;
  if (kind == NotificationKind::kFailed || kind == NotificationKind::kCancelled) {
    j["reason"] = r.reason;
  }
  if (withHandles(kind)) {
    nlohmann::json handles = nlohmann::json::array();
    for (const auto& c : r.clones) {
      if (!c.hasHandle()) continue;
      nlohmann::json h{{"vm", c.vmId}, {"host", c.host}, {"address", c.address}};
      if (c.port) h["port"] = c.port;
      if (!c.account.empty()) h["account"] = c.account;
      if (const std::string ssh = c.sshCommand(); !ssh.empty()) h["ssh"] = ssh;
      handles.push_back(std::move(h));
    }
    j["handles"] = std::move(handles);
  }
  return j.dump();
}

bool follows(const Reservation& r) {
  switch (r.state) {
    case ReservationState::kAdmitted:
    case ReservationState::kVacating:
    case ReservationState::kPreparing:
    case ReservationState::kReady:
    case ReservationState::kActive:
      return true;
    default:
      return false;
  }
}

std::vector<std::string> fieldsOf(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string f; in >> f;) out.push_back(f);
  return out;
}

}  // namespace

const char* notificationKindName(NotificationKind kind) {
  for (const auto& [k, name] : kKindNames) {
    if (k == kind) return name;
  }
  return "?";
}

std::optional<NotificationKind> notificationKindFromName(std::string_view name) {
  for (const auto& [k, n] : kKindNames) {
    if (name == n) return k;
  }
  return std::nullopt;
}

std::string WebhookUrl::shown() const { return text.substr(0, text.find('?')); }

Result<WebhookUrl> parseWebhookUrl(const std::string& url) {
  WebhookUrl out;
  out.text = url;
  std::string_view rest = url;
  if (rest.rfind("https://", 0) == 0) {
    out.https = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    return Status::invalid("'" + url + "' is not http:// or https://");
  }
  const std::size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (out.target[0] == '?') out.target = "/" + out.target;
  if (authority.find('@') != std::string_view::npos) {
    return Status::invalid("'" + url + "': user info in a webhook URL is not supported");
  }
  std::string_view portText;
  if (!authority.empty() && authority[0] == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return Status::invalid("'" + url + "': unclosed '['");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Status::invalid("'" + url + "': junk after the address");
      portText = after.substr(1);
    }
  } else {
    const std::size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) portText = authority.substr(colon + 1);
  }
  if (out.host.empty()) return Status::invalid("'" + url + "' names no host");
  out.port = out.https ? 443 : 80;
  if (!portText.empty() || authority.back() == ':') {
    unsigned port = 0;
    bool digits = !portText.empty() && portText.size() <= 5;
    for (char c : portText) {
      if (c < '0' || c > '9') digits = false;
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (!digits || port == 0 || port > 65535) {
      return Status::invalid("'" + url + "': the port must be 1..65535");
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  return out;
}

Result<std::vector<Webhook>> parseWebhooks(const std::string& text, const std::string& source) {
  std::vector<Webhook> out;
  std::istringstream in(text);
  int lineNo = 0;
  for (std::string line; std::getline(in, line);) {
    ++lineNo;
    line = line.substr(0, line.find('#'));
    const auto f = fieldsOf(line);
    if (f.empty()) continue;
    const std::string where = source + ":" + std::to_string(lineNo) + ": ";
    if (f[0] != "owner") {
      return Status::invalid(where + "a webhook line starts with 'owner', not '" + f[0] + "'");
    }
    if (f.size() != 5) {
      return Status::invalid(where + "expected 'owner NAME URL SECRET EVENTS', got " +
                             std::to_string(f.size()) + " fields");
    }
    Webhook w;
    w.owner = f[1];
    auto url = parseWebhookUrl(f[2]);
    if (!url) return Status::invalid(where + "url " + url.status().message());
    w.url = *url;
    w.secret = f[3];
    std::istringstream events(f[4]);
    for (std::string name; std::getline(events, name, ',');) {
      if (name == "all") {
        for (const auto& [k, n] : kKindNames) w.kinds.insert(k);
        continue;
      }
      const std::size_t eq = name.find('=');
      const std::string kindName = name.substr(0, eq);
      auto kind = notificationKindFromName(kindName);
      if (!kind) {
        std::string known;
        for (const auto& [k, n] : kKindNames) known += std::string(known.empty() ? "" : ", ") + n;
        return Status::invalid(where + "events: unknown event '" + kindName + "' (known: " + known +
                               ", or all)");
      }
      if (eq != std::string::npos) {
        if (*kind != NotificationKind::kBeforeEnd) {
          return Status::invalid(where + "events: only before-end takes a duration");
        }
        auto ns = parseDurationNs(name.substr(eq + 1));
        if (!ns || *ns <= 0) {
          return Status::invalid(where + "events: before-end=" + name.substr(eq + 1) +
                                 " is not a positive duration (e.g. 30m)");
        }
        w.beforeEndNs = *ns;
      }
      w.kinds.insert(*kind);
    }
    if (w.kinds.empty()) return Status::invalid(where + "events: none named");
    out.push_back(std::move(w));
  }
  return out;
}

Result<std::vector<Webhook>> loadWebhooks(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::invalid("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parseWebhooks(text.str(), path);
}

std::string webhookSignature(const std::string& secret, std::string_view body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &size);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

TimeNs retryDelayNs(const RetryPolicy& policy, std::uint32_t retry) {
  TimeNs delay = policy.firstRetryNs;
  for (std::uint32_t i = 1; i < retry && delay < policy.maxRetryNs; ++i) delay *= 2;
  return std::min(delay, policy.maxRetryNs);
}

Notifier::Notifier(const Clock& clock, std::vector<Webhook> webhooks, RetryPolicy retry)
    : clock_(clock), webhooks_(std::move(webhooks)), retry_(retry) {}

void Notifier::observe(const ReservationEvent& event, const Reservation& r) {
  if (webhooks_.empty()) return;
  follow(r);
  const auto index = indexOf(event, r);
  if (!index) return;  // not in its own log: nothing to say what it is
  const auto kind = classify(event, r, *index);
  if (!kind) return;
  queue(*kind, r.id + ".e" + std::to_string(*index), event, r);
}

void Notifier::track(const Reservation& r) {
  if (!webhooks_.empty()) follow(r);
}

void Notifier::follow(const Reservation& r) {
  if (!follows(r)) {
    windows_.erase(r.id);
    return;
  }
  bool wanted = false;
  for (const auto& w : webhooks_) {
    wanted |= w.owner == r.request.owner && w.kinds.count(NotificationKind::kBeforeEnd);
  }
  if (wanted) windows_[r.id].reservation = r;
}

void Notifier::queue(NotificationKind kind, const std::string& eventId,
                     const ReservationEvent& event, const Reservation& r) {
  const TimeNs now = clock_.now();
  for (std::size_t i = 0; i < webhooks_.size(); ++i) {
    const Webhook& w = webhooks_[i];
    if (w.owner != r.request.owner || !w.kinds.count(kind)) continue;
    Delivery d;
    d.reservationId = r.id;
    d.webhook = i;
    d.body = bodyOf(kind, eventId, event, r, w.beforeEndNs);
    d.status.url = w.url.shown();
    d.status.eventId = eventId;
    d.status.kind = notificationKindName(kind);
    d.status.nextAttemptNs = now;
    d.createdNs = now;
    deliveries_.emplace(nextId_++, std::move(d));
  }
}

// The window's end less the webhook's lead, but not before the window starts (a window shorter
// than the lead is told at its start).
TimeNs Notifier::beforeEndAt(const Reservation& r, const Webhook& w) const {
  return std::max(r.request.endNs - w.beforeEndNs, r.request.startNs);
}

void Notifier::fireBeforeEnd(TimeNs now) {
  for (auto it = windows_.begin(); it != windows_.end();) {
    // Over (vrmd was down meanwhile, or its end came first): no longer "before" it.
    it = now >= it->second.reservation.request.endNs ? windows_.erase(it) : std::next(it);
  }
  for (auto& [id, window] : windows_) {
    const Reservation& r = window.reservation;
    for (std::size_t i = 0; i < webhooks_.size(); ++i) {
      const Webhook& w = webhooks_[i];
      if (w.owner != r.request.owner || !w.kinds.count(NotificationKind::kBeforeEnd)) continue;
      if (window.fired.count(i) || now < beforeEndAt(r, w)) continue;
      window.fired.insert(i);
      const ReservationEvent event{
          beforeEndAt(r, w), r.state,
          "the window ends in " + std::to_string(w.beforeEndNs / (60 * kNsPerSec)) + " min"};
      const std::string eventId = r.id + ".before-end";
      Delivery d;
      d.reservationId = r.id;
      d.webhook = i;
      d.body = bodyOf(NotificationKind::kBeforeEnd, eventId, event, r, w.beforeEndNs);
      d.status.url = w.url.shown();
      d.status.eventId = eventId;
      d.status.kind = notificationKindName(NotificationKind::kBeforeEnd);
      d.status.nextAttemptNs = now;
      d.createdNs = now;
      deliveries_.emplace(nextId_++, std::move(d));
    }
  }
}

void Notifier::forgetSettled(TimeNs now) {
  for (auto it = deliveries_.begin(); it != deliveries_.end();) {
    const Delivery& d = it->second;
    const bool old = d.settledNs && now - d.settledNs >= retry_.keepSettledNs;
    it = old ? deliveries_.erase(it) : std::next(it);
  }
}

std::vector<WebhookPost> Notifier::takeDue() {
  const TimeNs now = clock_.now();
  fireBeforeEnd(now);
  forgetSettled(now);
  std::vector<WebhookPost> out;
  for (auto& [id, d] : deliveries_) {
    const bool waiting =
        d.status.state == DeliveryState::kPending || d.status.state == DeliveryState::kFailing;
    if (!waiting || d.inFlight || d.status.nextAttemptNs > now) continue;
    const Webhook& w = webhooks_[d.webhook];
    d.inFlight = true;
    WebhookPost post;
    post.attemptId = id;
    post.url = w.url;
    post.body = d.body;
    post.headers = {{"Content-Type", "application/json"},
                    {"User-Agent", "vrmd"},
                    {"X-Vrm-Event", d.status.kind},
                    {"X-Vrm-Delivery", d.status.eventId},
                    {"X-Vrm-Signature", webhookSignature(w.secret, d.body)}};
    out.push_back(std::move(post));
  }
  return out;
}

void Notifier::onOutcome(const WebhookPostOutcome& outcome) {
  auto it = deliveries_.find(outcome.attemptId);
  if (it == deliveries_.end() || !it->second.inFlight) return;
  Delivery& d = it->second;
  const TimeNs now = clock_.now();
  d.inFlight = false;
  d.status.attempts += 1;
  d.status.lastAttemptNs = now;
  if (outcome.delivered) {
    d.status.state = DeliveryState::kDelivered;
    d.status.nextAttemptNs = 0;
    d.settledNs = now;
    return;
  }
  d.status.lastError = outcome.error;
  const TimeNs next = now + retryDelayNs(retry_, d.status.attempts);
  if (next - d.createdNs > retry_.giveUpAfterNs) {
    d.status.state = DeliveryState::kGaveUp;
    d.status.nextAttemptNs = 0;
    d.settledNs = now;
    spdlog::warn("webhook {}: gave up {} of {} after {} attempts: {}", d.status.url, d.status.kind,
                 d.reservationId, d.status.attempts, outcome.error);
    return;
  }
  d.status.state = DeliveryState::kFailing;
  d.status.nextAttemptNs = next;
  spdlog::info("webhook {}: {} of {} failed (attempt {}): {}; next try at {}", d.status.url,
               d.status.kind, d.reservationId, d.status.attempts, outcome.error, formatTime(next));
}

TimeNs Notifier::nextWakeNs() const {
  TimeNs wake = kTimeInfinity;
  for (const auto& [id, d] : deliveries_) {
    const bool waiting =
        d.status.state == DeliveryState::kPending || d.status.state == DeliveryState::kFailing;
    if (waiting && !d.inFlight) wake = std::min(wake, d.status.nextAttemptNs);
  }
  for (const auto& [id, window] : windows_) {
    const Reservation& r = window.reservation;
    for (std::size_t i = 0; i < webhooks_.size(); ++i) {
      const Webhook& w = webhooks_[i];
      if (w.owner != r.request.owner || !w.kinds.count(NotificationKind::kBeforeEnd)) continue;
      const TimeNs at = beforeEndAt(r, w);
      if (!window.fired.count(i) && at < r.request.endNs) wake = std::min(wake, at);
    }
  }
  return wake;
}

std::vector<WebhookDelivery> Notifier::deliveriesOf(const std::string& reservationId) const {
  std::vector<WebhookDelivery> out;
  for (const auto& [id, d] : deliveries_) {
    if (d.reservationId == reservationId) out.push_back(d.status);
  }
  return out;
}

}  // namespace vrm::manager
