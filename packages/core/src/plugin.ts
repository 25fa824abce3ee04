/**
 * What a driver package exports so virtkit can load it as a plugin: a manifest with a name,
 * version, the contract range it implements, an options schema validated at load, and a
 * `register` function that puts the driver into a tsyringe container under an explicit token.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { DependencyContainer, InjectionToken } from "tsyringe";
import type { ConformanceEnvironmentFactory } from "./conformance-environment.js";
import type { ComputeService } from "./compute-service.js";
import type { ComputeDriver } from "./driver.js";
import type { ImageService } from "./image-service.js";
import type { InstanceStore } from "./instance-store.js";
import type { Logger } from "./logger.js";
import type { OperationOptions } from "./operation.js";

/**
 * A token that carries the type it stands for: `container.resolve(TOKENS.Logger)` is a `Logger`,
 * and `container.register(TOKENS.Logger, { useValue: 3 })` does not compile. Still a plain
 * `Symbol.for` at run time, so two copies of core share it.
 */
export type TypedToken<T> = symbol & InjectionToken<T>;

/** Tokens the host application registers and drivers may resolve. Inject by token, never by type. */
export const TOKENS = {
  /** The `ImageService` image snapshots are written to. */
  ImageService: Symbol.for("virtkit.ImageService") as TypedToken<ImageService>,
  /** The structured `Logger`. */
  Logger: Symbol.for("virtkit.Logger") as TypedToken<Logger>,
  /** The `InstanceStore` a service's `ComputeService`s share (one store for every host). */
  InstanceStore: Symbol.for("virtkit.InstanceStore") as TypedToken<InstanceStore>,
  /** A service's `ComputeService` (see `registerComputeService`). */
  ComputeService: Symbol.for("virtkit.ComputeService") as TypedToken<ComputeService>,
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

/**
 * The options a plugin's `register` receives: its schema's output (zod, valibot, arktype, ... any
 * Standard Schema validator).
 */
export type PluginOptions<P extends { readonly optionsSchema: StandardSchemaV1 }> = StandardSchemaV1.InferOutput<
  P["optionsSchema"]
>;

/** The options a caller may give a plugin before its schema coerces them (`registry.add`, `createDriver`). */
export type PluginOptionsInput<P extends { readonly optionsSchema: StandardSchemaV1 }> = StandardSchemaV1.InferInput<
  P["optionsSchema"]
>;

/**
 * The manifest a driver package exports (as `plugin` or its default export). `Schema` is any
 * Standard Schema validator (https://standardschema.dev): zod 3.24+ or 4, valibot, arktype, ...
 */
export interface DriverPlugin<Schema extends StandardSchemaV1 = StandardSchemaV1> {
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
  /**
   * Validates (and coerces) options at load through its `~standard.validate`, synchronously;
   * `--option key=value` strings go through it.
   */
  readonly optionsSchema: Schema;
  /** Registers the driver into `container` under `registration.token`. */
  register(container: DependencyContainer, registration: PluginRegistration<StandardSchemaV1.InferOutput<Schema>>): void;
  /**
   * Optional: the conformance environment for this driver with these (validated) options, so
   * `virtkit conformance run --driver <name>` can test it. Absent: the kit uses a generic one.
   */
  conformanceEnvironment?(options: StandardSchemaV1.InferOutput<Schema>): ConformanceEnvironmentFactory;
  /**
   * Optional: the named conformance environments this plugin offers (`virtkit conformance run
   * --env <name>`, one column each in `virtkit matrix`), e.g. libvirt's `test`, `qemu` and
   * `nested-qemu`. Each brings its own hosts; the user's `--option`s come on top.
   */
  readonly environments?: readonly PluginEnvironment[];
}

/** How a named environment's preparation reports progress. */
export type EnvironmentProgress = (line: string) => void;

/**
 * One named conformance environment a plugin offers. It says what a run in it proves, whether it
 * can run on this machine (a daemon configured, a Docker engine answering), and builds the
 * factory from the user's raw `key=value` options (which the plugin validates itself: an
 * environment supplies some options, e.g. each host's URI, and may refuse others).
 */
export interface PluginEnvironment {
  /** Short name: `test`, `qemu`, `nested-qemu`. The matrix column is `<driver>-<name>`. */
  readonly name: string;
  /** One line: what a run here proves and what it cannot (shown by `conformance list`, the matrix, the README). */
  readonly description: string;
  /**
   * The shortest scenario deadline that is fair here, in ms (real guests take seconds to boot): a
   * run's shorter `--scenario-timeout` is raised to it. Absent: the run's own.
   */
  readonly scenarioTimeoutMs?: number;
  /**
   * The most scenarios that fairly run at once here (each real guest takes a core): a run's higher
   * `--parallel` is lowered to it, and said so. Absent: the run's own.
   */
  readonly maxParallel?: number;
  /** Why this environment cannot run here (nothing configured, no engine answering), or undefined when it can. */
  unavailable(env: Readonly<Record<string, string | undefined>>, options?: OperationOptions): Promise<string | undefined>;
  /** The factory for a run, from the user's raw options; bad options are an `InvalidInputError`. */
  conformanceEnvironment(
    rawOptions: Readonly<Record<string, string>>,
    env: Readonly<Record<string, string | undefined>>,
  ): Promise<ConformanceEnvironmentFactory>;
  /**
   * What a run here would build before its first scenario (an image not built yet), one line, or
   * undefined when nothing: `env list` says it beside "available". Builds nothing. Absent: nothing to build.
   */
  toBuild?(env: Readonly<Record<string, string | undefined>>, options?: OperationOptions): Promise<string | undefined>;
  /** Builds ahead of time what a run needs (an image); idempotent and cached. Absent: nothing to build. */
  prepare?(progress: EnvironmentProgress, options?: OperationOptions): Promise<void>;
}
