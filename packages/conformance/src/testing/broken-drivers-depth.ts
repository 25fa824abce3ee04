/**
 * Broken variants for issue 8's deeper checks: ONE realistic defect each, as small decorators
 * around the healthy fake, written from the mistakes driver authors make (a crashed guest treated
 * as stopped, snapshot metadata in the way of undefine, a stale image upload, a resume that cold
 * boots, an event listener slot instead of a list, the caller's signal not passed down, the wrong
 * storage mode waved through, bandwidth in bytes, the password set for root whatever the image
 * says, task states the compute service cannot compare-and-set). The kit must catch every one at
 * MUST level (`broken-drivers-depth.test.ts`); the catch rate is reported per class.
 */
import { serializeDisk, type DiskFiles } from "@virtkit/driver-fake";
import {
  HypervisorUnavailableError,
  InvalidStateError,
  MigrationPreCheckError,
  OperationAbortedError,
  OperationTimeoutError,
  PasswordSetFailedError,
  PowerState,
  TaskState,
  UnsupportedOperationError,
  throwIfAborted,
  withDeadline,
  type Capabilities,
  type ComputeDriver,
  type DestroyOptions,
  type HostInfo,
  type ImageMeta,
  type ImageSnapshotOptions,
  type Instance,
  type InstanceInfo,
  type InstanceSnapshot,
  type LifecycleEvent,
  type LifecycleListener,
  type LiveMigrationOptions,
  type MigrateData,
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
import type { FakeWrapContext } from "../environments/fake-environment.js";
import { ListOmitsState, stateOf, type BrokenVariant, type DefectClass } from "./broken-drivers.js";
import { DriverDecorator } from "./driver-decorator.js";


async function snapshotIds(driver: ComputeDriver, instance: Instance): Promise<string[]> {
  try {
    return (await driver.listInstanceSnapshots(instance)).map((s) => s.id);
  } catch {
    return [];
  }
}

/** A decorator holding the wrap context (guest access, other hosts' drivers). */
class WithContext extends DriverDecorator {
  constructor(
    inner: ComputeDriver,
    protected readonly ctx: FakeWrapContext,
  ) {
    super(inner);
  }
  protected guest(instance: Instance) {
    return this.ctx.cloud.guest(instance.uuid);
  }
  /** A copy of the guest's files (through the guest's public file API). */
  protected diskOf(instance: Instance): DiskFiles {
    const g = this.guest(instance);
    return new Map(g.listFiles().map((f) => [f, g.readFile(f)!] as const));
  }
  /** Puts the guest's files back to `files`. */
  protected restore(instance: Instance, files: DiskFiles): void {
    const g = this.guest(instance);
    for (const f of g.listFiles()) g.deleteFile(f);
    for (const [f, data] of files) g.writeFile(f, data);
  }
  /** The guest boots once more (what its boot counter sees). */
  protected bootAgain(instance: Instance): void {
    this.guest(instance).boots += 1;
  }
  /** The (wrapped) driver whose host has the instance now. */
  protected async driverWith(instance: Instance): Promise<ComputeDriver | undefined> {
    for (const d of this.ctx.drivers()) if (await d.instanceExists(instance)) return d;
    return undefined;
  }
}

/** Fans events out to its own listeners (so a subclass can distort delivery) and can announce its own. */
class Tap extends WithContext {
  protected readonly listeners: LifecycleListener[] = [];
  #subscribed = false;
  override registerEventListener(listener: LifecycleListener): () => void {
    if (!this.#subscribed) {
      // One subscription to the driver, for the life of the decorator; the fan-out is ours.
      this.inner.registerEventListener((e) => this.fanOut(e));
      this.#subscribed = true;
    }
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }
  /** Delivers one event; a throwing listener harms no other. */
  protected fanOut(event: LifecycleEvent): void {
    for (const l of [...this.listeners]) {
      try {
        this.deliver(event, l);
      } catch {
        // The listener's own failure.
      }
    }
  }
  protected deliver(event: LifecycleEvent, listener: LifecycleListener): void {
    listener(event);
  }
  protected announce(instance: Instance, transition: LifecycleEvent["transition"], host = this.ctx.host): void {
    this.fanOut({ instanceUuid: instance.uuid, transition, host, timestamp: Date.now() });
  }
}

// -- crashed ------------------------------------------------------------------------------------

class CrashedPowerOnRefused extends DriverDecorator {
  override async powerOn(i: Instance, o?: OperationOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.CRASHED) throw new InvalidStateError(i.uuid, "powerOn", "CRASHED");
    return this.inner.powerOn(i, o);
  }
}
class CrashedPowerOffNoop extends DriverDecorator {
  override async powerOff(i: Instance, o?: PowerOffOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.CRASHED) return; // "not running: nothing to stop"
    return this.inner.powerOff(i, o);
  }
}
class CrashedHardRebootNoop extends DriverDecorator {
  override async reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.CRASHED) return; // reset of a dead vCPU does nothing
    return this.inner.reboot(i, t, o);
  }
}
class CrashedReportedShutdown extends DriverDecorator {
  override async getInfo(i: Instance, o?: OperationOptions): Promise<InstanceInfo> {
    const info = await this.inner.getInfo(i, o);
    return info.state === PowerState.CRASHED ? { ...info, state: PowerState.SHUTDOWN } : info;
  }
}
class CrashedDestroyRefused extends DriverDecorator {
  override async destroy(i: Instance, o?: DestroyOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.CRASHED) throw new InvalidStateError(i.uuid, "destroy", "CRASHED");
    return this.inner.destroy(i, o);
  }
}
class CrashedEventDropped extends Tap {
  protected override deliver(e: LifecycleEvent, l: LifecycleListener): void {
    if (e.transition !== "CRASHED") l(e);
  }
}
class CrashedPauseAccepted extends DriverDecorator {
  override async pause(i: Instance, o?: OperationOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.CRASHED) return;
    return this.inner.pause(i, o);
  }
}
class CrashedRevertStaysCrashed extends DriverDecorator {
  override async revertToInstanceSnapshot(i: Instance, id: string, o?: OperationOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.CRASHED) {
      await this.inner.listInstanceSnapshots(i, o); // "restores the disk" and never restarts the guest
      return;
    }
    return this.inner.revertToInstanceSnapshot(i, id, o);
  }
}
class CrashedPowerOnSaysResumed extends Tap {
  readonly #fromCrash = new Set<string>();
  override async powerOn(i: Instance, o?: OperationOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.CRASHED) this.#fromCrash.add(i.uuid);
    try {
      return await this.inner.powerOn(i, o);
    } finally {
      this.#fromCrash.delete(i.uuid);
    }
  }
  protected override deliver(e: LifecycleEvent, l: LifecycleListener): void {
    l(this.#fromCrash.has(e.instanceUuid) && e.transition === "STARTED" ? { ...e, transition: "RESUMED" } : e);
  }
}
// -- snapshots present --------------------------------------------------------------------------

