// vrm_week_agents: the week's cluster, every host's agent in one process. Each host is a real
// vmscheduler::Agent (its own DEALER to vrmd, register, heartbeats, commands) on the sim
// hypervisor, on its own thread, under the shared scaled clock; every inventory change goes to
// the journal (journal.h). A control socket lets the driver lose an agent for a while:
//
//   vrm_week_agents --cluster cluster.yaml --vrmd tcp://127.0.0.1:17611
//       --control tcp://127.0.0.1:17615 --time-scale 600 --clock-origin NS
//       --journal journal.tsv --state-dir DIR
//
// Control requests (ZeroMQ REQ/REP, text): "lose HOST DURATION_NS" (the agent is stopped, its
// socket closed, and started again after DURATION_NS of simulated time from its state file, as
// a restarted vmschedd: VMs that were migrating out run again at home), "registered" (how many
// agents are registered). Prints "registered N" once every agent is, then runs until SIGTERM /
// SIGINT, when it flushes the journal.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "journal.h"
#include "vrm/protocol/cluster.h"
#include "vrm/protocol/units.h"
#include "vrm/vmscheduler/agent.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace {

std::atomic<bool> gStop{false};
extern "C" void onSignal(int) { gStop = true; }

struct HostRun {
  vrm::HostSpec spec;
  std::map<std::string, std::string> params;
  std::unique_ptr<vrm::week::HostJournal> journal;
  std::atomic<vrm::TimeNs> downUntil{0};
  std::atomic<bool> registered{false};
};

std::unique_ptr<vrm::vmscheduler::Hypervisor> makeHypervisor(HostRun& h) {
  vrm::vmscheduler::HypervisorOptions o;
  o.host = h.spec;
  o.params = h.params;
  auto hv = vrm::vmscheduler::Hypervisor::create("sim", o);
  if (!hv) {
    std::fprintf(stderr, "vrm_week_agents: %s: %s\n", h.spec.name.c_str(),
                 hv.status().message().c_str());
    std::exit(2);
  }
  return std::make_unique<vrm::week::JournalingHypervisor>(std::move(*hv), *h.journal);
}

