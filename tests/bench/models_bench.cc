// ns per prediction for every registered migration model: these run inside admission control for
// every candidate VM, so they must be cheap (issue 3 targets: liu-refined and qemu-precopy under
// 1 us, akoush-avg on a 4 GiB VM under 50 us). Run by hand for the README figures:
//   models_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <string>

#include "vrm/planner/calibration.h"
#include "vrm/planner/migration_model.h"

namespace {

using namespace vrm::planner;

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = 1024.0 * kMiB;

// A 4 GiB VM on 1 GbE; `dirtyMiBPerS` of writes over a 512 MiB writable working set, a 10 GiB
// local disk written at 5 MB/s, and a 60 s page-dirtying log for akoush-hist.
VmProfile vm4GiB(double dirtyMiBPerS) {
  VmProfile vm;
  vm.memoryBytes = 4 * kGiB;
  vm.nonzeroMemoryBytes = 3 * kGiB;
  vm.dirtyRateBytesPerSec = dirtyMiBPerS * kMiB;
  vm.writableWorkingSetBytes = dirtyMiBPerS > 0 ? 512 * kMiB : 0;
  vm.modifiedMemoryBytes = 0.25 * kGiB;
  vm.diskBytes = 10 * kGiB;
  vm.diskDirtyRateBytesPerSec = 5e6;
  DirtyLog log;
  for (int i = 0; i < 60; ++i)
    log.dirtiedPages.push_back(dirtyMiBPerS * kMiB / 4096 * (0.5 + (i % 5) * 0.25));
  vm.dirtyLog = log;
  return vm;
}

void runModel(benchmark::State& state, const MigrationModel& model, const VmProfile& vm) {
  const LinkProfile link{125e6, 0.5, 0.2};
  for (auto _ : state) {
    auto e = model.estimate(vm, link);
    benchmark::DoNotOptimize(e);
  }
}

void BM_Predict(benchmark::State& state, const std::string& name, double dirtyMiBPerS) {
  auto model = createMigrationModel(name);
  if (!model) {
    state.SkipWithError(model.status().toString().c_str());
    return;
  }
  runModel(state, **model, vm4GiB(dirtyMiBPerS));
}

// The wrapper admission control would use: calibrated, at the 99th percentile.
void BM_PredictCalibratedP99(benchmark::State& state, const std::string& name) {
  Calibration c;
  c.model = name;
  c.overheadS = 1;
  c.goodputFactor = 0.9;
  for (int i = 0; i < 200; ++i) c.totalTimeResidualsS.push_back(0.01 * (i - 100));
  auto model = createCalibratedModel(c, 0.99);
  if (!model) {
    state.SkipWithError(model.status().toString().c_str());
    return;
  }
  runModel(state, **model, vm4GiB(20));
}

int registerAll() {
  for (const std::string& name : migrationModelNames()) {
    benchmark::RegisterBenchmark(("BM_Predict/" + name + "/4GiB-idle").c_str(), BM_Predict, name,
                                 0.0);
    benchmark::RegisterBenchmark(("BM_Predict/" + name + "/4GiB-dirty20MiBps").c_str(), BM_Predict,
                                 name, 20.0);
  }
  for (const char* name : {"liu-refined", "qemu-precopy", "akoush-avg"}) {
    benchmark::RegisterBenchmark((std::string("BM_PredictCalibratedP99/") + name).c_str(),
                                 BM_PredictCalibratedP99, std::string(name));
  }
  return 0;
}

const int kRegistered = registerAll();

}  // namespace

BENCHMARK_MAIN();
