// WebServer: the listener, the serving thread and the objects it wires (router.h and below).
#include "vrm/web/web_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <optional>
#include <thread>
#include <zmq.hpp>

#include "api_handlers.h"
#include "calendar_feeds.h"
#include "callers.h"
#include "metrics_page.h"
#include "router.h"
#include "session.h"
#include "static_files.h"
#include "tls.h"
#include "vrm/client/client.h"

namespace vrm::web {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct WebServer::Impl {
  Impl(zmq::context_t& ctx, WebServerOptions o)
      : context(ctx), options(std::move(o)), tokens(options.tokenHashes) {}

  zmq::context_t& context;
  WebServerOptions options;
  TokenTable tokens;
  std::optional<StaticFiles> files;
  std::optional<TlsCertificate> tls;  // HTTPS when set
  WebCounters counters;               // the serving thread's

  // Made on the serving thread, which alone uses them (the client's socket lives there).
  std::unique_ptr<client::Client> vrmd;
  std::unique_ptr<CalendarFeeds> calendar;
  std::unique_ptr<ApiHandlers> api;
  std::unique_ptr<Router> router;

  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::thread thread;
  std::uint16_t boundPort = 0;
  bool running = false;

  void accept();
  void serve();
};

void WebServer::Impl::accept() {
  acceptor->async_accept(ioc, [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
    if (!ec) {
      startSession(std::move(socket),
                   {options.maxBodyBytes, options.idleTimeout, options.hstsMaxAge}, *router,
                   counters, tls ? &*tls : nullptr);
    } else {
      spdlog::warn("web: accept failed: {}", ec.message());
    }
    accept();
  });
}

WebServer::WebServer(zmq::context_t& context, WebServerOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}

WebServer::~WebServer() { stop(); }

Status WebServer::start() {
  Impl& m = *impl_;
  if (m.running) return Status::ok();
  auto files = StaticFiles::open(m.options.webRoot, m.options.maxFileBytes);
  if (!files) return files.status();
  m.files.emplace(std::move(*files));
  if (!m.options.tlsCertFile.empty() || !m.options.tlsKeyFile.empty()) {
    auto loaded = loadServerTls(m.options.tlsCertFile, m.options.tlsKeyFile);
    if (!loaded) return loaded.status();
    m.tls.emplace(m.options.tlsCertFile, m.options.tlsKeyFile, std::move(*loaded));
  }
  boost::system::error_code ec;
  auto address = net::ip::make_address(m.options.address, ec);
  if (ec) return Status::invalid("'" + m.options.address + "' is not an IP address");
  tcp::endpoint endpoint(address, m.options.port);
  m.acceptor.emplace(m.ioc);
  auto fail = [&](const char* what) {
    m.acceptor.reset();
    return Status::unavailable(std::string("cannot listen on ") + m.options.address + ":" +
                               std::to_string(m.options.port) + ": " + what + ": " + ec.message());
  };
  if (m.acceptor->open(endpoint.protocol(), ec)) return fail("open");
  if (m.acceptor->set_option(net::socket_base::reuse_address(true), ec)) return fail("option");
  if (m.acceptor->bind(endpoint, ec)) return fail("bind");
  if (m.acceptor->listen(net::socket_base::max_listen_connections, ec)) return fail("listen");
  m.boundPort = m.acceptor->local_endpoint().port();
  m.accept();
  m.running = true;
  m.thread = std::thread([&m] { m.serve(); });
  return Status::ok();
}

void WebServer::Impl::serve() {
  // The client's socket lives and dies on this thread.
  client::ClientOptions co;
  co.endpoint = options.vrmdEndpoint;
  co.timeout = options.vrmdTimeout;
  vrmd = std::make_unique<client::Client>(co, &context);
  CalendarFeedOptions feeds;
  feeds.authenticate = options.authenticate;
  feeds.secret = options.calendarSecret;
  feeds.uidDomain = options.calendarUidDomain;
  feeds.tls = tls.has_value();
  feeds.version = VRM_VERSION;
  calendar = std::make_unique<CalendarFeeds>(*vrmd, tokens, std::move(feeds));
  api = std::make_unique<ApiHandlers>(*vrmd, *calendar, options.templates, options.defaultOwner);
  router = std::make_unique<Router>(*vrmd, *api, *calendar, *files, tokens, options.authenticate,
                                    counters, options.extraMetrics, options.standbyLeaderUrl);
  try {
    ioc.run();
  } catch (const std::exception& e) {
    spdlog::error("web server stopped: {}", e.what());
  }
  router.reset();
  api.reset();
  calendar.reset();
  vrmd.reset();
}

void WebServer::stop() {
  Impl& m = *impl_;
  if (!m.running) return;
  net::post(m.ioc, [&m] {
    boost::system::error_code ignored;
    m.acceptor->close(ignored);
    m.ioc.stop();
  });
  m.thread.join();
  m.running = false;
}

void WebServer::setTokenHashes(std::map<std::string, std::string> tokenHashes) {
  impl_->tokens.replace(std::move(tokenHashes));
}

Status WebServer::reloadTls() {
  if (!impl_->tls) return Status::invalid("the web server speaks plain HTTP: no TLS to reload");
  return impl_->tls->reload();
}

std::uint16_t WebServer::port() const { return impl_->boundPort; }

std::string WebServer::url() const {
  const std::string& a = impl_->options.address;
  const bool v6 = a.find(':') != std::string::npos;
  return (impl_->tls ? "https://" : "http://") + (v6 ? "[" + a + "]" : a) + ":" +
         std::to_string(port()) + "/";
}

Status parseHttpListen(const std::string& text, WebServerOptions& options) {
  auto bad = [&] {
    return Status::invalid("'" + text + "': expected ADDR:PORT (127.0.0.1:8080, [::1]:8080), " +
                           "PORT (on 127.0.0.1) or off");
  };
  std::string address = "127.0.0.1", port = text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find("]:");
    if (close == std::string::npos) return bad();
    address = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else if (auto colon = text.rfind(':'); colon != std::string::npos) {
    address = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (address.empty() || port.empty() || port.size() > 5) return bad();
  for (char c : port) {
    if (c < '0' || c > '9') return bad();
  }
  const int p = std::stoi(port);
  if (p > 65535) return bad();
  boost::system::error_code ec;
  net::ip::make_address(address, ec);
  if (ec) return Status::invalid("'" + address + "' is not an IP address");
  options.address = address;
  options.port = static_cast<std::uint16_t>(p);
  return Status::ok();
}

}  // namespace vrm::web
