#include "backend/params.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "vrm/protocol/units.h"

namespace vrm::vmscheduler::backend {

namespace {
constexpr const char* kTemplatePrefix = "template.";
}  // namespace

std::string BackendParams::canonical(const std::string& key,
                                     const std::map<std::string, std::string>& aliases) {
  if (key.rfind(kTemplatePrefix, 0) == 0) return key;
  std::string name = key;
  std::replace(name.begin(), name.end(), '_', '-');
  if (auto it = aliases.find(name); it != aliases.end()) return it->second;
  return name;
}

BackendParams::BackendParams(std::string backend, const std::map<std::string, std::string>& params,
                             const std::map<std::string, std::string>& aliases)
    : backend_(std::move(backend)) {
  for (const auto& [key, value] : params) {
    const std::string name = canonical(key, aliases);
    auto [it, fresh] = params_.emplace(name, Given{key, value});
    if (!fresh && status_) {
      status_ = Status::invalid(backend_ + " parameters " + it->second.spelled + " and " + key +
                                " are the same setting (" + name + "): give it once");
    }
  }
}

std::optional<std::string> BackendParams::take(const std::string& key) {
  known_.insert(key);
  auto it = params_.find(key);
  if (it == params_.end()) return std::nullopt;
  return it->second.value;
}

std::string BackendParams::describe(const std::string& key) const {
  auto it = params_.find(key);
  return backend_ + " parameter " + (it != params_.end() ? it->second.spelled : key);
}

Status BackendParams::invalid(const std::string& key, const std::string& what) const {
  return Status::invalid(describe(key) + " " + what);
}

Result<std::optional<std::string>> BackendParams::takeNonEmpty(const std::string& key) {
  auto value = take(key);
  if (value && value->empty()) return invalid(key, "needs a value");
  return value;
}

Result<std::optional<std::string>> BackendParams::takeChoice(
    const std::string& key, const std::vector<std::string>& choices) {
  auto value = take(key);
  if (!value || std::find(choices.begin(), choices.end(), *value) != choices.end()) return value;
  std::string list;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    list += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + ("'" + choices[i] + "'");
  }
  return invalid(key, "must be " + list + ", got '" + *value + "'");
}

Result<std::optional<TimeNs>> BackendParams::takeDuration(const std::string& key) {
  auto value = take(key);
  if (!value) return std::optional<TimeNs>();
  auto d = parseDurationNs(*value);
  if (!d) return invalid(key, "must be a duration: " + d.status().message());
  if (*d < 0) return invalid(key, "must not be negative");
  return std::optional<TimeNs>(*d);
}

Result<std::optional<std::uint64_t>> BackendParams::takeUnsigned(const std::string& key) {
  auto value = take(key);
  if (!value) return std::optional<std::uint64_t>();
  std::size_t used = 0;
  std::uint64_t n = 0;
  try {
    if (value->empty() || (*value)[0] == '-' || (*value)[0] == '+') {
      throw std::invalid_argument("sign");
    }
    n = std::stoull(*value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value->size()) {
    return invalid(key, "must be an unsigned integer, got '" + *value + "'");
  }
  return std::optional<std::uint64_t>(n);
}

Result<std::optional<std::int64_t>> BackendParams::takeInteger(const std::string& key) {
  auto value = take(key);
  if (!value) return std::optional<std::int64_t>();
  std::size_t used = 0;
  std::int64_t n = 0;
  try {
    n = std::stoll(*value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value->size()) {
    return invalid(key, "must be a number, got '" + *value + "'");
  }
  return std::optional<std::int64_t>(n);
}

Result<std::optional<double>> BackendParams::takePositiveNumber(const std::string& key) {
  auto value = take(key);
  if (!value) return std::optional<double>();
  std::size_t used = 0;
  double x = 0;
  try {
    x = std::stod(*value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value->size() || !std::isfinite(x) || !(x > 0)) {
    return invalid(key, "must be a positive number, got '" + *value + "'");
  }
  return std::optional<double>(x);
}

std::map<std::string, std::string> BackendParams::takePrefixed(const std::string& prefix) {
  prefixes_.insert(prefix);
  std::map<std::string, std::string> out;
  for (const auto& [name, given] : params_) {
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = given.value;
  }
  return out;
}

Status BackendParams::finish() const {
  if (!status_) return status_;
  for (const auto& [name, given] : params_) {
    if (known_.count(name)) continue;
    bool prefixed = false;
    for (const std::string& p : prefixes_) prefixed = prefixed || name.rfind(p, 0) == 0;
    if (prefixed) continue;
    std::string list;
    for (const std::string& k : known_) list += (list.empty() ? "" : ", ") + k;
    for (const std::string& p : prefixes_) list += (list.empty() ? "" : ", ") + p + "NAME";
    return Status::invalid("unknown " + backend_ + " parameter '" + given.spelled +
                           "' (known: " + list + ")");
  }
  return Status::ok();
}

}  // namespace vrm::vmscheduler::backend
