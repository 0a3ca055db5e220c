#!/usr/bin/env bash
# Nothing lost, nothing false (the cases of tests/data/bad/cases.tsv that need more set-up than one
# input file): outputs never clobber inputs (links included), a set of outputs is written all or
# nothing, stdout is checked, usage errors exit 2, --max-moves holds for every policy and objective
# with the printed count equal to the real one, FIFOs and /dev/stdin read as stats, memory stays
# within the documented limits, control characters are escaped.
# Env: EPLB_GEN (eplb-gen), EPLB_SOURCE_DIR (the repo), EPLB_SANITIZED (1: built with sanitizers,
# the memory checks are skipped).
set -u
gen=${EPLB_GEN:?}
src=${EPLB_SOURCE_DIR:?}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bad_dir=$src/tests/data/bad
sample=$src/data/sample.jsonl
cd "$work" || exit 1
cp "$bad_dir/lf.jsonl" "$bad_dir/meta_ranks_b.jsonl" .

# run_case NAME STATUS EXPECTED_STDERR COMMAND...: the exit status and the whole stderr.
run_case() {
  local name=$1 want=$2 expected=$3
  shift 3
  "$@" >case.out 2>case.err
  local rc=$?
  if [[ $rc -ne $want ]]; then
    bad "$name: exit status $rc, expected $want ($(head -c 300 case.err))"
  elif [[ $(cat case.err) != "$expected" ]]; then
    bad "$name: message differs"
    printf '  expected: %s\n  actual:   %s\n' "$expected" "$(cat case.err)" >&2
  else
    ok
  fi
}
same_file() {  # what, a, b
  if cmp -s "$2" "$3"; then ok; else bad "$1: $2 and $3 differ"; fi
}
no_file() {  # what, path...
  local what=$1
  shift
  local p
  for p in "$@"; do
    if [[ -e $p || -L $p ]]; then bad "$what: $p exists"; return; fi
  done
  ok
}
no_temporaries() {  # what, directory
  if compgen -G "$2/.*.tmp.*" >/dev/null; then bad "$1: temporary file left in $2"; else ok; fi
}

# 1. CLI11's own parse errors are usage errors (exit 2), in the same words as every error.
run_case "unknown flag" 2 "eplb-gen: error: The following argument was not expected: --bogus
Run with --help for more information." "$gen" --stats lf.jsonl --bogus
run_case "not a number" 2 "eplb-gen: error: Could not convert: --ep = abc
Run with --help for more information." "$gen" --stats lf.jsonl --ep abc
run_case "help" 0 "" "$gen" --help
"$gen" -q >/dev/null 2>case.err
rc=$?
[[ $rc -eq 2 && $(tail -n 1 case.err) == "eplb-gen: error: --stats is required" ]] && ok ||
  bad "no --stats: exit status $rc, $(tail -n 1 case.err)"

# 2. Outputs never overwrite an input, whatever its spelling: a link, an absolute path.
cp lf.jsonl keep.jsonl
ln -s lf.jsonl link.jsonl
run_case "-o through a link to the stats" 2 \
  "eplb-gen: error: -o link.jsonl: is the input --stats lf.jsonl (the same file); an output never overwrites an input" \
  "$gen" --stats lf.jsonl --ep 2 -o link.jsonl
run_case "--summary as the absolute stats path" 2 \
  "eplb-gen: error: --summary $work/lf.jsonl: is the input --stats lf.jsonl (the same file); an output never overwrites an input" \
  "$gen" --stats lf.jsonl --ep 2 -o m.jsonl --summary "$work/lf.jsonl"
same_file "stats after the refused runs" lf.jsonl keep.jsonl
no_file "refused runs" m.jsonl
run_case "two outputs, one file" 2 \
  "eplb-gen: error: --summary ./m.jsonl: is also the output -o m.jsonl (the same file); give each output its own path" \
  "$gen" --stats lf.jsonl --ep 2 -o m.jsonl --summary ./m.jsonl
run_case "stats given twice through a link" 2 \
  "eplb-gen: error: link.jsonl: is the same file as lf.jsonl, listed twice (its loads would be counted twice)" \
  "$gen" --stats lf.jsonl --stats link.jsonl --ep 2 -o m.jsonl

# 3. All or nothing: a failing output (a full device, a directory in the way) leaves every
#    previous file as it was and no temporary file behind.
"$gen" --stats lf.jsonl --ep 2 -o prev.jsonl -q
cp prev.jsonl prev.orig
run_case "--summary /dev/full" 1 "eplb-gen: error: /dev/full: cannot write: No space left on device" \
  "$gen" --stats lf.jsonl --ep 2 --policy deepseek -o prev.jsonl --summary /dev/full -q
