#!/usr/bin/env bash
# Fault campaign 4: the store's file system fills up.
#
# vrmd's SQLite store lives on a small tmpfs of its own. With reservations admitted and running,
# a filler file takes every free block. While the disk is full:
#  * submits and cancels get a typed error naming the cause, or (when SQLite still had room in
#    its write-ahead log) a normal answer that is durable; never an answer for something that
#    was not stored;
#  * vrmd keeps running and answering queries; killed with -9 and restarted on the full disk,
#    it recovers what it had stored;
# then the filler is removed and vrmd must take requests again and finish every reservation,
# with the invariants of lib.sh holding. Needs root (mount); skipped (77) otherwise.
#
#   tests/faults/disk_full.sh [--rounds N] [--seed S]
PORT=${PORT:-17230}
SCALE=${SCALE:-600}
ROUNDS=2
source "$(dirname "$0")/lib.sh"
parse_campaign_args --rounds ROUNDS "$@"
store_dir=$work/store
mkdir -p "$store_dir"
if ! mount -t tmpfs -o size=6m tmpfs "$store_dir" 2>"$work/mount.err"; then
  echo "SKIP: cannot mount a tmpfs for the store ($(cat "$work/mount.err")); needs root"
  exit 77
fi
# Unmount before lib.sh's cleanup removes the work directory.
trap 'rc=$?; set +e; kill -9 "$vrmd_pid" 2>/dev/null || true; wait "$vrmd_pid" 2>/dev/null || true;
  umount -l "$store_dir" 2>/dev/null || true; (exit $rc); faults_exit' EXIT
STORE=$store_dir/vrm.db
echo "disk-full: seed $SEED, $ROUNDS rounds (SEED=$SEED $0 --rounds $ROUNDS)"

# fill: takes every free block of the store's file system.
fill() {
  dd if=/dev/zero of="$store_dir/filler-big" bs=64k 2>/dev/null || true
  dd if=/dev/zero of="$store_dir/filler-small" bs=4k 2>/dev/null || true
}
unfill() { rm -f "$store_dir"/filler-*; }

start_faults_cluster
refused=0
acked_while_full=0
false_acks=0
full_restarts=0
cancels_acked=0
cancels_refused=0
ids=()
for ((round = 1; round <= ROUNDS; round++)); do
  for _ in $(seq 1 8); do
    random_request
    id=$(submit "${REQ[@]}")
    [[ -n $id ]] && ids+=("$id")
  done
  fill
  # Keep asking until vrmd refuses (SQLite may first use room left in its write-ahead log).
  for attempt in $(seq 1 40); do
    random_request
    rc=0
    out=$(vrmctl --json --timeout-ms 4000 submit "${REQ[@]}" 2>/dev/null) || rc=$?
    id=$(jq -r '.id // empty' <<<"$out" 2>/dev/null || true)
    if [[ -n $id && ($rc -eq 0 || $rc -eq 1) ]]; then
      echo "submit $id" >>"$acked"
      ids+=("$id")
      acked_while_full=$((acked_while_full + 1))
    else
      refused=$((refused + 1))
      code=$(jq -r '.error // empty' <<<"$out" 2>/dev/null || true)
      message=$(jq -r '.message // empty' <<<"$out" 2>/dev/null || true)
      if [[ -z $code || ! $message =~ full ]]; then
        violation "a submit on a full disk got exit $rc without a typed error naming the cause: $out"
      else
        echo "refused on a full disk: exit $rc, $code: $message"
      fi
      break
    fi
  done
  # A cancel on a full disk: either refused, or acknowledged and then durable.
  if ((${#ids[@]} > 0)); then
    rnd 0 $((${#ids[@]} - 1))
    before=$(grep -c '^cancel' "$acked" || true)
    cancel "${ids[$R]}"
    if [[ $(grep -c '^cancel' "$acked" || true) -gt $before ]]; then
      cancels_acked=$((cancels_acked + 1))
    else
      cancels_refused=$((cancels_refused + 1))
    fi
  fi
  kill -0 "$vrmd_pid" 2>/dev/null || violation "vrmd died on a full disk"
  fetch list list >/dev/null || violation "vrmd does not answer queries on a full disk"
  sleep 0.5  # the clock runs on: lifecycles advance (and fail to be stored) while full
  # Killed and restarted while the disk is still full: what was stored is still there.
  restart_vrmd
  full_restarts=$((full_restarts + 1))
  check_invariants live "restarted on a full disk, round $round"
  unfill
  # Recovered: requests are taken again.
  random_request
  id=$(submit "${REQ[@]}")
  [[ -n $id ]] || violation "round $round: vrmd does not take a submit after space was freed"
  sleep 0.5
  restart_vrmd
  check_invariants live "after freeing space, round $round"
done
((refused > 0)) || violation "the disk never filled up: no submit was refused"

wait_all_terminal 120 || violation "reservations did not finish"
sleep 0.2
check_invariants final "at the end"
failure_reasons
echo "disk-full: seed=$SEED runs=$ROUNDS fills=$ROUNDS refused=$refused" \
  "acknowledged-while-full=$acked_while_full cancels-while-full: refused=$cancels_refused" \
  "acknowledged=$cancels_acked restarts-on-full-disk=$full_restarts kills=$kills" \
  "completed: $(outcome_summary) violations=$violations"
[[ $violations -eq 0 ]]
