#!/usr/bin/env bash
# Ensures two vrmd on one etcd store never both lead: the second waits as a standby while the
# first leads, answering clients "not the leader" with the first's endpoint (vrmctl given only the
# standby is served by the leader); when the first is paused past its lease (SIGSTOP) the standby
# is elected and serves what the first acknowledged; the first, woken (SIGCONT), does not act as
# leader again but exits with status 3; a vrmd stopped with SIGTERM hands over at once (its lease
# revoked); after kill -9 of the leader the same client, given the standby or both replicas,
# reaches the new leader. The sim agents are given both replicas' agent endpoints: they follow
# each new leader on their own (a standby answers them "not the leader"), and after the kill -9
# they register with the new leader, which brings a reservation to ready. With --http a standby
# answers 307 to the leader's URL and its /metrics says vrm_leader 0. Also: a malformed --store
# value stops vrmd with a message naming it.
# The vrmd/agent ports follow tests/e2e/lib.sh (PORT and the three after it, web on PORT+4;
# PORT+10.. for the second vrmd, web on PORT+14).
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
FIRST_AGENTS=$AGENTS SECOND_AGENTS="tcp://127.0.0.1:$((PORT + 11))"
FIRST_HTTP="127.0.0.1:$((PORT + 4))" SECOND_HTTP="127.0.0.1:$((PORT + 14))"
start_first() { HTTP_PORT=$((PORT + 4)) start_vrmd; }  # a vrmd on the first's ports
start_first
first=$vrmd_pid
# Every agent is given both replicas; the second's endpoint has nobody there yet.
for h in node1 node2 node3; do AGENTS="$FIRST_AGENTS,$SECOND_AGENTS" start_agent "$h"; done
wait_hosts 3
expect_exit 0 "submit to the first vrmd" -- vrmctl submit --host node1 --start +2h --duration 1h --template small
id=$(head -n 1 "$work/out" | awk '{print $1}')

# The second vrmd, on ports of its own: a standby while the first leads.
SECOND="tcp://127.0.0.1:$((PORT + 10))"
start_second() {  # a vrmd on the second's ports; its debug log says whom it redirected
  CLIENTS=$SECOND AGENTS=$SECOND_AGENTS EVENTS="tcp://127.0.0.1:$((PORT + 13))" \
    HTTP_PORT=$((PORT + 14)) VRMD_EXTRA="--log-level debug" start_vrmd
}
start_second
second=$vrmd_pid
show_until_served "$SECOND" 100 0.05  # until the standby answers at all (bound, campaigning)
check "vrmctl given only the standby is served by the leader" grep -qE "^$id +admitted" "$work/out"
check "the standby said the leader is the first" \
  grep -q "not the leader (the leader is $CLIENTS)" "$work/vrmd.log"

# The standby's web port: every request 307 to the leader's URL (a POST too), /metrics its own.
http_code() { curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$@"; }
check "a standby answers GET /api/hosts 307 to the leader's URL" \
  test "$(http_code "http://$SECOND_HTTP/api/hosts?x=1")" == "307 http://$FIRST_HTTP/api/hosts?x=1"
check "and a POST" test "$(http_code -X POST -d '{}' "http://$SECOND_HTTP/api/reservations")" \
  == "307 http://$FIRST_HTTP/api/reservations"
check "curl -L through the standby reads the leader's hosts" \
  bash -c "curl -sfL 'http://$SECOND_HTTP/api/hosts' | grep -q node1"
check "the standby's /metrics says vrm_leader 0" \
  bash -c "curl -sf 'http://$SECOND_HTTP/metrics' | grep -qx 'vrm_leader 0'"
check "the leader's /metrics says vrm_leader 1" \
  bash -c "curl -sf 'http://$FIRST_HTTP/metrics' | grep -qx 'vrm_leader 1'"

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
start_first
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

# The agents, given both replicas, register with the new leader on their own (the new leader
# knows the hosts from the store, so 'reachable' alone would not show it: their logs do).
registered_with_new() {
  local h
  for h in node1 node2 node3; do
    [[ $(grep "host $h registered with vrmd at" "$work/$h.log" | tail -n 1) == *"$SECOND_AGENTS" ]] ||
      return 1
  done
}
for _ in $(seq 1 300); do registered_with_new && break; sleep 0.05; done
echo "figure: kill -9 of the leader to every agent registered with the new one:" \
  "$(($(now_ms) - killed_at)) ms"
check "every agent registered with the new leader at $SECOND_AGENTS" registered_with_new
export VRM_ENDPOINT="$CLIENTS_FIRST,$SECOND"
expect_exit 0 "submit to the new leader (given both, the dead one first)" -- \
  vrmctl submit --host node2 --start +10min --duration 30min --template small
fresh=$(head -n 1 "$work/out" | awk '{print $1}')
wait_state "$fresh" 'ready|active' 120 || true
expect_exit 0 "show $fresh" -- vrmctl show "$fresh"
expect_output "^$fresh +(ready|active)" "the new leader's agents brought $fresh to ready"
vrmd_pid=$fourth
finish
