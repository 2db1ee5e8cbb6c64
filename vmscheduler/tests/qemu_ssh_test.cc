// Reachable clones on the qemu backend, for real (ctest label "slow"): a guest with dropbear
// (tests/guest/build-guest-ssh.sh) is cloned on a host with user-mode networking with its
// owner's key, and the test logs into it with OpenSSH's ssh through the handle's port and runs
// a command there. Keys are made by ssh-keygen at set-up.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "qemu/guest_network.h"
#include "qemu/qemu_hypervisor.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::uint64_t kMiB = 1024 * 1024;

bool have(const char* program) {
  return std::system((std::string("command -v ") + program + " >/dev/null 2>&1").c_str()) == 0;
}

// Runs `cmd` through the shell; its exit status and what it printed (stdout and stderr).
std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class QemuSshTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!have("qemu-system-x86_64") || !have("ssh") || !have("dropbear")) return;
    auto [rc, out] = run(std::string(VRM_GUEST_SSH_SCRIPT) + " " + VRM_GUEST_DIR);
    guestBuilt_ = rc == 0;
    guestOutput_ = out;
  }

  void SetUp() override {
    for (const char* p : {"qemu-system-x86_64", "ssh", "ssh-keygen", "dropbear"}) {
      if (!have(p)) GTEST_SKIP() << p << " is not installed (scripts/install-deps.sh)";
    }
    ASSERT_TRUE(guestBuilt_) << "tests/guest/build-guest-ssh.sh failed: " << guestOutput_;
    root_ = fs::temp_directory_path() / ("vrm-qemu-ssh-test-" + std::to_string(::getpid()));
    fs::create_directories(root_);
    for (const char* name : {"owner", "other"}) {
      const fs::path key = root_ / name;
      auto [rc, out] =
          run("ssh-keygen -q -t ed25519 -N '' -C " + std::string(name) + " -f " + key.string());
      ASSERT_EQ(rc, 0) << out;
    }
  }

  void TearDown() override {
    // Guests outlive their QemuHypervisor (an agent restart re-attaches): kill them explicitly.
    if (hv_) static_cast<QemuHypervisor&>(*hv_).killAllGuests();
    hv_.reset();
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }

  std::unique_ptr<Hypervisor> make() {
    HypervisorOptions o;
    o.host.name = "h1";
    o.host.cpuCores = 2;
    o.host.memoryBytes = 1024 * kMiB;
    const std::string guest = VRM_GUEST_DIR;
    o.params = {
        {"accel", "tcg"},
        {"run-dir", (root_ / "run").string()},
        {"stage-dir", (root_ / "state").string()},
        {"dirty-rate-interval", "0s"},
        {"boot-timeout", "180s"},
        {"network", "user"},
        {"template.ssh.kernel", guest + "/vmlinuz"},
        {"template.ssh.initrd", guest + "/initrd-ssh.img"},
        {"template.ssh.append", "console=ttyS0 quiet panic=-1 rdinit=/vrm-ssh-init memtouch.mb=16"},
        {"template.ssh.ready", "vrm-guest: up"},
        {"template.ssh.ssh", "on"}};
    auto hv = Hypervisor::create("qemu", o);
    EXPECT_TRUE(hv.isOk()) << hv.status().toString();
    return hv ? std::move(hv).value() : nullptr;
  }

  CloneSpec sshClone(const std::string& vmId) {
    CloneSpec spec;
    spec.vmId = vmId;
    spec.templateName = "ssh";
    spec.cpuCores = 1;
    spec.memoryBytes = 128 * kMiB;
    spec.reservationId = "r1";
    spec.sshPublicKey = readFile(root_ / "owner.pub");
    return spec;
  }

  std::optional<OperationEvent> runUntilDone(OperationId op, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      for (OperationEvent& e : hv_->poll(SystemClock().now())) {
        if (e.opId == op && e.kind == OperationEvent::Kind::kCompleted) return e;
      }
      std::this_thread::sleep_for(50ms);  // readiness is noticed at a poll
    }
    return std::nullopt;
  }

  std::string sshTo(const VmHandle& h, const std::string& key, const std::string& command) {
    return "ssh -i " + (root_ / key).string() +
           " -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
           " -o ConnectTimeout=20 -o LogLevel=ERROR -p " +
           std::to_string(h.port) + " " + h.account + "@" + h.address + " '" + command + "'";
  }

  static inline bool guestBuilt_ = false;
  static inline std::string guestOutput_;
  fs::path root_;
  std::unique_ptr<Hypervisor> hv_;
};

