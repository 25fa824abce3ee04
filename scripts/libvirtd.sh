#!/usr/bin/env bash
# Private libvirtd for virtkit's integration tests and benchmarks.
#
#   scripts/libvirtd.sh start    install packages if missing, start the daemon (idempotent)
#   scripts/libvirtd.sh stop     stop it (idempotent)
#   scripts/libvirtd.sh status   exit 0 when running (and lists any crash-and-restart of the daemon)
#   scripts/libvirtd.sh restarts the daemon's crash-and-restart lines (it is restarted like systemd would)
#   scripts/libvirtd.sh env      print `export VIRTKIT_LIBVIRT_SOCKET=...` / `VIRTKIT_LIBVIRT_TCP=...`
#                                (and VIRTKIT_LIBVIRT_TLS / VIRTKIT_LIBVIRT_PKI when TLS is set up)
#
# No systemd here: the daemon runs by hand, in its own mount namespace (when `unshare` works) so its
# /etc/libvirt, /run/libvirt and /var/lib/libvirt cannot collide with a system daemon. Its sockets
# live under $VIRTKIT_LIBVIRTD_DIR (default /tmp/virtkit-libvirtd), outside the bind mounts.
set -euo pipefail

DIR="${VIRTKIT_LIBVIRTD_DIR:-/tmp/virtkit-libvirtd}"
TCP_PORT="${VIRTKIT_LIBVIRTD_TCP_PORT:-16519}"
TLS_PORT="${VIRTKIT_LIBVIRTD_TLS_PORT:-$((TCP_PORT + 1))}"
PKI="$DIR/pki"
SOCK="$DIR/run/libvirt-sock"
PIDFILE="$DIR/libvirtd.pid"
CONF="$DIR/libvirtd.conf"
LOG="$DIR/libvirtd.log"
SUPERVISOR="$DIR/supervisor.pid"
# One line per crash-and-restart of the daemon (see start()).
RESTARTS="$DIR/restarts.log"
PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils libvirt-dev python3-libvirt)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" = 0 ] && return 0
  echo "libvirtd.sh: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >&2
}

running() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ -S "$SOCK" ]
}

