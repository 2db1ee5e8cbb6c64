// Parser for page-dirtying logs, the input of the "akoush-hist" model (vrmctl --dirty-log FILE).
//
// Format: UTF-8/ASCII text, one number per line: the distinct pages dirtied in one interval,
// oldest first. Lines starting with '#' are comments; a comment of the form
//   # interval_s=0.5
// (spaces around '=' allowed) before the first count sets the interval length in seconds
// (default 1). Blank lines are ignored; "\r\n" line ends are accepted.
//
// The parser is pure: it takes the file's text (the caller reads the file), does no I/O and is
// thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "vrm/planner/migration_model.h"
#include "vrm/protocol/status.h"

namespace vrm::planner {

// Where and why a dirty log was rejected.
struct DirtyLogError {
  int line = 0;        // 1-based line of the first offending line; 0 = the text as a whole
  std::string reason;  // e.g. "'12x' is not a non-negative page count"
};

// Parses a dirty log. Errors: invalid-argument, message "dirty log line N: reason" (or
// "dirty log: reason" for line 0), for a count that is not a finite non-negative number, an
// interval_s header that is not a positive number or comes after the first count or twice, and
// a log without any count. When `error` is non-null it receives the line and reason on failure
// (and is left untouched on success).
Result<DirtyLog> parseDirtyLog(std::string_view text, DirtyLogError* error = nullptr);

}  // namespace vrm::planner
