// Tests of the backend-support module every hypervisor backend uses: its parameter reader (one
// naming convention, old spellings accepted, typed errors naming the parameter as written), the
// room check, the VM table's errors and progress reported once per tenth.
#include <gtest/gtest.h>

#include "backend/operation_support.h"
#include "backend/params.h"
#include "backend/vm_table.h"
#include "qemu/qemu_config.h"
#include "qemu/qemu_support.h"

namespace vrm::vmscheduler::backend {
namespace {

// Ensures old spellings ('_' for '-', a backend's aliases) reach the canonical name, and that
// errors name the parameter the way the user wrote it.
TEST(BackendParamsTest, OldSpellingsAreAcceptedAndNamedAsWritten) {
  BackendParams p("qemu", {{"run_dir", "/r"}, {"state-dir", "/s"}, {"boot_timeout", "ten"}},
                  {{"state-dir", "stage-dir"}});
  ASSERT_TRUE(p.status().isOk());
  EXPECT_EQ(p.take("run-dir"), "/r");
  EXPECT_EQ(p.take("stage-dir"), "/s");
  auto bad = p.takeDuration("boot-timeout");
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("boot_timeout"), std::string::npos)
      << bad.status().message();
  EXPECT_TRUE(p.finish().isOk());
}

// Ensures a setting given under two spellings is refused rather than one silently winning.
TEST(BackendParamsTest, OneSettingUnderTwoSpellingsIsAnError) {
  BackendParams p("sim", {{"state_file", "/a"}, {"state-file", "/b"}});
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.finish().code(), StatusCode::kInvalidArgument);
}

// Ensures an unknown parameter is an error naming it and listing the known ones; template names
// are the user's (never rewritten).
TEST(BackendParamsTest, UnknownParametersAreListedWithTheKnownOnes) {
  BackendParams p(
      "libvirt",
      {{"uri", "test:///default"}, {"template.my_vm", "<domain/>"}, {"migration_url", "x"}});
  EXPECT_EQ(p.take("uri"), "test:///default");
  const auto templates = p.takePrefixed("template.");
  ASSERT_EQ(templates.size(), 1u);
  EXPECT_EQ(templates.begin()->first, "my_vm");
  const Status s = p.finish();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'migration_url'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("uri"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("template.NAME"), std::string::npos) << s.message();
}

// Ensures the typed readers accept what they promise and refuse the rest.
TEST(BackendParamsTest, TypedReaders) {
  BackendParams p("sim", {{"seed", "42"},
                          {"neg", "-1"},
                          {"rate", "2e8"},
                          {"zero", "0"},
                          {"mode", "rule"},
                          {"other", "oracle"},
                          {"d", "-5s"},
                          {"empty", ""}});
  EXPECT_EQ(**p.takeUnsigned("seed"), 42u);
  EXPECT_FALSE(p.takeUnsigned("neg").isOk());
  EXPECT_DOUBLE_EQ(**p.takePositiveNumber("rate"), 2e8);
  EXPECT_FALSE(p.takePositiveNumber("zero").isOk());
  EXPECT_EQ(**p.takeChoice("mode", {"precopy", "rule"}), "rule");
  auto other = p.takeChoice("other", {"precopy", "rule"});
  ASSERT_FALSE(other.isOk());
  EXPECT_NE(other.status().message().find("'precopy' or 'rule'"), std::string::npos);
  EXPECT_FALSE(p.takeDuration("d").isOk());
  EXPECT_FALSE(p.takeNonEmpty("empty").isOk());
  EXPECT_FALSE(p.takeUnsigned("absent")->has_value());
}

// Ensures the room check counts every VM but parked ones and names what is short.
TEST(HostRoomTest, ParkedVmsHoldNoRoom) {
  const HostInfo host{"h1", 8, 8ull << 30, 1e9};
  VmInfo running;
  running.id = "a";
  running.cpuCores = 4;
  running.memoryBytes = 4ull << 30;
  VmInfo parked = running;
  parked.id = "b";
  parked.state = VmState::kParked;
  const std::vector<VmInfo> vms{running, parked};
  EXPECT_TRUE(checkRoom(host, vms, 4, 4ull << 30).isOk());
  const Status memory = checkRoom(host, vms, 1, 5ull << 30);
  EXPECT_EQ(memory.code(), StatusCode::kRejected);
  EXPECT_NE(memory.message().find("memory"), std::string::npos);
  const Status cores = checkRoom(host, vms, 5, 1);
  EXPECT_NE(cores.message().find("cpu cores"), std::string::npos);
}

// Ensures the VM table answers with the interface's error codes.
TEST(VmTableTest, ErrorsAreTyped) {
  VmTable<VmInfo> table("h1");
  VmInfo vm;
  vm.id = "a";
  table.add(vm);
  EXPECT_EQ(table.checkAbsent("a").code(), StatusCode::kRejected);
  EXPECT_TRUE(table.checkAbsent("b").isOk());
  EXPECT_EQ(table.missing("b").code(), StatusCode::kNotFound);
  EXPECT_EQ(table.inventory().size(), 1u);
  EXPECT_EQ(table.find("b"), nullptr);
}