class DestroyRefusedWithSnapshots extends DriverDecorator {
  override async destroy(i: Instance, o?: DestroyOptions) {
    if ((await snapshotIds(this.inner, i)).length > 0) {
      throw new InvalidStateError(i.uuid, "destroy", "has snapshot metadata");
    }
    return this.inner.destroy(i, o);
  }
}
class DestroyWithSnapshotsLeavesIt extends DriverDecorator {
  override async destroy(i: Instance, o?: DestroyOptions) {
    if ((await snapshotIds(this.inner, i)).length > 0) {
      // The domain was destroyed but undefine failed (snapshot metadata); the error is swallowed.
      if ((await stateOf(this.inner, i)) !== PowerState.SHUTDOWN) await this.inner.powerOff(i, { cleanShutdownTimeoutSec: 0 });
      return;
    }
    return this.inner.destroy(i, o);
  }
}
/** After `op`, every instance snapshot is gone (the domain was redefined from scratch). */
function dropsSnapshotsAfter(op: "rescue" | "reboot" | "powerOff" | "powerOn" | "unrescue" | "snapshot") {
  return class extends DriverDecorator {
    async #drop(i: Instance): Promise<void> {
      for (const id of await snapshotIds(this.inner, i)) await this.inner.deleteInstanceSnapshot(i, id);
    }
    override async rescue(i: Instance, m: ImageMeta, o?: RescueOptions) {
      await this.inner.rescue(i, m, o);
      if (op === "rescue") await this.#drop(i);
    }
    override async unrescue(i: Instance, o?: OperationOptions) {
      await this.inner.unrescue(i, o);
      if (op === "unrescue") await this.#drop(i);
    }
    override async reboot(i: Instance, t: RebootType, o?: OperationOptions) {
      await this.inner.reboot(i, t, o);
      if (op === "reboot" && t === "HARD") await this.#drop(i);
    }
    override async powerOff(i: Instance, o?: PowerOffOptions) {
      await this.inner.powerOff(i, o);
      if (op === "powerOff") await this.#drop(i);
    }
    override async powerOn(i: Instance, o?: OperationOptions) {
      await this.inner.powerOn(i, o);
      if (op === "powerOn") await this.#drop(i);
    }
    override async snapshot(i: Instance, id: string, o?: ImageSnapshotOptions) {
      await this.inner.snapshot(i, id, o);
      if (op === "snapshot") await this.#drop(i);
    }
  };
}
class SuspendRefusedWithSnapshots extends DriverDecorator {
  override async suspend(i: Instance, o?: OperationOptions) {
    if ((await snapshotIds(this.inner, i)).length > 0) throw new InvalidStateError(i.uuid, "suspend", "has snapshots");
    return this.inner.suspend(i, o);
  }
}
class RescueRefusedWithSnapshots extends DriverDecorator {
  override async rescue(i: Instance, m: ImageMeta, o?: RescueOptions) {
    if ((await snapshotIds(this.inner, i)).length > 0) throw new InvalidStateError(i.uuid, "rescue", "has snapshots");
    return this.inner.rescue(i, m, o);
  }
}

// -- effects ------------------------------------------------------------------------------------

class ImageSnapshotStale extends WithContext {
  readonly #first = new Map<string, Uint8Array>();
  override async snapshot(i: Instance, imageId: string, o?: ImageSnapshotOptions) {
    await this.inner.snapshot(i, imageId, o);
    const cached = this.#first.get(i.uuid);
    if (cached) await this.ctx.imageService.update(imageId, {}, cached);
    else this.#first.set(i.uuid, await this.ctx.imageService.download(imageId));
  }
}
class ImageSnapshotEmptyDisk extends WithContext {
  override async snapshot(i: Instance, imageId: string, o?: ImageSnapshotOptions) {
    await this.inner.snapshot(i, imageId, o);
    // Uploaded the freshly created (empty) target volume instead of the instance's disk.
    await this.ctx.imageService.update(imageId, {}, serializeDisk(new Map()));
  }
}
class RevertToNewest extends DriverDecorator {
  override async revertToInstanceSnapshot(i: Instance, id: string, o?: OperationOptions) {
    const all = await this.inner.listInstanceSnapshots(i, o);
    return this.inner.revertToInstanceSnapshot(i, all.length > 0 && all.some((s) => s.id === id) ? all[all.length - 1]!.id : id, o);
  }
}
class RevertToOldest extends DriverDecorator {
  override async revertToInstanceSnapshot(i: Instance, id: string, o?: OperationOptions) {
    const all = await this.inner.listInstanceSnapshots(i, o);
    return this.inner.revertToInstanceSnapshot(i, all.length > 0 && all.some((s) => s.id === id) ? all[0]!.id : id, o);
  }
}
class SnapshotsNewestFirst extends DriverDecorator {
  override async listInstanceSnapshots(i: Instance, o?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    return [...(await this.inner.listInstanceSnapshots(i, o))].reverse();
  }
}
class DeleteRemovesNewest extends DriverDecorator {
  override async deleteInstanceSnapshot(i: Instance, id: string, o?: OperationOptions) {
    const all = await this.inner.listInstanceSnapshots(i, o);
    const newest = all[all.length - 1];
    return this.inner.deleteInstanceSnapshot(i, all.some((s) => s.id === id) && newest ? newest.id : id, o);
  }
}
class RevertKeepsCurrentDisk extends WithContext {
  override async revertToInstanceSnapshot(i: Instance, id: string, o?: OperationOptions) {
    const disk = this.diskOf(i);
    await this.inner.revertToInstanceSnapshot(i, id, o);
    this.restore(i, disk); // reverted the metadata and power state, not the disk
  }
}
class ResumeColdBoots extends WithContext {
  override async resume(i: Instance, o?: OperationOptions) {
    await this.inner.resume(i, o);
    this.bootAgain(i); // the saved memory was discarded and the guest booted afresh
  }
}
class ResumeLosesWrites extends WithContext {
  readonly #atSpawn = new Map<string, DiskFiles>();
  override async spawn(r: SpawnRequest, o?: OperationOptions) {
    await this.inner.spawn(r, o);
    this.#atSpawn.set(r.instance.uuid, this.diskOf(r.instance));
  }
  override async resume(i: Instance, o?: OperationOptions) {
    await this.inner.resume(i, o);
    const disk = this.#atSpawn.get(i.uuid);
    if (disk) this.restore(i, disk); // the save file was restored over an older overlay
  }
}
class UnpauseReboots extends WithContext {
  override async unpause(i: Instance, o?: OperationOptions) {
    await this.inner.unpause(i, o);
    this.bootAgain(i);
  }
}
class HardRebootNoop extends DriverDecorator {
  override async reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    if (t === "HARD" && (await stateOf(this.inner, i)) === PowerState.RUNNING) return;
    return this.inner.reboot(i, t, o);
  }
}
class SoftRebootNoop extends DriverDecorator {
  override async reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    if (t === "SOFT" && (await stateOf(this.inner, i)) === PowerState.RUNNING) return; // ACPI sent, never waited for
    return this.inner.reboot(i, t, o);
  }
}
class SoftRebootNoFallback extends WithContext {
  override async reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    if (t === "SOFT" && this.guest(i).ignoresAcpi && (await stateOf(this.inner, i)) === PowerState.RUNNING) return;
    return this.inner.reboot(i, t, o);
  }
}
class HardRebootBootsTwice extends WithContext {
  override async reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    await this.inner.reboot(i, t, o);
    if (t === "HARD") this.bootAgain(i); // recreated the domain, then reset it as well
  }
}
class PowerOnRunningReboots extends DriverDecorator {
  override async powerOn(i: Instance, o?: OperationOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.RUNNING) return this.inner.reboot(i, "HARD", o);
    return this.inner.powerOn(i, o);
  }
}
/** After `op`, the guest's disk is the image's again (the root disk was recreated). */
function diskRecreatedAfter(op: "reboot" | "powerOn") {
  return class extends WithContext {
    #reset(i: Instance): void {
      const g = this.guest(i);
      for (const f of g.listFiles()) if (f !== "/etc/hostname") g.deleteFile(f);
    }
    override async reboot(i: Instance, t: RebootType, o?: OperationOptions) {
      await this.inner.reboot(i, t, o);
      if (op === "reboot" && t === "HARD") this.#reset(i);
    }
    override async powerOn(i: Instance, o?: OperationOptions) {
      const before = await stateOf(this.inner, i);
      await this.inner.powerOn(i, o);
      if (op === "powerOn" && before === PowerState.SHUTDOWN) this.#reset(i);
    }
  };
}
class BlockMigrationLosesData extends WithContext {
  override async liveMigration(i: Instance, data: MigrateData, o?: LiveMigrationOptions) {
    await this.inner.liveMigration(i, data, o);
    if (data.policy.block) this.restore(i, new Map()); // the disk was not copied, a blank one created
  }
}

