#!/usr/bin/env bash
# Local OCI/Docker distribution (v2) registry on loopback, for the container-image corpus.
#   tools/corpus/registry.sh [start]   start in the background (idempotent), wait until /v2/ answers
#   tools/corpus/registry.sh stop      stop it by the pid recorded in the pid file
#   tools/corpus/registry.sh status    print whether it runs
# Needs the Debian package docker-registry (apt-get install docker-registry).
# Data: /tmp/portscan-corpus/registry (override with CORPUS_ROOT).
# (From the team's corpus harness, shared/harness/; owned and documented here: tools/corpus/README.md.)
set -euo pipefail

CORPUS_ROOT=${CORPUS_ROOT:-/tmp/portscan-corpus}
REGISTRY_ADDR=${REGISTRY_ADDR:-${REGISTRY:-127.0.0.1:5000}}  # build_corpus.sh and podman_api.sh read REGISTRY
STORE="$CORPUS_ROOT/registry"
CONF="$CORPUS_ROOT/registry-config.yml"
PIDFILE="$CORPUS_ROOT/registry.pid"
LOG="$CORPUS_ROOT/registry.log"

case "$REGISTRY_ADDR" in
  127.*:*|localhost:*|\[::1\]:*) ;;
  *) echo "registry.sh: refusing non-loopback address $REGISTRY_ADDR" >&2; exit 2 ;;
esac

running() {
  [[ -s "$PIDFILE" ]] || return 1
  local pid; pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null || return 1
  # make sure the pid is really our registry, not a recycled pid
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "docker-registry serve $CONF"
}

write_config() {
  mkdir -p "$STORE"
  cat > "$CONF" <<YML
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
  fields:
    service: portscan-corpus-registry
storage:
  filesystem:
    rootdirectory: $STORE
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
YML
}

start() {
  command -v docker-registry >/dev/null || { echo "registry.sh: docker-registry not installed (apt-get install docker-registry)" >&2; exit 1; }
  if running; then echo "registry already running (pid $(cat "$PIDFILE")) on $REGISTRY_ADDR"; return 0; fi
  write_config
  # OTEL/etc not used by 2.8; keep environment from overriding config
  setsid docker-registry serve "$CONF" >>"$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 100); do
    if curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
      echo "registry started (pid $(cat "$PIDFILE")) on http://$REGISTRY_ADDR, storage $STORE"
      return 0
    fi
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "registry.sh: registry failed to start; last log lines:" >&2
  tail -20 "$LOG" >&2
  exit 1
}

stop() {
  if [[ ! -s "$PIDFILE" ]]; then echo "registry not running (no pid file)"; return 0; fi
  local pid; pid=$(cat "$PIDFILE")
  if running; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" || true
    echo "registry stopped (pid $pid)"
  else
    echo "registry not running (stale pid file)"
  fi
  rm -f "$PIDFILE"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running pid $(cat "$PIDFILE") on $REGISTRY_ADDR"; else echo "stopped"; exit 3; fi ;;
  restart) stop; start ;;
  *) echo "usage: $0 [start|stop|status|restart]" >&2; exit 2 ;;
esac
