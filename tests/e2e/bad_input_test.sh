#!/usr/bin/env bash
# Bad input through the real binaries: every case of tests/data/bad/cases.tsv must exit with its
# status (1 bad input, 2 usage error) with exactly the expected message on stderr, write nothing
# and leave its input unchanged. Inputs are run from a scratch copy of
# tests/data/bad, so messages name them by their bare file name; the big inputs (a 100 MB line,
# limit cases) are generated there at test time and never committed.
# Env: EPLB_GEN (eplb-gen), EPLB_SOURCE_DIR (the repo), EPLB_SERVING (eplb-serving-example;
# optional: its cases are skipped without it).
#
# cases.tsv columns (tab-separated; '#' lines and blank lines ignored):
#   tool      gen: eplb-gen --stats INPUT ARGS -o out.jsonl, exit status 1
#             usage: the same, exit status 2 (a usage error)
#             run1, run2: eplb-gen ARGS (the whole command line), exit status 1 or 2; INPUT ('-'
#                     for none) must be byte for byte unchanged afterwards
#             gen-ok: as gen, but must succeed; EXPECTED names a reference input whose mapping
#                     (run the same way) must match byte for byte, or is '-' (success is enough)
#             serve: eplb-serving-example --mapping INPUT ARGS, exit status 1
#   input     file name in tests/data/bad (or one generated below)
#   args      extra arguments, split on spaces ('-' for none: read collapses empty columns)
#   expected  the exact stderr (one line), or for gen-ok the reference input
# Nothing may be written: no file or temporary file whose name starts with "out".
set -u
gen=${EPLB_GEN:?}
src=${EPLB_SOURCE_DIR:?}
serving=${EPLB_SERVING:-}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cp -R "$src/tests/data/bad/." "$work/"
cd "$work" || exit 1

# Generated inputs.
meta='{"record_type": "eplb_load_meta", "version": 1, "num_ranks": 1, "num_groups": 1, "num_nodes": 1, "num_layers": 1, "num_redundant_experts": 0}'
# A 100 MiB line: far over the default 16 MiB line limit (the reader stops at the limit).
{
  echo "$meta"
  printf '{"record_type": "eplb_load_stats", "step": 1, "tokens": "'
  head -c $((100 * 1024 * 1024)) /dev/zero | tr '\0' 'x'
  printf '"}\n'
} >huge_line.jsonl
# 4097 layers of one slot, one more than the limit.
awk 'BEGIN {
  printf "{\"record_type\": \"eplb_load_stats\", \"step\": 1, \"expert_load\": [[1]";
  for (i = 1; i < 4097; i++) printf ", [1]";
  printf "], \"p2l_map\": [[0]";
  for (i = 1; i < 4097; i++) printf ", [0]";
  printf "]}\n" }' >too_many_layers.jsonl
# 65537 slots in one layer, one more than the limit.
awk 'BEGIN {
  printf "{\"record_type\": \"eplb_load_stats\", \"step\": 1, \"expert_load\": [[1";
  for (i = 1; i < 65537; i++) printf ", 1";
  printf "]], \"p2l_map\": [[0";
  for (i = 1; i < 65537; i++) printf ", 0";
  printf "]]}\n" }' >too_many_slots.jsonl

# bzip2 data (only its magic bytes matter), a symlink loop, a directory of JSONL files without
# meta_info.json, a torch archive, and an SGLang layer of 65536 experts (the planner's limits).
printf 'BZh91AY&SY\001\002\003garbage' >compressed.jsonl.bz2
ln -s loop_b loop_a
ln -s loop_a loop_b
mkdir jsonl_dir
cp lf.jsonl jsonl_dir/
echo x >model.pt
awk 'BEGIN { printf "{\"logical_count\": [[1"; for (i = 1; i < 65536; i++) printf ", 1"; printf "]]}\n" }' \
  >wide_sglang.json

no_output() {  # case name: nothing written, not even a temporary file
  if compgen -G 'out*' >/dev/null; then bad "$1: $(echo out*) written"; return 1; fi
  if compgen -G '.out*.tmp.*' >/dev/null; then bad "$1: temporary file left"; return 1; fi
  return 0
}

line_no=0
while IFS=$'\t' read -r tool input args expected || [[ -n $tool ]]; do
  line_no=$((line_no + 1))
  [[ -z $tool || $tool == \#* ]] && continue
  name="cases.tsv:$line_no ($input)"
  argv=()
  [[ $args != - ]] && read -r -a argv <<<"$args"
  rm -rf out* .out* ref.jsonl
  want=1
  sum_before=
  case $tool in
    gen | usage)
      [[ $tool == usage ]] && want=2
      "$gen" --stats "$input" "${argv[@]}" -o out.jsonl >stdout 2>stderr
      rc=$?
      ;;
    run1 | run2)
      want=${tool#run}
      [[ $input != - ]] && sum_before=$(cksum <"$input")
      "$gen" "${argv[@]}" >stdout 2>stderr
      rc=$?
      if [[ -n $sum_before && $(cksum <"$input") != "$sum_before" ]]; then
        bad "$name: $input was changed"
        continue
      fi
      ;;
    gen-ok)
      if "$gen" --stats "$input" "${argv[@]}" -o out.jsonl -q >stdout 2>stderr &&
        [[ -s out.jsonl ]] &&
        { [[ $expected == - ]] ||
          { "$gen" --stats "$expected" "${argv[@]}" -o ref.jsonl -q 2>>stderr &&
            cmp -s out.jsonl ref.jsonl; }; }; then
        passes=$((passes + 1))
      else
        bad "$name: expected success and the mapping of $expected"
        cat stderr >&2
      fi
      continue
      ;;
    serve)
      if [[ -z $serving ]]; then continue; fi
      "$serving" --mapping "$input" "${argv[@]}" >stdout 2>stderr
      rc=$?
      ;;
    *)
      bad "$name: unknown tool '$tool'"
      continue
      ;;
  esac
  actual=$(cat stderr)
  if [[ $rc -ne $want ]]; then
    bad "$name: exit status $rc, expected $want"
  elif [[ $actual != "$expected" ]]; then
    bad "$name: message differs"
    printf '  expected: %s\n  actual:   %s\n' "$expected" "$actual" >&2
  elif [[ -s stdout ]]; then
    bad "$name: printed on stdout: $(head -c 200 stdout)"
  elif no_output "$name"; then
    passes=$((passes + 1))
  fi
done <"$src/tests/data/bad/cases.tsv"

echo "bad input: $passes passed, $failures failed"
[[ $failures -eq 0 && $passes -gt 0 ]]
