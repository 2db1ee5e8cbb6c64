#include "transport.h"

#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <functional>
#include <limits>

namespace vrm::etcd::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kHeaderLimit = 64 * 1024;

http::request<http::string_body> makeRequest(const Endpoint& endpoint, const std::string& path,
                                             const std::string& body) {
  http::request<http::string_body> request{http::verb::post, path, 11};
  request.set(http::field::host, endpoint.text);
  request.set(http::field::content_type, "application/json");
  // etcd refuses at once, instead of waiting, when the member has no raft leader
  // (rpctypes.MetadataRequireLeaderKey, passed as gRPC metadata by the gateway).
  request.set("Grpc-Metadata-hasleader", "true");
  request.keep_alive(true);
  request.body() = body;
  request.prepare_payload();
  return request;
}

// Resolves (numeric hosts need no resolver round trip) and connects `stream`, then calls
// `then(ec)`.
template <typename Then>
void connect(beast::tcp_stream& stream, tcp::resolver& resolver, const Endpoint& endpoint,
             Then then) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(endpoint.host, ec);
  if (!ec) {
    stream.async_connect(tcp::endpoint(address, endpoint.port), std::move(then));
    return;
  }
  resolver.async_resolve(
      endpoint.host, std::to_string(endpoint.port),
      [&stream, then = std::move(then)](boost::system::error_code rec,
                                        tcp::resolver::results_type results) mutable {
        if (rec) return then(rec);
        stream.async_connect(results,
                             [then = std::move(then)](boost::system::error_code cec,
                                                      const tcp::endpoint&) mutable { then(cec); });
      });
}

// True when the member has closed (or broken) an idle keep-alive connection: a read of what is
// waiting, without waiting or consuming, sees the end of the stream or an error.
// Errors of Beast's HTTP parser (the answer is not HTTP), as opposed to the connection's.
bool isParseError(const boost::system::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

bool idleConnectionClosed(beast::tcp_stream& stream) {
  char byte;
  const ssize_t n = ::recv(stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
  return true;  // 0: closed; > 0: bytes nobody asked for, the connection is out of step
}

}  // namespace

std::optional<Endpoint> parseEndpoint(const std::string& url) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos || rest.find("://") != std::string::npos) {
    return std::nullopt;
  }
  std::string host;
  std::string port;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return std::nullopt;
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || (host.find(':') != std::string::npos && url.find('[') == std::string::npos) ||
      ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    return std::nullopt;
  }
  Endpoint e{host, static_cast<std::uint16_t>(value), {}};
  e.text = host.find(':') != std::string::npos ? "[" + host + "]:" + port : host + ":" + port;
  return e;
}

Loop::Loop() : guard_(asio::make_work_guard(io_)) {}

void Loop::wake() {
  asio::post(io_, [] {});
}

// --- unary

struct UnaryState : std::enable_shared_from_this<UnaryState> {
  UnaryState(asio::io_context& io, const Endpoint& e) : stream(io), resolver(io), endpoint(e) {}

  void start(http::request<http::string_body> r, std::size_t maxAnswerBytes) {
    request = std::move(r);
    parser.emplace();
    parser->header_limit(kHeaderLimit);
    parser->body_limit(maxAnswerBytes);
    if (connected) return write();
    auto self = shared_from_this();
    connect(stream, resolver, endpoint, [self](boost::system::error_code ec) {
      if (ec) return self->finish(Attempt::Outcome::kNotSent, "cannot connect: " + ec.message());
      self->connected = true;
      self->write();
    });
  }

  void write() {
    auto self = shared_from_this();
    http::async_write(stream, request, [self](boost::system::error_code ec, std::size_t) {
      if (ec) return self->finish(Attempt::Outcome::kNotSent, "cannot send: " + ec.message());
      self->result.sent = true;
      http::async_read(self->stream, self->buffer, *self->parser,
                       [self](boost::system::error_code rec, std::size_t) { self->onRead(rec); });
    });
  }

