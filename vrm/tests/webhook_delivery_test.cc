// Webhook delivery over real HTTP: HttpWebhookSender and the Notifier against a loopback
// receiver started by the test (Boost.Beast, 127.0.0.1, an OS-chosen port), and vrmd's Server
// with webhooks whose endpoint is slow or down. vrmd's clock is a ManualClock (the retry
// schedule is advanced by hand); real time only bounds how long the test waits for I/O.
// clang-format off
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it
// clang-format on
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "vrm/manager/notifier.h"
#include "vrm/manager/server.h"
#include "vrm/manager/webhook_sender.h"
#include "vrm/planner/vacate_planner.h"
#include "vrm/protocol/wire_convert.h"

namespace vrm::manager {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// An HTTP endpoint on 127.0.0.1 answering POSTs one connection at a time: the scripted statuses
// in order, then 200. While held, it reads a request and keeps it unanswered until release().
class Receiver {
 public:
  struct Request {
    std::string target, body, signature, delivery, event;
    unsigned answered = 0;  // the status it was answered with
  };

  explicit Receiver(std::vector<unsigned> statuses = {}) : statuses_(std::move(statuses)) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }
  ~Receiver() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      held_ = false;
    }
    changed_.notify_all();
    // Wakes the blocking accept.
    asio::io_context io;
    tcp::socket poke(io);
    beast::error_code ignored;
    poke.connect({asio::ip::make_address("127.0.0.1"), port()}, ignored);
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/hook?t=x"; }

  void hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      held_ = false;
    }
    changed_.notify_all();
  }
  std::vector<Request> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // Waits (real time, bounded) until `n` requests have arrived.
  bool waitForRequests(std::size_t n) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return requests_.size() >= n; });
  }

 private:
  void serve() {
    while (true) {
      tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
      }
      if (ec) continue;
      beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(socket, buffer, req, ec);
      if (ec) continue;
      std::unique_lock lock(mu_);
      Request r;
      r.target = std::string(req.target());
      r.body = req.body();
      r.signature = std::string(req["X-Vrm-Signature"]);
      r.delivery = std::string(req["X-Vrm-Delivery"]);
      r.event = std::string(req["X-Vrm-Event"]);
      const std::size_t n = requests_.size();
      r.answered = n < statuses_.size() ? statuses_[n] : 200;
      requests_.push_back(r);
      changed_.notify_all();
      changed_.wait(lock, [&] { return !held_ || stopping_; });
      if (stopping_) return;
      lock.unlock();
      http::response<http::string_body> res{static_cast<http::status>(r.answered), 11};
      res.body() = "ok";
      res.prepare_payload();
      http::write(socket, res, ec);
    }
  }

  std::vector<unsigned> statuses_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable changed_;
  bool held_ = false;
  bool stopping_ = false;
  std::vector<Request> requests_;
};

Webhook hookTo(const std::string& url, std::set<NotificationKind> kinds) {
  Webhook w;
  w.owner = "lab";
  w.url = *parseWebhookUrl(url);
  w.secret = "hunter2";
  w.kinds = std::move(kinds);
  return w;
}

// Outcomes of `sender` until `n` arrived (real time, bounded).
std::vector<WebhookPostOutcome> outcomes(WebhookSender& sender, std::size_t n) {
  std::vector<WebhookPostOutcome> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    for (auto& o : sender.takeOutcomes()) out.push_back(std::move(o));
    if (out.size() < n) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return out;
}

// Ensures an endpoint answering 500 twice then 200 gets the event three times, the same body
// and id each time, validly signed, is answered 2xx once, and is shown delivered after 3
// attempts; the retries come at the backoff's times.
TEST(WebhookDeliveryTest, RetriedUntilDeliveredOnceWithAValidSignature) {
  Receiver receiver({500, 500});
  ManualClock clock(1000 * kNsPerSec);
  Notifier notifier(clock, {hookTo(receiver.url(), {NotificationKind::kAdmitted})});
  HttpWebhookSenderOptions o;
  o.threads = 1;
  auto sender = HttpWebhookSender::create(o);
  ASSERT_TRUE(sender) << sender.status().message();

  Reservation r;
  r.id = "r1";
  r.request.owner = "lab";
  r.state = ReservationState::kAdmitted;
  r.events = {{clock.now(), ReservationState::kRequested, "requested by lab"},
              {clock.now(), ReservationState::kAdmitted, "admitted"}};
  notifier.observe(r.events[1], r);

  std::vector<TimeNs> attemptTimes;
  for (int round = 0; round < 5 && notifier.nextWakeNs() != kTimeInfinity; ++round) {
    clock.set(std::max(clock.now(), notifier.nextWakeNs()));
    auto due = notifier.takeDue();
    ASSERT_EQ(due.size(), 1u);
    attemptTimes.push_back(clock.now());
    (*sender)->send(std::move(due[0]));
    auto got = outcomes(**sender, 1);
    ASSERT_EQ(got.size(), 1u) << "no outcome within 15 s";
    notifier.onOutcome(got[0]);
  }
  EXPECT_EQ(attemptTimes,
            (std::vector<TimeNs>{1000 * kNsPerSec, 1005 * kNsPerSec, 1015 * kNsPerSec}));
  const auto got = receiver.requests();
  ASSERT_EQ(got.size(), 3u);
  int accepted = 0;
  for (const auto& req : got) {
    EXPECT_EQ(req.target, "/hook?t=x");
    EXPECT_EQ(req.body, got[0].body);
    EXPECT_EQ(req.delivery, "r1.e1");
    EXPECT_EQ(req.event, "admitted");
    EXPECT_EQ(req.signature, webhookSignature("hunter2", req.body));
    accepted += req.answered == 200;
  }
  EXPECT_EQ(accepted, 1);
  EXPECT_EQ(nlohmann::json::parse(got[0].body)["reservation"], "r1");
  auto shown = notifier.deliveriesOf("r1");
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].state, DeliveryState::kDelivered);
  EXPECT_EQ(shown[0].attempts, 3u);
  EXPECT_EQ(shown[0].lastError, "HTTP 500");
  EXPECT_EQ(shown[0].url, "http://127.0.0.1:" + std::to_string(receiver.port()) + "/hook");
}

