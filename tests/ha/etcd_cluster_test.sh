#!/usr/bin/env bash
# The etcd test harness from the shell (tests/ha/etcd_cluster_main.cc): a 3-member cluster on
# OS-chosen ports serves writes through any member, survives a killed and a paused member,
# takes a killed member back, keeps none of its caller's open files, and leaves no process or
# file behind after `stop`.
set -euo pipefail
build=${VRM_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
harness=$build/tests/ha/etcd_cluster
command -v etcd >/dev/null || { echo "SKIP: etcd is not installed (scripts/install-deps.sh)"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
work=$(mktemp -d)
dir=""
cleanup() {
  [[ -n $dir ]] && "$harness" stop "$dir" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A file the caller holds open (as flock holds the e2e lock) must not go with the members: one
# left running by a killed test would hold it.
exec {held}>"$work/held"
dir=$("$harness" start --root "$work")
exec {held}>&-
for p in $("$harness" status "$dir" | awk '{print $3}'); do
  ls -l "/proc/$p/fd" 2>/dev/null | grep -q "$work/held" && fail "member pid $p inherited an open file"
done
endpoints=$("$harness" endpoints "$dir")
IFS=, read -r -a eps <<<"$endpoints"
[[ ${#eps[@]} == 3 ]] || fail "expected 3 endpoints, got $endpoints"

# put KEY VALUE ENDPOINT / get KEY ENDPOINT (values base64 in the gateway's JSON)
put() { curl -sf -m 5 "http://$3/v3/kv/put" -d "{\"key\":\"$(printf %s "$1" | base64)\",\"value\":\"$(printf %s "$2" | base64)\"}" >/dev/null; }
get() { curl -sf -m 5 "http://$2/v3/kv/range" -d "{\"key\":\"$(printf %s "$1" | base64)\"}" | jq -r '.kvs[0].value // empty' | base64 -d; }

put a 1 "${eps[0]}" || fail "put through member 0"
[[ $(get a "${eps[2]}") == 1 ]] || fail "member 2 does not see member 0's write"

"$harness" kill "$dir" 0
"$harness" status "$dir" | grep -q '^m0 .* down$' || fail "member 0 not down after kill"
"$harness" wait-ready "$dir" 1 20  # a new raft leader, if member 0 was it
put b 2 "${eps[1]}" || fail "two members of three no longer serve writes"
"$harness" restart "$dir" 0
[[ $(get b "${eps[0]}") == 2 ]] || fail "restarted member 0 did not catch up"

"$harness" pause "$dir" 2
curl -s -m 1 "http://${eps[2]}/v3/kv/range" -d '{"key":"YQ=="}' >/dev/null && fail "a paused member answered"
"$harness" wait-ready "$dir" 0 20  # a raft leader that is not the paused member
put c 3 "${eps[0]}" || fail "writes stopped with one member paused"
"$harness" resume "$dir" 2
"$harness" wait-ready "$dir" 2 10
[[ $(get c "${eps[2]}") == 3 ]] || fail "resumed member 2 did not catch up"

mapfile -t pids < <("$harness" status "$dir" | awk '{print $3}')
"$harness" stop "$dir"
dir_stopped=$dir
dir=""
for p in "${pids[@]}"; do
  [[ -e /proc/$p ]] && [[ $(awk '{print $3}' "/proc/$p/stat") != Z ]] && fail "member pid $p still running after stop"
done
[[ ! -e $dir_stopped ]] || fail "stop left $dir_stopped behind"
echo "etcd_cluster_test: ok"
