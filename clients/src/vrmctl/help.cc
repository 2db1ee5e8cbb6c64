// --help examples for every subcommand, and `vrmctl completion bash|zsh`: bash and zsh completion
// scripts generated from the CLI11 command tree and one table of option values (valuesOf), so
// both know every subcommand and option there is.
#include <iostream>
#include <map>
#include <set>

#include "commands.h"
#include "vrm/planner/migration_model.h"

namespace vrm::vrmctl {
namespace {

// Each subcommand's examples: whole command lines a person can copy. tests/cli/vrmctl_help_test
// runs every one of them (against an unreachable vrmd for those that need one) to keep them true.
const std::map<std::string, std::vector<std::string>>& examples() {
  static const std::map<std::string, std::vector<std::string>> kExamples = {
      {"submit",
       {"vrmctl submit --hosts 1 --start +2h --duration 2h --template bmi-decoder",
        "vrmctl submit --host node1 --host node2 --start 2030-01-15T14:00 --end 2030-01-15T16:00 "
        "--template bmi-decoder --label 'BMI session'",
        "vrmctl submit --hosts 2 --start +1d --duration 4h --template bmi-decoder "
        "--objective degradation --max-vm-time 30s --displaced return",
        "vrmctl submit --vms 4 --start +30min --duration 1h --template bmi-decoder --wait",
        "vrmctl --json submit --hosts 1 --start +3h --duration 1h --template bmi-decoder "
        "--dry-run"}},
      {"show", {"vrmctl show r1", "vrmctl show r1 -f yaml", "vrmctl show r1 -f value -c state"}},
      {"list",
       {"vrmctl list", "vrmctl list --state admitted --state ready --owner lab-bmi",
        "vrmctl list --from now --to +1d -f csv -c id -c state -c start"}},
      {"cancel", {"vrmctl cancel r1", "vrmctl --json cancel r1"}},
      {"watch",
       {"vrmctl watch r1 --until ready",
        "vrmctl --json --events tcp://127.0.0.1:5557 watch r1 --timeout 2h"}},
      {"hosts", {"vrmctl hosts", "vrmctl hosts -f table", "vrmctl hosts -f value -c name"}},
      {"vms", {"vrmctl vms", "vrmctl vms -f csv -c name -c host"}},
      {"plan",
       {"vrmctl plan --cluster examples/cluster.yaml --hosts 1 --start +2h --duration 2h "
        "--template bmi-decoder",
        "vrmctl plan --cluster examples/cluster.yaml --host node1 --start +2h --duration 2h "
        "--template bmi-decoder --objective degradation --max-vm-time 2min --json"}},
      {"predict",
       {"vrmctl predict --model qemu-precopy --memory 4GiB --bandwidth 1Gbit/s "
        "--dirty-rate 20MiB/s --json",
        "vrmctl predict --model simple --memory 8GiB --bandwidth 10Gbit/s"}},
      {"calibrate",
       {"vrmctl calibrate --model simple --observations migrations.csv > params.json",
        "vrmctl calibrate --model simple --observations migrations.csv --report --json"}},
      {"keygen", {"vrmctl keygen --dir keys vrmd node1 lab-bmi", "vrmctl keygen --token"}},
      {"hash-token",
       {"vrmctl hash-token 0123456789abcdef0123456789abcdef",
        "vrmctl keygen --token | vrmctl hash-token"}},
      {"backup", {"vrmctl backup vrm-backup.db", "vrmctl --json backup /tmp/vrm-backup.db"}},
      {"report",
       {"vrmctl report --from -7d --to now --by owner",
        "vrmctl report --from 2030-01-01T00:00 --to 2030-02-01T00:00 --by host --csv",
        "vrmctl --json report --from -1d --to +1d"}},
      {"completion",
       {"source <(vrmctl completion bash)",
        "vrmctl completion bash > ~/.local/share/bash-completion/completions/vrmctl",
        "mkdir -p ~/.zfunc && vrmctl completion zsh > ~/.zfunc/_vrmctl"}},
  };
  return kExamples;
}

std::vector<const CLI::App*> subcommandsOf(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App*) { return true; });
}

std::vector<const CLI::Option*> optionsOf(const CLI::App& app) {
  return app.get_options([](const CLI::Option* o) { return o->nonpositional(); });
}

