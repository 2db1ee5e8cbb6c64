#include "vrm/web/web_server.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "command_run.h"
#include "fake_agents.h"
#include "http_test_client.h"
#include "manager_fixture.h"
#include "router.h"
#include "vrm/client/client.h"
#include "vrm/client/render.h"
#include "vrm/manager/auth.h"
#include "vrm/manager/calibrating_planner.h"
#include "vrm/manager/server.h"
#include "vrm/protocol/curve.h"
#include "vrm/protocol/token.h"

namespace vrm::web {
using namespace vrm::manager;  // the vrmd core the web server is tested against
namespace {

using http_client::HttpReply;
using http_client::httpRequest;
using manager::testing::FakeAgents;
using manager::testing::kGiB;
using manager::testing::kHour;
using manager::testing::kStartOfTime;
using nlohmann::json;
constexpr char kInproc[] = "inproc://vrm-web-test";

// vrmd's core (Manager + Server on a loop thread, ManualClock) and a WebServer on loopback with
// an OS-chosen port; requests over a raw socket so malformed ones can be sent too.
class WebServerTest : public manager::testing::ManagerFixture {
 protected:
  void SetUp() override {
    startManager({manager::testing::bmiTemplate()});
    agents_->addHost("node1", 16, 64 * kGiB, {FakeAgents::vm("a1", 8 * kGiB)});
    agents_->addHost("node2", 16, 64 * kGiB, {FakeAgents::vm("b1", 4 * kGiB)});
    agents_->addHost("node3", 16, 64 * kGiB, {FakeAgents::vm("c1", 2 * kGiB)});

    ServerOptions o;
    o.clientEndpoint = "tcp://127.0.0.1:*";
    o.agentEndpoint = "tcp://127.0.0.1:*";
    o.extraClientEndpoints = {kInproc};
    o.maxPollWait = std::chrono::milliseconds(10);
    o.admissions = &admissions_;
    server_ = std::make_unique<Server>(ctx_, *manager_, clock_, o);
    ASSERT_TRUE(server_->bind().isOk());

    // A web root with a file, a hidden file and a symlink out; a secret beside the root.
    base_ = std::filesystem::temp_directory_path() /
            ("vrm-web-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_ / "www" / "sub");
    std::ofstream(base_ / "www" / "index.html") << "<html>calendar</html>";
    std::ofstream(base_ / "www" / "sub" / "app.js") << "let x = 1;";
    std::ofstream(base_ / "www" / ".hidden") << "hidden";
    std::ofstream(base_ / "secret.txt") << "TOP-SECRET";
    std::filesystem::create_symlink(base_ / "secret.txt", base_ / "www" / "link.txt");

    WebServerOptions w;
    w.port = 0;
    w.webRoot = (base_ / "www").string();
    w.vrmdEndpoint = kInproc;
    w.templates = templates_;
    w.maxBodyBytes = 4096;
    w.calendarUidDomain = "vrm.test";
    // As vrmd's main() wires it: the admission path's families, then the models' (a real
    // calibrating planner's, not fitted yet).
    auto calibrating = CalibratingPlanner::create({});
    ASSERT_TRUE(calibrating.isOk()) << calibrating.status().toString();
    calibrating_ = std::move(*calibrating);
    w.extraMetrics = [this] { return admissions_.text() + calibrating_->metricsText(); };
    web_ = std::make_unique<WebServer>(ctx_, w);
    ASSERT_TRUE(web_->start().isOk());
    ASSERT_NE(web_->port(), 0);
    startLoop();
  }

  void TearDown() override {
    web_->stop();
    if (loop_.joinable()) stopLoop();
    std::filesystem::remove_all(base_);
  }

  // While the loop runs, only its thread touches the manager; the test touches it only between
  // stopLoop() and startLoop().
  void startLoop() {
    stop_ = false;
    loop_ = std::thread([this] { server_->run(stop_); });
  }
  void stopLoop() {
    stop_ = true;
    loop_.join();
  }

  HttpReply raw(const std::string& request) { return httpRequest(web_->port(), request); }
  HttpReply get(const std::string& path) {
    return raw("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  }
  HttpReply post(const std::string& path, const std::string& body) {
    return raw("POST " + path +
               " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
               "Content-Type: application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body);
  }

  zmq::context_t ctx_;
  AdmissionMetrics admissions_;
  std::unique_ptr<CalibratingPlanner> calibrating_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<WebServer> web_;
  std::filesystem::path base_;
  std::atomic<bool> stop_{false};
  std::thread loop_;
};

// Ensures the page and the API are served, and the API's JSON is what `vrmctl --json` prints.
TEST_F(WebServerTest, ServesThePageAndApiJsonLikeVrmctl) {
  auto page = get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.body, "<html>calendar</html>");
  EXPECT_NE(page.headers.find("text/html"), std::string::npos);
  EXPECT_EQ(get("/reservations/r1").body, page.body) << "the reservation page is the same app";
  EXPECT_EQ(get("/sub/app.js").status, 200);

  auto hosts = get("/api/hosts");
  ASSERT_EQ(hosts.status, 200);
  EXPECT_NE(hosts.headers.find("application/json"), std::string::npos);
  client::ClientOptions co;
  co.endpoint = kInproc;
  client::Client vrmctl(co, &ctx_);
  auto direct = vrmctl.hosts();
  ASSERT_TRUE(direct.isOk());
  EXPECT_EQ(hosts.parsed(), json::parse(client::hostsJson(*direct)));
  EXPECT_EQ(hosts.parsed().size(), 3u);
  EXPECT_EQ(get("/api/vms").parsed(), json::parse(client::vmsJson(*vrmctl.vms())));

  auto now = get("/api/now").parsed();
  EXPECT_EQ(now["now_ns"].get<TimeNs>(), kStartOfTime);
  auto templates = get("/api/templates").parsed();
  ASSERT_EQ(templates.size(), 1u);
  EXPECT_EQ(templates[0]["name"], "bmi");
  EXPECT_EQ(get("/api/reservations").parsed(), json::array());
}

// Ensures a booking through the API returns the decision: admitted with its plan and latest
// safe start (201), rejected with its reason and earliest feasible start (422); and that the
// reservation can be read, listed and cancelled once (409 the second time).
TEST_F(WebServerTest, BooksAndShowsTheDecision) {
  auto admitted = post("/api/reservations",
                       R"({"hosts": 1, "start": "+2h", "duration": "1h", "template": "bmi",
                           "label": "web booking", "objective": "makespan"})");
  ASSERT_EQ(admitted.status, 201) << admitted.body;
  auto r = admitted.parsed();
  EXPECT_EQ(r["state"], "admitted");
  EXPECT_EQ(r["owner"], "web");
  EXPECT_EQ(r["label"], "web booking");
  EXPECT_EQ(r["hosts"], json::array({"node3"}));
  EXPECT_EQ(r["start_ns"].get<TimeNs>(), kStartOfTime + 2 * 3600 * kNsPerSec);
  EXPECT_GT(r["plan"]["latest_safe_start_ns"].get<TimeNs>(), kStartOfTime);
  EXPECT_EQ(r["plan"]["moves"].size(), 1u);
  const std::string id = r["id"];

  auto shown = get("/api/reservations/" + id);
  ASSERT_EQ(shown.status, 200);
  EXPECT_EQ(shown.parsed()["id"], id);
  auto listed = get("/api/reservations?state=admitted,ready&owner=web");
  ASSERT_EQ(listed.status, 200);
  ASSERT_EQ(listed.parsed().size(), 1u);
  EXPECT_EQ(listed.parsed()[0]["id"], id);
  EXPECT_EQ(get("/api/reservations?owner=someone-else").parsed(), json::array());

  auto rejected = post("/api/reservations",
                       R"({"hosts": 1, "start": "+10s", "duration": "1h", "template": "bmi"})");
  ASSERT_EQ(rejected.status, 422) << rejected.body;
  EXPECT_EQ(rejected.parsed()["state"], "rejected");
  EXPECT_FALSE(rejected.parsed()["reason"].get<std::string>().empty());
  EXPECT_TRUE(rejected.parsed().contains("earliest_feasible_start")) << rejected.body;

  auto dry = post("/api/reservations",
                  R"({"vms": 1, "start": "+3h", "duration": "1h", "template": "bmi",
                      "dry_run": true})");
  EXPECT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(dry.parsed()["kind"], "shared");

  auto cancelled = post("/api/reservations/" + id + "/cancel", "");
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(cancelled.parsed()["state"], "cancelled");
  auto again = post("/api/reservations/" + id + "/cancel", "");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.parsed()["error"], "rejected");
}

// Ensures bad requests get a JSON error with the documented status, and the server keeps
// serving after each of them.
TEST_F(WebServerTest, BadRequestsGetJsonErrors) {
  auto expectError = [&](const HttpReply& reply, int status, const std::string& needle) {
    EXPECT_EQ(reply.status, status) << reply.body;
    auto j = reply.parsed();
    ASSERT_TRUE(j.is_object()) << reply.body;
    EXPECT_TRUE(j.contains("error"));
    EXPECT_NE(j.value("message", "").find(needle), std::string::npos) << reply.body;
  };
  expectError(get("/api/reservations/r999"), 404, "r999");
  expectError(get("/api/reservations/bad%20id"), 400, "reservation id");
  expectError(get("/api/nothing"), 404, "no such API route");
  expectError(get("/api/reservations?state=sleepy"), 400, "unknown state");
  expectError(get("/api/reservations?colour=red"), 400, "unknown query parameter");
  expectError(post("/api/reservations", R"({"hosts": 1,)"), 400, "malformed JSON");
  expectError(post("/api/reservations", "[1, 2]"), 400, "JSON object");
  expectError(post("/api/reservations", std::string(3000, '[')), 400, "malformed JSON");
  expectError(post("/api/reservations", R"({"hots": 1})"), 400, "unknown field 'hots'");
  expectError(post("/api/reservations", R"({"hosts": -1})"), 400, "whole number");
  expectError(post("/api/reservations", R"({"hosts": "two"})"), 400, "whole number");
  expectError(post("/api/reservations",
                   R"({"hosts": 1, "start": "soonish", "duration": "1h", "template": "bmi"})"),
              400, "start");
  expectError(post("/api/reservations",
                   R"({"hosts": 1, "start": "+1h", "duration": "1h", "template": "nope"})"),
              400, "unknown template");
  expectError(post("/api/reservations",
                   R"({"hosts": 1, "start": "+1h", "duration": "1h", "end": "+3h",
                       "template": "bmi"})"),
              400, "exactly one of duration and end");
  expectError(post("/api/reservations",
                   R"({"hosts": 1, "start": "+2h", "duration": "1h", "template": "bmi",
                       "objective": "fastest"})"),
              400, "objective");
  expectError(raw("DELETE /api/hosts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 405,
              "GET");
  expectError(post("/api/reservations", std::string(5000, ' ')), 413, "too large");
  expectError(raw("HELLO\r\n\r\n"), 400, "malformed HTTP");
  expectError(get("/%zz"), 400, "escape");
  EXPECT_EQ(get("/api/now").status, 200) << "still serving";
}

// Ensures static files cannot be read from outside the web root: "..", encoded "..", hidden
// files and symbolic links that lead out all answer 404.
TEST_F(WebServerTest, StaticFilesStayInsideTheRoot) {
  for (const std::string path : {"/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../secret.txt",
                                 "/sub/%2E%2E/%2E%2E/secret.txt", "/..%2fsecret.txt", "/.hidden",
                                 "/link.txt", "/sub", "/nope.html", "/sub/..\\..\\secret.txt"}) {
    auto reply = get(path);
    EXPECT_EQ(reply.status, 404) << path;
    EXPECT_EQ(reply.body.find("TOP-SECRET"), std::string::npos) << path;
    EXPECT_EQ(reply.body.find("hidden\""), std::string::npos) << path;
  }
  auto head = raw("HEAD /sub/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_NE(head.headers.find("Content-Length: 10"), std::string::npos) << head.headers;
}

// Ensures every family of the whole /metrics page (vrmd's own and what main() adds) follows
// Prometheus' conventions, and that a submit over ZeroMQ is timed like one through the web.
TEST_F(WebServerTest, MetricsFollowPrometheusConventions) {
  ASSERT_EQ(post("/api/reservations",
                 R"({"hosts": 1, "start": "+2h", "duration": "1h", "template": "bmi"})")
                .status,
            201);
  client::ClientOptions co;
  co.endpoint = server_->clientEndpoint();
  client::Client vrmctl(co);
  ReservationRequest shared;
  shared.owner = "lab";
  shared.kind = ReservationKind::kShared;
  shared.vmCount = 1;
  shared.templateName = "bmi";
  shared.startNs = clock_.now() + 3 * 3600 * kNsPerSec;
  shared.endNs = shared.startNs + 3600 * kNsPerSec;
  ASSERT_TRUE(vrmctl.submit(shared).isOk());
  shared.dryRun = true;
  ASSERT_TRUE(vrmctl.submit(shared).isOk());

  const std::string page = get("/metrics").body;
  EXPECT_NE(page.find("vrm_admission_latency_seconds_count{via=\"zmq\"} 2\n"), std::string::npos)
      << page;
  EXPECT_NE(page.find("vrm_admission_dry_runs_total{via=\"zmq\"} 1\n"), std::string::npos);

  const std::set<std::string> allowedLabels = {"state", "reachable", "via",   "decision",
                                               "code",  "mode",      "model", "stat",
                                               "phase", "version",   "le"};
  std::map<std::string, std::string> typeOf;  // family -> type
  std::set<std::string> helped;
  std::map<std::string, double> lastBucket;  // histogram series (name + labels without le)
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.insert(name).second) << "HELP twice for " << name;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      EXPECT_TRUE(typeOf.emplace(name, type).second) << "TYPE twice for " << name;
      EXPECT_TRUE(helped.count(name)) << name << ": TYPE without HELP";
      EXPECT_EQ(name.rfind("vrm_", 0), 0u) << name;
      EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string::npos)
          << name;
      const bool endsInTotal = name.size() > 6 && name.substr(name.size() - 6) == "_total";
      EXPECT_EQ(endsInTotal, type == "counter")
          << "counters, and only they, end in _total: " << name;
      for (const char* unit : {"seconds", "ratio", "bytes"}) {
        const auto at = name.find(std::string("_") + unit);
        if (at == std::string::npos) continue;
        const std::string rest = name.substr(at + 1 + std::strlen(unit));
        EXPECT_TRUE(rest.empty() || rest == "_total") << "the unit comes last: " << name;
      }
      continue;
    }
    ASSERT_FALSE(line.empty() || line[0] == '#') << "unexpected line: " << line;
    const auto brace = line.find('{');
    const auto space = line.rfind(' ');
    const std::string name = line.substr(0, std::min(brace, line.find(' ')));
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string sfx = suffix;
      if (!typeOf.count(family) && name.size() > sfx.size() &&
          name.substr(name.size() - sfx.size()) == sfx) {
        family = name.substr(0, name.size() - sfx.size());
      }
    }
    ASSERT_TRUE(typeOf.count(family)) << "a sample before its family's TYPE: " << line;
    std::string labels;
    if (brace != std::string::npos) labels = line.substr(brace + 1, line.find('}') - brace - 1);
    std::string withoutLe;
    std::istringstream pairs(labels);
    for (std::string pair; std::getline(pairs, pair, ',');) {
      const std::string label = pair.substr(0, pair.find('='));
      EXPECT_TRUE(allowedLabels.count(label))
          << "label " << label << " (ids are not labels): " << line;
      if (label != "le") withoutLe += pair + ",";
    }
    const double value = std::stod(line.substr(space + 1));
    if (name != family && name.substr(family.size()) == "_bucket") {
      EXPECT_EQ(typeOf[family], "histogram") << line;
      const std::string series = family + "{" + withoutLe;
      auto [it, first] = lastBucket.emplace(series, value);
      if (!first) {
        EXPECT_GE(value, it->second) << "buckets are cumulative: " << line;
        it->second = value;
      }
    }
    if (name != family && name.substr(family.size()) == "_count" && typeOf[family] == "histogram") {
      const std::string series = family + "{" + withoutLe;
      ASSERT_TRUE(lastBucket.count(series)) << line;
      EXPECT_EQ(value, lastBucket[series]) << "+Inf equals the count: " << line;
    }
  }
  for (const char* family :
       {"vrm_build_info", "vrm_admission_latency_seconds", "vrm_admissions_total",
        "vrm_vacate_prediction_error_ratio", "vrm_migration_prediction_error_ratio",
        "vrm_web_responses_total", "vrm_reservations"}) {
    EXPECT_TRUE(typeOf.count(family)) << family << " is missing";
  }
}

