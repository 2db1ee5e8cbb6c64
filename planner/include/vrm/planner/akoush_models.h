// Akoush et al., "Predicting the performance of virtual machine migration" (MASCOTS 2010):
// Xen pre-copy migration bounds and simulations. Create them with createMigrationModel():
//
//   "akoush-bounds"  Equations 3 and 4, the analytic bounds:
//        total   in [pre + post + M/B,  pre + post + (5M - 1 page)/B]
//        down    in [post,              post + M/B]
//      with M = VmProfile::memoryBytes (Xen sends every allocated page, zero or not) and
//      B = LinkProfile::bandwidthBytesPerSec (the migration goodput, not the NIC rate).
//      totalTimeS and downtimeS hold the UPPER bounds (a reservation must cover the worst
//      case); all four are in extras: total_time_min_s, total_time_max_s, downtime_min_s,
//      downtime_max_s. transferredBytes/rounds/phases describe the upper-bound scenario
//      (four pre-copy rounds, the last ending past 3M, then a full stop-and-copy).
//
//   "akoush-avg"     Algorithm 1 (AVG): Xen's pre-copy loop simulated at batch granularity
//      with a constant dirty rate VmProfile::dirtyRateBytesPerSec.
//
//   "akoush-hist"    HIST: the same loop driven by VmProfile::dirtyLog (a page-dirtying log
//      recorded on an earlier run; vrmctl --dirty-log FILE reads it with parseDirtyLog() from
//      dirty_log.h); invalid-argument without one.
//
// Simulation semantics (AVG and HIST), following Algorithm 1 / xc_domain_save.c:
//  * Round 1's to-send set is every page; round k+1's is the pages dirtied during round k.
//  * Before each batch of `batch_pages` pages the dirty bitmap is peeked; a to-send page already
//    re-dirtied in the current round is skipped (it is dirty, so it goes in the next round).
//  * After round k: stop if k >= max_iterations, or total sent > max_factor * memory pages, or
//    (sent + skipped in round k) < stop_pages. The final stop-and-copy round then sends every
//    page dirtied during round k with the VM paused: downtime = that / B + post.
//  * Dirtying model: pages are dirtied at a rate R (pages/s) over a region of W pages
//    (W = writableWorkingSetBytes if > 0, else all memory); the distinct pages dirtied in a
//    window of length t is min(W, R t) for AVG, min(W, log pages in the window) for HIST (the
//    log is linearly interpolated within an interval). Dirtied pages are spread uniformly and
//    independently of the scan order, so a batch meets skipped pages in proportion to the
//    dirtied fraction of the region at the time of the peek. Page counts are expected values
//    (fractional), which is what makes batch granularity exact for this model and fast
//    (a few thousand steps for a 4 GiB VM).
//  * rounds counts every executed round including the final stop-and-copy; phases are
//    "pre-migration", "round 1".."round n", "stop-and-copy", "post-migration".
//  * converges is true when the stop_pages test ended pre-copy; false when Xen forced the stop
//    (max_iterations or max_factor). extras: precopy_bytes, stop_copy_bytes, skipped_pages,
//    and for HIST log_wrapped (1 when the migration outlasted the log, which is then repeated
//    cyclically from its start).
//
// Parameters (ModelParameters keys, all numbers):
//   page_bytes       4096   bytes per page (all three models)
//   stop_pages       50     AVG/HIST: stop when fewer pages were sent+skipped in a round
//   max_iterations   29     AVG/HIST: pre-copy rounds at most
//   max_factor       3      AVG/HIST: stop once more than max_factor * memory was sent
//   batch_pages      1024   AVG/HIST: pages per batch between dirty-bitmap peeks
//   start_offset_s   0      HIST only: where in the log the migration starts
// Errors: invalid-argument for unknown keys, out-of-range values (page_bytes, batch_pages,
// max_iterations, max_factor must be positive; stop_pages, start_offset_s >= 0), impossible
// profiles (validateProfiles), and for HIST a missing or malformed dirty log.
// Thread safety: the models are immutable; estimate() may be called concurrently.
#pragma once

namespace vrm::planner::akoush {

// Model names and parameter keys, for callers that map command-line flags onto them.
inline constexpr const char* kBoundsModel = "akoush-bounds";
inline constexpr const char* kAvgModel = "akoush-avg";
inline constexpr const char* kHistModel = "akoush-hist";

inline constexpr const char* kPageBytes = "page_bytes";
inline constexpr const char* kStopPages = "stop_pages";          // vrmctl --threshold
inline constexpr const char* kMaxIterations = "max_iterations";  // vrmctl --max-rounds
inline constexpr const char* kMaxFactor = "max_factor";
inline constexpr const char* kBatchPages = "batch_pages";
inline constexpr const char* kStartOffsetS = "start_offset_s";

}  // namespace vrm::planner::akoush
