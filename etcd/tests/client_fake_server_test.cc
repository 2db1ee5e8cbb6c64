// The client against a fake member that misbehaves on purpose (tests/ha/ has the real cluster):
// every bad answer is a typed error, never a crash or a hang; reads fail over, a write that
// was sent is not sent again elsewhere; interrupt() ends a blocking call from another thread.
// clang-format off
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it
// clang-format on
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <mutex>
#include <thread>

#include "vrm/etcd/client.h"

namespace vrm::etcd {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

const std::string kHeader =
    R"("header":{"cluster_id":"1","member_id":"2","revision":"8","raft_term":"2"})";

std::string httpAnswer(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

// A member that answers each request with what `reply` says: raw bytes to write, then close
// the connection or keep it open (hang: never answer).
class FakeMember {
 public:
  struct Reply {
    std::string bytes;
    bool hang = false;
  };
  using ReplyFn = std::function<Reply(const std::string& path, const std::string& body)>;

  explicit FakeMember(ReplyFn reply) : reply_(std::move(reply)), acceptor_(io_) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeMember() {
    stopping_ = true;
    boost::system::error_code ignored;
    // Wake the accept and any read.
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ignored);
    poke.close(ignored);
    thread_.join();
  }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }

 private:
  void serve() {
    std::vector<tcp::socket> hung;
    while (!stopping_) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) break;
      beast::flat_buffer buffer;
      http::request<http::string_body> request;
      http::read(socket, buffer, request, ec);
      if (ec) continue;
      ++requests_;
      const Reply r = reply_(std::string(request.target()), request.body());
      asio::write(socket, asio::buffer(r.bytes), ec);
      if (r.hang) {
        hung.push_back(std::move(socket));
      } else {
        socket.shutdown(tcp::socket::shutdown_both, ec);
      }
    }
  }

  ReplyFn reply_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
};

std::unique_ptr<Client> clientFor(std::vector<std::string> endpoints,
                                  std::chrono::milliseconds attempt = 300ms) {
  ClientOptions options;
  options.endpoints = std::move(endpoints);
  options.attemptTimeout = attempt;
  options.callTimeout = 3 * attempt;
  options.maxAnswerBytes = 64 * 1024;
  auto client = Client::create(options);
  EXPECT_TRUE(client.isOk());
  return std::move(*client);
}

// A port nobody listens on: bound, then closed.
std::string closedEndpoint() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = a.local_endpoint().port();
  a.close();
  return "127.0.0.1:" + std::to_string(port);
}

TEST(ClientFakeServerTest, EveryMalformedAnswerIsATypedError) {
  // Garbage, a non-JSON 200, an answer cut short, one over the size limit and an unknown
  // status: each read gets an Error (kBadResponse or kTimeout), and the client keeps working.
  const std::vector<std::pair<std::string, ErrorCode>> answers = {
      {"garbage garbage\r\n\r\n", ErrorCode::kBadResponse},
      {httpAnswer(200, "not json"), ErrorCode::kBadResponse},
      {httpAnswer(200, "[1]"), ErrorCode::kBadResponse},
      {httpAnswer(200, "{" + kHeader + R"(,"kvs":[{"key":"@@"}]})"), ErrorCode::kBadResponse},
      {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"hea", ErrorCode::kTimeout},
      {httpAnswer(200, std::string(100 * 1024, ' ')), ErrorCode::kBadResponse},
      {httpAnswer(418, "teapot"), ErrorCode::kBadResponse},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ErrorCode::kBadResponse},
  };
  for (const auto& [bytes, code] : answers) {
    FakeMember member([&](const std::string&, const std::string&) {
      return FakeMember::Reply{bytes, /*hang=*/true};
    });
    auto client = clientFor({member.endpoint()});
    const auto r = client->range(RangeRequest::single("k"));
    ASSERT_FALSE(r.isOk()) << bytes.substr(0, 40);
    EXPECT_EQ(r.error().code(), code) << bytes.substr(0, 40) << " -> " << r.error().toString();
  }
}

