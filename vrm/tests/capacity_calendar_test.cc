#include "vrm/manager/capacity_calendar.h"

#include <gtest/gtest.h>

namespace vrm::manager {
namespace {

CapacityCalendar oneHost() {
  CapacityCalendar c;
  c.setCapacity("h", {16, 64, 100});
  return c;
}

// Ensures overlapping bookings add up and the peak is taken over the queried window only.
TEST(CapacityCalendarTest, OverlappingBookingsSum) {
  auto c = oneHost();
  c.book("h", 0, 100, {4, 16, 0});
  c.book("h", 50, 150, {8, 8, 0});
  EXPECT_EQ(c.peak("h", 0, 50).cpuCores, 4);
  EXPECT_EQ(c.peak("h", 0, 200).cpuCores, 12);
  EXPECT_EQ(c.peak("h", 100, 200).cpuCores, 8);
  EXPECT_EQ(c.peak("h", 150, 200).cpuCores, 0);
  EXPECT_EQ(c.free("h", 0, 200).memoryBytes, 64 - 24);
}

// Ensures half-open intervals: back-to-back bookings do not collide.
TEST(CapacityCalendarTest, BackToBackBookingsDoNotCollide) {
  auto c = oneHost();
  c.book("h", 0, 100, {16, 0, 0});
  c.book("h", 100, 200, {16, 0, 0});
  EXPECT_EQ(c.peak("h", 0, 200).cpuCores, 16);
  EXPECT_FALSE(c.overbooked("h"));
  c.book("h", 99, 101, {1, 0, 0});
  std::string why;
  EXPECT_TRUE(c.overbooked("h", &why));
  EXPECT_NE(why.find("cpu cores"), std::string::npos);
}

// Ensures forever-bookings (running VMs) and negative bookings (a VM leaving) compose.
TEST(CapacityCalendarTest, ForeverAndReleases) {
  auto c = oneHost();
  c.book("h", kTimeMinusInfinity, kTimeInfinity, {2, 8, 0});
  c.book("h", 500, kTimeInfinity, {-2, -8, 0});  // leaves at 500
  EXPECT_EQ(c.peak("h", 0, 400).memoryBytes, 8);
  EXPECT_EQ(c.peak("h", 500, kTimeInfinity).memoryBytes, 0);
}

// Ensures exclusive windows report their owner and double ownership is overbooking.
TEST(CapacityCalendarTest, ExclusiveWindows) {
  auto c = oneHost();
  c.bookExclusive("h", 100, 200, "r1");
  EXPECT_EQ(c.exclusiveOwner("h", 150, 300), "r1");
  EXPECT_FALSE(c.exclusiveOwner("h", 150, 300, "r1").has_value());
  EXPECT_FALSE(c.exclusiveOwner("h", 200, 300).has_value());
  EXPECT_FALSE(c.overbooked("h"));
  c.bookExclusive("h", 199, 250, "r2");
  EXPECT_TRUE(c.overbooked("h"));
  c.clearHost("h");
  EXPECT_FALSE(c.exclusiveOwner("h", 0, 1000).has_value());
  EXPECT_EQ(c.capacity("h").cpuCores, 16);
}

}  // namespace
}  // namespace vrm::manager

