// predict, calibrate: the migration models, offline (no vrmd).
//
// predict maps its flags onto a VmProfile, a LinkProfile and the model's parameter keys; a flag
// the model does not read is an error (exit 2) rather than silently ignored, so that nobody
// believes a figure depends on an input it never saw. calibrate fits a model to a CSV of
// observed migrations and prints the parameters file that predict --params reads back.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "commands.h"
#include "vrm/planner/calibration.h"
#include "vrm/planner/dirty_log.h"
#include "vrm/planner/migration_model.h"
#include "vrm/planner/online_calibration.h"
#include "vrm/protocol/units.h"

namespace vrm::vrmctl {
namespace {

using nlohmann::json;
using planner::Calibration;

// The VM and link flags, and which models read each (README "Migration models"). A model missing
// from this table (one registered after it was written) accepts every flag.
const std::map<std::string, std::set<std::string>>& profileFlagsByModel() {
  static const std::map<std::string, std::set<std::string>> kFlags = {
      {"simple", {"--nonzero-memory"}},
      {"zhao-scr", {"--modified-memory", "--workload", "--disk-size"}},
      {"liu-base", {"--dirty-rate"}},
      {"liu-refined", {"--dirty-rate"}},
      {"qemu-precopy", {"--nonzero-memory", "--dirty-rate", "--wws"}},
      {"qemu-scr", {"--nonzero-memory"}},
      {"akoush-bounds", {}},
      {"akoush-avg", {"--dirty-rate", "--wws"}},
      {"akoush-hist", {"--wws", "--dirty-log"}},
      {"tsakalozos-disk", {"--disk-size", "--disk-dirty-rate"}},
  };
  return kFlags;
}

// Model-parameter flags: the keys each may set, the first one the model has wins.
struct ParamFlag {
  const char* flag;
  std::vector<const char*> keys;
  enum Kind { kPages, kCount, kDuration } kind;
};

const std::vector<ParamFlag>& paramFlags() {
  static const std::vector<ParamFlag> kFlags = {
      {"--threshold", {"threshold_pages", "stop_pages"}, ParamFlag::kPages},
      {"--max-rounds", {"max_rounds", "max_iterations"}, ParamFlag::kCount},
      {"--resume-time", {"resume_time_s"}, ParamFlag::kDuration},
      {"--downtime-limit", {"downtime_limit_s"}, ParamFlag::kDuration},
      {"--vmm-time", {"vmm_time_s"}, ParamFlag::kDuration},
      {"--deadline", {"deadline_s"}, ParamFlag::kDuration},
  };
  return kFlags;
}

struct PredictArgs {
  std::string model;
  std::map<std::string, std::string> values;  // flag -> text, for every flag given
  std::string params;
  double quantile = 0;
};

Result<std::string> readFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid(std::string(what) + ": cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

Status flagError(const std::string& flag, const Status& s) {
  return Status::invalid(flag + ": " + s.message());
}

Result<double> seconds(const std::string& flag, const std::string& text) {
  auto ns = parseDurationNs(text);
  if (!ns) return flagError(flag, ns.status());
  return static_cast<double>(*ns) / 1e9;
}

Result<double> wholeNumber(const std::string& flag, const std::string& text, bool integer) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < 0 ||
      (integer && v != std::floor(v))) {
    return Status::invalid(flag + ": '" + text + "' is not " +
                           (integer ? "a whole number >= 0" : "a page count >= 0"));
  }
  return v;
}

// --- the parameters file as JSON (calibrate --json), read back by predict --params -----------

json calibrationJson(const Calibration& c) {
  json quantiles = json::object();
  auto addQuantiles = [&](const char* metric, const std::vector<double>& sorted) {
    if (sorted.empty()) return;
    json q = json::object();
    for (double level : planner::kReportedQuantiles) {
      q["p" + std::to_string(static_cast<int>(std::lround(level * 100)))] =
          planner::residualQuantile(sorted, level);
    }
    quantiles[metric] = q;
  };
  addQuantiles("total_time_s", c.totalTimeResidualsS);
  addQuantiles("downtime_s", c.downtimeResidualsS);
  json params = json::object();
  for (const auto& [k, v] : c.parameters) params[k] = v;
  return json{
      {"model", c.model},
      {"observations", c.observations},
      {"r2_total_time", c.r2TotalTime ? number(*c.r2TotalTime) : json(nullptr)},
      {"r2_downtime", c.r2Downtime ? number(*c.r2Downtime) : json(nullptr)},
      {"rmse_total_time_s", c.rmseTotalTimeS},
      {"overhead_s", c.overheadS},
      {"goodput_factor", c.goodputFactor},
      {"relative_error", c.relativeError},
      {"parameters", params},
      {"residual_quantiles", quantiles},
      {"residuals",
       {{"total_time_s", c.totalTimeResidualsS}, {"downtime_s", c.downtimeResidualsS}}},
      {"notes", c.notes},
  };
}

Result<Calibration> calibrationFromJson(const std::string& text) {
  try {
    const json j = json::parse(text);
    Calibration c;
    c.model = j.at("model").get<std::string>();
    c.observations = j.value("observations", 0);
    if (j.contains("r2_total_time") && j["r2_total_time"].is_number()) {
      c.r2TotalTime = j["r2_total_time"].get<double>();
    }
    if (j.contains("r2_downtime") && j["r2_downtime"].is_number()) {
      c.r2Downtime = j["r2_downtime"].get<double>();
    }
    c.rmseTotalTimeS = j.value("rmse_total_time_s", 0.0);
    c.overheadS = j.value("overhead_s", 0.0);
    c.goodputFactor = j.value("goodput_factor", 1.0);
    c.relativeError = j.value("relative_error", 0.1);
    if (j.contains("parameters")) {
      for (const auto& [k, v] : j["parameters"].items()) c.parameters[k] = v.get<double>();
    }
    if (j.contains("residuals")) {
      const json& r = j["residuals"];
      c.totalTimeResidualsS = r.value("total_time_s", std::vector<double>{});
      c.downtimeResidualsS = r.value("downtime_s", std::vector<double>{});
      std::sort(c.totalTimeResidualsS.begin(), c.totalTimeResidualsS.end());
      std::sort(c.downtimeResidualsS.begin(), c.downtimeResidualsS.end());
    }
    return c;
  } catch (const json::exception& e) {
    return Status::invalid(std::string("params: not a calibration JSON object: ") + e.what());
  }
}

Result<Calibration> loadParams(const std::string& path) {
  auto text = readFile(path, "--params");
  if (!text) return text.status();
  const auto first = text->find_first_not_of(" \t\r\n");
  auto c = first != std::string::npos && (*text)[first] == '{' ? calibrationFromJson(*text)
                                                               : planner::parseCalibration(*text);
  if (!c) return Status::invalid("--params " + path + ": " + c.status().message());
  return c;
}

// --- predict -----------------------------------------------------------------------------------

void printEstimate(const std::string& model, const planner::MigrationEstimate& e,
                   const planner::ModelParameters& params, std::optional<double> quantile) {
  auto secondsText = [](double s) {
    if (!std::isfinite(s)) return std::string("never (does not converge)");
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.3f s", s);
    return std::string(buf);
  };
  auto row = [](const std::string& label, const std::string& value) {
    std::printf("  %-24s %s\n", label.c_str(), value.c_str());
  };
  std::printf("%s\n", model.c_str());
  std::string total = secondsText(e.totalTimeS);
  if (quantile) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "  (p%g; mean %s)", *quantile * 100,
                  secondsText(e.extras.count("total_time_mean_s") ? e.extras.at("total_time_mean_s")
                                                                  : e.totalTimeS)
                      .c_str());
    total += buf;
  }
  row("total time", total);
  row("downtime", secondsText(e.downtimeS));
  row("transferred", std::isfinite(e.transferredBytes) ? formatBytes(e.transferredBytes)
                                                       : std::string("unbounded"));
  row("rounds", std::to_string(e.rounds));
  row("converges", e.converges ? "yes" : "no");
  row("feasible", e.feasible ? "yes" : "no");
  if (e.energyJ) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f J", *e.energyJ);
    row("energy", buf);
  }
  std::printf("\n  %-24s %12s\n", "phase", "seconds");
  for (const auto& p : e.phases) std::printf("  %-24s %12.3f\n", p.name.c_str(), p.seconds);
  if (!e.extras.empty()) {
    std::printf("\n  %-24s %12s\n", "figure", "value");
    for (const auto& [k, v] : e.extras) std::printf("  %-24s %12.6g\n", k.c_str(), v);
  }
  std::printf("\n  %-24s %12s\n", "parameter", "value");
  for (const auto& [k, v] : params) std::printf("  %-24s %12.6g\n", k.c_str(), v);
}

