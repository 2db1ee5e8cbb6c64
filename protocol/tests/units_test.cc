#include "vrm/protocol/units.h"

#include <gtest/gtest.h>

namespace vrm {
namespace {

// Ensures decimal and binary size prefixes mean what the README says.
TEST(UnitsTest, Sizes) {
  EXPECT_EQ(*parseBytes("512"), 512u);
  EXPECT_EQ(*parseBytes("1 KB"), 1000u);
  EXPECT_EQ(*parseBytes("1KiB"), 1024u);
  EXPECT_EQ(*parseBytes("256 MB"), 256'000'000u);
  EXPECT_EQ(*parseBytes("256 MiB"), 256u << 20);
  EXPECT_EQ(*parseBytes("1.5 GiB"), 3u << 29);
  EXPECT_EQ(*parseBytes(" 4 GB "), 4'000'000'000u);
}

// Ensures bit rates, byte rates and page rates convert to bytes per second.
TEST(UnitsTest, Rates) {
  EXPECT_DOUBLE_EQ(*parseRateBytesPerSec("1 Gbit/s"), 125e6);
  EXPECT_DOUBLE_EQ(*parseRateBytesPerSec("100Mbit/s"), 12.5e6);
  EXPECT_DOUBLE_EQ(*parseRateBytesPerSec("10 MB/s"), 1e7);
  EXPECT_DOUBLE_EQ(*parseRateBytesPerSec("1 MiB/s"), 1048576.0);
  EXPECT_DOUBLE_EQ(*parseRateBytesPerSec("1000 pages/s"), 4096000.0);
}

// Ensures durations accept ms, s, min and h, and bare numbers are seconds.
TEST(UnitsTest, Durations) {
  EXPECT_EQ(*parseDurationNs("300ms"), 300 * kNsPerMs);
  EXPECT_EQ(*parseDurationNs("2 s"), 2 * kNsPerSec);
  EXPECT_EQ(*parseDurationNs("5"), 5 * kNsPerSec);
  EXPECT_EQ(*parseDurationNs("2min"), 120 * kNsPerSec);
  EXPECT_EQ(*parseDurationNs("2h"), 7200 * kNsPerSec);
}

// Ensures bad input is a typed, explanatory error.
TEST(UnitsTest, BadInputIsInvalidArgument) {
  for (const char* bad : {"", "abc", "-1 GiB", "5 parsecs", "1 mbit/s", "nan", "inf"}) {
    auto r = parseBytes(bad);
    EXPECT_FALSE(r.isOk()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(parseRateBytesPerSec("1 GiB").isOk());
  EXPECT_FALSE(parseDurationNs("1 GiB").isOk());
  auto r = parseRateBytesPerSec("3 furlongs/s");
  EXPECT_NE(r.status().message().find("unknown rate unit"), std::string::npos);
}

// Ensures a finite number of a large unit that overflows to infinity is an error, as units.h
// promises (found by fuzz_units: "+1e308Tbit/s").
TEST(UnitsTest, OverflowToInfinityIsInvalidArgument) {
  auto rate = parseRateBytesPerSec("1e308 Tbit/s");
  ASSERT_FALSE(rate.isOk());
  EXPECT_EQ(rate.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(parseBytes("1e308 TiB").isOk());
  EXPECT_FALSE(parseDurationNs("1e308 d").isOk());
  EXPECT_DOUBLE_EQ(*parseRateBytesPerSec("1e300 Gbit/s"), 1.25e308);
}

// Ensures quantities print in the units operators read.
TEST(UnitsTest, Formatting) {
  EXPECT_EQ(formatBytes(4.0 * (1u << 30)), "4.00 GiB");
  EXPECT_EQ(formatBytes(100), "100 B");
  EXPECT_EQ(formatRate(125e6), "1.00 Gbit/s");
  EXPECT_EQ(formatDuration(150 * kNsPerMs), "150ms");
  EXPECT_EQ(formatDuration(3723 * kNsPerSec), "1h 02m 03s");
}

}  // namespace
}  // namespace vrm
