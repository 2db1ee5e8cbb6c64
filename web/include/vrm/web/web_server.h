// vrmd's web calendar: the static page (vrm/web/), a JSON API under /api/ and a Prometheus-style
// /metrics endpoint over HTTP/1.1 (Boost.Beast), served on a thread of its own.
//
// The web server never touches the Manager. It is a client of vrmd like vrmctl: it talks to the
// server's client ROUTER over an inproc:// endpoint (ServerOptions::extraClientEndpoints) with
// vrm::client::Client, so the event loop stays the only thread that owns the manager, and the
// JSON is what `vrmctl --json` prints (vrm/client/render.h).
//
// Routes
//   GET  /, /index.html, /app.js, ...       files under webRoot (GET and HEAD only)
//   GET  /api/now                           {"now": ISO, "now_ns": int}: vrmd's clock
//   GET  /api/hosts, /api/vms               as `vrmctl --json hosts` / `vms`
//   GET  /api/templates                     the cluster's VM templates
//   GET  /api/reservations[?owner=&state=&from=&to=]   as `vrmctl --json list`
//   GET  /api/reservations/{id}             as `vrmctl --json show ID`
//   POST /api/reservations                  JSON body (below): the admission decision
//   POST /api/reservations/{id}/cancel
//   GET  /api/calendar-link[?owner=|?host=]  the link of a calendar feed (token needed)
//   GET  /calendar/OWNER.ics?token=T        an owner's reservations as iCalendar (RFC 5545)
//   GET  /calendar/host/HOST.ics?token=T    a host's reservations as iCalendar
//   GET  /metrics                           text exposition format 0.0.4
//
// Standby (standbyLeaderUrl set: a vrmd replica on etcd that does not lead, README: High
// availability): every request is answered 307 to the leader's URL with the same target, and
// GET /metrics says `vrm_leader 0`; 503 with Retry-After while no leader is known. vrmd runs
// such a server until elected, then stops it and starts the serving one on the same port.
//
// POST /api/reservations body: {"hosts": N} or {"host_names": [...]} (dedicated) or {"vms": K}
// (shared); "start" (ISO 8601, "now" or "+30min", relative to vrmd's clock) or "start_ns";
// "duration" ("2h") or "end" / "end_ns"; "template"; optional "vms_per_host", "label", "owner"
// (default WebServerOptions::defaultOwner), "objective" ("makespan" | "degradation"),
// "dry_run". Answers: 201 with the reservation when admitted (200 for a dry run), 422 with the
// reservation (state "rejected", "reason", "earliest_feasible_start" when known) when rejected.
//
// Errors are {"error": "<status code name>", "message": "<why>"}: 400 invalid (malformed JSON,
// bad field), 401 no or unknown token, 403 unauthorized, 404 not found, 405 method not allowed, 409
// rejected (e.g. cancelling a finished reservation), 413 body too large, 503 vrmd unavailable, 500
// internal. Bad requests never stop the server: each connection fails on its own.
//
// Callers. With `authenticate` (vrmd runs with keys), a request may carry
// "Authorization: Bearer <token>" for a token whose hash is in `tokenHashes` (the authorized
// file's `web` lines);
// vrmd then serves it as that web user, with the role the file gives it: a user sees the
// handles of its own reservations only and may cancel only those. A request without a token is
// anonymous: it may read (no handles shown) but POSTs answer 401. An unknown token is 401.
// The web server never decides what a caller may do: it tells vrmd who asks (over inproc, the
// requester field) and vrmd's request handler decides, as for every client.
// Without `authenticate` (vrmd --insecure) every request acts as an operator, as vrmd trusts
// the requester field there: keep it on loopback.
//
// Calendar feeds (web/src/calendar_feeds.h says why and how): the token in a feed's query is
// not a bearer token but a read-only one for that feed alone, derived by HMAC from
// `calendarSecret` and the bearer token's hash it was given for; a missing one is 401, one that
// does not open that feed 403.
//
// HTTPS. Plain HTTP carries the tokens in clear text: keep it on loopback (the default). With
// `tlsCertFile` and `tlsKeyFile` the port speaks TLS 1.2 or 1.3, so the calendar may face the lab
// network: every answer carries Strict-Transport-Security, and a plain-HTTP request that reaches
// the port is answered 308 to the same host and target over https:// and its connection closed.
// The server sets no cookies (callers authenticate with bearer tokens).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vrm/protocol/cluster.h"
#include "vrm/protocol/status.h"

