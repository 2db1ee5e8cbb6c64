#include "vrm/protocol/curve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

namespace vrm::protocol {

namespace {

constexpr std::size_t kZ85KeyChars = 40;

bool isZ85Char(char c) {
  static constexpr const char* kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  return c != '\0' && std::strchr(kAlphabet, c) != nullptr;
}

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r\n"));
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s;
}

Status writeFile(const std::string& path, const std::string& text, mode_t mode, bool overwrite) {
  const int flags = O_WRONLY | O_CREAT | (overwrite ? O_TRUNC : O_EXCL);
  const int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::invalid(path + " already exists (not overwritten; remove it first)");
    }
    return Status::invalid("cannot write " + path + ": " + std::strerror(errno));
  }
  // O_CREAT's mode applies only to new files; an overwritten secret must not stay readable.
  if (::fchmod(fd, mode) != 0) {
    ::close(fd);
    return Status::invalid("cannot chmod " + path + ": " + std::strerror(errno));
  }
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return Status::invalid("cannot write " + path + ": " + std::strerror(errno));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0)
    return Status::invalid("cannot write " + path + ": " + std::strerror(errno));
  return Status::ok();
}

}  // namespace

Status requireCurve() {
  if (!zmq_has("curve")) {
    return Status::unavailable(
        "this ZeroMQ library has no CURVE support (zmq_has(\"curve\") is false): install a "
        "libzmq built with libsodium, or run vrmd with --insecure");
  }
  return Status::ok();
}

Result<CurveKeyPair> generateCurveKeyPair() {
  if (Status s = requireCurve(); !s) return s;
  char pub[kZ85KeyChars + 1] = {};
  char sec[kZ85KeyChars + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::unavailable(std::string("zmq_curve_keypair failed: ") +
                               zmq_strerror(zmq_errno()));
  }
  return CurveKeyPair{pub, sec};
}

Status checkZ85Key(const std::string& key, const std::string& what) {
  if (key.size() != kZ85KeyChars) {
    return Status::invalid(what +
                           " must be a 40-character Z85 key (as `vrmctl keygen` writes), "
                           "got " +
                           std::to_string(key.size()) + " characters");
  }
  for (char c : key) {
    if (!isZ85Char(c)) return Status::invalid(what + " has a character outside Z85");
  }
  return Status::ok();
}

Status writeCurveKeyPair(const CurveKeyPair& pair, const std::string& prefix, bool overwrite) {
  if (Status s = checkZ85Key(pair.publicKey, "public key"); !s) return s;
  if (Status s = checkZ85Key(pair.secretKey, "secret key"); !s) return s;
  const std::string secret =
      "# vrm CURVE key pair: keep this file private (mode 0600)\n"
      "public-key " +
      pair.publicKey + "\nsecret-key " + pair.secretKey + "\n";
  if (Status s = writeFile(prefix + ".key", secret, 0600, overwrite); !s) return s;
  return writeFile(prefix + ".pub", pair.publicKey + "\n", 0644, overwrite);
}

Result<CurveKeyPair> loadCurveKeyPair(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::invalid("cannot read key file " + path + ": " + std::strerror(errno));
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::invalid("key file " + path + " is accessible by others (mode " + mode +
                           "): run chmod 600 " + path);
  }
  std::ifstream in(path);
  if (!in) return Status::invalid("cannot read key file " + path);
  CurveKeyPair pair;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    // Z85 has '#' in its alphabet: only a word that starts with '#' outside the value starts
    // a comment.
    std::istringstream words(line);
    std::string key, value, extra;
    words >> key;
    if (key.empty() || key[0] == '#') continue;
    words >> value >> extra;
    if (!extra.empty() && extra[0] == '#') extra.clear();
    const std::string where = path + ":" + std::to_string(n) + ": ";
    if (value.empty() || !extra.empty() || (key != "public-key" && key != "secret-key")) {
      return Status::invalid(where + "expected 'public-key <Z85>' or 'secret-key <Z85>'");
    }
    if (Status s = checkZ85Key(value, where + key); !s) return s;
    (key == "public-key" ? pair.publicKey : pair.secretKey) = value;
  }
  if (pair.secretKey.empty()) return Status::invalid(path + ": no secret-key line");
  if (Status s = requireCurve(); !s) return s;
  char derived[kZ85KeyChars + 1] = {};
  if (zmq_curve_public(derived, pair.secretKey.c_str()) != 0) {
    return Status::invalid(path + ": the secret key is not a valid CURVE key");
  }
  if (pair.publicKey.empty()) {
    pair.publicKey = derived;
  } else if (pair.publicKey != derived) {
    return Status::invalid(path + ": the public key does not belong to the secret key");
  }
  return pair;
}

