#include "router.h"

#include <spdlog/spdlog.h>

#include "vrm/client/client.h"

namespace vrm::web {

namespace http = boost::beast::http;

const std::vector<ApiRoute>& apiRoutes() {
  static const std::vector<ApiRoute> kRoutes = {
      {"GET", "/api/openapi.json", &ApiHandlers::openapi},
      {"GET", "/api/now", &ApiHandlers::now},
      {"GET", "/api/hosts", &ApiHandlers::hosts},
      {"GET", "/api/vms", &ApiHandlers::vms},
      {"GET", "/api/templates", &ApiHandlers::templates},
      {"GET", "/api/reservations", &ApiHandlers::listReservations},
      {"POST", "/api/reservations", &ApiHandlers::submit},
      {"GET", "/api/reservations/{id}", &ApiHandlers::show},
      {"POST", "/api/reservations/{id}/cancel", &ApiHandlers::cancel},
      {"GET", "/api/calendar-link", &ApiHandlers::calendarLink},
  };
  return kRoutes;
}

namespace {

// Whether `parts` is the path `pattern`; `id` gets its {id} segment.
bool matches(const char* pattern, const std::vector<std::string>& parts, std::string& id) {
  const auto segments = splitPath(pattern);
  if (segments.size() != parts.size()) return false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (segments[i] == "{id}") {
      id = parts[i];
    } else if (segments[i] != parts[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

Response Router::handle(const Request& req) {
  try {
    if (standbyLeaderUrl_) return standbyAnswer(req, standbyLeaderUrl_());
    return dispatch(req);
  } catch (const BadRequest& e) {
    return errorReply(400, "invalid-argument", e.what());
  } catch (const std::exception& e) {
    // The path only: a query may hold a calendar feed's token.
    const std::string_view target(req.target().data(), req.target().size());
    spdlog::warn("web: {} {}: {}", std::string(req.method_string()),
                 std::string(target.substr(0, target.find('?'))), e.what());
    return errorReply(500, "internal", e.what());
  }
}

Response Router::dispatch(const Request& req) {
  std::string_view target(req.target().data(), req.target().size());
  if (target.empty() || target.front() != '/') {
    return errorReply(400, "invalid-argument", "the request target must be an absolute path");
  }
  auto qpos = target.find('?');
  std::string path = percentDecode(target.substr(0, qpos), false);
  auto query = qpos == std::string_view::npos ? Query() : parseQuery(target.substr(qpos + 1));
  if (path.find('\0') != std::string::npos) {
    return errorReply(400, "invalid-argument", "NUL in the path");
  }
  auto parts = splitPath(path);
  // Until api() reads a token, vrmd is asked as nobody in particular (see web_server.h).
  vrmd_.setRequester("");
  if (!parts.empty() && parts[0] == "api") return api(req, parts, query);
  if (!parts.empty() && parts[0] == "calendar") return calendar_.serve(req, parts, query);
  if (parts.size() == 1 && parts[0] == "metrics") {
    if (req.method() != http::verb::get) {
      return errorReply(405, "invalid-argument", "use GET");
    }
    return metrics();
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    return errorReply(405, "invalid-argument", "static files take GET or HEAD");
  }
  // The reservation page is the same single-page app.
  if (parts.empty() || (parts.size() == 2 && parts[0] == "reservations")) {
    return files_.serve("index.html");
  }
  return files_.serve(path);
}

Response Router::api(const Request& req, const std::vector<std::string>& parts,
                     const Query& query) {
  // Who asks: vrmd decides what that caller may do (and hides others' handles).
  Caller caller = identifyCaller(req, authenticate_, tokens_);
  if (caller.denial) return std::move(*caller.denial);
  vrmd_.setRequester(caller.name);

  const std::string method(req.method_string());
  std::string allowed;  // the methods of the routes with this path
  for (const auto& route : apiRoutes()) {
    std::string id;
    if (!matches(route.pattern, parts, id)) continue;
    if (!id.empty() && !isReservationId(id)) {
      return errorReply(400, "invalid-argument",
                        "a reservation id is letters, digits, '-', '_', '.'");
    }
    if (method == route.method) {
      return (api_.*route.handler)(ApiCall{req, query, std::move(id), caller.name});
    }
    allowed += (allowed.empty() ? "" : ", ") + std::string(route.method);
  }
  if (!allowed.empty()) return methodNotAllowed(allowed.c_str());
  return errorReply(404, "not-found", "no such API route (see GET /api/openapi.json)");
}

Response Router::metrics() {
  auto rs = vrmd_.list({});
  if (!rs) return errorReply(rs.status());
  auto hosts = vrmd_.hosts();
  if (!hosts) return errorReply(hosts.status());
  auto vms = vrmd_.vms();
  if (!vms) return errorReply(vms.status());
  return reply(200,
               metricsText(*rs, *hosts, vms->size(), counters_,
                           extraMetrics_ ? extraMetrics_() : std::string()),
               "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace vrm::web
