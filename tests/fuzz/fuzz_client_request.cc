// Fuzz target: vrmd's client request handler (manager/request_handler.h answerClientFrame) on
// raw frames, as they arrive on the client endpoint.
//
// A frame that decodes as a ClientRequest runs against a fresh World (example cluster
// registered, r1 shared and r2 dedicated admitted), so every input is reproducible on its own;
// frames that do not decode never reach the manager and share one World. Contract checked: no
// crash, no sanitizer report, and the reply is always one well-formed ClientReply.
#include <cstddef>
#include <cstdint>

#include "fuzz_world.h"

using namespace vrm;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::World undecodable(false);
  zmq::message_t frame(data, size);
  auto decoded = protocol::decodeFrame(data, size, fuzz::fuzzLimits());
  if (!decoded || !decoded->root<wire::ClientRequest>()) {
    (void)undecodable.callClient(std::move(frame));
    return 0;
  }
  fuzz::World world(true);
  (void)world.callClient(std::move(frame));
  world.checkCalendar();
  return 0;
}
