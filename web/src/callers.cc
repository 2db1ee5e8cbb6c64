#include "callers.h"

#include "vrm/protocol/token.h"

namespace vrm::web {

namespace http = boost::beast::http;

void TokenTable::replace(std::map<std::string, std::string> hashes) {
  std::lock_guard<std::mutex> lock(mutex_);
  hashes_ = std::move(hashes);
}

std::optional<std::string> TokenTable::nameOf(const std::string& token) const {
  const std::string hash = protocol::hashBearerToken(token);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = hashes_.find(hash);
  if (hash.empty() || it == hashes_.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, std::string> TokenTable::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return hashes_;
}

Caller identifyCaller(const Request& req, bool authenticate, const TokenTable& tokens) {
  Caller caller;
  if (!authenticate) return caller;
  const auto header = req[http::field::authorization];
  if (!header.empty()) {
    const std::string_view value(header.data(), header.size());
    if (value.substr(0, 7) != "Bearer ") {
      caller.denial = unauthenticated("use 'Authorization: Bearer <token>'");
      return caller;
    }
    auto name = tokens.nameOf(std::string(value.substr(7)));
    if (!name) {
      caller.denial = unauthenticated("unknown token");
      return caller;
    }
    caller.name = *name;
  }
  if (req.method() == http::verb::post && caller.name.empty()) {
    caller.denial =
        unauthenticated("booking and cancelling need a token (Authorization: Bearer ...)");
  }
  return caller;
}

}  // namespace vrm::web
