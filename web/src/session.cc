#include "session.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "metrics_page.h"
#include "responses.h"
#include "router.h"
#include "tls.h"

namespace vrm::web {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// How a session answers: with the router (HTTP or HTTPS), or with a redirect to https:// (plain
// HTTP on the HTTPS port).
enum class Answer { kRoute, kRedirectToHttps };

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  // `buffer`: bytes already read from the connection (the TLS detector's). `tls`: kept for as
  // long as the connection lives, which the stream's context must.
  template <class... StreamArgs>
  Session(const SessionLimits& limits, Router& router, WebCounters& counters, Answer answer,
          beast::flat_buffer buffer, TlsContext tls, StreamArgs&&... streamArgs)
      : tls_(std::move(tls)),
        stream_(std::forward<StreamArgs>(streamArgs)...),
        buffer_(std::move(buffer)),
        limits_(limits),
        router_(router),
        counters_(counters),
        answer_(answer) {}

  void start() {
    if constexpr (kTls) {
      tcpLayer().expires_after(limits_.idleTimeout);
      stream_.async_handshake(
          ssl::stream_base::server, buffer_.data(),
          [self = this->shared_from_this()](beast::error_code ec, std::size_t used) {
            if (ec) {
              spdlog::debug("web: TLS handshake failed: {}", ec.message());
              return self->close();
            }
            self->buffer_.consume(used);
            self->read();
          });
    } else {
      read();
    }
  }

 private:
  beast::tcp_stream& tcpLayer() { return beast::get_lowest_layer(stream_); }

  void read() {
    parser_.emplace();
    parser_->body_limit(limits_.maxBodyBytes);
    parser_->header_limit(16 * 1024);
    tcpLayer().expires_after(limits_.idleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::onRead, this->shared_from_this()));
  }

  void onRead(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof || ec == ssl::error::stream_truncated) {
      return close();
    }
    if (ec) {
      // A malformed or oversized request: answer once, then close.
      const bool tooLarge = ec == http::error::body_limit || ec == http::error::header_limit ||
                            ec == http::error::buffer_overflow;
      res_ = errorReply(tooLarge ? 413 : 400, "invalid-argument",
                        tooLarge ? "request too large" : "malformed HTTP request: " + ec.message());
      res_.keep_alive(false);
      return write(false);
    }
    Request req = parser_->release();
    const bool keepAlive = answer_ == Answer::kRoute && req.keep_alive();
    res_ = answer_ == Answer::kRoute ? router_.handle(req) : httpsRedirect(req);
    res_.keep_alive(keepAlive);
    // HEAD: the Content-Length of the full answer, no body.
    const bool head = req.method() == http::verb::head;
    write(keepAlive, head);
  }

  void write(bool keepAlive, bool head = false) {
    // Only over HTTPS (RFC 6797 8.1: a browser ignores it over plain HTTP anyway).
    if constexpr (kTls) {
      res_.set(http::field::strict_transport_security,
               "max-age=" + std::to_string(limits_.hstsMaxAge.count()));
    }
    res_.prepare_payload();
    if (head) res_.body().clear();
    counters_.recordResponse(res_.result_int());
    tcpLayer().expires_after(limits_.idleTimeout);
    http::async_write(
        stream_, res_,
        [self = this->shared_from_this(), keepAlive](beast::error_code ec, std::size_t) {
          if (ec) return self->close();
          if (!keepAlive) return self->drainAndClose();
          self->read();
        });
  }

  // Closing with unread input makes the kernel reset the connection, and the peer may lose the
  // answer (413 after a large body): stop sending, read and drop what is left (bounded), close.
  void drainAndClose() {
    if constexpr (kTls) {
      // close_notify first, so the peer can tell the end of the answer from a cut connection.
      tcpLayer().expires_after(std::chrono::seconds(2));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->drainRaw(); });
    } else {
      drainRaw();
    }
  }
  void drainRaw() {
    beast::error_code ignored;
    tcpLayer().socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcpLayer().expires_after(std::chrono::seconds(2));
    drain_ = std::make_unique<std::array<char, 4096>>();
    drainOnce(0);
  }
  void drainOnce(std::size_t total) {
    tcpLayer().async_read_some(net::buffer(*drain_), [self = this->shared_from_this(), total](
                                                         beast::error_code ec, std::size_t n) {
      if (ec || total + n > 1024 * 1024) return self->close();
      self->drainOnce(total + n);
    });
  }

  void close() {
    beast::error_code ignored;
    tcpLayer().socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcpLayer().socket().close(ignored);
  }

  TlsContext tls_;  // before stream_, which refers to it
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response res_;
  std::unique_ptr<std::array<char, 4096>> drain_;
  SessionLimits limits_;
  Router& router_;
  WebCounters& counters_;
  Answer answer_;
};

// The HTTPS port's first step: a TLS ClientHello or not (beast's detect_ssl reads at most the
// few bytes it needs, and they stay in the buffer for whoever serves the connection next).
class TlsDetector : public std::enable_shared_from_this<TlsDetector> {
 public:
  TlsDetector(tcp::socket socket, const SessionLimits& limits, Router& router,
              WebCounters& counters, TlsContext tls)
      : stream_(std::move(socket)),
        limits_(limits),
        router_(router),
        counters_(counters),
        tls_(std::move(tls)) {}

  void start() {
    stream_.expires_after(limits_.idleTimeout);
    beast::async_detect_ssl(stream_, buffer_,
                            beast::bind_front_handler(&TlsDetector::onDetect, shared_from_this()));
  }

 private:
  void onDetect(beast::error_code ec, bool isTls) {
    if (ec) return;  // closed or timed out before saying anything: nothing to answer
    if (isTls) {
      ssl::context& context = *tls_;
      std::make_shared<Session<TlsStream>>(limits_, router_, counters_, Answer::kRoute,
                                           std::move(buffer_), std::move(tls_), std::move(stream_),
                                           context)
          ->start();
    } else {
      std::make_shared<Session<beast::tcp_stream>>(limits_, router_, counters_,
                                                   Answer::kRedirectToHttps, std::move(buffer_),
                                                   nullptr, std::move(stream_))
          ->start();
    }
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  SessionLimits limits_;
  Router& router_;
  WebCounters& counters_;
  TlsContext tls_;
};

}  // namespace

void startSession(tcp::socket socket, const SessionLimits& limits, Router& router,
                  WebCounters& counters, const TlsCertificate* tls) {
  if (tls) {
    std::make_shared<TlsDetector>(std::move(socket), limits, router, counters, tls->current())
        ->start();
    return;
  }
  std::make_shared<Session<beast::tcp_stream>>(limits, router, counters, Answer::kRoute,
                                               beast::flat_buffer(), nullptr, std::move(socket))
      ->start();
}

}  // namespace vrm::web
