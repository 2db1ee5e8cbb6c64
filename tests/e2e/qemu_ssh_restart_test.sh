#!/usr/bin/env bash
# Ensures a reservation on real VMs gives a handle a person logs in with, and survives `kill -9`
# of the agents: vrmd plus two `vmschedd --backend qemu` agents on loopback (real time, TCG),
# user-mode networking with a forwarded SSH port. Host qa runs a memtouch guest g1 (the dropbear
# test guest, the owner's key on its command line: the test writes a 4 MiB file in it over SSH
# and reads its md5 back after the live move and after the agents' restart); a dedicated
# reservation of qa with the owner's SSH key makes vrmd migrate g1 live to qb and clone the
# reservation's VM on qa from the dropbear test guest (tests/guest/build-guest-ssh.sh).
# Checks: the reservation becomes ready; `vrmctl show` gives the clone's handle (address, port,
# account, address source, ssh line) and the test runs a command in the clone with exactly that
# ssh line plus its key; then both agents are killed with `kill -9` mid-reservation and
# restarted: every guest's QEMU is the same process, listed once on its host, g1's memory
# verified intact by the guest itself after the restart, and the same handle still logs in (qa's
# agent was also killed once while the clone booted: the clone is reported ready only once its
# SSH answers, and the first ssh through the handle has no retry); the
# reservation's clone is then killed while qa's agent is down again: the restarted agent reports
# it lost and vrmd says so in the reservation's events and marks it at risk (issue 13 item 2);
# the reservation then ends (done), g1 still runs on qb.
# Skipped (77) without qemu-system-x86_64, ssh, ssh-keygen, dropbear or jq. Ports 17360-17399.
PORT=${PORT:-17360}
SCALE=1                   # real time: the guests are real
VRMD_EXTRA="--margin 2s"  # so the vacate starts soon after submission
source "$(dirname "$0")/lib.sh"
for tool in qemu-system-x86_64 ssh ssh-keygen dropbear jq; do
  command -v $tool >/dev/null || { echo "skip: $tool not installed (scripts/install-deps.sh)"; exit 77; }
done
t0=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - t0) / 1000000 )) ms"; }

guest=$build/guest
source "$(dirname "$0")/qemu_lib.sh"
"$root/tests/guest/build-guest-ssh.sh" "$guest" >"$work/guest.log" 2>&1 ||
  { echo "FAIL: tests/guest/build-guest-ssh.sh" >&2; cat "$work/guest.log" >&2; exit 1; }
ssh-keygen -q -t ed25519 -N '' -C owner -f "$work/owner"

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
  - name: qb
    cpu_cores: 4
    memory: 1 GiB
templates:
  - name: sshvm
    cpu_cores: 1
    memory: 128 MiB
    clone_time: 25 s
    vms_per_host: 1
YAML

# lib.sh made keys for the hosts of the default cluster: make them again for qa and qb.
if [[ -z $INSECURE ]]; then
  rm -rf "$KEYS"
  make_keys
fi


check() {  # check DESCRIPTION COMMAND...: counts a check that passes when COMMAND succeeds
  local what=$1
  shift
  checks=$((checks + 1))
  if "$@"; then echo "ok: $what"; else failures=$((failures + 1)); echo "FAIL: $what" >&2; fi
}

verified_count() {
  local n
  n=$(grep -c "memtouch: verify ok" "$(newest_console "$1" "$2")" 2>/dev/null) || true
  echo "${n:-0}"
}

# wait_verified_after HOST VM N SECONDS: more than N "verify ok" in VM's newest console, no
# CORRUPT (memtouch checks every page once a second).
wait_verified_after() {
  local f
  for _ in $(seq 1 $((10 * $4))); do
    f=$(newest_console "$1" "$2")
    if [[ -n $f ]]; then
      grep -q CORRUPT "$f" && return 1
      [[ $(grep -c "memtouch: verify ok" "$f") -gt $3 ]] && return 0
    fi
    sleep 0.1
  done
  return 1
}

