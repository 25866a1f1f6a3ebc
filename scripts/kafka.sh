#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker (KRaft, broker+controller) for tests that
# claim delivery guarantees.
#
#   scripts/kafka.sh start [--fresh]  fetch the jars (once), format storage (once), start,
#                                     wait until ready (exit 0 if already running);
#                                     --fresh wipes the data dir first
#   scripts/kafka.sh stop             SIGTERM, wait up to 60 s, then SIGKILL
#   scripts/kafka.sh kill             SIGKILL at once (outage tests); data is kept
#   scripts/kafka.sh status           exit 0 iff running and ready (1: running, not
#                                     ready; 3: not running)
#   scripts/kafka.sh bootstrap        print 127.0.0.1:<port>
#   scripts/kafka.sh sasl-env         print KFN_TEST_KAFKA_SASL=127.0.0.1:<sasl port> and
#                                     KFN_TEST_KAFKA_CA=<ca.pem> (for `env $(...) cargo test`)
#   scripts/kafka.sh logs [-f|N]      last N (200) lines of the broker log, or follow it
#
# The broker has two client listeners: PLAINTEXT on the port, and SASL_SSL on port+2
# (SCRAM-SHA-512, user `kfn`, password `kfn-test-secret`) with a certificate for
# 127.0.0.1 signed by a CA made for this data dir with keytool (DATA/tls/ca.pem); the
# SCRAM user is created when the storage is formatted.
#
# Environment:
#   KFN_KAFKA_PORT             PLAINTEXT port (19092); the controller uses KFN_KAFKA_CONTROLLER_PORT
#                              (default port+1, so 19093) and SASL_SSL KFN_KAFKA_SASL_PORT (port+2)
#   KFN_KAFKA_DATA             data dir (scripts/.cache/kafka-data): meta.properties, the
#                              topic logs, server.properties, server.log, kafka.pid
#   KFN_KAFKA_VERSION          Kafka version to fetch from Maven Central (4.4.0)
#   KFN_KAFKA_START_TIMEOUT    seconds `start` waits for readiness (120)
#   KFN_KAFKA_HEAP             heap flags (-Xms256m -Xmx768m)
#   KFN_KAFKA_JAVA_OPTS        extra JVM flags
#
# Needs java (17+, with keytool) and, for the one-time fetch, mvn: the jars come from Maven Central into
# scripts/.cache/kafka-<version>/libs (git-ignored). Readiness is checked with kcat if it
# is installed, else with a small Java check (scripts/kafka/Ready.java).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TPL=$ROOT/scripts/kafka
CACHE=$ROOT/scripts/.cache
VERSION=${KFN_KAFKA_VERSION:-4.4.0}
PORT=${KFN_KAFKA_PORT:-19092}
CONTROLLER_PORT=${KFN_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
SASL_PORT=${KFN_KAFKA_SASL_PORT:-$((PORT + 2))}
LIBS=$CACHE/kafka-$VERSION/libs
DATA=$(realpath -m "${KFN_KAFKA_DATA:-$CACHE/kafka-data}")
START_TIMEOUT=${KFN_KAFKA_START_TIMEOUT:-120}
STOP_TIMEOUT=60
HEAP=${KFN_KAFKA_HEAP:--Xms256m -Xmx768m}
HOST=127.0.0.1
BOOTSTRAP=$HOST:$PORT
PIDFILE=$DATA/kafka.pid
LOG=$DATA/server.log
PROPS=$DATA/server.properties
LOG_DIRS=$DATA/kraft-logs
TLS=$DATA/tls
# Test-only credentials of the SASL_SSL listener (a broker bound to 127.0.0.1).
SASL_USER=kfn
SASL_PASSWORD=kfn-test-secret
STORE_PASSWORD=kfn-test-store

say() { echo "kafka: $*"; }
die() { echo "kafka: error: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found. $2"; }
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
tail_log() {
  if [ -f "$LOG" ]; then
    echo "---- last 30 lines of $LOG ----" >&2
    tail -n 30 "$LOG" >&2
    echo "----" >&2
  fi
}

for p in "$PORT" "$CONTROLLER_PORT" "$SASL_PORT"; do
  [[ $p =~ ^[0-9]+$ ]] && [ "$p" -gt 0 ] && [ "$p" -lt 65536 ] || die "bad port '$p' (KFN_KAFKA_PORT)"
done

# The broker's pid if it is running (a live process whose command line is this data
# dir's kafka.Kafka), else nothing; returns 1 when not running.
broker_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  local cmd
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"kafka.Kafka $PROPS"* ]] || return 1
  alive "$pid" || return 1
  echo "$pid"
}

