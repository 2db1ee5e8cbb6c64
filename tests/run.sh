#!/usr/bin/env bash
# Installs what is missing, builds, runs the whole GoogleTest suite through ctest, then each fuzz
# target for a short bounded time.
# Exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
build=${VRM_BUILD_DIR:-$root/build}
cd "$build"
ctest --output-on-failure -j"${VRM_JOBS:-2}" --timeout 600 "$@"
# Then every fuzz target briefly (README "Fuzzing"; tests/fuzz.sh runs them longer). It builds
# its own clang ASan+UBSan tree in build-fuzz/. VRM_FUZZ_SECONDS=0 skips it.
# A fixed seed by default, so CI replays the same mutations instead of new ones each run (new
# ground is what tests/fuzz.sh's long runs are for); VRM_FUZZ_SEED=0 makes it random.
if [[ ${VRM_FUZZ_SECONDS:-15} -gt 0 ]]; then
  seed=${VRM_FUZZ_SEED:-1}
  [[ $seed == 0 ]] && seed=""
  # shellcheck disable=SC2086 # a list of target names; empty = every target
  VRM_FUZZ_SEED=$seed "$root/tests/fuzz.sh" "${VRM_FUZZ_SECONDS:-15}" ${VRM_FUZZ_TARGETS:-}
fi
