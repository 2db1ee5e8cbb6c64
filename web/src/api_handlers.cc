#include "api_handlers.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "vrm/client/client.h"
#include "vrm/client/render.h"
#include "vrm/client/time_spec.h"
#include "vrm/protocol/ssh_key.h"
#include "vrm/protocol/units.h"

namespace vrm::web {

using nlohmann::json;

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
  const Request& req = call.request;
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
  if (r.owner.empty()) r.owner = call.caller.empty() ? defaultOwner_ : call.caller;
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
  auto now = vrmd_.serverNow();
  if (!now) return errorReply(now.status());
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
  auto decided = vrmd_.submit(r);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!decided) {
    counters_.recordSubmitError();
    return errorReply(decided.status());
  }
  const bool rejected = decided->state == ReservationState::kRejected;
  counters_.recordDecision(rejected, seconds);
  return reply(rejected ? 422 : (r.dryRun ? 200 : 201), client::reservationJson(*decided, -1));
}

}  // namespace vrm::web
