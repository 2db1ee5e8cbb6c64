#!/usr/bin/env bash
# Ensures parking end to end (real vrmd and sim agents, clock x600): node1's VMs have no room on
# the other hosts, so the dedicated reservation parks them on node1 (saved, stopped) instead of
# moving them; during the window node1 runs only the clone and lists them parked; after the
# window they run on node1 again, each VM listed exactly once.
PORT=${PORT:-17550}
cluster=$(mktemp -t vrm-park-cluster.XXXXXX.yaml)
cat >"$cluster" <<'YAML'
defaults:
  nic_bandwidth: 1 Gbit/s
hosts:
  - name: node1
    cpu_cores: 32
    memory: 64 GiB
    vms:
      - {id: pa, cpu_cores: 4, memory: 8 GiB, nonzero_memory: 4 GiB, dirty_rate: 8 MiB/s}
      - {id: pb, cpu_cores: 4, memory: 8 GiB, nonzero_memory: 2 GiB, dirty_rate: 2 MiB/s}
  - name: node2
    cpu_cores: 32
    memory: 64 GiB
    vms:
      - {id: big2, cpu_cores: 8, memory: 60 GiB, nonzero_memory: 30 GiB, dirty_rate: 1 MiB/s}
  - name: node3
    cpu_cores: 32
    memory: 64 GiB
    vms:
      - {id: big3, cpu_cores: 8, memory: 60 GiB, nonzero_memory: 30 GiB, dirty_rate: 1 MiB/s}
templates:
  - name: small
    cpu_cores: 2
    memory: 4 GiB
    clone_time: 30 s
    vms_per_host: 1
YAML
CLUSTER=$cluster
source "$(dirname "$0")/lib.sh"
mv "$cluster" "$work/cluster.yaml"  # removed with $work on exit
CLUSTER=$work/cluster.yaml
command -v jq >/dev/null || { echo "jq is not installed (scripts/install-deps.sh installs it)"; exit 1; }
start_cluster

expect_exit 0 "submit a host whose VMs have nowhere to go" -- \
  vrmctl submit --host node1 --start +30min --duration 30min --template small
id=$(head -n 1 "$work/out" | awk '{print $1}')
expect_exit 0 "show" -- vrmctl --json show "$id"
checks=$((checks + 1))
if [[ $(jq '[.plan.moves[] | select(.mode == "suspend")] | length' "$work/out") -eq 2 ]]; then
  echo "ok: the plan parks pa and pb"
else
  failures=$((failures + 1)); echo "FAIL: the plan does not park both VMs" >&2; cat "$work/out" >&2
fi

wait_state "$id" 'active'
expect_exit 0 "vms during the window" -- vrmctl --json vms
for vm in pa pb; do
  checks=$((checks + 1))
  got=$(jq -r --arg id "$vm" '[.[] | select(.id == $id)] | map(.host + ":" + .state) | join(",")' "$work/out")
  if [[ $got == node1:parked ]]; then echo "ok: $vm parked on node1"; else
    failures=$((failures + 1)); echo "FAIL: $vm is $got during the window" >&2; fi
done
checks=$((checks + 1))
running=$(jq -r '[.[] | select(.host == "node1" and .state == "running")] | map(.id) | join(",")' "$work/out")
if [[ $running == "$id-small-1" ]]; then echo "ok: node1 runs only the clone"; else
  failures=$((failures + 1)); echo "FAIL: node1 runs $running during the window" >&2; fi

wait_state "$id" 'done'
expect_exit 0 "show after the window" -- vrmctl show "$id"
expect_output "2 of 2 parked VMs unparked" "the parked VMs were unparked"
expect_exit 0 "vms after the window" -- vrmctl --json vms
for vm in pa pb; do
  checks=$((checks + 1))
  got=$(jq -r --arg id "$vm" '[.[] | select(.id == $id)] | map(.host + ":" + .state) | join(",")' "$work/out")
  if [[ $got == node1:running ]]; then echo "ok: $vm runs on node1 again"; else
    failures=$((failures + 1)); echo "FAIL: $vm is $got after the window" >&2; fi
done
finish