// Ensures a refused connection and an endpoint that never answers become outcomes (failures
// with the network's reason) rather than stuck posts.
TEST(WebhookDeliveryTest, DownAndSilentEndpointsFail) {
  std::uint16_t downPort = 0;
  {
    Receiver probe;  // a port that was just free; nothing listens there once it is gone
    downPort = probe.port();
  }
  Receiver silent;
  silent.hold();
  HttpWebhookSenderOptions o;
  o.threads = 2;
  o.timeout = std::chrono::milliseconds(300);
  auto sender = HttpWebhookSender::create(o);
  ASSERT_TRUE(sender);
  WebhookPost down;
  down.attemptId = 1;
  down.url = *parseWebhookUrl("http://127.0.0.1:" + std::to_string(downPort) + "/");
  WebhookPost slow;
  slow.attemptId = 2;
  slow.url = *parseWebhookUrl(silent.url());
  (*sender)->send(down);
  (*sender)->send(slow);
  auto got = outcomes(**sender, 2);
  ASSERT_EQ(got.size(), 2u);
  std::map<std::uint64_t, WebhookPostOutcome> byId;
  for (auto& g : got) byId[g.attemptId] = g;
  EXPECT_FALSE(byId[1].delivered);
  EXPECT_NE(byId[1].error.find("connecting"), std::string::npos) << byId[1].error;
  EXPECT_FALSE(byId[2].delivered);
  EXPECT_NE(byId[2].error.find("timed out after 300 ms"), std::string::npos) << byId[2].error;
  silent.release();
}

constexpr std::uint64_t kGiB = 1ull << 30;

// vrmd's core with a webhook to `url` for every kind, served by a Server on inproc://.
struct WebhookCore {
  explicit WebhookCore(const std::string& url)
      : notifier(clock, {hookTo(url, {NotificationKind::kAdmitted, NotificationKind::kReady})}) {
    TemplateSpec t;
    t.name = "bmi";
    t.memoryBytes = 4 * kGiB;
    manager = std::make_unique<Manager>(clock, *store, planner, std::vector{t});
    HostRecord h{"node1", 8, 16 * kGiB, 125e6, "sim", "", true, 0};
    EXPECT_TRUE(manager->onRegister(h, {}).isOk());
    HttpWebhookSenderOptions so;
    so.threads = 1;
    so.timeout = std::chrono::seconds(30);  // longer than the test: only release() ends a post
    sender = std::move(*HttpWebhookSender::create(so));
    ServerOptions o;
    o.clientEndpoint = "inproc://clients";
    o.agentEndpoint = "inproc://agents";
    o.notifier = &notifier;
    o.webhooks = sender.get();
    server = std::make_unique<Server>(ctx, *manager, clock, o);
    EXPECT_TRUE(server->bind().isOk());
    client.set(zmq::sockopt::linger, 0);
    client.connect("inproc://clients");
  }