// -- units --------------------------------------------------------------------------------------

/** getInfo passed through `f`. */
function infoAs(f: (info: InstanceInfo) => InstanceInfo) {
  return class extends DriverDecorator {
    override async getInfo(i: Instance, o?: OperationOptions) {
      return f(await this.inner.getInfo(i, o));
    }
  };
}
/** getHostInfo passed through `f`. */
function hostAs(f: (info: HostInfo) => HostInfo) {
  return class extends DriverDecorator {
    override async getHostInfo(o?: OperationOptions) {
      return f(await this.inner.getHostInfo(o));
    }
  };
}

// -- listeners ----------------------------------------------------------------------------------

class OnlyLastListener extends DriverDecorator {
  #off: (() => void) | undefined;
  override registerEventListener(l: LifecycleListener): () => void {
    this.#off?.();
    const off = this.inner.registerEventListener(l);
    this.#off = off;
    return off;
  }
}
class RemoverRemovesAll extends Tap {
  override registerEventListener(l: LifecycleListener): () => void {
    super.registerEventListener(l);
    return () => {
      this.listeners.length = 0;
    };
  }
}
class ThrowingListenerStopsDelivery extends Tap {
  protected override fanOut(e: LifecycleEvent): void {
    for (const l of this.listeners) l(e);
  }
}
class DoubleRemoveRemovesAnother extends Tap {
  override registerEventListener(l: LifecycleListener): () => void {
    super.registerEventListener(l);
    return () => {
      this.listeners.splice(this.listeners.indexOf(l), 1);
    };
  }
}
class NewListenerGetsReplay extends Tap {
  #last: LifecycleEvent | undefined;
  protected override fanOut(e: LifecycleEvent): void {
    this.#last = e;
    super.fanOut(e);
  }
  override registerEventListener(l: LifecycleListener): () => void {
    const off = super.registerEventListener(l);
    if (this.#last) l(this.#last);
    return off;
  }
}
class RemoverDoesNothing extends DriverDecorator {
  override registerEventListener(l: LifecycleListener): () => void {
    this.inner.registerEventListener(l);
    return () => undefined;
  }
}
class EventsUndeclaredButRegister extends DriverDecorator {
  override get capabilities(): Capabilities {
    return { ...this.inner.capabilities, lifecycleEvents: false };
  }
  override registerEventListener(): () => void {
    return () => undefined;
  }
}
class EventsUndeclaredUntyped extends DriverDecorator {
  override get capabilities(): Capabilities {
    return { ...this.inner.capabilities, lifecycleEvents: false };
  }
  override registerEventListener(): () => void {
    throw new Error("events are not supported");
  }
}
class MigrationSourceSaysStopped extends Tap {
  constructor(
    inner: ComputeDriver,
    ctx: FakeWrapContext,
    private readonly onlyPaused: boolean,
  ) {
    super(inner, ctx);
  }
  override async liveMigration(i: Instance, data: MigrateData, o?: LiveMigrationOptions) {
    const paused = (await stateOf(this.inner, i)) === PowerState.PAUSED;
    await this.inner.liveMigration(i, data, o);
    // libvirt's STOPPED (reason MIGRATED) passed on as a plain STOPPED.
    if (!this.onlyPaused || paused) this.announce(i, "STOPPED");
  }
}
class TimestampsInSeconds extends Tap {
  protected override deliver(e: LifecycleEvent, l: LifecycleListener): void {
    l({ ...e, timestamp: Math.floor(e.timestamp / 1000) }); // time(2), not Date.now()
  }
}
class MigrationCompletedNamesDestination extends Tap {
  protected override deliver(e: LifecycleEvent, l: LifecycleListener): void {
    l(e.transition === "MIGRATION_COMPLETED" ? { ...e, host: `${e.host}-destination` } : e);
  }
}

// -- deadlines ----------------------------------------------------------------------------------

type DeadlineOp =
  | "spawn"
  | "destroy"
  | "reboot-hard"
  | "reboot-soft"
  | "power-off"
  | "power-on"
  | "pause"
  | "unpause"
  | "suspend"
  | "resume"
  | "rescue"
  | "unrescue"
  | "image-snapshot"
  | "instance-snapshot-create"
  | "instance-snapshot-revert"
  | "instance-snapshot-delete"
  | "set-admin-password";

const DEADLINE_OPS: readonly DeadlineOp[] = [
  "spawn",
  "destroy",
  "reboot-hard",
  "reboot-soft",
  "power-off",
  "power-on",
  "pause",
  "unpause",
  "suspend",
  "resume",
  "rescue",
  "unrescue",
  "image-snapshot",
  "instance-snapshot-create",
  "instance-snapshot-revert",
  "instance-snapshot-delete",
  "set-admin-password",
];

/**
 * `op` reports the caller's timeout or abort on time, but the work underneath never got the
 * signal: it goes on and completes later (the driver did not pass `signal` down).
 */
class LateCompletion extends DriverDecorator {
  constructor(
    inner: ComputeDriver,
    private readonly op: DeadlineOp,
  ) {
    super(inner);
  }
  #run<T>(op: DeadlineOp, o: OperationOptions | undefined, fn: (o: OperationOptions | undefined) => Promise<T>): Promise<T> {
    if (op !== this.op) return fn(o);
    const work = fn(undefined);
    work.catch(() => undefined);
    return withDeadline(op, o, 60_000, () => work);
  }
  override spawn(r: SpawnRequest, o?: OperationOptions) {
    return this.#run("spawn", o, (x) => this.inner.spawn(r, x));
  }
  override destroy(i: Instance, o?: DestroyOptions) {
    return this.#run("destroy", o, (x) => this.inner.destroy(i, x));
  }
  override reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    return this.#run(t === "HARD" ? "reboot-hard" : "reboot-soft", o, (x) => this.inner.reboot(i, t, x));
  }
  override powerOff(i: Instance, o?: PowerOffOptions) {
    const clean = o?.cleanShutdownTimeoutSec;
    return this.#run("power-off", o, (x) => this.inner.powerOff(i, { ...x, cleanShutdownTimeoutSec: clean }));
  }
  override powerOn(i: Instance, o?: OperationOptions) {
    return this.#run("power-on", o, (x) => this.inner.powerOn(i, x));
  }
  override pause(i: Instance, o?: OperationOptions) {
    return this.#run("pause", o, (x) => this.inner.pause(i, x));
  }
  override unpause(i: Instance, o?: OperationOptions) {
    return this.#run("unpause", o, (x) => this.inner.unpause(i, x));
  }
  override suspend(i: Instance, o?: OperationOptions) {
    return this.#run("suspend", o, (x) => this.inner.suspend(i, x));
  }
  override resume(i: Instance, o?: OperationOptions) {
    return this.#run("resume", o, (x) => this.inner.resume(i, x));
  }
  override rescue(i: Instance, m: ImageMeta, o?: RescueOptions) {
    return this.#run("rescue", o, (x) => this.inner.rescue(i, m, x));
  }
  override unrescue(i: Instance, o?: OperationOptions) {
    return this.#run("unrescue", o, (x) => this.inner.unrescue(i, x));
  }
  override snapshot(i: Instance, id: string, o?: ImageSnapshotOptions) {
    return this.#run("image-snapshot", o, (x) => this.inner.snapshot(i, id, x));
  }
  override createInstanceSnapshot(i: Instance, n: string, o?: OperationOptions & { readonly description?: string }) {
    return this.#run("instance-snapshot-create", o, (x) => this.inner.createInstanceSnapshot(i, n, x));
  }
  override revertToInstanceSnapshot(i: Instance, id: string, o?: OperationOptions) {
    return this.#run("instance-snapshot-revert", o, (x) => this.inner.revertToInstanceSnapshot(i, id, x));
  }
  override deleteInstanceSnapshot(i: Instance, id: string, o?: OperationOptions) {
    return this.#run("instance-snapshot-delete", o, (x) => this.inner.deleteInstanceSnapshot(i, id, x));
  }
  override setAdminPassword(i: Instance, p: Secret, o?: OperationOptions) {
    return this.#run("set-admin-password", o, (x) => this.inner.setAdminPassword(i, p, x));
  }
}
class PowerOnChecksSignalAfter extends DriverDecorator {
  override async powerOn(i: Instance, o?: OperationOptions) {
    await this.inner.powerOn(i, { timeoutMs: o?.timeoutMs });
    throwIfAborted("powerOn", o?.signal); // looked at the signal once the work was done
  }
}
class DestroyChecksSignalAfter extends DriverDecorator {
  override async destroy(i: Instance, o?: DestroyOptions) {
    await this.inner.destroy(i, { timeoutMs: o?.timeoutMs });
    throwIfAborted("destroy", o?.signal);
  }
}
class SuspendTimeoutUntyped extends DriverDecorator {
  override async suspend(i: Instance, o?: OperationOptions) {
    try {
      return await this.inner.suspend(i, o);
    } catch (err) {
      if (err instanceof OperationTimeoutError) throw new Error("virDomainManagedSave: timed out");
      throw err;
    }
  }
}
class ResumeAbortAsTimeout extends DriverDecorator {
  override async resume(i: Instance, o?: OperationOptions) {
    try {
      return await this.inner.resume(i, o);
    } catch (err) {
      if (err instanceof OperationAbortedError) throw new OperationTimeoutError("resume", o?.timeoutMs ?? 0);
      throw err;
    }
  }
}
class SnapshotDeadlineWrapped extends DriverDecorator {
  override async snapshot(i: Instance, id: string, o?: ImageSnapshotOptions) {
    try {
      return await this.inner.snapshot(i, id, o);
    } catch (err) {
      if (err instanceof OperationTimeoutError || err instanceof OperationAbortedError) {
        throw new HypervisorUnavailableError("fake", "the snapshot upload was interrupted", { cause: err });
      }
      throw err;
    }
  }
}

