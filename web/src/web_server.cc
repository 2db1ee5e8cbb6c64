#include "vrm/web/web_server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "vrm/client/client.h"
#include "vrm/client/render.h"
#include "vrm/client/time_spec.h"
#include "vrm/protocol/ssh_key.h"
#include "vrm/protocol/token.h"
#include "vrm/protocol/units.h"

namespace vrm::web {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using nlohmann::json;

namespace {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// A request the client got wrong; becomes a 400 with `what()` as the message.
struct BadRequest : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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

std::string errorJson(const std::string& code, const std::string& message) {
  return json{{"error", code}, {"message", message}}.dump();
}

// Decodes %XX and (in query strings) '+'. Malformed escapes are a bad request.
std::string percentDecode(std::string_view s, bool plusIsSpace) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      const int hi = i + 1 < s.size() ? hex(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) throw BadRequest("bad %-escape in the URL");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (plusIsSpace && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::multimap<std::string, std::string> parseQuery(std::string_view q) {
  std::multimap<std::string, std::string> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string key = percentDecode(pair.substr(0, eq), true);
    std::string value =
        eq == std::string_view::npos ? std::string() : percentDecode(pair.substr(eq + 1), true);
    out.emplace(std::move(key), std::move(value));
  }
  return out;
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) parts.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

bool isReservationId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

const char* contentTypeOf(const std::filesystem::path& p) {
  static const std::map<std::string, const char*> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"}};
  auto it = kTypes.find(p.extension().string());
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

// Prometheus label values escape backslash, quote and newline.
std::string labelValue(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string number(double v) {
  std::ostringstream o;
  o.precision(9);
  o << v;
  return o.str();
}

}  // namespace

// --- the application: routes, vrmd client, metrics. Runs on the io thread only. ---

struct WebServer::Impl {
  Impl(zmq::context_t& ctx, WebServerOptions o) : context(ctx), options(std::move(o)) {}

  zmq::context_t& context;
  WebServerOptions options;
  std::filesystem::path root;  // canonical web root
  std::unique_ptr<client::Client> vrmd;

  // Metrics kept by the web server itself (see /metrics).
  static constexpr std::array<double, 10> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                             0.025,  0.05,  0.1,    0.25,  1.0};
  std::array<std::uint64_t, kLatencyBuckets.size()> latencyBucketCounts{};
  double latencySumSeconds = 0;
  std::uint64_t latencyCount = 0;
  std::map<std::string, std::uint64_t> admissions;  // decision -> count
  std::map<unsigned, std::uint64_t> responsesByCode;

  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::thread thread;
  std::uint16_t boundPort = 0;
  bool running = false;

  Response handle(const Request& req);
  Response api(const Request& req, const std::vector<std::string>& parts,
               const std::multimap<std::string, std::string>& query);
  Response serveFile(const Request& req, const std::string& path);
  Response metrics();
  Response submit(const Request& req);
  Response listReservations(const std::multimap<std::string, std::string>& query);

  Response reply(unsigned code, std::string body, const char* type = "application/json") {
    Response res{static_cast<http::status>(code), 11};
    res.set(http::field::server, "vrmd");
    res.set(http::field::content_type, type);
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    res.body() = std::move(body);
    return res;
  }
  Response error(unsigned code, const std::string& name, const std::string& message) {
    return reply(code, errorJson(name, message));
  }
  Response error(const Status& s) {
    return error(httpStatusOf(s.code()), statusCodeName(s.code()), s.message());
  }
  Response unauthenticated(const std::string& message) {
    Response r = error(401, "unauthorized", message);
    r.set(http::field::www_authenticate, "Bearer");
    return r;
  }
  // The web user a bearer token belongs to. Only hashes are compared, so the time taken tells
  // nothing about the token.
  std::optional<std::string> nameOfToken(const std::string& token) const {
    const std::string hash = protocol::hashBearerToken(token);
    std::lock_guard<std::mutex> lock(tokensMutex);
    auto it = options.tokenHashes.find(hash);
    if (hash.empty() || it == options.tokenHashes.end()) return std::nullopt;
    return it->second;
  }
  // Guards options.tokenHashes, which setTokenHashes() replaces from vrmd's main thread.
  mutable std::mutex tokensMutex;
  std::string callerName;  // of the request being served

  void accept();
  class Session;
};

Response WebServer::Impl::handle(const Request& req) {
  std::string_view target(req.target().data(), req.target().size());
  if (target.empty() || target.front() != '/') {
    return error(400, "invalid-argument", "the request target must be an absolute path");
  }
  auto qpos = target.find('?');
  std::string path = percentDecode(target.substr(0, qpos), false);
  auto query = qpos == std::string_view::npos ? std::multimap<std::string, std::string>()
                                              : parseQuery(target.substr(qpos + 1));
  if (path.find('\0') != std::string::npos) {
    return error(400, "invalid-argument", "NUL in the path");
  }
  auto parts = splitPath(path);
  // Until api() reads a token, vrmd is asked as nobody in particular (see web_server.h).
  vrmd->setRequester("");
  callerName.clear();
  if (!parts.empty() && parts[0] == "api") return api(req, parts, query);
  if (parts.size() == 1 && parts[0] == "metrics") {
    if (req.method() != http::verb::get) {
      return error(405, "invalid-argument", "use GET");
    }
    return metrics();
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    return error(405, "invalid-argument", "static files take GET or HEAD");
  }
  // The reservation page is the same single-page app.
  if (parts.empty() || (parts.size() == 2 && parts[0] == "reservations")) {
    return serveFile(req, "index.html");
  }
  return serveFile(req, path);
}

Response WebServer::Impl::serveFile(const Request& req, const std::string& path) {
  namespace fs = std::filesystem;
  auto notFound = [&] { return error(404, "not-found", "no such file"); };
  fs::path rel;
  for (const auto& part : splitPath(path)) {
    // No "..", no hidden files, no backslashes (they are separators somewhere).
    if (part == "." || part == ".." || part.front() == '.' ||
        part.find('\\') != std::string::npos) {
      return notFound();
    }
    rel /= part;
  }
  if (rel.empty()) return notFound();
  std::error_code ec;
  fs::path full = fs::weakly_canonical(root / rel, ec);
  if (ec) return notFound();
  // Symbolic links must not lead outside the root either.
  auto [rootEnd, fullIt] = std::mismatch(root.begin(), root.end(), full.begin(), full.end());
  if (rootEnd != root.end()) return notFound();
  if (!fs::is_regular_file(full, ec)) return notFound();
  auto size = fs::file_size(full, ec);
  if (ec || size > options.maxFileBytes) return notFound();
  std::ifstream in(full, std::ios::binary);
  std::string body(size, '\0');
  if (!in.read(body.data(), static_cast<std::streamsize>(size))) {
    return error(500, "internal", "cannot read the file");
  }
  Response res = reply(200, std::move(body), contentTypeOf(full));
  res.set(http::field::cache_control, "no-cache");
  return res;
}

Response WebServer::Impl::api(const Request& req, const std::vector<std::string>& parts,
                              const std::multimap<std::string, std::string>& query) {
  const bool get = req.method() == http::verb::get;
  const bool post = req.method() == http::verb::post;
  auto methodNotAllowed = [&](const char* allowed) {
    Response r = error(405, "invalid-argument", std::string("use ") + allowed);
    r.set(http::field::allow, allowed);
    return r;
  };
  // Who asks: vrmd decides what that caller may do (and hides others' handles).
  std::string caller;  // "" = anonymous with `authenticate`, an operator without
  if (options.authenticate) {
    const auto header = req[http::field::authorization];
    if (!header.empty()) {
      const std::string_view value(header.data(), header.size());
      if (value.substr(0, 7) != "Bearer ") {
        return unauthenticated("use 'Authorization: Bearer <token>'");
      }
      auto name = nameOfToken(std::string(value.substr(7)));
      if (!name) return unauthenticated("unknown token");
      caller = *name;
    }
    if (post && caller.empty()) {
      return unauthenticated("booking and cancelling need a token (Authorization: Bearer ...)");
    }
  }
  vrmd->setRequester(caller);
  callerName = caller;
  const std::size_t n = parts.size();
  if (n == 2 && parts[1] == "now") {
    if (!get) return methodNotAllowed("GET");
    auto now = vrmd->serverNow();
    if (!now) return error(now.status());
    return reply(200, json{{"now", formatTime(*now)}, {"now_ns", *now}}.dump());
  }
  if (n == 2 && parts[1] == "hosts") {
    if (!get) return methodNotAllowed("GET");
    auto hosts = vrmd->hosts();
    if (!hosts) return error(hosts.status());
    return reply(200, client::hostsJson(*hosts, -1));
  }
  if (n == 2 && parts[1] == "vms") {
    if (!get) return methodNotAllowed("GET");
    auto vms = vrmd->vms();
    if (!vms) return error(vms.status());
    return reply(200, client::vmsJson(*vms, -1));
  }
  if (n == 2 && parts[1] == "templates") {
    if (!get) return methodNotAllowed("GET");
    json a = json::array();
    for (const auto& t : options.templates) {
      a.push_back({{"name", t.name},
                   {"cpu_cores", t.cpuCores},
                   {"memory_bytes", t.memoryBytes},
                   {"clone_time_s", nsToSeconds(t.cloneTimeNs)},
                   {"vms_per_host", t.vmsPerHost}});
    }
    return reply(200, a.dump());
  }
  if (n >= 2 && parts[1] == "reservations") {
    if (n == 2) {
      if (get) return listReservations(query);
      if (post) return submit(req);
      return methodNotAllowed("GET, POST");
    }
    const std::string& id = parts[2];
    if (!isReservationId(id)) {
      return error(400, "invalid-argument", "a reservation id is letters, digits, '-', '_', '.'");
    }
    if (n == 3) {
      if (!get) return methodNotAllowed("GET");
      auto r = vrmd->get(id);
      if (!r) return error(r.status());
      return reply(200, client::reservationJson(*r, -1));
    }
    if (n == 4 && parts[3] == "cancel") {
      if (!post) return methodNotAllowed("POST");
      auto r = vrmd->cancel(id);
      if (!r) return error(r.status());
      return reply(200, client::reservationJson(*r, -1));
    }
  }
  return error(404, "not-found",
               "no such API route (see GET /api/...: now, hosts, vms, "
               "templates, reservations)");
}

Response WebServer::Impl::listReservations(const std::multimap<std::string, std::string>& query) {
  ListFilter filter;
  TimeNs now = 0;
  auto timeParam = [&](const std::string& key, const std::string& text) {
    if (!now) {
      auto n = vrmd->serverNow();
      if (!n) throw BadRequest("cannot read vrmd's clock: " + n.status().message());
      now = *n;
    }
    auto t = client::parseTimeSpec(text, now);
    if (!t) throw BadRequest(key + ": " + t.status().message());
    return *t;
  };
  for (const auto& [key, value] : query) {
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
  auto rs = vrmd->list(filter);
  if (!rs) return error(rs.status());
  return reply(200, client::reservationsJson(*rs, -1));
}

Response WebServer::Impl::submit(const Request& req) {
  json body;
  try {
    body = json::parse(req.body());
  } catch (const json::parse_error& e) {
    throw BadRequest(std::string("malformed JSON: ") + e.what());
  }
  if (!body.is_object()) throw BadRequest("the body must be a JSON object");
  static const std::set<std::string> kFields = {
      "hosts",    "host_names", "vms",       "start",    "start_ns",
      "duration", "end",        "end_ns",    "template", "vms_per_host",
      "label",    "owner",      "objective", "dry_run",  "ssh_public_key"};
  for (const auto& [key, value] : body.items()) {
    if (!kFields.count(key)) throw BadRequest("unknown field '" + key + "'");
  }
  auto count = [&](const char* key) -> std::uint32_t {
    if (!body.contains(key) || body[key].is_null()) return 0;
    const json& v = body[key];
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 100000) {
      throw BadRequest(std::string(key) + " must be a whole number from 0 to 100000");
    }
    return static_cast<std::uint32_t>(v.get<std::int64_t>());
  };
  auto text = [&](const char* key) -> std::string {
    if (!body.contains(key) || body[key].is_null()) return "";
    if (!body[key].is_string()) throw BadRequest(std::string(key) + " must be a string");
    auto s = body[key].get<std::string>();
    if (s.size() > 1000) throw BadRequest(std::string(key) + " is too long");
    return s;
  };
  auto integer = [&](const char* key) -> std::optional<TimeNs> {
    if (!body.contains(key) || body[key].is_null()) return std::nullopt;
    if (!body[key].is_number_integer()) throw BadRequest(std::string(key) + " must be an integer");
    return body[key].get<TimeNs>();
  };

  ReservationRequest r;
  r.owner = text("owner");
  if (r.owner.empty()) r.owner = callerName.empty() ? options.defaultOwner : callerName;
  r.templateName = text("template");
  r.label = text("label");
  if (body.contains("ssh_public_key") && !body["ssh_public_key"].is_null()) {
    if (!body["ssh_public_key"].is_string()) throw BadRequest("ssh_public_key must be a string");
    std::string key = body["ssh_public_key"].get<std::string>();
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) {
      key.pop_back();
    }
    if (!key.empty()) {
      if (Status s = checkSshPublicKey(key); !s) {
        throw BadRequest("ssh_public_key: " + s.message());
      }
      r.sshPublicKey = key;
    }
  }
  r.vmsPerHost = count("vms_per_host");
  if (body.contains("dry_run")) {
    if (!body["dry_run"].is_boolean()) throw BadRequest("dry_run must be true or false");
    r.dryRun = body["dry_run"].get<bool>();
  }
  const std::string objective = text("objective");
  if (!objective.empty() && objective != "makespan" && objective != "degradation") {
    throw BadRequest("objective must be 'makespan' or 'degradation'");
  }
  r.objective = objectiveFromName(objective).value();  // checked above
  const std::uint32_t hosts = count("hosts"), vms = count("vms");
  if (body.contains("host_names")) {
    const json& names = body["host_names"];
    if (!names.is_array() || names.size() > 1000) {
      throw BadRequest("host_names must be a list of host names");
    }
    for (const auto& h : names) {
      if (!h.is_string()) throw BadRequest("host_names must be a list of host names");
      r.hostNames.push_back(h.get<std::string>());
    }
  }
  if (vms > 0) {
    if (hosts > 0 || !r.hostNames.empty()) {
      throw BadRequest("vms (shared) and hosts / host_names (dedicated) exclude each other");
    }
    r.kind = ReservationKind::kShared;
    r.vmCount = vms;
  } else {
    if (hosts == 0 && r.hostNames.empty()) {
      throw BadRequest(
          "say how many hosts (hosts), which (host_names), or how many shared "
          "VMs (vms)");
    }
    r.kind = ReservationKind::kDedicated;
    r.hostCount = hosts;
  }

