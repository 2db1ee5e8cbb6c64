// The calendar feeds: every reservation of an owner, or on a host, as an iCalendar object
// (icalendar.h) that calendar apps subscribe to, and the API route that gives a feed's link.
//
//   GET /calendar/OWNER.ics?token=T          the owner's reservations
//   GET /calendar/host/HOST.ics?token=T      the reservations holding HOST
//   GET /api/calendar-link[?owner=O|?host=H] {"url": ..., "path": ..., "kind", "name"}: the link
//                                            to subscribe to (bearer token needed)
// A feed lists what ends after now minus `history` (default 90 days), text/calendar.
//
// Why a token of its own. A calendar app subscribes to a URL and cannot send an Authorization
// header, so the token travels in the query, and the URL is copied into calendar settings,
// synced to other devices and written to proxies' logs. A bearer token there would let whoever
// sees the URL book and cancel. A feed token is instead
//   hex(first 16 bytes of HMAC-SHA256(K, kind "\0" name "\0" H))
//   K = HMAC-SHA256(secret, "vrm calendar feed key v1")
// with `secret` vrmd's CURVE secret key (used only to derive K, a key of its own), kind "owner"
// or "host", name the owner or host, H the stored hash ("sha256:...") of the bearer token of the
// web user the link was given to. So a feed token
//   * opens one feed, to read: only /calendar/ accepts it, and it is no bearer token (no hash of
//     it is listed), so it never books or cancels anything;
//   * cannot be computed from the authorized file (which holds no secret) nor guessed (128 bits);
//   * dies with the bearer token it was given for: removing or replacing that `web` line (and
//     SIGHUP) revokes every feed link of that token, with no state for feeds kept anywhere;
//   * stays the same across restarts (same secret, same hashes), so subscriptions keep working.
// We chose this over looking the query token up in the bearer-token table (the other way that
// needs no new state) because that puts a token that can write into every calendar URL.
//
// Who gets a link: an owner's feed is given to that owner's tokens only; a host's to any web
// user's (every reader sees every host's reservations, without handles). A feed is read from
// vrmd as the web user its token was given to, so vrmd decides what it shows, as for any client.
// A feed request without a token is 401, with a token that does not open that feed 403, and the
// answer is the same whether or not the owner or host exists. Without authentication (vrmd
// --insecure) feeds and links need no token, like every other route.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "api_handlers.h"
#include "callers.h"
#include "http_text.h"
#include "responses.h"
#include "vrm/protocol/time.h"

namespace vrm::client {
class Client;
}

namespace vrm::web {

enum class FeedKind { kOwner, kHost };

// The feeds' paths as the OpenAPI document writes them: "/calendar/{owner}.ics",
// "/calendar/host/{host}.ics".
const std::vector<const char*>& calendarFeedPatterns();

struct CalendarFeedOptions {
  bool authenticate = false;  // tokens needed (see above); off = vrmd --insecure
  // The secret feed tokens are derived from (vrmd's CURVE secret key). With authentication and
  // no secret, feeds are off (404).
  std::string secret;
  std::string uidDomain;  // the UIDs' domain ("r7@vrm.lab.example"); never empty
  bool tls = false;       // links and event URLs are https://
  std::string version;    // in PRODID
  TimeNs historyNs = 90LL * 24 * 3600 * kNsPerSec;
};

class CalendarFeeds {
 public:
  // `vrmd` and `tokens` must outlive this. Runs on the serving thread only (like `vrmd`).
  CalendarFeeds(client::Client& vrmd, const TokenTable& tokens, CalendarFeedOptions options);

  // GET /calendar/...: `parts` are the path's segments, parts[0] == "calendar". 404 for a path
  // that is no feed, 405 for a method but GET.
  Response serve(const Request& req, const std::vector<std::string>& parts, const Query& query);
  // GET /api/calendar-link (the router's API table, through ApiHandlers).
  Response link(const ApiCall& call);

  // The feed token of feed `kind` `name` given for the bearer token of hash `bearerHash`; ""
  // without a secret.
  std::string tokenFor(FeedKind kind, const std::string& name, const std::string& bearerHash) const;

 private:
  // The web user whose token `token` opens the feed, or nullopt.
  std::optional<std::string> openedBy(FeedKind kind, const std::string& name,
                                      const std::string& token) const;

  client::Client& vrmd_;
  const TokenTable& tokens_;
  CalendarFeedOptions options_;
  std::string key_;  // K above; empty without a secret
};

// The machine's host name, for CalendarFeedOptions::uidDomain when none is configured
// ("vrm.invalid" if it has none).
std::string defaultUidDomain();

}  // namespace vrm::web
