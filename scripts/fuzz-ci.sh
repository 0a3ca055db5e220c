#!/usr/bin/env bash
# CI smoke run of every fuzz target: builds them (build-fuzz/, Clang + libFuzzer + ASan/UBSan) and
# runs each for SECONDS (default 30) on its committed corpus, two at a time. Fails on any finding.
#   scripts/fuzz-ci.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
bash scripts/deps.sh clang llvm libclang-rt-14-dev
targets=(vllm_reader sglang matrix_json matrix_csv safetensors loader cli_args)
# Build all first (one cmake --build), so the parallel runs below do not race on the build tree.
cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEPLB_BUILD_FUZZ=ON -DEPLB_BUILD_TESTS=OFF -DEPLB_BUILD_APPS=OFF -DEPLB_BUILD_BENCH=OFF \
  -DEPLB_BUILD_EXAMPLES=OFF -DEPLB_INSTALL=OFF -DEPLB_ENABLE_CUDA=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)"
status=0
run_pair() {
  local pids=() t
  for t in "$@"; do
    EPLB_FUZZ_NO_BUILD=1 bash scripts/fuzz.sh "$t" "$seconds" >"build-fuzz/ci-$t.out" 2>&1 &
    pids+=($!)
  done
  local i=0
  for t in "$@"; do
    if wait "${pids[$i]}"; then
      echo "fuzz $t: ok $(tr '\n' ' ' <"build-fuzz/ci-$t.out")"
    else
      echo "fuzz $t: FAILED" >&2
      cat "build-fuzz/ci-$t.out" >&2
      status=1
    fi
    i=$((i + 1))
  done
}
jobs=$(nproc)
for ((k = 0; k < ${#targets[@]}; k += jobs)); do
  run_pair "${targets[@]:k:jobs}"
done
exit $status
