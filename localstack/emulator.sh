#!/usr/bin/env bash
# Starts and stops a local AWS emulator (moto's server) on 127.0.0.1, for the demo and the tests.
#
#   localstack/emulator.sh install        install moto[server] and the AWS CLI into a virtualenv
#                                         (once)
#   localstack/emulator.sh start          start on a free port, wait until it answers, print the
#                                         endpoint; state in $MOODLESTACK_CACHE/emulator.{pid,url}
#   localstack/emulator.sh env            print `export` lines for moodlestack (eval them)
#   localstack/emulator.sh stop           stop the emulator started by `start`
#   localstack/emulator.sh run -- CMD...  start, run CMD with the environment set, stop
#   localstack/emulator.sh behaviours     list the AWS behaviours and which are on
#
# MOODLESTACK_EMULATOR_BEHAVIOURS (default|all|none|name,-name), MOODLESTACK_EMULATOR_DELAY_MS
# and MOODLESTACK_EMULATOR_CONSISTENCY_MS choose the AWS-behaviour layer (localstack/behaviours.py).
#
# moodlestack itself only needs AWS_ENDPOINT_URL and test credentials; LocalStack (see
# localstack/README.md and docker-compose.yml) works the same way. The server runs through
# localstack/moto_server.py, which adds the calls moto lacks and the AWS-behaviour layer (see
# localstack/README.md).
set -euo pipefail

MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
# The AWS CLI (v1, from PyPI) beside moto: tests run the nodes' boot steps that call it.
AWSCLI_VERSION="${AWSCLI_VERSION:-1.46.3}"
HERE="$(cd "$(dirname "$0")" && pwd)"

NAME=emulator
VENV_DIR=moto-venv
ACCESS_KEY_ID=testing
SECRET_ACCESS_KEY=testing
READY_TRIES=300
# shellcheck source=localstack/server-lib.sh
. "$HERE/server-lib.sh"

installed() {
  [ -x "$VENV/bin/moto_server" ] && [ -x "$VENV/bin/aws" ] &&
    "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')"
}

setup() {
  venv_install "moto[server]==$MOTO_VERSION and awscli==$AWSCLI_VERSION" \
    "moto[server]==$MOTO_VERSION" "awscli==$AWSCLI_VERSION"
}

launch() {
  MOTO_IAM_LOAD_MANAGED_POLICIES=true nohup "$VENV/bin/python" "$HERE/moto_server.py" \
    -H 127.0.0.1 -p "$1" >"$LOGFILE" 2>&1 &
}

ready() {
  python3 -c "import urllib.request,sys; urllib.request.urlopen('$1/moto-api/', timeout=1)" 2>/dev/null
}

extra() {
  [ "${1:-}" = behaviours ] || return 1
  install
  "$VENV/bin/python" "$HERE/moto_server.py" --list
}

main "$@"
