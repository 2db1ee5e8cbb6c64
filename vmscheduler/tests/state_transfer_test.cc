// Tests of the staged-state copy between two agents (qemu/state_transfer.h) on loopback, without
// QEMU: the bytes arrive intact, both phases are measured, failures are typed on the sending
// side, and the receiver's staging file is removed whatever happens.
#include "qemu/state_transfer.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

namespace vrm::vmscheduler {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class StateTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vrm-state-transfer-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    source_ = (dir_ / "vm.state").string();
    staged_ = (dir_ / "vm.incoming.state").string();
    std::ofstream out(source_, std::ios::binary);
    for (int i = 0; i < kBytes; ++i) out.put(static_cast<char>((i * 131) % 251));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A receiver on a port the system chooses: ctest runs these tests as parallel processes, and
  // a fixed range let one test's sender reach another test's receiver.
  std::unique_ptr<StateReceiver> listen(const std::string& vmId) {
    auto r = StateReceiver::listen("127.0.0.1", 0, staged_, vmId, 5000ms);
    if (!r) {
      ADD_FAILURE() << r.status().toString();
      return nullptr;
    }
    EXPECT_GT(r.value()->port(), 0);
    return std::move(r).value();
  }

  // Waits (bounded) until `done` holds; the transfers run on their own threads. The bound is
  // generous (30 s) because a loaded CI machine can stall a thread for seconds; a passing test
  // waits only as long as the copy takes.
  template <typename F>
  static bool waitUntil(F done) {
    for (int i = 0; i < 6000 && !done(); ++i) std::this_thread::sleep_for(5ms);
    return done();
  }

  static constexpr int kBytes = 1 << 20;
  fs::path dir_;
  std::string source_, staged_;
};

