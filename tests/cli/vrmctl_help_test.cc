// Runs the built vrmctl (VRMCTL_PATH) as a user would, with no daemon: every subcommand's --help
// shows examples and every example runs as written; the bash and zsh completion scripts vrmctl
// generates complete subcommands, options and option values in a real bash and a real zsh;
// nothing is coloured.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "command_run.h"

namespace {

namespace fs = std::filesystem;

using ShellRun = vrm::cli_test::CommandRun;  // stdout and stderr

std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The long options a --help text lists: each indented option line's first "--name".
std::vector<std::string> longOptionsListed(const std::string& help) {
  std::vector<std::string> options;
  for (const auto& line : lines(help)) {
    auto at = line.find("--");
    if (line.rfind("  ", 0) != 0 || at == std::string::npos || at > 8) continue;
    options.push_back(line.substr(at, line.find_first_of(" ,", at) - at));
  }
  return options;
}

// Each test gets a directory as its HOME and working directory, `vrmctl` on its PATH, and a
// vrmd endpoint nobody listens on (asking it fails after 300 ms: exit 3).
class VrmctlHelpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("vrmctl_help_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "bin");
    fs::create_directories(dir_ / ".local/share/bash-completion/completions");
    fs::create_symlink(VRMCTL_PATH, dir_ / "bin" / "vrmctl");
    fs::create_symlink(fs::path(VRM_SOURCE_DIR) / "examples", dir_ / "examples");
    // Observations of a "simple" migration (2 s overhead, 80% goodput) for calibrate's examples.
    std::ofstream csv(dir_ / "migrations.csv");
    csv << "memory_bytes,nonzero_memory_bytes,bandwidth_bytes_per_sec,total_time_s\n";
    for (int i = 0; i < 40; ++i) {
      const double memory = (1 + i % 8) * 1073741824.0;
      const double nonzero = memory * (0.5 + 0.05 * (i % 10));
      const double bandwidth = i % 3 == 0 ? 125e6 : i % 3 == 1 ? 250e6 : 1.25e9;
      csv << static_cast<long long>(memory) << "," << static_cast<long long>(nonzero) << ","
          << static_cast<long long>(bandwidth) << "," << 2 + nonzero / (0.8 * bandwidth) * 1.001
          << "\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `script` run by bash in the test's directory, with a clean environment.
  ShellRun bash(const std::string& script) const {
    const std::string cmd =
        "cd " + quoted(dir_.string()) +
        " && env -i PATH=" + quoted((dir_ / "bin").string() + ":/usr/bin:/bin") +
        " HOME=" + quoted(dir_.string()) +
        " VRM_ENDPOINT=tcp://127.0.0.1:9 VRM_TIMEOUT_MS=300 bash -c " + quoted(script) + " 2>&1";
    return vrm::cli_test::runCommand(cmd);
  }

  // The subcommands `vrmctl --help` lists.
  std::vector<std::string> subcommands() const {
    std::vector<std::string> names;
    bool in = false;
    for (const auto& line : lines(bash("vrmctl --help").out)) {
      if (line.rfind("Subcommands:", 0) == 0) {
        in = true;
      } else if (in && line.rfind("  ", 0) == 0 && line.size() > 2 && line[2] != ' ') {
        names.push_back(line.substr(2, line.find(' ', 2) - 2));
      } else if (in && line.empty()) {
        break;
      }
    }
    return names;
  }

  // What the generated completion offers for the words of a command line (the last one is the
  // word being completed), sorted.
  std::set<std::string> complete(const std::vector<std::string>& words) const {
    std::string array;
    for (const auto& w : words) array += " " + quoted(w);
    ShellRun r = bash("source vrmctl.bash && COMP_WORDS=(" + array +
                      ") && COMP_CWORD=" + std::to_string(words.size() - 1) +
                      "; _vrmctl; printf '%s\\n' \"${COMPREPLY[@]}\"");
    EXPECT_EQ(r.exitCode, 0) << r.out;
    std::set<std::string> offered;
    for (const auto& line : lines(r.out)) {
      if (!line.empty()) offered.insert(line);
    }
    return offered;
  }

  // What zsh's completion system offers for `line` (its last word is completed), sorted: the
  // script vrmctl generated is autoloaded from $fpath as _vrmctl (as the vrmctl package installs
  // it), and tests/cli/zsh_complete.zsh types the line into an interactive zsh under a
  // pseudo-terminal, presses TAB and prints the candidates.
  std::set<std::string> zshComplete(const std::string& line) const {
    ShellRun r = bash("timeout 60 zsh " +
                      quoted(std::string(VRM_SOURCE_DIR) + "/tests/cli/zsh_complete.zsh") +
                      " zfunc " + quoted(line));
    EXPECT_EQ(r.exitCode, 0) << line << "\n" << r.out;
    std::set<std::string> offered;
    for (const auto& l : lines(r.out)) {
      if (!l.empty()) offered.insert(l);
    }
    return offered;
  }

  fs::path dir_;
};

// Ensures every subcommand's --help ends with examples, and every example runs as written: the
// offline ones succeed, the others get as far as asking vrmd (exit 3, unreachable) — never exit
// 2, which would mean the example itself is wrong.
TEST_F(VrmctlHelpTest, EverySubcommandHasExamplesThatRun) {
  const std::set<std::string> online = {"submit", "show", "list",   "cancel", "watch",
                                        "hosts",  "vms",  "backup", "report"};
  const auto names = subcommands();
  ASSERT_GE(names.size(), 13u) << bash("vrmctl --help").out;
  std::size_t ran = 0;
  for (const auto& name : names) {
    const ShellRun help = bash("vrmctl " + name + " --help");
    EXPECT_EQ(help.exitCode, 0) << name;
    const auto helpLines = lines(help.out);
    auto at = std::find(helpLines.begin(), helpLines.end(), "Examples:");
    ASSERT_NE(at, helpLines.end()) << "vrmctl " << name << " --help has no examples:\n" << help.out;
    std::vector<std::string> examples;
    for (++at; at != helpLines.end() && at->rfind("  ", 0) == 0; ++at) {
      examples.push_back(at->substr(2));
    }
    ASSERT_FALSE(examples.empty()) << name;
    for (const auto& example : examples) {
      EXPECT_NE(example.find(name), std::string::npos) << name << ": " << example;
      const ShellRun run = bash(example);
      EXPECT_EQ(run.exitCode, online.count(name) ? 3 : 0) << example << "\n" << run.out;
      ++ran;
    }
  }
  EXPECT_GE(ran, 2 * names.size()) << "at least two examples each";
}

// Ensures the bash completion generated from vrmctl's command tree offers every subcommand,
// each subcommand's own options, the values of closed sets (objective, displaced, state,
// format), and skips the values of vrmctl's own options when finding the subcommand.
TEST_F(VrmctlHelpTest, BashCompletionKnowsTheCommandTree) {
  ASSERT_EQ(bash("vrmctl completion bash > vrmctl.bash").exitCode, 0);
  ASSERT_EQ(bash("bash -n vrmctl.bash").exitCode, 0) << "the script parses";

  const auto names = subcommands();
  const auto all = complete({"vrmctl", ""});
  EXPECT_EQ(all, std::set<std::string>(names.begin(), names.end()));
  EXPECT_EQ(complete({"vrmctl", "su"}), std::set<std::string>{"submit"});
  EXPECT_EQ(complete({"vrmctl", "submit", "--max"}), std::set<std::string>{"--max-vm-time"});
  EXPECT_EQ(complete({"vrmctl", "submit", "--objective", ""}),
            (std::set<std::string>{"makespan", "degradation"}));
  EXPECT_EQ(complete({"vrmctl", "submit", "--hosts", "1", "--displaced", "r"}),
            std::set<std::string>{"return"});
  EXPECT_EQ(complete({"vrmctl", "--vrmd", "tcp://x:1", "list", "--state", "adm"}),
            std::set<std::string>{"admitted"});
  EXPECT_EQ(complete({"vrmctl", "--json", "hosts", "-f", "c"}), std::set<std::string>{"csv"})
      << "a flag of vrmctl's takes no value: hosts is the subcommand";
  EXPECT_EQ(complete({"vrmctl", "completion", ""}), (std::set<std::string>{"bash", "zsh"}));
  EXPECT_TRUE(complete({"vrmctl", "submit", "--vms", ""}).empty()) << "a number: no words";
  const auto top = complete({"vrmctl", "--"});
  EXPECT_TRUE(top.count("--vrmd") && top.count("--config") && top.count("--help"));
  EXPECT_FALSE(top.count("--objective")) << "submit's option, not vrmctl's";

  // Every long option submit's --help lists is offered after `vrmctl submit --`.
  const auto offered = complete({"vrmctl", "submit", "--"});
  const auto listed = longOptionsListed(bash("vrmctl submit --help").out);
  for (const auto& option : listed) EXPECT_TRUE(offered.count(option)) << option;
  EXPECT_GE(listed.size(), 15u);
}

// Ensures the zsh completion generated from the same command tree and value table as bash's,
// loaded by a real zsh's compinit, offers every subcommand, each subcommand's own options, the
// values of closed sets, files and directories where they are asked for, and skips the values
// of vrmctl's own options when finding the subcommand.
TEST_F(VrmctlHelpTest, ZshCompletionKnowsTheCommandTree) {
  ASSERT_EQ(bash("command -v zsh").exitCode, 0) << "no zsh: scripts/install-deps.sh installs it";
  ASSERT_EQ(bash("mkdir zfunc && vrmctl completion zsh > zfunc/_vrmctl").exitCode, 0);
  ASSERT_EQ(bash("zsh -n zfunc/_vrmctl").exitCode, 0) << "the script parses";
  ASSERT_EQ(bash("head -1 zfunc/_vrmctl").out, "#compdef vrmctl\n");

  const auto names = subcommands();
  EXPECT_EQ(zshComplete("vrmctl "), std::set<std::string>(names.begin(), names.end()));
  EXPECT_EQ(zshComplete("vrmctl su"), std::set<std::string>{"submit"});
  EXPECT_EQ(zshComplete("vrmctl submit --max"), std::set<std::string>{"--max-vm-time"});
  EXPECT_EQ(zshComplete("vrmctl submit --objective "),
            (std::set<std::string>{"makespan", "degradation"}));
  EXPECT_EQ(zshComplete("vrmctl submit --hosts 1 --displaced r"), std::set<std::string>{"return"});
  EXPECT_EQ(zshComplete("vrmctl --vrmd tcp://x:1 list --state adm"),
            std::set<std::string>{"admitted"});
  EXPECT_EQ(zshComplete("vrmctl list --state admitted --state re"),
            (std::set<std::string>{"ready", "rejected", "requested"}))
      << "--state is repeatable";
  EXPECT_EQ(zshComplete("vrmctl --json hosts -f c"), std::set<std::string>{"csv"})
      << "a flag of vrmctl's takes no value: hosts is the subcommand";
  EXPECT_EQ(zshComplete("vrmctl completion "), (std::set<std::string>{"bash", "zsh"}));
  EXPECT_EQ(zshComplete("vrmctl calibrate --model simple --observations migr"),
            std::set<std::string>{"migrations.csv"});
  EXPECT_EQ(zshComplete("vrmctl keygen --dir exa"), std::set<std::string>{"examples"})
      << "directories only";
  EXPECT_TRUE(zshComplete("vrmctl submit --vms ").empty()) << "a number: no words";
  const auto top = zshComplete("vrmctl --");
  EXPECT_TRUE(top.count("--vrmd") && top.count("--config") && top.count("--help"));
  EXPECT_FALSE(top.count("--objective")) << "submit's option, not vrmctl's";

  // Every long option submit's --help lists is offered after `vrmctl submit --`.
  const auto offered = zshComplete("vrmctl submit --");
  const auto listed = longOptionsListed(bash("vrmctl submit --help").out);
  for (const auto& option : listed) EXPECT_TRUE(offered.count(option)) << option;
  EXPECT_GE(listed.size(), 15u);
}

// Ensures vrmctl colours nothing, so NO_COLOR (no-color.org) holds whatever it is set to: no
// escape sequence in any help text or in the completion script.
TEST_F(VrmctlHelpTest, NothingIsColoured) {
  std::string all = bash("vrmctl --help").out + bash("vrmctl completion bash").out +
                    bash("vrmctl completion zsh").out;
  for (const auto& name : subcommands()) all += bash("vrmctl " + name + " --help").out;
  EXPECT_EQ(all.find('\x1b'), std::string::npos);
  EXPECT_GT(all.size(), 5000u);
}

}  // namespace
