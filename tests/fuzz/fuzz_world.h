// A manager to fuzz: vrmd's Manager over an in-memory SQLite store, a ManualClock and the
// cost-aware planner, with the templates and hosts of examples/cluster.yaml registered (as their
// agents would) and, optionally, two admitted reservations (r1 shared, r2 dedicated) so that
// get/cancel/list and agent results reach real state.
//
// The two calls into vrmd's network edge live in callClient() and callAgent(), so a change of
// request_handler.h's signatures is one edit here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "schema/vrm.capnp.h"
#include "vrm/manager/manager.h"
#include "vrm/manager/store.h"
#include "vrm/manager/store_backups.h"
#include "vrm/planner/vacate_planner.h"
#include "vrm/protocol/cluster.h"
#include "vrm/protocol/codec.h"
#include "vrm/protocol/time.h"

namespace vrm::fuzz {

// 2027-01-15T08:00:00Z: the world's clock starts here.
inline constexpr TimeNs kWorldStartNs = 1'800'000'000 * kNsPerSec;

// Limits small enough that an amplifying frame stays cheap, as vrmd's defaults do at scale.
inline protocol::DecodeLimits fuzzLimits() {
  protocol::DecodeLimits limits;
  limits.maxFrameBytes = 1u << 20;
  limits.traversalLimitWords = 1u << 16;
  return limits;
}

class World {
 public:
  // Aborts (a fuzz set-up bug, not a finding) if the example cluster cannot be loaded.
  explicit World(bool withReservations);

  manager::Manager& manager() { return *manager_; }
  ManualClock& clock() { return clock_; }
  const ClusterSpec& cluster() const { return *cluster_; }

  // One client request frame through vrmd's handler, from the caller its requester field names
  // (vrmd's insecure mode). Aborts unless the reply is a well-formed
  // ClientReply with a status and the clock's time; returns the reply's status code.
  StatusCode callClient(zmq::message_t frame);
  // One agent frame from the agent connected as `host` through vrmd's handler.
  std::optional<zmq::message_t> callAgent(const std::string& host, zmq::message_t frame);

  // Aborts with a description when the manager's calendar books any host beyond its capacity.
  void checkCalendar();

 private:
  ManualClock clock_{kWorldStartNs};
  std::shared_ptr<const ClusterSpec> cluster_;
  std::unique_ptr<manager::Store> store_;
  std::unique_ptr<manager::StoreBackups> backups_;  // fuzzed backup requests read the store
  std::unique_ptr<planner::VacatePlanner> planner_;
  std::unique_ptr<manager::Manager> manager_;
};

// The example cluster's hosts as agents register them.
HostRecord hostRecord(const HostSpec& h);
VmRecord vmRecord(const HostSpec& h, const VmSpec& v);

// Silences logging (every malformed frame is a warning) for the whole process.
void quietLogs();

// Serialises a built message into a frame, as a peer would send it.
zmq::message_t frameOf(capnp::MessageBuilder& message);

}  // namespace vrm::fuzz
