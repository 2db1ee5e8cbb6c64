#include "vrm/daemon/service_notifier.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "fake_notify_socket.h"

namespace vrm::daemon {
namespace {

using std::chrono::milliseconds;

// The fake socket named in $NOTIFY_SOCKET for the life of a test, with the watchdog
// variables cleared at its end.
class FakeSystemd : public testing::FakeNotifySocket {
 public:
  FakeSystemd() { setenv("NOTIFY_SOCKET", path().c_str(), 1); }
  ~FakeSystemd() {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
  }
};

// Ensures READY, STATUS, RELOADING and STOPPING reach the socket systemd names, one line each.
TEST(ServiceNotifierTest, SendsStatesToTheNotifySocket) {
  FakeSystemd systemd;
  ServiceNotifier notifier = ServiceNotifier::fromEnvironment();
  ASSERT_TRUE(notifier.active());
  EXPECT_TRUE(notifier.status("recovering the store").isOk());
  EXPECT_EQ(systemd.next(), "STATUS=recovering the store");
  EXPECT_TRUE(notifier.ready("clients=tcp://127.0.0.1:41000\nhttp=x").isOk());
  EXPECT_EQ(systemd.next(), "READY=1\nSTATUS=clients=tcp://127.0.0.1:41000 http=x");
  EXPECT_TRUE(notifier.reloading("reloading").isOk());
  EXPECT_EQ(systemd.next(), "RELOADING=1\nSTATUS=reloading");
  EXPECT_TRUE(notifier.stopping("stopping").isOk());
  EXPECT_EQ(systemd.next(), "STOPPING=1\nSTATUS=stopping");
  EXPECT_EQ(systemd.next(), "");
}

// Ensures a daemon not started by systemd sends nothing and sees no error.
TEST(ServiceNotifierTest, InactiveWithoutNotifySocket) {
  unsetenv("NOTIFY_SOCKET");
  ServiceNotifier notifier = ServiceNotifier::fromEnvironment();
  EXPECT_FALSE(notifier.active());
  EXPECT_TRUE(notifier.ready("x").isOk());
  auto sent = notifier.keepAlive(std::chrono::steady_clock::now());
  ASSERT_TRUE(sent.isOk());
  EXPECT_FALSE(*sent);
}

// Ensures WATCHDOG=1 goes out at the first loop turn and then once per half interval.
TEST(ServiceNotifierTest, KeepAliveEveryHalfWatchdogInterval) {
  FakeSystemd systemd;
  setenv("WATCHDOG_USEC", "1000000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  ServiceNotifier notifier = ServiceNotifier::fromEnvironment();
  EXPECT_EQ(notifier.watchdogInterval(), std::chrono::seconds(1));
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  EXPECT_TRUE(*notifier.keepAlive(t0));
  EXPECT_EQ(systemd.next(), "WATCHDOG=1");
  EXPECT_FALSE(*notifier.keepAlive(t0 + milliseconds(499)));
  EXPECT_EQ(systemd.next(), "");
  EXPECT_TRUE(*notifier.keepAlive(t0 + milliseconds(500)));
  EXPECT_EQ(systemd.next(), "WATCHDOG=1");
  EXPECT_FALSE(*notifier.keepAlive(t0 + milliseconds(900)));
}

// Ensures the watchdog of another process (a parent's WATCHDOG_PID) is not taken as ours.
TEST(ServiceNotifierTest, WatchdogOfAnotherProcessIsIgnored) {
  FakeSystemd systemd;
  setenv("WATCHDOG_USEC", "1000000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);
  ServiceNotifier notifier = ServiceNotifier::fromEnvironment();
  EXPECT_EQ(notifier.watchdogInterval().count(), 0);
  EXPECT_FALSE(*notifier.keepAlive(std::chrono::steady_clock::now()));
  EXPECT_EQ(systemd.next(), "");
}

// Ensures a socket that went away is reported, not hidden.
TEST(ServiceNotifierTest, VanishedSocketIsAnError) {
  ServiceNotifier notifier = ServiceNotifier::inactive();
  {
    FakeSystemd systemd;
    notifier = ServiceNotifier::fromEnvironment();
  }
  Status s = notifier.ready("x");
  EXPECT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("sd_notify"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace vrm::daemon
