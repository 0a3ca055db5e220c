#!/usr/bin/env bash
# End to end: scripts/ci-mapping.sh run exactly as the CI examples run it (the ci-mapping.sh line
# of examples/ci/github-actions.yml, which gitlab-ci.yml repeats), in a job directory with
# eplb-gen/ checked out beside the stats and eplb-gen on PATH, as the package puts it: a pass
# (exit 0, the artifact set README "Use in CI" lists), a gate failure (exit 3, the artifacts kept),
# bad input (exit 1, nothing written) and a usage error (exit 2).
# Env: EPLB_GEN (the binary), EPLB_SOURCE_DIR (the repo).
set -u
gen=${EPLB_GEN:?}
src=${EPLB_SOURCE_DIR:?}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The command the CI examples run, without its YAML prefix.
job_line() {
  grep -m 1 'scripts/ci-mapping.sh ' "$1" | sed -e 's/^[[:space:]]*//' -e 's/^- //' -e 's/^run: //'
}
line=$(job_line "$src/examples/ci/github-actions.yml")
[[ "$line" == eplb-gen/scripts/ci-mapping.sh\ * ]] && ok || bad "github-actions.yml: no ci-mapping.sh line"
gitlab=$(job_line "$src/examples/ci/gitlab-ci.yml")
[[ "$gitlab" == "$line" ]] && ok || bad "gitlab-ci.yml runs '$gitlab', github-actions.yml '$line'"

# The job directory: the deploying repository's files, eplb-gen/ beside them.
job=$work/job
mkdir -p "$job/eplb/stats"
ln -s "$src" "$job/eplb-gen"
cp "$src/data/sample.jsonl" "$job/eplb/stats/sample.jsonl"
# The job's environment, as both examples set it.
export EPLB_STATS='eplb/stats/*.jsonl' EPLB_DEPLOYED=eplb/mapping.jsonl EPLB_MAX_REGRESSION=0.005
export EPLB_FORMATS=vllm,sglang EPLB_EP=8 EPLB_REDUNDANT=8 EPLB_OUT=eplb-artifacts
run_job() {  # runs the line in the job directory; its stderr in $work/$1.err; returns its status
  (cd "$job" && unset EPLB_GEN && PATH="$(dirname "$gen"):$PATH" bash -c "$line") \
    >"$work/$1.out" 2>"$work/$1.err"
}
artifacts() { (cd "$job/$EPLB_OUT" && ls -A | tr '\n' ' '); }
no_scratch() { ! compgen -G "$job/.$EPLB_OUT.tmp.*" >/dev/null; }  # ci-mapping.sh's scratch folder
expected="deployed.jsonl eval.json mapping.jsonl report.html sglang_expert_location.json summary.json "
readme_lists() {  # every artifact is listed in README "Use in CI"
  local section
  section=$(sed -n '/^## Use in CI/,/^## [^U]/p' "$src/README.md")
  for name in $expected; do
    grep -qF "\`$name\`" <<<"$section" || { bad "README 'Use in CI' does not list $name"; return; }
  done
  ok
}
readme_lists

# Deployed mappings: a weak one (planned on one step with deepseek) and one the new mapping cannot
# beat on the held-out steps (planned on those very steps).
"$gen" --stats "$src/data/sample.jsonl" --steps 2250:2250 --ep 8 --redundant 8 --policy deepseek \
  -o "$work/weak.jsonl" -q || bad "planning the weak mapping failed"
"$gen" --stats "$src/data/sample.jsonl" --split 0.7 --ep 8 --redundant 8 -o "$work/direct.jsonl" \
  -q --summary "$work/direct.json" || bad "planning directly failed"
train_last=$(sed -n 's/.*"train_steps": {"first": [0-9]*, "last": \([0-9]*\).*/\1/p' "$work/direct.json")
"$gen" --stats "$src/data/sample.jsonl" --steps "$((train_last + 1)):" --ep 8 --redundant 8 \
  -o "$work/oracle.jsonl" -q || bad "planning the held-out mapping failed"

# 1. Pass: the new mapping beats the deployed one.
cp "$work/weak.jsonl" "$job/eplb/mapping.jsonl"
if run_job pass; then ok; else bad "pass: exit $?"; cat "$work/pass.err" >&2; fi
[[ "$(artifacts)" == "$expected" ]] && ok || bad "pass: artifacts '$(artifacts)', expected '$expected'"
cmp -s "$job/$EPLB_OUT/mapping.jsonl" "$work/direct.jsonl" && ok ||
  bad "pass: the mapping differs from eplb-gen --split 0.7 --ep 8 --redundant 8"
expect_contains "$job/$EPLB_OUT/eval.json" '"gate": {"baseline": "deployed.jsonl"' "pass: gate baseline"
cmp -s "$job/$EPLB_OUT/deployed.jsonl" "$work/weak.jsonl" && ok || bad "pass: deployed.jsonl is not the deployed mapping"
expect_contains "$job/$EPLB_OUT/eval.json" '"max_regression": 0.005, "pass": true' "pass: gate verdict"
expect_contains "$job/$EPLB_OUT/eval.json" '"name": "mapping.jsonl"' "pass: judged mapping"
expect_contains "$job/$EPLB_OUT/summary.json" '"num_ranks": 8' "pass: summary"
expect_contains "$job/$EPLB_OUT/report.html" "<html" "pass: report"
expect_contains "$work/pass.err" "gate: mapping.jsonl mean per-step imbalance" "pass: gate line"
expect_contains "$work/pass.err" "ci-mapping: pass" "pass: verdict"
no_scratch && ok || bad "pass: a scratch folder was left behind"

