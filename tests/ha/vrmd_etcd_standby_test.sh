#!/usr/bin/env bash
# Ensures two vrmd on one etcd store never both lead: the second waits as a standby while the
# first leads, answering clients "not the leader" with the first's endpoint (vrmctl given only the
# standby is served by the leader); when the first is paused past its lease (SIGSTOP) the standby
# is elected and serves what the first acknowledged; the first, woken (SIGCONT), does not act as
# leader again but exits with status 3; a vrmd stopped with SIGTERM hands over at once (its lease
# revoked); after kill -9 of the leader the same client, given the standby or both replicas,
# reaches the new leader. Also: a malformed --store value stops vrmd with a message naming it.
# The vrmd/agent ports follow tests/e2e/lib.sh (PORT and the three after it; PORT+10.. for the
# second vrmd).
PORT=${PORT:-17640}
SCALE=${SCALE:-60}
source "$(dirname "$0")/../e2e/lib.sh"
harness=$build/tests/ha/etcd_cluster
command -v etcd >/dev/null || { echo "SKIP: etcd is not installed"; exit 77; }
etcd_dir="" first="" second=""
ha_cleanup() {
  local rc=$?
  # (|| true: under set -e a replica the test already killed would end the trap here.)
  for pid in $first $second ${third:-} ${fourth:-}; do
    kill -CONT "$pid" 2>/dev/null || true
    kill -9 "$pid" 2>/dev/null || true
  done
  [[ -n $etcd_dir ]] && "$harness" stop "$etcd_dir" >/dev/null 2>&1 || true
  (exit "$rc")
  cleanup
}
trap ha_cleanup EXIT
check() {  # check DESCRIPTION COMMAND...: passes when COMMAND succeeds
  local what=$1
  shift
  checks=$((checks + 1))
  if "$@"; then echo "ok: $what"; else failures=$((failures + 1)); echo "FAIL: $what" >&2; fi
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# show_until_served ENDPOINTS TRIES PAUSE: asks for $id until an answer (into $work/out), at most
# TRIES times PAUSE s apart; what the answer says is for the check that follows.
show_until_served() {
  for _ in $(seq 1 "$2"); do
    VRM_TIMEOUT_MS=500 VRM_ENDPOINT=$1 vrmctl show "$id" >"$work/out" 2>&1 && return 0
    sleep "$3"
  done
  return 0
}

for bad in "etcd://" "etcd://h1:0" "etcd:h1:2379" "mysql://db"; do
  rc=0
  "$build/vrm/vrmd" --cluster "$CLUSTER" --insecure --store "$bad" >"$work/out" 2>&1 || rc=$?
  check "--store $bad: exit 2 naming --store" \
    bash -c "[[ $rc == 2 ]] && grep -q -- '--store' '$work/out'"
done

etcd_dir=$("$harness" start --root "$work")
STORE="etcd://$("$harness" endpoints "$etcd_dir")"
start_cluster
first=$vrmd_pid
expect_exit 0 "submit to the first vrmd" -- vrmctl submit --host node1 --start +2h --duration 1h --template small
id=$(head -n 1 "$work/out" | awk '{print $1}')

# The second vrmd, on ports of its own: a standby while the first leads.
SECOND="tcp://127.0.0.1:$((PORT + 10))"
start_second() {  # a vrmd on the second's ports; its debug log says whom it redirected
  CLIENTS=$SECOND AGENTS="tcp://127.0.0.1:$((PORT + 11))" EVENTS="tcp://127.0.0.1:$((PORT + 13))" \
    VRMD_EXTRA="--log-level debug" start_vrmd
}
start_second
second=$vrmd_pid
show_until_served "$SECOND" 100 0.05  # until the standby answers at all (bound, campaigning)
check "vrmctl given only the standby is served by the leader" grep -qE "^$id +admitted" "$work/out"
check "the standby said the leader is the first" \
  grep -q "not the leader (the leader is $CLIENTS)" "$work/vrmd.log"

# Pause the leader past its 3 s lease: the standby takes over and serves what was acknowledged.
kill -STOP "$first"
paused_at=$(now_ms)
show_until_served "$SECOND" 300 0.05
echo "figure: leader paused to the standby serving: $(($(now_ms) - paused_at)) ms"
check "the standby, elected, serves $id" grep -qE "^$id +admitted" "$work/out"
kill -CONT "$first"
rc=0
timeout 20 tail --pid="$first" -f /dev/null || rc=$?
wait "$first" 2>/dev/null || rc=$?
check "the woken first vrmd exited with 3 (rc $rc)" test "$rc" -eq 3
check "it said it no longer leads" grep -q "no longer leading" "$work/vrmd.log"
first=""

# SIGTERM hands over at once: a third vrmd (on the first's ports) is elected without waiting
# for the lease.
CLIENTS_FIRST=$CLIENTS
start_vrmd
third=$vrmd_pid
sleep 0.5
kill -TERM "$second"
stopped_at=$(now_ms)
wait "$second" 2>/dev/null || true
second=""
show_until_served "$CLIENTS_FIRST" 300 0.02
handover=$(($(now_ms) - stopped_at))
echo "figure: SIGTERM of the leader to the standby serving: $handover ms"
check "the third vrmd serves $id" grep -qE "^$id +admitted" "$work/out"
check "handover after SIGTERM under 2.5 s (lease revoked, not expired)" test "$handover" -lt 2500

# kill -9 of the leader (the third) with a standby (a fourth on the second's ports): a client
# given only the standby, and one given both (the dead one first), reach the new leader.
start_second
fourth=$vrmd_pid
show_until_served "$SECOND" 100 0.05
check "given the standby, served by the leader (the third)" grep -qE "^$id +admitted" "$work/out"
kill -9 "$third"
killed_at=$(now_ms)
wait "$third" 2>/dev/null || true
show_until_served "$SECOND" 300 0.02
failover=$(($(now_ms) - killed_at))
echo "figure: kill -9 of the leader to the standby serving: $failover ms"
check "after kill -9, the client given the standby is served by it" grep -qE "^$id +admitted" "$work/out"
check "failover after kill -9 under 10 s (3 s lease)" test "$failover" -lt 10000
expect_exit 0 "a client given both replicas, the dead one first, reaches the new leader" -- \
  env VRM_TIMEOUT_MS=1000 VRM_ENDPOINT="$CLIENTS_FIRST,$SECOND" "$build/clients/vrmctl" show "$id"
vrmd_pid=$fourth
finish
