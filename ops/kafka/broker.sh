#!/usr/bin/env bash
# A local single-node Apache Kafka broker (KRaft, combined broker + controller) for development
# and tests, run from the jars that ops/kafka/pom.xml resolves: no Docker, no Kafka tarball.
#
#   broker.sh fetch                          jars into $SLAMON_CACHE/kafka-<version>/libs
#   broker.sh start [--port P] [--dir D]     start (formatting D on first use); prints host:port
#   broker.sh stop [--dir D]                 SIGTERM, then SIGKILL after $SLAMON_KAFKA_STOP_TIMEOUT
#   broker.sh restart [--port P] [--dir D]   stop then start, keeping the data
#   broker.sh status [--dir D]               exit 0 when running, 3 when stopped
#
# D defaults to <repo>/var/kafka and holds server.properties, data/, server.log, pid and
# bootstrap. Progress goes to stderr; start prints only the bootstrap address on stdout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NAME=broker.sh
PRODUCT=kafka
# shellcheck source=../lib/jars.sh
source "$HERE/../lib/jars.sh"
START_TIMEOUT=${SLAMON_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=${SLAMON_KAFKA_STOP_TIMEOUT:-30}
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}

usage() {
  sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# SO_REUSEADDR as the broker's own listener sets it: connections of a just-stopped broker in
# TIME_WAIT must not make its port look taken on restart.
port_is_free() {
  python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
with socket.socket() as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
EOF
}

accepts_connections() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# The port a previous start in this dir used for a listener, so a restart keeps its address.
previous_port() {
  local props=$1/server.properties listener=$2
  [[ -f $props ]] || return 0
  sed -n "s|^listeners=.*$listener://[^:]*:\([0-9]*\).*|\1|p" "$props"
}

# True when PID is alive (not a zombie left unreaped by a container's init) and is the broker
# of DIR, so a stale pid file never makes us signal an unrelated process.
is_broker() {
  local pid=$1 dir=$2
  [[ -r /proc/$pid/cmdline ]] || return 1
  [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $dir/server.properties"
}

running_pid() {
  local dir=$1 pid
  [[ -f $dir/pid ]] || return 1
  pid=$(cat "$dir/pid")
  is_broker "$pid" "$dir" || return 1
  echo "$pid"
}

cluster_id() {
  # A Kafka Uuid: 16 random bytes in unpadded base64url; Kafka never starts one with '-'
  # because the storage tool would read it as an option.
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id != -* ]] && break
  done
  echo "$id"
}

write_properties() {
  local dir=$1 port=$2 controller_port=$3
  # Static voters (controller.quorum.voters) rather than a --standalone dynamic quorum: the
  # voter's endpoint then comes from this file, so a restart may move the controller port.
  cat >"$dir/server.properties" <<EOF
# Written by ops/kafka/broker.sh on every start; edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$controller_port
listeners=PLAINTEXT://$HOST:$port,CONTROLLER://$HOST:$controller_port
advertised.listeners=PLAINTEXT://$HOST:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
EOF
}

java_cmd() {
  # shellcheck disable=SC2206 # KAFKA_HEAP_OPTS holds several JVM options
  JAVA=(java $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$HERE/log4j2.properties"
    -cp "$LIBS/*")
}

start() {
  parse_args "$REPO/var/kafka" "$@"
  local pid
  if pid=$(running_pid "$DIR"); then
    die "a broker (pid $pid) already runs in $DIR at $(cat "$DIR/bootstrap" 2>/dev/null)"
  fi
  fetch

  local port=$PORT controller_port
  if [[ -z $port ]]; then
    port=$(previous_port "$DIR" PLAINTEXT)
    if [[ -z $port ]] || ! port_is_free "$port"; then port=$(free_port); fi
  fi
  port_is_free "$port" || die "port $port on $HOST is in use"
  controller_port=$(previous_port "$DIR" CONTROLLER)
  while [[ -z $controller_port || $controller_port == "$port" ]] \
      || ! port_is_free "$controller_port"; do
    controller_port=$(free_port)
  done

  write_properties "$DIR" "$port" "$controller_port"
  java_cmd
  if [[ ! -f $DIR/data/meta.properties ]]; then
    log "formatting $DIR/data"
    "${JAVA[@]}" kafka.tools.StorageTool format --cluster-id "$(cluster_id)" \
      --config "$DIR/server.properties" >"$DIR/format.log" 2>&1 \
      || { cat "$DIR/format.log" >&2; die "formatting $DIR/data failed"; }
  fi

  rm -f "$DIR/bootstrap"
  [[ -f $DIR/server.log ]] && mv "$DIR/server.log" "$DIR/server.log.1"
  # setsid: the broker outlives this script and ignores the terminal's Ctrl-C.
  setsid "${JAVA[@]}" kafka.Kafka "$DIR/server.properties" >"$DIR/server.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$DIR/pid"

  local deadline=$((SECONDS + START_TIMEOUT))
  until grep -q "Kafka Server started" "$DIR/server.log" && accepts_connections "$port"; do
    if ! is_broker "$pid" "$DIR"; then
      tail -n 40 "$DIR/server.log" >&2
      rm -f "$DIR/pid"
      die "the broker exited during startup; log: $DIR/server.log"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$DIR/server.log" >&2
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$DIR/pid"
      die "the broker did not accept connections on $HOST:$port within ${START_TIMEOUT}s; log: $DIR/server.log"
    fi
    sleep 0.2
  done
  echo "$HOST:$port" >"$DIR/bootstrap"
  log "broker pid $pid listening on $HOST:$port (data and log in $DIR)"
  echo "$HOST:$port"
}

stop() {
  parse_args "$REPO/var/kafka" "$@"
  local pid
  if ! pid=$(running_pid "$DIR"); then
    rm -f "$DIR/pid" "$DIR/bootstrap"
    log "no broker running in $DIR"
    return 0
  fi
  kill -TERM "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while is_broker "$pid" "$DIR"; do
    if ((SECONDS >= deadline)); then
      log "broker pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  # After SIGKILL the process can linger a moment; the data dir must be unlocked on return.
  while is_broker "$pid" "$DIR"; do sleep 0.1; done
  rm -f "$DIR/pid" "$DIR/bootstrap"
  log "broker pid $pid stopped"
}

status() {
  parse_args "$REPO/var/kafka" "$@"
  local pid
  if pid=$(running_pid "$DIR"); then
    echo "running pid=$pid bootstrap=$(cat "$DIR/bootstrap" 2>/dev/null) dir=$DIR"
  else
    echo "stopped dir=$DIR"
    return 3
  fi
}

restart() {
  local args=("$@") dir_args=() i
  for ((i = 0; i < ${#args[@]}; i++)); do
    [[ ${args[i]} == --dir ]] && dir_args=(--dir "${args[i + 1]:-}")
  done
  stop "${dir_args[@]}"
  start "$@"
}

case ${1:-} in
  fetch) shift; (($# == 0)) || usage; fetch ;;
  start | stop | status | restart) cmd=$1; shift; "$cmd" "$@" ;;
  *) usage ;;
esac