Result<std::string> resolvePublicKey(const std::string& keyOrPath) {
  const std::string text = trim(keyOrPath);
  if (checkZ85Key(text, "key").isOk()) return text;
  std::ifstream in(text);
  if (!in) {
    return Status::invalid("'" + keyOrPath + "' is neither a Z85 public key nor a readable file");
  }
  std::string line;
  std::getline(in, line);
  line = trim(line);
  if (line.rfind("public-key ", 0) == 0 || line.rfind("# ", 0) == 0) {
    // A .key file: take its public key (checking the file's mode and consistency).
    auto pair = loadCurveKeyPair(text);
    if (!pair) return pair.status();
    return pair->publicKey;
  }
  if (Status s = checkZ85Key(line, text); !s) return s;
  return line;
}

std::string z85FromBinaryKey(const std::string& binary) {
  if (binary.size() != 32) return "";
  char out[kZ85KeyChars + 1] = {};
  if (!zmq_z85_encode(out, reinterpret_cast<const std::uint8_t*>(binary.data()), 32)) return "";
  return out;
}

void applyCurveClient(zmq::socket_t& socket, const CurveClientKeys& keys) {
  socket.set(zmq::sockopt::curve_serverkey, keys.serverPublicKey);
  socket.set(zmq::sockopt::curve_publickey, keys.own.publicKey);
  socket.set(zmq::sockopt::curve_secretkey, keys.own.secretKey);
}

void applyCurveServer(zmq::socket_t& socket, const CurveKeyPair& serverKeys,
                      const std::string& domain) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, serverKeys.secretKey);
  socket.set(zmq::sockopt::zap_domain, domain);
}

// ---------------------------------------------------------------------------------------------

HandshakeMonitor::HandshakeMonitor(zmq::context_t& context, zmq::socket_t& socket, std::string peer,
                                   bool curve)
    : socket_(socket),
      events_(context, zmq::socket_type::pair),
      peer_(std::move(peer)),
      curve_(curve) {
  static std::atomic<std::uint64_t> counter{0};
  const std::string endpoint = "inproc://vrm-handshake-monitor-" + std::to_string(::getpid()) +
                               "-" + std::to_string(counter++);
  const int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                     ZMQ_EVENT_DISCONNECTED;
  if (zmq_socket_monitor(socket_.handle(), endpoint.c_str(), events) != 0) throw zmq::error_t();
  events_.set(zmq::sockopt::linger, 0);
  events_.connect(endpoint);
}

HandshakeMonitor::~HandshakeMonitor() { zmq_socket_monitor(socket_.handle(), nullptr, 0); }

Status HandshakeMonitor::check() {
  Status verdict;
  while (true) {
    zmq::message_t head;
    if (!events_.recv(head, zmq::recv_flags::dontwait)) break;
    zmq::message_t address;
    if (head.more()) (void)events_.recv(address, zmq::recv_flags::dontwait);
    if (head.size() < 6) continue;
    std::uint16_t event;
    std::uint32_t value;
    std::memcpy(&event, head.data(), 2);
    std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
    // Every other event watched is a connection lost or a handshake failed.
    connected_ = event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      succeeded_ = true;
      ++handshakes_;
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
      ++disconnects_;  // not a verdict: a refused handshake is reported by its own event
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      verdict = Status::unauthorized(
          peer_ + " refused our key (ZAP status " + std::to_string(value) +
          "): is our public key in vrmd's authorized file, on the right line kind (client or "
          "agent)?");
    } else if (!curve_) {
      // A CURVE server closes a plain connection during the handshake (mechanism mismatch).
      verdict = Status::unauthorized(
          peer_ +
          " refused a connection without keys: it requires CURVE keys (vrmctl: "
          "--server-key and --client-key, or VRM_SERVER_KEY and VRM_CLIENT_KEY)");
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
               value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
      verdict = Status::unauthorized(peer_ + " does not use CURVE (insecure mode?) but we do");
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
               event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
      verdict = Status::unauthorized(peer_ + ": security handshake failed (" +
                                     (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
                                          ? std::string(zmq_strerror(static_cast<int>(value)))
                                          : "protocol error " + std::to_string(value)) +
                                     "): check the server key");
    }
  }
  return verdict;
}

std::string HandshakeMonitor::timeoutHint() const {
  if (succeeded_) return "";
  return curve_ ? "; no CURVE handshake completed: check the server key (VRM_SERVER_KEY) and "
                  "that vrmd's authorized file lists our key"
                : "; no handshake completed: if vrmd runs with keys, give its public key and ours "
                  "(VRM_SERVER_KEY, VRM_CLIENT_KEY)";
}

}  // namespace vrm::protocol
