#!/usr/bin/env bash
# Ensures the systemd units the packages ship are valid for this machine's systemd
# (`systemd-analyze verify`: keys, values, Type=notify with its settings), pointed at the built
# binaries since /usr/bin/vrmd is not installed here. Skipped (77) without systemd-analyze.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${VRM_BUILD_DIR:?VRM_BUILD_DIR is the build directory}" && pwd)
command -v systemd-analyze >/dev/null || { echo "skip: no systemd-analyze"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for unit in vrmd vmschedd; do
  bin=$build/vrm/vrmd
  [[ $unit == vmschedd ]] && bin=$build/vmscheduler/vmschedd
  sed "s|/usr/bin/$unit|$bin|" "$root/packaging/systemd/$unit.service" >"$work/$unit.service"
  grep -q '^Type=notify$' "$work/$unit.service" || { echo "FAIL: $unit is not Type=notify"; failed=1; }
  # Any complaint fails (systemd-analyze exits 0 for some warnings).
  if ! out=$(systemd-analyze verify --man=no "$work/$unit.service" 2>&1) || [[ -n $out ]]; then
    echo "FAIL: $unit.service: $out"
    failed=1
  else
    echo "ok: $unit.service verifies"
  fi
done
exit $failed