# 2. Gate failure: the deployed mapping is better on the held-out steps; exit 3, artifacts kept.
cp "$work/oracle.jsonl" "$job/eplb/mapping.jsonl"
rm -rf "${job:?}/$EPLB_OUT"
run_job gate
status=$?
[[ $status -eq 3 ]] && ok || { bad "gate: exit $status, expected 3"; cat "$work/gate.err" >&2; }
[[ "$(artifacts)" == "$expected" ]] && ok || bad "gate: artifacts '$(artifacts)', expected '$expected'"
expect_contains "$job/$EPLB_OUT/eval.json" '"max_regression": 0.005, "pass": false' "gate: verdict in eval.json"
expect_contains "$work/gate.err" "(limit +0.50%): FAIL" "gate: gate line"
expect_contains "$work/gate.err" "ci-mapping: FAIL: the new mapping is worse than" "gate: verdict"

# 3. Bad input: a damaged stats line, then a deployed file that is not a mapping: exit 1, and the
#    artifact folder keeps what it had (here one file of an earlier run).
rm -rf "${job:?}/$EPLB_OUT"
mkdir -p "$job/$EPLB_OUT"
echo earlier >"$job/$EPLB_OUT/earlier.txt"
cp "$work/weak.jsonl" "$job/eplb/mapping.jsonl"
sed -i '10s/}$//' "$job/eplb/stats/sample.jsonl"
run_job bad_stats
status=$?
[[ $status -eq 1 ]] && ok || { bad "bad stats: exit $status, expected 1"; cat "$work/bad_stats.err" >&2; }
expect_contains "$work/bad_stats.err" "sample.jsonl:10: invalid JSON" "bad stats: message"
[[ "$(artifacts)" == "earlier.txt " ]] && ok || bad "bad stats: artifacts '$(artifacts)'"
cp "$src/data/sample.jsonl" "$job/eplb/stats/sample.jsonl"
echo "not a mapping" >"$job/eplb/mapping.jsonl"
run_job bad_deployed
status=$?
[[ $status -eq 1 ]] && ok || { bad "bad deployed: exit $status, expected 1"; cat "$work/bad_deployed.err" >&2; }
expect_contains "$work/bad_deployed.err" "deployed.jsonl:1:1: invalid JSON" "bad deployed: message"
expect_contains "$work/bad_deployed.err" "deployed.jsonl is a copy of $job/eplb/mapping.jsonl" "bad deployed: names the file"
[[ "$(artifacts)" == "earlier.txt " ]] && ok || bad "bad deployed: artifacts '$(artifacts)'"
no_scratch && ok || bad "bad input: a scratch folder was left behind"

# 4. A usage error: exit 2, nothing written.
(cd "$job" && EPLB_GEN=$gen bash eplb-gen/scripts/ci-mapping.sh --stats "$EPLB_STATS") \
  >/dev/null 2>"$work/usage.err"
status=$?
[[ $status -eq 2 ]] && ok || bad "usage: exit $status, expected 2"
expect_contains "$work/usage.err" "--out is required" "usage: message"

# 5. The gate in eplb-gen itself, for any CI system: the JSON is written, then exit 3.
judge=(eval --stats "$src/data/sample.jsonl" --split 0.7 --ep 8 -m "$work/direct.jsonl")
"$gen" "${judge[@]}" --baseline "$work/oracle.jsonl" --max-regression 0.005 --json - \
  >"$work/gate.json" 2>"$work/gate-eval.err"
status=$?
[[ $status -eq 3 ]] && ok || { bad "eval gate: exit $status, expected 3"; cat "$work/gate-eval.err" >&2; }
expect_contains "$work/gate.json" '"max_regression": 0.005, "pass": false' "eval gate: JSON on stdout"
expect_contains "$work/gate-eval.err" "eplb-gen: error: a mapping is worse than the baseline" "eval gate: message"
# The regression in the JSON is what the gate compared; a threshold above it passes.
regression=$(sed -n 's/.*"regression": \([0-9.e-]*\), "pass": false.*/\1/p' "$work/gate.json")
if awk -v r="$regression" 'BEGIN { exit !(r > 0.005) }'; then ok; else bad "regression '$regression'"; fi
above=$(awk -v r="$regression" 'BEGIN { printf "%.6f", r + 0.001 }')
"$gen" "${judge[@]}" -q --baseline "$work/oracle.jsonl" --max-regression "$above" \
  2>"$work/gate-above.err" && ok || bad "eval gate: --max-regression $above failed"
[[ ! -s "$work/gate-above.err" ]] && ok || bad "eval gate: -q printed a passing gate"
# Usage errors (no baseline, no mapping to gate, a negative threshold) exit 2, never read as a
# verdict.
usage_error() { [[ $1 -eq 2 ]]; }
for args in "--max-regression 0.01" "--baseline $work/oracle.jsonl --max-regression -0.01"; do
  # shellcheck disable=SC2086
  "$gen" "${judge[@]}" $args >/dev/null 2>&1
  status=$?
  usage_error $status && ok || bad "eval $args: exit $status, expected 2"
done
"$gen" eval --stats "$src/data/sample.jsonl" --ep 8 --baseline "$work/oracle.jsonl" >/dev/null 2>&1
status=$?
usage_error $status && ok || bad "eval --baseline without -m: exit $status, expected 2"

echo "ci_mapping_test: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
