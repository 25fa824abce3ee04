/**
 * Broken variants from outside hunts of 2026-12-04 (the second round: the last block): a driver author's plausible defects that
 * passed the whole kit then, each ONE defect as a small decorator around the healthy fake. They are
 * listed in `GAP_VARIANTS` (broken-drivers-gaps.ts), whose test requires each caught where expected.
 */
import {
  HypervisorUnavailableError,
  InvalidInputError,
  UnsupportedOperationError,
  InstanceNotFoundError,
  InvalidStateError,
  LiveMigrationFailedError,
  PowerState,
  OperationAbortedError,
  OperationTimeoutError,
  SnapshotNotFoundError,
  type ImageMeta,
  type ImageSnapshotOptions,
  type Instance,
  type DestroyOptions,
  type RebootType,
  type SpawnRequest,
  type InstanceInfo,
  type InstanceSnapshot,
  type Capabilities,
  type ComputeDriver,
  type LifecycleListener,
  type LiveMigrationOptions,
  type MigrateData,
  type MigrationContext,
  type MigrationPlan,
  type OperationOptions,
  type PowerOffOptions,
  type RescueOptions,
  type Secret,
  type ImageService,
} from "@virtkit/core";
import { serializeDisk, type FakeCloud } from "@virtkit/driver-fake";
import { DriverDecorator } from "./driver-decorator.js";

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The password being set is kept in one field of the driver: two at once both get the later one. */
export class PasswordInSharedField extends DriverDecorator {
  #pending: Secret | undefined;
  override async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    this.#pending = password;
    await nextTurn(); // opening the agent channel
    return this.inner.setAdminPassword(instance, this.#pending, options);
  }
}

/** The snapshot's target image is kept in one field: two at once both write the later image. */
export class SnapshotTargetInSharedField extends DriverDecorator {
  #target = "";
  override async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    this.#target = imageId;
    await nextTurn();
    return this.inner.snapshot(instance, this.#target, options);
  }
}

/** The admin password set last is recorded in the image snapshot's properties (as instance metadata). */
export class PasswordInImageProperties extends DriverDecorator {
  readonly #passwords = new Map<string, string>();
  constructor(
    inner: ConstructorParameters<typeof DriverDecorator>[0],
    private readonly images: ImageService,
  ) {
    super(inner);
  }
  override async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    await this.inner.setAdminPassword(instance, password, options);
    this.#passwords.set(instance.uuid, password.reveal());
  }
  override async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    await this.inner.snapshot(instance, imageId, options);
    const password = this.#passwords.get(instance.uuid);
    if (password === undefined) return;
    const record = await this.images.get(imageId);
    await this.images.update(imageId, { properties: { ...record.properties, instance_meta_admin_pass: password } });
  }
}

/** The rescue system's password is printed on the console (as cloud-init does for generated ones). */
export class RescuePasswordOnConsole extends DriverDecorator {
  readonly #passwords = new Map<string, string>();
  override async rescue(instance: Instance, rescueImageMeta: ImageMeta, options?: RescueOptions): Promise<void> {
    await this.inner.rescue(instance, rescueImageMeta, options);
    if (options?.rescuePassword) this.#passwords.set(instance.uuid, options.rescuePassword.reveal());
  }
  override async getConsoleOutput(instance: Instance, options?: OperationOptions): Promise<string> {
    const out = await this.inner.getConsoleOutput(instance, options);
    const password = this.#passwords.get(instance.uuid);
    return password === undefined ? out : `${out}\nci-info: rescue password: ${password}\n`;
  }
}

/** A clean power off arms a hard-stop fallback timer for the clean timeout and never clears it. */
export class PowerOffTimerLeftArmed extends DriverDecorator {
  override powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    const sec = options?.cleanShutdownTimeoutSec;
    if (typeof sec === "number" && sec > 0) {
      setTimeout(() => void this.inner.powerOff(instance, { cleanShutdownTimeoutSec: 0 }).catch(() => undefined), sec * 1000).unref();
    }
    return this.inner.powerOff(instance, options);
  }
}

