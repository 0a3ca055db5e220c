#!/usr/bin/env bash
# End-to-end test of the engine formats with the real binary: plan into every mapping format,
# `check` and `convert` each output, `check` as a CI gate on broken mappings, and plans from
# SGLang / matrix stats that must equal the plan from the equivalent vLLM JSONL.
# Env: EPLB_GEN (the binary), EPLB_SOURCE_DIR (the repo).
set -u
gen=${EPLB_GEN:?}
src=${EPLB_SOURCE_DIR:?}
fx=$src/tests/data/formats
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
expect_fail() {  # what, stderr file, command...: exit status 1 (bad input)
  expect_status 1 "$@"
}
expect_usage() {  # what, stderr file, command...: exit status 2 (usage error)
  expect_status 2 "$@"
}
expect_status() {  # status, what, stderr file, command...
  local want=$1 what=$2 err=$3
  shift 3
  if "$@" >/dev/null 2>"$err"; then bad "$what: exited 0"; else
    local rc=$?
    [ $rc -eq "$want" ] && ok || bad "$what: exit code is $rc, not $want"
  fi
}

all=(mapping.jsonl sglang_expert_location.json trtllm_eplb.yaml ascend_expert_map.json placement.json)

# 1. The vLLM example of vllm-offline-eplb.md section 5 (E=3, R=1, EP=2 from its meta record;
#    the DeepSeek policy, whose output the spec gives)
#    into every format at once.
if "$gen" --stats "$fx/vllm_example.jsonl" --redundant 1 --policy deepseek --format vllm,sglang,trtllm \
    --format ascend,json --output-dir "$work/out" 2>"$work/plan.err"; then ok; else
  bad "plan into all formats"; cat "$work/plan.err" >&2; fi
for f in "${all[@]}"; do [ -s "$work/out/$f" ] && ok || bad "missing output $f"; done
# The spec's reference output of vLLM's tool for this input.
echo '{"record_type": "eplb_initial_mapping", "version": 1, "num_redundant_experts": 1, "num_slots": 4, "initial_global_assignments": {"0": [0, 2, 0, 1], "1": [1, 2, 1, 0]}}' >"$work/ref.jsonl"
cmp -s "$work/ref.jsonl" "$work/out/mapping.jsonl" && ok || bad "vLLM mapping differs from the spec"
expect_contains "$work/plan.err" "wrote $work/out/trtllm_eplb.yaml" "wrote line"
expect_contains "$work/out/placement.json" '"predicted_imbalance": {"before": 1.212820512' "json meta"
sha=$(sha256sum "$fx/vllm_example.jsonl" | cut -d' ' -f1)
expect_contains "$work/out/placement.json" "\"sha256\": \"$sha\"" "json source hash"

# 2. check accepts each output for the topology, with the imbalance on the stats.
for f in "${all[@]}"; do
  if "$gen" check --mapping "$work/out/$f" --layers 2 --experts 3 --ep 2 --redundant 1 \
      --stats "$fx/vllm_example.jsonl" >"$work/check.out" 2>&1; then ok; else
    bad "check $f"; cat "$work/check.out" >&2; fi
  expect_contains "$work/check.out" "OK: $work/out/$f" "check OK line for $f"
  expect_contains "$work/check.out" "imbalance on the stats 1.1231x (identity layout 1.2128x)" \
    "check imbalance for $f"
  [ "$(wc -l <"$work/check.out")" -eq 1 ] && ok || bad "check output of $f is not one line"
done

# 3. convert each back to vLLM: byte-identical to the planned one.
for f in "${all[@]}"; do
  "$gen" convert --input "$work/out/$f" --format vllm -o "$work/conv_$f.jsonl" -q 2>"$work/conv.err" ||
    { bad "convert $f"; cat "$work/conv.err" >&2; }
  cmp -s "$work/conv_$f.jsonl" "$work/out/mapping.jsonl" && ok || bad "convert $f to vllm differs"
done
# ... and vLLM to the EP-stating formats needs the EP size.
expect_usage "convert to ascend without --ep" "$work/ep.err" \
  "$gen" convert --input "$work/out/mapping.jsonl" --format ascend -o "$work/a.json"