// Ensures /metrics counts reservations by state, web admissions and their latency, migrations
// in flight, and the prediction error of completed moves.
TEST_F(WebServerTest, MetricsFollowTheReservations) {
  auto booked = post("/api/reservations",
                     R"({"hosts": 1, "start": "+2h", "duration": "1h", "template": "bmi"})");
  ASSERT_EQ(booked.status, 201) << booked.body;
  const std::string id = booked.parsed()["id"];
  auto metrics = get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.headers.find("text/plain; version=0.0.4"), std::string::npos);
  const std::string& m = metrics.body;
  EXPECT_NE(m.find("vrm_reservations{state=\"admitted\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("vrm_reservations{state=\"done\"} 0\n"), std::string::npos) << m;
  // Timed and counted by vrmd's server, as a submit that came through the web (inproc).
  EXPECT_NE(m.find("vrm_admission_latency_seconds_count{via=\"web\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("vrm_admission_latency_seconds_bucket{via=\"web\",le=\"+Inf\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m.find("vrm_admission_latency_seconds_count{via=\"zmq\"} 0\n"), std::string::npos);
  EXPECT_NE(m.find("vrm_admissions_total{via=\"web\",decision=\"admitted\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m.find("vrm_build_info{version=\""), std::string::npos);
  EXPECT_NE(m.find("vrm_vacate_prediction_error_ratio_count 0\n"), std::string::npos);
  EXPECT_NE(m.find("vrm_migrations_in_flight 0\n"), std::string::npos);
  EXPECT_NE(m.find("vrm_reservations_at_risk 0\n"), std::string::npos);
  EXPECT_NE(m.find("vrm_migrations_pending 1\n"), std::string::npos);
  EXPECT_NE(m.find("vrm_hosts{reachable=\"true\"} 3\n"), std::string::npos);
  EXPECT_NE(m.find("vrm_migration_prediction_error_seconds_count 0\n"), std::string::npos);
  // What vrmd adds (the calibrating planner's held-out model errors) comes last.
  EXPECT_NE(m.find("vrm_model_heldout_predictions{mode=\"live\",model=\"qemu-precopy\"} 0\n"),
            std::string::npos)
      << m;

  // Start the vacate with the migration held by its agent: one migration in flight.
  stopLoop();
  const TimeNs lss = manager_->get(id)->plan.latestSafeStartNs;
  clock_.set(lss);
  agents_->heartbeat();
  agents_->hold = {AgentCommand::Kind::kMigrate};
  manager_->tick();
  agents_->pump();
  ASSERT_EQ(agents_->held.size(), 1u);
  startLoop();
  EXPECT_NE(get("/metrics").body.find("vrm_migrations_in_flight 1\n"), std::string::npos);

  // The migration ends 5 s later; the vacate completes and the error is observed.
  stopLoop();
  clock_.advance(5 * kNsPerSec);
  agents_->hold.clear();
  for (const auto& c : agents_->held) manager_->onResult(c.host, agents_->execute(c));
  agents_->held.clear();
  for (int i = 0; i < 20; ++i) {
    clock_.advance(kNsPerSec);
    agents_->heartbeat();
    manager_->tick();
    agents_->pump();
  }
  ASSERT_EQ(manager_->get(id)->moves.at(0).progress.state, MoveState::kDone);
  startLoop();
  const std::string after = get("/metrics").body;
  EXPECT_NE(after.find("vrm_migrations_in_flight 0\n"), std::string::npos) << after;
  EXPECT_NE(after.find("vrm_migration_prediction_error_seconds_count 1\n"), std::string::npos)
      << after;
  EXPECT_NE(after.find("vrm_migration_prediction_error_seconds_sum "), std::string::npos);
  EXPECT_NE(after.find("vrm_migration_prediction_error_ratio_count 1\n"), std::string::npos);
  // One finished vacate (its only move), observed in the vacate histogram.
  EXPECT_NE(after.find("vrm_vacate_prediction_error_ratio_count 1\n"), std::string::npos) << after;
}

// Ensures the project's own web calendar files are served with their types, and that the API
// answers 503 (not a hang, not a crash) when vrmd's core does not answer.
TEST(WebServerFilesTest, ServesTheProjectsCalendar) {
  zmq::context_t ctx;
  WebServerOptions w;
  w.port = 0;
  w.webRoot = VRM_SOURCE_WEB_ROOT;
  w.vrmdEndpoint = "inproc://nobody-binds-this";
  w.vrmdTimeout = std::chrono::milliseconds(100);
  WebServer web(ctx, w);
  ASSERT_TRUE(web.start().isOk());
  auto get = [&](const std::string& path) {
    return httpRequest(web.port(),
                       "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  };
  for (const auto& [path, type] :
       {std::pair{"/", "text/html"}, {"/app.js", "text/javascript"}, {"/style.css", "text/css"}}) {
    auto reply = get(path);
    EXPECT_EQ(reply.status, 200) << path;
    EXPECT_NE(reply.headers.find(type), std::string::npos) << path;
    EXPECT_FALSE(reply.body.empty()) << path;
  }
  auto unavailable = get("/api/hosts");
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_EQ(unavailable.parsed()["error"], "unavailable");
  web.stop();
  web.stop();  // idempotent
}

// Ensures the --http forms parse and bad ones are refused with the accepted forms.
TEST(WebServerFilesTest, ParsesListenAddresses) {
  WebServerOptions o;
  ASSERT_TRUE(parseHttpListen("127.0.0.1:8081", o).isOk());
  EXPECT_EQ(o.address, "127.0.0.1");
  EXPECT_EQ(o.port, 8081);
  ASSERT_TRUE(parseHttpListen("[::1]:9000", o).isOk());
  EXPECT_EQ(o.address, "::1");
  EXPECT_EQ(o.port, 9000);
  ASSERT_TRUE(parseHttpListen("8082", o).isOk());
  EXPECT_EQ(o.address, "127.0.0.1");
  EXPECT_EQ(o.port, 8082);
  EXPECT_FALSE(parseHttpListen("localhost:80", o).isOk());
  EXPECT_FALSE(parseHttpListen("127.0.0.1:99999", o).isOk());
  EXPECT_FALSE(parseHttpListen("127.0.0.1:", o).isOk());
  EXPECT_NE(parseHttpListen("nonsense", o).message().find("ADDR:PORT"), std::string::npos);
}

// vrmd with CURVE keys and the web calendar with bearer tokens: the web server tells vrmd who
// asks and vrmd decides, so HTTP is no way around authorisation.
class WebAuthTest : public manager::testing::ManagerFixture {
 protected:
  static constexpr char kAliceToken[] = "alice-token-0123456789";
  static constexpr char kBobToken[] = "bob-token-0123456789ab";
  static constexpr char kAdminToken[] = "admin-token-0123456789";

  void SetUp() override {
    startManager({manager::testing::bmiTemplate()});
    agents_->addHost("node1", 16, 64 * kGiB, {FakeAgents::vm("a1", 8 * kGiB)});
    agents_->addHost("node2", 16, 64 * kGiB, {});

    auto serverKeys = protocol::generateCurveKeyPair();
    ASSERT_TRUE(serverKeys.isOk());
    // Alice's token as vrmd stores it (its hash); bob's and the admin's in clear, still valid.
    auto keys = AuthorizedKeys::parse("web alice user " + protocol::hashBearerToken(kAliceToken) +
                                          "\nweb bob user " + kBobToken + "\nweb ops admin " +
                                          kAdminToken + "\n",
                                      "authorized");
    ASSERT_TRUE(keys.isOk()) << keys.status().toString();
    ServerOptions o;
    o.clientEndpoint = "tcp://127.0.0.1:*";
    o.agentEndpoint = "tcp://127.0.0.1:*";
    o.extraClientEndpoints = {kInproc};
    o.maxPollWait = std::chrono::milliseconds(10);
    o.curve = *serverKeys;
    o.authorized = std::make_shared<AuthorizedKeys>(std::move(*keys));
    server_ = std::make_unique<Server>(ctx_, *manager_, clock_, o);
    ASSERT_TRUE(server_->bind().isOk());

    WebServerOptions w;
    w.port = 0;
    w.webRoot = VRM_SOURCE_WEB_ROOT;
    w.vrmdEndpoint = kInproc;
    w.templates = templates_;
    w.authenticate = true;
    for (const auto& entry : o.authorized->webs()) w.tokenHashes[entry.tokenHash] = entry.name;
    w.calendarSecret = serverKeys->secretKey;  // as vrmd's main() wires it
    w.calendarUidDomain = "vrm.test";
    web_ = std::make_unique<WebServer>(ctx_, w);
    ASSERT_TRUE(web_->start().isOk());
    startLoop();
  }
  void TearDown() override {
    web_->stop();
    if (loop_.joinable()) stopLoop();
  }
  void startLoop() {
    stop_ = false;
    loop_ = std::thread([this] { server_->run(stop_); });
  }
  void stopLoop() {
    stop_ = true;
    loop_.join();
  }

  HttpReply call(const std::string& method, const std::string& path, const std::string& token,
                 const std::string& body = "") {
    std::string auth = token.empty() ? "" : "Authorization: Bearer " + token + "\r\n";
    return httpRequest(web_->port(), method + " " + path +
                                         " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" +
                                         auth + "Content-Type: application/json\r\n" +
                                         "Content-Length: " + std::to_string(body.size()) +
                                         "\r\n\r\n" + body);
  }
  std::string booking(const std::string& extra = "") {
    return R"({"hosts": 1, "start": "+2h", "duration": "1h", "template": "bmi")" + extra + "}";
  }

  zmq::context_t ctx_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<WebServer> web_;
  std::atomic<bool> stop_{false};
  std::thread loop_;
};

// Ensures changes need a known token, a token books only for its own name, and cancels follow
// the owner and admin rules.
TEST_F(WebAuthTest, ChangesNeedATokenAndFollowTheOwnerRules) {
  auto anonymous = call("POST", "/api/reservations", "", booking());
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;
  EXPECT_NE(anonymous.headers.find("WWW-Authenticate: Bearer"), std::string::npos);
  EXPECT_EQ(call("POST", "/api/reservations", "guessed-token-0123456789", booking()).status, 401);
  EXPECT_EQ(call("POST", "/api/reservations", kAliceToken, booking(R"(, "owner": "bob")")).status,
            403)
      << "a token books for its own name only";

  auto booked = call("POST", "/api/reservations", kAliceToken, booking());
  ASSERT_EQ(booked.status, 201) << booked.body;
  EXPECT_EQ(booked.parsed()["owner"], "alice");
  const std::string id = booked.parsed()["id"];
  const std::string cancel = "/api/reservations/" + id + "/cancel";
  EXPECT_EQ(call("POST", cancel, "", "").status, 401);
  EXPECT_EQ(call("POST", cancel, kBobToken, "").status, 403);
  auto byAdmin = call("POST", cancel, kAdminToken, "");
  ASSERT_EQ(byAdmin.status, 200) << byAdmin.body;
  EXPECT_EQ(byAdmin.parsed()["state"], "cancelled");
}

// Ensures the handles of a ready reservation reach its owner's token only: anonymous readers and
// other users see the reservation with blank addresses, in the API and the VM list.
TEST_F(WebAuthTest, ReadersWithoutTheOwnersTokenSeeNoHandles) {
  auto booked = call("POST", "/api/reservations", kAliceToken, booking());
  ASSERT_EQ(booked.status, 201) << booked.body;
  const std::string id = booked.parsed()["id"];
  stopLoop();
  runUntilReady(id, 3 * 3600 * kNsPerSec);
  ASSERT_EQ(manager_->get(id)->state, ReservationState::kReady);
  startLoop();

  auto addresses = [](const json& r) {
    std::string all;
    for (const auto& h : r["handles"]) all += h["address"].get<std::string>();
    return all;
  };
  auto mine = call("GET", "/api/reservations/" + id, kAliceToken);
  ASSERT_EQ(mine.status, 200);
  ASSERT_FALSE(mine.parsed()["handles"].empty());
  EXPECT_NE(addresses(mine.parsed()), "");
  for (const char* token : {"", kBobToken}) {
    auto theirs = call("GET", "/api/reservations/" + id, token);
    ASSERT_EQ(theirs.status, 200);
    EXPECT_EQ(addresses(theirs.parsed()), "") << "token '" << token << "'";
    auto listed = call("GET", "/api/reservations", token);
    ASSERT_EQ(listed.status, 200);
    EXPECT_EQ(addresses(listed.parsed()[0]), "");
    auto vms = call("GET", "/api/vms", token);
    for (const auto& v : vms.parsed()) {
      if (v["reservation"] == id) {
        EXPECT_EQ(v.value("address", ""), "");
      }
    }
  }
}

// Ensures the owner's SSH key is taken from ssh_public_key and a bad one is a 400 naming the
// field, with the reason (net, issue 13).
TEST_F(WebServerTest, SshPublicKeyIsCheckedAndNamed) {
  auto booked = post("/api/reservations",
                     R"({"hosts": 1, "start": "+2h", "duration": "1h", "template": "bmi",
                         "ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKDLIabwrbChxMufAdl0KXARt4BoFMMlaai4zxaChfqq alice@lab\n"})");
  EXPECT_EQ(booked.status, 201) << booked.body;
  for (const char* bad : {R"("not a key")", R"("-----BEGIN OPENSSH PRIVATE KEY-----")", "42"}) {
    auto reply = post("/api/reservations",
                      std::string(R"({"hosts": 1, "start": "+3h", "duration": "1h", )") +
                          R"("template": "bmi", "ssh_public_key": )" + bad + "}");
    EXPECT_EQ(reply.status, 400) << reply.body;
    EXPECT_NE(reply.parsed().value("message", "").find("ssh_public_key"), std::string::npos)
        << reply.body;
  }
}

// Ensures the API takes what vrmctl submit takes (one parser, request_parser.h): displaced and
// max_vm_time reach vrmd in the request it books, and a mistake in either is a 400 naming it.
TEST_F(WebServerTest, DisplacedAndMaxVmTimeReachVrmd) {
  auto booked = post("/api/reservations",
                     R"({"hosts": 1, "start": "+2h", "duration": "1h", "template": "bmi",
                         "objective": "degradation", "max_vm_time": "10min",
                         "displaced": "return"})");
  ASSERT_EQ(booked.status, 201) << booked.body;
  EXPECT_EQ(booked.parsed()["displaced"], "return");
  client::ClientOptions co;
  co.endpoint = kInproc;
  client::Client vrmctl(co, &ctx_);
  auto stored = vrmctl.get(booked.parsed()["id"].get<std::string>());
  ASSERT_TRUE(stored.isOk()) << stored.status().toString();
  EXPECT_EQ(stored->request.objective, Objective::kDegradation);
  EXPECT_EQ(stored->request.maxVmTimeNs, 10 * 60 * kNsPerSec);
  EXPECT_EQ(stored->request.displaced, Displaced::kReturn);

  for (const auto& [extra, field] :
       {std::pair{R"("displaced": "home")", "displaced"},
        std::pair{R"("max_vm_time": "soon", "objective": "degradation")", "max_vm_time"},
        std::pair{R"("max_vm_time": "30s")", "max_vm_time"},
        std::pair{R"("start": "2001-01-01T00:00:00Z")", "start"}}) {
    std::string body =
        std::string(R"({"hosts": 1, "duration": "1h", "template": "bmi", )") + extra + "}";
    if (body.find("\"start\"") == std::string::npos) body.insert(1, R"("start": "+3h", )");
    auto reply = post("/api/reservations", body);
    EXPECT_EQ(reply.status, 400) << body << " -> " << reply.body;
    EXPECT_EQ(reply.parsed().value("message", "").rfind(std::string(field) + ": ", 0), 0u)
        << reply.body;
  }
}

// What Python's icalendar (check_ics.py) finds in `ics` against `expected` (its format is in the
// script): its exit code and report.
std::pair<int, std::string> checkWithIcalendar(const std::string& ics, const json& expected) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("vrm-ics-" + std::to_string(::getpid()) + "-" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "feed.ics", std::ios::binary) << ics;
  std::ofstream(dir / "expected.json", std::ios::binary) << expected.dump();
  const std::string command = std::string(VRM_DEBIAN_PYTHON3) + " " + VRM_WEB_TEST_SCRIPTS +
                              "/check_ics.py " + (dir / "feed.ics").string() + " " +
                              (dir / "expected.json").string() + " 2>&1";
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return {-1, "cannot run " + command};
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int rc = ::pclose(pipe);
  std::filesystem::remove_all(dir);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

// "/calendar/" + the owner, percent-encoded, + ".ics".
std::string ownerFeedPath(const std::string& owner) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string path = "/calendar/";
  for (unsigned char c : owner) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      path += static_cast<char>(c);
    } else {
      path += '%';
      path += kHex[c >> 4];
      path += kHex[c & 15];
    }
  }
  return path + ".ics";
}

