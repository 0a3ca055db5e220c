#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz/, Clang, ASan+UBSan) and runs one of them.
#   scripts/fuzz.sh TARGET [SECONDS] [extra libFuzzer flags...]
# TARGET: vllm_reader sglang matrix_json matrix_csv safetensors loader cli_args (fuzz/README.md).
# The committed seeds in fuzz/corpus/TARGET are read, never written; new inputs go to
# build-fuzz/corpus/TARGET and crashes to build-fuzz/findings/TARGET/ (the log in
# build-fuzz/logs/TARGET.log ends with libFuzzer's final stats: executions and coverage).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 ]]; then
  echo "usage: $0 TARGET [SECONDS] [libFuzzer flags...]" >&2
  exit 2
fi
target=$1
seconds=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
if [[ ! -d fuzz/corpus/$target ]]; then
  echo "fuzz: no target '$target' (no fuzz/corpus/$target)" >&2
  exit 2
fi
build=build-fuzz
# EPLB_FUZZ_NO_BUILD=1: the targets are built already (scripts/fuzz-ci.sh runs several at once).
if [[ -z ${EPLB_FUZZ_NO_BUILD:-} ]]; then
  bash scripts/deps.sh clang llvm libclang-rt-14-dev
fi
if [[ -z ${EPLB_FUZZ_NO_BUILD:-} && ! -f $build/build.ninja ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEPLB_BUILD_FUZZ=ON -DEPLB_BUILD_TESTS=OFF -DEPLB_BUILD_APPS=OFF -DEPLB_BUILD_BENCH=OFF \
    -DEPLB_BUILD_EXAMPLES=OFF -DEPLB_INSTALL=OFF -DEPLB_ENABLE_CUDA=OFF >/dev/null
fi
if [[ -z ${EPLB_FUZZ_NO_BUILD:-} ]]; then
  cmake --build "$build" --target "fuzz_$target" -j"$(nproc)" >/dev/null
fi
mkdir -p "$build/corpus/$target" "$build/findings/$target" "$build/logs"
dict=()
[[ -f fuzz/dict/$target.dict ]] && dict=(-dict="fuzz/dict/$target.dict")
log=$build/logs/$target.log
# -rss_limit_mb / -malloc_limit_mb: an input that makes the library allocate beyond 2 GiB is a
# finding (the limits in docs/limits.md should have stopped it); -timeout: so is a slow input.
set +e
"$build/fuzz/fuzz_$target" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
  -artifact_prefix="$build/findings/$target/" "$@" "$build/corpus/$target" "fuzz/corpus/$target" \
  >"$log" 2>&1
rc=$?
set -e
# The last "#N ... cov: ... ft: ... exec/s" line and the final stats.
grep -E '^#[0-9]+' "$log" | tail -n 1 || true
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
if [[ $rc -ne 0 ]]; then
  echo "fuzz: $target failed (exit $rc); see $log and $build/findings/$target/" >&2
  grep -E 'ERROR|SUMMARY|oracle failed|Test unit written' "$log" | head -n 5 >&2 || true
fi
exit $rc
