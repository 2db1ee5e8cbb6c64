// vrm_week_report: the week's figures from a run's files (week_figures.h): figures.json,
// figures.txt and the plot's data (lead.dat, error.dat) in --out. With --check it exits 1
// when an invariant was violated (the CI version asserts only these, not the figures).
//
//   vrm_week_report --dir RUN_DIR [--check]
// RUN_DIR holds cluster.yaml, workload.json, reservations.json, journal.tsv, driver.json and
// run.json (what the runner recorded: knobs, scale, load).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "week_figures.h"

namespace {

std::string slurp(const std::string& path, bool* ok) {
  std::ifstream in(path);
  *ok = static_cast<bool>(in);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vrm_week_report - the week's figures from a run's files"};
  std::string dir = ".";
  bool check = false;
  app.add_option("--dir", dir, "the run's directory")->capture_default_str();
  app.add_flag("--check", check, "exit 1 if an invariant was violated");
  CLI11_PARSE(app, argc, argv);
  auto fail = [](const std::string& what) {
    std::fprintf(stderr, "vrm_week_report: %s\n", what.c_str());
    return 2;
  };
  bool ok = false;
  vrm::week::WeekInputs in;
  auto cluster = vrm::loadClusterSpec(dir + "/cluster.yaml");
  if (!cluster) return fail(cluster.status().message());
  in.cluster = std::move(*cluster);
  auto workload = vrm::week::parseWorkloadJson(slurp(dir + "/workload.json", &ok));
  if (!ok || !workload) return fail(dir + "/workload.json: " + workload.status().message());
  in.workload = std::move(*workload);
  auto reservations = vrm::week::parseReservations(slurp(dir + "/reservations.json", &ok));
  if (!ok || !reservations) {
    return fail(dir + "/reservations.json: " + reservations.status().message());
  }
  in.reservations = std::move(*reservations);
  auto journal = vrm::week::parseJournal(slurp(dir + "/journal.tsv", &ok));
  if (!ok || !journal) return fail(dir + "/journal.tsv: " + journal.status().message());
  in.journal = std::move(*journal);
  try {
    const std::string driver = slurp(dir + "/driver.json", &ok);
    if (ok) in.driverLog = nlohmann::json::parse(driver);
    const std::string run = slurp(dir + "/run.json", &ok);
    in.run = ok ? nlohmann::json::parse(run) : nlohmann::json::object();
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("driver.json / run.json: ") + e.what());
  }
  // Every vrmd incarnation's log (no log, as in hand-made runs: none counted).
  {
    std::ifstream log(dir + "/vrmd.log");
    for (std::string line; std::getline(log, line);) {
      if (line.find("result for unknown command") != std::string::npos) ++in.unknownResults;
    }
  }
  const nlohmann::json f = vrm::week::weekFigures(in);
  std::ofstream(dir + "/figures.json") << f.dump(1) << "\n";
  const std::string table = vrm::week::figuresTable(f);
  std::ofstream(dir + "/figures.txt") << table;
  std::ofstream(dir + "/lead.dat") << vrm::week::leadPlotData(f);
  std::ofstream(dir + "/error.dat") << vrm::week::errorPlotData(f);
  std::fputs(table.c_str(), stdout);
  if (check && !f["invariants"]["ok"].get<bool>()) return 1;
  return 0;
}
