#include "session.h"

#include <array>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>

#include "metrics_page.h"
#include "responses.h"
#include "router.h"

namespace vrm::web {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const SessionLimits& limits, Router& router, WebCounters& counters)
      : stream_(std::move(socket)), limits_(limits), router_(router), counters_(counters) {}

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(limits_.maxBodyBytes);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(limits_.idleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::onRead, shared_from_this()));
  }

  void onRead(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof) {
      return close();
    }
    if (ec) {
      // A malformed or oversized request: answer once, then close.
      const bool tooLarge = ec == http::error::body_limit || ec == http::error::header_limit ||
                            ec == http::error::buffer_overflow;
      res_ = errorReply(tooLarge ? 413 : 400, "invalid-argument",
                        tooLarge ? "request too large" : "malformed HTTP request: " + ec.message());
      res_.keep_alive(false);
      res_.prepare_payload();
      return write(false);
    }
    Request req = parser_->release();
    res_ = router_.handle(req);
    res_.keep_alive(req.keep_alive());
    res_.prepare_payload();
    // HEAD: the Content-Length of the full answer, no body.
    if (req.method() == http::verb::head) res_.body().clear();
    write(req.keep_alive());
  }

  void write(bool keepAlive) {
    counters_.recordResponse(res_.result_int());
    stream_.expires_after(limits_.idleTimeout);
    http::async_write(stream_, res_,
                      [self = shared_from_this(), keepAlive](beast::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        if (!keepAlive) return self->drainAndClose();
                        self->read();
                      });
  }

  // Closing with unread input makes the kernel reset the connection, and the peer may lose the
  // answer (413 after a large body): stop sending, read and drop what is left (bounded), close.
  void drainAndClose() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    drain_ = std::make_unique<std::array<char, 4096>>();
    drainOnce(0);
  }
  void drainOnce(std::size_t total) {
    stream_.async_read_some(net::buffer(*drain_), [self = shared_from_this(), total](
                                                      beast::error_code ec, std::size_t n) {
      if (ec || total + n > 1024 * 1024) return self->close();
      self->drainOnce(total + n);
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response res_;
  std::unique_ptr<std::array<char, 4096>> drain_;
  SessionLimits limits_;
  Router& router_;
  WebCounters& counters_;
};

}  // namespace

void startSession(tcp::socket socket, const SessionLimits& limits, Router& router,
                  WebCounters& counters) {
  std::make_shared<Session>(std::move(socket), limits, router, counters)->start();
}

}  // namespace vrm::web