int runPredict(const Context& ctx, const PredictArgs& a, bool quantileGiven) {
  auto given = [&](const char* flag) { return a.values.count(flag) > 0; };
  // The model and its parameters: defaults, then the params file, then flags.
  Calibration cal;
  cal.model = a.model;
  if (!a.params.empty()) {
    auto loaded = loadParams(a.params);
    if (!loaded) return ctx.fail(loaded.status());
    if (loaded->model != a.model) {
      return ctx.fail(Status::invalid("--params " + a.params + " calibrates model '" +
                                      loaded->model + "', not '" + a.model + "'"));
    }
    cal = std::move(*loaded);
  }
  auto defaults = planner::createMigrationModel(a.model, cal.parameters);
  if (!defaults) return ctx.fail(defaults.status());
  const planner::ModelParameters keys = (*defaults)->parameters();

  // VM and link flags the model does not read.
  auto known = profileFlagsByModel().find(a.model);
  if (known != profileFlagsByModel().end()) {
    for (const char* flag : {"--nonzero-memory", "--dirty-rate", "--wws", "--modified-memory",
                             "--workload", "--dirty-log", "--disk-size", "--disk-dirty-rate"}) {
      if (given(flag) && !known->second.count(flag)) {
        return ctx.fail(Status::invalid("model '" + a.model + "' does not take " + flag));
      }
    }
  }
  for (const ParamFlag& pf : paramFlags()) {
    if (!given(pf.flag)) continue;
    const char* key = nullptr;
    for (const char* k : pf.keys) {
      if (keys.count(k)) {
        key = k;
        break;
      }
    }
    if (!key) {
      return ctx.fail(Status::invalid("model '" + a.model + "' does not take " + pf.flag));
    }
    const std::string& text = a.values.at(pf.flag);
    auto v = pf.kind == ParamFlag::kDuration
                 ? seconds(pf.flag, text)
                 : wholeNumber(pf.flag, text, pf.kind == ParamFlag::kCount);
    if (!v) return ctx.fail(v.status());
    cal.parameters[key] = *v;
  }

  planner::VmProfile vm;
  planner::LinkProfile link;
  auto size = [&](const char* flag, double& out) -> Status {
    if (!given(flag)) return Status::ok();
    auto v = parseBytes(a.values.at(flag));
    if (!v) return flagError(flag, v.status());
    out = static_cast<double>(*v);
    return Status::ok();
  };
  auto rate = [&](const char* flag, double& out) -> Status {
    if (!given(flag)) return Status::ok();
    auto v = parseRateBytesPerSec(a.values.at(flag));
    if (!v) return flagError(flag, v.status());
    out = *v;
    return Status::ok();
  };
  auto duration = [&](const char* flag, double& out) -> Status {
    if (!given(flag)) return Status::ok();
    auto v = seconds(flag, a.values.at(flag));
    if (!v) return v.status();
    out = *v;
    return Status::ok();
  };
  if (!given("--memory")) {
    // Expression 1 does not involve memory, but every profile needs a positive size.
    if (a.model != "tsakalozos-disk") return ctx.fail(Status::invalid("--memory is required"));
    vm.memoryBytes = 1;
  }
  if (!given("--bandwidth")) return ctx.fail(Status::invalid("--bandwidth is required"));
  for (Status s :
       {size("--memory", vm.memoryBytes), size("--nonzero-memory", vm.nonzeroMemoryBytes),
        size("--wws", vm.writableWorkingSetBytes),
        size("--modified-memory", vm.modifiedMemoryBytes), size("--disk-size", vm.diskBytes),
        rate("--bandwidth", link.bandwidthBytesPerSec),
        rate("--dirty-rate", vm.dirtyRateBytesPerSec),
        rate("--disk-dirty-rate", vm.diskDirtyRateBytesPerSec),
        rate("--line-rate", link.lineRateBytesPerSec),
        duration("--pre-overhead", link.preOverheadS),
        duration("--post-overhead", link.postOverheadS)}) {
    if (!s) return ctx.fail(s);
  }
  if (!(link.bandwidthBytesPerSec > 0)) {
    return ctx.fail(Status::invalid("--bandwidth must be positive"));
  }
  if (a.model == "akoush-hist" && !given("--dirty-log")) {
    return ctx.fail(Status::invalid("model 'akoush-hist' needs --dirty-log FILE"));
  }
  if (given("--workload")) vm.workload = a.values.at("--workload");
  if (given("--dirty-log")) {
    auto text = readFile(a.values.at("--dirty-log"), "--dirty-log");
    if (!text) return ctx.fail(text.status());
    auto log = planner::parseDirtyLog(*text);
    if (!log) return ctx.fail(flagError("--dirty-log " + a.values.at("--dirty-log"), log.status()));
    vm.dirtyLog = std::move(*log);
  }

  std::optional<double> quantile;
  if (quantileGiven) quantile = a.quantile;
  auto model = planner::createCalibratedModel(cal, quantile);
  if (!model) return ctx.fail(model.status());
  auto e = (*model)->estimate(vm, link);
  if (!e) return ctx.fail(e.status());

  planner::ModelParameters inForce = (*model)->parameters();
  if (ctx.json) {
    json j = {{"model", a.model},
              {"total_time_s", number(e->totalTimeS)},
              {"downtime_s", number(e->downtimeS)},
              {"transferred_bytes", number(e->transferredBytes)},
              {"rounds", e->rounds},
              {"converges", e->converges},
              {"feasible", e->feasible}};
    if (e->energyJ) j["energy_j"] = number(*e->energyJ);
    for (const auto& [k, v] : e->extras) j[k] = number(v);
    // Tsakalozos leaves sync_time_s out when the sync never ends; say so explicitly.
    if (a.model == "tsakalozos-disk" && !j.contains("sync_time_s")) j["sync_time_s"] = nullptr;
    json phases = json::array();
    for (const auto& p : e->phases)
      phases.push_back({{"name", p.name}, {"seconds", number(p.seconds)}});
    j["phases"] = phases;
    json params = json::object();
    for (const auto& [k, v] : inForce) params[k] = number(v);
    j["parameters"] = params;
    std::cout << j.dump(2) << "\n";
  } else {
    printEstimate(a.model, *e, inForce, quantile);
  }
  return kExitOk;
}