// Ensures the whole file reaches the receiver's staging file byte for byte, the sender learns
// RECEIVED and then RESTORED with both phases measured, and the staging file is removed once
// the restore is reported.
TEST_F(StateTransferTest, CopiesTheFileAndReportsBothPhases) {
  auto receiver = listen("vm");
  ASSERT_TRUE(receiver);
  EXPECT_EQ(receiver->phase(), StateReceiver::Phase::kListening);
  StateSender sender(source_, kBytes, "127.0.0.1", receiver->port(), "vm", 0, 5000ms);
  ASSERT_TRUE(waitUntil([&] { return receiver->phase() == StateReceiver::Phase::kReceived; }))
      << receiver->error();
  ASSERT_TRUE(waitUntil([&] { return sender.received(); }));
  EXPECT_FALSE(sender.outcome().has_value());  // waits for the restore
  std::ifstream a(source_, std::ios::binary), b(staged_, std::ios::binary);
  const std::string sent((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
  const std::string got((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got.size(), static_cast<std::size_t>(kBytes));
  EXPECT_TRUE(got == sent);
  receiver->finish(Status::ok());
  EXPECT_EQ(receiver->phase(), StateReceiver::Phase::kFinished);
  EXPECT_FALSE(fs::exists(staged_));
  ASSERT_TRUE(waitUntil([&] { return sender.outcome().has_value(); }));
  const auto outcome = *sender.outcome();
  EXPECT_TRUE(outcome.status.isOk()) << outcome.status.toString();
  EXPECT_GT(outcome.copy.count(), 0);
  EXPECT_GT(outcome.restore.count(), 0);
  EXPECT_EQ(sender.sentBytes(), static_cast<std::uint64_t>(kBytes));
}

// Ensures a failed restore reaches the sender as unavailable with the destination's reason.
TEST_F(StateTransferTest, FailedRestoreIsReportedToTheSender) {
  auto receiver = listen("vm");
  ASSERT_TRUE(receiver);
  StateSender sender(source_, kBytes, "127.0.0.1", receiver->port(), "vm", 0, 5000ms);
  ASSERT_TRUE(waitUntil([&] { return receiver->phase() == StateReceiver::Phase::kReceived; }));
  receiver->finish(Status::internal("qemu exited"));
  EXPECT_EQ(receiver->phase(), StateReceiver::Phase::kFailed);
  EXPECT_FALSE(fs::exists(staged_));
  ASSERT_TRUE(waitUntil([&] { return sender.outcome().has_value(); }));
  EXPECT_EQ(sender.outcome()->status.code(), StatusCode::kUnavailable);
  EXPECT_NE(sender.outcome()->status.message().find("qemu exited"), std::string::npos)
      << sender.outcome()->status.message();
}

// Ensures a receiver refuses the state of another VM and the sender is told why.
TEST_F(StateTransferTest, StateOfAnotherVmIsRefused) {
  auto receiver = listen("other");
  ASSERT_TRUE(receiver);
  StateSender sender(source_, kBytes, "127.0.0.1", receiver->port(), "vm", 0, 5000ms);
  ASSERT_TRUE(waitUntil([&] { return sender.outcome().has_value(); }));
  EXPECT_EQ(sender.outcome()->status.code(), StatusCode::kUnavailable);
  EXPECT_NE(sender.outcome()->status.message().find("expects the state of vm 'other', not 'vm'"),
            std::string::npos)
      << sender.outcome()->status.message();
  ASSERT_TRUE(waitUntil([&] { return receiver->phase() == StateReceiver::Phase::kFailed; }));
  EXPECT_FALSE(fs::exists(staged_));
}

// Ensures a receiver that fails mid-copy (its staging file cannot grow) gets its reason to the
// sender even when its owner destroys it the moment it reports kFailed, as the qemu backend does:
// the receiver drains the sender before reporting, so its close cannot reset the connection
// before the sender read the reason.
TEST_F(StateTransferTest, FailureMidCopyReachesTheSenderBeforeTheClose) {
  // Files of this process may not grow past 128 KiB, so the receiver's write fails with EFBIG.
  struct FileSizeLimit {
    rlimit old{};
    void (*oldHandler)(int) = nullptr;
    FileSizeLimit() {
      getrlimit(RLIMIT_FSIZE, &old);
      oldHandler = std::signal(SIGXFSZ, SIG_IGN);
      rlimit small = old;
      small.rlim_cur = 128 << 10;
      setrlimit(RLIMIT_FSIZE, &small);
    }
    ~FileSizeLimit() {
      setrlimit(RLIMIT_FSIZE, &old);
      std::signal(SIGXFSZ, oldHandler);
    }
  } limit;
  auto receiver = listen("vm");
  ASSERT_TRUE(receiver);
  // Paced at 4 MiB/s, so the sender is still sending when the receiver fails (~30 ms in).
  StateSender sender(source_, kBytes, "127.0.0.1", receiver->port(), "vm", 4 << 20, 5000ms);
  ASSERT_TRUE(waitUntil([&] { return receiver->phase() == StateReceiver::Phase::kFailed; }));
  receiver.reset();
  ASSERT_TRUE(waitUntil([&] { return sender.outcome().has_value(); }));
  EXPECT_EQ(sender.outcome()->status.code(), StatusCode::kUnavailable);
  EXPECT_NE(sender.outcome()->status.message().find("File too large"), std::string::npos)
      << sender.outcome()->status.message();
  EXPECT_LT(sender.sentBytes(), static_cast<std::uint64_t>(kBytes));
  EXPECT_FALSE(fs::exists(staged_));
}

// Ensures a second sender to a receiver already busy with one is refused at once, not left
// waiting for its timeout.
TEST_F(StateTransferTest, SecondSenderIsRefusedAtOnce) {
  auto receiver = listen("vm");
  ASSERT_TRUE(receiver);
  StateSender first(source_, kBytes, "127.0.0.1", receiver->port(), "vm", 0, 5000ms);
  ASSERT_TRUE(waitUntil([&] { return receiver->phase() == StateReceiver::Phase::kReceived; }));
  StateSender second(source_, kBytes, "127.0.0.1", receiver->port(), "vm", 0, 60000ms);
  ASSERT_TRUE(waitUntil([&] { return second.outcome().has_value(); }));
  EXPECT_EQ(second.outcome()->status.code(), StatusCode::kUnavailable);
  EXPECT_NE(second.outcome()->status.message().find("connect"), std::string::npos)
      << second.outcome()->status.message();
}

// Ensures a destination that is gone (nothing listening) is an unavailable outcome, not a hang.
TEST_F(StateTransferTest, NoReceiverIsUnavailable) {
  int port = 0;
  {
    auto receiver = listen("vm");
    ASSERT_TRUE(receiver);
    port = receiver->port();
  }  // closed again
  StateSender sender(source_, kBytes, "127.0.0.1", port, "vm", 0, 5000ms);
  ASSERT_TRUE(waitUntil([&] { return sender.outcome().has_value(); }));
  EXPECT_EQ(sender.outcome()->status.code(), StatusCode::kUnavailable);
}

// Ensures a receiver destroyed in the middle of a paced transfer aborts it: the sender fails and
// the partial staging file is removed.
TEST_F(StateTransferTest, ReceiverDroppedMidCopyCleansUp) {
  auto receiver = listen("vm");
  ASSERT_TRUE(receiver);
  // 1 MiB at 1 MiB/s: about a second, so the drop lands mid-copy.
  StateSender sender(source_, kBytes, "127.0.0.1", receiver->port(), "vm", 1 << 20, 5000ms);
  ASSERT_TRUE(waitUntil([&] { return sender.sentBytes() > 0; }));
  receiver.reset();
  EXPECT_FALSE(fs::exists(staged_));
  ASSERT_TRUE(waitUntil([&] { return sender.outcome().has_value(); }));
  EXPECT_EQ(sender.outcome()->status.code(), StatusCode::kUnavailable);
  EXPECT_LT(sender.sentBytes(), static_cast<std::uint64_t>(kBytes));
}

// Ensures the limit of a copy under way can be changed (the qemu backend's
// setMigrationBandwidth during suspend-copy-resume's copy): 1 MiB at 16 KiB/s would take 64 s;
// lifted after the first chunk, the copy ends well within the wait's bound.
TEST_F(StateTransferTest, LimitOfACopyUnderWayCanBeLifted) {
  auto receiver = listen("vm");
  ASSERT_TRUE(receiver);
  StateSender sender(source_, kBytes, "127.0.0.1", receiver->port(), "vm", 16 << 10, 5000ms);
  ASSERT_TRUE(waitUntil([&] { return sender.sentBytes() > 0; }));
  EXPECT_LT(sender.sentBytes(), static_cast<std::uint64_t>(kBytes));
  sender.setBytesPerSec(0);
  ASSERT_TRUE(waitUntil([&] { return sender.received(); })) << sender.sentBytes();
  receiver->finish(Status::ok());
  ASSERT_TRUE(waitUntil([&] { return sender.outcome().has_value(); }));
  EXPECT_TRUE(sender.outcome()->status.isOk()) << sender.outcome()->status.toString();
}

// Ensures a sender whose staged file is missing fails with internal (nothing was sent).
TEST_F(StateTransferTest, MissingStagedFileIsInternal) {
  auto receiver = listen("vm");
  ASSERT_TRUE(receiver);
  StateSender sender((dir_ / "missing").string(), kBytes, "127.0.0.1", receiver->port(), "vm", 0,
                     5000ms);
  ASSERT_TRUE(waitUntil([&] { return sender.outcome().has_value(); }));
  EXPECT_EQ(sender.outcome()->status.code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace vrm::vmscheduler
