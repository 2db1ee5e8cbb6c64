// Who sends an API request: the web user of its bearer token, anonymous, or refused (401).
// The web server never decides what a caller may do: it tells vrmd who asks and vrmd decides
// (see vrm/web/web_server.h).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "responses.h"

namespace vrm::web {

// Hashes of web users' bearer tokens ("sha256:<hex>", vrm/protocol/token.h) -> user name. The
// tokens themselves are never kept. Thread-safe: vrmd's main thread replaces the table (SIGHUP)
// while the serving thread reads it.
class TokenTable {
 public:
  explicit TokenTable(std::map<std::string, std::string> hashes) : hashes_(std::move(hashes)) {}

  void replace(std::map<std::string, std::string> hashes);
  // The web user `token` belongs to, nullopt when unknown. Only hashes are compared, so the time
  // taken tells nothing about the token.
  std::optional<std::string> nameOf(const std::string& token) const;
  // A copy of the table (hash -> name), for the calendar feeds' tokens (calendar_feeds.h).
  std::map<std::string, std::string> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string> hashes_;
};

// The caller of an API request: `name` is the web user ("" = anonymous with authentication, an
// operator without), or `denial` is the 401 to answer instead.
struct Caller {
  std::string name;
  std::optional<Response> denial;
};

// Without `authenticate` every request is "" (vrmd --insecure trusts it as an operator). With it:
// no Authorization header is anonymous, which may read but not POST; "Bearer <known token>" is
// that token's user; anything else is denied.
Caller identifyCaller(const Request& req, bool authenticate, const TokenTable& tokens);

}  // namespace vrm::web
