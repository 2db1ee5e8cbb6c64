#!/usr/bin/env bash
# A week in the life (issue 18), one command from a fresh clone: builds vrm if needed, generates
# the week's cluster and workload for a seed, starts vrmd (under a supervisor that restarts it
# on the same store after the driver's kill -9) and the sim agents of every host in one process,
# plays the workload through the client library under a scaled clock, then writes the figures
# (figures.json, figures.txt, week.svg) into the run's directory.
#
#   tests/week/run_week.sh                         # 100 hosts, 7 days, seed 1, clock x600
#   tests/week/run_week.sh --seed 2 --out /tmp/w2 -- --margin 30s --calibrate false
#   HOSTS=20 DAYS=1 SCALE=2400 tests/week/run_week.sh   # what the CI version runs
#
# Options (or the environment variables in capitals): --hosts N (HOSTS, 100), --days D (DAYS, 7),
# --seed S (SEED, 1), --scale X (SCALE, 600: simulated seconds per real second), --load F (LOAD,
# 1: booking rates times F), --objective makespan|degradation (OBJECTIVE), --out DIR (OUT,
# build/week/seed-S), --port P (PORT, 17620: P client, P+1 agents, P+3 events, P+5 the agents'
# control), --check (exit 1 if an invariant was violated). Everything after "--" goes to vrmd
# (the knobs: --margin, --quantile, --planner, --calibrate, ...).
# The daemons run under the machine-wide lock /tmp/vrm-e2e.lock (VRM_E2E_LOCK_HELD=1 when the
# caller holds it; NO_LOCK=1 for long experiments on ports of their own, which would otherwise
# keep every other engineer's e2e tests waiting for hours).
# vrmd's fault-detection bounds are scaled with the clock: a 5 min heartbeat timeout and command
# floor (HEARTBEAT_TIMEOUT, COMMAND_FLOOR) are 0.5 s of real time at x600; its defaults (30 s,
# 60 s) would be 50 and 100 ms, which a loaded machine misses. `uptime` is recorded before and after: on a loaded machine vrmd and the
# agents fall behind the scaled clock, and the figures say how far (vacate start lag).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
HOSTS=${HOSTS:-100} DAYS=${DAYS:-7} SEED=${SEED:-1} SCALE=${SCALE:-600} LOAD=${LOAD:-1}
OBJECTIVE=${OBJECTIVE:-} PORT=${PORT:-17620} OUT=${OUT:-} CHECK=${CHECK:-}
WEEK_START=${WEEK_START:-2026-11-23T00:00:00Z}
HEARTBEAT=${HEARTBEAT:-60s} HEARTBEAT_TIMEOUT=${HEARTBEAT_TIMEOUT:-5min} COMMAND_FLOOR=${COMMAND_FLOOR:-5min}
AGENT_LOSSES=${AGENT_LOSSES:-4} VRMD_RESTARTS=${VRMD_RESTARTS:-2}
vrmd_args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --hosts) HOSTS=$2; shift 2 ;;
    --days) DAYS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --load) LOAD=$2; shift 2 ;;
    --objective) OBJECTIVE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --check) CHECK=1; shift ;;
    --) shift; vrmd_args=("$@"); break ;;
    *) echo "run_week.sh: unknown option $1 (see the top of $0)" >&2; exit 2 ;;
  esac
done

if [[ -z ${VRM_BUILD_DIR:-} ]]; then
  "$root/scripts/build.sh" >/dev/null
  build=$root/build
else
  build=$VRM_BUILD_DIR