  void onRead(boost::system::error_code ec) {
    if (ec == beast::error::timeout) return finish(Attempt::Outcome::kTimedOut, "no answer");
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      return finish(Attempt::Outcome::kMalformed, "answer over the size limit");
    }
    if (isParseError(ec)) {
      return finish(Attempt::Outcome::kMalformed, "not an HTTP answer: " + ec.message());
    }
    if (ec) {
      result.answerBegun = parser->got_some() || buffer.size() > 0;
      return finish(Attempt::Outcome::kLost, "connection lost: " + ec.message());
    }
    result.status = static_cast<int>(parser->get().result_int());
    result.body = std::move(parser->get().body());
    const bool keepAlive = parser->get().keep_alive();
    finish(Attempt::Outcome::kAnswered, {});
    if (!keepAlive) close();
  }

  void finish(Attempt::Outcome outcome, std::string detail) {
    if (outcome != Attempt::Outcome::kAnswered) close();
    result.outcome = outcome;
    result.detail = std::move(detail);
    done = true;
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    connected = false;
  }

  beast::tcp_stream stream;
  tcp::resolver resolver;
  Endpoint endpoint;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  std::optional<http::response_parser<http::string_body>> parser;
  bool connected = false;
  bool done = false;
  Attempt result;
};

UnaryConnection::UnaryConnection(Loop& loop, Endpoint endpoint, std::size_t maxAnswerBytes)
    : loop_(loop), endpoint_(std::move(endpoint)), maxAnswerBytes_(maxAnswerBytes) {}

UnaryConnection::~UnaryConnection() {
  if (state_) state_->close();
}

Attempt UnaryConnection::post(const std::string& path, const std::string& body, SteadyTime deadline,
                              const std::atomic<bool>& interrupted, bool idempotent) {
  bool reused = false;
  Attempt result = postOnce(path, body, deadline, interrupted, &reused);
  if (idempotent && reused && result.outcome == Attempt::Outcome::kLost && !result.answerBegun &&
      !interrupted) {
    result = postOnce(path, body, deadline, interrupted, &reused);
  }
  return result;
}

Attempt UnaryConnection::postOnce(const std::string& path, const std::string& body,
                                  SteadyTime deadline, const std::atomic<bool>& interrupted,
                                  bool* reused) {
  // A connection kept from the last call is reused unless the member closed it meanwhile (it
  // restarted, or dropped it): then the request goes on a new one rather than into a dead one.
  *reused = state_ && state_->connected && !idleConnectionClosed(state_->stream);
  if (!*reused) {
    if (state_) state_->close();
    state_ = std::make_shared<UnaryState>(loop_.io(), endpoint_);
  }
  state_->done = false;
  state_->result = Attempt{};
  state_->stream.expires_at(deadline);
  state_->start(makeRequest(endpoint_, path, body), maxAnswerBytes_);
  const auto wake = loop_.runUntil([&] { return state_->done; }, deadline, interrupted);
  Attempt result = state_->result;
  if (wake != Loop::Wake::kDone) {
    result.outcome = wake == Loop::Wake::kInterrupted ? Attempt::Outcome::kInterrupted
                                                      : Attempt::Outcome::kTimedOut;
    result.sent = state_->result.sent;
    result.detail = "no answer in time";
    state_->close();
    state_.reset();  // its handlers complete into the old state
  } else if (result.outcome != Attempt::Outcome::kAnswered) {
    state_.reset();
  } else {
    state_->stream.expires_never();
  }
  return result;
}

// --- streams

struct StreamState : std::enable_shared_from_this<StreamState> {
  StreamState(asio::io_context& io, const Endpoint& e, std::size_t maxLine)
      : stream(io), resolver(io), endpoint(e), maxLineBytes(maxLine) {}

  void start(http::request<http::string_body> r) {
    request = std::move(r);
    parser.header_limit(kHeaderLimit);
    // A stream's body never ends; its lines are limited instead (onChunk).
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.on_chunk_body(chunkCallback);
    auto self = shared_from_this();
    connect(stream, resolver, endpoint, [self](boost::system::error_code ec) {
      if (ec) return self->fail(Attempt::Outcome::kNotSent, "cannot connect: " + ec.message());
      http::async_write(
          self->stream, self->request, [self](boost::system::error_code wec, std::size_t) {
            if (wec) {
              return self->fail(Attempt::Outcome::kNotSent, "cannot send: " + wec.message());
            }
            self->sent = true;
            self->readMore();
          });
    });
  }

