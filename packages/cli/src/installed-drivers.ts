/**
 * The ONE way the CLI finds the drivers installed where it runs (`drivers`, `env list`, `env build`
 * and `matrix` all use it): every package of the dependency tree of the current project and of the
 * CLI whose manifest says `kind: "virtkit-driver"`, not a fixed list of names.
 */
import type { DiscoveredDriver, DriverPlugin } from "@virtkit/core";
import { CLI_DIR, DRIVER_LOAD_TIMEOUT_MS } from "./run-suite.js";

/** A driver that loads, with where its package can be resolved from. */
export interface LoadedDriver {
  readonly plugin: DriverPlugin;
  /** The package name: the spec to load it by. */
  readonly package: string;
  /** Its package directory: resolving `package` from there finds it even deep in the tree. */
  readonly dir: string;
}

/** Every driver package installed for the current project and the CLI, broken ones included (with their error). */
export async function installedDrivers(signal?: AbortSignal): Promise<DiscoveredDriver[]> {
  const { discoverDriverPlugins } = await import("@virtkit/core");
  // Each import bounded as a run's is: one package whose import never settles is listed broken
  // (timed out), instead of leaving Node nothing to wait on (a silent exit 13).
  return discoverDriverPlugins([process.cwd(), CLI_DIR], { timeoutMs: DRIVER_LOAD_TIMEOUT_MS, ...(signal !== undefined ? { signal } : {}) });
}

/**
 * The installed drivers that load, one per driver name (the first found wins: the project's own
 * before the CLI's), and the ones left out with why: a broken package, or a second package
 * offering a name already taken.
 */
export function loadedDrivers(found: readonly DiscoveredDriver[]): {
  loaded: LoadedDriver[];
  left: { package: string; version?: string; reason: string }[];
} {
  const loaded: LoadedDriver[] = [];
  const left: { package: string; version?: string; reason: string }[] = [];
  const byName = new Map<string, string>();
  for (const f of found) {
    const version = f.packageVersion !== undefined ? { version: f.packageVersion } : {};
    if (!f.plugin) {
      left.push({ package: f.package, ...version, reason: `does not load: ${firstLine(f.error?.message ?? "unknown error")}` });
      continue;
    }
    const earlier = byName.get(f.plugin.name);
    if (earlier !== undefined) {
      left.push({ package: f.package, ...version, reason: `driver name "${f.plugin.name}" already taken by ${earlier}` });
      continue;
    }
    byName.set(f.plugin.name, `${f.package}${f.packageVersion !== undefined ? `@${f.packageVersion}` : ""}`);
    loaded.push({ plugin: f.plugin, package: f.package, dir: f.dir });
  }
  return { loaded, left };
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? "";
}
