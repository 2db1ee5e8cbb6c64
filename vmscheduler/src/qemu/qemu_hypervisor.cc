#include "qemu_hypervisor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "vrm/protocol/units.h"

namespace vrm::vmscheduler {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kQmpTimeout{1000};
constexpr milliseconds kLaunchTimeout{10000};
constexpr TimeNs kPollIntervalNs = 50 * kNsPerMs;
// While a suspend-copy-resume phase may end (save, receive, restore): the agents noticing the
// end of one phase late is downtime.
constexpr TimeNs kFastPollIntervalNs = 10 * kNsPerMs;
constexpr TimeNs kIdlePollIntervalNs = 1 * kNsPerSec;
constexpr TimeNs kResidentIntervalNs = 5 * kNsPerSec;
// What "unlimited" means for max-bandwidth when the host has no NIC figure (QEMU's own default
// is only 32 MiB/s).
constexpr double kUnlimitedBytesPerSec = 100e9;

bool onPath(const std::string& binary) {
  if (binary.find('/') != std::string::npos) return access(binary.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && access((dir + "/" + binary).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// -m in KiB, avoiding multiples of 256 KiB (QEMU 7.2 TCG dirty-bitmap bug, see the header).
std::string qemuMemoryArg(std::uint64_t memoryBytes) {
  std::uint64_t kib = (memoryBytes + 1023) / 1024;
  if (kib % 256 == 0) kib += 8;
  return std::to_string(kib) + "k";
}

std::string describeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

std::string tailOf(const std::string& path, std::size_t bytes = 400) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > bytes) text = text.substr(text.size() - bytes);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

bool fileContains(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.find(needle) != std::string::npos;
}

// Runs a program to completion (short helpers like qemu-img). Returns its output on failure.
Status runProgram(const std::vector<std::string>& argv) {
  int pipeFds[2];
  if (pipe(pipeFds) != 0) return Status::internal("pipe: " + std::string(std::strerror(errno)));
  pid_t pid = fork();
  if (pid < 0) return Status::internal("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    dup2(pipeFds[1], 1);
    dup2(pipeFds[1], 2);
    close(pipeFds[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipeFds[1]);
  std::string output;
  char buf[512];
  ssize_t n;
  while ((n = read(pipeFds[0], buf, sizeof buf)) > 0) output.append(buf, static_cast<size_t>(n));
  close(pipeFds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::ok();
  return Status::internal(argv[0] + " " + describeExit(status) + ": " + output);
}

bool portFree(const std::string& address, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  close(fd);
  return ok;
}

// Parses "tcp:HOST:PORT".
bool parseTcpEndpoint(const std::string& endpoint, std::string& host, int& port) {
  if (endpoint.rfind("tcp:", 0) != 0) return false;
  const auto colon = endpoint.rfind(':');
  if (colon <= 4) return false;
  host = endpoint.substr(4, colon - 4);
  try {
    port = std::stoi(endpoint.substr(colon + 1));
  } catch (...) {
    return false;
  }
  return port > 0 && port < 65536;
}

// A migration endpoint from prepareIncoming(): "tcp:HOST:PORT[;state=tcp:HOST:PORT]".
struct IncomingEndpoint {
  std::string qemu;  // tcp:HOST:PORT, QEMU's own migration stream (live)
  std::string stateHost;
  int statePort = 0;  // 0: the destination takes no staged state
};

bool parseIncomingEndpoint(const std::string& endpoint, IncomingEndpoint& out) {
  const auto semi = endpoint.find(';');
  out.qemu = endpoint.substr(0, semi);
  std::string host;
  int port = 0;
  if (!parseTcpEndpoint(out.qemu, host, port)) return false;
  if (semi == std::string::npos) return true;
  const std::string rest = endpoint.substr(semi + 1);
  if (rest.rfind("state=", 0) != 0) return false;
  return parseTcpEndpoint(rest.substr(6), out.stateHost, out.statePort);
}

// VM ids end up in file names and in a shell command (exec:cat): only plain names are staged.
bool stageableName(const std::string& id) {
  if (id.empty() || id[0] == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// fsync of a staged file (a no-op on tmpfs, the disk write otherwise).
Status syncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::internal("open " + path + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::internal("fsync " + path + ": " + std::strerror(err));
  return Status::ok();
}

double jsonNumber(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

}  // namespace

Result<std::unique_ptr<Hypervisor>> QemuHypervisor::create(const HypervisorOptions& options) {
  const HostSpec& spec = options.host;
  if (spec.name.empty()) return Status::invalid("qemu host needs a name");
  Config config;
  config.runDir = "/tmp/vrm-qemu-" + spec.name;
  config.stageDir = "/dev/shm/vrm-" + spec.name;
  // TCG unless told otherwise: a /dev/kvm that opens is no proof KVM works (on these machines
  // it opens, and guests under it never run).
  config.accel = "tcg";
  auto duration = [](const std::string& key, const std::string& value) -> Result<TimeNs> {
    auto d = parseDurationNs(value);
    if (!d) return Status::invalid("qemu param " + key + ": " + d.status().message());
    if (*d < 0) return Status::invalid("qemu param " + key + " must not be negative");
    return *d;
  };
  for (const auto& [key, value] : options.params) {
    if (key == "binary") {
      config.binary = value;
    } else if (key == "accel") {
      if (value != "tcg" && value != "kvm") {
        return Status::invalid("qemu param accel must be tcg or kvm, got '" + value + "'");
      }
      config.accel = value;
    } else if (key == "run-dir") {
      config.runDir = value;
    } else if (key == "stage-dir" || key == "state-dir") {
      config.stageDir = value;
    } else if (key == "park-dir") {
      config.parkDir = value;
    } else if (key == "migration-address") {
      config.migrationAddress = value;
    } else if (key == "migration-ports") {
      int first = 0, last = 0;
      char dash = 0;
      std::istringstream in(value);
      if (!(in >> first >> dash >> last) || dash != '-' || first <= 0 || last < first ||
          last > 65535) {
        return Status::invalid("qemu param migration-ports must be FIRST-LAST, got '" + value +
                               "'");
      }
      config.firstPort = first;
      config.lastPort = last;
    } else if (key == "boot-timeout") {
      auto d = duration(key, value);
      if (!d) return d.status();
      config.bootTimeoutNs = *d;
    } else if (key == "migration-timeout") {
      auto d = duration(key, value);
      if (!d) return d.status();
      config.migrationTimeoutNs = *d;
    } else if (key == "dirty-rate-interval") {
      auto d = duration(key, value);
      if (!d) return d.status();
      config.dirtyRateIntervalNs = *d;
    } else if (key == "max-rounds") {
      try {
        config.maxRounds = std::stoi(value);
      } catch (...) {
        return Status::invalid("qemu param max-rounds must be a number, got '" + value + "'");
      }
    } else if (key == "initial-template") {
      config.initialTemplate = value;
    } else if (key.rfind("template.", 0) == 0) {
      const auto dot = key.rfind('.');
      const std::string name = key.substr(9, dot > 9 ? dot - 9 : 0);
      const std::string field = key.substr(dot + 1);
      if (name.empty() || dot <= 9) return Status::invalid("qemu param " + key + ": no name");
      Template& t = config.templates[name];
      if (field == "kernel") {
        t.kernel = value;
      } else if (field == "initrd") {
        t.initrd = value;
      } else if (field == "append") {
        t.append = value;
      } else if (field == "image") {
        t.image = value;
      } else if (field == "ready") {
        t.ready = value;
      } else {
        return Status::invalid("unknown qemu template field '" + field + "' in " + key);
      }
    } else {
      return Status::invalid("unknown qemu backend param '" + key + "'");
    }
  }
  for (const auto& [name, t] : config.templates) {
    if (t.kernel.empty() == t.image.empty()) {
      return Status::invalid("qemu template '" + name + "' needs exactly one of kernel or image");
    }
    for (const std::string* path : {&t.kernel, &t.initrd, &t.image}) {
      if (!path->empty() && access(path->c_str(), R_OK) != 0) {
        return Status::invalid("qemu template '" + name + "': cannot read " + *path);
      }
    }
  }
  if (!onPath(config.binary)) {
    return Status::invalid("qemu binary '" + config.binary + "' not found");
  }
  if (config.parkDir.empty()) config.parkDir = config.runDir + "/parked";
  std::error_code ec;
  for (const std::string& dir : {config.runDir, config.stageDir, config.parkDir}) {
    fs::create_directories(dir, ec);
    if (ec) return Status::invalid("cannot create " + dir + ": " + ec.message());
  }
  HostInfo host;
  host.name = spec.name;
  host.cpuCores = spec.cpuCores > 0 ? spec.cpuCores : std::thread::hardware_concurrency();
  host.memoryBytes = spec.memoryBytes > 0 ? spec.memoryBytes
                                          : static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) *
                                                static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  host.nicBandwidthBytesPerSec = spec.nicBandwidthBytesPerSec;
  std::unique_ptr<QemuHypervisor> qemu(new QemuHypervisor(std::move(host), std::move(config)));
  qemu->loadParked();
  if (!spec.vms.empty()) {
    const std::string& tname = qemu->config_.initialTemplate;
    if (tname.empty() || !qemu->config_.templates.count(tname)) {
      return Status::invalid("qemu host '" + spec.name +
                             "' lists VMs: set initial-template to a defined template");
    }
    for (const VmSpec& v : spec.vms) {
      if (qemu->vms_.count(v.id)) continue;  // parked before the agent restarted
      Vm vm;
      vm.info.id = v.id;
      vm.info.cpuCores = std::max<std::uint32_t>(1, v.cpuCores);
      vm.info.memoryBytes = v.memoryBytes;
      vm.info.nonzeroMemoryBytes = v.memoryBytes;
      vm.info.templateName = tname;
      vm.info.allowLive = v.allowLive;
      vm.info.allowSuspend = v.allowSuspend;
      if (Status s = qemu->checkRoom(vm.info.cpuCores, vm.info.memoryBytes); !s) {
        return Status::invalid("initial VM '" + v.id + "': " + s.message());
      }
      if (Status s = qemu->launch(vm); !s) return s;
      qemu->vms_.emplace(v.id, std::move(vm));
    }
  }
  return std::unique_ptr<Hypervisor>(std::move(qemu));
}

QemuHypervisor::~QemuHypervisor() {
  for (auto& [id, op] : ops_) {
    op.sender.reset();  // aborts the copy
    if (!op.statePath.empty()) ::unlink(op.statePath.c_str());
  }
  for (auto& [id, vm] : vms_) kill(vm);
}

std::string QemuHypervisor::migrationEndpoint() const { return "tcp:" + config_.migrationAddress; }

std::vector<VmInfo> QemuHypervisor::inventory() const {
  std::vector<VmInfo> out;
  for (const auto& [id, vm] : vms_) out.push_back(vm.info);
  return out;
}

Status QemuHypervisor::checkRoom(std::uint32_t cores, std::uint64_t memoryBytes) const {
  std::uint64_t usedMemory = 0, usedCores = 0;
  for (const auto& [id, vm] : vms_) {
    if (vm.info.state == VmState::kParked) continue;
    usedMemory += vm.info.memoryBytes;
    usedCores += vm.info.cpuCores;
  }
  const std::uint64_t freeMemory =
      host_.memoryBytes > usedMemory ? host_.memoryBytes - usedMemory : 0;
  const std::uint64_t freeCores = host_.cpuCores > usedCores ? host_.cpuCores - usedCores : 0;
  if (memoryBytes > freeMemory) {
    return Status::rejected("not enough free memory on host '" + host_.name + "': need " +
                            formatBytes(static_cast<double>(memoryBytes)) + ", free " +
                            formatBytes(static_cast<double>(freeMemory)));
  }
  if (cores > freeCores) {
    return Status::rejected("not enough free cpu cores on host '" + host_.name + "': need " +
                            std::to_string(cores) + ", free " + std::to_string(freeCores));
  }
  return Status::ok();
}

Status QemuHypervisor::launch(Vm& vm, const std::string& incoming) {
  auto tit = config_.templates.find(vm.info.templateName);
  if (tit == config_.templates.end()) {
    return Status::invalid("unknown template '" + vm.info.templateName + "' on host '" +
                           host_.name + "'");
  }
  const Template& t = tit->second;
  const std::string base = config_.runDir + "/" + vm.info.id + "." + std::to_string(++launchCount_);
  Process proc;
  proc.qmpPath = base + ".qmp";
  proc.serialPath = base + ".serial";
  proc.logPath = base + ".log";
  ::unlink(proc.qmpPath.c_str());

  std::vector<std::string> args = {config_.binary,
                                   "-accel",
                                   config_.accel,
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
    args.insert(args.end(), {"-append", t.append});
  } else {
    if (vm.diskPath.empty()) vm.diskPath = config_.runDir + "/" + vm.info.id + ".qcow2";
    args.insert(args.end(), {"-drive", "file=" + vm.diskPath + ",if=virtio,format=qcow2"});
  }
  if (!incoming.empty()) args.insert(args.end(), {"-incoming", incoming});

  pid_t pid = fork();
  if (pid < 0) return Status::internal("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);  // keep terminal signals meant for the agent away from its VMs
    int devnull = open("/dev/null", O_RDONLY);
    int log = open(proc.logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (devnull >= 0) dup2(devnull, 0);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
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

void QemuHypervisor::killProcess(Process& proc) {
  proc.qmp.reset();
  if (proc.pid > 0) {
    ::kill(proc.pid, SIGKILL);
    waitpid(proc.pid, nullptr, 0);
    proc.pid = -1;
  }
}

void QemuHypervisor::kill(Vm& vm) {
  vm.receiver.reset();  // aborts a transfer, removes the staged file
  vm.restoring = false;
  killProcess(vm.proc);
}

std::vector<std::string> QemuHypervisor::reap() {
  std::vector<std::string> dead;
  for (auto& [id, vm] : vms_) {
    if (vm.proc.pid <= 0) continue;
    int status = 0;
    if (waitpid(vm.proc.pid, &status, WNOHANG) == vm.proc.pid) {
      exitReasons_[id] = describeExit(status);
      spdlog::warn("qemu: vm {} ({}) {}", id, vmStateName(vm.info.state), describeExit(status));
      vm.proc.pid = -1;
      vm.proc.qmp.reset();
      dead.push_back(id);
    }
  }
  return dead;
}

Result<std::string> QemuHypervisor::prepareIncoming(const VmInfo& info) {
  if (info.id.empty()) return Status::invalid("incoming vm has no id");
  if (info.memoryBytes == 0 || info.cpuCores == 0) {
    return Status::invalid("incoming vm '" + info.id + "' needs positive memory and cpu cores");
  }
  if (vms_.count(info.id)) {
    return Status::rejected("vm id '" + info.id + "' already exists on host '" + host_.name + "'");
  }
  if (Status s = checkRoom(info.cpuCores, info.memoryBytes); !s) return s;
  Vm vm;
  vm.info = info;
  vm.info.state = VmState::kIncoming;
  vm.keepPaused = info.state == VmState::kSuspended;
  if (vm.info.templateName.empty()) vm.info.templateName = config_.initialTemplate;
  auto ours = [&](int p) {
    for (const auto& [id, other] : vms_) {
      if (other.incomingPort == p || (other.receiver && other.receiver->port() == p)) return true;
    }
    return false;
  };
  // One port for QEMU's stream (live), one for a staged state (suspend-copy-resume).
  int port = 0;
  for (int p = config_.firstPort; p <= config_.lastPort && port == 0; ++p) {
    if (!ours(p) && portFree(config_.migrationAddress, p)) port = p;
  }
  if (stageableName(info.id)) {
    const std::string path = config_.stageDir + "/" + info.id + ".incoming.state";
    for (int p = port + 1; p <= config_.lastPort && port != 0 && !vm.receiver; ++p) {
      if (ours(p)) continue;
      auto receiver = StateReceiver::listen(config_.migrationAddress, p, path, info.id,
                                            milliseconds(config_.migrationTimeoutNs / kNsPerMs));
      if (receiver) vm.receiver = std::move(receiver).value();
    }
  }
  if (port == 0 || (!vm.receiver && stageableName(info.id))) {
    return Status::rejected("no free migration ports on host '" + host_.name + "' in " +
                            std::to_string(config_.firstPort) + "-" +
                            std::to_string(config_.lastPort));
  }
  if (Status s = launch(vm, "defer"); !s) {
    vm.receiver.reset();
    return s;
  }
  std::string endpoint = "tcp:" + config_.migrationAddress + ":" + std::to_string(port);
  auto r = vm.proc.qmp->execute("migrate-incoming", {{"uri", endpoint}}, kQmpTimeout);
  if (!r) {
    kill(vm);
    return Status::internal("migrate-incoming on host '" + host_.name +
                            "': " + r.status().message());
  }
  vm.incomingPort = port;
  if (vm.receiver) {
    endpoint +=
        ";state=tcp:" + config_.migrationAddress + ":" + std::to_string(vm.receiver->port());
  }
  vms_.emplace(info.id, std::move(vm));
  return endpoint;
}

Status QemuHypervisor::finishIncoming(const std::string& vmId, bool commit) {
  auto it = vms_.find(vmId);
  if (it == vms_.end()) {
    return Status::notFound("vm '" + vmId + "' is not on host '" + host_.name + "'");
  }
  Vm& vm = it->second;
  if (vm.info.state != VmState::kIncoming || unparking(vmId)) {
    return Status::rejected("vm '" + vmId + "' is not incoming (" +
                            (unparking(vmId) ? "unparking" : vmStateName(vm.info.state)) + ")");
  }
  if (!commit) {
    kill(vm);
    vms_.erase(it);
    return Status::ok();
  }
  if (!vm.proc.qmp) return Status::internal("qemu of incoming vm '" + vmId + "' is gone");
  if (vm.receiver && vm.receiver->phase() != StateReceiver::Phase::kListening &&
      vm.receiver->phase() != StateReceiver::Phase::kFinished) {
    return Status::rejected("incoming vm '" + vmId + "' has not restored its staged state yet");
  }
  // The source reports completion a moment before the destination has loaded the last bytes.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string status;
  for (;;) {
    auto r = vm.proc.qmp->execute("query-status", {}, kQmpTimeout);
    if (!r) return Status::internal("incoming vm '" + vmId + "': " + r.status().message());
    status = r->value("status", "");
    if (status != "inmigrate") break;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::rejected("incoming vm '" + vmId + "' has not received its state yet");
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  if (status != "running" && !vm.keepPaused) {
    if (status != "paused" && status != "prelaunch" && status != "postmigrate") {
      return Status::internal("incoming vm '" + vmId + "' is in state " + status);
    }
    auto r = vm.proc.qmp->execute("cont", {}, kQmpTimeout);
    if (!r) return Status::internal("cont of incoming vm '" + vmId + "': " + r.status().message());
  }
  vm.info.state = vm.keepPaused ? VmState::kSuspended : VmState::kRunning;
  vm.incomingPort = 0;
  vm.receiver.reset();
  vm.nextDirtyRateNs = 0;
  return Status::ok();
}

Status QemuHypervisor::startMigration(OperationId id, const MigrationSpec& spec) {
  auto it = vms_.find(spec.vmId);
  if (it == vms_.end()) {
    return Status::notFound("vm '" + spec.vmId + "' is not on host '" + host_.name + "'");
  }
  Vm& vm = it->second;
  if (vm.info.state != VmState::kRunning && vm.info.state != VmState::kSuspended) {
    return Status::rejected("vm '" + vm.info.id + "' is busy (" + vmStateName(vm.info.state) + ")");
  }
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  if (spec.destinationHost.empty()) return Status::invalid("migration needs a destination host");
  if (spec.destinationHost == host_.name) {
    return Status::invalid("vm '" + spec.vmId + "' cannot migrate to its own host");
  }
  if (spec.maxBandwidthBytesPerSec < 0 || !std::isfinite(spec.maxBandwidthBytesPerSec)) {
    return Status::invalid("max bandwidth must be a finite rate >= 0");
  }
  IncomingEndpoint dest;
  if (!parseIncomingEndpoint(spec.destinationEndpoint, dest)) {
    return Status::invalid("qemu migrates to tcp:HOST:PORT[;state=tcp:HOST:PORT] endpoints, got '" +
                           spec.destinationEndpoint + "'");
  }
  if (spec.mode == MigrationMode::kSuspendCopyResume) {
    if (dest.statePort == 0) {
      return Status::invalid("destination endpoint '" + spec.destinationEndpoint +
                             "' takes no staged state (suspend-copy-resume needs state=tcp:...)");
    }
    if (!stageableName(vm.info.id)) {
      return Status::invalid("vm id '" + vm.info.id +
                             "' cannot name a staged file (letters, digits, - _ . only)");
    }
  }
  if (!vm.proc.qmp) return Status::internal("qemu of vm '" + vm.info.id + "' is gone");
  QmpClient& qmp = *vm.proc.qmp;
  double bandwidth =
      host_.nicBandwidthBytesPerSec > 0 ? host_.nicBandwidthBytesPerSec : kUnlimitedBytesPerSec;
  if (spec.maxBandwidthBytesPerSec > 0)
    bandwidth = std::min(bandwidth, spec.maxBandwidthBytesPerSec);

  Operation op;
  op.vmId = vm.info.id;
  op.spec = spec;
  op.previousState = vm.info.state;
  MigrationObservation& obs = op.observation;
  obs.vmId = vm.info.id;
  obs.fromHost = host_.name;
  obs.toHost = spec.destinationHost;
  obs.mode = spec.mode;
  obs.memoryBytes = vm.info.memoryBytes;
  obs.nonzeroMemoryBytes = vm.info.nonzeroMemoryBytes;
  obs.dirtyRateBytesPerSec = vm.info.dirtyRateBytesPerSec;

  json params = {{"max-bandwidth", static_cast<std::int64_t>(bandwidth)}};
  std::string uri = dest.qemu;
  if (spec.mode == MigrationMode::kLive) {
    op.kind = OpKind::kLive;
    if (spec.downtimeLimitNs > 0) {
      params["downtime-limit"] = std::max<std::int64_t>(1, spec.downtimeLimitNs / kNsPerMs);
    }
  } else {
    op.kind = OpKind::kScrSave;
    // Saving to the local state dir is not the network copy: do not throttle it.
    params["max-bandwidth"] = static_cast<std::int64_t>(kUnlimitedBytesPerSec);
    op.statePath = config_.stageDir + "/" + vm.info.id + ".state";
    ::unlink(op.statePath.c_str());
    uri = "exec:cat > '" + op.statePath + "'";
    op.stoppedAt = std::chrono::steady_clock::now();
    if (vm.info.state == VmState::kRunning) {
      if (auto r = qmp.execute("stop", {}, kQmpTimeout); !r) return r.status();
    }
  }
  auto restore = [&] {
    if (spec.mode != MigrationMode::kLive && op.previousState == VmState::kRunning) {
      (void)qmp.execute("cont", {}, kQmpTimeout);
    }
  };
  if (auto r = qmp.execute("migrate-set-parameters", params, kQmpTimeout); !r) {
    restore();
    return Status::internal("vm '" + vm.info.id + "': " + r.status().message());
  }
  if (auto r = qmp.execute("migrate", {{"uri", uri}}, kQmpTimeout); !r) {
    restore();
    if (!op.statePath.empty()) ::unlink(op.statePath.c_str());
    return Status::internal("vm '" + vm.info.id + "': " + r.status().message());
  }
  op.observation.bandwidthBytesPerSec = bandwidth;
  vm.info.state = VmState::kMigratingOut;
  ops_.emplace(id, std::move(op));
  return Status::ok();
}

Status QemuHypervisor::setMigrationBandwidth(const std::string& vmId, double maxBytesPerSec) {
  if (maxBytesPerSec < 0 || !std::isfinite(maxBytesPerSec)) {
    return Status::invalid("max bandwidth must be a finite rate >= 0");
  }
  auto vit = vms_.find(vmId);
  if (vit == vms_.end()) {
    return Status::notFound("vm '" + vmId + "' is not on host '" + host_.name + "'");
  }
  for (auto& [id, op] : ops_) {
    if (op.vmId != vmId || op.kind == OpKind::kClone) continue;
    op.spec.maxBandwidthBytesPerSec = maxBytesPerSec;
    double bandwidth =
        host_.nicBandwidthBytesPerSec > 0 ? host_.nicBandwidthBytesPerSec : kUnlimitedBytesPerSec;
    if (maxBytesPerSec > 0) bandwidth = std::min(bandwidth, maxBytesPerSec);
    if (op.kind != OpKind::kLive) {
      // Suspend-copy-resume: the save to the local staging dir is not throttled; the copy over
      // the network is paced at this rate (from now on, if it is under way).
      op.observation.bandwidthBytesPerSec = bandwidth;
      if (op.kind == OpKind::kScrCopy && op.sender) {
        op.sender->setBytesPerSec(bandwidth >= kUnlimitedBytesPerSec ? 0 : bandwidth);
      }
      return Status::ok();
    }
    Vm& vm = vit->second;
    if (!vm.proc.qmp) return Status::internal("qemu of vm '" + vmId + "' is gone");
    // QEMU applies max-bandwidth to a migration in progress (the rate limiter of its stream).
    if (auto r = vm.proc.qmp->execute("migrate-set-parameters",
                                      {{"max-bandwidth", static_cast<std::int64_t>(bandwidth)}},
                                      kQmpTimeout);
        !r) {
      return Status::internal("vm '" + vmId + "': " + r.status().message());
    }
    return Status::ok();
  }
  return Status::rejected("vm '" + vmId + "' is not migrating out");
}

Status QemuHypervisor::suspend(const std::string& vmId) {
  auto it = vms_.find(vmId);
  if (it == vms_.end()) {
    return Status::notFound("vm '" + vmId + "' is not on host '" + host_.name + "'");
  }
  Vm& vm = it->second;
  if (vm.info.state == VmState::kSuspended) return Status::ok();
  if (vm.info.state != VmState::kRunning) {
    return Status::rejected("vm '" + vmId + "' is busy (" + vmStateName(vm.info.state) + ")");
  }
  if (!vm.proc.qmp) return Status::internal("qemu of vm '" + vmId + "' is gone");
  if (auto r = vm.proc.qmp->execute("stop", {}, kQmpTimeout); !r) return r.status();
  vm.info.state = VmState::kSuspended;
  return Status::ok();
}

Status QemuHypervisor::resume(const std::string& vmId) {
  auto it = vms_.find(vmId);
  if (it == vms_.end()) {
    return Status::notFound("vm '" + vmId + "' is not on host '" + host_.name + "'");
  }
  Vm& vm = it->second;
  if (vm.info.state == VmState::kRunning) return Status::ok();
  if (vm.info.state != VmState::kSuspended) {
    return Status::rejected("vm '" + vmId + "' is busy (" + vmStateName(vm.info.state) + ")");
  }
  if (!vm.proc.qmp) return Status::internal("qemu of vm '" + vmId + "' is gone");
  if (auto r = vm.proc.qmp->execute("cont", {}, kQmpTimeout); !r) return r.status();
  vm.info.state = VmState::kRunning;
  return Status::ok();
}

Status QemuHypervisor::startClone(OperationId id, const CloneSpec& spec) {
  if (spec.vmId.empty()) return Status::invalid("clone needs a vm id");
  if (spec.memoryBytes == 0 || spec.cpuCores == 0) {
    return Status::invalid("clone '" + spec.vmId + "' needs positive memory and cpu cores");
  }
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  auto tit = config_.templates.find(spec.templateName);
  if (tit == config_.templates.end()) {
    return Status::invalid("unknown template '" + spec.templateName + "' on host '" + host_.name +
                           "'");
  }
  VmHandle handle{spec.vmId, host_.name, "", "root"};
  if (auto it = vms_.find(spec.vmId); it != vms_.end()) {
    const VmInfo& existing = it->second.info;
    const bool sameClone =
        (existing.state == VmState::kRunning || existing.state == VmState::kSuspended) &&
        existing.templateName == spec.templateName && existing.reservationId == spec.reservationId;
    if (!sameClone) {
      return Status::rejected("vm id '" + spec.vmId + "' already exists on host '" + host_.name +
                              "'");
    }
    handle.address = existing.address;
    OperationEvent done;
    done.opId = id;
    done.kind = OperationEvent::Kind::kCompleted;
    done.clone = handle;
    immediate_.push_back(std::move(done));
    return Status::ok();
  }
  if (Status s = checkRoom(spec.cpuCores, spec.memoryBytes); !s) return s;
  Vm vm;
  vm.info.id = spec.vmId;
  vm.info.cpuCores = spec.cpuCores;
  vm.info.memoryBytes = spec.memoryBytes;
  vm.info.nonzeroMemoryBytes = 0;
  vm.info.state = VmState::kCloning;
  vm.info.reservationId = spec.reservationId;
  vm.info.templateName = spec.templateName;
  if (!tit->second.image.empty()) {
    vm.diskPath = config_.runDir + "/" + spec.vmId + ".qcow2";
    ::unlink(vm.diskPath.c_str());
    if (Status s = runProgram({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                               tit->second.image, vm.diskPath});
        !s) {
      return s;
    }
  }
  if (Status s = launch(vm); !s) return s;
  vm.info.address = "unix:" + vm.proc.qmpPath;
  handle.address = vm.info.address;
  Operation op;
  op.kind = OpKind::kClone;
  op.vmId = spec.vmId;
  op.handle = handle;
  vms_.emplace(spec.vmId, std::move(vm));
  ops_.emplace(id, std::move(op));
  return Status::ok();
}

std::string QemuHypervisor::parkDescriptionPath(const std::string& vmId) const {
  return config_.parkDir + "/" + vmId + ".json";
}

bool QemuHypervisor::unparking(const std::string& vmId) const {
  for (const auto& [id, op] : ops_) {
    if (op.vmId == vmId && op.kind == OpKind::kUnpark) return true;
  }
  return false;
}

Status QemuHypervisor::writeParkDescription(const Vm& vm) const {
  const VmInfo& i = vm.info;
  const json d = {{"id", i.id},
                  {"cpu_cores", i.cpuCores},
                  {"memory_bytes", i.memoryBytes},
                  {"nonzero_memory_bytes", i.nonzeroMemoryBytes},
                  {"dirty_rate", i.dirtyRateBytesPerSec},
                  {"disk_bytes", i.diskBytes},
                  {"reservation", i.reservationId},
                  {"address", i.address},
                  {"template", i.templateName},
                  {"allow_live", i.allowLive},
                  {"allow_suspend", i.allowSuspend},
                  {"state_file", i.stateFile},
                  {"disk_path", vm.diskPath}};
  const std::string path = parkDescriptionPath(i.id);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << d.dump() << '\n';
    if (!out.flush()) return Status::internal("cannot write " + tmp);
  }
  if (Status s = syncFile(tmp); !s) return s;
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::internal("cannot replace " + path + ": " + std::strerror(errno));
  }
  return Status::ok();
}

void QemuHypervisor::loadParked() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(config_.parkDir, ec)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    const json d = json::parse(in, nullptr, /*allow_exceptions=*/false);
    Vm vm;
    if (d.is_object()) {
      VmInfo& i = vm.info;
      i.id = d.value("id", "");
      i.cpuCores = d.value("cpu_cores", 1u);
      i.memoryBytes = d.value("memory_bytes", std::uint64_t{0});
      i.nonzeroMemoryBytes = d.value("nonzero_memory_bytes", std::uint64_t{0});
      i.dirtyRateBytesPerSec = d.value("dirty_rate", 0.0);
      i.diskBytes = d.value("disk_bytes", std::uint64_t{0});
      i.reservationId = d.value("reservation", "");
      i.address = d.value("address", "");
      i.templateName = d.value("template", "");
      i.allowLive = d.value("allow_live", true);
      i.allowSuspend = d.value("allow_suspend", true);
      i.stateFile = d.value("state_file", "");
      vm.diskPath = d.value("disk_path", "");
      i.state = VmState::kParked;
    }
    if (!stageableName(vm.info.id) || vm.info.memoryBytes == 0 ||
        access(vm.info.stateFile.c_str(), R_OK) != 0) {
      spdlog::warn("qemu: ignoring parked vm description {} (unreadable, or its state is gone)",
                   entry.path().string());
      continue;
    }
    spdlog::info("qemu: vm {} is parked in {}", vm.info.id, vm.info.stateFile);
    vms_.emplace(vm.info.id, std::move(vm));
  }
}

Status QemuHypervisor::startPark(OperationId id, const std::string& vmId) {
  auto it = vms_.find(vmId);
  if (it == vms_.end()) {
    return Status::notFound("vm '" + vmId + "' is not on host '" + host_.name + "'");
  }
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  Vm& vm = it->second;
  if (vm.info.state == VmState::kParked) {
    immediate_.push_back(completed(id, Status::ok()));  // a retried park
    return Status::ok();
  }
  if (vm.info.state != VmState::kRunning && vm.info.state != VmState::kSuspended) {
    return Status::rejected("vm '" + vmId + "' is busy (" + vmStateName(vm.info.state) + ")");
  }
  if (!stageableName(vmId)) {
    return Status::invalid("vm id '" + vmId +
                           "' cannot name a state file (letters, digits, - _ .)");
  }
  if (!vm.proc.qmp) return Status::internal("qemu of vm '" + vmId + "' is gone");
  QmpClient& qmp = *vm.proc.qmp;
  Operation op;
  op.kind = OpKind::kPark;
  op.vmId = vmId;
  op.previousState = vm.info.state;
  MigrationObservation& obs = op.observation;
  obs.vmId = vmId;
  obs.fromHost = obs.toHost = host_.name;
  obs.mode = MigrationMode::kSuspend;
  obs.memoryBytes = vm.info.memoryBytes;
  obs.nonzeroMemoryBytes = vm.info.nonzeroMemoryBytes;
  obs.dirtyRateBytesPerSec = vm.info.dirtyRateBytesPerSec;
  op.statePath = config_.parkDir + "/" + vmId + ".state";
  ::unlink(op.statePath.c_str());
  op.stoppedAt = std::chrono::steady_clock::now();
  if (vm.info.state == VmState::kRunning) {
    if (auto r = qmp.execute("stop", {}, kQmpTimeout); !r) return r.status();
  }
  auto restore = [&] {
    if (op.previousState == VmState::kRunning) (void)qmp.execute("cont", {}, kQmpTimeout);
    ::unlink(op.statePath.c_str());
  };
  // A local write: unthrottled.
  const json params = {{"max-bandwidth", static_cast<std::int64_t>(kUnlimitedBytesPerSec)}};
  if (auto r = qmp.execute("migrate-set-parameters", params, kQmpTimeout); !r) {
    restore();
    return Status::internal("vm '" + vmId + "': " + r.status().message());
  }
  if (auto r = qmp.execute("migrate", {{"uri", "exec:cat > '" + op.statePath + "'"}}, kQmpTimeout);
      !r) {
    restore();
    return Status::internal("vm '" + vmId + "': " + r.status().message());
  }
  vm.info.state = VmState::kMigratingOut;  // busy until saved
  ops_.emplace(id, std::move(op));
  return Status::ok();
}

Status QemuHypervisor::startUnpark(OperationId id, const std::string& vmId) {
  auto it = vms_.find(vmId);
  if (it == vms_.end()) {
    return Status::notFound("vm '" + vmId + "' is not on host '" + host_.name + "'");
  }
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  Vm& vm = it->second;
  if (vm.info.state != VmState::kParked) {
    if (vm.info.state != VmState::kRunning && vm.info.state != VmState::kSuspended) {
      return Status::rejected("vm '" + vmId + "' is busy (" + vmStateName(vm.info.state) + ")");
    }
    immediate_.push_back(completed(id, Status::ok()));  // running already: a retried unpark
    return Status::ok();
  }
  if (Status s = checkRoom(vm.info.cpuCores, vm.info.memoryBytes); !s) {
    return Status::rejected("cannot unpark vm '" + vmId + "': " + s.message());
  }
  Operation op;
  op.kind = OpKind::kUnpark;
  op.vmId = vmId;
  op.previousState = VmState::kParked;
  MigrationObservation& obs = op.observation;
  obs.vmId = vmId;
  obs.fromHost = obs.toHost = host_.name;
  obs.mode = MigrationMode::kSuspend;
  obs.memoryBytes = vm.info.memoryBytes;
  obs.nonzeroMemoryBytes = vm.info.nonzeroMemoryBytes;
  obs.dirtyRateBytesPerSec = vm.info.dirtyRateBytesPerSec;
  struct stat st {};
  op.stateBytes =
      ::stat(vm.info.stateFile.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  op.stoppedAt = std::chrono::steady_clock::now();
  if (Status s = launch(vm, "exec:cat '" + vm.info.stateFile + "'"); !s) return s;
  vm.info.state = VmState::kIncoming;  // being restored: holds its room
  ops_.emplace(id, std::move(op));
  return Status::ok();
}

Status QemuHypervisor::destroy(const std::string& vmId) {
  auto it = vms_.find(vmId);
  if (it == vms_.end()) {
    return Status::notFound("vm '" + vmId + "' is not on host '" + host_.name + "'");
  }
  if (it->second.info.state == VmState::kMigratingOut) {
    return Status::rejected("vm '" + vmId + "' is busy (migrating-out)");
  }
  if (unparking(vmId)) return Status::rejected("vm '" + vmId + "' is busy (unparking)");
  if (it->second.info.state == VmState::kParked) {
    ::unlink(it->second.info.stateFile.c_str());
    ::unlink(parkDescriptionPath(vmId).c_str());
  }
  for (auto op = ops_.begin(); op != ops_.end(); ++op) {
    if (op->second.vmId != vmId) continue;
    immediate_.push_back(completed(
        op->first, Status::rejected("vm '" + vmId + "' was destroyed before its clone finished")));
    ops_.erase(op);
    break;
  }
  kill(it->second);
  if (!it->second.diskPath.empty()) ::unlink(it->second.diskPath.c_str());
  vms_.erase(it);
  return Status::ok();
}

OperationEvent QemuHypervisor::completed(OperationId id, Status status) {
  OperationEvent e;
  e.opId = id;
  e.kind = OperationEvent::Kind::kCompleted;
  e.status = std::move(status);
  return e;
}

void QemuHypervisor::pollOperation(OperationId id, Operation& op, TimeNs now,
                                   std::vector<OperationEvent>& out, bool& finished) {
  finished = false;
  auto vit = vms_.find(op.vmId);
  if (!op.started) {
    op.started = true;
    op.startNs = now;
    op.observation.startNs = now;
  }
  if (op.kind == OpKind::kUnpark && vit != vms_.end()) {
    Vm& vm = vit->second;
    auto fail = [&](const std::string& why) {
      killProcess(vm.proc);
      vm.info.state = VmState::kParked;  // its state file is untouched: it can be tried again
      out.push_back(completed(id, Status::internal("unpark of vm '" + op.vmId + "' on " +
                                                   host_.name + " failed: " + why)));
      finished = true;
    };
    if (!vm.proc.qmp) {
      fail("qemu " + (exitReasons_.count(op.vmId) ? exitReasons_[op.vmId] : "exited") + "; " +
           tailOf(vm.proc.logPath, 200));
      return;
    }
    auto st = vm.proc.qmp->execute("query-status", {}, kQmpTimeout);
    if (!st) return;  // a dead QEMU is reaped next poll
    const std::string status = st->value("status", "");
    if (status == "inmigrate") {
      if (config_.migrationTimeoutNs > 0 && now - op.startNs > config_.migrationTimeoutNs) {
        fail("restore did not finish in " + formatDuration(config_.migrationTimeoutNs));
      }
      return;
    }
    if (status != "paused" && status != "postmigrate" && status != "prelaunch" &&
        status != "running") {
      fail("restored vm is in state " + status);
      return;
    }
    if (status != "running") {
      if (auto r = vm.proc.qmp->execute("cont", {}, kQmpTimeout); !r) {
        fail(r.status().message());
        return;
      }
    }
    MigrationObservation obs = op.observation;
    obs.restoreNs = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - op.stoppedAt)
                        .count();
    obs.endNs = obs.startNs + obs.restoreNs;
    obs.downtimeNs = obs.restoreNs;
    obs.transferredBytes = op.stateBytes;
    obs.rounds = 1;
    ::unlink(vm.info.stateFile.c_str());
    ::unlink(parkDescriptionPath(op.vmId).c_str());
    vm.info.state = VmState::kRunning;
    vm.info.stateFile.clear();
    vm.nextDirtyRateNs = 0;
    OperationEvent e = completed(id, Status::ok());
    e.migration = obs;
    out.push_back(std::move(e));
    finished = true;
    return;
  }
  if (vit == vms_.end() || !vit->second.proc.qmp) {
    // The QEMU exited (reaped this poll): the VM is gone with it.
    std::string reason = exitReasons_.count(op.vmId) ? exitReasons_[op.vmId] : "is gone";
    op.sender.reset();  // the destination must not restore a VM reported lost
    if (!op.statePath.empty()) ::unlink(op.statePath.c_str());
    out.push_back(completed(id, Status::internal("qemu of vm '" + op.vmId + "' on host '" +
                                                 host_.name + "' " + reason)));
    if (vit != vms_.end()) vms_.erase(vit);
    finished = true;
    return;
  }
  Vm& vm = vit->second;
  QmpClient& qmp = *vm.proc.qmp;
  const TimeNs elapsed = now - op.startNs;

  auto progress = [&](double fraction, std::uint64_t sent, std::uint64_t total,
                      const std::string& phase) {
    const int step = std::clamp(static_cast<int>(fraction * 10), 0, 9);
    if (step <= op.lastStep) return;
    op.lastStep = step;
    OperationEvent e;
    e.opId = id;
    e.kind = OperationEvent::Kind::kProgress;
    e.fraction = fraction;
    e.bytesSent = sent;
    e.bytesTotal = total;
    e.phase = phase;
    out.push_back(std::move(e));
  };
  auto failMigration = [&](Status status) {
    // The VM stays here, as it was before.
    if (op.previousState == VmState::kRunning) {
      auto st = qmp.execute("query-status", {}, kQmpTimeout);
      if (st && st->value("status", "") != "running") (void)qmp.execute("cont", {}, kQmpTimeout);
    }
    vm.info.state = op.previousState;
    op.sender.reset();
    if (!op.statePath.empty()) ::unlink(op.statePath.c_str());
    out.push_back(completed(id, std::move(status)));
    finished = true;
  };

  if (op.kind == OpKind::kClone) {
    const Template& t = config_.templates.at(vm.info.templateName);
    bool ready = false;
    if (!t.ready.empty()) {
      ready = fileContains(vm.proc.serialPath, t.ready);
    } else {
      auto st = qmp.execute("query-status", {}, kQmpTimeout);
      ready = st && st->value("status", "") == "running";
    }
    if (ready) {
      vm.info.state = VmState::kRunning;
      OperationEvent e = completed(id, Status::ok());
      e.clone = op.handle;
      out.push_back(std::move(e));
      finished = true;
      return;
    }
    if (config_.bootTimeoutNs > 0 && elapsed > config_.bootTimeoutNs) {
      const std::string console = tailOf(vm.proc.serialPath, 200);
      kill(vm);
      vms_.erase(vit);
      out.push_back(completed(
          id, Status::internal("vm '" + op.vmId + "' was not ready after " +
                               formatDuration(config_.bootTimeoutNs) + "; console: " + console)));
      finished = true;
      return;
    }
    progress(config_.bootTimeoutNs > 0
                 ? static_cast<double>(elapsed) / static_cast<double>(config_.bootTimeoutNs)
                 : 0,
             0, 0, "clone");
    return;
  }

  if (op.kind == OpKind::kScrCopy) {
    auto outcome = op.sender->outcome();
    if (!outcome) {
      if (op.sender->received()) {
        progress(0.9, op.stateBytes, op.stateBytes, "restore");
      } else {
        const auto sent = op.sender->sentBytes();
        progress(0.1 + 0.8 * static_cast<double>(sent) /
                           std::max(1.0, static_cast<double>(op.stateBytes)),
                 sent, op.stateBytes, "copy");
      }
      return;
    }
    if (!outcome->status) {
      failMigration(Status(outcome->status.code(), "suspend-copy-resume of vm '" + op.vmId +
                                                       "' to " + op.spec.destinationHost + ": " +
                                                       outcome->status.message() +
                                                       "; the vm stays on " + host_.name));
      return;
    }
    MigrationObservation obs = op.observation;
    obs.saveNs = op.saveNs;
    obs.copyNs = outcome->copy.count();
    obs.restoreNs = outcome->restore.count();
    // Stopped from `stop` until the destination restored; the gaps between the phases (the
    // agents noticing the end of one) count too.
    const TimeNs stoppedNs = std::max<TimeNs>(obs.saveNs + obs.copyNs + obs.restoreNs,
                                              std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                  std::chrono::steady_clock::now() - op.stoppedAt)
                                                  .count());
    obs.endNs = obs.startNs + stoppedNs;
    obs.setupNs = obs.saveNs;
    obs.downtimeNs = stoppedNs;
    obs.transferredBytes = op.stateBytes;
    obs.rounds = 1;
    if (obs.copyNs > 0) {
      obs.bandwidthBytesPerSec = static_cast<double>(op.stateBytes) * 1e9 / obs.copyNs;
    }
    op.sender.reset();
    ::unlink(op.statePath.c_str());
    kill(vm);
    vms_.erase(vit);
    OperationEvent e = completed(id, Status::ok());
    e.migration = obs;
    out.push_back(std::move(e));
    finished = true;
    return;
  }

  // kLive and kScrSave: follow QEMU's migration.
  auto q = qmp.execute("query-migrate", {}, kQmpTimeout);
  if (!q) return;  // try again next poll (a dead QEMU is reaped then)
  const std::string status = q->value("status", "");
  const json ram = q->value("ram", json::object());
  if (status == "completed") {
    if (op.kind == OpKind::kPark) {
      if (Status s = syncFile(op.statePath); !s) {
        failMigration(std::move(s));
        return;
      }
      struct stat st {};
      const std::uint64_t bytes =
          ::stat(op.statePath.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
      vm.info.stateFile = op.statePath;
      if (Status s = writeParkDescription(vm); !s) {
        vm.info.stateFile.clear();
        failMigration(std::move(s));
        return;
      }
      MigrationObservation obs = op.observation;
      obs.saveNs = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::steady_clock::now() - op.stoppedAt)
                       .count();
      obs.endNs = obs.startNs + obs.saveNs;
      obs.downtimeNs = obs.saveNs;
      obs.transferredBytes = bytes;
      obs.rounds = 1;
      killProcess(vm.proc);  // frees its memory; the state file and description stay
      vm.info.state = VmState::kParked;
      OperationEvent e = completed(id, Status::ok());
      e.migration = obs;
      out.push_back(std::move(e));
      finished = true;
      return;
    }
    if (op.kind == OpKind::kScrSave) {
      // Save: QEMU's own figure for writing the state, plus making it durable.
      const auto syncStart = std::chrono::steady_clock::now();
      if (Status s = syncFile(op.statePath); !s) {
        failMigration(std::move(s));
        return;
      }
      op.saveNs = static_cast<TimeNs>(jsonNumber(*q, "total-time") * kNsPerMs) +
                  std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now() - syncStart)
                      .count();
      struct stat st {};
      op.stateBytes =
          ::stat(op.statePath.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
      IncomingEndpoint dest;
      parseIncomingEndpoint(op.spec.destinationEndpoint, dest);  // checked by startMigration()
      const double bw = op.observation.bandwidthBytesPerSec >= kUnlimitedBytesPerSec
                            ? 0
                            : op.observation.bandwidthBytesPerSec;
      op.sender = std::make_unique<StateSender>(
          op.statePath, op.stateBytes, dest.stateHost, dest.statePort, op.vmId, bw,
          milliseconds(std::max<TimeNs>(config_.migrationTimeoutNs / kNsPerMs, 1000)));
      op.kind = OpKind::kScrCopy;
      progress(0.1, 0, op.stateBytes, "copy");
      return;
    }
    MigrationObservation obs = op.observation;
    const double totalMs = jsonNumber(*q, "total-time");
    obs.endNs = obs.startNs + static_cast<TimeNs>(totalMs * kNsPerMs);
    obs.setupNs = static_cast<TimeNs>(jsonNumber(*q, "setup-time") * kNsPerMs);
    obs.downtimeNs = static_cast<TimeNs>(jsonNumber(*q, "downtime") * kNsPerMs);
    obs.transferredBytes = static_cast<std::uint64_t>(jsonNumber(ram, "transferred"));
    obs.rounds = static_cast<std::uint32_t>(jsonNumber(ram, "dirty-sync-count"));
    // The dirty rate QEMU saw during the migration; the VM's page-sampling figure otherwise.
    if (op.lastDirtyBytesPerSec > 0) obs.dirtyRateBytesPerSec = op.lastDirtyBytesPerSec;
    const double copyS = (totalMs - jsonNumber(*q, "setup-time")) / 1e3;
    if (copyS > 0) obs.bandwidthBytesPerSec = static_cast<double>(obs.transferredBytes) / copyS;
    kill(vm);
    vms_.erase(vit);
    OperationEvent e = completed(id, Status::ok());
    e.migration = obs;
    out.push_back(std::move(e));
    finished = true;
    return;
  }
  if (status == "failed" || status == "cancelled") {
    if (!op.cancelReason.empty()) {
      failMigration(Status::rejected(op.cancelReason));
    } else {
      failMigration(Status::unavailable("migration of vm '" + op.vmId + "' to " +
                                        op.spec.destinationHost + " " + status + ": " +
                                        q->value("error-desc", std::string("no reason given"))));
    }
    return;
  }
  // setup, active, device, pre-switchover, cancelling, ...
  const double total = jsonNumber(ram, "total");
  const double transferred = jsonNumber(ram, "transferred");
  const double remaining = jsonNumber(ram, "remaining");
  if (const double pages = jsonNumber(ram, "dirty-pages-rate"); pages > 0) {
    const double pageSize = jsonNumber(ram, "page-size");
    op.lastDirtyBytesPerSec = pages * (pageSize > 0 ? pageSize : 4096);
  }
  if (op.kind == OpKind::kLive && op.cancelReason.empty()) {
    const int rounds = static_cast<int>(jsonNumber(ram, "dirty-sync-count"));
    std::string why;
    if (config_.maxRounds > 0 && rounds > config_.maxRounds) {
      why = std::to_string(rounds) + " rounds";
    } else if (config_.migrationTimeoutNs > 0 && elapsed > config_.migrationTimeoutNs) {
      why = formatDuration(elapsed);
    }
    if (!why.empty()) {
      op.cancelReason = "live migration of vm '" + op.vmId + "' did not converge after " + why +
                        " (" + formatBytes(remaining) + " still dirty, dirty rate " +
                        formatBytes(op.lastDirtyBytesPerSec) +
                        "/s): cancelled, the vm keeps running on " + host_.name;
      (void)qmp.execute("migrate_cancel", {}, kQmpTimeout);
      return;
    }
  }
  if (op.kind == OpKind::kLive) {
    const double fraction = total > 0 ? std::min(1.0, (total - remaining) / total) : 0;
    progress(fraction, static_cast<std::uint64_t>(transferred), static_cast<std::uint64_t>(total),
             status == "setup" ? "setup" : "copy");
  } else {
    progress(0, static_cast<std::uint64_t>(transferred), static_cast<std::uint64_t>(total), "save");
  }
}

void QemuHypervisor::pollIncomingState(TimeNs now) {
  std::vector<std::string> lost;
  for (auto& [id, vm] : vms_) {
    if (vm.info.state != VmState::kIncoming || !vm.receiver) continue;
    StateReceiver& receiver = *vm.receiver;
    const StateReceiver::Phase phase = receiver.phase();
    if (phase == StateReceiver::Phase::kFailed) {
      // The source keeps the VM; this one stays incoming until finishIncoming(false).
      spdlog::warn("qemu: staged state of incoming vm {} not received: {}", id, receiver.error());
      vm.receiver.reset();
      continue;
    }
    if (phase == StateReceiver::Phase::kReceived && !vm.restoring) {
      // Restore: a QEMU started with -incoming "exec:cat FILE" replaces the one waiting for a
      // live stream.
      killProcess(vm.proc);
      vm.incomingPort = 0;
      if (Status s = launch(vm, "exec:cat '" + receiver.path() + "'"); !s) {
        receiver.finish(s);
        lost.push_back(id);
        continue;
      }
      vm.restoring = true;
      vm.restoreDeadlineNs =
          config_.migrationTimeoutNs > 0 ? now + config_.migrationTimeoutNs : kTimeInfinity;
    }
    if (!vm.restoring) continue;
    if (!vm.proc.qmp) {
      const std::string reason = exitReasons_.count(id) ? exitReasons_[id] : "exited";
      receiver.finish(
          Status::internal("qemu " + reason + " while restoring; " + tailOf(vm.proc.logPath, 200)));
      lost.push_back(id);
      continue;
    }
    auto st = vm.proc.qmp->execute("query-status", {}, kQmpTimeout);
    if (!st) continue;  // a dead QEMU is reaped next poll
    const std::string status = st->value("status", "");
    if (status == "inmigrate") {
      if (now > vm.restoreDeadlineNs) {
        receiver.finish(Status::internal("restore did not finish in " +
                                         formatDuration(config_.migrationTimeoutNs)));
        lost.push_back(id);
      }
      continue;
    }
    vm.restoring = false;
    if (status == "paused" || status == "postmigrate" || status == "prelaunch" ||
        status == "running") {
      receiver.finish(Status::ok());
    } else {
      receiver.finish(Status::internal("restored vm is in state " + status));
      lost.push_back(id);
    }
  }
  for (const std::string& id : lost) {
    auto it = vms_.find(id);
    spdlog::warn("qemu: restore of incoming vm {} failed; dropped from {}", id, host_.name);
    kill(it->second);
    vms_.erase(it);
  }
}

void QemuHypervisor::pollDirtyRate(Vm& vm, TimeNs now) {
  if (config_.dirtyRateIntervalNs <= 0 || vm.info.state != VmState::kRunning || !vm.proc.qmp) {
    return;
  }
  QmpClient& qmp = *vm.proc.qmp;
  if (!vm.dirtyRatePending) {
    if (now < vm.nextDirtyRateNs) return;
    auto r =
        qmp.execute("calc-dirty-rate", {{"calc-time", 1}, {"mode", "page-sampling"}}, kQmpTimeout);
    vm.nextDirtyRateNs = now + config_.dirtyRateIntervalNs;
    if (r) {
      vm.dirtyRatePending = true;
      vm.dirtyRateDueNs = now + 1100 * kNsPerMs;
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
    // dirty-rate is in MiB/s.
    vm.info.dirtyRateBytesPerSec = jsonNumber(*r, "dirty-rate") * 1024 * 1024;
  }
}

void QemuHypervisor::updateResident(Vm& vm) {
  // Guest RAM is the anonymous mapping of (about) the guest's memory size; its resident size is
  // what a migration has to send (untouched pages are zero and cost almost nothing).
  if (vm.proc.pid <= 0) return;
  std::ifstream smaps("/proc/" + std::to_string(vm.proc.pid) + "/smaps");
  const std::uint64_t ramKib = (vm.info.memoryBytes + 1023) / 1024;
  std::uint64_t bestSize = 0, bestRss = 0, size = 0;
  std::string line;
  while (std::getline(smaps, line)) {
    std::uint64_t kb = 0;
    if (std::sscanf(line.c_str(), "Size: %lu kB", &kb) == 1) {
      size = kb;
    } else if (std::sscanf(line.c_str(), "Rss: %lu kB", &kb) == 1) {
      if (size >= ramKib && size <= ramKib + 4096 && (bestSize == 0 || size < bestSize)) {
        bestSize = size;
        bestRss = kb;
      }
    }
  }
  if (bestSize > 0) vm.info.nonzeroMemoryBytes = std::min(bestRss * 1024, vm.info.memoryBytes);
}

std::vector<OperationEvent> QemuHypervisor::poll(TimeNs now) {
  lastPollNs_ = std::max(lastPollNs_, now);
  std::vector<OperationEvent> events = std::move(immediate_);
  immediate_.clear();
  const std::vector<std::string> dead = reap();
  for (auto it = ops_.begin(); it != ops_.end();) {
    bool finished = false;
    pollOperation(it->first, it->second, now, events, finished);
    it = finished ? ops_.erase(it) : std::next(it);
  }
  pollIncomingState(now);
  // VMs whose QEMU exited with no operation on them leave the inventory too.
  for (const std::string& id : dead) {
    auto it = vms_.find(id);
    if (it != vms_.end() && !it->second.proc.qmp && it->second.info.state != VmState::kParked) {
      if (!it->second.diskPath.empty()) ::unlink(it->second.diskPath.c_str());
      vms_.erase(it);
    }
  }
  for (auto& [id, vm] : vms_) {
    if (vm.info.state == VmState::kRunning) pollDirtyRate(vm, now);
    if (vm.info.state != VmState::kIncoming && now >= vm.nextResidentNs) {
      updateResident(vm);
      vm.nextResidentNs = now + kResidentIntervalNs;
    }
  }
  return events;
}

TimeNs QemuHypervisor::nextEventTime() const {
  if (!immediate_.empty()) return lastPollNs_;
  for (const auto& [id, op] : ops_) {
    if (op.kind == OpKind::kScrSave || op.kind == OpKind::kPark || op.kind == OpKind::kUnpark) {
      return lastPollNs_ + kFastPollIntervalNs;
    }
  }
  for (const auto& [id, vm] : vms_) {
    if (vm.receiver && vm.receiver->phase() != StateReceiver::Phase::kFinished) {
      return lastPollNs_ + kFastPollIntervalNs;
    }
  }
  if (!ops_.empty()) return lastPollNs_ + kPollIntervalNs;
  TimeNs next = kTimeInfinity;
  for (const auto& [id, vm] : vms_) {
    next = std::min(next, lastPollNs_ + kIdlePollIntervalNs);
    if (vm.dirtyRatePending) next = std::min(next, vm.dirtyRateDueNs);
  }
  return next;
}

Result<std::string> QemuHypervisor::consoleLogPath(const std::string& vmId) const {
  auto it = vms_.find(vmId);
  if (it == vms_.end()) return Status::notFound("vm '" + vmId + "' is not on " + host_.name);
  return it->second.proc.serialPath;
}

Result<pid_t> QemuHypervisor::qemuPid(const std::string& vmId) const {
  auto it = vms_.find(vmId);
  if (it == vms_.end() || it->second.proc.pid <= 0) {
    return Status::notFound("vm '" + vmId + "' has no qemu on " + host_.name);
  }
  return it->second.proc.pid;
}

Result<nlohmann::json> QemuHypervisor::qmp(const std::string& vmId, const std::string& command,
                                           const nlohmann::json& arguments) {
  auto it = vms_.find(vmId);
  if (it == vms_.end() || !it->second.proc.qmp) {
    return Status::notFound("vm '" + vmId + "' has no qemu on " + host_.name);
  }
  return it->second.proc.qmp->execute(command, arguments, kQmpTimeout);
}

}  // namespace vrm::vmscheduler
