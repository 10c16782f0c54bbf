#!/usr/bin/env bash
# Apache RocketMQ 5 on loopback, from Apache's own jars: a name server, and a broker with its gRPC
# proxy in one process (proxy "local" mode). `.ci/run` calls it; it is usable by hand, and the
# RocketMQ tests create their topics with it.
#
#   test/services/rocketmq.sh start                # fetch the jars (once), start both, wait until they answer
#   test/services/rocketmq.sh stop                 # stop both, by pid
#   test/services/rocketmq.sh status               # exit 0 when both answer
#   test/services/rocketmq.sh fetch                # only fetch the jars
#   test/services/rocketmq.sh topics NAME[:TYPE]…  # create (or update) topics; TYPE NORMAL (default),
#                                                  # TRANSACTION, FIFO or DELAY (RocketMQ 5 checks a
#                                                  # message's type against its topic's)
#
# The gRPC proxy does not create topics on first use (the old remoting clients did): a topic must
# exist before a client asks for its route, or the proxy caches "no route" for a while.
#
# Environment (defaults in brackets): ROCKETMQ_NAMESRV_PORT [9876], ROCKETMQ_GRPC_PORT [8081],
# ROCKETMQ_PROXY_REMOTING_PORT [8082], ROCKETMQ_BROKER_PORT [10911; it also takes the port 2 below
# and the one above], ROCKETMQ_DIR [.services/rocketmq/<grpc port>] for its store, logs and pid
# files, ROCKETMQ_HEAP [512m] for the broker (the stock scripts ask for 8 GB), ROCKETMQ_CHECK_MS
# [2000]: how soon and how often the broker asks a producer about a transaction left open.
# The jars are fetched with Maven from test/services/rocketmq/pom.xml into .services/rocketmq/libs
# (git ignores .services/; Maven also keeps them in ~/.m2). Servers already answering are reused.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
POM="$ROOT/test/services/rocketmq/pom.xml"
LIBS="$ROOT/.services/rocketmq/libs"
NAMESRV_PORT="${ROCKETMQ_NAMESRV_PORT:-9876}"
GRPC_PORT="${ROCKETMQ_GRPC_PORT:-8081}"
PROXY_REMOTING_PORT="${ROCKETMQ_PROXY_REMOTING_PORT:-8082}"
BROKER_PORT="${ROCKETMQ_BROKER_PORT:-10911}"
DIR="${ROCKETMQ_DIR:-$ROOT/.services/rocketmq/$GRPC_PORT}"
HEAP="${ROCKETMQ_HEAP:-512m}"
CHECK_MS="${ROCKETMQ_CHECK_MS:-2000}"
JAVA_OPTS=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true -Duser.home="$DIR/home")

log() { echo "rocketmq.sh: $*" >&2; }

# port_open, fetch_jars_with_maven, stop_by_pid_file
# shellcheck source=common.sh
. "$ROOT/test/services/common.sh"

# The proxy opens its gRPC port last, once the broker inside it registered with the name server.
answers() { port_open "$NAMESRV_PORT" && port_open "$GRPC_PORT"; }

fetch_jars() { fetch_jars_with_maven "Apache RocketMQ" "$POM" "$LIBS"; }

write_config() {
  mkdir -p "$DIR/store" "$DIR/home/conf"
  cat >"$DIR/namesrv.conf" <<CONF
listenPort=$NAMESRV_PORT
bindAddress=127.0.0.1
CONF
  cat >"$DIR/broker.conf" <<CONF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
namesrvAddr=127.0.0.1:$NAMESRV_PORT
brokerIP1=127.0.0.1
bindAddress=127.0.0.1
listenPort=$BROKER_PORT
autoCreateTopicEnable=true
autoCreateSubscriptionGroup=true
storePathRootDir=$DIR/store
storePathCommitLog=$DIR/store/commitlog
# Small files: the defaults (1 GB commit log segments) are for production disks.
mappedFileSizeCommitLog=67108864
mappedFileSizeConsumeQueue=300000
flushDiskType=ASYNC_FLUSH
fileReservedTime=24
# Transactions left open (a producer killed before commit) are checked back soon, for the tests.
transactionTimeOut=$CHECK_MS
transactionCheckInterval=$CHECK_MS
CONF
  cat >"$DIR/proxy.json" <<CONF
{
  "rocketMQClusterName": "DefaultCluster",
  "namesrvAddr": "127.0.0.1:$NAMESRV_PORT",
  "grpcServerPort": $GRPC_PORT,
  "remotingListenPort": $PROXY_REMOTING_PORT,
  "topicRouteServiceCacheRefreshSeconds": 2
}
CONF
}

