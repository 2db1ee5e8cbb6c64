// Runs the built vrmctl's offline `plan` command (path from VRMCTL_PATH) and checks its JSON and
// exit codes. No daemon is involved.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "command_run.h"

namespace {

using CliRun = vrm::cli_test::CommandRun;

CliRun vrmctl(const std::string& args) {
  return vrm::cli_test::runCommand(std::string(VRMCTL_PATH) + " " + args + " 2>/dev/null");
}

class VrmctlPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "vrmctl_plan_test_" + std::to_string(getpid()) + ".yaml";
    std::ofstream(path_) << R"(defaults:
  nic_bandwidth: 1 Gbit/s
hosts:
  - name: n1
    cpu_cores: 32
    memory: 64 GiB
    vms:
      - {id: a, cpu_cores: 2, memory: 512 MiB, allow_live: false}
      - {id: b, cpu_cores: 2, memory: 512 MiB, allow_live: false}
      - {id: c, cpu_cores: 2, memory: 512 MiB, allow_live: false}
      - {id: d, cpu_cores: 2, memory: 512 MiB, allow_live: false}
  - name: n2
    cpu_cores: 32
    memory: 64 GiB
    vms:
      - {id: e, cpu_cores: 4, memory: 8 GiB, nonzero_memory: 6 GiB, dirty_rate: 10 MiB/s,
         disk: 20 GiB}
  - name: n3
    cpu_cores: 32
    memory: 64 GiB
templates:
  - {name: bmi, cpu_cores: 16, memory: 24 GiB, clone_time: 90 s, vms_per_host: 2}
)";
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string base() const { return "plan --cluster " + path_ + " --template bmi --duration 2h "; }

  std::string path_;
};

// Ensures --json carries the contract's fields and a plan that fits exits 0.
TEST_F(VrmctlPlanTest, JsonHasTheContractFields) {
  CliRun r = vrmctl(base() + "--host n1 --start +2h --json");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  for (const char* key :
       {"hosts", "strategy", "moves", "makespan_s", "makespan_quantile_s", "makespan_lower_bound_s",
        "max_vm_time_s", "energy_j", "latest_safe_start", "feasible"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["hosts"], nlohmann::json::array({"n1"}));
  EXPECT_EQ(j["strategy"], "parallel");  // small suspend-copy-resume VMs: overlap wins
  ASSERT_EQ(j["moves"].size(), 4u);
  for (const auto& m : j["moves"]) {
    for (const char* key : {"vm", "from", "to", "mode", "batch", "start_s", "end_s",
                            "transferred_bytes", "downtime_s"}) {
      EXPECT_TRUE(m.contains(key)) << key;
    }
    EXPECT_EQ(m["from"], "n1");
    EXPECT_EQ(m["mode"], "suspend-copy-resume");
  }
  EXPECT_TRUE(j["feasible"].get<bool>());
  EXPECT_GE(j["makespan_quantile_s"].get<double>(), j["makespan_s"].get<double>());
  EXPECT_LE(j["makespan_lower_bound_s"].get<double>(), j["makespan_s"].get<double>());
}

// Ensures --hosts N chooses the cheapest host and the degradation objective keeps its bound.
TEST_F(VrmctlPlanTest, ChoosesHostsAndHonoursTheDegradationBound) {
  CliRun r = vrmctl(base() + "--hosts 1 --start +2h --json");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["hosts"], nlohmann::json::array({"n3"}));  // empty
  CliRun d =
      vrmctl(base() + "--host n1 --start +2h --objective degradation --max-vm-time 20s --json");
  ASSERT_EQ(d.exitCode, 0) << d.out;
  auto j = nlohmann::json::parse(d.out);
  EXPECT_LE(j["max_vm_time_s"].get<double>(), 20.0);
  EXPECT_NE(j["strategy"], "parallel");
}

// Ensures a local disk's synchronisation shows up in the move.
TEST_F(VrmctlPlanTest, LocalDiskSyncIsInTheMove) {
  CliRun r = vrmctl(base() + "--host n2 --start +2h --json");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["moves"].size(), 1u);
  EXPECT_GT(j["moves"][0]["disk_sync_s"].get<double>(), 150.0);  // 20 GiB over 1 GbE
}

// Ensures a start too soon is reported as infeasible (exit 1) with the earliest feasible start.
TEST_F(VrmctlPlanTest, TooSoonExitsOneWithEarliestStart) {
  CliRun r = vrmctl(base() + "--host n1 --start +10s --json");
  EXPECT_EQ(r.exitCode, 1);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["feasible"].get<bool>());
  EXPECT_TRUE(j.contains("earliest_feasible_start"));
}

// Ensures bad input exits 2.
TEST_F(VrmctlPlanTest, BadInputExitsTwo) {
  EXPECT_EQ(vrmctl(base() + "--host n1 --start yesterday").exitCode, 2);
  EXPECT_EQ(vrmctl(base() + "--host nope --start +2h").exitCode, 2);
  EXPECT_EQ(vrmctl(base() + "--host n1 --hosts 1 --start +2h").exitCode, 2);
  EXPECT_EQ(vrmctl(base() + "--host n1 --start +2h --quantile 1.5").exitCode, 2);
  EXPECT_EQ(vrmctl(base() + "--host n1 --start +2h --objective fastest").exitCode, 2);
  EXPECT_EQ(vrmctl("plan --cluster /nonexistent.yaml --template bmi --duration 2h --host n1 "
                   "--start +2h")
                .exitCode,
            2);
  EXPECT_EQ(
      vrmctl("plan --cluster " + path_ + " --template nope --duration 2h --host n1 --start +2h")
          .exitCode,
      2);
}

// Ensures the human form has a table and a timeline.
TEST_F(VrmctlPlanTest, HumanFormHasTableAndTimeline) {
  CliRun r = vrmctl(base() + "--host n1 --start +2h --batch 2");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  EXPECT_NE(r.out.find("batched(2)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Timeline"), std::string::npos);
  EXPECT_NE(r.out.find("suspend-copy-resume"), std::string::npos);
}

}  // namespace