// -- migration ----------------------------------------------------------------------------------

class AcceptsNonBlockWithoutSharedStorage extends DriverDecorator {
  override async checkCanLiveMigrateDestination(i: Instance, s: HostInfo, p: MigrationPolicy, o?: OperationOptions) {
    try {
      return await this.inner.checkCanLiveMigrateDestination(i, s, p, o);
    } catch (err) {
      if (!(err instanceof MigrationPreCheckError) || !/share no storage/.test(err.message) || p.block) throw err;
      return { ...(await this.inner.checkCanLiveMigrateDestination(i, s, { ...p, block: true }, o)), policy: p };
    }
  }
}
class RequiresBlockAlways extends DriverDecorator {
  override async checkCanLiveMigrateDestination(i: Instance, s: HostInfo, p: MigrationPolicy, o?: OperationOptions) {
    if (!p.block) throw new MigrationPreCheckError("a block migration is required (storage sharing not detected)");
    return this.inner.checkCanLiveMigrateDestination(i, s, p, o);
  }
}
class AcceptsBlockOnSharedStorage extends DriverDecorator {
  override async checkCanLiveMigrateDestination(i: Instance, s: HostInfo, p: MigrationPolicy, o?: OperationOptions) {
    try {
      return await this.inner.checkCanLiveMigrateDestination(i, s, p, o);
    } catch (err) {
      if (!(err instanceof MigrationPreCheckError) || !/share storage/.test(err.message) || !p.block) throw err;
      return { ...(await this.inner.checkCanLiveMigrateDestination(i, s, { ...p, block: false }, o)), policy: p };
    }
  }
}
class SourceCheckAcceptsState extends DriverDecorator {
  constructor(
    inner: ComputeDriver,
    private readonly state: PowerState,
  ) {
    super(inner);
  }
  override async checkCanLiveMigrateSource(i: Instance, d: MigrateData, o?: OperationOptions) {
    if ((await stateOf(this.inner, i)) === this.state) return d; // only looked for the domain, not its state
    return this.inner.checkCanLiveMigrateSource(i, d, o);
  }
}
class DestinationIgnoresUsedMemory extends DriverDecorator {
  override async checkCanLiveMigrateDestination(i: Instance, s: HostInfo, p: MigrationPolicy, o?: OperationOptions) {
    try {
      return await this.inner.checkCanLiveMigrateDestination(i, s, p, o);
    } catch (err) {
      const host = await this.inner.getHostInfo(o);
      if (!(err instanceof MigrationPreCheckError) || !/free memory/.test(err.message) || i.flavor.memoryMb > host.memoryMb) {
        throw err;
      }
      return { sourceHost: s.hostname, destHost: host.hostname, policy: p, plan: this.planMigration(p), extra: {} };
    }
  }
}
class PausedArrivesRunning extends WithContext {
  override async liveMigration(i: Instance, data: MigrateData, o?: LiveMigrationOptions) {
    const paused = (await stateOf(this.inner, i)) === PowerState.PAUSED;
    await this.inner.liveMigration(i, data, o);
    if (paused) await (await this.driverWith(i))?.unpause(i); // started the destination domain unconditionally
  }
}
class PausedMigrationRefused extends DriverDecorator {
  override async checkCanLiveMigrateSource(i: Instance, d: MigrateData, o?: OperationOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.PAUSED) throw new MigrationPreCheckError("the instance is not running");
    return this.inner.checkCanLiveMigrateSource(i, d, o);
  }
}
/** Declares `capability` false while the inner fake still has it (a refusal of its own, or none). */
function undeclaring(capability: "pausedMigration" | "forceCompleteMigration" | "adminPasswordAnyUser") {
  return class extends WithContext {
    override get capabilities(): Capabilities {
      return { ...this.inner.capabilities, [capability]: false };
    }
  };
}
class PausedRefusalUnpauses extends undeclaring("pausedMigration") {
  override async checkCanLiveMigrateSource(i: Instance, d: MigrateData, o?: OperationOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.PAUSED) {
      await this.inner.unpause(i, o); // "made it migratable" before noticing it cannot
      throw new UnsupportedOperationError("pausedMigration", this.name);
    }
    return this.inner.checkCanLiveMigrateSource(i, d, o);
  }
}
class ForceCompleteRefusalAborts extends undeclaring("forceCompleteMigration") {
  override async liveMigrationForceComplete(i: Instance, o?: OperationOptions): Promise<void> {
    await this.inner.liveMigrationAbort(i, o); // cancels the migration task on the way out
    throw new UnsupportedOperationError("forceCompleteMigration", this.name);
  }
}
class PasswordRefusalSetsRoot extends undeclaring("adminPasswordAnyUser") {
  override async setAdminPassword(i: Instance, p: Secret, o?: OperationOptions) {
    if (!i.imageMeta.properties.os_admin_user) return this.inner.setAdminPassword(i, p, o);
    await this.guest(i).setPassword("root", p); // the agent's command went out before the check
    throw new UnsupportedOperationError("adminPasswordAnyUser", this.name);
  }
}
class ForceCompleteNoop extends DriverDecorator {
  override async liveMigrationForceComplete(): Promise<void> {}
}
class NonLiveRefused extends DriverDecorator {
  override async checkCanLiveMigrateDestination(i: Instance, s: HostInfo, p: MigrationPolicy, o?: OperationOptions) {
    if (!p.live) throw new MigrationPreCheckError("only live migration is supported");
    return this.inner.checkCanLiveMigrateDestination(i, s, p, o);
  }
}
class NonLiveArrivesPaused extends WithContext {
  override async liveMigration(i: Instance, data: MigrateData, o?: LiveMigrationOptions) {
    await this.inner.liveMigration(i, data, o);
    if (!data.policy.live) await (await this.driverWith(i))?.pause(i); // never resumed after the copy
  }
}

