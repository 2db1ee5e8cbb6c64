#include "calendar_feeds.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>

#include "http_text.h"
#include "icalendar.h"
#include "vrm/client/client.h"
#include "vrm/protocol/token.h"

namespace vrm::web {

namespace http = boost::beast::http;

namespace {

constexpr std::size_t kTokenBytes = 16;

std::string hmacSha256(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest,
            &size)) {
    return "";
  }
  return std::string(reinterpret_cast<const char*>(digest), size);
}

const char* kindName(FeedKind kind) { return kind == FeedKind::kOwner ? "owner" : "host"; }

// The Host header when it is a host name or address (optionally with a port), else "": it goes
// into links and URL properties, which must not carry anything else.
std::string usableHost(const Request& req) {
  const std::string host(req[http::field::host]);
  const bool usable = !host.empty() && host.size() <= 255 &&
                      host.find_first_not_of(
                          "abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == std::string::npos;
  return usable ? host : "";
}

// "alice.ics" -> "alice"; "" when the segment is no calendar file.
std::string feedName(const std::string& segment) {
  constexpr std::string_view kSuffix = ".ics";
  if (segment.size() <= kSuffix.size() ||
      segment.compare(segment.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return "";
  }
  return segment.substr(0, segment.size() - kSuffix.size());
}

}  // namespace

const std::vector<const char*>& calendarFeedPatterns() {
  static const std::vector<const char*> kPatterns = {"/calendar/{owner}.ics",
                                                     "/calendar/host/{host}.ics"};
  return kPatterns;
}

std::string defaultUidDomain() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "vrm.invalid";
  return name;
}

CalendarFeeds::CalendarFeeds(client::Client& vrmd, const TokenTable& tokens,
                             CalendarFeedOptions options)
    : vrmd_(vrmd), tokens_(tokens), options_(std::move(options)) {
  if (options_.uidDomain.empty()) options_.uidDomain = defaultUidDomain();
  if (!options_.secret.empty()) key_ = hmacSha256(options_.secret, "vrm calendar feed key v1");
}

