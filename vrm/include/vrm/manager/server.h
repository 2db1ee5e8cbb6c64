// vrmd's network edge: a ROUTER for clients, a ROUTER for agents, an optional PUB of events,
// one event-loop thread.
//
// Frames are decoded with protocol::decodeFrame (limits, alignment); wire types become domain
// types here and nowhere else. Every client request gets exactly one reply, malformed ones
// included (status invalid-argument, request id 0 when it could not be read). A command to an
// agent that is not connected fails at once (ROUTER_MANDATORY) and is reported to the manager
// as a failed result.
//
// Security (auth.h). With ServerOptions::curve set, the three TCP sockets are CURVE servers and
// a ZAP handler (polled by this loop) admits only the keys of ServerOptions::authorized:
//  * a client request is served as the client its key names (never its `requester` field);
//  * an agent frame counts for the host its key is bound to; a frame whose routing id names
//    another host is refused and logged. Commands go to the connection the host's key last
//    spoke from (routing ids are not trusted, and ROUTER handover is off so no connection can
//    take over another's id);
//  * the in-process endpoints (extraClientEndpoints, inproc:// only: the web calendar) have
//    their own socket, where the `requester` field names a `web` entry of the authorized file
//    (the web server authenticated its bearer token) and "" is anonymous.
// Without `curve` the server is in insecure mode: no authentication, agents addressed by
// routing id = host name, and the requester field is trusted (Caller::fromRequester).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "vrm/manager/admission_metrics.h"
#include "vrm/manager/auth.h"
#include "vrm/manager/manager.h"
#include "vrm/manager/notifier.h"
#include "vrm/manager/store_backups.h"
#include "vrm/manager/webhook_sender.h"
#include "vrm/protocol/codec.h"
#include "vrm/protocol/curve.h"

namespace vrm::manager {

struct ServerOptions {
  std::string clientEndpoint = "tcp://127.0.0.1:5555";  // default: loopback only
  std::string agentEndpoint = "tcp://127.0.0.1:5556";
  // In-process client endpoints, e.g. "inproc://vrm-web" for helper threads of this process
  // (the web calendar) that talk to the core as clients; served by a socket of their own
  // (see above). With `curve` set only inproc:// is accepted. Default none.
  std::vector<std::string> extraClientEndpoints;
  // CURVE key pair of the server: set = authenticated mode, unset = insecure mode (default).
  std::optional<protocol::CurveKeyPair> curve;
  // Who may connect, and as whom. Required with `curve`.
  std::shared_ptr<const AuthorizedKeys> authorized;
  // PUB socket publishing every committed reservation event (EventNotice, topic "<id>|");
  // empty = no event stream.
  std::string eventsEndpoint;
  protocol::DecodeLimits limits;
  // Where admins' backups of the store come from (ClientRequest.backup); must outlive the
  // server. Null (default) = backups are refused as unavailable.
  StoreBackups* backups = nullptr;
  // Where each submit's latency and decision are recorded (via "zmq" for the TCP endpoint, "web"
  // for the in-process ones); must outlive the server. Null (default) = not recorded.
  AdmissionMetrics* admissions = nullptr;
  // Longest real-time sleep of the loop, so ticks happen even with nothing to read.
  std::chrono::milliseconds maxPollWait{200};
  // Asked right before the manager's commands go to agents, each loop turn: false = this vrmd
  // may not act on the world now (a replica on etcd past its lease: its leadership cannot be
  // proven), and the commands stay in the manager's outbox. Empty (default) = always may.
  std::function<bool()> mayAct;
  // Webhook notifications (README: Notifications): each loop turn, every committed event goes
  // to `notifier`, the outcomes `webhooks` finished go back to it and the posts it has due go to
  // `webhooks` (which makes them on its own threads: the loop never waits for an endpoint);
  // get replies carry the reservation's deliveries. Both must outlive the server; null
  // (default) = no webhooks.
  Notifier* notifier = nullptr;
  WebhookSender* webhooks = nullptr;
};

class Server {
 public:
  // `context`, `manager` and `clock` must outlive the server. Not thread-safe: run it on one
  // thread.
  Server(zmq::context_t& context, Manager& manager, const Clock& clock, ServerOptions options);
  ~Server();

  // Binds the sockets (and, with `curve`, the ZAP handler first, so no handshake is ever
  // unauthenticated). Errors: unavailable with ZeroMQ's reason (address in use, no CURVE in
  // libzmq, ...), invalid-argument for inconsistent options.
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

  // CURVE mode (vrmd's SIGHUP): reads the authorized file at `path` again and, if it parses,
  // judges by it every later handshake and every later frame of the connections already open:
  // a client whose entry is gone is served as anonymous (read-only) from its next request, an
  // agent whose host is gone is refused. (An agent whose host stays listed with a new key keeps
  // its open connection until it reconnects: ZAP names the host, not the key, on each frame.)
  // Returns the new list (e.g. for the web server's tokens). Call it between runOnce() calls.
  // Errors, the previous list staying in force: invalid-argument (unreadable file, a bad line,
  // or insecure mode).
  Result<std::shared_ptr<const AuthorizedKeys>> reloadAuthorized(const std::string& path);

 private:
  void handleClient(zmq::socket_t& socket, bool local);
  void handleAgent();
  // Who sent a client frame (see the security notes above).
  Caller callerOf(const zmq::message_t& payload, bool local) const;
  void flushOutbox();
  void publishEvents();
  void deliverWebhooks();
  void sendToAgent(const std::string& host, capnp::MessageBuilder& message);

  zmq::context_t& context_;
  Manager& manager_;
  const Clock& clock_;
  ServerOptions options_;
  zmq::socket_t clients_;
  zmq::socket_t agents_;
  zmq::socket_t events_;
  zmq::socket_t localClients_;  // extraClientEndpoints
  std::unique_ptr<ZapHandler> zap_;
  // CURVE mode: host -> routing id of the connection its key last spoke from.
  std::map<std::string, std::string> agentRoutes_;
  std::string boundClientEndpoint_;
};

}  // namespace vrm::manager
