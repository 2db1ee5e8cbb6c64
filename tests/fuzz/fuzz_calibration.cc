// Fuzz target: the calibration files (planner/calibration.h) — the observations CSV that
// `vrmctl calibrate` reads and the parameters file that vrmd and vrmctl load — both written by
// people or other tools, so untrusted.
//
// The first input byte chooses the reader; the rest is the file. Parameters that parse are
// turned into a model (createCalibratedModel, as vrmctl predict does) and formatted back;
// observations that parse are checked against the CSV contract. Contract checked: no crash,
// exception or sanitizer report; errors are invalid-argument (or not-found for an unknown model).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "vrm/planner/calibration.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "calibration reader breaks its contract: %s\n", what);
  std::abort();
}

void checkFinite(double v, const char* what) {
  if (!std::isfinite(v) || v < 0) fail(what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t which = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  using vrm::StatusCode;
  if (which % 2 == 0) {
    auto rows = vrm::planner::parseObservationsCsv(text);
    if (!rows) {
      if (rows.status().code() != StatusCode::kInvalidArgument) fail("CSV error is not invalid");
      return 0;
    }
    if (rows->empty()) fail("accepted a file without data rows");
    for (const auto& o : *rows) {
      checkFinite(o.totalTimeS, "total time");
      checkFinite(o.bandwidthBytesPerSec, "bandwidth");
      if (o.bandwidthBytesPerSec == 0 || o.vm.memoryBytes == 0) fail("zero memory or bandwidth");
    }
    return 0;
  }
  auto calibration = vrm::planner::parseCalibration(text);
  if (!calibration) {
    if (calibration.status().code() != StatusCode::kInvalidArgument) fail("params error");
    return 0;
  }
  if (!(calibration->goodputFactor > 0)) fail("accepted goodput_factor <= 0");
  (void)vrm::planner::formatCalibration(*calibration);
  for (double q : {0.0, 0.5, 0.99}) {
    auto model =
        vrm::planner::createCalibratedModel(*calibration, q > 0 ? std::optional(q) : std::nullopt);
    if (!model) {
      if (model.status().code() != StatusCode::kInvalidArgument &&
          model.status().code() != StatusCode::kNotFound) {
        fail("model error is neither invalid nor not-found");
      }
      continue;
    }
    // One prediction with the fuzzed parameters: a 4 GiB VM dirtying 20 MiB/s on 1 GbE.
    vrm::planner::VmProfile vm;
    vm.memoryBytes = 4.0 * (1 << 30);
    vm.nonzeroMemoryBytes = 3.0 * (1 << 30);
    vm.dirtyRateBytesPerSec = 20.0 * (1 << 20);
    vm.modifiedMemoryBytes = 1.0 * (1 << 30);
    (void)(*model)->estimate(vm, vrm::planner::LinkProfile{125e6, 0, 0});
  }
  return 0;
}