/** Listeners are called by index over the live list: one removing itself makes the next miss the event. */
export class ListenerRemovalSkipsNext extends DriverDecorator {
  readonly #listeners: LifecycleListener[] = [];
  #subscribed = false;
  override registerEventListener(listener: LifecycleListener): () => void {
    if (!this.#subscribed) {
      this.#subscribed = true;
      this.inner.registerEventListener((event) => {
        for (let i = 0; i < this.#listeners.length; i++) {
          try {
            void this.#listeners[i]!(event);
          } catch {
            // one listener's failure is its own
          }
        }
      });
    }
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }
}

/** Every event is stamped with the moment the driver was made (its connect), not when it was seen. */
export class EventStampedAtConnect extends DriverDecorator {
  readonly #connectedAt = Date.now();
  override registerEventListener(listener: LifecycleListener): () => void {
    return this.inner.registerEventListener((event) => listener({ ...event, timestamp: this.#connectedAt }));
  }
}

/** SnapshotNotFoundError built with its arguments swapped (the snapshot id as the instance's). */
export class SnapshotNotFoundSwapped extends DriverDecorator {
  override deleteInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    return this.inner.deleteInstanceSnapshot(instance, snapshotId, options).catch((err: unknown) => {
      throw err instanceof SnapshotNotFoundError ? new SnapshotNotFoundError(snapshotId, instance.uuid) : err;
    });
  }
}

/** LiveMigrationFailedError names the destination host where the instance's uuid belongs. */
export class MigrationFailureNamesHost extends DriverDecorator {
  override liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    return this.inner.liveMigration(instance, data, options).catch((err: unknown) => {
      throw err instanceof LiveMigrationFailedError ? new LiveMigrationFailedError(data.destHost, err.reason) : err;
    });
  }
}

/** listInstanceUuids refills one array in place: a listing handed out changes later. */
export class UuidListReused extends DriverDecorator {
  readonly #list: string[] = [];
  override async listInstanceUuids(options?: OperationOptions): Promise<readonly string[]> {
    const fresh = await this.inner.listInstanceUuids(options);
    this.#list.length = 0;
    this.#list.push(...fresh);
    return this.#list;
  }
}

/** getInfo's memory in use in MiB (the hypervisor's unit), not KiB. */
export class MemoryInMib extends DriverDecorator {
  override async getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    const info = await this.inner.getInfo(instance, options);
    return { ...info, memoryKb: Math.max(1, Math.round(info.memoryKb / 1024)) };
  }
}

/** The caller's task-state callback's rejection is swallowed: the snapshot goes on to an active image. */
export class TaskStateRejectionSwallowed extends DriverDecorator {
  override snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    const report = options?.onTaskState;
    if (!report) return this.inner.snapshot(instance, imageId, options);
    return this.inner.snapshot(instance, imageId, {
      ...options,
      onTaskState: async (state, expected) => {
        try {
          await report(state, expected);
        } catch {
          // "the caller's problem"
        }
      },
    });
  }
}

/**
 * The caller's task-state callback failing rejects the call at once, as the contract says, but the
 * copy already under way is left to finish: half a second later it is uploaded and the image made
 * active (a driver that races the callback against the work instead of stopping the work).
 */
export class TaskStateFailureUploadGoesOn extends DriverDecorator {
  override snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    const report = options?.onTaskState;
    if (!report) return this.inner.snapshot(instance, imageId, options);
    return new Promise<void>((resolve, reject) => {
      this.inner
        .snapshot(instance, imageId, {
          ...options,
          onTaskState: async (state, expected) => {
            try {
              await report(state, expected);
            } catch (err) {
              reject(err);
              await new Promise((r) => setTimeout(r, 500));
            }
          },
        })
        .then(resolve, reject);
    });
  }
}

/** A task-state callback that throws (not rejects) is logged and ignored: the snapshot goes on. */
export class TaskStateThrowIgnored extends DriverDecorator {
  override snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    const report = options?.onTaskState;
    if (!report) return this.inner.snapshot(instance, imageId, options);
    return this.inner.snapshot(instance, imageId, {
      ...options,
      onTaskState: (state, expected) => {
        let answer: void | Promise<void>;
        try {
          answer = report(state, expected);
        } catch {
          // "only a rejection means the compare-and-set failed"
          return undefined;
        }
        return answer;
      },
    });
  }
}