TEST(ClientFakeServerTest, ReadsFailOverToTheNextMember) {
  // The first endpoint refuses connections, the second hangs, the third answers: a read
  // succeeds, and the next call goes straight to the member that answered.
  FakeMember hanging([](const std::string&, const std::string&) {
    return FakeMember::Reply{"", /*hang=*/true};
  });
  FakeMember good([](const std::string&, const std::string&) {
    return FakeMember::Reply{
        httpAnswer(200, "{" + kHeader + R"(,"kvs":[{"key":"aw==","value":"dg=="}],"count":"1"})")};
  });
  ClientOptions options;
  options.endpoints = {closedEndpoint(), hanging.endpoint(), good.endpoint()};
  options.attemptTimeout = 300ms;
  options.callTimeout = 2s;
  auto client = std::move(*Client::create(options));
  auto r = client->range(RangeRequest::single("k"));
  ASSERT_TRUE(r.isOk()) << r.error().toString();
  EXPECT_EQ(r->kvs.at(0).value, "v");
  EXPECT_EQ(hanging.requests(), 1);
  r = client->range(RangeRequest::single("k"));
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(hanging.requests(), 1);
  EXPECT_EQ(good.requests(), 2);
}

// A member that keeps its first connection after answering once, then reads the next request
// on it and closes it unanswered: what a client sees when a member drops a kept connection
// just as a request goes out. Later connections are answered one request each.
class ClosesKeptConnection {
 public:
  explicit ClosesKeptConnection(std::string answer) : answer_(std::move(answer)), acceptor_(io_) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }
  ~ClosesKeptConnection() {
    stopping_ = true;
    boost::system::error_code ignored;
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }
  std::string endpoint() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  int requests() const { return requests_.load(); }

 private:
  bool readOne(tcp::socket& socket, beast::flat_buffer& buffer) {
    http::request<http::string_body> request;
    boost::system::error_code ec;
    http::read(socket, buffer, request, ec);
    if (ec) return false;
    ++requests_;
    return true;
  }
  void serve() {
    for (int connection = 0; !stopping_; ++connection) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) break;
      beast::flat_buffer buffer;
      if (!readOne(socket, buffer)) continue;
      asio::write(socket, asio::buffer(answer_), ec);
      if (connection == 0 && readOne(socket, buffer)) socket.close(ec);
    }
  }

  std::string answer_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
};

TEST(ClientFakeServerTest, AReadLostOnAKeptConnectionIsSentAgainOnANewOne) {
  // The second read goes out on the kept connection, which the member closes: the client
  // sends it again on a new connection to the same member, and it succeeds there.
  ClosesKeptConnection member(
      httpAnswer(200, "{" + kHeader + R"(,"kvs":[{"key":"aw==","value":"dg=="}],"count":"1"})"));
  auto client = clientFor({member.endpoint()});
  ASSERT_TRUE(client->range(RangeRequest::single("k")).isOk());
  const auto r = client->range(RangeRequest::single("k"));
  ASSERT_TRUE(r.isOk()) << r.error().toString();
  EXPECT_EQ(r->kvs.at(0).value, "v");
  EXPECT_EQ(member.requests(), 3);
}

TEST(ClientFakeServerTest, AWriteLostOnAKeptConnectionIsNotSentAgain) {
  // The member may have applied a put before closing: it is kTimeout, sent once.
  ClosesKeptConnection member(httpAnswer(200, "{" + kHeader + "}"));
  auto client = clientFor({member.endpoint()});
  ASSERT_TRUE(client->put(PutRequest{"k", "v", 0, false}).isOk());
  const auto put = client->put(PutRequest{"k", "v", 0, false});
  ASSERT_FALSE(put.isOk());
  EXPECT_EQ(put.error().code(), ErrorCode::kTimeout) << put.error().toString();
  EXPECT_EQ(member.requests(), 2);
}