# The process exists and is not a zombie. (Not broker_pid: right after the fork the
# child's command line is still this script's, until it execs java.)
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # the state follows "(comm) "
  [ -n "$stat" ] && [ "${stat:0:1}" != Z ]
}

# Metadata answers within <seconds> (default: one try) and lists this broker (so it is
# registered and unfenced). With kcat if installed, else scripts/kafka/Ready.java (one JVM
# that polls, so it is run with a longer window), else just an open port.
is_ready() {
  local window=${1:-0} libs
  if command -v kcat >/dev/null 2>&1; then
    local md
    md=$(kcat -b "$BOOTSTRAP" -L -m 3 2>/dev/null) || return 1
    [[ $md == *"broker 1 at $BOOTSTRAP"* ]]
  elif libs=$(any_libs); then
    java -Dorg.apache.logging.log4j.level=OFF -Dlog4j2.StatusLogger.level=OFF \
      -cp "$libs/*" "$TPL/Ready.java" "$BOOTSTRAP" "$window" >/dev/null 2>&1
  else
    port_in_use "$PORT"
  fi
}

# This version's jars, else any fetched version's (the client side of Ready.java only).
any_libs() {
  local d
  for d in "$LIBS" "$CACHE"/kafka-*/libs; do
    compgen -G "$d/kafka-clients-*.jar" >/dev/null && { echo "$d"; return 0; }
  done
  return 1
}

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# After SIGKILL the main thread is gone a moment before the kernel closes the sockets of
# the other threads: wait (up to <seconds>) until neither port accepts connections.
wait_ports_free() {
  local deadline=$((SECONDS + $1))
  while port_in_use "$PORT" || port_in_use "$CONTROLLER_PORT" || port_in_use "$SASL_PORT"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

fetch() {
  if compgen -G "$LIBS/kafka_2.13-$VERSION.jar" >/dev/null; then return 0; fi
  need mvn "Maven is needed once, to fetch Kafka's jars from Maven Central. Install it: apt-get install -y maven"
  say "fetching Kafka $VERSION jars from Maven Central (once)..."
  local t0 tmp
  t0=$(now)
  mkdir -p "$CACHE/kafka-$VERSION"
  tmp=$(mktemp -d "$CACHE/kafka-$VERSION/libs.tmp.XXXXXX")
  if ! mvn -B -q -Dstyle.color=never -f "$TPL/pom.xml" \
      -Dkafka.version="$VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs" \
      >"$tmp/mvn.log" 2>&1; then
    tail -n 30 "$tmp/mvn.log" >&2
    rm -rf "$tmp"
    die "fetching Kafka $VERSION from Maven Central failed (see above)"
  fi
  compgen -G "$tmp/libs/kafka_2.13-$VERSION.jar" >/dev/null || { rm -rf "$tmp"; die "mvn fetched no kafka_2.13-$VERSION.jar"; }
  # Atomic: an interrupted fetch never leaves a half-filled libs/ behind.
  if ! mv -T "$tmp/libs" "$LIBS" 2>/dev/null; then
    compgen -G "$LIBS/kafka_2.13-$VERSION.jar" >/dev/null || { rm -rf "$tmp"; die "could not move jars into $LIBS"; }
  fi
  rm -rf "$tmp"
  say "fetched $(ls "$LIBS" | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) in $(since "$t0") s"
}

write_props() {
  sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" -e "s|@LOG_DIRS@|$LOG_DIRS|g" \
    -e "s|@SASL_PORT@|$SASL_PORT|g" -e "s|@TLS@|$TLS|g" -e "s|@STORE_PASSWORD@|$STORE_PASSWORD|g" \
    "$TPL/server.properties.in" >"$PROPS"
}

# The SASL_SSL listener's TLS material, once per data dir: a CA, and a broker key and
# certificate for 127.0.0.1 signed by it (keytool, from the JDK). Clients trust
# tls/ca.pem.
make_tls() {
  [ -f "$TLS/broker.p12" ] && [ -f "$TLS/ca.pem" ] && return 0
  need keytool "keytool (part of Java) makes the test CA. Install Java: apt-get install -y openjdk-17-jre-headless"
  say "making a test CA and a broker certificate for 127.0.0.1 (once) in $TLS..."
  rm -rf "$TLS.tmp"
  mkdir -p "$TLS.tmp"
  local kt=(keytool -storetype PKCS12 -storepass "$STORE_PASSWORD" -keypass "$STORE_PASSWORD")
  local san="SAN=ip:127.0.0.1,dns:localhost" out
  if ! out=$(
    cd "$TLS.tmp" &&
      "${kt[@]}" -genkeypair -alias ca -dname "CN=kfn test CA" -ext bc:c -keyalg RSA -keysize 2048 \
        -validity 3650 -keystore ca.p12 2>&1 &&
      "${kt[@]}" -exportcert -rfc -alias ca -keystore ca.p12 -file ca.pem 2>&1 &&
      "${kt[@]}" -genkeypair -alias broker -dname "CN=127.0.0.1" -ext "$san" -keyalg RSA -keysize 2048 \
        -validity 3650 -keystore broker.p12 2>&1 &&
      "${kt[@]}" -certreq -alias broker -keystore broker.p12 -file broker.csr 2>&1 &&
      "${kt[@]}" -gencert -alias ca -keystore ca.p12 -infile broker.csr -outfile broker.pem -rfc \
        -ext "$san" -validity 3650 2>&1 &&
      "${kt[@]}" -importcert -noprompt -alias ca -file ca.pem -keystore broker.p12 2>&1 &&
      "${kt[@]}" -importcert -noprompt -alias broker -file broker.pem -keystore broker.p12 2>&1
  ); then
    echo "$out" >&2
    rm -rf "$TLS.tmp"
    die "making the test certificates with keytool failed"
  fi
  rm -rf "$TLS"
  mv "$TLS.tmp" "$TLS"
}

# A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with
# '-' (what `kafka-storage random-uuid` gives, without starting a JVM for it).
cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [ "${id:0:1}" != - ] && { echo "$id"; return; }
  done
}

