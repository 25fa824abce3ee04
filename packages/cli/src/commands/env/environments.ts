/** The named environments of every installed driver plugin (what `env list` shows and `env build` finds). */
import type { DriverPlugin, PluginEnvironment } from "@virtkit/core";
import { CLI_DIR, DRIVER_LOAD_TIMEOUT_MS } from "../../run-suite.js";

/** One environment with the plugin that offers it. */
export interface OfferedEnvironment {
  readonly plugin: DriverPlugin;
  readonly environment: PluginEnvironment;
}

/** The plugins of `specs` (default: every installed driver that loads, as `virtkit drivers` finds them). */
export async function loadPlugins(specs?: readonly string[]): Promise<DriverPlugin[]> {
  if (specs === undefined) {
    const { installedDrivers, loadedDrivers } = await import("../../installed-drivers.js");
    return loadedDrivers(await installedDrivers()).loaded.map((d) => d.plugin);
  }
  const { loadDriverPlugin } = await import("@virtkit/core");
  const out: DriverPlugin[] = [];
  // A driver asked for by name must load.
  for (const spec of specs) out.push(await loadDriverPlugin(spec, { paths: [CLI_DIR], timeoutMs: DRIVER_LOAD_TIMEOUT_MS }));
  return out;
}

/** Every environment of the drivers `specs` (default: every installed driver that loads). */
export async function offeredEnvironments(specs?: readonly string[]): Promise<OfferedEnvironment[]> {
  return environmentsOf(await loadPlugins(specs));
}

/** Every named environment of `plugins`, in order. */
export function environmentsOf(plugins: readonly DriverPlugin[]): OfferedEnvironment[] {
  return plugins.flatMap((plugin) => (plugin.environments ?? []).map((environment) => ({ plugin, environment })));
}

/**
 * Where a driver without named environments runs: `conformance run --driver X` (no `--env`) and
 * its matrix column use its default environment, the one its plugin brings or the kit's generic one.
 */
export interface DefaultEnvironmentSummary {
  readonly driver: string;
  /** The matrix column it fills: the driver's name. */
  readonly column: string;
  /** `plugin`: the plugin's own `conformanceEnvironment`; `generic`: the kit's one-host environment. */
  readonly source: "plugin" | "generic";
  readonly description: string;
}

/** The default environment of a plugin that names none (said from the manifest, nothing is built). */
export function defaultEnvironmentSummary(plugin: DriverPlugin): DefaultEnvironmentSummary {
  const own = typeof plugin.conformanceEnvironment === "function";
  return {
    driver: plugin.name,
    column: plugin.name,
    source: own ? "plugin" : "generic",
    description: own
      ? `${plugin.name} offers no named environments (no --env): \`virtkit conformance run --driver ${plugin.name}\` and the matrix column ${plugin.name} use its default environment, the one its plugin brings (its conformanceEnvironment), which needs no --env`
      : `${plugin.name} offers no named environments (no --env): \`virtkit conformance run --driver ${plugin.name}\` and the matrix column ${plugin.name} use the kit's generic environment (one host, no guest login, no fault controls; give the driver's --option ...)`,
  };
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
  /** What a run would build before it starts (asked only where the environment is available). */
  readonly toBuild?: string;
}

/** The matrix column of an environment: `<driver>-<env>`. */
export function environmentColumn(plugin: DriverPlugin, environment: PluginEnvironment): string {
  return `${plugin.name}-${environment.name}`;
}

/** What an environment is, and whether it can run on this machine (asked of the plugin). */
export async function summarizeEnvironment(plugin: DriverPlugin, environment: PluginEnvironment): Promise<EnvironmentSummary> {
  const unavailable = await environment.unavailable(process.env, { timeoutMs: 10_000 });
  // A question to the engine that fails says nothing about whether the environment runs.
  const toBuild =
    unavailable === undefined ? await environment.toBuild?.(process.env, { timeoutMs: 10_000 }).catch(() => undefined) : undefined;
  return {
    name: environment.name,
    column: environmentColumn(plugin, environment),
    description: environment.description,
    ...(unavailable !== undefined ? { unavailable } : {}),
    buildable: typeof environment.prepare === "function",
    ...(toBuild !== undefined ? { toBuild } : {}),
  };
}
