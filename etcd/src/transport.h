// HTTP/1.1 to one etcd member over Boost.Beast: a keep-alive connection for unary calls and a
// connection per stream (watch, observe, campaign, whose answers come as chunks of
// newline-separated JSON). Everything runs on the owner thread's Loop, only while a caller
// waits in Loop::runUntil. Pending handlers hold their state by shared_ptr, so a connection can
// be dropped at any moment (what was in flight completes into nothing).
#pragma once

// clang-format off
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it
// clang-format on
#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "vrm/etcd/client.h"

namespace vrm::etcd::detail {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string text;  // "host:port", for messages
};

// "http://host:port", "host:port", "[::1]:port"; nullopt when it is none of these.
std::optional<Endpoint> parseEndpoint(const std::string& url);

class Loop {
 public:
  Loop();
  boost::asio::io_context& io() { return io_; }

  enum class Wake { kDone, kDeadline, kInterrupted };
  // Runs handlers until done() holds, the deadline passes or `interrupted` is set (checked after
  // every handler; wake() makes one run so that a flag set elsewhere is seen at once).
  template <typename Done>
  Wake runUntil(Done done, SteadyTime deadline, const std::atomic<bool>& interrupted) {
    while (!done()) {
      if (interrupted.load()) return Wake::kInterrupted;
      if (std::chrono::steady_clock::now() >= deadline) return Wake::kDeadline;
      // Bounded, so that a far deadline cannot overflow Asio's timer arithmetic.
      io_.run_one_until(
          std::min(deadline, std::chrono::steady_clock::now() + std::chrono::hours(1)));
    }
    return Wake::kDone;
  }
  // Any thread.
  void wake();

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
};

// How one request fared.
struct Attempt {
  enum class Outcome {
    kAnswered,     // an HTTP answer: status and body
    kNotSent,      // no connection, or it failed before the request was written
    kLost,         // the connection broke after the request was written, before the answer
    kTimedOut,     // the deadline passed (sent says whether the request had been written)
    kInterrupted,  // Client::interrupt()
    kMalformed,    // the answer is not HTTP, or over the size limit
  };
  Outcome outcome = Outcome::kNotSent;
  bool sent = false;
  bool answerBegun = false;  // some of the answer arrived (a kLost that is not a clean close)
  int status = 0;
  std::string body;
  std::string detail;  // why, for messages
};

struct UnaryState;

class UnaryConnection {
 public:
  UnaryConnection(Loop& loop, Endpoint endpoint, std::size_t maxAnswerBytes);
  ~UnaryConnection();
  // POSTs `body` to `path` and waits for the whole answer until `deadline`. A connection that
  // the member closed while idle is noticed before writing, and a new one made. A member may
  // also close a kept connection just as the request is written (it cannot have read it then,
  // or it was going down): an `idempotent` request lost that way, before a byte of answer, is
  // sent once more on a new connection (RFC 9112 section 9.3.1); any other is kLost.
  Attempt post(const std::string& path, const std::string& body, SteadyTime deadline,
               const std::atomic<bool>& interrupted, bool idempotent);
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  Loop& loop_;
  Endpoint endpoint_;
  std::size_t maxAnswerBytes_;
  Attempt postOnce(const std::string& path, const std::string& body, SteadyTime deadline,
                   const std::atomic<bool>& interrupted, bool* reused);

  std::shared_ptr<UnaryState> state_;
};

struct StreamState;

class StreamConnection {
 public:
  // Connects and sends the request in the background (as the loop runs).
  StreamConnection(Loop& loop, Endpoint endpoint, const std::string& path, const std::string& body,
                   std::size_t maxLineBytes);
  ~StreamConnection();  // close()

  // Runs the loop until the request is written, the connection fails or the deadline passes;
  // true once written.
  bool waitSent(SteadyTime deadline, const std::atomic<bool>& interrupted);
  // The next line of the answer (without its newline), waiting until `deadline`: a line; or
  // nullopt with *ended false (deadline) or true (the answer is over: see failure()).
  std::optional<std::string> nextLine(SteadyTime deadline, const std::atomic<bool>& interrupted,
                                      bool* ended);
  // Once ended: how. Answered with a non-200 status: that attempt (status and body); otherwise
  // kNotSent / kLost / kMalformed with the detail, or kAnswered with status 200 when the
  // server closed the stream normally.
  Attempt failure() const;
  bool sent() const;
  void close();
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  Loop& loop_;
  Endpoint endpoint_;
  std::shared_ptr<StreamState> state_;
};

}  // namespace vrm::etcd::detail
