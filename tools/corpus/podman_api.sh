#!/usr/bin/env bash
# Docker-compatible Engine API served by podman (no Docker engine needed), for
# testing analyzers that talk to "the docker daemon" (docker SDK / docker CLI).
#   tools/corpus/podman_api.sh start     start `podman system service` on a unix socket (idempotent)
#   tools/corpus/podman_api.sh load      pull every corpus image from the local registry into podman storage
#   tools/corpus/podman_api.sh check     docker SDK: images.list(), images.pull(), image.save() round trip
#   tools/corpus/podman_api.sh stop      stop the service by its pid file
#   tools/corpus/podman_api.sh env       print DOCKER_HOST=... for clients
# Storage: vfs driver under /tmp/portscan-corpus/podman (no overlay/fuse needed).
# Pulling/saving/listing images works here; *running* containers does not in this
# sandbox (crun: setrlimit RLIMIT_NOFILE/RLIMIT_NPROC: Operation not permitted).
# Needs: apt-get install podman; pip install docker (for `check`).
# (From the team's corpus harness, shared/harness/; owned and documented here: tools/corpus/README.md.)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CORPUS_ROOT=${CORPUS_ROOT:-/tmp/portscan-corpus}
REGISTRY=${REGISTRY:-127.0.0.1:5000}
P=$CORPUS_ROOT/podman
SOCK=${PODMAN_SOCK:-$CORPUS_ROOT/podman.sock}
PIDFILE=$P/service.pid
export CONTAINERS_REGISTRIES_CONF=$P/registries.conf
PF=(--root "$P/storage" --runroot "$P/run" --storage-driver vfs)

setup() {
  command -v podman >/dev/null || { echo "podman_api.sh: podman not installed (apt-get install podman)" >&2; exit 1; }
  mkdir -p "$P"
  cat > "$CONTAINERS_REGISTRIES_CONF" <<CONF
unqualified-search-registries = []
[[registry]]
location = "$REGISTRY"
insecure = true
CONF
}

running() { [[ -s $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && [[ -S $SOCK ]]; }

start() {
  setup
  if running; then echo "podman API already running (pid $(cat "$PIDFILE")): DOCKER_HOST=unix://$SOCK"; return 0; fi
  rm -f "$SOCK"
  setsid podman "${PF[@]}" system service --time=0 "unix://$SOCK" >>"$P/service.log" 2>&1 </dev/null &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 100); do
    if curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
      echo "podman API up (pid $(cat "$PIDFILE")): DOCKER_HOST=unix://$SOCK"; return 0
    fi
    sleep 0.1
  done
  echo "podman_api.sh: service did not come up" >&2; tail -20 "$P/service.log" >&2; exit 1
}

stop() {
  if [[ -s $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    local pid; pid=$(cat "$PIDFILE"); kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "podman API stopped (pid $pid)"
  else
    echo "podman API not running"
  fi
  rm -f "$PIDFILE" "$SOCK"
}

load() {
  setup
  local repo tags t
  for repo in $(curl -fsS "http://$REGISTRY/v2/_catalog" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["repositories"]))'); do
    tags=$(curl -fsS "http://$REGISTRY/v2/$repo/tags/list" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["tags"] or []))')
    for t in $tags; do
      podman "${PF[@]}" pull -q --tls-verify=false "$REGISTRY/$repo:$t" >/dev/null && echo "pulled $REGISTRY/$repo:$t"
    done
  done
}

check() {
  start >/dev/null
  SOCK=$SOCK REGISTRY=$REGISTRY OUT=$P python3 - <<'PY'
import os, time, docker
sock, reg, out = os.environ["SOCK"], os.environ["REGISTRY"], os.environ["OUT"]
c = docker.DockerClient(base_url="unix://" + sock)
v = c.version()
print("engine:", v["Components"][0]["Name"], v["Version"], "api", v["ApiVersion"])
t = time.time(); img = c.images.pull(f"{reg}/corpus/jq", tag="latest")
print(f"pull {img.tags} {img.id[:19]} {time.time()-t:.2f}s")
print("images.list:", sorted(t for i in c.images.list() for t in i.tags))
t = time.time(); n = 0
with open(os.path.join(out, "jq-save.tar"), "wb") as f:
    for chunk in img.save(named=True):
        f.write(chunk); n += len(chunk)
print(f"image.save: {n} bytes in {time.time()-t:.2f}s -> {out}/jq-save.tar")
PY
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  load) load ;;
  check) check ;;
  env) echo "DOCKER_HOST=unix://$SOCK" ;;
  status) if running; then echo "running pid $(cat "$PIDFILE") DOCKER_HOST=unix://$SOCK"; else echo stopped; exit 3; fi ;;
  *) echo "usage: $0 [start|load|check|stop|env|status]" >&2; exit 2 ;;
esac
