#!/usr/bin/env bash
# Install dependencies, build everything warnings-as-errors, and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# Tests, benchmarks and examples on explicitly: scripts/quickstart.sh configures the same build/
# with them off, and CMake would keep that from its cache.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DEPLB_WERROR=ON -DEPLB_BUILD_TESTS=ON \
  -DEPLB_BUILD_BENCH=ON -DEPLB_BUILD_EXAMPLES=ON -DEPLB_BUILD_APPS=ON >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure --no-tests=error -j"$(nproc)"
