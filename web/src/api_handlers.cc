#include "api_handlers.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "calendar_feeds.h"
#include "openapi_document.h"
#include "vrm/client/client.h"
#include "vrm/client/render.h"
#include "vrm/client/request_parser.h"
#include "vrm/client/time_spec.h"
#include "vrm/protocol/units.h"

namespace vrm::web {

using nlohmann::json;

Response ApiHandlers::openapi(const ApiCall&) { return reply(200, std::string(openApiDocument())); }

Response ApiHandlers::now(const ApiCall&) {
  auto now = vrmd_.serverNow();
  if (!now) return errorReply(now.status());
  return reply(200, json{{"now", formatTime(*now)}, {"now_ns", *now}}.dump());
}

Response ApiHandlers::hosts(const ApiCall&) {
  auto hosts = vrmd_.hosts();
  if (!hosts) return errorReply(hosts.status());
  return reply(200, client::hostsJson(*hosts, -1));
}

Response ApiHandlers::vms(const ApiCall&) {
  auto vms = vrmd_.vms();
  if (!vms) return errorReply(vms.status());
  return reply(200, client::vmsJson(*vms, -1));
}

Response ApiHandlers::templates(const ApiCall&) {
  json a = json::array();
  for (const auto& t : templates_) {
    a.push_back({{"name", t.name},
                 {"cpu_cores", t.cpuCores},
                 {"memory_bytes", t.memoryBytes},
                 {"clone_time_s", nsToSeconds(t.cloneTimeNs)},
                 {"vms_per_host", t.vmsPerHost}});
  }
  return reply(200, a.dump());
}

Response ApiHandlers::show(const ApiCall& call) {
  auto r = vrmd_.get(call.id);
  if (!r) return errorReply(r.status());
  return reply(200, client::reservationJson(*r, -1));
}

Response ApiHandlers::cancel(const ApiCall& call) {
  auto r = vrmd_.cancel(call.id);
  if (!r) return errorReply(r.status());
  return reply(200, client::reservationJson(*r, -1));
}

Response ApiHandlers::calendarLink(const ApiCall& call) { return feeds_.link(call); }

Response ApiHandlers::listReservations(const ApiCall& call) {
  ListFilter filter;
  TimeNs now = 0;
  auto timeParam = [&](const std::string& key, const std::string& text) {
    if (!now) {
      auto n = vrmd_.serverNow();
      if (!n) throw BadRequest("cannot read vrmd's clock: " + n.status().message());
      now = *n;
    }
    auto t = client::parseTimeSpec(text, now);
    if (!t) throw BadRequest(key + ": " + t.status().message());
    return *t;
  };
  for (const auto& [key, value] : call.query) {
    if (key == "owner") {
      filter.owner = value;
    } else if (key == "state") {
      std::string_view rest = value;
      while (!rest.empty()) {
        auto comma = rest.find(',');
        std::string name(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        auto s = stateFromName(name);
        if (!s) throw BadRequest("state: unknown state '" + name + "'");
        filter.states.push_back(*s);
      }
    } else if (key == "from") {
      filter.fromNs = timeParam(key, value);
    } else if (key == "to") {
      filter.toNs = timeParam(key, value);
    } else {
      throw BadRequest("unknown query parameter '" + key + "' (owner, state, from, to)");
    }
  }
  auto rs = vrmd_.list(filter);
  if (!rs) return errorReply(rs.status());
  return reply(200, client::reservationsJson(*rs, -1));
}

Response ApiHandlers::submit(const ApiCall& call) {
  // The same parser as vrmctl submit's (request_parser.h): a mistake is a 400 naming the field.
  auto draft = client::requestDraftFromJson(call.request.body());
  if (!draft) throw BadRequest(draft.error().message());
  // Relative times are relative to vrmd's clock, which may run faster than ours.
  auto now = vrmd_.serverNow();
  if (!now) return errorReply(now.status());
  auto parsed = client::parseRequest(*draft, *now);
  if (!parsed) throw BadRequest(parsed.error().message());
  ReservationRequest r = std::move(*parsed);
  if (r.owner.empty()) r.owner = call.caller.empty() ? defaultOwner_ : call.caller;

  auto decided = vrmd_.submit(r);
  if (!decided) return errorReply(decided.status());
  const bool rejected = decided->state == ReservationState::kRejected;
  return reply(rejected ? 422 : (r.dryRun ? 200 : 201), client::reservationJson(*decided, -1));
}

}  // namespace vrm::web