std::string CalendarFeeds::tokenFor(FeedKind kind, const std::string& name,
                                    const std::string& bearerHash) const {
  if (key_.empty()) return "";
  std::string message = kindName(kind);
  message += '\0';
  message += name;
  message += '\0';
  message += bearerHash;
  const std::string mac = hmacSha256(key_, message);
  if (mac.size() < kTokenBytes) return "";
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (std::size_t i = 0; i < kTokenBytes; ++i) {
    const auto b = static_cast<unsigned char>(mac[i]);
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

std::optional<std::string> CalendarFeeds::openedBy(FeedKind kind, const std::string& name,
                                                   const std::string& token) const {
  if (key_.empty() || token.size() != 2 * kTokenBytes) return std::nullopt;
  std::optional<std::string> user;
  // Every candidate is compared in constant time, so the time taken says nothing of the token.
  for (const auto& [hash, webUser] : tokens_.snapshot()) {
    if (kind == FeedKind::kOwner && webUser != name) continue;
    const std::string expected = tokenFor(kind, name, hash);
    if (expected.size() == token.size() &&
        CRYPTO_memcmp(expected.data(), token.data(), token.size()) == 0) {
      user = webUser;
    }
  }
  return user;
}

Response CalendarFeeds::serve(const Request& req, const std::vector<std::string>& parts,
                              const Query& query) {
  FeedKind kind;
  std::string name;
  if (parts.size() == 2) {
    kind = FeedKind::kOwner;
    name = feedName(parts[1]);
  } else if (parts.size() == 3 && parts[1] == "host") {
    kind = FeedKind::kHost;
    name = feedName(parts[2]);
  }
  if (name.empty()) {
    return errorReply(404, "not-found",
                      "no such calendar (/calendar/OWNER.ics, /calendar/host/HOST.ics)");
  }
  if (req.method() != http::verb::get) return methodNotAllowed("GET");

  std::string requester;  // without authentication: an operator, as every route
  if (options_.authenticate) {
    auto token = query.find("token");
    if (token == query.end() || token->second.empty()) {
      return unauthenticated(
          "a calendar feed needs its link's token (?token=...; GET /api/calendar-link gives "
          "the link)");
    }
    auto user = openedBy(kind, name, token->second);
    // The same answer whether or not the owner or host exists.
    if (!user) return errorReply(403, "unauthorized", "this token does not open this calendar");
    requester = *user;
  }
  vrmd_.setRequester(requester);

  const std::string host = usableHost(req);
  if (host.empty()) throw BadRequest("a Host header (a host name or address) is needed");
  auto now = vrmd_.serverNow();
  if (!now) return errorReply(now.status());
  ListFilter filter;
  if (kind == FeedKind::kOwner) filter.owner = name;
  filter.fromNs = *now - options_.historyNs;
  auto listed = vrmd_.list(filter);
  if (!listed) return errorReply(listed.status());
  std::vector<Reservation> shown;
  for (auto& r : *listed) {
    if (kind == FeedKind::kHost && std::find(r.hosts.begin(), r.hosts.end(), name) == r.hosts.end())
      continue;
    shown.push_back(std::move(r));
  }
  ical::CalendarOptions co;
  co.name = std::string("vrm: ") + (kind == FeedKind::kHost ? "host " : "") + name;
  co.uidDomain = options_.uidDomain;
  co.pageBase = (options_.tls ? "https://" : "http://") + host + "/";
  co.nowNs = *now;
  co.version = options_.version;
  return reply(200, ical::calendar(shown, co), "text/calendar; charset=utf-8");
}

Response CalendarFeeds::link(const ApiCall& call) {
  auto owner = call.query.find("owner");
  auto hostParam = call.query.find("host");
  for (const auto& [key, value] : call.query) {
    if (key != "owner" && key != "host") {
      throw BadRequest("unknown query parameter '" + key + "' (owner, host)");
    }
  }
  if (owner != call.query.end() && hostParam != call.query.end()) {
    throw BadRequest("owner or host: one feed per link");
  }
  const FeedKind kind = hostParam != call.query.end() ? FeedKind::kHost : FeedKind::kOwner;
  std::string name = kind == FeedKind::kHost
                         ? hostParam->second
                         : (owner != call.query.end() ? owner->second : call.caller);
  std::string token;
  if (options_.authenticate) {
    if (call.caller.empty()) {
      return unauthenticated("a calendar link is given to a web user (Authorization: Bearer ...)");
    }
    if (key_.empty()) {
      return errorReply(404, "not-found",
                        "calendar feeds are off: the web server has no secret to sign links with");
    }
    if (kind == FeedKind::kOwner && name != call.caller) {
      return errorReply(403, "unauthorized",
                        "an owner's calendar link is given to that owner's token only");
    }
    const auto header = call.request[http::field::authorization];
    const std::string_view bearer(header.data(), header.size());
    token = tokenFor(kind, name, protocol::hashBearerToken(bearer.substr(7)));
  }
  if (name.empty()) throw BadRequest("owner or host: which calendar");
  if (kind == FeedKind::kHost) {
    auto hosts = vrmd_.hosts();
    if (!hosts) return errorReply(hosts.status());
    if (std::none_of(hosts->begin(), hosts->end(), [&](const auto& h) { return h.name == name; })) {
      return errorReply(404, "not-found", "no host '" + name + "'");
    }
  }
  const std::string host = usableHost(call.request);
  if (host.empty()) throw BadRequest("a Host header (a host name or address) is needed");
  std::string path = std::string("/calendar/") + (kind == FeedKind::kHost ? "host/" : "") +
                     percentEncode(name) + ".ics";
  if (!token.empty()) path += "?token=" + token;
  return reply(200, nlohmann::json{{"kind", kindName(kind)},
                                   {"name", name},
                                   {"path", path},
                                   {"url", (options_.tls ? "https://" : "http://") + host + path}}
                        .dump());
}

}  // namespace vrm::web
