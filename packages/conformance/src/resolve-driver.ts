/**
 * From a driver spec (`fake`, a package, a path) and `key=value` options to what a run needs: the
 * plugin, the validated options, the environment factory (the plugin's own, or a generic one)
 * and the descriptor for reports.
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import {
  DriverLoadError,
  DriverRegistry,
  HypervisorUnavailableError,
  InMemoryImageService,
  InvalidInputError,
  MemoryLogger,
  loadDriverPlugin,
  parseOptionPairs,
  redactOptions,
  validatePluginOptions,
  type ComputeDriver,
  type ConformanceEnvironment,
  type ConformanceEnvironmentFactory,
  type DriverPlugin,
  type PluginEnvironment,
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
  /** A named environment the plugin offers (`--env nested-qemu`); absent: the plugin's default. */
  readonly environment?: string;
  /** Where environments read their settings (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
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
  const named = resolveOptions.environment;
  let options: unknown;
  let environment: ConformanceEnvironmentFactory;
  if (named !== undefined) {
    const chosen = pluginEnvironment(plugin, named);
    const env = resolveOptions.env ?? process.env;
    const reason = await chosen.unavailable(env, { timeoutMs: 10_000 });
    if (reason !== undefined) {
      throw new HypervisorUnavailableError(named, `the ${plugin.name} environment "${named}" cannot run here: ${reason}`);
    }
    environment = await chosen.conformanceEnvironment(raw, env);
    options = raw;
  } else {
    options = validatePluginOptions(plugin, raw);
    environment = plugin.conformanceEnvironment?.(options) ?? genericEnvironment(plugin, raw);
  }
  // A broken `register` is ONE load error here, not a failure in every scenario. (A named
  // environment may supply required options itself: then its own driver setup is the check.)
  const registerChecked = named === undefined || optionsValid(plugin, raw);
  if (registerChecked) await checkRegisterPath(plugin, raw);
  environment = productionPath(plugin, environment, { registerChecked });
  return {
    plugin,
    options,
    descriptor: {
      // A named environment is its own column: `libvirt-nested-qemu`.
      name: named !== undefined ? `${plugin.name}-${named}` : plugin.name,
      version: plugin.version,
      spec,
      options: redactOptions(raw),
      ...(named !== undefined ? { environment: named } : {}),
      ...(plugin.notes?.length ? { notes: [...plugin.notes] } : {}),
    },
    environment,
    service: computeServiceFactory(),
  };
}

/** The plugin's environment `name`; an unknown name is an `InvalidInputError` listing the known ones. */
export function pluginEnvironment(plugin: DriverPlugin, name: string): PluginEnvironment {
  const all = plugin.environments ?? [];
  const found = all.find((e) => e.name === name);
  if (found) return found;
  const known = all.map((e) => e.name);
  throw new InvalidInputError(
    "env",
    known.length > 0
      ? `the ${plugin.name} driver offers no environment by that name (it offers: ${known.join(", ")})`
      : `the ${plugin.name} driver offers no named environments`,
  );
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
      imageControls: imageService,
      // The production path: the kit registers and resolves the driver in a child of this container.
      driverSetup: () => ({ options: raw, container: registry.container }),
      // Used only when this factory runs without the kit's `productionPath` wrapper.
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

/** The contract members the kit requires of whatever a plugin registers (`DriverRegistry` checks a few methods). */
const DRIVER_METHODS = [
  "initHost",
  "cleanupHost",
  "getHostInfo",
  "listInstances",
  "listInstanceUuids",
  "instanceExists",
  "getInfo",
  "spawn",
  "destroy",
  "reboot",
  "powerOff",
  "powerOn",
] as const;

function optionsValid(plugin: DriverPlugin, raw: Readonly<Record<string, unknown>>): boolean {
  try {
    validatePluginOptions(plugin, raw);
    return true;
  } catch {
    return false;
  }
}

/** Throws `DriverLoadError` unless `value` looks like a `ComputeDriver` (methods, name, capabilities). */
export function assertDriverShape(plugin: DriverPlugin, value: unknown, name: string = plugin.name): ComputeDriver {
  const v = value as Record<string, unknown> | null;
  const missing = DRIVER_METHODS.filter((m) => typeof v?.[m] !== "function");
  const problems = [
    ...(missing.length > 0 ? [`missing ${missing.join(", ")}`] : []),
    ...(typeof v?.name !== "string" ? ["no name"] : []),
    ...(typeof v?.capabilities !== "object" || v.capabilities === null ? ["no capabilities object"] : []),
  ];
  if (typeof value !== "object" || value === null || problems.length > 0) {
    throw new DriverLoadError(
      name,
      `plugin ${plugin.name} registered something that is not a ComputeDriver (${problems.join("; ") || typeof value})`,
    );
  }
  return value as ComputeDriver;
}

/**
 * The production path, once, at load: the plugin's `register` into a fresh registry (as
 * `createDriver` does in a service) with these options, resolved by its token and checked to be a
 * driver. Built, never initialised (nothing is contacted). Every failure is a `DriverLoadError`.
 */
export async function checkRegisterPath(
  plugin: DriverPlugin,
  raw: Readonly<Record<string, unknown>>,
): Promise<ComputeDriver> {
  const registry = new DriverRegistry({ imageService: new InMemoryImageService(), logger: new MemoryLogger() });
  try {
    registry.add(plugin.name, plugin, raw);
    return assertDriverShape(plugin, registry.get(plugin.name));
  } finally {
    // The container only: `cleanupHost` on a driver that was never initialised is not the contract's.
    await Promise.resolve(registry.container.dispose()).catch(() => undefined);
  }
}

/** Marks environments (and factories) {@link productionPath} made, so they are not wrapped twice. */
const WRAPPED = Symbol("virtkit.productionPath");

/** True when `value` (an environment or a factory) came through {@link productionPath}. */
export function isProductionPath(value: object): boolean {
  return (value as { [WRAPPED]?: unknown })[WRAPPED] === true;
}

/** Options of {@link productionPath}. */
export interface ProductionPathOptions {
  /**
   * Whether the plugin's `register` was checked at load (default true). When it was not (a named
   * environment that supplies the options itself), an environment without `driverSetup` would
   * leave `register` untested altogether: that is a `DriverLoadError`, not a silent pass.
   */
  readonly registerChecked?: boolean;
}

/**
 * Wraps an environment factory so the kit builds every driver the production way when the
 * environment offers `driverSetup` (see core's `ConformanceEnvironment.driverSetup`): the plugin's
 * `register` into a child of the environment's container, resolved by `driverToken(host)`,
 * checked, adopted by the environment, then `initHost`. Environments without it keep their own
 * `createDriver`, and their notes say so (or, when `register` was never checked, they are refused).
 * The factory's own properties (`dispose`) are kept.
 */
export function productionPath(
  plugin: DriverPlugin,
  factory: ConformanceEnvironmentFactory,
  pathOptions: ProductionPathOptions = {},
): ConformanceEnvironmentFactory {
  if (isProductionPath(factory)) return factory;
  const wrapped = async (context: Parameters<ConformanceEnvironmentFactory>[0]): Promise<ConformanceEnvironment> => {
    const env = await factory(context);
    const setupOf = typeof env.driverSetup === "function" ? env.driverSetup.bind(env) : undefined;
    if (!setupOf) {
      if (pathOptions.registerChecked === false) {
        await env.cleanup().catch(() => undefined);
        throw new DriverLoadError(
          plugin.name,
          `the ${plugin.name} environment supplies the driver options itself and builds its drivers without driverSetup, ` +
            "so the plugin's register would never be tested: offer driverSetup in that environment",
        );
      }
      const note = `${plugin.name}: the drivers under test were built by the plugin's conformance environment, not through its register (checked once at load); offer driverSetup to test the production path`;
      return overlay(env, { notes: [...env.notes, note] });
    }
    const registries: DriverRegistry[] = [];
    const createDriver = async (host: string = env.hosts[0] ?? "localhost"): Promise<ComputeDriver> => {
      const setup = await setupOf(host);
      const registry = new DriverRegistry(
        setup.container ? { container: setup.container } : { imageService: env.imageService },
      );
      registries.push(registry);
      registry.add(host, plugin, setup.options);
      const driver = assertDriverShape(plugin, registry.get(host), host);
      setup.adopt?.(driver);
      await driver.initHost(host);
      return driver;
    };
    const cleanup = async (): Promise<void> => {
      try {
        await env.cleanup();
      } finally {
        // The kit has called `cleanupHost` on every driver; only the containers are left.
        for (const r of registries.splice(0)) await Promise.resolve(r.container.dispose()).catch(() => undefined);
      }
    };
    return overlay(env, { createDriver, cleanup });
  };
  return Object.assign(wrapped, factory, { [WRAPPED]: true });
}

/**
 * `env` with some members replaced, without touching it. Its own methods are called on `env`
 * itself (a class environment's `#private` fields stay reachable), and a frozen environment works
 * (a Proxy over `env` itself may not report another value for a frozen member).
 */
function overlay(env: ConformanceEnvironment, replaced: Partial<ConformanceEnvironment>): ConformanceEnvironment {
  const own = (prop: PropertyKey): prop is keyof ConformanceEnvironment => Object.prototype.hasOwnProperty.call(replaced, prop);
  const read = (prop: PropertyKey): unknown => {
    if (prop === WRAPPED) return true;
    if (own(prop)) return replaced[prop];
    const value: unknown = Reflect.get(env, prop, env);
    return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(env) : value;
  };
  return new Proxy({} as ConformanceEnvironment, {
    get: (_target, prop) => read(prop),
    has: (_target, prop) => own(prop) || prop in env,
    ownKeys: () => [...new Set([...Reflect.ownKeys(env), ...Reflect.ownKeys(replaced)])],
    getOwnPropertyDescriptor: (_target, prop) =>
      own(prop) || Object.prototype.hasOwnProperty.call(env, prop)
        ? { value: read(prop), enumerable: true, configurable: true, writable: false }
        : undefined,
  });
}
