#include "qemu/qemu_host.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "qemu/guest_network.h"
#include "qemu/qemu_support.h"

namespace vrm::vmscheduler::qemu {

using std::chrono::milliseconds;

namespace {
constexpr milliseconds kLaunchTimeout{10000};
// How long a killed adopted QEMU may take to leave /proc (its parent, init, reaps it).
constexpr milliseconds kAdoptedExitTimeout{5000};

// Whether a process that is not our child is gone: no /proc entry, or a zombie (a parent that
// does not reap, as PID 1 of some containers).
bool processGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return true;
  const char state = text[close + 2];
  return state == 'Z' || state == 'X';
}

std::string commandLineOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
}  // namespace

void setCloneHandle(QemuVm& vm, const VmHandle& handle) {
  vm.cloneHandle = handle;
  vm.info.address = handle.address;
  vm.info.account = handle.account;
  vm.info.sshPort = handle.port;
  vm.info.addressSource = handle.addressSource;
}

Result<QemuProcess> QemuHost::adopt(pid_t pid, const std::string& qmpPath,
                                    std::chrono::milliseconds qmpTimeout) {
  if (pid <= 0 || processGone(pid)) {
    return Status::notFound("qemu pid " + std::to_string(pid) + " has exited");
  }
  if (commandLineOf(pid).find("unix:" + qmpPath + ",") == std::string::npos) {
    return Status::notFound("qemu pid " + std::to_string(pid) +
                            " has exited (the pid now belongs to another process)");
  }
  auto client = QmpClient::connect(qmpPath, qmpTimeout);
  if (!client) {
    return Status::unavailable("qemu pid " + std::to_string(pid) + " does not answer on " +
                               qmpPath + ": " + client.status().message());
  }
  QemuProcess proc;
  proc.pid = pid;
  proc.qmpPath = qmpPath;
  proc.qmp = std::move(*client);
  proc.adopted = true;
  return proc;
}

Status QemuHost::prepareDataDisk(const std::string& path, std::uint64_t bytes, bool incoming,
                                 bool fromMirror) const {
  std::error_code ec;
  if (incoming && !fromMirror) {
    // The source's QEMU writes it until the switch-over: it must be the same file.
    if (!std::filesystem::exists(path, ec)) {
      return Status::invalid("data disk " + path + " is not on host '" + info.name +
                             "': a VM with a data disk moves only between hosts whose disk-dir "
                             "is the same shared storage (disk-dir=" +
                             config.diskDir + ") or to a host with disk-storage=local");
    }
    return Status::ok();
  }
  // O_TRUNC then a size: sparse zeros, whatever a VM of the same id left there.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) {
      ::close(fd);
      ::unlink(path.c_str());
    }
    return Status::unavailable("cannot make data disk " + path + " on host '" + info.name +
                               "' (disk-dir=" + config.diskDir + "): " + why);
  }
  ::close(fd);
  return Status::ok();
}

