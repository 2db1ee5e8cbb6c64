# Shared by the end-to-end tests on real QEMU (qemu_test.sh, qemu_ssh_restart_test.sh). Source it
# after lib.sh, with $guest set to the directory of the test guest (tests/guest/).

# The kernel command line every memtouch guest starts from.
QEMU_GUEST_APPEND="console=ttyS0 quiet panic=-1 memtouch.verify=1"

# start_qemu_agent HOST FIRST_PORT PORT_COUNT BOOT_TIMEOUT [ARG...]: a qemu-backend agent
# (mirrors lib.sh's start_agent) with TCG, its run and stage dirs under $work/HOST, migration
# ports FIRST_PORT.. (PORT_COUNT of them), a memtouch initial template; ARGs (the test's own
# templates, networking) are added as given. A restart uses the same directories and
# re-attaches to the guests.
start_qemu_agent() {
  local h=$1 first=$2 count=$3 boot=$4
  shift 4
  local security=()
  if [[ -z $INSECURE ]]; then
    security=(--curve-secret "$KEYS/$h.key" --server-key "$KEYS/vrmd.pub")
  fi
  mkdir -p "$work/$h"
  "$build/vmscheduler/vmschedd" --host "$h" --cluster "$CLUSTER" --vrmd "$AGENTS" "${security[@]}" \
    --backend qemu --heartbeat-interval 2s \
    --backend-param accel=tcg \
    --backend-param "run-dir=$work/$h/run" \
    --backend-param "stage-dir=$work/$h/stage" \
    --backend-param "migration-ports=$first-$((first + count - 1))" \
    --backend-param "boot-timeout=$boot" \
    --backend-param dirty-rate-interval=5s \
    --backend-param initial-template=memtouch \
    --backend-param "template.memtouch.kernel=$guest/vmlinuz" \
    --backend-param "template.memtouch.initrd=$guest/initrd.img" \
    --backend-param "template.memtouch.append=$QEMU_GUEST_APPEND memtouch.mb=40 memtouch.rate=1000" \
    "$@" >>"$work/$h.log" 2>&1 &
  agent_pids[$h]=$!
}

# newest_console HOST VM: the serial log of VM's latest QEMU on HOST.
newest_console() { ls -t "$work/$1/run/$2".*.serial 2>/dev/null | head -n 1; }

# submit_soon START [ARG...]: `vrmctl submit --start START ARG...`, printing each rejection. The
# plan's vacate time depends on the guests' measured dirty rates, which a loaded machine (CI runs
# two tests at once) or a guest writing a file raises for a while (33 s to 1 m 39 s predicted for
# moves that take 4 s), so a start too soon is retried at the earliest feasible start vrmd names
# in its rejection, plus 10 s: that start being admitted is itself checked. Up to four tries.
# Sets id to the admitted reservation's, or to "" when none was.
submit_soon() {
  local start=$1 earliest
  shift
  id=""
  for _ in 1 2 3 4; do
    if vrmctl submit --start "$start" "$@" >"$work/out" 2>"$work/err"; then
      id=$(head -n 1 "$work/out" | awk '{print $1}')
      return 0
    fi
    sed 's/^/  | /' "$work/out" "$work/err"
    earliest=$(sed -n 's/.*earliest feasible start *\([0-9T:.Z-]*\).*/\1/p' "$work/out" | head -n 1)
    [[ -n $earliest ]] || return 0
    start=$(date -u -d "$earliest + 10 seconds" +%Y-%m-%dT%H:%M:%SZ)
  done
}
