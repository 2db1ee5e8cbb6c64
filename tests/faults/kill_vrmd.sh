#!/usr/bin/env bash
# Fault campaign 1: `kill -9` of vrmd at random points of reservation lifecycles.
#
# Submits LIFECYCLES reservations (dedicated and shared, windows a few minutes ahead on a clock
# 600x faster than real time), cancels some, and kills vrmd with SIGKILL at random moments:
# while a submit is in flight (admission) and while reservations are admitted, vacating,
# preparing, active or ending. Each time vrmd restarts on the same store and the agents
# re-register. Afterwards every reservation must finish, and the invariants of lib.sh hold
# (checked after every restart and at the end).
#
#   tests/faults/kill_vrmd.sh [--lifecycles N] [--seed S]
# Prints its seed; the same seed replays the same workload and kill schedule (timing on a busy
# machine still varies). Exit 0 when there is no violation.
PORT=${PORT:-17200}
SCALE=${SCALE:-600}
LIFECYCLES=100
source "$(dirname "$0")/lib.sh"
parse_campaign_args --lifecycles LIFECYCLES "$@"
echo "kill-vrmd: seed $SEED, $LIFECYCLES lifecycles (SEED=$SEED $0 --lifecycles $LIFECYCLES)"

start_faults_cluster
declare -A killed_while=()  # reservation state -> kills that hit a reservation in it
mid_admission=0
submitted=0
ids=()
while ((submitted < LIFECYCLES)); do
  rnd 1 4
  burst=$R
  for ((i = 0; i < burst && submitted < LIFECYCLES; i++)); do
    random_request
    id=$(submit "${REQ[@]}")
    submitted=$((submitted + 1))
    [[ -n $id ]] && ids+=("$id")
  done
  rnd 1 8
  if ((R == 1 && ${#ids[@]} > 0)); then
    rnd 0 $((${#ids[@]} - 1))
    cancel "${ids[$R]}"
  fi
  rnd 1 4
  if ((R == 1 && submitted < LIFECYCLES)); then
    # Kill while a submit is being admitted: if the client got an answer, it must survive.
    random_request
    rnd 0 40
    delay=$R
    submit "${REQ[@]}" >/dev/null &
    submitter=$!
    submitted=$((submitted + 1))
    sleep_ms "$delay"
    kill_vrmd
    mid_admission=$((mid_admission + 1))
    start_vrmd
    wait "$submitter" || true
    wait_hosts ${#HOSTS[@]}
  else
    # Aim at a phase: kill as soon as some reservation is in it (bounded), else at a random
    # moment. The phases of a vacate last tens of milliseconds of real time.
    phases=(vacating preparing active ending any)
    rnd 0 4
    aim=${phases[$R]}
    rnd 200 2500
    budget=$R
    states=""
    deadline=$(($(date +%s%N) / 1000000 + budget))
    while (($(date +%s%N) / 1000000 < deadline)); do
      states=$(vrmctl --json list 2>/dev/null | jq -r '[.[].state] | unique | .[]' || true)
      [[ $aim != any ]] && grep -qx "$aim" <<<"$states" && break
      sleep 0.005
    done
    # What the kill hits: the states of the reservations in flight just before it.
    for s in $states; do killed_while[$s]=$((${killed_while[$s]:-0} + 1)); done
    restart_vrmd
  fi
  check_invariants live "after kill $kills"
done

wait_all_terminal 120 || violation "reservations did not finish"
sleep 0.2  # a few heartbeats (30 s of clock each): vrmctl vms is then the agents' own view
check_invariants final "at the end"
coverage=""
for s in admitted vacating preparing ready active ending; do
  coverage+=" $s=${killed_while[$s]:-0}"
done
failure_reasons
echo "kill-vrmd: seed=$SEED runs=1 kills=$kills (mid-admission=$mid_admission; kills hitting a" \
  "reservation in state:$coverage) lifecycles=$submitted acknowledged=$(grep -c '^submit' "$acked")" \
  "completed: $(outcome_summary) violations=$violations"
[[ $violations -eq 0 ]]
