// The OpenAPI 3 document of the HTTP API (web/openapi.json, compiled in so the served document
// is always the one of this build), served at GET /api/openapi.json. web_test checks that it
// lists exactly the router's routes and that the server answers as it says.
#pragma once

#include <string_view>

namespace vrm::web {

// The document's JSON text. Static storage; thread-safe.
std::string_view openApiDocument();

}  // namespace vrm::web