std::string join(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

std::vector<std::string> namesOf(const CLI::Option& o) {
  std::vector<std::string> names;
  for (const auto& s : o.get_snames()) names.push_back("-" + s);
  for (const auto& l : o.get_lnames()) names.push_back("--" + l);
  return names;
}

// What an option's (or a positional's, by its name) value can be, for completion: a word list,
// or "FILE" / "DIR". Both shells' scripts are generated from this one table.
std::string valuesOf(const std::string& option) {
  static const std::map<std::string, std::string> kValues = [] {
    std::vector<std::string> states;
    for (int s = 0; s <= static_cast<int>(ReservationState::kFailed); ++s) {
      states.push_back(stateName(static_cast<ReservationState>(s)));
    }
    const std::string formats = "text json yaml table value csv";
    return std::map<std::string, std::string>{
        {"--objective", std::string(objectiveName(Objective::kMakespan)) + " " +
                            objectiveName(Objective::kDegradation)},
        {"--displaced",
         std::string(displacedName(Displaced::kStay)) + " " + displacedName(Displaced::kReturn)},
        {"-f", formats},
        {"--format", formats},
        {"--state", join(states)},
        {"--until", join(states)},
        {"--model", join(planner::migrationModelNames())},
        {"--live-model", join(planner::migrationModelNames())},
        {"--scr-model", join(planner::migrationModelNames())},
        {"--suspend", "when-no-room never"},
        {"--workload", "cpu memory other"},
        {"--by", "owner host"},
        {"--config", "FILE"},
        {"--cluster", "FILE"},
        {"--observations", "FILE"},
        {"--params", "FILE"},
        {"--dirty-log", "FILE"},
        {"--ssh-key", "FILE"},
        {"--server-key", "FILE"},
        {"--client-key", "FILE"},
        {"--dir", "DIR"},
        {"shell", "bash zsh"},  // completion's positional
        {"FILE", "FILE"},       // backup's positional
    };
  }();
  auto it = kValues.find(option);
  return it == kValues.end() ? "" : it->second;
}

// One scope of the script: the options of `app`, which of them take a value, and how to
// complete each value.
void writeScope(std::ostream& out, const CLI::App& app, const std::string& indent) {
  std::vector<std::string> options, valued;
  for (const CLI::Option* o : optionsOf(app)) {
    for (const auto& n : namesOf(*o)) {
      options.push_back(n);
      if (o->get_items_expected_max() > 0) valued.push_back(n);
    }
  }
  out << indent << "opts=\"" << join(options) << "\"\n";
  out << indent << "case \"$prev\" in\n";
  for (const auto& n : valued) {
    const std::string values = valuesOf(n);
    if (values == "FILE") {
      out << indent << "  " << n << ") COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n";
    } else if (values == "DIR") {
      out << indent << "  " << n << ") COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n";
    } else {
      out << indent << "  " << n << ") COMPREPLY=($(compgen -W \"" << values
          << "\" -- \"$cur\")); return ;;\n";
    }
  }
  out << indent << "esac\n";
}

void writeBashCompletion(std::ostream& out, const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : subcommandsOf(app)) names.push_back(sub->get_name());
  out << "# bash completion for vrmctl; generated by `vrmctl completion bash` from vrmctl's own\n"
         "# command line, so it lists every subcommand and option of the vrmctl that made it.\n"
         "_vrmctl() {\n"
         "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"\" cmd=\"\" opts i w\n"
         "  ((COMP_CWORD > 0)) && prev=\"${COMP_WORDS[COMP_CWORD - 1]}\"\n"
         "  COMPREPLY=()\n";
  // The subcommand is the first word that is neither an option of vrmctl's nor its value.
  std::vector<std::string> topValued;
  for (const CLI::Option* o : optionsOf(app)) {
    if (o->get_items_expected_max() == 0) continue;
    for (const auto& n : namesOf(*o)) topValued.push_back(n);
  }
  out << "  local top=\" " << join(topValued)
      << " \"\n"
         "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
         "    w=\"${COMP_WORDS[i]}\"\n"
         "    if [[ $top == *\" $w \"* ]]; then ((i++)); continue; fi\n"
         "    [[ $w == -* ]] && continue\n"
         "    cmd=\"$w\"\n"
         "    break\n"
         "  done\n"
         "  case \"$cmd\" in\n"
         "    \"\")\n";
  writeScope(out, app, "      ");
  out << "      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"));\n"
         "      else COMPREPLY=($(compgen -W \""
      << join(names)
      << "\" -- \"$cur\")); fi\n"
         "      return ;;\n";
  for (const CLI::App* sub : subcommandsOf(app)) {
    out << "    " << sub->get_name() << ")\n";
    writeScope(out, *sub, "      ");
    if (sub->get_name() == "completion") {
      out << "      [[ $cur != -* ]] && COMPREPLY=($(compgen -W \"" << valuesOf("shell")
          << "\" -- \"$cur\")) && return\n";
    }
    out << "      [[ $cur == -* ]] && COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
           "      return ;;\n";
  }
  out << "  esac\n"
         "}\n"
         "complete -F _vrmctl vrmctl\n";
}

// A zsh _arguments or _describe description: the first line, with the characters that end or
// split a spec ([ ] : \ and the spec's own single quotes) escaped.
std::string zshDescription(const std::string& text) {
  const std::string d = text.substr(0, text.find('\n'));
  std::string out;
  for (char c : d) {
    if (c == '[' || c == ']' || c == ':' || c == '\\') out += '\\';
    if (c == '\'') {
      out += "'\\''";
      continue;
    }
    out += c;
  }
  return out;
}