std::string utcIso(TimeNs t) { return formatTime(t / kNsPerSec * kNsPerSec); }

// Ensures an owner's feed is an iCalendar object that a real parser (Python's icalendar) reads
// back exactly: one VEVENT per reservation with its stable UID, UTC window, summary, status from
// its state, description, hosts and page; an owner and a label full of ',', ';', '\', newlines
// and non-ASCII text come back as they were (CR LF read as one newline), long lines folded
// within 75 octets; the same UIDs on the next fetch.
TEST_F(WebServerTest, OwnerFeedIsReadBackByARealParser) {
  const std::string owner = "Zoë, Lab; \\ ops\nsecond 研究";
  const std::string label =
      "BMI; decoder, run \\ 42\r\nnight shift — 長いラベル " + std::string(60, 'x') + " 🧠";
  auto booked = post("/api/reservations", json{{"hosts", 1},
                                               {"start", "+2h"},
                                               {"duration", "90min"},
                                               {"template", "bmi"},
                                               {"owner", owner},
                                               {"label", label}}
                                              .dump());
  ASSERT_EQ(booked.status, 201) << booked.body;
  const json r1 = booked.parsed();
  auto other = post(
      "/api/reservations",
      json{{"vms", 1}, {"start", "+5h"}, {"duration", "1h"}, {"template", "bmi"}, {"owner", owner}}
          .dump());
  ASSERT_EQ(other.status, 201) << other.body;
  auto cancelled =
      post("/api/reservations/" + other.parsed()["id"].get<std::string>() + "/cancel", "");
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  const json r2 = cancelled.parsed();
  ASSERT_EQ(post("/api/reservations", R"({"hosts": 1, "start": "+3h", "duration": "1h",
                                          "template": "bmi", "owner": "someone else"})")
                .status,
            201);

  auto feed = get(ownerFeedPath(owner));
  ASSERT_EQ(feed.status, 200) << feed.body;
  EXPECT_NE(feed.headers.find("Content-Type: text/calendar; charset=utf-8"), std::string::npos)
      << feed.headers;

  std::string labelRead = label;  // CR LF is one newline in TEXT
  labelRead.replace(labelRead.find("\r\n"), 2, "\n");
  const std::string id1 = r1["id"], id2 = r2["id"];
  const json expected = {
      {"calname", "vrm: " + owner},
      {"folded", true},
      {"events",
       {{{"uid", id1 + "@vrm.test"},
         {"summary", labelRead + " (" + owner + ", " + id1 + ")"},
         {"status", "CONFIRMED"},
         {"dtstart", utcIso(r1["start_ns"])},
         {"dtend", utcIso(r1["end_ns"])},
         {"url", "http://localhost/reservations/" + id1},
         {"location", "node3"},
         {"description",
          "State: admitted\nOwner: " + owner +
              "\nKind: dedicated\nHosts: node3\nTemplate: bmi\nLabel: " + labelRead +
              "\nLatest safe start: " + r1["plan"]["latest_safe_start"].get<std::string>() +
              "\nPage: http://localhost/reservations/" + id1}},
        {{"uid", id2 + "@vrm.test"},
         {"summary", "bmi on 1 VM (" + owner + ", " + id2 + ")"},
         {"status", "CANCELLED"},
         {"dtstart", utcIso(r2["start_ns"])},
         {"dtend", utcIso(r2["end_ns"])},
         {"url", "http://localhost/reservations/" + id2},
         {"description_has",
          {"State: cancelled", "Kind: shared, 1 VM",
           "Reason: " + r2["reason"].get<std::string>()}}}}}};
  auto [rc, report] = checkWithIcalendar(feed.body, expected);
  EXPECT_EQ(rc, 0) << report << "\n" << feed.body;
  EXPECT_EQ(get(ownerFeedPath(owner)).body, feed.body) << "a feed is stable between changes";

  auto nobody = get("/calendar/nobody.ics");
  ASSERT_EQ(nobody.status, 200) << "an owner without reservations has an empty calendar";
  auto [emptyRc, emptyReport] =
      checkWithIcalendar(nobody.body, {{"calname", "vrm: nobody"}, {"events", json::array()}});
  EXPECT_EQ(emptyRc, 0) << emptyReport;
  EXPECT_EQ(get("/calendar/nobody.txt").status, 404);
  EXPECT_EQ(get("/calendar/a/b/c.ics").status, 404);
  EXPECT_EQ(post("/calendar/nobody.ics", "").status, 405);
}

