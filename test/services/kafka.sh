#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft: broker and controller in one process) on loopback, from Apache's
# own jars. `.ci/run` calls it; it is usable by hand, and the Kafka tests start private brokers with it.
#
#   test/services/kafka.sh start    # fetch the jars (once), format (once), start, wait until it answers
#   test/services/kafka.sh stop     # stop it, by pid
#   test/services/kafka.sh status   # exit 0 when it answers
#   test/services/kafka.sh fetch    # only fetch the jars (Maven's local repository takes one writer at a time)
#
# Environment (defaults in brackets): KAFKA_PORT [9092], KAFKA_CONTROLLER_PORT [port + 1],
# KAFKA_DIR [.services/kafka/<port>] for its data, log and pid file, KAFKA_HEAP [384m].
# The jars are fetched with Maven from test/services/kafka/pom.xml into .services/kafka/libs (git
# ignores .services/; Maven also keeps them in ~/.m2). A broker already answering on the port is reused.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
POM="$ROOT/test/services/kafka/pom.xml"
LIBS="$ROOT/.services/kafka/libs"
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
DIR="${KAFKA_DIR:-$ROOT/.services/kafka/$PORT}"
HEAP="${KAFKA_HEAP:-384m}"
PID_FILE="$DIR/kafka.pid"

log() { echo "kafka.sh: $*" >&2; }

# port_open, fetch_jars_with_maven, stop_by_pid_file
# shellcheck source=common.sh
. "$ROOT/test/services/common.sh"

# True when the broker answers a metadata request (an open port alone may be a broker still starting).
answers() {
  if command -v kcat >/dev/null; then
    kcat -b "127.0.0.1:$PORT" -L -m 2 >/dev/null 2>&1
  else
    port_open "$PORT"
  fi
}

fetch_jars() { fetch_jars_with_maven "Apache Kafka" "$POM" "$LIBS"; }

write_config() {
  mkdir -p "$DIR/data"
  cat >"$DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data
num.partitions=1
auto.create.topics.enable=true
# One broker: the internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join and leave groups all the time: do not wait for more members before the first assignment.
group.initial.rebalance.delay.ms=0
# Let tests use short sessions (a handler longer than the session timeout).
group.min.session.timeout.ms=1000
group.consumer.min.session.timeout.ms=1000
group.consumer.min.heartbeat.interval.ms=500
log.retention.hours=24
EOF
}

format_storage() {
  if [ -f "$DIR/data/meta.properties" ]; then return 0; fi
  local cluster_id
  cluster_id="$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
  java -cp "$LIBS/*" kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$DIR/server.properties" >"$DIR/format.log" 2>&1 ||
    {
      cat "$DIR/format.log" >&2
      return 1
    }
}

start() {
  if answers; then
    log "a broker already answers on 127.0.0.1:$PORT; reusing it"
    return 0
  fi
  if port_open "$PORT"; then
    log "port $PORT is open but nothing answers as Kafka yet; waiting"
  else
    fetch_jars
    write_config
    format_storage
    log "starting Kafka on 127.0.0.1:$PORT (controller $CONTROLLER_PORT), data in $DIR"
    # setsid: the broker outlives the shell that started it (CI's, a test's) and is stopped by pid.
    setsid java -Xms128m -Xmx"$HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
      -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
      -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" >"$DIR/kafka.log" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
  fi
  local waited=0
  wait_for_broker 60 "$PID_FILE" answers || waited=$?
  case $waited in
  0) log "Kafka answers on 127.0.0.1:$PORT" ;;
  1)
    log "Kafka exited while starting; the end of $DIR/kafka.log:"
    tail -n 30 "$DIR/kafka.log" >&2
    ;;
  *) log "Kafka did not answer on 127.0.0.1:$PORT within 60 s; see $DIR/kafka.log" ;;
  esac
  return "$waited"
}

stop() {
  if stop_by_pid_file "$PID_FILE"; then log "stopped"; else log "no pid file in $DIR: nothing of ours to stop"; fi
}

case "${1:-start}" in
fetch) fetch_jars ;;
start) start ;;
stop) stop ;;
status) answers ;;
*)
  echo "usage: $0 start|stop|status|fetch" >&2
  exit 2
  ;;
esac