/** The destination's preparation drops the caller's signal: a cancelled request still prepares the move. */
export class PreMigrationIgnoresSignal extends DriverDecorator {
  override preLiveMigration(
    instance: Instance,
    data: MigrateData,
    context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    const { signal: _dropped, ...rest } = options ?? {};
    return this.inner.preLiveMigration(instance, data, context, rest);
  }
}

/** The instance a snapshot is for is kept in one field across an await: two at once both go to the last one asked. */
export class SharedSnapshotTarget extends DriverDecorator {
  #target: Instance | undefined;
  override async createInstanceSnapshot(
    instance: Instance,
    name: string,
    options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot> {
    this.#target = instance;
    await new Promise((resolve) => setTimeout(resolve, 5));
    return this.inner.createInstanceSnapshot(this.#target, name, options);
  }
}

/** The same for suspend: two at once suspend the last instance asked (twice), the other keeps running. */
export class SharedSuspendTarget extends DriverDecorator {
  #target: Instance | undefined;
  override async suspend(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#target = instance;
    await new Promise((resolve) => setTimeout(resolve, 5));
    const target = this.#target;
    // "already suspended" is fine for the caller
    if ((await this.inner.getInfo(target, options)).state === PowerState.SUSPENDED) return;
    return this.inner.suspend(target, options);
  }
}

/** A running guest is paused for the copy and the snapshot still said to be live ("hardly any downtime"). */
export class LiveSnapshotPauses extends DriverDecorator {
  override async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    if ((await this.inner.getInfo(instance, options)).state !== PowerState.RUNNING) return this.inner.snapshot(instance, imageId, options);
    await this.inner.pause(instance, options);
    try {
      await this.inner.snapshot(instance, imageId, {
        ...options,
        onSnapshotMethod: () => options?.onSnapshotMethod?.("live", "a pause of a few milliseconds for a consistent copy"),
      });
    } finally {
      await this.inner.unpause(instance, options);
    }
  }
}

/**
 * Live migration undeclared, and refused at the checks and the move, but the destination's rollback
 * still runs (it removes the instance), as the libvirt driver's did on a hypervisor without migration.
 */
export class UndeclaredRollbackRuns extends DriverDecorator {
  override get capabilities(): Capabilities {
    return {
      ...this.inner.capabilities,
      liveMigration: false,
      blockMigration: false,
      tunnelledMigration: false,
      nativeTlsMigration: false,
      postCopy: false,
      autoConverge: false,
      pausedMigration: false,
      forceCompleteMigration: false,
    };
  }
  #refuse(): never {
    throw new UnsupportedOperationError("liveMigration", this.name);
  }
  override planMigration(): MigrationPlan {
    this.#refuse();
  }
  override checkCanLiveMigrateDestination(): Promise<MigrateData> {
    this.#refuse();
  }
  override checkCanLiveMigrateSource(): Promise<MigrateData> {
    this.#refuse();
  }
  override preLiveMigration(): Promise<MigrateData> {
    this.#refuse();
  }
  override liveMigration(): Promise<void> {
    this.#refuse();
  }
  override postLiveMigrationAtDestination(): Promise<void> {
    this.#refuse();
  }
  override liveMigrationAbort(): Promise<void> {
    this.#refuse();
  }
  override liveMigrationForceComplete(): Promise<void> {
    this.#refuse();
  }
}

/** Each inspection call adds an abort listener to the caller's signal and never removes it. */
export class AbortListenerLeft extends DriverDecorator {
  #hold(options?: OperationOptions): void {
    options?.signal?.addEventListener("abort", () => undefined);
  }
  override getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    this.#hold(options);
    return this.inner.getInfo(instance, options);
  }
  override instanceExists(instance: Instance, options?: OperationOptions): Promise<boolean> {
    this.#hold(options);
    return this.inner.instanceExists(instance, options);
  }
}

/** A decorator that knows which instances arrived on its host by migration. */
class TracksArrivals extends DriverDecorator {
  protected readonly arrived = new Set<string>();
  override async postLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    networkInfo: Parameters<DriverDecorator["postLiveMigrationAtDestination"]>[2],
    options?: OperationOptions,
  ): Promise<void> {
    await this.inner.postLiveMigrationAtDestination(instance, data, networkInfo, options);
    this.arrived.add(instance.uuid);
  }
}

