// ZeroMQ CURVE keys for vrm's sockets: generating, storing, loading and applying them.
//
// Keys are Z85 text (40 characters for 32 bytes), as ZeroMQ prints them. A key pair lives in
// two files written by writeCurveKeyPair (`vrmctl keygen NAME` writes NAME.key and NAME.pub):
//   NAME.key  (mode 0600)   "public-key <Z85>\nsecret-key <Z85>\n" with '#' comment lines
//   NAME.pub                "<Z85>\n": the public key alone, to hand to the other side
// Errors are typed: invalid-argument for malformed keys and files (with the path and line),
// unavailable when the ZeroMQ library was built without CURVE.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <zmq.hpp>

#include "vrm/protocol/status.h"

namespace vrm::protocol {

struct CurveKeyPair {
  std::string publicKey;  // Z85, 40 characters
  std::string secretKey;  // Z85, 40 characters
};

// The keys a connecting socket (client, agent, subscriber) needs.
struct CurveClientKeys {
  std::string serverPublicKey;  // Z85: the vrmd it trusts
  CurveKeyPair own;             // its own pair, known to vrmd's authorized file
};

// ok, or unavailable when libzmq has no CURVE support (zmq_has("curve") is false).
Status requireCurve();

// A fresh key pair from zmq_curve_keypair. Errors: unavailable (no CURVE).
Result<CurveKeyPair> generateCurveKeyPair();

// Writes `pair` to `prefix`.key (0600, created exclusively) and `prefix`.pub. Refuses to
// overwrite either file (invalid-argument) unless `overwrite`.
Status writeCurveKeyPair(const CurveKeyPair& pair, const std::string& prefix,
                         bool overwrite = false);

// Reads a .key file. Refuses files that group or others may read (like ssh), malformed lines,
// and a public key that does not belong to the secret key.
Result<CurveKeyPair> loadCurveKeyPair(const std::string& path);

// Validates a Z85 public key (40 characters of the Z85 alphabet).
Status checkZ85Key(const std::string& key, const std::string& what);

// A public key given either as Z85 text or as the path of a file holding it (a .pub file, or
// a .key file whose public key is taken).
Result<std::string> resolvePublicKey(const std::string& keyOrPath);

// 32-byte binary key (as in ZAP requests) to Z85 text; empty if `binary` is not 32 bytes.
std::string z85FromBinaryKey(const std::string& binary);

// Makes `socket` a CURVE client of the server whose public key is in `keys` (before connect).
void applyCurveClient(zmq::socket_t& socket, const CurveClientKeys& keys);
// Makes `socket` a CURVE server with `serverKeys`, authenticated through ZAP `domain`
// (before bind).
void applyCurveServer(zmq::socket_t& socket, const CurveKeyPair& serverKeys,
                      const std::string& domain);

// Watches the handshakes of one connecting socket (zmq_socket_monitor over inproc), so that a
// refused key becomes a typed error instead of silence: ZeroMQ itself just drops a connection
// whose handshake failed and retries. Create it before the socket connects. Not thread-safe:
// use it on the socket's thread.
class HandshakeMonitor {
 public:
  // `peer` names the other side in messages ("vrmd at tcp://..."); `curve` says whether the
  // socket uses CURVE (it changes the advice given).
  HandshakeMonitor(zmq::context_t& context, zmq::socket_t& socket, std::string peer, bool curve);
  ~HandshakeMonitor();
  HandshakeMonitor(const HandshakeMonitor&) = delete;
  HandshakeMonitor& operator=(const HandshakeMonitor&) = delete;

  // For zmq::poll alongside the socket.
  zmq::socket_t& events() { return events_; }
  // Reads the events that arrived (non-blocking). Returns unauthorized when the peer refused
  // our key or the security mechanisms differ, ok otherwise.
  Status check();
  // A handshake completed since the monitor started.
  bool succeeded() const { return succeeded_; }
  // Handshakes completed and connections lost since the monitor started, as read by check():
  // a handshake after a lost connection is the peer back (restarted, or the network healed).
  std::uint64_t handshakes() const { return handshakes_; }
  std::uint64_t disconnects() const { return disconnects_; }
  // The last event read was a completed handshake (not a lost or failed connection): the peer
  // is there now, as far as check() has read.
  bool connected() const { return connected_; }
  // The reason to add to a timeout: what to check about keys when no handshake completed.
  std::string timeoutHint() const;

 private:
  zmq::socket_t& socket_;
  zmq::socket_t events_;
  std::string peer_;
  bool curve_;
  bool succeeded_ = false;
  std::uint64_t handshakes_ = 0;
  std::uint64_t disconnects_ = 0;
  bool connected_ = false;
};

}  // namespace vrm::protocol
