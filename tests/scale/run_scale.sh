#!/usr/bin/env bash
# Reproduces the scale figures of README "Performance" (issue 5 "Speed", issue 8 item 5):
#  1. admission latency p50/p99 in-process (admission_bench: shared and 4-host dedicated),
#  2. a real vrmd with HOSTS agents (vrm_fake_agents) over loopback TCP: sustained submissions/s
#     and client-observed latency from concurrent ZeroMQ clients (vrm_load), until
#     RESERVATIONS reservations are stored,
#  3. vrmd's memory (VmRSS / VmHWM) at that size,
#  4. recovery after kill -9: restart to serving requests, and to every host reconciled.
# Every figure is measured REPEATS times; the summary gives medians.
#
#   tests/scale/run_scale.sh                   # 10,000 hosts, 10,000 reservations (~15 min)
#   SMOKE=1 tests/scale/run_scale.sh           # 200 hosts, 300 reservations (< 1 min; ctest scale_smoke)
# Steps 2-4 run once per mode of MODES (default "insecure curve"): vrmd --insecure, and vrmd
# with CURVE keys (vrmctl keygen for vrmd and the load client, the agents' generated test keys,
# HOSTS `agent` lines in the authorized file); the summary reports both.
# SKIP_BENCH=1 skips step 1. Knobs: HOSTS RESERVATIONS REPEATS THREADS WINDOW LOAD_SECONDS VRM_BUILD_DIR PORT (17100)
# JITTER (the agents' interval jitter, default the agent's 0.2; 0 = agents in lockstep).
# The daemon phases (2-4) run under flock /tmp/vrm-e2e.lock (one daemon-starting test at a time
# on the machine; VRM_E2E_LOCK names another file); the in-process benchmark does not need it.
# Under a caller's `flock /tmp/vrm-e2e.lock ...` the script uses the caller's lock (or, when the
# caller closed it, stops with a message instead of waiting for itself); VRM_E2E_LOCK_HELD=1
# skips the lock altogether.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${VRM_BUILD_DIR:-$here/../../build}
if [[ -n "${SMOKE:-}" ]]; then
  HOSTS=${HOSTS:-200}; RESERVATIONS=${RESERVATIONS:-300}; REPEATS=${REPEATS:-1}
  LOAD_SECONDS=${LOAD_SECONDS:-3}; BENCH_MIN_TIME=${BENCH_MIN_TIME:-0.05}
