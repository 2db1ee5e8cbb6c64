// Runs the built vrmctl's offline commands (predict, calibrate) as a user would; VRMCTL_PATH is
// set by clients/CMakeLists.txt.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace {

using nlohmann::json;

struct CommandRun {
  int exitCode = -1;
  std::string out;  // stdout, or stdout + stderr with mergeStderr
};

CommandRun vrmctl(const std::string& args, bool mergeStderr = false) {
  const std::string command =
      std::string(VRMCTL_PATH) + " " + args + (mergeStderr ? " 2>&1" : " 2>/dev/null");
  CommandRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return run;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) run.out.append(buf, n);
  const int status = pclose(pipe);
  run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

json predictJson(const std::string& args) {
  const CommandRun run = vrmctl("predict " + args + " --json");
  EXPECT_EQ(run.exitCode, 0) << args << "\n" << run.out;
  return json::parse(run.out, nullptr, /*allow_exceptions=*/false);
}

std::string tempFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/vrmctl_models_test_" + name;
  std::ofstream(path) << text;
  return path;
}

// Ensures every model prints its required JSON fields with numbers where they are defined.
TEST(VrmctlModelsTest, PredictJsonFieldsPerModel) {
  const std::string vm = "--memory 4GiB --bandwidth 1Gbit/s";
  for (const std::string model : {"simple", "zhao-scr", "liu-base", "liu-refined", "qemu-precopy",
                                  "akoush-bounds", "akoush-avg", "tsakalozos-disk"}) {
    const std::string dirty =
        model.rfind("liu", 0) == 0 || model == "qemu-precopy" || model == "akoush-avg"
            ? " --dirty-rate 2000pages/s"
        : model == "tsakalozos-disk" ? " --disk-size 1GiB --vmm-time 5s"
                                     : "";
    const json j = predictJson("--model " + model + " " + vm + dirty);
    ASSERT_TRUE(j.is_object()) << model;
    for (const char* key : {"total_time_s", "downtime_s", "transferred_bytes"}) {
      EXPECT_TRUE(j[key].is_number()) << model << " " << key;
    }
    EXPECT_TRUE(j["rounds"].is_number_integer()) << model;
    EXPECT_GT(j["total_time_s"].get<double>(), 0) << model;
  }
  EXPECT_TRUE(
      predictJson("--model liu-refined " + vm + " --dirty-rate 10MiB/s")["energy_j"].is_number());
  EXPECT_TRUE(predictJson("--model liu-base " + vm)["energy_j"].is_number());
  const json bounds = predictJson("--model akoush-bounds " + vm);
  for (const char* key :
       {"total_time_min_s", "total_time_max_s", "downtime_min_s", "downtime_max_s"}) {
    EXPECT_TRUE(bounds[key].is_number()) << key;
  }
  // 4 GiB at 125 MB/s is 34.36 s; the upper bound is (5M - 1 page) / B.
  EXPECT_NEAR(bounds["total_time_min_s"].get<double>(), 34.359738368, 1e-6);
  const json qemu = predictJson("--model qemu-precopy " + vm + " --dirty-rate 200MB/s");
  EXPECT_FALSE(qemu["converges"].get<bool>());  // dirtied faster than the link drains
  const json disk = predictJson(
      "--model tsakalozos-disk --bandwidth 1Gbit/s --disk-size 10GiB "
      "--disk-dirty-rate 20MB/s --vmm-time 30s --deadline 2min");
  EXPECT_FALSE(disk["feasible"].get<bool>());
  EXPECT_NEAR(disk["sync_time_s"].get<double>(), 10737418240.0 / 105e6, 1e-6);
}

// Ensures a migration that never converges still prints valid JSON, with null for the
// unbounded figures.
TEST(VrmctlModelsTest, NonConvergingDiskSyncPrintsNull) {
  const json j = predictJson(
      "--model tsakalozos-disk --bandwidth 1Gbit/s --disk-size 10GiB "
      "--disk-dirty-rate 200MB/s");
  ASSERT_TRUE(j.is_object());
  EXPECT_TRUE(j["total_time_s"].is_null());
  EXPECT_TRUE(j["sync_time_s"].is_null());
  EXPECT_FALSE(j["converges"].get<bool>());
  EXPECT_FALSE(j["feasible"].get<bool>());
}

