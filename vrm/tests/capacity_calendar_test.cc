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