// Ensures a clone with its owner's key is reported ready only when its SSH server answers, with
// a handle (address, port, account, where the address comes from) that its owner logs in with
// and runs a command, seeing the VM's stable MAC; another key is refused.
TEST_F(QemuSshTest, CloneWithKeyIsReachableBySshThroughItsHandle) {
  hv_ = make();
  ASSERT_TRUE(hv_);
  CloneSpec spec;
  spec.vmId = "r1-ssh-0";
  spec.templateName = "ssh";
  spec.cpuCores = 1;
  spec.memoryBytes = 128 * kMiB;
  spec.reservationId = "r1";
  spec.sshPublicKey = readFile(root_ / "owner.pub");
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(hv_->startClone(1, spec).isOk());
  auto done = runUntilDone(1, 200s);
  ASSERT_TRUE(done.has_value()) << "clone did not finish";
  ASSERT_TRUE(done->status.isOk()) << done->status.toString();
  const auto readyAt = std::chrono::steady_clock::now();
  ASSERT_TRUE(done->clone.has_value());
  const VmHandle& h = *done->clone;
  EXPECT_EQ(h.address, "127.0.0.1");
  EXPECT_GT(h.port, 0u);
  EXPECT_EQ(h.account, "root");
  EXPECT_NE(h.addressSource.find("forwards 127.0.0.1:" + std::to_string(h.port)), std::string::npos)
      << h.addressSource;

  auto [rc, out] =
      run(sshTo(h, "owner", "echo logged-in-as-$(id -u); cat /sys/class/net/eth0/address"));
  const auto loggedInAt = std::chrono::steady_clock::now();
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("logged-in-as-0"), std::string::npos) << out;
  EXPECT_NE(out.find(qemu::stableMac(spec.vmId)), std::string::npos) << out;
  auto [otherRc, otherOut] = run(sshTo(h, "other", "true"));
  EXPECT_NE(otherRc, 0) << "a key the owner did not give got in: " << otherOut;
  using Ms = std::chrono::milliseconds;
  std::printf("clone to ready (ssh answers): %lld ms; clone to first command over ssh: %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<Ms>(readyAt - t0).count()),
              static_cast<long long>(std::chrono::duration_cast<Ms>(loggedInAt - t0).count()));

  // A retried clone of the finished one gives the same handle.
  ASSERT_TRUE(hv_->startClone(2, spec).isOk());
  auto again = runUntilDone(2, 10s);
  ASSERT_TRUE(again.has_value() && again->clone.has_value());
  EXPECT_EQ(again->clone->port, h.port);
}

// Ensures a clone keeps its handle across an agent restart: after the backend is destroyed and
// created again on the same directories, the re-attached clone is listed running and a repeated
// clone command (what vrmd re-sends to a restarted agent) answers with the same handle — address,
// forwarded port, account, address source — through which its owner still logs in.
TEST_F(QemuSshTest, ReattachedCloneKeepsItsHandleAndIsReachable) {
  hv_ = make();
  ASSERT_TRUE(hv_);
  const CloneSpec spec = sshClone("r1-ssh-1");
  ASSERT_TRUE(hv_->startClone(1, spec).isOk());
  auto done = runUntilDone(1, 200s);
  ASSERT_TRUE(done.has_value()) << "clone did not finish";
  ASSERT_TRUE(done->status.isOk()) << done->status.toString();
  ASSERT_TRUE(done->clone.has_value());
  const VmHandle before = *done->clone;
  ASSERT_GT(before.port, 0u);

  hv_.reset();  // the agent goes away; the guest stays
  const auto restartAt = std::chrono::steady_clock::now();
  hv_ = make();
  ASSERT_TRUE(hv_);
  const auto inventory = hv_->inventory();
  ASSERT_EQ(inventory.size(), 1u);
  EXPECT_EQ(inventory[0].id, spec.vmId);
  EXPECT_EQ(inventory[0].state, VmState::kRunning);
  // The inventory carries the handle (vrmd sets a handle from it when it missed the answer).
  EXPECT_EQ(inventory[0].address, before.address);
  EXPECT_EQ(inventory[0].sshPort, before.port);
  EXPECT_EQ(inventory[0].account, before.account);
  EXPECT_EQ(inventory[0].addressSource, before.addressSource);

  ASSERT_TRUE(hv_->startClone(2, spec).isOk());
  auto again = runUntilDone(2, 10s);
  ASSERT_TRUE(again.has_value() && again->clone.has_value());
  ASSERT_TRUE(again->status.isOk()) << again->status.toString();
  const VmHandle& after = *again->clone;
  EXPECT_EQ(after.vmId, spec.vmId);
  EXPECT_EQ(after.host, "h1");
  EXPECT_EQ(after.address, before.address);
  EXPECT_EQ(after.port, before.port);
  EXPECT_EQ(after.account, before.account);
  EXPECT_EQ(after.addressSource, before.addressSource);

  auto [rc, out] = run(sshTo(after, "owner", "echo still-here-$(id -u)"));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("still-here-0"), std::string::npos) << out;
  std::printf("agent restart to a command over ssh through the re-attached handle: %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - restartAt)
                                         .count()));
}

