#!/usr/bin/env bash
# Fault campaign 2: agents killed (-9) and restarted in the middle of a migration.
#
# Each round submits dedicated reservations, waits until one of them has a move running, and
# kills the agent at the source or the destination of that move (sometimes an agent that is
# cloning instead), restarting it after a random pause: shorter or longer than vrmd's heartbeat
# timeout. The sim agents keep their VMs in a state file (sim backend parameter state_file), so a
# restarted agent finds its VMs as a real hypervisor's agent would: the migration that was running
# is gone, the VM is still on its source, a prepared incoming copy is still prepared. vrmd must
# settle every move from what the agents report. Afterwards every reservation finishes, and the
# invariants of lib.sh hold (checked after every restart and at the end).
#
#   tests/faults/kill_agent.sh [--rounds N] [--seed S]
PORT=${PORT:-17210}
SCALE=${SCALE:-600}
ROUNDS=12
source "$(dirname "$0")/lib.sh"
parse_campaign_args --rounds ROUNDS "$@"
AGENT_BACKEND_PARAMS="state_file=$work/{host}.state"
echo "kill-agent: seed $SEED, $ROUNDS rounds (SEED=$SEED $0 --rounds $ROUNDS)"

start_faults_cluster
agent_kills=0
mid_migration=0
mid_clone=0
long_outages=0
for ((round = 1; round <= ROUNDS; round++)); do
  # Name busy hosts: vrmd would pick hosts already emptied by earlier rounds (nothing to move).
  fetch vms vms
  mapfile -t busy < <(jq -r '[.[] | select(.reservation == "") | .host] | group_by(.) |
    sort_by(-length, .[0]) | .[] | .[0]' <<<"$vms")
  for k in 0 1; do
    ((k < ${#busy[@]})) || break
    rnd 8 15
    submit --host "${busy[$k]}" --template small --start "+${R}min" --duration 5min >/dev/null
  done
  rnd 1 4
  aim=migration
  ((R == 1)) && aim=clone
  rnd 0 1
  side=$R  # 0: the source of a move, 1: its destination
  victim=""
  deadline=$(($(date +%s) + 6))
  while (($(date +%s) < deadline)); do  # bounded: 6 s of real time
    list=$(vrmctl --json list 2>/dev/null || echo '[]')
    if [[ $aim == migration ]]; then
      victim=$(jq -r --argjson side "$side" '[.[] | select(.state == "vacating") | .plan.moves[]
        | select(.state == "running") | [.from, .to][$side]] | first // empty' <<<"$list")
    else
      victim=$(jq -r '[.[] | select(.state == "preparing") | .clones[]
        | select(.state == "cloning") | .host] | first // empty' <<<"$list")
    fi
    [[ -n $victim ]] && break
    sleep 0.01
  done
  if [[ -z $victim ]]; then
    echo "round $round: no $aim in flight to interrupt"
    continue
  fi
  kill -9 "${agent_pids[$victim]}"
  wait "${agent_pids[$victim]}" 2>/dev/null || true
  agent_kills=$((agent_kills + 1))
  if [[ $aim == migration ]]; then mid_migration=$((mid_migration + 1)); else mid_clone=$((mid_clone + 1)); fi
  # Down for up to 1.5 s of real time: vrmd's heartbeat timeout (5 min of clock) is 0.5 s.
  rnd 0 1500
  ((R > 500)) && long_outages=$((long_outages + 1))
  sleep_ms "$R"
  start_agent "$victim"
  wait_hosts ${#HOSTS[@]}
  check_invariants live "after killing $victim ($aim), round $round"
done

wait_all_terminal 120 || violation "reservations did not finish"
sleep 0.2
check_invariants final "at the end"
failure_reasons
echo "kill-agent: seed=$SEED runs=$ROUNDS agent-kills=$agent_kills (mid-migration=$mid_migration" \
  "mid-clone=$mid_clone; down longer than the heartbeat timeout=$long_outages)" \
  "completed: $(outcome_summary) violations=$violations"
[[ $violations -eq 0 ]]
