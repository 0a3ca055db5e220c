#!/usr/bin/env bash
# End-to-end test of the real eplb-gen binary on the data/ fixtures.
# Env: EPLB_GEN (the binary), EPLB_SOURCE_DIR (the repo), EPLB_SERVING (the example serving
# binary, optional).
set -u
gen=${EPLB_GEN:?}
src=${EPLB_SOURCE_DIR:?}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sample=$src/data/sample.jsonl

# 1. The README job: plan a mapping for the sample at EP 8 + 8 redundant slots.
if "$gen" --stats "$sample" --ep 8 --redundant 8 -o "$work/m.jsonl" --summary "$work/s.json" \
    2>"$work/err"; then ok; else bad "plan exited non-zero"; cat "$work/err" >&2; fi
expect_contains "$work/err" "Imbalance before: " "before line"
expect_contains "$work/err" "Imbalance after:  " "after line"
expect_contains "$work/m.jsonl" '{"record_type": "eplb_initial_mapping", "version": 1, "num_redundant_experts": 8, "num_slots": 72, "initial_global_assignments": {"0": [' "mapping header"
[ "$(wc -l <"$work/m.jsonl")" -eq 1 ] && ok || bad "mapping is not one line"
before=$(sed -n 's/^Imbalance before: \([0-9.]*\)x$/\1/p' "$work/err")
after=$(sed -n 's/^Imbalance after:  \([0-9.]*\)x$/\1/p' "$work/err")
if awk -v b="$before" -v a="$after" 'BEGIN { exit !(a >= 1 && a < b) }'; then ok; else
  bad "imbalance did not improve: before=$before after=$after"; fi
# The default plans for the steps: the held-out estimate beside vLLM's policy, in both outputs.
expect_contains "$work/err" "objective: per-step" "objective line"
expect_contains "$work/err" "Held-out per-step imbalance: " "held-out line"
expect_contains "$work/err" "(vLLM's policy " "held-out reference"
expect_contains "$work/s.json" '"heldout": {"available": true, "fit_records": 32, "validation_records": 8' "summary held-out"
held=$(sed -n "s/^Held-out per-step imbalance: \([0-9.]*\) (vLLM's policy \([0-9.]*\)).*/\1 \2/p" "$work/err")
if awk -v h="$held" 'BEGIN { split(h, v, " "); exit !(v[1] >= 1 && v[1] <= v[2]) }'; then ok; else
  bad "held-out figures: '$held' (the plan must not exceed vLLM's policy there)"; fi
# A single record: nothing to hold out, and the plan says so.
head -n 2 "$sample" >"$work/one.jsonl"
"$gen" --stats "$work/one.jsonl" --ep 8 --redundant 8 -o "$work/one_m.jsonl" --summary "$work/one_s.json" \
  2>"$work/one.err" && ok || bad "plan of one record failed"
expect_contains "$work/one.err" "Held-out per-step imbalance: not estimated (too few train steps (1 records) to hold any out" "one record held-out"
expect_contains "$work/one_s.json" '"heldout": {"available": false, "note": "too few train steps (1 records)' "one record summary"
expect_contains "$work/s.json" '"num_ranks": 8' "summary topology"
expect_contains "$work/s.json" '"num_redundant": 8' "summary redundant"
expect_contains "$work/s.json" '"records_used": 40' "summary records"
# Every one of the 28 layers has 72 slots.
layers=$(grep -o '"[0-9]*": \[[0-9, ]*\]' "$work/m.jsonl" | wc -l)
[ "$layers" -eq 28 ] && ok || bad "expected 28 layers, got $layers"
short=$(grep -o '"[0-9]*": \[[0-9, ]*\]' "$work/m.jsonl" | awk -F, 'NF != 72' | wc -l)
[ "$short" -eq 0 ] && ok || bad "$short layers do not have 72 slots"

