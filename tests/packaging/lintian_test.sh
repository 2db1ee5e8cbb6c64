#!/usr/bin/env bash
# Ensures the Debian packages pass lintian, Debian's package checker, without an error: the
# four .debs made by `cpack -G DEB` from the finished build (nothing is compiled again) are
# checked together, every E: tag fails the test, and W: tags are listed (and counted) without
# failing it. Label slow (lintian takes minutes on four packages under load).
# Skipped (77) without lintian (scripts/install-deps.sh installs it).
#
# Environment: VRM_BUILD_DIR (required).
set -euo pipefail
build=$(cd "${VRM_BUILD_DIR:?VRM_BUILD_DIR is the build directory}" && pwd)
command -v lintian >/dev/null || { echo "skip: no lintian"; exit 77; }
work=$(mktemp -d -t vrm-lintian.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== cpack -G DEB from $build"
(cd "$build" && timeout 600 cpack -G DEB -B "$work/debs" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; echo "FAIL: cpack"; exit 1; }
mapfile -t debs < <(ls "$work"/debs/*.deb)
[[ ${#debs[@]} -eq 4 ]] || { echo "FAIL: expected 4 packages, got ${debs[*]}"; exit 1; }

echo "== lintian ${debs[*]##*/}"
start=$SECONDS
# Exit status: 0 without an error tag; non-zero with one (2.116 says 2) or when lintian itself
# fails, which the tags tell apart.
rc=0
lintian --fail-on error --tag-display-limit 0 "${debs[@]}" >"$work/lintian.log" 2>&1 || rc=$?
sed 's/^/  | /' "$work/lintian.log"
errors=$(grep -c '^E: ' "$work/lintian.log" || true)
warnings=$(grep -c '^W: ' "$work/lintian.log" || true)
echo "lintian: $errors errors, $warnings warnings in $((SECONDS - start)) s (exit $rc)"
if [[ $errors -gt 0 ]]; then
  echo "FAIL: lintian errors:"
  grep '^E: ' "$work/lintian.log"
  exit 1
fi
[[ $rc -eq 0 ]] || { echo "FAIL: lintian did not run to the end (exit $rc)"; exit 1; }
echo "ok: no lintian errors"