// -- plan ---------------------------------------------------------------------------------------

/** planMigration passed through `f` (with the policy it was asked for). */
function planAs(f: (plan: MigrationPlan, policy: MigrationPolicy, facts?: MigrationHostFacts) => MigrationPlan) {
  return class extends DriverDecorator {
    override planMigration(policy: MigrationPolicy, facts?: MigrationHostFacts): MigrationPlan {
      return f(this.inner.planMigration(policy, facts), policy, facts);
    }
  };
}
const withBits = (plan: MigrationPlan, add: number, remove = 0, names: { add?: string[]; remove?: string[] } = {}) => ({
  ...plan,
  bitmask: ((plan.bitmask ?? 0) | add) & ~remove,
  flags: [...plan.flags.filter((f) => !(names.remove ?? []).includes(f)), ...(names.add ?? [])],
});
class NegativeBandwidthClamped extends DriverDecorator {
  override planMigration(policy: MigrationPolicy, facts?: MigrationHostFacts): MigrationPlan {
    return this.inner.planMigration({ ...policy, bandwidthMiBps: Math.max(0, policy.bandwidthMiBps) }, facts);
  }
}
class TunnelledPostCopyDropsPostCopy extends DriverDecorator {
  override planMigration(policy: MigrationPolicy, facts?: MigrationHostFacts): MigrationPlan {
    if (policy.tunnelled && policy.permitPostCopy) return this.inner.planMigration({ ...policy, permitPostCopy: false }, facts);
    return this.inner.planMigration(policy, facts);
  }
}

// -- accounts -----------------------------------------------------------------------------------

const osOf = (i: Instance) => i.osType ?? i.imageMeta.properties.os_type;

/** Sets the password for `account(instance)` (or leaves it to the driver when undefined). */
class PasswordAccount extends WithContext {
  constructor(
    inner: ComputeDriver,
    ctx: FakeWrapContext,
    private readonly account: (i: Instance) => string | undefined,
    private readonly alsoDriver = false,
  ) {
    super(inner, ctx);
  }
  override async setAdminPassword(i: Instance, p: Secret, o?: OperationOptions) {
    const acct = this.account(i);
    if (acct === undefined || this.alsoDriver || (await stateOf(this.inner, i)) !== PowerState.RUNNING) {
      await this.inner.setAdminPassword(i, p, o);
      if (acct === undefined || !this.alsoDriver) return;
    }
    await this.guest(i).setPassword(acct, p);
  }
}
class PasswordLinuxDefaultUser extends DriverDecorator {
  override async setAdminPassword(i: Instance, p: Secret, o?: OperationOptions) {
    if (!i.imageMeta.properties.os_admin_user && osOf(i) !== "windows" && (await stateOf(this.inner, i)) === PowerState.RUNNING) {
      throw new PasswordSetFailedError(i.uuid, "user cloud-user does not exist in the guest"); // assumed a cloud-init user
    }
    return this.inner.setAdminPassword(i, p, o);
  }
}
class PasswordWhileHeld extends WithContext {
  constructor(
    inner: ComputeDriver,
    ctx: FakeWrapContext,
    private readonly state: PowerState,
    private readonly how: "accept" | "untyped" | "unpause",
  ) {
    super(inner, ctx);
  }
  override async setAdminPassword(i: Instance, p: Secret, o?: OperationOptions) {
    if ((await stateOf(this.inner, i)) === this.state) {
      if (this.how === "accept") return this.guest(i).setPassword("root", p); // the agent queued it
      if (this.how === "untyped") throw new Error("guest agent is not connected");
      await this.inner.unpause(i, o);
    }
    return this.inner.setAdminPassword(i, p, o);
  }
}

// -- destroy ------------------------------------------------------------------------------------

