#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"

namespace vrm::vrmctl {

int exitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
      return kExitBadInput;
    case StatusCode::kUnavailable:
      return kExitUnreachable;
    default:
      return kExitRejected;
  }
}

std::optional<protocol::CurveClientKeys> Context::curveKeys() const {
  if (serverKey.empty() && clientKey.empty()) return std::nullopt;
  auto badInput = [this](const Status& s) {
    fail(s);
    std::exit(kExitBadInput);
  };
  if (serverKey.empty() || clientKey.empty()) {
    badInput(
        Status::invalid("CURVE needs both vrmd's public key (--server-key, VRM_SERVER_KEY) "
                        "and our key pair (--client-key, VRM_CLIENT_KEY)"));
  }
  auto server = protocol::resolvePublicKey(serverKey);
  if (!server) badInput(Status::invalid("--server-key: " + server.status().message()));
  auto own = protocol::loadCurveKeyPair(clientKey);
  if (!own) badInput(Status::invalid("--client-key: " + own.status().message()));
  return protocol::CurveClientKeys{*server, *own};
}

client::Client Context::makeClient() const {
  client::ClientOptions o;
  o.endpoint = endpoint;
  o.timeout = std::chrono::milliseconds(timeoutMs);
  o.requester = owner;
  if (auto keys = curveKeys()) {
    o.serverPublicKey = keys->serverPublicKey;
    o.publicKey = keys->own.publicKey;
    o.secretKey = keys->own.secretKey;
  }
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
