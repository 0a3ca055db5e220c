#!/usr/bin/env bash
# Sweep benchmark: the wall time of `eplb-gen sweep` over 6 redundant-slot values against one
# default plan (`eplb-gen --stats`) on the same trace, side by side: the commands alternate, each
# run is a separate process, and the ratio of their medians is printed (with CPU seconds, user +
# system, beside them). For scale, a third row runs the 6 default plans one after the other
# (EPLB_BENCH_NAIVE=0 leaves it out). The trace is synthesized once from the Qwen3-235B-A22B counts in
# ../shared/data/qwen (5000 steps, 94 layers x 128 experts, about 500 MB) into $EPLB_BENCH_DIR.
#
# usage: bench/sweep.sh [BUILD_DIR]        (default: build)
# env:   EPLB_BENCH_DIR=/tmp/eplb-bench    where the trace goes
#        EPLB_BENCH_RUNS=3                 runs of each command
#        EPLB_BENCH_THREADS=2              --threads of both commands
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
gen=$build/apps/eplb-gen/eplb-gen
[[ -x $gen ]] || { echo "missing $gen: cmake --build $build --target eplb-gen" >&2; exit 1; }
counts=../shared/data/qwen/qwen3_235b_a22b_counts.json
[[ -s $counts ]] || { echo "missing $counts (the shared Qwen counts)" >&2; exit 1; }
dir=${EPLB_BENCH_DIR:-/tmp/eplb-bench}
runs=${EPLB_BENCH_RUNS:-3}
threads=${EPLB_BENCH_THREADS:-2}
naive=${EPLB_BENCH_NAIVE:-1}
mkdir -p "$dir"
trace=$dir/qwen3-235b-5000-drift0.2.jsonl
if [[ ! -s $trace ]]; then
  echo "generating $trace" >&2
  "$gen" synth --counts "$counts" --steps 5000 --ep 8 --drift 0.2 -o "$trace"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

plan=("$gen" --stats "$trace" --ep 8 --redundant 64 --threads "$threads" -o "$tmp/m.jsonl" -q)
sweep=("$gen" sweep --stats "$trace" --ep 8 --redundant 0,8,16,32,64,128 --threads "$threads"
       --json "$tmp/s.json" -q)
six_plans() {
  for r in 0 8 16 32 64 128; do
    "$gen" --stats "$trace" --ep 8 --redundant "$r" --threads "$threads" -o "$tmp/m$r.jsonl" -q
  done
}
# Prints "wall cpu" of one run of the command.
timed() {
  local TIMEFORMAT='%R %U %S' out
  out=$({ time "$@" >/dev/null 2>&1; } 2>&1)
  awk '{printf "%.3f %.3f\n", $1, $2 + $3}' <<<"$out"
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

: >"$tmp/plan" && : >"$tmp/sweep" && : >"$tmp/six"
for ((i = 1; i <= runs; i++)); do
  timed "${plan[@]}" >>"$tmp/plan"
  timed "${sweep[@]}" >>"$tmp/sweep"
  if [[ $naive == 1 ]]; then timed six_plans >>"$tmp/six"; fi
done
plan_wall=$(cut -d' ' -f1 "$tmp/plan" | median)
plan_cpu=$(cut -d' ' -f2 "$tmp/plan" | median)
sweep_wall=$(cut -d' ' -f1 "$tmp/sweep" | median)
sweep_cpu=$(cut -d' ' -f2 "$tmp/sweep" | median)
echo "trace: $trace ($(($(stat -L -c %s "$trace") / 1000000)) MB), $runs runs each, --threads $threads, $(nproc) cores"
echo
echo "| run | wall s (median) | CPU s (median) |"
echo "|---|---|---|"
echo "| one default plan: \`eplb-gen --stats T --ep 8 --redundant 64\` | $plan_wall | $plan_cpu |"
echo "| sweep of 6 R: \`eplb-gen sweep --stats T --ep 8 --redundant 0,8,16,32,64,128\` | $sweep_wall | $sweep_cpu |"
if [[ $naive == 1 ]]; then
  echo "| 6 default plans, one per R (for scale) | $(cut -d' ' -f1 "$tmp/six" | median) | $(cut -d' ' -f2 "$tmp/six" | median) |"
fi
awk -v a="$sweep_wall" -v b="$plan_wall" -v c="$sweep_cpu" -v d="$plan_cpu" \
  'BEGIN {printf "\nratio sweep / plan: %.2fx wall, %.2fx CPU (target: at most 3x wall)\n", a / b, c / d}'
