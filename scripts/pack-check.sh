#!/usr/bin/env bash
# Proves every package would publish as is: `pnpm pack` each one, install the tarballs into an
# empty npm project (dependencies from the registry), then load the fake and libvirt plugins
# through @virtkit/core and run `virtkit --help` from the installed CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for dir in packages/*/; do
  (cd "$dir" && pnpm pack --pack-destination "$work" >/dev/null)
done
mkdir "$work/app" && cd "$work/app"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "$work"/*.tgz 2>&1 | grep -v 'Unknown user config' || true
cat > check.mjs <<'JS'
import { createDriver, CONTRACT_VERSION } from "@virtkit/core";
const registry = await createDriver("fake", {});
const driver = registry.driver ?? registry;
if (driver.name !== "fake") throw new Error(`expected the fake driver, got ${driver.name}`);
const { plugin } = await import("@virtkit/driver-libvirt");
const { LibvirtConnection } = await import("@virtkit/libvirt-rpc");
const { SCENARIOS } = await import("@virtkit/conformance");
if (typeof LibvirtConnection?.open !== "function" || SCENARIOS.length === 0) throw new Error("incomplete exports");
console.log(`pack-check: contract ${CONTRACT_VERSION}; fake and ${plugin.name} ${plugin.version} load from tarballs; ${SCENARIOS.length} scenarios`);
JS
node check.mjs
npx --no-install virtkit --help >/dev/null
echo "pack-check: every package installs from its tarball and the virtkit CLI runs"
