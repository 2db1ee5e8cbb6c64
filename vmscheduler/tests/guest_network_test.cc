// The qemu backend's network settings and handles, without booting a guest (qemu_ssh_test.cc
// boots one and logs in).
#include "qemu/guest_network.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <regex>

#include "qemu/qemu_config.h"

namespace vrm::vmscheduler::qemu {
namespace {

namespace fs = std::filesystem;

constexpr const char* kKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKDLIabwrbChxMufAdl0KXARt4BoFMMlaai4zxaChfqq alice@lab";

// A /sys/class/net of the test's own: br0 is a bridge, eth0 a plain NIC.
fs::path fakeSysClassNet() {
  const fs::path dir =
      fs::temp_directory_path() / ("vrm-guest-network-test-" + std::to_string(::getpid()));
  fs::create_directories(dir / "br0" / "bridge");
  fs::create_directories(dir / "eth0");
  return dir;
}

// Ensures network, bridge and the templates' ssh settings are read, and that bad ones (a bridge
// that does not exist or is no bridge, ssh without a network) are invalid-argument naming the
// setting.
TEST(GuestNetworkTest, NetworkSettingsAreReadAndBadOnesNamed) {
  const std::string net = fakeSysClassNet().string();
  std::map<std::string, std::string> base = {{"binary", "/bin/true"}};
  auto none = parseQemuConfig("h1", base, net);
  ASSERT_TRUE(none) << none.status().toString();
  EXPECT_EQ(none->network, GuestNetworkMode::kNone);

  auto user = base;
  user["network"] = "user";
  user["template.t.kernel"] = "/bin/true";
  user["template.t.ssh"] = "on";
  user["template.t.account"] = "vrm";
  auto u = parseQemuConfig("h1", user, net);
  ASSERT_TRUE(u) << u.status().toString();
  EXPECT_EQ(u->network, GuestNetworkMode::kUser);
  EXPECT_EQ(u->forwardAddress, "127.0.0.1");
  EXPECT_TRUE(u->templates.at("t").ssh);
  EXPECT_EQ(u->templates.at("t").account, "vrm");

  auto bridge = base;
  bridge["network"] = "bridge";
  bridge["bridge"] = "br0";
  auto b = parseQemuConfig("h1", bridge, net);
  ASSERT_TRUE(b) << b.status().toString();
  EXPECT_EQ(b->bridge, "br0");

  auto expectNamed = [&](std::map<std::string, std::string> params, const std::string& setting,
                         const std::string& what) {
    auto c = parseQemuConfig("h1", params, net);
    ASSERT_FALSE(c) << setting;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find(setting), std::string::npos) << c.status().message();
    EXPECT_NE(c.status().message().find(what), std::string::npos) << c.status().message();
  };
  auto p = bridge;
  p["bridge"] = "br9";
  expectNamed(p, "bridge", "no bridge 'br9'");
  p["bridge"] = "eth0";  // a device, not a bridge
  expectNamed(p, "bridge", "no bridge 'eth0'");
  p.erase("bridge");
  expectNamed(p, "bridge", "needs bridge=NAME");
  p = base;
  p["bridge"] = "br0";
  expectNamed(p, "bridge", "only for network=bridge");
  p = base;
  p["network"] = "wifi";
  expectNamed(p, "network", "wifi");
  p = user;
  p["template.t.ssh"] = "yes";
  expectNamed(p, "template.t.ssh", "on or off");
  p = user;
  p.erase("network");
  expectNamed(p, "ssh=on", "network=user or bridge");
}

// Ensures a VM's MAC is a QEMU-range address fixed by its id alone.
TEST(GuestNetworkTest, MacIsStablePerVm) {
  EXPECT_EQ(stableMac("r1-0"), stableMac("r1-0"));
  EXPECT_NE(stableMac("r1-0"), stableMac("r1-1"));
  EXPECT_TRUE(std::regex_match(stableMac("r1-0"), std::regex("52:54:00(:[0-9a-f]{2}){3}")));
}

// Ensures the NIC arguments per mode: a forward of a free port to guest port 22, or a tap on the
// bridge, both with the stable MAC; none without a network.
TEST(GuestNetworkTest, NicArgumentsPerMode) {
  QemuConfig c;
  auto none = guestNicFor(c, "v");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->args.empty());
  c.network = GuestNetworkMode::kUser;
  auto user = guestNicFor(c, "v");
  ASSERT_TRUE(user) << user.status().toString();
  ASSERT_GT(user->forwardPort, 0);
  ASSERT_EQ(user->args.size(), 4u);
  EXPECT_EQ(user->args[1],
            "user,id=net0,hostfwd=tcp:127.0.0.1:" + std::to_string(user->forwardPort) + "-:22");
  EXPECT_EQ(user->args[3], "virtio-net-pci,netdev=net0,mac=" + stableMac("v"));
  c.network = GuestNetworkMode::kBridge;
  c.bridge = "br0";
  auto bridge = guestNicFor(c, "v");
  ASSERT_TRUE(bridge);
  EXPECT_EQ(bridge->args[1], "bridge,id=net0,br=br0");
  EXPECT_EQ(bridge->forwardPort, 0);
  c.network = GuestNetworkMode::kUser;
  c.forwardAddress = "localhost";
  EXPECT_NE(guestNicFor(c, "v").status().message().find("forward-address"), std::string::npos);
}

