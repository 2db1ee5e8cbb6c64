#include "vrm/manager/inventory.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "vrm/protocol/units.h"

namespace vrm::manager {
namespace {

// `known` (as stored, host set) equals `reported` once each reported VM's host is `host`.
bool sameInventory(const std::vector<VmRecord>& known, const std::vector<VmRecord>& reported,
                   const std::string& host) {
  if (known.size() != reported.size()) return false;
  for (std::size_t i = 0; i < known.size(); ++i) {
    const VmRecord& a = known[i];
    const VmRecord& b = reported[i];
    if (a.id != b.id || a.host != host || a.cpuCores != b.cpuCores ||
        a.memoryBytes != b.memoryBytes || a.nonzeroMemoryBytes != b.nonzeroMemoryBytes ||
        a.dirtyRateBytesPerSec != b.dirtyRateBytesPerSec || a.state != b.state ||
        a.reservationId != b.reservationId || a.address != b.address ||
        a.diskBytes != b.diskBytes || a.templateName != b.templateName ||
        a.allowLive != b.allowLive || a.allowSuspend != b.allowSuspend || a.account != b.account ||
        a.sshPort != b.sshPort || a.addressSource != b.addressSource) {
      return false;
    }
  }
  return true;
}

const std::vector<VmRecord> kNoVms;

// What one of vrmd's own actions on `host`'s VMs reports (HostChange::bookingsStale).
HostChange actedOn(const std::string& host) {
  HostChange c;
  c.host = host;
  c.bookingsStale = true;
  return c;
}

}  // namespace

Result<HostChange> Inventory::registerHost(const HostRecord& host, const std::vector<VmRecord>& vms,
                                           TimeNs nowNs, const std::vector<LostVm>& lost) {
  if (host.name.empty()) return Status::invalid("host name is empty");
  if (host.cpuCores == 0 || host.memoryBytes == 0 || !(host.nicBandwidthBytesPerSec > 0)) {
    return Status::invalid("host " + host.name + " reports no capacity");
  }
  HostRecord h = host;
  h.reachable = true;
  h.lastHeartbeatNs = nowNs;
  heartbeats_.emplace(h.lastHeartbeatNs, h.name);
  const bool known = hosts_.count(h.name) > 0;
  hosts_[h.name] = h;
  replaceVms(h.name, vms);
  registeredSinceStart_.insert(h.name);
  disconnected_.erase(h.name);
  spdlog::info("agent {} {} ({} cores, {}, {}, {} VMs)", h.name,
               known ? "re-registered" : "registered", h.cpuCores, formatBytes(h.memoryBytes),
               formatRate(h.nicBandwidthBytesPerSec), vms.size());
  HostChange c;
  c.host = h.name;
  c.bookingsStale = true;
  c.reported = true;
  // A restarted agent knows nothing of vrmd's commands; a running one ignores repeats.
  c.cameBack = true;
  c.lost = newlyLost(h.name, lost);
  return c;
}

Result<HostChange> Inventory::heartbeat(const std::string& host, const std::vector<VmRecord>& vms,
                                        TimeNs nowNs, const std::vector<LostVm>& lost) {
  auto it = hosts_.find(host);
  if (it == hosts_.end() || !registeredSinceStart_.count(host)) {
    return Status::notFound("host " + host + " is not registered");
  }
  HostChange c;
  c.host = host;
  c.cameBack = !it->second.reachable || disconnected_.count(host) > 0;
  if (!it->second.reachable) spdlog::info("agent {} is reachable again", host);
  it->second.reachable = true;
  it->second.lastHeartbeatNs = nowNs;
  heartbeats_.emplace(it->second.lastHeartbeatNs, host);
  disconnected_.erase(host);
  c.lost = newlyLost(host, lost);
  // Most heartbeats repeat the inventory: only a change is reported (with 10,000 agents,
  // rebuilding every host's bookings every few seconds would dominate vrmd's loop).
  if (sameInventory(vmsOn(host), vms, host)) return c;
  replaceVms(host, vms);
  c.bookingsStale = true;
  c.reported = true;
  return c;
}

std::vector<HostChange> Inventory::expireSilent(TimeNs nowNs, TimeNs readUntilNs) {
  std::vector<HostChange> lost;
  while (!heartbeats_.empty() && readUntilNs - heartbeats_.top().first > heartbeatTimeoutNs_) {
    const auto [at, name] = heartbeats_.top();
    heartbeats_.pop();
    auto it = hosts_.find(name);
    if (it == hosts_.end() || !it->second.reachable || it->second.lastHeartbeatNs != at) continue;
    it->second.reachable = false;
    spdlog::warn("agent {} is unreachable: no heartbeat for {}", name, formatDuration(nowNs - at));
    HostChange c;
    c.host = name;
    c.wentDown = true;
    lost.push_back(std::move(c));
  }
  return lost;
}

TimeNs Inventory::nextSilenceCheckNs() const {
  // The oldest heartbeat may be stale (its host spoke since): an early wake, never a late one.
  if (heartbeats_.empty()) return kTimeInfinity;
  return heartbeats_.top().first + heartbeatTimeoutNs_ + 1;
}

HostChange Inventory::sendFailed(const std::string& host, const std::string& why,
                                 bool unreachable) {
  HostChange c;
  c.host = host;
  if (auto h = hosts_.find(host); unreachable && h != hosts_.end() && h->second.reachable) {
    spdlog::warn("agent {} is unreachable: {}", host, why);
    h->second.reachable = false;
    c.wentDown = true;
    c.bookingsStale = true;
  }
  disconnected_.insert(host);
  return c;
}

HostChange Inventory::markUnreachable(const std::string& host) {
  HostChange c;
  c.host = host;
  if (auto h = hosts_.find(host); h != hosts_.end() && h->second.reachable) {
    h->second.reachable = false;
    c.wentDown = true;
  }
  return c;
}

std::vector<HostChange> Inventory::moveVm(const std::string& vmId, const std::string& from,
                                          const std::string& to) {
  auto src = vmsByHost_.find(from);
  if (src == vmsByHost_.end()) return {};
  auto& vms = src->second;
  auto it = std::find_if(vms.begin(), vms.end(), [&](const VmRecord& v) { return v.id == vmId; });
  if (it == vms.end()) return {};
  VmRecord vm = *it;
  vms.erase(it);
  dropVm(to, vmId);  // its incoming placeholder
  vm.host = to;
  vm.state = VmState::kRunning;
  vmsByHost_[to].push_back(std::move(vm));
  return {actedOn(from), actedOn(to)};
}

HostChange Inventory::dropVm(const std::string& host, const std::string& vmId) {
  if (auto inv = vmsByHost_.find(host); inv != vmsByHost_.end()) {
    auto& vms = inv->second;
    vms.erase(
        std::remove_if(vms.begin(), vms.end(), [&](const VmRecord& v) { return v.id == vmId; }),
        vms.end());
  }
  return actedOn(host);
}

HostChange Inventory::setVmState(const std::string& host, const std::string& vmId, VmState state,
                                 bool clearStateFile) {
  if (auto inv = vmsByHost_.find(host); inv != vmsByHost_.end()) {
    for (auto& v : inv->second) {
      if (v.id != vmId) continue;
      v.state = state;
      if (clearStateFile) v.stateFile.clear();
    }
  }
  return actedOn(host);
}

HostChange Inventory::addVm(const VmRecord& vm) {
  std::vector<VmRecord>& vms = vmsByHost_[vm.host];
  auto listed =
      std::find_if(vms.begin(), vms.end(), [&](const VmRecord& v) { return v.id == vm.id; });
  if (listed == vms.end()) {
    vms.push_back(vm);
  } else {
    // Listed by a heartbeat while it was being made: now made, reached as its answer says.
    listed->state = vm.state;
    listed->address = vm.address;
    listed->account = vm.account;
    listed->sshPort = vm.sshPort;
    listed->addressSource = vm.addressSource;
  }
  return actedOn(vm.host);
}

const HostRecord* Inventory::host(const std::string& host) const {
  auto it = hosts_.find(host);
  return it == hosts_.end() ? nullptr : &it->second;
}

const std::vector<VmRecord>& Inventory::vmsOn(const std::string& host) const {
  auto it = vmsByHost_.find(host);
  return it == vmsByHost_.end() ? kNoVms : it->second;
}

const VmRecord* Inventory::findVm(const std::string& host, const std::string& vmId) const {
  for (const auto& v : vmsOn(host)) {
    if (v.id == vmId) return &v;
  }
  return nullptr;
}

std::vector<VmRecord> Inventory::allVms() const {
  std::vector<VmRecord> out;
  for (const auto& [host, vms] : vmsByHost_) out.insert(out.end(), vms.begin(), vms.end());
  return out;
}

bool Inventory::ready(const std::string& host) const {
  auto it = hosts_.find(host);
  return it != hosts_.end() && it->second.reachable && registeredSinceStart_.count(host) > 0 &&
         !disconnected_.count(host);
}

std::vector<LostVm> Inventory::newlyLost(const std::string& host,
                                         const std::vector<LostVm>& reported) {
  if (reported.empty()) {  // most reports: nothing to compare, nothing to keep
    lostReported_.erase(host);
    return {};
  }
  std::set<std::tuple<std::string, TimeNs, std::string>> now;
  std::vector<LostVm> fresh;
  const auto& before = lostReported_[host];
  for (const LostVm& vm : reported) {
    auto key = std::make_tuple(vm.vmId, vm.lostAtNs, vm.reason);
    if (!before.count(key) && !now.count(key)) fresh.push_back(vm);
    now.insert(std::move(key));
  }
  lostReported_[host] = std::move(now);
  for (const LostVm& vm : fresh) {
    spdlog::error("agent {} lost vm {} ({}): {}", host, vm.vmId.empty() ? "(unnamed)" : vm.vmId,
                  vmStateName(vm.lastState), vm.reason);
  }
  return fresh;
}

void Inventory::replaceVms(const std::string& host, const std::vector<VmRecord>& vms) {
  auto& inv = vmsByHost_[host];
  inv = vms;
  for (auto& v : inv) v.host = host;
}

}  // namespace vrm::manager
