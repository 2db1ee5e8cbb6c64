#!/usr/bin/env bash
# Validates vrm's migration models against real QEMU migrations: runs a sweep of live and
# suspend-copy-resume migrations between two qemu-backend hosts on loopback (vrm-qemu-sweep:
# guest memory sizes, bandwidth limits, dirty rates), calibrates every applicable model on half
# of the runs (vrmctl calibrate), predicts the other half (vrmctl predict --params) and prints
# measured vs predicted total time and downtime with their errors.
#
# Usage: examples/validate-qemu.sh [--quick]
#   --quick   fewer cases (about 2 minutes instead of about 6 on 2 cores under TCG)
# Env: VRM_BUILD_DIR (default build/), VRM_VALIDATE_DIR (scratch, default a temp dir),
#      VRM_VALIDATE_REUSE=1 (skip the sweep, re-validate VRM_VALIDATE_DIR's observations).
# Needs qemu-system-x86_64 and the guest's packages (scripts/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VRM_BUILD_DIR:-$root/build}
work=${VRM_VALIDATE_DIR:-$(mktemp -d /tmp/vrm-validate-qemu.XXXXXX)}
mkdir -p "$work"
quick=0
[[ ${1:-} == --quick ]] && quick=1

command -v qemu-system-x86_64 >/dev/null || { echo "validate-qemu: qemu-system-x86_64 missing (scripts/install-deps.sh)" >&2; exit 2; }
if [[ ! -x $build/vmscheduler/vrm-qemu-sweep || ! -x $build/clients/vrmctl ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j"${VRM_JOBS:-2}" --target vrm-qemu-sweep vrmctl >/dev/null
fi
sweep=$build/vmscheduler/vrm-qemu-sweep
vrmctl=$build/clients/vrmctl
"$root/tests/guest/build-guest.sh" "$build/guest" >/dev/null 2>&1

# Cases FILL_MIB:RATE_PAGES_PER_S:BANDWIDTH_MIB_S:MODE. Cases sharing fill and rate reuse one
# booted guest, which moves back and forth between the two hosts.
if ((quick)); then
  cases=(16:0:16:live 16:0:32:live 16:0:24:scr 16:0:48:scr
         48:2000:16:live 48:2000:32:live 48:2000:24:scr 48:2000:48:scr)
  memories=(128)
else
  cases=(16:0:8:live 16:0:16:live 16:0:32:live 16:0:64:live 16:0:16:scr 16:0:32:scr 16:0:64:scr
         48:1000:16:live 48:1000:32:live 48:1000:64:live 48:1000:24:scr 48:1000:48:scr
         64:4000:16:live 64:4000:32:live 64:4000:64:live 64:4000:32:scr)
  memories=(128 192)
fi
obs=$work/observations.csv
# VRM_VALIDATE_REUSE=1 with an existing VRM_VALIDATE_DIR re-validates its observations only.
[[ ${VRM_VALIDATE_REUSE:-0} == 1 && -s $obs ]] && memories=()
[[ ${#memories[@]} -gt 0 ]] && : >"$obs"
for mem in "${memories[@]}"; do
  echo "validate-qemu: sweep, ${mem} MiB guests, ${#cases[@]} migrations ..." >&2
  "$sweep" --guest "$build/guest" --work "$work/sweep" --memory "$mem" "${cases[@]}" >"$work/sweep-$mem.csv" ||
    echo "validate-qemu: some migrations failed (see above); validating the rest" >&2
  if [[ ! -s $obs ]]; then cat "$work/sweep-$mem.csv" >"$obs"; else tail -n +2 "$work/sweep-$mem.csv" >>"$obs"; fi
done

# Columns: memory_bytes,nonzero_memory_bytes,dirty_rate_bytes_per_sec,workload(=mode),
#          bandwidth_bytes_per_sec,total_time_s,downtime_s,transferred_bytes
# Split by mode, drop the mode column (the planner's workload column means something else),
# and alternate rows between calibration and validation.
# Models without a non-zero-memory input (liu-*, zhao-scr) get the resident memory as their
# memory size: zero pages cost almost nothing, so that is what a migration really moves
# (the *-res-*.csv files).
for mode in live scr; do
  awk -F, -v m="$mode" -v out="$work/$mode" 'NR == 1 { hdr = $1","$2","$3","$5","$6","$7","$8;
      print hdr > (out "-cal.csv"); print hdr > (out "-val.csv");
      print hdr > (out "-res-cal.csv"); print hdr > (out "-res-val.csv"); next }
    $4 == m { n++; row = $1","$2","$3","$5","$6","$7","$8; res = $2","$2","$3","$5","$6","$7","$8;
      print row > (out (n % 2 ? "-cal.csv" : "-val.csv"));
      print res > (out (n % 2 ? "-res-cal.csv" : "-res-val.csv")) }' "$obs"
done

predict_field() {  # JSON field from vrmctl predict --json
  sed -n "s/.*\"$1\": *\([-0-9.eE+]*\|null\).*/\1/p" | head -1
}

printf '\n%-13s %-5s %7s %7s %7s %8s | %9s %9s %7s | %9s %9s %7s\n' model mode mem_MiB res_MiB \
  bw_MiB/s dirt_MiB/s meas_tot pred_tot err% meas_down pred_down err%
printf '%s\n' "$(printf '%.0s-' {1..124})"
summary=()
for mode in live scr; do
  if [[ $mode == live ]]; then models=(simple qemu-precopy liu-base liu-refined); else models=(simple zhao-scr); fi
  [[ $(wc -l <"$work/$mode-cal.csv") -gt 1 && $(wc -l <"$work/$mode-val.csv") -gt 1 ]] || continue
  for model in "${models[@]}"; do
    params=$work/$model-$mode.params
    set_=$mode
    case $model in liu-* | zhao-scr) set_=$mode-res ;; esac
    if ! "$vrmctl" calibrate --model "$model" --observations "$work/$set_-cal.csv" >"$params" 2>"$params.err"; then
      echo "validate-qemu: calibrate $model ($mode): $(cat "$params.err")" >&2
      continue
    fi
    sumTot=0; sumDown=0; n=0; nDown=0
    while IFS=, read -r mem nz dirty bw tot down sent; do
      [[ $mem == memory_bytes ]] && continue
      [[ $set_ == *-res ]] && mem=$nz
      args=(--model "$model" --params "$params" --memory "${mem}B"
            --bandwidth "$(awk -v b="$bw" 'BEGIN { printf "%.6fMiB/s", b / 1048576 }')" --json)
      rate=$(awk -v d="$dirty" 'BEGIN { printf "%.6fMiB/s", d / 1048576 }')
      case $model in
        simple) args+=(--nonzero-memory "${nz}B") ;;
        qemu-precopy) args+=(--nonzero-memory "${nz}B" --dirty-rate "$rate" --downtime-limit 300ms) ;;
        liu-*) args+=(--dirty-rate "$rate") ;;
      esac
      if ! out=$("$vrmctl" predict "${args[@]}" 2>/dev/null); then
        echo "validate-qemu: predict $model: $(predict_field message <<<"$out")$(sed -n 's/.*"message": *"\(.*\)".*/\1/p' <<<"$out")" >&2
        continue
      fi
      pt=$(predict_field total_time_s <<<"$out"); pd=$(predict_field downtime_s <<<"$out")
      line=$(awk -v m="$model" -v mo="$mode" -v mem="$mem" -v nz="$nz" -v bw="$bw" -v d="$dirty" \
        -v t="$tot" -v pt="$pt" -v dn="$down" -v pd="$pd" 'function err(p, x) {
          if (p == "" || p == "null" || x <= 0) return "n/a"; return sprintf("%+.0f", 100 * (p - x) / x) }
        BEGIN { printf "%-13s %-5s %7.0f %7.1f %7.1f %8.2f | %9.3f %9s %7s | %9.3f %9s %7s\n",
          m, mo, mem / 1048576, nz / 1048576, bw / 1048576, d / 1048576, t,
          (pt == "" || pt == "null") ? "-" : sprintf("%.3f", pt), err(pt, t),
          dn, (pd == "" || pd == "null") ? "-" : sprintf("%.3f", pd), err(pd, dn) }')
      echo "$line"
      read -r e1 e2 < <(awk -v t="$tot" -v pt="$pt" -v dn="$down" -v pd="$pd" 'BEGIN {
        a = (pt == "" || pt == "null") ? -1 : (pt > t ? pt - t : t - pt) / t;
        b = (pd == "" || pd == "null" || dn <= 0) ? -1 : (pd > dn ? pd - dn : dn - pd) / dn;
        print a, b }')
      if [[ $e1 != -1 ]]; then sumTot=$(awk -v s="$sumTot" -v e="$e1" 'BEGIN { print s + e }'); n=$((n + 1)); fi
      if [[ $e2 != -1 ]]; then sumDown=$(awk -v s="$sumDown" -v e="$e2" 'BEGIN { print s + e }'); nDown=$((nDown + 1)); fi
    done <"$work/$mode-val.csv"
    summary+=("$(awk -v m="$model" -v mo="$mode" -v st="$sumTot" -v n="$n" -v sd="$sumDown" -v nd="$nDown" \
      'BEGIN { printf "%-13s %-5s validated on %d runs: mean |error| total time %s, downtime %s",
        m, mo, n, n ? sprintf("%.1f%%", 100 * st / n) : "n/a", nd ? sprintf("%.1f%%", 100 * sd / nd) : "n/a" }')")
  done
done
echo
printf '%s\n' "${summary[@]}"
echo
echo "observations: $obs (calibration halves: $work/*-cal.csv)"
