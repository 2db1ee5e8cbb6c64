#!/usr/bin/env bash
# The knobs as experiments (issue 18 item 3): the week (or a shorter horizon) under each setting
# of margin, quantile, planner, calibration and objective, for each seed; then one table of
# every run's headline figures, the medians over seeds per setting (experiments.tsv,
# summary.tsv) and the trade-off curve of on-time rate against idle lead (tradeoff.svg).
#
#   tests/week/experiments.sh                          # every setting, seeds 1 2 3, 7 days
#   DAYS=2 SEEDS="1 2" SETTINGS="default margin-30s" tests/week/experiments.sh
#   tests/week/experiments.sh --summarize-only         # just the tables of runs already made
#
# Environment: DAYS (7), HOSTS (100), SCALE (600), SEEDS ("1 2 3"), SETTINGS (all of those
# below), OUT (build/week/experiments), PARALLEL (1: runs at a time; each has its own ports),
# PORT_BASE (17700: run k listens on PORT_BASE + 10 (k mod 30) and the next five ports).
# Runs already finished (OUT/SETTING/seed-S/figures.json) are kept unless REDO=1. The runs
# do not take /tmp/vrm-e2e.lock (hours of it would stall everyone's e2e tests): ports PORT_BASE+.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${VRM_BUILD_DIR:-$root/build}
DAYS=${DAYS:-7} HOSTS=${HOSTS:-100} SCALE=${SCALE:-600} SEEDS=${SEEDS:-1 2 3}
OUT=${OUT:-$build/week/experiments} PARALLEL=${PARALLEL:-1} PORT_BASE=${PORT_BASE:-17700}

# name -> vrmd flags (objective-* set the bookings' objective instead).
declare -A knobs=(
  [default]=""
  [margin-0s]="--margin 0s"
  [margin-15s]="--margin 15s"
  [margin-30s]="--margin 30s"
  [margin-120s]="--margin 120s"
  [margin-300s]="--margin 300s"
  [quantile-0.5]="--quantile 0.5"
  [quantile-0.8]="--quantile 0.8"
  [quantile-0.99]="--quantile 0.99"
  [sequential]="--planner sequential"
  [no-calibration]="--calibrate false"
  [objective-degradation]=""
)
all="default margin-0s margin-15s margin-30s margin-120s margin-300s quantile-0.5 quantile-0.8
quantile-0.99 sequential no-calibration objective-degradation"
SETTINGS=${SETTINGS:-$all}

if [[ ${1:-} != --summarize-only ]]; then
  [[ -z ${VRM_BUILD_DIR:-} ]] && "$root/scripts/build.sh" >/dev/null
  mkdir -p "$OUT"
  job=0
  for setting in $SETTINGS; do
    [[ -v "knobs[$setting]" ]] || { echo "experiments: unknown setting $setting" >&2; exit 2; }
    for seed in $SEEDS; do
      dir=$OUT/$setting/seed-$seed
      if [[ -f $dir/figures.json && -z ${REDO:-} ]]; then continue; fi
      objective=""
      [[ $setting == objective-degradation ]] && objective=degradation
      # Each run its own port range (a run outliving 30 later ones would be needed to collide).
      port=$((PORT_BASE + 10 * (job % 30)))
      job=$((job + 1))
      # shellcheck disable=SC2086 # the knobs are words
      NO_LOCK=1 VRM_BUILD_DIR=$build HOSTS=$HOSTS DAYS=$DAYS SCALE=$SCALE SEED=$seed \
        OBJECTIVE=$objective \
        PORT=$port "$here/run_week.sh" --out "$dir" -- ${knobs[$setting]} \
        >"$OUT/$setting-seed-$seed.log" 2>&1 &
      echo "experiments: $setting seed $seed (port $port): $(uptime)"
      if [[ $(jobs -rp | wc -l) -ge $PARALLEL ]]; then wait -n || true; fi
    done
  done
  wait || true
fi

# One line per run, then the median over seeds per setting.
mkdir -p "$OUT"
tsv=$OUT/experiments.tsv
printf 'setting\tseed\ton_time_pct\ttiming_on_time_pct\tmisses\tlead_median_s\tlead_p95_s\thost_hours\tmargin_s\tmakespan_median_s\ttarget_s\terr_first_day_pct\terr_last_day_pct\tabs_err_first_pct\tabs_err_last_pct\tquantile_over_mean\tre_plans\tparks\tat_risk\tfailed\tadmitted_pct\tdispatch_lag_s\tload_before\ton_time_no_lost_agent_pct\n' >"$tsv"
for setting in $SETTINGS; do
  for f in "$OUT/$setting"/seed-*/figures.json; do
    [[ -f $f ]] || continue
    jq -r --arg s "$setting" '[$s, .run.seed, .on_time.on_time_pct, .on_time.timing_on_time_pct, (.on_time.counted - .on_time.on_time),
      .idle_lead.lead_s.median, .idle_lead.lead_s.p95, .idle_lead.host_hours, .idle_lead.margin_s,
      .idle_lead.vacate_makespan_s.median, .idle_lead.target_median_lead_s,
      (.prediction.first_day.median_error_pct // null), (.prediction.last_day.median_error_pct // null),
      (.prediction.first_day.median_abs_error_pct // null), (.prediction.last_day.median_abs_error_pct // null),
      (.prediction.quantile_over_mean.median // null),
      .execution.re_plans, .execution.parks_done, .execution.at_risk, .execution.failed,
      .admission.dedicated.admitted_pct, .lag.dispatch_s.median,
      (.run.uptime_before | capture("load average: (?<l>[0-9.]+)").l),
      (.on_time.timing_on_time_without_lost_agents_pct // null)] | @tsv' "$f" >>"$tsv"
  done
done
summary=$OUT/summary.tsv
awk -F'\t' 'NR == 1 { print; next }
  { n[$1]++; for (i = 3; i <= NF; i++) v[$1, i, n[$1]] = $i; nf = NF; order[$1] = order[$1] ? order[$1] : ++k; name[k] = $1 }
  END {
    for (j = 1; j <= k; j++) {
      s = name[j]; line = s "\t" n[s] " seeds"
      for (i = 3; i <= nf; i++) {
        m = n[s]; for (a = 1; a <= m; a++) x[a] = v[s, i, a] + 0
        for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (x[b] < x[a]) { t = x[a]; x[a] = x[b]; x[b] = t }
        med = (m % 2) ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
        line = line "\t" sprintf("%.4g", med)
      }
      print line
    }
  }' "$tsv" >"$summary"
column -t -s $'\t' "$summary"
if command -v gnuplot >/dev/null; then
  gnuplot -e "summary='$summary'; out='$OUT/tradeoff.svg'" "$here/tradeoff.gp" 2>"$OUT/gnuplot.log" ||
    echo "experiments: gnuplot failed (see $OUT/gnuplot.log)" >&2
fi
echo "experiments: $tsv, $summary, $OUT/tradeoff.svg"
