#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (root, no systemd) for virtkit and is safe to run again:
# system packages, a private libvirtd, the pinned pnpm, dependencies, and a build.
set -euo pipefail
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# -- system packages (Debian) --------------------------------------------------------------
APT_PACKAGES=(
  # libvirtd with the QEMU and test hypervisors, the CLI, headers for constants, and the
  # Python binding the libvirt benchmark compares against.
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev python3-libvirt
  qemu-system-x86 qemu-utils
  # Checks that do not trust a driver: `openssl passwd`/`openssl enc` (guest shadow entries, the
  # XenAPI agent's cipher) and debugfs (a marker read out of an image snapshot's file system).
  openssl e2fsprogs
  # Headless Chromium: the test that opens the support-matrix page.
  chromium
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# -- pnpm, pinned in package.json devEngines (corepack cannot verify pnpm's signature here,
# and with onFail "download" pnpm 12 refuses a frozen install: the registry has no @pnpm/exe for its pin) --
want=$(node -p "require('./package.json').devEngines.packageManager.version")
have=$(pnpm --version 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  log "installing pnpm $want with npm"
  npm install -g --silent "pnpm@$want"
fi

# -- dependencies and build -------------------------------------------------------------------
log "installing dependencies"
pnpm install --frozen-lockfile --reporter=silent
log "building"
pnpm -s build --output-logs=errors-only

# -- services -------------------------------------------------------------------------------
if [ -f scripts/libvirtd.sh ]; then
  log "starting the private libvirtd"
  bash scripts/libvirtd.sh start
fi
if [ -f scripts/docker.sh ] && [ "${VIRTKIT_NO_DOCKER:-}" != 1 ]; then
  # The nested-QEMU environment: a private Docker engine, and its image built locally (cached
  # under a tag derived from its inputs: seconds when nothing changed, minutes from nothing).
  log "starting the private Docker engine"
  bash scripts/docker.sh start
  log "building the nested-QEMU image (cached)"
  eval "$(bash scripts/docker.sh env)"
  node packages/cli/bin/run.js env build nested-qemu --driver libvirt
fi
log "ready"
