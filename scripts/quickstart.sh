#!/usr/bin/env bash
# Quick start: install dependencies, build, and plan a mapping for the bundled sample stats.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DEPLB_BUILD_TESTS=OFF -DEPLB_BUILD_BENCH=OFF >/dev/null
cmake --build build --target eplb-gen -j"$(nproc)"
./build/apps/eplb-gen/eplb-gen --stats data/sample.jsonl --ep 8 --redundant 8 -o mapping.jsonl \
  --summary summary.json "$@"
