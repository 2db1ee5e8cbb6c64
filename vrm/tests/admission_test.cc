// Admission's contract: a decision returned as a value (admitted with its plan and places, or
// refused with the reason and the earliest start that would do), candidates tried cheapest
// vacate first with parking only once the others are used up, and nothing changed: the
// reservations, the bookings and the candidate's state are as they were. Both paths
// (kIndexed, kFullSnapshot) are held to the same expectations.
#include "vrm/manager/admission.h"

#include <gtest/gtest.h>

#include <utility>

#include "sample_records.h"
#include "vrm/manager/command_tracker.h"
#include "vrm/manager/inventory.h"
#include "vrm/protocol/units.h"

namespace vrm::manager {
namespace {

constexpr TimeNs kSec = kNsPerSec;
using sample::kGiB;
constexpr TimeNs kT0 = 1000 * kSec;
constexpr TimeNs kStart = kT0 + 3600 * kSec;
constexpr TimeNs kEnd = kT0 + 7200 * kSec;
constexpr TimeNs kMargin = 60 * kSec;
constexpr TimeNs kLatency = kSec;
constexpr TimeNs kMoveNs = 60 * kSec;  // each of FakePlanner's moves

using sample::host;
using sample::vm;

// Moves each VM of the hosts to vacate onto the first host (by name) that may receive it, is
// not vacated and has room, one after another, 60 s each (below any NIC here); parks a VM without
// one when allowed. Refuses every host of `needParking` unless parking is allowed. Records what it
// was asked.
class FakePlanner final : public planner::VacatePlanner {
 public:
  using planner::VacatePlanner::plan;
  Result<VacatePlan> plan(const planner::VacateRequest& req) const override {
    asked.push_back({req.hostsToVacate, req.suspendPolicy});
    const bool mayPark = req.suspendPolicy == planner::SuspendPolicy::kWhenNoRoom;
    for (const auto& h : req.hostsToVacate) {
      if (!mayPark && needParking.count(h)) return Status::rejected("no room for " + h + "'s VMs");
    }
    std::map<std::string, planner::HostSnapshot> free;
    for (const auto& h : req.hosts) free[h.name] = h;
    VacatePlan plan;
    for (const auto& v : req.vms) {
      PlannedMove m;
      m.vmId = v.id;
      m.fromHost = m.toHost = v.host;
      m.mode = MoveMode::kPark;
      for (auto& [name, h] : free) {
        const bool vacated = std::count(req.hostsToVacate.begin(), req.hostsToVacate.end(), name);
        if (vacated || !h.canReceive || h.freeMemoryBytes < v.memoryBytes ||
            h.freeCpuCores < v.cpuCores) {
          continue;
        }
        h.freeMemoryBytes -= v.memoryBytes;
        h.freeCpuCores -= v.cpuCores;
        m.toHost = name;
        m.mode = MoveMode::kLive;
        break;
      }
      if (m.mode == MoveMode::kPark && !mayPark) return Status::rejected("no room for " + v.id);
      m.batch = static_cast<std::uint32_t>(plan.moves.size());
      m.startOffsetNs = static_cast<TimeNs>(plan.moves.size()) * kMoveNs;
      m.endOffsetNs = m.startOffsetNs + kMoveNs;
      m.memoryBytes = v.memoryBytes;
      m.transferredBytes = m.mode == MoveMode::kPark ? 0 : v.memoryBytes;
      if (m.mode == MoveMode::kPark) m.resumeAtNs = req.reservationEndNs;
      plan.moves.push_back(std::move(m));
    }
    plan.strategy = "fake";
    plan.makespanNs = static_cast<TimeNs>(plan.moves.size()) * kMoveNs;
    plan.cloneTimeNs = req.cloneTimeNs;
    plan.marginNs = req.marginNs;
    plan.latestSafeStartNs =
        req.reservationStartNs - req.cloneTimeNs - req.marginNs - plan.makespanNs;
    plan.hosts = req.hostsToVacate;
    return plan;
  }

  std::set<std::string> needParking;
  mutable std::vector<std::pair<std::vector<std::string>, planner::SuspendPolicy>> asked;
};

// Hosts a (one 2 GiB VM), b (two), c (one 4 GiB VM), 8 cores and 16 GiB each; templates "t"
// (2 cores, 4 GiB) and "big" (a whole host), 30 s to clone.
class AdmissionTest : public ::testing::TestWithParam<AdmissionPath> {
 protected:
  AdmissionTest()
      : inventory_(30 * kSec),
        commands_(1),
        templates_{{"t", 2, 4 * kGiB, 30 * kSec, 1}, {"big", 8, 16 * kGiB, 30 * kSec, 1}},
        projection_(clock_, inventory_, commands_, reservations_, templates_, kMargin),
        index_(inventory_, projection_.bookings()),
        admission_(planner_, inventory_.hosts(), reservations_, projection_, index_, errors_,
                   {kMargin, kLatency, 0.95, GetParam()}) {}

