#!/usr/bin/env bash
# Ensures vrmd on an etcd store (--store etcd://..., a real 3-member cluster on OS-chosen ports)
# loses nothing acknowledged across `kill -9`: before its vacate and in the middle of it (then
# with one etcd member killed too), the restarted vrmd waits out the dead one's lease, is
# elected, recovers the reservation from etcd, and the reservation completes with every VM on
# exactly one host; ids do not repeat after the restarts; an admin's backup of it is an SQLite
# file that vrmd on --store sqlite: serves.
# The vrmd/agent ports follow tests/e2e/lib.sh (PORT and the three after it).
PORT=${PORT:-17620}
# A slower clock than the e2e tests' 600x: a restarted vrmd waits up to the lease TTL (3 s real)
# to be elected, which must stay well inside the reservation's slack.
SCALE=${SCALE:-60}
source "$(dirname "$0")/../e2e/lib.sh"
harness=$build/tests/ha/etcd_cluster
command -v etcd >/dev/null || { echo "SKIP: etcd is not installed"; exit 77; }
etcd_dir=""
ha_cleanup() {
  local rc=$?
  [[ -n $vrmd_pid ]] && kill -9 "$vrmd_pid" 2>/dev/null || true
  [[ -n $etcd_dir ]] && "$harness" stop "$etcd_dir" >/dev/null 2>&1 || true
  (exit "$rc")
  cleanup
}
trap ha_cleanup EXIT
etcd_dir=$("$harness" start --root "$work")
STORE="etcd://$("$harness" endpoints "$etcd_dir")/e2e"
echo "store: $STORE"

# kill_vrmd: kill -9 and reap, so the next start_vrmd's ports are free.
kill_vrmd() {
  kill -9 "$vrmd_pid"
  wait "$vrmd_pid" 2>/dev/null || true
  killed_at=$(date +%s%N)
}
# served_after WHAT: prints how long after the kill vrmd answered again (it waited out the dead
# vrmd's lease to be elected, then recovered from etcd).
served_after() {
  for _ in $(seq 1 300); do
    vrmctl show "$id" >/dev/null 2>&1 && break
    sleep 0.02
  done
  echo "figure: $1: kill -9 to serving again in $((($(date +%s%N) - killed_at) / 1000000)) ms"
}

start_cluster
expect_exit 0 "submit" -- vrmctl submit --host node1 --start +20min --duration 4h --template small
id=$(head -n 1 "$work/out" | awk '{print $1}')
expect_output "^r1 " "the first id is r1"
kill_vrmd
start_vrmd
served_after "before the vacate"
wait_hosts 3
expect_exit 0 "acknowledged reservation is still there after kill -9" -- vrmctl show "$id"
expect_output "admitted" "still admitted"
grep -q "leading at term" "$work/vrmd.log" && echo "ok: vrmd said it leads" ||
  { failures=$((failures + 1)); echo "FAIL: no 'leading at term' in vrmd.log" >&2; }

# Kill vrmd again as soon as the vacate has started, and one etcd member with it.
for _ in $(seq 1 3000); do
  [[ $(state_of "$id") == vacating ]] && break
  sleep 0.02
done
state=$(state_of "$id")
checks=$((checks + 1))
if [[ $state == vacating ]]; then echo "ok: killed mid-vacate"; else
  failures=$((failures + 1)); echo "FAIL: killed in state $state, not vacating" >&2; fi
kill_vrmd
"$harness" kill "$etcd_dir" 0
start_vrmd
served_after "mid-vacate, an etcd member down"
wait_hosts 3
wait_state "$id" 'ready|active' 120
expect_exit 0 "ready after a crash mid-vacate with an etcd member down" -- vrmctl show "$id"
expect_output "^r[0-9]+ +(ready|active)" "ready or active"
expect_output "handles" "with handles"
expect_exit 0 "inventory" -- vrmctl --json vms
expect_once web-1 db-1 web-2 batch-1 ci-1 ci-2
expect_exit 0 "a second submission" -- vrmctl submit --host node2 --start +6h --duration 1h --template small
expect_output "^r2 " "the next id is r2: ids survive the restarts"

# The state moves back to one machine: an admin's backup of the etcd-backed vrmd is an SQLite
# file a vrmd on --store sqlite: serves with the same reservations.
expect_exit 0 "list on etcd" -- vrmctl -f value -c id list
before=$(sort "$work/out" | tr '\n' ' ')
expect_exit 0 "an admin backs up the etcd store" -- \
  env VRM_CLIENT_KEY="$KEYS/operator.key" "$build/clients/vrmctl" backup "$work/moved.db"
expect_output "backed up 2 reservations" "the backup holds both"
kill -TERM "$vrmd_pid"
wait "$vrmd_pid" 2>/dev/null || true
STORE="sqlite:$work/moved.db"
start_vrmd
wait_hosts 3
expect_exit 0 "list on SQLite" -- vrmctl -f value -c id list
after=$(sort "$work/out" | tr '\n' ' ')
checks=$((checks + 1))
if [[ $after == "$before" && -n $after ]]; then echo "ok: the SQLite copy serves $after"; else
  failures=$((failures + 1)); echo "FAIL: SQLite serves '$after', etcd had '$before'" >&2; fi
finish
