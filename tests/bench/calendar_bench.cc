// The capacity calendar alone (issue 19 item 1): what a question about the future costs on a
// host that keeps a long history, and one whose future is full. One host of 64 cores; `past`
// bookings of 2 cores, 1-8 h long, that all ended before now (a host that has run for months),
// plus 100 bookings ahead; the question is admission's: free(host, start, end) over a 2-9 h
// window 2 h - 7 days ahead, and the exclusive owner there. With forgetting, the calendar is told
// forgetBefore(now) once the history is booked, as vrmd's tick does; without, it keeps it all.
// The future-full variant books `ahead` bookings in the next 7 days instead (nothing to forget):
// the cost there is logarithmic in them.
//
// Args: {bookings, forget (0/1)}. Figures: README "Admission, load and recovery at 10,000 hosts".
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>

#include "vrm/manager/capacity_calendar.h"

namespace {

using namespace vrm;
using namespace vrm::manager;

constexpr TimeNs kNow = 1'800'000'000 * kNsPerSec;
constexpr TimeNs kHour = 3600 * kNsPerSec;

void bookRandom(CapacityCalendar& c, std::mt19937& rng, TimeNs from, TimeNs to, int count) {
  std::uniform_int_distribution<TimeNs> start(from, to), length(kHour, 8 * kHour);
  for (int i = 0; i < count; ++i) {
    const TimeNs s = start(rng);
    c.book("h", s, s + length(rng), {2, 4LL << 30, 0});
  }
}

void ask(benchmark::State& state, CapacityCalendar& c) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<TimeNs> start(kNow + 2 * kHour, kNow + 7 * 24 * kHour);
  std::uniform_int_distribution<TimeNs> length(2 * kHour, 9 * kHour);
  std::int64_t sink = 0;
  for (auto _ : state) {
    const TimeNs s = start(rng);
    const TimeNs e = s + length(rng);
    sink += c.free("h", s, e).cpuCores;
    sink += c.exclusiveOwner("h", s, e).has_value();
  }
  benchmark::DoNotOptimize(sink);
  state.counters["changes_kept"] = static_cast<double>(c.footprint().changes);
}

void BM_FreeAheadWithHistory(benchmark::State& state) {
  const int past = static_cast<int>(state.range(0));
  CapacityCalendar c;
  c.setCapacity("h", {64, 512LL << 30, 1'250'000'000});
  std::mt19937 rng(42);
  // The history: `past` bookings over the hours before now, all ended by now (32 at a time).
  const TimeNs span = static_cast<TimeNs>(past / 32 + 1) * 4 * kHour;
  std::uniform_int_distribution<TimeNs> start(kNow - span, kNow - 9 * kHour);
  std::uniform_int_distribution<TimeNs> length(kHour, 8 * kHour);
  for (int i = 0; i < past; ++i) {
    const TimeNs s = start(rng);
    c.book("h", s, s + length(rng), {2, 4LL << 30, 0});
  }
  bookRandom(c, rng, kNow + 2 * kHour, kNow + 7 * 24 * kHour, 100);
  if (state.range(1)) {
    c.forgetBefore(kNow);
    c.book("h", kNow, kNow + 1, {1, 0, 0});  // the host's next change lets its past go
    c.unbook("h", kNow, kNow + 1, {1, 0, 0});
  }
  ask(state, c);
}
BENCHMARK(BM_FreeAheadWithHistory)
    ->ArgsProduct({{1000, 50000}, {0, 1}})
    ->ArgNames({"past", "forget"});

void BM_FreeAheadWithAFullFuture(benchmark::State& state) {
  CapacityCalendar c;
  c.setCapacity("h", {64, 512LL << 30, 1'250'000'000});
  std::mt19937 rng(42);
  bookRandom(c, rng, kNow + 2 * kHour, kNow + 7 * 24 * kHour, static_cast<int>(state.range(0)));
  ask(state, c);
}
BENCHMARK(BM_FreeAheadWithAFullFuture)->Arg(1000)->Arg(50000)->ArgName("ahead");

}  // namespace

BENCHMARK_MAIN();