fi
HOSTS=${HOSTS:-10000}
RESERVATIONS=${RESERVATIONS:-10000}
REPEATS=${REPEATS:-3}
THREADS=${THREADS:-8}
WINDOW=${WINDOW:-4}
LOAD_SECONDS=${LOAD_SECONDS:-15}
BENCH_MIN_TIME=${BENCH_MIN_TIME:-2}
PORT=${PORT:-17100}
MODES=${MODES:-insecure curve}
clients=tcp://127.0.0.1:$PORT
agents=tcp://127.0.0.1:$((PORT + 1))
work=$(mktemp -d /tmp/vrm-scale.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
summary=()
say() { echo "$*"; summary+=("$*"); }

if [[ -z "${SKIP_BENCH:-}" ]]; then
echo "== 1. admission latency in-process ($HOSTS hosts, $((HOSTS * 10)) VMs, $RESERVATIONS booked)"
"$build/tests/admission_bench" --hosts="$HOSTS" --reservations="$RESERVATIONS" \
  --benchmark_min_time="$BENCH_MIN_TIME" --benchmark_repetitions="$REPEATS" \
  --benchmark_report_aggregates_only=true --benchmark_format=console 2>&1 |
  grep -v "first rejection" | tee "$work/bench.txt"
for b in AdmitSharedDryRun AdmitSharedBooked AdmitDedicated4DryRun AdmitDedicated4Booked; do
  line=$(grep "BM_${b}_median" "$work/bench.txt" || grep "BM_${b} " "$work/bench.txt" || true)
  get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  say "admission $b: p50 $(get p50_us) us, p99 $(get p99_us) us (CPU time: p50 $(get p50_cpu_us) us, p99 $(get p99_cpu_us) us), admitted $(get admitted_pct)%"
done

fi

echo "== 2-4. vrmd with $HOSTS agents, modes: $MODES (waiting for /tmp/vrm-e2e.lock)"
# ctest's scale_smoke runs, like every e2e test, under the caller's flock (VRM_E2E_LOCK_HELD):
# taking it again here would wait for ourselves. So would a caller that ran us under
# `flock /tmp/vrm-e2e.lock` without saying so: flock(1) hands its locked descriptor down to us,
# and a lock on that descriptor is ours already (flock -n on it succeeds at once), whereas
# opening the file again gives a new descriptor that waits for the caller, i.e. for ourselves.
take_e2e_lock() {
  local lock=${VRM_E2E_LOCK:-/tmp/vrm-e2e.lock} fd target inode pid p
  for fd in /proc/$$/fd/*; do
    target=$(readlink "$fd" 2>/dev/null) || continue
    [[ "$target" == "$lock" ]] || continue
    if flock -n "${fd##*/}"; then
      echo "   (holding $lock through descriptor ${fd##*/} inherited from the caller)"
      return 0
    fi
  done
  # Not handed down (a caller that closed it, e.g. flock -o): if one of our ancestors holds
  # it, waiting would never end. Say so and stop.
  if [[ -e "$lock" ]] && inode=$(stat -c %i "$lock" 2>/dev/null); then
    while read -r _ kind _ _ pid dev _; do
      [[ "$kind" == FLOCK && "${dev##*:}" == "$inode" ]] || continue
      for ((p = PPID; p > 1; p = $(ps -o ppid= -p "$p" 2>/dev/null || echo 1))); do
        if [[ "$p" == "$pid" ]]; then
          echo "run_scale.sh: $lock is held by our caller (pid $pid: $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)) and would be waited for forever; run with VRM_E2E_LOCK_HELD=1 under that flock, or without the flock" >&2
          exit 2
        fi
      done
    done < /proc/locks
  fi
  exec 9> "$lock"
  flock 9
}
if [[ -z "${VRM_E2E_LOCK_HELD:-}" ]]; then take_e2e_lock; fi
agent_opts=()
[[ -n "${JITTER:-}" ]] && agent_opts=(--jitter "$JITTER")
# vrmd takes only the hosts and templates from its cluster file (the VMs come from the agents):
# listing 100,000 VMs there would only time yaml-cpp (about 10 s of a restart at 10,000 hosts).
# FULL_CLUSTER_YAML=1 lists them anyway.
"$build/tests/vrm_fake_agents" --count "$HOSTS" --print-cluster-yaml \
  $([[ -n "${FULL_CLUSTER_YAML:-}" ]] || echo --no-vms) > "$work/cluster.yaml"
