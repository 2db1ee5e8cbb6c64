// "zhao-scr": suspend-copy-resume migration after Zhao & Figueiredo, "Experimental Study of
// Virtual Machine Migration in Support of Reservation of Cluster Resources" (VTDC'07), Section 3.
//
// Create it with createMigrationModel(kZhaoScrModelName, params). The VM is down for the three
// phases (so downtimeS = suspend + copy + resume; totalTimeS adds the link's pre/post overheads),
// rounds = 1, transferredBytes = memoryBytes + diskBytes (the memory state file is copied whole,
// sparse or not - Section 3.2.2 - plus the disk redo logs, Section 3.2.1). With S the state
// size and M the memory size in GiB, B the link goodput in bytes/s:
//
//   suspend = suspend_base_s + suspend_s_per_gib * M + suspend_s_per_modified_gib * modified GiB
//             (Fig. 5: nearly proportional to VmProfile::modifiedMemoryBytes)
//   copy    = copy_base_s + copy_bandwidth_factor * S_bytes / B            (RAM-backed destination)
//           + copy_disk_s_per_gib2 * S^2                 (only when destination_disk = 1, Fig. 3)
//   resume  = resume_time_s + resume_s_per_gib * M                         (nearly constant)
//
// Every phase is linear in its coefficients, so a calibrator can fit them by least squares on
// observed (M, modified, S, S/B, S^2) -> phase time. extras["recovery_time_s"] is the time the
// application needs beyond the migration to regain full speed (Section 3.3.2), chosen by
// VmProfile::workload: "cpu" -> recovery_cpu_s, "memory" -> recovery_memory_s, anything else ->
// recovery_other_s; extras["degradation_time_s"] = downtime + recovery; extras["state_bytes"] = S.
//
// Parameter keys (defaults), all >= 0; see zhao_scr_model.cc for how the defaults follow from the
// paper's 1 GbE / 50 MB/s-disk testbed:
//   destination_disk            0       0 = state lands in RAM (RAMFS, memory-to-memory), 1 = disk
//   suspend_base_s              1.5
//   suspend_s_per_gib           0.5
//   suspend_s_per_modified_gib  21.5    1 GiB written to a 50 MB/s disk
//   copy_base_s                 0
//   copy_bandwidth_factor       1.064   1 / 0.94 TCP+FTP efficiency; must be > 0
//   copy_disk_s_per_gib2        12.3
//   resume_time_s               1.5     constant part of resume (vrmctl predict --resume-time)
//   resume_s_per_gib            0.5
//   recovery_cpu_s              2       the paper's +2 s for a CPU-bound benchmark
//   recovery_memory_s           5       the paper's +5 s for a memory-bound benchmark
//   recovery_other_s            2       web servers: "a few seconds"; unknown workloads
#pragma once

#include <string_view>

namespace vrm::planner {

inline constexpr std::string_view kZhaoScrModelName = "zhao-scr";

}  // namespace vrm::planner
