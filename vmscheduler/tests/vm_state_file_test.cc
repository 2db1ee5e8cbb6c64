// Tests of the qemu backend's per-guest state files (qemu/vm_state_file.h), without QEMU: a record
// survives the round trip through its file, and corrupt or truncated files are typed errors
// naming the file that do not hide the readable ones.
#include "qemu/vm_state_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace vrm::vmscheduler {
namespace {

namespace fs = std::filesystem;
using qemu::VmStateRecord;

class VmStateFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("vrm-vm-state-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static VmStateRecord sample(const std::string& id) {
    VmStateRecord r;
    r.info.id = id;
    r.info.cpuCores = 2;
    r.info.memoryBytes = 128ull << 20;
    r.info.diskBytes = 1ull << 30;
    r.info.state = VmState::kMigratingOut;
    r.info.reservationId = "r-7";
    r.info.address = "unix:/run/" + id + ".qmp";
    r.info.templateName = "dirty";
    r.info.allowLive = false;
    r.info.allowSuspend = true;
    r.pid = 4242;
    r.qmpPath = "/run/" + id + ".qmp";
    r.serialPath = "/run/" + id + ".serial";
    r.logPath = "/run/" + id + ".log";
    r.diskPath = "/run/" + id + ".qcow2";
    r.incomingPort = 49201;
    r.keepPaused = true;
    r.sshForwardPort = 40022;
    r.cloneHandle =
        VmHandle{id,     "",    "127.0.0.1",
                 "root", 40022, "user-mode network: host h1 forwards 127.0.0.1:40022 to port 22"};
    r.migration =
        VmStateRecord::Migration{17, MigrationMode::kSuspendCopyResume, "h2", false, 123456789};
    r.clone = VmStateRecord::Clone{23, 987654321};
    return r;
  }

  void writeRaw(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }

  fs::path dir_;
};

// Ensures every field written is read back, through the file and its atomic replacement.
TEST_F(VmStateFileTest, RoundTripKeepsEveryField) {
  VmStateRecord r = sample("a");
  ASSERT_TRUE(qemu::writeVmStateFile(dir_, r).isOk());
  r.pid = 4343;  // a rewrite replaces the file
  ASSERT_TRUE(qemu::writeVmStateFile(dir_, r).isOk());
  EXPECT_FALSE(fs::exists(qemu::vmStateFilePath(dir_, "a") + ".tmp"));
  auto back = qemu::readVmStateFile(qemu::vmStateFilePath(dir_, "a"));
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(qemu::encodeVmState(*back), qemu::encodeVmState(r));
  EXPECT_EQ(back->pid, 4343);
  EXPECT_EQ(back->info.state, VmState::kMigratingOut);
  EXPECT_EQ(back->info.templateName, "dirty");
  EXPECT_FALSE(back->info.allowLive);
  ASSERT_TRUE(back->migration.has_value());
  EXPECT_EQ(back->migration->opId, 17u);
  EXPECT_EQ(back->migration->mode, MigrationMode::kSuspendCopyResume);
  EXPECT_EQ(back->migration->destinationHost, "h2");
  EXPECT_FALSE(back->migration->wasRunning);
  EXPECT_EQ(back->migration->startNs, 123456789);
  EXPECT_EQ(back->sshForwardPort, 40022);
  ASSERT_TRUE(back->cloneHandle.has_value());
  EXPECT_EQ(back->cloneHandle->vmId, "a");
  EXPECT_EQ(back->cloneHandle->address, "127.0.0.1");
  EXPECT_EQ(back->cloneHandle->port, 40022u);
  EXPECT_EQ(back->cloneHandle->account, "root");
  EXPECT_EQ(back->cloneHandle->addressSource, r.cloneHandle->addressSource);
  ASSERT_TRUE(back->clone.has_value());
  EXPECT_EQ(back->clone->opId, 23u);
  EXPECT_EQ(back->clone->startNs, 987654321);

  r.migration.reset();
  r.cloneHandle.reset();
  r.clone.reset();
  r.info.state = VmState::kRunning;
  ASSERT_TRUE(qemu::writeVmStateFile(dir_, r).isOk());
  back = qemu::readVmStateFile(qemu::vmStateFilePath(dir_, "a"));
  ASSERT_TRUE(back.isOk());
  EXPECT_FALSE(back->migration.has_value());
  EXPECT_FALSE(back->cloneHandle.has_value());
  EXPECT_FALSE(back->clone.has_value());

  qemu::removeVmStateFile(dir_, "a");
  EXPECT_EQ(qemu::readVmStateFile(qemu::vmStateFilePath(dir_, "a")).status().code(),
            StatusCode::kNotFound);
}

