#!/usr/bin/env bash
# The system doing its main job, end to end, on one machine:
#   vrmd and three vmschedd agents (simulated hypervisor, clock 600x faster than real time) on
#   loopback; a BMI-style reservation that forces a host to be vacated; the admission decision,
#   the vacate plan, progress, the returned handles, and the teardown at the end of the window.
#   Everything is authenticated: the demo makes CURVE keys (vrmctl keygen) for vrmd, the agents
#   and the lab's vrmctl, and a token for the web calendar (README: Security).
# Stops everything it started and exits 0 when the reservation completed; with --keep-running
# it leaves vrmd, its web calendar and the agents up until Ctrl-C.
#
# Usage: examples/demo.sh [--keep-running]
# Environment: VRM_DEMO_PORT (default 15555; uses it and the next two ports: ZeroMQ clients,
# agents, the web calendar), VRM_DEMO_SCALE (default 600), VRM_BUILD_DIR (default build/),
# VRM_DEMO_NO_BUILD=1 (tests: already built).
set -euo pipefail
keep_running=""
for arg in "$@"; do
  case $arg in
    --keep-running) keep_running=1 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument '$arg' (try --keep-running)" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -n ${VRM_DEMO_NO_BUILD:-} ]] || "$root/scripts/build.sh" >&2

build=${VRM_BUILD_DIR:-$root/build}
port=${VRM_DEMO_PORT:-15555}
scale=${VRM_DEMO_SCALE:-600}
work=$(mktemp -d -t vrm-demo.XXXXXX)
clients="tcp://127.0.0.1:$port"
agents="tcp://127.0.0.1:$((port + 1))"
web="http://127.0.0.1:$((port + 2))/"
events="tcp://127.0.0.1:$((port + 3))"
origin=$(date +%s%N)  # shared by every process so their scaled clocks agree
pids=()

cleanup() {
  local rc=$?
  if [[ -n ${stopping_on_request:-} ]]; then rc=0; fi  # Ctrl-C after --keep-running: normal end
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $rc -ne 0 ]]; then
    echo "--- demo failed (exit $rc); daemon logs follow ---" >&2
    tail -n 30 "$work"/*.log >&2 || true
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT INT TERM

export VRM_ENDPOINT=$clients VRM_EVENTS=$events
vrmctl() { "$build/clients/vrmctl" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Keys: vrmd, its three agents and the lab's vrmctl each get a CURVE key pair"
keys=$work/keys
echo "\$ vrmctl keygen --dir $keys vrmd node1 node2 node3 lab-bmi"
vrmctl keygen --dir "$keys" vrmd node1 node2 node3 lab-bmi
web_token=$(vrmctl keygen --token)
{
  echo "# who may talk to vrmd (README: Security)"
  echo "client lab-bmi user $(cat "$keys/lab-bmi.pub")"
  for host in node1 node2 node3; do echo "agent $host $(cat "$keys/$host.pub")"; done
  echo "web lab-bmi user $(vrmctl hash-token "$web_token")"  # the hash only
} >"$keys/authorized"
chmod 600 "$keys/authorized"
# vrmctl finds vrmd's public key and its own pair here; it is "lab-bmi" because vrmd knows
# that key by that name.
export VRM_SERVER_KEY=$keys/vrmd.pub VRM_CLIENT_KEY=$keys/lab-bmi.key

say "Starting vrmd and three agents (clock ${scale}x real time, logs in $work)"
"$build/vrm/vrmd" --cluster "$root/examples/cluster.yaml" --store "$work/vrm.db" \
  --clients "$clients" --agents "$agents" --http "127.0.0.1:$((port + 2))" \
  --events "$events" --curve-secret "$keys/vrmd.key" --authorized "$keys/authorized" \
  --time-scale "$scale" --clock-origin "$origin" \
  --heartbeat-timeout 5min >"$work/vrmd.log" 2>&1 &
pids+=($!)
for host in node1 node2 node3; do
  "$build/vmscheduler/vmschedd" --host "$host" --cluster "$root/examples/cluster.yaml" \
    --vrmd "$agents" --curve-secret "$keys/$host.key" --server-key "$keys/vrmd.pub" \
    --backend sim --time-scale "$scale" --clock-origin "$origin" \
    --heartbeat-interval 30s >"$work/$host.log" 2>&1 &
  pids+=($!)
done

# Wait (bounded) until all three agents have registered.
for _ in $(seq 1 100); do
  up=$(vrmctl --json hosts 2>/dev/null | grep -c '"reachable": true' || true)
  [[ $up -ge 3 ]] && break
  sleep 0.1
done
[[ ${up:-0} -ge 3 ]] || { echo "agents did not register" >&2; exit 1; }

echo "Web calendar: $web#token=$web_token"
echo "  (hosts x time, the vacate windows, a booking form; JSON under ${web}api/; the token in"
echo "  the link lets the page book and cancel as lab-bmi, without it the page is read-only)"
if [[ -z $keep_running ]]; then
  echo "It closes when the demo ends; run 'examples/demo.sh --keep-running' to keep looking."
fi

say "The cluster: every host runs other people's VMs"
vrmctl hosts
vrmctl vms

say "Lab staff reserve one dedicated host for a 2 h BMI session starting in 30 minutes"
echo "\$ vrmctl submit --hosts 1 --start +30min --duration 2h --template bmi-decoder"
submitted=$(vrmctl submit --hosts 1 --start +30min --duration 2h --template bmi-decoder \
  --label "BMI closed-loop session")
echo "$submitted"
id=$(head -n 1 <<<"$submitted" | awk '{print $1}')

say "Following $id: nothing moves before the latest safe start, then the vacate runs"
vrmctl watch "$id" --until ready --timeout 2min

say "Ready before its start: the handles"
vrmctl show "$id"
echo
vrmctl vms

say "The window passes; at its end the reservation's VMs are destroyed"
vrmctl watch "$id" --until done --timeout 2min | tail -n 4
vrmctl show "$id" | head -n 3

state=$(vrmctl show "$id" | head -n 1 | awk '{print $2}')
[[ $state == done ]] || { echo "reservation ended in state $state" >&2; exit 1; }
say "Done: admitted, vacated, cloned, handed back and torn down"

if [[ -n $keep_running ]]; then
  say "Still running (--keep-running): press Ctrl-C to stop vrmd and the agents"
  echo "Web calendar: $web#token=$web_token"
  echo "vrmctl:       VRM_ENDPOINT=$clients VRM_SERVER_KEY=$keys/vrmd.pub \\"
  echo "              VRM_CLIENT_KEY=$keys/lab-bmi.key $build/clients/vrmctl list"
  echo "Metrics:      ${web}metrics"
  echo "The clock runs ${scale}x real time (VRM_DEMO_SCALE=60 for a calmer calendar)."
  stopping_on_request=1
  wait || true
fi
