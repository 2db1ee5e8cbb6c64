#include "vrm/protocol/time.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace vrm {
namespace {

TimeNs realNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::chrono::milliseconds clampDelay(double realNs, std::chrono::milliseconds cap) {
  if (realNs <= 0) return std::chrono::milliseconds(0);
  // Round up so a loop that wakes "on time" finds the deadline reached.
  double ms = std::ceil(realNs / 1e6);
  if (ms >= static_cast<double>(cap.count())) return cap;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

}  // namespace

std::string formatTime(TimeNs t) {
  std::time_t secs = static_cast<std::time_t>(t / kNsPerSec);
  TimeNs rem = t % kNsPerSec;
  if (rem < 0) {
    rem += kNsPerSec;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf);
  if (rem != 0) {
    char ms[8];
    std::snprintf(ms, sizeof ms, ".%03d", static_cast<int>(rem / kNsPerMs));
    out += ms;
  }
  return out + "Z";
}

TimeNs SystemClock::now() const { return realNow(); }

std::chrono::milliseconds SystemClock::realDelayUntil(TimeNs t,
                                                      std::chrono::milliseconds cap) const {
  if (t == kTimeInfinity) return cap;
  return clampDelay(static_cast<double>(t - realNow()), cap);
}

ScaledClock::ScaledClock(TimeNs origin, double scale) : origin_(origin), scale_(scale) {}

TimeNs ScaledClock::now() const {
  return origin_ + static_cast<TimeNs>(static_cast<double>(realNow() - origin_) * scale_);
}

std::chrono::milliseconds ScaledClock::realDelayUntil(TimeNs t,
                                                      std::chrono::milliseconds cap) const {
  if (t == kTimeInfinity) return cap;
  return clampDelay(static_cast<double>(t - now()) / scale_, cap);
}

TimeNs ManualClock::now() const {
  std::lock_guard lock(mu_);
  return now_;
}

std::chrono::milliseconds ManualClock::realDelayUntil(TimeNs t,
                                                      std::chrono::milliseconds cap) const {
  return now() >= t ? std::chrono::milliseconds(0) : cap;
}

void ManualClock::set(TimeNs t) {
  std::lock_guard lock(mu_);
  now_ = t;
}

void ManualClock::advance(TimeNs d) {
  std::lock_guard lock(mu_);
  now_ += d;
}

}  // namespace vrm