// Ensures a clone still booting when its agent restarts is not reported ready before its SSH
// server answers: the restarted backend lists it cloning, the repeated clone command (vrmd
// re-sends it with the same id) attaches to the re-attached boot instead of answering at once,
// and the one completion comes when the banner answers, with the handle the owner logs in with.
TEST_F(QemuSshTest, CloneBootingAcrossARestartIsReadyOnlyWhenSshAnswers) {
  hv_ = make();
  ASSERT_TRUE(hv_);
  const CloneSpec spec = sshClone("r1-ssh-2");
  ASSERT_TRUE(hv_->startClone(7, spec).isOk());
  for (const OperationEvent& e : hv_->poll(SystemClock().now())) {
    ASSERT_NE(e.kind, OperationEvent::Kind::kCompleted) << "ready at once: " << e.status.toString();
  }
  const std::string console = *static_cast<QemuHypervisor&>(*hv_).consoleLogPath(spec.vmId);
  const auto restartAt = std::chrono::steady_clock::now();
  hv_.reset();  // the agent goes away while the guest boots
  ASSERT_EQ(readFile(console).find("vrm-guest: up"), std::string::npos)
      << "the guest booted before the restart: the test proves nothing";
  hv_ = make();
  ASSERT_TRUE(hv_);
  const auto inventory = hv_->inventory();
  ASSERT_EQ(inventory.size(), 1u);
  EXPECT_EQ(inventory[0].state, VmState::kCloning) << "a booting clone is not listed running";

  ASSERT_TRUE(hv_->startClone(7, spec).isOk()) << "the repeated command attaches";
  std::optional<OperationEvent> done;
  bool answeredAtCompletion = false;
  const auto deadline = std::chrono::steady_clock::now() + 200s;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    for (OperationEvent& e : hv_->poll(SystemClock().now())) {
      if (e.opId != 7 || e.kind != OperationEvent::Kind::kCompleted) continue;
      EXPECT_FALSE(done) << "one completion only";
      done = std::move(e);
      answeredAtCompletion =
          done->clone &&
          qemu::sshBannerAnswers(done->clone->address, static_cast<int>(done->clone->port), 2000ms);
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(done.has_value()) << "the re-attached clone never became ready";
  ASSERT_TRUE(done->status.isOk()) << done->status.toString();
  ASSERT_TRUE(done->clone.has_value());
  EXPECT_TRUE(answeredAtCompletion) << "reported ready before its SSH banner answered";
  EXPECT_NE(readFile(console).find("vrm-guest: up"), std::string::npos);
  EXPECT_EQ(hv_->inventory()[0].state, VmState::kRunning);
  auto [rc, out] = run(sshTo(*done->clone, "owner", "echo booted-across-$(id -u)"));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("booted-across-0"), std::string::npos) << out;
  std::printf("agent restart mid-boot to the clone ready (ssh answers): %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - restartAt)
                                         .count()));
}

// Ensures a key for an SSH image template, which this backend cannot put into the image, is
// refused at clone time rather than giving a clone nobody can log into.
TEST_F(QemuSshTest, KeyForAnImageTemplateIsRefused) {
  hv_.reset();
  HypervisorOptions o;
  o.host.name = "h1";
  o.host.cpuCores = 2;
  o.host.memoryBytes = 1024 * kMiB;
  const fs::path image = root_ / "base.qcow2";
  auto [rc, out] = run("qemu-img create -q -f qcow2 " + image.string() + " 16M");
  ASSERT_EQ(rc, 0) << out;
  o.params = {{"accel", "tcg"},
              {"run-dir", (root_ / "run").string()},
              {"network", "user"},
              {"template.disk.image", image.string()},
              {"template.disk.ssh", "on"}};
  auto hv = Hypervisor::create("qemu", o);
  ASSERT_TRUE(hv.isOk()) << hv.status().toString();
  CloneSpec spec;
  spec.vmId = "r2-disk-0";
  spec.templateName = "disk";
  spec.memoryBytes = 64 * kMiB;
  spec.sshPublicKey = readFile(root_ / "owner.pub");
  Status s = (*hv)->startClone(1, spec);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("cloud-init"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace vrm::vmscheduler