// Ensures a host's feed lists exactly the reservations holding that host, whoever owns them.
TEST_F(WebServerTest, HostFeedListsTheReservationsOnTheHost) {
  std::map<std::string, std::string> hostOf;  // id -> host
  // Two dedicated reservations of node1 and a shared one wherever it fits.
  for (const auto& [owner, which, start] :
       {std::tuple{"a", json{{"host_names", {"node1"}}}, "+2h"},
        std::tuple{"b", json{{"vms", 1}}, "+5h"},
        std::tuple{"c", json{{"host_names", {"node1"}}}, "+8h"}}) {
    json request = which;
    request.update({{"start", start}, {"duration", "1h"}, {"template", "bmi"}, {"owner", owner}});
    auto booked = post("/api/reservations", request.dump());
    ASSERT_EQ(booked.status, 201) << booked.body;
    hostOf[booked.parsed()["id"]] = booked.parsed()["hosts"][0];
  }
  for (const char* host : {"node1", "node2", "node3"}) {
    json events = json::array();
    for (const auto& [id, on] : hostOf) {
      if (on == host) events.push_back({{"uid", id + "@vrm.test"}, {"location", host}});
    }
    for (auto& e : events) {  // the window and status of each, from the API
      auto r = get("/api/reservations/" +
                   e["uid"].get<std::string>().substr(0, e["uid"].get<std::string>().find('@')))
                   .parsed();
      e["dtstart"] = utcIso(r["start_ns"]);
      e["dtend"] = utcIso(r["end_ns"]);
      e["status"] = "CONFIRMED";
    }
    auto feed = get(std::string("/calendar/host/") + host + ".ics");
    ASSERT_EQ(feed.status, 200) << feed.body;
    auto [rc, report] = checkWithIcalendar(
        feed.body, {{"calname", std::string("vrm: host ") + host}, {"events", events}});
    EXPECT_EQ(rc, 0) << host << ": " << report << "\n" << feed.body;
  }
}

