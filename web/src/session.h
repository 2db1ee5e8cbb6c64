// One HTTP/1.1 connection: read a request (bounded), answer it with the router, repeat while
// keep-alive. A malformed or oversized request is answered once (400 / 413) and the connection
// closed; an idle one is closed after the idle timeout. Runs on the io_context's thread.
//
// With TLS the connection's first bytes decide: a TLS handshake is served over HTTPS (every
// answer with Strict-Transport-Security), anything else is taken as plain HTTP and its request
// answered with a redirect to https:// (responses.h: httpsRedirect), then closed.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>

namespace vrm::web {

class Router;
class TlsCertificate;
class WebCounters;

struct SessionLimits {
  std::size_t maxBodyBytes;          // 413 beyond
  std::chrono::seconds idleTimeout;  // per read and per write (and the TLS handshake)
  std::chrono::seconds hstsMaxAge;   // Strict-Transport-Security's max-age over HTTPS
};

// Serves `socket` until it closes; the session owns itself (it lives as long as its pending
// operations). `router`, `counters` (each response sent is counted) and `tls` (nullptr: plain
// HTTP) must outlive the io_context the socket belongs to.
void startSession(boost::asio::ip::tcp::socket socket, const SessionLimits& limits, Router& router,
                  WebCounters& counters, const TlsCertificate* tls);

}  // namespace vrm::web
