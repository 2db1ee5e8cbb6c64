// Tests of the qemu backend's data disks that need no QEMU (issue 13): how a disk is made for a
// VM's first start and found again for an incoming one, and the typed errors of a disk-dir that
// cannot hold disks, at agent start and at clone time. What a real guest does with the disk (made
// at clone, kept across a move on shared storage, removed at destroy) is in
// qemu_hypervisor_test.cc (label slow).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "qemu/qemu_config.h"
#include "qemu/qemu_host.h"
#include "qemu/qemu_support.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler {
namespace {

namespace fs = std::filesystem;
constexpr std::uint64_t kMiB = 1024 * 1024;

class QemuDataDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("vrm-data-disk-test-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "disks");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::map<std::string, std::string> params(const std::string& diskDir) const {
    return {{"binary", "/bin/true"},
            {"run-dir", (root_ / "run").string()},
            {"disk-dir", diskDir},
            {"template.k.kernel", "/bin/true"},
            {"template.k.data-disk", "16MiB"}};
  }

  qemu::QemuHost host(const std::string& diskDir) const {
    auto config = qemu::parseQemuConfig("h1", params(diskDir));
    EXPECT_TRUE(config.isOk()) << config.status().toString();
    HostInfo info;
    info.name = "h1";
    return qemu::QemuHost(info, *config);
  }

  static std::string contents(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  fs::path root_;
};

// Ensures a VM's first start gets a fresh disk of the template's size, sparse zeros, also where a
// VM of the same id left a file (a new clone never reads an old one's bytes).
TEST_F(QemuDataDiskTest, FirstStartMakesAFreshSparseDisk) {
  const qemu::QemuHost h = host((root_ / "disks").string());
  const fs::path disk = root_ / "disks" / "v1.data.raw";
  {
    std::ofstream old(disk, std::ios::binary);
    old << "bytes of an earlier vm v1";
  }
  ASSERT_TRUE(h.prepareDataDisk(disk.string(), 16 * kMiB, /*incoming=*/false).isOk());
  EXPECT_EQ(fs::file_size(disk), 16 * kMiB);
  const std::string bytes = contents(disk);
  EXPECT_EQ(bytes.find_first_not_of('\0'), std::string::npos) << "not all zeros";
  struct stat st {};
  ASSERT_EQ(::stat(disk.c_str(), &st), 0);
  EXPECT_LT(static_cast<std::uint64_t>(st.st_blocks) * 512, kMiB) << "not sparse";
}

// Ensures an incoming VM (a migration's destination, an unpark) uses the disk that is there,
// untouched, and is refused with an invalid-argument naming disk-dir when it is not (share-
// nothing hosts: the disk would not move with it).
TEST_F(QemuDataDiskTest, IncomingVmFindsItsDiskOrNamesDiskDir) {
  const qemu::QemuHost h = host((root_ / "disks").string());
  const fs::path disk = root_ / "disks" / "v1.data.raw";
  {
    std::ofstream written(disk, std::ios::binary);
    written << "what the guest wrote on its source";
  }
  ASSERT_TRUE(h.prepareDataDisk(disk.string(), 16 * kMiB, /*incoming=*/true).isOk());
  EXPECT_EQ(contents(disk), "what the guest wrote on its source");

  const Status missing =
      h.prepareDataDisk((root_ / "disks" / "v2.data.raw").string(), 16 * kMiB, true);
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("disk-dir="), std::string::npos) << missing.message();
  EXPECT_NE(missing.message().find("shared storage"), std::string::npos) << missing.message();
  EXPECT_FALSE(fs::exists(root_ / "disks" / "v2.data.raw"));
}

// Ensures a disk that cannot be made (disk-dir gone or replaced by a file since the agent
// started) is an unavailable error naming disk-dir and why, with nothing left behind.
TEST_F(QemuDataDiskTest, DiskThatCannotBeMadeNamesDiskDir) {
  const fs::path notADir = root_ / "file";
  std::ofstream(notADir) << "x";
  const qemu::QemuHost h = host(notADir.string());
  const Status s = h.prepareDataDisk((notADir / "v1.data.raw").string(), 16 * kMiB, false);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("disk-dir=" + notADir.string()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("Not a directory"), std::string::npos) << s.message();
}

