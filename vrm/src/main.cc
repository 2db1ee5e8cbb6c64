// vrmd: the Virtual Resource Manager daemon. Parses options and wires clock, store, planner,
// manager and server together; everything else lives in the library.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "vrm/daemon/command_line.h"
#include "vrm/daemon/service_notifier.h"
#include "vrm/etcd/election.h"
#include "vrm/manager/calibrating_planner.h"
#include "vrm/manager/etcd_store.h"
#include "vrm/manager/notifier.h"
#include "vrm/manager/replica_options.h"
#include "vrm/manager/server.h"
#include "vrm/manager/standby_server.h"
#include "vrm/manager/webhook_sender.h"
#include "vrm/planner/cost_aware_vacate_planner.h"
#include "vrm/protocol/units.h"
#include "vrm/web/web_server.h"

namespace {

// vrmd's exit statuses (vrmd.8, EXIT STATUS). The systemd unit restarts on every one but
// kBadConfiguration (RestartPreventExitStatus=2): a restart cannot mend a configuration, and it
// is how a could-not-start-now failure and a deposed leader get their next try.
enum ExitStatus : int {
  kStopped = 0,           // SIGTERM or SIGINT
  kBadConfiguration = 2,  // a flag, the config file, a key, the cluster file; a corrupt store
  kDeposed = 3,           // stopped leading its etcd store: a restart campaigns again
  kCannotStartNow = 75,   // EX_TEMPFAIL: store, etcd or a port not available now
};

std::atomic<bool> gStop{false};
std::atomic<bool> gReload{false};
// Set by the election's thread when this replica stops leading its etcd store.
std::atomic<bool> gDeposed{false};
void onSignal(int) { gStop = true; }
void onHangup(int) { gReload = true; }

// The web server's view of the authorized file: token hash -> web user.
std::map<std::string, std::string> tokenHashesOf(const vrm::manager::AuthorizedKeys& keys) {
  std::map<std::string, std::string> out;
  for (const auto& w : keys.webs()) out[w.tokenHash] = w.name;
  return out;
}

// The web calendar's static files: web/ next to the binary, ../share/vrm/web (the packages'
// /usr/bin/vrmd and /usr/share/vrm/web), the source tree's web/static/ seen from a build
// directory (build/vrm/vrmd), or the source path compiled in.
std::string defaultWebRoot(const char* argv0) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (ec) exe = fs::absolute(argv0, ec);
  const fs::path dir = exe.parent_path();
  for (const fs::path& candidate :
       {dir / "web", dir / ".." / "share" / "vrm" / "web", dir / ".." / ".." / "web" / "static"}) {
    if (fs::is_regular_file(candidate / "index.html", ec)) return candidate.lexically_normal();
  }
#ifdef VRM_SOURCE_WEB_ROOT
  return VRM_SOURCE_WEB_ROOT;
#else
  return "web";
#endif
}

// The web port of a replica that does not lead (web_server.h: Standby): every request is sent
// to the leader's URL, which the standby loop updates from the election.
class StandbyWeb {
 public:
  ~StandbyWeb() { stop(); }
  vrm::Status start(vrm::web::WebServerOptions options) {
    options.standbyLeaderUrl = [this] {
      std::lock_guard<std::mutex> lock(mutex_);
      return leaderUrl_;
    };
    server_ = std::make_unique<vrm::web::WebServer>(context_, std::move(options));
    return server_->start();
  }
  void setLeaderUrl(const std::string& url) {
    std::lock_guard<std::mutex> lock(mutex_);
    leaderUrl_ = url;
  }
  std::string url() const { return server_ ? server_->url() : std::string(); }
  void stop() { server_.reset(); }

