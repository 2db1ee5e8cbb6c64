// What a vrmd replica on etcd is told besides --store (README: High availability): the client
// endpoint it advertises (the leader key's value, where standbys redirect clients) and the TTL
// of its lease (how long a silent leader keeps leading). Both parsed here so that vrmd and the
// tests read them alike; errors are invalid-argument naming the flag.
#pragma once

#include <chrono>
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

}  // namespace vrm::manager
