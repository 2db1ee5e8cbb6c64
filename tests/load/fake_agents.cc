// vrm_fake_agents: plays the agents of many hosts of the generated cluster
// (tests/scale/generated_cluster.h) in one process, for scale runs of a real vrmd. Each host is
// a real vmscheduler::Agent (own DEALER over TCP, routing id = host name, register, heartbeats,
// commands) on the in-process "sim" hypervisor: the same protocol code vmschedd runs, just
// without one process per host. All agents share one thread, served round robin.
//
//   vrm_fake_agents --vrmd tcp://127.0.0.1:17101 --first 0 --count 5000
//
// Prints "registered N" once every agent of the range is registered (and again after a vrmd
// restart once they all are again), then runs until SIGINT/SIGTERM. Each agent uses about four
// file descriptors (its DEALER, the handshake monitor's pair of sockets, the TCP connection):
// split 10,000 hosts over four processes under the usual 20,000 fd limit.
//
// CURVE: --print-authorized prints the `agent <host> <public-key>` lines of the range for vrmd's
// authorized file, and --curve-server KEY makes every agent a CURVE client of that vrmd. Each
// host's key pair is derived from --key-seed and its index (so 10,000 pairs need no files):
// test keys, as secret as the seed, for scale runs only.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../scale/generated_cluster.h"
#include "vrm/protocol/curve.h"
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

// Host i's test key pair: 32 secret bytes drawn by splitmix64 from (seed, i).
vrm::protocol::CurveKeyPair testKeyPair(std::uint64_t seed, std::uint32_t i) {
  std::uint64_t state = seed * 0x9e3779b97f4a7c15ull + i;
  std::uint8_t secret[32];
  for (int w = 0; w < 4; ++w) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    for (int b = 0; b < 8; ++b) secret[w * 8 + b] = static_cast<std::uint8_t>(z >> (8 * b));
  }
  char secretZ85[41], publicZ85[41];
  zmq_z85_encode(secretZ85, secret, sizeof secret);
  zmq_curve_public(publicZ85, secretZ85);
  return {publicZ85, secretZ85};
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
  double jitter = vrm::vmscheduler::AgentOptions{}.intervalJitter;
  std::uint64_t seed = 1;
  app.add_option("--jitter", jitter,
                 "fraction by which heartbeats and register retries may come early (0 = all "
                 "agents in lockstep)")
      ->capture_default_str();
  app.add_option("--seed", seed, "seed of the jitter (mixed with each host name)")
      ->capture_default_str();
  bool printYaml = false, noVms = false;
  app.add_flag("--print-cluster-yaml", printYaml,
               "print the generated hosts of the range and the templates as a cluster YAML");
  app.add_flag("--no-vms", noVms,
               "--print-cluster-yaml without the VMs (vrmd learns them from the agents and "
               "ignores the file's)");
  bool printAuthorized = false;
  std::string curveServer;
  std::uint64_t keySeed = 1;
  app.add_flag("--print-authorized", printAuthorized,
               "print the range's `agent <host> <public-key>` lines for vrmd's authorized file");
  app.add_option("--curve-server", curveServer,
                 "vrmd's CURVE public key (Z85 text or a .pub / .key file): agents use CURVE");
  app.add_option("--key-seed", keySeed, "seed of the agents' test key pairs")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (printAuthorized || !curveServer.empty()) {
    if (vrm::Status s = vrm::protocol::requireCurve(); !s) {
      std::fprintf(stderr, "vrm_fake_agents: %s\n", s.message().c_str());
      return 2;
    }
  }
  if (printAuthorized) {
    for (std::uint32_t i = first; i < first + count; ++i) {
      std::printf("agent %s %s\n", vrm::scale::generatedHost(i).name.c_str(),
                  testKeyPair(keySeed, i).publicKey.c_str());
    }
    return 0;
  }
  std::optional<std::string> serverKey;
  if (!curveServer.empty()) {
    auto key = vrm::protocol::resolvePublicKey(curveServer);
    if (!key) {
      std::fprintf(stderr, "vrm_fake_agents: --curve-server: %s\n", key.status().message().c_str());
      return 2;
    }
    serverKey = *key;
  }
  if (printYaml) {
    std::printf(
        "# Generated by vrm_fake_agents (tests/scale/generated_cluster.h).\n"
        "defaults:\n  nic_bandwidth: 10 Gbit/s\nhosts:\n");
    for (std::uint32_t i = first; i < first + count; ++i) {
      const vrm::HostSpec h = specOf(i);
      std::printf("  - name: %s\n    cpu_cores: %u\n    memory: %llu B\n", h.name.c_str(),
                  h.cpuCores, static_cast<unsigned long long>(h.memoryBytes));
      if (noVms) continue;
      std::printf("    vms:\n");
      for (const auto& v : h.vms) {
        std::printf(
            "      - {id: %s, cpu_cores: %u, memory: %llu B, nonzero_memory: %llu B, "
            "dirty_rate: %.0f B/s}\n",
            v.id.c_str(), v.cpuCores, static_cast<unsigned long long>(v.memoryBytes),
            static_cast<unsigned long long>(v.nonzeroMemoryBytes), v.dirtyRateBytesPerSec);
      }
    }
    std::printf("templates:\n");
    for (const auto& t : vrm::scale::generatedTemplates()) {
      std::printf(
          "  - {name: %s, cpu_cores: %u, memory: %llu B, clone_time: %lld ms, "
          "vms_per_host: %u}\n",
          t.name.c_str(), t.cpuCores, static_cast<unsigned long long>(t.memoryBytes),
          static_cast<long long>(t.cloneTimeNs / vrm::kNsPerMs), t.vmsPerHost);
    }
    return 0;
  }
  spdlog::set_level(spdlog::level::warn);
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);

  vrm::SystemClock clock;
  zmq::context_t context(1);
  // Three sockets per agent: its DEALER and the two of its handshake monitor.
  context.set(zmq::ctxopt::max_sockets, 3 * static_cast<int>(count) + 64);
  vrm::vmscheduler::AgentOptions options;
  options.vrmdEndpoint = vrmd;
  options.heartbeatIntervalNs = static_cast<vrm::TimeNs>(heartbeatS * 1e9);
  options.intervalJitter = jitter;
  options.jitterSeed = seed;
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
      if (serverKey)
        options.curve = vrm::protocol::CurveClientKeys{*serverKey, testKeyPair(keySeed, i)};
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
      std::printf("%s %zu at %.3f s\n", allRegistered ? "registered" : "unregistered", registered,
                  s);
      std::fflush(stdout);
    }
    // Nothing to do most of the time: a short nap keeps one loop per ~2 ms, not a busy spin.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return 0;
}
