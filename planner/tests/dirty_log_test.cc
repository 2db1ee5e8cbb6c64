#include "vrm/planner/dirty_log.h"

#include <gtest/gtest.h>

namespace vrm::planner {
namespace {

// Ensures counts, the interval header, comments, blank lines and CRLF endings are all read.
TEST(DirtyLogTest, ParsesCountsHeaderAndComments) {
  auto log = parseDirtyLog(
      "# recorded on host-a\r\n# interval_s = 0.5\r\n\r\n120\r\n 80 \r\n"
      "# mid-run comment\n0\n3.5\n");
  ASSERT_TRUE(log.isOk()) << log.status().toString();
  EXPECT_DOUBLE_EQ(log->intervalS, 0.5);
  EXPECT_EQ(log->dirtiedPages, (std::vector<double>{120, 80, 0, 3.5}));
}

// Ensures the interval defaults to one second and a last line without newline counts.
TEST(DirtyLogTest, DefaultIntervalAndNoTrailingNewline) {
  auto log = parseDirtyLog("10\n20");
  ASSERT_TRUE(log.isOk());
  EXPECT_DOUBLE_EQ(log->intervalS, 1.0);
  EXPECT_EQ(log->dirtiedPages, (std::vector<double>{10, 20}));
}

// Ensures a malformed count is invalid-argument naming its 1-based line.
TEST(DirtyLogTest, MalformedLineReportsLineNumber) {
  DirtyLogError error;
  auto log = parseDirtyLog("# interval_s=1\n10\n12x\n5\n", &error);
  ASSERT_FALSE(log.isOk());
  EXPECT_EQ(log.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(error.line, 3);
  EXPECT_NE(error.reason.find("12x"), std::string::npos);
  EXPECT_NE(log.status().message().find("line 3"), std::string::npos);
}

// Ensures negative, non-finite and multi-value lines are rejected with their line number.
TEST(DirtyLogTest, RejectsBadCounts) {
  for (const char* bad : {"-4", "nan", "inf", "1 2", "1,5", "0x10", ""}) {
    if (*bad == '\0') continue;  // blank lines are allowed
    DirtyLogError error;
    auto log = parseDirtyLog(std::string("7\n") + bad + "\n", &error);
    EXPECT_FALSE(log.isOk()) << bad;
    EXPECT_EQ(error.line, 2) << bad;
  }
}

// Ensures the interval header must be positive, single and before the counts.
TEST(DirtyLogTest, RejectsBadHeader) {
  DirtyLogError error;
  EXPECT_FALSE(parseDirtyLog("# interval_s=0\n1\n", &error).isOk());
  EXPECT_EQ(error.line, 1);
  EXPECT_FALSE(parseDirtyLog("# interval_s=fast\n1\n", &error).isOk());
  EXPECT_EQ(error.line, 1);
  EXPECT_FALSE(parseDirtyLog("1\n# interval_s=2\n", &error).isOk());
  EXPECT_EQ(error.line, 2);
  EXPECT_FALSE(parseDirtyLog("# interval_s=2\n# interval_s=3\n1\n", &error).isOk());
  EXPECT_EQ(error.line, 2);
}

// Ensures a log without counts is rejected as a whole (line 0), and success leaves error alone.
TEST(DirtyLogTest, EmptyLog) {
  DirtyLogError error;
  auto log = parseDirtyLog("", &error);
  EXPECT_EQ(log.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(error.line, 0);
  EXPECT_FALSE(parseDirtyLog("# interval_s=1\n\n# nothing\n", &error).isOk());
  DirtyLogError untouched{42, "x"};
  EXPECT_TRUE(parseDirtyLog("1\n", &untouched).isOk());
  EXPECT_EQ(untouched.line, 42);
}

// Ensures a parsed log drives the HIST model.
TEST(DirtyLogTest, FeedsHistModel) {
  auto log = parseDirtyLog("# interval_s=1\n0\n0\n");
  ASSERT_TRUE(log.isOk());
  VmProfile vm;
  vm.memoryBytes = 1e9;
  vm.dirtyLog = *log;
  auto model = createMigrationModel("akoush-hist");
  ASSERT_TRUE(model.isOk());
  auto e = (*model)->estimate(vm, LinkProfile{1e8, 0, 0});
  ASSERT_TRUE(e.isOk());
  EXPECT_NEAR(e->totalTimeS, 10.0, 1e-9);
}

}  // namespace
}  // namespace vrm::planner
