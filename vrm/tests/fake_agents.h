// Test helper: plays every agent by answering the manager's commands at once, keeping each
// host's inventory as a real agent would (a clone held unanswered is listed as being made).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "vrm/manager/manager.h"

namespace vrm::manager::testing {

constexpr std::uint64_t kGiB = 1ull << 30;

class FakeAgents {
 public:
  explicit FakeAgents(Manager& m) : m_(m) {}

  void addHost(const std::string& name, std::uint32_t cores, std::uint64_t mem,
               std::vector<VmRecord> vms) {
    HostRecord h{name, cores, mem, 125e6, "fake", "fake://" + name, true, 0};
    for (auto& v : vms) v.host = name;
    inventory_[name] = vms;
    hosts_[name] = h;
    EXPECT_TRUE(m_.onRegister(h, vms).isOk());
  }

  static VmRecord vm(const std::string& id, std::uint64_t mem, std::uint32_t cores = 1) {
    VmRecord v;
    v.id = id;
    v.memoryBytes = mem;
    v.nonzeroMemoryBytes = mem / 2;
    v.cpuCores = cores;
    return v;
  }

  // Answers every queued command (and those they cause) successfully, unless the host is down.
  void pump() {
    for (int round = 0; round < 100; ++round) {
      auto cmds = m_.takeOutbox();
      if (cmds.empty()) return;
      for (const auto& c : cmds) {
        log.push_back(c);
        if (down.count(c.host) || refuse.count(c.host)) {
          m_.onSendFailed(c.id, "agent " + c.host + " is not connected");
          continue;
        }
        if (c.kind == AgentCommand::Kind::kMigrate) caps[c.vmId] = c.maxBandwidthBytesPerSec;
        if (hold.count(c.kind)) {
          held.push_back(c);
          // As a real agent lists a clone while it makes it.
          if (c.kind == AgentCommand::Kind::kClone) inventory_[c.host].push_back(cloning(c));
          continue;
        }
        m_.onResult(c.host, execute(c));
      }
    }
  }

  // Stops holding commands and answers the held ones (late, if their deadlines passed), then
  // what they cause. Returns the commands it answered.
  std::vector<AgentCommand> answerHeld() {
    hold.clear();
    std::vector<AgentCommand> answered = std::move(held);
    held.clear();
    for (const auto& c : answered) m_.onResult(c.host, execute(c));
    pump();
    return answered;
  }

  // Re-sends every host's inventory as a heartbeat, with the guests it lost (lost[host]), as
  // a real agent repeats them.
  void heartbeat() {
    for (auto& [h, vms] : inventory_) {
      if (!down.count(h)) (void)m_.onHeartbeat(h, vms, lostOn(h));
    }
  }
  std::vector<LostVm> lostOn(const std::string& host) const {
    auto it = lost.find(host);
    return it == lost.end() ? std::vector<LostVm>{} : it->second;
  }

  AgentResult execute(const AgentCommand& c) {
    AgentResult r;
    r.commandId = c.id;
    auto& inv = inventory_[c.host];
    auto find = [&](const std::string& id) {
      return std::find_if(inv.begin(), inv.end(), [&](const VmRecord& v) { return v.id == id; });
    };
    using K = AgentCommand::Kind;
    switch (c.kind) {
      case K::kPrepareIncoming: {
        VmRecord v = c.vm;
        v.host = c.host;
        v.state = VmState::kIncoming;
        inv.push_back(v);
        r.incomingEndpoint = "fake://" + c.host;
        break;
      }
      case K::kMigrate: {
        auto it = find(c.vmId);
        if (it == inv.end()) {
          r.status = Status::notFound("no VM " + c.vmId);
          break;
        }
        MigrationObservation o;
        o.vmId = c.vmId;
        o.fromHost = c.host;
        o.toHost = c.destinationHost;
        o.memoryBytes = it->memoryBytes;
        inv.erase(it);
        r.migrated = o;
        break;
      }
      case K::kFinishIncoming: {
        auto it = find(c.vmId);
        if (it == inv.end()) {
          r.status = Status::notFound("no VM " + c.vmId);
        } else if (c.commit) {
          it->state = VmState::kRunning;
        } else {
          inv.erase(it);
        }
        break;
      }
      case K::kClone: {
        VmRecord v = cloning(c);
        v.state = VmState::kRunning;
        v.address = c.vmId + "." + c.host + ".test";
        if (auto it = find(c.vmId); it != inv.end()) {
          *it = v;  // made while held
        } else {
          inv.push_back(v);
        }
        ClonePlacement p;
        p.vmId = c.vmId;
        p.host = c.host;
        p.address = v.address;
        p.account = "vrm";
        r.cloned = p;
        break;
      }
      case K::kDestroy: {
        auto it = find(c.vmId);
        if (it == inv.end()) {
          r.status = Status::notFound("no VM " + c.vmId);
        } else {
          inv.erase(it);
        }
        break;
      }
      case K::kSetBandwidth: {
        if (find(c.vmId) == inv.end()) {
          r.status = Status::notFound("no VM " + c.vmId);
        } else {
          caps[c.vmId] = c.maxBandwidthBytesPerSec;
        }
        break;
      }
      case K::kPark:
      case K::kUnpark: {
        auto it = find(c.vmId);
        if (it == inv.end()) {
          r.status = Status::notFound("no VM " + c.vmId);
          break;
        }
        const bool park = c.kind == K::kPark;
        it->state = park ? VmState::kParked : VmState::kRunning;
        it->stateFile = park ? "fake://" + c.host + "/park/" + c.vmId : "";
        MigrationObservation o;
        o.vmId = c.vmId;
        o.fromHost = o.toHost = c.host;
        o.mode = MoveMode::kSuspend;
        o.memoryBytes = it->memoryBytes;
        o.transferredBytes = it->nonzeroMemoryBytes;
        (park ? o.saveNs : o.restoreNs) = 2 * kNsPerSec;
        r.migrated = o;
        break;
      }
      default:
        break;
    }
    return r;
  }

  // The VM clone command `c` makes, while it is being made.
  static VmRecord cloning(const AgentCommand& c) {
    VmRecord v;
    v.id = c.vmId;
    v.host = c.host;
    v.memoryBytes = c.memoryBytes;
    v.cpuCores = c.cpuCores;
    v.reservationId = c.reservationId;
    v.state = VmState::kCloning;
    return v;
  }

  std::size_t count(const std::string& vmId) const {
    std::size_t n = 0;
    for (const auto& [h, vms] : inventory_) {
      for (const auto& v : vms) n += v.id == vmId;
    }
    return n;
  }
  std::string hostOf(const std::string& vmId) const {
    for (const auto& [h, vms] : inventory_) {
      for (const auto& v : vms) {
        if (v.id == vmId) return h;
      }
    }
    return "";
  }

  std::map<std::string, std::vector<VmRecord>> inventory_;
  std::map<std::string, HostRecord> hosts_;
  std::vector<AgentCommand> log;
  std::set<std::string> down;    // agents gone: no heartbeats, commands undeliverable
  std::set<std::string> refuse;  // agents alive (heartbeating) whose commands cannot be delivered
  std::set<AgentCommand::Kind> hold;  // commands of these kinds are kept in `held`
  std::vector<AgentCommand> held;
  // The bandwidth cap of each VM's migration as last set (migrate or set-bandwidth; 0 = none).
  std::map<std::string, double> caps;
  // The guests each host's agent lost since it started (Hypervisor::lostVms()), oldest first.
  std::map<std::string, std::vector<LostVm>> lost;

 private:
  Manager& m_;
};

}  // namespace vrm::manager::testing
