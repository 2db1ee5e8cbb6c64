# Shared by the end-to-end tests: start vrmd and sim agents on loopback under a scaled clock,
# stop them on exit, and assert on exit codes and output. Source it; set PORT first.
#
# Security: everything runs with CURVE keys made by `vrmctl keygen` in $KEYS: vrmd's pair, an
# agent pair per host of $CLUSTER, clients "tester" (user: vrmctl's identity, via VRM_CLIENT_KEY),
# "intruder" (user) and "operator" (admin), and web tokens $WEB_TOKEN (user "web") and
# $WEB_ADMIN_TOKEN (admin "web-admin"), all listed in $KEYS/authorized. INSECURE=1 runs vrmd
# with --insecure and no keys instead (e.g. scale tests whose hosts are not in $CLUSTER).
# Optional: STORE (vrmd's database), HEARTBEAT_TIMEOUT (vrmd), HEARTBEAT_INTERVAL (agents),
# AGENT_BACKEND_PARAMS (extra --backend-param words for agents; "{host}" becomes the host name).
set -euo pipefail
: "${VRM_BUILD_DIR:?VRM_BUILD_DIR must point at the build directory}"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$VRM_BUILD_DIR
work=$(mktemp -d -t vrm-e2e.XXXXXX)
SCALE=${SCALE:-600}
ORIGIN=$(date +%s%N)
CLIENTS="tcp://127.0.0.1:$PORT"
AGENTS="tcp://127.0.0.1:$((PORT + 1))"
EVENTS="tcp://127.0.0.1:$((PORT + 3))"
# The web calendar: off unless a test sets HTTP_PORT (vrmd's default 8080 would collide
# between tests running in parallel).
HTTP_PORT=${HTTP_PORT:-}
CLUSTER=${CLUSTER:-$root/examples/cluster.yaml}
declare -A agent_pids=()
vrmd_pid=""
failures=0
checks=0

