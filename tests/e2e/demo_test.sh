#!/usr/bin/env bash
# Ensures the README's demo runs to the end: admission, plan, migrations, handles, teardown.
set -euo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
VRM_DEMO_NO_BUILD=1 VRM_DEMO_PORT=${PORT:-16555} "$(dirname "$0")/../../examples/demo.sh" >"$out" 2>&1 ||
  { cat "$out"; echo "0 passed, 1 failed"; exit 1; }
failed=0
for want in "admitted on node" "latest safe start" "moved ci-1" "handles" "ready:" "done"; do
  if grep -q "$want" "$out"; then echo "ok: demo shows '$want'"; else
    echo "FAIL: demo output lacks '$want'"; failed=$((failed + 1)); fi
done
[[ $failed -eq 0 ]] || cat "$out"
echo "$((6 - failed)) passed, $failed failed"
[[ $failed -eq 0 ]]
