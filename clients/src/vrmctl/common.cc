#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"

namespace vrm::vrmctl {

int exitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound: return kExitBadInput;
    case StatusCode::kUnavailable: return kExitUnreachable;
    default: return kExitRejected;
  }
}

client::Client Context::makeClient() const {
  client::ClientOptions o;
  o.endpoint = endpoint;
  o.timeout = std::chrono::milliseconds(timeoutMs);
  o.requester = owner;
  return client::Client(o);
}

int Context::fail(const Status& status) const {
  std::cerr << "vrmctl: " << status.toString() << "\n";
  if (json) {
    std::cout << nlohmann::json{{"error", statusCodeName(status.code())},
                                {"message", status.message()}}
                     .dump(2)
              << "\n";
  }
  return exitCodeFor(status);
}

}  // namespace vrm::vrmctl
