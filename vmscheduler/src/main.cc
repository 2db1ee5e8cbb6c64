// vmschedd: the per-host agent. Parses options, wires clock, hypervisor and agent, runs the loop.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "vrm/daemon/command_line.h"
#include "vrm/daemon/service_notifier.h"
#include "vrm/protocol/cluster.h"
#include "vrm/protocol/curve.h"
#include "vrm/protocol/time.h"
#include "vrm/protocol/units.h"
#include "vrm/vmscheduler/agent.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace {

std::atomic<bool> g_stop{false};

extern "C" void onSignal(int) { g_stop.store(true); }

int fail(const std::string& message) {
  std::fprintf(stderr, "vmschedd: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vmschedd: per-host VM scheduler agent of vrm"};
  std::string host;
  std::string clusterFile;
  std::string vrmdEndpoint = "tcp://127.0.0.1:5556";
  std::string backend = "sim";
  std::string heartbeatText = "5s";
  std::optional<double> timeScale;
  std::optional<std::int64_t> clockOrigin;
  std::string logLevel = "info";
  std::vector<std::string> backendParams;
  std::string curveSecret, serverKey;
  app.add_option("--host", host, "this host's name, as in the cluster file")->required();
  app.add_option("--cluster", clusterFile, "cluster file (YAML) describing this host")->required();
  app.add_option("--vrmd", vrmdEndpoint,
                 "vrmd's agent endpoint, or every vrmd replica's, comma-separated "
                 "(tcp://a:5556,tcp://b:5556): the agent registers with whichever leads")
      ->capture_default_str();
  app.add_option("--curve-secret", curveSecret,
                 "this agent's CURVE key pair file (vrmctl keygen HOST: HOST.key); vrmd's "
                 "authorized file lists its public key as 'agent HOST <key>'");
  app.add_option("--server-key", serverKey,
                 "vrmd's CURVE public key (Z85, or a file holding it, e.g. vrmd.pub)");
  app.add_option("--backend", backend, "hypervisor backend")
      ->check(CLI::IsMember({"sim", "qemu", "libvirt"}))
      ->capture_default_str();
  app.add_option("--backend-param", backendParams,
                 "KEY=VALUE setting of the backend (repeatable; e.g. qemu's accel=tcg)");
  app.add_option("--heartbeat-interval", heartbeatText, "clock time between heartbeats (e.g. 5s)")
      ->capture_default_str();
  app.add_option("--time-scale", timeScale, "run the clock this many times faster than real time")
      ->check(CLI::PositiveNumber);
  app.add_option("--clock-origin", clockOrigin,
                 "ns since the epoch where the scaled clock meets real time (default: now)");
  app.add_option("--log-level", logLevel, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  vrm::daemon::addConfigOption(app, "/etc/vrm/vmschedd.conf");
  const vrm::daemon::CommandLine commandLine = vrm::daemon::parseCommandLine(app, argc, argv);
  if (commandLine.outcome == vrm::daemon::CommandLine::Outcome::kHelp) {
    std::fputs(commandLine.text.c_str(), stdout);
    return 0;
  }
  if (commandLine.outcome == vrm::daemon::CommandLine::Outcome::kError) {
    return fail(commandLine.text);
  }
  if (clockOrigin && !timeScale) return fail("--clock-origin needs --time-scale");
  auto heartbeat = vrm::parseDurationNs(heartbeatText);
  if (!heartbeat) return fail("--heartbeat-interval: " + heartbeat.status().message());
  if (*heartbeat <= 0) return fail("--heartbeat-interval must be positive");

  auto logger = spdlog::stderr_color_mt("vmschedd");
  spdlog::set_default_logger(logger);
  // The journal stamps each line with time and unit itself.
  if (vrm::daemon::stderrIsJournal()) spdlog::set_pattern("%l %v");
  spdlog::set_level(spdlog::level::from_str(logLevel));

  auto cluster = vrm::loadClusterSpec(clusterFile);
  if (!cluster) return fail(clusterFile + ": " + cluster.status().message());
  const vrm::HostSpec* spec = cluster->findHost(host);
  if (!spec) return fail("host '" + host + "' is not in " + clusterFile);

  vrm::vmscheduler::HypervisorOptions hvOptions;
  hvOptions.host = *spec;
  for (const std::string& param : backendParams) {
    const auto eq = param.find('=');
    if (eq == std::string::npos || eq == 0) return fail("--backend-param wants KEY=VALUE");
    hvOptions.params[param.substr(0, eq)] = param.substr(eq + 1);
  }
  auto hypervisor = vrm::vmscheduler::Hypervisor::create(backend, hvOptions);
  if (!hypervisor) return fail(hypervisor.status().message());

  std::unique_ptr<vrm::Clock> clock;
  double scale = 1;
  if (timeScale) {
    scale = *timeScale;
    const vrm::TimeNs origin = clockOrigin ? *clockOrigin : vrm::SystemClock().now();
    clock = std::make_unique<vrm::ScaledClock>(origin, scale);
  } else {
    clock = std::make_unique<vrm::SystemClock>();
  }

  vrm::vmscheduler::AgentOptions options;
  options.vrmdEndpoint = vrmdEndpoint;
  if (curveSecret.empty() != serverKey.empty()) {
    return fail("CURVE needs both --curve-secret and --server-key");
  }
  if (!curveSecret.empty()) {
    if (vrm::Status s = vrm::protocol::requireCurve(); !s) return fail(s.message());
    auto own = vrm::protocol::loadCurveKeyPair(curveSecret);
    if (!own) return fail("--curve-secret: " + own.status().message());
    auto server = vrm::protocol::resolvePublicKey(serverKey);
    if (!server) return fail("--server-key: " + server.status().message());
    options.curve = vrm::protocol::CurveClientKeys{*server, *own};
  } else {
    spdlog::warn("no CURVE keys (--curve-secret, --server-key): only an insecure vrmd accepts us");
  }
  options.heartbeatIntervalNs = *heartbeat;
  // Register retries are in clock time; keep them about one real second apart on a fast clock
  // so a vrmd that is not up yet does not find thousands of queued registers.
  options.registerRetryIntervalNs =
      std::max<vrm::TimeNs>(options.registerRetryIntervalNs, vrm::secondsToNs(scale));
  options.registerErrorRetryIntervalNs =
      std::max<vrm::TimeNs>(options.registerErrorRetryIntervalNs, vrm::secondsToNs(30 * scale));
  // A TCP connection takes real time: about one real second to complete, whatever the clock.
  options.connectTimeoutNs =
      std::max<vrm::TimeNs>(options.connectTimeoutNs, vrm::secondsToNs(scale));

  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  // systemd (Type=notify) hears READY=1 once vrmd has acknowledged the registration, and how
  // registration goes while it does not.
  vrm::daemon::ServiceNotifier notifier = vrm::daemon::ServiceNotifier::fromEnvironment();
  auto notified = [](const vrm::Status& s) {
    if (!s) spdlog::warn("telling systemd: {}", s.message());
  };
  zmq::context_t context;
  try {
    vrm::vmscheduler::Agent agent(*clock, **hypervisor, context, options);
    spdlog::info("vmschedd for host {} ({} backend) connecting to {}", host, backend, vrmdEndpoint);
    auto registering = [&] {
      return "registering host " + host + " with vrmd at " + agent.vrmdEndpoint();
    };
    notified(notifier.status(registering()));
    bool wasRegistered = false, everReady = false;
    while (!g_stop.load()) {
      agent.runOnce(std::chrono::milliseconds(100));
      if (auto sent = notifier.keepAlive(std::chrono::steady_clock::now()); !sent) {
        notified(sent.status());
      }
      if (agent.registered() == wasRegistered) continue;
      wasRegistered = agent.registered();
      const std::string registered =
          "registered host " + host + " with vrmd at " + agent.vrmdEndpoint();
      if (!wasRegistered) {
        notified(notifier.status(registering() + " (vrmd forgot it, or it no longer leads)"));
      } else if (!everReady) {
        everReady = true;
        notified(notifier.ready(registered));
      } else {
        notified(notifier.status(registered));
      }
    }
    notified(notifier.stopping("stopping"));
  } catch (const zmq::error_t& e) {
    return fail(std::string("--vrmd ") + vrmdEndpoint + ": " + e.what());
  }
  spdlog::info("vmschedd for host {} stopped", host);
  return 0;
}
