// vrmctl: the command line for job managers, lab staff and operators.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "commands.h"

namespace {

using namespace vrm::vrmctl;

// The config file (`key = value`, '#' comments; keys vrmd, events, owner, timeout-ms,
// server-key, client-key) supplies
// defaults: environment variables override it and flags override both. Its path: --config FILE,
// else $VRM_CONFIG, else ~/.config/vrm/vrmctl.conf when it exists.
vrm::Status loadConfig(int argc, char** argv, Context& ctx, std::string* path) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0) *path = argv[i + 1];
  }
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--config=", 9) == 0) *path = argv[i] + 9;
  }
  bool explicitPath = !path->empty();
  if (path->empty()) {
    if (const char* env = std::getenv("VRM_CONFIG"); env && *env) {
      *path = env;
      explicitPath = true;
    } else if (const char* home = std::getenv("HOME"); home && *home) {
      *path = std::string(home) + "/.config/vrm/vrmctl.conf";
    }
  }
  if (path->empty()) return vrm::Status::ok();
  std::ifstream in(*path);
  if (!in) {
    return explicitPath ? vrm::Status::invalid("cannot read config file '" + *path + "'")
                        : vrm::Status::ok();
  }
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t\r"));
      s.erase(s.find_last_not_of(" \t\r") + 1);
      return s;
    };
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      return vrm::Status::invalid(*path + ":" + std::to_string(n) + ": expected key = value");
    }
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    // A comment after a value starts with whitespace and '#'; a value may itself start with
    // '#' (Z85 keys do).
    if (auto c = value.find_first_of(" \t"); c != std::string::npos) {
      auto rest = trim(value.substr(c));
      if (rest.empty() || rest[0] == '#') value = trim(value.substr(0, c));
    }
    if (key == "vrmd") {
      ctx.endpoint = value;
    } else if (key == "events") {
      ctx.eventsEndpoint = value;
    } else if (key == "owner") {
      ctx.owner = value;
    } else if (key == "server-key") {
      ctx.serverKey = value;
    } else if (key == "client-key") {
      ctx.clientKey = value;
    } else if (key == "timeout-ms") {
      char* end = nullptr;
      long ms = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end || ms <= 0) {
        return vrm::Status::invalid(*path + ":" + std::to_string(n) +
                                    ": timeout-ms must be a positive number");
      }
      ctx.timeoutMs = static_cast<int>(ms);
    } else {
      return vrm::Status::invalid(*path + ":" + std::to_string(n) + ": unknown key '" + key +
                                  "' (known: vrmd, events, owner, timeout-ms, server-key, "
                                  "client-key)");
    }
  }
  return vrm::Status::ok();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "vrmctl - reserve dedicated cluster resources for a future window\n\n"
      "Examples:\n"
      "  vrmctl submit --hosts 1 --start +2h --duration 2h --template bmi-decoder\n"
      "  vrmctl show r1\n"
      "  vrmctl watch r1 --until ready\n"
      "  vrmctl list --state admitted --owner lab-bmi --json\n"
      "  vrmctl list -f csv -c id -c state -c start\n"
      "  vrmctl hosts -f value -c name\n"
      "  vrmctl keygen alice      (CURVE keys: alice.key, alice.pub)\n"
      "  vrmctl backup vrm-backup.db   (admins: the store, online)\n"
      "  vrmctl report --from -7d --to now --by owner --csv\n"
      "  vrmctl SUBCOMMAND --help (its options and examples)\n"
      "  source <(vrmctl completion bash)\n\n"
      "Exit codes: 0 ok, 1 rejected, 2 bad input, 3 cannot reach vrmd.\n"
      "Settings: flags, then VRM_* environment variables, then the config file."};
  app.require_subcommand(1);
  Context ctx;
  std::string configPath;
  if (vrm::Status s = loadConfig(argc, argv, ctx, &configPath); !s) {
    std::cerr << "vrmctl: " << s.toString() << "\n";
    return kExitBadInput;
  }
  app.add_option("--config", configPath,
                 "config file of defaults (key = value: vrmd, events, owner, timeout-ms); "
                 "$VRM_CONFIG or ~/.config/vrm/vrmctl.conf. Flags > environment > file")
      ->envname("VRM_CONFIG");
  app.add_option("--vrmd", ctx.endpoint,
                 "vrmd's client endpoint, or several replicas' separated by commas (the one "
                 "that leads is found)")
      ->envname("VRM_ENDPOINT")
      ->capture_default_str();
  app.add_option("--events", ctx.eventsEndpoint, "vrmd's event stream, for watch (else it polls)")
      ->envname("VRM_EVENTS");
  app.add_option("--owner", ctx.owner,
                 "owner of what you submit (default: with a client key, the name vrmd knows the "
                 "key by; without, $USER). Without keys vrmd trusts it as your identity")
      ->envname("VRM_OWNER");
  app.add_option("--server-key", ctx.serverKey,
                 "vrmd's CURVE public key (Z85, or a file holding it, e.g. vrmd.pub)")
      ->envname("VRM_SERVER_KEY");
  app.add_option("--client-key", ctx.clientKey,
                 "our CURVE key pair file (from 'vrmctl keygen NAME': NAME.key)")
      ->envname("VRM_CLIENT_KEY");
  app.add_option("--timeout-ms", ctx.timeoutMs, "how long to wait for vrmd")
      ->envname("VRM_TIMEOUT_MS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  addOutputOptions(app, ctx);
  addReservationCommands(app, ctx);
  addClusterCommands(app, ctx);
  addPlanCommand(app, ctx);
  addModelCommands(app, ctx);
  addKeyCommands(app, ctx);
  addBackupCommand(app, ctx);
  addReportCommand(app, ctx);
  addHelpAndCompletion(app, ctx);
  // Runs after the settings are parsed and before the subcommand.
  app.parse_complete_callback([&ctx, &app] {
    if (ctx.format == "json") ctx.json = true;
    for (const CLI::App* command : app.get_subcommands()) {
      if (vrm::Status s = checkFormatFor(command->get_name(), ctx); !s) {
        throw CLI::ValidationError(s.message());
      }
    }
    if (ctx.owner.empty() && ctx.clientKey.empty()) {
      const char* user = std::getenv("USER");
      ctx.owner = user && *user ? user : "anonymous";
    }
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitBadInput;
  }
  return ctx.exitCode;
}
