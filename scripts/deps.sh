#!/usr/bin/env bash
# Installs the Debian packages eplb-gen builds and tests with (skips what is already there).
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config libcli11-dev libsimdjson-dev libfmt-dev
      libeigen3-dev catch2 libbenchmark-dev zlib1g-dev libzstd-dev
      chromium)  # headless browser for the HTML report test (tests/e2e/report_test.sh)
pkgs+=("$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
