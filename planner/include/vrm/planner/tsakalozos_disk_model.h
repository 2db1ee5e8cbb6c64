// Tsakalozos et al., "Time-constrained live VM migration in share-nothing IaaS-clouds"
// (IEEE CLOUD 2012): model "tsakalozos-disk", Expression 1 for a local disk synchronised before
// the hypervisor moves memory:
//
//     Disk_size / (Net_Rate - Dirty_Rate) + VMM_time <= finish_time          (Expression 1)
//
// with Disk_size = VmProfile::diskBytes, Net_Rate = LinkProfile::bandwidthBytesPerSec,
// Dirty_Rate = VmProfile::diskDirtyRateBytesPerSec, VMM_time = vmm_time_s, finish_time =
// deadline_s (seconds from the start of the migration).
// (vrmctl --disk-size and --disk-dirty-rate fill the two VmProfile fields; --vmm-time and
// --deadline the parameters below.)
//
// Estimate:
//   extras["sync_time_s"] = Disk_size / (Net_Rate - Dirty_Rate)   (phases 1 + 2 of MigrateFS;
//       0 when diskBytes == 0, i.e. shared storage); phases "pre-migration", "disk copy"
//       (phase 1: Disk_size / Net_Rate), "disk dirty sync" (phase 2: the rest of sync_time_s),
//       "vmm migration" (phase 3: vmm_time_s, disks mirrored while the hypervisor moves RAM),
//       "post-migration".
//   totalTimeS = pre + sync_time_s + vmm_time_s + post. The link's overheads are not in the
//       paper; they are counted as part of the time the hypervisor needs, so with zero overheads
//       feasibility is exactly Expression 1.
//   feasible = (no deadline) or totalTimeS <= deadline_s.
//   downtimeS = post overhead: the memory migration's own downtime is inside vmm_time_s and is
//       not modelled here.
//   transferredBytes = disk bytes only: Net_Rate * sync_time_s (the first pass plus re-sent
//       dirty blocks) + Dirty_Rate * vmm_time_s (writes mirrored during phase 3).
//   rounds = 1 (single pass) when Dirty_Rate == 0, else 2 (pass + dirty-block sync).
//   extras also hold vmm_time_s and, with a deadline, deadline_s, slack_s = deadline_s -
//   totalTimeS and deadline_ratio = deadline_s / totalTimeS (Alg. 1's timetodeadline/timeleft).
//   When Dirty_Rate >= Net_Rate and the disk is not empty the sync never finishes: converges =
//   false, feasible = false, totalTimeS = transferredBytes = +infinity and sync_time_s is
//   absent from extras (callers printing JSON must check converges first).
//
// Parameters:
//   deadline_s   0   finish_time in seconds from the start; 0 means NO deadline (always
//                    feasible when the sync converges). ModelParameters values must be finite,
//                    so "infinite" is spelled 0; a negative deadline is invalid-argument.
//   vmm_time_s   0   time the hypervisor needs after the disks are in sync (>= 0)
// Errors: invalid-argument for unknown keys, negative values, impossible profiles.
// Thread safety: immutable; estimate() may be called concurrently.
#pragma once

namespace vrm::planner::tsakalozos {

inline constexpr const char* kDiskModel = "tsakalozos-disk";
inline constexpr const char* kDeadlineS = "deadline_s";  // vrmctl --deadline
inline constexpr const char* kVmmTimeS = "vmm_time_s";   // vrmctl --vmm-time

}  // namespace vrm::planner::tsakalozos
