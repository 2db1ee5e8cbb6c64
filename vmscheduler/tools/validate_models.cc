// vrm-validate-models: how well the migration models predict real QEMU migrations. Reads the
// CSVs of vrm-qemu-sweep, calibrates every model on half of the calibration-size guests' cases
// and predicts the other half and every case of the larger guests, with the default parameters
// and calibrated (examples/validate-qemu.sh runs it; README "Accuracy against real QEMU
// migrations" is its --markdown output).
//
// Method, so that the figures mean what they say:
//  * A case (guest size, fill, dirty rate, bandwidth, mode) run several times counts once: its
//    measured figures and its inputs are the medians of its runs (TCG timing under a shared
//    machine's load is noisy). A live case counts as not converging when most of its runs did
//    not.
//  * The inputs are what vrmd has before the migration: the agent's memory and sampled non-zero
//    memory, and the dirty rate as Liu eq. 13 blends it: the agent's sample (phi = 0.5) with the
//    EWMA (eq. 12, mu = 0.7) of the dirty rates QEMU measured in this guest's earlier live
//    migrations (its history, eq. 11); the sample alone before the first. Liu's models and
//    qemu-precopy take the history themselves (as vrmd gives it to them); the others get the
//    blend.
//  * A calibration case is what vrmd fits on: the observation of a finished migration, whose
//    dirty rate is the one QEMU measured during it (the agent's sample when QEMU saw none), with
//    no history (CalibratingPlanner::convert). The fit learns the model, not the sample's noise.
//  * The cases of the calibration size are split per mode in the order they ran, alternately
//    into a calibration and a validation half; guests of other sizes are validated only
//    ("larger"). The calibration never sees a validated case.
//  * The link: the case's bandwidth limit (QEMU's max-bandwidth, the copy's pace) and, for what
//    QEMU sends unthrottled, --line-rate (loopback between two QEMUs on one host).
//  * Errors: |predicted - measured| / measured total time; |predicted - measured| downtime of
//    converging live cases in ms; convergence: the model's converges flag against the run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "vrm/planner/calibration.h"
#include "vrm/planner/liu_model.h"
#include "vrm/planner/migration_model.h"

namespace {

using namespace vrm;
using namespace vrm::planner;

// One sweep row.
struct Run {
  std::string caseText;
  double load = 0;
  double memory = 0, nonzero = 0, sampledDirty = 0, bandwidth = 0;
  bool live = true, converged = true;
  double total = 0;
  std::optional<double> downtime, transferred, qemuDirty, setup, save, copy, restore;
};

// A case: its runs' medians.
struct Case {
  std::string key;  // "128 MiB 16:0:32:live"
  std::string guest;
  bool live = true;
  bool converged = true;
  int runs = 0;
  double load = 0;
  double memory = 0, nonzero = 0, sampledDirty = 0, bandwidth = 0, total = 0;
  std::optional<double> downtime, transferred, qemuDirty, setup, save, copy, restore;
  std::vector<double> history;  // QEMU-measured dirty rates of the guest's earlier live cases
  double blendedDirty = 0;
  enum class Set { kCalibration, kValidation, kLarger } set = Set::kLarger;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::optional<double> medianOf(const std::vector<Run>& runs, std::optional<double> Run::*field) {
  std::vector<double> v;
  for (const Run& r : runs) {
    if (r.*field) v.push_back(*(r.*field));
  }
  if (v.empty()) return std::nullopt;
  return median(v);
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(line);
  std::string cell;
  while (std::getline(in, cell, ',')) out.push_back(cell);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

// Reads one sweep CSV (header names as vrm-qemu-sweep prints them; '#' lines skipped).
bool readSweep(const std::string& path, std::vector<Run>& out) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "vrm-validate-models: cannot read %s\n", path.c_str());
    return false;
  }
  std::string line;
  std::map<std::string, std::size_t> col;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line[0] == '[') continue;
    const auto cells = split(line);
    if (col.empty()) {
      for (std::size_t i = 0; i < cells.size(); ++i) col[cells[i]] = i;
      for (const char* need :
           {"case", "memory_bytes", "mode", "bandwidth_bytes_per_sec", "total_time_s"}) {
        if (!col.count(need)) {
          std::fprintf(stderr, "vrm-validate-models: %s: no column %s\n", path.c_str(), need);
          return false;
        }
      }
      continue;
    }
    auto cell = [&](const char* name) -> std::optional<double> {
      auto it = col.find(name);
      if (it == col.end() || it->second >= cells.size() || cells[it->second].empty()) {
        return std::nullopt;
      }
      return std::strtod(cells[it->second].c_str(), nullptr);
    };
    if (cells.size() < col.size() - 1) continue;  // a truncated last line
    Run r;
    r.caseText = cells[col["case"]];
    r.load = cell("load1").value_or(0);
    r.memory = cell("memory_bytes").value_or(0);
    r.nonzero = cell("nonzero_memory_bytes").value_or(r.memory);
    r.sampledDirty = cell("dirty_rate_bytes_per_sec").value_or(0);
    r.live = cells[col["mode"]] == "live";
    r.bandwidth = cell("bandwidth_bytes_per_sec").value_or(0);
    r.total = cell("total_time_s").value_or(0);
    r.converged = cell("converged").value_or(1) != 0;
    r.downtime = cell("downtime_s");
    r.transferred = cell("transferred_bytes");
    r.qemuDirty = cell("qemu_dirty_rate_bytes_per_sec");
    r.setup = cell("setup_s");
    r.save = cell("suspend_s");
    r.copy = cell("copy_s");
    r.restore = cell("resume_s");
    if (r.memory > 0 && r.bandwidth > 0 && r.total > 0) out.push_back(r);
  }
  return true;
}

