// vrmd's network edge: a ROUTER for clients and a ROUTER for agents, one event-loop thread.
//
// Frames are decoded with protocol::decodeFrame (limits, alignment); wire types become domain
// types here and nowhere else. Every client request gets exactly one reply, malformed ones
// included (status invalid-argument, request id 0 when it could not be read). Agents are
// addressed by routing id = host name; a command to an agent that is not connected fails at
// once (ROUTER_MANDATORY) and is reported to the manager as a failed result.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "vrm/manager/manager.h"
#include "vrm/protocol/codec.h"

namespace vrm::manager {

struct ServerOptions {
  std::string clientEndpoint = "tcp://127.0.0.1:5555";  // default: loopback only
  std::string agentEndpoint = "tcp://127.0.0.1:5556";
  // More endpoints the client ROUTER binds as well, e.g. "inproc://vrm-web" for helper threads
  // of this process (the web calendar) that talk to the core as ordinary clients. Default none.
  std::vector<std::string> extraClientEndpoints;
  // PUB socket publishing every committed reservation event (EventNotice, topic "<id>|");
  // empty = no event stream.
  std::string eventsEndpoint;
  protocol::DecodeLimits limits;
  // Longest real-time sleep of the loop, so ticks happen even with nothing to read.
  std::chrono::milliseconds maxPollWait{200};
};

class Server {
 public:
  // `context`, `manager` and `clock` must outlive the server. Not thread-safe: run it on one
  // thread.
  Server(zmq::context_t& context, Manager& manager, const Clock& clock, ServerOptions options);

  // Binds both sockets (the client socket also on every extra endpoint). Errors: unavailable
  // with ZeroMQ's reason (address in use, ...).
  Status bind();
  // The bound endpoints, with the port the OS chose when the option said "*". clientEndpoint()
  // is the main one (ServerOptions::clientEndpoint), not an extra one.
  std::string clientEndpoint() const;
  std::string agentEndpoint() const;
  std::string eventsEndpoint() const;  // empty when events are off

  // One loop iteration: waits up to `maxWait` (less when the manager has something due),
  // handles what arrived, ticks the manager and sends its commands.
  void runOnce(std::chrono::milliseconds maxWait);
  void run(const std::atomic<bool>& stop);

 private:
  void handleClient();
  void handleAgent();
  void flushOutbox();
  void publishEvents();
  void sendToAgent(const std::string& host, capnp::MessageBuilder& message);

  zmq::context_t& context_;
  Manager& manager_;
  const Clock& clock_;
  ServerOptions options_;
  zmq::socket_t clients_;
  zmq::socket_t agents_;
  zmq::socket_t events_;
  std::string boundClientEndpoint_;
};

}  // namespace vrm::manager