/** The destination drops every event of an instance that arrived by migration, later ones too. */
export class DestinationEventsSuppressed extends TracksArrivals {
  override registerEventListener(listener: LifecycleListener): () => void {
    return this.inner.registerEventListener((event) => (this.arrived.has(event.instanceUuid) ? undefined : listener(event)));
  }
}

/** Instance snapshots' createdAt in epoch seconds as text, not ISO 8601. */
export class SnapshotCreatedAtSeconds extends DriverDecorator {
  override async createInstanceSnapshot(instance: Instance, name: string, options?: OperationOptions & { readonly description?: string }): Promise<InstanceSnapshot> {
    return seconds(await this.inner.createInstanceSnapshot(instance, name, options));
  }
  override async listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    return (await this.inner.listInstanceSnapshots(instance, options)).map(seconds);
  }
}
const seconds = (s: InstanceSnapshot): InstanceSnapshot => ({ ...s, createdAt: String(Math.floor(Date.parse(s.createdAt) / 1000)) });

/** destroy deletes the disks whatever `destroyDisks` says (false is what shared storage needs). */
export class DestroyDisksIgnored extends DriverDecorator {
  override destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    return this.inner.destroy(instance, { ...options, destroyDisks: true });
  }
}

/** cpuTimeNs in microseconds (the unit some hypervisor APIs count in), not nanoseconds. */
export class CpuTimeMicroseconds extends DriverDecorator {
  override async getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    const info = await this.inner.getInfo(instance, options);
    return { ...info, cpuTimeNs: info.cpuTimeNs / 1000n };
  }
}

/** In rescue mode the rescue disk comes first, and the snapshot copies "the first disk": the rescue system's. */
export class RescuedSnapshotOfRescueDisk extends DriverDecorator {
  readonly #rescued = new Set<string>();
  constructor(
    inner: ConstructorParameters<typeof DriverDecorator>[0],
    private readonly images: ImageService,
  ) {
    super(inner);
  }
  override async rescue(instance: Instance, rescueImageMeta: ImageMeta, options?: RescueOptions): Promise<void> {
    await this.inner.rescue(instance, rescueImageMeta, options);
    this.#rescued.add(instance.uuid);
  }
  override async unrescue(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.inner.unrescue(instance, options);
    this.#rescued.delete(instance.uuid);
  }
  override async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    await this.inner.snapshot(instance, imageId, options);
    if (!this.#rescued.has(instance.uuid)) return;
    const rescueDisk = serializeDisk(new Map([["/etc/rescue-release", new TextEncoder().encode("rescue\n")]]));
    await this.images.update(imageId, {}, rescueDisk);
  }
}

/** getInfo races the call against a deadline timer it never clears (the driver's default: 2 min). */
export class DeadlineTimerLeftArmed extends DriverDecorator {
  override getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    const ms = options?.timeoutMs ?? 120_000;
    // Capped as a timer holds it: this variant's defect is the timer left armed, not an overflow.
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new OperationTimeoutError("getInfo", ms)), Math.min(ms, 2_147_483_647)),
    );
    deadline.catch(() => undefined);
    return Promise.race([this.inner.getInfo(instance, options), deadline]);
  }
}

// -- the second hunt of 2026-12-04 ---------------------------------------------------------------

/** A spawn of a uuid that already runs here writes a fresh root disk over its disk, then refuses. */
export class SpawnExistingReimagesDisk extends DriverDecorator {
  constructor(
    inner: ConstructorParameters<typeof DriverDecorator>[0],
    private readonly cloud: FakeCloud,
  ) {
    super(inner);
  }
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    const uuid = request.instance.uuid;
    if (this.cloud.locate(uuid)) {
      const guest = this.cloud.guest(uuid);
      for (const path of guest.listFiles()) guest.deleteFile(path);
      guest.writeFile("/etc/hostname", "fresh\n");
    }
    return this.inner.spawn(request, options);
  }
}