namespace vrm::manager {
namespace {

// Ensures unbook() takes back exactly what book() added: peaks, verdicts and segments as before.
TEST(CapacityCalendarTest, UnbookRestoresTheCalendar) {
  auto c = oneHost();
  c.book("h", 0, 100, {4, 16, 0});
  c.book("h", 50, kTimeInfinity, {8, 8, 0});
  EXPECT_EQ(c.stableUntil("h", 10), 50);  // segments [0, 50), [50, 100), [100, inf)
  c.book("h", 20, 60, {10, 0, 0});
  EXPECT_TRUE(c.overbooked("h"));
  EXPECT_EQ(c.stableUntil("h", 10), 20);
  c.unbook("h", 20, 60, {10, 0, 0});
  EXPECT_FALSE(c.overbooked("h"));
  EXPECT_EQ(c.peak("h", 0, 200).cpuCores, 12);
  EXPECT_EQ(c.stableUntil("h", 10), 50);  // segments joined again
  EXPECT_EQ(c.stableUntil("h", 50), 100);
}

// Ensures the windowed check sees only violations inside its window, with the full check's
// message for them.
TEST(CapacityCalendarTest, OverbookedWithinLooksAtItsWindowOnly) {
  auto c = oneHost();
  c.book("h", 100, 200, {20, 0, 0});
  std::string whyAll, whyWindow;
  EXPECT_TRUE(c.overbooked("h", &whyAll));
  EXPECT_FALSE(c.overbookedWithin("h", 0, 100));
  EXPECT_FALSE(c.overbookedWithin("h", 200, 300));
  EXPECT_TRUE(c.overbookedWithin("h", 150, 160, &whyWindow));
  EXPECT_EQ(whyAll, whyWindow);
  c.bookExclusive("h", 300, 400, "r1");
  c.bookExclusive("h", 350, 450, "r2");
  EXPECT_TRUE(c.overbookedWithin("h", 390, 500));
  EXPECT_FALSE(c.overbookedWithin("h", 400, 500));
}

// Ensures stableUntil() is the first instant after `now` at which "free from t on" can change:
// the end of the first segment still running, whatever the resource or an exclusive window.
TEST(CapacityCalendarTest, StableUntilIsTheNextSegmentEnd) {
  auto c = oneHost();
  EXPECT_EQ(c.stableUntil("h", 0), kTimeInfinity);
  EXPECT_EQ(c.stableUntil("unknown", 0), kTimeInfinity);
  c.book("h", kTimeMinusInfinity, kTimeInfinity, {2, 2, 0});  // a VM running forever
  EXPECT_EQ(c.stableUntil("h", 0), kTimeInfinity);
  c.book("h", 500, 700, {0, 0, 10});
  c.bookExclusive("h", 300, 400, "r1");
  EXPECT_EQ(c.stableUntil("h", 0), 400);
  EXPECT_EQ(c.stableUntil("h", 400), 700);
  EXPECT_EQ(c.free("h", 0, kTimeInfinity).nicBytesPerSec,
            c.free("h", 399, kTimeInfinity).nicBytesPerSec);
  EXPECT_EQ(c.stableUntil("h", 700), kTimeInfinity);
}

// Ensures additions to a host that is already overbooked are judged by what they add: booking
// where the host has room, or where it was over but no deeper, is fine; adding at an instant
// where the host then exceeds capacity is not, nor a new overlap of exclusive windows.
// (fuzz_manager_ops: a re-admitted reservation skipped the check of an already overbooked host
// and made it worse.)
TEST(CapacityCalendarTest, WorseThanJudgesOnlyWhatWasAdded) {
  auto c = oneHost();
  c.book("h", 100, 200, {20, 0, 0});  // over by 4 on [100, 200)
  c.bookExclusive("h", 0, 50, "r1");
  const auto before = c.copyOf("h");
  std::string why;
  c.book("h", 300, 400, {16, 0, 0});  // room there
  EXPECT_FALSE(c.worseThan("h", *before, &why)) << why;
  c.book("h", 150, 250, {-2, 0, 0});  // less, not more
  EXPECT_FALSE(c.worseThan("h", *before, &why)) << why;
  c.book("h", 150, 250, {2, 0, 0});
  c.book("h", 190, 260, {1, 0, 0});  // deeper on [190, 200)
  EXPECT_TRUE(c.worseThan("h", *before, &why));
  EXPECT_NE(why.find("cpu cores booked 21"), std::string::npos) << why;
  c.book("h", 190, 260, {-1, 0, 0});
  EXPECT_FALSE(c.worseThan("h", *before, &why)) << why;
  c.bookExclusive("h", 40, 60, "r2");
  EXPECT_TRUE(c.worseThan("h", *before, &why));
  EXPECT_NE(why.find("r2"), std::string::npos) << why;
}

}  // namespace
}  // namespace vrm::manager
