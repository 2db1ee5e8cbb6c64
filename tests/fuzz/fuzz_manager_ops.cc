// Fuzz target, structure-aware: sequences of well-formed client requests and agent messages
// through vrmd's handlers (manager/request_handler.h), driving reservations through their whole
// lifecycle with agents that obey, fail, lose commands or go away.
//
// Raw-byte targets (fuzz_client_request, fuzz_agent_message) rarely get past the decoder with
// a request that admission accepts; here FuzzedDataProvider chooses each step and its fields,
// and the step is encoded as a real Cap'n Proto frame, so the fuzzer explores admission,
// planning, execution, cancellation and repair instead of the decoder. Steps: submit (dedicated
// or shared, fields from plausible to extreme), get, cancel, list, hosts/vms, advance the clock
// (by a step or to the manager's next wake-up) and tick, deliver the commands vrmd sent (each
// executed, failed, undeliverable, held for later, or preceded by progress), an agent going
// down or coming back (registering again with its inventory).
//
// The simulated agents are truthful: their inventories are what the commands did. So after
// every step, besides "no crash, no sanitizer report, every reply well-formed", these must hold:
// no host's real inventory exceeds its capacity, the manager's calendar books no host beyond its
// capacity, and every rejected, cancelled or failed reservation says why.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fuzz_world.h"
#include "vrm/protocol/wire_convert.h"