cleanup() {
  local rc=$?
  [[ -n $vrmd_pid ]] && kill -9 "$vrmd_pid" 2>/dev/null || true
  for pid in "${agent_pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # qemu guests outlive their agents (vmscheduler/src/qemu/vm_state_file.h): kill this run's.
  local f pid
  while IFS= read -r f; do
    pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$f" 2>/dev/null || true)
    if [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$work"; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done < <(find "$work" -name '*.vm.json' 2>/dev/null || true)
  if [[ $rc -ne 0 || $failures -ne 0 ]]; then tail -n 40 "$work"/*.log >&2 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export VRM_ENDPOINT=$CLIENTS VRM_EVENTS=$EVENTS VRM_OWNER=tester
vrmctl() { "$build/clients/vrmctl" "$@"; }

INSECURE=${INSECURE:-}
KEYS=$work/keys
WEB_TOKEN="" WEB_ADMIN_TOKEN=""
# make_keys: key pairs and the authorized file for vrmd, the hosts of $CLUSTER and the test's
# clients (see the top of this file). Once per test: a restarted vrmd keeps its keys.
make_keys() {
  mkdir -p "$KEYS"
  local hosts
  hosts=$(awk '/^[a-z_]+:/ {section = $1} section == "hosts:" && $1 == "-" && $2 == "name:" {print $3}' "$CLUSTER")
  # shellcheck disable=SC2086 # one name per host
  vrmctl keygen --dir "$KEYS" vrmd tester intruder operator $hosts >/dev/null
  WEB_TOKEN=$(vrmctl keygen --token)
  WEB_ADMIN_TOKEN=$(vrmctl keygen --token)
  {
    echo "client tester user $(cat "$KEYS/tester.pub")"
    echo "client intruder user $(cat "$KEYS/intruder.pub")"
    echo "client operator admin $(cat "$KEYS/operator.pub")"
    for h in $hosts; do echo "agent $h $(cat "$KEYS/$h.pub")"; done
    # vrmd keeps only the tokens' hashes.
    echo "web web user $(vrmctl hash-token "$WEB_TOKEN")"
    echo "web web-admin admin $(vrmctl hash-token "$WEB_ADMIN_TOKEN")"
  } >"$KEYS/authorized"
  chmod 600 "$KEYS/authorized"
  export VRM_SERVER_KEY=$KEYS/vrmd.pub VRM_CLIENT_KEY=$KEYS/tester.key
}
if [[ -z $INSECURE ]]; then make_keys; fi

start_vrmd() {
  local http=off security=(--insecure)
  if [[ -n $HTTP_PORT ]]; then http=127.0.0.1:$HTTP_PORT; fi
  if [[ -z $INSECURE ]]; then
    security=(--curve-secret "$KEYS/vrmd.key" --authorized "$KEYS/authorized")
  fi
  "$build/vrm/vrmd" --cluster "$CLUSTER" --store "${STORE:-$work/vrm.db}" --clients "$CLIENTS" \
    --agents "$AGENTS" --time-scale "$SCALE" --clock-origin "$ORIGIN" \
    --http "$http" --events "$EVENTS" "${security[@]}" \
    --heartbeat-timeout "${HEARTBEAT_TIMEOUT:-5min}" ${VRMD_EXTRA:-} >>"$work/vrmd.log" 2>&1 &
  vrmd_pid=$!
}

start_agent() {
  local security=() params=() p
  if [[ -z $INSECURE ]]; then
    security=(--curve-secret "$KEYS/$1.key" --server-key "$KEYS/vrmd.pub")
  fi
  for p in ${AGENT_BACKEND_PARAMS:-}; do params+=(--backend-param "${p//\{host\}/$1}"); done
  "$build/vmscheduler/vmschedd" --host "$1" --cluster "$CLUSTER" --vrmd "$AGENTS" \
    --backend sim "${params[@]}" --time-scale "$SCALE" --clock-origin "$ORIGIN" "${security[@]}" \
    --heartbeat-interval "${HEARTBEAT_INTERVAL:-30s}" >>"$work/$1.log" 2>&1 &
  agent_pids[$1]=$!
}

# browser NAME ARGS... URL: one headless chromium run ($chromium_bin, which the test sets) with a
# fresh profile. The virtual time budget lets the page's fetches and timers run before the DOM
# is dumped or the shot taken.
browser() {
  local name=$1
  shift
  timeout 90 "$chromium_bin" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/chromium-$name" --window-size=1400,900 \
    --virtual-time-budget=8000 "$@" 2>>"$work/chromium.log"
}

# Waits (bounded, real time) until `vrmctl hosts --json` shows N reachable hosts.
wait_hosts() {
  local n=$1 up=0
  for _ in $(seq 1 150); do
    up=$(vrmctl --json hosts 2>/dev/null | grep -c '"reachable": true' || true)
    [[ $up -ge $n ]] && return 0
    sleep 0.1
  done
  echo "only $up of $n hosts registered" >&2
  return 1
}

start_cluster() {
  start_vrmd
  for h in node1 node2 node3; do start_agent "$h"; done
  wait_hosts 3
}

# expect_exit CODE DESCRIPTION -- COMMAND...: runs COMMAND, checks its exit code.
expect_exit() {
  local want=$1 what=$2
  shift 3
  local got=0
  "$@" >"$work/out" 2>"$work/err" || got=$?
  checks=$((checks + 1))
  if [[ $got -ne $want ]]; then
    failures=$((failures + 1))
    echo "FAIL: $what: exit $got, expected $want" >&2
    sed 's/^/  | /' "$work/out" "$work/err" >&2
  else
    echo "ok: $what (exit $got)"
  fi
}

# expect_output PATTERN DESCRIPTION: the last command's stdout+stderr match PATTERN.
expect_output() {
  checks=$((checks + 1))
  if grep -qE "$1" "$work/out" "$work/err"; then
    echo "ok: $2"
  else
    failures=$((failures + 1))
    echo "FAIL: $2: no match for /$1/" >&2
    sed 's/^/  | /' "$work/out" "$work/err" >&2
  fi
}

# expect_once VM...: each VM id appears exactly once in the last command's output (the
# inventory of `vrmctl --json vms`): nothing lost, nothing duplicated.
expect_once() {
  local vm n
  for vm in "$@"; do
    n=$(grep -c "\"id\": \"$vm\"" "$work/out" || true)
    checks=$((checks + 1))
    if [[ $n -eq 1 ]]; then echo "ok: $vm exists exactly once"; else
      failures=$((failures + 1)); echo "FAIL: $vm appears $n times" >&2; fi
  done
}

finish() {
  echo "$((checks - failures)) passed, $failures failed"
  [[ $failures -eq 0 ]]
}

# state_of ID: the reservation's state word.
state_of() { vrmctl show "$1" | head -n 1 | awk '{print $2}'; }

# wait_state ID REGEX [SECONDS]: bounded real-time wait (default 30 s) until the state matches
# (e.g. 'ready|active').
wait_state() {
  for _ in $(seq 1 $((${3:-30} * 10))); do
    [[ $(state_of "$1") =~ ^($2)$ ]] && return 0
    sleep 0.1
  done
  echo "$1 never reached $2 (is $(state_of "$1"))" >&2
  return 1
}
