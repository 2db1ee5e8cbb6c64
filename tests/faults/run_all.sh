#!/usr/bin/env bash
# Runs the four fault campaigns one after the other, longer than CI does if asked, and prints
# their summary lines. Exit 0 when every campaign ran without a violation (a skipped campaign,
# e.g. disk-full without root, is reported and does not fail the run).
#
#   tests/faults/run_all.sh [--lifecycles N] [--rounds M] [--seed S]
#     --lifecycles  reservation lifecycles of the kill -9 campaign (CI: 100)
#     --rounds      rounds of the agent-kill (CI: 12), partition (CI: 8) and disk-full (CI: 2)
#                   campaigns; default: CI's
#     --seed        one seed for all (default: each picks and prints its own)
# Needs VRM_BUILD_DIR (default: build/ of the project). Take /tmp/vrm-e2e.lock around it when
# other tests may run on this machine: flock /tmp/vrm-e2e.lock tests/faults/run_all.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export VRM_BUILD_DIR=${VRM_BUILD_DIR:-$here/../../build}
lifecycles=100
rounds=""
seed=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --lifecycles) lifecycles=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seed) seed=(--seed "$2"); shift 2 ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
  esac
done
round_args=()
[[ -n $rounds ]] && round_args=(--rounds "$rounds")

failed=0
summaries=()
run() {
  local name=$1 rc=0
  shift
  echo "== $name"
  "$@" >"$VRM_BUILD_DIR/faults-$name.out" 2>&1 || rc=$?
  grep -E "^(VIOLATION|SKIP)|^[a-z-]+: seed=" "$VRM_BUILD_DIR/faults-$name.out"
  case $rc in
    0) summaries+=("$name: ok") ;;
    77) summaries+=("$name: skipped") ;;
    *) summaries+=("$name: FAILED (exit $rc, output in $VRM_BUILD_DIR/faults-$name.out)")
       failed=1 ;;
  esac
}
run kill-vrmd "$here/kill_vrmd.sh" --lifecycles "$lifecycles" "${seed[@]}"
run kill-agent "$here/kill_agent.sh" "${round_args[@]}" "${seed[@]}"
run partition "$here/partition.sh" "${round_args[@]}" "${seed[@]}"
run disk-full "$here/disk_full.sh" "${round_args[@]}" "${seed[@]}"
printf '%s\n' "${summaries[@]}"
exit $failed
