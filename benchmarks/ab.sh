#!/usr/bin/env bash
# Our side of one benchmark case at a git ref vs the working tree, interleaved:
#   benchmarks/ab.sh REF CASE [ROUNDS]     e.g. benchmarks/ab.sh HEAD~1 train:decoder:small 3
# Each round runs REF then the working tree, each in a fresh process (benchmarks/run.py --worker);
# prints step (or call) seconds and compile seconds per run. REF is checked out in a temporary
# git worktree, removed at the end.
set -euo pipefail
ref=$1 case=$2 rounds=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
base=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$base"' EXIT
git -C "$root" worktree add -q --detach "$base" "$ref"
mkdir -p "$base/benchmarks" && cp "$root"/benchmarks/*.py "$base/benchmarks/"  # today's harness on both sides
for _ in $(seq "$rounds"); do
  for dir in "$base" "$root"; do
    name=$([ "$dir" = "$root" ] && echo 'tree' || echo "$ref")
    (cd "$dir" && PYTHONPATH="$dir" TF_CPP_MIN_LOG_LEVEL=2 "$python" benchmarks/run.py --worker ours \
      --cases "$case" 2>/dev/null | grep '^RESULT ' | cut -c8- |
      "$python" -c "import json, sys; r = json.load(sys.stdin); print('$name', 'step/call s', round(r.get('step_s', r.get('call_s', 0)), 4), 'compile s', round(r.get('compile_s', r.get('first_call_s', 0)), 2))")
  done
done
