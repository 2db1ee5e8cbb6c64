// The reader of a backend's settings (`vmschedd --backend-param KEY=VALUE`,
// HypervisorOptions::params), shared by every backend so they all name and check their settings
// the same way.
//
// Naming: every backend's parameters are lower-case words joined by '-' ("stage-dir",
// "migration-ports", "ground-truth"). Older spellings stay accepted: '_' for '-' in any name
// ("state_dir", "ground_truth"), and the aliases a backend lists (qemu's "state-dir" for
// "stage-dir"). Names under "template." are the backend's own (a template name is the user's).
// Errors name a parameter as the user spelled it, so "ground_truth" in a script is named
// "ground_truth" in the message.
//
// Use: take*() each known parameter once (absent ones return nullopt), then finish(), which
// fails on any parameter nobody asked for, listing the known ones. Not thread safe; a value type.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::vmscheduler::backend {

class BackendParams {
 public:
  // `backend` names the backend in messages ("qemu"); `aliases` maps an old canonical-form name
  // to its current one ({"state-dir", "stage-dir"}).
  // Errors (from status()): invalid-argument when two spellings of one parameter are both given.
  BackendParams(std::string backend, const std::map<std::string, std::string>& params,
                const std::map<std::string, std::string>& aliases = {});

  // invalid-argument when construction found a parameter given twice; ok otherwise.
  const Status& status() const { return status_; }

  // The value of parameter `key` (its canonical name), or nullopt when it is not given.
  std::optional<std::string> take(const std::string& key);
  // A non-empty value. Errors: invalid-argument when given empty.
  Result<std::optional<std::string>> takeNonEmpty(const std::string& key);
  // One of `choices`. Errors: invalid-argument naming the choices.
  Result<std::optional<std::string>> takeChoice(const std::string& key,
                                                const std::vector<std::string>& choices);
  // A duration ("30s", "2min"; units.h) that is not negative.
  Result<std::optional<TimeNs>> takeDuration(const std::string& key);
  // An unsigned decimal integer.
  Result<std::optional<std::uint64_t>> takeUnsigned(const std::string& key);
  // A signed decimal integer.
  Result<std::optional<std::int64_t>> takeInteger(const std::string& key);
  // A finite number > 0 (a plain number, e.g. bytes per second "2e8").
  Result<std::optional<double>> takePositiveNumber(const std::string& key);
  // Every parameter whose name starts with `prefix` ("template."), keyed by the rest of its name
  // as the user wrote it.
  std::map<std::string, std::string> takePrefixed(const std::string& prefix);

  // invalid-argument for the first parameter no take*() asked for, listing the known names.
  Status finish() const;

  // `<backend> parameter <key as the user spelled it>`, for the caller's own checks.
  std::string describe(const std::string& key) const;
  // invalid-argument "<describe(key)> <what>".
  Status invalid(const std::string& key, const std::string& what) const;

  // The canonical spelling of `key` ('_' to '-', then `aliases`); "template." names unchanged.
  static std::string canonical(const std::string& key,
                               const std::map<std::string, std::string>& aliases = {});

 private:
  struct Given {
    std::string spelled;  // as the user wrote it
    std::string value;
  };
  std::string backend_;
  Status status_;
  std::map<std::string, Given> params_;  // by canonical name
  std::set<std::string> known_;          // asked for, canonical
  std::set<std::string> prefixes_;       // asked for by takePrefixed()
};

}  // namespace vrm::vmscheduler::backend
