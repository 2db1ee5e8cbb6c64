#include "responses.h"

#include <nlohmann/json.hpp>

namespace vrm::web {

namespace http = boost::beast::http;

int httpStatusOf(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kRejected:
      return 409;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kUnauthorized:
      return 403;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

Response reply(unsigned code, std::string body, const char* type) {
  Response res{static_cast<http::status>(code), 11};
  res.set(http::field::server, "vrmd");
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.body() = std::move(body);
  return res;
}

Response errorReply(unsigned code, const std::string& name, const std::string& message) {
  return reply(code, nlohmann::json{{"error", name}, {"message", message}}.dump());
}

Response errorReply(const Status& status) {
  return errorReply(httpStatusOf(status.code()), statusCodeName(status.code()), status.message());
}

Response unauthenticated(const std::string& message) {
  Response r = errorReply(401, "unauthorized", message);
  r.set(http::field::www_authenticate, "Bearer");
  return r;
}

Response methodNotAllowed(const char* allowed) {
  Response r = errorReply(405, "invalid-argument", std::string("use ") + allowed);
  r.set(http::field::allow, allowed);
  return r;
}

Response httpsRedirect(const Request& req) {
  const std::string host(req[http::field::host]);
  const bool usable = !host.empty() && host.size() <= 255 &&
                      host.find_first_not_of(
                          "abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == std::string::npos;
  const std::string target(req.target());
  if (!usable || target.empty() || target.front() != '/') {
    return errorReply(400, "invalid-argument", "this port speaks HTTPS only: use https://");
  }
  Response res = errorReply(308, "moved", "this port speaks HTTPS only: https://" + host + target);
  res.set(http::field::location, "https://" + host + target);
  return res;
}

Response standbyAnswer(const Request& req, const std::string& leaderUrl) {
  const std::string target(req.target());
  if (req.method() == http::verb::get && target == "/metrics") {
    return reply(200,
                 "# HELP vrm_leader 1 when this vrmd leads its store and serves, 0 on a standby\n"
                 "# TYPE vrm_leader gauge\nvrm_leader 0\n",
                 "text/plain; version=0.0.4; charset=utf-8");
  }
  if (target.empty() || target.front() != '/') {
    return errorReply(400, "invalid-argument", "the request target must be an absolute path");
  }
  if (leaderUrl.empty()) {
    Response res = errorReply(503, "unavailable",
                              "this vrmd does not lead and knows no leader (an election under "
                              "way, or etcd out of its reach): try again");
    res.set(http::field::retry_after, "1");
    return res;
  }
  std::string base = leaderUrl;
  while (!base.empty() && base.back() == '/') base.pop_back();
  Response res = errorReply(307, "moved", "this vrmd does not lead: the leader is at " + leaderUrl);
  res.set(http::field::location, base + target);
  return res;
}

}  // namespace vrm::web
