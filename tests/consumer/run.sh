#!/usr/bin/env bash
# Consumer test: install eplb, then build examples/serving as a standalone project that finds the
# installed package with find_package(eplb) and links eplb::loader, and run it on a tiny mapping.
# usage: run.sh SRC_DIR WORK_DIR CMAKE [BUILD_DIR]
# With BUILD_DIR (the tree ctest runs from, already built) the package is installed from it;
# without, eplb is configured and built afresh first.
set -euo pipefail
if [[ $# -ne 3 && $# -ne 4 ]]; then
  echo "usage: $0 SRC_DIR WORK_DIR CMAKE [BUILD_DIR]" >&2
  exit 2
fi
src=$1
cmake=$3
built=${4:-}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fresh_work "$2"

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi

if [[ -n "$built" ]]; then
  step install.log "$cmake" --install "$built" --prefix "$work/prefix"
else
  # Debug: the fastest build; only the package layout matters here.
  step configure.log "$cmake" -S "$src" -B "$work/build" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_INSTALL_PREFIX="$work/prefix" -DEPLB_BUILD_TESTS=OFF \
    -DEPLB_BUILD_BENCH=OFF -DEPLB_BUILD_EXAMPLES=OFF
  step build.log "$cmake" --build "$work/build" -j2
  step install.log "$cmake" --install "$work/build"
fi
test -f "$work/prefix/lib/cmake/eplb/eplbConfig.cmake" || test -f "$work/prefix/lib/x86_64-linux-gnu/cmake/eplb/eplbConfig.cmake" || test -n "$(find "$work/prefix" -name eplbConfig.cmake)"
test -f "$work/prefix/include/eplb/loader.hpp"

step example-configure.log "$cmake" -S "$src/examples/serving" -B "$work/example" \
  "${generator[@]}" -DCMAKE_PREFIX_PATH="$work/prefix"
step example-build.log "$cmake" --build "$work/example" -j2
example="$work/example/eplb-serving-example"

# The example of formats/vllm-offline-eplb.md: E=3, R=1, 4 slots, EP=2, 2 layers.
cat >"$work/m.jsonl" <<'JSONL'
{"record_type": "eplb_load_meta", "version": 1, "num_ranks": 2, "num_layers": 2}
{"record_type": "eplb_initial_mapping", "version": 1, "num_redundant_experts": 1, "num_slots": 4, "initial_global_assignments": {"0": [0, 2, 0, 1], "1": [1, 2, 1, 0]}}
JSONL

# Rank 1 owns slots 2-3: layer 0 [0, 2, 0, 1] -> experts 0 1; layer 1 [1, 2, 1, 0] -> experts 1 0.
actual=$("$example" --mapping "$work/m.jsonl" --layers 2 --experts 3 --ep 2 --redundant 1 --rank 1)
expected="mapping $work/m.jsonl: 2 layers, 3 experts + 1 redundant = 4 slots, EP 2
rank 1 layer 0 slots 2-3: experts 0 1
rank 1 layer 1 slots 2-3: experts 1 0"
if [[ "$actual" != "$expected" ]]; then
  printf 'unexpected output:\n%s\nexpected:\n%s\n' "$actual" "$expected" >&2
  exit 1
fi

# A wrong EP size must be refused with the loader's message and a non-zero exit.
if "$example" --mapping "$work/m.jsonl" --layers 2 --experts 3 --ep 3 --rank 0 \
    2>"$work/wrong-ep.err" >/dev/null; then
  echo "--ep 3 was accepted" >&2
  exit 1
fi
if ! grep -q "num_slots=4 is not divisible by num_ranks=3" "$work/wrong-ep.err"; then
  echo "--ep 3: unexpected message: $(cat "$work/wrong-ep.err")" >&2
  exit 1
fi
echo "consumer test passed"
