// The client edge of a vrmd replica that does not lead its etcd store (README: High
// availability): it binds the client endpoint the leader would and answers every request with
// "not the leader" (status unavailable, ClientReply.notLeader) naming the leader's advertised
// endpoint, so that a client given any replica reaches the leader (the client library follows
// the redirect once). With an agent endpoint it binds that too and answers every agent message
// with ManagerMessage.notLeader, so that an agent given every replica's endpoint moves on to
// the next (vmscheduler/.../replica_endpoints.h). It serves nothing else: no store is open.
//
// Security: with `curve` the sockets are CURVE servers with vrmd's key pair, but without a ZAP
// handler, so any peer that knows vrmd's public key gets the answer; it tells nothing but where
// the leader is, and the leader authenticates the request (or the agent's key) itself.
//
// Threading: one owner thread (vrmd's main thread while it waits to be elected).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "vrm/protocol/codec.h"
#include "vrm/protocol/curve.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

// The answer of a replica that does not lead to one client request frame: the request's id
// (0 when the frame cannot be read), status unavailable with a message a person can act on,
// notLeader.leaderEndpoint = `leaderEndpoint` ("" = no leader known), nowNs = `nowNs`.
zmq::message_t answerAsStandby(const zmq::message_t& request, const std::string& leaderEndpoint,
                               TimeNs nowNs, const protocol::DecodeLimits& limits = {});

// The answer of a replica that does not lead to any agent message, whatever it holds:
// ManagerMessage.notLeader{leaderEndpoint} ("" = no leader known).
zmq::message_t answerAgentAsStandby(const std::string& leaderEndpoint);

struct StandbyServerOptions {
  std::string clientEndpoint = "tcp://127.0.0.1:5555";  // as ServerOptions::clientEndpoint
  std::optional<protocol::CurveKeyPair> curve;          // set: a CURVE server (see above)
  protocol::DecodeLimits limits;
  std::string agentEndpoint;  // as ServerOptions::agentEndpoint; "" = agents not answered
};

class StandbyServer {
 public:
  // The socket lives in a context of its own, so that close() frees the port for good before
  // the elected replica's Server binds it.
  explicit StandbyServer(StandbyServerOptions options);
  ~StandbyServer();  // close()
  StandbyServer(const StandbyServer&) = delete;
  StandbyServer& operator=(const StandbyServer&) = delete;

  // Errors: unavailable with ZeroMQ's reason (address in use), invalid-argument for a key
  // ZeroMQ refuses.
  Status bind();
  // The bound endpoints (the OS's port for "*"); empty before bind() (agent: or without one).
  std::string clientEndpoint() const { return bound_; }
  std::string agentEndpoint() const { return boundAgents_; }

  // Waits up to `maxWait` for requests, then answers every one that has arrived as
  // answerAsStandby(leaderEndpoint), and every agent message as answerAgentAsStandby. Returns
  // how many were answered.
  int runOnce(std::chrono::milliseconds maxWait, const std::string& leaderEndpoint, TimeNs nowNs);

  // Unbinds and closes the socket and ends its context: on return the port is free. Requests
  // not yet answered are dropped (their clients time out): answer them first with runOnce(0).
  // Idempotent.
  void close();

 private:
  StandbyServerOptions options_;
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<zmq::socket_t> agents_;  // with options_.agentEndpoint
  std::string bound_;
  std::string boundAgents_;
};

}  // namespace vrm::manager
