#include "sim_hypervisor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <stdexcept>

#include "backend/operation_support.h"
#include "backend/params.h"
#include "sim_ground_truth.h"
#include "vrm/protocol/units.h"

namespace vrm::vmscheduler {
namespace {

// ceil(a / b) for non-negative a and positive b.
TimeNs ceilDiv(TimeNs a, TimeNs b) { return (a + b - 1) / b; }

}  // namespace

Result<std::unique_ptr<Hypervisor>> SimHypervisor::create(const HypervisorOptions& options) {
  const HostSpec& spec = options.host;
  backend::BackendParams params("sim", options.params);
  auto groundTruth = params.takeChoice("ground-truth", {"precopy", "rule"});
  if (!groundTruth) return groundTruth.status();
  const bool rule = *groundTruth == "rule";
  auto seedParam = params.takeUnsigned("seed");
  if (!seedParam) return seedParam.status();
  const std::uint64_t seed = seedParam->value_or(1);
  auto diskRateParam = params.takePositiveNumber("disk-rate");
  if (!diskRateParam) return diskRateParam.status();
  const double diskRate = diskRateParam->value_or(200e6);
  auto stateFileParam = params.takeNonEmpty("state-file");
  if (!stateFileParam) return stateFileParam.status();
  const std::string stateFile = stateFileParam->value_or("");
  if (Status s = params.finish(); !s) return s;
  if (spec.name.empty()) return Status::invalid("sim host needs a name");
  if (spec.cpuCores == 0 || spec.memoryBytes == 0 || !(spec.nicBandwidthBytesPerSec > 0)) {
    return Status::invalid("sim host '" + spec.name +
                           "' needs positive cpu cores, memory and NIC bandwidth");
  }
  HostInfo host{spec.name, spec.cpuCores, spec.memoryBytes, spec.nicBandwidthBytesPerSec};
  std::unique_ptr<SimHypervisor> sim(new SimHypervisor(std::move(host), rule, seed, diskRate));
  for (const VmSpec& v : spec.vms) {
    VmInfo vm;
    vm.id = v.id;
    vm.cpuCores = v.cpuCores;
    vm.memoryBytes = v.memoryBytes;
    vm.nonzeroMemoryBytes = std::min(v.nonzeroMemoryBytes, v.memoryBytes);
    vm.dirtyRateBytesPerSec = v.dirtyRateBytesPerSec;
    vm.diskBytes = v.diskBytes;
    vm.allowLive = v.allowLive;
    vm.allowSuspend = v.allowSuspend;
    vm.state = VmState::kRunning;
    vm.address = v.id + "." + spec.name + ".sim";
    if (vm.id.empty()) return Status::invalid("sim host '" + spec.name + "' has a VM without id");
    if (sim->vms_.contains(vm.id)) {
      return Status::invalid("sim host '" + spec.name + "' lists VM '" + vm.id + "' twice");
    }
    if (Status s = sim->vms_.checkRoom(sim->host_, vm.cpuCores, vm.memoryBytes); !s) {
      return Status::invalid("initial VM '" + vm.id + "': " + s.message());
    }
    sim->vms_.add(std::move(vm));
  }
  sim->stateFile_ = stateFile;
  if (!stateFile.empty()) {
    if (Status s = sim->loadState(); !s) return s;
    sim->saveState();
  }
  return std::unique_ptr<Hypervisor>(std::move(sim));
}

// One line per VM, tab-separated: id, cores, memory, non-zero memory, dirty rate, disk, state
// (VmState's number), reservation, address, template. Ids and addresses have no tabs.
Status SimHypervisor::loadState() {
  std::ifstream in(stateFile_);
  if (!in) return Status::ok();  // first start: the cluster file's VMs
  backend::VmTable<VmInfo> vms(host_.name);
  std::string line;
  int lineNo = 0;
  while (std::getline(in, line)) {
    ++lineNo;
    std::vector<std::string> f;
    std::size_t from = 0;
    for (std::size_t tab; (tab = line.find('\t', from)) != std::string::npos; from = tab + 1) {
      f.push_back(line.substr(from, tab - from));
    }
    f.push_back(line.substr(from));
    VmInfo vm;
    try {
      if (f.size() != 10) throw std::invalid_argument("fields");
      vm.id = f[0];
      vm.cpuCores = static_cast<std::uint32_t>(std::stoul(f[1]));
      vm.memoryBytes = std::stoull(f[2]);
      vm.nonzeroMemoryBytes = std::stoull(f[3]);
      vm.dirtyRateBytesPerSec = std::stod(f[4]);
      vm.diskBytes = std::stoull(f[5]);
      const int state = std::stoi(f[6]);
      if (state < 0 || state > static_cast<int>(VmState::kParked)) throw std::out_of_range("st");
      vm.state = static_cast<VmState>(state);
      if (vm.state == VmState::kParked) vm.stateFile = parkFile(vm.id);
      vm.reservationId = f[7];
      vm.address = f[8];
      vm.templateName = f[9];
    } catch (const std::exception&) {
      return Status::invalid("sim state file " + stateFile_ + ":" + std::to_string(lineNo) +
                             ": malformed line");
    }
    vms.add(std::move(vm));
  }
  vms_ = std::move(vms);
  return Status::ok();
}

void SimHypervisor::saveState() const {
  if (stateFile_.empty()) return;
  const std::string tmp = stateFile_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [id, vm] : vms_) {
      // What outlives the agent: an operation in flight dies with it.
      if (vm.state == VmState::kCloning) continue;
      VmState state = vm.state == VmState::kMigratingOut ? VmState::kRunning : vm.state;
      if (const Operation* op = operationOn(id); op && op->local == Operation::Local::kUnpark) {
        state = VmState::kParked;  // its restore dies with the agent; the state file remains
      }
      out << vm.id << '\t' << vm.cpuCores << '\t' << vm.memoryBytes << '\t' << vm.nonzeroMemoryBytes
          << '\t' << vm.dirtyRateBytesPerSec << '\t' << vm.diskBytes << '\t'
          << static_cast<int>(state) << '\t' << vm.reservationId << '\t' << vm.address << '\t'
          << vm.templateName << '\n';
    }
    if (!out.flush()) {
      std::fprintf(stderr, "sim: cannot write %s\n", tmp.c_str());
      return;
    }
  }
  if (std::rename(tmp.c_str(), stateFile_.c_str()) != 0) {
    std::fprintf(stderr, "sim: cannot replace %s\n", stateFile_.c_str());
  }
}

