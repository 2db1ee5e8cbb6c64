# Shared by the fault campaigns (tests/faults/*.sh): the e2e helpers of tests/e2e/lib.sh (vrmd and
# sim agents on loopback under a scaled clock, stopped on exit), a seeded random reservation
# workload, a record of every acknowledgement vrmd gave, and the invariant checker each campaign
# runs while it goes and at the end. Source it after setting PORT. Optional: SEED (printed;
# the same seed gives the same workload and fault schedule), SCALE (clock speed-up, default 1200).
faults_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER=${CLUSTER:-$faults_dir/cluster.yaml}
SCALE=${SCALE:-1200}
# shellcheck source=../e2e/lib.sh
source "$faults_dir/../e2e/lib.sh"
# On failure (or with FAULTS_KEEP_LOGS=1) the daemons' logs and the acknowledgements are kept in
# build/tests/artifacts/faults-PORT/ before lib.sh's cleanup removes the work directory.
faults_exit() {
  local rc=$?
  set +e
  if [[ $rc -ne 0 || ${FAULTS_KEEP_LOGS:-0} == 1 ]]; then
    local keep=$build/tests/artifacts/faults-$PORT
    rm -rf "$keep"
    mkdir -p "$keep"
    cp "$work"/*.log "$acked" "$keep/" 2>/dev/null
    echo "logs kept in $keep" >&2
  fi
  (exit $rc)
  cleanup
}
trap faults_exit EXIT
command -v jq >/dev/null || { echo "SKIP: jq is not installed (scripts/install-deps.sh)"; exit 77; }

HOSTS=(node1 node2 node3 node4 node5)
SEED=${SEED:-$(($(date +%s%N) / 1000 % 1000000))}
RANDOM=$SEED
acked=$work/acked  # one line per acknowledgement: "submit ID" or "cancel ID"
: >"$acked"
violations=0
kills=0
# The long-lived VMs of the cluster: each must exist exactly once, always.
mapfile -t original_vms < <(grep -oE '\{id: [A-Za-z0-9_-]+' "$CLUSTER" | awk '{print $2}')

# parse_campaign_args COUNT_FLAG COUNT_VAR ARGS...: a campaign's command line,
# [COUNT_FLAG N] [--seed S]. Sets COUNT_VAR (e.g. --rounds ROUNDS) to N and SEED to S, and seeds
# the generator again; anything else prints the usage and exits 2. Call it right after sourcing
# this file, before anything draws from rnd.
parse_campaign_args() {
  local flag=$1 var=$2
  shift 2
  local usage="usage: $0 [$flag N] [--seed S]"
  while [[ $# -gt 0 ]]; do
    if [[ $# -lt 2 || ! $2 =~ ^[0-9]+$ ]] || [[ $1 != "$flag" && $1 != --seed ]]; then
      echo "$usage" >&2
      trap - EXIT  # nothing was started yet
      rm -rf "$work"
      exit 2
    fi
    if [[ $1 == --seed ]]; then SEED=$2; else printf -v "$var" '%s' "$2"; fi
    shift 2
  done
  RANDOM=$SEED
}

# rnd LO HI: sets R to a uniform integer in [LO, HI] from the seeded generator. (A function
# called in $(...) would draw in a subshell and leave the parent's sequence where it was.)
R=0
rnd() { R=$(($1 + RANDOM % ($2 - $1 + 1))); }

# sleep_ms N: real-time pause between fault injections (never used for correctness).
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

violation() {
  violations=$((violations + 1))
  echo "VIOLATION: $*" >&2
}

start_faults_cluster() {
  start_vrmd
  for h in "${HOSTS[@]}"; do start_agent "$h"; done
  wait_hosts ${#HOSTS[@]}
}

kill_vrmd() {
  kill -9 "$vrmd_pid" 2>/dev/null || true
  wait "$vrmd_pid" 2>/dev/null || true
  kills=$((kills + 1))
}

# kill -9 and start again on the same store; waits until every agent has registered again.
restart_vrmd() {
  kill_vrmd
  start_vrmd
  wait_hosts ${#HOSTS[@]}
}

# random_request: sets REQ to the arguments of a random submit (dedicated or shared, a short
# window a few minutes ahead on the scaled clock).
REQ=()
random_request() {
  rnd 3 25
  local start=$R
  rnd 3 20
  local duration=$R
  rnd 1 10
  if ((R <= 6)); then
    rnd 1 4
    REQ=(--vms "$R" --template small)
  elif ((R <= 9)); then
    REQ=(--hosts 1 --template small)
  else
    REQ=(--hosts 1 --template pair)
  fi
  REQ+=(--start "+${start}min" --duration "${duration}min" --label fault-campaign)
}

# submit ARGS...: submits; an answer (admitted, exit 0, or rejected with its id, exit 1) is an
# acknowledgement and is recorded. Prints the id when there is one. Safe to run in the
# background (one short line appended per acknowledgement).
submit() {
  local out rc=0
  out=$(vrmctl --json --timeout-ms 4000 submit "$@" 2>/dev/null) || rc=$?
  if [[ $rc -eq 0 || $rc -eq 1 ]]; then
    local id
    id=$(jq -r '.id // empty' <<<"$out" 2>/dev/null || true)
    if [[ -n $id ]]; then
      echo "submit $id" >>"$acked"
      echo "$id"
    fi
  fi
}

# cancel ID: an ok answer is an acknowledgement that the reservation is cancelled.
cancel() {
  if vrmctl --timeout-ms 4000 cancel "$1" >/dev/null 2>&1; then echo "cancel $1" >>"$acked"; fi
}

# fetch VAR ARGS...: VAR = `vrmctl --json ARGS`, retried while vrmd is (re)starting.
fetch() {
  local -n into=$1
  shift
  for _ in $(seq 1 50); do
    if into=$(vrmctl --json "$@" 2>/dev/null); then return 0; fi
    sleep 0.1
  done
  violation "vrmd does not answer '$*'"
  into='[]'
  return 1
}

terminal_re='^(done|rejected|cancelled|failed)$'

# wait_all_terminal SECONDS: bounded real-time wait until every reservation has finished.
wait_all_terminal() {
  local list left=1
  for _ in $(seq 1 $(($1 * 10))); do
    fetch list list
    left=$(jq '[.[] | select(.state | test("^(done|rejected|cancelled|failed)$") | not)] | length' \
      <<<"$list")
    [[ $left -eq 0 ]] && return 0
    sleep 0.1
  done
  echo "$left reservations did not finish in $1 s:" >&2
  jq -r '.[] | select(.state | test("^(done|rejected|cancelled|failed)$") | not) |
    "  \(.id) \(.state): \(.events[-1].message)"' <<<"$list" >&2
  return 1
}

# check_invariants live|final LABEL: checks what vrmd acknowledged against what it reports and
# what the agents report (`vrmctl vms` is the agents' heartbeat inventories):
#  * every acknowledged reservation exists; an acknowledged cancel left it cancelled; at the
#    end ("final") every reservation is terminal;
#  * every failed or rejected reservation has a reason;
#  * every long-lived VM of the cluster is on exactly one host: running there, or (while its
#    move is being committed) only as the destination's incoming copy; at the end no incoming
#    copy may be left;
#  * no VM that nobody owns, and at the end no clone of a finished reservation;
#  * no host holds more cores or memory than it has (a parked VM, saved to its host's disk,
#    holds neither, as the agents count it); at the end every host is reachable and no VM is
#    left parked;
#  * vrmd never ignored a result for a command it had issued and forgotten (its log's "result
#    for unknown command": what the agent did then is nobody's; results for an earlier vrmd's
#    commands, after a restart, are logged otherwise).
check_invariants() {
  local mode=$1 label=$2 list vms hosts
  fetch list list || return 0
  fetch vms vms || return 0
  fetch hosts hosts || return 0
  # Through files: the list outgrows an argument.
  local d=$work/check
  mkdir -p "$d"
  printf '%s' "$list" >"$d/list.json"
  printf '%s' "$vms" >"$d/vms.json"
  printf '%s' "$hosts" >"$d/hosts.json"
  jq -R -s 'split("\n") | map(select(length > 0) | split(" ") | {what: .[0], id: .[1]})' \
    <"$acked" >"$d/acked.json"
  printf '%s\n' "${original_vms[@]}" | jq -R -s 'split("\n") | map(select(length > 0))' \
    >"$d/original.json"
  local found
  found=$(jq -n -r --slurpfile l "$d/list.json" --slurpfile v "$d/vms.json" \
    --slurpfile h "$d/hosts.json" --slurpfile a "$d/acked.json" --slurpfile o "$d/original.json" \
    --arg mode "$mode" '
    def terminal: test("^(done|rejected|cancelled|failed)$");
    $l[0] as $list | $v[0] as $vms | $h[0] as $hosts | $a[0] as $acked | $o[0] as $original
    |
    ($list | map({key: .id, value: .}) | from_entries) as $by
    | ($mode == "final") as $final
    | [$vms[] | select(.state != "incoming")] as $placed
    | (
        ($acked[] | . as $a | $by[$a.id] as $r
          | if $r == null then "acknowledged \($a.what) of \($a.id) is lost"
            elif $a.what == "cancel" and $r.state != "cancelled" then
              "cancel of \($a.id) was acknowledged but it is \($r.state)"
            else empty end),
        ($list[] | select($final and (.state | terminal | not))
          | "\(.id) did not finish: \(.state)"),
        ($list[] | select((.state == "failed" or .state == "rejected") and .reason == "")
          | "\(.id) is \(.state) without a reason"),
        ($placed | group_by(.id)[] | select(length > 1)
          | "VM \(.[0].id) is on \(length) hosts: \(map(.host) | join(", "))"),
        ($original[] | . as $v | select([$vms[] | select(.id == $v)] | length == 0)
          | "VM \($v) is lost"),
        ($vms[] | select(.reservation == "" and (.id as $v | $original | index($v) | not))
          | "VM \(.id) on \(.host) belongs to nobody"),
        ($vms[] | select($final and .state == "incoming")
          | "a prepared copy of \(.id) is left on \(.host)"),
        ($vms[] | select($final and .reservation != "") | . as $v | $by[$v.reservation] as $r
          | select($r == null or ($r.state | terminal))
          | "clone \($v.id) of \($v.reservation) (\($r.state // "unknown")) is left on \($v.host)"),
        ($vms[] | select($final and .state == "parked" and (.id as $v | $original | index($v)))
          | "\(.id) is still parked on \(.host) at the end"),
        ($hosts[] | . as $h | [$vms[] | select(.host == $h.name and .state != "parked")] as $on
          | ($on | map(.cpu_cores) | add // 0) as $cores
          | ($on | map(.memory_bytes) | add // 0) as $mem
          | select($cores > $h.cpu_cores or $mem > $h.memory_bytes)
          | "host \($h.name) overbooked: \($cores)/\($h.cpu_cores) cores, \($mem)/\($h.memory_bytes) bytes"),
        ($hosts[] | select($final and (.reachable | not)) | "host \(.name) is unreachable at the end")
      )')
  if [[ -n $found ]]; then
    while IFS= read -r line; do violation "$label: $line"; done <<<"$found"
  fi
  local unknown
  unknown=$(grep -c 'result for unknown command' "$work/vrmd.log" 2>/dev/null || true)
  if [[ ${unknown:-0} -gt ${unknown_seen:-0} ]]; then
    violation "$label: vrmd ignored $((unknown - ${unknown_seen:-0})) results for commands it had forgotten ($(grep -m1 'result for unknown command' "$work/vrmd.log"))"
    unknown_seen=$unknown
  fi
}

# outcome_summary: "N reservations: D done, F failed, ..." of the current list.
outcome_summary() {
  local list
  fetch list list || true
  jq -r 'length as $n | (group_by(.state) | map("\(length) \(.[0].state)") | join(", ")) as $s
    | "\($n) reservations (\($s))"' <<<"$list"
}

# failure_reasons: the distinct reasons of failed and rejected reservations, numbers elided.
failure_reasons() {
  local list
  fetch list list || true
  jq -r '[.[] | select(.state == "failed" or .state == "rejected")
    | "\(.state): \(.reason | gsub("r[0-9]+"; "rN") | gsub("[0-9][0-9:. -]*[0-9]"; "#"))"]
    | group_by(.) | map("  \(length) x \(.[0])") | .[]' <<<"$list"
}
