#!/usr/bin/env bash
# Fails when a C++ file tracked by git is not formatted by the project's .clang-format (Google
# base, 100 columns): formatting stays out of reviews. Fix with
#   git ls-files '*.cc' '*.h' '*.c' | xargs clang-format -i
#
#   tests/lint/check_format.sh [ROOT]   (default: the project's root; ROOT must be a git tree)
# Lists each file that needs formatting and exits 1 if there is any.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
command -v clang-format >/dev/null || { echo "check_format: clang-format is not installed" >&2; exit 2; }
bad=0
while IFS= read -r -d '' file; do
  [[ -f $file ]] || continue  # deleted in the work tree, not yet in the index
  if ! clang-format --dry-run -Werror "$file" >/dev/null 2>&1; then
    echo "$file: not clang-formatted (clang-format -i $file)"
    bad=$((bad + 1))
  fi
done < <(git ls-files -z --cached --others --exclude-standard '*.cc' '*.h' '*.c')
if ((bad > 0)); then
  echo "check_format: $bad file(s) need clang-format" >&2
  exit 1
fi
echo "check_format: ok"
