// The capacity calendar alone (issue 19 item 1): what a question about the future costs on a
// host that keeps a long history, and one whose future is full. One host of 64 cores; `past`
// bookings of 2 cores, 1-8 h long, that all ended before now (a host that has run for months),
// plus 100 bookings ahead; the question is admission's: free(host, start, end) over a 2-9 h
// window 2 h - 7 days ahead, and the exclusive owner there. With forgetting, the calendar is told
// forgetBefore(now) once the history is booked, as vrmd's tick does; without, it keeps it all.
// The future-full variant books `ahead` bookings in the next 7 days instead (nothing to forget):
// the cost there is logarithmic in them.
//
// Args: {bookings, forget (0/1)}; BM_FirstHostWithRoom (the index of hosts with room against the
// walk over every host, issue 19): {full hosts first, indexed (0/1)}. Figures: README "Admission,
// load and recovery at 10,000 hosts".
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>

#include "vrm/manager/capacity_calendar.h"
#include "vrm/manager/host_room_index.h"

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

// Finding the first host with room for one 2-core 4 GiB clone over a 3 h window among 10,000
// hosts, the first `full` of which (in name order) are full over it, as first fit leaves a
// cluster: by asking every host's calendar in turn (walk, what decideShared did), or through
// the HostRoomIndex (indexed; the calendar asked only for the hosts it offers). Every host
// holds 200 other bookings over the week, and the host found is told rebooked after each
// question (as an admission's check leaves it), so the index derives one row per question.
void BM_FirstHostWithRoom(benchmark::State& state) {
  const int full = static_cast<int>(state.range(0));
  const bool indexed = state.range(1) != 0;
  constexpr int kHosts = 10000;
  std::map<std::string, HostRecord> hosts;
  CapacityCalendar c;
  std::mt19937 rng(42);
  const TimeNs from = kNow + 26 * kHour, to = kNow + 29 * kHour;
  for (int i = 0; i < kHosts; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "h%05d", i);
    HostRecord h;
    h.name = name;
    h.cpuCores = 64;
    h.memoryBytes = 512ull << 30;
    hosts[name] = h;
    c.setCapacity(name, {64, 512LL << 30, 1'250'000'000});
    for (int k = 0; k < 200; ++k) {  // 2 cores at a time, 1-8 h, a day before or after
      std::uniform_int_distribution<TimeNs> start(kNow + 2 * kHour, kNow + 7 * 24 * kHour);
      TimeNs s = start(rng);
      if (s < to + 8 * kHour && s + 8 * kHour > from) s += 2 * 24 * kHour;
      c.book(name, s, s + kHour, {2, 4LL << 30, 0});
    }
    if (i < full) c.book(name, from + kHour, from + 2 * kHour, {64, 0, 0});
  }
  HostRoomIndex index(hosts, c);
  (void)index.candidates(from, to, 4LL << 30, 2, kNow);  // every row derived once, untimed
  std::int64_t sink = 0;
  for (auto _ : state) {
    std::string found;
    if (indexed) {
      auto candidates = index.candidates(from, to, 4LL << 30, 2, kNow);
      for (const HostRecord* h = candidates.next(); h; h = candidates.next()) {
        if (c.free(h->name, from, to).cpuCores >= 2) {
          found = h->name;
          break;
        }
      }
    } else {
      for (const auto& [name, h] : hosts) {
        if (c.free(name, from, to).cpuCores >= 2) {
          found = name;
          break;
        }
      }
    }
    sink += static_cast<std::int64_t>(found.size());
    BookingChanges changes;
    changes.rebooked.insert(found);
    index.bookingsChanged(changes);
  }
  benchmark::DoNotOptimize(sink);
}
BENCHMARK(BM_FirstHostWithRoom)
    ->ArgsProduct({{2, 225, 2000}, {0, 1}})
    ->ArgNames({"full", "indexed"})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