std::string SimHypervisor::migrationEndpoint() const { return "sim://" + host_.name; }

std::vector<VmInfo> SimHypervisor::inventory() const { return vms_.inventory(); }

const SimHypervisor::Operation* SimHypervisor::operationOn(const std::string& vmId) const {
  for (const auto& [id, op] : ops_) {
    if (op.vmId == vmId) return &op;
  }
  return nullptr;
}

std::string SimHypervisor::parkFile(const std::string& vmId) const {
  return "sim://" + host_.name + "/park/" + vmId;
}

Status SimHypervisor::checkIdle(const VmInfo& vm) const {
  if (const Operation* op = operationOn(vm.id); op && op->local != Operation::Local::kNone) {
    return backend::busy(vm.id, op->local == Operation::Local::kPark ? "parking" : "unparking");
  }
  if (vm.state == VmState::kRunning || vm.state == VmState::kSuspended) return Status::ok();
  return backend::busy(vm);
}

Result<std::string> SimHypervisor::prepareIncoming(const VmInfo& vm) {
  StateSaver saver(*this);
  if (vm.id.empty()) return Status::invalid("incoming vm has no id");
  if (vm.memoryBytes == 0 || vm.cpuCores == 0) {
    return Status::invalid("incoming vm '" + vm.id + "' needs positive memory and cpu cores");
  }
  if (Status s = vms_.checkAbsent(vm.id); !s) return s;
  if (Status s = vms_.checkRoom(host_, vm.cpuCores, vm.memoryBytes); !s) return s;
  VmInfo incoming = vm;
  incoming.state = VmState::kIncoming;
  incoming.nonzeroMemoryBytes = std::min(vm.nonzeroMemoryBytes, vm.memoryBytes);
  vms_.add(std::move(incoming));
  return migrationEndpoint() + "/" + vm.id;
}

