#include "fuzz_world.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

#include "vrm/manager/request_handler.h"
#include "vrm/planner/cost_aware_vacate_planner.h"
#include "vrm/protocol/wire_convert.h"

namespace vrm::fuzz {

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "fuzz world: %s\n", what.c_str());
  std::abort();
}

// Parsed once per process: every World registers the same cluster.
std::shared_ptr<const ClusterSpec> exampleCluster() {
  static std::shared_ptr<const ClusterSpec> cluster = [] {
    auto c = loadClusterSpec(VRM_EXAMPLE_CLUSTER);
    if (!c) die("cannot load " VRM_EXAMPLE_CLUSTER ": " + c.status().message());
    return std::make_shared<const ClusterSpec>(std::move(*c));
  }();
  return cluster;
}

}  // namespace

void quietLogs() { spdlog::set_level(spdlog::level::off); }

HostRecord hostRecord(const HostSpec& h) {
  HostRecord r;
  r.name = h.name;
  r.cpuCores = h.cpuCores;
  r.memoryBytes = h.memoryBytes;
  r.nicBandwidthBytesPerSec = h.nicBandwidthBytesPerSec;
  r.backend = "sim";
  r.migrationEndpoint = "sim://" + h.name;
  r.reachable = true;
  return r;
}

VmRecord vmRecord(const HostSpec& h, const VmSpec& v) {
  VmRecord r;
  r.id = v.id;
  r.host = h.name;
  r.cpuCores = v.cpuCores;
  r.memoryBytes = v.memoryBytes;
  r.nonzeroMemoryBytes = v.nonzeroMemoryBytes;
  r.dirtyRateBytesPerSec = v.dirtyRateBytesPerSec;
  r.diskBytes = v.diskBytes;
  return r;
}

zmq::message_t frameOf(capnp::MessageBuilder& message) { return protocol::encodeFrame(message); }

World::World(bool withReservations) : cluster_(exampleCluster()) {
  auto store = manager::Store::open(":memory:");
  if (!store) die("store: " + store.status().message());
  store_ = std::move(*store);
  backups_ = std::make_unique<manager::StoreBackups>(*store_, clock_);
  auto planner = planner::CostAwareVacatePlanner::create();
  if (!planner) die("planner: " + planner.status().message());
  planner_ = std::move(*planner);
  manager_ = std::make_unique<manager::Manager>(clock_, *store_, *planner_, cluster_->templates);
  for (const auto& h : cluster_->hosts) {
    std::vector<VmRecord> vms;
    for (const auto& v : h.vms) vms.push_back(vmRecord(h, v));
    if (Status s = manager_->onRegister(hostRecord(h), vms); !s) die("register: " + s.toString());
  }
  if (!withReservations) return;
  // r1: three shared small VMs in an hour; r2: one dedicated host for bmi-decoder in four
  // hours. (Shared VMs are not placed on the destinations of a pending vacate: r1 goes first.)
  ReservationRequest shared;
  shared.owner = "other";
  shared.kind = ReservationKind::kShared;
  shared.vmCount = 3;
  shared.startNs = kWorldStartNs + 3600 * kNsPerSec;
  shared.endNs = shared.startNs + 3600 * kNsPerSec;
  shared.templateName = "small";
  ReservationRequest dedicated;
  dedicated.owner = "lab";
  dedicated.hostCount = 1;
  dedicated.startNs = kWorldStartNs + 4 * 3600 * kNsPerSec;
  dedicated.endNs = dedicated.startNs + 2 * 3600 * kNsPerSec;
  dedicated.templateName = "bmi-decoder";
  for (auto& req : {shared, dedicated}) {
    auto r = manager_->submit(req);
    if (!r) die("seed reservation: " + r.status().toString());
    if (r->state != ReservationState::kAdmitted) die("seed reservation rejected: " + r->reason);
  }
}

StatusCode World::callClient(zmq::message_t frame) {
  // As vrmd in insecure mode serves it: the caller is who the frame says it is, so fuzzed
  // frames act as the operator, as users, and as owners of other users' reservations.
  const manager::Caller caller =
      manager::Caller::fromRequester(manager::requesterOf(frame, fuzzLimits()));
  zmq::message_t reply = manager::answerClientFrame(*manager_, clock_, caller, std::move(frame),
                                                    fuzzLimits(), backups_.get());
  // The reply goes back to a client: it must always be one well-formed message.
  auto decoded = protocol::decodeFrame(std::move(reply));
  if (!decoded) die("reply frame does not decode: " + decoded.status().message());
  auto root = decoded->root<wire::ClientReply>();
  if (!root) die("reply is not a ClientReply: " + root.status().message());
  if (!root->hasStatus()) die("reply without a status");
  if (root->getNowNs() != clock_.now()) die("reply without the clock's time");
  return protocol::fromWire(root->getStatus().getCode());
}

std::optional<zmq::message_t> World::callAgent(const std::string& host, zmq::message_t frame) {
  auto answer = manager::applyAgentFrame(*manager_, host, std::move(frame), fuzzLimits());
  if (answer) {
    auto decoded = protocol::decodeFrame(answer->data(), answer->size());
    if (!decoded || !decoded->root<wire::ManagerMessage>()) die("answer to agent does not decode");
  }
  return answer;
}

void World::checkCalendar() {
  const auto& calendar = manager_->calendar();
  for (const auto& host : calendar.hosts()) {
    std::string why;
    if (calendar.overbooked(host, &why)) die("calendar of " + host + " overbooked: " + why);
  }
}

}  // namespace vrm::fuzz
