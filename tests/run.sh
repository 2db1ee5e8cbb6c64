#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole GoogleTest suite through ctest.
# Exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
build=${VRM_BUILD_DIR:-$root/build}
cd "$build"
ctest --output-on-failure -j"${VRM_JOBS:-2}" --timeout 600 "$@"
