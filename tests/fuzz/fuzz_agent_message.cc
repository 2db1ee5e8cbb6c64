// Fuzz target: vrmd's agent message handler (manager/request_handler.h applyAgentFrame) on raw
// frames, as they arrive on the agent endpoint, followed by a clock tick so that whatever the
// message changed is acted on.
//
// The first input byte picks the sending agent (node1..node3 of the example cluster, or a host
// vrmd does not know); the rest is the frame. A frame that decodes as an AgentMessage runs
// against a fresh World (r1 shared and r2 dedicated admitted) whose clock is first moved to r2's
// vacate, so results and progress can match commands in flight; others share one World.
// Contract checked: no crash, no sanitizer report, any answer to the agent is a well-formed
// ManagerMessage, and the calendar is never overbooked by what an agent reports about commands
// (inventories are taken as the truth, so the check is only made for non-inventory messages).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_world.h"

using namespace vrm;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static const std::string kHosts[] = {"node1", "node2", "node3", "intruder"};
  const std::string& host = kHosts[data[0] % 4];
  ++data;
  --size;
  static fuzz::World undecodable(false);
  zmq::message_t frame(data, size);
  auto decoded = protocol::decodeFrame(data, size, fuzz::fuzzLimits());
  auto root = decoded ? decoded->root<wire::AgentMessage>()
                      : Result<wire::AgentMessage::Reader>(decoded.status());
  if (!root) {
    (void)undecodable.callAgent(host, std::move(frame));
    return 0;
  }
  const bool reportsInventory = root->which() == wire::AgentMessage::REGISTER ||
                                root->which() == wire::AgentMessage::HEARTBEAT;
  fuzz::World world(true);
  // Reach r2's vacate: commands 1.. are in flight, so results with small ids match them.
  auto r2 = world.manager().get("r2");
  world.clock().set(r2->plan.latestSafeStartNs);
  world.manager().tick();
  (void)world.manager().takeOutbox();
  (void)world.callAgent(host, std::move(frame));
  world.manager().tick();
  if (!reportsInventory) world.checkCalendar();
  return 0;
}
