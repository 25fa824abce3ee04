/**
 * A base class for drivers: an author implements the base contract and the methods of what they
 * declare; every capability method they leave alone refuses with `UnsupportedOperationError`
 * naming the capability (the way Nova's `ComputeDriver` base raises NotImplementedError), which
 * is exactly what the conformance kit expects of an undeclared capability.
 */
import {
  CAPABILITY_METHODS,
  CAPABILITY_NAMES,
  isCapability,
  validateCapabilities,
  type Capabilities,
  type Capability,
} from "./capabilities.js";
import type {
  ComputeDriver,
  DestroyOptions,
  HostInfo,
  ImageSnapshotOptions,
  InstanceInfo,
  InstanceSnapshot,
  LifecycleEvent,
  LifecycleListener,
  LifecycleTransition,
  LiveMigrationOptions,
  MigrateData,
  MigrationContext,
  PowerOffOptions,
  RebootType,
  RescueOptions,
  SpawnRequest,
} from "./driver.js";
import { DriverLoadError, UnsupportedOperationError, isInstanceNotFound } from "./errors.js";
import type { MigrationHostFacts, MigrationPlan, MigrationPolicy } from "./migration-policy.js";
import type { ImageMeta, Instance } from "./model.js";
import type { OperationOptions } from "./operation.js";
import type { Secret } from "./secret.js";
import { deliverLifecycleEvent } from "./lifecycle-listeners.js";

/** Capability methods the base class implements itself (the driver only has to emit events). */
const IMPLEMENTED_HERE: ReadonlySet<string> = new Set(["registerEventListener"]);

/** What a driver declares: the names it supports (`["pause", "suspend"]`) or a record of booleans. */
export type CapabilityDeclaration = readonly Capability[] | Partial<Record<Capability, boolean>>;

/** A full {@link Capabilities} record from a declaration, checked at run time (misspelt names refused). */
export function capabilitiesFrom(declaration: CapabilityDeclaration, field = "capabilities"): Capabilities {
  if (Array.isArray(declaration)) {
    const record: Record<string, boolean> = {};
    for (const name of declaration as readonly unknown[]) record[String(name)] = true;
    return validateCapabilities(record, { field, allowMissing: true });
  }
  return validateCapabilities(declaration, { field, allowMissing: true });
}

/**
 * Extend this, call `super(name, declaration)`, implement the abstract methods and the methods of
 * each declared capability. The constructor refuses (with `DriverLoadError`) a declared
 * capability whose methods are not implemented, and a misspelt capability name.
 *
 * ```ts
 * class AcmeDriver extends BaseComputeDriver {
 *   constructor() { super("acme", ["pause"]); }
 *   async pause(instance: Instance) { ... }
 *   async unpause(instance: Instance) { ... }
 *   // initHost, cleanupHost, getHostInfo, listInstanceUuids, listInstances, getInfo, spawn,
 *   // destroy, reboot, powerOff, powerOn
 * }
 * ```
 */
export abstract class BaseComputeDriver implements ComputeDriver {
  readonly name: string;
  readonly capabilities: Capabilities;
  readonly #listeners = new Set<LifecycleListener>();

  protected constructor(name: string, declaration: CapabilityDeclaration = []) {
    this.name = name;
    try {
      this.capabilities = capabilitiesFrom(declaration);
    } catch (e) {
      throw new DriverLoadError(name, e instanceof Error ? e.message : String(e), { cause: e });
    }
    const base = BaseComputeDriver.prototype as unknown as Record<string, unknown>;
    const self = this as unknown as Record<string, unknown>;
    const unimplemented = CAPABILITY_NAMES.filter((c) => this.capabilities[c]).flatMap((c) =>
      CAPABILITY_METHODS[c].filter((m) => !IMPLEMENTED_HERE.has(m) && self[m] === base[m]).map((m) => `${c}: ${m}`),
    );
    if (unimplemented.length > 0) {
      throw new DriverLoadError(name, `declares capabilities whose methods it does not implement (${unimplemented.join(", ")})`);
    }
  }

  // -- the base contract: every driver implements these --
  abstract initHost(host: string, options?: OperationOptions): Promise<void>;
  abstract cleanupHost(host: string, options?: OperationOptions): Promise<void>;
  abstract getHostInfo(options?: OperationOptions): Promise<HostInfo>;
  abstract listInstances(options?: OperationOptions): Promise<readonly string[]>;
  abstract listInstanceUuids(options?: OperationOptions): Promise<readonly string[]>;
  abstract getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo>;
  abstract spawn(request: SpawnRequest, options?: OperationOptions): Promise<void>;
  abstract destroy(instance: Instance, options?: DestroyOptions): Promise<void>;
  /** A SOFT reboot without `softReboot` may fall back to HARD. */
  abstract reboot(instance: Instance, type: RebootType, options?: OperationOptions): Promise<void>;
  abstract powerOff(instance: Instance, options?: PowerOffOptions): Promise<void>;
  abstract powerOn(instance: Instance, options?: OperationOptions): Promise<void>;