Status QemuHost::launch(QemuVm& vm, const std::string& incoming) {
  auto tit = config.templates.find(vm.info.templateName);
  if (tit == config.templates.end()) {
    return Status::invalid("unknown template '" + vm.info.templateName + "' on host '" + info.name +
                           "'");
  }
  const QemuTemplate& t = tit->second;
  const std::string base = config.runDir + "/" + vm.info.id + "." + std::to_string(++launchCount_);
  QemuProcess proc;
  proc.qmpPath = base + ".qmp";
  proc.serialPath = base + ".serial";
  proc.logPath = base + ".log";
  ::unlink(proc.qmpPath.c_str());

  std::vector<std::string> args = {config.binary,
                                   "-accel",
                                   config.accel,
                                   "-machine",
                                   "pc",
                                   "-m",
                                   qemuMemoryArg(vm.info.memoryBytes),
                                   "-smp",
                                   std::to_string(vm.info.cpuCores),
                                   "-nodefaults",
                                   "-no-user-config",
                                   "-display",
                                   "none",
                                   "-no-reboot",
                                   "-serial",
                                   "file:" + proc.serialPath,
                                   "-qmp",
                                   "unix:" + proc.qmpPath + ",server=on,wait=off"};
  if (!t.kernel.empty()) {
    args.insert(args.end(), {"-kernel", t.kernel});
    if (!t.initrd.empty()) args.insert(args.end(), {"-initrd", t.initrd});
    args.insert(args.end(), {"-append", t.append + vm.appendExtra});
    if (t.dataDiskBytes > 0) {
      if (vm.diskPath.empty()) vm.diskPath = config.diskDir + "/" + vm.info.id + ".data.raw";
      if (Status s =
              prepareDataDisk(vm.diskPath, t.dataDiskBytes, !incoming.empty(), vm.diskFromMirror);
          !s) {
        return s;
      }
      args.insert(args.end(), {"-drive", "file=" + vm.diskPath + ",if=virtio,format=raw"});
    }
  } else {
    if (vm.diskPath.empty()) vm.diskPath = config.diskDir + "/" + vm.info.id + ".qcow2";
    args.insert(args.end(), {"-drive", "file=" + vm.diskPath + ",if=virtio,format=qcow2"});
  }
  // Every guest of a networked host gets the NIC, incoming ones too: a migration needs the same
  // devices on both sides.
  auto nic = guestNicFor(config, vm.info.id);
  if (!nic) return nic.status();
  args.insert(args.end(), nic->args.begin(), nic->args.end());
  vm.sshForwardPort = nic->forwardPort;
  if (!incoming.empty()) args.insert(args.end(), {"-incoming", incoming});

  pid_t pid = fork();
  if (pid < 0) return Status::internal("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    // A session of its own and no death signal: the guest outlives the agent (a restart or an
    // upgrade of vmschedd re-attaches, vm_state_file.h), and terminal signals meant for the
    // agent do not reach it.
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    int log = open(proc.logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (devnull >= 0) dup2(devnull, 0);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    // Nothing else of the agent's: an inherited QMP connection of another guest would keep that
    // guest's monitor busy after the agent is gone (no new agent could attach), an inherited
    // listening socket would keep the agent's ports from a restarted agent.
    close_range(3, ~0U, 0);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  proc.pid = pid;
  // Connect while watching for an early exit (bad arguments).
  const auto deadline = std::chrono::steady_clock::now() + kLaunchTimeout;
  Status lastError = Status::unavailable("QMP socket did not appear");
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return Status::internal("qemu for vm '" + vm.info.id + "' " + describeExit(status) + ": " +
                              tailOf(proc.logPath));
    }
    auto client = QmpClient::connect(proc.qmpPath, milliseconds(200));
    if (client) {
      proc.qmp = std::move(*client);
      break;
    }
    lastError = client.status();
  }
  if (!proc.qmp) {
    ::kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return Status::internal("qemu for vm '" + vm.info.id + "': " + lastError.message());
  }
  spdlog::debug("qemu: started pid {} for vm {} ({})", pid, vm.info.id,
                incoming.empty() ? "boot" : "incoming " + incoming);
  vm.proc = std::move(proc);
  return Status::ok();
}

