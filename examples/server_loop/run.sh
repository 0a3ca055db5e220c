#!/usr/bin/env bash
# The whole offline-EPLB loop for a C++ server: record loads while serving, plan a mapping with
# eplb-gen, gate it with `eplb-gen check`, and load it at the next startup.
#   examples/server_loop/run.sh SERVER_LOOP_BINARY EPLB_GEN_BINARY [WORK_DIR]
set -euo pipefail
loop=${1:?usage: run.sh SERVER_LOOP_BINARY EPLB_GEN_BINARY [WORK_DIR]}
gen=${2:?usage: run.sh SERVER_LOOP_BINARY EPLB_GEN_BINARY [WORK_DIR]}
work=${3:-$(mktemp -d)}
mkdir -p "$work"
rm -f "$work/stats.jsonl"  # the recorder appends
topo=(--layers 4 --experts 16 --ep 4 --redundant 4)

# 1. Serve (simulated) and record every step's per-slot expert counts.
"$loop" --record "$work/stats.jsonl" --steps 200 "${topo[@]}"

# 2. Plan: EP and redundant slots come from the recorder's eplb_load_meta record.
"$gen" --stats "$work/stats.jsonl" -o "$work/mapping.jsonl" 2>"$work/plan.log"
cat "$work/plan.log"

# 3. CI gate: the mapping must fit the deployment's topology (and the stats' shape).
"$gen" check --mapping "$work/mapping.jsonl" "${topo[@]}" --stats "$work/stats.jsonl"

# 4. Next startup: load it with the header-only loader.
"$loop" --load "$work/mapping.jsonl" "${topo[@]}" --rank 1 | tee "$work/load.log"

# The mapping must beat the startup layout on the router it was planned from.
awk '/^expected imbalance:/ {
       found = 1; before = $5; after = $7
       gsub(/[x,]/, "", before); gsub(/x/, "", after)
       better = after + 0 < before + 0 }
     END {
       if (!found || !better) { print "the mapping does not improve the imbalance" > "/dev/stderr"; exit 1 }
       print "the mapping improves the imbalance" }' "$work/load.log"