  /** Default: `getInfo` answers (override when the backend has a cheaper existence check). */
  async instanceExists(instance: Instance, options?: OperationOptions): Promise<boolean> {
    try {
      await this.getInfo(instance, options);
      return true;
    } catch (e) {
      if (isInstanceNotFound(e)) return false;
      throw e;
    }
  }

  // -- capability methods: refused unless overridden --
  getConsoleOutput(_instance: Instance, _options?: OperationOptions): Promise<string> {
    return this.refuse("consoleOutput");
  }
  pause(_instance: Instance, _options?: OperationOptions): Promise<void> {
    return this.refuse("pause");
  }
  unpause(_instance: Instance, _options?: OperationOptions): Promise<void> {
    return this.refuse("pause");
  }
  suspend(_instance: Instance, _options?: OperationOptions): Promise<void> {
    return this.refuse("suspend");
  }
  resume(_instance: Instance, _options?: OperationOptions): Promise<void> {
    return this.refuse("suspend");
  }
  rescue(_instance: Instance, _rescueImageMeta: ImageMeta, _options?: RescueOptions): Promise<void> {
    return this.refuse("rescue");
  }
  unrescue(_instance: Instance, _options?: OperationOptions): Promise<void> {
    return this.refuse("rescue");
  }
  snapshot(_instance: Instance, _imageId: string, _options?: ImageSnapshotOptions): Promise<void> {
    return this.refuse("imageSnapshot");
  }
  createInstanceSnapshot(
    _instance: Instance,
    _name: string,
    _options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot> {
    return this.refuse("instanceSnapshots");
  }
  listInstanceSnapshots(_instance: Instance, _options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    return this.refuse("instanceSnapshots");
  }
  revertToInstanceSnapshot(_instance: Instance, _snapshotId: string, _options?: OperationOptions): Promise<void> {
    return this.refuse("instanceSnapshots");
  }
  deleteInstanceSnapshot(_instance: Instance, _snapshotId: string, _options?: OperationOptions): Promise<void> {
    return this.refuse("instanceSnapshots");
  }
  setAdminPassword(_instance: Instance, _password: Secret, _options?: OperationOptions): Promise<void> {
    return this.refuse("setAdminPassword");
  }
  planMigration(_policy: MigrationPolicy, _facts?: MigrationHostFacts): MigrationPlan {
    throw this.unsupported("liveMigration");
  }
  checkCanLiveMigrateDestination(
    _instance: Instance,
    _sourceHost: HostInfo,
    _policy: MigrationPolicy,
    _options?: OperationOptions,
  ): Promise<MigrateData> {
    return this.refuse("liveMigration");
  }
  checkCanLiveMigrateSource(_instance: Instance, _data: MigrateData, _options?: OperationOptions): Promise<MigrateData> {
    return this.refuse("liveMigration");
  }
  preLiveMigration(
    _instance: Instance,
    _data: MigrateData,
    _context?: MigrationContext,
    _options?: OperationOptions,
  ): Promise<MigrateData> {
    return this.refuse("liveMigration");
  }
  liveMigration(_instance: Instance, _data: MigrateData, _options?: LiveMigrationOptions): Promise<void> {
    return this.refuse("liveMigration");
  }
  postLiveMigrationAtDestination(
    _instance: Instance,
    _data: MigrateData,
    _context?: MigrationContext,
    _options?: OperationOptions,
  ): Promise<void> {
    return this.refuse("liveMigration");
  }
  rollbackLiveMigrationAtDestination(
    _instance: Instance,
    _data: MigrateData,
    _context?: MigrationContext,
    _options?: OperationOptions,
  ): Promise<void> {
    return this.refuse("liveMigration");
  }
  liveMigrationAbort(_instance: Instance, _options?: OperationOptions): Promise<void> {
    return this.refuse("liveMigration");
  }
  liveMigrationForceComplete(_instance: Instance, _options?: OperationOptions): Promise<void> {
    return this.refuse("forceCompleteMigration");
  }

  // -- events --
  /**
   * Refused (synchronously) unless `lifecycleEvents` is declared; then listeners get what the
   * driver sends with {@link emitLifecycleEvent}.
   */
  registerEventListener(listener: LifecycleListener): () => void {
    if (!this.capabilities.lifecycleEvents) throw this.unsupported("lifecycleEvents");
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Sends one lifecycle event to every listener; a throwing (or rejecting) listener does not stop the others. */
  protected emitLifecycleEvent(instanceUuid: string, transition: LifecycleTransition, host: string): void {
    const event: LifecycleEvent = { instanceUuid, transition, host, timestamp: Date.now() };
    // A listener's failure is its own; the driver's operation has happened.
    deliverLifecycleEvent(this.#listeners, event, () => undefined);
  }

  /** The typed refusal for `capability` (for a driver that refuses only under some options). */
  protected unsupported(capability: Capability, detail?: string): UnsupportedOperationError {
    // Checked even here: an `as` cast could bring in a misspelt name.
    if (!isCapability(capability)) throw new DriverLoadError(this.name, `unknown capability ${String(capability)}`);
    return new UnsupportedOperationError(capability, this.name, detail ? { detail } : undefined);
  }

  /** A rejected promise with {@link unsupported}'s error. */
  protected refuse<T>(capability: Capability): Promise<T> {
    return Promise.reject(this.unsupported(capability));
  }
}