  void registerHost(const std::string& name, std::vector<VmRecord> vms) {
    ASSERT_TRUE(inventory_.registerHost(host(name), vms, kT0));
    projection_.touchHost(name);
  }
  void SetUp() override {
    registerHost("a", {vm("a1")});
    registerHost("b", {vm("b1"), vm("b2")});
    registerHost("c", {vm("c1", 4 * kGiB)});
  }

  Reservation candidate(ReservationKind kind, const std::string& tmpl) {
    Reservation r;
    r.id = "r";
    r.state = ReservationState::kRequested;
    r.request.kind = kind;
    r.request.templateName = tmpl;
    r.request.startNs = kStart;
    r.request.endNs = kEnd;
    r.request.vmsPerHost = 1;
    if (kind == ReservationKind::kDedicated) r.request.hostCount = 1;
    return r;
  }
  // As the Manager calls it: the bookings refreshed and their changes told to the index first.
  AdmissionDecision decide(Reservation r, TimeNs now = kT0) {
    projection_.refresh();
    index_.bookingsChanged(projection_.takeChanges());
    const TemplateSpec* tmpl = nullptr;
    for (const auto& t : templates_) {
      if (t.name == r.request.templateName) tmpl = &t;
    }
    return admission_.decide(std::move(r), *tmpl, now);
  }
  std::map<std::string, Usage> peaks() {
    std::map<std::string, Usage> out;
    for (const auto& h : {"a", "b", "c"})
      out[h] = projection_.calendar().peak(h, kT0, kTimeInfinity);
    return out;
  }
  static bool same(const std::map<std::string, Usage>& x, const std::map<std::string, Usage>& y) {
    for (const auto& [h, u] : x) {
      const Usage& v = y.at(h);
      if (u.cpuCores != v.cpuCores || u.memoryBytes != v.memoryBytes ||
          u.nicBytesPerSec != v.nicBytesPerSec) {
        return false;
      }
    }
    return true;
  }

