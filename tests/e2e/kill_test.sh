#!/usr/bin/env bash
# Nothing lost, nothing half-written: eplb-gen is killed with SIGKILL at several moments of a run
# that writes over an existing mapping (while reading, while planning, and while writing, the
# last pinned with the test-only hook EPLB_TEST_SLOW_WRITE_MS, which sleeps between the fsync of
# the temporary file and its rename). After each kill the previous mapping must be intact, byte for
# byte; the next successful run must replace it and leave no temporary file behind (it removes
# the ones killed runs left; a live writer's is kept). Then an unwritable target directory: a
# full file system and a read-only one (a small tmpfs; skipped when mount is not permitted).
# Env: EPLB_GEN (the binary).
set -u
gen=${EPLB_GEN:?}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mnt=""
cleanup() {
  [[ -n $mnt ]] && umount "$mnt" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
temps() { compgen -G "$1/.m.jsonl.tmp.*" || true; }

# A trace big enough that planning it takes most of a second: 58 layers x 256 experts
# (DeepSeek-V3's shape) recorded at EP 32 with 32 redundant slots, 100 synthesized steps repeated
# 8 times (800 records, about 120 MB; synthesizing 800 would take longer than the test).
"$gen" synth --layers 58 --experts 256 --steps 100 --ep 32 --redundant 32 --seed 3 \
  -o "$work/steps.jsonl" || { echo "FAIL: synth" >&2; exit 1; }
trace=$work/trace.jsonl
{
  head -n 1 "$work/steps.jsonl"
  for _ in 1 2 3 4 5 6 7 8; do tail -n +2 "$work/steps.jsonl"; done
} >"$trace"
rm "$work/steps.jsonl"
out=$work/m.jsonl
# The sum objective: a run of known, short length (the per-step default would only make it longer).
plan() { "$gen" --stats "$trace" --ep "$1" --redundant 32 --objective sum -o "$out" -q; }

# The previous mapping (EP 16) that every killed run (EP 32, a different mapping) writes over.
plan 16 || { echo "FAIL: first run" >&2; exit 1; }
cp "$out" "$work/previous.jsonl"
start=$(date +%s%N)
plan 32 || bad "timed run"
took_ms=$((($(date +%s%N) - start) / 1000000))
cp "$out" "$work/new.jsonl"
cmp -s "$out" "$work/previous.jsonl" && bad "EP 32 gives the same mapping as EP 16"
echo "a full run takes ${took_ms} ms"

# Kills at fractions of a run's duration: reading the stats, aggregating, planning.
mid_run=0
# Early fractions, so that a run faster than the timed one (a busy machine) is still hit.
for percent in 3 10 20 30 45; do
  cp "$work/previous.jsonl" "$out"
  # The binary itself in the background (not the shell function), so $! is its pid.
  "$gen" --stats "$trace" --ep 32 --redundant 32 --objective sum -o "$out" -q &
  pid=$!
  sleep "$(awk -v t="$took_ms" -v p="$percent" 'BEGIN { printf "%.3f", t * p / 100000 }')"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  # Either the previous mapping, or the complete new one when the run finished before the kill.
  if cmp -s "$out" "$work/previous.jsonl"; then
    ok
    mid_run=$((mid_run + 1))
  elif cmp -s "$out" "$work/new.jsonl"; then
    ok
  else
    bad "killed at ${percent}%: mapping damaged"
  fi
done
# The early kills must have hit a running process, or the loop proved nothing.
[[ $mid_run -ge 3 ]] && ok || bad "only $mid_run of 5 kills happened before the run finished"

# A kill during the write: the temporary file is complete and fsynced, the rename not yet done.
rm -f "$work"/.m.jsonl.tmp.*  # in case a kill above hit a write
cp "$work/previous.jsonl" "$out"
EPLB_TEST_SLOW_WRITE_MS=30000 "$gen" --stats "$trace" --ep 32 --redundant 32 --objective sum \
  -o "$out" -q &
pid=$!
for _ in $(seq 600); do
  [[ -n $(temps "$work") ]] && break
  sleep 0.05
done
tmp=$(temps "$work")
if [[ -n $tmp ]]; then ok; else bad "no temporary file appeared during the write"; fi
sleep 0.2  # the hook sleeps 30 s; the file is written by now
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
cmp -s "$out" "$work/previous.jsonl" && ok || bad "killed during the write: previous mapping changed"
[[ -n $(temps "$work") ]] && ok || bad "the killed run's temporary file is gone already"
# Another target in the same directory: its run must leave the killed run's temporary file alone.
"$gen" --stats "$trace" --ep 32 --redundant 32 --objective sum -o "$work/other.jsonl" -q
[[ -n $(temps "$work") ]] && ok || bad "a run for another target removed m.jsonl's temporary file"

# The next successful run replaces the mapping and removes the stale temporary file.
plan 32 && ok || bad "run after the kills failed"
cmp -s "$out" "$work/previous.jsonl" && bad "mapping not replaced"
[[ -z $(temps "$work") ]] && ok || bad "temporary file left after a successful run: $(temps "$work")"

# A live writer's temporary file is not stale: a run that finishes meanwhile must keep it.
EPLB_TEST_SLOW_WRITE_MS=3000 "$gen" --stats "$trace" --ep 16 --redundant 32 --objective sum \
  -o "$out" -q &
pid=$!
for _ in $(seq 600); do
  [[ -n $(temps "$work") ]] && break
  sleep 0.05
done
plan 32 || bad "concurrent run failed"
if wait "$pid"; then ok; else bad "the slow writer failed: its temporary file was removed"; fi
cmp -s "$out" "$work/previous.jsonl" && ok || bad "the slow writer (last to rename) did not win"
[[ -z $(temps "$work") ]] && ok || bad "temporary file left after concurrent runs"

# Unwritable target directories (needs mount, i.e. root; skipped otherwise).
mnt=$work/mnt
mkdir -p "$mnt"
if mount -t tmpfs -o size=1m tmpfs "$mnt" 2>/dev/null; then
  cp "$work/previous.jsonl" "$mnt/m.jsonl"
  cp "$mnt/m.jsonl" "$work/kept.jsonl"
  # Fill the file system: creating the temporary file works (tmpfs has inodes left), writing fails.
  cat /dev/zero >"$mnt/filler" 2>/dev/null
  if "$gen" --stats "$trace" --ep 32 --redundant 32 --objective sum -o "$mnt/m.jsonl" -q \
    2>"$work/full.err"; then
    bad "full file system: the run succeeded"
  else
    expected="eplb-gen: error: $mnt/m.jsonl: cannot write: No space left on device"
    [[ $(cat "$work/full.err") == "$expected" ]] && ok ||
      bad "full file system: message '$(cat "$work/full.err")', expected '$expected'"
  fi
  cmp -s "$mnt/m.jsonl" "$work/kept.jsonl" && ok || bad "full file system: previous mapping changed"
  [[ -z $(temps "$mnt") ]] && ok || bad "full file system: temporary file left"

  rm -f "$mnt/filler"
  mount -o remount,ro "$mnt"
  if "$gen" --stats "$trace" --ep 32 --redundant 32 --objective sum -o "$mnt/m.jsonl" -q \
    2>"$work/ro.err"; then
    bad "read-only file system: the run succeeded"
  else
    expected="eplb-gen: error: $mnt/m.jsonl: cannot create a temporary file in $mnt: Read-only file system"
    [[ $(cat "$work/ro.err") == "$expected" ]] && ok ||
      bad "read-only file system: message '$(cat "$work/ro.err")', expected '$expected'"
  fi
  cmp -s "$mnt/m.jsonl" "$work/kept.jsonl" && ok || bad "read-only file system: previous mapping changed"
  umount "$mnt" && mnt=""
else
  echo "kill test: mount not permitted, full and read-only file system cases skipped"
fi

echo "kill test: $passes passed, $failures failed"
[[ $failures -eq 0 ]]
