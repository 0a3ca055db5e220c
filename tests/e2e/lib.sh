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

# Renders the HTML file $1 in headless Chromium (CHROMIUM, else chromium on PATH): the DOM to $2,
# a screenshot to $3, the browser's log to $2.log. Without Chromium the test fails (CI installs
# it via scripts/deps.sh) and the function returns 1.
render_page() {
  local browser=${CHROMIUM:-}
  [ -z "$browser" ] && browser=$(command -v chromium || command -v chromium-browser || true)
  if [ -z "$browser" ]; then
    bad "chromium is not installed (apt-get install -y chromium; scripts/deps.sh installs it)"
    return 1
  fi
  mkdir -p "$work/profile"
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --enable-logging=stderr --v=0 --hide-scrollbars \
    --window-size=1280,1500 --virtual-time-budget=10000 --screenshot="$3" \
    --dump-dom "file://$1" >"$2" 2>"$2.log"
  return 0
}
body_number() {  # the numeric attribute $2 of <body> in the DOM dump $1
  sed -n "s/.*<body[^>]* $2=\"\\([0-9]*\\)\".*/\\1/p" "$1" | head -n 1
}
expect_clean_page() {  # DOM dump $1 (log $1.log): no script error, no console message
  if grep -q 'data-errors=' "$1"; then
    bad "page script reported errors:"; sed -n '/<pre id="errors">/,/<\/pre>/p' "$1" >&2
  else ok; fi
  if grep -q ':CONSOLE' "$1.log"; then bad "console messages:"; grep ':CONSOLE' "$1.log" >&2; else ok; fi
}
