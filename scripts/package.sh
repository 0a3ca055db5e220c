#!/usr/bin/env bash
# Builds eplb-gen's Debian package with CPack (cmake/package.cmake) and prints its path on stdout.
# usage: scripts/package.sh [BUILD_DIR]
# BUILD_DIR (default build-pkg) is configured as a Release build of the library and eplb-gen
# when it has no CMakeCache.txt; a configured tree (scripts/test.sh's build/, say) is packaged as
# it is, once whatever is missing in it is built.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-pkg}
# dpkg-shlibdeps (dpkg-dev) computes the dependencies; CPack finds the ELF files with file(1).
bash scripts/deps.sh dpkg-dev file >&2
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DEPLB_BUILD_TESTS=OFF \
    -DEPLB_BUILD_BENCH=OFF -DEPLB_BUILD_EXAMPLES=OFF >&2
fi
cmake --build "$build" -j"$(nproc)" >&2
log=$(cd "$build" && cpack -G DEB)
echo "$log" >&2
deb=$(sed -n 's/^CPack: - package: \(.*\.deb\) generated\.$/\1/p' <<<"$log")
[[ -n "$deb" && -f "$deb" ]] || { echo "package: cpack wrote no .deb" >&2; exit 1; }
echo "$deb"
