// vrmctl's subcommands. Each add*Command registers one CLI11 subcommand; the callback it sets
// stores the exit code in ctx.exitCode. Exit codes (README): 0 ok, 1 rejected, 2 bad input,
// 3 cannot reach vrmd.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "output_format.h"
#include "vrm/client/client.h"
#include "vrm/protocol/curve.h"

namespace vrm::vrmctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRejected = 1;
inline constexpr int kExitBadInput = 2;
inline constexpr int kExitUnreachable = 3;

struct Context {
  std::string endpoint = "tcp://127.0.0.1:5555";
  std::string owner;           // empty with a client key: vrmd uses the key's name
  std::string serverKey;       // vrmd's public key: Z85 text or a file holding it; empty = no CURVE
  std::string clientKey;       // path of our key pair (.key file)
  std::string eventsEndpoint;  // vrmd's event stream (watch); empty = poll
  bool json = false;           // --json, or -f json: JSON wherever a command has it
  std::string format = "text";       // -f/--format (output_format.h); list, show, hosts, vms
  std::vector<std::string> columns;  // -c/--column
  int timeoutMs = 5000;
  int exitCode = kExitOk;

  // A client for vrmd with these settings. Unreadable or malformed keys are bad input: the
  // error is printed and vrmctl exits with kExitBadInput.
  client::Client makeClient() const;
  // The CURVE keys for a socket of our own (watch's subscriber); nullopt without keys. Exits
  // like makeClient on bad keys.
  std::optional<protocol::CurveClientKeys> curveKeys() const;
  // Prints `status` as one line on stderr (and as {"error":...} on stdout with --json) and
  // returns its exit code.
  int fail(const Status& status) const;
  // Prints a listing or show command's result: `jsonText` (its JSON) in the chosen format, or
  // `text()` for the default text. Returns the exit code (bad input for an unknown column; the
  // code of text()'s failure, which it printed).
  int print(const std::string& jsonText, const std::function<Result<std::string>()>& text) const;
};

// Adds -f/--format, -c/--column and --json to `command` (and to vrmctl itself), bound to ctx.
void addOutputOptions(CLI::App& command, Context& ctx);
// The formats a command without its own support for them refuses (-f yaml on submit...):
// invalid-argument when `format` is not text or json and `command` is not a listing or show.
Status checkFormatFor(const std::string& command, const Context& ctx);

int exitCodeFor(const Status& status);
// One event as a single-line JSON object (watch --json).
std::string eventJsonLine(const ReservationEvent& e);

void addReservationCommands(CLI::App& app, Context& ctx);  // submit show list cancel watch
void addClusterCommands(CLI::App& app, Context& ctx);      // hosts vms
void addPlanCommand(CLI::App& app, Context& ctx);          // plan (offline what-if)
void addModelCommands(CLI::App& app, Context& ctx);        // predict calibrate (offline)
void addKeyCommands(CLI::App& app, Context& ctx);          // keygen (offline)
void addBackupCommand(CLI::App& app, Context& ctx);        // backup (admins)
void addReportCommand(CLI::App& app, Context& ctx);        // report (usage over a window)
// completion (offline), and each subcommand's --help examples: call after the others.
void addHelpAndCompletion(CLI::App& app, Context& ctx);

}  // namespace vrm::vrmctl
