// A daemon's command line with a config file: every option of the command line can also be
// set in the file given by --config (systemd units pass /etc/vrm/<daemon>.conf); a flag given
// on the command line overrides the file.
//
// The file is the TOML subset CLI11 reads: one `key = value` per line, the key an option's long
// name without "--" (`clients = "tcp://127.0.0.1:5555"`, `insecure = true`,
// `backend-param = ["accel=tcg", "cpu=max"]`), `#` comments. No sections.
//
// Errors name their source: a key that is no option, a key that cannot be set from a file
// (config itself), or a value its option refuses are reported as "config FILE: ..." naming the
// key, before the command line is looked at; the command line's own errors name the flag.
// Nothing is read implicitly: without --config only the command line counts (a checkout's
// daemon on a machine where the package is installed does not pick up /etc/vrm by surprise).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace vrm::daemon {

// Adds `--config FILE` to `app`; `example` is the packaged path shown in --help.
void addConfigOption(CLI::App& app, const std::string& example);

struct CommandLine {
  enum class Outcome {
    kRun,    // parsed: the daemon starts
    kHelp,   // --help: print `text` to stdout, exit 0
    kError,  // print `text` to stderr, exit 2
  };
  Outcome outcome = Outcome::kRun;
  std::string text;
};

// Parses argv (and the --config file if given) into the storage `app`'s options were bound to.
// The options must store into plain variables (no callbacks with other effects): the file is
// first parsed on its own, so that its errors are attributed to it, and then together with the
// command line, which assigns every value again.
CommandLine parseCommandLine(CLI::App& app, int argc, const char* const argv[]);

}  // namespace vrm::daemon