// --- calibrate ---------------------------------------------------------------------------------

int runCalibrate(const Context& ctx, const std::string& modelName, const std::string& path,
                 double relativeError) {
  // An unknown model is reported before the file is read, whatever the file holds.
  if (auto model = planner::createMigrationModel(modelName); !model) {
    return ctx.fail(model.status());
  }
  auto text = readFile(path, "--observations");
  if (!text) return ctx.fail(text.status());
  auto observations = planner::parseObservationsCsv(*text);
  if (!observations) {
    return ctx.fail(Status::invalid(path + ": " + observations.status().message()));
  }
  planner::CalibratorOptions options;
  options.relativeError = relativeError;
  auto c = planner::Calibrator(options).fit(modelName, *observations);
  if (!c) return ctx.fail(c.status());
  if (ctx.json) {
    std::cout << calibrationJson(*c).dump(2) << "\n";
  } else {
    std::cout << planner::formatCalibration(*c);
  }
  return kExitOk;
}

// calibrate --report: the observations replayed in order through the online calibrator vrmd
// runs (the same refit policy), printing the error of the model in force on each observation
// before it was fitted on it, summarised over the last N.
struct ReportArgs {
  std::size_t last = 50;
  std::size_t minObservations = 5;
  std::size_t refitEvery = 10;
};

