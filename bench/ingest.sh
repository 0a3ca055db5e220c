#!/usr/bin/env bash
# Ingest benchmark: reads synthesized vLLM stats traces (DeepSeek-V3 and Qwen3-235B shapes,
# 100 MB and 2 GB, plain / gzip / zstd) with 1 and 2 parser threads, on the CPU and with CUDA,
# next to a plain Python reader, and prints a Markdown table. Each figure is the best of a few
# runs of a separate process; peak memory is that process's maximum RSS (getrusage via
# /usr/bin/time). Traces are generated once into $EPLB_BENCH_DIR and reused; nothing is committed.
#
# usage: bench/ingest.sh [BUILD_DIR]            (default: build)
# env:   EPLB_BENCH_DIR=/tmp/eplb-bench         where the traces go (about 6 GB with 2 GB traces)
#        EPLB_BENCH_SIZES="100M 2G"             trace sizes
#        EPLB_BENCH_RUNS=3                      runs per row for traces under 1 GB (1 GB+: 2)
#        EPLB_BENCH_THREADS="1 2"               reader threads per row (CUDA rows use the last)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tool=$build/bench/eplb-bench-ingest
if [[ ! -x $tool ]]; then
  echo "missing $tool: cmake --build $build --target eplb-bench-ingest" >&2
  exit 1
fi
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 1; }
dir=${EPLB_BENCH_DIR:-/tmp/eplb-bench}
read -r -a sizes <<<"${EPLB_BENCH_SIZES:-100M 2G}"
read -r -a thread_counts <<<"${EPLB_BENCH_THREADS:-1 2}"
cuda_threads=${thread_counts[${#thread_counts[@]} - 1]}
runs_small=${EPLB_BENCH_RUNS:-3}
shapes=(deepseek-v3 qwen3-235b)
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- traces ---------------------------------------------------------------------------------------
for shape in "${shapes[@]}"; do
  for size in "${sizes[@]}"; do
    f=$dir/$shape-$size.jsonl
    [[ -s $f ]] || { echo "generating $f" >&2; "$tool" gen "$shape" "$size" "$f"; }
    [[ -s $f.gz ]] || { echo "compressing $f.gz" >&2; "$tool" compress "$f" "$f.gz"; }
    [[ -s $f.zst ]] || { echo "compressing $f.zst" >&2; "$tool" compress "$f" "$f.zst"; }
  done
done
# The worst case for the reader: a new p2l_map in every record (no map is reused).
remap=$dir/deepseek-v3-100M-remap1.jsonl
[[ -s $remap ]] || "$tool" gen deepseek-v3 100M "$remap" 1

# --- measurements ---------------------------------------------------------------------------------
# best RUNS CMD...: runs CMD, keeps the run with the smallest wall time; prints
# "text_bytes wall cpu rss_kb checksum device".
best() {
  local runs=$1
  shift
  local best_line="" best_wall=""
  for ((i = 0; i < runs; i++)); do
    /usr/bin/time -f "%M" -o "$tmp/rss" "$@" >"$tmp/out" 2>"$tmp/err"
    read -r bytes wall cpu records checksum device <"$tmp/out"
    local rss
    rss=$(tail -n 1 "$tmp/rss")
    if [[ -z $best_wall ]] || awk -v a="$wall" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then
      best_wall=$wall
      best_line="$bytes $wall $cpu $rss $checksum $device"
    fi
  done
  echo "$best_line"
}

cuda=$("$tool" cuda)
declare -A python_rate checksum_of
rows=()
mismatch=0
add_row() {  # shape trace format threads device line
  local shape=$1 trace=$2 format=$3 threads=$4 device=$5 line=$6
  read -r bytes wall cpu rss sum used <<<"$line"
  local key=$shape-$trace
  if [[ -z ${checksum_of[$key]:-} ]]; then
    checksum_of[$key]=$sum
  elif [[ ${checksum_of[$key]} != "$sum" ]]; then
    mismatch=1
    echo "checksum mismatch: $shape $trace $format threads $threads $device" >&2
  fi
  local rate cpu_rate ratio=""
  rate=$(awk -v b="$bytes" -v w="$wall" 'BEGIN { printf "%.3f", b / w / 1e9 }')
  cpu_rate=$(awk -v b="$bytes" -v c="$cpu" 'BEGIN { printf "%.3f", b / c / 1e9 }')
  if [[ -n ${python_rate[$shape]:-} && $device != python ]]; then
    ratio=$(awk -v r="$rate" -v p="${python_rate[$shape]}" 'BEGIN { printf "%.0fx", r / p }')
  fi
  rows+=("| $shape | $trace | $format | $threads | $used | $wall | $rate | $cpu | $cpu_rate | $((rss / 1024)) MB | $ratio |")
}

echo "measuring (this machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))..." >&2
for shape in "${shapes[@]}"; do
  # The Python reader on the smallest plain trace sets the reference rate for the shape.
  small=${sizes[0]}
  line=$(best 1 python3 bench/reference_reader.py "$dir/$shape-$small.jsonl")
  python_rate[$shape]=$(awk -v l="$line" 'BEGIN { split(l, f, " "); printf "%.6f", f[1] / f[2] / 1e9 }')
  add_row "$shape" "$small" plain 1 python "$line"
  for size in "${sizes[@]}"; do
    runs=$runs_small
    [[ $size == *G ]] && runs=2
    for format in plain gz zst; do
      f=$dir/$shape-$size.jsonl
      [[ $format != plain ]] && f=$f.$format
      for threads in "${thread_counts[@]}"; do
        add_row "$shape" "$size" "$format" "$threads" cpu "$(best "$runs" "$tool" run "$f" "$threads" cpu)"
      done
    done
    if [[ $cuda == yes ]]; then
      f=$dir/$shape-$size.jsonl
      add_row "$shape" "$size" plain "$cuda_threads" cuda \
        "$(best "$runs" "$tool" run "$f" "$cuda_threads" cuda)"
    else
      rows+=("| $shape | $size | plain | $cuda_threads | cuda | no GPU | | | | | |")
    fi
  done
done
for threads in "${thread_counts[@]}"; do
  add_row deepseek-v3 "100M, new map per record" plain "$threads" cpu \
    "$(best "$runs_small" "$tool" run "$remap" "$threads" cpu)"
done

# --- table ----------------------------------------------------------------------------------------
echo
echo "Ingest of vLLM stats JSONL ($(date -u +%Y-%m-%d), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg) after the run)"
echo
echo "| Shape | Trace | Format | Threads | Device | Wall s | GB/s | CPU s | GB/CPU-s | Peak RSS | vs Python |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "GB/s: JSONL bytes (after decompression) per wall-clock second, best of ${runs_small} runs (2 for 1 GB and more);"
echo "GB/CPU-s: the same bytes per second of CPU time of the whole process (user + system)."
echo "vs Python: that rate over the Python reader's rate on the same shape's ${sizes[0]} plain trace."
if [[ $cuda != yes ]]; then echo "CUDA: ${cuda#no: }."; fi
if [[ $mismatch == 0 ]]; then
  echo "Checksums of the summed loads: equal in every row of each trace (Python included)."
else
  echo "CHECKSUM MISMATCH: see stderr." && exit 1
fi
