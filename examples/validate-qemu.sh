#!/usr/bin/env bash
# Validates vrm's migration models against real QEMU migrations. Runs sweeps of live and
# suspend-copy-resume migrations between two qemu-backend hosts on loopback (vrm-qemu-sweep:
# guest fills, dirty rates, bandwidth limits), on guests of the calibration size (128 MiB) and
# larger ones (192 and 256 MiB), each case --repeat times; then vrm-validate-models calibrates
# every model on half of the 128 MiB cases and predicts the other half and every larger guest,
# with the default parameters and calibrated, and reports mean and worst error per model and
# mode (total time, downtime, convergence, suspend-copy-resume phases). See the method at the top
# of vmscheduler/tools/validate_models.cc.
#
# Usage: examples/validate-qemu.sh [--quick] [--repeat N]
#   --quick     fewer cases and one larger size (about 6 minutes instead of about 25 on 2 cores)
#   --repeat N  runs of every case, whose medians are compared (default 2; 1 with --quick)
# Env: VRM_BUILD_DIR (default build/), VRM_VALIDATE_DIR (scratch and results, default a temp
#      dir), VRM_VALIDATE_REUSE=1 (no sweeps: re-validate VRM_VALIDATE_DIR's sweep-*.csv).
# Writes VRM_VALIDATE_DIR/report.txt (per case and summary) and report.md (the README table),
# both with the date and the load average (uptime) before and after every sweep.
# Needs qemu-system-x86_64 and the guest's packages (scripts/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VRM_BUILD_DIR:-$root/build}
work=${VRM_VALIDATE_DIR:-$(mktemp -d /tmp/vrm-validate-qemu.XXXXXX)}
mkdir -p "$work"
quick=0
repeat=
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --repeat) repeat=${2:?--repeat needs a number}; shift ;;
    *) echo "usage: $0 [--quick] [--repeat N]" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $repeat ]] || repeat=$((quick ? 1 : 2))

command -v qemu-system-x86_64 >/dev/null || { echo "validate-qemu: qemu-system-x86_64 missing (scripts/install-deps.sh)" >&2; exit 2; }
if [[ ! -x $build/vmscheduler/vrm-qemu-sweep || ! -x $build/vmscheduler/vrm-validate-models ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j"${VRM_JOBS:-2}" --target vrm-qemu-sweep vrm-validate-models >/dev/null
fi
sweep=$build/vmscheduler/vrm-qemu-sweep
validate=$build/vmscheduler/vrm-validate-models

# Cases FILL_MIB:RATE_PAGES_PER_S:BANDWIDTH_MIB_S:MODE. Cases sharing fill and rate reuse one
# booted guest, which moves back and forth between the two hosts. Bandwidths stay at or below
# 64 MiB/s so that TCG's CPU, not the limit, is never what paces a migration; 64:8000:16 dirties
# twice as fast as its link drains and must not converge.
if ((quick)); then
  cases=(16:0:16:live 16:0:32:live 16:0:24:scr 16:0:48:scr
         48:1000:16:live 48:1000:32:live 48:1000:24:scr 48:1000:48:scr 64:8000:16:live)
  memories=(128 256)
else
  cases=(16:0:8:live 16:0:16:live 16:0:32:live 16:0:64:live 16:0:16:scr 16:0:32:scr 16:0:64:scr
         48:1000:16:live 48:1000:32:live 48:1000:64:live 48:1000:24:scr 48:1000:48:scr
         64:4000:32:live 64:4000:64:live 64:4000:32:scr 64:4000:64:scr 64:8000:16:live)
  memories=(128 192 256)
fi

if [[ ${VRM_VALIDATE_REUSE:-0} != 1 ]]; then
  "$root/tests/guest/build-guest.sh" "$build/guest" >/dev/null 2>&1
  for mem in "${memories[@]}"; do
    if [[ -n ${VRM_VALIDATE_MAX_LOAD:-} ]]; then
      for _ in $(seq 180); do
        awk -v max="$VRM_VALIDATE_MAX_LOAD" '{ exit !($1 < max) }' /proc/loadavg && break
        sleep 10
      done
    fi
    echo "validate-qemu: sweep, ${mem} MiB guests, ${#cases[@]} cases x $repeat ..." >&2
    {
      echo "# before: $(date -u '+%Y-%m-%d %H:%M UTC') $(uptime)"
      "$sweep" --guest "$build/guest" --work "$work/sweep" --memory "$mem" --repeat "$repeat" \
        "${cases[@]}" 2>"$work/sweep-$mem.err" ||
        echo "validate-qemu: some migrations of the ${mem} MiB sweep failed (see $work/sweep-$mem.err)" >&2
      echo "# after: $(date -u '+%Y-%m-%d %H:%M UTC') $(uptime)"
    } >"$work/sweep-$mem.csv"
  done
fi

sweeps=("$work"/sweep-*.csv)
[[ -e ${sweeps[0]} ]] || { echo "validate-qemu: no sweep-*.csv in $work" >&2; exit 1; }
{
  echo "validate-qemu, $(date -u '+%Y-%m-%d %H:%M UTC'); sweeps:"
  grep -h '^# ' "${sweeps[@]}" | sed 's/^# /  /'
  echo
  "$validate" --cases "${sweeps[@]}"
} | tee "$work/report.txt"
{
  echo "<!-- examples/validate-qemu.sh $(date -u '+%Y-%m-%d'), ${#cases[@]} cases x $repeat per size -->"
  grep -h '^# ' "${sweeps[@]}" | sed 's/^# /<!-- /; s/$/ -->/'
  "$validate" --markdown "${sweeps[@]}"
} >"$work/report.md"
echo
echo "report: $work/report.txt, README table: $work/report.md"
