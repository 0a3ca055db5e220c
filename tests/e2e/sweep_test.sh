#!/usr/bin/env bash
# End to end: `eplb-gen sweep` on the data/ fixtures. The table, the JSON and the memory figures
# (the published Qwen2-57B-A14B config fields, a tiny config checked by hand); the reference plan
# equals `eplb-gen --steps <train>` judged by `eplb-gen eval --steps <held out>`; uniform loads
# recommend R = 0 and one hot expert R > 0; bad values exit 2 and bad input 1, writing nothing;
# the sweep page of `report --sweep`, alone and inside the evaluation page, in headless Chromium.
# Env: EPLB_GEN (the binary), EPLB_SOURCE_DIR (the repo).
set -u
gen=${EPLB_GEN:?}
src=${EPLB_SOURCE_DIR:?}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sample=$src/data/sample.jsonl
configs=$src/data/configs
expect_exit() {  # status, what, command...
  local want=$1 what=$2
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then ok; else
    bad "$what: exit $got, expected $want"; cat "$work/err" >&2; fi
}
# The figure of column $3 (1-based, counting from EP) of the table row for EP $1, R $2.
row_field() { awk -v ep="$1" -v r="$2" -v f="$3" '$1 == ep && $2 == r {print $f; exit}' "$4"; }

# 1. The sample (Qwen2-57B-A14B, 28 x 64) with the model's published config: EP 4 and 8.
if "$gen" sweep --stats "$sample" --ep 4,8 --redundant 0,4,8,12 --model-config \
    "$configs/qwen2_57b_a14b.json" --expert-fraction 0.2 --json "$work/s.json" \
    >"$work/table" 2>"$work/err"; then ok; else bad "sweep failed"; cat "$work/err" >&2; fi
expect_contains "$work/table" "split:    plan on the first 32 records (steps 2250..2281), judge on the last 8 (steps 2282..2289)" "split line"
expect_contains "$work/table" "one expert = 3 x 3584 x 2560 x 2 B (bfloat16) = 52.50 MiB" "expert memory"
expect_contains "$work/table" "skipped: 64 experts + 4 redundant = 68 slots is not divisible by EP 8; nearest valid R: 0, 8" "skipped row"
expect_contains "$work/table" "recommendation: the smallest R whose held-out mean is within 0.50% of the best" "recommendation"
expect_contains "$work/table" "knee of the curve: R = " "knee"
# R / EP x 52.5 MiB x 28 layers: EP 4 R 4 is 1470 MiB, EP 8 R 8 the same, EP 4 R 12 three times.
[ "$(awk '$1 == 4 && $2 == 4 {print $(NF-1), $NF}' "$work/table")" = "1.44 GiB" ] && ok ||
  bad "EP 4 R 4 memory: $(grep -E '^ +4 +4 ' "$work/table")"
[ "$(awk '$1 == 4 && $2 == 12 {print $(NF-1), $NF}' "$work/table")" = "4.31 GiB" ] && ok ||
  bad "EP 4 R 12 memory"
expect_contains "$work/s.json" '"extra_bytes_per_gpu": 1541406720.0' "JSON memory (1 x 55050240 x 28)"
expect_contains "$work/s.json" '"tool": "eplb-gen sweep", "schema": 1' "JSON header"
expect_contains "$work/s.json" '"memory": {"source": ' "JSON memory block"
# 40 records: 8 held out, all of them judged, and the warning says that is few.
expect_contains "$work/err" "warning: only 8 held-out step(s) sampled: the held-out figures are noisy" "thin sample warning"

# 2. The reference plan of EP 8 (the median R, 8) is the default plan on the train steps:
# `eplb-gen` on them and `eval` on the held-out steps give the sweep's figures.
"$gen" --stats "$sample" --steps 2250:2281 --ep 8 --redundant 8 -o "$work/ref.jsonl" -q ||
  bad "plan on the train steps failed"
"$gen" eval --stats "$sample" --steps 2282:2289 --ep 8 --redundant 0 -m "$work/ref.jsonl" \
  --no-bound >"$work/eval.out" || bad "eval failed"
eval_mean=$(awk '$1 ~ /ref.jsonl/ {print $4; exit}' "$work/eval.out")
eval_id=$(awk '$1 == "identity" {print $4; exit}' "$work/eval.out")
[ -n "$eval_mean" ] && [ "$eval_mean" = "$(row_field 8 8 4 "$work/table")" ] && ok ||
  bad "EP 8 R 8: sweep mean $(row_field 8 8 4 "$work/table"), eval $eval_mean"
[ -n "$eval_id" ] && [ "$eval_id" = "$(row_field 8 8 7 "$work/table")" ] && ok ||
  bad "EP 8 identity: sweep $(row_field 8 8 7 "$work/table"), eval $eval_id"

# 3. The same JSON for any thread count; --json - prints only the JSON.
"$gen" sweep --stats "$sample" --ep 4,8 --redundant 0,4,8,12 --model-config \
  "$configs/qwen2_57b_a14b.json" --expert-fraction 0.2 --threads 1 --json - >"$work/s1.json" \
  2>/dev/null || bad "sweep --threads 1 failed"
cmp -s "$work/s.json" "$work/s1.json" && ok || bad "JSON differs between thread counts"

# 4. A tiny config checked by hand: 5 MoE layers of 6 (mlp_only_layers [0]), one expert
# 3 x 16 x 8 x 4 bytes = 1536; EP 2 with R 4 holds 2 more experts per layer: 15360 bytes.
"$gen" synth --layers 5 --experts 8 --steps 60 --ep 2 -o "$work/tiny.jsonl" || bad "synth tiny"
"$gen" sweep --stats "$work/tiny.jsonl" --ep 2 --redundant 0,2,4 --model-config \
  "$src/tests/data/configs/tiny_qwen.json" --json "$work/tiny.json" -q || bad "tiny sweep failed"
