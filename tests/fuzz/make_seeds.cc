// Writes the Cap'n Proto seeds of the fuzz corpus: one valid frame per message kind a peer can
// send, in the layout each target reads (fuzz_agent_message's inputs start with a host byte).
//   fuzz_make_seeds DIR   writes DIR/fuzz_frame/*, DIR/fuzz_client_request/*,
//                         DIR/fuzz_agent_message/*  (tests/fuzz/corpus is checked in)
// Frames name the example cluster's hosts, VMs and templates and the World's reservations
// (r1 shared, r2 dedicated), so the handlers' fuzzers start from requests that reach deep code.
#include <capnp/message.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "schema/vrm.capnp.h"
#include "vrm/protocol/codec.h"
#include "vrm/protocol/wire_convert.h"

namespace {

using namespace vrm;
using protocol::toWire;
namespace fs = std::filesystem;

constexpr TimeNs kNow = 1'800'000'000 * kNsPerSec;  // fuzz_world.h's kWorldStartNs
constexpr TimeNs kHour = 3600 * kNsPerSec;

std::string bytesOf(capnp::MessageBuilder& b) {
  auto frame = protocol::encodeFrame(b);
  return std::string(static_cast<const char*>(frame.data()), frame.size());
}

void write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

struct Seed {
  std::string name;
  std::string bytes;
};

std::vector<Seed> clientRequests() {
  std::vector<Seed> seeds;
  auto add = [&](const std::string& name, auto fill) {
    capnp::MallocMessageBuilder b;
    auto req = b.initRoot<wire::ClientRequest>();
    req.setRequestId(7);
    fill(req);
    seeds.push_back({"request-" + name, bytesOf(b)});
  };
  ReservationRequest dedicated;
  dedicated.owner = "lab";
  dedicated.hostCount = 1;
  dedicated.startNs = kNow + 4 * kHour;
  dedicated.endNs = dedicated.startNs + 2 * kHour;
  dedicated.templateName = "bmi-decoder";
  dedicated.label = "bmi session";
  add("submit-dedicated", [&](auto req) { toWire(dedicated, req.initSubmit()); });
  ReservationRequest named = dedicated;
  named.hostCount = 0;
  named.hostNames = {"node2", "node3"};
  named.objective = Objective::kDegradation;
  named.maxVmTimeNs = 600 * kNsPerSec;
  add("submit-named-degradation", [&](auto req) { toWire(named, req.initSubmit()); });
  ReservationRequest shared;
  shared.owner = "other";
  shared.kind = ReservationKind::kShared;
  shared.vmCount = 4;
  shared.startNs = kNow + kHour;
  shared.endNs = shared.startNs + kHour;
  shared.templateName = "small";
  shared.dryRun = true;
  add("submit-shared-dry-run", [&](auto req) { toWire(shared, req.initSubmit()); });
  add("get", [](auto req) { req.setGet("r2"); });
  add("cancel", [](auto req) {
    req.setCancel("r1");
    req.setRequester("other");
  });
  add("list", [](auto req) {
    ListFilter f;
    f.owner = "lab";
    f.states = {ReservationState::kAdmitted, ReservationState::kReady};
    f.fromNs = kNow;
    f.toNs = kNow + 24 * kHour;
    toWire(f, req.initList());
  });
  add("hosts", [](auto req) { req.setHosts(); });
  add("vms", [](auto req) { req.setVms(); });
  return seeds;
}

VmRecord exampleVm() {
  VmRecord v;
  v.id = "web-1";
  v.host = "node1";
  v.cpuCores = 4;
  v.memoryBytes = 4ull << 30;
  v.nonzeroMemoryBytes = 5ull << 29;
  v.dirtyRateBytesPerSec = 8 << 20;
  return v;
}

std::vector<Seed> agentMessages() {
  std::vector<Seed> seeds;
  auto add = [&](const std::string& name, auto fill) {
    capnp::MallocMessageBuilder b;
    fill(b.initRoot<wire::AgentMessage>());
    seeds.push_back({"agent-" + name, bytesOf(b)});
  };
  add("register", [](auto msg) {
    auto reg = msg.initRegister();
    HostRecord h;
    h.name = "node1";
    h.cpuCores = 32;
    h.memoryBytes = 64ull << 30;
    h.nicBandwidthBytesPerSec = 125e6;
    toWire(h, reg.initHost());
    toWire(exampleVm(), reg.initVms(1)[0]);
    reg.setBackend("sim");
    reg.setMigrationEndpoint("sim://node1");
  });
  add("heartbeat", [](auto msg) {
    auto hb = msg.initHeartbeat();
    hb.setTimeNs(kNow);
    toWire(exampleVm(), hb.initVms(1)[0]);
  });
  add("progress", [](auto msg) {
    auto p = msg.initProgress();
    p.setCommandId(1);
    p.setFraction(0.5);
    p.setBytesSent(1 << 30);
    p.setBytesTotal(2u << 30);
    p.setPhase("round 1");
  });
  add("result-incoming", [](auto msg) {
    auto r = msg.initResult();
    r.setCommandId(1);
    toWire(Status::ok(), r.initStatus());
    r.setIncomingEndpoint("sim://node2");
  });
  add("result-migrated", [](auto msg) {
    auto r = msg.initResult();
    r.setCommandId(2);
    toWire(Status::ok(), r.initStatus());
    auto m = r.initMigrated();
    m.setVmId("web-1");
    m.setFromHost("node1");
    m.setToHost("node2");
    m.setMemoryBytes(4ull << 30);
    m.setStartNs(kNow);
    m.setEndNs(kNow + 40 * kNsPerSec);
    m.setRounds(3);
  });
  add("result-cloned", [](auto msg) {
    auto r = msg.initResult();
    r.setCommandId(3);
    toWire(Status::ok(), r.initStatus());
    auto h = r.initCloned();
    h.setVmId("r2-vm0");
    h.setHost("node1");
    h.setAddress("10.0.0.5");
  });
  add("result-failed", [](auto msg) {
    auto r = msg.initResult();
    r.setCommandId(1);
    toWire(Status::internal("disk full"), r.initStatus());
  });
  return seeds;
}

std::vector<Seed> others() {
  std::vector<Seed> seeds;
  {
    capnp::MallocMessageBuilder b;
    auto reply = b.initRoot<wire::ClientReply>();
    reply.setRequestId(7);
    reply.setNowNs(kNow);
    toWire(Status::ok(), reply.initStatus());
    Reservation r;
    r.id = "r1";
    r.request.owner = "lab";
    r.request.templateName = "bmi-decoder";
    r.state = ReservationState::kAdmitted;
    r.hosts = {"node1"};
    r.plan.strategy = "parallel";
    r.addMove(MovePurpose::kVacate, PlannedMove{}).planned.vmId = "web-1";
    r.clones.push_back({"r1-vm0", "node1", CloneState::kRunning, "10.0.0.5", "vrm"});
    r.events.push_back({kNow, ReservationState::kAdmitted, "admitted"});
    toWire(r, reply.initReservation());
    seeds.push_back({"reply-reservation", bytesOf(b)});
    seeds.push_back({"store-reservation", protocol::serializeReservation(r)});
  }
  {
    capnp::MallocMessageBuilder b;
    auto cmd = b.initRoot<wire::ManagerMessage>().initCommand();
    cmd.setCommandId(9);
    auto m = cmd.initMigrate();
    m.setVmId("web-1");
    m.setDestinationHost("node2");
    m.setDestinationEndpoint("sim://node2");
    seeds.push_back({"manager-migrate", bytesOf(b)});
  }
  return seeds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds DIR\n");
    return 2;
  }
  const fs::path dir = argv[1];
  for (const auto& s : clientRequests()) {
    write(dir / "fuzz_frame", s.name, s.bytes);
    write(dir / "fuzz_client_request", s.name, s.bytes);
  }
  const char* hosts[] = {"node1", "node2", "node3"};
  int i = 0;
  for (const auto& s : agentMessages()) {
    write(dir / "fuzz_frame", s.name, s.bytes);
    // The first byte picks the sending agent (fuzz_agent_message.cc).
    const char host = static_cast<char>(i++ % 3);
    write(dir / "fuzz_agent_message", s.name + "-" + hosts[static_cast<int>(host)],
          std::string(1, host) + s.bytes);
  }
  for (const auto& s : others()) write(dir / "fuzz_frame", s.name, s.bytes);
  return 0;
}
