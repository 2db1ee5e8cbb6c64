// The C++ client library for vrmd, for job managers and tools (vrmctl uses it).
//
// One Client holds one DEALER connection. Every call sends a request with a fresh id and waits
// up to the timeout for the matching reply; replies to earlier, timed-out requests are
// discarded. When vrmd does not answer in time the call fails with `unavailable` and the socket
// is re-created (so a late reply cannot be mistaken for the next one). Not thread-safe: use one
// Client per thread.
//
// Authentication: when vrmd runs with CURVE keys (README "Security"), set serverPublicKey and
// the client's own key pair; vrmd then serves every request as the client its key is listed
// as. A key vrmd does not know fails the call at once with `unauthorized` ("vrmd ... refused
// our key"), as does a missing key when vrmd requires one; a timeout without any completed
// handshake says which keys to check.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vrm/protocol/reservation.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/webhook_delivery.h"

namespace zmq {
class context_t;
}

namespace vrm::client {

struct ClientOptions {
  // vrmd's client endpoint, or the endpoints of several vrmd replicas on etcd separated by
  // commas ("tcp://a:5555,tcp://b:5555"). A replica that does not lead answers "not the leader"
  // naming the leader's endpoint (README: High availability): the client sends the request again
  // there, once. When a replica names no leader, or does not answer in time, the client asks the
  // next listed replica it has not asked for this request. So a request waits at most
  // (number of endpoints + 1) x timeout; the error of the last one asked says why it failed
  // (unavailable: "... does not lead and knows no leader ..."). Later requests start from the
  // replica that answered last.
  std::string endpoint = "tcp://127.0.0.1:5555";
  std::chrono::milliseconds timeout{5000};  // per request
  // Who asks. vrmd trusts it only in insecure mode (and from its in-process web calendar);
  // with CURVE the key decides.
  std::string requester;
  // CURVE, all Z85 (40 characters); empty serverPublicKey = no CURVE (vrmd in insecure mode).
  std::string serverPublicKey;  // vrmd's public key
  std::string publicKey;        // this client's key pair, listed in vrmd's authorized file
  std::string secretKey;
};

class Client {
 public:
  // `context` may be shared with other sockets (needed for inproc://); when null the client
  // owns one.
  explicit Client(ClientOptions options, zmq::context_t* context = nullptr);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Admission decision. A rejection is not an error: the result is the reservation in state
  // `rejected` with its reason and, when known, earliestFeasibleStartNs. Errors:
  // invalid-argument (malformed request), unavailable (vrmd unreachable), internal.
  Result<Reservation> submit(const ReservationRequest& request);
  Result<Reservation> get(const std::string& id);
  // get, and how its events' webhook deliveries fared (vrmd --webhooks; empty when vrmd has
  // none, or the caller may not act for the owner), into `deliveries`.
  Result<Reservation> get(const std::string& id, std::vector<WebhookDelivery>& deliveries);
  Result<std::vector<Reservation>> list(const ListFilter& filter = {});
  Result<Reservation> cancel(const std::string& id);
  Result<std::vector<HostRecord>> hosts();
  Result<std::vector<VmRecord>> vms();

  // Writes an online backup of vrmd's store to the local file `path` (admins only): a
  // consistent SQLite database file, read from vrmd in chunks into `path`.partial, synced, and
  // renamed to `path` only once whole, so `path` is either absent or a complete backup. Restore
  // it by stopping vrmd and putting it in place of vrmd's --store file (README "Backups").
  // Errors: invalid-argument when `path` exists (nothing is overwritten); vrmd's (unauthorized
  // for non-admins, notFound when vrmd restarted mid-backup: run it again, unavailable); internal
  // for chunks that do not fit together or a local write that fails (naming the file).
  struct BackupInfo {
    std::uint64_t bytes = 0;
    std::uint32_t reservations = 0;
    TimeNs takenAtNs = 0;  // vrmd's clock when the snapshot was taken
  };
  Result<BackupInfo> backupTo(const std::string& path);

  // Polls until the reservation is ready (or active), calling `onChange` whenever its state or
  // event count changes. Errors: the reservation reached a terminal state (failed / cancelled /
  // rejected: status rejected with its reason), `timeout` elapsed (unavailable), or transport.
  Result<Reservation> waitUntilReady(
      const std::string& id, std::chrono::milliseconds timeout,
      const std::function<void(const Reservation&)>& onChange = {},
      std::chrono::milliseconds pollInterval = std::chrono::milliseconds(50));

  // Changes the requester of the following calls (the web calendar serves many callers).
  void setRequester(std::string requester);

  // vrmd's clock at its last reply (0 before the first): relative times ("+2h") must be taken
  // from it, because vrmd may run a scaled clock.
  TimeNs serverNowNs() const { return serverNowNs_; }
  // Asks vrmd for its clock.
  Result<TimeNs> serverNow();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  TimeNs serverNowNs_ = 0;
};

}  // namespace vrm::client