fi
OUT=${OUT:-$build/week/seed-$SEED}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/{vrm.db,stop,vrmd.pid,journal.tsv,reservations.json,driver.json,*.log}
# vrmd's store on tmpfs by default (STORE_DIR=disk: in the run's directory): every transition is
# an fsync'ed commit, about 5 ms on this machine's disk, which the accelerated clock would turn
# into seconds of simulated time per step (3 s at x600) that a real vrmd never pays.
STORE_DIR=${STORE_DIR:-/dev/shm}
[[ $STORE_DIR == disk ]] && STORE_DIR=$OUT
store_dir=$(mktemp -d "$STORE_DIR/vrm-week.XXXXXX")
mkdir -p "$OUT/state"
rm -f "$OUT"/state/*

if [[ -z ${VRM_E2E_LOCK_HELD:-} && -z ${NO_LOCK:-} ]]; then
  exec 9>/tmp/vrm-e2e.lock
  echo "run_week: waiting for /tmp/vrm-e2e.lock" >&2
  flock 9
fi
for p in $PORT $((PORT + 1)) $((PORT + 3)) $((PORT + 5)); do
  if ss -ltn 2>/dev/null | awk '{print $4}' | grep -q ":$p\$"; then
    echo "run_week: port $p is taken (--port P picks another range)" >&2
    exit 2
  fi
done

clients=tcp://127.0.0.1:$PORT agents=tcp://127.0.0.1:$((PORT + 1))
events=tcp://127.0.0.1:$((PORT + 3)) control=tcp://127.0.0.1:$((PORT + 5))
gen_args=(--seed "$SEED" --hosts "$HOSTS" --days "$DAYS" --week-start "$WEEK_START" --load "$LOAD"
  --agent-losses "$AGENT_LOSSES" --vrmd-restarts "$VRMD_RESTARTS" --out "$OUT")
[[ -n $OBJECTIVE ]] && gen_args+=(--objective "$OBJECTIVE")
"$build/tests/week/vrm_week_gen" "${gen_args[@]}"

# The scaled clock reads WEEK_START - 30 min now: the agents register during that half hour.
# sim(real) = origin + (real - origin) * scale, so origin = now + (now - sim_now) / (scale - 1).
now=$(date +%s%N)
week0=$(date -d "$WEEK_START" +%s%N)
origin=$(awk -v r="$now" -v t="$((week0 - 1800000000000))" -v s="$SCALE" \
  'BEGIN { printf "%.0f", r + (r - t) / (s - 1) }')

pids=()
cleanup() {
  touch "$OUT/stop"
  [[ -f $OUT/vrmd.pid ]] && kill "$(cat "$OUT/vrmd.pid")" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The store, for reading after the run (observations, events), copied out of tmpfs.
  if [[ -f $store_dir/vrm.db ]]; then
    sqlite3 "$store_dir/vrm.db" ".backup '$OUT/vrm.db'" || true
  fi
  rm -rf "$store_dir"
}
trap cleanup EXIT

"$build/tests/week/vrm_week_agents" --cluster "$OUT/cluster.yaml" --vrmd "$agents" \
  --control "$control" --time-scale "$SCALE" --clock-origin "$origin" \
  --journal "$OUT/journal.tsv" --state-dir "$OUT/state" --heartbeat "$HEARTBEAT" \
  --seed "$SEED" >"$OUT/agents.log" 2>&1 &
pids+=($!)
# vrmd under a supervisor, as systemd would restart it: the driver's kill -9 is followed by a
# start on the same store.
(
  while [[ ! -e $OUT/stop ]]; do
    "$build/vrm/vrmd" --cluster "$OUT/cluster.yaml" --store "$store_dir/vrm.db" --clients "$clients" \
      --agents "$agents" --events "$events" --http off --insecure --time-scale "$SCALE" \
      --clock-origin "$origin" --heartbeat-timeout "$HEARTBEAT_TIMEOUT" \
      --command-timeout-floor "$COMMAND_FLOOR" "${vrmd_args[@]}" \
      >>"$OUT/vrmd.log" 2>&1 &
    echo $! >"$OUT/vrmd.pid"
    wait $! || true
  done
) 2>>"$OUT/supervisor.log" &
pids+=($!)

for _ in $(seq 1 600); do
  grep -q '^registered' "$OUT/agents.log" 2>/dev/null && break
  sleep 0.1
done
grep -q '^registered' "$OUT/agents.log" || { echo "run_week: the agents did not register" >&2; tail "$OUT"/*.log >&2; exit 1; }

uptime_before=$(uptime)
t0=$(date +%s.%N)
echo "run_week: $HOSTS hosts, $DAYS days, seed $SEED, clock x$SCALE, vrmd ${vrmd_args[*]:-(defaults)}; $uptime_before"
"$build/tests/week/vrm_week_driver" --workload "$OUT/workload.json" --vrmd "$clients" \
  --control "$control" --vrmd-pid-file "$OUT/vrmd.pid" --time-scale "$SCALE" \
  --clock-origin "$origin" --out "$OUT/reservations.json" --log "$OUT/driver.json"
t1=$(date +%s.%N)
uptime_after=$(uptime)
# vrmd's CPU time (user + system, clock ticks of its last incarnation) before it is stopped.
vrmd_cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$(cat "$OUT/vrmd.pid")/stat" 2>/dev/null || echo null)
agents_cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/${pids[0]}/stat" 2>/dev/null || echo null)
cleanup
trap - EXIT

knobs=$(printf '%s\n' "${vrmd_args[@]}" | jq -R . | jq -s 'map(select(. != ""))')
jq -n --argjson seed "$SEED" --argjson scale "$SCALE" --argjson load "$LOAD" \
  --arg objective "$OBJECTIVE" --argjson knobs "$knobs" --arg before "$uptime_before" \
  --arg after "$uptime_after" --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
  --argjson vrmd_cpu "$vrmd_cpu_s" --argjson agents_cpu "$agents_cpu_s" \
  --arg commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  '{seed: $seed, time_scale: $scale, load: $load, objective: $objective, knobs: $knobs,
    uptime_before: $before, uptime_after: $after, wall_s: $wall,
    vrmd_cpu_s_last_start: $vrmd_cpu, agents_cpu_s: $agents_cpu, commit: $commit}' >"$OUT/run.json"

rc=0
report=("$build/tests/week/vrm_week_report" --dir "$OUT")
[[ -n $CHECK ]] && report+=(--check)
"${report[@]}" || rc=$?
if command -v gnuplot >/dev/null; then
  gnuplot -e "dir='$OUT'" "$here/week.gp" 2>"$OUT/gnuplot.log" || echo "run_week: gnuplot failed (see $OUT/gnuplot.log)" >&2
fi
echo "run_week: figures in $OUT/figures.txt, figures.json, week.svg"
exit $rc
