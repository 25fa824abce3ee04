#!/usr/bin/env bash
# The README's test command (`pnpm test`, run through scripts/with-services.sh): every package's
# tests through turbo, then the nested-QEMU tests of the libvirt driver on their own (real guests
# under TCG want the machine's two cores to themselves). Exits non-zero when either part failed.
set -uo pipefail
cd "$(dirname "$0")/.."
turbo run test --continue
rc=$?
if [ "${VIRTKIT_NESTED_QEMU:-}" = 1 ]; then
  turbo run test:nested --continue
  nested=$?
  [ $nested -ne 0 ] && rc=$nested
else
  echo "test.sh: nested-QEMU tests skipped: no Docker engine answered (bash scripts/docker.sh start)" >&2
fi
exit $rc