/** Instance snapshot ids are `<uuid>.<how many the instance has>`: after a delete a new one takes a live id. */
export class SnapshotIdsByCount extends DriverDecorator {
  readonly #real = new Map<string, string>();
  readonly #shown = new Map<string, string>();
  override async createInstanceSnapshot(instance: Instance, name: string, options?: OperationOptions & { readonly description?: string }): Promise<InstanceSnapshot> {
    const snap = await this.inner.createInstanceSnapshot(instance, name, options);
    const id = `${instance.uuid}.${(await this.inner.listInstanceSnapshots(instance, options)).length}`;
    this.#real.set(id, snap.id);
    this.#shown.set(snap.id, id);
    return { ...snap, id };
  }
  override async listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    return (await this.inner.listInstanceSnapshots(instance, options)).map((s) => ({ ...s, id: this.#shown.get(s.id) ?? s.id }));
  }
  override revertToInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    return this.inner.revertToInstanceSnapshot(instance, this.#real.get(snapshotId) ?? snapshotId, options);
  }
  override deleteInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    return this.inner.deleteInstanceSnapshot(instance, this.#real.get(snapshotId) ?? snapshotId, options);
  }
}

/** The first-boot password goes on the guest's kernel command line, which the console shows. */
export class FirstBootPasswordOnConsole extends DriverDecorator {
  readonly #passwords = new Map<string, string>();
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    await this.inner.spawn(request, options);
    if (request.adminPassword) this.#passwords.set(request.instance.uuid, request.adminPassword.reveal());
  }
  override async getConsoleOutput(instance: Instance, options?: OperationOptions): Promise<string> {
    const out = await this.inner.getConsoleOutput(instance, options);
    const password = this.#passwords.get(instance.uuid);
    return password === undefined ? out : `[    0.000000] Command line: console=ttyS0 root_password=${password}\n${out}`;
  }
}

/** destroy with destroyDisks: false of an instance not here throws InstanceNotFoundError. */
export class DestroyKeepDisksUnknownThrows extends DriverDecorator {
  override async destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    if (options?.destroyDisks === false && !(await this.inner.instanceExists(instance, options))) throw new InstanceNotFoundError(instance.uuid);
    return this.inner.destroy(instance, options);
  }
}

/** listInstances gives each instance's guest hostname where it has one, not its name. */
export class ListInstancesHostname extends DriverDecorator {
  readonly #hostnames = new Map<string, string>();
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    await this.inner.spawn(request, options);
    if (request.instance.hostname) this.#hostnames.set(request.instance.name, request.instance.hostname);
  }
  override async listInstances(options?: OperationOptions): Promise<readonly string[]> {
    return (await this.inner.listInstances(options)).map((n) => this.#hostnames.get(n) ?? n);
  }
}

/** A description of 1,025 characters is cut to 1,024 and taken, not refused. */
export class DescriptionCutNotRefused extends DriverDecorator {
  override createInstanceSnapshot(instance: Instance, name: string, options?: OperationOptions & { readonly description?: string }): Promise<InstanceSnapshot> {
    const d = options?.description;
    return this.inner.createInstanceSnapshot(instance, name, typeof d === "string" && d.length === 1025 ? { ...options, description: d.slice(0, 1024) } : options);
  }
}

/** reboot takes "soft" and "hard" in any case. */
export class RebootTypeAnyCase extends DriverDecorator {
  override reboot(instance: Instance, type: RebootType, options?: OperationOptions): Promise<void> {
    return this.inner.reboot(instance, (typeof type === "string" ? type.toUpperCase() : type) as RebootType, options);
  }
}

/** PERSIST_DEST ignored: an instance that arrived by migration is transient, and its first power off there removes it. */
export class MigratedInstanceTransient extends TracksArrivals {
  override async powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    await this.inner.powerOff(instance, options);
    if (this.arrived.delete(instance.uuid)) await this.inner.destroy(instance, options);
  }
}

// -- the second hunt's escapes caught later ------------------------------------------------------