same_file "mapping after the failed summary" prev.jsonl prev.orig
no_temporaries "failed summary" .
mkdir -p od/trtllm_eplb.yaml
"$gen" --stats lf.jsonl --ep 2 --format vllm --output-dir od -q
cp od/mapping.jsonl od.orig
run_case "a directory in the way of one format" 1 \
  "eplb-gen: error: od/trtllm_eplb.yaml: cannot write: Is a directory" \
  "$gen" --stats lf.jsonl --ep 2 --policy deepseek --format vllm,sglang,trtllm,json --output-dir od -q
same_file "od/mapping.jsonl after the failed set" od/mapping.jsonl od.orig
no_file "failed set" od/sglang_expert_location.json od/placement.json
no_temporaries "failed set" od
run_case "a missing directory is created, and removed when the run fails" 1 \
  "eplb-gen: error: /dev/full: cannot write: No space left on device" \
  "$gen" --stats lf.jsonl --ep 2 --output-dir new/deeper --summary /dev/full -q
no_file "failed run" new

# 4. What goes to stdout is flushed and checked: a full disk or a closed stdout fails the run.
run_case "-o - into a full disk" 1 \
  "eplb-gen: error: standard output: cannot write: No space left on device" \
  bash -c '"$0" --stats lf.jsonl --ep 2 -o - -q >/dev/full' "$gen"
run_case "-o - into a closed stdout" 1 \
  "eplb-gen: error: standard output: cannot write: Bad file descriptor" \
  bash -c '"$0" --stats lf.jsonl --ep 2 -o - -q >&-' "$gen"
run_case "convert -o - into a full disk" 1 \
  "eplb-gen: error: standard output: cannot write: No space left on device" \
  bash -c '"$0" convert --input prev.jsonl -o - -q >/dev/full' "$gen"
run_case "eval's table into a full disk" 1 \
  "eplb-gen: error: standard output: cannot write: No space left on device" \
  bash -c '"$0" eval --stats lf.jsonl -m prev.jsonl --no-bound >/dev/full' "$gen"
run_case "eval --json - into a full disk" 1 \
  "eplb-gen: error: standard output: cannot write: No space left on device" \
  bash -c '"$0" eval --stats lf.jsonl -m prev.jsonl --no-bound --json - >/dev/full' "$gen"

# 5. --max-moves K is a hard cap for every policy and objective, and the printed count is the
#    written mapping's against --previous.
"$gen" --stats "$sample" --stats-format vllm --ep 8 --redundant 8 --policy deepseek -o deployed.jsonl -q 2>/dev/null
rows() { grep -o '"[0-9]*": \[[0-9, ]*\]' "$1" | sed 's/^"[0-9]*": \[//; s/\]$//; s/,//g'; }
# changed: per layer, the slots whose expert differs; prints "max total".
changed() {
  paste -d'|' <(rows "$1") <(rows "$2") | awk -F'|' '{
    n = split($1, a, " "); split($2, b, " "); c = 0
    for (i = 1; i <= n; i++) if (a[i] != b[i]) c++
    total += c; if (c > max) max = c
  } END { print max + 0, total + 0 }'
}
if [[ -s deployed.jsonl ]]; then
  layers=$(rows deployed.jsonl | wc -l)
  "$gen" synth --layers "$layers" --experts 64 --steps 30 --ep 8 --redundant 8 --drift 0.8 \
    --seed 5 -o moved.jsonl 2>/dev/null || bad "synth moved stats"
  for policy in deepseek balanced; do
    for objective in sum per-step; do
      for k in 0 1 3; do
        what="--policy $policy --objective $objective --max-moves $k"
        if "$gen" --stats moved.jsonl --ep 8 --redundant 8 --policy "$policy" \
          --objective "$objective" --previous deployed.jsonl --max-moves "$k" -o capped.jsonl \
          2>capped.err; then
          read -r max total <<<"$(changed deployed.jsonl capped.jsonl)"
          [[ $max -le $k ]] && ok || bad "$what: a layer changes $max slots"
          expect_contains capped.err "previous: imbalance " "$what: previous line"
          printed=$(sed -n 's/^previous: imbalance [0-9.]*x; \([0-9]*\) slot(s) change over .*/\1/p' capped.err)
          [[ $printed == "$total" ]] && ok || bad "$what: printed $printed moves, the mapping has $total"
          expect_contains capped.err "(at most $k per layer)" "$what: the cap"
        else
          bad "$what failed: $(cat capped.err)"
        fi
      done
    done
    # Without a cap the count is still the real one.
    "$gen" --stats moved.jsonl --ep 8 --redundant 8 --policy "$policy" --previous deployed.jsonl \
      -o free.jsonl 2>free.err || bad "$policy without a cap"
    read -r max total <<<"$(changed deployed.jsonl free.jsonl)"
    printed=$(sed -n 's/^previous: imbalance [0-9.]*x; \([0-9]*\) slot(s) change over .*/\1/p' free.err)
    [[ $printed == "$total" ]] && ok || bad "$policy uncapped: printed $printed moves, the mapping has $total"
  done
