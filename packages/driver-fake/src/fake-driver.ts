/**
 * A fake ComputeDriver that behaves like a hypervisor: every power state with legal and illegal
 * transitions, guest disks that snapshots really capture and restore, image snapshots written to
 * the image service, admin passwords recorded (hashed) in the guest, live migration that really
 * moves an instance between two hosts of one {@link FakeCloud}, lifecycle events, capability
 * switches and fault injection.
 */
import { randomUUID } from "node:crypto";
import {
  ALL_CAPABILITIES,
  AdminPasswordNotSupportedError,
  GuestAgentNotEnabledError,
  GuestAgentUnresponsiveError,
  HypervisorUnavailableError,
  InstanceExistsError,
  InstanceNotFoundError,
  InstanceNotRunningError,
  InvalidInputError,
  InvalidStateError,
  LiveMigrationFailedError,
  MigrationPreCheckError,
  OperationTimeoutError,
  PasswordSetFailedError,
  PowerState,
  SnapshotNotFoundError,
  TaskState,
  UnsupportedOperationError,
  powerOffOptionsError,
  rebootTypeError,
  sleep,
  snapshotImageMetadata,
  throwIfAborted,
  validateOperationOptions,
  validateMigrationPolicy,
  validateRescueInput,
  validateSpawnRequest,
  validateAdminPassword,
  validateImageId,
  validateInstanceSnapshotInput,
  validateSnapshotId,
  withDeadline,
  type Capabilities,
  type Capability,
  type ComputeDriver,
  type DestroyOptions,
  type HostInfo,
  type ImageMeta,
  type ImageService,
  type ImageSnapshotOptions,
  type Instance,
  type InstanceInfo,
  type InstanceSnapshot,
  type LifecycleListener,
  type LiveMigrationOptions,
  type MigrateData,
  type MigrationContext,
  type MigrationHostFacts,
  type MigrationPlan,
  type MigrationPolicy,
  type OperationOptions,
  type PowerOffOptions,
  type RebootType,
  type RescueOptions,
  type Secret,
  type SpawnRequest,
} from "@virtkit/core";
import type { Clock } from "./clock.js";
import { FakeCloud } from "./fake-cloud.js";
import { diskBytes, diskImage } from "./fake-disk.js";
import { FakeGuest } from "./fake-guest.js";
import type { FakeHost } from "./fake-host.js";
import { FakeInstance, type MigrationJob } from "./fake-instance.js";
import type { FakeOperation, FaultInjector } from "./faults.js";
import { liveMigrationUri, planLibvirtMigration } from "./libvirt-migration-flags.js";
import { SILENT_LOGGER, type FakeLogger } from "./logger.js";
import { nextState, type InstanceStateName, type PowerOperation } from "./transitions.js";
import { imagePropertyTrue, validateInstance, validateInstanceRef } from "./validate.js";

/** How a {@link FakeDriver} is built. */
export interface FakeDriverOptions {
  /** The host this driver manages; created in the cloud on first use. */
  readonly host: string;
  /**
   * The cloud the host lives in: an object, or the name of a module-level cloud
   * ({@link FakeCloud.named}). Default: a new private cloud.
   */
  readonly cloud?: FakeCloud | string;
  /** Capabilities to switch off (or on); everything else is true. Switchable later with {@link FakeDriver.setCapabilities}. */
  readonly capabilities?: Partial<Capabilities>;
  /** Where image snapshots are written. */
  readonly imageService: ImageService;
  readonly logger?: FakeLogger;
  /** The cloud's clock, for a cloud this driver creates (a given cloud keeps its own). */
  readonly clock?: Clock;
  /** `kvm` (default), `qemu` or `xen` (no PEER2PEER, no admin password, as in Nova). Host setting. */
  readonly virtType?: string;
  /** Whether the hypervisor supports post-copy (default true). Host setting. */
  readonly postCopySupported?: boolean;
  /** Host memory in MiB (default 16384). Host setting. */
  readonly memoryMb?: number;
  /** Host CPUs (default 8). Host setting. */
  readonly vcpus?: number;
  /** Storage pool (default: the host's own, i.e. not shared). Host setting. */
  readonly storagePool?: string;
  /** Deadline for calls that can wait, unless the call gives `timeoutMs` (default 60000). */
  readonly defaultTimeoutMs?: number;
  /** Extra real latency on every call (default 0), to exercise deadlines and cancellation. */
  readonly latencyMs?: number;
  /**
   * How long an unresponsive guest agent hangs before the call gives up (default 5000 ms: a hung
   * agent holds a call for seconds, so the caller's shorter deadline is what must end it).
   */
  readonly agentTimeoutMs?: number;
  /** Simulated transfer time of a live migration, in clock ms (default 20), split into 10 progress steps. */
  readonly migrationDurationMs?: number;
}

const MIGRATION_STEPS = 10;
const MIB = 1024 * 1024;
const CAPABILITY_OF: Partial<Record<FakeOperation, Capability>> = {
  getConsoleOutput: "consoleOutput",
  pause: "pause",
  unpause: "pause",
  suspend: "suspend",
  resume: "suspend",
  rescue: "rescue",
  unrescue: "rescue",
  snapshot: "imageSnapshot",
  createInstanceSnapshot: "instanceSnapshots",
  listInstanceSnapshots: "instanceSnapshots",
  revertToInstanceSnapshot: "instanceSnapshots",
  deleteInstanceSnapshot: "instanceSnapshots",
  setAdminPassword: "setAdminPassword",
  checkCanLiveMigrateDestination: "liveMigration",
  checkCanLiveMigrateSource: "liveMigration",
  preLiveMigration: "liveMigration",
  liveMigration: "liveMigration",
  postLiveMigrationAtDestination: "liveMigration",
  rollbackLiveMigrationAtDestination: "liveMigration",
  liveMigrationAbort: "liveMigration",
  liveMigrationForceComplete: "forceCompleteMigration",
};

function checkMs(value: number | undefined, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new InvalidInputError(field, "must be a finite number >= 0");
  return value;
}

