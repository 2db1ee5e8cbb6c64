#!/usr/bin/env bash
# Ensures vrmctl's commands work against a running vrmd and that every kind of bad input or
# refusal gets its documented exit code (0 ok, 1 rejected, 2 bad input, 3 unreachable) and a
# one-line reason.
PORT=${PORT:-16655}
source "$(dirname "$0")/lib.sh"
start_cluster

expect_exit 0 "hosts lists three hosts" -- vrmctl hosts
expect_output "node3" "hosts table names node3"
expect_exit 0 "vms --json" -- vrmctl --json vms
expect_output '"id": "db-1"' "vms JSON carries VM ids"

expect_exit 2 "end before start" -- vrmctl submit --hosts 1 --start +2h --end +1h --template small
expect_output "end must be after start" "says why"
expect_exit 2 "unparseable start" -- vrmctl submit --hosts 1 --start soonish --duration 1h --template small
expect_output "ISO 8601" "lists the accepted forms"
expect_exit 2 "start in the past" -- vrmctl submit --hosts 1 --start 2001-01-01T00:00:00Z --duration 1h --template small
expect_exit 2 "zero hosts" -- vrmctl submit --hosts 0 --start +2h --duration 1h --template small
expect_exit 2 "more hosts than the cluster has" -- vrmctl submit --hosts 9 --start +2h --duration 1h --template small
expect_output "cluster has 3" "says how many there are"
expect_exit 2 "unknown template" -- vrmctl submit --hosts 1 --start +2h --duration 1h --template nope
expect_exit 2 "unknown host" -- vrmctl submit --host node9 --start +2h --duration 1h --template small
expect_exit 2 "bad duration unit" -- vrmctl submit --hosts 1 --start +2h --duration 1parsec --template small
expect_exit 2 "missing required flag" -- vrmctl submit --hosts 1 --duration 1h --template small
expect_exit 1 "too late to vacate is rejected" -- vrmctl submit --hosts 1 --start +20s --duration 1h --template small
expect_output "earliest feasible start" "offers the earliest feasible start"
expect_exit 0 "dry run admits" -- vrmctl --json submit --hosts 1 --start +3h --duration 1h --template small --dry-run
expect_output '"state": "admitted"' "dry-run decision in JSON"
expect_exit 0 "degradation objective" -- vrmctl --json submit --hosts 1 --start +3h --duration 1h --template small --dry-run --objective degradation --max-vm-time 10min
expect_output '"strategy"' "a plan comes back"
expect_exit 2 "unknown objective" -- vrmctl submit --hosts 1 --start +3h --duration 1h --template small --objective fastest
expect_exit 0 "list is empty after a dry run" -- vrmctl --json list --state admitted
expect_output '^\[\]$' "nothing was booked"

expect_exit 0 "submit a dedicated reservation" -- vrmctl submit --hosts 1 --start +3h --duration 1h --template small
id=$(head -n 1 "$work/out" | awk '{print $1}')
expect_exit 0 "show it" -- vrmctl --json show "$id"
expect_output '"latest_safe_start"' "plan has a latest safe start"
expect_exit 0 "list by owner" -- vrmctl list --owner tester
expect_output "$id" "listed"
intruder=(env VRM_OWNER=intruder)  # insecure mode: the name it claims; with keys: its key
[[ -n $INSECURE ]] || intruder+=(VRM_CLIENT_KEY="$KEYS/intruder.key")
expect_exit 1 "another owner cannot cancel" -- "${intruder[@]}" "$build/clients/vrmctl" cancel "$id"
expect_output "unauthorized" "says unauthorized"
if [[ -z $INSECURE ]]; then
  # The key is the identity: claiming to be the owner does not help.
  expect_exit 1 "claiming the owner's name is not enough" -- env VRM_OWNER=tester VRM_CLIENT_KEY="$KEYS/intruder.key" "$build/clients/vrmctl" cancel "$id"
  expect_output "unauthorized" "says unauthorized"
  expect_exit 0 "others see the reservation" -- env VRM_CLIENT_KEY="$KEYS/intruder.key" "$build/clients/vrmctl" show "$id"
  "$build/clients/vrmctl" keygen --dir "$work" stranger >/dev/null
  expect_exit 1 "an unknown key gets no service" -- env VRM_CLIENT_KEY="$work/stranger.key" "$build/clients/vrmctl" hosts
  expect_output "refused our key" "and is told why"
  expect_exit 1 "no keys at all get no service" -- env -u VRM_CLIENT_KEY -u VRM_SERVER_KEY "$build/clients/vrmctl" hosts
  expect_output "requires CURVE keys" "and are told why"
  expect_exit 2 "a wrong key file is bad input" -- env VRM_CLIENT_KEY="$work/stranger.pub" "$build/clients/vrmctl" hosts
fi
expect_exit 0 "the owner cancels" -- vrmctl cancel "$id"
expect_exit 1 "cancelling twice is refused" -- vrmctl cancel "$id"
expect_exit 2 "unknown reservation" -- vrmctl show r999
expect_exit 2 "unknown state filter" -- vrmctl list --state sleepy

if [[ -z $INSECURE ]]; then
  expect_exit 0 "a reservation to be cancelled by the operator" -- vrmctl submit --hosts 1 --start +3h --duration 1h --template small
  id2=$(head -n 1 "$work/out" | awk '{print $1}')
  expect_exit 0 "the admin cancels another's reservation" -- env VRM_CLIENT_KEY="$KEYS/operator.key" "$build/clients/vrmctl" cancel "$id2"
  expect_output "cancelled by operator \(admin\)" "and the reason names the admin"
fi
expect_exit 0 "shared reservation" -- vrmctl submit --vms 2 --start +1h --duration 1h --template small --wait --wait-timeout 1min
expect_output "handles" "returns handles when ready"

expect_exit 3 "unreachable vrmd" -- vrmctl --vrmd tcp://127.0.0.1:1 --timeout-ms 300 hosts
expect_output "did not answer|cannot reach" "says vrmd cannot be reached"

# Configuration: flags > environment > config file.
printf 'vrmd = tcp://127.0.0.1:1\ntimeout-ms = 300\n' >"$work/vrmctl.conf"
expect_exit 3 "config file endpoint is used" -- env -u VRM_ENDPOINT "$build/clients/vrmctl" --config "$work/vrmctl.conf" hosts
expect_exit 0 "environment overrides the config file" -- vrmctl --config "$work/vrmctl.conf" hosts
expect_exit 0 "a flag overrides both" -- env VRM_ENDPOINT=tcp://127.0.0.1:1 "$build/clients/vrmctl" --config "$work/vrmctl.conf" --vrmd "$CLIENTS" hosts
printf 'colour = blue\n' >"$work/bad.conf"
expect_exit 2 "unknown config key" -- vrmctl --config "$work/bad.conf" hosts
expect_output "bad.conf:1: unknown key" "names the file and line"

# The example job manager: the client library's submit and waitUntilReady against the sim.
expect_exit 0 "example job manager gets its VMs" -- "$build/examples/job_manager" --hosts 1 --start +15min --duration 1h --template small --job ./decode --wait 1min
expect_output "ssh vrm@" "and submits its job to the handles"
finish
