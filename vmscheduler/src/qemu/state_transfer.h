// The copy phase of the qemu backend's suspend-copy-resume: moving a stopped VM's staged state
// file from the source agent's staging dir into the destination agent's, over TCP, so that it
// works between machines as well as between two agents on one machine.
//
// Wire (one connection per migration, the sender connects):
//   sender   -> receiver  "VRMSTATE1 <vm-id> <bytes>\n"
//   receiver -> sender    "READY\n" (it expects this VM and created its staging file)
//   sender   -> receiver  exactly <bytes> bytes
//   receiver -> sender    "RECEIVED\n"  once the bytes are in its staging file (fsync'ed)
//                         "RESTORED\n"  once its QEMU has loaded them (paused, ready to resume)
//                         or "FAILED <why>\n" at any point; then it shuts down its write side
//                         and reads and discards what the sender still sends until the sender
//                         closes (at most 64 MiB, 2 s), so that its own close cannot reset the
//                         connection before the sender has read the reason.
// The sender looks for an answer between chunks, so a refusal mid-copy stops it at once, and it
// shuts down its write side whenever it is done, so the receiver's drain ends at once.
// The sender measures both phases on its own steady clock (copy: connect .. RECEIVED; restore:
// RECEIVED .. RESTORED), so no clock is shared between the hosts.
//
// Threads: each side runs one thread doing blocking I/O on its own socket and file; the owner
// (the hypervisor's thread) reads progress through the const accessors, which are thread safe.
// Destroying either object aborts its transfer (its sockets are shut down) and joins the thread;
// the receiver also removes its staging file then (after a restore QEMU has it open or is done).
// Every wait on the peer is bounded by `timeout`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "vrm/protocol/status.h"

namespace vrm::vmscheduler {

class StateSender {
 public:
  struct Outcome {
    Status status;                        // ok: the destination restored the state
    std::chrono::nanoseconds copy{0};     // connect .. RECEIVED
    std::chrono::nanoseconds restore{0};  // RECEIVED .. RESTORED
  };

  // Starts sending `path` (`bytes` long) to host:port at most `bytesPerSec` (0 = unlimited).
  StateSender(std::string path, std::uint64_t bytes, std::string host, int port, std::string vmId,
              double bytesPerSec, std::chrono::milliseconds timeout);
  ~StateSender();
  StateSender(const StateSender&) = delete;
  StateSender& operator=(const StateSender&) = delete;

  // Changes the limit for the rest of the copy (0 = unlimited); thread safe.
  void setBytesPerSec(double bytesPerSec);
  std::uint64_t sentBytes() const { return sent_.load(); }
  // The destination has the whole file: copying is over, restoring under way.
  bool received() const { return received_.load(); }
  // Set once the transfer finished, either way.
  std::optional<Outcome> outcome() const;

 private:
  void run();
  void fail(Status status);

  const std::string path_, host_, vmId_;
  const std::uint64_t bytes_;
  const int port_;
  std::atomic<double> bytesPerSec_;
  std::atomic<unsigned> rateVersion_{0};  // bumped by setBytesPerSec: pacing starts afresh
  const std::chrono::milliseconds timeout_;
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<bool> received_{false};
  std::atomic<int> fd_{-1};
  std::atomic<bool> aborted_{false};
  mutable std::mutex mu_;
  std::optional<Outcome> outcome_;
  std::thread thread_;
};

class StateReceiver {
 public:
  enum class Phase { kListening, kReceiving, kReceived, kFailed, kFinished };

  // Listens on address:port (0: one the system chooses, see port()) for the state of `vmId`, to
  // be written to `path`. It accepts one sender; later ones are refused.
  // Errors: unavailable (the port cannot be bound).
  static Result<std::unique_ptr<StateReceiver>> listen(const std::string& address, int port,
                                                       std::string path, std::string vmId,
                                                       std::chrono::milliseconds timeout);
  ~StateReceiver();
  StateReceiver(const StateReceiver&) = delete;
  StateReceiver& operator=(const StateReceiver&) = delete;

  int port() const { return port_; }
  const std::string& path() const { return path_; }
  Phase phase() const { return phase_.load(); }
  std::string error() const;
  // After kReceived: tells the sender how restoring went (ok -> RESTORED, else FAILED), closes
  // the connection and removes the staging file. Phase becomes kFinished.
  void finish(const Status& restore);

 private:
  StateReceiver(int listenFd, int port, std::string path, std::string vmId,
                std::chrono::milliseconds timeout);
  void run();
  // Records `why`, tells the sender, removes the staging file and, with `drainSender`, waits
  // (bounded) for the sender to stop sending before the phase becomes kFailed.
  void fail(const std::string& why, bool drainSender);

  const int port_;
  const std::string path_, vmId_;
  const std::chrono::milliseconds timeout_;
  std::atomic<int> listenFd_;
  std::atomic<int> connFd_{-1};
  std::atomic<Phase> phase_{Phase::kListening};
  std::atomic<bool> aborted_{false};
  mutable std::mutex mu_;
  std::string error_;
  std::thread thread_;
};

}  // namespace vrm::vmscheduler
