#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds eplb with CUDA, runs the CUDA tests (which must not be
# skipped there) and the ingest benchmark with its CUDA rows, in one go and within 10 minutes
# (16 cores). CI, which has nvcc but no GPU, only compiles the CUDA code.
#
# usage: scripts/gpu-check.sh [BUILD_DIR]     (default: build-gpu)
# env:   EPLB_BENCH_SIZES (default "100M 1G"), EPLB_BENCH_DIR (default /tmp/eplb-bench-gpu),
#        CMAKE_CUDA_ARCHITECTURES (default 90: H100/H200)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
start=$SECONDS
step() { echo "== $* ($((SECONDS - start)) s)" >&2; }

step "GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
else
  echo "nvidia-smi not found" >&2
fi
command -v nvcc >/dev/null 2>&1 || export PATH=/usr/local/cuda/bin:$PATH

step "configure and build (CUDA on)"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DEPLB_ENABLE_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}" -DEPLB_BUILD_EXAMPLES=OFF \
  >"$build.configure.log" 2>&1 || { tail -n 30 "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)" --target eplb_tests eplb-bench-ingest eplb-gen

step "device"
status=$("$build/bench/eplb-bench-ingest" cuda)
echo "$status" >&2
if [[ $status != yes ]]; then
  echo "gpu-check: no usable CUDA device, nothing to check" >&2
  exit 1
fi

step "tests: CUDA against the CPU (none may be skipped here)"
"$build/tests/eplb_tests" "[cuda]" --success --reporter compact 2>&1 | tail -n 5
if "$build/tests/eplb_tests" "[cuda]" 2>&1 | grep -q "skipped"; then
  echo "gpu-check: CUDA tests were skipped on a GPU machine" >&2
  exit 1
fi
"$build/tests/eplb_tests" "[aggregate],[scale],[stats]" | tail -n 2

step "eplb-gen --device cuda on a synthetic trace"
trace=$(mktemp --suffix=.jsonl)
trap 'rm -f "$trace"' EXIT
"$build/apps/eplb-gen/eplb-gen" synth --layers 58 --experts 256 --redundant 32 --ep 32 \
  --steps 200 --shuffle-p2l -o "$trace"
for device in cpu cuda; do
  "$build/apps/eplb-gen/eplb-gen" --stats "$trace" --device "$device" -o "$trace.$device.map" \
    2>&1 | grep -E "device|Imbalance after" || true
done
cmp "$trace.cpu.map" "$trace.cuda.map" && echo "mappings: identical (cpu, cuda)" >&2
rm -f "$trace".*

step "ingest benchmark"
EPLB_BENCH_SIZES=${EPLB_BENCH_SIZES:-100M 1G} EPLB_BENCH_DIR=${EPLB_BENCH_DIR:-/tmp/eplb-bench-gpu} \
  EPLB_BENCH_THREADS=${EPLB_BENCH_THREADS:-1 2 $(nproc)} bash bench/ingest.sh "$build"
step "done"