# 2. Determinism: same input and options give a byte-identical mapping, whatever the threads.
"$gen" --stats "$sample" --ep 8 --redundant 8 -o "$work/m2.jsonl" --threads 1 -q 2>/dev/null
"$gen" --stats "$sample" --ep 8 --redundant 8 -o - --threads 2 -q >"$work/m3.jsonl" 2>/dev/null
cmp -s "$work/m.jsonl" "$work/m2.jsonl" && ok || bad "mapping differs between runs"
cmp -s "$work/m.jsonl" "$work/m3.jsonl" && ok || bad "stdout mapping differs from file mapping"

# 3. The serving example (header-only loader) accepts the mapping for its topology and rejects
#    a wrong EP size or layer count.
if [ -n "${EPLB_SERVING:-}" ]; then
  if "$EPLB_SERVING" --mapping "$work/m.jsonl" --layers 28 --experts 64 --ep 8 --redundant 8 \
      --rank 3 >"$work/serve.out" 2>&1; then ok; else bad "loader rejected a good mapping"; cat "$work/serve.out" >&2; fi
  if "$EPLB_SERVING" --mapping "$work/m.jsonl" --layers 28 --experts 64 --ep 16 --redundant 8 \
      --rank 0 >"$work/serve.err" 2>&1; then bad "loader accepted EP 16"; else ok; fi
  expect_contains "$work/serve.err" "16" "wrong EP message"
  if "$EPLB_SERVING" --mapping "$work/m.jsonl" --layers 29 --experts 64 --ep 8 --redundant 8 \
      --rank 0 >"$work/serve.err2" 2>&1; then bad "loader accepted 29 layers"; else ok; fi
  expect_contains "$work/serve.err2" '"28"' "missing layer message"
fi

# 4. Bad input: non-zero exit, the message names file and line, and no output is written.
printf '%s\n' "$(head -n 3 "$sample")" "this is not json" >"$work/garbage.jsonl"
if "$gen" --stats "$work/garbage.jsonl" --ep 8 --redundant 8 -o "$work/g.jsonl" 2>"$work/gerr"; then
  bad "garbage accepted"; else ok; fi
expect_contains "$work/gerr" "garbage.jsonl:4" "garbage position"
[ ! -e "$work/g.jsonl" ] && ok || bad "output written for bad input"
head -c -20 "$sample" >"$work/trunc.jsonl"
if "$gen" --stats "$work/trunc.jsonl" --ep 8 --redundant 8 -o "$work/t.jsonl" 2>"$work/terr"; then
  bad "truncated file accepted"; else ok; fi
expect_contains "$work/terr" "trunc.jsonl:41" "truncated position"
[ ! -e "$work/t.jsonl" ] && ok || bad "output written for truncated input"

# 5. A failing run leaves a previous mapping intact.
cp "$work/m.jsonl" "$work/keep.jsonl"
"$gen" --stats "$work/garbage.jsonl" --ep 8 --redundant 8 -o "$work/keep.jsonl" 2>/dev/null
cmp -s "$work/m.jsonl" "$work/keep.jsonl" && ok || bad "previous mapping was changed"
ls -a "$work" | grep -q '\.tmp\.' && bad "temporary file left behind" || ok

# 6. Topology errors say what to change.
if "$gen" --stats "$sample" --ep 8 --redundant 5 -o "$work/d.jsonl" 2>"$work/derr"; then
  bad "indivisible slots accepted"; else ok; fi
expect_contains "$work/derr" "use --redundant 8" "divisibility hint"
[ ! -e "$work/d.jsonl" ] && ok || bad "output written for a bad topology"

# 7. The meta record supplies defaults (recorded at EP 4 with 4 redundant slots).
"$gen" --stats "$sample" -o "$work/meta.jsonl" --summary "$work/meta.json" -q 2>"$work/merr" || bad "meta defaults failed"
expect_contains "$work/meta.json" '"ep": "meta"' "ep from meta"
expect_contains "$work/meta.jsonl" '"num_redundant_experts": 4, "num_slots": 68' "redundant from meta"

# 8. The older layout without a meta record, several files and a step range.
mkdir -p "$work/tr"
"$gen" synth --layers 3 --experts 8 --ep 2 --redundant 2 --steps 6 --no-meta --seed 3 -o "$work/tr/a.jsonl" || bad "synth failed"
"$gen" synth --layers 3 --experts 8 --ep 2 --redundant 2 --steps 6 --no-meta --seed 4 \
  --first-step 100 -o "$work/tr/b.jsonl" || bad "synth failed"