// Ensures the flags map onto model parameters and units are honoured.
TEST(VrmctlModelsTest, FlagsReachTheModel) {
  const json j = predictJson(
      "--model qemu-precopy --memory 1GiB --bandwidth 100MB/s "
      "--downtime-limit 500ms --pre-overhead 2s");
  EXPECT_EQ(j["parameters"]["downtime_limit_s"].get<double>(), 0.5);
  EXPECT_NEAR(j["threshold_bytes"].get<double>(), 50e6, 1e-3);
  // The pre-overhead adds to QEMU's setup (0.05 s by default); the bulk pass is about the
  // memory over the bandwidth.
  EXPECT_EQ(j["phases"][0]["name"], "setup");
  EXPECT_NEAR(j["phases"][0]["seconds"].get<double>(), 2.05, 1e-9);
  EXPECT_NEAR(j["total_time_s"].get<double>(), 2 + 1073741824.0 / 100e6, 0.05 * 10.7);
  const json liu = predictJson(
      "--model liu-base --memory 1GiB --bandwidth 1Gbit/s "
      "--threshold 100 --max-rounds 5 --resume-time 1s");
  EXPECT_EQ(liu["parameters"]["threshold_pages"].get<double>(), 100);
  EXPECT_EQ(liu["parameters"]["max_rounds"].get<double>(), 5);
  const json avg = predictJson(
      "--model akoush-avg --memory 1GiB --bandwidth 1Gbit/s "
      "--threshold 100 --max-rounds 5");
  EXPECT_EQ(avg["parameters"]["stop_pages"].get<double>(), 100);
  EXPECT_EQ(avg["parameters"]["max_iterations"].get<double>(), 5);
  const std::string log = tempFile("dirty.log", "# interval_s=0.5\n100\n200\n");
  const json hist = predictJson(
      "--model akoush-hist --memory 1GiB --bandwidth 1Gbit/s "
      "--dirty-log " +
      log);
  EXPECT_TRUE(hist["total_time_s"].is_number());
}

// Ensures bad input gets a message on stderr and exit code 2.
TEST(VrmctlModelsTest, BadInputExitsWith2) {
  const std::string ok = "--memory 1GiB --bandwidth 1Gbit/s";
  const struct {
    std::string args;
    std::string message;
  } cases[] = {
      {"--model simple --memory -1GiB --bandwidth 1Gbit/s", "cannot be negative"},
      {"--model simple --memory 1GiB --bandwidth 0", "--bandwidth must be positive"},
      {"--model simple --memory 1GiB --bandwidth 1Gbit/s --pre-overhead=-2s", "negative"},
      {"--model simple --memory 1GiB --bandwidth 1Gbyte/s", "unknown rate unit"},
      {"--model simple --memory 1GB --bandwidth 1Gbit/s --pre-overhead 2fortnights",
       "unknown duration unit"},
      {"--model simple --memory 1GiBB --bandwidth 1Gbit/s", "unknown size unit"},
      {"--model no-such-model " + ok, "unknown migration model 'no-such-model'"},
      {"--model simple " + ok + " --dirty-rate 1MB/s", "does not take --dirty-rate"},
      {"--model qemu-precopy " + ok + " --threshold 50", "does not take --threshold"},
      {"--model liu-base " + ok + " --max-rounds 2.5", "whole number"},
      {"--model simple " + ok + " --quantile 1.5", "quantile must be in (0, 1)"},
      {"--model akoush-hist " + ok, "needs --dirty-log"},
      {"--model simple " + ok + " --params /nonexistent/params", "cannot read"},
      {"--model simple --bandwidth 1Gbit/s", "--memory is required"},
  };
  for (const auto& c : cases) {
    const CommandRun run = vrmctl("predict " + c.args, /*mergeStderr=*/true);
    EXPECT_EQ(run.exitCode, 2) << c.args << "\n" << run.out;
    EXPECT_NE(run.out.find(c.message), std::string::npos) << c.args << "\n" << run.out;
  }
  const CommandRun jsonRun = vrmctl("predict --model simple --memory 1GiB --bandwidth 0 --json");
  EXPECT_EQ(jsonRun.exitCode, 2);
  EXPECT_EQ(json::parse(jsonRun.out)["error"], "invalid-argument");
}

// Synthetic observations of a "simple" migration with a 2 s overhead and 80% goodput.
std::string simpleObservationsCsv() {
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0, 0.01);
  std::string csv =
      "# synthetic\nmemory_bytes,nonzero_memory_bytes,bandwidth_bytes_per_sec,"
      "total_time_s,downtime_s\n";
  for (int i = 0; i < 40; ++i) {
    const double memory = (1 + i % 8) * 1073741824.0;
    const double nonzero = memory * (0.5 + 0.05 * (i % 10));
    const double bandwidth = i % 3 == 0 ? 125e6 : i % 3 == 1 ? 250e6 : 1.25e9;
    const double total = (2 + nonzero / (0.8 * bandwidth)) * (1 + noise(rng));
    char line[160];
    std::snprintf(line, sizeof line, "%.0f,%.0f,%.0f,%.6f,%.6f\n", memory, nonzero, bandwidth,
                  total, total);
    csv += line;
  }
  return csv;
}

