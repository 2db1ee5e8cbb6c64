// Incremental dedicated admission (an index of the hosts kept across admissions, bookings
// checked by rebuilding only the reservation's own hosts) decides exactly as the full path
// (a snapshot of every host per admission, every touched host rebuilt): two managers fed the
// same random lifecycles with the cost-aware planner agree on every reservation after every
// step.
#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "fake_agents.h"
#include "vrm/manager/manager.h"
#include "vrm/planner/cost_aware_vacate_planner.h"

namespace vrm::manager {
namespace {

using testing::FakeAgents;
using testing::kGiB;

constexpr TimeNs kMin = 60 * kNsPerSec;

struct World {
  explicit World(bool incremental) {
    ManagerOptions o;
    o.heartbeatTimeoutNs = 15 * kMin;
    o.admissionPath = incremental ? AdmissionPath::kIndexed : AdmissionPath::kFullSnapshot;
    manager = std::make_unique<Manager>(
        clock, *store, *planner,
        std::vector<TemplateSpec>{{"bmi", 16, 32 * kGiB, 90 * kNsPerSec, 1},
                                  {"small", 2, 4 * kGiB, 30 * kNsPerSec, 1}},
        o);
    agents = std::make_unique<FakeAgents>(*manager);
  }
  ManualClock clock{1'800'000'000 * kNsPerSec};
  std::unique_ptr<Store> store = std::move(*Store::open(":memory:"));
  std::unique_ptr<planner::CostAwareVacatePlanner> planner =
      std::move(*planner::CostAwareVacatePlanner::create());
  std::unique_ptr<Manager> manager;
  std::unique_ptr<FakeAgents> agents;
};

// What admission decided for a reservation, and how it stands.
std::string describe(const Reservation& r) {
  std::ostringstream o;
  o << r.id << " " << stateName(r.state) << " reason=" << r.reason
    << " earliest=" << r.earliestFeasibleStartNs << " hosts=";
  for (const auto& h : r.hosts) o << h << ",";
  o << " clones=";
  for (const auto& c : r.clones) o << c.vmId << "@" << c.host << ",";
  o << " plan " << r.plan.strategy << " lss=" << r.plan.latestSafeStartNs
    << " makespan=" << r.plan.makespanNs << " moves=";
  for (const auto& m : r.plannedMoves()) {
    o << m.vmId << ":" << m.fromHost << ">" << m.toHost << "[" << m.startOffsetNs << ","
      << m.endOffsetNs << ")";
  }
  return o.str();
}

std::string describeAll(Manager& m) {
  std::string out;
  for (const auto& r : m.list({})) out += describe(r) + "\n";
  return out;
}

// Ensures the same decisions, reasons and plans from both admission paths, on random
// submissions (dedicated of 1-4 hosts, shared, dry runs), cancellations, agent losses and
// time passing with re-plans.
TEST(AdmissionEquivalenceTest, IncrementalAdmissionDecidesAsTheFullPath) {
  int dedicatedAdmitted = 0, rejected = 0;
  for (std::uint32_t seed = 1; seed <= 12; ++seed) {
    World fast(true), full(false);
    std::mt19937 rng(seed);
    auto uniform = [&](std::int64_t lo, std::int64_t hi) {
      return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
    };
    for (int h = 0; h < 24; ++h) {
      std::vector<VmRecord> vms;
      const std::string name = "h" + std::to_string(h);
      for (int v = 0, n = static_cast<int>(uniform(0, 5)); v < n; ++v) {
        vms.push_back(FakeAgents::vm(name + "v" + std::to_string(v),
                                     static_cast<std::uint64_t>(uniform(1, 8)) * kGiB,
                                     static_cast<std::uint32_t>(uniform(1, 4))));
      }
      fast.agents->addHost(name, 32, 64 * kGiB, vms);
      full.agents->addHost(name, 32, 64 * kGiB, vms);
    }
    for (int step = 0; step < 60; ++step) {
      const std::string context = "seed " + std::to_string(seed) + " step " + std::to_string(step);
      const int action = static_cast<int>(uniform(0, 9));
      if (action <= 4) {
        ReservationRequest req;
        req.owner = "lab";
        req.startNs = fast.clock.now() + uniform(5, 360) * kMin;
        req.endNs = req.startNs + uniform(30, 240) * kMin;
        req.dryRun = uniform(0, 4) == 0;
        if (uniform(0, 2) == 0) {
          req.kind = ReservationKind::kShared;
          req.vmCount = static_cast<std::uint32_t>(uniform(1, 30));
          req.templateName = "small";
        } else {
          req.hostCount = static_cast<std::uint32_t>(uniform(1, 4));
          req.templateName = uniform(0, 1) ? "bmi" : "small";
          if (uniform(0, 1)) req.displaced = Displaced::kReturn;
        }
        auto a = fast.manager->submit(req);
        auto b = full.manager->submit(req);
        ASSERT_TRUE(a.isOk() && b.isOk()) << context;
        ASSERT_EQ(describe(*a), describe(*b)) << context;
        if (a->state == ReservationState::kAdmitted && req.kind == ReservationKind::kDedicated) {
          ++dedicatedAdmitted;
        }
        rejected += a->state == ReservationState::kRejected;
      } else if (action == 5) {
        auto all = fast.manager->list({});
        if (!all.empty()) {
          const std::string id = all[static_cast<std::size_t>(uniform(0, all.size() - 1))].id;
          (void)fast.manager->cancel(id, "");
          (void)full.manager->cancel(id, "");
        }
      } else if (action == 6 && uniform(0, 3) == 0) {
        const std::string host = "h" + std::to_string(uniform(0, 23));
        fast.agents->down.insert(host);
        full.agents->down.insert(host);
      } else {
        const TimeNs target = fast.clock.now() + uniform(1, 90) * kMin;
        while (fast.clock.now() < target) {
          TimeNs next =
              std::min(target, std::max(fast.manager->nextWakeNs(), fast.clock.now() + 1));
          next = std::min(next, fast.clock.now() + 10 * kMin);
          for (World* w : {&fast, &full}) {
            w->clock.set(next);
            w->agents->heartbeat();
            w->manager->tick();
            w->agents->pump();
          }
          ASSERT_EQ(describeAll(*fast.manager), describeAll(*full.manager)) << context;
        }
      }
      fast.agents->pump();
      full.agents->pump();
      ASSERT_EQ(describeAll(*fast.manager), describeAll(*full.manager)) << context;
    }
  }
  // Both outcomes occur often enough for the comparison to mean something.
  EXPECT_GT(dedicatedAdmitted, 30);
  EXPECT_GT(rejected, 15);
}

}  // namespace
}  // namespace vrm::manager