Status SimHypervisor::finishIncoming(const std::string& vmId, bool commit) {
  StateSaver saver(*this);
  VmInfo* vm = vms_.find(vmId);
  if (!vm) return vms_.missing(vmId);
  if (vm->state != VmState::kIncoming || operationOn(vmId)) {
    return Status::rejected("vm '" + vmId + "' is not incoming (" + vmStateName(vm->state) +
                            (operationOn(vmId) ? ", unparking" : "") + ")");
  }
  if (commit) {
    vm->state = VmState::kRunning;
  } else {
    vms_.erase(vmId);
  }
  return Status::ok();
}

Status SimHypervisor::startMigration(OperationId id, const MigrationSpec& spec) {
  StateSaver saver(*this);
  VmInfo* found = vms_.find(spec.vmId);
  if (!found) return vms_.missing(spec.vmId);
  VmInfo& vm = *found;
  if (Status s = checkIdle(vm); !s) return s;
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  if (spec.destinationHost.empty()) return Status::invalid("migration needs a destination host");
  if (spec.destinationHost == host_.name) {
    return Status::invalid("vm '" + spec.vmId + "' cannot migrate to its own host");
  }
  if (spec.maxBandwidthBytesPerSec < 0 || !std::isfinite(spec.maxBandwidthBytesPerSec)) {
    return Status::invalid("max bandwidth must be a finite rate >= 0");
  }
  double bandwidth = host_.nicBandwidthBytesPerSec;
  if (spec.maxBandwidthBytesPerSec > 0)
    bandwidth = std::min(bandwidth, spec.maxBandwidthBytesPerSec);

  const bool live = spec.mode == MigrationMode::kLive;
  // A suspended VM dirties nothing while it is copied.
  const double dirtyRate = vm.state == VmState::kSuspended ? 0.0 : vm.dirtyRateBytesPerSec;
  Operation op;
  op.isMigration = true;
  op.vmId = vm.id;
  op.observation = backend::observationOf(vm, host_.name, spec.destinationHost, spec.mode);

  sim::GroundTruthInput in;
  in.mode = spec.mode;
  in.memoryBytes = static_cast<double>(vm.memoryBytes);
  in.nonzeroMemoryBytes = static_cast<double>(vm.nonzeroMemoryBytes);
  in.meanDirtyRateBytesPerSec = dirtyRate;
  in.bandwidthBytesPerSec = bandwidth;
  if (ruleGroundTruth_) {
    // The rule sizes its dirty pass at the nominal rate, whatever share the NIC gives later.
    const double copyS = static_cast<double>(vm.nonzeroMemoryBytes) / bandwidth;
    const double extraBytes =
        live ? std::min(dirtyRate * copyS, static_cast<double>(vm.memoryBytes)) : 0.0;
    in.meanDirtyRateBytesPerSec = vm.dirtyRateBytesPerSec;
    op.run = sim::MigrationRun::rule(
        in, static_cast<double>(vm.nonzeroMemoryBytes) + std::round(extraBytes));
  } else {
    op.run.emplace(in, sim::SimRandom(sim::migrationSeed(seed_, vm.id, migrationCounts_[vm.id]++)));
  }
  op.capBytesPerSec = bandwidth;

  vm.state = VmState::kMigratingOut;
  ops_.emplace(id, std::move(op));
  return Status::ok();
}