// The action completing an option's or a positional's value: a word list, files, directories,
// or nothing to offer (a number, a name, a time).
std::string zshAction(const std::string& option, const std::string& label) {
  const std::string values = valuesOf(option);
  if (values == "FILE") return ":" + label + ":_files";
  if (values == "DIR") return ":" + label + ":_files -/";
  if (values.empty()) return ":" + label + ": ";
  return ":" + label + ":(" + values + ")";
}

// One _arguments spec per option of `app` (short and long spellings grouped, repeatable ones
// starred), then its positionals; each line ends in a continuation.
void writeZshSpecs(std::ostream& out, const CLI::App& app, const std::string& indent) {
  for (const CLI::Option* o : optionsOf(app)) {
    const auto names = namesOf(*o);
    const bool repeatable = o->get_items_expected_max() > 1;  // a vector: --host A --host B
    const bool valued = o->get_items_expected_max() > 0;
    std::string label = o->get_type_name().empty() ? "value" : o->get_type_name();
    for (auto& c : label) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    label = label.substr(0, label.find_first_of(" :=["));
    std::string spec;
    if (names.size() > 1) {
      spec = (repeatable ? "'*" : "'(" + join(names) + ")") + "'{";
      for (std::size_t i = 0; i < names.size(); ++i) spec += (i ? "," : "") + names[i];
      spec += "}'";
    } else {
      spec = (repeatable ? "'*" : "'") + names.front();
    }
    spec += "[" + zshDescription(o->get_description()) + "]";
    if (valued) spec += zshAction(names.back(), label);
    out << indent << spec << "' \\\n";
  }
  int position = 1;
  for (const CLI::Option* o :
       app.get_options([](const CLI::Option* o) { return !o->nonpositional(); })) {
    const std::string name = o->get_name();
    const bool rest = o->get_items_expected_max() > 1;  // keygen's names
    // "N:description:action": zshAction's label is the description here.
    out << indent << "'" << (rest ? std::string("*") : std::to_string(position++))
        << zshAction(name, zshDescription(o->get_description())) << "' \\\n";
  }
}

void writeZshCompletion(std::ostream& out, const CLI::App& app) {
  out << "#compdef vrmctl\n"
         "# zsh completion for vrmctl; generated by `vrmctl completion zsh` from vrmctl's own\n"
         "# command line, so it lists every subcommand and option of the vrmctl that made it.\n"
         "# Install it as _vrmctl in a directory of $fpath, or `source <(vrmctl completion zsh)`\n"
         "# after compinit.\n"
         "_vrmctl() {\n"
         "  local curcontext=\"$curcontext\" state line ret=1\n"
         "  typeset -A opt_args\n"
         "  _arguments -C \\\n";
  writeZshSpecs(out, app, "    ");
  out << "    '1:subcommand:->subcommand' \\\n"
         "    '*::argument:->argument' && ret=0\n"
         "  case $state in\n"
         "    subcommand)\n"
         "      local -a subcommands\n"
         "      subcommands=(\n";
  for (const CLI::App* sub : subcommandsOf(app)) {
    out << "        '" << sub->get_name() << ":" << zshDescription(sub->get_description()) << "'\n";
  }
  out << "      )\n"
         "      _describe -t subcommands 'vrmctl subcommand' subcommands && ret=0\n"
         "      ;;\n"
         "    argument)\n"
         "      curcontext=\"${curcontext%:*:*}:vrmctl-$line[1]:\"\n"
         "      case $line[1] in\n";
  for (const CLI::App* sub : subcommandsOf(app)) {
    out << "        " << sub->get_name() << ")\n"
        << "          _arguments \\\n";
    writeZshSpecs(out, *sub, "            ");
    out << "            && ret=0\n"
           "          ;;\n";
  }
  out << "      esac\n"
         "      ;;\n"
         "  esac\n"
         "  return ret\n"
         "}\n"
         "# Autoloaded from $fpath the file is the function's body: complete. Sourced: register.\n"
         "if [[ $funcstack[1] == _vrmctl ]]; then _vrmctl \"$@\"; else compdef _vrmctl vrmctl; "
         "fi\n";
}

}  // namespace

void addHelpAndCompletion(CLI::App& app, Context& ctx) {
  auto shell = std::make_shared<std::string>();
  auto* completion =
      app.add_subcommand("completion", "print a shell completion script for vrmctl (bash or zsh)");
  completion->add_option("shell", *shell, "the shell: bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  completion->callback([&app, &ctx, shell] {
    if (*shell == "zsh") {
      writeZshCompletion(std::cout, app);
    } else {
      writeBashCompletion(std::cout, app);
    }
    ctx.exitCode = kExitOk;
  });
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    auto it = examples().find(sub->get_name());
    if (it == examples().end()) continue;  // tests/cli/vrmctl_help_test fails on this
    std::string footer = "\nExamples:\n";
    for (const auto& line : it->second) footer += "  " + line + "\n";
    sub->footer(footer);
  }
}

}  // namespace vrm::vrmctl
