// The web server's application: one request in, one response out. Decodes the target, says who
// asks (callers.h), and dispatches: /api/... by the route table to ApiHandlers, /metrics to the
// metrics page, /calendar/ to the calendar feeds, anything else to the static files (the
// single-page app for / and /reservations/{id}). Runs on the serving thread only.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "api_handlers.h"
#include "calendar_feeds.h"
#include "callers.h"
#include "metrics_page.h"
#include "responses.h"
#include "static_files.h"

namespace vrm::client {
class Client;
}

namespace vrm::web {

// One route of the JSON API: a method and a path pattern whose "{id}" segment is a reservation id.
struct ApiRoute {
  const char* method;   // "GET", "POST"
  const char* pattern;  // "/api/reservations/{id}/cancel"
  Response (ApiHandlers::*handler)(const ApiCall&);
};

// Every route of /api/, in the order their methods are listed in a 405's Allow header.
const std::vector<ApiRoute>& apiRoutes();

class Router {
 public:
  // Every reference must outlive the router. `extraMetrics` may be empty.
  Router(client::Client& vrmd, ApiHandlers& api, CalendarFeeds& calendar, const StaticFiles& files,
         const TokenTable& tokens, bool authenticate, WebCounters& counters,
         std::function<std::string()> extraMetrics,
         std::function<std::string()> standbyLeaderUrl = {})
      : vrmd_(vrmd),
        api_(api),
        calendar_(calendar),
        files_(files),
        tokens_(tokens),
        authenticate_(authenticate),
        counters_(counters),
        extraMetrics_(std::move(extraMetrics)),
        standbyLeaderUrl_(std::move(standbyLeaderUrl)) {}

  // The answer to `req` (a standby's, responses.h: standbyAnswer, with `standbyLeaderUrl`). Never
  // throws: a BadRequest from any handler is a 400, any other exception a 500 (logged). The caller
  // sets keep-alive and the payload's length.
  Response handle(const Request& req);

 private:
  Response dispatch(const Request& req);
  Response api(const Request& req, const std::vector<std::string>& parts, const Query& query);
  Response metrics();

  client::Client& vrmd_;
  ApiHandlers& api_;
  CalendarFeeds& calendar_;
  const StaticFiles& files_;
  const TokenTable& tokens_;
  bool authenticate_;
  WebCounters& counters_;
  std::function<std::string()> extraMetrics_;
  std::function<std::string()> standbyLeaderUrl_;
};

}  // namespace vrm::web
