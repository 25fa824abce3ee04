#!/usr/bin/env bash
# Runs a command with the environment of the services scripts/setup.sh started (the private
# libvirtd's socket and TCP address), so integration tests find them. Tests that need a service
# that is not running skip with the reason.
set -euo pipefail
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
cd "$(dirname "$0")/.."
if [ -f scripts/libvirtd.sh ] && bash scripts/libvirtd.sh status >/dev/null 2>&1; then
  eval "$(bash scripts/libvirtd.sh env)"
fi
exec "$@"