# qemu_pid HOST VM: the pid in VM's state file on HOST ("" without one).
qemu_pid() { jq -r '.pid' "$work/$1/run/vms/$2.vm.json" 2>/dev/null || true; }
alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }
gone() { for _ in $(seq 1 100); do alive "$1" || return 0; sleep 0.1; done; return 1; }

# ssh_handle COMMAND: runs COMMAND in the clone with the handle's own ssh line (from `vrmctl
# show`), adding only the owner's key and non-interactive options.
ssh_handle() {
  local words
  read -ra words <<<"$ssh_line"
  "${words[0]}" -i "$work/owner" -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o ConnectTimeout=20 -o LogLevel=ERROR "${words[@]:1}" "$1"
}

# registrations HOST: how many times HOST's agent (all its runs) registered with vrmd.
registrations() {
  local n
  n=$(grep -c "host $1 registered with vrmd" "$work/$1.log" 2>/dev/null) || true
  echo "${n:-0}"
}
wait_registered() {  # wait_registered HOST N: bounded, until HOST registered more than N times
  for _ in $(seq 1 300); do
    [[ $(registrations "$1") -gt $2 ]] && return 0
    sleep 0.1
  done
  return 1
}

# ssh_port PORT COMMAND: runs COMMAND as root in the guest whose SSH the host forwards at
# 127.0.0.1:PORT, with the owner's key (g1 has it on its template's command line).
ssh_port() {
  ssh -i "$work/owner" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=20 -o LogLevel=ERROR -p "$1" root@127.0.0.1 "$2"
}
# g1_ssh HOST COMMAND: COMMAND in g1 through HOST's forward of g1's SSH port (from its state file).
g1_ssh() {
  local port
  port=$(jq -r '.ssh_forward_port' "$work/$1/run/vms/g1.vm.json" 2>/dev/null) || return 1
  [[ $port =~ ^[1-9][0-9]*$ ]] || return 1
  ssh_port "$port" "$2"
}
# wait_g1_ssh HOST: bounded (60 s), until g1 answers a command over SSH on HOST.
wait_g1_ssh() {
  for _ in $(seq 1 60); do
    g1_ssh "$1" true >/dev/null 2>&1 && return 0
    sleep 1
  done
  return 1
}
# A file in g1's root file system, written before the move and read back after it and after
# the agents' restart (the test guest's root is its initramfs, in guest RAM: what the check
# covers is a file's contents through the live migration).
G1_FILE_CMD='head -c 4194304 /dev/urandom >/root/blob && sync && md5sum /root/blob'
G1_READ_CMD='md5sum /root/blob'
# And g1's data disk (/dev/vda, a raw file in the agents' shared disk-dir): 4 MiB written
# through the block device, read back after the move and the restart with the guest's page
# cache dropped first, so the bytes come from the disk QEMU on qb opened.
G1_DISK_CMD='head -c 4194304 /dev/urandom >/dev/vda && sync && echo 3 >/proc/sys/vm/drop_caches && head -c 4194304 /dev/vda | md5sum'
G1_DISK_READ_CMD='echo 3 >/proc/sys/vm/drop_caches && head -c 4194304 /dev/vda | md5sum'
disk_file_sum() { head -c 4194304 "$work/disks/g1.data.raw" | md5sum | awk '{print $1}'; }

start_vrmd
# User-mode networking with a forwarded SSH port, and the dropbear guest as the clone.
key_arg="vrm.ssh_key=$(awk '{print $1 "," $2}' "$work/owner.pub")"
mkdir -p "$work/disks"  # both agents' disk-dir: storage the two hosts share
SSHVM=(--backend-param network=user
  --backend-param "disk-dir=$work/disks"
  --backend-param initial-template=sshmem
  --backend-param template.sshmem.data-disk=16MiB
  --backend-param "template.sshmem.kernel=$guest/vmlinuz"
  --backend-param "template.sshmem.initrd=$guest/initrd-ssh.img"
  --backend-param "template.sshmem.append=$QEMU_GUEST_APPEND rdinit=/vrm-ssh-init memtouch.mb=40 memtouch.rate=1000 $key_arg"
  --backend-param "template.sshvm.kernel=$guest/vmlinuz"
  --backend-param "template.sshvm.initrd=$guest/initrd-ssh.img"
  --backend-param "template.sshvm.append=$QEMU_GUEST_APPEND rdinit=/vrm-ssh-init memtouch.mb=16"
  --backend-param "template.sshvm.ready=vrm-guest: up"
  --backend-param template.sshvm.ssh=on)