start_process() {
  local name=$1 heap=$2
  shift 2
  # setsid: the server outlives the shell that started it (CI's, a test's) and is stopped by pid.
  ROCKETMQ_HOME="$DIR/home" setsid java -Xms64m -Xmx"$heap" "${JAVA_OPTS[@]}" -cp "$LIBS/*" "$@" \
    >"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}

wait_for() {
  local name=$1 port=$2 waited=0
  wait_for_broker 120 "$DIR/$name.pid" port_open "$port" || waited=$?
  case $waited in
  0) ;;
  1)
    log "the $name exited while starting; the end of $DIR/$name.log:"
    tail -n 30 "$DIR/$name.log" >&2
    ;;
  *) log "the $name did not open 127.0.0.1:$port within 120 s; see $DIR/$name.log" ;;
  esac
  return "$waited"
}

start() {
  if answers; then
    log "RocketMQ already answers on 127.0.0.1:$NAMESRV_PORT and :$GRPC_PORT; reusing it"
    return 0
  fi
  fetch_jars
  write_config
  if ! port_open "$NAMESRV_PORT"; then
    log "starting the name server on 127.0.0.1:$NAMESRV_PORT"
    start_process namesrv 256m org.apache.rocketmq.namesrv.NamesrvStartup -c "$DIR/namesrv.conf"
    wait_for namesrv "$NAMESRV_PORT"
  fi
  if ! port_open "$GRPC_PORT"; then
    log "starting the broker and its gRPC proxy on 127.0.0.1:$GRPC_PORT (broker $BROKER_PORT), store in $DIR/store"
    start_process proxy "$HEAP" org.apache.rocketmq.proxy.ProxyStartup -pm local \
      -pc "$DIR/proxy.json" -bc "$DIR/broker.conf"
    wait_for proxy "$GRPC_PORT"
  fi
  log "RocketMQ answers: name server 127.0.0.1:$NAMESRV_PORT, gRPC proxy 127.0.0.1:$GRPC_PORT"
}


stop() {
  local stopped=1
  stop_by_pid_file "$DIR/proxy.pid" && stopped=0
  stop_by_pid_file "$DIR/namesrv.pid" && stopped=0
  if [ "$stopped" = 0 ]; then log "stopped"; else log "no pid files in $DIR: nothing of ours to stop"; fi
}

# create_topic NAME TYPE LOG: one `mqadmin updateTopic`, tried again for up to 30 s while the
# cluster is not known yet (a broker that just started registers with the name server a moment
# after its proxy opens).
create_topic() {
  local name=$1 type=$2 out=$3
  for _ in $(seq 1 15); do
    ROCKETMQ_HOME="$DIR/home" java -Xmx128m "${JAVA_OPTS[@]}" -cp "$LIBS/*" \
      org.apache.rocketmq.tools.command.MQAdminStartup updateTopic -n "127.0.0.1:$NAMESRV_PORT" \
      -c DefaultCluster -t "$name" -r 4 -w 4 -a "+message.type=$type" >"$out" 2>&1 || true
    if grep -q success "$out"; then return 0; fi
    grep -q "clusterName exists" "$out" || return 1
    sleep 2
  done
  return 1
}

# One `mqadmin updateTopic` per topic, all at once (its batch command, updateTopicList, only queues the
# topics and does not say whether they were made). updateTopic registers the route with the name
# server before it returns.
topics() {
  if [ $# -eq 0 ]; then
    echo "usage: $0 topics NAME[:TYPE]…" >&2
    exit 2
  fi
  fetch_jars
  mkdir -p "$DIR"
  local spec name type pids=() failed=0 i=0
  for spec in "$@"; do
    name="${spec%%:*}"
    type="NORMAL"
    [ "$spec" != "$name" ] && type="${spec#*:}"
    case "$type" in NORMAL | TRANSACTION | FIFO | DELAY) ;; *)
      log "unknown topic type \"$type\" for \"$name\" (NORMAL, TRANSACTION, FIFO or DELAY)"
      exit 2
      ;;
    esac
    [[ "$name" =~ ^[A-Za-z0-9_%|-]{1,127}$ ]] || {
      log "\"$name\" is not a valid topic name (letters, digits, _ - % |, at most 127)"
      exit 2
    }
    create_topic "$name" "$type" "$DIR/topic-$$-$i.log" &
    pids+=($!)
    i=$((i + 1))
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}" || ! grep -q success "$DIR/topic-$$-$i.log"; then
      log "creating topic ${*:$((i + 1)):1} failed:"
      cat "$DIR/topic-$$-$i.log" >&2
      failed=1
    fi
    rm -f "$DIR/topic-$$-$i.log"
  done
  return "$failed"
}

case "${1:-start}" in
fetch) fetch_jars ;;
start) start ;;
stop) stop ;;
status) answers ;;
topics)
  shift
  topics "$@"
  ;;
*)
  echo "usage: $0 start|stop|status|fetch|topics NAME[:TYPE]…" >&2
  exit 2
  ;;
esac
