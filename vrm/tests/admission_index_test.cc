// The AdmissionIndex's contract: host views derived from the inventory and a calendar it only
// reads, derived again only for the hosts it is told changed (or whose free capacity the
// calendar says may change, or when the clock goes back); canReceive decided per candidate; the
// planner's index kept equal to a full snapshot.
#include "vrm/manager/admission_index.h"

#include <gtest/gtest.h>

#include "sample_records.h"
#include "vrm/manager/inventory.h"

namespace vrm::manager {
namespace {

constexpr TimeNs kSec = kNsPerSec;
using sample::kGiB;
constexpr TimeNs kT0 = 1000 * kSec;

using sample::host;
using sample::vm;

Usage usage(std::int64_t cores, std::uint64_t memoryBytes) {
  Usage u;
  u.cpuCores = cores;
  u.memoryBytes = static_cast<std::int64_t>(memoryBytes);
  return u;
}

Reservation candidate(const std::string& id) {
  Reservation r;
  r.id = id;
  r.request.kind = ReservationKind::kDedicated;
  return r;
}

const planner::HostSnapshot& find(const planner::VacateRequest& req, const std::string& name) {
  for (const auto& h : req.hosts) {
    if (h.name == name) return h;
  }
  ADD_FAILURE() << "no host " << name;
  static const planner::HostSnapshot kNone;
  return kNone;
}

// Hosts a (two VMs), b (one big VM) and c (empty), 8 cores and 16 GiB each, with a calendar
// booked by hand (the index reads it, whoever maintains it).
class AdmissionIndexTest : public ::testing::Test {
 protected:
  AdmissionIndexTest() : inventory_(30 * kSec), index_(inventory_, calendar_) {}

  void registerHost(const std::string& name, std::vector<VmRecord> vms) {
    ASSERT_TRUE(inventory_.registerHost(host(name), vms, kT0));
    calendar_.setCapacity(name, usage(8, 16 * kGiB));
    calendar_.clearHost(name);
    for (const auto& v : vms) {
      calendar_.book(name, kT0, kTimeInfinity, usage(v.cpuCores, v.memoryBytes));
    }
  }
  void SetUp() override {
    registerHost("a", {vm("a1"), vm("a2")});
    registerHost("b", {vm("b1", 12 * kGiB)});
    registerHost("c", {});
  }

