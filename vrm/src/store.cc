#include "vrm/manager/store.h"

#include <charconv>

#include "vrm/etcd/client.h"
#include "vrm/manager/sqlite_store.h"

namespace vrm::manager {

const char* storeErrorName(StoreError error) {
  switch (error) {
    case StoreError::kNone:
      return "none";
    case StoreError::kIo:
      return "io";
    case StoreError::kFencedOut:
      return "fenced-out";
    case StoreError::kNoSpace:
      return "no-space";
    case StoreError::kOutcomeUnknown:
      return "outcome-unknown";
    case StoreError::kTooLarge:
      return "too-large";
    case StoreError::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

std::string StoreLocation::toString() const {
  if (kind == Kind::kSqlite) return "sqlite:" + path;
  std::string out = "etcd://";
  for (std::size_t i = 0; i < endpoints.size(); ++i) out += (i ? "," : "") + endpoints[i];
  return out + prefix;
}

Result<StoreLocation> parseStoreLocation(const std::string& value) {
  constexpr std::string_view kSqlite = "sqlite:";
  constexpr std::string_view kEtcd = "etcd://";
  StoreLocation out;
  if (value.rfind(kEtcd, 0) == 0) {
    const std::string rest = value.substr(kEtcd.size());
    const std::size_t slash = rest.find('/');
    const std::string hosts = rest.substr(0, slash);
    if (hosts.empty()) {
      return Status::invalid("--store " + value + ": no etcd endpoint (etcd://H1:2379,H2:2379)");
    }
    auto endpoints = etcd::splitEndpoints(hosts);
    if (!endpoints) return Status::invalid("--store " + value + ": " + endpoints.error().message());
    out.kind = StoreLocation::Kind::kEtcd;
    out.endpoints = std::move(*endpoints);
    std::string prefix = slash == std::string::npos ? "" : rest.substr(slash);
    while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
    if (prefix.empty() || prefix == "/") prefix = "/vrm";
    if (prefix.find("//") != std::string::npos) {
      return Status::invalid("--store " + value + ": the key prefix has an empty segment");
    }
    out.prefix = prefix + "/";
    return out;
  }
  if (value.rfind("etcd:", 0) == 0) {
    return Status::invalid("--store " + value +
                           ": etcd locations are etcd://H1:2379,H2:2379[/prefix]");
  }
  if (value.rfind(kSqlite, 0) == 0) {
    out.path = value.substr(kSqlite.size());
  } else if (const std::size_t scheme = value.find("://"); scheme != std::string::npos) {
    return Status::invalid("--store " + value + ": unknown scheme '" + value.substr(0, scheme) +
                           "' (sqlite:PATH or etcd://H1:2379,H2:2379[/prefix])");
  } else {
    out.path = value;  // a plain path, as before sqlite: existed
  }
  if (out.path.empty()) {
    return Status::invalid("--store " + value + ": no file (sqlite:PATH)");
  }
  return out;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  auto store = SqliteStore::open(path);
  if (!store) return store.status();
  return std::unique_ptr<Store>(std::move(*store));
}

std::int64_t reservationIdNumber(const std::string& id) {
  if (id.size() < 2 || id[0] != 'r') return 0;
  std::int64_t n = 0;
  const char* end = id.data() + id.size();
  const auto [ptr, ec] = std::from_chars(id.data() + 1, end, n);
  return ec == std::errc() && ptr == end && n > 0 ? n : 0;
}

}  // namespace vrm::manager