  // Sends a request and serves until its reply (bounded); the reply's frame.
  std::optional<protocol::DecodedFrame> request(capnp::MessageBuilder& b) {
    client.send(protocol::encodeFrame(b), zmq::send_flags::none);
    for (int i = 0; i < 400; ++i) {
      server->runOnce(std::chrono::milliseconds(5));
      zmq::message_t msg;
      if (client.recv(msg, zmq::recv_flags::dontwait)) {
        auto frame = protocol::decodeFrame(std::move(msg));
        if (!frame) return std::nullopt;
        return std::move(*frame);
      }
    }
    return std::nullopt;
  }
  // A reservation of node1 starting in `startHours`, for an hour.
  std::optional<protocol::DecodedFrame> submit(int startHours = 1) {
    capnp::MallocMessageBuilder b;
    auto s = b.initRoot<wire::ClientRequest>().initSubmit();
    s.setOwner("lab");
    s.setHostCount(1);
    s.setStartNs(clock.now() + startHours * 3600 * kNsPerSec);
    s.setEndNs(clock.now() + (startHours + 1) * 3600 * kNsPerSec);
    s.setTemplate("bmi");
    return request(b);
  }
  std::vector<WebhookDelivery> deliveriesOf(const std::string& id) {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::ClientRequest>().setGet(id);
    auto reply = request(b);
    std::vector<WebhookDelivery> out;
    if (!reply) return out;
    auto root = reply->root<wire::ClientReply>();
    for (auto d : root->getDeliveries()) out.push_back(protocol::fromWire(d));
    return out;
  }

  ManualClock clock{1'800'000'000 * kNsPerSec};
  std::unique_ptr<Store> store = std::move(*Store::open(":memory:"));
  planner::SequentialVacatePlanner planner{std::shared_ptr<const planner::MigrationModel>(
      std::move(*planner::createMigrationModel("simple")))};
  std::unique_ptr<Manager> manager;
  Notifier notifier;
  std::unique_ptr<HttpWebhookSender> sender;
  zmq::context_t ctx;
  std::unique_ptr<Server> server;
  zmq::socket_t client{ctx, zmq::socket_type::dealer};
};

// Ensures that while an endpoint holds vrmd's POST unanswered, vrmd goes on admitting (the post
// is on the sender's thread, not the loop), and that the delivery shows in the get reply:
// pending while held, delivered once answered.
TEST(WebhookDeliveryTest, SlowEndpointNeverBlocksAdmission) {
  Receiver receiver;
  receiver.hold();
  WebhookCore core(receiver.url());
  auto first = core.submit();
  ASSERT_TRUE(first);
  ASSERT_EQ(first->root<wire::ClientReply>()->getStatus().getCode(), wire::StatusCode::OK);
  for (int i = 0; i < 10 && receiver.requests().empty(); ++i) {
    core.server->runOnce(std::chrono::milliseconds(5));
    receiver.waitForRequests(1);
  }
  ASSERT_EQ(receiver.requests().size(), 1u) << "the admitted event was not posted";

  // The post of r1's admission is held: r2 is admitted all the same.
  auto second = core.submit(3);
  ASSERT_TRUE(second) << "vrmd did not answer while a webhook endpoint held its POST";
  EXPECT_EQ(second->root<wire::ClientReply>()->getStatus().getCode(), wire::StatusCode::OK);
  auto shown = core.deliveriesOf("r1");
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].state, DeliveryState::kPending);
  EXPECT_EQ(shown[0].kind, "admitted");

  receiver.release();
  ASSERT_TRUE(receiver.waitForRequests(2));  // r2's, after r1's was answered
  for (int i = 0; i < 400; ++i) {
    core.server->runOnce(std::chrono::milliseconds(5));
    shown = core.notifier.deliveriesOf("r2");
    if (!shown.empty() && shown[0].state == DeliveryState::kDelivered) break;
  }
  shown = core.deliveriesOf("r1");
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].state, DeliveryState::kDelivered);
  EXPECT_EQ(shown[0].attempts, 1u);
  EXPECT_EQ(core.notifier.deliveriesOf("r2").at(0).state, DeliveryState::kDelivered);
}

// Ensures a down endpoint never fails or delays an admission, and its failing delivery is what
// a get reply shows (with the reason and when it is tried next).
TEST(WebhookDeliveryTest, DownEndpointIsShownFailing) {
  std::uint16_t downPort = 0;
  {
    Receiver probe;
    downPort = probe.port();
  }
  WebhookCore core("http://127.0.0.1:" + std::to_string(downPort) + "/hook");
  auto reply = core.submit();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->root<wire::ClientReply>()->getStatus().getCode(), wire::StatusCode::OK);
  std::vector<WebhookDelivery> shown;
  for (int i = 0; i < 400; ++i) {
    core.server->runOnce(std::chrono::milliseconds(5));
    shown = core.notifier.deliveriesOf("r1");
    if (!shown.empty() && shown[0].state == DeliveryState::kFailing) break;
  }
  shown = core.deliveriesOf("r1");
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].state, DeliveryState::kFailing);
  EXPECT_EQ(shown[0].attempts, 1u);
  EXPECT_NE(shown[0].lastError.find("connecting"), std::string::npos) << shown[0].lastError;
  EXPECT_EQ(shown[0].nextAttemptNs, core.clock.now() + 5 * kNsPerSec);
}

}  // namespace
}  // namespace vrm::manager
