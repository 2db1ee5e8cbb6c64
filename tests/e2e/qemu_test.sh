#!/usr/bin/env bash
# Ensures vrm vacates a host of real VMs: vrmd plus two `vmschedd --backend qemu` agents on
# loopback (real time, TCG guests from tests/guest/). Host qa runs two memtouch guests, g1
# (allow_suspend: false, so a live migration) and g2 (allow_live: false, so suspend-copy-resume
# through the staging dirs); a dedicated reservation of qa makes vrmd migrate both to qb at the
# latest safe start and clone the reservation's VM on qa. Checks: the reservation becomes
# ready; g1 and g2 run on qb only, with their memory verified intact by the guests themselves
# after the move (a fresh console on qb prints "memtouch: verify ok", never "CORRUPT"); vrmd
# stored both migration observations, the suspend-copy-resume one with its save, copy and
# restore phases; no staged state is left behind. Skipped (77) without qemu-system-x86_64.
# Ports 17300-17349.
PORT=${PORT:-17300}
SCALE=1                      # real time: the guests are real
VRMD_EXTRA="--margin 2s"     # so the vacate starts soon after submission
source "$(dirname "$0")/lib.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
for tool in sqlite3 jq; do
  command -v $tool >/dev/null || { echo "skip: $tool not installed (scripts/install-deps.sh)"; exit 77; }
done

guest=$build/guest
source "$(dirname "$0")/qemu_lib.sh"
"$root/tests/guest/build-guest.sh" "$guest" >"$work/guest.log" 2>&1 ||
  { echo "FAIL: tests/guest/build-guest.sh" >&2; cat "$work/guest.log" >&2; exit 1; }

CLUSTER=$work/cluster.yaml
cat >"$CLUSTER" <<'YAML'
defaults:
  nic_bandwidth: 32 MiB/s
hosts:
  - name: qa
    cpu_cores: 4
    memory: 1 GiB
    vms:
      - {id: g1, cpu_cores: 1, memory: 128 MiB, nonzero_memory: 64 MiB, dirty_rate: 4 MiB/s,
         allow_suspend: false}
      - {id: g2, cpu_cores: 1, memory: 128 MiB, nonzero_memory: 64 MiB, dirty_rate: 4 MiB/s,
         allow_live: false}
  - name: qb
    cpu_cores: 4
    memory: 1 GiB
templates:
  - name: tiny
    cpu_cores: 1
    memory: 128 MiB
    clone_time: 20 s
    vms_per_host: 1
YAML

# lib.sh made keys for the hosts of the default cluster: make them again for qa and qb.
if [[ -z $INSECURE ]]; then
  rm -rf "$KEYS"
  make_keys
fi



# wait_verified HOST VM SECONDS: a "verify ok" in VM's newest console on HOST, no CORRUPT.
wait_verified() {
  local f
  for _ in $(seq 1 $((10 * $3))); do
    f=$(newest_console "$1" "$2")
    if [[ -n $f ]]; then
      grep -q CORRUPT "$f" && return 1
      grep -q "memtouch: verify ok" "$f" && return 0
    fi
    sleep 0.1
  done
  return 1
}

check() {  # check DESCRIPTION COMMAND...: counts a check that passes when COMMAND succeeds
  local what=$1
  shift
  checks=$((checks + 1))
  if "$@"; then echo "ok: $what"; else failures=$((failures + 1)); echo "FAIL: $what" >&2; fi
}

start_vrmd
TINY=(--backend-param "template.tiny.kernel=$guest/vmlinuz"
  --backend-param "template.tiny.initrd=$guest/initrd.img"
  --backend-param "template.tiny.append=$QEMU_GUEST_APPEND memtouch.mb=8 memtouch.rate=0"
  --backend-param "template.tiny.ready=memtouch: verify ok")
start_qemu_agent qa 17310 20 240s "${TINY[@]}"
start_qemu_agent qb 17330 20 240s "${TINY[@]}"
wait_hosts 2
check "g1 booted on qa with its memory filled and verified" wait_verified qa g1 180
check "g2 booted on qa with its memory filled and verified" wait_verified qa g2 180
# Two heartbeats with measured resident memory before planning.
sleep 5

submit_soon +40s --host qa --duration 10min --template tiny
check "dedicated reservation of qa admitted" test -n "$id"
[[ -n $id ]] || { finish; exit 1; }
vrmctl show "$id" | sed 's/^/  | /'

ready=0
for _ in $(seq 1 2400); do  # 240 s: vacate at the latest safe start, then a TCG boot
  state=$(state_of "$id")
  [[ $state =~ ^(ready|active)$ ]] && { ready=1; break; }
  [[ $state =~ ^(failed|cancelled)$ ]] && break
  sleep 0.1
done
check "reservation ready (is $(state_of "$id"))" test $ready -eq 1
vrmctl show "$id" | sed 's/^/  | /'

expect_exit 0 "inventory" -- vrmctl --json vms
for vm in g1 g2; do
  check "$vm is on qb, exactly once" test "$(jq -r --arg vm "$vm" '[.[] | select(.id == $vm) | .host] | join(",")' "$work/out")" = qb
done
check "qa runs only the reservation's VM" test "$(jq -r '[.[] | select(.host == "qa") | .reservation] | join(",")' "$work/out")" = "$id"

# The destination's console is a fresh file: its "verify ok" was computed after the move.
check "g1 memory intact on qb after live migration" wait_verified qb g1 60
check "g2 memory intact on qb after suspend-copy-resume" wait_verified qb g2 60

obs() { sqlite3 -separator ' ' "$work/vrm.db" "$1"; }
echo "  | observations: $(obs "SELECT vm_id, mode, end_ns - start_ns, downtime_ns, transferred_bytes, save_ns, copy_ns, restore_ns FROM observations" | tr '\n' ';')"
check "live observation of g1 stored" test "$(obs "SELECT count(*) FROM observations WHERE vm_id='g1' AND from_host='qa' AND to_host='qb' AND mode='live' AND transferred_bytes > 0 AND downtime_ns > 0")" -eq 1
check "suspend-copy-resume observation of g2 stored with its phases" test "$(obs "SELECT count(*) FROM observations WHERE vm_id='g2' AND mode='suspend-copy-resume' AND save_ns > 0 AND copy_ns > 0 AND restore_ns > 0 AND save_ns + copy_ns + restore_ns <= end_ns - start_ns")" -eq 1
check "no staged state left on qa" test -z "$(ls -A "$work/qa/stage")"
check "no staged state left on qb" test -z "$(ls -A "$work/qb/stage")"
finish
