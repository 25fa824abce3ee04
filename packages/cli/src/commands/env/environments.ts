/** The named environments of every installed driver plugin (what `env list` shows and `env build` finds). */
import type { DriverPlugin, PluginEnvironment } from "@virtkit/core";
import { CLI_DIR } from "../../run-suite.js";

/** One environment with the plugin that offers it. */
export interface OfferedEnvironment {
  readonly plugin: DriverPlugin;
  readonly environment: PluginEnvironment;
}

/** Every environment of the drivers `specs` (default: every known driver that loads). */
export async function offeredEnvironments(specs?: readonly string[]): Promise<OfferedEnvironment[]> {
  const { KNOWN_DRIVERS, loadDriverPlugin } = await import("@virtkit/core");
  const out: OfferedEnvironment[] = [];
  for (const spec of specs ?? Object.keys(KNOWN_DRIVERS)) {
    let plugin: DriverPlugin;
    try {
      plugin = await loadDriverPlugin(spec, { paths: [CLI_DIR] });
    } catch (err) {
      // A driver asked for by name must load; the known list only shows what is installed.
      if (specs !== undefined) throw err;
      continue;
    }
    for (const environment of plugin.environments ?? []) out.push({ plugin, environment });
  }
  return out;
}
