#!/usr/bin/env bash
# Fault campaign 3: a network partition between vrmd and one agent.
#
# node5's agent talks to vrmd through tcp_proxy (tests/faults/tcp_proxy.cc), which cuts the link
# on command; loopback's firewall is left alone. Each round submits reservations that may use
# node5 (one names it), then partitions node5:
#  * short: less than vrmd's heartbeat timeout (5 min of clock = 0.5 s here); traffic waits in
#    TCP buffers and flows again on heal;
#  * long: until vrmd marks node5 unreachable and re-plans (or fails, with the reason) what
#    depended on it; then, half the time, the connections are reset (TCP gave up: whatever was
#    in flight is lost) before the partition heals and node5 comes back.
# Afterwards every reservation finishes, node5's VMs are on exactly one host (the agent returned
# and was reconciled, not duplicated), and the invariants of lib.sh hold (checked after every
# heal and at the end).
#
#   tests/faults/partition.sh [--rounds N] [--seed S]
PORT=${PORT:-17220}
SCALE=${SCALE:-600}
ROUNDS=8
source "$(dirname "$0")/lib.sh"
parse_campaign_args --rounds ROUNDS "$@"
proxy_port=$((PORT + 5))
echo "partition: seed $SEED, $ROUNDS rounds (SEED=$SEED $0 --rounds $ROUNDS)"

"$build/tests/tcp_proxy" --listen "$proxy_port" --to "$((PORT + 1))" >"$work/proxy.log" 2>&1 &
proxy_pid=$!
agent_pids[proxy]=$proxy_pid  # stopped with the daemons on exit
for _ in $(seq 1 50); do grep -q listening "$work/proxy.log" && break; sleep 0.05; done
start_vrmd
for h in node1 node2 node3 node4; do start_agent "$h"; done
AGENTS=tcp://127.0.0.1:$proxy_port start_agent node5
wait_hosts ${#HOSTS[@]}

reachable() { vrmctl --json hosts 2>/dev/null | jq -r --arg h "$1" '.[] | select(.name == $h) | .reachable'; }

short=0
long=0
resets=0
marked_unreachable=0
unreachable_in_short=0
for ((round = 1; round <= ROUNDS; round++)); do
  rnd 4 12
  submit --host node5 --template small --start "+${R}min" --duration 5min >/dev/null
  for _ in 1 2; do
    random_request
    submit "${REQ[@]}" >/dev/null
  done
  rnd 0 600
  sleep_ms "$R"
  rnd 0 1
  if ((R == 0)); then
    short=$((short + 1))
    rnd 50 250
    kill -USR1 "$proxy_pid"
    sleep_ms "$R"
    [[ $(reachable node5) == false ]] && unreachable_in_short=$((unreachable_in_short + 1))
    kill -USR2 "$proxy_pid"
  else
    long=$((long + 1))
    kill -USR1 "$proxy_pid"
    for _ in $(seq 1 100); do  # bounded: 5 s
      [[ $(reachable node5) == false ]] && break
      sleep 0.05
    done
    if [[ $(reachable node5) == false ]]; then
      marked_unreachable=$((marked_unreachable + 1))
    else
      violation "round $round: node5 partitioned for 5 s was never marked unreachable"
    fi
    rnd 0 800
    sleep_ms "$R"
    rnd 0 1
    if ((R == 1)); then
      kill -HUP "$proxy_pid"
      resets=$((resets + 1))
    fi
    kill -USR2 "$proxy_pid"
  fi
  wait_hosts ${#HOSTS[@]}
  check_invariants live "after partition round $round"
done

wait_all_terminal 120 || violation "reservations did not finish"
sleep 0.2
check_invariants final "at the end"
failure_reasons
echo "partition: seed=$SEED runs=$ROUNDS partitions: short=$short (node5 seen unreachable in" \
  "$unreachable_in_short) long=$long (marked unreachable $marked_unreachable, connections reset" \
  "$resets) completed: $(outcome_summary) violations=$violations"
[[ $violations -eq 0 ]]
