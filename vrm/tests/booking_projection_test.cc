#include "vrm/manager/booking_projection.h"

#include <gtest/gtest.h>

#include <random>

#include "sample_records.h"
#include "vrm/manager/command_tracker.h"
#include "vrm/manager/inventory.h"

namespace vrm::manager {
namespace {

constexpr TimeNs kSec = kNsPerSec;
using sample::kGiB;
constexpr TimeNs kT0 = 1000 * kSec;

using sample::host;
using sample::vm;

PlannedMove planned(const std::string& vmId, const std::string& from, const std::string& to,
                    std::uint32_t batch, TimeNs startNs, TimeNs endNs) {
  PlannedMove m;
  m.vmId = vmId;
  m.fromHost = from;
  m.toHost = to;
  m.batch = batch;
  m.startOffsetNs = startNs;
  m.endOffsetNs = endNs;
  m.transferredBytes = 1'000'000'000;  // 100 MB/s over 10 s
  m.memoryBytes = 2 * kGiB;
  return m;
}

// A dedicated reservation of `hostName` whose vacate starts at kT0 + 100 s and takes 10 s,
// with one clone of "t" there; its window is [kT0 + 200 s, kT0 + 300 s).
Reservation dedicated(const std::string& id, const std::string& hostName) {
  Reservation r;
  r.id = id;
  r.state = ReservationState::kAdmitted;
  r.request.kind = ReservationKind::kDedicated;
  r.request.templateName = "t";
  r.request.startNs = kT0 + 200 * kSec;
  r.request.endNs = kT0 + 300 * kSec;
  r.plan.latestSafeStartNs = kT0 + 100 * kSec;
  r.plan.makespanNs = 10 * kSec;
  r.hosts = {hostName};
  ClonePlacement c;
  c.vmId = id + "-t-1";
  c.host = hostName;
  r.clones.push_back(c);
  return r;
}

// A shared reservation of one clone of "t" on each of `hosts` for [kT0 + 200 s, kT0 + 300 s).
Reservation shared(const std::string& id, const std::vector<std::string>& hosts) {
  Reservation r;
  r.id = id;
  r.state = ReservationState::kAdmitted;
  r.request.kind = ReservationKind::kShared;
  r.request.templateName = "t";
  r.request.startNs = kT0 + 200 * kSec;
  r.request.endNs = kT0 + 300 * kSec;
  r.hosts = hosts;
  for (const auto& h : hosts) {
    ClonePlacement c;
    c.vmId = id + "-t-" + h;
    c.host = h;
    r.clones.push_back(c);
  }
  return r;
}

// Three hosts a, b, c (8 cores, 16 GiB, 125 MB/s) whose agents registered, each touched as the
// Manager touches a HostChange, and a projection over them.
class BookingProjectionTest : public ::testing::Test {
 protected:
  BookingProjectionTest()
      : clock_(kT0),
        inventory_(30 * kSec),
        commands_(1),
        templates_{{"t", 2, 4 * kGiB, 30 * kSec, 1}},
        projection_(clock_, inventory_, commands_, reservations_, templates_, 60 * kSec) {}

  void registerHost(const std::string& name, std::vector<VmRecord> vms) {
    ASSERT_TRUE(inventory_.registerHost(host(name), vms, clock_.now()));
    projection_.touchHost(name);
  }
  void SetUp() override {
    registerHost("a", {vm("v1")});
    registerHost("b", {vm("w1", 12 * kGiB)});  // 4 GiB left
    registerHost("c", {});
  }

  Usage peak(const std::string& h, TimeNs from, TimeNs to) {
    return projection_.calendar().peak(h, from, to);
  }