"$gen" --stats "$work/tr/a.jsonl" --stats "$work/tr/b.jsonl" --ep 4 -o "$work/ab.jsonl" \
  --summary "$work/ab.json" -q || bad "two files failed"
expect_contains "$work/ab.json" '"records_used": 12' "two files"
"$gen" --stats "$work/tr/*.jsonl" --ep 4 --steps 100:102 -o "$work/ab2.jsonl" --summary "$work/ab2.json" -q 2>"$work/aberr" \
  || { bad "glob + steps failed"; cat "$work/aberr" >&2; }
expect_contains "$work/ab2.json" '"records_used": 3' "glob + step range"

# 9. Migration: re-planning a mapping against its own stats moves nothing; --max-moves is a cap.
"$gen" --stats "$sample" --ep 8 --redundant 8 --previous "$work/m.jsonl" -o "$work/same.jsonl" \
  --summary "$work/same.json" -q || bad "--previous failed"
cmp -s "$work/m.jsonl" "$work/same.jsonl" && ok || bad "re-plan against the same stats changed the mapping"
expect_contains "$work/same.json" '"total_moves": 0' "zero moves"
"$gen" --stats "$sample" --ep 8 --redundant 8 --steps 2280: --previous "$work/m.jsonl" --max-moves 2 \
  -o "$work/capped.jsonl" --summary "$work/capped.json" -q || bad "--max-moves failed"
over=$(sed -n 's/.*"moves_per_layer": \[\([0-9, ]*\)\].*/\1/p' "$work/capped.json" | tr ',' '\n' | awk '$1 > 2' | wc -l)
[ "$over" -eq 0 ] && ok || bad "--max-moves 2 exceeded in $over layers"
nlayers=$(sed -n 's/.*"moves_per_layer": \[\([0-9, ]*\)\].*/\1/p' "$work/capped.json" | tr ',' '\n' | wc -l)
[ "$nlayers" -eq 28 ] && ok || bad "moves_per_layer has $nlayers entries, expected 28"
if "$gen" --stats "$sample" --ep 16 --redundant 16 --previous "$work/m.jsonl" -o "$work/p16.jsonl" 2>"$work/perr"; then
  bad "--previous for another EP size accepted"; else ok; fi
expect_contains "$work/perr" "--previous" "previous error names the flag"

# 10. The reference policy stays available and reproduces vLLM's behaviour on request.
"$gen" --stats "$sample" --ep 8 --redundant 8 --policy deepseek -o "$work/ds.jsonl" 2>"$work/dserr" || bad "deepseek failed"
expect_contains "$work/dserr" "policy:   deepseek" "deepseek policy line"

# 11. Output through a symlink replaces the link's target and keeps the link; a device such as
# /dev/stdout is written in place (it cannot be renamed over).
mkdir -p "$work/deploy"
echo old >"$work/deploy/v1.jsonl"
ln -s v1.jsonl "$work/deploy/current.jsonl"
"$gen" --stats "$sample" --ep 8 --redundant 8 -q -o "$work/deploy/current.jsonl" || bad "symlink run failed"
[ -L "$work/deploy/current.jsonl" ] && ok || bad "the symlink was replaced by a file"
cmp -s "$work/deploy/v1.jsonl" "$work/m.jsonl" && ok || bad "the symlink's target does not hold the mapping"
"$gen" --stats "$sample" --ep 8 --redundant 8 -q -o /dev/stdout >"$work/stdout.jsonl" || bad "/dev/stdout run failed"
cmp -s "$work/stdout.jsonl" "$work/m.jsonl" && ok || bad "-o /dev/stdout did not print the mapping"
if "$gen" --stats "$sample" --ep 8 --redundant 8 -q -o "$work/deploy" 2>"$work/direrr"; then
  bad "a directory as output succeeded"; else expect_contains "$work/direrr" "deploy: cannot write: Is a directory" "directory output"; fi

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