expect_contains "$work/ep.err" "--ep is required to write the ascend mapping" "ep message"
"$gen" convert --input "$work/out/mapping.jsonl" --format ascend --ep 2 -o "$work/a.json" -q
cmp -s "$work/a.json" "$work/out/ascend_expert_map.json" && ok || bad "vllm -> ascend differs"

# 4. check as a CI gate: a wrong EP size and a mapping with a missing expert exit 1 and say where.
expect_fail "check wrong EP (vllm)" "$work/c1.err" "$gen" check --mapping "$work/out/mapping.jsonl" \
  --layers 2 --experts 3 --ep 3 --redundant 1
expect_contains "$work/c1.err" "mapping does not fit EP size 3: num_slots=4 is not divisible by num_ranks=3" "EP message"
expect_fail "check wrong EP (ascend)" "$work/c2.err" "$gen" check \
  --mapping "$work/out/ascend_expert_map.json" --layers 2 --experts 3 --ep 4 --redundant 1
expect_contains "$work/c2.err" "ascend_expert_map.json:2:35: layer_list[0].device_count: mapping does not fit EP size 4" "ascend EP message"
sed 's/\[0, 2, 0, 1\]/[0, 2, 0, 2]/' "$work/out/sglang_expert_location.json" >"$work/missing.json"
expect_fail "check missing expert (sglang)" "$work/c3.err" "$gen" check --mapping "$work/missing.json" \
  --layers 2 --experts 3 --ep 2 --redundant 1
expect_contains "$work/c3.err" "missing.json:1:30: physical_to_logical_map[0]: logical expert 1 has no slot" "missing expert message"
sed 's/\[0, 2, 0, 1\]/[0, 2, 0, 2]/' "$work/out/mapping.jsonl" >"$work/missing.jsonl"
expect_fail "check missing expert (vllm)" "$work/c4.err" "$gen" check --mapping "$work/missing.jsonl" \
  --layers 2 --experts 3 --ep 2 --redundant 1
expect_contains "$work/c4.err" "missing.jsonl:1:135: layer 0: logical expert 1 has no slot" "loader message"
sed 's/^num_slots: 4$/num_slots: 5/' "$work/out/trtllm_eplb.yaml" >"$work/slots.yaml"
expect_fail "check bad num_slots (trtllm)" "$work/c5.err" "$gen" check --mapping "$work/slots.yaml" \
  --layers 2 --experts 3 --ep 2 --redundant 1
expect_contains "$work/c5.err" "slots.yaml:2:6: initial_global_assignments[0]: assignment length (4) does not match num_slots (5)" "yaml message"
expect_fail "check stats of another shape" "$work/c6.err" "$gen" check \
  --mapping "$work/out/mapping.jsonl" --layers 2 --experts 3 --ep 2 --redundant 1 \
  --stats "$fx/sglang_logical_count_2d.json"
expect_contains "$work/c6.err" "the stats have 3 layers x 4 experts but the mapping has 2 x 3" "stats shape message"

# 5. Several formats with -o are refused before anything is written.
expect_usage "-o with two formats" "$work/o.err" "$gen" --stats "$fx/vllm_example.jsonl" \
  --format vllm,json -o "$work/o.out"
expect_contains "$work/o.err" "use --output-dir" "-o message"
[ ! -e "$work/o.out" ] && ok || bad "-o output written"
# One output that cannot be rendered (an expert twice on the only device) writes nothing at all.
printf '1000,1,1\n5,900,3\n' >"$work/skew.csv"
expect_fail "unrenderable ascend" "$work/r.err" "$gen" --stats "$work/skew.csv" --ep 1 \
  --redundant 3 --format vllm,ascend --output-dir "$work/none" --summary "$work/none/s.json"
expect_contains "$work/r.err" "ascend output: layer 0 rank 0: logical expert 0" "render message"
[ ! -e "$work/none" ] && ok || bad "files written although one output failed"

# 6. The same load from other engines' stats gives the same vLLM mapping.
for s in sglang_logical_count_3d.json matrix.csv; do
  "$gen" --stats "$fx/$s" --ep 2 --redundant 1 --policy deepseek -o "$work/from_$s.jsonl" -q 2>"$work/imp.err" ||
    { bad "plan from $s"; cat "$work/imp.err" >&2; }
  cmp -s "$work/from_$s.jsonl" "$work/out/mapping.jsonl" && ok || bad "plan from $s differs"
done

