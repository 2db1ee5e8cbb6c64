#include "vrm/daemon/command_line.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

namespace vrm::daemon {

namespace {

constexpr const char* kConfigOption = "--config";

// The --config argument, if any, as CLI11 will see it ("--config F" or "--config=F").
std::string configPathIn(int argc, const char* const argv[]) {
  const std::string flag = kConfigOption;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg == flag && i + 1 < argc) path = argv[++i];
    if (arg.rfind(flag + "=", 0) == 0) path = arg.substr(flag.size() + 1);
  }
  return path;
}

// Every key of the file names an option that may be set from a file; "" when so.
std::string checkKeys(const CLI::App& app, const std::string& path) {
  std::ifstream in(path);
  if (!in) return "cannot read it: " + std::string(std::strerror(errno));
  std::vector<CLI::ConfigItem> items;
  try {
    items = app.get_config_formatter()->from_config(in);
  } catch (const CLI::Error& e) {
    return e.what();
  }
  for (const CLI::ConfigItem& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // section markers
    if (!item.parents.empty()) {
      return "key '" + item.fullname() + "': sections are not used (write '" + item.name +
             " = ...' at the top level)";
    }
    const CLI::Option* option = app.get_option_no_throw("--" + item.name);
    if (option == nullptr) {
      return "unknown key '" + item.name +
             "' (keys are the long options without '--'; --help lists them)";
    }
    if (!option->get_configurable()) {
      return "key '" + item.name + "' cannot be set in a config file";
    }
  }
  return "";
}

}  // namespace

void addConfigOption(CLI::App& app, const std::string& example) {
  app.set_config(kConfigOption, "",
                 "read options from this file (e.g. " + example +
                     "): 'key = value' lines, keys the long options without '--'; flags "
                     "on the command line override it");
}

CommandLine parseCommandLine(CLI::App& app, int argc, const char* const argv[]) {
  auto parse = [&app](int n, const char* const args[]) -> CommandLine {
    try {
      app.parse(n, args);
    } catch (const CLI::CallForHelp&) {
      return {CommandLine::Outcome::kHelp, app.help()};
    } catch (const CLI::CallForAllHelp&) {
      return {CommandLine::Outcome::kHelp, app.help("", CLI::AppFormatMode::All)};
    } catch (const CLI::ParseError& e) {
      return {CommandLine::Outcome::kError, e.what()};
    }
    return {};
  };

  const std::string path = configPathIn(argc, argv);
  if (!path.empty()) {
    const std::string prefix = "config " + path + ": ";
    if (std::string bad = checkKeys(app, path); !bad.empty()) {
      return {CommandLine::Outcome::kError, prefix + bad};
    }
    // The file on its own, required options waived: any error is the file's.
    std::vector<CLI::Option*> required;
    for (CLI::Option* option : app.get_options()) {
      if (option->get_required()) {
        required.push_back(option);
        option->required(false);
      }
    }
    const char* const fileOnly[] = {argv[0], kConfigOption, path.c_str()};
    CommandLine alone = parse(3, fileOnly);
    for (CLI::Option* option : required) option->required(true);
    if (alone.outcome != CommandLine::Outcome::kRun) {
      return {CommandLine::Outcome::kError, prefix + alone.text};
    }
  }
  return parse(argc, argv);
}

}  // namespace vrm::daemon
