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
CACHE="${MOODLESTACK_CACHE:-$HOME/.cache/moodlestack}"
VENV="$CACHE/localstack-venv"
PIDFILE="$CACHE/localstack.pid"
URLFILE="$CACHE/localstack.url"
LOGFILE="$CACHE/localstack.log"
REGION="${AWS_REGION:-eu-west-1}"
HERE="$(cd "$(dirname "$0")" && pwd)"

die() { echo "localstack: $*" >&2; exit 1; }

install() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import sys, localstack.constants as c, localstack.runtime.main; sys.exit(c.VERSION != '$LOCALSTACK_VERSION')" 2>/dev/null; then
    return 0
  fi
  command -v python3 >/dev/null || die "python3 is needed (apt-get install python3 python3-venv)"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "localstack-core needs Python 3.10 or later"
  mkdir -p "$CACHE"
  echo "localstack: installing localstack-core[runtime]==$LOCALSTACK_VERSION into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "cannot create a virtualenv (apt-get install python3-venv)"
  local constraints=()
  [ "$LOCALSTACK_VERSION" = 4.13.1 ] && constraints=(-c "$HERE/localstack-constraints.txt")
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${constraints[@]}" \
    "localstack-core[runtime]==$LOCALSTACK_VERSION"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

start() {
  install
  if running; then
    cat "$URLFILE"
    return 0
  fi
  local port url
  port=$(free_port)
  url="http://127.0.0.1:$port"
  PYTHONUNBUFFERED=1 nohup "$VENV/bin/python" "$HERE/localstack_server.py" -p "$port" \
    </dev/null >"$LOGFILE" 2>&1 &
  echo $! >"$PIDFILE"
  echo "$url" >"$URLFILE"
  for _ in $(seq 1 600); do
    if grep -qx 'Ready.' "$LOGFILE" 2>/dev/null; then
      echo "$url"
      return 0
    fi
    running || die "LocalStack exited; see $LOGFILE"
    sleep 0.1
  done
  stop
  die "LocalStack was not ready on $url within 60 s; see $LOGFILE"
}

print_env() {
  running || die "not running (localstack/localstack.sh start)"
  # A 12-digit access key id is the account LocalStack puts the resources in.
  cat <<ENV
export AWS_ENDPOINT_URL=$(cat "$URLFILE")
export AWS_ACCESS_KEY_ID=000000000000
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=$REGION
export AWS_EC2_METADATA_DISABLED=true
ENV
}

stop() {
  if running; then
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
    # LocalStack's own shutdown takes a few seconds.
    for _ in $(seq 1 100); do running || break; sleep 0.1; done
  fi
  rm -f "$PIDFILE" "$URLFILE"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  env) print_env ;;
  stop) stop ;;
  run)
    shift
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || die "usage: $0 run -- CMD..."
    start >/dev/null
    trap stop EXIT
    eval "$(print_env)"
    "$@"
    ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