# 7. A larger synthetic trace (4 layers x 16 experts, shuffled maps, EP 4 + 4 redundant): sum it
#    per logical expert here (awk, independent of the library) into two CSV halves and an SGLang
#    file with a dense row in front; every route must give the vLLM plan byte for byte (the sum
#    objective: the other formats hold sums only).
"$gen" synth --layers 4 --experts 16 --ep 4 --redundant 4 --steps 30 --shuffle-p2l \
  --remap-every 7 --seed 11 -o "$work/trace.jsonl" || bad "synth failed"
"$gen" --stats "$work/trace.jsonl" --ep 4 --redundant 4 --objective sum -o "$work/trace_vllm.jsonl" -q ||
  bad "plan from the trace"
awk -v a="$work/a.csv" -v b="$work/b.csv" -v sg="$work/sg.json" '
  function block(key,   i, rest) {
    i = index($0, "\"" key "\": [[")
    if (i == 0) { print "no " key > "/dev/stderr"; exit 1 }
    rest = substr($0, i + length(key) + 6)
    return substr(rest, 1, index(rest, "]]") - 1)
  }
  /"eplb_load_stats"/ {
    nl = split(block("expert_load"), lrows, /\], \[/)
    split(block("p2l_map"), prows, /\], \[/)
    half = (n++ % 2)
    for (l = 1; l <= nl; ++l) {
      np = split(lrows[l], lv, /, /)
      split(prows[l], pv, /, /)
      for (p = 1; p <= np; ++p) {
        m[half, l, pv[p]] += lv[p]
        if (pv[p] + 1 > E) E = pv[p] + 1
      }
    }
    L = nl
  }
  END {
    printf "{\"logical_count\": [[" > sg
    for (e = 0; e < E; ++e) printf "%s0", (e ? ", " : "") > sg
    printf "]" > sg
    for (l = 1; l <= L; ++l) {
      ra = ""; rb = ""; rs = ""
      for (e = 0; e < E; ++e) {
        ra = ra (e ? "," : "") (m[0, l, e] + 0)
        rb = rb (e ? "," : "") (m[1, l, e] + 0)
        rs = rs (e ? ", " : "") (m[0, l, e] + m[1, l, e])
      }
      print ra > a
      print rb > b
      printf ", [%s]", rs > sg
    }
    print "]}" > sg
  }' "$work/trace.jsonl" || bad "awk aggregation"
"$gen" --stats "$work/a.csv" --stats "$work/b.csv" --ep 4 --redundant 4 -o "$work/trace_csv.jsonl" \
  -q 2>"$work/t.err" || { bad "plan from two CSV files"; cat "$work/t.err" >&2; }
cmp -s "$work/trace_csv.jsonl" "$work/trace_vllm.jsonl" && ok || bad "two CSV halves differ from JSONL"
"$gen" --stats "$work/sg.json" --skip-layers 1 --ep 4 --redundant 4 --format vllm,sglang \
  --output-dir "$work/sg" -q 2>"$work/t.err" || { bad "plan from SGLang"; cat "$work/t.err" >&2; }
cmp -s "$work/sg/mapping.jsonl" "$work/trace_vllm.jsonl" && ok || bad "SGLang stats differ from JSONL"
# The SGLang mapping keeps the dense row 0 (decoder layers 1..4 are the MoE layers) and converts
# back when told where the MoE layers start.
"$gen" check --mapping "$work/sg/sglang_expert_location.json" --layers 4 --experts 16 --ep 4 \
  --redundant 4 --num-hidden-layers 5 >/dev/null 2>"$work/t.err" || { bad "check SGLang 5 rows"; cat "$work/t.err" >&2; }
"$gen" convert --input "$work/sg/sglang_expert_location.json" --first-moe-layer 1 --format vllm \
  -o "$work/sg_back.jsonl" -q || bad "convert SGLang with a dense row"
cmp -s "$work/sg_back.jsonl" "$work/trace_vllm.jsonl" && ok || bad "SGLang -> vllm differs"
# Files of different formats are refused.
expect_usage "mixed formats" "$work/mix.err" "$gen" --stats "$work/trace.jsonl" --stats "$work/a.csv" \
  --ep 4 --redundant 4 -o "$work/mix.jsonl"
expect_contains "$work/mix.err" "give stats of one format per run" "mixed formats message"

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
