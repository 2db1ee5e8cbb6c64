// One HTTP/1.1 connection: read a request (bounded), answer it with the router, repeat while
// keep-alive. A malformed or oversized request is answered once (400 / 413) and the connection
// closed; an idle one is closed after the idle timeout. Runs on the io_context's thread.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>

namespace vrm::web {

class Router;
class WebCounters;

struct SessionLimits {
  std::size_t maxBodyBytes;          // 413 beyond
  std::chrono::seconds idleTimeout;  // per read and per write
};

// Serves `socket` until it closes; the session owns itself (it lives as long as its pending
// operations). `router` and `counters` (each response sent is counted) must outlive the
// io_context the socket belongs to.
void startSession(boost::asio::ip::tcp::socket socket, const SessionLimits& limits, Router& router,
                  WebCounters& counters);

}  // namespace vrm::web
