/**
 * Holds several named drivers at once (two hosts of one hypervisor, for migration) in a tsyringe
 * child container. Only this module and the loader touch tsyringe: a plugin's `register` builds
 * its plain driver class, resolving `TOKENS.ImageService` / `TOKENS.Logger` from the container,
 * and registers it under `driverToken(name)`. Injection is by explicit token only.
 */
import type { DependencyContainer } from "tsyringe";
// The container alone, not tsyringe's index: that one demands a global `reflect-metadata`
// polyfill, which only decorators read, and virtkit injects by explicit token only.
import { instance as rootContainer } from "tsyringe/dist/cjs/dependency-container.js";
import { setDriverServices } from "./driver-context.js";
import type { ComputeDriver } from "./driver.js";
import { DriverLoadError, InvalidInputError, VirtkitError } from "./errors.js";
import { InMemoryImageService, type ImageService } from "./image-service.js";
import { NullLogger, type Logger } from "./logger.js";
import type { OperationOptions } from "./operation.js";
import {
  loadDriverPlugin,
  parseOptionPairs,
  validatePluginManifest,
  validatePluginOptions,
  type LoadDriverPluginOptions,
} from "./plugin-loader.js";
import { TOKENS, driverToken, type DriverPlugin } from "./plugin.js";
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { validateInstanceName } from "./validation.js";

/** Options of {@link DriverRegistry}. */
export interface DriverRegistryOptions {
  /** Parent container; default tsyringe's root. The registry always works in a child of it. */
  readonly container?: DependencyContainer;
  /** Registered as `TOKENS.ImageService`; default: the parent's, else a new `InMemoryImageService`. */
  readonly imageService?: ImageService;
  /** Registered as `TOKENS.Logger`; default: the parent's, else a `NullLogger`. */
  readonly logger?: Logger;
}

/** Raw options: an object, or `key=value` strings as given on a command line. */
export type RawDriverOptions = Readonly<Record<string, unknown>> | readonly string[];

interface Entry {
  readonly plugin: DriverPlugin;
  driver?: ComputeDriver;
}

// A light check that a plugin registered something driver-shaped; the conformance kit checks the rest.
const REQUIRED_METHODS = ["initHost", "cleanupHost", "getHostInfo", "getInfo", "spawn", "destroy"] as const;

/** Several named drivers in one child container. */
export class DriverRegistry {
  /** The registry's own child container. */
  readonly container: DependencyContainer;
  readonly #entries = new Map<string, Entry>();
  #disposed = false;

  constructor(options: DriverRegistryOptions = {}) {
    this.container = (options.container ?? rootContainer).createChildContainer();
    if (options.imageService) this.container.register(TOKENS.ImageService, { useValue: options.imageService });
    else if (!this.container.isRegistered(TOKENS.ImageService, true)) {
      this.container.register(TOKENS.ImageService, { useValue: new InMemoryImageService() });
    }
    if (options.logger) this.container.register(TOKENS.Logger, { useValue: options.logger });
    else if (!this.container.isRegistered(TOKENS.Logger, true)) {
      this.container.register(TOKENS.Logger, { useValue: new NullLogger() });
    }
  }

  /** The image service drivers in this registry write snapshots to. */
  get imageService(): ImageService {
    return this.container.resolve<ImageService>(TOKENS.ImageService);
  }

  /** The logger drivers in this registry log to. */
  get logger(): Logger {
    return this.container.resolve<Logger>(TOKENS.Logger);
  }