Status SimHypervisor::setMigrationBandwidth(const std::string& vmId, double maxBytesPerSec) {
  if (maxBytesPerSec < 0 || !std::isfinite(maxBytesPerSec)) {
    return Status::invalid("max bandwidth must be a finite rate >= 0");
  }
  if (!vms_.contains(vmId)) return vms_.missing(vmId);
  for (auto& [id, op] : ops_) {
    if (!op.isMigration || op.vmId != vmId) continue;
    // The migration has run at its old cap up to the last poll; the new cap applies from there
    // (the share of every migration on the NIC is recomputed: max-min with the new cap).
    advanceTo(lastPollNs_);
    op.capBytesPerSec = host_.nicBandwidthBytesPerSec;
    if (maxBytesPerSec > 0) op.capBytesPerSec = std::min(op.capBytesPerSec, maxBytesPerSec);
    refreshSegmentEnds();
    updateForecasts();
    return Status::ok();
  }
  return Status::rejected("vm '" + vmId + "' is not migrating out");
}

Status SimHypervisor::suspend(const std::string& vmId) {
  StateSaver saver(*this);
  VmInfo* vm = vms_.find(vmId);
  if (!vm) return vms_.missing(vmId);
  if (Status s = checkIdle(*vm); !s) return s;
  vm->state = VmState::kSuspended;
  return Status::ok();
}

Status SimHypervisor::resume(const std::string& vmId) {
  StateSaver saver(*this);
  VmInfo* vm = vms_.find(vmId);
  if (!vm) return vms_.missing(vmId);
  if (Status s = checkIdle(*vm); !s) return s;
  vm->state = VmState::kRunning;
  return Status::ok();
}

Status SimHypervisor::startClone(OperationId id, const CloneSpec& spec) {
  StateSaver saver(*this);
  if (spec.vmId.empty()) return Status::invalid("clone needs a vm id");
  if (spec.memoryBytes == 0 || spec.cpuCores == 0) {
    return Status::invalid("clone '" + spec.vmId + "' needs positive memory and cpu cores");
  }
  if (spec.bootTimeNs < 0)
    return Status::invalid("clone '" + spec.vmId + "' has a negative boot time");
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");

  // The sim's clones are names only: no port, so no ssh line.
  VmHandle handle{spec.vmId, host_.name, spec.vmId + "." + host_.name + ".sim",
                  "vrm",     0,          "simulated (a name, not reachable)"};
  if (const VmInfo* existing = vms_.find(spec.vmId)) {
    const VmInfo& vm = *existing;
    const bool sameClone = (vm.state == VmState::kRunning || vm.state == VmState::kSuspended) &&
                           vm.templateName == spec.templateName &&
                           vm.reservationId == spec.reservationId;
    if (!sameClone) return backend::alreadyOnHost(spec.vmId, host_.name);
    // A retried clone that already finished: report the same handle again.
    OperationEvent done = backend::completedEvent(id);
    done.clone = handle;
    immediate_.push_back(std::move(done));
    return Status::ok();
  }
  if (Status s = vms_.checkRoom(host_, spec.cpuCores, spec.memoryBytes); !s) return s;

  VmInfo vm;
  vm.id = spec.vmId;
  vm.cpuCores = spec.cpuCores;
  vm.memoryBytes = spec.memoryBytes;
  vm.nonzeroMemoryBytes = spec.memoryBytes;
  vm.state = VmState::kCloning;
  vm.reservationId = spec.reservationId;
  vm.templateName = spec.templateName;
  vms_.add(std::move(vm));

  Operation op;
  op.isMigration = false;
  op.vmId = spec.vmId;
  op.totalNs = spec.bootTimeNs;
  op.handle = std::move(handle);
  ops_.emplace(id, std::move(op));
  return Status::ok();
}

void SimHypervisor::completeAtOnce(OperationId id) {
  immediate_.push_back(backend::completedEvent(id));
}

