#!/usr/bin/env bash
# A local S3-compatible object store (S3Proxy over the file system) for the Parquet export's
# development and tests, run from the jars that ops/s3/pom.xml resolves: no Docker.
#
#   s3proxy.sh start [--port P] [--dir D]   start; prints the endpoint (http://host:port)
#   s3proxy.sh stop [--dir D]               SIGTERM, then SIGKILL after 20 s
#   s3proxy.sh status [--dir D]             exit 0 when running, 3 when stopped
#
# D defaults to <repo>/var/s3 and holds the objects (data/), s3proxy.conf, the log, pid,
# endpoint, and the access key id and secret key (access-key-id, secret-access-key, mode
# 600): from $S3PROXY_IDENTITY and $S3PROXY_CREDENTIAL when set, else random on first start.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NAME=s3proxy.sh
PRODUCT=s3proxy
# shellcheck source=../lib/jars.sh
source "$HERE/../lib/jars.sh"
START_TIMEOUT=${SLAMON_S3_START_TIMEOUT:-60}

usage() { sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# Alive, not a zombie, and S3Proxy of this DIR: a stale pid file never signals another process.
running_pid() {
  local pid
  [[ -f $DIR/pid ]] || return 1
  pid=$(cat "$DIR/pid")
  [[ -r /proc/$pid/cmdline && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] \
    || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "org.gaul.s3proxy.Main --properties $DIR/" \
    || return 1
  echo "$pid"
}

# The key pair in DIR, written once (from the environment, else random), readable by us only.
keys() {
  umask 077
  [[ -s $DIR/access-key-id ]] || echo "${S3PROXY_IDENTITY:-slamon-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')}" >"$DIR/access-key-id"
  [[ -s $DIR/secret-access-key ]] || echo "${S3PROXY_CREDENTIAL:-$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')}" >"$DIR/secret-access-key"
}

start() {
  parse_args "$REPO/var/s3" "$@"
  local pid port
  if pid=$(running_pid); then
    die "S3Proxy (pid $pid) already runs in $DIR at $(cat "$DIR/endpoint" 2>/dev/null)"
  fi
  fetch
  keys
  port=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
  mkdir -p "$DIR/data"
  cat >"$DIR/s3proxy.conf" <<EOF
# Written by ops/s3/s3proxy.sh on every start; edits are lost.
s3proxy.endpoint=http://$HOST:$port
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$(cat "$DIR/access-key-id")
s3proxy.credential=$(cat "$DIR/secret-access-key")
jclouds.provider=filesystem
jclouds.filesystem.basedir=$DIR/data
EOF
  chmod 600 "$DIR/s3proxy.conf"
  rm -f "$DIR/endpoint"
  setsid java -Xms64m -Xmx256m "-Dlogback.configurationFile=$HERE/logback.xml" \
    -cp "$LIBS/*" org.gaul.s3proxy.Main --properties "$DIR/s3proxy.conf" \
    >"$DIR/s3proxy.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$DIR/pid"
  local deadline=$((SECONDS + START_TIMEOUT))
  until (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; do
    if ! running_pid >/dev/null; then
      tail -n 40 "$DIR/s3proxy.log" >&2
      die "S3Proxy exited during startup; log: $DIR/s3proxy.log"
    fi
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      die "S3Proxy did not listen on $HOST:$port within ${START_TIMEOUT}s; log: $DIR/s3proxy.log"
    fi
    sleep 0.2
  done
  echo "http://$HOST:$port" >"$DIR/endpoint"
  log "S3Proxy pid $pid at http://$HOST:$port (objects, keys and log in $DIR)"
  echo "http://$HOST:$port"
}

stop() {
  parse_args "$REPO/var/s3" "$@"
  local pid
  if ! pid=$(running_pid); then
    rm -f "$DIR/pid" "$DIR/endpoint"
    log "no S3Proxy running in $DIR"
    return 0
  fi
  kill -TERM "$pid"
  local deadline=$((SECONDS + 20))
  while running_pid >/dev/null; do
    ((SECONDS < deadline)) || kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  done
  rm -f "$DIR/pid" "$DIR/endpoint"
  log "S3Proxy pid $pid stopped"
}

status() {
  parse_args "$REPO/var/s3" "$@"
  local pid
  if pid=$(running_pid); then
    echo "running pid=$pid endpoint=$(cat "$DIR/endpoint" 2>/dev/null) dir=$DIR"
  else
    echo "stopped dir=$DIR"
    return 3
  fi
}

case ${1:-} in
  start | stop | status) cmd=$1; shift; "$cmd" "$@" ;;
  *) usage ;;
esac
