#!/usr/bin/env bash
# Configures and builds vrm into build/ (Release with assertions kept, -j2 by default).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
build=${VRM_BUILD_DIR:-$root/build}
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=${VRM_BUILD_TYPE:-RelWithDebInfo} >/dev/null
fi
cmake --build "$build" -j"${VRM_JOBS:-2}"
