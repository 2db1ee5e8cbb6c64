// vrmctl: the command line for job managers, lab staff and operators.
#include <cstdlib>
#include <iostream>

#include "commands.h"

int main(int argc, char** argv) {
  using namespace vrm::vrmctl;
  CLI::App app{
      "vrmctl - reserve dedicated cluster resources for a future window\n\n"
      "Examples:\n"
      "  vrmctl submit --hosts 1 --start +2h --duration 2h --template bmi-decoder\n"
      "  vrmctl show r1\n"
      "  vrmctl watch r1 --until ready\n"
      "  vrmctl list --state admitted --owner lab-bmi --json\n\n"
      "Exit codes: 0 ok, 1 rejected, 2 bad input, 3 cannot reach vrmd."};
  app.require_subcommand(1);
  Context ctx;
  const char* user = std::getenv("USER");
  ctx.owner = user && *user ? user : "anonymous";
  app.add_option("--vrmd", ctx.endpoint, "vrmd's client endpoint")
      ->envname("VRM_ENDPOINT")
      ->capture_default_str();
  app.add_option("--events", ctx.eventsEndpoint, "vrmd's event stream, for watch (else it polls)")
      ->envname("VRM_EVENTS");
  app.add_option("--owner", ctx.owner, "who you are (owner of what you submit)")
      ->envname("VRM_OWNER")
      ->capture_default_str();
  app.add_option("--timeout-ms", ctx.timeoutMs, "how long to wait for vrmd")
      ->envname("VRM_TIMEOUT_MS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--json", ctx.json, "machine-readable output");
  addReservationCommands(app, ctx);
  addClusterCommands(app, ctx);
  addPlanCommand(app, ctx);
  addModelCommands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitBadInput;
  }
  return ctx.exitCode;
}
