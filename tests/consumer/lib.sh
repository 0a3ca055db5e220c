# Shared by the consumer and package tests (source it after `set -euo pipefail`): a fresh work
# folder and steps whose output is shown only when they fail.

# fresh_work DIR: empties DIR (refusing "" and /) and sets $work to its absolute path.
fresh_work() {
  [[ -n "$1" && "$1" != / ]] || { echo "bad WORK_DIR" >&2; exit 2; }
  rm -rf "$1"
  mkdir -p "$1"
  work=$(cd "$1" && pwd)
}

# step LOG COMMAND...: runs the command with its output in $work/LOG, shown only when it fails
# (the message starts with $step_what when that is set).
step() {
  local log="$work/$1"
  shift
  if ! "$@" >"$log" 2>&1; then
    echo "${step_what:+$step_what: }failed: $*" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}
