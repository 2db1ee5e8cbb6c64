// Text formats of calibration.h: the observations CSV and the parameters file. Pure functions
// over strings; the callers read and write the files.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <set>
#include <string>

#include "models.h"
#include "vrm/planner/calibration.h"

namespace vrm::planner {
namespace {

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Splits `text` into lines, dropping a trailing '\r'; numbering starts at 1.
std::vector<std::string_view> lines(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    start = end + 1;
  }
  return out;
}

// A whole-string finite number, or nullopt.
std::optional<double> number(std::string_view s) {
  std::string text(trim(s));
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return v;
}

std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// --- observations CSV -------------------------------------------------------------------------

using Setter = std::function<void(MigrationObservation&, double)>;

struct Column {
  const char* name;
  bool required;
  Setter set;  // null for the text column "workload"
};

const std::vector<Column>& columns() {
  static const std::vector<Column> kColumns = {
      {"memory_bytes", true, [](auto& o, double v) { o.vm.memoryBytes = v; }},
      {"nonzero_memory_bytes", false, [](auto& o, double v) { o.vm.nonzeroMemoryBytes = v; }},
      {"dirty_rate_bytes_per_sec", false, [](auto& o, double v) { o.vm.dirtyRateBytesPerSec = v; }},
      {"wws_bytes", false, [](auto& o, double v) { o.vm.writableWorkingSetBytes = v; }},
      {"modified_memory_bytes", false, [](auto& o, double v) { o.vm.modifiedMemoryBytes = v; }},
      {"disk_bytes", false, [](auto& o, double v) { o.vm.diskBytes = v; }},
      {"disk_dirty_rate_bytes_per_sec", false,
       [](auto& o, double v) { o.vm.diskDirtyRateBytesPerSec = v; }},
      {"workload", false, nullptr},
      {"bandwidth_bytes_per_sec", true, [](auto& o, double v) { o.bandwidthBytesPerSec = v; }},
      {"total_time_s", true, [](auto& o, double v) { o.totalTimeS = v; }},
      {"downtime_s", false, [](auto& o, double v) { o.downtimeS = v; }},
      {"transferred_bytes", false, [](auto& o, double v) { o.transferredBytes = v; }},
      {"suspend_s", false, [](auto& o, double v) { o.suspendS = v; }},
      {"copy_s", false, [](auto& o, double v) { o.copyS = v; }},
      {"resume_s", false, [](auto& o, double v) { o.resumeS = v; }},
      {"energy_j", false, [](auto& o, double v) { o.energyJ = v; }},
      {"setup_s", false, [](auto& o, double v) { o.setupS = v; }},
  };
  return kColumns;
}

Status csvError(int line, const std::string& reason) {
  return Status::invalid("observations line " + std::to_string(line) + ": " + reason);
}

std::vector<std::string_view> splitCommas(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = line.find(',', start);
    out.push_back(
        trim(line.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

// --- parameters file --------------------------------------------------------------------------

std::string quantileKey(const char* metric, double q) {
  return std::string(metric) + "_residual_p" +
         std::to_string(static_cast<int>(std::lround(q * 100))) + "_s";
}

}  // namespace

Result<std::vector<MigrationObservation>> parseObservationsCsv(std::string_view text) {
  const std::vector<std::string_view> all = lines(text);
  std::vector<const Column*> header;
  int headerLine = 0;
  std::vector<MigrationObservation> out;
  for (std::size_t n = 0; n < all.size(); ++n) {
    const int lineNo = static_cast<int>(n + 1);
    const std::string_view line = trim(all[n]);
    if (line.empty() || line.front() == '#') continue;
    const std::vector<std::string_view> fields = splitCommas(line);
    if (header.empty()) {
      headerLine = lineNo;
      std::set<std::string_view> seen;
      for (std::string_view name : fields) {
        auto it = std::find_if(columns().begin(), columns().end(),
                               [&](const Column& c) { return name == c.name; });
        if (it == columns().end()) {
          return csvError(lineNo, "unknown column '" + std::string(name) +
                                      "' (known: " + kObservationsCsvHeader + ")");
        }
        if (!seen.insert(name).second) {
          return csvError(lineNo, "column '" + std::string(name) + "' appears twice");
        }
        header.push_back(&*it);
      }
      for (const Column& c : columns()) {
        if (c.required && !seen.count(c.name)) {
          return csvError(lineNo, "missing required column '" + std::string(c.name) + "'");
        }
      }
      continue;
    }
    if (fields.size() != header.size()) {
      return csvError(lineNo, "expected " + std::to_string(header.size()) + " fields, got " +
                                  std::to_string(fields.size()));
    }
    MigrationObservation o;
    o.line = lineNo;
    for (std::size_t k = 0; k < fields.size(); ++k) {
      const Column& c = *header[k];
      if (fields[k].empty()) {
        if (c.required) return csvError(lineNo, std::string(c.name) + " is empty");
        continue;
      }
      if (!c.set) {
        o.vm.workload = std::string(fields[k]);
        continue;
      }
      const std::optional<double> v = number(fields[k]);
      if (!v || !std::isfinite(*v) || *v < 0) {
        return csvError(lineNo, std::string(c.name) + " '" + std::string(fields[k]) +
                                    "' is not a finite number >= 0");
      }
      c.set(o, *v);
    }
    LinkProfile link;
    link.bandwidthBytesPerSec = o.bandwidthBytesPerSec;
    if (Status s = validateProfiles(o.vm, link); !s) return csvError(lineNo, s.message());
    if (o.vm.modifiedMemoryBytes > o.vm.memoryBytes) {
      return csvError(lineNo, "modified memory exceeds memory size");
    }
    out.push_back(std::move(o));
  }
  if (header.empty()) return Status::invalid("observations: no header line");
  if (out.empty()) return csvError(headerLine, "header but no observations");
  return out;
}

std::string formatCalibration(const Calibration& c) {
  std::string out = "# vrm calibrated parameters for model " + c.model + ", fitted on " +
                    std::to_string(c.observations) + " observation(s).\n";
  out += "# Read back with: vrmctl predict --model " + c.model + " --params FILE ...\n";
  for (const std::string& note : c.notes) out += "# " + note + "\n";
  auto line = [&](const std::string& key, const std::string& value) {
    out += key + " = " + value + "\n";
  };
  line("model", c.model);
  line("observations", std::to_string(c.observations));
  if (c.r2TotalTime) line("r2_total_time", exact(*c.r2TotalTime));
  if (c.r2Downtime) line("r2_downtime", exact(*c.r2Downtime));
  line("rmse_total_time_s", exact(c.rmseTotalTimeS));
  line("overhead_s", exact(c.overheadS));
  line("goodput_factor", exact(c.goodputFactor));
  line("relative_error", exact(c.relativeError));
  for (const auto& [key, value] : c.parameters) line(key, exact(value));
  auto residuals = [&](const char* metric, const std::vector<double>& sorted,
                       const std::map<double, double>& fixed) {
    if (sorted.empty()) {
      for (const auto& [q, v] : fixed) line(quantileKey(metric, q), exact(v));
      return;
    }
    for (double q : kReportedQuantiles)
      line(quantileKey(metric, q), exact(residualQuantile(sorted, q)));
    std::string list;
    for (double r : sorted) list += (list.empty() ? "" : " ") + exact(r);
    line(std::string(metric) + "_residuals_s", list);
  };
  residuals("total_time", c.totalTimeResidualsS, c.totalTimeQuantilesS);
  residuals("downtime", c.downtimeResidualsS, c.downtimeQuantilesS);
  return out;
}

Result<Calibration> parseCalibration(std::string_view text) {
  Calibration c;
  c.observations = 0;
  std::set<std::string> seen;
  const std::vector<std::string_view> all = lines(text);
  for (std::size_t n = 0; n < all.size(); ++n) {
    auto fail = [&](const std::string& reason) {
      return Status::invalid("params line " + std::to_string(n + 1) + ": " + reason);
    };
    const std::string_view line = trim(all[n]);
    if (line.empty() || line.front() == '#') continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) return fail("expected 'key = value'");
    const std::string key(trim(line.substr(0, eq)));
    const std::string_view value = trim(line.substr(eq + 1));
    if (key.empty()) return fail("empty key");
    if (!seen.insert(key).second) return fail("key '" + key + "' appears twice");
    if (key == "model") {
      if (value.empty()) return fail("empty model name");
      c.model = std::string(value);
      continue;
    }
    if (key == "total_time_residuals_s" || key == "downtime_residuals_s") {
      std::vector<double>& list =
          key == "total_time_residuals_s" ? c.totalTimeResidualsS : c.downtimeResidualsS;
      std::size_t start = 0;
      while (start < value.size()) {
        std::size_t end = value.find(' ', start);
        if (end == std::string_view::npos) end = value.size();
        if (end > start) {
          const std::optional<double> v = number(value.substr(start, end - start));
          if (!v || !std::isfinite(*v))
            return fail(key + ": '" + std::string(value.substr(start, end - start)) +
                        "' is not a number");
          list.push_back(*v);
        }
        start = end + 1;
      }
      std::sort(list.begin(), list.end());
      continue;
    }
    const std::optional<double> v = number(value);
    // nan is accepted so that files written by hand can leave a figure undefined.
    if (!v) return fail(key + ": '" + std::string(value) + "' is not a number");
    const bool finite = std::isfinite(*v);
    auto needFinite = [&]() -> Status {
      return finite ? Status::ok() : fail(key + " must be a finite number");
    };
    if (key == "observations") {
      if (!finite || *v < 0 || *v != std::floor(*v) ||
          *v > static_cast<double>(std::numeric_limits<int>::max())) {
        return fail("observations must be a count");
      }
      c.observations = static_cast<int>(*v);
    } else if (key == "r2_total_time") {
      if (finite) c.r2TotalTime = *v;
    } else if (key == "r2_downtime") {
      if (finite) c.r2Downtime = *v;
    } else if (key == "rmse_total_time_s") {
      if (Status s = needFinite(); !s) return s;
      c.rmseTotalTimeS = *v;
    } else if (key == "overhead_s") {
      if (!finite || *v < 0) return fail("overhead_s must be >= 0");
      c.overheadS = *v;
    } else if (key == "goodput_factor") {
      if (!finite || *v <= 0) return fail("goodput_factor must be > 0");
      c.goodputFactor = *v;
    } else if (key == "relative_error") {
      if (!finite || *v < 0) return fail("relative_error must be >= 0");
      c.relativeError = *v;
    } else if (key.rfind("total_time_residual_p", 0) == 0 ||
               key.rfind("downtime_residual_p", 0) == 0) {
      const bool total = key[0] == 't';
      const std::size_t at = key.find("_p") + 2;
      const std::size_t suffix = key.rfind("_s");
      const std::optional<double> level =
          suffix > at ? number(std::string_view(key).substr(at, suffix - at)) : std::nullopt;
      if (!level || !(*level > 0 && *level < 100) || suffix + 2 != key.size()) {
        return fail("'" + key +
                    "' is not a residual quantile key (e.g. total_time_residual_p99_s)");
      }
      if (Status s = needFinite(); !s) return s;
      (total ? c.totalTimeQuantilesS : c.downtimeQuantilesS)[*level / 100] = *v;
    } else {
      if (Status s = needFinite(); !s) return s;
      c.parameters[key] = *v;  // a model key; createMigrationModel rejects unknown ones
    }
  }
  if (c.model.empty()) return Status::invalid("params: no 'model = NAME' line");
  // The quantile lines written next to the residual lists are derived; the lists win.
  if (!c.totalTimeResidualsS.empty()) c.totalTimeQuantilesS.clear();
  if (!c.downtimeResidualsS.empty()) c.downtimeQuantilesS.clear();
  return c;
}

}  // namespace vrm::planner
