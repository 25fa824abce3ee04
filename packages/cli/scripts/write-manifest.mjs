// Writes oclif.manifest.json from the compiled commands, so `virtkit --help` and command lookup
// read one JSON file instead of importing every command module.
/* global console */
import { rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Config } from "@oclif/core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const file = join(root, "oclif.manifest.json");
rmSync(file, { force: true });
const config = await Config.load({ root });
const plugin = config.getPluginsList().find((p) => p.root === config.root) ?? config.getPluginsList()[0];
writeFileSync(file, JSON.stringify(plugin.manifest, null, 2) + "\n");
console.log(`wrote ${file} (${Object.keys(plugin.manifest.commands).length} commands)`);