TEST(ClientFakeServerTest, ASentWriteThatTimesOutIsNotRetriedElsewhere) {
  // A put that reached a member that never answers may have been applied: kTimeout, and the
  // second member never sees it. A put that could not be sent at all does fail over.
  FakeMember hanging([](const std::string&, const std::string&) {
    return FakeMember::Reply{"", /*hang=*/true};
  });
  FakeMember good([](const std::string&, const std::string&) {
    return FakeMember::Reply{httpAnswer(200, "{" + kHeader + "}")};
  });
  auto client = clientFor({hanging.endpoint(), good.endpoint()});
  const auto put = client->put(PutRequest{"k", "v", 0, false});
  ASSERT_FALSE(put.isOk());
  EXPECT_EQ(put.error().code(), ErrorCode::kTimeout) << put.error().toString();
  EXPECT_EQ(good.requests(), 0);

  auto refused = clientFor({closedEndpoint(), good.endpoint()});
  const auto put2 = refused->put(PutRequest{"k", "v", 0, false});
  ASSERT_TRUE(put2.isOk()) << put2.error().toString();
  EXPECT_EQ(good.requests(), 1);
}

TEST(ClientFakeServerTest, NoMemberReachableIsUnavailable) {
  // Nobody listens: kUnavailable naming each member, within the call timeout.
  auto client = clientFor({closedEndpoint(), closedEndpoint()});
  const auto r = client->range(RangeRequest::single("k"));
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("no etcd member"), std::string::npos);
}

TEST(ClientFakeServerTest, OversizedRequestsAreRefusedBeforeSending) {
  // A put over maxRequestBytes never reaches the member.
  FakeMember member([](const std::string&, const std::string&) {
    return FakeMember::Reply{httpAnswer(200, "{" + kHeader + "}")};
  });
  ClientOptions options;
  options.endpoints = {member.endpoint()};
  options.maxRequestBytes = 1000;
  auto client = std::move(*Client::create(options));
  const auto r = client->put(PutRequest{"k", std::string(2000, 'x'), 0, false});
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.error().code(), ErrorCode::kRequestTooLarge);
  EXPECT_EQ(member.requests(), 0);
}

TEST(ClientFakeServerTest, InterruptEndsABlockingCallFromAnotherThread) {
  // A watch waiting on a silent member returns kCancelled soon after interrupt() from another
  // thread, and every later call at once.
  FakeMember silent([](const std::string&, const std::string&) {
    return FakeMember::Reply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true};
  });
  auto client = clientFor({silent.endpoint()}, 10s);
  Watcher watcher = client->watch(WatchRequest{"k", "", 0, false});
  std::thread other([&] {
    std::this_thread::sleep_for(200ms);
    client->interrupt();
  });
  const auto started = std::chrono::steady_clock::now();
  const auto r = watcher.next(started + 20s);
  other.join();
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.error().code(), ErrorCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(client->range(RangeRequest::single("k")).error().code(), ErrorCode::kCancelled);
}

TEST(ClientFakeServerTest, BadOptionsAreInvalidArguments) {
  // No endpoints, a malformed endpoint, a zero timeout.
  EXPECT_EQ(Client::create(ClientOptions{}).error().code(), ErrorCode::kInvalidArgument);
  ClientOptions o;
  o.endpoints = {"https://x:1"};
  EXPECT_EQ(Client::create(o).error().code(), ErrorCode::kInvalidArgument);
  o.endpoints = {"127.0.0.1:70000"};
  EXPECT_EQ(Client::create(o).error().code(), ErrorCode::kInvalidArgument);
  o.endpoints = {"127.0.0.1:2379"};
  o.attemptTimeout = 0ms;
  EXPECT_EQ(Client::create(o).error().code(), ErrorCode::kInvalidArgument);
  const auto split = splitEndpoints("127.0.0.1:1, http://h:2,[::1]:3");
  ASSERT_TRUE(split.isOk());
  EXPECT_EQ(split->size(), 3u);
  EXPECT_FALSE(splitEndpoints("a:1,,b:2").isOk());
  EXPECT_FALSE(splitEndpoints("").isOk());
}

}  // namespace
}  // namespace vrm::etcd