Status SimHypervisor::startPark(OperationId id, const std::string& vmId) {
  StateSaver saver(*this);
  VmInfo* found = vms_.find(vmId);
  if (!found) return vms_.missing(vmId);
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  VmInfo& vm = *found;
  if (vm.state == VmState::kParked && !operationOn(vmId)) {
    completeAtOnce(id);
    return Status::ok();
  }
  if (Status s = checkIdle(vm); !s) return s;
  Operation op;
  op.isMigration = false;
  op.local = Operation::Local::kPark;
  op.vmId = vmId;
  op.totalNs =
      kSetupNs + secondsToNs(static_cast<double>(vm.nonzeroMemoryBytes) / diskRateBytesPerSec_);
  op.observation = backend::observationOf(vm, host_.name, host_.name, MigrationMode::kSuspend);
  MigrationObservation& obs = op.observation;
  obs.transferredBytes = vm.nonzeroMemoryBytes;
  obs.rounds = 1;
  vm.state = VmState::kMigratingOut;  // busy until saved
  ops_.emplace(id, std::move(op));
  return Status::ok();
}

Status SimHypervisor::startUnpark(OperationId id, const std::string& vmId) {
  StateSaver saver(*this);
  VmInfo* found = vms_.find(vmId);
  if (!found) return vms_.missing(vmId);
  if (ops_.count(id)) return Status::invalid("operation " + std::to_string(id) + " is in flight");
  VmInfo& vm = *found;
  if (vm.state != VmState::kParked) {
    if (Status s = checkIdle(vm); !s) return s;
    completeAtOnce(id);  // running already: a retried unpark
    return Status::ok();
  }
  if (const Operation* busy = operationOn(vmId)) {
    return backend::busy(vmId, busy->local == Operation::Local::kPark ? "parking" : "unparking");
  }
  if (Status s = vms_.checkRoom(host_, vm.cpuCores, vm.memoryBytes); !s) {
    return Status::rejected("cannot unpark vm '" + vmId + "': " + s.message());
  }
  Operation op;
  op.isMigration = false;
  op.local = Operation::Local::kUnpark;
  op.vmId = vmId;
  op.totalNs =
      kCommitNs + secondsToNs(static_cast<double>(vm.nonzeroMemoryBytes) / diskRateBytesPerSec_);
  op.observation = backend::observationOf(vm, host_.name, host_.name, MigrationMode::kSuspend);
  MigrationObservation& obs = op.observation;
  obs.transferredBytes = vm.nonzeroMemoryBytes;
  obs.rounds = 1;
  vm.state = VmState::kIncoming;  // being restored: holds its room
  ops_.emplace(id, std::move(op));
  return Status::ok();
}

Status SimHypervisor::destroy(const std::string& vmId) {
  StateSaver saver(*this);
  const VmInfo* vm = vms_.find(vmId);
  if (!vm) return vms_.missing(vmId);
  if (const Operation* op = operationOn(vmId); op && op->local != Operation::Local::kNone) {
    return backend::busy(vmId, op->local == Operation::Local::kPark ? "parking" : "unparking");
  }
  if (vm->state == VmState::kMigratingOut) return backend::busy(vmId, "migrating-out");
  if (vm->state == VmState::kCloning) {
    // The clone's requester still gets its one completion.
    for (auto op = ops_.begin(); op != ops_.end(); ++op) {
      if (op->second.vmId != vmId) continue;
      immediate_.push_back(backend::completedEvent(
          op->first,
          Status::rejected("vm '" + vmId + "' was destroyed before its clone finished")));
      ops_.erase(op);
      break;
    }
  }
  vms_.erase(vmId);
  return Status::ok();
}

OperationEvent SimHypervisor::progressOf(OperationId id, const Operation& op, TimeNs now) const {
  OperationEvent e;
  e.opId = id;
  e.kind = OperationEvent::Kind::kProgress;
  const TimeNs elapsed = now - op.startNs;
  e.fraction = op.totalNs > 0 ? static_cast<double>(elapsed) / static_cast<double>(op.totalNs) : 1;
  if (!op.isMigration) {
    e.phase = op.local == Operation::Local::kPark     ? "save"
              : op.local == Operation::Local::kUnpark ? "restore"
                                                      : "clone";
    return e;
  }
  e.phase = op.run->phase();
  e.bytesSent = static_cast<std::uint64_t>(std::llround(op.run->sentBytes()));
  e.bytesTotal = static_cast<std::uint64_t>(std::llround(op.forecastBytes));
  return e;
}

