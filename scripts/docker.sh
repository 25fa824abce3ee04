#!/usr/bin/env bash
# Private Docker engine for virtkit's nested-QEMU environment (testcontainers).
#
#   scripts/docker.sh start    install packages if missing, start dockerd (idempotent)
#   scripts/docker.sh stop     stop it (idempotent; containers it runs die with it)
#   scripts/docker.sh status   exit 0 when the engine answers
#   scripts/docker.sh env      print `export DOCKER_HOST=unix://...`
#
# No systemd here: dockerd runs by hand with its own data root, exec root (its own containerd
# lives there), pid file and socket under $VIRTKIT_DOCKER_DIR (default /tmp/virtkit-docker), so it
# never collides with a system engine. It runs with --iptables=false and --ip-forward=false: it
# touches no firewall rule or sysctl of the machine, and containers get no route out (published
# ports to 127.0.0.1 still work through docker-proxy, containers on one network reach each other).
# Image builds that need the apt mirror use the host's network for their RUN steps instead.
set -euo pipefail

DIR="${VIRTKIT_DOCKER_DIR:-/tmp/virtkit-docker}"
DATA_ROOT="${VIRTKIT_DOCKER_DATA_ROOT:-$DIR/data}"
EXEC_ROOT="$DIR/exec"
SOCK="$DIR/docker.sock"
PIDFILE="$DIR/dockerd.pid"
LOG="$DIR/dockerd.log"
# debootstrap makes the base image; docker.io brings dockerd, containerd and runc.
PACKAGES=(docker.io debootstrap)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" = 0 ] && return 0
  echo "docker.sh: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# The client that talks to our socket: Debian's when present (it matches the daemon), else any.
docker_cli() {
  local cli=/usr/bin/docker
  [ -x "$cli" ] || cli="$(command -v docker)"
  DOCKER_HOST="unix://$SOCK" "$cli" "$@"
}

answers() {
  [ -S "$SOCK" ] && docker_cli info --format '{{.ServerVersion}}' >/dev/null 2>&1
}

running() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

start() {
  install_packages
  if running && answers; then
    return 0
  fi
  if running; then
    # Up but not answering yet (a start in progress): wait for it below instead of starting twice.
    :
  else
    # A stale pid file or socket from a killed engine would make dockerd refuse to start.
    rm -f "$PIDFILE" "$SOCK"
    mkdir -p "$DIR" "$DATA_ROOT" "$EXEC_ROOT"
    local dockerd
    dockerd="$(command -v dockerd || echo /usr/sbin/dockerd)"
    setsid "$dockerd" \
      --host "unix://$SOCK" \
      --data-root "$DATA_ROOT" \
      --exec-root "$EXEC_ROOT" \
      --pidfile "$PIDFILE" \
      --iptables=false \
      --ip-forward=false \
      --storage-driver overlay2 \
      </dev/null >>"$LOG" 2>&1 &
  fi
  for _ in $(seq 1 300); do
    if answers; then
      return 0
    fi
    sleep 0.2
  done
  echo "docker.sh: dockerd did not answer within 60 s; last log lines:" >&2
  tail -n 30 "$LOG" >&2 || true
  exit 1
}

stop() {
  if [ -f "$PIDFILE" ]; then
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      # dockerd stops its containers (10 s grace each) and its containerd before exiting.
      for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" || true
    fi
  fi
  # dockerd leaves its default network namespace mounted under the exec root: unmount it so the
  # state directory can be removed and a later start begins clean.
  awk -v root="$EXEC_ROOT/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  rm -f "$PIDFILE" "$SOCK"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status)
    if running && answers; then
      echo "running (pid $(cat "$PIDFILE"), socket $SOCK, data root $DATA_ROOT)"
    else
      echo "stopped"
      exit 1
    fi
    ;;
  env)
    echo "export DOCKER_HOST=unix://$SOCK"
    ;;
  *)
    echo "usage: $0 start|stop|restart|status|env" >&2
    exit 2
    ;;
esac