format() {
  [ -f "$LOG_DIRS/meta.properties" ] && return 0
  say "formatting KRaft storage in $DATA..."
  local out
  if ! out=$(java -Xmx256m -Dlog4j2.configurationFile="$TPL/log4j2.properties" -cp "$LIBS/*" \
      kafka.tools.StorageTool format --cluster-id "$(cluster_id)" --config "$PROPS" \
      --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=\"$SASL_PASSWORD\"]" 2>&1); then
    echo "$out" >&2
    die "formatting KRaft storage failed"
  fi
  touch "$DATA/scram-user"
}

wait_ready() { # <t0> <pid> [ours]: kill it on timeout only if this call started it
  local t0=$1 pid=$2 ours=${3:-} deadline=$((SECONDS + START_TIMEOUT)) window=0
  command -v kcat >/dev/null 2>&1 || window=5
  while :; do
    if ! alive "$pid"; then
      tail_log
      rm -f "$PIDFILE"
      die "the broker exited during startup (log: $LOG)"
    fi
    if is_ready "$window"; then
      say "ready on $BOOTSTRAP in $(since "$t0") s (pid $pid)"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail_log
      [ -n "$ours" ] || die "the broker (pid $pid) was not ready on $BOOTSTRAP within ${START_TIMEOUT} s; left it running (log: $LOG)"
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PIDFILE"
      die "the broker was not ready on $BOOTSTRAP within ${START_TIMEOUT} s; killed it (log: $LOG)"
    fi
    sleep 0.5
  done
}

lock() { # serialize start/stop/kill on one data dir
  if command -v flock >/dev/null 2>&1; then
    mkdir -p "$(dirname "$DATA")"
    exec 9>"$DATA.lock"
    flock 9
  fi
}

