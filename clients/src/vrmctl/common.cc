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

void addOutputOptions(CLI::App& command, Context& ctx) {
  command.add_option("-f,--format", ctx.format,
                     "output: text (default), json, yaml, table, value, csv (list, show, hosts, "
                     "vms, report; the others: text or json)");
  command.add_option("-c,--column", ctx.columns,
                     "only this column (a JSON field name; repeatable; in the order given)");
  command.add_flag("--json", ctx.json, "machine-readable output (same as -f json)");
}

Status checkFormatFor(const std::string& command, const Context& ctx) {
  auto format = parseOutputFormat(ctx.format);
  if (!format) return format.status();
  static const char* kFormatted[] = {"list", "show", "hosts", "vms", "report"};
  for (const char* c : kFormatted) {
    if (command == c) return Status::ok();
  }
  if (*format != OutputFormat::kText && *format != OutputFormat::kJson) {
    return Status::invalid("-f " + ctx.format + ": " + command +
                           " prints text or json (-f yaml|table|value|csv: list, show, hosts, "
                           "vms, report)");
  }
  if (!ctx.columns.empty()) {
    return Status::invalid("-c/--column: only list, show, hosts, vms, report");
  }
  return Status::ok();
}

int Context::print(const std::string& jsonText,
                   const std::function<Result<std::string>()>& text) const {
  auto format = parseOutputFormat(this->format);
  if (!format) return fail(format.status());
  if (*format == OutputFormat::kText && json) format = OutputFormat::kJson;
  if (*format == OutputFormat::kText) {
    if (!columns.empty()) {
      return fail(Status::invalid("-c/--column needs -f json|yaml|table|value|csv"));
    }
    auto shown = text();
    if (!shown) return fail(shown.status());
    std::cout << *shown;
    return kExitOk;
  }
  auto out = formatOutput(nlohmann::json::parse(jsonText), *format, columns);
  if (!out) return fail(out.status());
  std::cout << *out;
  return kExitOk;
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
