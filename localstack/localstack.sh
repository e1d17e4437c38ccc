#!/usr/bin/env bash
# Starts and stops LocalStack's free edition (localstack-core from PyPI) on 127.0.0.1, on the
# host, without Docker: EC2, IAM, SSM, Secrets Manager and STS (it answers RDS, EFS, ElastiCache,
# ELBv2 and Auto Scaling with HTTP 501). The integration tests run the tests of those services
# against it too (localstack/README.md, "LocalStack").
#
#   localstack/localstack.sh install        install localstack-core into a virtualenv (once)
#   localstack/localstack.sh start          start on a free port, wait until it is ready, print
#                                           the endpoint; state in $MOODLESTACK_CACHE/localstack.{pid,url}
#   localstack/localstack.sh env            print `export` lines for it (eval them)
#   localstack/localstack.sh stop           stop the server started by `start`
#   localstack/localstack.sh run -- CMD...  start, run CMD with the environment set, stop
#
# LOCALSTACK_VERSION picks another release (4.13.1 is the newest that runs on Python 3.11; its
# dependencies are pinned by localstack/localstack-constraints.txt, which is for 4.13.1 only).
# SERVICES changes the services it serves.
set -euo pipefail

LOCALSTACK_VERSION="${LOCALSTACK_VERSION:-4.13.1}"
HERE="$(cd "$(dirname "$0")" && pwd)"

NAME=localstack
VENV_DIR=localstack-venv
# A 12-digit access key id is the account LocalStack puts the resources in.
ACCESS_KEY_ID=000000000000
SECRET_ACCESS_KEY="test"
READY_TRIES=600
# shellcheck source=localstack/server-lib.sh
. "$HERE/server-lib.sh"

installed() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import sys, localstack.constants as c, localstack.runtime.main; sys.exit(c.VERSION != '$LOCALSTACK_VERSION')"
}

setup() {
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "localstack-core needs Python 3.10 or later"
  local constraints=()
  [ "$LOCALSTACK_VERSION" = 4.13.1 ] && constraints=(-c "$HERE/localstack-constraints.txt")
  rm -rf "$VENV"
  venv_install "localstack-core[runtime]==$LOCALSTACK_VERSION" "${constraints[@]}" \
    "localstack-core[runtime]==$LOCALSTACK_VERSION"
}

launch() {
  PYTHONUNBUFFERED=1 nohup "$VENV/bin/python" "$HERE/localstack_server.py" -p "$1" \
    </dev/null >"$LOGFILE" 2>&1 &
}

ready() {
  grep -qx 'Ready.' "$LOGFILE" 2>/dev/null
}

main "$@"