// Ensures a file written before the forwarded port and the handle were kept is still read: the
// port comes from a clone's "ADDRESS:PORT" address (as the clone wrote it), nothing is invented
// for other addresses, and there is no handle.
TEST_F(VmStateFileTest, FilesWithoutPortOrHandleAreStillRead) {
  auto old = [&](const std::string& id, const std::string& address) {
    VmStateRecord r = sample(id);
    r.info.address = address;
    nlohmann::json d = nlohmann::json::parse(qemu::encodeVmState(r));
    d.erase("ssh_forward_port");
    d.erase("handle");
    writeRaw(id + ".vm.json", d.dump());
    return qemu::readVmStateFile(qemu::vmStateFilePath(dir_, id));
  };
  auto clone = old("clone", "127.0.0.1:45123");
  ASSERT_TRUE(clone.isOk()) << clone.status().toString();
  EXPECT_EQ(clone->sshForwardPort, 45123);
  EXPECT_FALSE(clone->cloneHandle.has_value());
  for (const char* address : {"unix:/run/x:5.qmp", "", "127.0.0.1", "h:99999", "h:12a"}) {
    auto r = old("plain", address);
    ASSERT_TRUE(r.isOk()) << address << ": " << r.status().toString();
    EXPECT_EQ(r->sshForwardPort, 0) << address;
  }
}

// Ensures corrupt files (not JSON, truncated, a field of the wrong type, also in the handle, a
// port out of range, an unknown state, a record naming another VM) are invalid-argument errors
// naming the file, while the good file in the same directory is still read and an unfinished
// temporary is removed.
TEST_F(VmStateFileTest, CorruptFilesAreTypedErrorsAndDoNotHideTheOthers) {
  ASSERT_TRUE(qemu::writeVmStateFile(dir_, sample("good")).isOk());
  const std::string full = qemu::encodeVmState(sample("trunc"));
  writeRaw("trunc.vm.json", full.substr(0, full.size() / 2));
  writeRaw("garbage.vm.json", "\x01\x02 not json");
  std::string typed = qemu::encodeVmState(sample("typed"));
  typed.replace(typed.find("\"pid\":4242"), 10, "\"pid\":\"x\"");
  writeRaw("typed.vm.json", typed);
  std::string state = qemu::encodeVmState(sample("state"));
  state.replace(state.find("migrating-out"), 13, "floating");
  writeRaw("state.vm.json", state);
  std::string handle = qemu::encodeVmState(sample("handle"));
  handle.replace(handle.find("\"account\":\"root\""), 16, "\"account\":7");
  writeRaw("handle.vm.json", handle);
  std::string port = qemu::encodeVmState(sample("port"));
  port.replace(port.find("\"ssh_forward_port\":40022"), 24, "\"ssh_forward_port\":70000");
  writeRaw("port.vm.json", port);
  writeRaw("other.vm.json", qemu::encodeVmState(sample("good")));
  writeRaw("half.vm.json.tmp", "{");
  writeRaw("unrelated.txt", "ignored");

  qemu::VmStateDir read = qemu::readVmStateDir(dir_);
  ASSERT_EQ(read.records.size(), 1u);
  EXPECT_EQ(read.records[0].info.id, "good");
  ASSERT_EQ(read.errors.size(), 7u);
  for (const auto& e : read.errors) {
    EXPECT_EQ(e.status.code(), StatusCode::kInvalidArgument) << e.status.toString();
    EXPECT_NE(e.status.message().find(e.path), std::string::npos) << e.status.toString();
    EXPECT_NE(e.status.message().find("corrupt"), std::string::npos) << e.status.toString();
  }
  EXPECT_FALSE(fs::exists(dir_ / "half.vm.json.tmp"));
  EXPECT_TRUE(fs::exists(dir_ / "unrelated.txt"));

  auto typedRead = qemu::readVmStateFile((dir_ / "typed.vm.json").string());
  EXPECT_NE(typedRead.status().message().find("'pid'"), std::string::npos)
      << typedRead.status().toString();
  auto stateRead = qemu::readVmStateFile((dir_ / "state.vm.json").string());
  EXPECT_NE(stateRead.status().message().find("floating"), std::string::npos)
      << stateRead.status().toString();
}

}  // namespace
}  // namespace vrm::vmscheduler
