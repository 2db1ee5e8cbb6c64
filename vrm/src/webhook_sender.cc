// clang-format off
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it
// clang-format on
#include "vrm/manager/webhook_sender.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

namespace vrm::manager {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct HttpWebhookSender::Tls {
  ssl::context context{ssl::context::tls_client};
};

namespace {

constexpr std::size_t kMaxAnswerBytes = 64 * 1024;

// OpenSSL's reason ("certificate verify failed") rather than asio's wrapping of it.
std::string reasonOf(const beast::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    return std::string("TLS: ") + (reason ? reason : ec.message());
  }
  return ec.message();
}

// One exchange on `stream` (a tcp_stream, or an ssl_stream over one), run on `io` until done or
// the tcp_stream's deadline (set once for the whole exchange) fails the pending operation.
// Each step starts the next from its completion handler; `finish` records the first failure.
template <typename Stream>
WebhookPostOutcome exchange(asio::io_context& io, Stream& stream, const WebhookPost& p,
                            std::chrono::milliseconds timeout) {
  WebhookPostOutcome out;
  out.attemptId = p.attemptId;
  auto& lowest = beast::get_lowest_layer(stream);
  lowest.expires_after(timeout);
  tcp::resolver resolver(io);
  http::request<http::string_body> request{http::verb::post, p.url.target, 11};
  const bool defaultPort = p.url.port == (p.url.https ? 443 : 80);
  const std::string hostHeader =
      (p.url.host.find(':') != std::string::npos ? "[" + p.url.host + "]" : p.url.host) +
      (defaultPort ? "" : ":" + std::to_string(p.url.port));
  request.set(http::field::host, hostHeader);
  for (const auto& [name, value] : p.headers) request.set(name, value);
  request.body() = p.body;
  request.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxAnswerBytes);
  std::string failure;
  auto fail = [&](const std::string& step, const beast::error_code& ec) {
    failure = ec == beast::error::timeout
                  ? "timed out after " + std::to_string(timeout.count()) + " ms (" + step + ")"
                  : step + ": " + reasonOf(ec);
  };
  auto onRead = [&](beast::error_code ec, std::size_t) {
    if (ec) return fail("reading the answer", ec);
    const unsigned status = parser.get().result_int();
    if (status >= 200 && status < 300) {
      out.delivered = true;
    } else {
      failure = "HTTP " + std::to_string(status);
    }
  };
  auto onWrite = [&](beast::error_code ec, std::size_t) {
    if (ec) return fail("sending", ec);
    http::async_read(stream, buffer, parser, onRead);
  };
  auto onHandshake = [&](beast::error_code ec) {
    if (ec) return fail("TLS handshake", ec);
    http::async_write(stream, request, onWrite);
  };
  auto onConnect = [&](beast::error_code ec, const tcp::endpoint&) {
    if (ec) return fail("connecting", ec);
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      onHandshake({});
    } else {
      stream.async_handshake(ssl::stream_base::client, onHandshake);
    }
  };
  resolver.async_resolve(p.url.host, std::to_string(p.url.port),
                         [&](beast::error_code ec, tcp::resolver::results_type results) {
                           if (ec) return fail("resolving " + p.url.host, ec);
                           lowest.async_connect(results, onConnect);
                         });
  // The resolver has no deadline of its own: the run is bounded, then whatever is left is
  // cancelled and drained.
  io.run_for(timeout + std::chrono::milliseconds(100));
  if (!io.stopped()) {
    resolver.cancel();
    beast::error_code ignored;
    lowest.socket().close(ignored);
    io.restart();
    io.run();
    failure = "timed out after " + std::to_string(timeout.count()) + " ms";
  }
  if (!out.delivered) out.error = failure.empty() ? "no answer" : failure;
  return out;
}

}  // namespace

Result<std::unique_ptr<HttpWebhookSender>> HttpWebhookSender::create(
    HttpWebhookSenderOptions options) {
  auto tls = std::make_unique<Tls>();
  beast::error_code ec;
  if (options.caFile.empty()) {
    tls->context.set_default_verify_paths(ec);
  } else {
    tls->context.load_verify_file(options.caFile, ec);
  }
  if (ec) {
    return Status::invalid("webhook CA certificates " +
                           (options.caFile.empty() ? std::string("(system)") : options.caFile) +
                           ": " + reasonOf(ec));
  }
  tls->context.set_verify_mode(ssl::verify_peer);
  if (options.threads < 1) options.threads = 1;
  return std::unique_ptr<HttpWebhookSender>(
      new HttpWebhookSender(std::move(options), std::move(tls)));
}

HttpWebhookSender::HttpWebhookSender(HttpWebhookSenderOptions options, std::unique_ptr<Tls> tls)
    : options_(std::move(options)), tls_(std::move(tls)) {
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { work(); });
}

HttpWebhookSender::~HttpWebhookSender() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void HttpWebhookSender::send(WebhookPost post) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(post));
  }
  wake_.notify_one();
}

std::vector<WebhookPostOutcome> HttpWebhookSender::takeOutcomes() {
  std::lock_guard lock(mu_);
  return std::exchange(outcomes_, {});
}

void HttpWebhookSender::work() {
  while (true) {
    WebhookPost p;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      p = std::move(queue_.front());
      queue_.pop_front();
    }
    WebhookPostOutcome outcome = post(p);
    std::lock_guard lock(mu_);
    outcomes_.push_back(std::move(outcome));
  }
}

WebhookPostOutcome HttpWebhookSender::post(const WebhookPost& p) {
  asio::io_context io;
  if (!p.url.https) {
    beast::tcp_stream stream(io);
    return exchange(io, stream, p, options_.timeout);
  }
  beast::ssl_stream<beast::tcp_stream> stream(io, tls_->context);
  // SNI and the name the certificate must carry.
  if (!SSL_set_tlsext_host_name(stream.native_handle(), p.url.host.c_str())) {
    return {p.attemptId, false, "TLS: cannot set the server name " + p.url.host};
  }
  stream.set_verify_callback(ssl::host_name_verification(p.url.host));
  return exchange(io, stream, p, options_.timeout);
}

}  // namespace vrm::manager