OperationEvent SimHypervisor::complete(OperationId id, Operation& op) {
  OperationEvent e;
  e.opId = id;
  e.kind = OperationEvent::Kind::kCompleted;
  if (op.isMigration) {
    const sim::GroundTruthOutcome& truth = op.run->outcome();
    const bool live = op.observation.mode == MigrationMode::kLive;
    MigrationObservation& obs = op.observation;
    obs.endNs = op.doneNs;
    obs.setupNs = op.setupEndNs - op.startNs;
    // Live: paused for the stop-and-copy and the commit; suspend-copy-resume: for all but setup.
    obs.downtimeNs = op.doneNs - (live ? op.commitStartNs : op.setupEndNs);
    obs.transferredBytes = static_cast<std::uint64_t>(std::llround(truth.transferredBytes()));
    obs.rounds = live ? truth.rounds() : 1;
    obs.bandwidthBytesPerSec = truth.goodputBytesPerSec();
    obs.dirtyRateBytesPerSec = truth.measuredDirtyRateBytesPerSec;
    vms_.erase(op.vmId);
    e.migration = obs;
  } else if (op.local != Operation::Local::kNone) {
    VmInfo& vm = *vms_.find(op.vmId);  // destroy() refuses a VM being parked or unparked
    MigrationObservation& obs = op.observation;
    obs.endNs = op.startNs + op.totalNs;
    obs.downtimeNs = op.totalNs;
    if (op.local == Operation::Local::kPark) {
      obs.setupNs = kSetupNs;
      obs.saveNs = op.totalNs;
      vm.state = VmState::kParked;
      vm.stateFile = parkFile(vm.id);
    } else {
      obs.setupNs = kCommitNs;
      obs.restoreNs = op.totalNs;
      vm.state = VmState::kRunning;
      vm.stateFile.clear();
    }
    e.migration = obs;
  } else {
    VmInfo& vm = *vms_.find(op.vmId);  // destroy() removes the op along with a cloning VM
    vm.state = VmState::kRunning;
    vm.address = op.handle.address;
    vm.account = op.handle.account;
    vm.addressSource = op.handle.addressSource;
    e.clone = op.handle;
  }
  return e;
}

std::map<OperationId, double> SimHypervisor::shares() const {
  std::vector<OperationId> ids;
  std::vector<double> caps;
  for (const auto& [id, op] : ops_) {
    if (op.isMigration && op.started && !op.run->done() && op.run->sending()) {
      ids.push_back(id);
      caps.push_back(op.capBytesPerSec);
    }
  }
  const std::vector<double> rates = sim::fairShares(host_.nicBandwidthBytesPerSec, caps);
  std::map<OperationId, double> out;
  for (std::size_t i = 0; i < ids.size(); ++i) out[ids[i]] = rates[i];
  return out;
}

void SimHypervisor::refreshSegmentEnds() {
  const auto rate = shares();
  for (auto& [id, op] : ops_) {
    if (!op.isMigration || !op.started || op.run->done()) continue;
    const auto it = rate.find(id);
    const double r = it == rate.end() ? 0 : it->second;
    if (op.endSegment == op.run->segmentIndex() && op.endRate == r) continue;
    op.endSegment = op.run->segmentIndex();
    op.endRate = r;
    const double left = op.run->secondsLeft(r);
    op.segmentEndNs = std::isfinite(left) ? simNs_ + secondsToNs(left) : kTimeInfinity;
  }
}

TimeNs SimHypervisor::nextSegmentEndNs() const {
  TimeNs next = kTimeInfinity;
  for (const auto& [id, op] : ops_) {
    if (op.isMigration && op.started && !op.run->done()) next = std::min(next, op.segmentEndNs);
  }
  return next;
}

