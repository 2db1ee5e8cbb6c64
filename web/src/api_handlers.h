// The JSON API's handlers: one method per route of /api/ (the router matches paths and methods
// and says who asks). Each asks vrmd over the client and answers with what `vrmctl --json`
// prints (vrm/client/render.h). Runs on the serving thread only, like the client it uses.
#pragma once

#include <string>
#include <vector>

#include "http_text.h"
#include "responses.h"
#include "vrm/protocol/cluster.h"

namespace vrm::client {
class Client;
}

namespace vrm::web {

class CalendarFeeds;

// What a handler gets: the request, its query, the {id} of the path (if the route has one) and
// the caller's web user name ("" = anonymous or, without authentication, an operator).
struct ApiCall {
  const Request& request;
  const Query& query;
  std::string id;
  std::string caller;
};

class ApiHandlers {
 public:
  // `vrmd` must outlive this. `defaultOwner` owns reservations booked without an "owner" field by
  // a caller with no name. (Submits are timed and counted by vrmd itself, whichever way they
  // come: vrm/manager/admission_metrics.h.)
  // `feeds` (calendar_feeds.h) must outlive this too.
  ApiHandlers(client::Client& vrmd, CalendarFeeds& feeds, std::vector<TemplateSpec> templates,
              std::string defaultOwner)
      : vrmd_(vrmd),
        feeds_(feeds),
        templates_(std::move(templates)),
        defaultOwner_(std::move(defaultOwner)) {}

  // Each throws BadRequest for a request the client got wrong; vrmd's failures are answered with
  // httpStatusOf() their status.
  Response openapi(const ApiCall& call);           // GET /api/openapi.json
  Response now(const ApiCall& call);               // GET /api/now
  Response hosts(const ApiCall& call);             // GET /api/hosts
  Response vms(const ApiCall& call);               // GET /api/vms
  Response templates(const ApiCall& call);         // GET /api/templates
  Response listReservations(const ApiCall& call);  // GET /api/reservations[?owner&state&from&to]
  Response submit(const ApiCall& call);            // POST /api/reservations (request_parser.h)
  Response show(const ApiCall& call);              // GET /api/reservations/{id}
  Response cancel(const ApiCall& call);            // POST /api/reservations/{id}/cancel
  Response calendarLink(const ApiCall& call);      // GET /api/calendar-link (calendar_feeds.h)

 private:
  client::Client& vrmd_;
  CalendarFeeds& feeds_;
  std::vector<TemplateSpec> templates_;
  std::string defaultOwner_;
};

}  // namespace vrm::web
