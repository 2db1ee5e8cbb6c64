// Time in vrm: int64 nanoseconds since the Unix epoch, read through a Clock.
//
// Every component reads time through a Clock so that tests and the simulator can run a two-hour
// reservation in milliseconds, deterministically. Intervals are half-open [start, end).
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>

namespace vrm {

using TimeNs = std::int64_t;  // nanoseconds since the Unix epoch (or a duration in ns)

inline constexpr TimeNs kNsPerMs = 1'000'000;
inline constexpr TimeNs kNsPerSec = 1'000'000'000;
inline constexpr TimeNs kTimeInfinity = std::numeric_limits<TimeNs>::max();

constexpr TimeNs secondsToNs(double s) { return static_cast<TimeNs>(s * 1e9); }
constexpr double nsToSeconds(TimeNs ns) { return static_cast<double>(ns) / 1e9; }

// "2026-11-22T14:00:00Z" (UTC, second precision; milliseconds when not whole).
std::string formatTime(TimeNs t);

// Thread-safe source of the current time.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeNs now() const = 0;
  // How long to wait in real (wall) time until this clock reads `t`; zero if it already does.
  // Event loops use it as their poll timeout. Capped at `cap`.
  virtual std::chrono::milliseconds realDelayUntil(TimeNs t,
                                                   std::chrono::milliseconds cap) const = 0;
};

// The host's real-time clock.
class SystemClock final : public Clock {
 public:
  TimeNs now() const override;
  std::chrono::milliseconds realDelayUntil(TimeNs t, std::chrono::milliseconds cap) const override;
};

// Real time sped up by `scale` from `origin`: now = origin + (real_now - origin) * scale.
// Processes given the same origin and scale agree on the time, which lets the demo run vrmd and
// its agents in separate processes two hours ahead in seconds.
class ScaledClock final : public Clock {
 public:
  ScaledClock(TimeNs origin, double scale);
  TimeNs now() const override;
  std::chrono::milliseconds realDelayUntil(TimeNs t, std::chrono::milliseconds cap) const override;
  double scale() const { return scale_; }

 private:
  TimeNs origin_;
  double scale_;
};

// A clock that moves only when told to; for tests. realDelayUntil never waits for the future
// (the test advances the clock), it returns zero when due and `cap` otherwise.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeNs start = 0) : now_(start) {}
  TimeNs now() const override;
  std::chrono::milliseconds realDelayUntil(TimeNs t, std::chrono::milliseconds cap) const override;
  void set(TimeNs t);
  void advance(TimeNs d);

 private:
  mutable std::mutex mu_;
  TimeNs now_;
};

}  // namespace vrm
