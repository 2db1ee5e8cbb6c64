#include "vrm/client/request_parser.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>

#include "vrm/client/time_spec.h"
#include "vrm/protocol/ssh_key.h"
#include "vrm/protocol/units.h"

namespace vrm::client {
namespace {

struct FieldNames {
  RequestField field;
  const char* name;
  const char* flag;
};

constexpr FieldNames kFieldNames[] = {
    {RequestField::kBody, "", ""},
    {RequestField::kHosts, "hosts", "--hosts"},
    {RequestField::kHostNames, "host_names", "--host"},
    {RequestField::kVms, "vms", "--vms"},
    {RequestField::kVmsPerHost, "vms_per_host", "--vms-per-host"},
    {RequestField::kStart, "start", "--start"},
    {RequestField::kStartNs, "start_ns", "--start"},
    {RequestField::kDuration, "duration", "--duration"},
    {RequestField::kEnd, "end", "--end"},
    {RequestField::kEndNs, "end_ns", "--end"},
    {RequestField::kTemplate, "template", "--template"},
    {RequestField::kLabel, "label", "--label"},
    {RequestField::kOwner, "owner", "--owner"},
    {RequestField::kObjective, "objective", "--objective"},
    {RequestField::kMaxVmTime, "max_vm_time", "--max-vm-time"},
    {RequestField::kDisplaced, "displaced", "--displaced"},
    {RequestField::kDryRun, "dry_run", "--dry-run"},
    {RequestField::kSshPublicKey, "ssh_public_key", "--ssh-key"},
};

const FieldNames& namesOf(RequestField field) {
  for (const auto& n : kFieldNames) {
    if (n.field == field) return n;
  }
  return kFieldNames[0];
}

constexpr std::uint32_t kMaxCount = 100000;
constexpr std::size_t kMaxTextBytes = 1000;
constexpr std::size_t kMaxHostNames = 1000;

RequestError error(RequestField field, std::string reason) { return {field, std::move(reason)}; }

// A count field: "" = 0.
std::optional<RequestError> readCount(RequestField field, const std::string& text,
                                      std::uint32_t* out) {
  *out = 0;
  if (text.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > kMaxCount) {
    return error(field, "must be a whole number from 0 to " + std::to_string(kMaxCount) +
                            " (got '" + text + "')");
  }
  *out = static_cast<std::uint32_t>(v);
  return std::nullopt;
}

std::optional<RequestError> checkLength(RequestField field, const std::string& text) {
  if (text.size() > kMaxTextBytes) {
    return error(field, "is too long (at most " + std::to_string(kMaxTextBytes) + " bytes)");
  }
  return std::nullopt;
}

// A time given as text (`textField`) or as nanoseconds (`nsField`), or neither (nullopt).
RequestResult<std::optional<TimeNs>> readTime(RequestField textField, const std::string& text,
                                              RequestField nsField, const std::string& nsText,
                                              TimeNs now) {
  if (!text.empty() && !nsText.empty()) {
    return error(nsField, std::string("give one of ") + requestFieldName(textField) + " and " +
                              requestFieldName(nsField) + ", not both");
  }
  if (!nsText.empty()) {
    TimeNs ns = 0;
    auto [end, ec] = std::from_chars(nsText.data(), nsText.data() + nsText.size(), ns);
    if (ec != std::errc() || end != nsText.data() + nsText.size()) {
      return error(nsField,
                   "must be an integer (nanoseconds since the epoch; got '" + nsText + "')");
    }
    return std::optional<TimeNs>(ns);
  }
  if (text.empty()) return std::optional<TimeNs>();
  auto t = parseTimeSpec(text, now);
  if (!t) return error(textField, t.status().message());
  return std::optional<TimeNs>(*t);
}

}  // namespace

const char* requestFieldName(RequestField field) { return namesOf(field).name; }
const char* requestFieldFlag(RequestField field) { return namesOf(field).flag; }

std::string RequestError::message() const {
  return field == RequestField::kBody ? reason : requestFieldName(field) + (": " + reason);
}

std::string RequestError::flagMessage() const {
  return field == RequestField::kBody ? reason : requestFieldFlag(field) + (": " + reason);
}

Status RequestError::status() const { return Status::invalid(message()); }

RequestResult<ReservationRequest> parseRequest(const RequestDraft& d, TimeNs now) {
  ReservationRequest r;
  std::uint32_t hosts = 0, vms = 0;
  if (auto e = readCount(RequestField::kHosts, d.hosts, &hosts)) return *e;
  if (d.hostNames.size() > kMaxHostNames) {
    return error(RequestField::kHostNames,
                 "at most " + std::to_string(kMaxHostNames) + " host names");
  }
  for (const auto& name : d.hostNames) {
    if (name.empty()) return error(RequestField::kHostNames, "a host name cannot be empty");
    if (auto e = checkLength(RequestField::kHostNames, name)) return *e;
  }
  if (auto e = readCount(RequestField::kVms, d.vms, &vms)) return *e;
  if (auto e = readCount(RequestField::kVmsPerHost, d.vmsPerHost, &r.vmsPerHost)) return *e;
  if (vms > 0) {
    if (hosts > 0 || !d.hostNames.empty()) {
      return error(RequestField::kVms,
                   "a shared reservation's VM count excludes hosts and host names (dedicated)");
    }
    r.kind = ReservationKind::kShared;
    r.vmCount = vms;
  } else {
    if (hosts == 0 && d.hostNames.empty()) {
      return error(RequestField::kHosts,
                   "say how many hosts (hosts), which (host names), or how many shared VMs "
                   "(vms)");
    }
    r.kind = ReservationKind::kDedicated;
    r.hostCount = hosts;
    r.hostNames = d.hostNames;
  }

  auto start = readTime(RequestField::kStart, d.start, RequestField::kStartNs, d.startNs, now);
  if (!start) return start.error();
  if (!*start) return error(RequestField::kStart, "is required (ISO 8601, 'now' or '+30min')");
  r.startNs = **start;
  if (r.startNs <= now) {
    return error(
        d.start.empty() ? RequestField::kStartNs : RequestField::kStart,
        formatTime(r.startNs) + " is not in the future (vrmd's clock: " + formatTime(now) + ")");
  }
  if (!d.duration.empty()) {
    if (!d.end.empty() || !d.endNs.empty()) {
      return error(RequestField::kDuration, "give exactly one of duration and end");
    }
    auto length = parseDurationNs(d.duration);
    if (!length) return error(RequestField::kDuration, length.status().message());
    if (*length == 0) return error(RequestField::kDuration, "must be longer than 0");
    if (*length > kTimeInfinity - r.startNs) return error(RequestField::kDuration, "too long");
    r.endNs = r.startNs + *length;
  }
  auto end = readTime(RequestField::kEnd, d.end, RequestField::kEndNs, d.endNs, now);
  if (!end) return end.error();
  if (*end) {
    r.endNs = **end;
    if (r.endNs <= r.startNs) {
      return error(d.end.empty() ? RequestField::kEndNs : RequestField::kEnd,
                   "end must be after start (" + formatTime(r.endNs) + " is not after " +
                       formatTime(r.startNs) + ")");
    }
  } else if (d.duration.empty()) {
    return error(RequestField::kDuration, "give exactly one of duration and end");
  }

  if (d.templateName.empty()) {
    return error(RequestField::kTemplate, "is required (the VM template to clone)");
  }
  if (auto e = checkLength(RequestField::kTemplate, d.templateName)) return *e;
  r.templateName = d.templateName;
  if (auto e = checkLength(RequestField::kLabel, d.label)) return *e;
  r.label = d.label;
  if (auto e = checkLength(RequestField::kOwner, d.owner)) return *e;
  r.owner = d.owner;

  auto objective = objectiveFromName(d.objective);
  if (!objective) {
    return error(RequestField::kObjective,
                 "unknown value '" + d.objective + "' (makespan, degradation)");
  }
  r.objective = *objective;
  if (!d.maxVmTime.empty()) {
    auto bound = parseDurationNs(d.maxVmTime);
    if (!bound) return error(RequestField::kMaxVmTime, bound.status().message());
    if (*bound > 0 && r.objective != Objective::kDegradation) {
      return error(RequestField::kMaxVmTime,
                   "bounds a VM's migration for objective degradation "
                   "only (add objective degradation)");
    }
    r.maxVmTimeNs = *bound;
  }
  auto displaced = displacedFromName(d.displaced);
  if (!displaced) {
    return error(RequestField::kDisplaced, "unknown value '" + d.displaced + "' (stay, return)");
  }
  if (*displaced && r.kind == ReservationKind::kShared) {
    return error(RequestField::kDisplaced, "a shared reservation displaces no VMs");
  }
  r.displaced = *displaced;
  if (d.dryRun == "true") {
    r.dryRun = true;
  } else if (!d.dryRun.empty() && d.dryRun != "false") {
    return error(RequestField::kDryRun, "must be true or false (got '" + d.dryRun + "')");
  }

  std::string key = d.sshPublicKey;
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) {
    key.pop_back();
  }
  if (!key.empty()) {
    if (Status s = checkSshPublicKey(key); !s) {
      return error(RequestField::kSshPublicKey, s.message());
    }
    r.sshPublicKey = key;
  }
  return r;
}