  // Relative times are relative to vrmd's clock, which may run faster than ours.
  auto now = vrmd->serverNow();
  if (!now) return error(now.status());
  auto timeOf = [&](const char* textKey, const char* nsKey) -> std::optional<TimeNs> {
    if (auto ns = integer(nsKey)) return *ns;
    std::string t = text(textKey);
    if (t.empty()) return std::nullopt;
    auto parsed = client::parseTimeSpec(t, *now);
    if (!parsed) throw BadRequest(std::string(textKey) + ": " + parsed.status().message());
    return *parsed;
  };
  auto start = timeOf("start", "start_ns");
  if (!start) throw BadRequest("start is required (ISO 8601, 'now' or '+30min')");
  r.startNs = *start;
  const std::string duration = text("duration");
  auto end = timeOf("end", "end_ns");
  if (duration.empty() == !end.has_value()) {
    throw BadRequest("give exactly one of duration and end");
  }
  if (!duration.empty()) {
    auto d = parseDurationNs(duration);
    if (!d) throw BadRequest("duration: " + d.status().message());
    if (*d > kTimeInfinity - r.startNs) throw BadRequest("duration: too long");
    r.endNs = r.startNs + *d;
  } else {
    r.endNs = *end;
  }

  const auto t0 = std::chrono::steady_clock::now();
  auto decided = vrmd->submit(r);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!decided) {
    admissions["error"]++;
    return error(decided.status());
  }
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) latencyBucketCounts[i]++;
  }
  latencySumSeconds += seconds;
  latencyCount++;
  const bool rejected = decided->state == ReservationState::kRejected;
  admissions[rejected ? "rejected" : "admitted"]++;
  return reply(rejected ? 422 : (r.dryRun ? 200 : 201), client::reservationJson(*decided, -1));
}

