// What a vrmd replica on etcd is told besides --store (README: High availability): the client
// endpoint it advertises (the leader key's value, where standbys redirect clients) and the TTL
// of its lease (how long a silent leader keeps leading). Both parsed here so that vrmd and the
// tests read them alike; errors are invalid-argument naming the flag.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "vrm/protocol/status.h"

namespace vrm::manager {

// --advertise: "tcp://HOST:PORT" that other machines can connect to: a host that is not empty,
// "*" or a wildcard address (0.0.0.0, [::]), a port in 1..65535 (not "*" or 0).
Result<std::string> parseAdvertisedEndpoint(const std::string& value);

// The advertised endpoint when --advertise is not given: --clients itself, when it is one
// others can connect to (parseAdvertisedEndpoint); otherwise invalid-argument asking for
// --advertise.
Result<std::string> defaultAdvertisedEndpoint(const std::string& clientEndpoint);

// --lease-ttl: a duration (parseDurationNs: "3s", "5000ms") of whole seconds, 1 s to 300 s
// (etcd's leases count seconds; etcd itself raises a TTL below its minimum, 1.5 x its election
// timeout, 2 s by default).
Result<std::chrono::seconds> parseLeaseTtl(const std::string& value);

// Where the leader is, as its election key's value says: the advertised client endpoint and,
// with --http, the advertised web URL, where standbys send clients and browsers.
struct LeaderAddress {
  std::string clientEndpoint;  // "tcp://HOST:PORT"; "" = no leader known
  std::string httpUrl;         // "http://HOST:PORT/" or https; "" = none advertised
};
// The value's text: the endpoint, then a space and the URL when there is one. A value with
// no space (a vrmd from before the URL) is an endpoint alone.
std::string formatLeaderValue(const LeaderAddress& leader);
LeaderAddress parseLeaderValue(const std::string& value);

// --advertise-http: "http://HOST:PORT" or "https://HOST:PORT" (a trailing '/' allowed) others
// can reach, with a host as for --advertise. Returned with a trailing '/'.
Result<std::string> parseAdvertisedHttpUrl(const std::string& value);

// The advertised web URL when --advertise-http is not given: https:// with TLS, else http://;
// the --http address, or the advertised client endpoint's host when it listens on a wildcard
// (0.0.0.0, ::); the port listened on. Invalid-argument (asking for --advertise-http) for port
// 0, whose port is not known before the election.
Result<std::string> defaultAdvertisedHttpUrl(const std::string& listenAddress, std::uint16_t port,
                                             bool tls, const std::string& advertisedClientEndpoint);

}  // namespace vrm::manager
