// IndexedCluster and CostAwareVacatePlanner::plan(const IndexedCluster&, ...): plans from an
// index kept across calls, and from the grouped destination search, are the plans the planner
// made before either existed (exhaustivePlacement scores every receiver for every VM, as it
// did), on generated clusters full of ties.
#include "vrm/planner/indexed_cluster.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "vrm/planner/cost_aware_vacate_planner.h"

namespace vrm::planner {
namespace {

constexpr std::uint64_t kGiB = 1ull << 30;
constexpr TimeNs kNow = 1'000 * kNsPerSec;

std::string hostName(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "h%04d", i);
  return buf;
}

// Every field of a plan, doubles to the last bit, or the error.
std::string describe(const Result<VacatePlan>& p) {
  if (!p) return "error: " + p.status().toString();
  std::ostringstream o;
  o.precision(17);
  o << p->strategy << " | " << p->model << " | " << p->makespanNs << " " << p->cloneTimeNs << " "
    << p->marginNs << " " << p->latestSafeStartNs << " " << p->objective << " " << p->batchSize
    << " " << p->quantile << " " << p->makespanQuantileNs << " " << p->makespanLowerBoundNs << " "
    << p->maxVmTimeNs << " " << p->energyJ << " " << p->feasible << " "
    << p->earliestFeasibleStartNs << "\n";
  for (const auto& h : p->hosts) o << "host " << h << "\n";
  for (const auto& n : p->notes) o << "note " << n << "\n";
  for (const auto& m : p->moves) {
    o << m.vmId << " " << m.fromHost << "->" << m.toHost << " " << moveModeName(m.mode) << " b"
      << m.batch << " [" << m.startOffsetNs << ", " << m.endOffsetNs << ") " << m.transferredBytes
      << " " << m.memoryBytes << " " << m.downtimeNs << " " << m.resumeAtNs << " " << m.diskSyncNs
      << " " << m.networkLimitBytesPerSec << " " << m.diskWriteLimitBytesPerSec << "\n";
  }
  return o.str();
}

struct Generated {
  std::vector<HostSnapshot> hosts;
  std::vector<VmSnapshot> vms;
  std::vector<SharedLink> links;
};

// `n` hosts whose free room takes few distinct values (so many receivers tie), NICs of two
// speeds, racks behind uplinks when `racks` > 0, a few hosts that cannot receive or carry
// bookings, 4-12 VMs per host of 1-16 GiB.
Generated generate(int n, int racks, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pick(0, 99), vmsPer(4, 12), sizeExp(0, 4), cores(1, 4);
  std::uniform_int_distribution<int> freeCores(4, 12), freeMem(2, 9);
  Generated g;
  for (int i = 0; i < n; ++i) {
    HostSnapshot h;
    h.name = hostName(i);
    h.cpuCores = 64;
    h.memoryBytes = 512 * kGiB;
    h.nicBandwidthBytesPerSec = pick(rng) < 70 ? 1.25e9 : 125e6;
    h.freeCpuCores = static_cast<std::uint32_t>(freeCores(rng)) * 4;
    h.freeMemoryBytes = static_cast<std::uint64_t>(freeMem(rng)) * 8 * kGiB;
    h.canReceive = pick(rng) >= 5;
    if (pick(rng) < 5) {
      CapacityBooking b;
      b.startNs = kNow + 600 * kNsPerSec;
      b.endNs = kNow + 7200 * kNsPerSec;
      b.cpuCores = 8;
      b.memoryBytes = 16 * kGiB;
      b.exclusive = pick(rng) < 30;
      b.owner = "r" + std::to_string(i);
      h.bookings.push_back(b);
    }
    g.hosts.push_back(h);
    const int count = vmsPer(rng);
    for (int v = 0; v < count; ++v) {
      VmSnapshot vm;
      vm.id = h.name + "-vm" + std::to_string(v);
      vm.host = h.name;
      vm.cpuCores = static_cast<std::uint32_t>(cores(rng));
      vm.memoryBytes = (1ull << sizeExp(rng)) * kGiB;
      vm.nonzeroMemoryBytes = vm.memoryBytes / 100 * static_cast<std::uint64_t>(30 + pick(rng) / 2);
      vm.dirtyRateBytesPerSec = 0.4e6 * pick(rng);
      vm.allowLive = pick(rng) >= 10;
      g.vms.push_back(vm);
    }
  }
  for (int r = 0; r < racks; ++r) {
    SharedLink l;
    l.name = "rack" + std::to_string(r);
    l.bandwidthBytesPerSec = 5e9;
    for (int i = r; i < n; i += racks) l.hosts.push_back(hostName(i));
    g.links.push_back(l);
  }
  return g;
}

VacateRequest request(const Generated& g, std::vector<std::string> vacate) {
  VacateRequest r;
  r.hosts = g.hosts;
  r.vms = g.vms;
  r.links = g.links;
  r.hostsToVacate = std::move(vacate);
  r.nowNs = kNow;
  r.reservationStartNs = kNow + 4 * 3600 * kNsPerSec;
  r.reservationEndNs = r.reservationStartNs + 2 * 3600 * kNsPerSec;
  r.cloneTimeNs = 60 * kNsPerSec;
  r.suspendPolicy = SuspendPolicy::kWhenNoRoom;
  return r;
}

// The request an index serves: no hosts or links, only the VMs of the hosts to vacate.
VacateRequest slim(VacateRequest r) {
  std::set<std::string> vacate(r.hostsToVacate.begin(), r.hostsToVacate.end());
  std::vector<VmSnapshot> vms;
  for (const auto& vm : r.vms) {
    if (vacate.count(vm.host)) vms.push_back(vm);
  }
  r.vms = std::move(vms);
  r.hosts.clear();
  r.links.clear();
  return r;
}

std::unique_ptr<CostAwareVacatePlanner> planner(bool exhaustive) {
  CostAwareVacatePlannerOptions o;
  o.exhaustivePlacement = exhaustive;
  auto p = CostAwareVacatePlanner::create("qemu-precopy", "zhao-scr", o);
  EXPECT_TRUE(p.isOk());
  return std::move(*p);
}

// Ensures the three ways of planning agree on random 1-4 host vacates of generated clusters
// with and without racks: the exhaustive search on the full request (the old planner), the
// grouped search on the full request, and the grouped search from an index with only the
// vacated hosts' VMs.
TEST(IndexedClusterTest, PlansEqualTheExhaustivePlannerOnGeneratedClusters) {
  const auto reference = planner(true);
  const auto fast = planner(false);
  int planned = 0;
  for (int racks : {0, 6, 70}) {
    const Generated g = generate(300, racks, 11 + static_cast<std::uint32_t>(racks));
    auto ix = IndexedCluster::create(g.hosts, g.links, kNow);
    ASSERT_TRUE(ix.isOk()) << ix.status().toString();
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> host(0, 299), count(1, 4);
    for (int trial = 0; trial < 25; ++trial) {
      std::set<std::string> vacate;
      const int k = count(rng);
      while (static_cast<int>(vacate.size()) < k) vacate.insert(hostName(host(rng)));
      const VacateRequest r = request(g, {vacate.begin(), vacate.end()});
      const std::string want = describe(reference->plan(r));
      EXPECT_EQ(describe(fast->plan(r)), want) << "racks " << racks << " trial " << trial;
      EXPECT_EQ(describe(fast->plan(*ix, slim(r))), want)
          << "racks " << racks << " trial " << trial;
      planned += want.rfind("error", 0) != 0;
    }
  }
  EXPECT_GT(planned, 60);  // most trials produce a plan, so the moves are compared
}

// Ensures choosing hosts (Liu eq. 18, each candidate set placed in full) picks the same hosts
// and plan with the grouped search and from an index.
TEST(IndexedClusterTest, ChosenHostsEqualTheExhaustivePlanner) {
  const auto reference = planner(true);
  const auto fast = planner(false);
  const Generated g = generate(120, 5, 3);
  auto ix = IndexedCluster::create(g.hosts, g.links, kNow);
  ASSERT_TRUE(ix.isOk());
  for (std::uint32_t count : {1u, 3u}) {
    VacateRequest r = request(g, {});
    r.hostCount = count;
    for (int i = 0; i < 40; ++i) r.candidateHosts.push_back(hostName(3 * i));
    auto want = reference->chooseHosts(r, count);
    auto got = fast->chooseHosts(r, count);
    ASSERT_EQ(want.isOk(), got.isOk());
    if (want) {
      EXPECT_EQ(*got, *want);
    }
    const std::string plan = describe(reference->plan(r));
    EXPECT_EQ(describe(fast->plan(r)), plan);
    VacateRequest fromIndex = r;
    fromIndex.hosts.clear();
    fromIndex.links.clear();
    EXPECT_EQ(describe(fast->plan(*ix, fromIndex)), plan);
  }
}

// Ensures receivers whose scores differ by less than the tie tolerance (where ties stop being
// transitive) still get the exhaustive planner's destinations: NICs a few parts in 1e10 apart.
TEST(IndexedClusterTest, NearTiesFallBackToTheExhaustiveOrder) {
  const auto reference = planner(true);
  const auto fast = planner(false);
  Generated g = generate(60, 0, 9);
  for (std::size_t i = 0; i < g.hosts.size(); ++i) {
    g.hosts[i].nicBandwidthBytesPerSec = 1.25e9 * (1 + 3e-10 * static_cast<double>(i % 7));
    g.hosts[i].canReceive = true;
  }
  auto ix = IndexedCluster::create(g.hosts, g.links, kNow);
  ASSERT_TRUE(ix.isOk());
  for (int first = 0; first < 60; first += 7) {
    const VacateRequest r = request(g, {hostName(first), hostName(first + 1)});
    const std::string want = describe(reference->plan(r));
    EXPECT_EQ(describe(fast->plan(r)), want);
    EXPECT_EQ(describe(fast->plan(*ix, slim(r))), want);
  }
}

// Ensures an index updated host by host (and moved to a later time) plans as a fresh request
// with the updated hosts does.
TEST(IndexedClusterTest, UpdatedIndexPlansLikeAFreshRequest) {
  const auto reference = planner(true);
  const auto fast = planner(false);
  Generated g = generate(200, 4, 21);
  auto ix = IndexedCluster::create(g.hosts, g.links, kNow);
  ASSERT_TRUE(ix.isOk());
  std::mt19937 rng(8);
  std::uniform_int_distribution<int> host(0, 199), mem(0, 9), flip(0, 3);
  for (int round = 0; round < 10; ++round) {
    for (int u = 0; u < 20; ++u) {
      HostSnapshot& h = g.hosts[static_cast<std::size_t>(host(rng))];
      h.freeMemoryBytes = static_cast<std::uint64_t>(mem(rng)) * 8 * kGiB;
      h.canReceive = flip(rng) != 0;
      if (flip(rng) == 0) h.nicBandwidthBytesPerSec = 2.5e9;
      ASSERT_TRUE(ix->updateHost(h).isOk());
    }
    // Later than some bookings' end (kNow + 2 h): their room returns.
    const TimeNs now = kNow + round * 1200 * kNsPerSec;
    ix->setNow(now);
    VacateRequest r = request(g, {hostName(host(rng)), hostName(host(rng) / 2 * 2 + 1)});
    if (r.hostsToVacate[0] == r.hostsToVacate[1]) r.hostsToVacate.pop_back();
    r.nowNs = now;
    const std::string want = describe(reference->plan(r));
    EXPECT_EQ(describe(fast->plan(*ix, slim(r))), want) << "round " << round;
  }
}

// Ensures misuse is a typed error: an unknown host, a bad NIC, another time than the index's,
// the index's own validation.
TEST(IndexedClusterTest, ErrorsAreTyped) {
  Generated g = generate(10, 2, 1);
  auto ix = IndexedCluster::create(g.hosts, g.links, kNow);
  ASSERT_TRUE(ix.isOk());
  HostSnapshot stranger = g.hosts[0];
  stranger.name = "elsewhere";
  EXPECT_EQ(ix->updateHost(stranger).code(), StatusCode::kNotFound);
  HostSnapshot bad = g.hosts[1];
  bad.nicBandwidthBytesPerSec = 0;
  EXPECT_EQ(ix->updateHost(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ix->find(hostName(1))->nicBandwidthBytesPerSec, g.hosts[1].nicBandwidthBytesPerSec);
  EXPECT_EQ(ix->find("elsewhere"), nullptr);
  EXPECT_EQ(ix->size(), 10u);

  VacateRequest r = slim(request(g, {hostName(2)}));
  r.nowNs = kNow + 1;
  EXPECT_EQ(planner(false)->plan(*ix, r).status().code(), StatusCode::kInvalidArgument);

  auto dup = g.hosts;
  dup.push_back(g.hosts[0]);
  EXPECT_EQ(IndexedCluster::create(dup, {}, kNow).status().code(), StatusCode::kInvalidArgument);
  auto links = g.links;
  links[0].hosts.push_back("nowhere");
  EXPECT_EQ(IndexedCluster::create(g.hosts, links, kNow).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vrm::planner