else
  bad "no deployed mapping"
fi

# 6. FIFOs and /dev/stdin read as stats, detected from a buffered prefix (no second open).
"$gen" --stats "$sample" -o ref.jsonl -q
mkfifo stats.fifo
cat "$sample" >stats.fifo &
if timeout 60 "$gen" --stats stats.fifo -o fifo.jsonl -q 2>fifo.err; then
  same_file "mapping from a FIFO" fifo.jsonl ref.jsonl
else
  bad "FIFO as stats: $(cat fifo.err)"
fi
wait
if timeout 60 "$gen" --stats /dev/stdin -o stdin.jsonl -q <"$sample" 2>stdin.err &&
  gzip -c "$sample" | timeout 60 "$gen" --stats /dev/stdin -o stdin_gz.jsonl -q 2>>stdin.err; then
  same_file "mapping from /dev/stdin" stdin.jsonl ref.jsonl
  same_file "mapping from gzip on /dev/stdin" stdin_gz.jsonl ref.jsonl
else
  bad "/dev/stdin as stats: $(cat stdin.err)"
fi
fx=$src/tests/data/formats
"$gen" --stats "$fx/sglang_logical_count_2d.json" --ep 2 -o sg_ref.jsonl -q
if timeout 60 "$gen" --stats /dev/stdin --ep 2 -o sg_stdin.jsonl -q \
  <"$fx/sglang_logical_count_2d.json" 2>sg.err; then
  same_file "SGLang stats from /dev/stdin" sg_stdin.jsonl sg_ref.jsonl
else
  bad "SGLang on /dev/stdin: $(cat sg.err)"
fi
run_case "--split on a pipe" 2 \
  "eplb-gen: error: --split: reads the stats twice, but /dev/stdin is a pipe or a device that can be read once; save it to a file" \
  bash -c 'cat "$1" | "$0" --stats /dev/stdin --split 0.5 -o split.jsonl -q' "$gen" "$sample"

# 7. Memory within the documented limits: a one-line gzip bomb with --max-line-bytes 128 MiB
#    needs one buffer of 128 MiB, not 1.5-2 times it (the old growth copied the buffer), so it
#    fails cleanly with 192 MiB of address space; synth streams (64 MiB for a 90 MB trace).
if [[ ${EPLB_SANITIZED:-0} == 1 ]]; then
  echo "safety: memory limits not checked under sanitizers (their shadow memory needs the address space)"
else
  printf '{"record_type": "eplb_load_stats", "step": 1, "tokens": "' >bomb.jsonl
  head -c $((200 * 1024 * 1024)) /dev/zero | tr '\0' x >>bomb.jsonl
  gzip -1 -f bomb.jsonl
  run_case "one-line gzip bomb in 192 MiB" 1 \
    "eplb-gen: error: bomb.jsonl.gz:1: line is longer than the limit of 134217728 bytes (docs/limits.md; raise it with --max-line-bytes)" \
    bash -c 'ulimit -v 196608 && exec "$0" --stats bomb.jsonl.gz --ep 1 --max-line-bytes 134217728 --threads 1 -o b.jsonl -q' "$gen"
  rm -f bomb.jsonl.gz
  bytes=$(bash -c 'ulimit -v 65536 && exec "$0" synth --layers 8 --experts 64 --steps 20000 -o -' "$gen" | wc -c)
  [[ $bytes -gt $((64 * 1024 * 1024)) ]] && ok || bad "synth in 64 MiB wrote $bytes bytes"
fi

# 8. Control characters from the input are escaped; meta records that differ only in the recording
#    EP size are reported.
printf '%s\n' '{"record_type": "eplb_load_meta", "version": 1, "model": "evil\u001b[2J\u0007", "num_ranks": 2, "num_groups": 1, "num_nodes": 1, "num_layers": 2, "num_redundant_experts": 1}' \
  "$(sed -n 2,3p lf.jsonl)" >escape.jsonl
"$gen" --stats escape.jsonl -o esc.jsonl 2>esc.err || bad "model with control characters"
expect_contains esc.err 'model evil\x1b[2J\x07' "escaped model name"
if grep -q $'\x1b' esc.err; then bad "a raw escape reached the terminal"; else ok; fi
"$gen" --stats lf.jsonl --stats meta_ranks_b.jsonl -o notes.jsonl 2>notes.err || bad "meta notes run"
expect_contains notes.err "stats:    note: meta_ranks_b.jsonl:1: num_ranks = 4 but lf.jsonl:1 says 2" \
  "EP difference reported"
# Threads up to the limit work and change nothing.
"$gen" --stats "$sample" --threads 1024 -o t1024.jsonl -q || bad "--threads 1024"
same_file "--threads 1024" t1024.jsonl ref.jsonl

echo "safety: $passes passed, $failures failed"
[[ $failures -eq 0 && $passes -gt 0 ]]