/** Spawn always makes a fresh root disk from the image, dropping a disk a destroy with destroyDisks: false kept. */
export class SpawnRecreatesKeptDisk extends DriverDecorator {
  constructor(
    inner: ConstructorParameters<typeof DriverDecorator>[0],
    private readonly cloud: FakeCloud,
  ) {
    super(inner);
  }
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    const uuid = request.instance.uuid;
    const hadKept = this.cloud.keptDisks().some(([, u]) => u === uuid);
    await this.inner.spawn(request, options);
    if (!hadKept) return;
    const guest = this.cloud.guest(uuid);
    for (const path of guest.listFiles()) guest.deleteFile(path);
    guest.writeFile("/etc/hostname", "fresh\n");
  }
}

/** The last admin password set rides in checkCanLiveMigrateSource's MigrateData (to re-inject it after the move). */
export class PasswordInMigrateData extends DriverDecorator {
  readonly #last = new Map<string, string>();
  override async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    await this.inner.setAdminPassword(instance, password, options);
    this.#last.set(instance.uuid, password.reveal());
  }
  override async checkCanLiveMigrateSource(instance: Instance, data: MigrateData, options?: OperationOptions): Promise<MigrateData> {
    const out = await this.inner.checkCanLiveMigrateSource(instance, data, options);
    const pw = this.#last.get(instance.uuid);
    return pw === undefined ? out : { ...out, extra: { ...out.extra, adminPass: pw } };
  }
}

/** liveMigrationForceComplete forces first and looks at the caller's signal after: an aborted call is refused, yet forced. */
export class ForceCompleteAbortActs extends DriverDecorator {
  override async liveMigrationForceComplete(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.inner.liveMigrationForceComplete(instance, options?.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : undefined);
    if (options?.signal?.aborted) throw new OperationAbortedError("liveMigrationForceComplete");
  }
}

/** An image snapshot's min_disk is the base image's alone: the flavor's larger root disk is forgotten. */
export class SnapshotMinDiskImageOnly extends DriverDecorator {
  constructor(
    inner: ConstructorParameters<typeof DriverDecorator>[0],
    private readonly images: ImageService,
  ) {
    super(inner);
  }
  override async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    await this.inner.snapshot(instance, imageId, options);
    await this.images.update(imageId, { minDisk: instance.imageMeta.minDisk ?? 0 });
  }
}

/** Guest-agent commands (password changes, snapshot quiescing) go through one host-wide lock: a hung agent stalls them all. */
export class AgentLockHostWide extends DriverDecorator {
  #tail: Promise<unknown> = Promise.resolve();
  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }
  override setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    return this.#locked(() => this.inner.setAdminPassword(instance, password, options));
  }
  override snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    return this.#locked(() => this.inner.snapshot(instance, imageId, options));
  }
}

/** Listens through an event connection of its own (a second driver of the host), which cleanupHost leaves open. */
export class CleanupKeepsListeners extends DriverDecorator {
  constructor(
    inner: ComputeDriver,
    private readonly events: ComputeDriver,
  ) {
    super(inner);
  }
  override registerEventListener(listener: LifecycleListener): () => void {
    // Refused as the driver refuses (undeclared, bad listener), then heard on the other connection.
    this.inner.registerEventListener(listener)();
    return this.events.registerEventListener(listener);
  }
}

