// The HostRoomIndex's contract: it never hides a host with room over a window (the calendar's
// free capacity, asked exactly, is the judge), offers hosts in name order, sees what it is told
// and only that, skips whole blocks, and makes shared admission place exactly as the walk over
// every host did.
#include "vrm/manager/host_room_index.h"

#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "sample_records.h"
#include "vrm/manager/admission.h"
#include "vrm/manager/command_tracker.h"
#include "vrm/manager/inventory.h"
#include "vrm/planner/vacate_planner.h"

namespace vrm::manager {
namespace {

constexpr std::int64_t kGiB = 1LL << 30;
constexpr std::int64_t kMiB = 1 << 20;

BookingChanges rebooked(const std::string& host) {
  BookingChanges c;
  c.rebooked.insert(host);
  return c;
}

std::vector<std::string> namesOf(HostRoomIndex::Candidates c) {
  std::vector<std::string> out;
  for (const HostRecord* h = c.next(); h; h = c.next()) out.push_back(h->name);
  return out;
}

// Hosts and a calendar booked by hand, as the projection would (the index only reads them).
struct Cluster {
  void add(const std::string& name, std::int64_t cores, std::int64_t memoryBytes) {
    HostRecord h;
    h.name = name;
    h.cpuCores = static_cast<std::uint32_t>(cores);
    h.memoryBytes = static_cast<std::uint64_t>(memoryBytes);
    hosts[name] = h;
    calendar.setCapacity(name, {cores, memoryBytes, 0});
  }
  std::map<std::string, HostRecord> hosts;
  CapacityCalendar calendar;
};

// Ensures, on random bookings, unbookings and rebuilds over 40 hosts (then more, added as it
// runs), with a clock moving on (across one slot, many, more than the slots kept; sometimes set
// back) and the calendar forgetting the past: every host whose exact free capacity over a window
// holds the demand is offered, hosts come in name order, and a first fit over the offered hosts
// places as one over every host; and that the index leaves most full hosts out (else it would
// be a walk). Windows are short and long, inside the slots kept, reaching past them, endless.
TEST(HostRoomIndexTest, RandomBookingsNeverHideAHostWithRoom) {
  std::mt19937 rng(19044);
  auto uniform = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  std::size_t offered = 0, withRoom = 0, asked = 0;
  for (int round = 0; round < 8; ++round) {
    Cluster c;
    for (int i = 0; i < 40; ++i) c.add("h" + std::to_string(100 + i), 16, 64 * kGiB);
    const HostRoomOptions options{/*slotNs=*/100, /*slotCount=*/12, /*blockHosts=*/4,
                                  /*slotsPerQuery=*/3};
    HostRoomIndex index(c.hosts, c.calendar, options);
    struct Booked {
      std::string host;
      TimeNs from, to;
      Usage usage;
    };
    std::vector<Booked> booked;
    TimeNs now = 10'000;
    auto anyHost = [&] {
      auto it = c.hosts.begin();
      std::advance(it, uniform(0, static_cast<std::int64_t>(c.hosts.size()) - 1));
      return it->first;
    };
    for (int step = 0; step < 300; ++step) {
      const int op = static_cast<int>(uniform(0, 99));
      if (op < 45) {
        // Mostly a filled first part of the cluster, as first fit makes it.
        for (int k = 0; k < 10; ++k) {
          const std::string host =
              uniform(0, 3) ? "h" + std::to_string(100 + uniform(0, 24)) : anyHost();
          TimeNs a = now + uniform(-200, 900), b = a + uniform(1, 800);
          if (uniform(0, 15) == 0) a = kTimeMinusInfinity;
          if (uniform(0, 30) == 0) b = kTimeInfinity;
          const Booked x{
              host, a, b, {uniform(1, 8), uniform(1, 24) * kGiB + uniform(-kMiB, kMiB), 0}};
          c.calendar.book(x.host, x.from, x.to, x.usage);
          booked.push_back(x);
          index.bookingsChanged(rebooked(x.host));
        }
      } else if (op < 65 && !booked.empty()) {
        const std::size_t i = static_cast<std::size_t>(uniform(0, booked.size() - 1));
        const Booked x = booked[i];
        booked.erase(booked.begin() + static_cast<std::ptrdiff_t>(i));
        c.calendar.unbook(x.host, x.from, x.to, x.usage);
        index.bookingsChanged(rebooked(x.host));
      } else if (op < 70) {
        // A rebuild, told as one.
        const std::string host = anyHost();
        c.calendar.clearHost(host);
        for (const auto& x : booked) {
          if (x.host == host) c.calendar.book(host, x.from, x.to, x.usage);
        }
        BookingChanges changes;
        changes.rebuilt.insert(host);
        index.bookingsChanged(changes);
      } else if (op < 72) {
        c.add("h" + std::to_string(100 + uniform(0, 60)) + "x", 16, 64 * kGiB);  // not told
      } else if (op < 90) {
        now += op < 89 ? uniform(0, 150) : uniform(1000, 3000);
        if (uniform(0, 1)) c.calendar.forgetBefore(now);
      } else if (op < 92) {
        now -= uniform(0, 300);  // a clock set back (the horizon stays)
      }
      for (int q = 0; q < 4; ++q) {
        const TimeNs from = now + uniform(0, 1000);
        const TimeNs to = uniform(0, 9) == 0 ? kTimeInfinity : from + uniform(1, 900);
        const std::int64_t mem = uniform(1, 20) * kGiB + uniform(-kMiB, kMiB);
        const std::int64_t cores = uniform(1, 6);
        const std::vector<std::string> got = namesOf(index.candidates(from, to, mem, cores, now));
        std::ostringstream where;
        where << "round " << round << " step " << step << " window [" << from << ", " << to
              << ") now " << now << " demand " << cores << " cores " << mem << " bytes";
        for (std::size_t i = 1; i < got.size(); ++i) ASSERT_LT(got[i - 1], got[i]) << where.str();
        std::set<std::string> offeredNow(got.begin(), got.end());
        std::vector<std::string> walk, fit;  // first fit of 8 clones: every host, offered hosts
        auto place = [&](const std::string& name, std::vector<std::string>& out) {
          Usage free = c.calendar.free(name, from, to);
          while (out.size() < 8 && free.memoryBytes >= mem && free.cpuCores >= cores) {
            free.memoryBytes -= mem;
            free.cpuCores -= cores;
            out.push_back(name);
          }
        };
        for (const auto& [name, h] : c.hosts) {
          const Usage free = c.calendar.free(name, from, to);
          if (free.memoryBytes >= mem && free.cpuCores >= cores) {
            ++withRoom;
            ASSERT_TRUE(offeredNow.count(name)) << where.str() << ": " << name << " has room";
          }
          place(name, walk);
        }
        for (const auto& name : got) place(name, fit);
        ASSERT_EQ(walk, fit) << where.str();
        offered += got.size();
        asked += c.hosts.size();
      }
    }
  }
  // Many hosts lack room, and the index leaves most of those out (else it would be a walk).
  const std::size_t full = asked - withRoom, leftOut = asked - offered;
  EXPECT_GT(full, asked / 5) << full << " of " << asked << " asked lack room";
  EXPECT_GT(leftOut, full * 2 / 3) << "left out " << leftOut << " of " << full << " without room";
}

// Ensures the index sees what it is told and only that: a host freed without telling stays
// left out, and once told is offered; a new host is offered without telling.
TEST(HostRoomIndexTest, SeesChangesWhenToldAndNewHostsByItself) {
  Cluster c;
  c.add("a", 8, 16 * kGiB);
  c.add("b", 8, 16 * kGiB);
  const TimeNs hour = 3600 * kNsPerSec, now = 100 * hour;
  HostRoomIndex index(c.hosts, c.calendar);
  const Usage all{8, 16 * kGiB, 0};
  c.calendar.book("a", now, now + 10 * hour, all);
  index.bookingsChanged(rebooked("a"));
  auto ask = [&] { return namesOf(index.candidates(now + hour, now + 4 * hour, kGiB, 1, now)); };
  EXPECT_EQ(ask(), (std::vector<std::string>{"b"}));
  c.calendar.unbook("a", now, now + 10 * hour, all);
  EXPECT_EQ(ask(), (std::vector<std::string>{"b"})) << "a change nobody told was seen";
  index.bookingsChanged(rebooked("a"));
  EXPECT_EQ(ask(), (std::vector<std::string>{"a", "b"}));
  c.add("a2", 8, 16 * kGiB);
  EXPECT_EQ(ask(), (std::vector<std::string>{"a", "a2", "b"}));
}

// Ensures a block whose hosts are all full in a slot of the window is skipped without looking
// at its hosts one by one, and that a window with no whole slot inside rules nothing out.
TEST(HostRoomIndexTest, SkipsFullBlocksWhole) {
  Cluster c;
  for (int i = 0; i < 16; ++i) c.add("h" + std::to_string(10 + i), 8, 16 * kGiB);
  const TimeNs hour = 3600 * kNsPerSec, now = 100 * hour;
  HostRoomIndex index(c.hosts, c.calendar, {hour, 48, /*blockHosts=*/4, 8});
  BookingChanges changes;
  for (int i = 0; i < 13; ++i) {  // h10..h22 full from now + 2 h to now + 3 h
    const std::string h = "h" + std::to_string(10 + i);
    c.calendar.book(h, now + 2 * hour, now + 3 * hour, {8, 16 * kGiB, 0});
    changes.rebuilt.insert(h);
  }
  index.bookingsChanged(changes);
  auto q = index.candidates(now + hour, now + 5 * hour, 4 * kGiB, 2, now);
  EXPECT_EQ(namesOf(q), (std::vector<std::string>{"h23", "h24", "h25"}));
  auto counted = index.candidates(now + hour, now + 5 * hour, 4 * kGiB, 2, now);
  while (counted.next()) {
  }
  EXPECT_EQ(counted.hostsLookedAt(), 4u) << "the last block's hosts only";
  // [now + 2.5 h, now + 3.5 h) holds no whole slot: every host is offered (and asked exactly).
  EXPECT_EQ(namesOf(index.candidates(now + 2 * hour + hour / 2, now + 3 * hour + hour / 2, 4 * kGiB,
                                     2, now))
                .size(),
            16u);
}

// A planner never asked: these admissions are all shared.
class NoPlanner final : public planner::VacatePlanner {
 public:
  using planner::VacatePlanner::plan;
  Result<VacatePlan> plan(const planner::VacateRequest&) const override {
    return Status::internal("not asked");
  }
};

// Ensures shared admission through the index (kIndexed) decides exactly as the walk over every
// host (kFullSnapshot): the same clones on the same hosts, the same refusals and messages, on
// random submissions (1-12 clones of two templates, windows of 10 min - 8 h up to 10 h ahead)
// booked as the Manager books them, cancellations, and a clock moving on with the calendar
// forgetting the past; over 80 hosts in blocks of 4 and slots of 10 minutes, so that blocks
// are skipped and slots move on.
TEST(HostRoomIndexTest, SharedPlacesAsTheWalkOverEveryHost) {
  constexpr TimeNs kSec = kNsPerSec, kMin = 60 * kSec, kMargin = 60 * kSec;
  int admitted = 0, refused = 0, spread = 0;
  for (std::uint32_t seed = 1; seed <= 4; ++seed) {
    std::mt19937 rng(seed);
    auto uniform = [&](std::int64_t lo, std::int64_t hi) {
      return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
    };
    ManualClock clock{1000 * kSec};
    Inventory inventory(30 * kSec);
    CommandTracker commands(1);
    std::map<std::string, Reservation> reservations;
    const std::vector<TemplateSpec> templates{{"t", 2, 4 * kGiB, 30 * kSec, 1},
                                              {"m", 1, 3 * kGiB / 2, 30 * kSec, 1}};
    std::vector<double> errors;
    NoPlanner planner;
    BookingProjection projection(clock, inventory, commands, reservations, templates, kMargin);
    AdmissionIndex index(inventory, projection.bookings(), {10 * kMin, 64, 4, 8});
    Admission fast(planner, inventory.hosts(), reservations, projection, index, errors,
                   {kMargin, kSec, 0.95, AdmissionPath::kIndexed});
    Admission walk(planner, inventory.hosts(), reservations, projection, index, errors,
                   {kMargin, kSec, 0.95, AdmissionPath::kFullSnapshot});
    for (int h = 0; h < 80; ++h) {
      const std::string name = "h" + std::to_string(100 + h);
      std::vector<VmRecord> vms;
      for (int v = 0, n = static_cast<int>(uniform(0, 4)); v < n; ++v) {
        vms.push_back(sample::vm(name + "v" + std::to_string(v), uniform(1, 3) * kGiB));
      }
      ASSERT_TRUE(inventory.registerHost(sample::host(name), vms, clock.now()));
      projection.touchHost(name);
    }
    int next = 0;
    for (int step = 0; step < 250; ++step) {
      const std::string context = "seed " + std::to_string(seed) + " step " + std::to_string(step);
      const int action = static_cast<int>(uniform(0, 9));
      if (action <= 6) {
        Reservation r;
        r.id = "r" + std::to_string(++next);
        r.state = ReservationState::kRequested;
        r.request.kind = ReservationKind::kShared;
        r.request.owner = "lab";
        r.request.vmCount = static_cast<std::uint32_t>(uniform(1, 12));
        r.request.templateName = uniform(0, 2) ? "t" : "m";
        r.request.startNs = clock.now() + uniform(3, 600) * kMin;
        r.request.endNs = r.request.startNs + uniform(10, 480) * kMin;
        const TemplateSpec& tmpl = templates[r.request.templateName == "t" ? 0 : 1];
        projection.refresh();  // as Manager::refreshViews
        index.bookingsChanged(projection.takeChanges());
        const AdmissionDecision a = fast.decide(r, tmpl, clock.now());
        const AdmissionDecision b = walk.decide(r, tmpl, clock.now());
        auto describe = [](const AdmissionDecision& d) {
          std::string s = (d.admitted ? "admitted " : "refused ") + d.message + ":";
          for (const auto& c : d.reservation.clones) s += " " + c.vmId + "@" + c.host;
          for (const auto& h : d.reservation.hosts) s += " " + h;
          return s;
        };
        ASSERT_EQ(describe(a), describe(b)) << context;
        if (!a.admitted) {
          ++refused;
          continue;
        }
        ++admitted;
        spread += a.reservation.hosts.size() > 1;
        Reservation booked = a.reservation;
        booked.state = ReservationState::kAdmitted;
        const Reservation& in = reservations[booked.id] = booked;
        if (!projection.bookAdmittedShared(in, tmpl)) projection.touch(in);
      } else if (action == 7 && !reservations.empty()) {
        auto it = reservations.begin();
        std::advance(it, uniform(0, static_cast<std::int64_t>(reservations.size()) - 1));
        const Reservation gone = it->second;
        reservations.erase(it);
        projection.touch(gone);
      } else {
        clock.set(clock.now() + uniform(1, 90) * kMin);
        projection.forgetBefore(clock.now());
      }
    }
  }
  // Both outcomes, and placements over several hosts, often enough to mean something.
  EXPECT_GT(admitted, 200);
  EXPECT_GT(refused, 50);
  EXPECT_GT(spread, 50);
}

}  // namespace
}  // namespace vrm::manager
