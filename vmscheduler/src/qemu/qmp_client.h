// A client for QEMU's machine protocol (QMP): JSON lines over a unix socket.
//
// connect() opens the socket (retrying while QEMU has not created it yet), reads the greeting and
// negotiates capabilities; execute() sends one command and waits for its answer, matched by an
// "id" this client chooses, so an answer that arrives after its command timed out is recognised
// and dropped. Asynchronous events that arrive meanwhile are queued for takeEvents().
//
// Every call blocks for at most its timeout (Boost.Asio on a private io_context), so an agent
// loop can use it with short timeouts. Thread safety: none; one client belongs to one thread.
// Errors: unavailable when the socket cannot be reached or QEMU closed it (the process died),
// internal for a timeout or an unparsable line, rejected when QEMU answered with an error (the
// message carries QEMU's class and description).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vrm/protocol/status.h"

namespace vrm::vmscheduler {

class QmpClient {
 public:
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Connects to `socketPath`, retrying every 10 ms until `timeout` while the socket is missing or
  // refuses, then completes the QMP handshake within what is left of `timeout`.
  static Result<std::unique_ptr<QmpClient>> connect(const std::string& socketPath,
                                                    std::chrono::milliseconds timeout);

  // Runs `command` with `arguments` (an object; null or empty for none) and returns its "return"
  // value. Errors: see above.
  Result<nlohmann::json> execute(const std::string& command,
                                 const nlohmann::json& arguments = nlohmann::json(),
                                 std::chrono::milliseconds timeout = std::chrono::seconds(2));

  // Events received so far (reading, without waiting, whatever QEMU already sent), oldest first.
  std::vector<nlohmann::json> takeEvents();

  // False once QEMU closed the connection.
  bool connected() const { return connected_; }

 private:
  struct Impl;
  explicit QmpClient(std::unique_ptr<Impl> impl);
  // Reads one line into `line`, waiting at most `timeout` (0: only what is already there).
  Status readLine(std::string& line, std::chrono::milliseconds timeout);

  std::unique_ptr<Impl> impl_;
  std::deque<nlohmann::json> events_;
  std::uint64_t nextId_ = 1;
  bool connected_ = true;
};

}  // namespace vrm::vmscheduler
