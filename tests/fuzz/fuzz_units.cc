// Fuzz target: the parsers of quantities people type (protocol/units.h: sizes, rates,
// durations) and of times (clients' time_spec.h: ISO 8601, "now", "+2h"), which read command
// lines and cluster files.
//
// Contract checked: any text gives a value or an invalid-argument Status, never a crash,
// exception or sanitizer report (signed overflow included); accepted values are non-negative
// and finite as units.h promises; formatting an accepted value does not crash either.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "vrm/client/time_spec.h"
#include "vrm/protocol/units.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "unit parser breaks its contract: %s\n", what);
  std::abort();
}

template <typename T>
void checkError(const vrm::Result<T>& r) {
  if (!r && r.status().code() != vrm::StatusCode::kInvalidArgument) fail("error is not invalid");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto bytes = vrm::parseBytes(text);
  checkError(bytes);
  if (bytes) (void)vrm::formatBytes(static_cast<double>(*bytes));

  auto rate = vrm::parseRateBytesPerSec(text);
  checkError(rate);
  if (rate) {
    if (!std::isfinite(*rate) || *rate < 0) fail("rate negative or not finite");
    (void)vrm::formatRate(*rate);
  }

  auto duration = vrm::parseDurationNs(text);
  checkError(duration);
  if (duration) {
    if (*duration < 0) fail("negative duration");
    (void)vrm::formatDuration(*duration);
  }

  // A bare number means bytes, bytes per second and seconds: where all three readers accept
  // the text, they must agree on its value (up to rounding to whole bytes and nanoseconds).
  if (bytes && rate && duration) {
    const double tolerance = std::max(1.0, *rate * 1e-12);
    if (std::fabs(static_cast<double>(*bytes) - *rate) > tolerance) fail("size != bare number");
    if (std::fabs(static_cast<double>(*duration) - *rate * 1e9) > std::max(1.0, *rate * 1e-3)) {
      fail("duration != bare number of seconds");
    }
  }

  // A clock near today's and one at the far end of the range, where "+1d" would overflow.
  for (vrm::TimeNs now : {vrm::TimeNs{1'800'000'000} * vrm::kNsPerSec, vrm::kTimeInfinity - 1}) {
    auto t = vrm::client::parseTimeSpec(text, now);
    checkError(t);
    if (t) (void)vrm::formatTime(*t);
  }
  return 0;
}
