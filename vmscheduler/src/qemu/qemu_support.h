// Small helpers of the qemu backend: processes, files, ports and endpoints. Pure functions or
// thin wrappers over POSIX calls; errors are Status values.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::vmscheduler::qemu {

// Every QMP command's answer is awaited at most this long.
inline constexpr std::chrono::milliseconds kQmpTimeout{1000};
// What "unlimited" means for max-bandwidth when the host has no NIC figure (QEMU's own default
// is only 32 MiB/s).
inline constexpr double kUnlimitedBytesPerSec = 100e9;

// Whether `binary` (a path, or a name looked up on PATH) is executable.
bool onPath(const std::string& binary);
// -m in KiB, avoiding multiples of 256 KiB (QEMU 7.2 TCG dirty-bitmap bug, see qemu_hypervisor.h).
std::string qemuMemoryArg(std::uint64_t memoryBytes);
// "exited with status N", "killed by signal N" for a waitpid() status.
std::string describeExit(int status);
// The last `bytes` of a text file, without trailing newlines ("" when unreadable).
std::string tailOf(const std::string& path, std::size_t bytes = 400);
bool fileContains(const std::string& path, const std::string& needle);
// Runs a short helper (qemu-img) to completion. Errors: internal with its output.
Status runProgram(const std::vector<std::string>& argv);
// Whether a TCP port can be bound on `address` now.
bool portFree(const std::string& address, int port);
// fsync of a file (a no-op on tmpfs, the disk write otherwise). Errors: internal.
Status syncFile(const std::string& path);
// Replaces `path` by `text` atomically: PATH.tmp written, fsync'ed and renamed over it, so a
// reader sees the old text or the new one. Errors: internal naming the file.
Status writeFileAtomically(const std::string& path, const std::string& text);
// Whether files can be made in directory `dir`: one is made and removed (the only test that
// also holds for root and read-only mounts). Errors: unavailable naming the directory and why.
Status checkWritableDir(const std::string& dir);
// Size of a file in bytes, 0 when it cannot be read.
std::uint64_t fileSize(const std::string& path);
// Nanoseconds since `t0` on the steady clock.
TimeNs steadyNsSince(std::chrono::steady_clock::time_point t0);
// VM ids end up in file names and in a shell command (exec:cat): only plain names are staged.
bool stageableName(const std::string& id);
// A number field of a QMP answer, 0 when missing.
double jsonNumber(const nlohmann::json& j, const char* key);

// calc-dirty-rate's sample-pages (pages sampled per GiB) for a guest of `memoryBytes`: about
// 4,096 sampled pages per guest, within QEMU 7.2's [128, 16384] and never below its default 512.
// QEMU's default of 512 per GiB samples 64 pages of a 128 MiB guest, where one changed page reads
// as 2 MiB/s; 4,096 samples hash 16 MiB twice per measurement.
int dirtyRateSamplePagesPerGiB(std::uint64_t memoryBytes);
// The dirty rate a page-sampling measurement stands for, in bytes/s: QEMU reports whole MiB/s,
// rounded down (dirtyrate.c's update_dirtyrate), so a reading k >= 1 is taken as the middle of
// [k, k + 1) MiB/s; 0 stays 0 (an idle guest).
double dirtyRateFromReading(double mibPerSec);

// A migration endpoint from prepareIncoming():
// "tcp:HOST:PORT[;state=tcp:HOST:PORT][;disk=tcp:HOST:PORT]", the optional parts in that order.
struct IncomingEndpoint {
  std::string qemu;  // tcp:HOST:PORT, QEMU's own migration stream (live)
  std::string stateHost;
  int statePort = 0;  // 0: the destination takes no staged state
  // The destination's NBD server exporting the VM's empty data disk (disk-storage=local), which
  // the source mirrors the disk into (disk_mirror.h); 0: the disk is shared, nothing to copy.
  std::string diskHost;
  int diskPort = 0;
};
bool parseIncomingEndpoint(const std::string& endpoint, IncomingEndpoint& out);

}  // namespace vrm::vmscheduler::qemu
