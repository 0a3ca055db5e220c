#!/usr/bin/env bash
# Subproject consumer test: configures tests/consumer/core, a project that builds eplb inside
# itself (FetchContent or add_subdirectory) and links eplb::core, with the generator CMake picks by
# default (CMAKE_GENERATOR if set) and the default options (CUDA where nvcc is), builds it, and
# plans data/sample.jsonl with it.
# usage: subproject.sh SRC_DIR WORK_DIR [fetchcontent|add_subdirectory] [CMAKE_ARG ...]
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 SRC_DIR WORK_DIR [fetchcontent|add_subdirectory] [CMAKE_ARG ...]" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
mode=${3:-fetchcontent}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fresh_work "$2"
shift $(($# < 3 ? $# : 3))
step_what="subproject consumer ($mode)"

# No build type: the fastest build of eplb (no optimization, no debug info); eplb, as a
# subproject, must leave the consumer's build type as the consumer set it.
step configure.log cmake -S "$src/tests/consumer/core" -B "$work/build" \
  -DEPLB_SOURCE_DIR="$src" -DEPLB_CONSUMER_MODE="$mode" "$@"
step build.log cmake --build "$work/build" -j"$(nproc)"
if grep -q '^CMAKE_BUILD_TYPE:STRING=.' "$work/build/CMakeCache.txt"; then
  echo "subproject consumer ($mode): eplb set the consumer's CMAKE_BUILD_TYPE" >&2
  exit 1
fi
out=$("$work/build/eplb-core-consumer" "$src/data/sample.jsonl" 8 8)
expected="28 layers x 64 experts, EP 8, 72 slots: imbalance 1.3969x -> "
if [[ "$out" != "$expected"* ]]; then
  printf 'subproject consumer (%s): unexpected output:\n%s\nexpected it to start with:\n%s\n' \
    "$mode" "$out" "$expected" >&2
  exit 1
fi
generator=$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$work/build/CMakeCache.txt")
cuda=$(sed -n 's/^EPLB_ENABLE_CUDA:BOOL=//p' "$work/build/CMakeCache.txt")
echo "subproject consumer passed ($mode, $generator, CUDA ${cuda:-OFF}): $out"
