#!/usr/bin/env bash
# Ensures `vrmctl backup` writes a consistent copy of a running vrmd's store that only admins may
# take, that never overwrites a file, and that restores: a vrmd started on the copy has exactly
# the reservations booked before the backup (README "Backups").
PORT=${PORT:-17400}
source "$(dirname "$0")/lib.sh"
start_cluster

for at in +2h +5h; do
  expect_exit 0 "submit a shared booking at $at" -- vrmctl submit --vms 1 --start "$at" --duration 1h --template small
done
expect_exit 0 "list before the backup" -- vrmctl -f value -c id list
before=$(sort "$work/out" | tr '\n' ' ')

expect_exit 1 "a user may not back up the store" -- vrmctl backup "$work/user.db"
expect_output "admins only" "says who may"
checks=$((checks + 1))
if [[ -e $work/user.db || -e $work/user.db.partial ]]; then
  failures=$((failures + 1)); echo "FAIL: a refused backup left a file" >&2
else echo "ok: a refused backup leaves no file"; fi

admin() { VRM_CLIENT_KEY=$KEYS/operator.key vrmctl "$@"; }
expect_exit 0 "an admin backs up the store" -- admin backup "$work/backup.db"
expect_output "backed up 2 reservations" "reports what it holds"
expect_exit 2 "a second backup to the same file is refused" -- admin backup "$work/backup.db"
expect_output "exists" "says the file exists"
expect_exit 0 "json output" -- admin --json backup "$work/backup2.db"
expect_output '"reservations":2' "json names the reservations"

# An independent reader (Python's sqlite3) finds a whole database with both reservations.
checks=$((checks + 1))
if python3 - "$work/backup.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
assert db.execute("SELECT COUNT(*) FROM reservations").fetchone()[0] == 2
PY
then echo "ok: the backup is a whole SQLite database with 2 reservations"; else
  failures=$((failures + 1)); echo "FAIL: the backup does not read back" >&2; fi

# Booked after the backup: gone once the backup is restored.
expect_exit 0 "submit after the backup" -- vrmctl submit --vms 1 --start +3h --duration 1h --template small
kill -TERM "$vrmd_pid"
wait "$vrmd_pid" 2>/dev/null || true
rm -f "$work/vrm.db-wal" "$work/vrm.db-shm"
cp "$work/backup.db" "$work/vrm.db"
start_vrmd
wait_hosts 3
expect_exit 0 "list after the restore" -- vrmctl -f value -c id list
after=$(sort "$work/out" | tr '\n' ' ')
checks=$((checks + 1))
if [[ $after == "$before" ]]; then echo "ok: restored exactly the reservations of the backup ($after)"
else failures=$((failures + 1)); echo "FAIL: restored '$after', backed up '$before'" >&2; fi
finish
