// "qemu-precopy": QEMU's RAM pre-copy as our qemu backend runs it (not from a seed paper).
//
// Create it with createMigrationModel(kQemuPrecopyModelName, params). With B the migration
// bandwidth (the link goodput, lowered to max_bandwidth_bytes_per_s when that is set - the value
// the agent gives QEMU's max-bandwidth), D the dirty rate and cap the most memory a pass can find
// dirty (min(writable working set, memory) when VmProfile::writableWorkingSetBytes > 0, else
// memory):
//
//   pass 0 (bulk) sends non-zero pages in full and each zero page as a zero_page_bytes marker,
//     taking t_0 = (nonzero + zeroPages * zero_page_bytes) / B;
//   pass k >= 1 sends the pages dirtied during pass k-1: V_k = min(D * t_{k-1}, cap), t_k = V_k/B;
//   after each pass QEMU compares the remaining dirty bytes with B * downtime_limit_s; when they
//     are 0 or below it, the VM is stopped and the rest goes in a "stop-and-copy" pass whose time
//     is the downtime.
// When the dirty set stops shrinking (D >= B, or the working set cap holds it up) the stop test
// can never be met: the passes are followed until the dirty set is at its plateau (or max_passes
// passes have run) and the estimate reports converges = false with the downtime a forced
// switchover at that plateau would cost. Real QEMU would keep iterating; auto-converge CPU
// throttling and postcopy are not modelled.
//
// rounds counts the passes plus the stop-and-copy; phases are "pass 0", "pass 1", ...,
// "stop-and-copy" (and "setup"/"commit" for non-zero link overheads). totalTimeS = pre-overhead
// + all passes + stop-and-copy + post-overhead; downtimeS = stop-and-copy time. extras:
// "bandwidth_bytes_per_s" (B), "threshold_bytes" (B * downtime limit), "final_dirty_bytes".
//
// Parameter keys (defaults):                      vrmctl predict flag
//   downtime_limit_s           0.3   QEMU default --downtime-limit; >= 0
//   max_bandwidth_bytes_per_s  0     0 = use the link goodput; else min(link, this)
//   page_size_bytes            4096  guest page size; > 0
//   zero_page_bytes            9     8-byte page header + 1 fill byte per zero page
//   max_passes                 1000  model guard (whole number >= 1), not a QEMU setting
// The writable working set comes from the profile (vrmctl predict --wws), not a parameter.
#pragma once

#include <string_view>

namespace vrm::planner {

inline constexpr std::string_view kQemuPrecopyModelName = "qemu-precopy";

}  // namespace vrm::planner
