#!/usr/bin/env bash
# Package test: unpacks eplb-gen's Debian package into a scratch root (dpkg-deb -x, nothing is
# installed), checks its control fields and contents, runs its eplb-gen on data/sample.jsonl, and
# builds the find_package(eplb) consumers against that root: examples/serving (eplb::loader) and
# tests/consumer/core (eplb::core), with CMake's default generator.
# usage: run.sh DEB SRC_DIR WORK_DIR
set -euo pipefail
if [[ $# -ne 3 ]]; then
  echo "usage: $0 DEB SRC_DIR WORK_DIR" >&2
  exit 2
fi
deb=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd)
source "$src/tests/consumer/lib.sh"
fresh_work "$3"
step_what="package test"
fail() {
  echo "package test: $*" >&2
  exit 1
}

# Control fields: the project's version, and dependencies computed by dpkg-shlibdeps.
version=$(sed -n 's/^project(eplb VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[[ -n "$version" ]] || fail "no version in CMakeLists.txt"
[[ "$(dpkg-deb -f "$deb" Package)" == eplb-gen ]] || fail "package name: $(dpkg-deb -f "$deb" Package)"
[[ "$(dpkg-deb -f "$deb" Version)" == "$version" ]] ||
  fail "version $(dpkg-deb -f "$deb" Version), the project's is $version"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libstdc++6 libsimdjson libfmt libzstd1 zlib1g; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done

# Contents: the binary, the headers, the static library and the CMake package files.
dpkg-deb -x "$deb" "$work/root"
prefix=$work/root/usr
for f in bin/eplb-gen include/eplb/loader.hpp include/eplb/plan.hpp lib/libeplb.a \
    lib/cmake/eplb/eplbConfig.cmake lib/cmake/eplb/eplbConfigVersion.cmake \
    lib/cmake/eplb/eplbTargets.cmake; do
  [[ -f "$prefix/$f" ]] || fail "missing /usr/$f"
done

# The packaged eplb-gen plans the sample and checks its own mapping.
gen=$prefix/bin/eplb-gen
[[ "$("$gen" --version)" == "eplb-gen $version" ]] || fail "--version: $("$gen" --version)"
step plan.log "$gen" --stats "$src/data/sample.jsonl" --ep 8 --redundant 8 -o "$work/m.jsonl"
grep -q '^Imbalance after:  1\.0' "$work/plan.log" || fail "unexpected plan output: $(cat "$work/plan.log")"
step check.log "$gen" check --mapping "$work/m.jsonl" --layers 28 --experts 64 --ep 8 --redundant 8

# find_package(eplb) consumers against the unpacked root.
step serving-configure.log cmake -S "$src/examples/serving" -B "$work/serving" \
  -DCMAKE_PREFIX_PATH="$prefix"
step serving-build.log cmake --build "$work/serving" -j"$(nproc)"
out=$("$work/serving/eplb-serving-example" --mapping "$work/m.jsonl" --layers 28 --experts 64 \
  --ep 8 --redundant 8 --rank 3)
[[ "$out" == "mapping $work/m.jsonl: 28 layers, 64 experts + 8 redundant = 72 slots, EP 8"* ]] ||
  fail "serving example: $out"
step core-configure.log cmake -S "$src/tests/consumer/core" -B "$work/core" \
  -DEPLB_CONSUMER_MODE=find_package -DCMAKE_PREFIX_PATH="$prefix"
step core-build.log cmake --build "$work/core" -j"$(nproc)"
out=$("$work/core/eplb-core-consumer" "$src/data/sample.jsonl" 8 8)
[[ "$out" == "28 layers x 64 experts, EP 8, 72 slots: imbalance 1.3969x -> "* ]] ||
  fail "core consumer: $out"
echo "package test passed: $(basename "$deb") (Depends: $depends)"