 private:
  zmq::context_t context_{1};  // its client is never used: a standby asks no core
  std::mutex mutex_;
  std::string leaderUrl_;
  std::unique_ptr<vrm::web::WebServer> server_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vrmd - reservation-aware Virtual Resource Manager"};
  std::string clientEndpoint = "tcp://127.0.0.1:5555";
  std::string agentEndpoint = "tcp://127.0.0.1:5556";
  std::string eventsEndpoint = "tcp://127.0.0.1:5557";
  std::string storePath = "vrm.db";
  std::string clusterPath;
  std::string margin = "60s", planningLatency = "1s", heartbeatTimeout = "30s";
  std::string model = "simple";
  std::string plannerName = "cost-aware", liveModel = "qemu-precopy", scrModel = "qemu-scr";
  double dirtyRateQuantile = 0.9;
  double timeScale = 0;
  std::int64_t clockOrigin = 0;
  std::string logLevel = "info";
  std::string httpListen = "127.0.0.1:8080";
  std::string webRoot;
  std::string curveSecret, authorizedPath;
  bool insecure = false;
  app.add_option("--curve-secret", curveSecret,
                 "vrmd's CURVE key pair file (vrmctl keygen vrmd: vrmd.key); with --authorized, "
                 "every endpoint requires a known key");
  app.add_option("--authorized", authorizedPath,
                 "who may connect: lines 'client NAME user|admin KEY', 'agent HOST KEY', "
                 "'web NAME user|admin sha256:HASH' (README: Security); read again on SIGHUP");
  app.add_flag("--insecure", insecure,
               "no authentication at all: anyone reaching the endpoints may act as anyone "
               "(needed when no keys are given)");
  app.add_option("--clients", clientEndpoint, "ZeroMQ endpoint for clients")->capture_default_str();
  app.add_option("--events", eventsEndpoint,
                 "ZeroMQ PUB endpoint streaming reservation events ('off' disables it)")
      ->capture_default_str();
  app.add_option("--agents", agentEndpoint, "ZeroMQ endpoint for vmschedd agents")
      ->capture_default_str();
  app.add_option("--store", storePath,
                 "where the state lives: sqlite:PATH (or PATH), an SQLite file; or "
                 "etcd://H1:2379,H2:2379[/prefix], an etcd cluster (README: High availability)")
      ->capture_default_str();
  std::string advertise, advertiseHttp, leaseTtl = "3s";
  app.add_option("--advertise", advertise,
                 "on etcd: the client endpoint others reach this vrmd at (tcp://HOST:PORT); "
                 "standbys send clients to the leader's (default: --clients, if such an address)");
  app.add_option("--advertise-http", advertiseHttp,
                 "on etcd with --http: the web URL others reach this vrmd at "
                 "(http(s)://HOST:PORT); standbys answer 307 to the leader's (default: the "
                 "--http address, or --advertise's host when --http listens on a wildcard)");
  app.add_option("--lease-ttl", leaseTtl,
                 "on etcd: how long a leader that stops renewing its lease still leads (whole "
                 "seconds); a failover takes about this long")
      ->capture_default_str();
  app.add_option("--cluster", clusterPath, "cluster description (YAML) with the VM templates")
      ->required();
  app.add_option("--margin", margin, "slack between vacate end and cloning")->capture_default_str();
  app.add_option("--planning-latency", planningLatency,
                 "admission needs the latest safe start at least this far ahead")
      ->capture_default_str();
  app.add_option("--heartbeat-timeout", heartbeatTimeout,
                 "an agent silent this long is unreachable")
      ->capture_default_str();
  double warningRatio = 1.1, dangerRatio = 1.0;
  bool calibrate = true;
  app.add_option("--calibrate", calibrate,
                 "cost-aware: refit the live and suspend-copy-resume models from the migrations "
                 "vrmd watches (stored ones at start, then every 10 new ones of a mode)")
      ->capture_default_str();
  std::string assessPeriod = "5s";
  app.add_option("--warning-ratio", warningRatio,
                 "while vacating, re-plan the moves not started when time to deadline / time "
                 "left falls to this (seed 004's warning)")
      ->capture_default_str();
  double quantile = 0.95;
  app.add_option("--quantile", quantile,
                 "dedicated admission: plan with the vacate's makespan at this quantile of the "
                 "observed prediction errors (the latest safe start's headroom)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 0.999));
  app.add_option("--danger-ratio", dangerRatio,
                 "mark the reservation at risk and tell its owner below this ratio (danger)")
      ->capture_default_str();
  app.add_option("--assess-period", assessPeriod, "how often a running vacate is assessed")
      ->capture_default_str();
  double commandTimeoutFactor = 3.0;
  std::string commandTimeoutFloor = "60s", slowCommandTimeout = "10m";
  app.add_option("--command-timeout-factor", commandTimeoutFactor,
                 "an agent must answer a migrate command within its predicted duration x this "
                 "+ --command-timeout-floor, or the move counts as failed")
      ->capture_default_str();
  app.add_option("--command-timeout-floor", commandTimeoutFloor,
                 "added to every migration's deadline; the whole deadline of quick commands "
                 "(prepare/finish incoming, set bandwidth)")
      ->capture_default_str();
  app.add_option("--slow-command-timeout", slowCommandTimeout,
                 "deadline of clone and destroy commands")
      ->capture_default_str();
  app.add_option("--planner", plannerName,
                 "cost-aware (strategy per objective, contention modelled) or sequential")
      ->check(CLI::IsMember({"cost-aware", "sequential"}))
      ->capture_default_str();
  app.add_option("--live-model", liveModel, "cost-aware: model of live migrations")
      ->capture_default_str();
  app.add_option("--scr-model", scrModel, "cost-aware: model of suspend-copy-resume")
      ->capture_default_str();
  app.add_option("--model", model, "sequential: migration cost model")->capture_default_str();
  app.add_option("--dirty-rate-quantile", dirtyRateQuantile,
                 "cost-aware with --calibrate: plan each VM at this quantile of its recent "
                 "dirty-rate samples (0 = its current sample)")
      ->check(CLI::Range(0.0, 0.999))
      ->capture_default_str();
  app.add_option("--time-scale", timeScale,
                 "run the clock this many times faster than real time (simulation, demos)");
  app.add_option("--clock-origin", clockOrigin,
                 "ns since the epoch where the scaled clock starts (share it with the agents)");
  app.add_option("--http", httpListen,
                 "web calendar and /api/ on ADDR:PORT (loopback by default), or off")
      ->capture_default_str();
  std::string httpTlsCert, httpTlsKey;
  app.add_option("--http-tls-cert", httpTlsCert,
                 "serve --http over HTTPS with this certificate chain (PEM, leaf first; read "
                 "again on SIGHUP); plain HTTP there is redirected to https://");
  app.add_option("--http-tls-key", httpTlsKey,
                 "the private key (PEM, unencrypted) of --http-tls-cert");
  app.add_option("--web-root", webRoot,
                 "directory of the web calendar's files (default: web/static of the project)");
  app.add_option("--log-level", logLevel, "trace, debug, info, warn, error")->capture_default_str();
  // --- webhook notifications (README: Notifications) ---
  std::string webhooksPath, webhookCaFile;
  app.add_option("--webhooks", webhooksPath,
                 "webhooks of reservation events, one a line: 'owner NAME URL SECRET EVENTS' "
                 "(README: Notifications); keep it readable by vrm only (it holds the secrets)");
  app.add_option("--webhook-ca-file", webhookCaFile,
                 "https webhooks: CA certificates (PEM) their certificates are checked against "
                 "(default: the system's)");
  // --- end webhook notifications ---
  vrm::daemon::addConfigOption(app, "/etc/vrm/vrmd.conf");
  const vrm::daemon::CommandLine commandLine = vrm::daemon::parseCommandLine(app, argc, argv);
  if (commandLine.outcome == vrm::daemon::CommandLine::Outcome::kHelp) {
    std::cout << commandLine.text;
    return 0;
  }
  if (commandLine.outcome == vrm::daemon::CommandLine::Outcome::kError) {
    std::fprintf(stderr, "vrmd: %s\n", commandLine.text.c_str());
    return kBadConfiguration;
  }
  spdlog::set_level(spdlog::level::from_str(logLevel));
  // The journal stamps each line with time and unit itself.
  spdlog::set_pattern(vrm::daemon::stderrIsJournal() ? "%l %v" : "%H:%M:%S.%e vrmd %^%l%$ %v");
  // systemd (Type=notify) learns when vrmd serves and what it bound; nothing without systemd.
  vrm::daemon::ServiceNotifier notifier = vrm::daemon::ServiceNotifier::fromEnvironment();
  auto notified = [](const vrm::Status& s) {
    if (!s) spdlog::warn("telling systemd: {}", s.message());
  };
  // From here SIGTERM (systemctl stop) and SIGINT end the loop below cleanly; one that comes
  // while vrmd starts takes effect before the first request is served.
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  std::signal(SIGHUP, onHangup);

  // A configuration that cannot work: restarting will not help.
  auto fail = [](const std::string& what) {
    std::fprintf(stderr, "vrmd: %s\n", what.c_str());
    return kBadConfiguration;
  };
  // Something vrmd needs is not there now (a store, etcd, a port): a later start may work.
  auto failNow = [](const std::string& what) {
    std::fprintf(stderr, "vrmd: %s (exit %d: try again later)\n", what.c_str(), kCannotStartNow);
    return kCannotStartNow;
  };
  // Failures whose Status says which: unavailable (address in use, store or etcd unreachable) is
  // for now, anything else (malformed, corrupt, contradictory) is the configuration's.
  auto failOn = [&](const vrm::Status& s, const std::string& what) {
    return s.code() == vrm::StatusCode::kUnavailable ? failNow(what) : fail(what);
  };
  // Security first: a daemon that would run open by mistake must not start at all.
  std::optional<vrm::protocol::CurveKeyPair> serverKeys;
  std::shared_ptr<const vrm::manager::AuthorizedKeys> authorized;
  if (!curveSecret.empty() || !authorizedPath.empty()) {
    if (insecure) return fail("--insecure contradicts --curve-secret/--authorized: choose one");
    if (curveSecret.empty() || authorizedPath.empty()) {
      return fail("CURVE needs both --curve-secret and --authorized");
    }
    if (vrm::Status s = vrm::protocol::requireCurve(); !s) return fail(s.message());
    auto keys = vrm::protocol::loadCurveKeyPair(curveSecret);
    if (!keys) {
      return fail("--curve-secret: " + keys.status().message() +
                  " ('vrmctl keygen --dir DIR vrmd' makes DIR/vrmd.key; README: Security)");
    }
    serverKeys = *keys;
    auto list = vrm::manager::AuthorizedKeys::load(authorizedPath);
    if (!list) {
      return fail("--authorized: " + list.status().message() +
                  " (it lists who may connect; README: Security)");
    }
    for (const auto& w : list->warnings()) spdlog::warn("--authorized: {}", w);
    authorized = std::make_shared<vrm::manager::AuthorizedKeys>(std::move(*list));
  } else if (!insecure) {
    return fail(
        "no keys: give --curve-secret FILE and --authorized FILE (README: Security; "
        "'vrmctl keygen vrmd' makes a key pair), or --insecure to run without authentication");
  }
  auto marginNs = vrm::parseDurationNs(margin);
  if (!marginNs) return fail("--margin: " + marginNs.status().message());
  auto latencyNs = vrm::parseDurationNs(planningLatency);
  if (!latencyNs) return fail("--planning-latency: " + latencyNs.status().message());
  auto timeoutNs = vrm::parseDurationNs(heartbeatTimeout);
  if (!timeoutNs) return fail("--heartbeat-timeout: " + timeoutNs.status().message());
  auto assessNs = vrm::parseDurationNs(assessPeriod);
  if (!assessNs || *assessNs <= 0) {
    return fail("--assess-period: " +
                (assessNs ? std::string("must be positive") : assessNs.status().message()));
  }
  auto floorNs = vrm::parseDurationNs(commandTimeoutFloor);
  if (!floorNs || *floorNs <= 0) {
    return fail("--command-timeout-floor: " +
                (floorNs ? std::string("must be positive") : floorNs.status().message()));
  }
  auto slowNs = vrm::parseDurationNs(slowCommandTimeout);
  if (!slowNs || *slowNs <= 0) {
    return fail("--slow-command-timeout: " +
                (slowNs ? std::string("must be positive") : slowNs.status().message()));
  }
  if (!(commandTimeoutFactor >= 1) || !std::isfinite(commandTimeoutFactor)) {
    return fail("--command-timeout-factor must be a number >= 1");
  }
  if (!(dangerRatio > 0) || !(warningRatio >= dangerRatio)) {
    return fail("--danger-ratio must be positive and at most --warning-ratio");
  }
  if (timeScale < 0) return fail("--time-scale must be positive");
  auto storeLocation = vrm::manager::parseStoreLocation(storePath);
  if (!storeLocation) return fail(storeLocation.status().message());
  const bool onEtcd = storeLocation->kind == vrm::manager::StoreLocation::Kind::kEtcd;
  if (!onEtcd && (app.count("--advertise") > 0 || app.count("--lease-ttl") > 0 ||
                  app.count("--advertise-http") > 0)) {
    return fail(
        "--advertise, --advertise-http and --lease-ttl are for replicas on etcd (--store "
        "etcd://...)");
  }
  auto leaseSeconds = vrm::manager::parseLeaseTtl(leaseTtl);
  if (!leaseSeconds) return fail(leaseSeconds.status().message());
  auto advertised = !onEtcd             ? vrm::Result<std::string>(clientEndpoint)
                    : advertise.empty() ? vrm::manager::defaultAdvertisedEndpoint(clientEndpoint)
                                        : vrm::manager::parseAdvertisedEndpoint(advertise);
  if (!advertised) return fail(advertised.status().message());
  auto cluster = vrm::loadClusterSpec(clusterPath);
  if (!cluster) return fail(cluster.status().message());
  auto migrationModel = vrm::planner::createMigrationModel(model);
  if (!migrationModel) return fail("--model: " + migrationModel.status().message());
  const bool web = httpListen != "off";
  if (!web && !(httpTlsCert.empty() && httpTlsKey.empty())) {
    return fail("--http-tls-cert/--http-tls-key need the web calendar on (--http ADDR:PORT)");
  }
  vrm::web::WebServerOptions webOptions;
  std::string advertisedHttp;  // on etcd with --http: the leader key names it
  if (!web && app.count("--advertise-http") > 0) return fail("--advertise-http needs --http");
  if (web) {
    if (vrm::Status s = vrm::web::parseHttpListen(httpListen, webOptions); !s) {
      return fail("--http: " + s.message());
    }
    webOptions.webRoot = webRoot.empty() ? defaultWebRoot(argv[0]) : webRoot;
    if (httpTlsCert.empty() != httpTlsKey.empty()) {
      return fail("--http-tls-cert and --http-tls-key go together: give both or neither");
    }
    webOptions.tlsCertFile = httpTlsCert;
    webOptions.tlsKeyFile = httpTlsKey;
    webOptions.templates = cluster->templates;
    webOptions.vrmdEndpoint = "inproc://vrm-web";
    if (onEtcd) {
      auto url = advertiseHttp.empty()
                     ? vrm::manager::defaultAdvertisedHttpUrl(webOptions.address, webOptions.port,
                                                              !httpTlsCert.empty(), *advertised)
                     : vrm::manager::parseAdvertisedHttpUrl(advertiseHttp);
      if (!url) return fail(url.status().message());
      advertisedHttp = *url;
    }
    if (authorized) {
      webOptions.authenticate = true;
      webOptions.tokenHashes = tokenHashesOf(*authorized);
      // The calendar feeds' read-only tokens are derived from it (web/src/calendar_feeds.h).
      webOptions.calendarSecret = serverKeys->secretKey;
    }
  }

  // --- webhook notifications: a bad file stops vrmd before it serves ---
  std::vector<vrm::manager::Webhook> webhooks;
  std::unique_ptr<vrm::manager::HttpWebhookSender> webhookSender;
  if (!webhooksPath.empty()) {
    auto loaded = vrm::manager::loadWebhooks(webhooksPath);
    if (!loaded) return fail("--webhooks: " + loaded.status().message());
    webhooks = std::move(*loaded);
    vrm::manager::HttpWebhookSenderOptions senderOptions;
    senderOptions.caFile = webhookCaFile;
    auto sender = vrm::manager::HttpWebhookSender::create(senderOptions);
    if (!sender) return fail("--webhook-ca-file: " + sender.status().message());
    webhookSender = std::move(*sender);
  } else if (!webhookCaFile.empty()) {
    return fail("--webhook-ca-file needs --webhooks");
  }
  // --- end webhook notifications ---

  std::unique_ptr<vrm::Clock> clock;
  if (timeScale > 0) {
    vrm::SystemClock real;
    clock = std::make_unique<vrm::ScaledClock>(clockOrigin ? clockOrigin : real.now(), timeScale);
    spdlog::info("clock runs {}x faster than real time", timeScale);
  } else {
    clock = std::make_unique<vrm::SystemClock>();
  }

  // The store. On etcd this replica first waits to be elected: a standby, it answers clients on
  // its client endpoint with "not the leader" naming the leader's advertised endpoint until the
  // leader is gone. Elected, it commits fenced by its term; it exits (3) if it stops leading, so
  // that its restart campaigns again (README: High availability).
  std::unique_ptr<vrm::etcd::Election> election;
  std::unique_ptr<vrm::manager::StandbyServer> standby;
  StandbyWeb standbyWeb;  // on etcd with --http: until this replica's web server starts
  std::unique_ptr<vrm::manager::Store> store;
  if (storeLocation->kind == vrm::manager::StoreLocation::Kind::kSqlite) {
    notified(notifier.status("recovering the store " + storeLocation->path));
    auto opened = vrm::manager::Store::open(storeLocation->path);
    if (!opened) return failNow(opened.status().message());
    store = std::move(*opened);
  } else {
    vrm::etcd::ClientOptions etcdClient;
    etcdClient.endpoints = storeLocation->endpoints;
    vrm::etcd::ElectionOptions electionOptions;
    electionOptions.name = vrm::manager::EtcdStore::electionName(storeLocation->prefix);
    electionOptions.value = vrm::manager::formatLeaderValue({*advertised, advertisedHttp});
    electionOptions.leaseTtl = *leaseSeconds;
    // etcd out of reach at start is for later (exit 75, the unit restarts vrmd); once running,
    // a replica that loses etcd waits and says so.
    {
      auto probe = vrm::etcd::Client::create(etcdClient);
      if (!probe) return fail("--store: " + probe.error().toString());
      auto leader = (*probe)->leader(electionOptions.name);
      if (!leader && leader.error().code() != vrm::etcd::ErrorCode::kNotFound) {
        return failOn(leader.error().toStatus(),
                      "--store: etcd at " + storeLocation->toString() +
                          " does not answer: " + leader.error().toString());
      }
    }
    auto started = vrm::etcd::Election::start(
        etcdClient, electionOptions, [](const vrm::etcd::LeadershipEvent& event) {
          if (event.kind == vrm::etcd::LeadershipEvent::Kind::kSteppedDown) gDeposed = true;
        });
    if (!started) return fail("--store: " + started.error().toString());
    election = std::move(*started);
    vrm::manager::StandbyServerOptions standbyOptions;
    standbyOptions.clientEndpoint = clientEndpoint;
    // Agents given every replica's endpoint are told to try the next one.
    standbyOptions.agentEndpoint = agentEndpoint;
    standbyOptions.curve = serverKeys;
    standby = std::make_unique<vrm::manager::StandbyServer>(standbyOptions);
    if (vrm::Status s = standby->bind(); !s) return failOn(s, s.message());
    spdlog::info(
        "campaigning to lead {} as {} (lease {} s); meanwhile clients on {} are told "
        "where the leader is, agents on {} to try another replica",
        storeLocation->toString(), *advertised, leaseSeconds->count(), standby->clientEndpoint(),
        standby->agentEndpoint());
    // With --http, browsers and API clients are sent to the leader's web URL (307) meanwhile.
    if (web) {
      if (vrm::Status s = standbyWeb.start(webOptions); !s) {
        return failOn(s, "--http: " + s.message());
      }
    }
    // A standby is a started service (systemd must not time its start out): READY=1 with what
    // it does; READY=1 again once it leads and serves.
    std::string leaderSaid = "?";
    for (int turn = 1; !election->isLeader(); ++turn) {
      if (gStop.load()) return kStopped;
      const vrm::manager::LeaderAddress leaderAddress =
          vrm::manager::parseLeaderValue(election->leaderValue());
      const std::string& leader = leaderAddress.clientEndpoint;
      standbyWeb.setLeaderUrl(leaderAddress.httpUrl);
      if (leader != leaderSaid) {
        leaderSaid = leader;
        notified(notifier.ready("standby of " + storeLocation->toString() + " clients=" +
                                standby->clientEndpoint() + " agents=" + standby->agentEndpoint() +
                                (web ? " http=" + standbyWeb.url() : std::string()) +
                                " leader=" + (leader.empty() ? "none" : leader)));
      }
      if (auto sent = notifier.keepAlive(std::chrono::steady_clock::now()); !sent) {
        notified(sent.status());
      }
      // The campaign runs on the election's thread; this loop answers clients meanwhile and
      // lets SIGTERM end a standby that is never elected.
      standby->runOnce(std::chrono::milliseconds(100), leader, clock->now());
      if (turn % 100 == 0) {  // about every 10 s: who leads, or that etcd says nothing
        spdlog::info(
            "still waiting to lead {}: {}", storeLocation->toString(),
            leader.empty() ? "no leader known (is etcd reachable?)" : "the leader is " + leader);
      }
    }
    spdlog::info("elected to lead {}", storeLocation->toString());
    notified(notifier.status("recovering the store " + storeLocation->toString()));
    vrm::manager::EtcdStoreOptions etcdStore;
    etcdStore.client = etcdClient;
    etcdStore.prefix = storeLocation->prefix;
    auto opened =
        vrm::manager::EtcdStore::open(etcdStore, [e = election.get()] { return e->fence(); });
    if (!opened) return failNow("--store: " + opened.status().message());
    store = std::move(*opened);
  }
  std::unique_ptr<vrm::planner::VacatePlanner> planner;
  vrm::manager::CalibratingPlanner* calibrating = nullptr;
  if (plannerName == "sequential") {
    planner = std::make_unique<vrm::planner::SequentialVacatePlanner>(
        std::shared_ptr<const vrm::planner::MigrationModel>(std::move(*migrationModel)));
  } else if (!calibrate) {
    auto costAware = vrm::planner::CostAwareVacatePlanner::create(liveModel, scrModel);
    if (!costAware) return fail("--live-model/--scr-model: " + costAware.status().message());
    planner = std::move(*costAware);
  } else {
    vrm::manager::CalibratingPlannerOptions calibration;
    calibration.liveModel = liveModel;
    calibration.scrModel = scrModel;
    calibration.quantile = quantile;
    calibration.dirtyRateQuantile = dirtyRateQuantile;
    for (const auto& h : cluster->hosts) {
      calibration.nicBandwidthByHost[h.name] = h.nicBandwidthBytesPerSec;
    }
    auto p = vrm::manager::CalibratingPlanner::create(calibration);
    if (!p) return fail("--live-model/--scr-model: " + p.status().message());
    calibrating = p->get();
    planner = std::move(*p);
    // The migrations watched before this start calibrate the models now.
    auto observed = store->loadObservations();
    if (!observed) return failNow("store: " + observed.status().message());
    calibrating->observe(*observed);
  }
  vrm::manager::ManagerOptions options;
  if (calibrating) {
    options.onObservation = [calibrating](const vrm::MigrationObservation& o) {
      calibrating->observe({o});
    };
    options.onClone = [calibrating](const std::string& tmpl, const std::string& host,
                                    vrm::TimeNs ns) { calibrating->observeClone(tmpl, host, ns); };
  }
  options.marginNs = *marginNs;
  options.planningLatencyNs = *latencyNs;
  options.heartbeatTimeoutNs = *timeoutNs;
  options.warningRatio = warningRatio;
  options.dangerRatio = dangerRatio;
  options.quantile = quantile;
  options.assessPeriodNs = *assessNs;
  options.commandTimeoutFactor = commandTimeoutFactor;
  options.commandTimeoutFloorNs = *floorNs;
  options.slowCommandTimeoutNs = *slowNs;
  vrm::manager::Manager manager(*clock, *store, *planner, cluster->templates, options);
  if (vrm::Status s = manager.recover(); !s) return failOn(s, "recovery: " + s.toString());

  // Every submit's latency and decision, whichever way it came (web's /metrics shows them).
  vrm::manager::AdmissionMetrics admissions;
  webOptions.extraMetrics = [&admissions, calibrating] {
    // A standby's page says 0 (web_server.h: Standby); a vrmd on SQLite always serves.
    return "# HELP vrm_leader 1 when this vrmd leads its store and serves, 0 on a standby\n"
           "# TYPE vrm_leader gauge\nvrm_leader 1\n" +
           admissions.text() + (calibrating ? calibrating->metricsSnapshot() : std::string());
  };
  zmq::context_t context(1);
  vrm::manager::StoreBackups backups(*store, *clock);  // vrmctl backup
  vrm::manager::ServerOptions serverOptions;
  serverOptions.backups = &backups;
  serverOptions.admissions = &admissions;
  serverOptions.clientEndpoint = clientEndpoint;
  serverOptions.agentEndpoint = agentEndpoint;
  if (eventsEndpoint != "off") serverOptions.eventsEndpoint = eventsEndpoint;
  serverOptions.curve = serverKeys;
  serverOptions.authorized = authorized;
  // The web calendar talks to the core as a client, over inproc://.
  if (web) serverOptions.extraClientEndpoints.push_back(webOptions.vrmdEndpoint);
  // A replica on etcd checks its leadership locally (the lease's deadline as it can prove it)
  // before each loop turn, so one woken from SIGSTOP past its lease stops before acting, and
  // again right before sending agent commands, so that the turn it woke in sends none (its
  // writes are fenced out by etcd; commands to agents are not).
  auto leading = [&election] { return !gDeposed.load() && (!election || election->isLeader()); };
  if (election) serverOptions.mayAct = leading;
  // --- webhook notifications: the reservations recovered have their before-end followed ---
  vrm::manager::Notifier webhookNotifier(*clock, webhooks);
  if (webhookSender) {
    for (const auto& r : manager.list({})) webhookNotifier.track(r);
    serverOptions.notifier = &webhookNotifier;
    serverOptions.webhooks = webhookSender.get();
    spdlog::info("webhooks: {} from {}", webhooks.size(), webhooksPath);
  }
  // --- end webhook notifications ---
  vrm::manager::Server server(context, manager, *clock, serverOptions);
  if (standby) {
    // Requests that came while this replica recovered: the leader is here now (the client
    // library sends them again to this endpoint, which the server binds next).
    standby->runOnce(std::chrono::milliseconds(0), *advertised, clock->now());
    standby->close();
  }
  if (vrm::Status s = server.bind(); !s) return failOn(s, s.message());
  spdlog::info("listening for clients on {}, agents on {}, store {}", server.clientEndpoint(),
               server.agentEndpoint(), storeLocation->toString());
  if (authorized) {
    spdlog::info("CURVE on (public key {}): {} clients, {} agents, {} web tokens authorized",
                 serverKeys->publicKey, authorized->clients().size(), authorized->agents().size(),
                 authorized->webs().size());
  }
  vrm::web::WebServer webServer(context, webOptions);
  standbyWeb.stop();  // frees the port (the last 307s went out)
  if (web) {
    if (vrm::Status s = webServer.start(); !s) {
      if (s.code() == vrm::StatusCode::kUnavailable) {
        return failNow("--http: " + s.message() +
                       " (choose another with --http ADDR:PORT, or off)");
      }
      return fail("--http: " + s.message());
    }
    spdlog::info("web calendar on {} (files from {})", webServer.url(), webOptions.webRoot);
  }
  // What vrmd serves, with the ports the OS chose for '*' and ':0': `systemctl status vrmd`
  // shows it, and scripts parse it (key=value words).
  std::string serving = "clients=" + server.clientEndpoint() + " agents=" + server.agentEndpoint();
  if (!server.eventsEndpoint().empty()) serving += " events=" + server.eventsEndpoint();
  if (web) serving += " http=" + webServer.url();
  notified(notifier.ready(serving));

  while (!gStop.load() && leading()) {
    server.runOnce(serverOptions.maxPollWait);
    if (auto sent = notifier.keepAlive(std::chrono::steady_clock::now()); !sent) {
      notified(sent.status());
    }
    if (!gReload.exchange(false)) continue;
    // A file that does not load leaves what was loaded before in force (and says why).
    std::string failed;
    if (web && !webOptions.tlsCertFile.empty()) {
      notified(notifier.reloading("reloading " + webOptions.tlsCertFile));
      if (vrm::Status s = webServer.reloadTls(); !s) {
        spdlog::error("SIGHUP: kept the previous TLS certificate: {}", s.toString());
        failed += " reload-failed=" + webOptions.tlsCertFile;
      } else {
        spdlog::info("SIGHUP: reloaded the TLS certificate {}", webOptions.tlsCertFile);
      }
    }
    if (!authorizedPath.empty()) {
      notified(notifier.reloading("reloading " + authorizedPath));
      auto reloaded = server.reloadAuthorized(authorizedPath);
      if (!reloaded) {
        spdlog::error("SIGHUP: kept the previous authorized list: {}",
                      reloaded.status().toString());
        failed += " reload-failed=" + authorizedPath;
      } else {
        for (const auto& w : (*reloaded)->warnings()) spdlog::warn("--authorized: {}", w);
        if (web) webServer.setTokenHashes(tokenHashesOf(**reloaded));
        spdlog::info("SIGHUP: reloaded {}: {} clients, {} agents, {} web tokens authorized",
                     authorizedPath, (*reloaded)->clients().size(), (*reloaded)->agents().size(),
                     (*reloaded)->webs().size());
      }
    }
    notified(notifier.ready(serving + failed));
  }
  notified(notifier.stopping("stopping"));
  webServer.stop();
  if (!leading()) {
    spdlog::error("no longer leading {}: stopping (a restart campaigns again)",
                  storeLocation->toString());
    return kDeposed;
  }
  spdlog::info("stopped");
  return kStopped;
}