# Steps 2-4 for one mode: "insecure", or "curve" (keys made here, in the mode's directory).
run_mode() {
mode=$1
dir=$work/$mode
mkdir -p "$dir"
pids=()
security=(--insecure); client_keys=(); agent_keys=()
if [[ $mode == curve ]]; then
  "$build/clients/vrmctl" keygen vrmd load --dir "$dir" > /dev/null
  { echo "client load admin $(cat "$dir/load.pub")"
    "$build/tests/vrm_fake_agents" --count "$HOSTS" --print-authorized; } > "$dir/authorized"
  security=(--curve-secret "$dir/vrmd.key" --authorized "$dir/authorized")
  client_keys=(--curve-server "$dir/vrmd.pub" --curve-key "$dir/load.key")
  agent_keys=(--curve-server "$dir/vrmd.pub")
elif [[ $mode != insecure ]]; then
  echo "run_scale: unknown mode '$mode' in MODES (insecure, curve)" >&2
  exit 2
fi
echo "== 2. [$mode] vrmd with $HOSTS agents over loopback TCP"
start_vrmd() {
  "$build/vrm/vrmd" --cluster "$work/cluster.yaml" --store "$dir/vrm.db" --clients "$clients" \
    --agents "$agents" --events off --http off "${security[@]}" --log-level warn >> "$dir/vrmd.log" 2>&1 &
  vrmd_pid=$!
  pids+=("$vrmd_pid")
}
# Waits for vrmd to answer (and for HOSTS hosts with --hosts-wanted); fails if vrmd died or
# PROBE_TIMEOUT (s) passed.
probe() {
  local rc=0
  timeout "${PROBE_TIMEOUT:-900}" "$build/tests/vrm_load" --clients "$clients" "${client_keys[@]}" --probe "$@" || rc=$?
  if (( rc != 0 )) || ! kill -0 "$vrmd_pid" 2>/dev/null; then
    echo "run_scale: vrmd did not answer (probe exit $rc); its log:" >&2
    tail -n 20 "$dir/vrmd.log" >&2
    exit 1
  fi
}
t0=$(date +%s.%N)
start_vrmd
# Each agent holds about 4 descriptors (DEALER, its handshake monitor, TCP): 2,500 per process
# stay under the usual limit of 20,000.
per_proc=2500
for ((first = 0; first < HOSTS; first += per_proc)); do
  n=$(( HOSTS - first < per_proc ? HOSTS - first : per_proc ))
  # Niced: on a real cluster the agents run on their own hosts, not on vrmd's cores.
  nice -n 10 "$build/tests/vrm_fake_agents" "${agent_opts[@]}" "${agent_keys[@]}" --vrmd "$agents" --first "$first" --count "$n" \
    > "$dir/agents-$first.out" 2>&1 &
  pids+=("$!")
done
probe --hosts-wanted "$HOSTS" > "$dir/register.out"
say "[$mode] registration of $HOSTS agents from a cold start: $(field hosts_ms < "$dir/register.out") ms"

rss() { awk '/^(VmRSS|VmHWM)/ {printf "%s %.0f MiB  ", $1, $2 / 1024}' "/proc/$vrmd_pid/status"; }
say "[$mode] vrmd memory with $HOSTS hosts, $((HOSTS * 10)) VMs, no reservations: $(rss)"

seed=1000000
rates=(); p50s=(); p99s=()
stored=0
run=0
while (( run < REPEATS || (stored < RESERVATIONS && run < REPEATS + 100) )); do
  # Errors (no reply, internal, ...) are counted in the line and reported, not fatal here.
  out=$("$build/tests/vrm_load" --clients "$clients" "${client_keys[@]}" --threads "$THREADS" --window "$WINDOW" \
          --seconds "$LOAD_SECONDS" --seed "$seed" 2>> "$dir/load.err") || true
  echo "load run $((run + 1)): $out"
  seed=$((seed + 1000000))
  adm=$(echo "$out" | field admitted); rej=$(echo "$out" | field rejected)
  stored=$((stored + ${adm:-0} + ${rej:-0}))
  if (( run < REPEATS )); then
    rates+=("$(echo "$out" | field per_s)"); p50s+=("$(echo "$out" | field p50_ms)")
    p99s+=("$(echo "$out" | field p99_ms)")
  fi
  run=$((run + 1))
done
say "[$mode] submissions through ZeroMQ ($THREADS clients x $WINDOW in flight, ${LOAD_SECONDS} s runs, median of $REPEATS): $(printf '%s\n' "${rates[@]}" | median)/s, latency p50 $(printf '%s\n' "${p50s[@]}" | median) ms, p99 $(printf '%s\n' "${p99s[@]}" | median) ms"
say "[$mode] vrmd memory with $HOSTS hosts and $stored reservations stored: $(rss)"
[[ -s "$dir/load.err" ]] && say "[$mode] load errors: $(sort "$dir/load.err" | uniq -c | head -5 | tr '\n' ';')"

echo "== 3. recovery after kill -9 with $stored reservations in the store"
serving=(); reconciled=()
for i in $(seq 1 "$REPEATS"); do
  kill -9 "$vrmd_pid"
  wait "$vrmd_pid" 2>/dev/null || true
  start_vrmd
  out=$(probe --hosts-wanted "$HOSTS")
  echo "restart $i: $out"
  serving+=("$(echo "$out" | field serving_ms)"); reconciled+=("$(echo "$out" | field hosts_ms)")
done
say "[$mode] recovery after kill -9 ($stored reservations, $HOSTS agents, median of $REPEATS): serving after $(printf '%s\n' "${serving[@]}" | median) ms, all $HOSTS hosts registered again after $(printf '%s\n' "${reconciled[@]}" | median) ms"
say "[$mode] vrmd memory after recovery: $(rss)"

# A host marked unreachable while its agent was heartbeating means vrmd fell behind.
unreachable=$(grep -c 'is unreachable: no heartbeat' "$dir/vrmd.log" || true)
say "[$mode] hosts marked unreachable for silence (vrmd log, whole run): $unreachable"
if [[ -s "$dir/load.err" ]] || (( unreachable > 0 || stored < RESERVATIONS )); then
  strict_failed=$((strict_failed + 1))
fi
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
}

strict_failed=0
for m in $MODES; do run_mode "$m"; done
echo
echo "== summary (machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%s\n' "${summary[@]}"

# STRICT=1 (implied by SMOKE=1, as ctest runs it): fail unless every submission was answered,
# no agent was marked unreachable, and the store reached RESERVATIONS.
if [[ -n "${STRICT:-${SMOKE:-}}" ]]; then
  if (( $strict_failed > 0 )); then
    echo "run_scale: FAILED in $strict_failed of the modes ($MODES): load errors, hosts marked unreachable or fewer than $RESERVATIONS stored (see the summary)" >&2
    exit 1
  fi
  echo "run_scale: OK"
fi
