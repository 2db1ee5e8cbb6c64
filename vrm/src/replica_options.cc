#include "vrm/manager/replica_options.h"

#include <charconv>

#include "vrm/protocol/time.h"
#include "vrm/protocol/units.h"

namespace vrm::manager {

namespace {

// Why `value` is not an endpoint others can connect to; "" when it is one.
std::string whyNotAdvertisable(const std::string& value) {
  constexpr std::string_view kTcp = "tcp://";
  if (value.rfind(kTcp, 0) != 0) return "not tcp://HOST:PORT";
  const std::string rest = value.substr(kTcp.size());
  const std::size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return "no port (tcp://HOST:PORT)";
  const std::string host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  if (host.empty() || host == "*" || host == "0.0.0.0" || host == "[::]" || host == "::") {
    return "'" + host + "' is not an address others can connect to";
  }
  int number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535) {
    return "port '" + port + "' is not in 1..65535";
  }
  return "";
}

}  // namespace

Result<std::string> parseAdvertisedEndpoint(const std::string& value) {
  if (std::string why = whyNotAdvertisable(value); !why.empty()) {
    return Status::invalid("--advertise " + value + ": " + why +
                           " (the client endpoint of this vrmd others connect to)");
  }
  return value;
}

Result<std::string> defaultAdvertisedEndpoint(const std::string& clientEndpoint) {
  if (std::string why = whyNotAdvertisable(clientEndpoint); !why.empty()) {
    return Status::invalid("--clients " + clientEndpoint + " cannot be advertised to clients (" +
                           why + "): give --advertise tcp://HOST:PORT");
  }
  return clientEndpoint;
}

std::string formatLeaderValue(const LeaderAddress& leader) {
  return leader.httpUrl.empty() ? leader.clientEndpoint
                                : leader.clientEndpoint + " " + leader.httpUrl;
}

LeaderAddress parseLeaderValue(const std::string& value) {
  const std::size_t space = value.find(' ');
  if (space == std::string::npos) return LeaderAddress{value, ""};
  return LeaderAddress{value.substr(0, space), value.substr(space + 1)};
}

Result<std::string> parseAdvertisedHttpUrl(const std::string& value) {
  std::string rest;
  for (const char* scheme : {"http://", "https://"}) {
    if (value.rfind(scheme, 0) == 0) rest = value.substr(std::string_view(scheme).size());
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string why = rest.empty() ? "not http(s)://HOST:PORT" : whyNotAdvertisable("tcp://" + rest);
  if (!why.empty()) {
    return Status::invalid("--advertise-http " + value + ": " + why +
                           " (the web address of this vrmd others connect to)");
  }
  return value.substr(0, value.find("://") + 3) + rest + "/";
}

Result<std::string> defaultAdvertisedHttpUrl(const std::string& listenAddress, std::uint16_t port,
                                             bool tls,
                                             const std::string& advertisedClientEndpoint) {
  if (port == 0) {
    return Status::invalid(
        "--http with port 0 on etcd: its port is not known before the election; give "
        "--advertise-http URL or a port");
  }
  std::string host = listenAddress;
  if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]") {
    const std::string rest = advertisedClientEndpoint.substr(std::string_view("tcp://").size());
    host = rest.substr(0, rest.rfind(':'));
  } else if (host.find(':') != std::string::npos && host.front() != '[') {
    host = "[" + host + "]";  // IPv6
  }
  return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port) + "/";
}

Result<std::chrono::seconds> parseLeaseTtl(const std::string& value) {
  auto ns = parseDurationNs(value);
  if (!ns) return Status::invalid("--lease-ttl " + value + ": " + ns.status().message());
  if (*ns % kNsPerSec != 0 || *ns < kNsPerSec || *ns > 300 * kNsPerSec) {
    return Status::invalid("--lease-ttl " + value +
                           ": must be whole seconds from 1s to 300s (etcd's leases count seconds)");
  }
  return std::chrono::seconds(*ns / kNsPerSec);
}

}  // namespace vrm::manager