// Ensures progress is reported once per tenth, never twice for the same tenth or backwards.
TEST(ProgressStepsTest, OncePerTenth) {
  ProgressSteps steps;
  EXPECT_TRUE(steps.next(1, 0.01, 0, 0, "copy").has_value());
  EXPECT_FALSE(steps.next(1, 0.05, 0, 0, "copy").has_value());
  auto e = steps.next(1, 0.35, 35, 100, "copy");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->bytesSent, 35u);
  EXPECT_FALSE(steps.next(1, 0.2, 0, 0, "copy").has_value());
}

// Ensures the qemu backend's settings are checked at start with errors naming the setting.
TEST(QemuConfigTest, BadSettingsAreNamed) {
  const std::map<std::string, std::string> base = {{"binary", "/bin/true"}};
  EXPECT_TRUE(qemu::parseQemuConfig("h1", base).isOk());
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"accel", "xen"},
                                                        {"migration-ports", "9-1"},
                                                        {"boot-timeout", "soon"},
                                                        {"max-rounds", "many"},
                                                        {"template.t.colour", "red"},
                                                        {"run-dir-typo", "/x"}}) {
    auto params = base;
    params[key] = value;
    auto config = qemu::parseQemuConfig("h1", params);
    ASSERT_FALSE(config.isOk()) << key;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find(key.substr(0, key.find('.'))), std::string::npos)
        << config.status().message();
  }
  auto noKernel = base;
  noKernel["template.t.append"] = "console=ttyS0";
  EXPECT_EQ(qemu::parseQemuConfig("h1", noKernel).status().code(), StatusCode::kInvalidArgument);
  auto missing = base;
  missing["template.t.kernel"] = "/nonexistent/vmlinuz";
  EXPECT_NE(qemu::parseQemuConfig("h1", missing).status().message().find("/nonexistent"),
            std::string::npos);
}

// Ensures a data disk is read as a size for kernel templates only, and disk-dir defaults to
// run-dir (issue 13: a disk the guest writes, carried by shared storage when it moves).
TEST(QemuConfigTest, DataDisksAndTheirDirectory) {
  std::map<std::string, std::string> params = {{"binary", "/bin/true"},
                                               {"run-dir", "/tmp/r"},
                                               {"template.k.kernel", "/bin/true"},
                                               {"template.k.data-disk", "16MiB"}};
  auto config = qemu::parseQemuConfig("h1", params);
  ASSERT_TRUE(config.isOk()) << config.status().toString();
  EXPECT_EQ(config->templates.at("k").dataDiskBytes, 16u << 20);
  EXPECT_EQ(config->diskDir, "/tmp/r");
  params["disk-dir"] = "/shared/disks";
  EXPECT_EQ(qemu::parseQemuConfig("h1", params)->diskDir, "/shared/disks");
  for (const std::string& bad : {"0", "lots", "16XB", "-1MiB"}) {
    params["template.k.data-disk"] = bad;
    auto refused = qemu::parseQemuConfig("h1", params);
    ASSERT_FALSE(refused.isOk()) << bad;
    EXPECT_NE(refused.status().message().find("template.k.data-disk"), std::string::npos)
        << refused.status().message();
  }
  params.erase("template.k.kernel");
  params["template.k.data-disk"] = "16MiB";
  params["template.k.image"] = "/bin/true";
  auto image = qemu::parseQemuConfig("h1", params);
  ASSERT_FALSE(image.isOk());
  EXPECT_NE(image.status().message().find("data-disk is for kernel templates"), std::string::npos)
      << image.status().message();
}

// Ensures the qemu backend samples about 4,096 pages of a guest for its dirty rate within QEMU
// 7.2's range (a 128 MiB guest gets 2,048 instead of QEMU's default 64) and reads QEMU's whole
// MiB/s as the middle of their interval.
TEST(QemuDirtyRateTest, SamplesEnoughPagesAndReadsWholeMibAsTheirMiddle) {
  constexpr std::uint64_t kMiB = 1 << 20;
  EXPECT_EQ(qemu::dirtyRateSamplePagesPerGiB(128 * kMiB), 16384);  // QEMU's maximum
  EXPECT_EQ(qemu::dirtyRateSamplePagesPerGiB(256 * kMiB), 16384);
  EXPECT_EQ(qemu::dirtyRateSamplePagesPerGiB(1024 * kMiB), 4096);
  EXPECT_EQ(qemu::dirtyRateSamplePagesPerGiB(3 * 1024 * kMiB), 1366);
  EXPECT_EQ(qemu::dirtyRateSamplePagesPerGiB(64 * 1024 * kMiB), 512);  // QEMU's default
  EXPECT_EQ(qemu::dirtyRateSamplePagesPerGiB(0), 512);
  EXPECT_EQ(qemu::dirtyRateFromReading(0), 0);
  EXPECT_EQ(qemu::dirtyRateFromReading(3), 3.5 * kMiB);  // 1,000 pages/s (3.9 MiB/s) reads 3
  EXPECT_EQ(qemu::dirtyRateFromReading(15), 15.5 * kMiB);
}

}  // namespace
}  // namespace vrm::vmscheduler::backend
