#!/usr/bin/env bash
# The benchmark (issues 7 and 14): builds moodlestack, installs the emulator if needed, and runs
# bench/run.py with the emulator's Python. Prints one table and the targets met or missed.
#   bench/run.sh                     debug build (what the tests use)
#   bench/run.sh --release           release build (slow to compile: ~18 minutes cold on 2 cores)
#   bench/run.sh --latency-ms 100    also every command with 100 ms per request (through
#                                    localstack/faults.py): wall time, requests, sequential rounds
#   bench/run.sh --latency-ms 100 --latency-only    only that second table
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/moodlestack/target}"
profile=debug
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=release ;;
    --latency-ms) [ $# -ge 2 ] || { echo "bench: --latency-ms needs a value" >&2; exit 2; }
                  pass+=(--latency-ms "$2"); shift ;;
    --latency-ms=*) pass+=(--latency-ms "${1#*=}") ;;
    --latency-only) pass+=(--latency-only) ;;
    *) echo "bench: unknown option $1 (--release, --latency-ms N, --latency-only)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$profile" = release ]; then
  cargo build --locked --release --quiet
else
  cargo build --locked --quiet
fi
localstack/emulator.sh install
export MOODLESTACK_BIN="$CARGO_TARGET_DIR/$profile/moodlestack"
exec "${MOODLESTACK_CACHE:-$HOME/.cache/moodlestack}/moto-venv/bin/python" bench/run.py "${pass[@]}"
