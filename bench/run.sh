#!/usr/bin/env bash
# The benchmark (issue 7): builds moodlestack, installs the emulator if needed, and runs
# bench/run.py with the emulator's Python. Prints one table and the targets met or missed.
#   bench/run.sh            debug build (what the tests use)
#   bench/run.sh --release  release build (slow to compile: ~18 minutes cold on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/moodlestack/target}"
profile=debug
if [ "${1:-}" = "--release" ]; then
  profile=release
  cargo build --locked --release --quiet
else
  cargo build --locked --quiet
fi
localstack/emulator.sh install
export MOODLESTACK_BIN="$CARGO_TARGET_DIR/$profile/moodlestack"
exec "${MOODLESTACK_CACHE:-$HOME/.cache/moodlestack}/moto-venv/bin/python" bench/run.py
