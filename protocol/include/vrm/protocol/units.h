// Parsing and printing of quantities with units, for command lines and cluster files.
//
// Sizes:     B, KB, MB, GB, TB (10^3) and KiB, MiB, GiB, TiB (2^10); a bare number is bytes.
// Rates:     bit/s with SI prefixes (bit/s, kbit/s, Mbit/s, Gbit/s; also bps, Mbps, Gbps),
//            byte rates (B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s), and pages/s (4 KiB pages).
//            A bare number is bytes per second.
// Durations: ns, us, ms, s, min, h, d; a bare number is seconds.
// Whitespace between number and unit is allowed; units are case-sensitive where SI needs it
// (mbit/s is rejected: milli-bits are not a rate anyone means). Negative values and values
// that are not finite are errors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm {

inline constexpr std::uint64_t kPageBytes = 4096;

Result<std::uint64_t> parseBytes(std::string_view text);
Result<double> parseRateBytesPerSec(std::string_view text);
Result<TimeNs> parseDurationNs(std::string_view text);

// "4.00 GiB", "512 MiB", "100 B"
std::string formatBytes(double bytes);
// "1.00 Gbit/s"
std::string formatRate(double bytesPerSec);
// "1h 02m 03s", "2.50s", "150ms"
std::string formatDuration(TimeNs ns);

}  // namespace vrm