void QemuHost::killProcess(QemuProcess& proc) {
  proc.qmp.reset();
  if (proc.pid <= 0) return;
  ::kill(proc.pid, SIGKILL);
  if (proc.adopted) {
    // Not our child (unless this process started it before re-creating its hypervisor): wait
    // until it has left, so its memory and ports are free again.
    const auto deadline = std::chrono::steady_clock::now() + kAdoptedExitTimeout;
    while (!processGone(proc.pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    waitpid(proc.pid, nullptr, WNOHANG);
  } else {
    waitpid(proc.pid, nullptr, 0);
  }
  proc.pid = -1;
}

void QemuHost::kill(QemuVm& vm) {
  vm.receiver.reset();  // aborts a transfer, removes the staged file
  vm.restoring = false;
  killProcess(vm.proc);
}

std::vector<std::string> QemuHost::reap() {
  std::vector<std::string> dead;
  for (auto& [id, vm] : vms) {
    if (vm.proc.pid <= 0) continue;
    int status = 0;
    std::string reason;
    if (vm.proc.adopted) {
      if (!processGone(vm.proc.pid)) continue;
      waitpid(vm.proc.pid, nullptr, WNOHANG);  // in case it is our child after all
      reason = "exited (status unknown: started by an earlier agent)";
    } else if (waitpid(vm.proc.pid, &status, WNOHANG) == vm.proc.pid) {
      reason = describeExit(status);
    } else {
      continue;
    }
    exitReasons_[id] = reason;
    spdlog::warn("qemu: vm {} ({}) {}", id, vmStateName(vm.info.state), reason);
    vm.proc.pid = -1;
    vm.proc.qmp.reset();
    dead.push_back(id);
  }
  return dead;
}

std::string QemuHost::exitReason(const std::string& vmId, const std::string& otherwise) const {
  auto it = exitReasons_.find(vmId);
  return it != exitReasons_.end() ? it->second : otherwise;
}

void QemuHost::pollDirtyRate(QemuVm& vm, TimeNs now) {
  if (config.dirtyRateIntervalNs <= 0 || vm.info.state != VmState::kRunning || !vm.proc.qmp) {
    return;
  }
  QmpClient& qmp = *vm.proc.qmp;
  if (!vm.dirtyRatePending) {
    if (now < vm.nextDirtyRateNs) return;
    // 2 s rather than QEMU's minimum of 1: a guest under TCG on a loaded host dirties in bursts
    // (its vCPU is scheduled in slices), and one second of them read 2.5 or 5.5 MiB/s for a
    // guest that dirtied 3.9 on average.
    constexpr int kCalcTimeS = 2;
    auto r = qmp.execute("calc-dirty-rate",
                         {{"calc-time", kCalcTimeS},
                          {"sample-pages", dirtyRateSamplePagesPerGiB(vm.info.memoryBytes)},
                          {"mode", "page-sampling"}},
                         kQmpTimeout);
    vm.nextDirtyRateNs = now + config.dirtyRateIntervalNs;
    if (r) {
      vm.dirtyRatePending = true;
      vm.dirtyRateDueNs = now + kCalcTimeS * kNsPerSec + 100 * kNsPerMs;
    }
    return;
  }
  if (now < vm.dirtyRateDueNs) return;
  auto r = qmp.execute("query-dirty-rate", {}, kQmpTimeout);
  if (!r) return;
  const std::string status = r->value("status", "");
  if (status == "measuring") {
    vm.dirtyRateDueNs = now + 200 * kNsPerMs;
    return;
  }
  vm.dirtyRatePending = false;
  if (status == "measured") {
    // dirty-rate is in whole MiB/s.
    vm.info.dirtyRateBytesPerSec = dirtyRateFromReading(jsonNumber(*r, "dirty-rate"));
    // The recent samples, for a quantile of the rate (VmRecord::dirtyRateSamplesBytesPerSec).
    constexpr std::size_t kKeptSamples = 8;
    auto& samples = vm.info.dirtyRateSamplesBytesPerSec;
    samples.push_back(vm.info.dirtyRateBytesPerSec);
    if (samples.size() > kKeptSamples) samples.erase(samples.begin());
  }
}

void QemuHost::updateResident(QemuVm& vm) {
  // Guest RAM is the anonymous mapping of (about) the guest's memory size; its resident size is
  // what a migration has to send (untouched pages are zero and cost almost nothing).
  if (vm.proc.pid <= 0) return;
  std::ifstream smaps("/proc/" + std::to_string(vm.proc.pid) + "/smaps");
  const std::uint64_t ramKib = (vm.info.memoryBytes + 1023) / 1024;
  std::uint64_t bestSize = 0, bestRss = 0, size = 0, start = 0, bestStart = 0;
  std::string line;
  while (std::getline(smaps, line)) {
    std::uint64_t kb = 0, from = 0, to = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &from, &to) == 2) {
      start = from;  // a mapping's header line; its Size and Rss follow
    } else if (std::sscanf(line.c_str(), "Size: %lu kB", &kb) == 1) {
      size = kb;
    } else if (std::sscanf(line.c_str(), "Rss: %lu kB", &kb) == 1) {
      if (size >= ramKib && size <= ramKib + 4096 && (bestSize == 0 || size < bestSize)) {
        bestSize = size;
        bestRss = kb;
        bestStart = start;
      }
    }
  }
  if (bestSize == 0) return;
  vm.info.nonzeroMemoryBytes = std::min(bestRss * 1024, vm.info.memoryBytes);
  // The resident size counts the pages the guest zeroed; a sample of the pages counts only the
  // non-zero ones, which is what a migration sends (guest_memory_sampler.h).
  auto sample = vm.memorySampler.sample(vm.proc.pid, bestStart, bestSize * 1024);
  if (sample) {
    vm.info.nonzeroMemoryBytes = std::min(sample->nonzeroBytes, vm.info.memoryBytes);
    if (sample->modifiedBytes)
      vm.info.modifiedMemoryBytes = vm.modifiedMemoryBytes = *sample->modifiedBytes;
  } else if (!vm.memorySamplerWarned) {
    vm.memorySamplerWarned = true;
    spdlog::warn("qemu: vm {}: non-zero memory from the resident size only: {}", vm.info.id,
                 sample.status().message());
  }
  updateUsage(vm);
}

void QemuHost::updateUsage(QemuVm& vm) {
  // The QEMU's CPU time (utime + stime, fields 14 and 15 of /proc/PID/stat, after the command
  // name in parentheses), as a share since the previous call. (The disk's size and write rate
  // are measured by the disk migration's support code, VmInfo::diskDirtyRateBytesPerSec.)
  const auto now = std::chrono::steady_clock::now();
  double cpu = -1;
  {
    std::ifstream stat("/proc/" + std::to_string(vm.proc.pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close != std::string::npos) {
      std::istringstream fields(text.substr(close + 2));
      std::string f;
      unsigned long long utime = 0, stime = 0;
      for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14) utime = std::strtoull(f.c_str(), nullptr, 10);
        if (i == 15) stime = std::strtoull(f.c_str(), nullptr, 10);
      }
      cpu = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  if (vm.usageAt) {
    const double dt = std::chrono::duration<double>(now - *vm.usageAt).count();
    if (dt > 0 && cpu >= 0) {
      vm.info.workload = classifyWorkload(vm.info.dirtyRateBytesPerSec, vm.info.memoryBytes,
                                          std::max(0.0, cpu - vm.cpuSeconds) / dt);
    }
  }
  vm.usageAt = now;
  if (cpu >= 0) vm.cpuSeconds = cpu;
}

}  // namespace vrm::vmscheduler::qemu
