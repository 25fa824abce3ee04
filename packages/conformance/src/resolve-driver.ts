/**
 * From a driver spec (`fake`, a package, a path) and `key=value` options to what a run needs: the
 * plugin, the validated options, the environment factory (the plugin's own, or a generic one)
 * and the descriptor for reports.
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import {
  DriverRegistry,
  InMemoryImageService,
  MemoryLogger,
  loadDriverPlugin,
  parseOptionPairs,
  redactOptions,
  validatePluginOptions,
  type ComputeDriver,
  type ConformanceEnvironmentFactory,
  type DriverPlugin,
} from "@virtkit/core";
import { computeServiceFactory } from "./compute-service-adapter.js";
import type { AdminPasswordServiceFactory } from "./scenario.js";
import type { DriverDescriptor } from "./types.js";

/** A driver ready to be tested. */
export interface ResolvedDriver {
  readonly plugin: DriverPlugin;
  /** Options after the plugin's schema. */
  readonly options: unknown;
  readonly descriptor: DriverDescriptor;
  readonly environment: ConformanceEnvironmentFactory;
  readonly service: AdminPasswordServiceFactory;
}

/** Options of {@link resolveDriver}. */
export interface ResolveDriverOptions {
  /** Extra directories to resolve driver packages from (the CLI passes its own). */
  readonly paths?: readonly string[];
  readonly cwd?: string;
}

const OWN_DIR = dirname(fileURLToPath(import.meta.url));

/** Loads and validates; every failure is a typed `DriverLoadError` / `InvalidInputError`. */
export async function resolveDriver(
  spec: string,
  optionPairs: readonly string[] = [],
  resolveOptions: ResolveDriverOptions = {},
): Promise<ResolvedDriver> {
  const raw = parseOptionPairs(optionPairs);
  const plugin = await loadDriverPlugin(spec, {
    cwd: resolveOptions.cwd,
    paths: [...(resolveOptions.paths ?? []), OWN_DIR],
  });
  const options = validatePluginOptions(plugin, raw);
  const environment = plugin.conformanceEnvironment?.(options) ?? genericEnvironment(plugin, raw);
  return {
    plugin,
    options,
    descriptor: {
      name: plugin.name,
      version: plugin.version,
      spec,
      options: redactOptions(raw),
      ...(plugin.notes?.length ? { notes: [...plugin.notes] } : {}),
    },
    environment,
    service: computeServiceFactory(),
  };
}

/** The capabilities a driver built with these options declares (built, never initialised). */
export async function declaredCapabilities(
  resolved: ResolvedDriver,
  raw: Readonly<Record<string, string>> = {},
): Promise<Record<string, boolean>> {
  const registry = new DriverRegistry({ imageService: new InMemoryImageService() });
  try {
    registry.add("probe", resolved.plugin, raw);
    return { ...registry.get("probe").capabilities };
  } finally {
    await registry.dispose().catch(() => undefined);
  }
}

/**
 * For a plugin that offers no environment: one host, an in-memory image service, a memory
 * logger, no guest access. Scenarios needing more are skipped with the reason.
 */
export function genericEnvironment(
  plugin: DriverPlugin,
  raw: Readonly<Record<string, string>>,
): ConformanceEnvironmentFactory {
  return async () => {
    const imageService = new InMemoryImageService();
    const logger = new MemoryLogger();
    const registry = new DriverRegistry({ imageService, logger });
    const host = "localhost";
    return {
      hosts: [host],
      imageService,
      async createDriver(h: string = host): Promise<ComputeDriver> {
        if (!registry.has(h)) registry.add(h, plugin, raw);
        const driver = registry.get(h);
        await driver.initHost(h);
        return driver;
      },
      limits: {},
      notes: [
        `${plugin.name}: generic environment (one host, no guest login, no fault controls)`,
        ...(plugin.name === "libvirt" && /^test[:+]/.test(raw.uri ?? "")
          ? ["libvirt test:///default: a simulated hypervisor without migration and without a guest to log into"]
          : []),
      ],
      logLines: () => logger.lines(),
      async cleanup() {
        await registry.dispose();
      },
    };
  };
}