Response WebServer::Impl::metrics() {
  auto rs = vrmd->list({});
  if (!rs) return error(rs.status());
  auto hosts = vrmd->hosts();
  if (!hosts) return error(hosts.status());
  auto vms = vrmd->vms();
  if (!vms) return error(vms.status());

  std::map<std::string, int> byState;
  for (int s = 0; s <= static_cast<int>(ReservationState::kFailed); ++s) {
    byState[stateName(static_cast<ReservationState>(s))] = 0;
  }
  int running = 0, planned = 0, observed = 0, atRisk = 0;
  double errorSum = 0, absErrorSum = 0, relErrorSum = 0;
  int relCount = 0;
  for (const auto& r : *rs) {
    byState[stateName(r.state)]++;
    atRisk += r.atRisk && !isTerminal(r.state);
    for (const auto& move : r.moves) {
      if (!move.isVacate()) continue;  // the vacate plan's moves
      const auto& m = move.progress;
      if (m.state == MoveState::kRunning) running++;
      if (m.state == MoveState::kPlanned && !isTerminal(r.state)) planned++;
      if (m.state == MoveState::kDone && m.actualStartNs && m.actualEndNs >= m.actualStartNs) {
        const auto& p = move.planned;
        const double predicted = nsToSeconds(p.endOffsetNs - p.startOffsetNs);
        const double actual = nsToSeconds(m.actualEndNs - m.actualStartNs);
        errorSum += actual - predicted;
        absErrorSum += std::abs(actual - predicted);
        if (predicted > 0) {
          relErrorSum += std::abs(actual - predicted) / predicted;
          relCount++;
        }
        observed++;
      }
    }
  }
  int reachable = 0;
  for (const auto& h : *hosts) reachable += h.reachable;

  std::ostringstream o;
  auto head = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  head("vrm_reservations", "gauge", "Reservations known to vrmd, by state.");
  for (const auto& [state, count] : byState) {
    o << "vrm_reservations{state=\"" << labelValue(state) << "\"} " << count << "\n";
  }
  head("vrm_reservations_at_risk", "gauge",
       "Unfinished reservations whose vacate is projected to miss its deadline.");
  o << "vrm_reservations_at_risk " << atRisk << "\n";
  head("vrm_migrations_in_flight", "gauge", "Planned moves running now.");
  o << "vrm_migrations_in_flight " << running << "\n";
  head("vrm_migrations_pending", "gauge",
       "Planned moves not started yet, of reservations that are not finished.");
  o << "vrm_migrations_pending " << planned << "\n";
  head("vrm_hosts", "gauge", "Hosts by agent health.");
  o << "vrm_hosts{reachable=\"true\"} " << reachable << "\n";
  o << "vrm_hosts{reachable=\"false\"} " << hosts->size() - reachable << "\n";
  head("vrm_vms", "gauge", "VMs on all hosts, the reservations' clones included.");
  o << "vrm_vms " << vms->size() << "\n";
  head("vrm_admission_latency_seconds", "histogram",
       "Time vrmd took to decide submits made through the web server (round trip).");
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    o << "vrm_admission_latency_seconds_bucket{le=\"" << number(kLatencyBuckets[i]) << "\"} "
      << latencyBucketCounts[i] << "\n";
  }
  o << "vrm_admission_latency_seconds_bucket{le=\"+Inf\"} " << latencyCount << "\n";
  o << "vrm_admission_latency_seconds_sum " << number(latencySumSeconds) << "\n";
  o << "vrm_admission_latency_seconds_count " << latencyCount << "\n";
  head("vrm_admissions_total", "counter", "Submits made through the web server, by decision.");
  for (const char* d : {"admitted", "rejected", "error"}) {
    o << "vrm_admissions_total{decision=\"" << d << "\"} " << admissions[d] << "\n";
  }
  head("vrm_migration_prediction_error_seconds", "summary",
       "Actual minus predicted duration of completed moves (vrmd's clock), over the plans of "
       "every stored reservation.");
  o << "vrm_migration_prediction_error_seconds_sum " << number(errorSum) << "\n";
  o << "vrm_migration_prediction_error_seconds_count " << observed << "\n";
  head("vrm_migration_prediction_abs_error_seconds_sum", "gauge",
       "Sum of |actual - predicted| duration of completed moves.");
  o << "vrm_migration_prediction_abs_error_seconds_sum " << number(absErrorSum) << "\n";
  head("vrm_migration_prediction_relative_error_mean", "gauge",
       "Mean of |actual - predicted| / predicted over completed moves (0 when none).");
  o << "vrm_migration_prediction_relative_error_mean "
    << number(relCount ? relErrorSum / relCount : 0) << "\n";
  head("vrm_web_responses_total", "counter", "HTTP responses of the web server, by status.");
  for (const auto& [code, count] : responsesByCode) {
    o << "vrm_web_responses_total{code=\"" << code << "\"} " << count << "\n";
  }
  if (options.extraMetrics) o << options.extraMetrics();
  return reply(200, o.str(), "text/plain; version=0.0.4; charset=utf-8");
}