// Ensures a feed opens only with its own link's token: the link is given to a token of its owner
// (any user's for a host); no token is 401, a wrong one, another owner's, or one for an owner
// that does not exist 403 with the same answer; the feed token writes nothing (it is no bearer
// token); revoking the bearer token it was given for revokes the feed.
TEST_F(WebAuthTest, FeedsOpenOnlyWithTheirLinksReadOnlyToken) {
  auto booked = call("POST", "/api/reservations", kAliceToken, booking(R"(, "label": "alice's")"));
  ASSERT_EQ(booked.status, 201) << booked.body;
  const std::string id = booked.parsed()["id"];
  const std::string host = booked.parsed()["hosts"][0];

  EXPECT_EQ(call("GET", "/api/calendar-link", "").status, 401) << "anonymous gets no link";
  EXPECT_EQ(call("GET", "/api/calendar-link?owner=alice", kBobToken).status, 403);
  EXPECT_EQ(call("GET", "/api/calendar-link?owner=alice", kAdminToken).status, 403)
      << "the web server does not know roles: an owner's link goes to the owner only";
  EXPECT_EQ(call("GET", "/api/calendar-link?host=nowhere", kBobToken).status, 404);
  EXPECT_EQ(call("GET", "/api/calendar-link?colour=red", kAliceToken).status, 400);
  auto link = call("GET", "/api/calendar-link", kAliceToken);
  ASSERT_EQ(link.status, 200) << link.body;
  const std::string path = link.parsed()["path"];
  EXPECT_EQ(link.parsed()["url"], "http://localhost" + path);
  ASSERT_EQ(path.rfind("/calendar/alice.ics?token=", 0), 0u) << path;
  const std::string feedToken = path.substr(path.find('=') + 1);
  EXPECT_EQ(feedToken.size(), 32u);
  EXPECT_EQ(call("GET", "/api/calendar-link?owner=alice", kAliceToken).parsed()["path"], path)
      << "a link is stable";

  auto feed = call("GET", path, "");
  ASSERT_EQ(feed.status, 200) << feed.body;
  auto [rc, report] =
      checkWithIcalendar(feed.body, {{"calname", "vrm: alice"},
                                     {"events",
                                      {{{"uid", id + "@vrm.test"},
                                        {"summary", "alice's (alice, " + id + ")"},
                                        {"status", "CONFIRMED"},
                                        {"location", host},
                                        {"dtstart", utcIso(booked.parsed()["start_ns"])},
                                        {"dtend", utcIso(booked.parsed()["end_ns"])},
                                        {"url", "http://localhost/reservations/" + id}}}}});
  EXPECT_EQ(rc, 0) << report << "\n" << feed.body;

  auto missing = call("GET", "/calendar/alice.ics", "");
  EXPECT_EQ(missing.status, 401) << missing.body;
  EXPECT_EQ(missing.parsed()["error"], "unauthorized");
  EXPECT_EQ(call("GET", "/calendar/alice.ics?token=", "").status, 401);
  const auto wrong = call("GET", "/calendar/alice.ics?token=" + std::string(32, '0'), "");
  EXPECT_EQ(wrong.status, 403) << wrong.body;
  EXPECT_EQ(wrong.parsed()["error"], "unauthorized");
  for (const std::string& other : std::vector<std::string>{
           "/calendar/bob.ics", "/calendar/nobody.ics", "/calendar/host/" + host + ".ics"}) {
    auto theirs = call("GET", other + "?token=" + feedToken, "");
    EXPECT_EQ(theirs.status, 403) << other;
    EXPECT_EQ(theirs.body, wrong.body) << other << ": the same answer whether it exists or not";
  }
  EXPECT_EQ(call("GET", path, kAliceToken).status, 200) << "a bearer header changes nothing";

  // The feed token is read-only: it is no bearer token.
  EXPECT_EQ(call("POST", "/api/reservations/" + id + "/cancel", feedToken).status, 401);
  EXPECT_EQ(call("POST", "/api/reservations", feedToken, booking()).status, 401);
  EXPECT_EQ(call("GET", "/api/reservations", feedToken).status, 401);
  EXPECT_EQ(call("POST", path, "").status, 405);

  // A host's link goes to any user, and opens that host's feed only.
  auto hostLink = call("GET", "/api/calendar-link?host=" + host, kBobToken);
  ASSERT_EQ(hostLink.status, 200) << hostLink.body;
  const std::string hostPath = hostLink.parsed()["path"];
  EXPECT_EQ(hostPath.rfind("/calendar/host/" + host + ".ics?token=", 0), 0u) << hostPath;
  auto hostFeed = call("GET", hostPath, "");
  ASSERT_EQ(hostFeed.status, 200) << hostFeed.body;
  EXPECT_NE(hostFeed.body.find("UID:" + id + "@vrm.test\r\n"), std::string::npos);

  // Alice's bearer token replaced (the authorized file's line changed, SIGHUP): her old feed
  // link stops working, a new one is given to the new token.
  web_->setTokenHashes({{protocol::hashBearerToken("alice-new-token-0123456789"), "alice"},
                        {protocol::hashBearerToken(kBobToken), "bob"}});
  EXPECT_EQ(call("GET", path, "").status, 403) << "revoked with the bearer token";
  EXPECT_EQ(call("GET", hostPath, "").status, 200) << "bob's host link still works";
  auto renewed = call("GET", "/api/calendar-link", "alice-new-token-0123456789");
  ASSERT_EQ(renewed.status, 200) << renewed.body;
  EXPECT_NE(renewed.parsed()["path"], path);
  EXPECT_EQ(call("GET", renewed.parsed()["path"], "").status, 200);
}

// Ensures vrmctl report, run as a program against a real vrmd core over TCP, finds in vrmd's list
// answer what it reports: a dedicated reservation run to its end gives its host-hours clipped to
// the window, its finished vacate with the actual time its moves took and the plan's prediction,
// and its moves' planned bytes; a window after the vacate has the hours and no vacate.
TEST_F(WebServerTest, VrmctlReportReadsWhatVrmdLists) {
  auto booked = post("/api/reservations", R"({"hosts": 1, "start": "+2h", "duration": "1h",
                                              "template": "bmi", "owner": "lab"})");
  ASSERT_EQ(booked.status, 201) << booked.body;
  const std::string id = booked.parsed()["id"];
  const TimeNs start = booked.parsed()["start_ns"];
  stopLoop();
  runUntil(start + 2 * kHour);
  const Reservation done = *manager_->get(id);
  startLoop();
  ASSERT_EQ(done.state, ReservationState::kDone) << stateName(done.state);
  TimeNs first = kTimeInfinity, last = 0;
  std::uint64_t bytes = 0;
  for (const auto& m : done.moves) {
    if (!m.isVacate()) continue;
    ASSERT_EQ(m.progress.state, MoveState::kDone);
    first = std::min(first, m.progress.actualStartNs);
    last = std::max(last, m.progress.actualEndNs);
    bytes += m.planned.transferredBytes;
  }
  ASSERT_LT(last, start) << "the vacate finished before the window";

  auto report = [&](TimeNs from, TimeNs to) {
    const auto run =
        cli_test::runCommand(std::string(VRMCTL_PATH) + " --vrmd " + server_->clientEndpoint() +
                             " --json report --from " + formatTime(from) + " --to " +
                             formatTime(to) + " --by owner 2>&1");
    EXPECT_EQ(run.exitCode, 0) << run.out;
    return json::parse(run.out, nullptr, false);
  };
  // From before the vacate to half an hour into the window.
  const json rows = report(kStartOfTime, start + kHour / 2);
  ASSERT_EQ(rows.size(), 2u) << rows.dump(2);
  const json& lab = rows[0];
  EXPECT_EQ(lab["group"], "lab");
  EXPECT_EQ(lab["reservations"], 1);
  EXPECT_EQ(lab["state_done"], 1);
  EXPECT_DOUBLE_EQ(lab["host_hours"].get<double>(), 0.5) << "clipped at the window's end";
  EXPECT_EQ(lab["vacates"], 1);
  EXPECT_NEAR(lab["vacate_s"].get<double>(), nsToSeconds(last - first), 1e-3);
  EXPECT_NEAR(lab["vacate_predicted_s"].get<double>(), nsToSeconds(done.plan.makespanNs), 1e-3);
  const double error = (nsToSeconds(last - first) - nsToSeconds(done.plan.makespanNs)) /
                       nsToSeconds(done.plan.makespanNs);
  EXPECT_NEAR(lab["vacate_error_mean"].get<double>(), error, 1e-5);
  EXPECT_EQ(lab["vacate_moves"], done.vacateMoveCount());
  EXPECT_EQ(lab["vacate_planned_bytes"], bytes);
  EXPECT_GT(bytes, 0u);
  EXPECT_EQ(rows[1]["total"], true);

  // From the start (after the vacate) past the end: the whole hour, no vacate.
  const json later = report(start, start + 3 * kHour);
  ASSERT_EQ(later.size(), 2u) << later.dump(2);
  EXPECT_DOUBLE_EQ(later[0]["host_hours"].get<double>(), 1.0);
  EXPECT_EQ(later[0]["vacates"], 0);
  EXPECT_TRUE(later[0]["vacate_error_mean"].is_null());
}

// Whether `value` has the shape `schema` (of the OpenAPI document `doc`) says: its type, the
// required members of an object (of each item of an array), the type and enum of each
// documented member it has, and no undocumented member where the schema allows none
// (additionalProperties: false). `seen` collects the schemas ($ref names) a value was checked
// against.
void expectShape(const json& doc, json schema, const json& value, const std::string& where,
                 std::set<std::string>& seen) {
  while (schema.contains("$ref")) {
    const std::string ref = schema["$ref"];
    seen.insert(ref.substr(ref.rfind('/') + 1));
    schema = doc.at(json::json_pointer(ref.substr(1)));
  }
  const std::string type = schema.value("type", "");
  if (schema.contains("enum")) {
    EXPECT_NE(std::find(schema["enum"].begin(), schema["enum"].end(), value), schema["enum"].end())
        << where << ": " << value << " is not one of " << schema["enum"];
  }
  if (type == "array") {
    ASSERT_TRUE(value.is_array()) << where;
    for (const auto& item : value) expectShape(doc, schema["items"], item, where + "[]", seen);
  } else if (type == "object") {
    ASSERT_TRUE(value.is_object()) << where << ": " << value;
    for (const auto& name : schema.value("required", json::array())) {
      EXPECT_TRUE(value.contains(name.get<std::string>())) << where << " lacks " << name;
    }
    const json properties = schema.value("properties", json::object());
    const bool closed = schema.value("additionalProperties", true) == false;
    for (const auto& [name, member] : value.items()) {
      if (properties.contains(name)) {
        expectShape(doc, properties[name], member, where + "." + name, seen);
      } else {
        EXPECT_FALSE(closed) << where << " has the undocumented member " << name;
      }
    }
  } else if (type == "string") {
    EXPECT_TRUE(value.is_string()) << where << ": " << value;
  } else if (type == "integer") {
    EXPECT_TRUE(value.is_number_integer()) << where << ": " << value;
  } else if (type == "number") {
    EXPECT_TRUE(value.is_number()) << where << ": " << value;
  } else if (type == "boolean") {
    EXPECT_TRUE(value.is_boolean()) << where << ": " << value;
  }
}

// Ensures the OpenAPI document served at /api/openapi.json lists exactly the routes the router
// has (its API table and /metrics), and that the server answers each documented operation as
// documented: a documented status, and JSON of the documented schema, nested objects included
// (the plan and its moves, clones, handles, events: the reservation is driven to ready first, so
// each is there to check). The booking is the document's own example request.
TEST_F(WebServerTest, OpenApiDocumentIsTheServersContract) {
  auto served = get("/api/openapi.json");
  ASSERT_EQ(served.status, 200) << served.body;
  const json doc = served.parsed();
  ASSERT_TRUE(doc.is_object()) << "the document is JSON";
  EXPECT_EQ(doc.value("openapi", "").rfind("3.", 0), 0u);

  std::set<std::string> documented, routed = {"GET /metrics"};
  for (const char* feed : calendarFeedPatterns()) routed.insert(std::string("GET ") + feed);
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, op] : item.items()) {
      if (method == "parameters") continue;
      std::string upper = method;
      for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert(upper + " " + path);
    }
  }
  for (const auto& route : apiRoutes()) {
    routed.insert(std::string(route.method) + " " + route.pattern);
  }
  EXPECT_EQ(documented, routed) << "every route documented, every documented route served";

  // Each documented operation, called as a client would, answers as documented.
  const json submitOp = doc["paths"]["/api/reservations"]["post"];
  const json example = submitOp["requestBody"]["content"]["application/json"]["example"];
  auto booked = post("/api/reservations", example.dump());
  ASSERT_EQ(booked.status, 201) << "the document's example books: " << booked.body;
  const std::string id = booked.parsed()["id"];
  stopLoop();
  runUntilReady(id, 3 * 3600 * kNsPerSec);
  ASSERT_EQ(manager_->get(id)->state, ReservationState::kReady);
  startLoop();
  std::set<std::string> seen;
  auto check = [&](const std::string& path, const std::string& method, const HttpReply& reply) {
    const json op = doc["paths"][path][method];
    const std::string status = std::to_string(reply.status);
    ASSERT_TRUE(op["responses"].contains(status)) << method << " " << path << " -> " << status;
    json response = op["responses"][status];
    if (response.contains("$ref")) {  // a shared response (components/responses)
      response = doc.at(json::json_pointer(response["$ref"].get<std::string>().substr(1)));
    }
    if (!response.contains("content")) return;
    const auto& [type, media] = *response["content"].items().begin();
    if (type == "application/json") {
      expectShape(doc, media["schema"], reply.parsed(), method + " " + path, seen);
    }
  };
  check("/api/reservations", "post", booked);
  for (const auto& [path, item] : doc["paths"].items()) {
    if (!item.contains("get")) continue;
    std::string target = path;
    if (auto at = target.find("{id}"); at != std::string::npos) target.replace(at, 4, id);
    if (auto at = target.find("{owner}"); at != std::string::npos) target.replace(at, 7, "web");
    if (auto at = target.find("{host}"); at != std::string::npos) target.replace(at, 6, "node3");
    if (path == "/api/calendar-link") target += "?owner=web";
    check(path, "get", get(target));
  }
  check("/api/reservations/{id}/cancel", "post", post("/api/reservations/" + id + "/cancel", ""));
  // And the documented errors: a second cancel is 409, an unknown id 404, a bad booking 400.
  check("/api/reservations/{id}/cancel", "post", post("/api/reservations/" + id + "/cancel", ""));
  check("/api/reservations/{id}", "get", get("/api/reservations/r999"));
  check("/api/reservations", "post", post("/api/reservations", R"({"displaced": "home"})"));
  EXPECT_EQ(get("/api/reservations/" + id + "/plan").status, 404) << "undocumented: no route";
  // Every schema of the document was checked against a real answer (ReservationRequest is the
  // request, checked by the booking above).
  for (const auto& [name, schema] : doc["components"]["schemas"].items()) {
    if (name == "ReservationRequest") continue;
    EXPECT_TRUE(seen.count(name)) << name << " never checked";
  }
}

}  // namespace
}  // namespace vrm::web
