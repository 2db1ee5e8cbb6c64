// vrm_week_gen: writes the week's cluster (cluster.yaml) and workload (workload.json) for a seed
// (week_cluster.h, week_workload.h), so that every program of a run reads the same files.
//
//   vrm_week_gen --seed 1 --hosts 100 --days 7 --week-start 2026-11-23 --out DIR
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "vrm/client/time_spec.h"
#include "week_cluster.h"
#include "week_workload.h"

int main(int argc, char** argv) {
  CLI::App app{"vrm_week_gen - the week's cluster and workload for a seed"};
  vrm::week::ClusterOptions cluster;
  vrm::week::WorkloadOptions workload;
  std::string weekStart = "2026-11-23T00:00:00Z", out = ".";
  app.add_option("--seed", cluster.seed, "seed of the cluster and the workload")
      ->capture_default_str();
  app.add_option("--hosts", cluster.hosts, "hosts")
      ->capture_default_str()
      ->check(CLI::Range(1, 999));
  app.add_option("--days", workload.days, "simulated days")
      ->capture_default_str()
      ->check(CLI::Range(1, 60));
  app.add_option("--week-start", weekStart, "the first day's start (ISO 8601, UTC)")
      ->capture_default_str();
  app.add_option("--load", workload.load, "booking rates times this")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--agent-losses", workload.agentLosses, "agents lost and returning")
      ->capture_default_str();
  app.add_option("--vrmd-restarts", workload.vrmdRestarts, "vrmd restarts (kill -9)")
      ->capture_default_str();
  app.add_option("--objective", workload.objective,
                 "objective of every dedicated booking (makespan, degradation; default vrmd's)")
      ->check(CLI::IsMember({"", "makespan", "degradation"}));
  app.add_option("--out", out, "directory for cluster.yaml and workload.json")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  auto start = vrm::client::parseTimeSpec(weekStart, 0);
  if (!start) {
    std::fprintf(stderr, "vrm_week_gen: --week-start: %s\n", start.status().message().c_str());
    return 2;
  }
  const vrm::ClusterSpec spec = vrm::week::generateCluster(cluster);
  workload.seed = cluster.seed;
  workload.weekStartNs = *start;
  for (const auto& h : spec.hosts) workload.hosts.push_back(h.name);
  const vrm::week::Workload w = vrm::week::generateWorkload(workload);
  std::ofstream(out + "/cluster.yaml") << vrm::week::clusterYaml(spec);
  std::ofstream(out + "/workload.json") << vrm::week::workloadJson(w) << "\n";
  std::size_t vms = 0, submits = 0;
  for (const auto& h : spec.hosts) vms += h.vms.size();
  for (const auto& a : w.actions) submits += a.kind == vrm::week::ActionKind::kSubmit;
  std::printf("%zu hosts, %zu VMs, %zu bookings, %zu actions\n", spec.hosts.size(), vms, submits,
              w.actions.size());
  return 0;
}
