/**
 * What a driver package exports so virtkit can load it as a plugin: a manifest with a name,
 * version, the contract range it implements, an options schema validated at load, and a
 * `register` function that puts the driver into a tsyringe container under an explicit token.
 */
import type { DependencyContainer, InjectionToken } from "tsyringe";
import type { z } from "zod";
import type { ConformanceEnvironmentFactory } from "./conformance-environment.js";
import type { ComputeDriver } from "./driver.js";

/** Tokens the host application registers and drivers may resolve. Inject by token, never by type. */
export const TOKENS = {
  /** The `ImageService` image snapshots are written to. */
  ImageService: Symbol.for("virtkit.ImageService"),
  /** The structured `Logger`. */
  Logger: Symbol.for("virtkit.Logger"),
} as const;

/** The token under which the driver named `name` is registered (`virtkit:driver:<name>`). */
export function driverToken(name: string): InjectionToken<ComputeDriver> {
  return `virtkit:driver:${name}`;
}

/** What `register` receives. */
export interface PluginRegistration<Options> {
  /** The instance name in this container (e.g. `fake`, or `src`/`dst` for two hosts). */
  readonly name: string;
  /** The token to register the driver under (= `driverToken(name)`). */
  readonly token: InjectionToken<ComputeDriver>;
  /** Options already validated against `optionsSchema`. */
  readonly options: Options;
}

/** The manifest a driver package exports (as `plugin` or its default export). */
export interface DriverPlugin<Schema extends z.ZodType = z.ZodType> {
  /** Marks the object as a virtkit driver plugin. */
  readonly kind: "virtkit-driver";
  /** Short driver name (`fake`, `libvirt`). */
  readonly name: string;
  /** The plugin's own version (its package version). */
  readonly version: string;
  /** The semver range of `CONTRACT_VERSION` this plugin implements, e.g. `^1.0.0`. */
  readonly contractVersion: string;
  readonly description: string;
  /**
   * Optional notes every conformance report and matrix shows for this driver, e.g.
   * "XenAPI results come from a simulator".
   */
  readonly notes?: readonly string[];
  /** Validates (and coerces) options at load; `--option key=value` strings go through it. */
  readonly optionsSchema: Schema;
  /** Registers the driver into `container` under `registration.token`. */
  register(container: DependencyContainer, registration: PluginRegistration<z.output<Schema>>): void;
  /**
   * Optional: the conformance environment for this driver with these (validated) options, so
   * `virtkit conformance run --driver <name>` can test it. Absent: the kit uses a generic one.
   */
  conformanceEnvironment?(options: z.output<Schema>): ConformanceEnvironmentFactory;
}