start_qemu_agent qa 17370 10 180s "${SSHVM[@]}"
start_qemu_agent qb 17380 10 180s "${SSHVM[@]}"
wait_hosts 2
check "g1 booted on qa with its memory verified" wait_verified_after qa g1 0 120
check "g1 answers over SSH on qa" wait_g1_ssh qa
g1_sum=$(g1_ssh qa "$G1_FILE_CMD" 2>&1 | awk '{print $1}') || true
check "a 4 MiB file written in g1 on qa (md5 ${g1_sum:-none})" test ${#g1_sum} -eq 32
disk_sum=$(g1_ssh qa "$G1_DISK_CMD" 2>&1 | awk '{print $1}') || true
check "4 MiB written to g1's data disk on qa (md5 ${disk_sum:-none})" test ${#disk_sum} -eq 32
check "the disk file holds what g1 wrote" test "$(disk_file_sum)" = "$disk_sum"

submit_soon +45s --host qa --duration 90s --template sshvm --ssh-key "$work/owner.pub"
check "dedicated reservation of qa admitted ($(elapsed))" test -n "$id"
[[ -n $id ]] || { finish; exit 1; }

# qa's agent is killed while the clone boots: the restarted agent must check its readiness again
# (console, SSH banner) before vrmd hears it is ready, so the ssh below works at once.
cloning_file() {  # the state file of a VM cloning on qa ("" while none)
  local f
  for f in "$work"/qa/run/vms/*.vm.json; do
    [[ -e $f && $(jq -r '.state' "$f" 2>/dev/null) == cloning ]] && { echo "$f"; return 0; }
  done
  return 0
}
booting=""
for _ in $(seq 1 3000); do  # 300 s: vacate at the latest safe start, then the clone's start
  booting=$(cloning_file)
  [[ -n $booting ]] && break
  [[ $(state_of "$id") =~ ^(ready|active|failed|cancelled|done)$ ]] && break
  sleep 0.1
done
check "the clone was seen booting on qa" test -n "$booting"
if [[ -n $booting ]]; then
  booting_vm=$(jq -r '.id' "$booting")
  regs_qa=$(registrations qa)
  kill -9 "${agent_pids[qa]}"
  wait "${agent_pids[qa]}" 2>/dev/null || true
  check "the clone had not booted when qa's agent was killed" \
    test -z "$(grep -l 'vrm-guest: up' "$(newest_console qa "$booting_vm")")"
  start_qemu_agent qa 17370 10 180s "${SSHVM[@]}"
  check "qa's agent registered again mid-boot" wait_registered qa "$regs_qa"
  check "qa re-checks the booting clone's readiness" \
    grep -q "vm $booting_vm: clone (operation [0-9]*) was booting: its readiness is checked again" "$work/qa.log"
fi

ready=0
for _ in $(seq 1 3000); do  # 300 s: vacate at the latest safe start, then a TCG boot
  state=$(state_of "$id")
  [[ $state =~ ^(ready|active)$ ]] && { ready=1; break; }
  [[ $state =~ ^(failed|cancelled|done)$ ]] && break
  sleep 0.1
done
check "reservation ready (is $(state_of "$id"), $(elapsed))" test $ready -eq 1
[[ $ready -eq 1 ]] || { vrmctl show "$id" | sed 's/^/  | /'; finish; exit 1; }
vrmctl show "$id" | sed 's/^/  | /'

vrmctl --json show "$id" >"$work/show.json"
handle=$(jq -c '.handles[0]' "$work/show.json")
ssh_line=$(jq -r '.handles[0].ssh' "$work/show.json")
clone=$(jq -r '.handles[0].vm' "$work/show.json")
port=$(jq -r '.handles[0].port' "$work/show.json")
echo "  | handle: $handle"
check "the handle is on qa with a forwarded port" test "$(jq -r '.handles[0].host' "$work/show.json")" = qa -a "$port" -gt 0
check "the handle says where its address comes from" \
  grep -q "forwards 127.0.0.1:$port" <<<"$(jq -r '.handles[0].address_source' "$work/show.json")"
check "the handle gives an ssh line (is '$ssh_line')" test "$ssh_line" = "ssh -p $port root@127.0.0.1"
# At once, no retry: the clone is reported ready only when its SSH server answers.
ssh_handle 'echo in-$(cat /sys/class/net/eth0/address)-as-$(id -u)' >"$work/ssh1" 2>&1 || true
check "a command runs in the clone through the handle ($(elapsed))" grep -q -- "-as-0" "$work/ssh1"
sed 's/^/  | ssh: /' "$work/ssh1"

expect_exit 0 "inventory before the restart" -- vrmctl --json vms
check "g1 is on qb" test "$(jq -r '[.[] | select(.id == "g1") | .host] | join(",")' "$work/out")" = qb
check "vrmctl vms gives the clone's ssh port" \
  test "$(jq -r --arg vm "$clone" '.[] | select(.id == $vm) | .ssh_port' "$work/out")" = "$port"
check "vrmctl vms shows the clone at 127.0.0.1:$port" grep -q " 127.0.0.1:$port " <<<"$(vrmctl vms)"
check "g1 answers over SSH on qb" wait_g1_ssh qb
check "g1's file reads back the same after the move" \
  test "$(g1_ssh qb "$G1_READ_CMD" 2>&1 | awk '{print $1}')" = "$g1_sum"
check "g1's data disk reads back the same on qb after the move" \
  test "$(g1_ssh qb "$G1_DISK_READ_CMD" 2>&1 | awk '{print $1}')" = "$disk_sum"
pid_g1=$(qemu_pid qb g1)
pid_clone=$(qemu_pid qa "$clone")
check "g1 has a running QEMU on qb (pid $pid_g1)" alive "$pid_g1"
check "the clone has a running QEMU on qa (pid $pid_clone)" alive "$pid_clone"

# Both agents die mid-reservation (in its window), no destructor runs; the guests stay.
check "the window started" wait_state "$id" active 300  # ready long before a late start
regs_qa=$(registrations qa)
regs_qb=$(registrations qb)
kill -9 "${agent_pids[qa]}" "${agent_pids[qb]}"
wait "${agent_pids[qa]}" "${agent_pids[qb]}" 2>/dev/null || true
check "mid-reservation at the kill (is $(state_of "$id"))" test "$(state_of "$id")" = active
check "g1's QEMU outlives its agent" alive "$pid_g1"
check "the clone's QEMU outlives its agent" alive "$pid_clone"
verified_before=$(verified_count qb g1)
restart_at=$(date +%s%N)
start_qemu_agent qa 17370 10 180s "${SSHVM[@]}"
start_qemu_agent qb 17380 10 180s "${SSHVM[@]}"
check "qa's agent registered again" wait_registered qa "$regs_qa"
check "qb's agent registered again" wait_registered qb "$regs_qb"
echo "  | agents restarted and registered in $(( ($(date +%s%N) - restart_at) / 1000000 )) ms"
grep -h "re-attached" "$work/qa.log" "$work/qb.log" | sed 's/^/  | /'
check "qa re-attached the clone" grep -q "re-attached vm $clone (pid $pid_clone, running)" "$work/qa.log"
check "qb re-attached g1" grep -q "re-attached vm g1 (pid $pid_g1, running)" "$work/qb.log"
sleep 3  # a heartbeat (2 s) with the re-attached inventory
expect_exit 0 "inventory after the restart" -- vrmctl --json vms
check "g1 is listed once, on qb, running" \
  test "$(jq -r '[.[] | select(.id == "g1") | .host + "/" + .state] | join(",")' "$work/out")" = qb/running
check "the clone is listed once, on qa, running" \
  test "$(jq -r --arg vm "$clone" '[.[] | select(.id == $vm) | .host + "/" + .state] | join(",")' "$work/out")" = qa/running
check "g1's memory verified intact after the restart" wait_verified_after qb g1 "$verified_before" 30
check "g1's file reads back the same after the restart" \
  test "$(g1_ssh qb "$G1_READ_CMD" 2>&1 | awk '{print $1}')" = "$g1_sum"
check "g1's data disk reads back the same after the restart" \
  test "$(g1_ssh qb "$G1_DISK_READ_CMD" 2>&1 | awk '{print $1}')" = "$disk_sum"
vrmctl --json show "$id" >"$work/show2.json"
check "vrmctl shows the same handle" test "$(jq -c '.handles[0]' "$work/show2.json")" = "$handle"
ssh_handle 'echo again-as-$(id -u)' >"$work/ssh2" 2>&1 || true
check "the same handle still logs in after the restart" grep -q "again-as-0" "$work/ssh2"
sed 's/^/  | ssh: /' "$work/ssh2"

# The clone dies while qa's agent is down: the restarted agent reports it lost, and vrmd says so
# in the reservation's events (naming the VM and what happened), marks it at risk and keeps it
# active (no handle for the lost clone); the end does not wait for it.
regs_qa=$(registrations qa)
kill -9 "${agent_pids[qa]}"
wait "${agent_pids[qa]}" 2>/dev/null || true
kill -9 "$pid_clone"
check "the clone's QEMU is killed while qa's agent is down" gone "$pid_clone"
start_qemu_agent qa 17370 10 180s "${SSHVM[@]}"
check "qa's agent registered again after the clone died" wait_registered qa "$regs_qa"
lost_event() {  # the reservation's event saying the clone was lost ("" until there is one)
  vrmctl --json show "$id" 2>/dev/null |
    jq -r --arg vm "$clone" '.events[].message | select(startswith("lost: host qa lost VM " + $vm + " (running): "))'
}
lost=""
for _ in $(seq 1 100); do
  lost=$(lost_event)
  [[ -n $lost ]] && break
  sleep 0.1
done
echo "  | $lost"
check "vrmd reports the clone lost, with the reason" grep -q "has exited" <<<"$lost"
vrmctl --json show "$id" >"$work/show3.json"
check "the reservation is still active (is $(jq -r .state "$work/show3.json"))" \
  test "$(jq -r .state "$work/show3.json")" = active
check "the reservation is at risk, naming the clone" \
  grep -q "clone $clone on qa was lost" <<<"$(jq -r '.risk_reason // ""' "$work/show3.json")"
check "the lost clone has no handle" test "$(jq '.handles | length' "$work/show3.json")" -eq 0
check "vrmctl show says AT RISK" grep -q "AT RISK" <<<"$(vrmctl show "$id")"

done_=0
for _ in $(seq 1 1500); do  # the window's end (up to 150 s), then the teardown
  state=$(state_of "$id")
  [[ $state == done ]] && { done_=1; break; }
  [[ $state =~ ^(failed|cancelled)$ ]] && break
  sleep 0.1
done
check "reservation done (is $(state_of "$id"), $(elapsed))" test $done_ -eq 1
vrmctl show "$id" | sed 's/^/  | /'
check "the clone's QEMU is gone" gone "$pid_clone"
check "g1's QEMU still runs, the same process" alive "$pid_g1"
expect_exit 0 "inventory at the end" -- vrmctl --json vms
check "g1's data disk is still there (g1 runs)" test -e "$work/disks/g1.data.raw"
check "g1 still on qb" test "$(jq -r '[.[] | select(.id == "g1") | .host + "/" + .state] | join(",")' "$work/out")" = qb/running
check "the clone is gone from the inventory" \
  test -z "$(jq -r --arg vm "$clone" '.[] | select(.id == $vm) | .host' "$work/out")"
check "the clone's state file is gone" test ! -e "$work/qa/run/vms/$clone.vm.json"
echo "  | total $(elapsed)"
finish