int runCalibrateReport(const Context& ctx, const std::string& modelName, const std::string& path,
                       const ReportArgs& r) {
  auto text = readFile(path, "--observations");
  if (!text) return ctx.fail(text.status());
  auto observations = planner::parseObservationsCsv(*text);
  if (!observations) {
    return ctx.fail(Status::invalid(path + ": " + observations.status().message()));
  }
  if (r.last == 0) return ctx.fail(Status::invalid("--last must be at least 1"));
  planner::OnlineCalibrationOptions options;
  options.minObservations = r.minObservations;
  options.refitEvery = r.refitEvery;
  options.heldOutWindow = r.last;
  options.keepLatest = std::max<std::size_t>(500, r.minObservations);
  auto online = planner::OnlineCalibrator::create(modelName, options);
  if (!online) return ctx.fail(online.status());
  for (const auto& o : *observations) (*online)->observe(o);
  const planner::HeldOutSummary s = (*online)->summary();
  const auto& held = (*online)->heldOut();
  if (ctx.json) {
    json predictions = json::array();
    for (const auto& h : held) {
      json p = {{"observed_s", h.observedS},
                {"predicted_s", h.predictedS},
                {"from_defaults", h.fromDefaults}};
      if (h.observedDowntimeS) {
        p["observed_downtime_s"] = *h.observedDowntimeS;
        p["predicted_downtime_s"] = *h.predictedDowntimeS;
      }
      for (const auto& [name, op] : h.phases) {
        p["phases"][name] = {{"observed_s", op.first}, {"predicted_s", op.second}};
      }
      predictions.push_back(p);
    }
    json phases = json::object();
    for (const auto& [name, v] : s.meanAbsPhaseErrorS) phases[name] = v;
    std::cout << json{{"model", modelName},
                      {"observations", observations->size()},
                      {"fits", (*online)->fits()},
                      {"held_out", s.count},
                      {"mean_abs_relative_error", s.meanAbsRelativeError},
                      {"worst_abs_relative_error", s.worstAbsRelativeError},
                      {"mean_abs_error_s", s.meanAbsErrorS},
                      {"mean_abs_downtime_error_s",
                       number(s.downtimeCount ? s.meanAbsDowntimeErrorS : NAN)},
                      {"worst_abs_downtime_error_s",
                       number(s.downtimeCount ? s.worstAbsDowntimeErrorS : NAN)},
                      {"mean_abs_phase_error_s", phases},
                      {"predictions", predictions}}
                     .dump(2)
              << "\n";
    return kExitOk;
  }
  std::printf("%s: %zu observations replayed, %zu fits (first after %zu, then every %zu)\n",
              modelName.c_str(), observations->size(), (*online)->fits(), r.minObservations,
              r.refitEvery);
  std::printf("\n  %-4s %10s %10s %8s %12s %12s  %s\n", "#", "observed", "predicted", "error",
              "down_obs", "down_pred", "by");
  std::size_t i = observations->size() - held.size();
  for (const auto& h : held) {
    std::printf(
        "  %-4zu %9.3fs %9.3fs %7.1f%% %12s %12s  %s\n", ++i, h.observedS, h.predictedS,
        100 * (h.observedS - h.predictedS) / h.predictedS,
        h.observedDowntimeS ? formatDuration(secondsToNs(*h.observedDowntimeS)).c_str() : "-",
        h.predictedDowntimeS ? formatDuration(secondsToNs(*h.predictedDowntimeS)).c_str() : "-",
        h.fromDefaults ? "defaults" : "calibrated");
  }
  std::printf("\nheld-out error over the last %zu (not fitted on when predicted):\n", s.count);
  std::printf("  total time  mean %.1f %%, worst %.1f %%, mean %.3f s\n",
              100 * s.meanAbsRelativeError, 100 * s.worstAbsRelativeError, s.meanAbsErrorS);
  if (s.downtimeCount) {
    std::printf("  downtime    mean %.1f ms, worst %.1f ms (%zu observations)\n",
                1000 * s.meanAbsDowntimeErrorS, 1000 * s.worstAbsDowntimeErrorS, s.downtimeCount);
  }
  for (const auto& [name, v] : s.meanAbsPhaseErrorS) {
    std::printf("  %-11s mean %.3f s\n", name.c_str(), v);
  }
  if (!(*online)->lastError().empty()) {
    std::printf("last fit failed: %s\n", (*online)->lastError().c_str());
  }
  return kExitOk;
}

}  // namespace

