#include "vrm/protocol/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace vrm {
namespace {

struct Unit {
  std::string_view name;
  double factor;
};

// Splits "12.5 MiB" into 12.5 and "MiB".
Result<std::pair<double, std::string>> splitNumber(std::string_view text, const char* what) {
  std::string s(text);
  std::size_t b = s.find_first_not_of(" \t");
  std::size_t e = s.find_last_not_of(" \t");
  if (b == std::string::npos) return Status::invalid(std::string("empty ") + what);
  s = s.substr(b, e - b + 1);
  const char* begin = s.c_str();
  char* end = nullptr;
  double value = std::strtod(begin, &end);
  if (end == begin) return Status::invalid("'" + s + "' is not a " + what + ": no number");
  if (!std::isfinite(value)) return Status::invalid("'" + s + "' is not a finite " + what);
  if (value < 0)
    return Status::invalid("'" + s + "': a " + std::string(what) + " cannot be negative");
  std::string unit(end);
  std::size_t ub = unit.find_first_not_of(" \t");
  unit = ub == std::string::npos ? "" : unit.substr(ub);
  return std::make_pair(value, unit);
}

template <std::size_t N>
Result<double> scale(std::string_view text, const char* what, const Unit (&units)[N],
                     const char* known) {
  auto split = splitNumber(text, what);
  if (!split) return split.status();
  auto [value, unit] = *split;
  for (const Unit& u : units) {
    if (unit == u.name) {
      // 1e308 Tbit/s is a finite number of a unit, but not a finite rate.
      const double scaled = value * u.factor;
      if (!std::isfinite(scaled)) {
        return Status::invalid("'" + std::string(text) + "' is not a finite " + what);
      }
      return scaled;
    }
  }
  return Status::invalid("unknown " + std::string(what) + " unit '" + unit + "' in '" +
                         std::string(text) + "' (known: " + known + ")");
}

constexpr Unit kSizeUnits[] = {
    {"", 1},
    {"B", 1},
    {"KB", 1e3},
    {"MB", 1e6},
    {"GB", 1e9},
    {"TB", 1e12},
    {"KiB", 1024.0},
    {"MiB", 1048576.0},
    {"GiB", 1073741824.0},
    {"TiB", 1099511627776.0},
    {"k", 1e3},
    {"kB", 1e3},
};

constexpr Unit kRateUnits[] = {
    {"", 1},
    {"bit/s", 1.0 / 8},
    {"kbit/s", 1e3 / 8},
    {"Kbit/s", 1e3 / 8},
    {"Mbit/s", 1e6 / 8},
    {"Gbit/s", 1e9 / 8},
    {"Tbit/s", 1e12 / 8},
    {"bps", 1.0 / 8},
    {"kbps", 1e3 / 8},
    {"Mbps", 1e6 / 8},
    {"Gbps", 1e9 / 8},
    {"B/s", 1},
    {"KB/s", 1e3},
    {"kB/s", 1e3},
    {"MB/s", 1e6},
    {"GB/s", 1e9},
    {"KiB/s", 1024.0},
    {"MiB/s", 1048576.0},
    {"GiB/s", 1073741824.0},
    {"pages/s", 4096.0},
    {"page/s", 4096.0},
};

constexpr Unit kDurationUnits[] = {
    {"", 1e9},    {"ns", 1},     {"us", 1e3}, {"ms", 1e6},   {"s", 1e9},
    {"sec", 1e9}, {"min", 60e9}, {"m", 60e9}, {"h", 3600e9}, {"d", 86400e9},
};

}  // namespace

Result<std::uint64_t> parseBytes(std::string_view text) {
  auto v = scale(text, "size", kSizeUnits, "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB");
  if (!v) return v.status();
  if (*v > 1.8e19) return Status::invalid("size '" + std::string(text) + "' is too large");
  return static_cast<std::uint64_t>(std::llround(*v));
}

Result<double> parseRateBytesPerSec(std::string_view text) {
  return scale(
      text, "rate", kRateUnits,
      "bit/s, kbit/s, Mbit/s, Gbit/s, B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s, pages/s");
}

Result<TimeNs> parseDurationNs(std::string_view text) {
  auto v = scale(text, "duration", kDurationUnits, "ns, us, ms, s, min, h, d");
  if (!v) return v.status();
  if (*v > 9.2e18) return Status::invalid("duration '" + std::string(text) + "' is too long");
  return static_cast<TimeNs>(std::llround(*v));
}

std::string formatBytes(double bytes) {
  static const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (bytes >= 1024.0 && i < 4) {
    bytes /= 1024.0;
    ++i;
  }
  char buf[48];
  if (i == 0) {
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f %s", bytes, kNames[i]);
  }
  return buf;
}

std::string formatRate(double bytesPerSec) {
  double bits = bytesPerSec * 8;
  static const char* kNames[] = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
  int i = 0;
  while (bits >= 1000.0 && i < 4) {
    bits /= 1000.0;
    ++i;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2f %s", bits, kNames[i]);
  return buf;
}

std::string formatDuration(TimeNs ns) {
  char buf[64];
  const char* sign = ns < 0 ? "-" : "";
  TimeNs a = ns < 0 ? -ns : ns;
  if (a < kNsPerSec) {
    std::snprintf(buf, sizeof buf, "%s%.0fms", sign, static_cast<double>(a) / 1e6);
  } else if (a < 60 * kNsPerSec) {
    std::snprintf(buf, sizeof buf, "%s%.2fs", sign, static_cast<double>(a) / 1e9);
  } else {
    TimeNs s = a / kNsPerSec;
    if (s < 3600) {
      std::snprintf(buf, sizeof buf, "%s%lldm %02llds", sign, static_cast<long long>(s / 60),
                    static_cast<long long>(s % 60));
    } else {
      std::snprintf(buf, sizeof buf, "%s%lldh %02lldm %02llds", sign,
                    static_cast<long long>(s / 3600), static_cast<long long>((s / 60) % 60),
                    static_cast<long long>(s % 60));
    }
  }
  return buf;
}

}  // namespace vrm
