// vrm-qemu-sweep: runs real QEMU migrations between two qemu-backend hosts on loopback and prints
// one CSV row per migration in the planner's observations format (planner/calibration.h), so
// `vrmctl calibrate` and `vrmctl predict` can be checked against measurements
// (examples/validate-qemu.sh).
//
// Each case is FILL_MIB:RATE_PAGES_PER_S:BANDWIDTH_MIB_S:MODE (MODE live or scr), e.g.
// 48:2000:16:live, run --repeat times in a row. Cases with the same fill and rate share one booted
// guest, which migrates back and forth. Suspend-copy-resume stages its state under --stage-dir
// (tmpfs by default; give a directory on disk to measure disk staging).
//
// Columns (one row per migration; the planner's observation columns plus the sweep's own):
//   case, repeat      the case text and the run number within it (from 1)
//   load1             the 1-minute load average when the migration started (/proc/loadavg)
//   memory_bytes ... transferred_bytes     as calibrate reads them; dirty_rate_bytes_per_sec is
//                     what the agent knew before the migration (its page-sampling figure), the
//                     figure vrmd would give the planner
//   qemu_dirty_rate_bytes_per_sec          the observation's dirty rate: QEMU's dirty-pages-rate
//                     during the migration (the agent's sample when QEMU computed none, its
//                     bitmap syncs being less than a second apart); 0 for scr
//   setup_s, rounds   QEMU's setup-time and dirty-sync-count (live)
//   suspend_s, copy_s, resume_s            save, copy and restore of suspend-copy-resume
//   converged         0 for a live migration the agent cancelled because it did not converge
//                     (its total_time_s is the wall-clock time until then), else 1
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "vrm/vmscheduler/hypervisor.h"

namespace {

using namespace vrm;
using namespace vrm::vmscheduler;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
constexpr double kMiB = 1024 * 1024;

struct Case {
  std::string text;
  int fillMib = 0;
  int ratePages = 0;
  double bandwidthMibS = 0;
  bool live = true;
  int run = 1;
};

std::optional<OperationEvent> waitFor(OperationId op, Hypervisor& a, Hypervisor& b,
                                      std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    for (Hypervisor* hv : {&a, &b}) {
      for (OperationEvent& e : hv->poll(SystemClock().now())) {
        if (e.opId == op && e.kind == OperationEvent::Kind::kCompleted) return e;
      }
    }
    // Short: the end of each suspend-copy-resume phase is noticed at a poll.
    std::this_thread::sleep_for(10ms);
  }
  return std::nullopt;
}

double loadAverage1() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  in >> load;
  return load;
}

