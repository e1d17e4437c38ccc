# shellcheck shell=bash
# What localstack/emulator.sh (moto) and localstack/localstack.sh (LocalStack) share: a server on a
# free port of 127.0.0.1, its pid/url/log files under $CACHE, the environment for moodlestack, and
# the command line. The sourcing script sets NAME, VENV_DIR (the virtualenv's folder under $CACHE),
# HERE, ACCESS_KEY_ID, SECRET_ACCESS_KEY and READY_TRIES, and defines:
#   installed        true when the wanted version of the server is in $VENV
#   setup            install it there (venv_install does the installing)
#   launch PORT      start it in the background on 127.0.0.1:PORT, output to $LOGFILE
#   ready URL        true once it answers
#   stop_wait        (optional) how long a stopping server is waited for
# READY_TRIES tenths of a second are waited for `ready`.

CACHE="${MOODLESTACK_CACHE:-$HOME/.cache/moodlestack}"
VENV="$CACHE/$VENV_DIR"
PIDFILE="$CACHE/$NAME.pid"
URLFILE="$CACHE/$NAME.url"
LOGFILE="$CACHE/$NAME.log"
REGION="${AWS_REGION:-eu-west-1}"

die() { echo "$NAME: $*" >&2; exit 1; }

# The server installed into $VENV, once.
install() {
  installed 2>/dev/null && return 0
  command -v python3 >/dev/null || die "python3 is needed (apt-get install python3 python3-venv)"
  setup
}

# venv_install WHAT PIP_ARGS...: a virtualenv at $VENV, WHAT (for the message) installed into it
# with `pip install PIP_ARGS...`.
venv_install() {
  local what=$1
  shift
  mkdir -p "$CACHE"
  echo "$NAME: installing $what into $VENV" >&2
  python3 -m venv "$VENV" || die "cannot create a virtualenv (apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$@"
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
  launch "$port"
  echo $! >"$PIDFILE"
  echo "$url" >"$URLFILE"
  for _ in $(seq 1 "$READY_TRIES"); do
    if ready "$url"; then
      echo "$url"
      return 0
    fi
    running || die "the server exited; see $LOGFILE"
    sleep 0.1
  done
  stop
  die "the server did not answer on $url within $((READY_TRIES / 10)) s; see $LOGFILE"
}

print_env() {
  running || die "not running ($0 start)"
  cat <<ENV
export AWS_ENDPOINT_URL=$(cat "$URLFILE")
export AWS_ACCESS_KEY_ID=$ACCESS_KEY_ID
export AWS_SECRET_ACCESS_KEY=$SECRET_ACCESS_KEY
export AWS_REGION=$REGION
export AWS_EC2_METADATA_DISABLED=true
ENV
}

stop() {
  if running; then
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
    # Wait for it to go (a few seconds for LocalStack's own shutdown).
    for _ in $(seq 1 100); do running || break; sleep 0.1; done
  fi
  rm -f "$PIDFILE" "$URLFILE"
}

# The command line: install | start | env | stop | run -- CMD... (and `extra` for the rest).
main() {
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
    *)
      if declare -F extra >/dev/null && extra "$@"; then return 0; fi
      sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
      exit 2
      ;;
  esac
}
