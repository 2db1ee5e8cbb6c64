// Who may talk to vrmd, and as whom: the authorized file, the callers it defines, and the ZAP
// handler that lets only known CURVE keys complete a handshake.
//
// The authorized file is plain text, one entry per line; a line starting with '#', and words
// starting with '#' after an entry's fields, are comments (Z85 keys may contain '#'):
//   client <name> <user|admin> <public-key>   a vrmctl / client-library user (CURVE key)
//   agent  <host> <public-key>                the vmschedd of host <host> (CURVE key)
//   web    <name> <user|admin> sha256:<hex>   a bearer token for the web calendar's API, stored
//                                             as its hash (vrm/protocol/token.h; `vrmctl
//                                             hash-token` prints it)
// Names and hosts are non-empty words of [A-Za-z0-9._@-]; keys are Z85 (`vrmctl keygen` prints
// them). A web entry may still give the token itself (at least 16 characters of that alphabet):
// it is accepted, kept only as its hash, and reported in warnings(), since the file then lets
// whoever reads it in. A key or token may appear once (a token in clear and its hash are the
// same token); a client name once among clients, a web name once among web entries (the same
// name in both is the same owner). Any bad line makes the whole file invalid, naming the line.
//
// vrmd reads the file at start and again on SIGHUP (Server::setAuthorized); a file that does
// not parse on reload leaves the previous list in force.
//
// Roles: `user` may submit reservations owned by itself, cancel its own, and see the handles
// (addresses, accounts) of its own clones; `admin` may do everything. Anonymous callers (the web
// calendar without a token) may only read, and never see handles.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "vrm/protocol/status.h"

namespace vrm::manager {

enum class Role { kAnonymous, kUser, kAdmin };
const char* roleName(Role role);  // "anonymous", "user", "admin"

// The identity a request is served as. Value type.
struct Caller {
  std::string name;  // empty for anonymous callers and the insecure-mode operator
  Role role = Role::kAnonymous;

  static Caller anonymous() { return {}; }
  static Caller user(std::string name) { return {std::move(name), Role::kUser}; }
  static Caller admin(std::string name) { return {std::move(name), Role::kAdmin}; }
  // Insecure mode only: the client's self-declared requester field, as before authentication
  // existed: empty means an operator (admin), anything else a user of that name.
  static Caller fromRequester(const std::string& requester) {
    return requester.empty() ? admin("") : user(requester);
  }

  // May act on (cancel, see the handles of) a reservation owned by `owner`.
  bool mayActFor(const std::string& owner) const {
    return role == Role::kAdmin || (role == Role::kUser && !name.empty() && owner == name);
  }
  // "alice (user)", "an operator (admin)", "anonymous"
  std::string describe() const;
};

class AuthorizedKeys {
 public:
  struct Client {
    std::string name;
    Role role = Role::kUser;
    std::string publicKey;  // Z85
  };
  struct Agent {
    std::string host;
    std::string publicKey;  // Z85
  };
  struct Web {
    std::string name;
    Role role = Role::kUser;
    std::string tokenHash;  // "sha256:<hex>", see vrm/protocol/token.h
  };

  // Parses the file's text; `source` names it in errors ("authorized:3: ..."). Errors:
  // invalid-argument naming the line.
  static Result<AuthorizedKeys> parse(std::string_view text, const std::string& source);
  // Reads and parses the file. Errors: invalid-argument (unreadable, or a bad line).
  static Result<AuthorizedKeys> load(const std::string& path);

  const Client* clientByKey(const std::string& z85) const;
  const Client* clientByName(const std::string& name) const;
  const Agent* agentByKey(const std::string& z85) const;
  const Agent* agentByHost(const std::string& host) const;
  // The entry of a presented bearer token (hashed here and compared with the stored hashes).
  const Web* webByToken(const std::string& token) const;
  const Web* webByName(const std::string& name) const;

  const std::vector<Client>& clients() const { return clients_; }
  const std::vector<Agent>& agents() const { return agents_; }
  const std::vector<Web>& webs() const { return webs_; }
  // Things to tell the operator about a file that is valid all the same ("authorized:4: web
  // entry 'alice' holds its token in clear ..."), one per line concerned.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::vector<Client> clients_;
  std::vector<Agent> agents_;
  std::vector<Web> webs_;
  std::vector<std::string> warnings_;
};

// ZAP domains of vrmd's CURVE sockets: which list a key is looked up in.
inline constexpr const char* kZapDomainClients = "vrm-clients";  // client ROUTER
inline constexpr const char* kZapDomainAgents = "vrm-agents";    // agent ROUTER
inline constexpr const char* kZapDomainEvents = "vrm-events";    // events PUB (client keys)

// ZeroMQ's authentication hook (RFC 27 ZAP) for one context: a REP socket on
// inproc://zeromq.zap.01 that libzmq asks, for every CURVE handshake on a socket of that
// context, whether the client key may connect. Accepts client keys on the clients and events
// domains and agent keys on the agents domain, and sets the connection's User-Id to the entry's
// name (client) or host (agent), which every received frame then carries
// (zmq_msg_gets("User-Id")). Everything else is refused (status 400) and logged.
//
// Not thread-safe: poll socket() and call handle() on the thread that owns it.
class ZapHandler {
 public:
  ZapHandler(zmq::context_t& context, std::shared_ptr<const AuthorizedKeys> authorized);
  // Later handshakes are judged by `authorized` (a reloaded file); open connections are not
  // affected here (the Server re-checks their names on every frame).
  void setAuthorized(std::shared_ptr<const AuthorizedKeys> authorized) {
    authorized_ = std::move(authorized);
  }
  // Binds inproc://zeromq.zap.01. Errors: unavailable (another handler owns this context's
  // ZAP endpoint).
  Status bind();
  zmq::socket_t& socket() { return socket_; }
  // Answers every pending request (non-blocking). Returns how many were answered.
  int handlePending();

 private:
  void answer(std::vector<zmq::message_t>& request);

  std::shared_ptr<const AuthorizedKeys> authorized_;
  zmq::socket_t socket_;
};

// The User-Id ZAP gave the connection a frame came from, or "" (no CURVE, inproc).
std::string userIdOf(const zmq::message_t& frame);

}  // namespace vrm::manager
