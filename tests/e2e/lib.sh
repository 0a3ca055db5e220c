# Shared by the end-to-end tests (source it after `set -u`): a scratch directory `$work` removed
# on exit, the pass/fail counters and the checks. Each test prints its counts and sets its exit
# status itself.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_contains() {  # file, text, what: shows the file's first 3000 bytes when the text is missing
  if grep -qF -- "$2" "$1"; then ok; else bad "$3: '$2' not found in $1:"; head -c 3000 "$1" >&2; fi
}