// Ensures each handle says where its address comes from, and gives an address only where the
// agent knows one.
TEST(GuestNetworkTest, HandlesSayWhereTheAddressComesFrom) {
  QemuConfig c;
  QemuTemplate t;
  t.ssh = true;
  c.network = GuestNetworkMode::kUser;
  VmHandle h = handleFor(c, t, "h1", "v", 40022, "/run/v.qmp");
  EXPECT_EQ(h.address, "127.0.0.1");
  EXPECT_EQ(h.port, 40022u);
  EXPECT_EQ(h.account, "root");
  EXPECT_NE(h.addressSource.find("forwards 127.0.0.1:40022"), std::string::npos);
  c.network = GuestNetworkMode::kBridge;
  c.bridge = "br0";
  h = handleFor(c, t, "h1", "v", 0, "/run/v.qmp");
  EXPECT_EQ(h.address, "");
  EXPECT_EQ(h.port, 0u);
  EXPECT_NE(h.addressSource.find(stableMac("v")), std::string::npos);
  c.network = GuestNetworkMode::kNone;
  t.ssh = false;
  h = handleFor(c, t, "h1", "v", 0, "/run/v.qmp");
  EXPECT_EQ(h.address, "unix:/run/v.qmp");
  EXPECT_NE(h.addressSource.find("no SSH server"), std::string::npos);
}

// Ensures the key goes onto the kernel command line without its comment, and that a key that
// would overflow it is refused.
TEST(GuestNetworkTest, KeyOnTheKernelCommandLine) {
  auto arg = kernelKeyArgument(std::string(kKey) + "\n", "console=ttyS0");
  ASSERT_TRUE(arg) << arg.status().toString();
  EXPECT_EQ(*arg,
            " vrm.ssh_key=ssh-ed25519,"
            "AAAAC3NzaC1lZDI1NTE5AAAAIKDLIabwrbChxMufAdl0KXARt4BoFMMlaai4zxaChfqq");
  auto tooLong = kernelKeyArgument(kKey, std::string(2000, 'x'));
  ASSERT_FALSE(tooLong);
  EXPECT_EQ(tooLong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tooLong.status().message().find("kernel command line"), std::string::npos);
}

// Ensures the readiness probe says no where nothing listens.
TEST(GuestNetworkTest, BannerProbeFailsWithoutAServer) {
  auto port = freeTcpPort("127.0.0.1");
  ASSERT_TRUE(port);
  EXPECT_FALSE(sshBannerAnswers("127.0.0.1", *port, std::chrono::milliseconds(200)));
}

}  // namespace
}  // namespace vrm::vmscheduler::qemu