// Ensures calibrate recovers the known parameters and prints a file predict --params reads
// back, in both the text and the JSON form, with the same predictions.
TEST(VrmctlModelsTest, CalibrateThenPredictWithParams) {
  const std::string csv = tempFile("simple.csv", simpleObservationsCsv());
  const CommandRun text = vrmctl("calibrate --model simple --observations " + csv);
  ASSERT_EQ(text.exitCode, 0) << text.out;
  EXPECT_NE(text.out.find("r2_total_time = 0.99"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("total_time_residual_p99_s = "), std::string::npos);
  const CommandRun asJson = vrmctl("calibrate --model simple --observations " + csv + " --json");
  ASSERT_EQ(asJson.exitCode, 0) << asJson.out;
  const json fit = json::parse(asJson.out);
  EXPECT_NEAR(fit["goodput_factor"].get<double>(), 0.8, 0.02);
  EXPECT_NEAR(fit["overhead_s"].get<double>(), 2, 0.3);
  EXPECT_GT(fit["r2_total_time"].get<double>(), 0.99);
  EXPECT_TRUE(fit["residual_quantiles"]["total_time_s"]["p99"].is_number());

  const std::string textParams = tempFile("simple.params", text.out);
  const std::string jsonParams = tempFile("simple.params.json", asJson.out);
  const std::string vm = "--model simple --memory 4GiB --bandwidth 1Gbit/s --quantile 0.99";
  const json a = predictJson(vm + " --params " + textParams);
  const json b = predictJson(vm + " --params " + jsonParams);
  EXPECT_NEAR(a["total_time_s"].get<double>(), b["total_time_s"].get<double>(), 1e-9);
  EXPECT_NEAR(a["parameters"]["goodput_factor"].get<double>(), 0.8, 0.02);
  EXPECT_GT(a["total_time_s"].get<double>(), a["total_time_mean_s"].get<double>());

  const CommandRun wrongModel = vrmctl(
      "predict --model liu-base --memory 1GiB --bandwidth 1Gbit/s "
      "--params " +
          textParams,
      true);
  EXPECT_EQ(wrongModel.exitCode, 2);
  EXPECT_NE(wrongModel.out.find("calibrates model 'simple'"), std::string::npos);
}

// Ensures calibrate --report replays the observations through the online calibration: the first
// 5 are predicted by the defaults, the rest by the fit made before each was seen, and the summary
// covers exactly the last --last of them (none of which the model in force had been fitted on).
TEST(VrmctlModelsTest, CalibrateReportGivesTheHeldOutErrorOfTheLastN) {
  const std::string csv = tempFile("report.csv", simpleObservationsCsv());
  const CommandRun run =
      vrmctl("calibrate --model simple --observations " + csv + " --report --last 30 --json");
  ASSERT_EQ(run.exitCode, 0) << run.out;
  const json r = json::parse(run.out);
  EXPECT_EQ(r["observations"], 40);
  EXPECT_EQ(r["fits"], 4);  // after 5, 15, 25, 35
  EXPECT_EQ(r["held_out"], 30);
  ASSERT_EQ(r["predictions"].size(), 30u);
  for (const json& p : r["predictions"]) EXPECT_FALSE(p["from_defaults"].get<bool>());
  // Calibrated on 2 s + nonzero / (0.8 B) with 1 % noise: a few percent at most, where the
  // defaults (no overhead, full goodput) are far off.
  EXPECT_LT(r["mean_abs_relative_error"].get<double>(), 0.03);
  EXPECT_LT(r["worst_abs_relative_error"].get<double>(), 0.08);

  const CommandRun all =
      vrmctl("calibrate --model simple --observations " + csv + " --report --last 40 --json");
  ASSERT_EQ(all.exitCode, 0) << all.out;
  const json a = json::parse(all.out);
  EXPECT_TRUE(a["predictions"][0]["from_defaults"].get<bool>());
  EXPECT_GT(a["worst_abs_relative_error"].get<double>(), 0.15);

  const CommandRun text = vrmctl("calibrate --model simple --observations " + csv + " --report");
  ASSERT_EQ(text.exitCode, 0) << text.out;
  EXPECT_NE(text.out.find("held-out error over the last 40"), std::string::npos) << text.out;
  EXPECT_EQ(
      vrmctl("calibrate --model simple --observations " + csv + " --report --last 0").exitCode, 2);
}

// Ensures calibrate rejects a malformed CSV, naming the line, and an unknown model, with exit 2.
TEST(VrmctlModelsTest, CalibrateBadInputExitsWith2) {
  const std::string bad =
      tempFile("bad.csv",
               "memory_bytes,bandwidth_bytes_per_sec,total_time_s\n1073741824,125e6,10\n"
               "1073741824,-5,10\n");
  CommandRun run = vrmctl("calibrate --model simple --observations " + bad, true);
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_NE(run.out.find("line 3"), std::string::npos) << run.out;
  run = vrmctl("calibrate --model nope --observations " + bad, true);
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_NE(run.out.find("unknown migration model"), std::string::npos) << run.out;
  run = vrmctl("calibrate --model simple --observations /nonexistent.csv", true);
  EXPECT_EQ(run.exitCode, 2);
}

}  // namespace
