#!/usr/bin/env bash
# Ensures an acknowledged reservation survives `kill -9` of vrmd: before its vacate and in the
# middle of it; after a restart the reservation completes with every VM on exactly one host.
PORT=${PORT:-16755}
source "$(dirname "$0")/lib.sh"
start_cluster

expect_exit 0 "submit" -- vrmctl submit --host node1 --start +10min --duration 4h --template small
id=$(head -n 1 "$work/out" | awk '{print $1}')
kill -9 "$vrmd_pid"
wait "$vrmd_pid" 2>/dev/null || true
start_vrmd
wait_hosts 3
expect_exit 0 "acknowledged reservation is still there after kill -9" -- vrmctl show "$id"
expect_output "admitted" "still admitted"

# Kill vrmd again as soon as the vacate has started.
for _ in $(seq 1 300); do
  [[ $(state_of "$id") == vacating ]] && break
  sleep 0.02
done
kill -9 "$vrmd_pid"
wait "$vrmd_pid" 2>/dev/null || true
start_vrmd
wait_hosts 3
wait_state "$id" 'ready|active'
expect_exit 0 "ready after a crash mid-vacate" -- vrmctl show "$id"
expect_output "^r[0-9]+ +(ready|active)" "ready or active"
expect_output "handles" "with handles"
expect_exit 0 "inventory" -- vrmctl --json vms
expect_once web-1 db-1 web-2 batch-1 ci-1 ci-2
grep -q '"host": "node1"' <(grep -A3 '"id": "web-1"' "$work/out") &&
  { failures=$((failures + 1)); echo "FAIL: web-1 still on node1" >&2; } || echo "ok: node1 vacated"
finish
