#include "vrm/daemon/command_line.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace vrm::daemon {
namespace {

// A daemon-like command line: a required option, a defaulted one, a checked number, a flag, a
// repeatable option.
struct Flags {
  std::string cluster;
  std::string clients = "tcp://127.0.0.1:5555";
  double quantile = 0.95;
  bool insecure = false;
  std::vector<std::string> params;
  std::optional<double> timeScale;
};

class CommandLineTest : public ::testing::Test {
 protected:
  CommandLineTest() {
    app_.add_option("--cluster", flags_.cluster, "cluster file")->required();
    app_.add_option("--clients", flags_.clients, "endpoint");
    app_.add_option("--quantile", flags_.quantile, "q")->check(CLI::Range(0.01, 0.999));
    app_.add_flag("--insecure", flags_.insecure, "no keys");
    app_.add_option("--backend-param", flags_.params, "KEY=VALUE");
    app_.add_option("--time-scale", flags_.timeScale, "x")->check(CLI::PositiveNumber);
    addConfigOption(app_, "/etc/vrm/test.conf");
  }
  ~CommandLineTest() override { std::filesystem::remove(path_); }

  std::string writeConfig(const std::string& text) {
    std::ofstream(path_) << text;
    return path_;
  }
  CommandLine parse(std::vector<std::string> args) {
    args.insert(args.begin(), "vrmd");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    return parseCommandLine(app_, static_cast<int>(argv.size()), argv.data());
  }

  std::string path_ = (std::filesystem::temp_directory_path() /
                       ("vrm-config-test-" + std::to_string(getpid()) + ".conf"))
                          .string();
  Flags flags_;
  CLI::App app_{"test"};
};

// Ensures every kind of option can come from the file, required ones included.
TEST_F(CommandLineTest, FileSetsEveryKindOfOption) {
  const std::string path = writeConfig(
      "# vrmd\ncluster = \"/etc/vrm/cluster.yaml\"\nquantile = 0.9\ninsecure = true\n"
      "backend-param = [\"accel=tcg\", \"cpu=max\"]\ntime-scale = 60\n");
  CommandLine c = parse({"--config", path});
  ASSERT_EQ(c.outcome, CommandLine::Outcome::kRun) << c.text;
  EXPECT_EQ(flags_.cluster, "/etc/vrm/cluster.yaml");
  EXPECT_EQ(flags_.clients, "tcp://127.0.0.1:5555");
  EXPECT_DOUBLE_EQ(flags_.quantile, 0.9);
  EXPECT_TRUE(flags_.insecure);
  EXPECT_EQ(flags_.params, (std::vector<std::string>{"accel=tcg", "cpu=max"}));
  EXPECT_EQ(flags_.timeScale, 60.0);
}

// Ensures a flag on the command line wins over the file.
TEST_F(CommandLineTest, FlagsOverrideTheFile) {
  const std::string path = writeConfig("cluster = a.yaml\nclients = tcp://127.0.0.1:1\n");
  CommandLine c = parse({"--clients", "tcp://127.0.0.1:2", "--config=" + path});
  ASSERT_EQ(c.outcome, CommandLine::Outcome::kRun) << c.text;
  EXPECT_EQ(flags_.cluster, "a.yaml");
  EXPECT_EQ(flags_.clients, "tcp://127.0.0.1:2");
}

// Ensures a misspelt key is an error naming the file and the key.
TEST_F(CommandLineTest, UnknownKeyNamesFileAndKey) {
  const std::string path = writeConfig("cluster = a.yaml\nclientz = tcp://127.0.0.1:1\n");
  CommandLine c = parse({"--config", path});
  ASSERT_EQ(c.outcome, CommandLine::Outcome::kError);
  EXPECT_NE(c.text.find("config " + path + ": unknown key 'clientz'"), std::string::npos) << c.text;
}

// Ensures a value its option refuses is the file's error, naming the key.
TEST_F(CommandLineTest, BadValueNamesFileAndKey) {
  for (const std::string line : {"quantile = 2", "quantile = many", "time-scale = -1"}) {
    const std::string path = writeConfig("cluster = a.yaml\n" + line + "\n");
    CommandLine c = parse({"--config", path});
    ASSERT_EQ(c.outcome, CommandLine::Outcome::kError) << line;
    const std::string key = line.substr(0, line.find(' '));
    EXPECT_NE(c.text.find("config " + path + ": "), std::string::npos) << c.text;
    EXPECT_NE(c.text.find("--" + key), std::string::npos) << c.text;
  }
}

// Ensures sections, the config key itself and a missing file are refused with a reason.
TEST_F(CommandLineTest, UnusableFilesAreRefused) {
  std::string path = writeConfig("[vrmd]\ncluster = a.yaml\n");
  CommandLine c = parse({"--config", path});
  ASSERT_EQ(c.outcome, CommandLine::Outcome::kError);
  EXPECT_NE(c.text.find("sections are not used"), std::string::npos) << c.text;

  path = writeConfig("cluster = a.yaml\nconfig = other.conf\n");
  c = parse({"--config", path});
  ASSERT_EQ(c.outcome, CommandLine::Outcome::kError);
  EXPECT_NE(c.text.find("key 'config' cannot be set in a config file"), std::string::npos)
      << c.text;

  c = parse({"--config", path_ + ".missing"});
  ASSERT_EQ(c.outcome, CommandLine::Outcome::kError);
  EXPECT_NE(c.text.find("config " + path_ + ".missing: cannot read it"), std::string::npos)
      << c.text;
}

// Ensures the command line's own errors and --help come through unchanged.
TEST_F(CommandLineTest, CommandLineErrorsAndHelp) {
  CommandLine c = parse({});
  ASSERT_EQ(c.outcome, CommandLine::Outcome::kError);
  EXPECT_NE(c.text.find("--cluster is required"), std::string::npos) << c.text;
  c = parse({"--help"});
  ASSERT_EQ(c.outcome, CommandLine::Outcome::kHelp);
  EXPECT_NE(c.text.find("--config"), std::string::npos);
  EXPECT_NE(c.text.find("/etc/vrm/test.conf"), std::string::npos);
}

}  // namespace
}  // namespace vrm::daemon
