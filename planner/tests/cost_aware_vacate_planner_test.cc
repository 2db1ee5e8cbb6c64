#include "vrm/planner/cost_aware_vacate_planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>

namespace vrm::planner {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kGiB = 1ull << 30;
constexpr double kGbE = 125e6;  // 1 Gbit/s in bytes per second

HostSnapshot host(const std::string& name, std::uint32_t freeCores = 64,
                  std::uint64_t freeMem = 256 * kGiB, double nic = kGbE) {
  HostSnapshot h;
  h.name = name;
  h.cpuCores = 64;
  h.memoryBytes = 256 * kGiB;
  h.nicBandwidthBytesPerSec = nic;
  h.freeCpuCores = freeCores;
  h.freeMemoryBytes = freeMem;
  return h;
}

VmSnapshot vm(const std::string& id, const std::string& on, std::uint64_t mem, bool live = true) {
  VmSnapshot v;
  v.id = id;
  v.host = on;
  v.cpuCores = 1;
  v.memoryBytes = mem;
  v.nonzeroMemoryBytes = mem;
  v.allowLive = live;
  v.allowSuspend = true;
  return v;
}

std::unique_ptr<CostAwareVacatePlanner> planner(std::string_view live = "qemu-precopy") {
  auto p = CostAwareVacatePlanner::create(live, "zhao-scr");
  EXPECT_TRUE(p.isOk()) << p.status().toString();
  return std::move(*p);
}

// Seed 000's testbed: `count` VMs of `mem` on one host, moved by suspend-copy-resume over 1 GbE
// into a RAM-backed destination.
VacateRequest seed000(int count, std::uint64_t mem) {
  VacateRequest r;
  r.hosts = {host("src"), host("dst")};
  for (int i = 0; i < count; ++i) r.vms.push_back(vm("vm" + std::to_string(i), "src", mem, false));
  r.hostsToVacate = {"src"};
  r.reservationStartNs = 3600 * kNsPerSec;
  return r;
}

struct Timing {
  double makespanS;
  double perVmS;  // mean of end - start over the moves
};

Timing run(const CostAwareVacatePlanner& p, VacateRequest r, std::uint32_t batch) {
  r.batchSize = batch;
  auto plan = p.plan(r);
  EXPECT_TRUE(plan.isOk()) << plan.status().toString();
  double sum = 0;
  for (const auto& m : plan->moves) sum += nsToSeconds(m.endOffsetNs - m.startOffsetNs);
  return {nsToSeconds(plan->makespanNs), sum / static_cast<double>(plan->moves.size())};
}

// Ensures seed 000's qualitative results (Figs. 15-16): parallel finishes sooner in aggregate but
// each VM's migration is slower; more VMs gain more; bigger VMs (copy-dominated) gain less.
TEST(CostAwareVacatePlannerTest, ParallelIsFasterButSlowerPerVmAsInSeed000) {
  auto p = planner();
  struct Case {
    int count;
    std::uint64_t mem;
    double paperSpeedup, paperSlowdown;
    double speedup = 0, slowdown = 0;
  };
  std::vector<Case> cases = {
      {4, 256 * kMiB, 1.4, 2.2}, {8, 256 * kMiB, 1.6, 3.8}, {4, 512 * kMiB, 1.3, 2.5}};
  for (auto& c : cases) {
    Timing seq = run(*p, seed000(c.count, c.mem), 1);
    Timing par = run(*p, seed000(c.count, c.mem), static_cast<std::uint32_t>(c.count));
    Timing half = run(*p, seed000(c.count, c.mem), static_cast<std::uint32_t>(c.count / 2));
    c.speedup = seq.makespanS / par.makespanS;
    c.slowdown = par.perVmS / seq.perVmS;
    EXPECT_LT(par.makespanS, seq.makespanS);
    EXPECT_GT(par.perVmS, seq.perVmS);
    // Batches sit in between on both counts.
    EXPECT_LT(half.makespanS, seq.makespanS);
    EXPECT_GT(half.makespanS, par.makespanS);
    EXPECT_LT(half.perVmS, par.perVmS);
    EXPECT_GT(half.perVmS, seq.perVmS);
    std::printf(
        "seed000 %d x %llu MiB: sequential %.1fs (%.2fs/VM), parallel %.1fs (%.2fs/VM): "
        "speedup %.2f (paper %.1f), per-VM slowdown %.2f (paper %.1f)\n",
        c.count, static_cast<unsigned long long>(c.mem / kMiB), seq.makespanS, seq.perVmS,
        par.makespanS, par.perVmS, c.speedup, c.paperSpeedup, c.slowdown, c.paperSlowdown);
  }
  EXPECT_GT(cases[1].speedup, cases[0].speedup);    // 8 VMs gain more than 4
  EXPECT_GT(cases[0].speedup, cases[2].speedup);    // 512 MB VMs gain less than 256 MB ones
  EXPECT_GT(cases[1].slowdown, cases[0].slowdown);  // ... and suffer more per VM with 8
}

// Ensures the makespan objective picks the parallel plan for seed 000's small VMs and the
// degradation objective the sequential one when the deadline allows it.
TEST(CostAwareVacatePlannerTest, ObjectiveChoosesTheStrategy) {
  auto p = planner();
  VacateRequest r = seed000(8, 256 * kMiB);
  auto fast = p->plan(r);
  ASSERT_TRUE(fast.isOk()) << fast.status().toString();
  EXPECT_EQ(fast->strategy, "parallel");
  EXPECT_EQ(fast->objective, "makespan");
  r.objective = VacateObjective::kDegradation;
  auto gentle = p->plan(r);
  ASSERT_TRUE(gentle.isOk());
  EXPECT_EQ(gentle->strategy, "sequential");
  EXPECT_LT(gentle->maxVmTimeNs, fast->maxVmTimeNs);
  // A deadline the sequential plan misses forces more parallelism, still as gentle as possible.
  r.reservationStartNs = r.nowNs + secondsToNs(nsToSeconds(gentle->makespanQuantileNs) * 0.8);
  auto tight = p->plan(r);
  ASSERT_TRUE(tight.isOk());
  EXPECT_NE(tight->strategy, "sequential");
  EXPECT_TRUE(tight->feasible);
  EXPECT_GE(tight->latestSafeStartNs, r.nowNs);
}

// Ensures a bandwidth-bound parallel plan (large VMs, copy dominates) is within 5% of its bound.
TEST(CostAwareVacatePlannerTest, BandwidthBoundParallelPlanIsNearItsLowerBound) {
  auto p = planner();
  VacateRequest r;
  r.hosts = {host("src"), host("d1"), host("d2"), host("d3")};
  for (int i = 0; i < 8; ++i) r.vms.push_back(vm("v" + std::to_string(i), "src", 4 * kGiB, false));
  r.hostsToVacate = {"src"};
  r.batchSize = 8;
  auto plan = p->plan(r);
  ASSERT_TRUE(plan.isOk()) << plan.status().toString();
  EXPECT_EQ(plan->strategy, "parallel");
  EXPECT_GT(plan->makespanLowerBoundNs, 0);
  EXPECT_LE(plan->makespanLowerBoundNs, plan->makespanNs);
  EXPECT_LE(nsToSeconds(plan->makespanNs), 1.05 * nsToSeconds(plan->makespanLowerBoundNs));
  // The sequential plan of the same moves is far from it.
  r.batchSize = 1;
  auto seq = p->plan(r);
  ASSERT_TRUE(seq.isOk());
  EXPECT_GT(nsToSeconds(seq->makespanNs), 1.05 * nsToSeconds(seq->makespanLowerBoundNs));
}

// Ensures destinations are spread so the sender, not one receiver, is the bottleneck.
TEST(CostAwareVacatePlannerTest, SpreadsMovesOverReceivingNics) {
  auto p = planner();
  VacateRequest r;
  r.hosts = {host("src", 64, 256 * kGiB, 4 * kGbE), host("a"), host("b"), host("c"), host("d")};
  for (int i = 0; i < 4; ++i) r.vms.push_back(vm("v" + std::to_string(i), "src", 2 * kGiB, false));
  r.hostsToVacate = {"src"};
  r.batchSize = 4;
  auto plan = p->plan(r);
  ASSERT_TRUE(plan.isOk());
  std::map<std::string, int> perDest;
  for (const auto& m : plan->moves) {
    ++perDest[m.toHost];
    EXPECT_NEAR(m.networkLimitBytesPerSec, kGbE, 1);  // each gets a whole receiving NIC
  }
  EXPECT_EQ(perDest.size(), 4u);
}

// Ensures a shared link (rack uplink) is a bottleneck migrations crossing it share.
TEST(CostAwareVacatePlannerTest, MovesCrossingASharedLinkShareIt) {
  auto p = planner();
  VacateRequest r;
  r.hosts = {host("src", 64, 256 * kGiB, 4 * kGbE), host("a", 1, 256 * kGiB),
             host("b", 1, 256 * kGiB)};
  for (int i = 0; i < 2; ++i) r.vms.push_back(vm("v" + std::to_string(i), "src", 2 * kGiB, false));
  r.hostsToVacate = {"src"};
  r.batchSize = 2;
  auto free = p->plan(r);
  ASSERT_TRUE(free.isOk());
  r.links = {{"uplink", kGbE, {"src"}}};  // the source's rack uplink: both moves cross it
  auto shared = p->plan(r);
  ASSERT_TRUE(shared.isOk());
  for (const auto& m : shared->moves) EXPECT_NEAR(m.networkLimitBytesPerSec, kGbE / 2, 1);
  EXPECT_GT(shared->makespanNs, free->makespanNs);
}

// Ensures a dirtying VM that converges alone is planned as suspend-copy-resume in a crowd.
TEST(CostAwareVacatePlannerTest, LiveMoveThatOnlyConvergesAloneFallsBackInACrowd) {
  auto p = planner();
  VacateRequest r;
  r.hosts = {host("src"), host("dst")};
  for (int i = 0; i < 8; ++i) {
    VmSnapshot v = vm("v" + std::to_string(i), "src", 1 * kGiB);
    v.dirtyRateBytesPerSec = 40e6;  // < 125 MB/s alone, > 125/8 MB/s shared by eight
    r.vms.push_back(v);
  }
  r.hostsToVacate = {"src"};
  r.batchSize = 1;
  auto seq = p->plan(r);
  ASSERT_TRUE(seq.isOk());
  for (const auto& m : seq->moves) EXPECT_EQ(m.mode, MoveMode::kLive);
  r.batchSize = 8;
  auto par = p->plan(r);
  ASSERT_TRUE(par.isOk());
  for (const auto& m : par->moves) EXPECT_EQ(m.mode, MoveMode::kSuspendCopyResume);
}

// Ensures the degradation objective never exceeds its per-VM bound, takes the fastest plan
// within it, and rejects a bound no strategy meets.
TEST(CostAwareVacatePlannerTest, DegradationObjectiveKeepsThePerVmBound) {
  auto p = planner();
  VacateRequest r = seed000(8, 256 * kMiB);
  r.objective = VacateObjective::kDegradation;
  for (double boundS : {6.0, 9.0, 13.0, 20.0, 30.0}) {
    r.maxVmTimeNs = secondsToNs(boundS);
    auto plan = p->plan(r);
    ASSERT_TRUE(plan.isOk()) << boundS << ": " << plan.status().toString();
    EXPECT_LE(plan->maxVmTimeNs, r.maxVmTimeNs);
    for (const auto& m : plan->moves) EXPECT_LE(m.endOffsetNs - m.startOffsetNs, r.maxVmTimeNs);
  }
  r.maxVmTimeNs = secondsToNs(30);
  auto loose = p->plan(r);
  ASSERT_TRUE(loose.isOk());
  EXPECT_EQ(loose->strategy, "parallel");  // the bound allows the fastest plan
  r.maxVmTimeNs = secondsToNs(1);          // less than one VM alone takes
  auto impossible = p->plan(r);
  ASSERT_FALSE(impossible.isOk());
  EXPECT_EQ(impossible.status().code(), StatusCode::kRejected);
  r.maxVmTimeNs = 0;
  r.maxVmDowntimeNs = secondsToNs(7);
  auto down = p->plan(r);
  ASSERT_TRUE(down.isOk());
  for (const auto& m : down->moves) EXPECT_LE(m.downtimeNs, r.maxVmDowntimeNs);
}

// Ensures VMs are suspended only when no destination has room, and are resumed after the
// reservation; with SuspendPolicy::kNever the plan is rejected instead.
TEST(CostAwareVacatePlannerTest, SuspendsOnlyWhenNoDestinationFits) {
  auto p = planner();
  VacateRequest r;
  r.hosts = {host("src"), host("dst", 64, 6 * kGiB)};
  r.vms = {vm("big", "src", 8 * kGiB), vm("mid", "src", 4 * kGiB), vm("small", "src", 2 * kGiB)};
  r.hostsToVacate = {"src"};
  r.reservationStartNs = 7200 * kNsPerSec;
  r.reservationEndNs = 9000 * kNsPerSec;
  auto plan = p->plan(r);
  ASSERT_TRUE(plan.isOk()) << plan.status().toString();
  std::map<std::string, PlannedMove> byVm;
  for (const auto& m : plan->moves) byVm[m.vmId] = m;
  EXPECT_EQ(byVm["big"].mode, MoveMode::kSuspend);
  EXPECT_EQ(byVm["big"].toHost, "src");
  EXPECT_EQ(byVm["big"].resumeAtNs, r.reservationEndNs);
  EXPECT_GT(byVm["big"].downtimeNs, r.reservationEndNs - r.reservationStartNs);
  EXPECT_EQ(byVm["big"].transferredBytes, 0u);
  EXPECT_NE(byVm["mid"].mode, MoveMode::kSuspend);
  EXPECT_NE(byVm["small"].mode, MoveMode::kSuspend);
  ASSERT_FALSE(plan->notes.empty());
  EXPECT_NE(plan->notes[0].find("big"), std::string::npos);

  r.suspendPolicy = SuspendPolicy::kNever;
  auto never = p->plan(r);
  ASSERT_FALSE(never.isOk());
  EXPECT_EQ(never.status().code(), StatusCode::kRejected);
  EXPECT_NE(never.status().message().find("big"), std::string::npos);
}

// Ensures a suspend store receives the suspended VM's state over the network.
TEST(CostAwareVacatePlannerTest, SuspendToAStoreCopiesTheState) {
  auto p = planner();
  VacateRequest r;
  r.hosts = {host("src"), host("dst", 64, 1 * kGiB)};
  r.vms = {vm("big", "src", 4 * kGiB)};
  r.hostsToVacate = {"src"};
  r.suspendStore = "nas";
  r.suspendStoreBandwidthBytesPerSec = kGbE / 2;
  auto plan = p->plan(r);
  ASSERT_TRUE(plan.isOk()) << plan.status().toString();
  ASSERT_EQ(plan->moves.size(), 1u);
  EXPECT_EQ(plan->moves[0].mode, MoveMode::kSuspend);
  EXPECT_EQ(plan->moves[0].toHost, "nas");
  EXPECT_EQ(plan->moves[0].transferredBytes, 4 * kGiB);
  EXPECT_GT(nsToSeconds(plan->makespanNs), 4.0 * kGiB / (kGbE / 2));
}

// Ensures the latest safe start moves earlier as the quantile rises, with and without history.
TEST(CostAwareVacatePlannerTest, LatestSafeStartMovesEarlierAsQuantileRises) {
  auto p = planner();
  for (bool history : {false, true}) {
    VacateRequest r = seed000(4, 512 * kMiB);
    r.cloneTimeNs = 30 * kNsPerSec;
    r.marginNs = 60 * kNsPerSec;
    if (history) r.relativeErrorSamples = {-0.1, 0.05, 0.0, 0.2, 0.12, 0.3, -0.02, 0.08};
    TimeNs previous = kTimeInfinity;
    for (double q : {0.5, 0.8, 0.9, 0.95, 0.99}) {
      r.quantile = q;
      auto plan = p->plan(r);
      ASSERT_TRUE(plan.isOk());
      EXPECT_LT(plan->latestSafeStartNs, previous) << "q=" << q << " history=" << history;
      EXPECT_GE(plan->makespanQuantileNs, plan->makespanLowerBoundNs);
      EXPECT_EQ(plan->latestSafeStartNs,
                r.reservationStartNs - r.cloneTimeNs - plan->makespanQuantileNs - r.marginNs);
      previous = plan->latestSafeStartNs;
    }
  }
}

// Ensures a vacate that cannot finish even when started now says so, with the earliest
// feasible reservation start.
TEST(CostAwareVacatePlannerTest, TooLateSaysWhenItWouldBeFeasible) {
  auto p = planner();
  VacateRequest r = seed000(4, 512 * kMiB);
  r.nowNs = 1000 * kNsPerSec;
  r.reservationStartNs = r.nowNs + 10 * kNsPerSec;
  r.cloneTimeNs = 30 * kNsPerSec;
  auto plan = p->plan(r);
  ASSERT_TRUE(plan.isOk());
  EXPECT_FALSE(plan->feasible);
  EXPECT_EQ(plan->earliestFeasibleStartNs,
            r.nowNs + r.cloneTimeNs + plan->makespanQuantileNs + r.marginNs);
  r.reservationStartNs = plan->earliestFeasibleStartNs;
  auto later = p->plan(r);
  ASSERT_TRUE(later.isOk());
  EXPECT_TRUE(later->feasible);
}

// Ensures a local disk's synchronisation (Expression 1) is part of the move and the plan states
// the network limit and a disk-write cap that keep it on time.
TEST(CostAwareVacatePlannerTest, LocalDiskSynchronisationIsPartOfTheMove) {
  auto p = planner();
  VacateRequest r;
  r.hosts = {host("src"), host("dst")};
  VmSnapshot v = vm("v", "src", 1 * kGiB);
  v.diskBytes = 10 * kGiB;
  v.diskDirtyRateBytesPerSec = 5e6;
  r.vms = {v};
  r.hostsToVacate = {"src"};
  auto withDisk = p->plan(r);
  ASSERT_TRUE(withDisk.isOk()) << withDisk.status().toString();
  const PlannedMove& m = withDisk->moves[0];
  EXPECT_NEAR(nsToSeconds(m.diskSyncNs), 10.0 * kGiB / (kGbE - 5e6), 0.01);
  EXPECT_NEAR(m.networkLimitBytesPerSec, kGbE, 1);
  EXPECT_GT(m.diskWriteLimitBytesPerSec, 0);
  EXPECT_LT(m.diskWriteLimitBytesPerSec, kGbE);
  EXPECT_NE(withDisk->model.find("tsakalozos-disk"), std::string::npos);
  r.vms[0].diskBytes = 0;
  auto shared = p->plan(r);
  ASSERT_TRUE(shared.isOk());
  EXPECT_NEAR(nsToSeconds(withDisk->makespanNs - shared->makespanNs), nsToSeconds(m.diskSyncNs),
              0.01);
  // A disk dirtied faster than the link would never sync: the broker caps its writes.
  r.vms[0].diskBytes = 10 * kGiB;
  r.vms[0].diskDirtyRateBytesPerSec = 2 * kGbE;
  auto capped = p->plan(r);
  ASSERT_TRUE(capped.isOk());
  EXPECT_LE(capped->moves[0].diskWriteLimitBytesPerSec, kGbE / 2);
  EXPECT_FALSE(capped->notes.empty());
}

// Ensures host choice takes the cheapest hosts by eq. 18 and never one booked in the window.
TEST(CostAwareVacatePlannerTest, ChoosesCheapestHostsAndSkipsBookedOnes) {
  auto p = planner();
  VacateRequest r;
  r.hosts = {host("heavy"), host("light"), host("empty"), host("booked"), host("spare")};
  r.vms = {vm("h1", "heavy", 16 * kGiB), vm("h2", "heavy", 16 * kGiB), vm("l1", "light", kGiB)};
  r.nowNs = 0;
  r.reservationStartNs = 3600 * kNsPerSec;
  r.reservationEndNs = 7200 * kNsPerSec;
  CapacityBooking b;
  b.startNs = 5000 * kNsPerSec;
  b.endNs = 9000 * kNsPerSec;
  b.exclusive = true;
  b.owner = "reservation r7";
  r.hosts[3].bookings = {b};
  r.candidateHosts = {"heavy", "light", "empty", "booked"};
  auto two = p->chooseHosts(r, 2);
  ASSERT_TRUE(two.isOk()) << two.status().toString();
  EXPECT_EQ(*two, (std::vector<std::string>{"empty", "light"}));
  auto four = p->chooseHosts(r, 4);
  ASSERT_FALSE(four.isOk());
  EXPECT_EQ(four.status().code(), StatusCode::kRejected);
  // plan() with a count chooses, then plans.
  r.hostCount = 2;
  auto plan = p->plan(r);
  ASSERT_TRUE(plan.isOk());
  EXPECT_EQ(plan->hosts, (std::vector<std::string>{"empty", "light"}));
  ASSERT_EQ(plan->moves.size(), 1u);
  EXPECT_NE(plan->moves[0].toHost, "booked");  // exclusive from now on: cannot receive
  // A named host booked in the window is refused.
  r.hostsToVacate = {"booked"};
  auto refused = p->plan(r);
  ASSERT_FALSE(refused.isOk());
  EXPECT_NE(refused.status().message().find("r7"), std::string::npos);
}

// Ensures host choice prefers a set whose VMs all find room over one needing suspensions.
TEST(CostAwareVacatePlannerTest, ChoosesHostsThatNeedNoSuspension) {
  auto p = planner();
  VacateRequest r;
  r.hosts = {host("a", 64, 4 * kGiB), host("b", 64, 4 * kGiB), host("c", 64, 4 * kGiB)};
  r.vms = {vm("a1", "a", 8 * kGiB), vm("b1", "b", 12 * kGiB), vm("c1", "c", 3 * kGiB)};
  // a is cheaper than b, but a1 fits nowhere; c1 fits.
  auto one = p->chooseHosts(r, 1);
  ASSERT_TRUE(one.isOk());
  EXPECT_EQ(*one, std::vector<std::string>{"c"});
  r.candidateHosts = {"a", "b"};
  auto forced = p->chooseHosts(r, 1);  // only suspensions left: the fewest, then cheapest
  ASSERT_TRUE(forced.isOk());
  EXPECT_EQ(*forced, std::vector<std::string>{"a"});
  r.suspendPolicy = SuspendPolicy::kNever;
  EXPECT_FALSE(p->chooseHosts(r, 1).isOk());
}

// Brute-force room of a host from `now` on: free minus the bookings' peak, checked at every
// booking start (the peak of half-open intervals is reached at some start).
std::pair<std::int64_t, std::int64_t> bruteRoom(const HostSnapshot& h, TimeNs now) {
  std::int64_t peakCpu = 0, peakMem = 0;
  std::vector<TimeNs> probes = {now};
  for (const auto& b : h.bookings) probes.push_back(std::max(b.startNs, now));
  for (TimeNs t : probes) {
    std::int64_t cpu = 0, mem = 0;
    for (const auto& b : h.bookings) {
      if (b.startNs <= t && t < b.endNs && b.endNs > now) {
        cpu += b.cpuCores;
        mem += static_cast<std::int64_t>(b.memoryBytes);
      }
    }
    peakCpu = std::max(peakCpu, cpu);
    peakMem = std::max(peakMem, mem);
  }
  return {static_cast<std::int64_t>(h.freeCpuCores) - peakCpu,
          static_cast<std::int64_t>(h.freeMemoryBytes) - peakMem};
}

// Property: over random clusters, no destination is overbooked (CPU, memory, future bookings),
// no VM lands on a host that may not receive, and a VM is suspended only if no host has room
// for it after every placement.
TEST(CostAwareVacatePlannerTest, DestinationsAreNeverOverbookedOnRandomClusters) {
  auto p = planner();
  std::mt19937 rng(20240611);
  int suspended = 0, moved = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::uniform_int_distribution<int> hostsDist(2, 12), vmsDist(0, 6), coresDist(1, 8);
    std::uniform_int_distribution<int> memDist(1, 16), pct(0, 99);
    VacateRequest r;
    r.nowNs = 1000 * kNsPerSec;
    const int n = hostsDist(rng);
    for (int h = 0; h < n; ++h) {
      HostSnapshot hs = host("h" + std::to_string(h), 16, 32 * kGiB);
      hs.freeCpuCores = static_cast<std::uint32_t>(std::uniform_int_distribution<int>(0, 16)(rng));
      hs.freeMemoryBytes = static_cast<std::uint64_t>(memDist(rng)) * 2 * kGiB;
      hs.canReceive = pct(rng) >= 10;
      const int bookings = std::uniform_int_distribution<int>(0, 3)(rng);
      for (int b = 0; b < bookings; ++b) {
        CapacityBooking bk;
        bk.startNs = std::uniform_int_distribution<TimeNs>(0, 5000)(rng) * kNsPerSec;
        bk.endNs = bk.startNs + std::uniform_int_distribution<TimeNs>(1, 3000)(rng) * kNsPerSec;
        bk.cpuCores = static_cast<std::uint32_t>(coresDist(rng));
        bk.memoryBytes = static_cast<std::uint64_t>(memDist(rng)) * kGiB;
        hs.bookings.push_back(bk);
      }
      r.hosts.push_back(hs);
      const int vms = vmsDist(rng);
      for (int v = 0; v < vms; ++v) {
        VmSnapshot vs = vm("h" + std::to_string(h) + "v" + std::to_string(v), hs.name,
                           static_cast<std::uint64_t>(memDist(rng)) * kGiB, pct(rng) < 70);
        vs.cpuCores = static_cast<std::uint32_t>(coresDist(rng));
        vs.allowSuspend = true;
        r.vms.push_back(vs);
      }
    }
    r.hostsToVacate = {"h0"};
    if (n > 4 && pct(rng) < 50) r.hostsToVacate.push_back("h1");
    r.hosts[0].bookings.clear();  // hosts booked in the window cannot be vacated
    r.hosts[1].bookings.clear();
    r.reservationStartNs = 100000 * kNsPerSec;
    auto plan = p->plan(r);
    ASSERT_TRUE(plan.isOk()) << plan.status().toString();

    std::map<std::string, std::pair<std::int64_t, std::int64_t>> room;
    for (const auto& h : r.hosts) room[h.name] = bruteRoom(h, r.nowNs);
    std::map<std::string, const VmSnapshot*> vms;
    for (const auto& v : r.vms) vms[v.id] = &v;
    std::set<std::string> received;
    for (const auto& m : plan->moves) {
      if (m.mode == MoveMode::kSuspend) continue;
      ++moved;
      const VmSnapshot& v = *vms.at(m.vmId);
      const HostSnapshot& dest = *std::find_if(r.hosts.begin(), r.hosts.end(),
                                               [&](const auto& h) { return h.name == m.toHost; });
      EXPECT_TRUE(dest.canReceive);
      for (const auto& b : dest.bookings) EXPECT_FALSE(b.exclusive);
      EXPECT_EQ(std::count(r.hostsToVacate.begin(), r.hostsToVacate.end(), m.toHost), 0);
      received.insert(m.toHost);
      room[m.toHost].first -= v.cpuCores;
      room[m.toHost].second -= static_cast<std::int64_t>(v.memoryBytes);
    }
    for (const auto& name : received) {
      const auto& left = room[name];
      EXPECT_GE(left.first, 0) << name << " CPU overbooked in trial " << trial;
      EXPECT_GE(left.second, 0) << name << " memory overbooked in trial " << trial;
    }
    for (const auto& m : plan->moves) {
      if (m.mode != MoveMode::kSuspend) continue;
      ++suspended;
      const VmSnapshot& v = *vms.at(m.vmId);
      for (const auto& h : r.hosts) {
        if (!h.canReceive ||
            std::count(r.hostsToVacate.begin(), r.hostsToVacate.end(), h.name) > 0 ||
            std::any_of(h.bookings.begin(), h.bookings.end(),
                        [&](const auto& b) { return b.exclusive && b.endNs > r.nowNs; })) {
          continue;
        }
        const auto& left = room[h.name];
        EXPECT_FALSE(left.first >= v.cpuCores &&
                     left.second >= static_cast<std::int64_t>(v.memoryBytes))
            << m.vmId << " suspended although " << h.name << " has room (trial " << trial << ")";
      }
    }
  }
  // The generator exercises both outcomes.
  EXPECT_GT(moved, 100);
  EXPECT_GT(suspended, 5);
}

// Ensures bad requests are invalid-argument, not crashes.
TEST(CostAwareVacatePlannerTest, RejectsMalformedRequests) {
  auto p = planner();
  VacateRequest r = seed000(2, 256 * kMiB);
  r.quantile = 1.0;
  EXPECT_EQ(p->plan(r).status().code(), StatusCode::kInvalidArgument);
  r.quantile = 0.9;
  r.hostsToVacate = {"nope"};
  EXPECT_EQ(p->plan(r).status().code(), StatusCode::kInvalidArgument);
  r.hostsToVacate.clear();
  EXPECT_EQ(p->plan(r).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p->chooseHosts(r, 0).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vrm::planner
