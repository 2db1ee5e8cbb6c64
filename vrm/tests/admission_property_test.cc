// Property test of admission and execution: random sequences of submissions, cancellations,
// clock advances and agent losses, checked after every step against a brute-force model that
// shares no code with the manager's calendar.
#include <gtest/gtest.h>

#include <random>

#include "fake_agents.h"
#include "vrm/manager/manager.h"
#include "vrm/planner/cost_aware_vacate_planner.h"

namespace vrm::manager {
namespace {

using testing::FakeAgents;
using testing::kGiB;

constexpr TimeNs kMin = 60 * kNsPerSec;

std::vector<TemplateSpec> templates() {
  TemplateSpec big{"bmi", 16, 32 * kGiB, 90 * kNsPerSec, 1};
  TemplateSpec small{"small", 2, 4 * kGiB, 30 * kNsPerSec, 1};
  return {big, small};
}

// The skeleton's sequential planner, or (parking) the cost-aware one, which parks VMs that
// have no destination (MoveMode::kSuspend).
std::unique_ptr<planner::VacatePlanner> makePlanner(bool parking) {
  if (parking)
    return std::move(*planner::CostAwareVacatePlanner::create("qemu-precopy", "zhao-scr"));
  return std::make_unique<planner::SequentialVacatePlanner>(
      std::shared_ptr<const planner::MigrationModel>(
          std::move(*planner::createMigrationModel("simple"))));
}

struct World {
  explicit World(bool parking) : planner(makePlanner(parking)) {}
  ManualClock clock{1'800'000'000 * kNsPerSec};
  std::unique_ptr<Store> store = std::move(*Store::open(":memory:"));
  std::unique_ptr<planner::VacatePlanner> planner;
  // A long heartbeat timeout keeps the loop's wake-ups (and so the checks) at reservation
  // events; lost agents are still detected, 15 minutes after their last heartbeat.
  Manager manager{clock, *store, *planner, templates(),
                  ManagerOptions{60 * kNsPerSec, kNsPerSec, 15 * kMin}};
  FakeAgents agents{manager};
  std::vector<std::string> originalVms;  // the cluster's own VMs (not clones)
};

// Brute force: what the hosts really hold (the fake agents' inventories; a parked VM holds no
// cores or memory) never exceeds their capacity; every VM of the cluster is on exactly one host;
// hosts of a running dedicated reservation run only its clones (parked VMs may wait there); two
// live dedicated reservations never share a host in overlapping windows; a reservation whose start
// has passed is ready/active/ending/done or has failed/been cancelled with a reason.
void checkInvariants(World& w, const std::string& context) {
  const TimeNs now = w.clock.now();
  // Every VM exists exactly once (the cluster's own ones never vanish; none is duplicated).
  std::map<std::string, int> copies;
  for (const auto& [host, vms] : w.agents.inventory_) {
    for (const auto& v : vms) {
      if (v.state != VmState::kIncoming) ++copies[v.id];
    }
  }
  for (const auto& id : w.originalVms) {
    ASSERT_EQ(copies[id], 1) << context << ": VM " << id << " is on " << copies[id] << " hosts";
  }
  for (const auto& [id, n] : copies) ASSERT_LE(n, 1) << context << ": " << id << " duplicated";
  for (const auto& [host, vms] : w.agents.inventory_) {
    std::uint64_t mem = 0, cores = 0;
    for (const auto& v : vms) {
      if (v.state == VmState::kParked) continue;
      mem += v.memoryBytes;
      cores += v.cpuCores;
    }
    const auto& h = w.agents.hosts_.at(host);
    ASSERT_LE(mem, h.memoryBytes) << context << ": " << host << " memory overbooked";
    ASSERT_LE(cores, h.cpuCores) << context << ": " << host << " cores overbooked";
  }
  auto all = w.manager.list({});
  for (const auto& r : all) {
    if (r.state == ReservationState::kFailed || r.state == ReservationState::kCancelled ||
        r.state == ReservationState::kRejected) {
      ASSERT_FALSE(r.reason.empty()) << context << ": " << r.id << " ended without a reason";
    }
    if (now >= r.request.startNs && now < r.request.endNs &&
        (r.state == ReservationState::kAdmitted || r.state == ReservationState::kVacating ||
         r.state == ReservationState::kPreparing)) {
      std::string events;
      for (const auto& e : r.events) events += "\n  " + formatTime(e.timeNs) + " " + e.message;
      FAIL() << context << ": " << r.id << " is still " << stateName(r.state) << " after its start"
             << events;
    }
    if (r.state == ReservationState::kActive && r.request.kind == ReservationKind::kDedicated) {
      for (const auto& host : r.hosts) {
        for (const auto& v : w.agents.inventory_[host]) {
          if (v.state == VmState::kParked) continue;
          ASSERT_EQ(v.reservationId, r.id)
              << context << ": " << v.id << " on dedicated host " << host << " of " << r.id;
        }
      }
    }
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (std::size_t j = i + 1; j < all.size(); ++j) {
      const auto& a = all[i];
      const auto& b = all[j];
      auto live = [](const Reservation& r) {
        return r.request.kind == ReservationKind::kDedicated &&
               (r.state == ReservationState::kAdmitted || r.state == ReservationState::kVacating ||
                r.state == ReservationState::kPreparing || r.state == ReservationState::kReady ||
                r.state == ReservationState::kActive);
      };
      if (!live(a) || !live(b)) continue;
      for (const auto& h : a.hosts) {
        if (std::find(b.hosts.begin(), b.hosts.end(), h) == b.hosts.end()) continue;
        const bool overlap = a.plan.latestSafeStartNs < b.request.endNs &&
                             b.plan.latestSafeStartNs < a.request.endNs;
        ASSERT_FALSE(overlap) << context << ": " << a.id << " and " << b.id << " share " << h;
      }
    }
  }
  const auto& calendar = w.manager.calendar();
  for (const auto& host : calendar.hosts()) {
    std::string why;
    if (calendar.overbooked(host, &why)) {
      std::string dump;
      for (const auto& r : all) {
        dump += r.id + " " + stateName(r.state) +
                (r.request.kind == ReservationKind::kShared ? " shared" : " dedicated") +
                " lss=" + formatTime(r.plan.latestSafeStartNs) +
                " start=" + formatTime(r.request.startNs) + " end=" + formatTime(r.request.endNs) +
                " hosts=";
        for (auto& h : r.hosts) dump += h + ",";
        dump += " clones=";
        for (auto& c : r.clones) dump += c.host + ":" + cloneStateName(c.state) + ",";
        dump += " moves=";
        for (const auto& m : r.moves)
          dump += m.planned.vmId + ":" + m.planned.fromHost + ">" + m.planned.toHost + ":" +
                  moveStateName(m.progress.state) + ",";
        dump += "\n";
      }
      for (const auto& v : w.manager.vms())
        if (v.host == host)
          dump += "  vm " + v.id + " cores " + std::to_string(v.cpuCores) + " res " +
                  v.reservationId + "\n";
      FAIL() << context << " now " << formatTime(now) << ": calendar of " << host << ": " << why
             << "\n"
             << dump;
    }
  }
}

// Random lifecycles of `seeds` worlds. parking: the cost-aware planner, and crowded hosts
// (VMs of 4-16 GiB) so that vacates park VMs; at the end every parked VM on a live host has been
// unparked once every reservation has ended.
void randomLifecycles(std::uint32_t seeds, bool parking) {
  int parkedEver = 0;
  for (std::uint32_t seed = 1; seed <= seeds; ++seed) {
    World w(parking);
    std::mt19937 rng(seed);
    auto uniform = [&](std::int64_t lo, std::int64_t hi) {
      return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
    };
    for (int h = 0; h < 6; ++h) {
      std::vector<VmRecord> vms;
      for (int v = 0, n = static_cast<int>(uniform(0, 4)); v < n; ++v) {
        vms.push_back(FakeAgents::vm(
            "h" + std::to_string(h) + "v" + std::to_string(v),
            static_cast<std::uint64_t>(parking ? uniform(4, 16) : uniform(1, 8)) * kGiB,
            static_cast<std::uint32_t>(uniform(1, 4))));
      }
      for (const auto& v : vms) w.originalVms.push_back(v.id);
      w.agents.addHost("h" + std::to_string(h), 32, 64 * kGiB, vms);
    }
    int admitted = 0;
    for (int step = 0; step < 80; ++step) {
      const std::string context = "seed " + std::to_string(seed) + " step " + std::to_string(step);
      const int action = static_cast<int>(uniform(0, 9));
      if (action <= 3) {
        ReservationRequest req;
        req.owner = "lab" + std::to_string(uniform(0, 2));
        req.startNs = w.clock.now() + uniform(5, 360) * kMin;
        req.endNs = req.startNs + uniform(30, 240) * kMin;
        if (uniform(0, 2) == 0) {
          req.kind = ReservationKind::kShared;
          req.vmCount = static_cast<std::uint32_t>(uniform(1, 12));
          req.templateName = "small";
        } else {
          req.hostCount = static_cast<std::uint32_t>(uniform(1, 2));
          req.templateName = uniform(0, 1) ? "bmi" : "small";
          if (uniform(0, 1)) req.displaced = Displaced::kReturn;
        }
        auto r = w.manager.submit(req);
        ASSERT_TRUE(r.isOk()) << context << ": " << r.status().toString();
        admitted += r->state == ReservationState::kAdmitted;
      } else if (action == 4) {
        auto all = w.manager.list({});
        if (!all.empty()) {
          const auto& victim = all[static_cast<std::size_t>(uniform(0, all.size() - 1))];
          (void)w.manager.cancel(victim.id, "");
        }
      } else if (action == 5 && uniform(0, 3) == 0) {
        // An agent dies: its commands fail and its heartbeats stop.
        w.agents.down.insert("h" + std::to_string(uniform(0, 5)));
      } else {
        // Time passes; the loop wakes when the manager asks to, as vrmd's does.
        const TimeNs target = w.clock.now() + uniform(1, 90) * kMin;
        while (w.clock.now() < target) {
          TimeNs next = std::min(target, std::max(w.manager.nextWakeNs(), w.clock.now() + 1));
          next = std::min(next, w.clock.now() + 10 * kMin);
          w.clock.set(next);
          w.agents.heartbeat();
          w.manager.tick();
          w.agents.pump();
          checkInvariants(w, context);
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
      w.agents.pump();
      checkInvariants(w, context);
      if (::testing::Test::HasFatalFailure()) return;
    }
    EXPECT_GT(admitted, 0) << "seed " << seed << " admitted nothing: the test would be vacuous";
    for (const auto& c : w.agents.log) parkedEver += c.kind == AgentCommand::Kind::kPark;
    if (!parking) continue;
    // Every reservation ends (two days on); then no VM on a live host is still parked.
    const TimeNs end = w.clock.now() + 2 * 24 * 60 * kMin;
    while (w.clock.now() < end) {
      w.clock.set(std::min(end, std::max(w.manager.nextWakeNs(), w.clock.now() + 10 * kMin)));
      w.agents.heartbeat();
      w.manager.tick();
      w.agents.pump();
    }
    checkInvariants(w, "seed " + std::to_string(seed) + " at the end");
    if (::testing::Test::HasFatalFailure()) return;
    for (const auto& [host, vms] : w.agents.inventory_) {
      if (w.agents.down.count(host)) continue;
      for (const auto& v : vms) {
        EXPECT_NE(v.state, VmState::kParked)
            << "seed " << seed << ": " << v.id << " is still parked on " << host;
      }
    }
  }
  if (parking) EXPECT_GT(parkedEver, 0) << "no vacate parked a VM: the test would be vacuous";
}

// Ensures no overbooking and no silent lateness across random lifecycles.
TEST(AdmissionPropertyTest, RandomLifecyclesNeverOverbook) { randomLifecycles(100, false); }

// The same with vacates that park VMs which have no destination, and unpark them afterwards.
TEST(AdmissionPropertyTest, RandomLifecyclesWithParkingNeverOverbookOrStrandVms) {
  randomLifecycles(40, true);
}

}  // namespace
}  // namespace vrm::manager
