#!/usr/bin/env bash
# A CI step: turns a stats artifact into mapping artifacts and gates them (README "Use in CI").
#
#   ci-mapping.sh --stats FILES [--stats ...] --out DIR [--deployed MAPPING] [--max-regression F]
#                 [--formats LIST] [--split F] [--ep N] [--redundant R] [--allow-partial-tail]
#                 [-- PLAN_FLAG ...]
#
# 1. plans on the first --split of the records (default 0.7) of the stats files (a quoted glob is
#    expanded by eplb-gen), writing every format of --formats (comma-separated; vllm is always
#    written) and summary.json;
# 2. checks every mapping file with `eplb-gen check` against the planned topology;
# 3. judges the vLLM mapping on the held-out records (eval.json), against --deployed when given
#    (copied in as deployed.jsonl): `eplb-gen eval --baseline --max-regression` (default 0: any
#    regression fails);
# 4. writes report.html.
# The artifacts are made in a scratch folder beside DIR and moved into DIR at the end.
# Exit status: 0 pass; 1 bad input or a failed step (nothing is written to DIR); 2 usage;
# 3 the new mapping is worse than --deployed by more than --max-regression (the artifacts are in
# DIR, for review). An empty value counts as not given, so a CI template may pass "$VAR" as is.
# Env: EPLB_GEN, the eplb-gen binary (default: eplb-gen on PATH).
set -euo pipefail

usage() {
  echo "ci-mapping: $1" >&2
  echo "usage: ci-mapping.sh --stats FILES --out DIR [--deployed MAPPING] [--max-regression F]" \
    "[--formats LIST] [--split F] [--ep N] [--redundant R] [--allow-partial-tail]" \
    "[-- PLAN_FLAG ...]" >&2
  exit 2
}

stats=() out="" deployed="" max_regression="" formats="" split="" ep="" redundant=""
partial=()
plan_extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stats)
      [[ $# -ge 2 ]] || usage "$1 needs a value"
      [[ -z "$2" ]] || stats+=("$2")
      shift 2
      ;;
    --out | --deployed | --max-regression | --formats | --split | --ep | --redundant)
      [[ $# -ge 2 ]] || usage "$1 needs a value"
      name=${1#--}
      printf -v "${name//-/_}" '%s' "$2"
      shift 2
      ;;
    --allow-partial-tail)
      partial=(--allow-partial-tail)
      shift
      ;;
    --)
      shift
      plan_extra=("$@")
      break
      ;;
    *) usage "unknown argument '$1'" ;;
  esac
done
[[ ${#stats[@]} -gt 0 ]] || usage "--stats is required"
[[ -n "$out" ]] || usage "--out is required"
split=${split:-0.7}
max_regression=${max_regression:-0}
formats=${formats:-vllm}
[[ ",$formats," == *,vllm,* ]] || formats="vllm,$formats"
# The steps run inside the scratch folder, so that the artifacts name each other by file name:
# paths given relative to the caller's folder are made absolute first.
absolute() { if [[ "$1" == /* ]]; then printf '%s' "$1"; else printf '%s/%s' "$PWD" "$1"; fi; }
gen=${EPLB_GEN:-eplb-gen}
command -v "$gen" >/dev/null 2>&1 || { echo "ci-mapping: eplb-gen not found ($gen)" >&2; exit 1; }
gen=$(command -v "$gen")
[[ "$gen" != */* ]] || gen=$(absolute "$gen")
if [[ -n "$deployed" && ! -r "$deployed" ]]; then
  echo "ci-mapping: error: --deployed $deployed: no such readable file" >&2
  exit 1
fi
stats_flags=()
for s in "${stats[@]}"; do stats_flags+=(--stats "$(absolute "$s")"); done
[[ -z "$deployed" ]] || deployed=$(absolute "$deployed")

# Each step's failure: its own usage errors are usage errors, anything else a failed run.
step_failed() {
  echo "ci-mapping: error: $1 failed (exit $2); nothing was written to $out" >&2
  exit $(($2 == 2 ? 2 : 1))
}

parent=$(dirname -- "$out")
mkdir -p -- "$parent"
stage=$(mktemp -d "$parent/.$(basename -- "$out").tmp.XXXXXX")
trap 'rm -rf -- "$stage"' EXIT
stage=$(cd "$stage" && pwd)
out=$(cd "$parent" && pwd)/$(basename -- "$out")
cd "$stage"

topology_flags=()
[[ -n "$ep" ]] && topology_flags+=(--ep "$ep")
[[ -n "$redundant" ]] && topology_flags+=(--redundant "$redundant")
echo "ci-mapping: plan ($formats) on the first $split of the records" >&2
rc=0
"$gen" "${stats_flags[@]}" --split "$split" "${topology_flags[@]}" "${partial[@]}" \
  --format "$formats" --output-dir . --summary summary.json "${plan_extra[@]}" || rc=$?
[[ $rc -eq 0 ]] || step_failed "plan" "$rc"

# The planned topology, from the summary's "topology" object.
topology_field() {
  sed -n '/"topology": {/,/}/p' summary.json |
    sed -n "s/^ *\"$1\": \\([0-9]*\\),\$/\\1/p"
}
layers=$(topology_field num_layers)
experts=$(topology_field num_experts)
ranks=$(topology_field num_ranks)
slots_redundant=$(topology_field num_redundant)
[[ -n "$layers" && -n "$experts" && -n "$ranks" && -n "$slots_redundant" ]] ||
  step_failed "reading the topology of summary.json" 1

for mapping in *; do
  [[ "$mapping" == summary.json ]] && continue
  [[ "$mapping" == deployed.jsonl ]] && continue
  rc=0
  "$gen" check --mapping "$mapping" --layers "$layers" --experts "$experts" --ep "$ranks" \
    --redundant "$slots_redundant" || rc=$?
  [[ $rc -eq 0 ]] || step_failed "check of $mapping" "$rc"
done

judge=("${stats_flags[@]}" --split "$split" --ep "$ranks" "${partial[@]}" -m mapping.jsonl)
gate=()
compare=()
if [[ -n "$deployed" ]]; then
  echo "ci-mapping: judge on the held-out records against $deployed" >&2
  # Under its artifact name, so that eval.json and the report name what the folder holds.
  cp -- "$deployed" deployed.jsonl
  gate=(--baseline deployed.jsonl --max-regression "$max_regression")
  compare=(-m deployed.jsonl)
else
  echo "ci-mapping: judge on the held-out records (no --deployed mapping: no regression gate)" >&2
fi
verdict=0
"$gen" eval "${judge[@]}" "${gate[@]}" --json eval.json || verdict=$?
[[ $verdict -eq 0 || $verdict -eq 3 ]] ||
  step_failed "eval${deployed:+ (deployed.jsonl is a copy of $deployed)}" "$verdict"
rc=0
"$gen" report "${judge[@]}" "${compare[@]}" -q -o report.html || rc=$?
[[ $rc -eq 0 ]] || step_failed "report" "$rc"

# Publish: each artifact is renamed into DIR (same file system), replacing one of its name.
mkdir -p -- "$out"
for file in *; do mv -f -- "$file" "$out/"; done
echo "ci-mapping: artifacts in $out: $(cd "$out" && ls | tr '\n' ' ')" >&2
if [[ $verdict -eq 3 ]]; then
  echo "ci-mapping: FAIL: the new mapping is worse than $deployed by more than" \
    "$max_regression on the held-out records (see $out/eval.json, $out/report.html)" >&2
  exit 3
fi
echo "ci-mapping: pass" >&2