  Inventory inventory_;
  CapacityCalendar calendar_;
  AdmissionIndex index_;
};

// Free capacity comes from the calendar; a booking nobody tells the index about is not seen,
// a told one is (only on that host), and the cluster index agrees with the snapshot.
TEST_F(AdmissionIndexTest, ViewsChangeOnlyWhenTold) {
  auto before = index_.snapshot(candidate("r"), kT0);
  ASSERT_EQ(before.hosts.size(), 3u);
  EXPECT_EQ(find(before, "a").freeMemoryBytes, 12 * kGiB);
  EXPECT_EQ(find(before, "a").freeCpuCores, 4u);
  EXPECT_EQ(find(before, "b").freeMemoryBytes, 4 * kGiB);
  EXPECT_EQ(find(before, "c").freeMemoryBytes, 16 * kGiB);
  EXPECT_TRUE(before.vms.empty());  // only those of the hosts a plan vacates: vmsToVacate

  calendar_.book("c", kT0, kTimeInfinity, usage(4, 8 * kGiB));
  EXPECT_EQ(find(index_.snapshot(candidate("r"), kT0), "c").freeMemoryBytes, 16 * kGiB);
  index_.bookingsChanged({{}, {"c"}});
  auto after = index_.snapshot(candidate("r"), kT0);
  EXPECT_EQ(find(after, "c").freeMemoryBytes, 8 * kGiB);
  EXPECT_EQ(find(after, "c").freeCpuCores, 4u);

  const planner::IndexedCluster* cluster = index_.cluster(candidate("r"), false, kT0, kT0);
  ASSERT_NE(cluster, nullptr);
  for (const auto& h : after.hosts) {
    const planner::HostSnapshot* indexed = cluster->find(h.name);
    ASSERT_NE(indexed, nullptr) << h.name;
    EXPECT_EQ(indexed->freeMemoryBytes, h.freeMemoryBytes) << h.name;
    EXPECT_EQ(indexed->freeCpuCores, h.freeCpuCores) << h.name;
    EXPECT_EQ(indexed->canReceive, h.canReceive) << h.name;
  }
  // A later change reaches the index kept across calls.
  calendar_.book("a", kT0, kTimeInfinity, usage(2, 4 * kGiB));
  index_.bookingsChanged({{"a"}, {}});
  cluster = index_.cluster(candidate("r"), false, kT0, kT0);
  ASSERT_NE(cluster, nullptr);
  EXPECT_EQ(cluster->find("a")->freeMemoryBytes, 8 * kGiB);
}

// A booking that ends is seen once the clock passes its end (stableUntil), without being told.
TEST_F(AdmissionIndexTest, FreeCapacityIsDerivedAgainWhenABookingEnds) {
  calendar_.book("c", kT0, kT0 + 100 * kSec, usage(8, 16 * kGiB));
  index_.bookingsChanged({{}, {"c"}});
  EXPECT_EQ(find(index_.snapshot(candidate("r"), kT0), "c").freeMemoryBytes, 0u);
  EXPECT_EQ(find(index_.snapshot(candidate("r"), kT0 + 99 * kSec), "c").freeMemoryBytes, 0u);
  EXPECT_EQ(find(index_.snapshot(candidate("r"), kT0 + 100 * kSec), "c").freeMemoryBytes,
            16 * kGiB);
  const planner::IndexedCluster* cluster =
      index_.cluster(candidate("r"), false, kT0 + 100 * kSec, kT0 + 100 * kSec);
  ASSERT_NE(cluster, nullptr);
  EXPECT_EQ(cluster->find("c")->freeMemoryBytes, 16 * kGiB);
  // The clock set back: the views computed later are suspect and derived again.
  EXPECT_EQ(find(index_.snapshot(candidate("r"), kT0), "c").freeMemoryBytes, 0u);
}

// canReceive: not an unreachable host, not one with another reservation's exclusive window from
// now on, but a host with the candidate's own window (a re-plan) can; decided per candidate.
TEST_F(AdmissionIndexTest, CanReceiveIsDecidedForTheCandidate) {
  calendar_.bookExclusive("b", kT0 + 50 * kSec, kT0 + 60 * kSec, "r1");
  index_.bookingsChanged({{}, {"b"}});
  auto forOther = index_.snapshot(candidate("r2"), kT0);
  EXPECT_TRUE(find(forOther, "a").canReceive);
  EXPECT_FALSE(find(forOther, "b").canReceive);
  EXPECT_TRUE(find(index_.snapshot(candidate("r1"), kT0), "b").canReceive);
  // After the window, nobody's.
  EXPECT_TRUE(find(index_.snapshot(candidate("r2"), kT0 + 60 * kSec), "b").canReceive);

  const planner::IndexedCluster* cluster = index_.cluster(candidate("r2"), false, kT0, kT0);
  ASSERT_NE(cluster, nullptr);
  EXPECT_FALSE(cluster->find("b")->canReceive);
  cluster = index_.cluster(candidate("r1"), /*candidateBooked=*/true, kT0, kT0);
  ASSERT_NE(cluster, nullptr);
  EXPECT_TRUE(cluster->find("b")->canReceive);
  // The next candidate does not inherit r1's answer.
  cluster = index_.cluster(candidate("r2"), false, kT0, kT0);
  ASSERT_NE(cluster, nullptr);
  EXPECT_FALSE(cluster->find("b")->canReceive);

  (void)inventory_.markUnreachable("a");  // reachability is read from the inventory on every call
  EXPECT_FALSE(find(index_.snapshot(candidate("r2"), kT0), "a").canReceive);
  cluster = index_.cluster(candidate("r2"), false, kT0, kT0);
  ASSERT_NE(cluster, nullptr);
  EXPECT_FALSE(cluster->find("a")->canReceive);
}

// Candidates rank by bytes a vacate moves, then by name; a vacate moves the host's own VMs, not
// incoming ones nor other reservations' clones, listed in host-name order.
TEST_F(AdmissionIndexTest, RanksHostsByBytesToMoveAndListsTheirVms) {
  VmRecord incoming = vm("in1");
  incoming.state = VmState::kIncoming;
  VmRecord clone = vm("r9-t-1");
  clone.reservationId = "r9";
  registerHost("d", {vm("d1", 1 * kGiB), incoming, clone});
  index_.bookingsChanged({{"d"}, {}});
  (void)index_.snapshot(candidate("r"), kT0);
  std::vector<std::pair<std::uint64_t, std::string>> ranked(index_.byVacateBytes().begin(),
                                                            index_.byVacateBytes().end());
  EXPECT_EQ(ranked, (std::vector<std::pair<std::uint64_t, std::string>>{
                        {0, "c"}, {1 * kGiB, "d"}, {4 * kGiB, "a"}, {12 * kGiB, "b"}}));
  std::vector<std::string> ids;
  for (const auto& v : index_.vmsToVacate({"d", "a"})) ids.push_back(v.host + "/" + v.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a/a1", "a/a2", "d/d1"}));

  // The inventory changes and the host is told rebuilt: ranked and listed anew.
  ASSERT_TRUE(inventory_.registerHost(host("a"), {vm("a1")}, kT0));
  index_.bookingsChanged({{"a"}, {}});
  (void)index_.snapshot(candidate("r"), kT0);
  EXPECT_EQ(index_.byVacateBytes().count({2 * kGiB, "a"}), 1u);
  EXPECT_EQ(index_.byVacateBytes().count({4 * kGiB, "a"}), 0u);
  EXPECT_EQ(index_.vmsToVacate({"a"}).size(), 1u);
}

}  // namespace
}  // namespace vrm::manager