/** cleanupHost removes the listeners but closes nothing: the driver goes on answering and acting. */
export class UsableAfterCleanup extends DriverDecorator {
  readonly #offs = new Set<() => void>();
  override registerEventListener(listener: LifecycleListener): () => void {
    const off = this.inner.registerEventListener(listener);
    this.#offs.add(off);
    return () => {
      this.#offs.delete(off);
      off();
    };
  }
  override async cleanupHost(): Promise<void> {
    for (const off of this.#offs) off();
    this.#offs.clear();
  }
}

/** An abort with no migration running is swallowed: it resolves as if it had aborted something. */
export class AbortNothingResolves extends DriverDecorator {
  override async liveMigrationAbort(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.inner.liveMigrationAbort(instance, options).catch((err: unknown) => {
      if (!(err instanceof InvalidStateError)) throw err;
    });
  }
}

/** An abort with no migration running is refused but kept: the instance's next migration fails at once. */
export class StaleAbortKept extends DriverDecorator {
  readonly #pending = new Set<string>();
  override async liveMigrationAbort(instance: Instance, options?: OperationOptions): Promise<void> {
    try {
      await this.inner.liveMigrationAbort(instance, options);
    } catch (err) {
      if (err instanceof InvalidStateError) this.#pending.add(instance.uuid);
      throw err;
    }
  }
  override async liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    if (this.#pending.delete(instance.uuid)) throw new LiveMigrationFailedError(instance.uuid, "aborted by request");
    return this.inner.liveMigration(instance, data, options);
  }
}

/** Aborting for an instance the host does not have says "not migrating" (InvalidStateError), not not-found. */
export class AbortUnknownInvalidState extends DriverDecorator {
  override async liveMigrationAbort(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.inner.liveMigrationAbort(instance, options).catch((err: unknown) => {
      throw err instanceof InstanceNotFoundError ? new InvalidStateError(instance.uuid, "liveMigrationAbort", "not migrating") : err;
    });
  }
}

/** Hands the caller's timeoutMs to setTimeout as it is: Infinity or 30 days fire after 1 ms, the spawn times out at once. */
export class UnboundedTimeoutFires extends DriverDecorator {
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    const ms = options?.timeoutMs;
    if (ms !== undefined && ms > 2_147_483_647) {
      await new Promise((r) => setTimeout(r, 1));
      throw new OperationTimeoutError("spawn", ms);
    }
    return this.inner.spawn(request, options);
  }
}

/** Destroy's "unknown instance is fine" swallows the cleaned-up driver's refusal: a destroy after cleanupHost resolves, doing nothing. */
export class DestroyAfterCleanupQuiet extends DriverDecorator {
  override async destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    await this.inner.destroy(instance, options).catch((err: unknown) => {
      if (!(err instanceof HypervisorUnavailableError)) throw err;
    });
  }
}

/** A failed spawn's cleanup destroys with the default destroyDisks: the disk an earlier destroy kept goes with it. */
export class FailedSpawnDeletesKeptDisk extends DriverDecorator {
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    try {
      await this.inner.spawn(request, options);
    } catch (err) {
      await this.inner.destroy(request.instance).catch(() => undefined);
      throw err;
    }
  }
}

/** A migration ended by liveMigrationAbort rejects with OperationAbortedError, not the contract's LiveMigrationFailedError. */
export class AbortedMoveUntyped extends DriverDecorator {
  readonly #aborted = new Set<string>();
  override async liveMigrationAbort(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#aborted.add(instance.uuid);
    return this.inner.liveMigrationAbort(instance, options);
  }
  override async liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    this.#aborted.delete(instance.uuid);
    try {
      await this.inner.liveMigration(instance, data, options);
    } catch (err) {
      if (err instanceof LiveMigrationFailedError && this.#aborted.has(instance.uuid)) throw new OperationAbortedError("liveMigration");
      throw err;
    }
  }
}

/** listInstanceSnapshots of an instance the host does not have answers [] (a query of nothing), not InstanceNotFoundError. */
export class UnknownSnapshotListEmpty extends DriverDecorator {
  override async listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    return this.inner.listInstanceSnapshots(instance, options).catch((err: unknown) => {
      if (err instanceof InstanceNotFoundError) return [];
      throw err;
    });
  }
}

/** The migration's progress monitor outlives the call: cut short by its caller, it goes on reporting for a while. */
export class ProgressAfterCancel extends DriverDecorator {
  override async liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    const report = options?.onProgress;
    const t0 = Date.now();
    const monitor = report
      ? setInterval(() => report({ dataTotalBytes: 100, dataProcessedBytes: 50, dataRemainingBytes: 50, elapsedMs: Date.now() - t0 }), 40)
      : undefined;
    try {
      await this.inner.liveMigration(instance, data, options);
      clearInterval(monitor);
    } catch (err) {
      // The monitor is stopped on its next check of the job, not when the call gives up.
      setTimeout(() => clearInterval(monitor), 300);
      throw err;
    }
  }
}

/** Without adminPasswordAnyUser, refuses every image that names an account, even the guest's own root. */
export class RefusesNamedRoot extends DriverDecorator {
  override get capabilities(): Capabilities {
    return { ...this.inner.capabilities, adminPasswordAnyUser: false };
  }
  override async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    const named = instance.imageMeta.properties.os_admin_user;
    if (named) throw new UnsupportedOperationError("adminPasswordAnyUser", this.name, { detail: `the image names account ${named}` });
    return this.inner.setAdminPassword(instance, password, options);
  }
}

