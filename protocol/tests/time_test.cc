#include "vrm/protocol/time.h"

#include <gtest/gtest.h>

namespace vrm {
namespace {

// Ensures the manual clock moves only when told and reports due deadlines.
TEST(ClockTest, ManualClockAdvancesOnlyWhenTold) {
  ManualClock clock(100);
  EXPECT_EQ(clock.now(), 100);
  clock.advance(50);
  EXPECT_EQ(clock.now(), 150);
  EXPECT_EQ(clock.realDelayUntil(150, std::chrono::milliseconds(10)).count(), 0);
  EXPECT_EQ(clock.realDelayUntil(151, std::chrono::milliseconds(10)).count(), 10);
}

// Ensures a scaled clock converts simulated waits into proportionally shorter real waits.
TEST(ClockTest, ScaledClockShrinksDelays) {
  SystemClock real;
  ScaledClock fast(real.now(), 1000.0);
  TimeNs t = fast.now() + 10 * kNsPerSec;  // 10 simulated seconds = 10 real ms
  auto d = fast.realDelayUntil(t, std::chrono::milliseconds(1000));
  EXPECT_LE(d.count(), 11);
  EXPECT_EQ(fast.realDelayUntil(kTimeInfinity, std::chrono::milliseconds(7)).count(), 7);
}

// Ensures times print as ISO 8601 UTC.
TEST(ClockTest, FormatTime) {
  EXPECT_EQ(formatTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(formatTime(1500 * kNsPerMs), "1970-01-01T00:00:01.500Z");
}

}  // namespace
}  // namespace vrm
