// Admission latency of the Manager at cluster scale (issue 5 "Speed", issue 8 item 5): a
// generated cluster of 10,000 hosts and 100,000 VMs with 10,000 reservations already booked
// (tests/scale/generated_cluster.h), the CostAwareVacatePlanner that vrmd uses, an in-memory
// store. Each benchmark times every submit() and reports the p50 and p99 of those samples as
// counters (microseconds); targets: p99 < 1 ms shared, < 10 ms for a 4-host dedicated
// reservation, planning included. "DryRun" decides without booking; "Booked" also stores and
// books (the cluster fills a little as it runs).
//
// Size: --hosts=N --reservations=N (default 10,000 each). A tiny --benchmark_min_time (the ctest
// smoke run) shrinks the defaults to 200 hosts / 200 reservations. Figures: README "Performance".
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../scale/generated_cluster.h"
#include "vrm/manager/manager.h"
#include "vrm/planner/cost_aware_vacate_planner.h"

namespace {

using namespace vrm;
using namespace vrm::manager;

std::uint32_t gHosts = 10000;
std::uint32_t gReservations = 10000;
constexpr TimeNs kNow = 1'800'000'000 * kNsPerSec;

struct World {
  ManualClock clock{kNow};
  std::unique_ptr<Store> store;
  std::unique_ptr<planner::CostAwareVacatePlanner> planner;
  std::unique_ptr<Manager> manager;
  std::uint32_t admitted = 0, rejected = 0;
};

double threadCpuUs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// Built once, shared by every benchmark (booking 10,000 reservations takes a while).
World& world() {
  static World* w = [] {
    auto* w = new World;
    w->store = std::move(*Store::open(":memory:"));
    w->planner = std::move(*planner::CostAwareVacatePlanner::create("qemu-precopy", "zhao-scr"));
    w->manager =
        std::make_unique<Manager>(w->clock, *w->store, *w->planner, scale::generatedTemplates());
    for (std::uint32_t i = 0; i < gHosts; ++i) {
      if (!w->manager->onRegister(scale::generatedHost(i), scale::generatedVms(i))) std::abort();
    }
    const auto t0 = std::chrono::steady_clock::now();
    // The fill curve: CPU time per submission in each tenth of the setup, so a calendar that
    // slows down as it fills shows as a rising line (the last tenth against the first).
    const std::uint32_t tenth = std::max<std::uint32_t>(1, gReservations / 10);
    std::vector<double> decileCpuUs, sharedCpuUs, dedicatedCpuUs;
    double shared = 0, dedicated = 0;
    std::uint32_t sharedCount = 0, dedicatedCount = 0;
    for (std::uint32_t i = 0; i < gReservations; ++i) {
      ReservationRequest req = scale::generatedRequest(i, kNow);
      const bool isShared = req.kind == ReservationKind::kShared;
      const double c0 = threadCpuUs();
      auto r = w->manager->submit(std::move(req));
      if (!r) {
        std::fprintf(stderr, "setup submit %u: %s\n", i, r.status().toString().c_str());
        std::abort();
      }
      (isShared ? shared : dedicated) += threadCpuUs() - c0;
      ++(isShared ? sharedCount : dedicatedCount);
      (r->state == ReservationState::kAdmitted ? w->admitted : w->rejected)++;
      if ((i + 1) % tenth == 0) {
        decileCpuUs.push_back((shared + dedicated) / (sharedCount + dedicatedCount));
        sharedCpuUs.push_back(sharedCount ? shared / sharedCount : 0);
        dedicatedCpuUs.push_back(dedicatedCount ? dedicated / dedicatedCount : 0);
        shared = dedicated = 0;
        sharedCount = dedicatedCount = 0;
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr,
                 "setup: %u hosts, %u VMs, %u reservations booked (%u rejected) in %.1f s\n",
                 gHosts, gHosts * scale::kVmsPerHost, w->admitted, w->rejected, s);
    auto curve = [](const char* what, const std::vector<double>& v) {
      std::fprintf(stderr, "setup fill curve, %s (CPU us per submission, by tenth):", what);
      for (double d : v) std::fprintf(stderr, " %.0f", d);
      if (v.size() >= 2 && v.front() > 0) {
        std::fprintf(stderr, "; last/first %.2f", v.back() / v.front());
      }
      std::fprintf(stderr, "\n");
    };
    curve("all", decileCpuUs);
    curve("shared", sharedCpuUs);
    curve("dedicated", dedicatedCpuUs);
    return w;
  }();
  return *w;
}

ReservationRequest sharedRequest(std::mt19937& rng, bool dryRun) {
  std::uniform_int_distribution<TimeNs> start(2 * 3600 * kNsPerSec, 7 * 24 * 3600 * kNsPerSec);
  ReservationRequest r;
  r.owner = "bench";
  r.kind = ReservationKind::kShared;
  r.vmCount = 4;
  r.templateName = "small";
  r.startNs = kNow + start(rng);
  r.endNs = r.startNs + 2 * 3600 * kNsPerSec;
  r.dryRun = dryRun;
  return r;
}

// The same, starting after everything booked (15-22 days ahead): the first host fits, so this
// is what one host's check costs however many reservations are booked, against SharedDryRun,
// which walks the hosts already full in its window first (Admission::decideShared is first-fit
// by name).
ReservationRequest sharedBeyondRequest(std::mt19937& rng, bool dryRun) {
  ReservationRequest r = sharedRequest(rng, dryRun);
  r.startNs += 15 * 24 * 3600 * kNsPerSec;
  r.endNs += 15 * 24 * 3600 * kNsPerSec;
  return r;
}

ReservationRequest dedicatedRequest(std::mt19937& rng, bool dryRun) {
  // After the booked horizon (7 days): the vacate's moves meet no other reservation's moves.
  std::uniform_int_distribution<TimeNs> start(8 * 24 * 3600 * kNsPerSec,
                                              14 * 24 * 3600 * kNsPerSec);
  ReservationRequest r;
  r.owner = "bench";
  r.kind = ReservationKind::kDedicated;
  r.hostCount = 4;
  r.templateName = "node";
  r.startNs = kNow + start(rng);
  r.endNs = r.startNs + 2 * 3600 * kNsPerSec;
  r.dryRun = dryRun;
  return r;
}

void run(benchmark::State& state, const char* name, ReservationRequest (*make)(std::mt19937&, bool),
         bool dryRun) {
  Manager& m = *world().manager;
  std::mt19937 rng(42);
  std::vector<double> us, cpuUs, firstHost;
  std::uint64_t admitted = 0;
  for (auto _ : state) {
    ReservationRequest req = make(rng, dryRun);
    const double c0 = threadCpuUs();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = m.submit(std::move(req));
    const auto t1 = std::chrono::steady_clock::now();
    cpuUs.push_back(threadCpuUs() - c0);
    if (!r) {
      state.SkipWithError(r.status().toString().c_str());
      break;
    }
    admitted += r->state == ReservationState::kAdmitted;
    // Hosts are named h00000...: the first one used is how far a first-fit walk went.
    if (!r->hosts.empty()) {
      firstHost.push_back(std::strtod(r->hosts.front().c_str() + 1, nullptr));
    }
    if (r->state != ReservationState::kAdmitted && us.empty()) {
      std::fprintf(stderr, "%s: first rejection: %s\n", name, r->reason.c_str());
    }
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  if (us.empty()) return;
  auto pct = [](std::vector<double>& v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
  };
  // Wall time includes whatever else the machine runs; CPU time of this thread does not.
  state.counters["p50_us"] = pct(us, 0.50);
  state.counters["p99_us"] = pct(us, 0.99);
  state.counters["p50_cpu_us"] = pct(cpuUs, 0.50);
  state.counters["p99_cpu_us"] = pct(cpuUs, 0.99);
  if (!firstHost.empty()) state.counters["first_host_p50"] = pct(firstHost, 0.50);
  state.counters["admitted_pct"] =
      100.0 * static_cast<double>(admitted) / static_cast<double>(us.size());
  state.SetLabel(std::to_string(gHosts) + " hosts, " + std::to_string(gHosts * scale::kVmsPerHost) +
                 " VMs, " + std::to_string(gReservations) + " booked");
}

void BM_AdmitSharedDryRun(benchmark::State& s) {
  run(s, "BM_AdmitSharedDryRun", sharedRequest, true);
}
void BM_AdmitSharedBooked(benchmark::State& s) {
  run(s, "BM_AdmitSharedBooked", sharedRequest, false);
}
void BM_AdmitSharedBeyondDryRun(benchmark::State& s) {
  run(s, "BM_AdmitSharedBeyondDryRun", sharedBeyondRequest, true);
}
void BM_AdmitDedicated4DryRun(benchmark::State& s) {
  run(s, "BM_AdmitDedicated4DryRun", dedicatedRequest, true);
}
void BM_AdmitDedicated4Booked(benchmark::State& s) {
  run(s, "BM_AdmitDedicated4Booked", dedicatedRequest, false);
}
BENCHMARK(BM_AdmitSharedDryRun)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AdmitSharedBooked)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AdmitSharedBeyondDryRun)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AdmitDedicated4DryRun)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AdmitDedicated4Booked)->Unit(benchmark::kMicrosecond);

// Takes --hosts=N / --reservations=N out of argv; a min_time under 0.05 s means a smoke run.
void parseSize(int& argc, char** argv) {
  bool smoke = false, hostsSet = false, reservationsSet = false;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strncmp(a, "--hosts=", 8) == 0) {
      gHosts = static_cast<std::uint32_t>(std::strtoul(a + 8, nullptr, 10));
      hostsSet = true;
      continue;
    }
    if (std::strncmp(a, "--reservations=", 15) == 0) {
      gReservations = static_cast<std::uint32_t>(std::strtoul(a + 15, nullptr, 10));
      reservationsSet = true;
      continue;
    }
    if (std::strncmp(a, "--benchmark_min_time=", 21) == 0 && std::strtod(a + 21, nullptr) < 0.05) {
      smoke = true;
    }
    argv[out++] = argv[i];
  }
  argc = out;
  if (smoke && !hostsSet) gHosts = 200;
  if (smoke && !reservationsSet) gReservations = 200;
  if (gHosts < 4) gHosts = 4;
}

}  // namespace

int main(int argc, char** argv) {
  parseSize(argc, argv);
  spdlog::set_level(spdlog::level::warn);  // one info line per admission would dominate
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
