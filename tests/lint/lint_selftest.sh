#!/usr/bin/env bash
# Ensures the two checks can fail: each is run on a scratch copy of a tiny tree, first clean
# (must pass), then with one violation planted (must fail and name the file).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
git init -q .
cp "$here/../../.clang-format" .
mkdir -p planner/src vmscheduler/src vrm/src
printf '#include "vrm/protocol/status.h"\n\nint f() { return 1; }\n' >planner/src/a.cc
printf '#include "vrm/protocol/status.h"\n' >vmscheduler/src/b.cc
git add -A

"$here/check_deps.sh" "$tmp" >/dev/null
"$here/check_format.sh" "$tmp" >/dev/null

# A planner file including the manager (a layer above it), and an agent including the manager.
printf '#include "vrm/manager/manager.h"\n' >>planner/src/a.cc
printf '#include "vrm/manager/store.h"\n' >>vmscheduler/src/b.cc
if out=$("$here/check_deps.sh" "$tmp" 2>/dev/null); then
  echo "lint_selftest: check_deps passed a tree that includes upwards" >&2
  exit 1
fi
grep -q 'planner/src/a.cc:4: planner must not include' <<<"$out"
grep -q 'vmscheduler/src/b.cc:2: vmscheduler must not include' <<<"$out"

# A file that clang-format would change (an untracked new one counts too).
printf 'int  g( ){return 2;}\n' >vrm/src/c.cc
if out=$("$here/check_format.sh" "$tmp" 2>/dev/null); then
  echo "lint_selftest: check_format passed a misformatted file" >&2
  exit 1
fi
grep -q '^vrm/src/c.cc: not clang-formatted' <<<"$out"
echo "lint_selftest: ok"
