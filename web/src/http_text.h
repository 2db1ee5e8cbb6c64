// Text helpers of the HTTP edge: URL decoding, query strings, path segments, reservation ids and
// the Prometheus text format's escapes. Pure functions of their arguments, thread-safe.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vrm::web {

// A request the client got wrong. Thrown by the parsers of request text and caught by the
// router, which answers 400 (invalid-argument) with `what()` as the message.
struct BadRequest : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A query string's parameters in their order; a key may repeat.
using Query = std::multimap<std::string, std::string>;

// Decodes %XX and, when `plusIsSpace` (query strings), '+'. Throws BadRequest on a malformed
// escape.
std::string percentDecode(std::string_view s, bool plusIsSpace);

// Escapes every byte but RFC 3986's unreserved characters (letters, digits, - . _ ~) as %XX:
// a text made safe to be one segment of a URL path.
std::string percentEncode(std::string_view s);

// "a=1&b=x+y&c" -> {a: "1", b: "x y", c: ""}; empty pairs are skipped. Throws BadRequest.
Query parseQuery(std::string_view query);

// "/api//reservations/" -> {"api", "reservations"}: the non-empty segments, not decoded.
std::vector<std::string> splitPath(std::string_view path);

// 1 to 64 letters, digits, '-', '_' or '.': what a reservation id may be in a URL.
bool isReservationId(const std::string& id);

}  // namespace vrm::web