std::optional<VmInfo> find(Hypervisor& hv, const std::string& id) {
  for (const VmInfo& vm : hv.inventory()) {
    if (vm.id == id) return vm;
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vrm-qemu-sweep: real QEMU migrations on loopback, as an observations CSV"};
  std::string guestDir;
  std::string workDir = (fs::temp_directory_path() / "vrm-qemu-sweep").string();
  std::vector<std::string> caseTexts;
  int memoryMib = 128;
  int repeat = 1;
  double downtimeMs = 300;
  std::string stageRoot = "/dev/shm";
  app.add_option("--guest", guestDir, "dir with vmlinuz and initrd.img (build-guest.sh)")
      ->required();
  app.add_option("--work", workDir, "scratch dir for the two hosts")->capture_default_str();
  app.add_option("--memory", memoryMib, "guest memory, MiB")->capture_default_str();
  app.add_option("--repeat", repeat, "runs of each case")->check(CLI::Range(1, 100));
  app.add_option("--downtime-ms", downtimeMs, "live downtime limit")->capture_default_str();
  app.add_option("--stage-dir", stageRoot, "where suspend-copy-resume stages state (tmpfs or disk)")
      ->capture_default_str();
  app.add_option("cases", caseTexts, "FILL_MIB:RATE:BANDWIDTH_MIB_S:live|scr")->required();
  CLI11_PARSE(app, argc, argv);
  // Logs go to stderr: stdout is the CSV.
  spdlog::set_default_logger(spdlog::stderr_color_mt("vrm-qemu-sweep"));
  spdlog::set_level(spdlog::level::warn);

  std::map<std::pair<int, int>, std::vector<Case>> groups;
  for (const std::string& text : caseTexts) {
    Case c;
    c.text = text;
    char s1, s2, s3;
    std::string mode;
    std::istringstream in(text);
    if (!(in >> c.fillMib >> s1 >> c.ratePages >> s2 >> c.bandwidthMibS >> s3) || s1 != ':' ||
        s2 != ':' || s3 != ':' || !(in >> mode) || (mode != "live" && mode != "scr")) {
      std::fprintf(stderr, "vrm-qemu-sweep: bad case '%s'\n", text.c_str());
      return 2;
    }
    c.live = mode == "live";
    for (int r = 1; r <= repeat; ++r) {
      c.run = r;
      groups[{c.fillMib, c.ratePages}].push_back(c);
    }
  }

  std::unique_ptr<Hypervisor> hosts[2];
  std::vector<std::string> stateDirs;
  for (int i = 0; i < 2; ++i) {
    HypervisorOptions o;
    o.host.name = "sweep" + std::to_string(i + 1);
    o.host.cpuCores = 4;
    o.host.memoryBytes = 8ull << 30;
    o.params = {
        {"run-dir", workDir + "/" + o.host.name + "/run"},
        {"stage-dir", stageRoot + "/vrm-sweep-" + std::to_string(getpid()) + "-" + o.host.name},
        {"dirty-rate-interval", "2s"},
        {"max-rounds", "40"},
        {"migration-timeout", "120s"}};
    stateDirs.push_back(o.params["stage-dir"]);
    for (const auto& [key, cases] : groups) {
      const std::string t =
          "template.g" + std::to_string(key.first) + "r" + std::to_string(key.second);
      o.params[t + ".kernel"] = guestDir + "/vmlinuz";
      o.params[t + ".initrd"] = guestDir + "/initrd.img";
      o.params[t + ".append"] =
          "console=ttyS0 quiet panic=-1 no_timer_check memtouch.mb=" + std::to_string(key.first) +
          " memtouch.rate=" + std::to_string(key.second) + " memtouch.verify=0";
      o.params[t + ".ready"] = "memtouch: ready";
    }
    auto hv = Hypervisor::create("qemu", o);
    if (!hv) {
      std::fprintf(stderr, "vrm-qemu-sweep: %s\n", hv.status().toString().c_str());
      return 1;
    }
    hosts[i] = std::move(hv).value();
  }

  std::printf(
      "case,repeat,load1,memory_bytes,nonzero_memory_bytes,dirty_rate_bytes_per_sec,mode,"
      "bandwidth_bytes_per_sec,total_time_s,downtime_s,transferred_bytes,"
      "qemu_dirty_rate_bytes_per_sec,setup_s,rounds,suspend_s,copy_s,resume_s,converged\n");
  OperationId op = 1;
  int failures = 0;
  for (const auto& [key, cases] : groups) {
    const std::string id = "g" + std::to_string(key.first) + "r" + std::to_string(key.second);
    CloneSpec clone;
    clone.vmId = id;
    clone.templateName = id;
    clone.memoryBytes = static_cast<std::uint64_t>(memoryMib) << 20;
    // Under TCG on a loaded host a boot can fail (a timer check, a timeout): try once more.
    std::optional<OperationEvent> booted;
    for (int attempt = 0; attempt < 2 && !(booted && booted->status); ++attempt) {
      if (Status s = hosts[0]->startClone(op, clone); !s) {
        std::fprintf(stderr, "vrm-qemu-sweep: clone %s: %s\n", id.c_str(), s.toString().c_str());
        return 1;
      }
      booted = waitFor(op++, *hosts[0], *hosts[1], 300s);
    }
    if (!booted || !booted->status) {
      std::fprintf(stderr, "vrm-qemu-sweep: boot of %s failed: %s\n", id.c_str(),
                   booted ? booted->status.toString().c_str() : "timed out");
      return 1;
    }
    int at = 0;
    for (const Case& c : cases) {
      // Let the dirty-rate and resident-memory figures settle on the current host.
      for (auto until = std::chrono::steady_clock::now() + 5500ms;
           std::chrono::steady_clock::now() < until;) {
        hosts[0]->poll(SystemClock().now());
        hosts[1]->poll(SystemClock().now());
        std::this_thread::sleep_for(50ms);
      }
      Hypervisor& from = *hosts[at];
      Hypervisor& to = *hosts[1 - at];
      VmInfo vm = *find(from, id);
      const double load = loadAverage1();
      auto endpoint = to.prepareIncoming(vm);
      if (!endpoint) {
        std::fprintf(stderr, "vrm-qemu-sweep: %s\n", endpoint.status().toString().c_str());
        return 1;
      }
      MigrationSpec spec;
      spec.vmId = id;
      spec.destinationHost = to.hostInfo().name;
      spec.destinationEndpoint = *endpoint;
      spec.mode = c.live ? MigrationMode::kLive : MigrationMode::kSuspendCopyResume;
      spec.maxBandwidthBytesPerSec = c.bandwidthMibS * kMiB;
      spec.downtimeLimitNs = static_cast<TimeNs>(downtimeMs * 1e6);
      if (Status s = from.startMigration(op, spec); !s) {
        std::fprintf(stderr, "vrm-qemu-sweep: %s\n", s.toString().c_str());
        return 1;
      }
      const auto started = std::chrono::steady_clock::now();
      auto done = waitFor(op++, from, to, 300s);
      if (!done || !done->status || !done->migration) {
        const std::string why = done ? done->status.toString() : "timed out";
        std::fprintf(stderr, "vrm-qemu-sweep: %s %d:%d:%g:%s failed: %s\n", id.c_str(), c.fillMib,
                     c.ratePages, c.bandwidthMibS, c.live ? "live" : "scr", why.c_str());
        (void)to.finishIncoming(id, false);
        if (c.live && why.find("did not converge") != std::string::npos) {
          // A row for the convergence check: the agent gave up; the time is the wall clock.
          const double wall =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
          std::printf("%s,%d,%.2f,%llu,%llu,%.0f,live,%.0f,%.4f,,,,,,,,,0\n", c.text.c_str(), c.run,
                      load, static_cast<unsigned long long>(vm.memoryBytes),
                      static_cast<unsigned long long>(vm.nonzeroMemoryBytes),
                      vm.dirtyRateBytesPerSec, spec.maxBandwidthBytesPerSec, wall);
          std::fflush(stdout);
        } else {
          ++failures;
        }
        continue;
      }
      if (Status s = to.finishIncoming(id, true); !s) {
        std::fprintf(stderr, "vrm-qemu-sweep: finish: %s\n", s.toString().c_str());
        return 1;
      }
      const MigrationObservation& o = *done->migration;
      auto seconds = [](TimeNs ns) { return static_cast<double>(ns) / 1e9; };
      std::printf("%s,%d,%.2f,%llu,%llu,%.0f,%s,%.0f,%.4f,%.4f,%llu,%.0f,", c.text.c_str(), c.run,
                  load, static_cast<unsigned long long>(o.memoryBytes),
                  static_cast<unsigned long long>(o.nonzeroMemoryBytes), vm.dirtyRateBytesPerSec,
                  c.live ? "live" : "scr", spec.maxBandwidthBytesPerSec,
                  seconds(o.endNs - o.startNs), seconds(o.downtimeNs),
                  static_cast<unsigned long long>(o.transferredBytes),
                  c.live ? o.dirtyRateBytesPerSec : 0.0);
      if (c.live) {
        std::printf("%.4f,%u,,,,1\n", seconds(o.setupNs), o.rounds);
      } else {
        std::printf(",,%.4f,%.4f,%.4f,1\n", seconds(o.saveNs), seconds(o.copyNs),
                    seconds(o.restoreNs));
      }
      std::fflush(stdout);
      at = 1 - at;
    }
    for (auto& hv : hosts) {
      if (find(*hv, id)) (void)hv->destroy(id);
    }
  }
  for (auto& hv : hosts) hv.reset();
  std::error_code ec;
  for (const std::string& dir : stateDirs) fs::remove_all(dir, ec);
  return failures == 0 ? 0 : 3;
}
