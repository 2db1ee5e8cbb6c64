#!/usr/bin/env bash
# Fault campaign 5: `kill -9` of the leading vrmd of two replicas on a 3-member etcd cluster
# (issue 16), under a stream of submissions and cancels.
#
# Two vrmd replicas share one etcd store: A (clients on PORT, agents on PORT+1) and B (clients
# on PORT+10, agents on PORT+11). The sim agents are given both agent endpoints (vmschedd
# --vrmd A,B) and register with whichever leads (a standby answers them "not the leader");
# vrmctl is given both client endpoints (VRM_ENDPOINT=A,B) and finds the leader. (The events
# endpoint is shared: only the leader binds it.) Each round submits a burst (sometimes with a
# submit in flight), may cancel one, kills the leader with SIGKILL, measures the time until a
# client is served again (by the standby, elected once the dead leader's lease runs out) and
# until every agent has registered with it, and restarts the killed replica as the new
# standby. Invariants of lib.sh after every round and at the end: no acknowledged reservation
# or cancel lost, every VM on exactly one host, every reservation finished with a reason when
# it failed.
#
#   tests/faults/failover.sh [--rounds N] [--seed S]
# Prints its seed and "figure:" lines (kill -9 to serving again, and to every agent registered
# with the new leader: p50 and max). Exit 0 when there is no violation.
PORT=${PORT:-17280}
# The lease is real time (3 s): a slower clock keeps the windows (minutes of the scaled clock)
# longer than a failover.
SCALE=${SCALE:-60}
ROUNDS=6
source "$(dirname "$0")/lib.sh"
parse_campaign_args --rounds ROUNDS "$@"
command -v etcd >/dev/null || { echo "SKIP: etcd is not installed"; exit 77; }
echo "failover: seed $SEED, $ROUNDS rounds (SEED=$SEED $0 --rounds $ROUNDS)"

harness=$build/tests/ha/etcd_cluster
etcd_dir=$("$harness" start --root "$work")
STORE="etcd://$("$harness" endpoints "$etcd_dir")"
A=$CLIENTS
B="tcp://127.0.0.1:$((PORT + 10))"
export VRM_ENDPOINT="$A,$B"
declare -A pid_of=()  # client endpoint -> pid of the replica there
declare -A agents_of=([$A]=$AGENTS [$B]="tcp://127.0.0.1:$((PORT + 11))")
failover_exit() {
  local rc=$?
  for p in "${pid_of[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  "$harness" stop "$etcd_dir" >/dev/null 2>&1 || true
  (exit "$rc")
  faults_exit
}
trap failover_exit EXIT

start_replica() {  # start_replica CLIENT_ENDPOINT
  CLIENTS=$1 AGENTS=${agents_of[$1]} start_vrmd
  pid_of[$1]=$vrmd_pid
  vrmd_pid=""  # this script kills the replicas itself
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# registered_with AGENT_ENDPOINT: every agent's last registration (its log) was with it.
registered_with() {
  local h
  for h in "${HOSTS[@]}"; do
    [[ $(grep "host $h registered with vrmd at" "$work/$h.log" | tail -n 1) == *" $1" ]] ||
      return 1
  done
}
# p50_max LIST...: "p50 X ms, max Y ms over N".
p50_max() {
  local sorted n
  (($# > 0)) || { echo "none"; return; }
  sorted=$(printf '%s\n' "$@" | sort -n)
  n=$#
  echo "p50 $(sed -n "$(((n + 1) / 2))p" <<<"$sorted") ms, max $(tail -n 1 <<<"$sorted") ms" \
    "over $n failovers (lease 3 s): $(tr '\n' ' ' <<<"$sorted")"
}

start_replica "$A"
for h in "${HOSTS[@]}"; do AGENTS="${agents_of[$A]},${agents_of[$B]}" start_agent "$h"; done
wait_hosts ${#HOSTS[@]}
leader=$A standby=$B
start_replica "$B"

submitted=0 mid_submit=0
ids=() failovers=() reattached=()
for ((round = 1; round <= ROUNDS; round++)); do
  rnd 1 4
  for ((i = 0; i < R; i++)); do
    random_request
    id=$(submit "${REQ[@]}")
    submitted=$((submitted + 1))
    [[ -n $id ]] && ids+=("$id")
  done
  rnd 1 4
  if ((R == 1 && ${#ids[@]} > 0)); then
    rnd 0 $((${#ids[@]} - 1))
    cancel "${ids[$R]}"
  fi
  # Half the kills hit a submit in flight: if its client got an answer, it must survive.
  submitter=""
  rnd 1 2
  if ((R == 1)); then
    random_request
    submit "${REQ[@]}" >/dev/null &
    submitter=$!
    submitted=$((submitted + 1))
    mid_submit=$((mid_submit + 1))
    rnd 0 40
    sleep_ms "$R"
  fi
  kill -9 "${pid_of[$leader]}" 2>/dev/null || true
  wait "${pid_of[$leader]}" 2>/dev/null || true
  killed_at=$(now_ms)
  kills=$((kills + 1))
  served=""
  for _ in $(seq 1 200); do
    if VRM_TIMEOUT_MS=500 vrmctl hosts >/dev/null 2>&1; then served=$(now_ms); break; fi
    sleep 0.02
  done
  if [[ -z $served ]]; then
    violation "round $round: no replica served within 200 tries after kill -9 of $leader"
  else
    failovers+=($((served - killed_at)))
    echo "round $round: kill -9 of the leader at $leader, served again after $((served - killed_at)) ms"
  fi
  joined=""
  for _ in $(seq 1 300); do
    if registered_with "${agents_of[$standby]}"; then joined=$(now_ms); break; fi
    sleep 0.05
  done
  if [[ -z $joined ]]; then
    violation "round $round: the agents did not register with the new leader within 15 s"
  else
    reattached+=($((joined - killed_at)))
    echo "round $round: every agent registered with the new leader after $((joined - killed_at)) ms"
  fi
  [[ -n $submitter ]] && { wait "$submitter" || true; }
  start_replica "$leader"  # the new standby
  tmp=$leader leader=$standby standby=$tmp
  wait_hosts ${#HOSTS[@]}
  check_invariants live "after round $round"
done

wait_all_terminal 180 || violation "reservations did not finish"
sleep 0.5  # a few heartbeats: vrmctl vms is then the agents' own view
check_invariants final "at the end"
failure_reasons
echo "figure: kill -9 of the leader to a client served again: $(p50_max "${failovers[@]}")"
echo "figure: kill -9 of the leader to every agent registered with the new one:" \
  "$(p50_max "${reattached[@]}")"
echo "failover: seed=$SEED rounds=$ROUNDS kills=$kills (mid-submit=$mid_submit)" \
  "lifecycles=$submitted acknowledged=$(grep -c '^submit' "$acked")" \
  "completed: $(outcome_summary) violations=$violations"
[[ $violations -eq 0 ]]
