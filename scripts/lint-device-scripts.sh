#!/usr/bin/env bash
# The device scripts (bench/, bench/results/) log through `exec > >(tee FILE)`. In bash 5.1 and
# later a bare `wait` also waits for that process substitution, and tee ends only when the script
# does: the script stops there for good. Five device calls of 2026-12-01/02 did, after their
# background plan compiles, and each was read as a GPU hang (README, "Three shortenings of a
# layer's chains"). Wait for the background jobs by name instead: `wait $(jobs -p)` or `wait $pid`.
# Prints every offending line and fails if there is one.
#   bash scripts/lint-device-scripts.sh [FILE...]   (default: every bench script)
set -uo pipefail
cd "$(dirname "$0")/.."
files=("$@")
[ ${#files[@]} -gt 0 ] || mapfile -t files < <(find bench -name '*.sh' | sort)
found=0
for f in "${files[@]}"; do
  grep -q '>(tee' "$f" || continue
  # `wait` with no operand: alone, or ended by ;, &, |, ) or a comment
  if grep -nE '(^|[;&|({]|then|do|else)[[:space:]]*wait[[:space:]]*($|[;&|)#])' "$f" | sed "s|^|$f:|" | grep .; then found=1; fi
done
[ $found = 0 ] || { echo "a bare wait in a script logging through >(tee ...) never returns (bash 5.1+): wait \$(jobs -p)" >&2; exit 1; }