namespace zmq {
class context_t;
}

namespace vrm::web {

struct WebServerOptions {
  // Where to listen. Default 127.0.0.1 (loopback only); port 0 lets the OS choose.
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;
  // Directory of the static files (index.html, app.js, style.css). Required.
  std::string webRoot;
  // vrmd's client endpoint to use, normally an inproc:// endpoint the Server also binds.
  std::string vrmdEndpoint = "inproc://vrm-web";
  // Per call to vrmd; an expired call answers 503. Default 5 s.
  std::chrono::milliseconds vrmdTimeout{5000};
  // Largest request body accepted (413 beyond). Default 64 KiB.
  std::size_t maxBodyBytes = 64 * 1024;
  // Largest static file served. Default 4 MiB.
  std::size_t maxFileBytes = 4 * 1024 * 1024;
  // An idle or slow connection is closed after this long. Default 30 s.
  std::chrono::seconds idleTimeout{30};
  // Owner of reservations booked without an "owner" field when the caller has no name
  // (insecure mode). Default "web". With a token, the default owner is the token's name.
  std::string defaultOwner = "web";
  // Require bearer tokens for changes and pass callers on to vrmd (see above). Default off.
  bool authenticate = false;
  // Hash of a bearer token ("sha256:<hex>", vrm/protocol/token.h) -> web user name: the
  // authorized file's `web` entries. The tokens themselves are never kept.
  std::map<std::string, std::string> tokenHashes;
  // The cluster's templates, for /api/templates and the booking form. Default none.
  std::vector<TemplateSpec> templates;
  // More /metrics lines (text exposition format, complete with # HELP and # TYPE), e.g. the
  // calibrating planner's model errors. Called on the serving thread: it must be thread-safe.
  // Default none.
  std::function<std::string()> extraMetrics;
  // HTTPS: the certificate chain (leaf first) and its unencrypted private key, PEM files. Both or
  // neither (plain HTTP). Read at start() and again by reloadTls().
  std::string tlsCertFile;
  std::string tlsKeyFile;
  // Calendar feeds: the secret their tokens are derived from (vrmd passes its CURVE secret
  // key). With `authenticate` and no secret, feeds are off (404). Default none.
  std::string calendarSecret;
  // The domain of the feeds' event UIDs ("r7@DOMAIN"); keep it the same on every replica so a
  // calendar recognises its events. Default: the machine's host name.
  std::string calendarUidDomain;
  // Strict-Transport-Security's max-age over HTTPS. Default one year.
  std::chrono::seconds hstsMaxAge{365 * 24 * 3600};
  // Set: a standby (see above); it returns the leader's base URL ("http://h:p/", "" = none
  // known). Called on the serving thread: it must be thread-safe. Default unset: serve.
  std::function<std::string()> standbyLeaderUrl;
};

class WebServer {
 public:
  // `context` must be the one the Server binds its inproc endpoint on, and outlive this.
  WebServer(zmq::context_t& context, WebServerOptions options);
  // Stops the thread if it runs.
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // Listens and starts the serving thread. Errors: invalid-argument (bad address, missing web
  // root, a TLS certificate or key that cannot be read or do not match), unavailable (cannot
  // listen: address in use, ...).
  Status start();
  // Stops listening, closes every connection and joins the thread. Idempotent.
  void stop();

  // Replaces WebServerOptions::tokenHashes (vrmd's SIGHUP reload); thread-safe, takes effect
  // from the next request.
  void setTokenHashes(std::map<std::string, std::string> tokenHashes);
  // Reads the TLS certificate and key files again (vrmd's SIGHUP: a renewed certificate) for the
  // connections accepted from now on; thread-safe. Errors: invalid-argument when the server
  // serves plain HTTP, or the files' error (the certificate served so far then stays in use).
  Status reloadTls();

  // The port listened on (the OS's choice when the option said 0); 0 before start().
  std::uint16_t port() const;
  // "http://127.0.0.1:8080/", or "https://..." with TLS.
  std::string url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses "ADDR:PORT" ("127.0.0.1:8080", "[::1]:8080", ":8080" = loopback) into the options.
// Errors: invalid-argument naming the accepted form.
Status parseHttpListen(const std::string& text, WebServerOptions& options);

}  // namespace vrm::web
