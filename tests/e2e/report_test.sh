#!/usr/bin/env bash
# End to end: the honest split (plan on the first 70%, eval on the rest), the eval table and JSON,
# the overlap warning, and the HTML report rendered in headless Chromium: it must load without a
# console error, draw the heatmap, contain the expected elements, and keep its size bounded for a
# long trace. Chromium is required: without it the test FAILS (CI installs it via scripts/deps.sh).
# Env: EPLB_GEN (the binary), CHROMIUM (optional path to the browser), REPORT_SHOT (optional: copy
# the screenshot there).
set -u
gen=${EPLB_GEN:?}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# 1. A drifting trace; plan on the first 70% with both objectives.
"$gen" synth --layers 6 --experts 32 --steps 600 --ep 4 --drift 0.4 --drift-speed 0.02 \
  --min-batch 64 --max-batch 1024 --seed 3 -o "$work/t.jsonl" || bad "synth failed"
for obj in sum per-step; do
  if "$gen" --stats "$work/t.jsonl" --split 0.7 --ep 8 --redundant 8 --objective "$obj" \
      -o "$work/$obj.jsonl" --summary "$work/$obj.json" 2>"$work/plan_$obj.err"; then ok; else
    bad "plan --objective $obj failed"; cat "$work/plan_$obj.err" >&2; fi
done
expect_contains "$work/plan_sum.err" "split:    plan on steps 2250..2669 (420 records), held out 2670..2849 (180)" "plan split line"
expect_contains "$work/sum.json" '"train_steps": {"first": 2250, "last": 2669, "records": 420}' "summary train steps"
expect_contains "$work/per-step.json" '"objective": {"name": "per-step"' "summary objective"
expect_contains "$work/plan_per-step.err" "objective: per-step" "per-step line"

# 2. eval on the held-out 30%: table on stdout, JSON for CI, no overlap.
if "$gen" eval --stats "$work/t.jsonl" --ep 8 --split 0.7 -m "$work/sum.jsonl" -m "$work/per-step.jsonl" \
    --expert-fraction 0.2 --json "$work/e.json" >"$work/eval.out" 2>"$work/eval.err"; then ok; else
  bad "eval failed"; cat "$work/eval.err" >&2; fi
expect_contains "$work/eval.out" "judged:  steps 2670..2849 (180 records)" "judged range"
expect_contains "$work/eval.out" "train:   steps 2250..2669: no judged step inside (held out)" "train range"
expect_contains "$work/eval.out" "(per-step bound)" "bound row"
expect_contains "$work/eval.out" "saved@f=0.2" "speedup column"
for name in identity sum.jsonl per-step.jsonl; do expect_contains "$work/eval.out" "$name" "eval row $name"; done
expect_contains "$work/e.json" '"train_overlap_records": 0' "json overlap"
expect_contains "$work/e.json" '"judged_records": 180' "json records"
[ ! -s "$work/eval.err" ] && ok || { bad "eval printed on stderr:"; cat "$work/eval.err" >&2; }
# Both plans beat the identity layout on the held-out steps.
awk '$2 !~ /^[0-9]+$/ {next} /^identity /{id=$4} /sum.jsonl/{s=$4} /per-step.jsonl/{p=$4} END{exit !(s < id && p < id)}' \
  "$work/eval.out" && ok || { bad "mappings do not beat identity:"; cat "$work/eval.out" >&2; }

# 3. Judging the train steps warns.
"$gen" eval --stats "$work/t.jsonl" --ep 8 --train-steps 2250:2669 -m "$work/sum.jsonl" -q \
  2>"$work/overlap.err" && ok || bad "eval with overlap failed"
expect_contains "$work/overlap.err" "warning: 420 of the 600 judged records lie in the train steps 2250..2669" "overlap warning"

# 4. The report, rendered by headless Chromium.
if "$gen" report --stats "$work/t.jsonl" --ep 8 --split 0.7 -m "$work/sum.jsonl" -m "$work/per-step.jsonl" \
    --expert-fraction 0.2 -o "$work/r.html" -q 2>"$work/report.err"; then ok; else
  bad "report failed"; cat "$work/report.err" >&2; fi
if render_page "$work/r.html" "$work/dom.html" "$work/shot.png"; then
  expect_contains "$work/dom.html" 'data-ready="1"' "page finished rendering"
  expect_clean_page "$work/dom.html"
  pixels=$(body_number "$work/dom.html" data-heat-pixels)
  [ "${pixels:-0}" -gt 1000 ] && ok || bad "heatmap not drawn (data-heat-pixels=${pixels:-none})"
  expect_contains "$work/dom.html" '<pre id="errors"></pre>' "empty error box"
  for id in summary heat-before heat-after series layers replicas step series-layer replica-layer; do
    expect_contains "$work/dom.html" "id=\"$id\"" "element $id"
  done
  expect_contains "$work/dom.html" '<td>per-step lower bound</td>' "summary table filled"
  expect_contains "$work/dom.html" 'per-step.jsonl</td>' "mapping row"
  expect_contains "$work/dom.html" '<option value="5">layer 5</option>' "layer choices"
  if [ -s "$work/shot.png" ] && [ "$(head -c 8 "$work/shot.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
    ok
  else
    bad "no screenshot"; tail -n 20 "$work/dom.html.log" >&2
  fi
  [ "$(stat -c %s "$work/shot.png" 2>/dev/null || echo 0)" -gt 20000 ] && ok || bad "screenshot looks blank"
  [ -n "${REPORT_SHOT:-}" ] && cp "$work/shot.png" "$REPORT_SHOT"
fi

# 5. The report stays bounded: 10x the steps, about the same size.
"$gen" synth --layers 6 --experts 32 --steps 6000 --ep 4 --min-batch 64 --max-batch 256 \
  -o "$work/long.jsonl" || bad "synth long failed"
"$gen" report --stats "$work/t.jsonl" --ep 8 -m "$work/sum.jsonl" -o "$work/short.html" -q || bad "short report"
"$gen" report --stats "$work/long.jsonl" --ep 8 -m "$work/sum.jsonl" -o "$work/long.html" -q || bad "long report"
short=$(stat -c %s "$work/short.html" 2>/dev/null || echo 0)
long=$(stat -c %s "$work/long.html" 2>/dev/null || echo 0)
if [ "$short" -gt 0 ] && [ "$long" -lt $((short * 3 / 2)) ]; then ok; else
  bad "report grows with steps: 600 steps $short bytes, 6000 steps $long bytes"; fi

echo "report_test: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