  ManualClock clock_;
  Inventory inventory_;
  CommandTracker commands_;
  std::map<std::string, Reservation> reservations_;
  std::vector<TemplateSpec> templates_;
  BookingProjection projection_;
};

// A host's bookings are its VMs, derived when it is touched and refreshed, not before: an
// inventory change nobody touches leaves them as they were. What changed is told once.
TEST_F(BookingProjectionTest, BookingsFollowTheInventoryWhenTouched) {
  EXPECT_EQ(peak("a", kT0, kTimeInfinity).memoryBytes, static_cast<std::int64_t>(2 * kGiB));
  EXPECT_EQ(peak("a", kT0, kTimeInfinity).cpuCores, 2);
  EXPECT_EQ(projection_.calendar().capacity("a").memoryBytes, static_cast<std::int64_t>(16 * kGiB));
  BookingChanges changed = projection_.takeChanges();
  EXPECT_EQ(changed.rebuilt, (std::set<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(changed.rebooked.empty());
  EXPECT_TRUE(projection_.takeChanges().rebuilt.empty());

  ASSERT_TRUE(inventory_.registerHost(host("a"), {vm("v1"), vm("v2")}, clock_.now()));
  EXPECT_EQ(peak("a", kT0, kTimeInfinity).memoryBytes, static_cast<std::int64_t>(2 * kGiB));
  EXPECT_TRUE(projection_.takeChanges().rebuilt.empty());
  projection_.touchHost("a");
  EXPECT_EQ(peak("a", kT0, kTimeInfinity).memoryBytes, static_cast<std::int64_t>(4 * kGiB));
  EXPECT_EQ(projection_.takeChanges().rebuilt, (std::set<std::string>{"a"}));
}

// A vacate books its VM on its source until the move ends and on its destination from the
// move's start on, both NICs for the move's window at its rate, the host's exclusive window from
// the latest safe start, and its clones from the vacate's end to the window's end.
TEST_F(BookingProjectionTest, AVacateBooksBothEndsOfItsMoveAndTheClones) {
  Reservation r = dedicated("r1", "a");
  r.addMove(MovePurpose::kVacate, planned("v1", "a", "c", 0, 0, 10 * kSec));
  reservations_[r.id] = r;
  projection_.touch(r);
  const TimeNs lss = r.plan.latestSafeStartNs;

  EXPECT_EQ(peak("a", kT0, lss).memoryBytes, static_cast<std::int64_t>(2 * kGiB));
  EXPECT_EQ(peak("a", lss, lss + 10 * kSec).nicBytesPerSec, 100'000'000);
  // The clone from the vacate's end on, the VM gone by then.
  EXPECT_EQ(peak("a", lss + 10 * kSec, r.request.endNs).memoryBytes,
            static_cast<std::int64_t>(4 * kGiB));
  EXPECT_EQ(peak("a", r.request.endNs, kTimeInfinity).memoryBytes, 0);
  EXPECT_EQ(projection_.calendar().exclusiveOwner("a", lss, lss + 1), "r1");
  EXPECT_FALSE(projection_.calendar().exclusiveOwner("a", kT0, lss));

  EXPECT_EQ(peak("c", kT0, lss).memoryBytes, 0);
  EXPECT_EQ(peak("c", lss, lss + 1).memoryBytes, static_cast<std::int64_t>(2 * kGiB));
  EXPECT_EQ(peak("c", r.request.endNs, kTimeInfinity).memoryBytes,
            static_cast<std::int64_t>(2 * kGiB));  // displaced VMs stay where they land
  EXPECT_EQ(peak("c", lss, lss + 10 * kSec).nicBytesPerSec, 100'000'000);
  EXPECT_EQ(peak("c", lss + 10 * kSec, kTimeInfinity).nicBytesPerSec, 0);

  EXPECT_EQ(projection_.receiving(), (std::set<std::string>{"c"}));
  EXPECT_EQ(projection_.reservationsTouching("c"), (std::set<std::string>{"r1"}));
  EXPECT_TRUE(projection_.reservationsTouching("b").empty());
  EXPECT_EQ(hostsTouchedBy(r), (std::set<std::string>{"a", "c"}));
}

// A move not started is as late as the latest-started move of its batch or an earlier one; a
// started one runs from its actual start for at least its planned duration.
TEST_F(BookingProjectionTest, AMoveWindowFollowsTheLateStartsBeforeIt) {
  Reservation r = dedicated("r1", "a");
  const TimeNs lss = r.plan.latestSafeStartNs;
  Move& first = r.addMove(MovePurpose::kVacate, planned("v1", "a", "c", 0, 0, 10 * kSec));
  first.progress.state = MoveState::kRunning;
  first.progress.actualStartNs = lss + 30 * kSec;
  const Move& second =
      r.addMove(MovePurpose::kVacate, planned("v2", "a", "c", 1, 10 * kSec, 25 * kSec));
  EXPECT_EQ(projection_.moveWindow(r, r.moves[0]),
            (std::pair<TimeNs, TimeNs>{lss + 30 * kSec, lss + 40 * kSec}));
  EXPECT_EQ(projection_.moveWindow(r, second),
            (std::pair<TimeNs, TimeNs>{lss + 40 * kSec, lss + 55 * kSec}));
  // The clones wait for the last move.
  EXPECT_EQ(projection_.cloneStart(r), lss + 10 * kSec);
  EXPECT_EQ(projection_.clonesFrom(r), lss + 55 * kSec);
  EXPECT_EQ(projection_.prepareAt(r), lss);
  // A shared reservation prepares its clone time and the margin before its start.
  EXPECT_EQ(projection_.prepareAt(shared("s1", {"a"})), kT0 + 200 * kSec - 30 * kSec - 60 * kSec);
}

// Both checks of a new dedicated reservation find the same first violation, and leave the
// reservations, the bookings and the hosts' reservations as they were.
TEST_F(BookingProjectionTest, CheckingANewReservationLeavesNothingBehind) {
  Reservation tooBig = dedicated("r1", "a");
  tooBig.addMove(MovePurpose::kVacate, planned("v1", "a", "b", 0, 0, 10 * kSec));
  Move& huge = tooBig.moves.back();
  huge.planned.memoryBytes = 6 * kGiB;  // b has 4 GiB left
  const CapacityCalendar& cal = projection_.calendar();
  auto bBefore = cal.copyOf("b");

  const BookingCheck reference = projection_.check(tooBig, /*keep=*/false);
  EXPECT_FALSE(reference.ok());
  EXPECT_EQ(reference.host, "b");
  EXPECT_EQ(reference.violation.rfind("host b would be overbooked: ", 0), 0u)
      << reference.violation;
  const BookingCheck fast = projection_.checkNewDedicated(tooBig);
  EXPECT_EQ(fast.violation, reference.violation);
  EXPECT_EQ(fast.host, reference.host);

  EXPECT_TRUE(reservations_.empty());
  EXPECT_TRUE(projection_.reservationsTouching("a").empty());
  EXPECT_TRUE(projection_.reservationsTouching("b").empty());
  const CapacityCalendar& after = projection_.calendar();
  std::string why;
  EXPECT_FALSE(after.worseThan("b", *bBefore, &why)) << why;
  EXPECT_EQ(after.peak("b", kT0, kTimeInfinity).memoryBytes, static_cast<std::int64_t>(12 * kGiB));
  EXPECT_FALSE(after.exclusiveOwner("a", kT0, kTimeInfinity));
  EXPECT_EQ(after.peak("a", kT0, kTimeInfinity).memoryBytes, static_cast<std::int64_t>(2 * kGiB));

  Reservation fits = dedicated("r2", "a");
  fits.addMove(MovePurpose::kVacate, planned("v1", "a", "c", 0, 0, 10 * kSec));
  EXPECT_TRUE(projection_.check(fits, false).ok());
  EXPECT_TRUE(projection_.checkNewDedicated(fits).ok());
  EXPECT_FALSE(projection_.calendar().exclusiveOwner("a", kT0, kTimeInfinity));
  EXPECT_EQ(peak("c", kT0, kTimeInfinity).memoryBytes, 0);
  EXPECT_TRUE(projection_.receiving().empty());
}

// A re-plan's check (`keep`) of a booked reservation keeps its new bookings when they fit and
// goes back to the reservation as stored when they do not.
TEST_F(BookingProjectionTest, KeepKeepsOnlyWhatFits) {
  Reservation& r = reservations_["r1"] = dedicated("r1", "a");
  r.addMove(MovePurpose::kVacate, planned("v1", "a", "c", 0, 0, 10 * kSec));
  projection_.touch(r);
  EXPECT_TRUE(projection_.check(r, /*keep=*/true).ok());
  EXPECT_EQ(projection_.receiving(), (std::set<std::string>{"c"}));

  // The re-plan sends v1 to b instead, where it does not fit: refused, c still receives it.
  const Reservation stored = r;
  Reservation replanned = stored;
  replanned.moves.back().planned.toHost = "b";
  replanned.moves.back().planned.memoryBytes = 6 * kGiB;
  r = replanned;
  const BookingCheck refused = projection_.check(r, /*keep=*/true);
  EXPECT_EQ(refused.host, "b");
  r = stored;
  projection_.touch(r);
  EXPECT_EQ(projection_.receiving(), (std::set<std::string>{"c"}));
  EXPECT_EQ(peak("b", kT0, kTimeInfinity).memoryBytes, static_cast<std::int64_t>(12 * kGiB));
}

// A new shared reservation's check books only its clones' window, without rebuilding its hosts,
// and agrees with the reference check; it cannot be done that way when a clone's id already
// runs on its host.
TEST_F(BookingProjectionTest, ASharedCheckAgreesWithTheReferenceWithoutRebuilding) {
  const TemplateSpec& t = templates_[0];
  projection_.refresh();
  (void)projection_.takeChanges();
  const Reservation fits = shared("s1", {"a", "b"});  // 4 GiB clones: b just fits
  const std::optional<BookingCheck> quick = projection_.checkNewShared(fits, t);
  ASSERT_TRUE(quick);
  EXPECT_TRUE(quick->ok()) << quick->violation;
  BookingChanges changed = projection_.takeChanges();
  EXPECT_TRUE(changed.rebuilt.empty());
  EXPECT_EQ(changed.rebooked, (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(projection_.check(fits, false).ok());

  Reservation tooMany = shared("s2", {"b"});
  tooMany.clones.push_back(tooMany.clones.back());
  tooMany.clones.back().vmId = "s2-t-b2";
  const std::optional<BookingCheck> over = projection_.checkNewShared(tooMany, t);
  ASSERT_TRUE(over);
  const BookingCheck reference = projection_.check(tooMany, false);
  EXPECT_EQ(over->violation, reference.violation);
  EXPECT_EQ(over->host, "b");
  EXPECT_EQ(peak("b", kT0, kTimeInfinity).memoryBytes, static_cast<std::int64_t>(12 * kGiB));

  registerHost("c", {vm("s3-t-c")});
  EXPECT_FALSE(projection_.checkNewShared(shared("s3", {"c"}), t));
}

// An admitted shared reservation's clones are booked exactly as a rebuild of their hosts books
// them; a stale host leaves it to the rebuild.
TEST_F(BookingProjectionTest, AnAdmittedSharedReservationIsBookedAsARebuildWould) {
  const TemplateSpec& t = templates_[0];
  const Reservation& s = reservations_["s1"] = shared("s1", {"a", "c"});
  projection_.refresh();
  ASSERT_TRUE(projection_.bookAdmittedShared(s, t));
  EXPECT_EQ(projection_.reservationsTouching("c"), (std::set<std::string>{"s1"}));
  auto aBooked = projection_.bookings().copyOf("a");
  auto cBooked = projection_.bookings().copyOf("c");
  const TimeNs from = projection_.cloneStart(s);
  EXPECT_EQ(peak("c", from, s.request.endNs).memoryBytes, static_cast<std::int64_t>(4 * kGiB));
  EXPECT_EQ(peak("c", kT0, from).memoryBytes, 0);
  EXPECT_EQ(projection_.takeChanges().rebooked, (std::set<std::string>{"a", "c"}));

  projection_.touch(s);
  projection_.refresh();
  std::string why;
  EXPECT_FALSE(projection_.bookings().worseThan("a", *aBooked, &why)) << why;
  EXPECT_FALSE(projection_.bookings().worseThan("c", *cBooked, &why)) << why;
  EXPECT_EQ(peak("c", from, s.request.endNs).memoryBytes, static_cast<std::int64_t>(4 * kGiB));

  const Reservation& s2 = reservations_["s2"] = shared("s2", {"c"});
  projection_.touchHost("c");
  EXPECT_FALSE(projection_.bookAdmittedShared(s2, t));
  EXPECT_EQ(projection_.bookings().peak("c", from, s.request.endNs).memoryBytes,
            static_cast<std::int64_t>(4 * kGiB));  // nothing booked
}

// A host the agents already overbooked fails a check only when the reservation makes it worse.
TEST_F(BookingProjectionTest, AnOverbookedHostFailsOnlyWhatMakesItWorse) {
  registerHost("b", {vm("w1", 12 * kGiB), vm("w2", 6 * kGiB)});  // 18 of 16 GiB
  Reservation relieves = dedicated("r1", "a");
  relieves.hosts = {"b"};
  relieves.clones.back().host = "b";
  relieves.clones.back().vmId = "r1-t-b";
  relieves.addMove(MovePurpose::kVacate, planned("w1", "b", "c", 0, 0, 10 * kSec));
  relieves.moves.back().planned.memoryBytes = 12 * kGiB;
  relieves.addMove(MovePurpose::kVacate, planned("w2", "b", "a", 1, 10 * kSec, 20 * kSec));
  relieves.moves.back().planned.memoryBytes = 6 * kGiB;
  relieves.plan.makespanNs = 20 * kSec;
  const BookingCheck ok = projection_.check(relieves, false);
  EXPECT_TRUE(ok.ok()) << ok.violation;
  EXPECT_TRUE(projection_.checkNewDedicated(relieves).ok());

  Reservation worsens = dedicated("r2", "a");
  worsens.addMove(MovePurpose::kVacate, planned("v1", "a", "b", 0, 0, 10 * kSec));
  const BookingCheck refused = projection_.check(worsens, false);
  EXPECT_EQ(refused.host, "b");
  EXPECT_EQ(projection_.checkNewDedicated(worsens).violation, refused.violation);
}

// overbooked() is remembered until the host is rebuilt, and does not rebuild it.
TEST_F(BookingProjectionTest, OverbookedIsRememberedUntilTheRebuild) {
  projection_.refresh();
  EXPECT_FALSE(projection_.overbooked("b"));
  ASSERT_TRUE(
      inventory_.registerHost(host("b"), {vm("w1", 12 * kGiB), vm("w2", 6 * kGiB)}, clock_.now()));
  projection_.touchHost("b");
  EXPECT_FALSE(projection_.overbooked("b"));  // not rebuilt yet
  projection_.refresh();
  EXPECT_TRUE(projection_.overbooked("b"));
}

// An ended reservation whose migration is still running keeps the VM booked on its destination
// from the move's actual start on, forever, until vrmd sees the move settle.
TEST_F(BookingProjectionTest, AnEndedReservationStillActingKeepsItsMoveBooked) {
  Reservation& r = reservations_["r1"] = dedicated("r1", "a");
  Move& m = r.addMove(MovePurpose::kVacate, planned("v1", "a", "c", 0, 0, 10 * kSec));
  m.progress.state = MoveState::kRunning;
  m.progress.actualStartNs = kT0 + 5 * kSec;
  r.state = ReservationState::kFailed;
  EXPECT_TRUE(stillActing(r));
  projection_.touch(r);
  EXPECT_EQ(peak("c", kT0, kT0 + 5 * kSec).memoryBytes, 0);
  EXPECT_EQ(peak("c", kT0 + 5 * kSec, kTimeInfinity).memoryBytes,
            static_cast<std::int64_t>(2 * kGiB));
  EXPECT_EQ(projection_.receiving(), (std::set<std::string>{"c"}));
  EXPECT_FALSE(projection_.calendar().exclusiveOwner("a", kT0, kTimeInfinity));  // ended

  r.moves.back().progress.state = MoveState::kFailed;
  EXPECT_FALSE(stillActing(r));
  projection_.touch(r);
  EXPECT_EQ(peak("c", kT0, kTimeInfinity).memoryBytes, 0);
  EXPECT_TRUE(projection_.receiving().empty());
}

// A shell being dropped keeps its room until the agent confirms the drop.
TEST_F(BookingProjectionTest, ADropInFlightKeepsItsRoom) {
  ASSERT_TRUE(commands_.drop("c", "ghost", {2, static_cast<std::int64_t>(3 * kGiB), 0}));
  projection_.touchHost("c");
  EXPECT_EQ(peak("c", kT0, kTimeInfinity).memoryBytes, static_cast<std::int64_t>(3 * kGiB));
}

// What a host's bookings look like at a few instants, for comparing before and after a check.
std::vector<std::int64_t> profile(const CapacityCalendar& cal, const std::string& h) {
  std::vector<std::int64_t> out;
  for (TimeNs t = kT0; t < kT0 + 400 * kSec; t += 5 * kSec) {
    const Usage u = cal.peak(h, t, t + 5 * kSec);
    out.insert(out.end(), {u.cpuCores, u.memoryBytes, u.nicBytesPerSec});
    out.push_back(cal.exclusiveOwner(h, t, t + 5 * kSec) ? 1 : 0);
  }
  return out;
}

// On random clusters with random reservations booked (hosts over capacity among them), the
// fast checks of new reservations (checkNewDedicated, checkNewShared) find what the reference
// check finds, word for word, and every check leaves every host's bookings as they were.
TEST(BookingProjectionRandomTest, FastChecksAgreeWithTheReference) {
  std::mt19937 rng(12);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int refused = 0, sharedFast = 0;
  for (int world = 0; world < 20; ++world) {
    ManualClock clock(kT0);
    Inventory inventory(30 * kSec);
    CommandTracker commands(1);
    std::map<std::string, Reservation> reservations;
    std::vector<TemplateSpec> templates{{"t", 2, 4 * kGiB, 30 * kSec, 1}};
    BookingProjection projection(clock, inventory, commands, reservations, templates, 60 * kSec);
    const std::vector<std::string> names{"h0", "h1", "h2", "h3", "h4", "h5"};
    for (const auto& h : names) {
      std::vector<VmRecord> vms;
      for (int i = pick(0, 4); i > 0; --i) {
        vms.push_back(
            vm(h + "-v" + std::to_string(i), static_cast<std::uint64_t>(pick(1, 6)) * kGiB));
      }
      ASSERT_TRUE(inventory.registerHost(host(h), vms, kT0));
      projection.touchHost(h);
    }
    // A dedicated reservation of host `h` moving its VMs to random other hosts, or a shared
    // one of random clones; `id` new.
    auto randomReservation = [&](const std::string& id) {
      const std::string h = names[pick(0, 5)];
      if (pick(0, 2) == 0) {
        std::vector<std::string> on;
        for (int i = pick(1, 3); i > 0; --i) on.push_back(names[pick(0, 5)]);
        Reservation r = shared(id, on);
        for (std::size_t i = 0; i < r.clones.size(); ++i) r.clones[i].vmId += std::to_string(i);
        r.request.startNs += pick(0, 10) * 10 * kSec;
        r.plan.latestSafeStartNs = r.request.startNs - 90 * kSec;
        return r;
      }
      Reservation r = dedicated(id, h);
      r.plan.latestSafeStartNs += pick(0, 10) * 5 * kSec;
      TimeNs at = 0;
      std::uint32_t batch = 0;
      for (const VmRecord& v : inventory.vmsOn(h)) {
        std::string to = names[pick(0, 5)];
        if (to == h) to = names[(pick(0, 4) + 1 + std::stoi(h.substr(1))) % 6];
        const TimeNs span = pick(1, 8) * 5 * kSec;
        PlannedMove m = planned(v.id, h, to, batch++, at, at + span);
        m.memoryBytes = v.memoryBytes;
        m.transferredBytes = static_cast<std::uint64_t>(pick(1, 20)) * 100'000'000;
        r.addMove(MovePurpose::kVacate, m);
        at += span;
      }
      r.plan.makespanNs = at;
      return r;
    };
    for (int i = 0; i < 4; ++i) {  // booked, whether they fit or not
      Reservation& r = reservations["b" + std::to_string(i)] =
          randomReservation("b" + std::to_string(i));
      projection.touch(r);
    }
    projection.refresh();
    for (int trial = 0; trial < 15; ++trial) {
      const Reservation r = randomReservation("new");
      std::map<std::string, std::vector<std::int64_t>> before;
      for (const auto& h : names) before[h] = profile(projection.calendar(), h);
      std::optional<BookingCheck> fast;
      if (r.request.kind == ReservationKind::kShared) {
        fast = projection.checkNewShared(r, templates[0]);
        if (fast) ++sharedFast;
      } else {
        fast = projection.checkNewDedicated(r);
      }
      const BookingCheck reference = projection.check(r, /*keep=*/false);
      if (fast) {
        EXPECT_EQ(fast->violation, reference.violation) << "world " << world << " trial " << trial;
        EXPECT_EQ(fast->host, reference.host) << "world " << world << " trial " << trial;
      }
      if (!reference.ok()) ++refused;
      EXPECT_EQ(reservations.size(), 4u);
      for (const auto& h : names) {
        EXPECT_EQ(profile(projection.calendar(), h), before[h])
            << h << ", world " << world << " trial " << trial;
        EXPECT_EQ(projection.reservationsTouching(h).count("new"), 0u);
      }
    }
  }
  // Both verdicts were tried.
  EXPECT_GT(refused, 30);
  EXPECT_LT(refused, 270);
  EXPECT_GT(sharedFast, 30);
}

}  // namespace
}  // namespace vrm::manager