// --- HTTP plumbing ---

// One connection: read a request (bounded), answer it, repeat while keep-alive.
class WebServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Impl& app) : stream_(std::move(socket)), app_(app) {}

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(app_.options.maxBodyBytes);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(app_.options.idleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::onRead, shared_from_this()));
  }

  void onRead(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof) {
      return close();
    }
    if (ec) {
      // A malformed or oversized request: answer once, then close.
      const bool tooLarge = ec == http::error::body_limit || ec == http::error::header_limit ||
                            ec == http::error::buffer_overflow;
      res_ = app_.error(tooLarge ? 413 : 400, "invalid-argument",
                        tooLarge ? "request too large" : "malformed HTTP request: " + ec.message());
      res_.keep_alive(false);
      res_.prepare_payload();
      return write(false);
    }
    Request req = parser_->release();
    try {
      res_ = app_.handle(req);
    } catch (const BadRequest& e) {
      res_ = app_.error(400, "invalid-argument", e.what());
    } catch (const std::exception& e) {
      spdlog::warn("web: {} {}: {}", std::string(req.method_string()), std::string(req.target()),
                   e.what());
      res_ = app_.error(500, "internal", e.what());
    }
    res_.keep_alive(req.keep_alive());
    res_.prepare_payload();
    // HEAD: the Content-Length of the full answer, no body.
    if (req.method() == http::verb::head) res_.body().clear();
    write(req.keep_alive());
  }

  void write(bool keepAlive) {
    app_.responsesByCode[res_.result_int()]++;
    stream_.expires_after(app_.options.idleTimeout);
    http::async_write(stream_, res_,
                      [self = shared_from_this(), keepAlive](beast::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        if (!keepAlive) return self->drainAndClose();
                        self->read();
                      });
  }

  // Closing with unread input makes the kernel reset the connection, and the peer may lose the
  // answer (413 after a large body): stop sending, read and drop what is left (bounded), close.
  void drainAndClose() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    drain_ = std::make_unique<std::array<char, 4096>>();
    drainOnce(0);
  }
  void drainOnce(std::size_t total) {
    stream_.async_read_some(net::buffer(*drain_), [self = shared_from_this(), total](
                                                      beast::error_code ec, std::size_t n) {
      if (ec || total + n > 1024 * 1024) return self->close();
      self->drainOnce(total + n);
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response res_;
  std::unique_ptr<std::array<char, 4096>> drain_;
  Impl& app_;
};

void WebServer::Impl::accept() {
  acceptor->async_accept(ioc, [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
    if (!ec) {
      std::make_shared<Session>(std::move(socket), *this)->start();
    } else {
      spdlog::warn("web: accept failed: {}", ec.message());
    }
    accept();
  });
}

WebServer::WebServer(zmq::context_t& context, WebServerOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}

WebServer::~WebServer() { stop(); }

Status WebServer::start() {
  Impl& m = *impl_;
  if (m.running) return Status::ok();
  std::error_code fsError;
  m.root = std::filesystem::canonical(m.options.webRoot, fsError);
  if (fsError || !std::filesystem::is_directory(m.root)) {
    return Status::invalid("web root '" + m.options.webRoot + "' is not a directory");
  }
  beast::error_code ec;
  auto address = net::ip::make_address(m.options.address, ec);
  if (ec) return Status::invalid("'" + m.options.address + "' is not an IP address");
  tcp::endpoint endpoint(address, m.options.port);
  m.acceptor.emplace(m.ioc);
  auto fail = [&](const char* what) {
    m.acceptor.reset();
    return Status::unavailable(std::string("cannot listen on ") + m.options.address + ":" +
                               std::to_string(m.options.port) + ": " + what + ": " + ec.message());
  };
  if (m.acceptor->open(endpoint.protocol(), ec)) return fail("open");
  if (m.acceptor->set_option(net::socket_base::reuse_address(true), ec)) return fail("option");
  if (m.acceptor->bind(endpoint, ec)) return fail("bind");
  if (m.acceptor->listen(net::socket_base::max_listen_connections, ec)) return fail("listen");
  m.boundPort = m.acceptor->local_endpoint().port();
  m.accept();
  m.running = true;
  m.thread = std::thread([&m] {
    // The client's socket lives and dies on this thread.
    client::ClientOptions co;
    co.endpoint = m.options.vrmdEndpoint;
    co.timeout = m.options.vrmdTimeout;
    m.vrmd = std::make_unique<client::Client>(co, &m.context);
    try {
      m.ioc.run();
    } catch (const std::exception& e) {
      spdlog::error("web server stopped: {}", e.what());
    }
    m.vrmd.reset();
  });
  return Status::ok();
}

void WebServer::stop() {
  Impl& m = *impl_;
  if (!m.running) return;
  net::post(m.ioc, [&m] {
    beast::error_code ignored;
    m.acceptor->close(ignored);
    m.ioc.stop();
  });
  m.thread.join();
  m.running = false;
}

void WebServer::setTokenHashes(std::map<std::string, std::string> tokenHashes) {
  std::lock_guard<std::mutex> lock(impl_->tokensMutex);
  impl_->options.tokenHashes = std::move(tokenHashes);
}

std::uint16_t WebServer::port() const { return impl_->boundPort; }

std::string WebServer::url() const {
  const std::string& a = impl_->options.address;
  const bool v6 = a.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + a + "]" : a) + ":" + std::to_string(port()) + "/";
}

Status parseHttpListen(const std::string& text, WebServerOptions& options) {
  auto bad = [&] {
    return Status::invalid("'" + text + "': expected ADDR:PORT (127.0.0.1:8080, [::1]:8080), " +
                           "PORT (on 127.0.0.1) or off");
  };
  std::string address = "127.0.0.1", port = text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find("]:");
    if (close == std::string::npos) return bad();
    address = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else if (auto colon = text.rfind(':'); colon != std::string::npos) {
    address = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (address.empty() || port.empty() || port.size() > 5) return bad();
  for (char c : port) {
    if (c < '0' || c > '9') return bad();
  }
  const int p = std::stoi(port);
  if (p > 65535) return bad();
  beast::error_code ec;
  net::ip::make_address(address, ec);
  if (ec) return Status::invalid("'" + address + "' is not an IP address");
  options.address = address;
  options.port = static_cast<std::uint16_t>(p);
  return Status::ok();
}

}  // namespace vrm::web
