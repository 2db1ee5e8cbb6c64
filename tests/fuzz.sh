#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) in a separate clang ASan+UBSan build and runs each for
# a bounded time, starting from the checked-in seed corpus (tests/fuzz/corpus/<target>/, read
# only: new inputs go to the run directory). Exits non-zero if any target crashes, leaks, trips
# a sanitizer or breaks an invariant, and prints where the input that did it was saved.
#
#   tests/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default 300 s, every target
#
# Environment: VRM_FUZZ_BUILD_DIR (default build-fuzz/), VRM_FUZZ_RUN_DIR (default
# <build>/fuzz-runs; wiped per target), VRM_JOBS (build parallelism, default 2),
# VRM_FUZZ_RSS_MB (per-process memory limit, default 2048), VRM_FUZZ_SEED (libFuzzer's -seed:
# the same mutations every run; default random).
# Reproduce a crash: build-fuzz/tests/fuzz/<target> <crash file>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-300}
shift || true
all=(fuzz_frame fuzz_client_request fuzz_agent_message fuzz_manager_ops fuzz_cluster fuzz_units
     fuzz_calibration)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")

"$root/scripts/install-deps.sh"
build=${VRM_FUZZ_BUILD_DIR:-$root/build-fuzz}
if [[ ! -f $build/CMakeCache.txt ]]; then
  launcher=()
  command -v ccache >/dev/null &&
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$root" -B "$build" -DVRM_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
fi
cmake --build "$build" -j"${VRM_JOBS:-2}" --target vrm_fuzz

# Reports with file:line (Debian installs the symbolizer under a versioned name only).
if ! command -v llvm-symbolizer >/dev/null && [[ -x /usr/bin/llvm-symbolizer-14 ]]; then
  export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
fi
runs=${VRM_FUZZ_RUN_DIR:-$build/fuzz-runs}
failed=()
printf '%-22s %10s %8s %6s %8s\n' target executions seconds cov corpus
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/$t
  [[ -x $bin ]] || { echo "fuzz.sh: unknown target $t" >&2; exit 2; }
  dir=$runs/$t
  rm -rf "$dir"
  mkdir -p "$dir/new" "$dir/crashes"
  dict=()
  case $t in
    fuzz_cluster) dict=(-dict="$root/tests/fuzz/dict/cluster.dict") ;;
    fuzz_units) dict=(-dict="$root/tests/fuzz/dict/units.dict") ;;
    fuzz_calibration) dict=(-dict="$root/tests/fuzz/dict/calibration.dict") ;;
  esac
  seeds=$root/tests/fuzz/corpus/$t
  mkdir -p "$dir/seeds-empty"
  [[ -d $seeds ]] || seeds=$dir/seeds-empty
  start=$SECONDS
  status=0
  # -timeout: one input running this long is a hang (a finding); -rss_limit_mb: so is a
  # request that makes vrmd allocate without bound.
  "$bin" -max_total_time="$seconds" -rss_limit_mb="${VRM_FUZZ_RSS_MB:-2048}" -timeout=25 \
    ${VRM_FUZZ_SEED:+-seed="$VRM_FUZZ_SEED"} \
    -print_final_stats=1 -artifact_prefix="$dir/crashes/" "${dict[@]}" \
    "$dir/new" "$seeds" >"$dir/log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2 || true)
  corpus=$(find "$dir/new" "$seeds" -type f | wc -l)
  printf '%-22s %10s %8s %6s %8s\n' "$t" "${execs:-?}" "$((SECONDS - start))" "${cov:-?}" "$corpus"
  if [[ $status -ne 0 ]]; then
    failed+=("$t")
    echo "fuzz.sh: $t FAILED (exit $status); log $dir/log" >&2
    grep -m3 -E 'ERROR: |runtime error:|invariant broken|breaks its contract|fuzz world:' \
      "$dir/log" >&2 || true
    for f in "$dir"/crashes/*; do
      [[ -e $f ]] && echo "fuzz.sh:   input saved at $f (replay: $bin $f)" >&2
    done
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: every target ran ${seconds}s clean"