# A throwaway CA, server and client certificate (with the key usages libvirt's TLS checks demand),
# so the TLS transport is tested against the real daemon. Skipped when openssl is missing.
make_pki() {
  command -v openssl >/dev/null || return 0
  [ -f "$PKI/clientkey.pem" ] && return 0
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=virtkit test CA" \
      -keyout cakey.pem -out cacert.pem \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    for who in server client; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=${who}.virtkit.test" -keyout "${who}key.pem" -out "$who.csr" 2>/dev/null
      if [ "$who" = server ]; then
        printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
          "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$who.ext"
      else
        printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
          "extendedKeyUsage=clientAuth" >"$who.ext"
      fi
      openssl x509 -req -in "$who.csr" -CA cacert.pem -CAkey cakey.pem -CAcreateserial -days 3650 \
        -extfile "$who.ext" -out "${who}cert.pem" 2>/dev/null
    done
    rm -f ./*.csr ./*.ext ./*.srl
  )
}

write_config() {
  mkdir -p "$DIR/run" "$DIR/etc" "$DIR/state/run" "$DIR/state/lib" "$DIR/state/cache" "$DIR/state/log"
  # A stable, unique host UUID per daemon directory (libvirt refuses all-zero/duplicate ids for migration).
  [ -f "$DIR/host-uuid" ] || cat /proc/sys/kernel/random/uuid >"$DIR/host-uuid"
  cat >"$CONF" <<EOF
unix_sock_dir = "$DIR/run"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
listen_tls = $([ -f "$PKI/servercert.pem" ] && echo 1 || echo 0)
tls_port = "$TLS_PORT"
auth_tls = "none"
key_file = "$PKI/serverkey.pem"
cert_file = "$PKI/servercert.pem"
ca_file = "$PKI/cacert.pem"
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "$TCP_PORT"
auth_tcp = "none"
host_uuid = "$(cat "$DIR/host-uuid")"
max_clients = 512
max_workers = 20
max_client_requests = 64
log_outputs = "3:file:$DIR/libvirtd-debug.log"
EOF
  # Becomes /etc/libvirt inside the daemon's namespace.
  cp "$CONF" "$DIR/etc/libvirtd.conf"
  cat >"$DIR/etc/qemu.conf" <<'EOF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
namespaces = []
cgroup_controllers = []
EOF
  : >"$DIR/etc/libvirt.conf"
}

ensure_qemu_user() {
  # The qemu driver resolves its compiled-in default user before reading qemu.conf.
  getent group libvirt-qemu >/dev/null || as_root groupadd -r libvirt-qemu
  getent passwd libvirt-qemu >/dev/null ||
    as_root useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
}

start() {
  install_packages
  ensure_qemu_user
  if running; then
    return 0
  fi
  # A stale pid file or socket from a killed daemon would make libvirtd refuse to start.
  rm -f "$PIDFILE" "$SOCK" "$DIR/run/libvirt-sock-ro" "$DIR/run/libvirt-admin-sock"
  make_pki
  write_config
  local libvirtd
  libvirtd="$(command -v libvirtd || echo /usr/sbin/libvirtd)"
  rm -f "$DIR/stopping"
  # Like systemd's Restart=on-failure: a daemon that crashes (libvirtd 9.0 has been seen to segfault
  # when many clients drop at once) is started again, and the restart is logged for the run to report.
  : >"$RESTARTS"
  local supervise="echo \$\$ >'$SUPERVISOR'
n=0
while :; do
  '$libvirtd' --listen --timeout 0 -f '$CONF' -p '$PIDFILE'
  rc=\$?
  [ -f '$DIR/stopping' ] && exit 0
  n=\$((n + 1))
  [ \$n -gt 20 ] && { echo \"virtkit: libvirtd keeps exiting (status \$rc); giving up\" >>'$RESTARTS'; exit 1; }
  echo \"virtkit: libvirtd exited with status \$rc at \$(date -u +%FT%TZ); restarting\" >>'$RESTARTS'
  rm -f '$PIDFILE' '$SOCK'
  sleep 1
done"
  local inner="mount --make-rprivate / 2>/dev/null || true
mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt
mount --bind '$DIR/etc' /etc/libvirt
mount --bind '$DIR/state/run' /run/libvirt
mount --bind '$DIR/state/lib' /var/lib/libvirt
mount --bind '$DIR/state/cache' /var/cache/libvirt
mount --bind '$DIR/state/log' /var/log/libvirt
$supervise"
  if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
    setsid unshare -m sh -c "$inner" </dev/null >>"$LOG" 2>&1 &
  else
    # Without namespaces, share the host's paths (fine when no other daemon runs).
    setsid sh -c "$supervise" </dev/null >>"$LOG" 2>&1 &
  fi
  for _ in $(seq 1 100); do
    if running; then
      # Require it to stay up briefly: a failing driver init exits just after creating the socket.
      sleep 0.3
      running && return 0
    fi
    sleep 0.1
  done
  echo "libvirtd.sh: daemon did not come up; last log lines:" >&2
  tail -n 20 "$LOG" >&2 || true
  exit 1
}

stop() {
  touch "$DIR/stopping" 2>/dev/null || true
  if [ -f "$SUPERVISOR" ]; then
    local sup
    sup="$(cat "$SUPERVISOR" 2>/dev/null || true)"
    [ -n "$sup" ] && kill "$sup" 2>/dev/null || true
    rm -f "$SUPERVISOR"
  fi
  if [ -f "$PIDFILE" ]; then
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" || true
    fi
  fi
  rm -f "$PIDFILE" "$SOCK"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status)
    if running; then echo "running (pid $(cat "$PIDFILE"), socket $SOCK, tcp 127.0.0.1:$TCP_PORT)"; else echo "stopped"; exit 1; fi
    if [ -s "$RESTARTS" ]; then cat "$RESTARTS"; fi
    ;;
  restarts)
    # Crash-and-restart lines since the daemon was started (empty: none).
    cat "$RESTARTS" 2>/dev/null || true
    ;;
  env)
    echo "export VIRTKIT_LIBVIRT_SOCKET=$SOCK"
    echo "export VIRTKIT_LIBVIRT_TCP=127.0.0.1:$TCP_PORT"
    if [ -f "$PKI/clientcert.pem" ]; then
      echo "export VIRTKIT_LIBVIRT_TLS=127.0.0.1:$TLS_PORT"
      echo "export VIRTKIT_LIBVIRT_PKI=$PKI"
    fi
    ;;
  *)
    echo "usage: $0 start|stop|restart|status|env" >&2
    exit 2
    ;;
esac
