#!/usr/bin/env bash
# End to end: a stats file copied while the server was still appending, cut inside its last line.
# Refused by default with a message that names --allow-partial-tail; with the flag, plan and eval
# use the complete records, warn with the number of bytes ignored, and plan the same mapping as
# the file without the cut line (plain and gzip). A damaged line before the last is still refused.
# Env: EPLB_GEN (the binary), EPLB_SOURCE_DIR (the repo).
set -u
gen=${EPLB_GEN:?}
src=${EPLB_SOURCE_DIR:?}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sample=$src/data/sample.jsonl
lines=$(wc -l <"$sample")
head -n $((lines - 1)) "$sample" >"$work/complete.jsonl"  # the meta line and 39 records
tail_bytes=1234                                             # of the last record, no newline
{ cat "$work/complete.jsonl"; tail -n 1 "$sample" | head -c "$tail_bytes"; } >"$work/live.jsonl"
gzip -c "$work/live.jsonl" >"$work/live.jsonl.gz"
plan=(--ep 8 --redundant 8)
"$gen" --stats "$work/complete.jsonl" "${plan[@]}" -o "$work/complete.map" -q ||
  bad "plan of the complete records failed"

# 1. Refused by default; the message names the line and the flag; nothing is written.
if "$gen" --stats "$work/live.jsonl" "${plan[@]}" -o "$work/refused.map" 2>"$work/refused.err"; then
  bad "the cut file was planned without --allow-partial-tail"
else ok; fi
expect_contains "$work/refused.err" "live.jsonl:$lines: truncated record" "refused: position"
expect_contains "$work/refused.err" "--allow-partial-tail" "refused: names the flag"
[[ ! -e "$work/refused.map" ]] && ok || bad "refused: a mapping was written"

# 2. With the flag: the warning with the byte count, the mapping of the complete records.
warning="eplb-gen: warning: $work/live.jsonl:$lines: ignored the incomplete last line ($tail_bytes bytes, no newline"
for input in live.jsonl live.jsonl.gz; do
  if "$gen" --stats "$work/$input" "${plan[@]}" --allow-partial-tail -o "$work/$input.map" \
      --summary "$work/$input.json" 2>"$work/$input.err"; then ok; else
    bad "$input: plan --allow-partial-tail failed"; cat "$work/$input.err" >&2; fi
  expect_contains "$work/$input.err" "${warning/live.jsonl:/$input:}" "$input: warning"
  expect_contains "$work/$input.err" "39 of 39 records used" "$input: records"
  cmp -s "$work/$input.map" "$work/complete.map" && ok ||
    bad "$input: the mapping differs from the one of the complete records"
  expect_contains "$work/$input.json" "\"partial_tail_bytes\": $tail_bytes" "$input: summary"
done
# With a held-out split too (the split reads the file once more).
"$gen" --stats "$work/complete.jsonl" "${plan[@]}" --split 0.7 -o "$work/complete-split.map" -q
if "$gen" --stats "$work/live.jsonl" "${plan[@]}" --split 0.7 --allow-partial-tail \
    -o "$work/live-split.map" -q; then ok; else bad "plan --split --allow-partial-tail failed"; fi
cmp -s "$work/live-split.map" "$work/complete-split.map" && ok || bad "--split: mappings differ"

# 3. eval reads stats too: the same refusal and the same warning.
if "$gen" eval --stats "$work/live.jsonl" --ep 8 -m "$work/complete.map" >/dev/null \
    2>"$work/eval-refused.err"; then bad "eval accepted the cut file"; else ok; fi
expect_contains "$work/eval-refused.err" "--allow-partial-tail" "eval refused: names the flag"
if "$gen" eval --stats "$work/live.jsonl" --ep 8 -m "$work/complete.map" --allow-partial-tail \
    --json "$work/eval.json" >"$work/eval.out" 2>"$work/eval.err"; then ok; else
  bad "eval --allow-partial-tail failed"; cat "$work/eval.err" >&2; fi
expect_contains "$work/eval.err" "$warning" "eval: warning"
expect_contains "$work/eval.json" '"judged_records": 39' "eval: records"

# 4. A damaged line before the last is an error, flag or not.
sed '12s/}$//' "$work/live.jsonl" >"$work/damaged.jsonl"
if "$gen" --stats "$work/damaged.jsonl" "${plan[@]}" --allow-partial-tail -o "$work/damaged.map" \
    2>"$work/damaged.err"; then bad "a damaged line 12 was accepted"; else ok; fi
expect_contains "$work/damaged.err" "damaged.jsonl:12: invalid JSON" "damaged: position"
[[ ! -e "$work/damaged.map" ]] && ok || bad "damaged: a mapping was written"

echo "live_stats_test: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