  ManualClock clock_{kT0};
  Inventory inventory_;
  CommandTracker commands_;
  std::map<std::string, Reservation> reservations_;
  std::vector<TemplateSpec> templates_;
  std::vector<double> errors_;
  FakePlanner planner_;
  BookingProjection projection_;
  AdmissionIndex index_;
  Admission admission_;
};

// A shared candidate's clones go first fit in host-name order; the decision carries the plan's
// times and the event's message, and nothing is booked or recorded.
TEST_P(AdmissionTest, SharedCandidateIsPlacedFirstFitAndNothingChanges) {
  const auto before = peaks();
  Reservation r = candidate(ReservationKind::kShared, "t");
  r.request.vmCount = 4;
  const AdmissionDecision d = decide(r);
  ASSERT_TRUE(d.admitted) << d.message;
  // a has 6 cores free (room for 3 x t), b 4 (room for 2): a's three, then one on b.
  std::vector<std::string> places;
  for (const auto& c : d.reservation.clones) places.push_back(c.vmId + "@" + c.host);
  EXPECT_EQ(places, (std::vector<std::string>{"r-t-1@a", "r-t-2@a", "r-t-3@a", "r-t-4@b"}));
  EXPECT_EQ(d.reservation.hosts, (std::vector<std::string>{"a", "b"}));
  const TimeNs begin = kStart - 30 * kSec - kMargin;
  EXPECT_EQ(d.reservation.plan.latestSafeStartNs, begin);
  EXPECT_EQ(d.message, "admitted: 4 x t; cloning starts at " + formatTime(begin));
  EXPECT_EQ(d.reservation.state, ReservationState::kRequested);  // the Manager records it
  EXPECT_TRUE(d.reservation.events.empty());
  EXPECT_TRUE(reservations_.empty());
  EXPECT_TRUE(same(before, peaks()));
}

// Too late to clone: refused, with the earliest start at which the same request is in time.
TEST_P(AdmissionTest, LateSharedCandidateIsRefusedWithTheEarliestStart) {
  Reservation r = candidate(ReservationKind::kShared, "t");
  r.request.vmCount = 1;
  const TimeNs now = kStart - 60 * kSec;
  const AdmissionDecision d = decide(r, now);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.message, "too late to clone: cloning takes " + formatDuration(30 * kSec) +
                           " plus a margin of " + formatDuration(kMargin));
  EXPECT_EQ(d.earliestFeasibleStartNs, now + kLatency + 30 * kSec + kMargin);
  EXPECT_TRUE(d.reservation.clones.empty());
}

// A dedicated candidate vacates the host with the fewest bytes to move (a), its VM going to the
// first host with room; the clones go on it; the bookings are as they were after the check.
TEST_P(AdmissionTest, DedicatedCandidateVacatesTheCheapestHost) {
  const auto before = peaks();
  const AdmissionDecision d = decide(candidate(ReservationKind::kDedicated, "big"));
  ASSERT_TRUE(d.admitted) << d.message;
  EXPECT_EQ(d.reservation.hosts, (std::vector<std::string>{"a"}));
  ASSERT_EQ(d.reservation.moves.size(), 1u);
  EXPECT_EQ(d.reservation.moves[0].planned.vmId, "a1");
  EXPECT_EQ(d.reservation.moves[0].planned.toHost, "b");
  ASSERT_EQ(d.reservation.clones.size(), 1u);
  EXPECT_EQ(d.reservation.clones[0].vmId, "r-big-1");
  EXPECT_EQ(d.reservation.clones[0].host, "a");
  const TimeNs lss = kStart - 30 * kSec - kMargin - kMoveNs;
  EXPECT_EQ(d.reservation.plan.latestSafeStartNs, lss);
  EXPECT_EQ(d.message, "admitted on a; 1 VMs to move (fake, predicted " + formatDuration(kMoveNs) +
                           "); vacate starts at " + formatTime(lss));
  ASSERT_EQ(planner_.asked.size(), 1u);
  EXPECT_EQ(planner_.asked[0].first, (std::vector<std::string>{"a"}));
  EXPECT_TRUE(reservations_.empty());
  EXPECT_TRUE(same(before, peaks()));
}

// Hosts whose VMs find no destination are tried again with parking, only after every other
// candidate (in the same cheapest-first order) was tried without.
TEST_P(AdmissionTest, ParkingIsTriedOnlyAfterEveryCandidateWithout) {
  planner_.needParking = {"a", "b"};
  AdmissionDecision d = decide(candidate(ReservationKind::kDedicated, "big"));
  ASSERT_TRUE(d.admitted) << d.message;
  EXPECT_EQ(d.reservation.hosts, (std::vector<std::string>{"c"}));

  planner_.asked.clear();
  planner_.needParking = {"a", "b", "c"};
  d = decide(candidate(ReservationKind::kDedicated, "big"));
  ASSERT_TRUE(d.admitted) << d.message;
  EXPECT_EQ(d.reservation.hosts, (std::vector<std::string>{"a"}));
  using P = planner::SuspendPolicy;
  const std::vector<std::pair<std::vector<std::string>, P>> expected{
      {{"a"}, P::kNever}, {{"b"}, P::kNever}, {{"c"}, P::kNever}, {{"a"}, P::kWhenNoRoom}};
  EXPECT_EQ(planner_.asked, expected);
}

// A named host another reservation holds during the window is refused with the reason, and a
// refusal keeps no plan, moves, hosts or clones.
TEST_P(AdmissionTest, NamedHostHeldByAnotherIsRefused) {
  Reservation other = candidate(ReservationKind::kDedicated, "t");
  other.id = "r1";
  other.state = ReservationState::kAdmitted;
  other.plan.latestSafeStartNs = kStart - 120 * kSec;
  other.hosts = {"b"};
  ClonePlacement c;
  c.vmId = "r1-t-1";
  c.host = "b";
  other.clones.push_back(c);
  reservations_[other.id] = other;
  projection_.touch(other);

  Reservation r = candidate(ReservationKind::kDedicated, "big");
  r.request.hostCount = 0;
  r.request.hostNames = {"b"};
  const AdmissionDecision d = decide(r);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.message, "host b conflicts with reservation r1");
  EXPECT_TRUE(d.reservation.hosts.empty());
  EXPECT_TRUE(d.reservation.moves.empty());
  EXPECT_TRUE(d.reservation.clones.empty());
  EXPECT_TRUE(planner_.asked.empty());
  // Not named, the candidate goes elsewhere.
  const AdmissionDecision again = decide(candidate(ReservationKind::kDedicated, "big"));
  ASSERT_TRUE(again.admitted) << again.message;
  EXPECT_NE(again.reservation.hosts, (std::vector<std::string>{"b"}));
}

INSTANTIATE_TEST_SUITE_P(BothPaths, AdmissionTest,
                         ::testing::Values(AdmissionPath::kIndexed, AdmissionPath::kFullSnapshot),
                         [](const auto& info) {
                           return info.param == AdmissionPath::kIndexed ? "Indexed"
                                                                        : "FullSnapshot";
                         });

}  // namespace
}  // namespace vrm::manager