/** A snapshot id past 255 characters is looked up (and not found) instead of refused as input. */
export class LongSnapshotIdLookedUp extends DriverDecorator {
  override async revertToInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    if (typeof snapshotId === "string" && snapshotId.length > 255) throw new SnapshotNotFoundError(instance.uuid, snapshotId.slice(0, 16));
    return this.inner.revertToInstanceSnapshot(instance, snapshotId, options);
  }
}

/** Refuses a description past 1,000 characters (a storage column's size), where the contract allows 1,024. */
export class DescriptionBoundTooTight extends DriverDecorator {
  override async createInstanceSnapshot(
    instance: Instance,
    name: string,
    options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot> {
    if ((options?.description?.length ?? 0) > 1000) throw new InvalidInputError("description", "at most 1000 characters");
    return this.inner.createInstanceSnapshot(instance, name, options);
  }
}

/** A power off's clean wait listens on the caller's signal and never stops listening once done. */
export class WaitListenerLeft extends DriverDecorator {
  // One left per signal is the defect; more would only set off Node's leak warning in the kit's runs.
  readonly #leftOn = new WeakSet<AbortSignal>();
  override async powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    const signal = options?.signal;
    if (signal && !this.#leftOn.has(signal)) {
      this.#leftOn.add(signal);
      signal.addEventListener("abort", () => undefined);
    }
    return this.inner.powerOff(instance, options);
  }
}

/** liveMigration past its deadline says so at the deadline, but the move it started goes on and lands on the destination. */
export class MigrationDeadlineCompletesLate extends DriverDecorator {
  override liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    const timeoutMs = options?.timeoutMs;
    if (timeoutMs === undefined) return this.inner.liveMigration(instance, data, options);
    const { timeoutMs: _dropped, ...rest } = options ?? {};
    const moving = this.inner.liveMigration(instance, data, rest);
    moving.catch(() => undefined);
    return new Promise((_resolve, reject) =>
      setTimeout(() => reject(new OperationTimeoutError("liveMigration", timeoutMs)), timeoutMs),
    );
  }
}

/** preLiveMigration drops the caller's deadline: on a slow destination it prepares long after the caller gave up. */
export class PreMigrationIgnoresDeadline extends DriverDecorator {
  override preLiveMigration(
    instance: Instance,
    data: MigrateData,
    context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    const { timeoutMs: _dropped, ...rest } = options ?? {};
    return this.inner.preLiveMigration(instance, data, context, rest);
  }
}

/**
 * Rescue mode kept in one field for the whole driver (the instance rescued last), not per instance:
 * alone every rescue and unrescue is right; with two instances rescued, unrescuing the first brings
 * back the second and leaves the first in rescue.
 */
export class RescueOneSlot extends DriverDecorator {
  #rescued: Instance | undefined;
  override async rescue(instance: Instance, rescueImageMeta: ImageMeta, options?: RescueOptions): Promise<void> {
    await this.inner.rescue(instance, rescueImageMeta, options);
    this.#rescued = instance;
  }
  override unrescue(instance: Instance, options?: OperationOptions): Promise<void> {
    const target = this.#rescued ?? instance;
    this.#rescued = undefined;
    return this.inner.unrescue(target, options);
  }
}

/**
 * The rescue password held in one field for the whole driver while the rescue system is prepared:
 * two rescues at once both give their rescue systems the password that came last.
 */
export class RescuePasswordOneSlot extends DriverDecorator {
  #password: Secret | undefined;
  override async rescue(instance: Instance, rescueImageMeta: ImageMeta, options?: RescueOptions): Promise<void> {
    if (options?.rescuePassword === undefined) return this.inner.rescue(instance, rescueImageMeta, options);
    this.#password = options.rescuePassword;
    // Preparing the rescue disk: long enough for another rescue's call to arrive.
    await new Promise((r) => setTimeout(r, 5));
    return this.inner.rescue(instance, rescueImageMeta, { ...options, rescuePassword: this.#password });
  }
}
