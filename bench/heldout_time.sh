#!/usr/bin/env bash
# Plan time of the default (step-aware) policy against vLLM's policy (--policy deepseek) on one
# large trace: 5,000 steps of a 94-layer, 128-expert model (synthesized from the Qwen3-235B
# counts in ../shared/data/qwen, drift 0.2; about 500 MB), EP 8 with 64 redundant slots. Both
# runs are whole eplb-gen processes (read, aggregate, plan, write), alternated, best of N each;
# the ratio of the best wall times is the figure. Then both plan on the first 80% of the trace
# (--split 0.8) and `eplb-gen eval` judges them on the last 20%.
#
# usage: bench/heldout_time.sh [BUILD_DIR]      (default: build)
# env:   EPLB_BENCH_DIR=/tmp/eplb-bench         where the trace goes (kept for the next run)
#        EPLB_BENCH_RUNS=3                      runs of each policy
#        EPLB_SHARED=../shared                  the shared folder with data/qwen
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
gen=$build/apps/eplb-gen/eplb-gen
[[ -x $gen ]] || { echo "missing $gen: cmake --build $build --target eplb-gen" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 1; }
shared=${EPLB_SHARED:-../shared}
counts=$shared/data/qwen/qwen3_235b_a22b_counts.json
[[ -s $counts ]] || { echo "missing $counts (the Qwen counts live in ../shared)" >&2; exit 1; }
dir=${EPLB_BENCH_DIR:-/tmp/eplb-bench}
runs=${EPLB_BENCH_RUNS:-3}
mkdir -p "$dir"
trace=$dir/qwen3-235b-5000-drift0.2.jsonl
if [[ ! -s $trace ]]; then
  echo "generating $trace" >&2
  "$gen" synth --counts "$counts" --steps 5000 --ep 8 --drift 0.2 --seed 1 -o "$trace"
fi
trace=$(realpath "$trace")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
size=$(stat -c %s "$trace")

# One run: wall and CPU seconds of the whole process.
run() {  # name, args...
  local name=$1
  shift
  /usr/bin/time -f "%e %U %S %M" -o "$tmp/t" "$gen" --stats "$trace" --ep 8 --redundant 64 \
    -o "$tmp/$name.jsonl" -q "$@"
  read -r wall user sys rss <"$tmp/t"
  echo "$name $wall $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') $rss"
}
for _ in $(seq "$runs"); do
  run deepseek --policy deepseek
  run default
done >"$tmp/runs"
best() { awk -v n="$1" '$1 == n { if (!b || $2 < b) { b = $2; c = $3; m = $4 } } END { print b, c, m }' "$tmp/runs"; }
read -r ds_wall ds_cpu ds_rss <<<"$(best deepseek)"
read -r def_wall def_cpu def_rss <<<"$(best default)"
echo "trace: $trace ($((size / 1000000)) MB), EP 8, 64 redundant slots, $(nproc) cores, best of $runs"
echo
echo "| policy | wall s | CPU s | peak RSS |"
echo "|---|---|---|---|"
echo "| --policy deepseek | $ds_wall | $ds_cpu | $((ds_rss / 1024)) MB |"
echo "| default | $def_wall | $def_cpu | $((def_rss / 1024)) MB |"
echo
awk -v a="$def_wall" -v b="$ds_wall" 'BEGIN { printf "default / deepseek wall time: %.2fx (target: at most 10x)\n", a / b }'

# Held-out: plan on the first 80%, judge the last 20%.
"$gen" --stats "$trace" --ep 8 --redundant 64 --split 0.8 --policy deepseek -o "$tmp/ds80.jsonl" -q
"$gen" --stats "$trace" --ep 8 --redundant 64 --split 0.8 -o "$tmp/def80.jsonl" \
  --summary "$tmp/def80.json" -q
echo
gen_abs=$(realpath "$gen")
(cd "$tmp" && "$gen_abs" eval --stats "$trace" --split 0.8 --ep 8 -m ds80.jsonl -m def80.jsonl \
  --no-bound 2>&1 | sed -n '/^per-step imbalance/,/^$/p')
