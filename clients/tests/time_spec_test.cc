#include "vrm/client/time_spec.h"

#include <gtest/gtest.h>

namespace vrm::client {
namespace {

constexpr TimeNs kNow = 1'795'000'000 * kNsPerSec;

// Ensures ISO 8601 forms, offsets and relative times are understood.
TEST(TimeSpecTest, AcceptedForms) {
  EXPECT_EQ(*parseTimeSpec("1970-01-01T00:00:10Z", kNow), 10 * kNsPerSec);
  EXPECT_EQ(*parseTimeSpec("1970-01-01T00:01", kNow), 60 * kNsPerSec);
  EXPECT_EQ(*parseTimeSpec("1970-01-01 01:00:00", kNow), 3600 * kNsPerSec);
  EXPECT_EQ(*parseTimeSpec("1970-01-01T02:00:00+02:00", kNow), 0);
  EXPECT_EQ(*parseTimeSpec("1970-01-02", kNow), 86400 * kNsPerSec);
  EXPECT_EQ(*parseTimeSpec("1970-01-01T00:00:01.5Z", kNow), 1500 * kNsPerMs);
  EXPECT_EQ(*parseTimeSpec("now", kNow), kNow);
  EXPECT_EQ(*parseTimeSpec("+2h", kNow), kNow + 7200 * kNsPerSec);
  EXPECT_EQ(*parseTimeSpec("+90min", kNow), kNow + 5400 * kNsPerSec);
  EXPECT_EQ(*parseTimeSpec("-7d", kNow), kNow - 7 * 86400 * kNsPerSec);
}

// Ensures nonsense is an invalid-argument error that shows the accepted forms.
TEST(TimeSpecTest, RejectsNonsense) {
  for (const char* bad : {"", "tomorrowish", "2026-13-01T00:00", "2026-02-30T10:00",
                          "2026-01-01T25:00", "+2 parsecs", "2026-01-01T10:00 junk"}) {
    auto t = parseTimeSpec(bad, kNow);
    ASSERT_FALSE(t.isOk()) << bad;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_NE(parseTimeSpec("x", kNow).status().message().find("ISO 8601"), std::string::npos);
}

// Ensures times beyond TimeNs's range are errors, not overflows (found by fuzz_units: "+2h"
// against a clock read from vrmd near the end of time; a year past 2262).
TEST(TimeSpecTest, RejectsTimesOutOfRange) {
  for (const char* bad : {"+2h", "+1d"}) {
    auto t = parseTimeSpec(bad, kTimeInfinity - 1);
    ASSERT_FALSE(t.isOk()) << bad;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  }
  for (const char* bad : {"-2h", "-1d"}) {  // before 1970 on a clock an hour after it
    auto t = parseTimeSpec(bad, 3600 * kNsPerSec);
    ASSERT_FALSE(t.isOk()) << bad;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  }
  for (const char* bad :
       {"2300-01-01T00:00Z", "9999-12-31", "1600-01-01T00:00Z", "2026-01-01T-1:00Z",
        "2026-01-01T10:-5Z",
        // seconds sscanf reads as NaN or infinity (found by fuzz_units in CI)
        "2026-11-23T14:00:nan", "2026-11-23T14:00:inf", "2026-11-23T14:00:-nan"}) {
    auto t = parseTimeSpec(bad, kNow);
    ASSERT_FALSE(t.isOk()) << bad;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(*parseTimeSpec("2262-01-01T00:00Z", kNow), 9'214'646'400 * kNsPerSec);
  EXPECT_EQ(*parseTimeSpec("+2h", -kNow), -kNow + 7200 * kNsPerSec);
}

}  // namespace
}  // namespace vrm::client
