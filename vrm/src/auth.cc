#include "vrm/manager/auth.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <set>
#include <sstream>

#include "vrm/protocol/curve.h"
#include "vrm/protocol/token.h"

namespace vrm::manager {

const char* roleName(Role role) {
  switch (role) {
    case Role::kAnonymous:
      return "anonymous";
    case Role::kUser:
      return "user";
    case Role::kAdmin:
      return "admin";
  }
  return "anonymous";
}

std::string Caller::describe() const {
  if (role == Role::kAnonymous) return "anonymous";
  return (name.empty() ? std::string("an operator") : name) + " (" + roleName(role) + ")";
}

namespace {

bool isNameWord(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '@' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<AuthorizedKeys> AuthorizedKeys::parse(std::string_view text, const std::string& source) {
  AuthorizedKeys out;
  std::set<std::string> keys, tokens, clientNames, webNames, agentHosts;
  std::istringstream in{std::string(text)};
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string word; words >> word;) w.push_back(word);
    // Z85 keys may contain '#': a comment is a word starting with '#' where no field is due
    // (the whole line, or after the last field).
    if (w.empty() || w[0][0] == '#') continue;
    const std::size_t fields = w[0] == "agent" ? 3 : 4;
    if (w.size() > fields && w[fields][0] == '#') w.resize(fields);
    auto bad = [&](const std::string& why) {
      return Status::invalid(source + ":" + std::to_string(n) + ": " + why);
    };
    auto role = [&](const std::string& r) -> std::optional<Role> {
      if (r == "user") return Role::kUser;
      if (r == "admin") return Role::kAdmin;
      return std::nullopt;
    };
    auto checkKey = [&](const std::string& key) -> Status {
      if (Status s = protocol::checkZ85Key(key, "the public key"); !s) return bad(s.message());
      if (!keys.insert(key).second) return bad("this key is already listed");
      return Status::ok();
    };
    const std::string& kind = w[0];
    if (kind == "client" || kind == "web") {
      const bool web = kind == "web";
      if (w.size() != 4) {
        return bad(web ? "expected 'web <name> <user|admin> <token>'"
                       : "expected 'client <name> <user|admin> <public-key>'");
      }
      if (!isNameWord(w[1])) return bad("'" + w[1] + "' is not a name ([A-Za-z0-9._@-])");
      auto r = role(w[2]);
      if (!r) return bad("role must be 'user' or 'admin', not '" + w[2] + "'");
      if (web) {
        if (!webNames.insert(w[1]).second) return bad("web name '" + w[1] + "' listed twice");
        std::string hash;
        if (w[3].rfind(protocol::kTokenHashPrefix, 0) == 0) {
          if (!protocol::isBearerTokenHash(w[3])) {
            return bad(
                "a token hash is 'sha256:' and 64 lowercase hex digits "
                "(`vrmctl hash-token` prints it)");
          }
          hash = w[3];
        } else {
          if (w[3].size() < 16 || !isNameWord(w[3])) {
            return bad(
                "a token is at least 16 characters of [A-Za-z0-9._@-] "
                "(`vrmctl keygen --token` makes one)");
          }
          hash = protocol::hashBearerToken(w[3]);
          if (hash.empty()) return bad("cannot hash the token (OpenSSL's SHA-256 failed)");
          out.warnings_.push_back(source + ":" + std::to_string(n) + ": web entry '" + w[1] +
                                  "' holds its token in clear: whoever reads this file can use "
                                  "it; store `vrmctl hash-token` of it instead");
        }
        if (!tokens.insert(hash).second) return bad("this token is already listed");
        out.webs_.push_back({w[1], *r, hash});
      } else {
        if (!clientNames.insert(w[1]).second) return bad("client '" + w[1] + "' listed twice");
        if (Status s = checkKey(w[3]); !s) return s;
        out.clients_.push_back({w[1], *r, w[3]});
      }
    } else if (kind == "agent") {
      if (w.size() != 3) return bad("expected 'agent <host> <public-key>'");
      if (!isNameWord(w[1])) return bad("'" + w[1] + "' is not a host name");
      if (!agentHosts.insert(w[1]).second) return bad("agent '" + w[1] + "' listed twice");
      if (Status s = checkKey(w[2]); !s) return s;
      out.agents_.push_back({w[1], w[2]});
    } else {
      return bad("unknown entry '" + kind + "' (expected client, agent or web)");
    }
  }
  return out;
}

Result<AuthorizedKeys> AuthorizedKeys::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::invalid("cannot read the authorized file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

const AuthorizedKeys::Client* AuthorizedKeys::clientByKey(const std::string& z85) const {
  for (const auto& c : clients_) {
    if (c.publicKey == z85) return &c;
  }
  return nullptr;
}

const AuthorizedKeys::Client* AuthorizedKeys::clientByName(const std::string& name) const {
  for (const auto& c : clients_) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const AuthorizedKeys::Agent* AuthorizedKeys::agentByKey(const std::string& z85) const {
  for (const auto& a : agents_) {
    if (a.publicKey == z85) return &a;
  }
  return nullptr;
}

const AuthorizedKeys::Agent* AuthorizedKeys::agentByHost(const std::string& host) const {
  for (const auto& a : agents_) {
    if (a.host == host) return &a;
  }
  return nullptr;
}

const AuthorizedKeys::Web* AuthorizedKeys::webByToken(const std::string& token) const {
  if (token.empty()) return nullptr;
  // Comparing hashes: how long the comparison takes tells nothing about the token.
  const std::string hash = protocol::hashBearerToken(token);
  if (hash.empty()) return nullptr;
  for (const auto& w : webs_) {
    if (w.tokenHash == hash) return &w;
  }
  return nullptr;
}

const AuthorizedKeys::Web* AuthorizedKeys::webByName(const std::string& name) const {
  for (const auto& w : webs_) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// ZAP

ZapHandler::ZapHandler(zmq::context_t& context, std::shared_ptr<const AuthorizedKeys> authorized)
    : authorized_(std::move(authorized)), socket_(context, zmq::socket_type::rep) {
  socket_.set(zmq::sockopt::linger, 0);
}

Status ZapHandler::bind() {
  try {
    socket_.bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    return Status::unavailable(std::string("cannot bind the ZAP handler: ") + e.what() +
                               " (one authenticating server per ZeroMQ context)");
  }
  return Status::ok();
}

int ZapHandler::handlePending() {
  int answered = 0;
  while (true) {
    std::vector<zmq::message_t> parts;
    while (true) {
      zmq::message_t part;
      if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
      const bool more = part.more();
      parts.push_back(std::move(part));
      if (!more) break;
    }
    if (parts.empty()) return answered;
    answer(parts);
    ++answered;
  }
}

void ZapHandler::answer(std::vector<zmq::message_t>& request) {
  // RFC 27: version, request id, domain, address, identity, mechanism, credentials...
  auto frame = [&](std::size_t i) { return i < request.size() ? request[i].to_string() : ""; };
  const std::string version = frame(0), requestId = frame(1), domain = frame(2), address = frame(3),
                    mechanism = frame(5);
  std::string status = "400", text = "unknown key", userId;
  const std::string key = protocol::z85FromBinaryKey(frame(6));
  if (version != "1.0") {
    text = "unsupported ZAP version";
  } else if (mechanism != "CURVE" || key.empty()) {
    text = "CURVE required";
  } else if (domain == kZapDomainAgents) {
    if (const auto* a = authorized_->agentByKey(key)) {
      status = "200", text = "OK", userId = a->host;
    }
  } else if (domain == kZapDomainClients || domain == kZapDomainEvents) {
    if (const auto* c = authorized_->clientByKey(key)) {
      status = "200", text = "OK", userId = c->name;
    }
  } else {
    text = "unknown ZAP domain";
  }
  if (status == "200") {
    spdlog::debug("{} authenticated as {} on {}", address, userId, domain);
  } else {
    spdlog::warn("refused a {} handshake from {} on {}: {} (key {})", mechanism, address, domain,
                 text, key.empty() ? "none" : key);
  }
  try {
    socket_.send(zmq::buffer(std::string("1.0")), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(requestId), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(status), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(text), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(userId), zmq::send_flags::sndmore);
    socket_.send(zmq::message_t(), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    spdlog::warn("cannot answer a ZAP request: {}", e.what());
  }
}

std::string userIdOf(const zmq::message_t& frame) {
  const char* v = zmq_msg_gets(const_cast<zmq_msg_t*>(frame.handle()), "User-Id");
  return v ? std::string(v) : std::string();
}

}  // namespace vrm::manager
