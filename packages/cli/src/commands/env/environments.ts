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

/** An environment as `env list` and `conformance list --driver` show it. */
export interface EnvironmentSummary {
  readonly name: string;
  /** The matrix column it fills: `<driver>-<name>`. */
  readonly column: string;
  readonly description: string;
  /** Why it cannot run here; absent when it can. */
  readonly unavailable?: string;
  /** Whether `virtkit env build` has something to build for it. */
  readonly buildable: boolean;
}

/** The matrix column of an environment: `<driver>-<env>`. */
export function environmentColumn(plugin: DriverPlugin, environment: PluginEnvironment): string {
  return `${plugin.name}-${environment.name}`;
}

/** What an environment is, and whether it can run on this machine (asked of the plugin). */
export async function summarizeEnvironment(plugin: DriverPlugin, environment: PluginEnvironment): Promise<EnvironmentSummary> {
  const unavailable = await environment.unavailable(process.env, { timeoutMs: 10_000 });
  return {
    name: environment.name,
    column: environmentColumn(plugin, environment),
    description: environment.description,
    ...(unavailable !== undefined ? { unavailable } : {}),
    buildable: typeof environment.prepare === "function",
  };
}
