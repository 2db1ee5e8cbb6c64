// Dirty-log text parser (format in vrm/planner/dirty_log.h).
#include "vrm/planner/dirty_log.h"

#include <charconv>
#include <cmath>
#include <optional>

namespace vrm::planner {
namespace {

std::string_view trim(std::string_view s) {
  const auto notSpace = [](char c) { return c != ' ' && c != '\t' && c != '\r' && c != '\v'; };
  while (!s.empty() && !notSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && !notSpace(s.back())) s.remove_suffix(1);
  return s;
}

// The whole of `s` as a finite number, or nothing.
std::optional<double> parseNumber(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

}  // namespace

Result<DirtyLog> parseDirtyLog(std::string_view text, DirtyLogError* error) {
  auto fail = [error](int line, std::string reason) -> Status {
    std::string message = line > 0 ? "dirty log line " + std::to_string(line) + ": " + reason
                                   : "dirty log: " + reason;
    if (error) *error = DirtyLogError{line, std::move(reason)};
    return Status::invalid(std::move(message));
  };

  DirtyLog log;
  bool sawInterval = false;
  int lineNo = 0;
  while (!text.empty() || lineNo == 0) {
    ++lineNo;
    const size_t eol = text.find('\n');
    const std::string_view raw = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    const std::string_view line = trim(raw);
    if (line.empty()) continue;
    if (line.front() == '#') {
      std::string_view body = trim(line.substr(1));
      const size_t eq = body.find('=');
      if (eq == std::string_view::npos || trim(body.substr(0, eq)) != "interval_s") continue;
      if (!log.dirtiedPages.empty()) {
        return fail(lineNo, "the interval_s header must come before the first count");
      }
      if (sawInterval) return fail(lineNo, "interval_s is given twice");
      const std::string_view value = trim(body.substr(eq + 1));
      const std::optional<double> interval = parseNumber(value);
      if (!interval || *interval <= 0) {
        return fail(lineNo, "interval_s '" + std::string(value) + "' is not a positive number");
      }
      log.intervalS = *interval;
      sawInterval = true;
      continue;
    }
    const std::optional<double> count = parseNumber(line);
    if (!count || *count < 0) {
      return fail(lineNo, "'" + std::string(line) + "' is not a non-negative page count");
    }
    log.dirtiedPages.push_back(*count);
  }
  if (log.dirtiedPages.empty()) return fail(0, "no page counts");
  return log;
}

}  // namespace vrm::planner
