#!/usr/bin/env bash
# An Apache Pulsar standalone (broker, one bookie and a RocksDB metadata store in one JVM) on
# loopback, from Apache's own jars, with the WebSocket API the `idem/pulsar` adapter speaks.
# Usable by hand; the Pulsar tests need it running.
#
#   test/services/pulsar.sh start    # fetch the jars (once), start, wait until the WebSocket API answers
#   test/services/pulsar.sh stop     # stop it, by pid
#   test/services/pulsar.sh status   # exit 0 when it answers
#   test/services/pulsar.sh fetch    # only fetch the jars (Maven's local repository takes one writer at a time)
#
# Environment (defaults in brackets): PULSAR_WEB_PORT [8088] (HTTP: admin REST API and WebSocket
# API; not the common 8080), PULSAR_PORT [6650] (binary protocol),
# PULSAR_BOOKIE_PORT [3181], PULSAR_DIR [.services/pulsar/<web port>] for its data, log and pid
# file, PULSAR_HEAP [512m], PULSAR_DIRECT_MEMORY [256m].
# The jars are fetched with Maven from test/services/pulsar/pom.xml into .services/pulsar/libs (git
# ignores .services/; Maven also keeps them in ~/.m2). A Pulsar already answering on the port is reused.
#
# Measured on a 2-core machine (Pulsar 4.2.4, jars fetched): it answers 5 to 11 s after start, with
# a fresh data directory or an existing one, and holds about 280 MB resident (about 340 MB after the
# Pulsar test suite).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
POM="$ROOT/test/services/pulsar/pom.xml"
LIBS="$ROOT/.services/pulsar/libs"
WEB_PORT="${PULSAR_WEB_PORT:-8088}"
PORT="${PULSAR_PORT:-6650}"
BOOKIE_PORT="${PULSAR_BOOKIE_PORT:-3181}"
DIR="${PULSAR_DIR:-$ROOT/.services/pulsar/$WEB_PORT}"
HEAP="${PULSAR_HEAP:-512m}"
DIRECT="${PULSAR_DIRECT_MEMORY:-256m}"
PID_FILE="$DIR/pulsar.pid"
# The loopback interface's name (lo on Linux), which the bookie binds to. awk reads to the end
# rather than exit at the first match: an `exit` could close the pipe while ip still writes, and
# ip's SIGPIPE then failed the assignment under pipefail, ending this script without a word.
LOOPBACK="$(ip -o link show 2>/dev/null | awk -F': ' '/LOOPBACK/ && !found { print $2; found = 1 }' || true)"
LOOPBACK="${LOOPBACK:-lo}"
WAIT_SECONDS=180

log() { echo "pulsar.sh: $*" >&2; }

# Why it failed: a shutdown logs pages of INFO after the error, so the errors come first, then the end.
explain() {
  log "errors in $DIR/pulsar.log:"
  grep -E ' ERROR |Exception|Caused by' "$DIR/pulsar.log" | head -n 15 >&2 || true
  log "the end of $DIR/pulsar.log:"
  tail -n 15 "$DIR/pulsar.log" >&2
}

# port_open, fetch_jars_with_maven, stop_by_pid_file
# shellcheck source=common.sh
. "$ROOT/test/services/common.sh"

# True when the broker serves its namespace (an open web port alone may be a broker still starting:
# Jetty listens before the default namespace exists and topics can be served).
answers() {
  curl -fsS -m 3 "http://127.0.0.1:$WEB_PORT/admin/v2/namespaces/public/default" >/dev/null 2>&1
}

fetch_jars() { fetch_jars_with_maven "Apache Pulsar" "$POM" "$LIBS"; }

write_config() {
  mkdir -p "$DIR/data"
  # Read twice by the standalone: as the broker's configuration and as the bookie's.
  cat >"$DIR/standalone.conf" <<CONF
clusterName=standalone
bindAddress=127.0.0.1
advertisedAddress=127.0.0.1
brokerServicePort=$PORT
webServicePort=$WEB_PORT
webSocketServiceEnabled=true
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
# One bookie: every ledger has one copy.
managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
# Nothing the tests use, and each costs start time and memory.
functionsWorkerEnabled=false
transactionCoordinatorEnabled=false
systemTopicEnabled=false
topicLevelPoliciesEnabled=false
loadBalancerEnabled=false
# Tests make many short-lived topics: keep them (a test reads its dead-letter topic back).
brokerDeleteInactiveTopicsEnabled=false
# Bookie: on loopback, on the port given (without allowEphemeralPorts the standalone picks a random
# port, and without a listening interface the bookie binds every interface).
allowEphemeralPorts=true
listeningInterface=$LOOPBACK
allowLoopback=true
# Bookie: small caches for a small heap.
dbStorage_writeCacheMaxSizeMb=16
dbStorage_readAheadCacheMaxSizeMb=16
dbStorage_rocksDB_blockCacheSize=16777216
journalMaxSizeMB=64
httpServerEnabled=false
CONF
}

start() {
  if answers; then
    log "a Pulsar already answers on 127.0.0.1:$WEB_PORT; reusing it"
    return 0
  fi
  if port_open "$WEB_PORT"; then
    log "port $WEB_PORT is open but nothing answers as Pulsar yet; waiting"
  else
    fetch_jars
    write_config
    log "starting Pulsar standalone: broker 127.0.0.1:$PORT, web and WebSocket 127.0.0.1:$WEB_PORT, bookie $BOOKIE_PORT, data in $DIR"
    # setsid: the broker outlives the shell that started it (CI's, a test's) and is stopped by pid.
    # The --add-opens let the broker read the JVM's container and GC metrics, as Pulsar's own
    # launcher does, instead of logging an IllegalAccessException on every start.
    setsid java -Xms128m -Xmx"$HEAP" -XX:MaxDirectMemorySize="$DIRECT" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -Djava.awt.headless=true -Dio.netty.leakDetection.level=disabled -Dpulsar.allocator.exit_on_oom=true \
      --add-opens java.base/jdk.internal.platform=ALL-UNNAMED --add-opens java.management/sun.management=ALL-UNNAMED \
      -cp "$LIBS/*" org.apache.pulsar.PulsarStandaloneStarter \
      --config "$DIR/standalone.conf" --no-functions-worker --no-stream-storage \
      --bookkeeper-dir "$DIR/data/bookkeeper" --bookkeeper-port "$BOOKIE_PORT" \
      --metadata-dir "$DIR/data/metadata" --advertised-address 127.0.0.1 \
      >"$DIR/pulsar.log" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
  fi
  local waited=0
  wait_for_broker "$WAIT_SECONDS" "$PID_FILE" answers || waited=$?
  case $waited in
  0) log "Pulsar answers on 127.0.0.1:$WEB_PORT" ;;
  1) log "Pulsar exited while starting" ;;
  *) log "Pulsar did not answer on 127.0.0.1:$WEB_PORT within $WAIT_SECONDS s" ;;
  esac
  [ "$waited" = 0 ] || explain
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
