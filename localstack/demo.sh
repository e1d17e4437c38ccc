#!/usr/bin/env bash
# The demo, in one command: builds moodlestack, starts the local emulator, shows the plan for
# stacks/demo.yaml, applies it, and ends with the stack's outputs (apply prints them). The emulator keeps running so you
# can look around (plan again: no changes; destroy); `localstack/emulator.sh stop` stops it.
#
#   localstack/demo.sh [STACK]     default stacks/demo.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-stacks/demo.yaml}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/moodlestack/target}"

echo "==> building moodlestack (the first build compiles the AWS SDK: ~10 minutes on 2 cores)"
cargo build --locked --quiet
bin="$CARGO_TARGET_DIR/debug/moodlestack"

echo "==> starting the local AWS emulator"
localstack/emulator.sh start >/dev/null
eval "$(localstack/emulator.sh env)"
echo "    $AWS_ENDPOINT_URL"

echo "==> moodlestack plan $stack"
"$bin" plan "$stack"
echo "==> moodlestack apply --auto-approve $stack"
"$bin" apply --auto-approve "$stack"

cat <<MSG

The emulator is still running. To use it from this shell:
  eval "\$(localstack/emulator.sh env)"
  $bin plan $stack            # no changes
  $bin outputs $stack
  $bin destroy --auto-approve --allow-data-loss $stack   # the file system and cache hold data
  localstack/emulator.sh stop
MSG
