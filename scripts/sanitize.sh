#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/, any error is
# fatal: -fno-sanitize-recover) and runs the whole test suite under them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# RelWithDebInfo: optimized enough that the suite stays fast, with line numbers in reports.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEPLB_WERROR=ON \
  -DEPLB_SANITIZE=address,undefined -DEPLB_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$(nproc)"
# detect_leaks: the library must not leak either; abort_on_error: a report fails the test.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure --no-tests=error -j"$(nproc)"