class DestroyPausedRefused extends DriverDecorator {
  override async destroy(i: Instance, o?: DestroyOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.PAUSED) throw new InvalidStateError(i.uuid, "destroy", "PAUSED");
    return this.inner.destroy(i, o);
  }
}
class DestroyRescuedStopsOnly extends DriverDecorator {
  readonly #rescued = new Set<string>();
  override async rescue(i: Instance, m: ImageMeta, o?: RescueOptions) {
    await this.inner.rescue(i, m, o);
    this.#rescued.add(i.uuid);
  }
  override async unrescue(i: Instance, o?: OperationOptions) {
    await this.inner.unrescue(i, o);
    this.#rescued.delete(i.uuid);
  }
  override async destroy(i: Instance, o?: DestroyOptions) {
    if (this.#rescued.delete(i.uuid)) return this.inner.powerOff(i, { ...o, cleanShutdownTimeoutSec: 0 }); // only the rescue domain
    return this.inner.destroy(i, o);
  }
}

// -- service ------------------------------------------------------------------------------------

class TaskStateWrongExpected extends DriverDecorator {
  override snapshot(i: Instance, id: string, o?: ImageSnapshotOptions) {
    const cb = o?.onTaskState;
    return this.inner.snapshot(i, id, { ...o, onTaskState: cb ? (ts) => cb(ts, null) : undefined });
  }
}
class TaskStateUploadingTwice extends DriverDecorator {
  override snapshot(i: Instance, id: string, o?: ImageSnapshotOptions) {
    const cb = o?.onTaskState;
    return this.inner.snapshot(i, id, {
      ...o,
      onTaskState: cb
        ? async (ts, ex) => {
            await cb(ts, ex);
            if (ts === TaskState.IMAGE_UPLOADING) await cb(TaskState.IMAGE_UPLOADING, TaskState.IMAGE_PENDING_UPLOAD); // retried the upload step
          }
        : undefined,
    });
  }
}
class StopReportedLate extends DriverDecorator {
  readonly #justStopped = new Set<string>();
  override async powerOff(i: Instance, o?: PowerOffOptions) {
    await this.inner.powerOff(i, o);
    this.#justStopped.add(i.uuid);
  }
  override async getInfo(i: Instance, o?: OperationOptions): Promise<InstanceInfo> {
    const info = await this.inner.getInfo(i, o);
    // The first read after a stop comes from a cache filled before it.
    return this.#justStopped.delete(i.uuid) ? { ...info, state: PowerState.RUNNING } : info;
  }
}

// -- the table ----------------------------------------------------------------------------------

type Wrap = NonNullable<BrokenVariant["wrap"]>;
const v = (
  defectClass: DefectClass,
  name: string,
  defect: string,
  caughtBy: readonly string[],
  wrap: Wrap,
): BrokenVariant => ({ name, defectClass, defect, caughtBy, wrap });

const DeadlineVariants: BrokenVariant[] = DEADLINE_OPS.map((op) =>
  v("deadlines", `late-completion-${op}`, `${op} reports the deadline or abort but the work goes on and completes later`, ["deadlines.every-operation"], (d) => new LateCompletion(d, op)),
);

const snapCell = (s: string, op: string) => `state.${s}.${op}.with-snapshots`;

/** Every variant of the deeper checks. */
export const DEPTH_VARIANTS: readonly BrokenVariant[] = [
  // crashed
  v("crashed", "crashed-power-on-refused", "power on of a CRASHED instance is refused", ["state.crashed.power-on"], (d) => new CrashedPowerOnRefused(d)),
  v("crashed", "crashed-power-off-noop", "power off of a CRASHED instance does nothing: it stays CRASHED", ["state.crashed.power-off"], (d) => new CrashedPowerOffNoop(d)),
  v("crashed", "crashed-hard-reboot-noop", "a hard reboot of a CRASHED instance leaves it CRASHED", ["state.crashed.reboot-hard"], (d) => new CrashedHardRebootNoop(d)),
  v("crashed", "crashed-reported-shutdown", "getInfo reports a CRASHED guest as SHUTDOWN", ["state.crashed.power-on"], (d) => new CrashedReportedShutdown(d)),
  v("crashed", "crashed-destroy-refused", "destroy of a CRASHED instance is refused", ["state.crashed.destroy"], (d) => new CrashedDestroyRefused(d)),
  v("crashed", "crashed-event-dropped", "the CRASHED event is never delivered", ["state.crashed.power-on"], (d, c) => new CrashedEventDropped(d, c)),
  v("crashed", "crashed-pause-accepted", "pause of a CRASHED instance succeeds as a no-op", ["state.crashed.pause"], (d) => new CrashedPauseAccepted(d)),
  v("crashed", "crashed-revert-stays-crashed", "revert of a CRASHED instance restores nothing and leaves it CRASHED", ["state.crashed.instance-snapshot-revert"], (d) => new CrashedRevertStaysCrashed(d)),
  v("crashed", "crashed-power-on-says-resumed", "power on of a CRASHED instance announces RESUMED instead of STARTED", ["state.crashed.power-on"], (d, c) => new CrashedPowerOnSaysResumed(d, c)),
  v("crashed", "crashed-list-omitted", "listInstanceUuids leaves out CRASHED instances", ["state.crashed.power-on"], (d) => new ListOmitsState(d, PowerState.CRASHED)),
  // snapshots present
  v("snapshots-present", "destroy-refused-with-snapshots", "destroy is refused while instance snapshots exist", [snapCell("running", "destroy")], (d) => new DestroyRefusedWithSnapshots(d)),
  v("snapshots-present", "destroy-with-snapshots-leaves-it", "destroy with snapshots stops the guest but leaves it defined (undefine refused, error swallowed)", [snapCell("running", "destroy")], (d) => new DestroyWithSnapshotsLeavesIt(d)),
  v("snapshots-present", "rescue-drops-snapshots", "rescue redefines the domain and loses its instance snapshots", [snapCell("running", "rescue")], (d) => new (dropsSnapshotsAfter("rescue"))(d)),
  v("snapshots-present", "hard-reboot-drops-snapshots", "a hard reboot recreates the domain and loses its instance snapshots", [snapCell("running", "reboot-hard")], (d) => new (dropsSnapshotsAfter("reboot"))(d)),
  v("snapshots-present", "power-off-drops-snapshots", "power off of a transient domain loses its instance snapshots", [snapCell("running", "power-off")], (d) => new (dropsSnapshotsAfter("powerOff"))(d)),
  v("snapshots-present", "power-on-drops-snapshots", "power on redefines the domain and loses its instance snapshots", [snapCell("shutdown", "power-on")], (d) => new (dropsSnapshotsAfter("powerOn"))(d)),
  v("snapshots-present", "unrescue-drops-snapshots", "unrescue redefines the domain and loses its instance snapshots", [snapCell("rescued", "unrescue")], (d) => new (dropsSnapshotsAfter("unrescue"))(d)),
  v("snapshots-present", "image-snapshot-drops-snapshots", "an image snapshot deletes the instance snapshots it used", [snapCell("running", "image-snapshot")], (d) => new (dropsSnapshotsAfter("snapshot"))(d)),
  v("snapshots-present", "suspend-refused-with-snapshots", "suspend is refused while instance snapshots exist", [snapCell("running", "suspend")], (d) => new SuspendRefusedWithSnapshots(d)),
  v("snapshots-present", "rescue-refused-with-snapshots", "rescue is refused while instance snapshots exist", [snapCell("running", "rescue")], (d) => new RescueRefusedWithSnapshots(d)),
  // effects
  v("effects", "image-snapshot-stale", "every image snapshot after the first uploads the first one's data again", ["effects.image-snapshot-data"], (d, c) => new ImageSnapshotStale(d, c)),
  v("effects", "image-snapshot-empty-disk", "the image snapshot uploads an empty disk", ["effects.image-snapshot-data"], (d, c) => new ImageSnapshotEmptyDisk(d, c)),
  v("effects", "revert-to-newest", "revert restores the newest snapshot, whichever was asked for", ["effects.revert-chosen-snapshot"], (d) => new RevertToNewest(d)),
  v("effects", "revert-to-oldest", "revert restores the oldest snapshot, whichever was asked for", ["effects.revert-chosen-snapshot"], (d) => new RevertToOldest(d)),
  v("effects", "snapshots-newest-first", "listInstanceSnapshots lists the newest first", ["effects.revert-chosen-snapshot"], (d) => new SnapshotsNewestFirst(d)),
  v("effects", "delete-removes-newest", "deleteInstanceSnapshot removes the newest snapshot, whichever was asked for", ["effects.revert-chosen-snapshot"], (d) => new DeleteRemovesNewest(d)),
  v("effects", "revert-keeps-current-disk", "revert restores the power state but not the disk", ["effects.revert-chosen-snapshot"], (d, c) => new RevertKeepsCurrentDisk(d, c)),
  v("effects", "resume-cold-boots", "resume discards the saved memory and boots the guest afresh", ["effects.suspend-resume-keeps-guest"], (d, c) => new ResumeColdBoots(d, c)),
  v("effects", "resume-loses-writes", "resume restores the disk as it was at spawn", ["effects.suspend-resume-keeps-guest"], (d, c) => new ResumeLosesWrites(d, c)),
  v("effects", "unpause-reboots", "unpause resets the guest", ["effects.pause-unpause-keeps-guest"], (d, c) => new UnpauseReboots(d, c)),
  v("effects", "hard-reboot-noop", "a hard reboot of a running guest does nothing", ["effects.reboot-hard-boots"], (d) => new HardRebootNoop(d)),
  v("effects", "soft-reboot-noop", "a soft reboot sends ACPI and returns without the guest rebooting", ["effects.reboot-soft-acpi-fallback"], (d) => new SoftRebootNoop(d)),
  v("effects", "soft-reboot-no-fallback", "a soft reboot of a guest ignoring ACPI returns without falling back to hard", ["effects.reboot-soft-acpi-fallback"], (d, c) => new SoftRebootNoFallback(d, c)),
  v("effects", "hard-reboot-boots-twice", "a hard reboot recreates the domain and resets it as well: two boots", ["effects.reboot-hard-boots"], (d, c) => new HardRebootBootsTwice(d, c)),
  v("effects", "power-on-running-reboots", "power on of a running instance hard-reboots it", ["effects.power-cycle-boots"], (d) => new PowerOnRunningReboots(d)),
  v("effects", "hard-reboot-recreates-disk", "a hard reboot recreates the root disk from the image: the guest's data is lost", ["effects.reboot-hard-boots"], (d, c) => new (diskRecreatedAfter("reboot"))(d, c)),
  v("effects", "power-on-recreates-disk", "power on recreates the root disk from the image: the guest's data is lost", ["effects.power-cycle-boots"], (d, c) => new (diskRecreatedAfter("powerOn"))(d, c)),
  v("effects", "block-migration-loses-data", "a block migration creates a blank disk on the destination instead of copying it", ["migration.block-keeps-data"], (d, c) => new BlockMigrationLosesData(d, c)),
  // units
  v("units", "info-memory-in-mib", "getInfo reports maxMemoryKb in MiB", ["effects.spawn-flavor-units"], (d) => new (infoAs((i) => ({ ...i, maxMemoryKb: i.maxMemoryKb / 1024 })))(d)),
  v("units", "info-memory-in-bytes", "getInfo reports maxMemoryKb in bytes", ["effects.spawn-flavor-units"], (d) => new (infoAs((i) => ({ ...i, maxMemoryKb: i.maxMemoryKb * 1024 })))(d)),
  v("units", "info-used-memory-in-bytes", "getInfo reports memoryKb in bytes", ["effects.spawn-flavor-units"], (d) => new (infoAs((i) => ({ ...i, memoryKb: i.memoryKb * 1024 })))(d)),
  v("units", "info-vcpus-of-host", "getInfo reports the host's vcpus", ["effects.spawn-flavor-units"], (d) => new (infoAs((i) => ({ ...i, vcpus: 8 })))(d)),
  v("units", "info-stopped-no-max-memory", "getInfo of a stopped instance reports maxMemoryKb 0", ["effects.spawn-flavor-units"], (d) => new (infoAs((i) => (i.state === PowerState.SHUTDOWN ? { ...i, maxMemoryKb: 0 } : i)))(d)),
  v("units", "info-stopped-no-vcpus", "getInfo of a stopped instance reports 0 vcpus", ["effects.spawn-flavor-units"], (d) => new (infoAs((i) => (i.state === PowerState.SHUTDOWN ? { ...i, vcpus: 0 } : i)))(d)),
  v("units", "info-cpu-time-number", "getInfo reports cpuTimeNs as a number", ["lifecycle.spawn", "effects.spawn-flavor-units"], (d) => new (infoAs((i) => ({ ...i, cpuTimeNs: Number(i.cpuTimeNs) as unknown as bigint })))(d)),
  v("units", "host-memory-kib", "getHostInfo reports memoryMb in KiB (libvirt's nodeGetInfo unit)", ["effects.host-facts-units"], (d) => new (hostAs((h) => ({ ...h, memoryMb: h.memoryMb * 1024 })))(d)),
  v("units", "host-memory-gib", "getHostInfo reports memoryMb in GiB", ["effects.host-facts-units"], (d) => new (hostAs((h) => ({ ...h, memoryMb: Math.max(1, Math.round(h.memoryMb / 1024)) })))(d)),
  v("units", "host-vcpus-threads", "getHostInfo counts hardware threads twice", ["effects.host-facts-units"], (d) => new (hostAs((h) => ({ ...h, vcpus: h.vcpus * 2 })))(d)),
  v("units", "host-version-encoded", "getHostInfo reports libvirt's encoded version number (1000000) instead of major.minor.micro", ["effects.host-facts-units"], (d) => new (hostAs((h) => ({ ...h, hypervisorVersion: "1000000" })))(d)),
  // listeners
  v("listeners", "only-last-listener", "registering a listener replaces the previous one", ["events.listeners-independent"], (d) => new OnlyLastListener(d)),
  v("listeners", "remover-removes-all", "removing one listener removes them all", ["events.listeners-independent"], (d, c) => new RemoverRemovesAll(d, c)),
  v("listeners", "throwing-listener-stops-delivery", "a throwing listener stops delivery to the ones after it", ["events.listeners-independent"], (d, c) => new ThrowingListenerStopsDelivery(d, c)),
  v("listeners", "double-remove-removes-another", "removing a listener twice removes another one", ["events.listeners-independent"], (d, c) => new DoubleRemoveRemovesAnother(d, c)),
  v("listeners", "new-listener-gets-replay", "a new listener first gets the last event again", ["events.listeners-independent"], (d, c) => new NewListenerGetsReplay(d, c)),
  v("listeners", "remover-does-nothing", "the remover a registration returns does nothing", ["events.listeners-independent", "lifecycle.events"], (d) => new RemoverDoesNothing(d)),
  v("listeners", "events-undeclared-but-register", "declares no events, yet registration succeeds silently", ["events.listeners-independent"], (d) => new EventsUndeclaredButRegister(d)),
  v("listeners", "events-undeclared-untyped", "declares no events and refuses registration with a plain Error", ["events.listeners-independent"], (d) => new EventsUndeclaredUntyped(d)),
  v("listeners", "event-timestamps-in-seconds", "event timestamps are seconds since the epoch, not milliseconds", ["events.listeners-independent"], (d, c) => new TimestampsInSeconds(d, c)),
  v("listeners", "migration-source-says-stopped", "the source announces STOPPED for the instance it migrated", ["events.migration-source-not-stopped"], (d, c) => new MigrationSourceSaysStopped(d, c, false)),
  v("listeners", "migration-paused-source-says-stopped", "the source announces STOPPED for a paused instance it migrated", ["events.migration-paused-source-not-stopped"], (d, c) => new MigrationSourceSaysStopped(d, c, true)),
  v("listeners", "migration-completed-names-destination", "the source's MIGRATION_COMPLETED event names the destination host", ["events.migration-source-not-stopped"], (d, c) => new MigrationCompletedNamesDestination(d, c)),
  // deadlines
  ...DeadlineVariants,
  v("deadlines", "power-on-checks-signal-after", "power on looks at the signal only once the guest is started", ["deadlines.every-operation"], (d) => new PowerOnChecksSignalAfter(d)),
  v("deadlines", "destroy-checks-signal-after", "destroy looks at the signal only once the instance is gone", ["deadlines.every-operation"], (d) => new DestroyChecksSignalAfter(d)),
  v("deadlines", "suspend-timeout-untyped", "a suspend past its deadline rejects with the hypervisor's raw error", ["deadlines.every-operation"], (d) => new SuspendTimeoutUntyped(d)),
  v("deadlines", "resume-abort-as-timeout", "an aborted resume rejects with OperationTimeoutError", ["deadlines.every-operation"], (d) => new ResumeAbortAsTimeout(d)),
  v("deadlines", "snapshot-deadline-wrapped", "an image snapshot past its deadline rejects with HypervisorUnavailableError (the timeout as cause)", ["deadlines.every-operation"], (d) => new SnapshotDeadlineWrapped(d)),
  // migration
  v("migration", "accepts-non-block-without-shared-storage", "a non-block migration to a host without shared storage passes the pre-checks", ["migration.storage-pre-checks"], (d) => new AcceptsNonBlockWithoutSharedStorage(d)),
  v("migration", "requires-block-always", "the destination requires a block migration even with shared storage", ["migration.storage-pre-checks"], (d) => new RequiresBlockAlways(d)),
  v("migration", "accepts-block-on-shared-storage", "a block migration onto shared storage passes the pre-checks", ["migration.storage-pre-checks"], (d) => new AcceptsBlockOnSharedStorage(d)),
  v("migration", "source-check-accepts-stopped", "the source check accepts a SHUTDOWN instance", ["migration.source-not-running"], (d) => new SourceCheckAcceptsState(d, PowerState.SHUTDOWN)),
  v("migration", "source-check-accepts-suspended", "the source check accepts a SUSPENDED instance", ["migration.source-not-running"], (d) => new SourceCheckAcceptsState(d, PowerState.SUSPENDED)),
  v("migration", "destination-ignores-used-memory", "the destination compares the instance with its total memory, not its free memory", ["migration.destination-full"], (d) => new DestinationIgnoresUsedMemory(d)),
  v("migration", "paused-arrives-running", "a paused instance arrives running", ["migration.paused-moves-paused"], (d, c) => new PausedArrivesRunning(d, c)),
  v("migration", "paused-migration-refused", "the source check refuses a PAUSED instance", ["migration.paused-moves-paused"], (d) => new PausedMigrationRefused(d)),
  v("migration", "force-complete-noop", "liveMigrationForceComplete does nothing", ["migration.force-complete"], (d) => new ForceCompleteNoop(d)),
  v("migration", "paused-undeclared-but-moves", "declares no pausedMigration, yet moves a paused instance", ["migration.paused-moves-paused"], (d, c) => new (undeclaring("pausedMigration"))(d, c)),
  v("migration", "paused-refusal-unpauses", "declares no pausedMigration; the source check unpauses the instance, then refuses", ["migration.paused-moves-paused"], (d, c) => new PausedRefusalUnpauses(d, c)),
  v("migration", "force-complete-undeclared-but-works", "declares no forceCompleteMigration, yet force complete works", ["migration.force-complete"], (d, c) => new (undeclaring("forceCompleteMigration"))(d, c)),
  v("migration", "force-complete-refusal-aborts", "declares no forceCompleteMigration; the refusal aborts the migration in progress", ["migration.force-complete"], (d, c) => new ForceCompleteRefusalAborts(d, c)),
  v("migration", "non-live-refused", "the destination refuses a non-live policy", ["migration.non-live"], (d) => new NonLiveRefused(d)),
  v("migration", "non-live-arrives-paused", "after a non-live move the guest is left paused on the destination", ["migration.non-live"], (d, c) => new NonLiveArrivesPaused(d, c)),
  // plan
  v("plan", "plan-bandwidth-bytes", "the plan's bandwidth is in bytes/s, not MiB/s", ["migration.plan.fields"], (d) => new (planAs((p) => ({ ...p, params: { ...p.params, bandwidth: Number(p.params.bandwidth) * 1048576 } })))(d)),
  v("plan", "plan-bandwidth-ignored", "the plan drops the bandwidth cap", ["migration.plan.fields"], (d) => new (planAs((p) => ({ ...p, params: { ...p.params, bandwidth: 0 } })))(d)),
  v("plan", "plan-downtime-seconds", "the plan's downtime is in seconds", ["migration.plan.fields"], (d) => new (planAs((p) => ({ ...p, params: { ...p.params, max_downtime_ms: Number(p.params.max_downtime_ms) / 1000 } })))(d)),
  v("plan", "plan-non-live-keeps-live", "a non-live policy keeps VIR_MIGRATE_LIVE", ["migration.plan.fields"], (d) => new (planAs((p) => withBits(p, 1, 0, { add: p.flags.includes("LIVE") ? [] : ["LIVE"] })))(d)),
  v("plan", "plan-negative-bandwidth-clamped", "a negative bandwidth is clamped to 0 instead of refused", ["migration.plan.fields"], (d) => new NegativeBandwidthClamped(d)),
  v("plan", "plan-autoconverge-with-postcopy", "AUTO_CONVERGE is added along with POSTCOPY", ["migration.plan.combinations"], (d) => new (planAs((p, pol) => (p.flags.includes("POSTCOPY") && pol.permitAutoConverge ? withBits(p, 8192, 0, { add: ["AUTO_CONVERGE"] }) : p)))(d)),
  v("plan", "plan-tunnelled-postcopy-accepted", "post-copy over a tunnel is silently dropped instead of refused", ["migration.plan.combinations"], (d) => new TunnelledPostCopyDropsPostCopy(d)),
  v("plan", "plan-parallel-always", "PARALLEL is set for a single connection too", ["migration.plan.combinations"], (d) => new (planAs((p) => withBits(p, 131072, 0, { add: p.flags.includes("PARALLEL") ? [] : ["PARALLEL"] })))(d)),
  v("plan", "plan-block-non-shared-disk", "block migration uses NON_SHARED_DISK (a full copy) instead of NON_SHARED_INC", ["migration.plan.combinations"], (d) => new (planAs((p, pol) => (pol.block ? withBits(p, 64, 128, { add: ["NON_SHARED_DISK"], remove: ["NON_SHARED_INC"] }) : p)))(d)),
  v("plan", "plan-autoconverge-non-live", "AUTO_CONVERGE for a non-live policy (throttling a paused guest)", ["migration.plan.combinations"], (d) => new (planAs((p, pol) => (!pol.live && pol.permitAutoConverge && !p.flags.includes("AUTO_CONVERGE") ? withBits(p, 8192, 0, { add: ["AUTO_CONVERGE"] }) : p)))(d)),
  v("plan", "plan-nondeterministic", "the plan carries a fresh id each time", ["migration.plan.combinations"], (d) => new (planAs((p) => ({ ...p, params: { ...p.params, cookie: Math.random().toString(36) } })))(d)),
  v("plan", "plan-xen-peer2peer", "PEER2PEER on xen too", ["migration.plan.combinations"], (d) => new (planAs((p, _pol, f) => (f?.virtType === "xen" && !p.flags.includes("PEER2PEER") ? withBits(p, 2, 0, { add: ["PEER2PEER"] }) : p)))(d)),
  // accounts
  v("accounts", "password-always-root", "the password is set for root whatever os_admin_user says", ["admin-password.os-admin-user"], (d, c) => new PasswordAccount(d, c, (i) => (i.imageMeta.properties.os_admin_user ? "root" : undefined))),
  v("accounts", "password-any-user-undeclared-but-works", "declares no adminPasswordAnyUser, yet sets os_admin_user's password", ["admin-password.os-admin-user"], (d, c) => new (undeclaring("adminPasswordAnyUser"))(d, c)),
  v("accounts", "password-refusal-sets-root", "declares no adminPasswordAnyUser; refuses os_admin_user but has set root's password", ["admin-password.os-admin-user"], (d, c) => new PasswordRefusalSetsRoot(d, c)),
  v("accounts", "password-windows-root", "a Windows guest's password is set for root", ["admin-password.windows-administrator"], (d, c) => new PasswordAccount(d, c, (i) => (osOf(i) === "windows" ? "root" : undefined))),
  v("accounts", "password-also-root", "the password is set for the admin account and for root", ["admin-password.os-admin-user", "admin-password.windows-administrator"], (d, c) => new PasswordAccount(d, c, () => "root", true)),
  v("accounts", "password-linux-default-user", "a Linux guest's password goes to a cloud-init user that may not exist", ["admin-password.root-default"], (d) => new PasswordLinuxDefaultUser(d)),
  v("accounts", "password-paused-accepted", "a paused guest's password is \"set\" (queued for the agent)", ["admin-password.paused-suspended"], (d, c) => new PasswordWhileHeld(d, c, PowerState.PAUSED, "accept")),
  v("accounts", "password-suspended-accepted", "a suspended guest's password is \"set\"", ["admin-password.paused-suspended"], (d, c) => new PasswordWhileHeld(d, c, PowerState.SUSPENDED, "accept")),
  v("accounts", "password-paused-untyped", "a paused guest's password fails with a plain Error", ["admin-password.paused-suspended"], (d, c) => new PasswordWhileHeld(d, c, PowerState.PAUSED, "untyped")),
  v("accounts", "password-paused-unpauses", "a paused guest is unpaused to set its password, and left running", ["admin-password.paused-suspended"], (d, c) => new PasswordWhileHeld(d, c, PowerState.PAUSED, "unpause")),
  // destroy
  v("destroy", "destroy-paused-refused", "destroy of a PAUSED instance is refused", ["state.paused.destroy"], (d) => new DestroyPausedRefused(d)),
  v("destroy", "destroy-rescued-stops-only", "destroy of a rescued instance removes only the rescue domain: the instance stays", ["state.rescued.destroy"], (d) => new DestroyRescuedStopsOnly(d)),
  // service
  v("service", "task-state-wrong-expected", "the snapshot reports its task states with expected state null", ["service.image-snapshot"], (d) => new TaskStateWrongExpected(d)),
  v("service", "task-state-uploading-twice", "the snapshot reports image_uploading twice", ["service.image-snapshot"], (d) => new TaskStateUploadingTwice(d)),
  v("service", "stop-reported-late", "the first getInfo after a power off still says RUNNING", ["service.lifecycle"], (d) => new StopReportedLate(d)),
];