// Ensures the agent refuses to start, naming disk-dir, when its templates make disks and disk-dir
// cannot be created or written (/proc: root cannot make files there either), and starts (making
// the directory) when it can.
TEST_F(QemuDataDiskTest, AgentStartChecksDiskDir) {
  HypervisorOptions o;
  o.host.name = "h1";
  o.host.cpuCores = 2;
  o.host.memoryBytes = 1024 * kMiB;
  for (const std::string& bad : {(root_ / "file" / "disks").string(), std::string("/proc")}) {
    std::ofstream(root_ / "file") << "x";
    o.params = params(bad);
    auto hv = Hypervisor::create("qemu", o);
    ASSERT_FALSE(hv.isOk()) << bad;
    EXPECT_EQ(hv.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(hv.status().message().find("qemu parameter disk-dir"), std::string::npos)
        << hv.status().message();
  }
  o.params = params((root_ / "new" / "disks").string());
  auto hv = Hypervisor::create("qemu", o);
  ASSERT_TRUE(hv.isOk()) << hv.status().toString();
  EXPECT_TRUE(fs::is_directory(root_ / "new" / "disks"));
  EXPECT_TRUE(fs::is_empty(root_ / "new" / "disks"));  // the probe file is gone
}

// Ensures disk-storage takes shared (the default) or local and nothing else, naming the
// parameter.
TEST_F(QemuDataDiskTest, DiskStorageIsSharedOrLocal) {
  auto p = params((root_ / "disks").string());
  auto config = qemu::parseQemuConfig("h1", p);
  ASSERT_TRUE(config.isOk()) << config.status().toString();
  EXPECT_FALSE(config->localDiskStorage);
  p["disk-storage"] = "local";
  config = qemu::parseQemuConfig("h1", p);
  ASSERT_TRUE(config.isOk()) << config.status().toString();
  EXPECT_TRUE(config->localDiskStorage);
  p["disk-storage"] = "nfs";
  config = qemu::parseQemuConfig("h1", p);
  ASSERT_FALSE(config.isOk());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("disk-storage"), std::string::npos)
      << config.status().message();
}

// Ensures a destination endpoint's optional parts parse in their order (state=, then disk=, each
// once) and anything else is refused: the source mirrors a disk only when disk= names a port.
TEST_F(QemuDataDiskTest, EndpointNamesTheDiskExport) {
  qemu::IncomingEndpoint e;
  ASSERT_TRUE(qemu::parseIncomingEndpoint(
      "tcp:127.0.0.1:49200;state=tcp:127.0.0.1:49201;disk=tcp:127.0.0.1:49202", e));
  EXPECT_EQ(e.qemu, "tcp:127.0.0.1:49200");
  EXPECT_EQ(e.statePort, 49201);
  EXPECT_EQ(e.diskHost, "127.0.0.1");
  EXPECT_EQ(e.diskPort, 49202);
  qemu::IncomingEndpoint d;
  ASSERT_TRUE(qemu::parseIncomingEndpoint("tcp:10.0.0.2:49200;disk=tcp:10.0.0.2:49203", d));
  EXPECT_EQ(d.statePort, 0);
  EXPECT_EQ(d.diskPort, 49203);
  qemu::IncomingEndpoint shared;
  ASSERT_TRUE(qemu::parseIncomingEndpoint("tcp:127.0.0.1:49200;state=tcp:127.0.0.1:49201", shared));
  EXPECT_EQ(shared.diskPort, 0);
  for (const char* bad : {"tcp:h:1;disk=tcp:h:2;state=tcp:h:3", "tcp:h:1;disk=tcp:h:x",
                          "tcp:h:1;disk=tcp:h:2;disk=tcp:h:3", "tcp:h:1;nbd=tcp:h:2"}) {
    qemu::IncomingEndpoint x;
    EXPECT_FALSE(qemu::parseIncomingEndpoint(bad, x)) << bad;
  }
}

// Ensures a host with disk-storage=local refuses an incoming VM of an image template with an
// invalid-argument naming why (its qcow2 overlay is not copied), before any QEMU starts.
TEST_F(QemuDataDiskTest, LocalStorageRefusesImageTemplateVms) {
  HypervisorOptions o;
  o.host.name = "h1";
  o.host.cpuCores = 2;
  o.host.memoryBytes = 1024 * kMiB;
  o.params = params((root_ / "disks").string());
  o.params["disk-storage"] = "local";
  o.params["template.img.image"] = "/bin/true";
  auto hv = Hypervisor::create("qemu", o);
  ASSERT_TRUE(hv.isOk()) << hv.status().toString();
  VmInfo vm;
  vm.id = "v";
  vm.memoryBytes = 128 * kMiB;
  vm.templateName = "img";
  auto refused = (*hv)->prepareIncoming(vm);
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("disk-storage=local"), std::string::npos)
      << refused.status().message();
  EXPECT_TRUE((*hv)->inventory().empty());
}

}  // namespace
}  // namespace vrm::vmscheduler