  /**
   * Validates `rawOptions` with the plugin's schema and lets the plugin register a driver named
   * `name`. Nothing is registered when the options or the manifest are refused. Options are typed
   * by the plugin's schema (its input type: `registry.add("a", libvirtPlugin, { uri })`), or
   * given as `key=value` strings.
   */
  add<S extends StandardSchemaV1>(
    name: string,
    plugin: DriverPlugin<S>,
    rawOptions: StandardSchemaV1.InferInput<S> | readonly string[] = {},
  ): void {
    this.#assertOpen(name);
    validateInstanceName(name, "driver.name");
    if (this.#entries.has(name))
      throw new InvalidInputError("driver.name", `a driver named "${name}" is already registered`);
    const checked = validatePluginManifest(plugin, name);
    const raw: unknown = Array.isArray(rawOptions) ? parseOptionPairs(rawOptions as readonly string[]) : rawOptions;
    const options = validatePluginOptions(checked, raw);
    const token = driverToken(name);
    try {
      checked.register(this.container, { name, token, options });
    } catch (e) {
      if (e instanceof VirtkitError && !(e instanceof DriverLoadError)) throw e;
      throw new DriverLoadError(name, `plugin ${checked.name} failed to register: ${messageOf(e)}`, { cause: e });
    }
    if (!this.container.isRegistered(token, false)) {
      throw new DriverLoadError(name, `plugin ${checked.name} did not register a driver under ${String(token)}`);
    }
    this.#entries.set(name, { plugin: checked });
  }

  /** True when a driver named `name` was added. */
  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** The names added, in order. */
  names(): string[] {
    return [...this.#entries.keys()];
  }

  /** The plugin that registered `name`. */
  pluginOf(name: string): DriverPlugin | undefined {
    return this.#entries.get(name)?.plugin;
  }

  /**
   * The driver named `name`, resolved from the container on first use and the same object
   * afterwards. A missing name or a failing resolution is a `DriverLoadError`.
   */
  get(name: string): ComputeDriver {
    this.#assertOpen(name);
    const entry = this.#entries.get(name);
    if (!entry) {
      const have = this.names();
      throw new DriverLoadError(
        name,
        `no driver of that name in this registry (have: ${have.length ? have.join(", ") : "none"})`,
      );
    }
    if (entry.driver) return entry.driver;
    let driver: unknown;
    try {
      driver = this.container.resolve<ComputeDriver>(driverToken(name));
    } catch (e) {
      throw new DriverLoadError(name, `resolving the driver failed: ${messageOf(e)}`, { cause: e });
    }
    const missing = REQUIRED_METHODS.filter(
      (m) => typeof (driver as Record<string, unknown> | null)?.[m] !== "function",
    );
    if (typeof driver !== "object" || driver === null || missing.length > 0) {
      throw new DriverLoadError(
        name,
        `plugin ${entry.plugin.name} registered something that is not a ComputeDriver (missing ${missing.join(", ")})`,
      );
    }
    entry.driver = driver as ComputeDriver;
    setDriverServices(entry.driver, { imageService: this.imageService, logger: this.logger });
    return entry.driver;
  }

  /**
   * Calls `cleanupHost(name)` on every driver resolved so far (all of them, even when one fails;
   * the first failure is then thrown) and disposes the container. Idempotent.
   */
  async dispose(options?: OperationOptions): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const failures: unknown[] = [];
    for (const [name, entry] of this.#entries) {
      if (!entry.driver) continue;
      try {
        await entry.driver.cleanupHost(name, options);
      } catch (e) {
        failures.push(e);
        this.logger.warn("driver cleanup failed", { driver: name, error: e });
      }
    }
    try {
      await this.container.dispose();
    } catch (e) {
      failures.push(e);
    }
    if (failures.length > 0) throw failures[0];
  }

  /** `await using registry = new DriverRegistry()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  #assertOpen(name: string): void {
    if (this.#disposed) throw new DriverLoadError(name, "the registry has been disposed");
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Options of {@link createDriver}. */
export interface CreateDriverOptions extends LoadDriverPluginOptions, DriverRegistryOptions {
  /** Registration name; default the plugin's name. */
  readonly name?: string;
}

/**
 * Loads `spec` (or takes an imported plugin, whose schema then types `options`), registers it in a
 * fresh {@link DriverRegistry} with `options` and returns the driver. The caller owns it: call
 * `initHost` before use (a `ComputeService` does) and `cleanupHost` when done.
 */
export async function createDriver<S extends StandardSchemaV1>(
  plugin: DriverPlugin<S>,
  options?: StandardSchemaV1.InferInput<S> | readonly string[],
  createOptions?: CreateDriverOptions,
): Promise<ComputeDriver>;
export async function createDriver(
  spec: string,
  options?: RawDriverOptions,
  createOptions?: CreateDriverOptions,
): Promise<ComputeDriver>;
export async function createDriver(
  spec: string | DriverPlugin,
  options: unknown = {},
  createOptions: CreateDriverOptions = {},
): Promise<ComputeDriver> {
  const plugin = typeof spec === "string" ? await loadDriverPlugin(spec, createOptions) : spec;
  const registry = new DriverRegistry(createOptions);
  const name = createOptions.name ?? plugin.name;
  registry.add(name, plugin, options as RawDriverOptions);
  return registry.get(name);
}