/** The fake hypervisor driver. */
export class FakeDriver implements ComputeDriver {
  readonly name = "fake";
  /** The host name this driver manages. */
  readonly host: string;
  /** The cloud the host lives in (environment-side access: guests, other hosts). */
  readonly cloud: FakeCloud;
  readonly #host: FakeHost;
  readonly #images: ImageService;
  readonly #log: FakeLogger;
  readonly #defaultTimeoutMs: number;
  readonly #agentTimeoutMs: number;
  #latencyMs: number;
  #migrationDurationMs: number;
  #capabilities: Capabilities;
  #closed = false;
  readonly #unsubscribers = new Set<() => void>();

  constructor(options: FakeDriverOptions) {
    if (typeof options !== "object" || options === null) throw new InvalidInputError("options", "must be an object");
    if (typeof options.host !== "string" || options.host.length === 0) {
      throw new InvalidInputError("host", "must be a non-empty string");
    }
    if (typeof options.imageService !== "object" || options.imageService === null) {
      throw new InvalidInputError("imageService", "is required");
    }
    if (options.cloud !== undefined && typeof options.cloud !== "string" && !(options.cloud instanceof FakeCloud)) {
      // A cloud from another copy of this package would silently split the hosts.
      throw new InvalidInputError("cloud", "must be a FakeCloud of this package or a cloud name");
    }
    const cloud =
      options.cloud instanceof FakeCloud
        ? options.cloud
        : typeof options.cloud === "string"
          ? FakeCloud.named(options.cloud, options.clock ? { clock: options.clock } : {})
          : new FakeCloud(options.clock ? { clock: options.clock } : {});
    if (options.clock !== undefined && cloud.clock !== options.clock) {
      throw new InvalidInputError("clock", "differs from the cloud's clock; give the clock to the FakeCloud");
    }
    this.cloud = cloud;
    this.#host = cloud.addHost({
      name: options.host,
      memoryMb: options.memoryMb,
      vcpus: options.vcpus,
      virtType: options.virtType,
      postCopySupported: options.postCopySupported,
      storagePool: options.storagePool,
    });
    this.host = this.#host.name;
    this.#images = options.imageService;
    this.#log = options.logger ?? SILENT_LOGGER;
    this.#defaultTimeoutMs = checkMs(options.defaultTimeoutMs, "defaultTimeoutMs", 60_000);
    this.#agentTimeoutMs = checkMs(options.agentTimeoutMs, "agentTimeoutMs", 5_000);
    this.#latencyMs = checkMs(options.latencyMs, "latencyMs", 0);
    this.#migrationDurationMs = checkMs(options.migrationDurationMs, "migrationDurationMs", 20);
    this.#capabilities = this.#resolveCapabilities(options.capabilities ?? {});
  }

  // -- environment-side controls (not part of the contract) --

  /** What this driver supports now. */
  get capabilities(): Capabilities {
    return this.#capabilities;
  }

  /** Switches capabilities on or off (others keep their value), e.g. to exercise a suite's skips. */
  setCapabilities(overrides: Partial<Capabilities>): void {
    this.#capabilities = this.#resolveCapabilities({ ...this.#capabilities, ...overrides });
  }

  /** Fault injection for this driver's host. */
  get faults(): FaultInjector {
    return this.#host.faults;
  }

  /** The host record (size, free memory, storage pool, virt type). */
  get fakeHost(): FakeHost {
    return this.#host;
  }

  /** Sets the extra latency of every call (0 restores). */
  setLatency(ms: number): void {
    this.#latencyMs = checkMs(ms, "latencyMs", 0);
  }

  /** Sets how long live migrations from this host take, in clock ms. */
  setMigrationDuration(ms: number): void {
    this.#migrationDurationMs = checkMs(ms, "migrationDurationMs", 20);
  }

  /** Writes a file into instance `uuid`'s disk (environment side, wherever the instance runs). */
  writeGuestFile(uuid: string, path: string, data: string | Uint8Array): void {
    this.cloud.guest(uuid).writeFile(path, data);
  }

  /** Reads a file from instance `uuid`'s disk as UTF-8; undefined when absent. */
  readGuestFile(uuid: string, path: string): string | undefined {
    return this.cloud.guest(uuid).readTextFile(path);
  }

  #resolveCapabilities(overrides: Partial<Capabilities>): Capabilities {
    const defaults: Capabilities = {
      ...ALL_CAPABILITIES,
      // Honest declarations: Nova sets passwords only on kvm/qemu, post-copy needs hypervisor support.
      setAdminPassword: this.#host.virtType === "kvm" || this.#host.virtType === "qemu",
      postCopy: this.#host.postCopySupported,
    };
    const out: Record<Capability, boolean> = { ...defaults };
    for (const [k, v] of Object.entries(overrides)) {
      if (!(k in ALL_CAPABILITIES)) throw new InvalidInputError(`capabilities.${k}`, "is not a capability");
      if (typeof v !== "boolean") throw new InvalidInputError(`capabilities.${k}`, "must be a boolean");
      out[k as Capability] = v;
    }
    // Refinements mean nothing without what they refine: switching off migration or passwords
    // switches them off too (a paused move, force complete, another account's password).
    out.pausedMigration &&= out.liveMigration;
    out.forceCompleteMigration &&= out.liveMigration;
    out.adminPasswordAnyUser &&= out.setAdminPassword;
    return Object.freeze(out);
  }

  // -- plumbing --

  /** Refuses calls after cleanupHost and calls needing a switched-off capability, before anything else. */
  #begin(op: FakeOperation, capability: Capability | undefined = CAPABILITY_OF[op]): void {
    if (this.#closed) throw new HypervisorUnavailableError(this.host, "the driver was cleaned up (cleanupHost)");
    if (capability !== undefined && !this.#capabilities[capability]) {
      throw new UnsupportedOperationError(capability, this.name);
    }
  }

  /**
   * Runs `fn` for `op` once its input was validated: takes the faults armed for `op`, then,
   * without faults, latency or a possible wait, runs it directly (the call is synchronous inside,
   * so no deadline timer is needed: the fast path); otherwise under `withDeadline`, with the
   * injected delay/latency/failure happening before anything changes.
   */
  async #callMayWait<T>(
    op: FakeOperation,
    options: OperationOptions | undefined,
    mayWait: boolean,
    fn: (signal: AbortSignal | undefined) => T | Promise<T>,
  ): Promise<T> {
    const fault = this.#host.faults.take(op);
    if (fault === undefined && !mayWait && this.#latencyMs === 0) {
      validateOperationOptions(options);
      throwIfAborted(op, options?.signal);
      return fn(options?.signal);
    }
    return withDeadline(op, options, this.#defaultTimeoutMs, async (signal) => {
      if (this.#latencyMs > 0) await sleep(this.#latencyMs, signal, op);
      if (fault?.delayMs) await sleep(fault.delayMs, signal, op);
      if (fault?.error) throw fault.error;
      return fn(signal);
    });
  }

  /** `#callMayWait` for a call that never waits (most of them). */
  #call<T>(
    op: FakeOperation,
    options: OperationOptions | undefined,
    fn: (signal: AbortSignal | undefined) => T | Promise<T>,
  ): Promise<T> {
    return this.#callMayWait(op, options, false, fn);
  }

  #get(uuid: string): FakeInstance {
    const rec = this.#host.instances.get(uuid);
    if (!rec) throw new InstanceNotFoundError(uuid);
    return rec;
  }

  #now(): number {
    return this.cloud.clock.now();
  }

  #notMigrating(rec: FakeInstance, op: string): void {
    if (rec.migration !== undefined) throw new InvalidStateError(rec.spec.uuid, op, "MIGRATING");
  }

  /** The target state of `op` from the instance's state, or `InvalidStateError` naming `op`. */
  #legal(rec: FakeInstance, op: PowerOperation): InstanceStateName {
    const to = nextState(op, rec.state);
    if (to === undefined) throw new InvalidStateError(rec.spec.uuid, op, rec.state);
    return to;
  }

  // -- host --

  async initHost(_host: string, options?: OperationOptions): Promise<void> {
    this.#begin("initHost");
    return this.#call("initHost", options, () => {
      this.#log.debug("fake host initialised", { host: this.host });
    });
  }

  async cleanupHost(_host: string, options?: OperationOptions): Promise<void> {
    if (this.#closed) return;
    this.#begin("cleanupHost");
    return this.#call("cleanupHost", options, () => {
      for (const off of this.#unsubscribers) off();
      this.#unsubscribers.clear();
      this.#closed = true;
      this.#log.debug("fake host cleaned up", { host: this.host });
    });
  }

  async getHostInfo(options?: OperationOptions): Promise<HostInfo> {
    this.#begin("getHostInfo");
    return this.#call("getHostInfo", options, () => ({
      hostname: this.host,
      hypervisorType: "fake",
      hypervisorVersion: "1.0.0",
      cpuArch: this.#host.cpuArch,
      vcpus: this.#host.vcpus,
      memoryMb: this.#host.memoryMb,
    }));
  }

  // -- inspection --

  async listInstances(options?: OperationOptions): Promise<readonly string[]> {
    this.#begin("listInstances");
    return this.#call("listInstances", options, () =>
      [...this.#host.instances.values()].map((r) => r.spec.name),
    );
  }

  async listInstanceUuids(options?: OperationOptions): Promise<readonly string[]> {
    this.#begin("listInstanceUuids");
    return this.#call("listInstanceUuids", options, () => [...this.#host.instances.keys()]);
  }

  async instanceExists(instance: Instance, options?: OperationOptions): Promise<boolean> {
    this.#begin("instanceExists");
    validateInstanceRef(instance);
    return this.#call("instanceExists", options, () => this.#host.instances.has(instance.uuid));
  }

  async getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    this.#begin("getInfo");
    validateInstanceRef(instance);
    return this.#call("getInfo", options, () => {
      const rec = this.#get(instance.uuid);
      const maxMemoryKb = rec.spec.flavor.memoryMb * 1024;
      // A stopped or saved-to-disk guest holds no memory.
      const resident = rec.state === "RUNNING" || rec.state === "PAUSED";
      return {
        state: PowerState[rec.state],
        maxMemoryKb,
        memoryKb: resident ? maxMemoryKb : 0,
        vcpus: rec.spec.flavor.vcpus,
        cpuTimeNs: rec.cpuTimeNs(this.#now()),
        internalId: rec.internalId,
      };
    });
  }

  async getConsoleOutput(instance: Instance, options?: OperationOptions): Promise<string> {
    this.#begin("getConsoleOutput");
    validateInstanceRef(instance);
    return this.#call("getConsoleOutput", options, () => this.#get(instance.uuid).guest.consoleOutput());
  }

  // -- lifecycle --

  async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    const op = "spawn";
    this.#begin(op);
    // Core's shared checks (the same typed refusals every driver gives), then the normalised copies.
    const requestMeta = validateSpawnRequest(request);
    const instance = validateInstance(request.instance);
    const imageMeta = requestMeta ?? instance.imageMeta;
    const password = request.adminPassword;
    return this.#callMayWait(op, options, password !== undefined, async (signal) => {
      const uuid = instance.uuid;
      if (this.cloud.locate(uuid)) throw new InstanceExistsError(uuid);
      const osType = instance.osType ?? imageMeta.properties.os_type;
      const adminUser = imageMeta.properties.os_admin_user;
      // A disk a destroy kept on this host's storage is the instance's again (Nova's image backend
      // reuses an existing disk: evacuation onto shared storage).
      const keptDisk = this.cloud.keptDisk(this.#host.storagePool, uuid);
      const guest = new FakeGuest(
        {
          hostname: instance.hostname ?? instance.name,
          memoryMb: instance.flavor.memoryMb,
          vcpus: instance.flavor.vcpus,
          osType,
          adminUser,
        },
        keptDisk,
      );
      if (password !== undefined) {
        // First-boot injection (config drive): no agent needed.
        const hash = await FakeGuest.hashPassword(password);
        throwIfAborted(op, signal);
        if (this.cloud.locate(uuid)) throw new InstanceExistsError(uuid);
        guest.setPasswordHash(adminUserFor(adminUser, osType), hash);
      }
      const now = this.#now();
      const rec = new FakeInstance(instance, imageMeta, guest, this.#host.allocateInternalId(), now);
      guest.boot(now);
      this.#host.attach(rec);
      if (keptDisk !== undefined) this.cloud.takeKeptDisk(this.#host.storagePool, uuid);
      this.#host.emit(uuid, "STARTED");
      this.#log.debug("spawned", { host: this.host, instance: uuid });
    });
  }

  async destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    const op = "destroy";
    this.#begin(op);
    validateInstanceRef(instance);
    return this.#call(op, options, () => {
      const uuid = instance.uuid;
      // Destroy also cleans a prepared incoming migration (Nova's rollback at destination calls it).
      this.#host.reservations.delete(uuid);
      const keepDisks = options?.destroyDisks === false;
      const pool = this.#host.storagePool;
      const rec = this.#host.instances.get(uuid);
      // Disks an earlier destroy kept go with this one (Nova's libvirt cleanup deletes the files
      // whether or not the domain is still there).
      if (!keepDisks) this.cloud.takeKeptDisk(pool, uuid);
      if (!rec) return;
      if (rec.migration) {
        rec.migration.aborted = true;
        rec.migration.wake.abort();
      }
      this.#host.transition(rec, "SHUTDOWN");
      this.#host.detach(uuid);
      if (keepDisks) this.cloud.keepDisk(pool, uuid, rec.guest.cloneDisk());
      this.#log.debug("destroyed", { host: this.host, instance: uuid });
    });
  }

  async reboot(instance: Instance, type: RebootType, options?: OperationOptions): Promise<void> {
    const op = "reboot";
    const soft = type === "SOFT";
    this.#begin(op, soft ? "softReboot" : undefined);
    const badType = rebootTypeError(type);
    if (badType) throw badType;
    validateInstanceRef(instance);
    return this.#call(op, options, () => {
      const rec = this.#get(instance.uuid);
      this.#notMigrating(rec, op);
      const to = this.#legal(rec, op);
      const now = this.#now();
      const guest = rec.guest;
      if (soft && rec.state === "RUNNING") {
        guest.acpiRequests++;
        if (!guest.ignoresAcpi) {
          guest.print(now, "systemd-shutdown[1]: Syncing filesystems and block devices.", "reboot: Restarting system");
          guest.lastReboot = "clean";
          guest.boot(now, { rescue: rec.rescued });
          return;
        }
        // Nova falls back to a hard reboot when the guest does not react to the ACPI request.
        this.#log.info("guest ignored the soft reboot request, rebooting hard", { instance: rec.spec.uuid });
      }
      // A hard reboot destroys and recreates the domain, whatever state it was in (a suspended
      // guest's saved state is dropped: it boots afresh, it is not resumed; stopping a stopped
      // domain changes nothing).
      this.#host.transition(rec, "SHUTDOWN");
      this.#host.transition(rec, to);
      guest.lastReboot = "hard";
      guest.boot(now, { rescue: rec.rescued });
    });
  }

  async powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    const op = "powerOff";
    this.#begin(op);
    validateInstanceRef(instance);
    const badOptions = powerOffOptionsError(options);
    if (badOptions) throw badOptions;
    const timeoutSec = options?.cleanShutdownTimeoutSec ?? 0;
    const retrySec = options?.retryIntervalSec ?? 0;
    const uuid = instance.uuid;
    const before = this.#host.instances.get(uuid);
    const mayWait = timeoutSec > 0 && before?.state === "RUNNING" && before.guest.ignoresAcpi;
    return this.#callMayWait(op, options, mayWait, async (signal) => {
      const rec = this.#get(uuid);
      this.#notMigrating(rec, op);
      const to = this.#legal(rec, op);
      if (rec.state === to) return;
      const guest = rec.guest;
      // Only a running guest can react to the power button; anything else goes down hard at once.
      if (timeoutSec > 0 && rec.state === "RUNNING") {
        const interval = retrySec > 0 ? Math.min(retrySec, timeoutSec) : timeoutSec;
        let waited = 0;
        for (;;) {
          guest.acpiRequests++;
          if (!guest.ignoresAcpi) {
            guest.print(
              this.#now(),
              "ACPI: button: power button pressed",
              "systemd-shutdown[1]: Powering off.",
              "reboot: Power down",
            );
            guest.lastShutdown = "clean";
            this.#host.transition(rec, to);
            return;
          }
          if (waited >= timeoutSec) break;
          const step = Math.min(interval, timeoutSec - waited);
          await this.cloud.clock.sleep(step * 1000, signal);
          waited += step;
          // Destroyed or changed by someone else while we waited: nothing left to power off cleanly.
          if (this.#host.instances.get(uuid) !== rec) return;
          if (rec.state !== "RUNNING") break;
        }
        this.#log.info("clean shutdown timed out, powering off hard", { instance: uuid, timeoutSec });
      }
      guest.lastShutdown = "hard";
      this.#host.transition(rec, to);
    });
  }

  async powerOn(instance: Instance, options?: OperationOptions): Promise<void> {
    const op = "powerOn";
    this.#begin(op);
    validateInstanceRef(instance);
    return this.#call(op, options, () => {
      const rec = this.#get(instance.uuid);
      this.#notMigrating(rec, op);
      const to = this.#legal(rec, op);
      if (rec.state === to) return;
      this.#host.transition(rec, to);
      rec.guest.boot(this.#now(), { rescue: rec.rescued });
    });
  }

  /** pause/unpause/suspend/resume: a table move with no guest-visible side effect. */
  #simpleMove(
    op: "pause" | "unpause" | "suspend" | "resume",
    instance: Instance,
    options?: OperationOptions,
  ): Promise<void> {
    this.#begin(op);
    validateInstanceRef(instance);
    return this.#call(op, options, () => {
      const rec = this.#get(instance.uuid);
      this.#notMigrating(rec, op);
      this.#host.transition(rec, this.#legal(rec, op));
    });
  }

  async pause(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.#simpleMove("pause", instance, options);
  }

  async unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.#simpleMove("unpause", instance, options);
  }

  async suspend(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.#simpleMove("suspend", instance, options);
  }

  async resume(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.#simpleMove("resume", instance, options);
  }

  async rescue(instance: Instance, rescueImageMeta: ImageMeta, options?: RescueOptions): Promise<void> {
    const op = "rescue";
    this.#begin(op);
    validateInstanceRef(instance);
    const meta = validateRescueInput(rescueImageMeta, options);
    const password = options?.rescuePassword;
    return this.#call(op, options, async (signal) => {
      const check = (): { rec: FakeInstance; to: InstanceStateName } => {
        const rec = this.#get(instance.uuid);
        this.#notMigrating(rec, op);
        if (rec.rescued) throw new InvalidStateError(rec.spec.uuid, op, rec.state);
        return { rec, to: this.#legal(rec, op) };
      };
      let { rec, to } = check();
      let hash: string | undefined;
      if (password !== undefined) {
        hash = await FakeGuest.hashPassword(password);
        throwIfAborted(op, signal);
        ({ rec, to } = check());
      }
      // Nova's rescue stops the instance (a no-op when it is off) and boots the rescue image with
      // the original disk attached.
      this.#host.transition(rec, "SHUTDOWN");
      rec.rescued = true;
      rec.rescueImageMeta = meta;
      if (hash !== undefined) rec.guest.setPasswordHash("root", hash, { rescue: true });
      this.#host.transition(rec, to);
      rec.guest.boot(this.#now(), { rescue: true });
    });
  }

  async unrescue(instance: Instance, options?: OperationOptions): Promise<void> {
    const op = "unrescue";
    this.#begin(op);
    validateInstanceRef(instance);
    return this.#call(op, options, () => {
      const rec = this.#get(instance.uuid);
      this.#notMigrating(rec, op);
      if (!rec.rescued) throw new InvalidStateError(rec.spec.uuid, op, rec.state);
      const to = this.#legal(rec, op);
      // The rescue domain is destroyed (a no-op when it is off) and the instance's own disk booted.
      this.#host.transition(rec, "SHUTDOWN");
      rec.rescued = false;
      rec.rescueImageMeta = undefined;
      this.#host.transition(rec, to);
      rec.guest.boot(this.#now());
    });
  }

  // -- snapshots --

  async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    const op = "snapshot";
    this.#begin(op);
    validateInstanceRef(instance);
    validateImageId(imageId);
    const onTaskState = options?.onTaskState;
    return this.#callMayWait(op, options, true, async (signal) => {
      const uuid = instance.uuid;
      const rec = this.#get(uuid);
      const image = await this.#images.get(imageId, { signal });
      throwIfAborted(op, signal);
      if (this.#host.instances.get(uuid) !== rec) throw new InstanceNotFoundError(uuid);
      // The task-state sequence of Nova's libvirt driver: pending upload, then uploading.
      await onTaskState?.(TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_SNAPSHOT);
      // The fake copies its in-memory disk without stopping anything: live only for a running guest.
      options?.onSnapshotMethod?.(
        rec.state === "RUNNING" ? "live" : "cold",
        rec.state === "RUNNING" ? "the disk is copied while the guest runs" : `the guest is not running (${rec.state})`,
      );
      // Nova's libvirt driver uploads in the root disk's format: raw stays raw, the rest is qcow2.
      const format = rec.imageMeta.diskFormat === "raw" ? "raw" : "qcow2";
      const data = diskImage(rec.guest.disk, format);
      const metadata = snapshotImageMetadata(rec.spec, format, image.name);
      await onTaskState?.(TaskState.IMAGE_UPLOADING, TaskState.IMAGE_PENDING_UPLOAD);
      throwIfAborted(op, signal);
      await this.#images.update(imageId, metadata, data, { signal });
      this.#log.debug("image snapshot uploaded", { instance: uuid, image: imageId, bytes: data.byteLength });
    });
  }

  async createInstanceSnapshot(
    instance: Instance,
    name: string,
    options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot> {
    const op = "createInstanceSnapshot";
    this.#begin(op);
    validateInstanceRef(instance);
    validateInstanceSnapshotInput(name, options);
    const description = options?.description;
    return this.#call(op, options, () => {
      const rec = this.#get(instance.uuid);
      this.#notMigrating(rec, op);
      const info: InstanceSnapshot = Object.freeze({
        id: randomUUID(),
        name,
        instanceUuid: rec.spec.uuid,
        createdAt: new Date(this.#now()).toISOString(),
        powerState: PowerState[rec.state],
        ...(description === undefined ? {} : { description }),
      });
      rec.snapshots.push({ info, disk: rec.guest.cloneDisk(), state: rec.state, rescued: rec.rescued });
      return info;
    });
  }

  async listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    const op = "listInstanceSnapshots";
    this.#begin(op);
    validateInstanceRef(instance);
    return this.#call(op, options, () =>
      this.#get(instance.uuid).snapshots.map((s) => s.info),
    );
  }

  async revertToInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    const op = "revertToInstanceSnapshot";
    this.#begin(op);
    validateInstanceRef(instance);
    validateSnapshotId(snapshotId);
    return this.#call(op, options, () => {
      const rec = this.#get(instance.uuid);
      const snap = rec.snapshots.find((s) => s.info.id === snapshotId);
      if (!snap) throw new SnapshotNotFoundError(rec.spec.uuid, snapshotId);
      this.#notMigrating(rec, op);
      rec.guest.restoreDisk(snap.disk);
      rec.rescued = snap.rescued;
      this.#host.transition(rec, snap.state);
    });
  }

  async deleteInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    const op = "deleteInstanceSnapshot";
    this.#begin(op);
    validateInstanceRef(instance);
    validateSnapshotId(snapshotId);
    return this.#call(op, options, () => {
      const rec = this.#get(instance.uuid);
      const i = rec.snapshots.findIndex((s) => s.info.id === snapshotId);
      if (i < 0) throw new SnapshotNotFoundError(rec.spec.uuid, snapshotId);
      rec.snapshots.splice(i, 1);
    });
  }

  // -- admin password --

  async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    const op = "setAdminPassword";
    this.#begin(op);
    validateInstanceRef(instance);
    validateAdminPassword(password);
    const uuid = instance.uuid;
    let agentHung = false;
    try {
      return await this.#callMayWait(op, options, true, async (signal) => {
        const rec = this.#get(uuid);
        if (rec.state !== "RUNNING") throw new InstanceNotRunningError(uuid);
        if (this.#host.virtType !== "kvm" && this.#host.virtType !== "qemu") throw new AdminPasswordNotSupportedError();
        if (!imagePropertyTrue(rec.imageMeta.properties.hw_qemu_guest_agent)) throw new GuestAgentNotEnabledError(uuid);
        const osType = rec.spec.osType ?? rec.imageMeta.properties.os_type;
        const user = adminUserFor(rec.imageMeta.properties.os_admin_user, osType);
        if (!this.#capabilities.adminPasswordAnyUser && user !== adminUserFor(undefined, osType)) {
          throw new UnsupportedOperationError("adminPasswordAnyUser", this.name, { detail: `account ${user}` });
        }
        const guest = rec.guest;
        if (guest.agent === "absent") {
          throw new GuestAgentUnresponsiveError(uuid, { cause: new Error("QEMU guest agent is not connected") });
        }
        if (guest.agent === "unresponsive") {
          agentHung = true;
          await sleep(this.#agentTimeoutMs, signal, op);
          throw new GuestAgentUnresponsiveError(uuid);
        }
        if (!guest.hasUser(user)) throw new PasswordSetFailedError(uuid, `user ${user} does not exist in the guest`);
        const hash = await FakeGuest.hashPassword(password);
        throwIfAborted(op, signal);
        if (this.#host.instances.get(uuid) !== rec) throw new InstanceNotFoundError(uuid);
        if (rec.state !== "RUNNING") throw new InstanceNotRunningError(uuid);
        guest.setPasswordHash(user, hash);
        guest.print(this.#now(), `qemu-ga[311]: info: guest-set-user-password called for user ${user}`);
        this.#log.info("admin password set", { instance: uuid, user });
      });
    } catch (err) {
      // The call's deadline ran out while the agent hung: that is the agent's failure.
      if (agentHung && err instanceof OperationTimeoutError)
        throw new GuestAgentUnresponsiveError(uuid, { cause: err });
      throw err;
    }
  }

  // -- live migration --

  /**
   * The libvirt VIR_MIGRATE_* plan for `policy`, exactly as Nova computes it. Facts default to
   * this host's (virt type; post-copy when the hypervisor and capability `postCopy` allow it);
   * auto-converge is left out when capability `autoConverge` is off. A policy needing a
   * switched-off capability (block, tunnelled, native TLS) is refused as unsupported.
   */
  planMigration(policy: MigrationPolicy, facts?: MigrationHostFacts): MigrationPlan {
    if (!this.#capabilities.liveMigration) throw new UnsupportedOperationError("liveMigration", this.name);
    validateMigrationPolicy(policy, "policy");
    const effective =
      !this.#capabilities.autoConverge && policy.permitAutoConverge ? { ...policy, permitAutoConverge: false } : policy;
    const plan = planLibvirtMigration(effective, {
      virtType: facts?.virtType ?? this.#host.virtType,
      postCopySupported: facts?.postCopySupported ?? (this.#host.postCopySupported && this.#capabilities.postCopy),
    });
    if (policy.block && !this.#capabilities.blockMigration)
      throw new UnsupportedOperationError("blockMigration", this.name);
    if (policy.tunnelled && !this.#capabilities.tunnelledMigration) {
      throw new UnsupportedOperationError("tunnelledMigration", this.name);
    }
    if (policy.nativeTls && !this.#capabilities.nativeTlsMigration) {
      throw new UnsupportedOperationError("nativeTlsMigration", this.name);
    }
    return plan;
  }

  async checkCanLiveMigrateDestination(
    instance: Instance,
    sourceHost: HostInfo,
    policy: MigrationPolicy,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    this.#begin("checkCanLiveMigrateDestination");
    validateInstanceRef(instance);
    if (typeof sourceHost !== "object" || sourceHost === null || typeof sourceHost.hostname !== "string") {
      throw new InvalidInputError("sourceHost", "must be a HostInfo with a hostname");
    }
    const plan = this.planMigration(policy);
    return this.#call("checkCanLiveMigrateDestination", options, () => {
      const uuid = instance.uuid;
      const dest = this.#host;
      if (sourceHost.hostname === dest.name) {
        throw new MigrationPreCheckError(`source and destination are the same host (${dest.name})`);
      }
      const src = this.cloud.locate(uuid);
      if (!src) throw new InstanceNotFoundError(uuid);
      if (src === dest) throw new MigrationPreCheckError(`instance ${uuid} is already on host ${dest.name}`);
      if (src.name !== sourceHost.hostname) {
        throw new MigrationPreCheckError(`instance ${uuid} is on host ${src.name}, not on ${sourceHost.hostname}`);
      }
      if (src.virtType !== dest.virtType) {
        throw new MigrationPreCheckError(
          `incompatible hypervisors: source ${src.name} is ${src.virtType}, destination ${dest.name} is ${dest.virtType}`,
        );
      }
      if (src.cpuArch !== dest.cpuArch) {
        throw new MigrationPreCheckError(`incompatible CPU architectures: ${src.cpuArch} and ${dest.cpuArch}`);
      }
      const shared = src.storagePool === dest.storagePool;
      if (!policy.block && !shared) {
        throw new MigrationPreCheckError(
          `hosts ${src.name} and ${dest.name} share no storage: a block migration is required (policy.block)`,
        );
      }
      if (policy.block && shared) {
        throw new MigrationPreCheckError(`cannot block migrate: hosts ${src.name} and ${dest.name} share storage`);
      }
      const need = src.instances.get(uuid)!.spec.flavor.memoryMb;
      const free = dest.freeMemoryMb();
      if (free < need) {
        throw new MigrationPreCheckError(
          `host ${dest.name} has ${free} MiB of free memory, instance ${uuid} needs ${need} MiB`,
        );
      }
      return {
        sourceHost: src.name,
        destHost: dest.name,
        policy: { ...policy },
        plan,
        extra: {
          migrationId: randomUUID(),
          uri: liveMigrationUri(dest.virtType, dest.name),
          sharedStorage: shared,
          destFreeMemoryMb: free,
        },
      };
    });
  }

  async checkCanLiveMigrateSource(
    instance: Instance,
    data: MigrateData,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    this.#begin("checkCanLiveMigrateSource");
    validateInstanceRef(instance);
    checkMigrateData(data);
    return this.#call("checkCanLiveMigrateSource", options, () => {
      const rec = this.#get(instance.uuid);
      const uuid = rec.spec.uuid;
      if (data.sourceHost !== this.host) {
        throw new MigrationPreCheckError(`the migration's source is ${data.sourceHost}, this host is ${this.host}`);
      }
      if (rec.migration) throw new MigrationPreCheckError(`instance ${uuid} is already migrating`);
      if (rec.state === "PAUSED" && !this.#capabilities.pausedMigration) {
        throw new UnsupportedOperationError("pausedMigration", this.name, { detail: `instance ${uuid} is PAUSED` });
      }
      if (rec.state !== "RUNNING" && rec.state !== "PAUSED") {
        throw new MigrationPreCheckError(
          `instance ${uuid} is ${rec.state}; only a RUNNING or PAUSED instance can be live-migrated`,
          {
            cause: new InvalidStateError(uuid, "liveMigration", rec.state),
          },
        );
      }
      if (rec.rescued) throw new MigrationPreCheckError(`instance ${uuid} is in rescue mode`);
      return { ...data, extra: { ...data.extra, sourceState: rec.state } };
    });
  }

  async preLiveMigration(
    instance: Instance,
    data: MigrateData,
    context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    this.#begin("preLiveMigration");
    validateInstanceRef(instance);
    checkMigrateData(data);
    return this.#call("preLiveMigration", options, () => {
      const uuid = instance.uuid;
      const dest = this.#host;
      if (data.destHost !== dest.name) {
        throw new MigrationPreCheckError(`the migration's destination is ${data.destHost}, this host is ${dest.name}`);
      }
      if (dest.instances.has(uuid))
        throw new MigrationPreCheckError(`instance ${uuid} is already on host ${dest.name}`);
      const src = this.cloud.locate(uuid);
      if (!src) throw new InstanceNotFoundError(uuid);
      if (!dest.reservations.has(uuid)) {
        const need = src.instances.get(uuid)!.spec.flavor.memoryMb;
        if (dest.freeMemoryMb() < need) {
          throw new MigrationPreCheckError(`host ${dest.name} no longer has ${need} MiB of free memory`);
        }
        dest.reservations.set(uuid, { memoryMb: need, sourceHost: src.name });
      }
      this.#log.debug("prepared incoming migration", { host: dest.name, instance: uuid });
      return { ...data, extra: { ...data.extra, prepared: true, vifs: context?.networkInfo?.length ?? 0 } };
    });
  }

  async liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    this.#begin("liveMigration");
    validateInstanceRef(instance);
    checkMigrateData(data);
    const onProgress = options?.onProgress;
    return this.#callMayWait("liveMigration", options, true, async (signal) => {
      const uuid = instance.uuid;
      const rec = this.#get(uuid);
      const fail = (reason: string, cause?: unknown): LiveMigrationFailedError =>
        new LiveMigrationFailedError(uuid, reason, cause === undefined ? undefined : { cause });
      if (data.sourceHost !== this.host) throw fail(`this host (${this.host}) is not the migration's source`);
      if (rec.migration) throw fail("a migration of this instance is already running");
      if (rec.state !== "RUNNING" && rec.state !== "PAUSED") {
        throw fail(`the instance is ${rec.state}`, new InvalidStateError(uuid, "liveMigration", rec.state));
      }
      if (!this.cloud.hasHost(data.destHost)) throw fail(`unknown destination host ${data.destHost}`);
      const dest = this.cloud.host(data.destHost);
      if (dest === this.#host) throw fail("the destination is the source");
      if (!dest.reservations.has(uuid))
        throw fail(`destination ${dest.name} is not prepared (call preLiveMigration there)`);

      const job: MigrationJob = {
        id: typeof data.extra.migrationId === "string" ? data.extra.migrationId : randomUUID(),
        destHost: dest.name,
        aborted: false,
        forceComplete: false,
        postCopyPlanned: data.plan.flags.includes("POSTCOPY"),
        postCopyStarted: false,
        wake: new AbortController(),
      };
      rec.migration = job;
      const clock = this.cloud.clock;
      const startedAt = clock.now();
      const landState = rec.state;
      const total = rec.spec.flavor.memoryMb * MIB + (data.policy.block ? diskBytes(rec.guest.disk) : 0);
      this.#log.info("live migration started", { instance: uuid, source: this.host, destination: dest.name });
      try {
        // Without VIR_MIGRATE_LIVE libvirt pauses the guest for the whole copy.
        if (!data.policy.live && rec.state === "RUNNING") this.#host.transition(rec, "PAUSED");
        for (let step = 1; step <= MIGRATION_STEPS && !job.forceComplete; step++) {
          if (job.aborted) throw fail("aborted");
          try {
            const wakeOrCancel = signal ? AbortSignal.any([signal, job.wake.signal]) : job.wake.signal;
            await clock.sleep(this.#migrationDurationMs / MIGRATION_STEPS, wakeOrCancel);
          } catch (err) {
            // Woken by abort or force-complete (not cancelled by the caller): the loop acts on it now.
            if (!job.wake.signal.aborted || signal?.aborted) throw err;
          }
          if (job.aborted) throw fail("aborted");
          if (this.#host.instances.get(uuid) !== rec) throw fail("the instance disappeared from the source");
          const processed = Math.round((total * step) / MIGRATION_STEPS);
          try {
            onProgress?.({
              dataTotalBytes: total,
              dataProcessedBytes: processed,
              dataRemainingBytes: total - processed,
              elapsedMs: clock.now() - startedAt,
            });
          } catch {
            // A progress observer's failure does not stop the migration.
          }
        }
        if (job.aborted) throw fail("aborted");
        if (!dest.reservations.has(uuid)) throw fail(`destination ${dest.name} was rolled back during the migration`);
        if (rec.state !== "RUNNING" && rec.state !== "PAUSED") throw fail(`the instance became ${rec.state}`);
        // Switch-over: the instance (state, disk, snapshots, CPU time, guest) now lives on the destination.
        dest.reservations.delete(uuid);
        this.#host.detach(uuid);
        rec.migration = undefined;
        dest.attach(rec);
        this.#host.emit(uuid, "MIGRATION_COMPLETED");
        // A non-live copy or force-complete without post-copy paused the guest; it resumes on the destination.
        if (rec.state !== landState) dest.transition(rec, landState);
        dest.emit(uuid, landState === "RUNNING" ? "STARTED" : "PAUSED");
        this.#log.info("live migration completed", { instance: uuid, source: this.host, destination: dest.name });
      } catch (err) {
        if (rec.state === "PAUSED" && landState === "RUNNING" && this.#host.instances.get(uuid) === rec) {
          this.#host.transition(rec, "RUNNING");
        }
        throw err;
      } finally {
        if (rec.migration === job) rec.migration = undefined;
      }
    });
  }

  async postLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    _context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void> {
    this.#begin("postLiveMigrationAtDestination");
    validateInstanceRef(instance);
    checkMigrateData(data);
    return this.#call("postLiveMigrationAtDestination", options, () => {
      const rec = this.#get(instance.uuid);
      this.#log.debug("live migration finalised at destination", { host: this.host, instance: rec.spec.uuid });
    });
  }

  async rollbackLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    _context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void> {
    this.#begin("rollbackLiveMigrationAtDestination");
    validateInstanceRef(instance);
    checkMigrateData(data);
    return this.#call("rollbackLiveMigrationAtDestination", options, () => {
      this.#host.reservations.delete(instance.uuid);
      this.#log.debug("incoming migration rolled back", { host: this.host, instance: instance.uuid });
    });
  }

  async liveMigrationAbort(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#begin("liveMigrationAbort");
    validateInstanceRef(instance);
    return this.#call("liveMigrationAbort", options, () => {
      const rec = this.#get(instance.uuid);
      const job = rec.migration;
      if (!job) throw new InvalidStateError(rec.spec.uuid, "liveMigrationAbort", rec.state);
      // Once in post-copy the destination holds the newest memory: there is no going back.
      if (job.postCopyStarted) throw new InvalidStateError(rec.spec.uuid, "liveMigrationAbort", "POSTCOPY");
      job.aborted = true;
      job.wake.abort();
    });
  }

  async liveMigrationForceComplete(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#begin("liveMigrationForceComplete");
    validateInstanceRef(instance);
    return this.#call("liveMigrationForceComplete", options, () => {
      const rec = this.#get(instance.uuid);
      const job = rec.migration;
      if (!job) throw new InvalidStateError(rec.spec.uuid, "liveMigrationForceComplete", rec.state);
      if (job.aborted || job.forceComplete) return;
      const uuid = rec.spec.uuid;
      if (job.postCopyPlanned) {
        job.postCopyStarted = true;
        this.#host.emit(uuid, "POSTCOPY_STARTED");
      } else if (rec.state === "RUNNING") {
        // Nova's force complete without post-copy pauses the guest so the copy converges.
        this.#host.transition(rec, "PAUSED");
      }
      job.forceComplete = true;
      job.wake.abort();
    });
  }

  // -- events --

  registerEventListener(listener: LifecycleListener): () => void {
    if (this.#closed) throw new HypervisorUnavailableError(this.host, "the driver was cleaned up (cleanupHost)");
    if (!this.#capabilities.lifecycleEvents) throw new UnsupportedOperationError("lifecycleEvents", this.name);
    if (typeof listener !== "function") throw new InvalidInputError("listener", "must be a function");
    const off = this.#host.subscribe(listener);
    const remove = (): void => {
      off();
      this.#unsubscribers.delete(remove);
    };
    this.#unsubscribers.add(remove);
    return remove;
  }

  /** A debug dump of this driver's host (no secrets). */
  toJSON(): Record<string, unknown> {
    return { driver: this.name, capabilities: this.#capabilities, host: this.#host.toJSON() };
  }
}

/** Nova's choice of account: `os_admin_user`, else `Administrator` on Windows, else `root`. */
function adminUserFor(osAdminUser: string | undefined, osType: string | undefined): string {
  if (osAdminUser) return osAdminUser;
  return osType === "windows" ? "Administrator" : "root";
}

function checkMigrateData(data: MigrateData): void {
  if (
    typeof data !== "object" ||
    data === null ||
    typeof data.sourceHost !== "string" ||
    typeof data.destHost !== "string" ||
    typeof data.policy !== "object" ||
    data.policy === null ||
    typeof data.plan !== "object" ||
    data.plan === null ||
    typeof data.extra !== "object" ||
    data.extra === null
  ) {
    throw new InvalidInputError("data", "must be the MigrateData returned by checkCanLiveMigrateDestination");
  }
}