  void readMore() {
    auto self = shared_from_this();
    http::async_read_some(stream, buffer, parser,
                          [self](boost::system::error_code ec, std::size_t) { self->onRead(ec); });
  }

  void onRead(boost::system::error_code ec) {
    if (ended) return;
    if (ec == http::error::header_limit) {
      return fail(Attempt::Outcome::kMalformed, "answer header over the size limit");
    }
    if (isParseError(ec)) {
      return fail(Attempt::Outcome::kMalformed, "not an HTTP answer: " + ec.message());
    }
    if (ec) return fail(Attempt::Outcome::kLost, "stream broken: " + ec.message());
    if (overLimit || parser.get().body().size() > maxLineBytes) {
      return fail(Attempt::Outcome::kMalformed, "a line over the size limit");
    }
    if (parser.is_done()) {
      // The answer is over: a stream that ended normally, or an error answer (its body is in
      // the chunks for a chunked answer, in the body otherwise).
      status = static_cast<int>(parser.get().result_int());
      errorBody = partial + parser.get().body();
      partial.clear();
      ended = true;
      outcome = Attempt::Outcome::kAnswered;
      close();
      return;
    }
    if (parser.is_header_done()) status = static_cast<int>(parser.get().result_int());
    readMore();
  }

  // Splits the chunks of a 200 answer into lines; keeps an error answer whole.
  std::size_t onChunk(std::uint64_t, beast::string_view data, beast::error_code&) {
    partial.append(data.data(), data.size());
    if (parser.get().result_int() == 200) {
      std::size_t start = 0;
      for (std::size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
        if (nl > start) lines.push_back(partial.substr(start, nl - start));
      }
      partial.erase(0, start);
    }
    if (partial.size() > maxLineBytes) overLimit = true;
    return data.size();
  }

  void fail(Attempt::Outcome o, std::string why) {
    if (ended) return;
    outcome = o;
    detail = std::move(why);
    ended = true;
    close();
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
  }

  beast::tcp_stream stream;
  tcp::resolver resolver;
  Endpoint endpoint;
  std::size_t maxLineBytes;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  http::response_parser<http::string_body> parser;
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> chunkCallback =
      [this](std::uint64_t remain, beast::string_view data, beast::error_code& ec) {
        return onChunk(remain, data, ec);
      };
  std::deque<std::string> lines;
  std::string partial;
  bool sent = false;
  bool ended = false;
  bool overLimit = false;
  int status = 0;
  std::string errorBody;
  Attempt::Outcome outcome = Attempt::Outcome::kNotSent;
  std::string detail;
};

StreamConnection::StreamConnection(Loop& loop, Endpoint endpoint, const std::string& path,
                                   const std::string& body, std::size_t maxLineBytes)
    : loop_(loop),
      endpoint_(std::move(endpoint)),
      state_(std::make_shared<StreamState>(loop.io(), endpoint_, maxLineBytes)) {
  state_->start(makeRequest(endpoint_, path, body));
}

StreamConnection::~StreamConnection() { close(); }

bool StreamConnection::waitSent(SteadyTime deadline, const std::atomic<bool>& interrupted) {
  loop_.runUntil([&] { return state_->sent || state_->ended; }, deadline, interrupted);
  return state_->sent;
}

std::optional<std::string> StreamConnection::nextLine(SteadyTime deadline,
                                                      const std::atomic<bool>& interrupted,
                                                      bool* ended) {
  loop_.runUntil([&] { return !state_->lines.empty() || state_->ended; }, deadline, interrupted);
  *ended = false;
  if (!state_->lines.empty()) {
    std::string line = std::move(state_->lines.front());
    state_->lines.pop_front();
    return line;
  }
  *ended = state_->ended;
  return std::nullopt;
}

Attempt StreamConnection::failure() const {
  Attempt a;
  a.outcome = state_->outcome;
  a.sent = state_->sent;
  a.status = state_->status;
  a.body = state_->errorBody;
  a.detail = state_->detail;
  return a;
}

bool StreamConnection::sent() const { return state_->sent; }

void StreamConnection::close() {
  if (!state_->ended) {
    state_->ended = true;
    state_->outcome = Attempt::Outcome::kLost;
    state_->detail = "closed by this client";
  }
  state_->close();
}

}  // namespace vrm::etcd::detail