std::vector<Case> casesOf(const std::vector<Run>& runs, double calibrationMemory) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<Run>> byKey;
  for (const Run& r : runs) {
    const std::string key =
        std::to_string(static_cast<int>(r.memory / (1 << 20))) + " MiB " + r.caseText;
    if (!byKey.count(key)) order.push_back(key);
    byKey[key].push_back(r);
  }
  std::vector<Case> cases;
  std::map<std::string, std::vector<double>> history;  // guest -> QEMU dirty rates, in order
  std::map<bool, int> calibrationCount;                // mode -> cases of the calibration size
  for (const std::string& key : order) {
    const std::vector<Run>& rs = byKey[key];
    Case c;
    c.key = key;
    const std::string& text = rs.front().caseText;
    c.guest = std::to_string(static_cast<int>(rs.front().memory)) + ":" +
              text.substr(0, text.find(':', text.find(':') + 1));
    c.live = rs.front().live;
    c.runs = static_cast<int>(rs.size());
    int converged = 0;
    std::vector<Run> ok;
    std::vector<double> load, nonzero, sampled;
    for (const Run& r : rs) {
      converged += r.converged;
      if (r.converged) ok.push_back(r);
      load.push_back(r.load);
      nonzero.push_back(r.nonzero);
      sampled.push_back(r.sampledDirty);
    }
    c.converged = 2 * converged > c.runs;
    const std::vector<Run>& use = c.converged ? ok : rs;
    std::vector<double> totals;
    for (const Run& r : use) totals.push_back(r.total);
    c.load = median(load);
    c.memory = rs.front().memory;
    c.nonzero = median(nonzero);
    c.sampledDirty = median(sampled);
    c.bandwidth = rs.front().bandwidth;
    c.total = median(totals);
    c.downtime = medianOf(use, &Run::downtime);
    c.transferred = medianOf(use, &Run::transferred);
    c.qemuDirty = medianOf(use, &Run::qemuDirty);
    c.setup = medianOf(use, &Run::setup);
    c.save = medianOf(use, &Run::save);
    c.copy = medianOf(use, &Run::copy);
    c.restore = medianOf(use, &Run::restore);
    c.history = history[c.guest];
    c.blendedDirty = c.sampledDirty;
    if (!c.history.empty()) {
      c.blendedDirty = *blendDirtyRate(c.sampledDirty, *ewmaDirtyRate(c.history, 0.7), 0.5);
    }
    if (c.live && c.converged && c.qemuDirty) history[c.guest].push_back(*c.qemuDirty);
    if (std::abs(c.memory - calibrationMemory) < 1) {
      c.set =
          calibrationCount[c.live]++ % 2 == 0 ? Case::Set::kCalibration : Case::Set::kValidation;
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

// What a model is given for a case, to predict it or (calibrating) to be fitted on it (see the
// method above).
MigrationObservation observationFor(const std::string& model, const Case& c, bool calibrating) {
  MigrationObservation o;
  const bool liu = model.rfind("liu-", 0) == 0;
  const bool readsHistory = liu || model == "qemu-precopy";
  // Models without a non-zero-memory input get the non-zero memory as their memory size: zero
  // pages cost almost nothing to migrate.
  const bool noNonzeroInput = liu || model == "zhao-scr";
  o.vm.memoryBytes = noNonzeroInput ? c.nonzero : c.memory;
  o.vm.nonzeroMemoryBytes = noNonzeroInput ? -1 : c.nonzero;
  if (calibrating) {
    o.vm.dirtyRateBytesPerSec =
        c.live && c.qemuDirty && *c.qemuDirty > 0 ? *c.qemuDirty : c.sampledDirty;
  } else if (readsHistory) {
    o.vm.dirtyRateBytesPerSec = c.sampledDirty;
    o.vm.dirtyRateHistoryBytesPerSec = c.history;
  } else {
    o.vm.dirtyRateBytesPerSec = c.blendedDirty;
  }
  o.bandwidthBytesPerSec = c.bandwidth;
  o.totalTimeS = c.total;
  if (c.live) o.downtimeS = c.downtime;
  o.transferredBytes = c.transferred;
  o.setupS = c.setup;
  o.suspendS = c.save;
  o.copyS = c.copy;
  o.resumeS = c.restore;
  return o;
}

struct Stats {
  int n = 0, downN = 0, convergence = 0, convergenceAgree = 0;
  double sumErr = 0, worstErr = 0, sumDownMs = 0, worstDownMs = 0;
  std::vector<double> errs;  // of total time, for the median
  std::map<std::string, std::pair<double, int>> phaseErrS;
};

const char* setName(Case::Set s) {
  return s == Case::Set::kCalibration  ? "calibration"
         : s == Case::Set::kValidation ? "half"
                                       : "larger";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vrm-validate-models: migration models against vrm-qemu-sweep measurements"};
  std::vector<std::string> files;
  double calibrationMib = 128;
  std::string liveModels = "qemu-precopy,liu-refined,liu-base,simple";
  std::string scrModels = "qemu-scr,zhao-scr,simple";
  bool markdown = false, perCase = false, printFits = false;
  double lineRate = 1e9;
  app.add_option("sweeps", files, "CSV files of vrm-qemu-sweep")->required();
  app.add_option("--calibration-memory", calibrationMib, "guest size (MiB) calibrated on")
      ->capture_default_str();
  app.add_option("--live-models", liveModels, "comma-separated")->capture_default_str();
  app.add_option("--scr-models", scrModels, "comma-separated")->capture_default_str();
  app.add_option("--line-rate", lineRate,
                 "bytes/s the path carries unthrottled (QEMU's stop-and-copy); two QEMUs on one "
                 "host over loopback move about 1e9")
      ->capture_default_str();
  app.add_flag("--markdown", markdown, "the summary as a Markdown table");
  app.add_flag("--cases", perCase, "every prediction, case by case");
  app.add_flag("--fits", printFits, "every calibration, as vrmctl calibrate prints it");
  CLI11_PARSE(app, argc, argv);

  std::vector<Run> runs;
  for (const auto& f : files) {
    if (!readSweep(f, runs)) return 2;
  }
  const std::vector<Case> cases = casesOf(runs, calibrationMib * (1 << 20));
  if (cases.empty()) {
    std::fprintf(stderr, "vrm-validate-models: no runs\n");
    return 2;
  }
  auto list = [](const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    std::string m;
    while (std::getline(in, m, ',')) {
      if (!m.empty()) out.push_back(m);
    }
    return out;
  };

  struct Row {
    std::string model, mode, params, set;
    Stats s;
  };
  std::vector<Row> rows;
  if (perCase) {
    std::printf("%-12s %-5s %-11s %-10s %-28s %5s %8s %8s %7s %9s %9s %5s\n", "model", "mode",
                "params", "set", "case", "load", "meas_s", "pred_s", "err%", "meas_ms", "pred_ms",
                "conv");
  }
  for (const bool live : {true, false}) {
    for (const std::string& model : list(live ? liveModels : scrModels)) {
      std::vector<MigrationObservation> calibration;
      for (const Case& c : cases) {
        if (c.live == live && c.set == Case::Set::kCalibration && c.converged) {
          calibration.push_back(observationFor(model, c, true));
        }
      }
      std::map<std::string, std::unique_ptr<MigrationModel>> variants;
      auto defaults = createMigrationModel(model);
      if (!defaults) {
        std::fprintf(stderr, "vrm-validate-models: %s\n", defaults.status().toString().c_str());
        return 2;
      }
      variants["default"] = std::move(*defaults);
      if (calibration.size() >= 2) {
        auto fit = Calibrator().fit(model, calibration);
        if (!fit) {
          std::fprintf(stderr, "vrm-validate-models: calibrate %s: %s\n", model.c_str(),
                       fit.status().toString().c_str());
        } else if (auto m = createCalibratedModel(*fit); m) {
          if (printFits) {
            std::printf("# %s, %s, calibrated on %zu cases\n%s\n", model.c_str(),
                        live ? "live" : "scr", calibration.size(), formatCalibration(*fit).c_str());
          }
          variants["calibrated"] = std::move(*m);
        }
      }
      for (const auto& [params, m] : variants) {
        std::map<Case::Set, Stats> bySet;
        for (const Case& c : cases) {
          if (c.live != live || c.set == Case::Set::kCalibration) continue;
          const MigrationObservation o = observationFor(model, c, false);
          LinkProfile link;
          link.bandwidthBytesPerSec = o.bandwidthBytesPerSec;
          link.lineRateBytesPerSec = lineRate;
          auto e = m->estimate(o.vm, link);
          if (!e) continue;
          Stats& s = bySet[c.set];
          if (live) {
            ++s.convergence;
            s.convergenceAgree += e->converges == c.converged;
          }
          double err = NAN, downMs = NAN;
          if (c.converged && std::isfinite(e->totalTimeS)) {
            err = std::abs(e->totalTimeS - c.total) / c.total;
            ++s.n;
            s.sumErr += err;
            s.errs.push_back(err);
            s.worstErr = std::max(s.worstErr, err);
            if (live && c.downtime && e->converges) {
              downMs = 1000 * std::abs(e->downtimeS - *c.downtime);
              ++s.downN;
              s.sumDownMs += downMs;
              s.worstDownMs = std::max(s.worstDownMs, downMs);
            }
            for (const auto& [name, measured] :
                 {std::pair{"save", c.save}, std::pair{"copy", c.copy},
                  std::pair{"restore", c.restore}}) {
              if (!measured) continue;
              for (const PhaseTime& p : e->phases) {
                const bool same = p.name == name ||
                                  (std::string(name) == "save" && p.name == "suspend") ||
                                  (std::string(name) == "restore" && p.name == "resume");
                if (!same) continue;
                auto& [sum, k] = s.phaseErrS[name];
                sum += std::abs(p.seconds - *measured);
                ++k;
              }
            }
          }
          if (perCase) {
            std::printf(
                "%-12s %-5s %-11s %-10s %-28s %5.1f %8.3f %8.3f %7s %9s %9s %5s\n", model.c_str(),
                live ? "live" : "scr", params.c_str(), setName(c.set), c.key.c_str(), c.load,
                c.total, e->totalTimeS,
                std::isnan(err) ? "-"
                                : std::to_string(static_cast<int>(std::lround(
                                                     100 * (e->totalTimeS - c.total) / c.total)))
                                      .c_str(),
                c.downtime && live ? std::to_string(std::lround(1000 * *c.downtime)).c_str() : "-",
                live ? std::to_string(std::lround(1000 * e->downtimeS)).c_str() : "-",
                !live                         ? "-"
                : e->converges == c.converged ? (c.converged ? "yes" : "no")
                                              : (c.converged ? "MISS" : "MISS-no"));
          }
        }
        for (const auto& [set, s] : bySet) {
          rows.push_back({model, live ? "live" : "scr", params, setName(set), s});
        }
      }
    }
  }

  double loadMin = 1e9, loadMax = 0;
  std::vector<double> loads;
  for (const Case& c : cases) {
    loads.push_back(c.load);
    loadMin = std::min(loadMin, c.load);
    loadMax = std::max(loadMax, c.load);
  }
  auto pct = [](double v) {
    char b[16];
    std::snprintf(b, sizeof b, "%.1f %%", 100 * v);
    return std::string(b);
  };
  auto ms = [](double v) {
    char b[16];
    std::snprintf(b, sizeof b, "%.1f", v);
    return std::string(b);
  };
  if (perCase) std::printf("\n");
  std::printf("%zu cases (%zu runs), load average %.1f-%.1f (median %.1f)\n\n", cases.size(),
              runs.size(), loadMin, loadMax, median(loads));
  if (markdown) {
    std::printf(
        "| model | mode | parameters | validated on | cases | total time error, mean / median / "
        "worst | downtime error (ms), mean / worst | converges as predicted | phases, mean error "
        "(s) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  } else {
    std::printf("%-12s %-5s %-11s %-7s %5s %9s %9s %9s %9s %9s %7s  %s\n", "model", "mode",
                "params", "set", "cases", "mean_err", "median", "worst", "down_ms", "worst_ms",
                "conv", "phases");
  }
  for (const Row& r : rows) {
    const Stats& s = r.s;
    std::string phases;
    for (const auto& [name, sk] : s.phaseErrS) {
      char b[48];
      std::snprintf(b, sizeof b, "%s%s %.2f", phases.empty() ? "" : ", ", name.c_str(),
                    sk.first / sk.second);
      phases += b;
    }
    const std::string mean = s.n ? pct(s.sumErr / s.n) : "-";
    const std::string mid = s.n ? pct(median(s.errs)) : "-";
    const std::string worst = s.n ? pct(s.worstErr) : "-";
    const std::string down = s.downN ? ms(s.sumDownMs / s.downN) : "-";
    const std::string downWorst = s.downN ? ms(s.worstDownMs) : "-";
    const std::string conv =
        s.convergence ? std::to_string(s.convergenceAgree) + "/" + std::to_string(s.convergence)
                      : "-";
    if (markdown) {
      std::printf("| %s | %s | %s | %s | %d | %s / %s / %s | %s / %s | %s | %s |\n",
                  r.model.c_str(), r.mode.c_str(), r.params.c_str(),
                  r.set == "half" ? "validation half" : "larger guests", s.n, mean.c_str(),
                  mid.c_str(), worst.c_str(), down.c_str(), downWorst.c_str(), conv.c_str(),
                  phases.empty() ? "—" : phases.c_str());
    } else {
      std::printf("%-12s %-5s %-11s %-7s %5d %9s %9s %9s %9s %9s %7s  %s\n", r.model.c_str(),
                  r.mode.c_str(), r.params.c_str(), r.set.c_str(), s.n, mean.c_str(), mid.c_str(),
                  worst.c_str(), down.c_str(), downWorst.c_str(), conv.c_str(), phases.c_str());
    }
  }
  return 0;
}
