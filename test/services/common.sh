# Sourced by kafka.sh, rocketmq.sh and pulsar.sh: what starting a Java broker from Apache's jars
# takes each time. The caller defines `log` (its messages carry the script's name).

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# fetch_jars_with_maven NAME POM LIBS: copy the broker's jars and their dependencies from Maven
# into LIBS, once. The pom's hash names the set of jars: changing a version fetches again.
fetch_jars_with_maven() {
  local name=$1 pom=$2 libs=$3 stamp
  stamp="$(sha256sum "$pom" | cut -c1-16)"
  if [ -f "$libs/.fetched-$stamp" ]; then return 0; fi
  log "fetching $name's jars with Maven (once; cached in ~/.m2 and $libs)"
  rm -rf "$libs"
  mkdir -p "$libs"
  # Its output only when it failed (even -q leaves colour codes behind).
  if ! mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime \
    >"$libs/.maven.log" 2>&1; then
    cat "$libs/.maven.log" >&2
    return 1
  fi
  touch "$libs/.fetched-$stamp"
}

# stop_by_pid_file FILE: SIGTERM the process FILE names, SIGKILL it after 30 s, remove FILE.
# Returns 1 when there is no FILE (nothing of ours to stop).
stop_by_pid_file() {
  local file=$1 pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$file"
}

# wait_for_broker SECONDS PID_FILE CHECK [ARG…]: run CHECK ARG… every half second until it
# succeeds (0), the process PID_FILE names has exited (1), or SECONDS have passed (2).
wait_for_broker() {
  local seconds=$1 pid_file=$2
  shift 2
  for _ in $(seq 1 $((seconds * 2))); do
    if "$@"; then return 0; fi
    if [ -f "$pid_file" ] && ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then return 1; fi
    sleep 0.5
  done
  return 2
}
