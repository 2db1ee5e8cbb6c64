#!/usr/bin/env bash
# Fails when a library includes a header of a library above it. The layers (README "Layout"):
#
#   protocol  <-  planner  <-  {vrm (manager), vmscheduler}   (the daemons never see each other)
#   protocol  <-  clients (client library)  <-  web
#   protocol  <-  etcd (the etcd v3 client)  <-  vrm (its etcd store)
#   protocol  <-  daemon (systemd notify, config files: what vrmd's and vmschedd's main() share)
#
# vrmctl (clients/src/vrmctl/) may also use the planner for its offline commands, and vrmd's
# main() wires the web server in. Tests, benchmarks, tools and examples may include anything.
# A header's library is the folder after "vrm/" in its include path ("vrm/client.h": clients).
#
#   tests/lint/check_deps.sh [ROOT]     (default: the project's root)
# Prints each violation as FILE:LINE: ... and exits 1 if there is any.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"

# Source folders of each library (include/ and src/ only) and the libraries they may include.
declare -A allowed=(
  [protocol]="protocol"
  [daemon]="protocol daemon"
  [etcd]="protocol etcd"
  [planner]="protocol planner"
  [vrm]="protocol planner manager etcd"
  [vmscheduler]="protocol planner vmscheduler"
  [clients]="protocol client"
  [web]="protocol client web"
)
# Executables whose main() wires libraries of several layers: what they may add.
declare -A extra=(
  [vrm/src/main.cc]="web daemon"
  [vmscheduler/src/main.cc]="daemon"
  [clients/src/vrmctl]="planner"
)

violations=0
for lib in "${!allowed[@]}"; do
  for dir in "$lib/include" "$lib/src"; do
    [[ -d $dir ]] || continue
    while IFS= read -r -d '' file; do
      ok=" ${allowed[$lib]} "
      for prefix in "${!extra[@]}"; do
        [[ $file == "$prefix"* ]] && ok+="${extra[$prefix]} "
      done
      while IFS=: read -r line text; do
        # "vrm/planner/x.h" -> planner; "vrm/client.h" -> client
        target=${text#*\"vrm/}
        target=${target%%[/.]*}
        if [[ $ok != *" $target "* ]]; then
          echo "$file:$line: $lib must not include a header of '$target': $text"
          violations=$((violations + 1))
        fi
      done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"vrm/' "$file" || true)
    done < <(find "$dir" -type f \( -name '*.h' -o -name '*.cc' \) -print0)
  done
done
if ((violations > 0)); then
  echo "check_deps: $violations include(s) against the dependency direction" >&2
  exit 1
fi
echo "check_deps: ok"