void SimHypervisor::advanceTo(TimeNs now) {
  // Event by event: between two events every running migration keeps its share.
  refreshSegmentEnds();
  for (;;) {
    const TimeNs next = nextSegmentEndNs();
    const TimeNs until = std::max(simNs_, std::min(next, now));
    const auto rate = shares();
    const double seconds = nsToSeconds(until - simNs_);
    for (auto& [id, op] : ops_) {
      if (!op.isMigration || !op.started || op.run->done()) continue;
      const auto it = rate.find(id);
      const double r = it == rate.end() ? 0 : it->second;
      const bool ends = op.segmentEndNs <= until;
      const std::string before = op.run->phase();
      op.run->advance(seconds, r, ends);
      // Phase boundaries on the ns timeline, for the observation.
      if (before == "setup" && std::string(op.run->phase()) != "setup") op.setupEndNs = until;
      if (before != "commit" && std::string(op.run->phase()) == "commit") op.commitStartNs = until;
      if (op.run->done()) op.doneNs = until;
    }
    simNs_ = until;
    refreshSegmentEnds();
    if (next > now) break;
  }
}

void SimHypervisor::updateForecasts() {
  const auto rate = shares();
  for (auto& [id, op] : ops_) {
    if (!op.isMigration || !op.started || op.run->done()) continue;
    const auto it = rate.find(id);
    // A migration between transfers (setup, commit) forecasts at its cap: the share it would get
    // alone; the forecast is refreshed when shares change anyway.
    const double r = it == rate.end() ? op.capBytesPerSec : it->second;
    sim::MigrationRun copy = *op.run;
    double toDone = 0;
    while (!copy.done()) {
      toDone += copy.secondsLeft(r);
      copy.advance(0, r, true);
    }
    op.totalNs = std::max<TimeNs>(1, simNs_ + secondsToNs(toDone) - op.startNs);
    op.forecastBytes = copy.outcome().transferredBytes();
  }
}

std::vector<OperationEvent> SimHypervisor::poll(TimeNs now) {
  lastPollNs_ = std::max(lastPollNs_, now);
  std::vector<OperationEvent> events = std::move(immediate_);
  immediate_.clear();
  advanceTo(lastPollNs_);
  for (auto& [id, op] : ops_) {
    if (op.started) continue;
    op.started = true;
    op.startNs = lastPollNs_;
    op.observation.startNs = lastPollNs_;
  }
  refreshSegmentEnds();  // new migrations take their shares from now on
  updateForecasts();
  bool completed = false;
  for (auto it = ops_.begin(); it != ops_.end();) {
    Operation& op = it->second;
    const TimeNs elapsed = lastPollNs_ - op.startNs;
    const bool finished = op.isMigration ? op.run->done() : elapsed >= op.totalNs;
    if (finished) {
      events.push_back(complete(it->first, op));
      it = ops_.erase(it);
      completed = true;
      continue;
    }
    const int step = static_cast<int>(std::min<TimeNs>(9, elapsed * 10 / op.totalNs));
    if (step > op.lastStep) {
      op.lastStep = step;
      events.push_back(progressOf(it->first, op, lastPollNs_));
    }
    ++it;
  }
  // Those that finished changed the shares of the others.
  updateForecasts();
  if (completed) saveState();
  return events;
}

TimeNs SimHypervisor::nextEventTime() const {
  if (!immediate_.empty()) return lastPollNs_;
  TimeNs next = nextSegmentEndNs();
  for (const auto& [id, op] : ops_) {
    if (!op.started) return lastPollNs_;
    // The next tenth of progress (the tenth tenth is completion).
    if (op.lastStep < 9)
      next = std::min(next, op.startNs + ceilDiv(op.totalNs * (op.lastStep + 1), 10));
    if (!op.isMigration) next = std::min(next, op.startNs + op.totalNs);
  }
  return std::max(next, lastPollNs_);
}

}  // namespace vrm::vmscheduler