namespace {

using namespace vrm;
using protocol::toWire;

constexpr TimeNs kMin = 60 * kNsPerSec;
constexpr TimeNs kHour = 60 * kMin;
constexpr int kMaxSteps = 48;

// a + b, saturated: extreme fuzzed offsets must reach vrmd as extreme times, not as UB here.
TimeNs plus(TimeNs a, TimeNs b) {
  TimeNs sum;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? kTimeInfinity : std::numeric_limits<TimeNs>::min();
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

class Scenario {
 public:
  explicit Scenario(FuzzedDataProvider& in) : in_(in), world_(true) {
    for (const auto& h : world_.cluster().hosts) {
      hosts_[h.name] = fuzz::hostRecord(h);
      for (const auto& v : h.vms) inventory_[h.name].push_back(fuzz::vmRecord(h, v));
    }
    collect();
  }

  void run() {
    for (int step = 0; step < kMaxSteps && in_.remaining_bytes() > 0; ++step) {
      const int action = in_.ConsumeIntegralInRange<int>(0, 9);
      if (trace_)
        std::fprintf(stderr, "step %d: action %d at %s\n", step, action,
                     formatTime(world_.clock().now()).c_str());
      switch (action) {
        case 0:
        case 1:
          submit();
          break;
        case 2:
          byId(/*cancel=*/false);
          break;
        case 3:
          byId(/*cancel=*/true);
          break;
        case 4:
          list();
          break;
        case 5:
          inventoryRequest();
          break;
        case 6:
        case 7:
          advance();
          break;
        case 8:
          deliver();
          break;
        case 9:
          toggleAgent();
          break;
      }
      collect();
      if (trace_) dump();
      check();
    }
  }

  void dump() {
    std::fprintf(stderr, "  now %s, %zu commands queued\n",
                 formatTime(world_.clock().now()).c_str(), queued_.size());
    for (const auto& r : world_.manager().list({})) {
      std::string hosts, moves, clones;
      for (const auto& h : r.hosts) hosts += h + " ";
      for (const auto& move : r.moves) {
        const auto& m = move.planned;
        moves += m.vmId + ":" + m.fromHost + ">" + m.toHost + ":" +
                 moveStateName(move.progress.state) + " ";
      }
      for (const auto& c : r.clones)
        clones += c.vmId + "@" + c.host + ":" + cloneStateName(c.state) + " ";
      std::fprintf(stderr, "  %s %s %s [%s, %s) lss %s hosts %s moves %s clones %s %s\n",
                   r.id.c_str(), stateName(r.state),
                   r.request.kind == ReservationKind::kShared ? "shared" : "dedicated",
                   formatTime(r.request.startNs).c_str(), formatTime(r.request.endNs).c_str(),
                   formatTime(r.plan.latestSafeStartNs).c_str(), hosts.c_str(), moves.c_str(),
                   clones.c_str(), r.reason.c_str());
    }
  }

 private:
  // --- values, from plausible to extreme ---
  std::string pick(std::initializer_list<const char*> known) {
    const std::size_t i = in_.ConsumeIntegralInRange<std::size_t>(0, known.size());
    if (i < known.size()) return *(known.begin() + i);
    return in_.ConsumeRandomLengthString(24);
  }
  TimeNs offset(TimeNs lo, TimeNs hi) {
    if (in_.ConsumeIntegralInRange<int>(0, 15) == 0) return in_.ConsumeIntegral<TimeNs>();
    return in_.ConsumeIntegralInRange<TimeNs>(lo, hi);
  }
  std::uint32_t count(std::uint32_t hi) {
    if (in_.ConsumeIntegralInRange<int>(0, 15) == 0) return in_.ConsumeIntegral<std::uint32_t>();
    return in_.ConsumeIntegralInRange<std::uint32_t>(0, hi);
  }
  std::string reservationId() {
    if (in_.ConsumeIntegralInRange<int>(0, 7) == 0) return in_.ConsumeRandomLengthString(12);
    return "r" + std::to_string(in_.ConsumeIntegralInRange<int>(0, 12));
  }

  // --- client requests, through the client handler ---
  StatusCode send(capnp::MallocMessageBuilder& b) { return world_.callClient(fuzz::frameOf(b)); }

  void submit() {
    capnp::MallocMessageBuilder b;
    auto req = b.initRoot<wire::ClientRequest>();
    req.setRequestId(++requestId_);
    ReservationRequest r;
    std::string objective;  // as text on the wire: vrmd's edge parses it (or refuses it)
    r.owner = pick({"lab", "other", ""});
    r.kind = in_.ConsumeBool() ? ReservationKind::kShared : ReservationKind::kDedicated;
    r.templateName = pick({"bmi-decoder", "small"});
    r.startNs = plus(world_.clock().now(), offset(-kHour, 12 * kHour));
    r.endNs = in_.ConsumeIntegralInRange<int>(0, 15) == 0
                  ? in_.ConsumeIntegral<TimeNs>()
                  : plus(r.startNs, in_.ConsumeIntegralInRange<TimeNs>(-kMin, 8 * kHour));
    if (r.kind == ReservationKind::kDedicated) {
      r.hostCount = count(4);
      for (int n = in_.ConsumeIntegralInRange<int>(0, 3); n > 0; --n) {
        r.hostNames.push_back(pick({"node1", "node2", "node3"}));
      }
      r.vmsPerHost = count(4);
      objective = pick({"", "makespan", "degradation"});
      if (in_.ConsumeBool()) r.maxVmTimeNs = offset(0, 10 * kMin);
    } else {
      r.vmCount = count(12);
      if (in_.ConsumeIntegralInRange<int>(0, 7) == 0) r.hostCount = count(3);
    }
    r.dryRun = in_.ConsumeIntegralInRange<int>(0, 5) == 0;
    r.label = in_.ConsumeRandomLengthString(16);
    toWire(r, req.initSubmit());
    req.getSubmit().setObjective(objective);
    req.setRequester(r.owner);
    (void)send(b);
  }

  void byId(bool cancel) {
    capnp::MallocMessageBuilder b;
    auto req = b.initRoot<wire::ClientRequest>();
    req.setRequestId(++requestId_);
    const std::string id = reservationId();
    if (cancel) {
      req.setCancel(id);
      req.setRequester(pick({"", "lab", "other"}));
    } else {
      req.setGet(id);
    }
    (void)send(b);
  }

  void list() {
    capnp::MallocMessageBuilder b;
    auto req = b.initRoot<wire::ClientRequest>();
    req.setRequestId(++requestId_);
    ListFilter f;
    if (in_.ConsumeBool()) f.owner = pick({"lab", "other"});
    for (int n = in_.ConsumeIntegralInRange<int>(0, 3); n > 0; --n) {
      f.states.push_back(static_cast<ReservationState>(in_.ConsumeIntegralInRange<int>(0, 10)));
    }
    if (in_.ConsumeBool()) {
      f.fromNs = plus(world_.clock().now(), offset(-kHour, 12 * kHour));
      f.toNs = plus(f.fromNs, offset(-kHour, 12 * kHour));
    }
    toWire(f, req.initList());
    (void)send(b);
  }

  void inventoryRequest() {
    capnp::MallocMessageBuilder b;
    auto req = b.initRoot<wire::ClientRequest>();
    req.setRequestId(++requestId_);
    if (in_.ConsumeBool()) {
      req.setHosts();
    } else {
      req.setVms();
    }
    (void)send(b);
  }

  // --- time ---
  // Moves the clock as vrmd's event loop does: it wakes at every nextWakeNs() on the way (a
  // jump past a latest safe start without a tick there is not something vrmd does).
  void advance() {
    auto& clock = world_.clock();
    auto& manager = world_.manager();
    const TimeNs target = in_.ConsumeBool()
                              ? std::max(clock.now(), manager.nextWakeNs())
                              : plus(clock.now(), in_.ConsumeIntegralInRange<TimeNs>(1, 2 * kHour));
    const bool heartbeating = in_.ConsumeIntegralInRange<int>(0, 7) != 0;
    for (int wakeups = 0; wakeups < 64; ++wakeups) {
      // Agents answer every command before time moves on (vrmd has no command timeout: a
      // command never answered leaves its reservation waiting past its window; README
      // "Fuzzing").
      deliver(/*all=*/true);
      const TimeNs wake = manager.nextWakeNs();
      const TimeNs next = std::min(target, std::max(wake, clock.now()));
      if (next == kTimeInfinity) break;
      clock.set(next);
      if (heartbeating) heartbeats();  // agents heartbeat every few seconds
      manager.tick();
      collect();
      if (next == target) break;
    }
  }

  // --- agents, through the agent handler ---
  void heartbeats() {
    for (const auto& [host, vms] : inventory_) {
      if (down_.count(host)) continue;
      capnp::MallocMessageBuilder b;
      auto hb = b.initRoot<wire::AgentMessage>().initHeartbeat();
      hb.setTimeNs(world_.clock().now());
      auto list = hb.initVms(static_cast<unsigned>(vms.size()));
      for (unsigned i = 0; i < vms.size(); ++i) toWire(vms[i], list[i]);
      (void)world_.callAgent(host, fuzz::frameOf(b));
    }
  }

  void registerAgent(const std::string& host) {
    capnp::MallocMessageBuilder b;
    auto reg = b.initRoot<wire::AgentMessage>().initRegister();
    toWire(hosts_[host], reg.initHost());
    const auto& vms = inventory_[host];
    auto list = reg.initVms(static_cast<unsigned>(vms.size()));
    for (unsigned i = 0; i < vms.size(); ++i) toWire(vms[i], list[i]);
    reg.setBackend("sim");
    reg.setMigrationEndpoint("sim://" + host);
    (void)world_.callAgent(host, fuzz::frameOf(b));
  }

  void toggleAgent() {
    const std::string host = "node" + std::to_string(in_.ConsumeIntegralInRange<int>(1, 3));
    if (down_.erase(host)) {
      registerAgent(host);
    } else {
      down_.insert(host);
    }
  }

  void progress(const AgentCommand& c) {
    capnp::MallocMessageBuilder b;
    auto p = b.initRoot<wire::AgentMessage>().initProgress();
    p.setCommandId(c.id);
    p.setFraction(in_.ConsumeProbability<double>());
    p.setBytesSent(in_.ConsumeIntegral<std::uint32_t>());
    p.setBytesTotal(c.vm.memoryBytes);
    p.setPhase("copy");
    (void)world_.callAgent(c.host, fuzz::frameOf(b));
  }

  // Executes `c` on the simulated host, as vmschedd would, and reports the result.
  void execute(const AgentCommand& c, bool succeed) {
    capnp::MallocMessageBuilder b;
    auto res = b.initRoot<wire::AgentMessage>().initResult();
    res.setCommandId(c.id);
    Status status = succeed ? Status::ok() : Status::internal("the hypervisor said no");
    auto& inv = inventory_[c.host];
    auto find = [&](const std::string& id) {
      return std::find_if(inv.begin(), inv.end(), [&](const VmRecord& v) { return v.id == id; });
    };
    using K = AgentCommand::Kind;
    if (status) {
      switch (c.kind) {
        case K::kPrepareIncoming: {
          VmRecord v = c.vm;
          v.host = c.host;
          v.state = VmState::kIncoming;
          inv.push_back(v);
          res.setIncomingEndpoint("sim://" + c.host);
          break;
        }
        case K::kMigrate: {
          auto it = find(c.vmId);
          if (it == inv.end()) {
            status = Status::notFound("no VM " + c.vmId);
            break;
          }
          auto m = res.initMigrated();
          m.setVmId(c.vmId);
          m.setFromHost(c.host);
          m.setToHost(c.destinationHost);
          m.setMemoryBytes(it->memoryBytes);
          m.setStartNs(world_.clock().now() - 10 * kNsPerSec);
          m.setEndNs(world_.clock().now());
          inv.erase(it);
          break;
        }
        case K::kFinishIncoming: {
          auto it = find(c.vmId);
          if (it == inv.end()) {
            status = Status::notFound("no VM " + c.vmId);
          } else if (c.commit) {
            it->state = VmState::kRunning;
          } else {
            inv.erase(it);
          }
          break;
        }
        case K::kClone: {
          if (find(c.vmId) != inv.end()) break;  // a repeated command is not executed twice
          VmRecord v;
          v.id = c.vmId;
          v.host = c.host;
          v.memoryBytes = c.memoryBytes;
          v.cpuCores = c.cpuCores;
          v.reservationId = c.reservationId;
          v.address = c.vmId + ".sim";
          inv.push_back(v);
          auto h = res.initCloned();
          h.setVmId(c.vmId);
          h.setHost(c.host);
          h.setAddress(v.address);
          h.setAccount("vrm");
          break;
        }
        case K::kDestroy: {
          auto it = find(c.vmId);
          if (it == inv.end()) {
            status = Status::notFound("no VM " + c.vmId);
          } else {
            inv.erase(it);
          }
          break;
        }
        case K::kSuspend:
        case K::kResume: {
          auto it = find(c.vmId);
          if (it == inv.end()) {
            status = Status::notFound("no VM " + c.vmId);
          } else {
            it->state = c.kind == K::kSuspend ? VmState::kSuspended : VmState::kRunning;
          }
          break;
        }
        case K::kSetBandwidth: {
          // Migrations complete at once here: none is running to cap.
          status = Status::rejected("vm " + c.vmId + " is not migrating out");
          break;
        }
        case K::kPark:
        case K::kUnpark: {
          auto it = find(c.vmId);
          if (it == inv.end()) {
            status = Status::notFound("no VM " + c.vmId);
            break;
          }
          const bool park = c.kind == K::kPark;
          if (!park && it->state == VmState::kParked) {
            // As a real agent: an unpark needs the VM's room back.
            std::uint64_t memory = it->memoryBytes, cores = it->cpuCores;
            for (const auto& v : inv) {
              if (v.state == VmState::kParked) continue;
              memory += v.memoryBytes;
              cores += v.cpuCores;
            }
            if (memory > hosts_.at(c.host).memoryBytes || cores > hosts_.at(c.host).cpuCores) {
              status = Status::rejected("no room to unpark " + c.vmId);
              break;
            }
          }
          it->state = park ? VmState::kParked : VmState::kRunning;
          it->stateFile = park ? "sim://" + c.host + "/park/" + c.vmId : "";
          auto m = res.initMigrated();
          m.setVmId(c.vmId);
          m.setFromHost(c.host);
          m.setToHost(c.host);
          m.setMode(wire::MigrationMode::SUSPEND);
          m.setMemoryBytes(it->memoryBytes);
          m.setStartNs(world_.clock().now() - kNsPerSec);
          m.setEndNs(world_.clock().now());
          (park ? m.setSaveNs(kNsPerSec) : m.setRestoreNs(kNsPerSec));
          break;
        }
      }
    }
    toWire(status, res.initStatus());
    (void)world_.callAgent(c.host, fuzz::frameOf(b));
  }

  // Answers some queued commands (all of them when `all`; none is then held back).
  void deliver(bool all = false) {
    const std::size_t n = all ? 1024  // chains of commands are short; a cap keeps it bounded
                              : in_.ConsumeIntegralInRange<std::size_t>(1, 8);
    for (std::size_t i = 0; i < n && !queued_.empty(); ++i) {
      AgentCommand c = queued_.front();
      queued_.pop_front();
      if (down_.count(c.host)) {
        world_.manager().onSendFailed(c.id, "agent " + c.host + " is not connected");
        continue;
      }
      switch (in_.ConsumeIntegralInRange<int>(0, 7)) {
        case 0:
          execute(c, /*succeed=*/false);
          break;
        case 1:
          world_.manager().onSendFailed(c.id, "agent " + c.host + " is not connected");
          break;
        case 2:  // held: answered later, after others
          if (!all) {
            queued_.push_back(c);
            break;
          }
          [[fallthrough]];
        case 3:
          progress(c);
          [[fallthrough]];
        default:
          execute(c, /*succeed=*/true);
          break;
      }
      collect();
    }
  }

  void collect() {
    for (auto& c : world_.manager().takeOutbox()) queued_.push_back(std::move(c));
    // Bounded state: a flood of commands means the scenario stops being interesting.
    if (queued_.size() > 4096) fail("more than 4096 commands outstanding");
  }

  // --- invariants ---
  void check() {
    for (const auto& [host, vms] : inventory_) {
      std::uint64_t memory = 0, cores = 0;
      for (const auto& v : vms) {
        if (v.state == VmState::kParked) continue;  // saved to disk: holds no cores or memory
        memory += v.memoryBytes;
        cores += v.cpuCores;
      }
      const auto& h = hosts_.at(host);
      if (memory > h.memoryBytes || cores > h.cpuCores) {
        fail(host + " holds more VMs than it has room for");
      }
    }
    world_.checkCalendar();
    for (const auto& r : world_.manager().list({})) {
      if ((r.state == ReservationState::kRejected || r.state == ReservationState::kCancelled ||
           r.state == ReservationState::kFailed) &&
          r.reason.empty()) {
        fail(r.id + " is " + stateName(r.state) + " without a reason");
      }
    }
  }

  FuzzedDataProvider& in_;
  fuzz::World world_;
  std::map<std::string, HostRecord> hosts_;
  std::map<std::string, std::vector<VmRecord>> inventory_;
  std::set<std::string> down_;
  std::deque<AgentCommand> queued_;
  std::uint64_t requestId_ = 0;
  // VRM_FUZZ_TRACE=1: print each step and the reservations' final states (to study an input).
  const bool trace_ = std::getenv("VRM_FUZZ_TRACE") != nullptr;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  Scenario scenario(in);
  scenario.run();
  return 0;
}