RequestResult<RequestDraft> requestDraftFromJson(std::string_view body) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    return error(RequestField::kBody, std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) return error(RequestField::kBody, "the body must be a JSON object");

  RequestDraft d;
  // Where each field's text goes, in RequestField's order (kBody and kHostNames are not text).
  std::string* const textFields[] = {
      nullptr,  // kBody
      &d.hosts,        nullptr /* kHostNames */,
      &d.vms,          &d.vmsPerHost,
      &d.start,        &d.startNs,
      &d.duration,     &d.end,
      &d.endNs,        &d.templateName,
      &d.label,        &d.owner,
      &d.objective,    &d.maxVmTime,
      &d.displaced,    &d.dryRun,
      &d.sshPublicKey,
  };
  static_assert(std::size(kFieldNames) == std::size(textFields));
  for (const auto& [key, value] : j.items()) {
    const FieldNames* names = nullptr;
    for (const auto& n : kFieldNames) {
      if (n.field != RequestField::kBody && key == n.name) names = &n;
    }
    if (!names) return error(RequestField::kBody, "unknown field '" + key + "'");
    if (value.is_null()) continue;
    const RequestField field = names->field;
    switch (field) {
      case RequestField::kHostNames:
        if (!value.is_array()) return error(field, "must be a list of host names");
        for (const auto& h : value) {
          if (!h.is_string()) return error(field, "must be a list of host names");
          d.hostNames.push_back(h.get<std::string>());
        }
        break;
      case RequestField::kHosts:
      case RequestField::kVms:
      case RequestField::kVmsPerHost:
        if (!value.is_number_integer()) {
          return error(field, "must be a whole number from 0 to " + std::to_string(kMaxCount));
        }
        *textFields[static_cast<int>(field)] = value.dump();
        break;
      case RequestField::kStartNs:
      case RequestField::kEndNs:
        if (!value.is_number_integer()) {
          return error(field, "must be an integer (nanoseconds since the epoch)");
        }
        *textFields[static_cast<int>(field)] = value.dump();
        break;
      case RequestField::kDryRun:
        if (!value.is_boolean()) return error(field, "must be true or false");
        d.dryRun = value.get<bool>() ? "true" : "false";
        break;
      default:
        if (!value.is_string()) return error(field, "must be a string");
        *textFields[static_cast<int>(field)] = value.get<std::string>();
        break;
    }
  }
  return d;
}

}  // namespace vrm::client
