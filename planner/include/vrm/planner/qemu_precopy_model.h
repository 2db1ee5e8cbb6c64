// "qemu-precopy": QEMU 7.2's RAM pre-copy as our qemu backend runs it (not from a seed paper; its
// structure follows QEMU's migration/migration.c and migration/ram.c of that release).
//
// Create it with createMigrationModel(kQemuPrecopyModelName, params). Let B be the migration
// bandwidth (the link goodput, lowered to max_bandwidth_bytes_per_s when that is set: the
// max-bandwidth the agent gives QEMU), D the dirty rate (distinct bytes dirtied per second), M
// the memory size, N the non-zero memory and cap the most memory a round can find dirty
// (min(writable working set, M) when VmProfile::writableWorkingSetBytes > 0, else M). What QEMU
// does, and how the model follows it:
//
//  * The dirty rate: the profile's sample, or - when the profile has a dirty-rate history (the
//    rates QEMU measured in the VM's earlier migrations, oldest first) - Liu's eqs. 12-13 as
//    liu-refined does: the sample blended (weight dirty_rate_phi) with the EWMA (weight
//    dirty_rate_mu) of the history (liu_model.h). An agent's 1 s page-sampling figure is noisy;
//    the rate QEMU saw over a whole migration is not.
//
//  * Setup (setup-time in query-migrate): connect, allocate the dirty bitmap, start dirty logging
//    and the first bitmap sync, which marks all of RAM dirty. setup_s + setup_s_per_gib * M, plus
//    the link's pre-overhead.
//  * Bandwidth accounting: QEMU's rate limiter lets B * window bytes out per window of
//    check_interval_s (BUFFER_DELAY, 100 ms), then sleeps to the window's end. The bandwidth QEMU
//    measures (its mbps) is the bytes of the last window over its length, B when the limiter is
//    what holds the migration back, and the stop threshold is that bandwidth times
//    downtime_limit_s: T = B * downtime_limit_s. (On our hosts QEMU moves 3-7 % more than its
//    max-bandwidth; the calibrator's goodput factor, which scales B and so T, absorbs that.)
//  * Throughput ceiling: the migration thread itself may not reach B (CPU-bound under TCG on a
//    loaded host, or a slow NIC): max_throughput_bytes_per_s, when set, caps B - and with it
//    QEMU's measured bandwidth and threshold - and the stop-and-copy's rate.
//  * Zero pages: a page is sent as page_header_bytes + page_size_bytes, a zero page as
//    zero_page_bytes (an 8-byte header and one fill byte). Bytes count against the rate limit, so
//    a page of the bulk pass costs c0 = (N * (page + header) + (M - N) * zero) / (M * page) bytes
//    per byte of RAM, a re-dirtied page c1 = (page + header) / page.
//  * Dirty-sync rounds: QEMU compares the pages still dirty (in RAM bytes, zero or not) with T at
//    the end of each window and syncs the dirty bitmap only once they are below T (ram.c's
//    ram_save_pending of 7.2); each sync costs bitmap_sync_s_per_gib * M and adds the pages
//    dirtied since the previous sync, min(D * elapsed, cap). A round that starts with p dirty
//    bytes at cost c therefore lasts n = floor((p - T) * c / (B * window)) + 1 windows and leaves
//    r = p - n * B * window / c unsent (r < T; when the pages run out inside the last window the
//    round ends then, r = 0). The next round starts from r plus the new dirty pages.
//  * Stop decision: right after a sync, when the dirty pages are 0 or below T, QEMU stops the VM
//    (migration_completion): the remaining pages go unthrottled, at
//    switchover_bandwidth_bytes_per_s, else what the link carries without max-bandwidth (the
//    larger of its goodput and LinkProfile::lineRateBytesPerSec). Downtime (QEMU's own figure, on
//    the source) = downtime_base_s (stopping the vCPUs, the last bitmap sync, device state) + those
//    bytes at that rate.
//  * No convergence: when a round's dirty set does not shrink (D * c1 >= B, or the cap holds it
//    up) QEMU would iterate for ever (our agent cancels after its max-rounds): the estimate stops
//    at that plateau (or after max_passes rounds) and reports converges = false with the downtime
//    a forced switchover there would cost. Auto-converge, xbzrle, multifd and postcopy are off in
//    our agents and not modelled.
//
// rounds is QEMU's dirty-sync-count: the setup's sync, one per round after the bulk pass, and the
// completion's. phases: "setup", "pass 0" (bulk), "pass 1", ..., "stop-and-copy" (and "commit"
// for a link post-overhead). totalTimeS = setup + all passes + their syncs + downtime (QEMU's
// total-time) + post-overhead; downtimeS = stop-and-copy. extras: "bandwidth_bytes_per_s" (B),
// "threshold_bytes" (T), "final_dirty_bytes" (RAM bytes left for the stop-and-copy),
// "switchover_bytes" (what they cost on the wire), "switchover_bytes_per_s" (their rate),
// "windows" (rate-limit windows of all passes).
//
// Parameter keys (defaults; the timing defaults were measured on the project's 2-core TCG hosts,
// README "Accuracy against real QEMU migrations"):       vrmctl predict flag
//   downtime_limit_s                  0.3     QEMU default      --downtime-limit; >= 0
//   max_bandwidth_bytes_per_s         0       0 = the link goodput; else min(link, this)
//   page_size_bytes                   4096    guest page size; > 0
//   page_header_bytes                 8       per normal page
//   zero_page_bytes                   9       8-byte header + 1 fill byte per zero page
//   check_interval_s                  0.1     QEMU's BUFFER_DELAY; > 0
//   setup_s                           0.05
//   setup_s_per_gib                   0
//   bitmap_sync_s_per_gib             0
//   downtime_base_s                   0.002
//   switchover_bandwidth_bytes_per_s  0       0 = what the link carries unthrottled (its line
//                                             rate: vrmctl predict --line-rate)
//   max_throughput_bytes_per_s        0       0 = none; what the host can send at most
//   dirty_rate_mu                     0.7     eq. 12's EWMA weight (Liu's), in [0, 1]
//   dirty_rate_phi                    0.5     eq. 13's weight of the sample (Liu's), in [0, 1]
//   max_passes                        1000    model guard (whole number >= 1), not a QEMU setting
// The writable working set comes from the profile (vrmctl predict --wws), not a parameter.
#pragma once

#include <string_view>

namespace vrm::planner {

inline constexpr std::string_view kQemuPrecopyModelName = "qemu-precopy";

}  // namespace vrm::planner
