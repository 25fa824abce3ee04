#!/usr/bin/env bash
# Runs a command with the environment of the services scripts/setup.sh started (the private
# libvirtd's socket and TCP address, the private Docker engine), so integration tests find them. Tests that need a service
# that is not running skip with the reason.
# `--in DIR` first: the command runs in DIR, not at the repository's root (`pnpm virtkit` passes the
# directory pnpm was called from, INIT_CWD, so `--driver ./my-driver.js` means what the caller typed).
set -euo pipefail
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
run_in=
if [ "${1:-}" = --in ]; then
  run_in=$2
  shift 2
fi
cd "$(dirname "$0")/.."
before=0
if [ -f scripts/libvirtd.sh ] && bash scripts/libvirtd.sh status >/dev/null 2>&1; then
  eval "$(bash scripts/libvirtd.sh env)"
  before=$(bash scripts/libvirtd.sh restarts | wc -l)
fi
# The private Docker engine (scripts/docker.sh): testcontainers finds it, the nested-QEMU tests run.
if [ -f scripts/docker.sh ] && bash scripts/docker.sh status >/dev/null 2>&1; then
  eval "$(bash scripts/docker.sh env)"
  export VIRTKIT_NESTED_QEMU="${VIRTKIT_NESTED_QEMU:-1}"
fi
set +e
if [ -n "$run_in" ]; then
  (cd "$run_in" && "$@")
else
  "$@"
fi
rc=$?
# A daemon crash explains a burst of failures: say so where the run's output is read.
if [ -f scripts/libvirtd.sh ]; then
  crashes=$(bash scripts/libvirtd.sh restarts | tail -n +$((before + 1)))
  [ -n "$crashes" ] && printf 'with-services: the private libvirtd crashed during this run and was restarted:\n%s\n' "$crashes" >&2
fi
exit $rc
