// vrm_fake_agents: plays the agents of many hosts of the generated cluster
// (tests/scale/generated_cluster.h) in one process, for scale runs of a real vrmd. Each host is
// a real vmscheduler::Agent (own DEALER over TCP, routing id = host name, register, heartbeats,
// commands) on the in-process "sim" hypervisor: the same protocol code vmschedd runs, just
// without one process per host. All agents share one thread, served round robin.
//
//   vrm_fake_agents --vrmd tcp://127.0.0.1:17101 --first 0 --count 5000
//
// Prints "registered N" once every agent of the range is registered (and again after a vrmd
// restart once they all are again), then runs until SIGINT/SIGTERM. Each agent uses about two
// file descriptors: split 10,000 hosts over two processes under the usual 20,000 fd limit.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "../scale/generated_cluster.h"
#include "vrm/vmscheduler/agent.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace {

std::atomic<bool> gStop{false};
void onSignal(int) { gStop = true; }

vrm::HostSpec specOf(std::uint32_t i) {
  const vrm::HostRecord h = vrm::scale::generatedHost(i);
  vrm::HostSpec spec;
  spec.name = h.name;
  spec.cpuCores = h.cpuCores;
  spec.memoryBytes = h.memoryBytes;
  spec.nicBandwidthBytesPerSec = h.nicBandwidthBytesPerSec;
  for (const auto& v : vrm::scale::generatedVms(i)) {
    vrm::VmSpec vm;
    vm.id = v.id;
    vm.cpuCores = v.cpuCores;
    vm.memoryBytes = v.memoryBytes;
    vm.nonzeroMemoryBytes = v.nonzeroMemoryBytes;
    vm.dirtyRateBytesPerSec = v.dirtyRateBytesPerSec;
    spec.vms.push_back(vm);
  }
  return spec;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vrm_fake_agents - many sim agents of the generated cluster in one process"};
  std::string vrmd = "tcp://127.0.0.1:17101";
  std::uint32_t first = 0, count = 100;
  double heartbeatS = 5;
  app.add_option("--vrmd", vrmd, "vrmd's agent endpoint")->capture_default_str();
  app.add_option("--first", first, "index of the first generated host")->capture_default_str();
  app.add_option("--count", count, "number of hosts")->capture_default_str();
  app.add_option("--heartbeat", heartbeatS, "seconds between heartbeats")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);

  vrm::SystemClock clock;
  zmq::context_t context(1);
  context.set(zmq::ctxopt::max_sockets, static_cast<int>(count) + 64);
  vrm::vmscheduler::AgentOptions options;
  options.vrmdEndpoint = vrmd;
  options.heartbeatIntervalNs = static_cast<vrm::TimeNs>(heartbeatS * 1e9);
  std::vector<std::unique_ptr<vrm::vmscheduler::Hypervisor>> hypervisors;
  std::vector<std::unique_ptr<vrm::vmscheduler::Agent>> agents;
  try {
    for (std::uint32_t i = first; i < first + count; ++i) {
      vrm::vmscheduler::HypervisorOptions hv;
      hv.host = specOf(i);
      auto h = vrm::vmscheduler::Hypervisor::create("sim", hv);
      if (!h) {
        std::fprintf(stderr, "vrm_fake_agents: %s\n", h.status().message().c_str());
        return 2;
      }
      hypervisors.push_back(std::move(*h));
      agents.push_back(
          std::make_unique<vrm::vmscheduler::Agent>(clock, *hypervisors.back(), context, options));
    }
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "vrm_fake_agents: %s (raise ulimit -n?)\n", e.what());
    return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  bool allRegistered = false;
  while (!gStop.load()) {
    std::size_t registered = 0;
    for (auto& a : agents) {
      a->runOnce(std::chrono::milliseconds(0));
      registered += a->registered();
    }
    if ((registered == agents.size()) != allRegistered) {
      allRegistered = !allRegistered;
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%s %zu at %.3f s\n", allRegistered ? "registered" : "unregistered", registered, s);
      std::fflush(stdout);
    }
    // Nothing to do most of the time: a short nap keeps one loop per ~2 ms, not a busy spin.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return 0;
}