expect_contains "$work/tiny.json" '"ep": 2, "redundant": 2, "planned": true, "slots_per_rank": 5' "tiny R 2"
expect_contains "$work/tiny.json" '"extra_bytes_per_gpu": 7680.0' "tiny R 2 memory"
expect_contains "$work/tiny.json" '"extra_bytes_per_gpu": 15360.0' "tiny R 4 memory"

# 5. Uniform loads recommend R = 0; one very hot expert (20x the others) R > 0.
ones='[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]'
hot='[20, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]'
echo "{\"counts\": [$ones, $ones, $ones]}" >"$work/uniform.json"
echo "{\"counts\": [$hot, $hot, $hot]}" >"$work/hot.json"
"$gen" synth --counts "$work/uniform.json" --steps 300 --min-batch 32768 --max-batch 65536 \
  -o "$work/uniform.jsonl" || bad "synth uniform"
"$gen" synth --counts "$work/hot.json" --steps 300 -o "$work/hot.jsonl" || bad "synth hot"
"$gen" sweep --stats "$work/uniform.jsonl" --ep 4 --redundant 0,4,8,16 >"$work/uniform.out" ||
  bad "uniform sweep failed"
expect_contains "$work/uniform.out" "EP 4: R = 0: " "uniform loads recommend R = 0"
"$gen" sweep --stats "$work/hot.jsonl" --ep 4 --redundant 0,4,8,16 >"$work/hot.out" ||
  bad "hot sweep failed"
grep -Eq "^EP 4: R = (4|8|16): " "$work/hot.out" && ok ||
  { bad "a hot expert should recommend R > 0:"; cat "$work/hot.out" >&2; }

# 6. Bad values exit 2, bad input 1; nothing is written either way.
expect_exit 2 "--redundant 0,x" "$gen" sweep --stats "$sample" --ep 8 --redundant 0,x --json "$work/no.json"
expect_contains "$work/err" "--redundant: expected a comma-separated list of non-negative integers" "list error"
expect_exit 2 "--ep 7 (64 + R never divisible)" "$gen" sweep --stats "$sample" --ep 7 --redundant 0,8 --json "$work/no.json"
expect_contains "$work/err" "EP 7: no --redundant value makes 64 experts + R divisible by 7; valid values near them: 6, 13" "EP error"
expect_exit 2 "--split 1.5" "$gen" sweep --stats "$sample" --ep 8 --split 1.5 --json "$work/no.json"
expect_exit 2 "--model-config with --expert-bytes" "$gen" sweep --stats "$sample" --ep 8 \
  --model-config "$configs/qwen2_57b_a14b.json" --expert-bytes 100 --json "$work/no.json"
expect_exit 2 "--weight-bytes without a config" "$gen" sweep --stats "$sample" --ep 8 --weight-bytes 1
expect_exit 2 "no --stats" "$gen" sweep --ep 8
expect_exit 1 "a config without moe_intermediate_size" "$gen" sweep --stats "$sample" --ep 8 \
  --model-config "$src/tests/data/configs/no_moe_intermediate.json" --json "$work/no.json"
expect_contains "$work/err" "no_moe_intermediate.json: moe_intermediate_size: is missing" "config error"
expect_exit 1 "the config of another model" "$gen" sweep --stats "$sample" --ep 8 \
  --model-config "$configs/qwen3_30b_a3b.json" --json "$work/no.json"
expect_contains "$work/err" "the config gives 48 MoE layers x 128 routed experts, but the stats have 28 layers x 64 experts" "shape error"
expect_exit 1 "stats that are not vLLM JSONL" "$gen" sweep --stats "$configs/qwen2_57b_a14b.json" --ep 8 --json "$work/no.json"
[ ! -e "$work/no.json" ] && ok || bad "a failed sweep wrote its JSON"

# 7. The sweep page, alone and inside the evaluation page, in headless Chromium.
"$gen" report --sweep "$work/s.json" -o "$work/sweep.html" -q || bad "report --sweep failed"
"$gen" report --stats "$sample" --ep 8 -m "$work/ref.jsonl" --sweep "$work/s.json" \
  -o "$work/both.html" -q >/dev/null || bad "report with --sweep failed"
echo '{"tool": "eplb-gen sweep", "schema": 1}' >"$work/bad.json"
expect_exit 1 "report --sweep on an incomplete JSON" "$gen" report --sweep "$work/bad.json" -o "$work/bad.html"
expect_contains "$work/err" "bad.json: stats: is missing" "sweep JSON error"
for page in sweep both; do
  render_page "$work/$page.html" "$work/$page.dom" "$work/$page.png" || break
  expect_contains "$work/$page.dom" 'data-sweep-ready="1"' "$page: sweep drawn"
  expect_clean_page "$work/$page.dom"
  pixels=$(body_number "$work/$page.dom" data-sweep-pixels)
  [ "${pixels:-0}" -gt 2000 ] && ok || bad "$page: sweep chart not drawn (${pixels:-none} pixels)"
  for id in sweep-section sweep-table sweep-recs sweep-imbalance sweep-memory; do
    expect_contains "$work/$page.dom" "id=\"$id\"" "$page: element $id"
  done
  expect_contains "$work/$page.dom" '<tr class="rec"><td>4</td><td>0</td>' "$page: recommended row"
  expect_contains "$work/$page.dom" "skipped: 64 experts + 4 redundant" "$page: skipped row"
done
expect_contains "$work/both.dom" 'data-ready="1"' "evaluation page still drawn"
expect_contains "$work/both.dom" 'id="heat-before"' "evaluation sections kept"

echo "sweep_test: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