void addModelCommands(CLI::App& app, Context& ctx) {
  std::string names;
  for (const auto& n : planner::migrationModelNames()) names += (names.empty() ? "" : ", ") + n;

  auto a = std::make_shared<PredictArgs>();
  auto* predict = app.add_subcommand(
      "predict",
      "predict one VM's migration with a model (offline)\n\n"
      "Sizes: B, KB, MB, GB (10^3), KiB, MiB, GiB (2^10). Rates: bit/s with SI prefixes "
      "(Mbit/s, Gbit/s), MB/s, MiB/s, pages/s. Durations: ms, s, min, h.");
  predict->add_option("--model", a->model, "one of: " + names)->required();
  struct Flag {
    const char* name;
    const char* help;
  };
  const Flag flags[] = {
      {"--memory", "VM memory size (all models; optional for tsakalozos-disk)"},
      {"--nonzero-memory", "resident non-zero memory (simple, qemu-precopy, qemu-scr)"},
      {"--bandwidth", "migration goodput (required)"},
      {"--dirty-rate", "memory dirty rate (liu-*, qemu-precopy, akoush-avg)"},
      {"--wws", "writable working set size (qemu-precopy, akoush-avg, akoush-hist)"},
      {"--modified-memory", "memory modified since the last sync (zhao-scr)"},
      {"--workload", "cpu, memory or other: recovery time (zhao-scr)"},
      {"--pre-overhead", "setup time before any byte moves"},
      {"--post-overhead", "commit time after the last byte"},
      {"--line-rate", "what the path carries unthrottled (qemu-precopy's stop-and-copy)"},
      {"--resume-time", "resume_time_s (liu-*, zhao-scr)"},
      {"--threshold", "stop threshold in pages: threshold_pages (liu-*), stop_pages (akoush)"},
      {"--max-rounds", "max_rounds (liu-*), max_iterations (akoush-avg/hist)"},
      {"--downtime-limit", "downtime_limit_s (qemu-precopy)"},
      {"--dirty-log", "FILE: page-dirtying log (akoush-hist)"},
      {"--disk-size", "local disk to synchronise (tsakalozos-disk, zhao-scr)"},
      {"--disk-dirty-rate", "disk write rate during the sync (tsakalozos-disk)"},
      {"--vmm-time", "vmm_time_s (tsakalozos-disk)"},
      {"--deadline", "deadline_s from the start (tsakalozos-disk)"},
  };
  for (const Flag& f : flags) {
    const std::string name = f.name;
    predict->add_option_function<std::string>(
        name, [a, name](const std::string& v) { a->values[name] = v; }, f.help);
  }
  predict->add_option("--params", a->params, "FILE: calibrated parameters (vrmctl calibrate)");
  predict->add_option("--quantile", a->quantile,
                      "predict at this quantile in (0, 1), e.g. 0.99, from the calibration's "
                      "residuals (else a 10% relative error)");
  predict->add_flag("--json", ctx.json, "machine-readable output");
  predict->callback(
      [&ctx, a, predict] { ctx.exitCode = runPredict(ctx, *a, predict->count("--quantile") > 0); });

  struct CalibrateArgs {
    std::string model, observations;
    double relativeError = 0.1;
    bool report = false;
    ReportArgs replay;
  };
  auto c = std::make_shared<CalibrateArgs>();
  auto* calibrate = app.add_subcommand(
      "calibrate",
      "fit a model's parameters to observed migrations (offline); the output is a --params "
      "file\n\nCSV columns (units in the names; any order; empty = not measured):\n  " +
          std::string(planner::kObservationsCsvHeader) +
          "\nRequired: memory_bytes, bandwidth_bytes_per_sec, total_time_s.");
  calibrate->add_option("--model", c->model, "one of: " + names)->required();
  calibrate->add_option("--observations", c->observations, "CSV FILE of observed migrations")
      ->required();
  calibrate
      ->add_option("--relative-error", c->relativeError,
                   "relative error for quantiles without residuals")
      ->capture_default_str();
  calibrate->add_flag("--report", c->report,
                      "replay the observations in order through vrmd's online calibration and "
                      "report the error on the last N it had not been fitted on");
  calibrate->add_option("--last", c->replay.last, "--report: N")->capture_default_str();
  calibrate->add_option("--min-observations", c->replay.minObservations, "--report: first fit")
      ->capture_default_str();
  calibrate->add_option("--refit-every", c->replay.refitEvery, "--report: observations per refit")
      ->capture_default_str();
  calibrate->add_flag("--json", ctx.json, "machine-readable output");
  calibrate->callback([&ctx, c] {
    ctx.exitCode = c->report ? runCalibrateReport(ctx, c->model, c->observations, c->replay)
                             : runCalibrate(ctx, c->model, c->observations, c->relativeError);
  });
}

}  // namespace vrm::vrmctl
