// The web server's HTTP answers: every response carries the same headers (Server, no-store
// caching, nosniff), and every error is {"error": "<status code name>", "message": "<why>"}.
#pragma once

#include <boost/beast/http.hpp>
#include <string>

#include "vrm/protocol/status.h"

namespace vrm::web {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// The HTTP status a vrmd status maps to: rejected 409, invalid-argument 400, not-found 404,
// unauthorized 403, unavailable 503, internal 500.
int httpStatusOf(StatusCode code);

// A `code` answer with `body` of content type `type` (JSON by default).
Response reply(unsigned code, std::string body, const char* type = "application/json");
// An error answer: {"error": name, "message": message}.
Response errorReply(unsigned code, const std::string& name, const std::string& message);
// vrmd's failure as an answer: httpStatusOf() and the status code's name.
Response errorReply(const Status& status);
// 401 with "WWW-Authenticate: Bearer": no token where one is needed, or an unknown one.
Response unauthenticated(const std::string& message);
// 405 naming the methods the route takes, in the message and the Allow header.
Response methodNotAllowed(const char* allowed);
// A plain-HTTP request that reached the HTTPS port: 308 to the same host and target over https://
// (the method and body are kept on the retry), or 400 when its Host header is missing or is not
// a host name or address (a Location must not echo anything else).
Response httpsRedirect(const Request& req);
// The answer of a standby replica (web_server.h: standbyLeaderUrl): GET /metrics is the
// standby's own page (vrm_leader 0); any other request is 307 to `leaderUrl` ("http://h:p/")
// with the request's target (the method and body are kept on the retry), or 503 with
// Retry-After when no leader is known ("") or the target is not an absolute path (400).
Response standbyAnswer(const Request& req, const std::string& leaderUrl);

}  // namespace vrm::web
