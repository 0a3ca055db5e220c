#!/usr/bin/env bash
# Regenerates data/sample.jsonl with `eplb-gen synth` from the real Qwen2-57B-A14B per-expert
# counts in ../shared/data/qwen (not shipped: only the synthesized trace is). Usage:
#   scripts/make-sample-data.sh [path/to/eplb-gen]
set -euo pipefail
cd "$(dirname "$0")/.."
gen=${1:-build/apps/eplb-gen/eplb-gen}
counts=../shared/data/qwen/qwen2_57b_a14b_counts.json
if [ ! -f "$counts" ]; then
  echo "make-sample-data: $counts not found (../shared is only in the project's workspace)" >&2
  exit 1
fi
# Recorded by a server at EP 4 with 4 redundant slots under a shuffled p2l_map, so the sample
# exercises the physical-to-logical folding; 2 nodes and 1 group as Qwen has no expert groups.
"$gen" synth --counts "$counts" --model Qwen/Qwen2-57B-A14B --steps 40 --ep 4 --redundant 4 \
  --nodes 1 --groups 1 --shuffle-p2l --drift 0.3 --min-batch 256 --max-batch 4096 --seed 7 \
  -o data/sample.jsonl
ls -l data/sample.jsonl