cmd_start() {
  local fresh=0
  for a in "$@"; do
    case $a in
      --fresh) fresh=1 ;;
      *) die "unknown option '$a' (usage: scripts/kafka.sh start [--fresh])" ;;
    esac
  done
  need java "Java 17+ is needed. Install it: apt-get install -y openjdk-17-jre-headless"
  lock
  local pid t0
  if pid=$(broker_pid); then
    [ "$fresh" = 0 ] || die "--fresh: the broker is running (pid $pid); run 'scripts/kafka.sh stop' first"
    if is_ready; then
      say "already running (pid $pid) on $BOOTSTRAP"
      return 0
    fi
    say "already starting (pid $pid); waiting until it is ready..."
    wait_ready "$(now)" "$pid"
    return 0
  fi
  rm -f "$PIDFILE"
  wait_ports_free 5 ||
    die "port $HOST:$PORT or $CONTROLLER_PORT is already in use by another process (set KFN_KAFKA_PORT to move the broker)"
  fetch
  if [ "$fresh" = 1 ] && [ -e "$DATA" ]; then
    say "--fresh: wiping $DATA"
    rm -rf "$DATA"
  fi
  mkdir -p "$DATA"
  make_tls
  write_props
  format
  [ -f "$DATA/scram-user" ] ||
    say "note: $DATA was formatted before the SASL_SSL listener had a user; run 'scripts/kafka.sh stop && scripts/kafka.sh start --fresh' for the SASL tests"
  [ -f "$LOG" ] && mv -f "$LOG" "$LOG.1"
  say "starting (log: $LOG)..."
  t0=$(now)
  # setsid: its own session, so a signal to the caller's process group leaves it alone.
  # (No fork: in a script without job control the child is not a group leader, so $!
  # stays the pid that execs into java.)
  # shellcheck disable=SC2086 # HEAP and KFN_KAFKA_JAVA_OPTS are lists of flags
  nohup setsid java $HEAP ${KFN_KAFKA_JAVA_OPTS:-} \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$TPL/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" >"$LOG" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  wait_ready "$t0" "$pid" ours
}

cmd_stop() {
  lock
  local pid deadline
  if ! pid=$(broker_pid); then
    rm -f "$PIDFILE"
    say "not running"
    return 0
  fi
  say "stopping (pid $pid)..."
  local t0
  t0=$(now)
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while broker_pid >/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "still running after ${STOP_TIMEOUT} s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  while broker_pid >/dev/null; do sleep 0.1; done
  wait_ports_free 10 || true
  rm -f "$PIDFILE"
  say "stopped in $(since "$t0") s"
}

cmd_kill() {
  lock
  local pid
  if ! pid=$(broker_pid); then
    rm -f "$PIDFILE"
    say "not running"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  while broker_pid >/dev/null; do sleep 0.05; done
  wait_ports_free 10 || true
  rm -f "$PIDFILE"
  say "killed (SIGKILL, pid $pid)"
}

cmd_status() {
  local pid
  if ! pid=$(broker_pid); then
    say "not running"
    return 3
  fi
  if is_ready; then
    say "running (pid $pid), ready on $BOOTSTRAP"
    return 0
  fi
  say "running (pid $pid) but not ready on $BOOTSTRAP"
  return 1
}

cmd_logs() {
  [ -f "$LOG" ] || die "no log yet ($LOG)"
  case ${1:-} in
    -f) exec tail -n 50 -F "$LOG" ;;
    '') tail -n 200 "$LOG" ;;
    *) [[ $1 =~ ^[0-9]+$ ]] || die "usage: scripts/kafka.sh logs [-f|N]"; tail -n "$1" "$LOG" ;;
  esac
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  kill) cmd_kill ;;
  status) cmd_status ;;
  bootstrap) echo "$BOOTSTRAP" ;;
  sasl-env)
    [ -f "$TLS/ca.pem" ] || die "no test CA yet ($TLS/ca.pem): run 'scripts/kafka.sh start' first"
    echo "KFN_TEST_KAFKA_SASL=$HOST:$SASL_PORT"
    echo "KFN_TEST_KAFKA_CA=$TLS/ca.pem"
    ;;
  logs) shift; cmd_logs "$@" ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