// One host's thread: its agent runs until the process stops, and is stopped and started again
// from its state file while the driver has it lost.
void runHost(HostRun& h, vrm::ScaledClock& clock, zmq::context_t& context,
             const vrm::vmscheduler::AgentOptions& options) {
  auto hv = makeHypervisor(h);
  auto agent = std::make_unique<vrm::vmscheduler::Agent>(clock, *hv, context, options);
  while (!gStop.load()) {
    if (const vrm::TimeNs until = h.downUntil.load(); until > clock.now()) {
      agent.reset();
      hv.reset();
      h.registered = false;
      h.journal->agent(false);
      while (!gStop.load() && clock.now() < until) {
        std::this_thread::sleep_for(clock.realDelayUntil(until, std::chrono::milliseconds(50)));
      }
      hv = makeHypervisor(h);
      agent = std::make_unique<vrm::vmscheduler::Agent>(clock, *hv, context, options);
      h.journal->agent(true);
    }
    agent->runOnce(std::chrono::milliseconds(100));
    h.registered = agent->registered();
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vrm_week_agents - the week's sim agents in one process"};
  std::string clusterPath, vrmd = "tcp://127.0.0.1:17611", control = "tcp://127.0.0.1:17615";
  std::string journalPath = "journal.tsv", stateDir, heartbeatText = "60s";
  double scale = 1;
  vrm::TimeNs origin = 0;
  std::uint64_t seed = 1;
  app.add_option("--cluster", clusterPath, "cluster file (vrm_week_gen)")->required();
  app.add_option("--vrmd", vrmd, "vrmd's agent endpoint")->capture_default_str();
  app.add_option("--control", control, "control endpoint to bind (REP)")->capture_default_str();
  app.add_option("--time-scale", scale, "clock speed-up")->required();
  app.add_option("--clock-origin", origin, "ns where the scaled clock meets real time")->required();
  app.add_option("--journal", journalPath, "journal file (journal.h)")->capture_default_str();
  app.add_option("--state-dir", stateDir, "directory of the sim hosts' state files")->required();
  app.add_option("--heartbeat", heartbeatText, "clock time between heartbeats")
      ->capture_default_str();
  app.add_option("--seed", seed, "seed of the sim ground truth (mixed with each host)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  auto heartbeat = vrm::parseDurationNs(heartbeatText);
  if (!heartbeat || *heartbeat <= 0) {
    std::fprintf(stderr, "vrm_week_agents: --heartbeat: want a positive duration\n");
    return 2;
  }
  auto cluster = vrm::loadClusterSpec(clusterPath);
  if (!cluster) {
    std::fprintf(stderr, "vrm_week_agents: %s\n", cluster.status().message().c_str());
    return 2;
  }
  auto journal = vrm::week::Journal::open(journalPath);
  if (!journal) {
    std::fprintf(stderr, "vrm_week_agents: %s\n", journal.status().message().c_str());
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);

  vrm::ScaledClock clock(origin, scale);
  zmq::context_t context(2);
  context.set(zmq::ctxopt::max_sockets, 3 * static_cast<int>(cluster->hosts.size()) + 64);
  vrm::vmscheduler::AgentOptions options;
  options.vrmdEndpoint = vrmd;
  options.heartbeatIntervalNs = *heartbeat;
  options.jitterSeed = seed;
  // As vmschedd does: never retry a register faster than once a real second.
  options.registerRetryIntervalNs =
      std::max<vrm::TimeNs>(options.registerRetryIntervalNs, vrm::secondsToNs(scale));
  options.registerErrorRetryIntervalNs =
      std::max<vrm::TimeNs>(options.registerErrorRetryIntervalNs, vrm::secondsToNs(30 * scale));

  std::vector<std::unique_ptr<HostRun>> hosts;
  for (std::size_t i = 0; i < cluster->hosts.size(); ++i) {
    auto h = std::make_unique<HostRun>();
    h->spec = cluster->hosts[i];
    h->params = {{"seed", std::to_string(seed * 1000003 + i)},
                 {"state_file", stateDir + "/" + h->spec.name + ".state"}};
    h->journal = std::make_unique<vrm::week::HostJournal>(h->spec.name, **journal, clock);
    hosts.push_back(std::move(h));
  }
  zmq::socket_t rep(context, zmq::socket_type::rep);
  rep.set(zmq::sockopt::linger, 0);
  try {
    rep.bind(control);
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "vrm_week_agents: --control %s: %s\n", control.c_str(), e.what());
    return 2;
  }
  // SIGTERM / SIGINT go to this thread only (the hosts' threads inherit them blocked), so that
  // nothing but the loop below sees the interrupted system calls.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGINT);
  sigaddset(&stopSignals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
  std::vector<std::thread> threads;
  for (auto& h : hosts) {
    threads.emplace_back([&, hp = h.get()] { runHost(*hp, clock, context, options); });
  }
  pthread_sigmask(SIG_UNBLOCK, &stopSignals, nullptr);
  auto lastFlush = std::chrono::steady_clock::now();
  bool allRegistered = false;
  while (!gStop.load()) {
    zmq::pollitem_t item{static_cast<void*>(rep), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      continue;  // a signal: gStop says whether to stop
    }
    // Whatever happens to this process later, the journal on disk is at most a second old.
    if (std::chrono::steady_clock::now() - lastFlush > std::chrono::seconds(1)) {
      (*journal)->flush();
      lastFlush = std::chrono::steady_clock::now();
    }
    std::size_t registered = 0;
    for (const auto& h : hosts) registered += h->registered.load();
    if ((registered == hosts.size()) != allRegistered) {
      allRegistered = !allRegistered;
      std::printf("%s %zu\n", allRegistered ? "registered" : "unregistered", registered);
      std::fflush(stdout);
    }
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t request;
    if (!rep.recv(request, zmq::recv_flags::dontwait)) continue;
    std::istringstream in(request.to_string());
    std::string verb, host;
    long long duration = 0;
    in >> verb;
    std::string reply;
    if (verb == "lose" && (in >> host >> duration) && duration > 0) {
      reply = "not-found " + host;
      for (auto& h : hosts) {
        if (h->spec.name != host) continue;
        h->downUntil = clock.now() + duration;
        reply = "ok";
      }
    } else if (verb == "registered") {
      reply = std::to_string(registered);
    } else {
      reply = "invalid-argument: want 'lose HOST DURATION_NS' or 'registered'";
    }
    rep.send(zmq::buffer(reply), zmq::send_flags::none);
  }
  for (auto& t : threads) t.join();
  (*journal)->flush();
  return 0;
}
