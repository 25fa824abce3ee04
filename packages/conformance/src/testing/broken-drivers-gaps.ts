/**
 * Broken variants for the checks that close the mutation run's gaps (MUTATION.md): ONE realistic
 * defect each, as small decorators around the healthy fake. Soft reboots done hard (the defect
 * that passed the whole kit before), a hard reboot or a zero-timeout power off that asks the
 * guest, retries dropped, a clean wait deaf to the call's deadline, CPU time that runs on while
 * stopped or restarts at zero, bad input taken or refused untyped, options required, a rescue
 * password dropped or put in the wrong system, a reboot that leaves rescue, a first-boot password
 * for the wrong account, a spawn race waved through, a migration that outlives its instance; and
 * from the second round: soft reboot asked of the guest while undeclared, a hard reboot that needs
 * softReboot, a crash announced as STOPPED or twice, a power-cycled rescued instance booting its
 * own disk while still in rescue mode; and from the fourth: an image snapshot whose declared disk
 * format is not what its bytes are or not the source's, an undeclared snapshot listing that answers,
 * a refusal for another account naming the wrong capability, a missing account reported as set;
 * and from the fifth: snapshot calls that need their options, a description field set to undefined,
 * a task-state report outside the deadline, a Windows image's password set for root, a stopped
 * instance's hung agent blamed, a clean wait stretched to whole retry intervals; and from the
 * sixth: a clean wait that goes on after the guest crashed; and from the seventh: listeners still
 * heard after cleanupHost, a driver still answering and acting after it, an abort with no migration
 * running swallowed or kept for the next one, an unknown instance's abort not called not-found, an
 * unbounded deadline fired at once, a destroy after cleanupHost taken quietly, a failed spawn's
 * cleanup deleting a kept disk, an aborted migration that rejects untyped, an unknown instance's
 * snapshot list answered empty, progress reported after a cancelled migration rejected, an image
 * naming root refused without adminPasswordAnyUser, a snapshot id past 255 looked up, a description
 * bound tighter than 1,024, a power off's listener left on the caller's signal.
 * `broken-drivers-gaps.test.ts` requires each caught where expected, at its check's level.
 */
import {
  GuestAgentUnresponsiveError,
  InvalidInputError,
  InvalidStateError,
  OperationAbortedError,
  OperationTimeoutError,
  PasswordSetFailedError,
  PowerState,
  TaskState,
  UnsupportedOperationError,
  type Capabilities,
  Secret,
  isSecret,
  validateImageId,
  withDeadline,
  type ComputeDriver,
  type DestroyOptions,
  type HostInfo,
  type ImageMeta,
  type ImageSnapshotOptions,
  type InstanceSnapshot,
  type Instance,
  type InstanceInfo,
  type LifecycleEvent,
  type LifecycleListener,
  type LiveMigrationOptions,
  type MigrateData,
  type MigrationPolicy,
  type OperationOptions,
  type PowerOffOptions,
  type RebootType,
  type RescueOptions,
  type SpawnRequest,
} from "@virtkit/core";
import { FakeDriver, parseDisk, serializeDisk } from "@virtkit/driver-fake";
import type { FakeWrapContext } from "../environments/fake-environment.js";
import { stateOf, type BrokenVariant, type DefectClass } from "./broken-drivers.js";
import { DriverDecorator } from "./driver-decorator.js";
import * as hunt from "./broken-drivers-hunt.js";

/** A decorator that can reach the guest (environment side), as the depth variants do. */
class WithGuest extends DriverDecorator {
  constructor(
    inner: ComputeDriver,
    protected readonly ctx: FakeWrapContext,
  ) {
    super(inner);
  }
  protected guest(instance: Instance) {
    return this.ctx.cloud.guest(instance.uuid);
  }
}

// -- what the guest saw ---------------------------------------------------------------------------

/** Every soft reboot is done hard: RUNNING and one more boot, so only the guest can tell. */
class SoftRebootAlwaysHard extends DriverDecorator {
  override reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    return this.inner.reboot(i, t === "SOFT" ? "HARD" : t, o);
  }
}
/** A hard reboot of a running guest tries a clean one first. */
class HardRebootAsksGuest extends DriverDecorator {
  override async reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    if (t === "HARD" && (await stateOf(this.inner, i)) === PowerState.RUNNING) return this.inner.reboot(i, "SOFT", o);
    return this.inner.reboot(i, t, o);
  }
}
/** A zero clean timeout still presses the power button for a moment. */
class PowerOffZeroAsksGuest extends DriverDecorator {
  override powerOff(i: Instance, o?: PowerOffOptions) {
    const t = o?.cleanShutdownTimeoutSec ?? 0;
    return this.inner.powerOff(i, t === 0 ? { ...o, cleanShutdownTimeoutSec: 0.01 } : o);
  }
}
/** A suspended instance is restored first so that it can shut down "cleanly". */
class PowerOffSuspendedRestoresFirst extends DriverDecorator {
  override async powerOff(i: Instance, o?: PowerOffOptions) {
    if ((o?.cleanShutdownTimeoutSec ?? 0) > 0 && (await stateOf(this.inner, i)) === PowerState.SUSPENDED) {
      await this.inner.resume(i, o);
    }
    return this.inner.powerOff(i, o);
  }
}
/** The clean timeout is ignored: every power off is hard. */
class PowerOffNeverClean extends DriverDecorator {
  override powerOff(i: Instance, o?: PowerOffOptions) {
    return this.inner.powerOff(i, (o?.cleanShutdownTimeoutSec ?? 0) > 0 ? { ...o, cleanShutdownTimeoutSec: 0 } : o);
  }
}
/** The retry interval is dropped: the guest is asked at the start and once at the end only. */
class PowerOffNoRetries extends DriverDecorator {
  override powerOff(i: Instance, o?: PowerOffOptions) {
    if (!((o?.retryIntervalSec ?? 0) > 0)) return this.inner.powerOff(i, o);
    const { retryIntervalSec: _dropped, ...rest } = o ?? {};
    return this.inner.powerOff(i, rest);
  }
}
/** The clean wait runs on a timer of its own: the call's timeoutMs does not reach it. */
class CleanWaitIgnoresDeadline extends DriverDecorator {
  override powerOff(i: Instance, o?: PowerOffOptions) {
    if ((o?.cleanShutdownTimeoutSec ?? 0) === 0) return this.inner.powerOff(i, o);
    const { timeoutMs: _dropped, ...rest } = o ?? {};
    return this.inner.powerOff(i, rest);
  }
}
/** An unknown instance with a clean timeout: the state of `undefined` is read. */
class PowerOffUnknownUntyped extends DriverDecorator {
  override async powerOff(i: Instance, o?: PowerOffOptions) {
    if ((o?.cleanShutdownTimeoutSec ?? 0) > 0 && (await stateOf(this.inner, i)) === undefined) {
      throw new TypeError("Cannot read properties of undefined (reading 'state')");
    }
    return this.inner.powerOff(i, o);
  }
}

// -- CPU time ---------------------------------------------------------------------------------------

/** cpuTimeNs is the wall time since spawn x vcpus: it runs on while stopped or paused. */
class CpuTimeWallClock extends DriverDecorator {
  readonly #since = new Map<string, number>();
  override async spawn(r: SpawnRequest, o?: OperationOptions) {
    await this.inner.spawn(r, o);
    this.#since.set(r.instance.uuid, Date.now());
  }
  override async getInfo(i: Instance, o?: OperationOptions): Promise<InstanceInfo> {
    const info = await this.inner.getInfo(i, o);
    const since = this.#since.get(i.uuid);
    if (since === undefined) return info;
    return { ...info, cpuTimeNs: BigInt(Date.now() - since) * 1_000_000n * BigInt(info.vcpus) };
  }
}
/** The counter restarts at zero on unpause (read from a fresh vCPU thread). */
class CpuTimeResetOnUnpause extends DriverDecorator {
  readonly #base = new Map<string, bigint>();
  override async unpause(i: Instance, o?: OperationOptions) {
    await this.inner.unpause(i, o);
    this.#base.set(i.uuid, (await this.inner.getInfo(i, o)).cpuTimeNs);
  }
  override async getInfo(i: Instance, o?: OperationOptions): Promise<InstanceInfo> {
    const info = await this.inner.getInfo(i, o);
    const base = this.#base.get(i.uuid) ?? 0n;
    return { ...info, cpuTimeNs: info.cpuTimeNs >= base ? info.cpuTimeNs - base : info.cpuTimeNs };
  }
}
/** cpuTimeNs is always 0 (the hypervisor's metric was never read). */
class CpuTimeConstant extends DriverDecorator {
  override async getInfo(i: Instance, o?: OperationOptions): Promise<InstanceInfo> {
    return { ...(await this.inner.getInfo(i, o)), cpuTimeNs: 0n };
  }
}

// -- bad input and options ------------------------------------------------------------------------

/** `const { instance } = request` before any check: spawn(null) is a TypeError. */
class SpawnDestructuresFirst extends DriverDecorator {
  override spawn(r: SpawnRequest, o?: OperationOptions) {
    const { instance } = r;
    return this.inner.spawn({ ...r, instance }, o);
  }
}
/** A reboot type other than SOFT is taken as HARD. */
class RebootUnknownTypeAsHard extends DriverDecorator {
  override reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    return this.inner.reboot(i, t === "SOFT" ? "SOFT" : "HARD", o);
  }
}
/** A negative clean timeout counts as 0: the instance is powered off hard. */
class PowerOffNegativeTimeoutHard extends DriverDecorator {
  override powerOff(i: Instance, o?: PowerOffOptions) {
    const t = o?.cleanShutdownTimeoutSec;
    return this.inner.powerOff(i, t !== undefined && t < 0 ? { ...o, cleanShutdownTimeoutSec: 0 } : o);
  }
}
/** A reboot with no type is taken as HARD (found by an attack review: the kit probed only "WARM"). */
class RebootNoTypeAsHard extends DriverDecorator {
  override reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    return this.inner.reboot(i, (t as RebootType | undefined) ?? "HARD", o);
  }
}
/** An infinite or non-number clean timeout counts as 0: the instance is powered off hard. */
class PowerOffOddTimeoutHard extends DriverDecorator {
  override powerOff(i: Instance, o?: PowerOffOptions) {
    const t: unknown = o?.cleanShutdownTimeoutSec;
    const odd = t === Number.POSITIVE_INFINITY || typeof t === "string";
    return this.inner.powerOff(i, odd ? { ...o, cleanShutdownTimeoutSec: 0 } : o);
  }
}
/** A plain-text rescuePassword is wrapped instead of refused. */
class RescuePasswordPlainAccepted extends DriverDecorator {
  override rescue(i: Instance, m: ImageMeta, o?: RescueOptions) {
    const pw: unknown = o?.rescuePassword;
    return this.inner.rescue(i, m, typeof pw === "string" ? { ...o, rescuePassword: new Secret(pw) } : o);
  }
}
/** Input errors re-thrown without the field (a generic wrapper around the validator). */
class InvalidInputUnnamed extends DriverDecorator {
  override async reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    try {
      return await this.inner.reboot(i, t, o);
    } catch (err) {
      if (err instanceof InvalidInputError) throw new InvalidInputError("", err.reason);
      throw err;
    }
  }
}
/** `options.cleanShutdownTimeoutSec` read without a guard: powerOff(instance) is a TypeError. */
class PowerOffOptionsRequired extends DriverDecorator {
  override powerOff(i: Instance, o?: PowerOffOptions) {
    const t = (o as PowerOffOptions).cleanShutdownTimeoutSec;
    return this.inner.powerOff(i, { ...o, cleanShutdownTimeoutSec: t ?? 0 });
  }
}

// -- rescue -----------------------------------------------------------------------------------------

/** rescuePassword is dropped silently. */
class RescuePasswordDropped extends DriverDecorator {
  override rescue(i: Instance, m: ImageMeta, o?: RescueOptions) {
    if (!isSecret(o?.rescuePassword)) return this.inner.rescue(i, m, o);
    const { rescuePassword: _dropped, ...rest } = o ?? {};
    return this.inner.rescue(i, m, rest);
  }
}
/** rescuePassword is set as the instance's own root password (through the agent) instead. */
class RescuePasswordToInstance extends DriverDecorator {
  override async rescue(i: Instance, m: ImageMeta, o?: RescueOptions) {
    if (!isSecret(o?.rescuePassword)) return this.inner.rescue(i, m, o);
    const { rescuePassword, ...rest } = o ?? {};
    if (rescuePassword !== undefined) await this.inner.setAdminPassword(i, rescuePassword, rest);
    return this.inner.rescue(i, m, rest);
  }
}
/** A reboot of a rescued instance recreates the domain from the original definition: rescue is left. */
class RescueRebootBootsOwnDisk extends DriverDecorator {
  readonly #rescued = new Set<string>();
  override async rescue(i: Instance, m: ImageMeta, o?: RescueOptions) {
    await this.inner.rescue(i, m, o);
    this.#rescued.add(i.uuid);
  }
  override async unrescue(i: Instance, o?: OperationOptions) {
    await this.inner.unrescue(i, o);
    this.#rescued.delete(i.uuid);
  }
  override async reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    if (t === "HARD" && this.#rescued.delete(i.uuid)) return this.inner.unrescue(i, o);
    return this.inner.reboot(i, t, o);
  }
}

// -- first boot -----------------------------------------------------------------------------------

/** The first-boot account is chosen from the instance's os_type only: a Windows image without it gets root. */
class FirstBootIgnoresImageOsType extends WithGuest {
  override async spawn(r: SpawnRequest, o?: OperationOptions) {
    if (!isSecret(r?.adminPassword) || r.instance.osType !== undefined) return this.inner.spawn(r, o);
    const { adminPassword, ...rest } = r;
    await this.inner.spawn(rest, o);
    await this.guest(r.instance).setPassword("root", adminPassword);
  }
}
/** A spawn of a uuid already being spawned waits for the first and reports success ("idempotent"). */
class SpawnRaceBothSucceed extends DriverDecorator {
  readonly #inFlight = new Map<string, Promise<void>>();
  override async spawn(r: SpawnRequest, o?: OperationOptions) {
    if (typeof r?.instance?.uuid !== "string") return this.inner.spawn(r, o);
    const running = this.#inFlight.get(r.instance.uuid);
    if (running) return running;
    const p = this.inner.spawn(r, o);
    this.#inFlight.set(r.instance.uuid, p);
    try {
      return await p;
    } finally {
      this.#inFlight.delete(r.instance.uuid);
    }
  }
}

// -- migration --------------------------------------------------------------------------------------

/** Destroy does not cancel the migration job: it fails only at its next transfer poll, seconds later. */
class MigrationOutlivesDestroy extends DriverDecorator {
  readonly #destroyed = new Set<string>();
  override async destroy(i: Instance, o?: DestroyOptions) {
    await this.inner.destroy(i, o);
    this.#destroyed.add(i.uuid);
  }
  override async liveMigration(i: Instance, d: MigrateData, o?: LiveMigrationOptions) {
    try {
      return await this.inner.liveMigration(i, d, o);
    } catch (err) {
      if (this.#destroyed.has(i.uuid)) await new Promise((r) => setTimeout(r, 2000));
      throw err;
    }
  }
}

// -- softReboot not declared ----------------------------------------------------------------------

/** Declares no softReboot (say, for a hypervisor type without ACPI) but still asks the guest on SOFT. */
class UndeclaredSoftRebootAsksGuest extends DriverDecorator {
  override get capabilities(): Capabilities {
    return { ...this.inner.capabilities, softReboot: false };
  }
}
/** Declares no softReboot and guards the whole reboot method with it: HARD is refused too. */
class HardRebootNeedsSoftReboot extends DriverDecorator {
  override get capabilities(): Capabilities {
    return { ...this.inner.capabilities, softReboot: false };
  }
  override async reboot(i: Instance, t: RebootType, o?: OperationOptions) {
    void [i, t, o];
    throw new UnsupportedOperationError("softReboot", this.name);
  }
}

/** Declares no rescue (its rescue images are not configured) but rescues all the same. */
class RescueUndeclaredButWorks extends DriverDecorator {
  override get capabilities(): Capabilities {
    return { ...this.inner.capabilities, rescue: false };
  }
}

// -- crash events ---------------------------------------------------------------------------------

/** Rewrites the events its listeners get. */
class MapEvents extends DriverDecorator {
  constructor(
    inner: ComputeDriver,
    private readonly map: (e: LifecycleEvent) => readonly LifecycleEvent[],
  ) {
    super(inner);
  }
  override registerEventListener(listener: LifecycleListener): () => void {
    return this.inner.registerEventListener((e) => {
      for (const out of this.map(e)) listener(out);
    });
  }
}
/** A crash announced as STOPPED (libvirt's "stopped, detail crashed" mapped by its event type only). */
const crashAsStopped = (d: ComputeDriver) =>
  new MapEvents(d, (e) => [e.transition === "CRASHED" ? { ...e, transition: "STOPPED" } : e]);
/** A crash announced twice (libvirt's crashed event and its crashed stop both mapped to CRASHED). */
const crashTwice = (d: ComputeDriver) => new MapEvents(d, (e) => (e.transition === "CRASHED" ? [e, e] : [e]));

// -- rescue power cycle ---------------------------------------------------------------------------

/**
 * Power on rebuilds the guest from the instance's own definition (as Nova's hard reboot does): the
 * own disk boots while the driver's books still say rescued, so a later unrescue "succeeds".
 */
class RescuePowerOnBootsOwnDisk extends DriverDecorator {
  readonly #rescued = new Set<string>();
  readonly #booksOnly = new Set<string>();
  override async rescue(i: Instance, m: ImageMeta, o?: RescueOptions) {
    await this.inner.rescue(i, m, o);
    this.#rescued.add(i.uuid);
  }
  override async unrescue(i: Instance, o?: OperationOptions) {
    if (this.#booksOnly.delete(i.uuid)) return;
    await this.inner.unrescue(i, o);
    this.#rescued.delete(i.uuid);
  }
  override async powerOn(i: Instance, o?: OperationOptions) {
    if (this.#rescued.has(i.uuid) && (await stateOf(this.inner, i)) === PowerState.SHUTDOWN) {
      // The hypervisor boots the instance's own disk (the fake's unrescue from SHUTDOWN does exactly that).
      await this.inner.unrescue(i, o);
      this.#rescued.delete(i.uuid);
      this.#booksOnly.add(i.uuid);
      return;
    }
    return this.inner.powerOn(i, o);
  }
}

// -- refusal fields ---------------------------------------------------------------------------------

/** A refused pause names the instance by its name (what the hypervisor calls it), not its uuid. */
class RefusalNamesInstanceByName extends DriverDecorator {
  override async pause(i: Instance, o?: OperationOptions) {
    try {
      return await this.inner.pause(i, o);
    } catch (err) {
      if (err instanceof InvalidStateError) throw new InvalidStateError(i.name, err.operation, err.state);
      throw err;
    }
  }
}
/** A refused unpause says no operation (the text lost in a shared helper). */
class RefusalWithoutOperation extends DriverDecorator {
  override async unpause(i: Instance, o?: OperationOptions) {
    try {
      return await this.inner.unpause(i, o);
    } catch (err) {
      if (err instanceof InvalidStateError) throw new InvalidStateError(err.instanceId, "", err.state);
      throw err;
    }
  }
}

/** Remembers which instances it rescued, for defects that show only on a rescued instance. */
abstract class RescueTracking extends DriverDecorator {
  protected readonly rescued = new Set<string>();
  override async rescue(i: Instance, m: ImageMeta, o?: RescueOptions) {
    const r = await this.inner.rescue(i, m, o);
    this.rescued.add(i.uuid);
    return r;
  }
  /** True when `i` was rescued here and is now paused or suspended (rescue mode kept). */
  protected async pausedWhileRescued(i: Instance): Promise<boolean> {
    if (!this.rescued.has(i.uuid)) return false;
    const state = (await this.inner.getInfo(i).catch(() => undefined))?.state;
    return state === PowerState.PAUSED || state === PowerState.SUSPENDED;
  }
}

/** Refuses unrescue of a paused or suspended rescued instance (allowed) with a refusal that names no operation. */
class RescuedUnrescueRefusalUnnamed extends RescueTracking {
  override async unrescue(i: Instance, o?: OperationOptions) {
    if (await this.pausedWhileRescued(i)) throw new InvalidStateError(i.uuid, "", "PAUSED");
    await this.inner.unrescue(i, o);
    this.rescued.delete(i.uuid);
  }
}

/** Unrescue of a paused or suspended rescued instance says it worked and does nothing. */
class RescuedUnrescueNoop extends RescueTracking {
  override async unrescue(i: Instance, o?: OperationOptions) {
    if (await this.pausedWhileRescued(i)) return;
    await this.inner.unrescue(i, o);
    this.rescued.delete(i.uuid);
  }
}

/** A password change whose agent is not running in the guest reports success (the failure swallowed). */
class AbsentAgentReportsSuccess extends DriverDecorator {
  override async setAdminPassword(i: Instance, pw: Secret, o?: OperationOptions) {
    await this.inner.setAdminPassword(i, pw, o).catch((err: unknown) => {
      if (!(err instanceof GuestAgentUnresponsiveError) || err.cause === undefined) throw err;
    });
  }
}

/** Deletes the oldest instance snapshot, whichever id was asked for. */
class DeleteRemovesOldestSnapshot extends DriverDecorator {
  override async deleteInstanceSnapshot(i: Instance, id: string, o?: OperationOptions) {
    const oldest = (await this.inner.listInstanceSnapshots(i, o))[0];
    await this.inner.deleteInstanceSnapshot(i, oldest?.id ?? id, o);
  }
}

/** An unknown snapshot id deletes the newest snapshot instead of being refused (an off-by-one index). */
class DeleteUnknownRemovesNewest extends DriverDecorator {
  override async deleteInstanceSnapshot(i: Instance, id: string, o?: OperationOptions) {
    const all = await this.inner.listInstanceSnapshots(i, o);
    const target = all.some((s) => s.id === id) ? id : all.at(-1)?.id ?? id;
    await this.inner.deleteInstanceSnapshot(i, target, o);
  }
}

/** An empty instance snapshot name is replaced by a generated one (as libvirt names a nameless snapshot). */
class EmptySnapshotNameGenerated extends DriverDecorator {
  override createInstanceSnapshot(i: Instance, name: string, o?: OperationOptions & { readonly description?: string }) {
    return this.inner.createInstanceSnapshot(i, name === "" ? `snap-${Date.now()}` : name, o);
  }
}

/** Unrescue refuses a crashed instance, so a rescue system that crashed can never be left. */
class CrashedRescueUnrescueRefused extends DriverDecorator {
  override async unrescue(i: Instance, o?: OperationOptions) {
    if ((await stateOf(this.inner, i)) === PowerState.CRASHED) throw new InvalidStateError(i.uuid, "unrescue", "CRASHED");
    await this.inner.unrescue(i, o);
  }
}

/**
 * One call at a time for the whole driver: a call about one instance while another instance's call
 * runs is refused as "busy" (a driver that serialises by refusing, not by waiting).
 */
class OneCallAtATime extends DriverDecorator {
  #busy = false;
  async #alone<T>(i: Instance, op: string, fn: () => Promise<T>): Promise<T> {
    if (this.#busy) throw new InvalidStateError(i.uuid, op, "busy with another instance");
    this.#busy = true;
    try {
      await new Promise((r) => setTimeout(r, 5));
      return await fn();
    } finally {
      this.#busy = false;
    }
  }
  override spawn(r: SpawnRequest, o?: OperationOptions) {
    return this.#alone(r.instance, "spawn", () => this.inner.spawn(r, o));
  }
  override destroy(i: Instance, o?: DestroyOptions) {
    return this.#alone(i, "destroy", () => this.inner.destroy(i, o));
  }
  override powerOff(i: Instance, o?: PowerOffOptions) {
    return this.#alone(i, "powerOff", () => this.inner.powerOff(i, o));
  }
}

/** Events emitted while two of its calls overlap are lost (one shared "current call" slot). */
class EventsLostWhileCallsOverlap extends DriverDecorator {
  #inFlight = 0;
  async #counted<T>(fn: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    try {
      await new Promise((r) => setTimeout(r, 5));
      return await fn();
    } finally {
      this.#inFlight--;
    }
  }
  override spawn(r: SpawnRequest, o?: OperationOptions) {
    return this.#counted(() => this.inner.spawn(r, o));
  }
  override pause(i: Instance, o?: OperationOptions) {
    return this.#counted(() => this.inner.pause(i, o));
  }
  override powerOff(i: Instance, o?: PowerOffOptions) {
    return this.#counted(() => this.inner.powerOff(i, o));
  }
  override registerEventListener(listener: LifecycleListener): () => void {
    return this.inner.registerEventListener((e) => {
      if (this.#inFlight <= 1) listener(e);
    });
  }
}

/** A pause cut short by its deadline or signal says no operation (the name dropped on the way). */
class DeadlineErrorUnnamed extends DriverDecorator {
  override async pause(i: Instance, o?: OperationOptions) {
    try {
      return await this.inner.pause(i, o);
    } catch (err) {
      if (err instanceof OperationTimeoutError) throw new OperationTimeoutError("", err.timeoutMs);
      if (err instanceof OperationAbortedError) throw new OperationAbortedError("");
      throw err;
    }
  }
}

// -- the fourth measurement's gaps: snapshot formats, undeclared calls, refusal names ---------------

/**
 * Converts the image snapshot to raw data (a `qemu-img convert -O raw` before the upload) but keeps
 * the source's qcow2 label: a reader of the image takes its bytes for a qcow2 header.
 */
class SnapshotRawLabelledQcow2 extends WithGuest {
  override async snapshot(i: Instance, imageId: string, o?: ImageSnapshotOptions) {
    await this.inner.snapshot(i, imageId, o);
    const files = parseDisk(await this.ctx.imageService.download(imageId));
    await this.ctx.imageService.update(imageId, {}, serializeDisk(files));
  }
}
/** Uploads every image snapshot as raw (bytes and label agree), whatever the source image's format. */
class SnapshotAlwaysRaw extends WithGuest {
  override async snapshot(i: Instance, imageId: string, o?: ImageSnapshotOptions) {
    await this.inner.snapshot(i, imageId, o);
    const files = parseDisk(await this.ctx.imageService.download(imageId));
    await this.ctx.imageService.update(imageId, { diskFormat: "raw" }, serializeDisk(files));
  }
}
/**
 * Takes the snapshot into a scratch image, then uploads a copy without passing the caller's signal
 * down: an abort during the upload ends the call, not the request, and the image arrives later.
 */
class UploadDeafToAbort extends WithGuest {
  override async snapshot(i: Instance, imageId: string, o?: ImageSnapshotOptions) {
    const images = this.ctx.imageService;
    validateImageId(imageId);
    // The target's name, so the upload carries what the inner driver's own upload would.
    const target = await images.get(imageId, o);
    const scratch = await images.create({ name: target.name, status: "queued" });
    try {
      await this.inner.snapshot(i, scratch.id, o);
      const { status, diskFormat, containerFormat, owner, minDisk, minRam, properties } = await images.get(scratch.id);
      const data = await images.download(scratch.id);
      const upload = images.update(imageId, { status, diskFormat, containerFormat, owner, minDisk, minRam, properties }, data);
      upload.catch(() => undefined);
      const signal = o?.signal;
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(new OperationAbortedError("snapshot"));
        if (signal?.aborted) return onAbort();
        signal?.addEventListener("abort", onAbort, { once: true });
        upload.then(() => resolve(), reject).finally(() => signal?.removeEventListener("abort", onAbort));
      });
    } finally {
      await images.delete(scratch.id);
    }
  }
}
/** Declares no instance snapshots and refuses every call of them but the listing, which answers. */
class ListSnapshotsUndeclaredWorks extends DriverDecorator {
  override get capabilities(): Capabilities {
    return { ...this.inner.capabilities, instanceSnapshots: false };
  }
  override async createInstanceSnapshot(): Promise<InstanceSnapshot> {
    throw new UnsupportedOperationError("instanceSnapshots", this.name);
  }
  override async revertToInstanceSnapshot(): Promise<void> {
    throw new UnsupportedOperationError("instanceSnapshots", this.name);
  }
  override async deleteInstanceSnapshot(): Promise<void> {
    throw new UnsupportedOperationError("instanceSnapshots", this.name);
  }
}
/** Declares no adminPasswordAnyUser and refuses another account with `refusal(user)`. */
abstract class AnyUserRefused extends DriverDecorator {
  protected abstract refusal(user: string): UnsupportedOperationError;
  override get capabilities(): Capabilities {
    return { ...this.inner.capabilities, adminPasswordAnyUser: false };
  }
  override async setAdminPassword(i: Instance, pw: Secret, o?: OperationOptions) {
    const user = i.imageMeta.properties.os_admin_user;
    if (user !== undefined && user !== "root" && user !== "Administrator") throw this.refusal(user);
    return this.inner.setAdminPassword(i, pw, o);
  }
}
/** The refusal names the wrong capability. */
class AnyUserRefusalMisnamed extends AnyUserRefused {
  protected refusal(user: string) {
    return new UnsupportedOperationError("setAdminPassword", this.name, { detail: `account ${user}` });
  }
}
/** The refusal names the capability but not the account asked for. */
class AnyUserRefusalNameless extends AnyUserRefused {
  protected refusal() {
    return new UnsupportedOperationError("adminPasswordAnyUser", this.name);
  }
}
/** A password set that fails because the guest lacks the account is reported as done (the agent's error dropped). */
class MissingAccountReportsSuccess extends DriverDecorator {
  override async setAdminPassword(i: Instance, pw: Secret, o?: OperationOptions) {
    await this.inner.setAdminPassword(i, pw, o).catch((err: unknown) => {
      if (!(err instanceof PasswordSetFailedError)) throw err;
    });
  }
}

// -- the fifth measurement's gaps: optional arguments, deadlines, accounts, the clean wait ---------

/** Image snapshot reads its options without checking they were given. */
class SnapshotOptionsRequired extends DriverDecorator {
  override async snapshot(i: Instance, imageId: string, o?: ImageSnapshotOptions) {
    const report = (o as ImageSnapshotOptions).onTaskState;
    return this.inner.snapshot(i, imageId, { ...o, ...(report ? { onTaskState: report } : {}) });
  }
}
/** createInstanceSnapshot reads the description from options without checking they were given. */
class InstanceSnapshotOptionsRequired extends DriverDecorator {
  override async createInstanceSnapshot(i: Instance, name: string, o?: OperationOptions & { readonly description?: string }) {
    const description = (o as { readonly description?: string }).description;
    return this.inner.createInstanceSnapshot(i, name, { ...o, ...(description === undefined ? {} : { description }) });
  }
}
/** A record mapper that writes every field: a snapshot without a description gets `description: undefined`. */
class SnapshotDescriptionUndefinedKey extends DriverDecorator {
  override async createInstanceSnapshot(i: Instance, name: string, o?: OperationOptions & { readonly description?: string }) {
    const snap = await this.inner.createInstanceSnapshot(i, name, o);
    return { ...snap, description: snap.description };
  }
  override async listInstanceSnapshots(i: Instance, o?: OperationOptions) {
    return (await this.inner.listInstanceSnapshots(i, o)).map((s) => ({ ...s, description: s.description }));
  }
}
/** The caller's first task-state report is awaited before the call's deadline starts. */
class SnapshotTaskStateOutsideDeadline extends DriverDecorator {
  override async snapshot(i: Instance, imageId: string, o?: ImageSnapshotOptions) {
    const report = o?.onTaskState;
    if (!report) return this.inner.snapshot(i, imageId, o);
    await report(TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_SNAPSHOT);
    const rest = (ts: TaskState, expected: TaskState | null) =>
      ts === TaskState.IMAGE_PENDING_UPLOAD ? undefined : report(ts, expected);
    return this.inner.snapshot(i, imageId, { ...o, onTaskState: rest });
  }
}
/** setAdminPassword picks the account from the instance's osType only: a Windows image without it gets root. */
class PasswordIgnoresImageOsType extends WithGuest {
  override async setAdminPassword(i: Instance, pw: Secret, o?: OperationOptions) {
    const props = i?.imageMeta?.properties;
    if (i.osType !== undefined || props?.os_type !== "windows" || props.os_admin_user !== undefined) {
      return this.inner.setAdminPassword(i, pw, o);
    }
    await this.guest(i).setPassword("root", pw);
  }
}
/** The guest agent is asked before the power state is looked at: a stopped instance's hung agent is blamed. */
class StoppedAgentBlamed extends WithGuest {
  override async setAdminPassword(i: Instance, pw: Secret, o?: OperationOptions) {
    let agent: string | undefined;
    try {
      agent = this.guest(i).agent;
    } catch {
      // Unknown instance: the driver's own answer.
    }
    if (agent !== undefined && agent !== "ok") throw new GuestAgentUnresponsiveError(i.uuid);
    return this.inner.setAdminPassword(i, pw, o);
  }
}
/** The clean wait asks every retry interval and gives up only at a whole interval: the timeout rounded up. */
class CleanWaitWholeIntervals extends DriverDecorator {
  override powerOff(i: Instance, o?: PowerOffOptions) {
    const t = o?.cleanShutdownTimeoutSec ?? 0;
    const r = o?.retryIntervalSec ?? 0;
    if (!(t > 0 && r > 0)) return this.inner.powerOff(i, o);
    return this.inner.powerOff(i, { ...o, cleanShutdownTimeoutSec: Math.ceil(t / r) * r });
  }
}

// -- the sixth measurement ---------------------------------------------------------------------------

/**
 * The clean-shutdown wait does not look at the power state: a guest that crashed while it was being
 * asked is cut off only when the clean timeout is over (the call returns that late).
 */
class CleanWaitDeafToCrash extends WithGuest {
  override async powerOff(i: Instance, o?: PowerOffOptions) {
    const t = o?.cleanShutdownTimeoutSec ?? 0;
    const t0 = Date.now();
    await this.inner.powerOff(i, o);
    if (!(t > 0)) return;
    // Not a clean shutdown: the healthy driver cut the guest off; this one waits out the timeout first.
    const left = t * 1000 - (Date.now() - t0);
    if (this.guest(i).lastShutdown === "hard" && left > 0) await new Promise((r) => setTimeout(r, left));
  }
}

// -- 2026-12-02: the contract's doc comments read against the kit -----------------------------------

/** A spawn's password for an image without a guest agent is taken and dropped (the XenAPI driver did). */
class SpawnPasswordDroppedWithoutAgent extends DriverDecorator {
  override spawn(request: SpawnRequest, o?: OperationOptions) {
    if (request.adminPassword === undefined) return this.inner.spawn(request, o);
    const meta = request.imageMeta ?? request.instance.imageMeta;
    if (meta.properties.hw_qemu_guest_agent === true) return this.inner.spawn(request, o);
    const dropped = { ...request };
    delete (dropped as { adminPassword?: Secret }).adminPassword;
    return this.inner.spawn(dropped, o);
  }
}

/** Instance snapshots listed by name, not oldest first. */
class SnapshotsListedByName extends DriverDecorator {
  override async listInstanceSnapshots(i: Instance, o?: OperationOptions) {
    return [...(await this.inner.listInstanceSnapshots(i, o))].sort((x, y) => x.name.localeCompare(y.name));
  }
}

/**
 * liveMigration only stops waiting when its caller aborts or its deadline passes: the move, not
 * given the signal, goes on and lands on the destination after the call rejected.
 */
class MigrationDeafToCaller extends DriverDecorator {
  override liveMigration(i: Instance, data: MigrateData, o?: LiveMigrationOptions) {
    const { signal: _signal, timeoutMs: _timeoutMs, ...rest } = o ?? {};
    // core's race of the call against its signal and deadline, with the move itself left out of it.
    return withDeadline("liveMigration", o, 0, () => this.inner.liveMigration(i, data, rest));
  }
}

// -- the table --------------------------------------------------------------------------------------

type Wrap = NonNullable<BrokenVariant["wrap"]>;
/**
 * The destination's check keeps a Date in MigrateData and the move reads it back as one: fine
 * while both steps share one process, broken once Nova's RPC hands the data on as JSON.
 */
class MigrateDataWithADate extends DriverDecorator {
  override async checkCanLiveMigrateDestination(i: Instance, src: HostInfo, p: MigrationPolicy, o?: OperationOptions) {
    const data = await this.inner.checkCanLiveMigrateDestination(i, src, p, o);
    return { ...data, extra: { ...data.extra, checkedAt: new Date() as unknown as string } };
  }
  override liveMigration(i: Instance, data: MigrateData, o?: LiveMigrationOptions) {
    const checkedAt = data.extra.checkedAt as unknown as Date | undefined;
    if (checkedAt !== undefined && Date.now() - checkedAt.getTime() > 3_600_000) {
      throw new Error("the destination check is more than an hour old");
    }
    return this.inner.liveMigration(i, data, o);
  }
}

/** Every image snapshot is announced as live, also of a guest that is not running. */
class SnapshotAlwaysSaysLive extends DriverDecorator {
  override snapshot(i: Instance, imageId: string, o?: ImageSnapshotOptions) {
    const told = o?.onSnapshotMethod;
    return this.inner.snapshot(i, imageId, told ? { ...o, onSnapshotMethod: (_m, reason) => told("live", reason) } : o);
  }
}

/** Copies a running guest's disk live but tells the caller "cold" (stopped or saved for the copy). */
class SnapshotSaysColdWhileRunning extends DriverDecorator {
  override snapshot(i: Instance, imageId: string, o?: ImageSnapshotOptions) {
    const told = o?.onSnapshotMethod;
    return this.inner.snapshot(i, imageId, told ? { ...o, onSnapshotMethod: (_m, reason) => told("cold", reason) } : o);
  }
}

/**
 * setAdminPassword keeps the caller's deadline only while the agent answers: a hung agent holds the
 * call for the agent's own timeout (a deadline checked between steps, not raced against the wait).
 */
class HungAgentOutlivesDeadline extends WithGuest {
  override setAdminPassword(i: Instance, pw: Secret, o?: OperationOptions) {
    let agent: string | undefined;
    try {
      agent = this.guest(i).agent;
    } catch {
      // Unknown instance: the driver's own answer.
    }
    if (agent !== "unresponsive") return this.inner.setAdminPassword(i, pw, o);
    const { timeoutMs: _timeoutMs, signal: _signal, ...rest } = o ?? {};
    return this.inner.setAdminPassword(i, pw, rest);
  }
}

// -- Defects found by trying the kit from outside (2026-12-03): lists, snapshot ids, inputs, deadlines --

class UuidsTwiceWhenPaused extends DriverDecorator {
  readonly #known = new Map<string, Instance>();
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    await this.inner.spawn(request, options);
    this.#known.set(request.instance.uuid, request.instance);
  }
  override async listInstanceUuids(options?: OperationOptions): Promise<readonly string[]> {
    const ids = [...(await this.inner.listInstanceUuids(options))];
    for (const id of [...ids]) {
      const inst = this.#known.get(id);
      if (inst && (await stateOf(this.inner, inst)) === PowerState.PAUSED) ids.push(id);
    }
    return ids;
  }
}

class RescueDomainListed extends DriverDecorator {
  readonly #rescued = new Map<string, Instance>();
  override async rescue(instance: Instance, meta: ImageMeta, options?: RescueOptions): Promise<void> {
    await this.inner.rescue(instance, meta, options);
    this.#rescued.set(instance.uuid, instance);
  }
  override async unrescue(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.inner.unrescue(instance, options);
    this.#rescued.delete(instance.uuid);
  }
  override async destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    await this.inner.destroy(instance, options);
    this.#rescued.delete(instance.uuid);
  }
  override async listInstances(options?: OperationOptions): Promise<readonly string[]> {
    const names = [...(await this.inner.listInstances(options))];
    for (const inst of this.#rescued.values()) if (await this.inner.instanceExists(inst)) names.push(`${inst.name}-rescue`);
    return names;
  }
}

class RescuePasswordInRefusal extends DriverDecorator {
  override async rescue(instance: Instance, meta: ImageMeta, options?: RescueOptions): Promise<void> {
    try {
      await this.inner.rescue(instance, meta, options);
    } catch (err) {
      if (err instanceof Error && options?.rescuePassword) err.message += ` (rescue password ${options.rescuePassword.reveal()})`;
      throw err;
    }
  }
}

class SnapshotName255Refused extends DriverDecorator {
  override createInstanceSnapshot(instance: Instance, name: string, options?: OperationOptions & { readonly description?: string }): Promise<InstanceSnapshot> {
    if (name.length >= 255) return Promise.reject(new InvalidInputError("name", "must be 1 to 254 characters"));
    return this.inner.createInstanceSnapshot(instance, name, options);
  }
}

class SnapshotIdsWithNames extends DriverDecorator {
  readonly #toInner = new Map<string, string>();
  #out(instance: Instance, s: InstanceSnapshot): InstanceSnapshot {
    const id = `${instance.uuid}/${s.name}/${s.id}`;
    this.#toInner.set(id, s.id);
    return { ...s, id };
  }
  override async createInstanceSnapshot(instance: Instance, name: string, options?: OperationOptions & { readonly description?: string }): Promise<InstanceSnapshot> {
    return this.#out(instance, await this.inner.createInstanceSnapshot(instance, name, options));
  }
  override async listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    return (await this.inner.listInstanceSnapshots(instance, options)).map((s) => this.#out(instance, s));
  }
  override revertToInstanceSnapshot(instance: Instance, id: string, options?: OperationOptions): Promise<void> {
    return this.inner.revertToInstanceSnapshot(instance, this.#toInner.get(id) ?? id, options);
  }
  override deleteInstanceSnapshot(instance: Instance, id: string, options?: OperationOptions): Promise<void> {
    return this.inner.deleteInstanceSnapshot(instance, this.#toInner.get(id) ?? id, options);
  }
}

class SnapshotIdsHostWide extends DriverDecorator {
  readonly #owner = new Map<string, Instance>();
  override async createInstanceSnapshot(instance: Instance, name: string, options?: OperationOptions & { readonly description?: string }): Promise<InstanceSnapshot> {
    const s = await this.inner.createInstanceSnapshot(instance, name, options);
    this.#owner.set(s.id, instance);
    return s;
  }
  override deleteInstanceSnapshot(instance: Instance, id: string, options?: OperationOptions): Promise<void> {
    return this.inner.deleteInstanceSnapshot(this.#owner.get(id) ?? instance, id, options);
  }
  override revertToInstanceSnapshot(instance: Instance, id: string, options?: OperationOptions): Promise<void> {
    return this.inner.revertToInstanceSnapshot(this.#owner.get(id) ?? instance, id, options);
  }
}

class SnapshotListReused extends DriverDecorator {
  readonly #lists = new Map<string, InstanceSnapshot[]>();
  override async listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    const fresh = await this.inner.listInstanceSnapshots(instance, options);
    const list = this.#lists.get(instance.uuid) ?? [];
    this.#lists.set(instance.uuid, list);
    list.length = 0;
    list.push(...fresh);
    return list;
  }
}

class PasswordCutAtColon extends DriverDecorator {
  override setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    const text = password.reveal();
    return this.inner.setAdminPassword(instance, text.includes(":") ? new Secret(text.split(":")[0]!) : password, options);
  }
}

/** timeoutMs of a second or more taken for seconds already converted, and dropped. */
/** getInfo drops the timeoutMs of the deadlines `dropped` picks (a second or more; under a second). */
class GetInfoDeadlinesDropped extends DriverDecorator {
  constructor(
    inner: ComputeDriver,
    readonly dropped: (timeoutMs: number) => boolean,
  ) {
    super(inner);
  }
  override getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    if (typeof options?.timeoutMs === "number" && options.timeoutMs > 0 && this.dropped(options.timeoutMs)) {
      const { timeoutMs: _dropped, ...rest } = options;
      return this.inner.getInfo(instance, rest);
    }
    return this.inner.getInfo(instance, options);
  }
}

class DestinationCheckDeaf extends DriverDecorator {
  override checkCanLiveMigrateDestination(instance: Instance, source: HostInfo, policy: MigrationPolicy, _options?: OperationOptions): Promise<MigrateData> {
    return this.inner.checkCanLiveMigrateDestination(instance, source, policy, {});
  }
}

class InspectionIgnoresAborted extends DriverDecorator {
  override listInstances(options?: OperationOptions): Promise<readonly string[]> {
    return this.inner.listInstances(options?.signal?.aborted ? {} : options);
  }
  override instanceExists(instance: Instance, options?: OperationOptions): Promise<boolean> {
    return this.inner.instanceExists(instance, options?.signal?.aborted ? {} : options);
  }
}

/** Options a JavaScript caller got wrong are "tidied": a deadline that is no positive number, or a signal that is no AbortSignal, dropped. */
class OptionsTidiedAway extends DriverDecorator {
  static tidy<T extends OperationOptions | undefined>(options: T): T {
    if (!options) return options;
    const o: { signal?: unknown; timeoutMs?: unknown } = { ...options };
    if (!(typeof o.timeoutMs === "number" && o.timeoutMs > 0)) delete o.timeoutMs;
    if (!(o.signal instanceof AbortSignal)) delete o.signal;
    return o as T;
  }
  override getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    return this.inner.getInfo(instance, OptionsTidiedAway.tidy(options));
  }
  override powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    return this.inner.powerOff(instance, OptionsTidiedAway.tidy(options));
  }
}

/** Reads the request's instance before checking it: spawn({ instance: null }) is a TypeError. */
class SpawnReadsInstanceFirst extends DriverDecorator {
  override spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    if (typeof request === "object" && request !== null) {
      const uuid = request.instance.uuid;
      if (uuid === "") return Promise.reject(new InvalidInputError("instance.uuid", "must not be empty"));
    }
    return this.inner.spawn(request, options);
  }
}

/** A progress monitor whose last tick lands after the move has settled: the caller hears of it late. */
class ProgressReportedLate extends DriverDecorator {
  override async liveMigration(i: Instance, d: MigrateData, o?: LiveMigrationOptions): Promise<void> {
    let last: Parameters<NonNullable<LiveMigrationOptions["onProgress"]>>[0] | undefined;
    await this.inner.liveMigration(i, d, { ...o, onProgress: (p) => ((last = p), o?.onProgress?.(p)) });
    const final = last ?? { dataTotalBytes: 1, dataProcessedBytes: 1, dataRemainingBytes: 0, elapsedMs: 1 };
    setTimeout(() => o?.onProgress?.(final), 20);
  }
}

/** spawn fills a default into the caller's image properties: what the caller holds changes under it. */
class SpawnWritesCallerImageMeta extends DriverDecorator {
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    const props = (request as { instance?: { imageMeta?: { properties?: Record<string, unknown> } } }).instance?.imageMeta?.properties;
    if (props && props.hw_disk_bus === undefined) props.hw_disk_bus = "virtio";
    return this.inner.spawn(request, options);
  }
}

/** destroy keeps the instance's snapshots: an instance spawned again under its uuid lists them. */
class DestroyKeepsSnapshots extends DriverDecorator {
  readonly #left = new Map<string, InstanceSnapshot[]>();
  override async destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    const snaps = await this.inner.listInstanceSnapshots(instance).catch(() => [] as readonly InstanceSnapshot[]);
    await this.inner.destroy(instance, options);
    if (snaps.length > 0) this.#left.set(instance.uuid, [...snaps]);
  }
  override async listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    return [...(this.#left.get(instance.uuid) ?? []), ...(await this.inner.listInstanceSnapshots(instance, options))];
  }
}

/** A revert to a snapshot captured PAUSED resumes the guest afterwards. */
class RevertResumesPaused extends DriverDecorator {
  override async revertToInstanceSnapshot(instance: Instance, id: string, options?: OperationOptions): Promise<void> {
    await this.inner.revertToInstanceSnapshot(instance, id, options);
    if ((await stateOf(this.inner, instance)) === PowerState.PAUSED) await this.inner.unpause(instance);
  }
}

// -- 2026-12-03, later: plausible driver bugs an outside hunt found the kit missing ----------------

/** A failed set keeps its type, but its message quotes the agent command, which carries the password base64-encoded. */
class PasswordBase64InError extends DriverDecorator {
  override async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    try {
      await this.inner.setAdminPassword(instance, password, options);
    } catch (err) {
      if (err instanceof Error) {
        const command = { execute: "guest-set-user-password", arguments: { username: "root", password: Buffer.from(password.reveal()).toString("base64"), crypted: false } };
        err.message += ` (agent command: ${JSON.stringify(command)})`;
      }
      throw err;
    }
  }
}

/** The password is set through the serial console, and the command shows in the console output. */
class PasswordInConsole extends DriverDecorator {
  readonly #typed = new Map<string, string>();
  override async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    await this.inner.setAdminPassword(instance, password, options);
    this.#typed.set(instance.uuid, `# echo 'root:${password.reveal()}' | chpasswd`);
  }
  override async getConsoleOutput(instance: Instance, options?: OperationOptions): Promise<string> {
    const out = await this.inner.getConsoleOutput(instance, options);
    const typed = this.#typed.get(instance.uuid);
    return typed === undefined ? out : `${out}\n${typed}`;
  }
}

/** An InvalidStateError names the power state by Nova's number ("4"), not its name ("SHUTDOWN"). */
class InvalidStateNumeric extends DriverDecorator {
  static renamed(err: unknown): unknown {
    if (!(err instanceof InvalidStateError)) return err;
    const n = (PowerState as Record<string, number>)[err.state];
    return n === undefined ? err : new InvalidStateError(err.instanceId, err.operation, String(n), { cause: err.cause });
  }
  override pause(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.inner.pause(instance, options).catch((e: unknown) => Promise.reject(InvalidStateNumeric.renamed(e)));
  }
  override unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.inner.unpause(instance, options).catch((e: unknown) => Promise.reject(InvalidStateNumeric.renamed(e)));
  }
}

/** consoleOutput undeclared, and the refusal names the method instead of the capability. */
class UnsupportedNamesMethod extends DriverDecorator {
  override get capabilities(): Capabilities {
    return { ...this.inner.capabilities, consoleOutput: false };
  }
  override getConsoleOutput(): Promise<string> {
    return Promise.reject(new UnsupportedOperationError("getConsoleOutput", this.inner.name));
  }
}

/** A timeout reports the driver's default deadline, not the caller's one that passed. */
class TimeoutErrorDefaultMs extends DriverDecorator {
  static restated(err: unknown): unknown {
    return err instanceof OperationTimeoutError ? new OperationTimeoutError(err.operation, 300_000, { cause: err.cause }) : err;
  }
  override getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    return this.inner.getInfo(instance, options).catch((e: unknown) => Promise.reject(TimeoutErrorDefaultMs.restated(e)));
  }
  override pause(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.inner.pause(instance, options).catch((e: unknown) => Promise.reject(TimeoutErrorDefaultMs.restated(e)));
  }
}

/** Each call writes its default deadline into the caller's options object (`options.timeoutMs ??= ...`). */
class OptionsWritten extends DriverDecorator {
  static fill<T extends OperationOptions | undefined>(options: T): T {
    if (options && options.timeoutMs === undefined) (options as { timeoutMs?: number }).timeoutMs = 30_000;
    return options;
  }
  override getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    return this.inner.getInfo(instance, OptionsWritten.fill(options));
  }
}

/** spawn "scrubs" the password out of the caller's request once it is used. */
class SpawnScrubsRequest extends DriverDecorator {
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    await this.inner.spawn(request, options);
    if (request.adminPassword !== undefined) (request as { adminPassword?: Secret }).adminPassword = undefined;
  }
}

const v = (defectClass: DefectClass, name: string, defect: string, caughtBy: readonly string[], wrap: Wrap): BrokenVariant => ({
  name,
  defectClass,
  defect,
  caughtBy,
  wrap,
});

const SOFT_CLEAN = "lifecycle.reboot-soft-is-clean";
const PER_INSTANCE = "snapshot.per-instance";
const INSPECTION = "deadlines.inspection";
const POWER_SEEN = "lifecycle.power-off-seen-by-guest";
const BAD = "input.bad-arguments";
const IMAGE_RUNNING = "snapshot.image-running";
const IMAGE_STOPPED = "snapshot.image-stopped";

/** One variant per defect; `caughtBy` names the new check (at least one must fail). */
export const GAP_VARIANTS: readonly BrokenVariant[] = [
  v("effects", "soft-reboot-always-hard", "every soft reboot is done as a hard one", [SOFT_CLEAN], (d) => new SoftRebootAlwaysHard(d)),
  v("effects", "hard-reboot-asks-guest", "a hard reboot of a running guest asks it to reboot (ACPI) instead of resetting it", [SOFT_CLEAN], (d) => new HardRebootAsksGuest(d)),
  v("effects", "power-off-zero-asks-guest", "power off with cleanShutdownTimeoutSec 0 still sends an ACPI request", [POWER_SEEN], (d) => new PowerOffZeroAsksGuest(d)),
  v("effects", "power-off-suspended-restores-first", "power off of a suspended instance restores it to shut it down cleanly", [POWER_SEEN], (d) => new PowerOffSuspendedRestoresFirst(d)),
  v("effects", "power-off-never-clean", "power off ignores the clean timeout: always hard", [POWER_SEEN], (d) => new PowerOffNeverClean(d)),
  v("effects", "power-off-no-retries", "power off drops retryIntervalSec: the guest is asked only at the start and the end", ["lifecycle.power-off-retries"], (d) => new PowerOffNoRetries(d)),
  v("deadlines", "clean-wait-ignores-deadline", "the clean-shutdown wait does not honour the call's timeoutMs", ["lifecycle.power-off-wait-bounded"], (d) => new CleanWaitIgnoresDeadline(d)),
  v("refusal", "power-off-unknown-untyped", "power off of an unknown instance with a clean timeout throws a TypeError", ["lifecycle.power-off-wait-bounded"], (d) => new PowerOffUnknownUntyped(d)),
  v("units", "cpu-time-wall-clock", "cpuTimeNs is wall time since spawn x vcpus: it runs on while stopped or paused", ["lifecycle.cpu-time"], (d) => new CpuTimeWallClock(d)),
  v("units", "cpu-time-reset-on-unpause", "cpuTimeNs restarts at zero on unpause", ["lifecycle.cpu-time"], (d) => new CpuTimeResetOnUnpause(d)),
  v("units", "cpu-time-constant", "cpuTimeNs is always 0", ["lifecycle.cpu-time-grows"], (d) => new CpuTimeConstant(d)),
  v("refusal", "spawn-destructures-first", "spawn(null) fails with a TypeError, not InvalidInputError", [BAD], (d) => new SpawnDestructuresFirst(d)),
  v("refusal", "reboot-unknown-type-as-hard", "a reboot type other than SOFT/HARD is taken as HARD", [BAD], (d) => new RebootUnknownTypeAsHard(d)),
  v("refusal", "reboot-no-type-as-hard", "a reboot with no type is taken as HARD", [BAD], (d) => new RebootNoTypeAsHard(d)),
  v("refusal", "power-off-odd-timeout-hard", "an Infinity or string clean timeout counts as 0: powered off hard", [BAD], (d) => new PowerOffOddTimeoutHard(d)),
  v("refusal", "power-off-negative-timeout-hard", "a negative clean timeout counts as 0: the instance is powered off", [BAD], (d) => new PowerOffNegativeTimeoutHard(d)),
  v("refusal", "rescue-password-plain-accepted", "a plain-text rescuePassword is accepted", [BAD], (d) => new RescuePasswordPlainAccepted(d)),
  v("refusal", "invalid-input-unnamed", "InvalidInputError from reboot names no field", [BAD], (d) => new InvalidInputUnnamed(d)),
  v("refusal", "power-off-options-required", "powerOff without options throws a TypeError", ["input.options-omitted"], (d) => new PowerOffOptionsRequired(d)),
  v("accounts", "rescue-password-dropped", "rescue drops the rescuePassword", ["lifecycle.rescue-password"], (d) => new RescuePasswordDropped(d)),
  v("accounts", "rescue-password-to-instance", "the rescuePassword is set as the instance's own root password", ["lifecycle.rescue-password"], (d) => new RescuePasswordToInstance(d)),
  v("wrong-state", "rescue-reboot-boots-own-disk", "a hard reboot of a rescued instance boots its own disk (rescue left)", ["lifecycle.rescue-survives-reboot", "state.rescued.reboot-hard"], (d) => new RescueRebootBootsOwnDisk(d)),
  v("accounts", "first-boot-ignores-image-os-type", "the first-boot password goes to root when only the image says windows", ["admin-password.first-boot"], (d, c) => new FirstBootIgnoresImageOsType(d, c)),
  v("illegal-accepted", "spawn-race-both-succeed", "a spawn of a uuid being spawned waits for the first and reports success", ["admin-password.first-boot"], (d) => new SpawnRaceBothSucceed(d)),
  v("refusal", "undeclared-soft-reboot-asks-guest", "declares no softReboot, yet a SOFT reboot asks the guest (ACPI)", [SOFT_CLEAN], (d) => new UndeclaredSoftRebootAsksGuest(d)),
  v("refusal", "hard-reboot-needs-soft-reboot", "declares no softReboot and refuses HARD reboots too", [SOFT_CLEAN, "state.running.reboot-hard"], (d) => new HardRebootNeedsSoftReboot(d)),
  v("refusal", "rescue-undeclared-but-works", "declares no rescue, yet rescue and unrescue work", ["lifecycle.rescue-unrescue"], (d) => new RescueUndeclaredButWorks(d)),
  v("crashed", "crash-announced-as-stopped", "a crash is announced as STOPPED", ["events.crash-announced"], crashAsStopped),
  v("crashed", "crash-announced-twice", "a crash is announced twice", ["events.crash-announced"], crashTwice),
  v("wrong-state", "rescue-power-on-boots-own-disk", "power on of a powered-off rescued instance boots its own disk while still in rescue mode", ["lifecycle.rescue-survives-reboot"], (d) => new RescuePowerOnBootsOwnDisk(d)),
  v("refusal", "refusal-names-instance-by-name", "a refused pause's InvalidStateError names the instance by name, not uuid", ["state.shutdown.pause"], (d) => new RefusalNamesInstanceByName(d)),
  v("refusal", "refusal-without-operation", "a refused unpause's InvalidStateError names no operation", ["state.running.unpause"], (d) => new RefusalWithoutOperation(d)),
  v("refusal", "rescued-unrescue-refusal-unnamed", "unrescue of a paused or suspended rescued instance is refused with an InvalidStateError that names no operation", ["state.rescued.pause", "state.rescued.suspend"], (d) => new RescuedUnrescueRefusalUnnamed(d)),
  v("wrong-state", "rescued-unrescue-noop", "unrescue of a paused or suspended rescued instance reports success and leaves it in rescue mode", ["state.rescued.pause", "state.rescued.suspend"], (d) => new RescuedUnrescueNoop(d)),
  v("refusal", "absent-agent-reports-success", "setAdminPassword with no agent running in the guest reports success", ["admin-password.agent-unresponsive"], (d) => new AbsentAgentReportsSuccess(d)),
  v("snapshots", "delete-removes-oldest-snapshot", "deleting an instance snapshot removes the oldest one, whichever id was asked for", ["snapshot.instance-snapshots"], (d) => new DeleteRemovesOldestSnapshot(d)),
  v("snapshots", "delete-unknown-removes-newest", "deleting an unknown snapshot id removes the newest snapshot instead of refusing", ["snapshot.instance-snapshots"], (d) => new DeleteUnknownRemovesNewest(d)),
  v("refusal", "empty-snapshot-name-generated", "an empty instance snapshot name is replaced by a generated one instead of refused", ["input.bad-arguments"], (d) => new EmptySnapshotNameGenerated(d)),
  v("wrong-state", "crashed-rescue-unrescue-refused", "unrescue of a rescued instance whose rescue system crashed is refused", ["lifecycle.unrescue-after-crash"], (d) => new CrashedRescueUnrescueRefused(d)),
  v("wrong-state", "one-call-at-a-time", "a call about one instance while another instance's call runs is refused as busy", ["lifecycle.concurrent-instances"], (d) => new OneCallAtATime(d)),
  v("events", "events-lost-while-calls-overlap", "events emitted while two of its calls overlap are lost", ["lifecycle.concurrent-instances"], (d) => new EventsLostWhileCallsOverlap(d)),
  v("deadlines", "deadline-error-unnamed", "a pause's OperationTimeoutError / OperationAbortedError names no operation", ["deadlines.every-operation"], (d) => new DeadlineErrorUnnamed(d)),
  v("snapshots", "snapshot-raw-labelled-qcow2", "an image snapshot converted to raw data keeps the qcow2 label", [IMAGE_RUNNING, IMAGE_STOPPED], (d, c) => new SnapshotRawLabelledQcow2(d, c)),
  v("snapshots", "snapshot-always-raw", "every image snapshot is uploaded as raw, whatever the source image's format", [IMAGE_RUNNING, IMAGE_STOPPED], (d, c) => new SnapshotAlwaysRaw(d, c)),
  v("refusal", "list-snapshots-undeclared-works", "declares no instance snapshots and refuses create, revert and delete, but listInstanceSnapshots answers", ["snapshot.instance-snapshots"], (d) => new ListSnapshotsUndeclaredWorks(d)),
  v("refusal", "any-user-refusal-misnamed", "declares no adminPasswordAnyUser; the refusal for another account names capability setAdminPassword", ["admin-password.os-admin-user"], (d) => new AnyUserRefusalMisnamed(d)),
  v("refusal", "any-user-refusal-nameless", "declares no adminPasswordAnyUser; the refusal for another account does not say which account", ["admin-password.os-admin-user"], (d) => new AnyUserRefusalNameless(d)),
  v("accounts", "missing-account-reports-success", "setAdminPassword for an os_admin_user the guest lacks reports success", ["admin-password.missing-account"], (d) => new MissingAccountReportsSuccess(d)),
  v("refusal", "snapshot-options-required", "snapshot without options throws a TypeError", ["input.options-omitted"], (d) => new SnapshotOptionsRequired(d)),
  v("refusal", "instance-snapshot-options-required", "createInstanceSnapshot without options throws a TypeError", ["input.options-omitted"], (d) => new InstanceSnapshotOptionsRequired(d)),
  v("snapshots", "snapshot-description-undefined-key", "an instance snapshot made without a description carries description: undefined", ["snapshot.instance-snapshots"], (d) => new SnapshotDescriptionUndefinedKey(d)),
  v("deadlines", "snapshot-task-state-outside-deadline", "the image snapshot's first task-state report is awaited before the call's deadline starts", ["snapshot.image-callback-stall"], (d) => new SnapshotTaskStateOutsideDeadline(d)),
  v("accounts", "password-ignores-image-os-type", "setAdminPassword sets root when only the image says windows", ["admin-password.windows-administrator"], (d, c) => new PasswordIgnoresImageOsType(d, c)),
  v("refusal", "stopped-agent-blamed", "setAdminPassword of a stopped instance whose agent hung before it stopped blames the agent", ["admin-password.not-running"], (d, c) => new StoppedAgentBlamed(d, c)),
  v("effects", "clean-wait-whole-intervals", "the clean-shutdown wait runs to a whole number of retry intervals, past the clean timeout", ["lifecycle.power-off-wait-bounded"], (d) => new CleanWaitWholeIntervals(d)),
  v("effects", "clean-wait-deaf-to-crash", "a clean power off waits out its clean timeout although the guest crashed meanwhile", ["lifecycle.power-off-wait-ends-on-crash"], (d, c) => new CleanWaitDeafToCrash(d, c)),
  v("deadlines", "upload-deaf-to-abort", "an image snapshot aborted during its upload returns, but the upload, not given the signal, finishes later", ["snapshot.image-upload-aborted"], (d, c) => new UploadDeafToAbort(d, c)),
  v("refusal", "spawn-password-dropped-without-agent", "spawn takes an adminPassword for an image without a guest agent and never sets it", ["admin-password.spawn-without-agent"], (d) => new SpawnPasswordDroppedWithoutAgent(d)),
  v("wrong-state", "snapshots-listed-by-name", "listInstanceSnapshots sorts by name instead of oldest first", ["effects.revert-chosen-snapshot"], (d) => new SnapshotsListedByName(d)),
  v("snapshots", "snapshot-always-says-live", "onSnapshotMethod says live for an image snapshot of a stopped guest", [IMAGE_STOPPED], (d) => new SnapshotAlwaysSaysLive(d)),
  v("migration", "migrate-data-with-a-date", "the destination check puts a Date into MigrateData (JSON turns it into text)", ["migration.live"], (d) => new MigrateDataWithADate(d)),
  v("deadlines", "migration-deaf-to-caller", "liveMigration rejects when its caller aborts or its deadline passes, but the move goes on and lands", ["migration.caller-cancels"], (d) => new MigrationDeafToCaller(d)),
  v("migration", "migration-outlives-destroy", "destroy does not cancel the migration job: it fails seconds later", ["migration.destroy-during"], (d) => new MigrationOutlivesDestroy(d)),
  // Found by trying the kit from outside (2026-12-03).
  v("wrong-state", "uuids-twice-when-paused", "listInstanceUuids lists a paused instance twice", ["lifecycle.pause-unpause"], (d) => new UuidsTwiceWhenPaused(d)),
  v("wrong-state", "rescue-domain-listed", "listInstances also names the rescue domain (<name>-rescue) while rescued", ["lifecycle.rescue-unrescue"], (d) => new RescueDomainListed(d)),
  v("refusal", "rescue-password-in-refusal", "a refused rescue's error message holds the rescuePassword", ["state.rescued.rescue"], (d) => new RescuePasswordInRefusal(d)),
  v("refusal", "snapshot-name-255-refused", "a snapshot name of 255 characters is refused (one short of the contract's limit)", [PER_INSTANCE], (d) => new SnapshotName255Refused(d)),
  v("snapshots", "snapshot-ids-with-names", "snapshot ids are <uuid>/<name>/<id>: past 255 characters for a long name", [PER_INSTANCE], (d) => new SnapshotIdsWithNames(d)),
  v("snapshots", "snapshot-ids-host-wide", "delete and revert find a snapshot id on whichever instance has it", [PER_INSTANCE], (d) => new SnapshotIdsHostWide(d)),
  v("snapshots", "snapshot-list-reused", "listInstanceSnapshots refills one array per instance in place: a listing handed out changes later", [PER_INSTANCE], (d) => new SnapshotListReused(d)),
  v("accounts", "password-cut-at-colon", "setAdminPassword keeps the password up to its first ':' (chpasswd's separator)", ["admin-password.characters"], (d) => new PasswordCutAtColon(d)),
  v("deadlines", "long-deadlines-dropped", "getInfo drops a timeoutMs of a second or more", [INSPECTION], (d) => new GetInfoDeadlinesDropped(d, (ms) => ms >= 1000)),
  v("deadlines", "short-deadlines-dropped", "getInfo drops a timeoutMs under a second: it answers after the hypervisor's delay, within its own default deadline", [INSPECTION], (d) => new GetInfoDeadlinesDropped(d, (ms) => ms < 1000)),
  v("deadlines", "destination-check-deaf", "checkCanLiveMigrateDestination ignores the caller's signal and deadline", [INSPECTION], (d) => new DestinationCheckDeaf(d)),
  v("deadlines", "inspection-ignores-aborted", "listInstances and instanceExists run although the signal is already aborted", [INSPECTION], (d) => new InspectionIgnoresAborted(d)),
  v("snapshots", "destroy-keeps-snapshots", "destroy keeps the instance's snapshots: spawned again under its uuid, it lists them", ["snapshot.power-and-respawn"], (d) => new DestroyKeepsSnapshots(d)),
  v("wrong-state", "revert-resumes-paused", "a revert to a snapshot captured PAUSED leaves the instance RUNNING", ["snapshot.power-and-respawn"], (d) => new RevertResumesPaused(d)),
  v("refusal", "spawn-reads-instance-first", "spawn reads request.instance before checking it: { instance: null } is a TypeError", [BAD], (d) => new SpawnReadsInstanceFirst(d)),
  v("migration", "progress-reported-late", "the move's progress monitor reports once more after liveMigration settled", ["migration.progress"], (d) => new ProgressReportedLate(d)),
  v("refusal", "spawn-writes-caller-image-meta", "spawn fills a default (hw_disk_bus) into the caller's image properties", ["lifecycle.spawn"], (d) => new SpawnWritesCallerImageMeta(d)),
  v("refusal", "options-tidied-away", "a timeoutMs that is no positive number (NaN, 0, -1, \"5\") or a signal that is no AbortSignal is dropped: the call runs with no deadline", [BAD], (d) => new OptionsTidiedAway(d)),
  // Found by an outside hunt for plausible driver bugs (2026-12-03, later).
  v("accounts", "password-base64-in-error", "a failed setAdminPassword's message quotes the agent command, the password in it base64-encoded", ["admin-password.no-leak"], (d) => new PasswordBase64InError(d)),
  v("accounts", "password-in-console", "the password is set through the serial console and shows in getConsoleOutput", ["admin-password.set"], (d) => new PasswordInConsole(d)),
  v("refusal", "invalid-state-numeric", "an InvalidStateError names the power state by its number (\"4\"), not its name", ["state.shutdown.pause"], (d) => new InvalidStateNumeric(d)),
  v("refusal", "unsupported-names-method", "consoleOutput undeclared, the refusal names the method (getConsoleOutput), not the capability", ["lifecycle.console-output"], (d) => new UnsupportedNamesMethod(d)),
  v("deadlines", "timeout-error-default-ms", "an OperationTimeoutError says the driver's default deadline, not the caller's that passed", [INSPECTION], (d) => new TimeoutErrorDefaultMs(d)),
  v("refusal", "options-written", "getInfo writes its default timeoutMs into the caller's options object", ["lifecycle.spawn"], (d) => new OptionsWritten(d)),
  v("refusal", "spawn-scrubs-request", "spawn clears adminPassword in the caller's request once used", ["admin-password.first-boot"], (d) => new SpawnScrubsRequest(d)),
  // The ninth mutation measurement's survivors (2026-12-03).
  v("snapshots", "snapshot-says-cold-while-running", "onSnapshotMethod says cold for an image snapshot of a running guest whose disk was copied live", [IMAGE_RUNNING], (d) => new SnapshotSaysColdWhileRunning(d)),
  v("deadlines", "hung-agent-outlives-deadline", "setAdminPassword drops the caller's deadline and signal: a hung agent holds it for the agent's own timeout", ["admin-password.agent-unresponsive"], (d, c) => new HungAgentOutlivesDeadline(d, c)),
  // Found by an outside hunt for plausible driver bugs (2026-12-04).
  v("accounts", "password-in-shared-field", "the password being set is held in one field of the driver: two set at once both get the later one", ["lifecycle.concurrent-instances"], (d) => new hunt.PasswordInSharedField(d)),
  v("snapshots", "snapshot-target-in-shared-field", "the snapshot's target image is held in one field: two snapshots at once both write the later image", ["lifecycle.concurrent-instances"], (d) => new hunt.SnapshotTargetInSharedField(d)),
  v("accounts", "password-in-image-properties", "an image snapshot after setAdminPassword records the password in the image's properties", ["lifecycle.concurrent-instances"], (d, c) => new hunt.PasswordInImageProperties(d, c.imageService)),
  v("accounts", "rescue-password-on-console", "the rescuePassword is printed on the rescued instance's console", ["lifecycle.rescue-password"], (d) => new hunt.RescuePasswordOnConsole(d)),
  v("effects", "power-off-timer-left-armed", "a clean power off arms a hard-stop timer for its clean timeout and never clears it: the instance powered on after it stops", ["lifecycle.power-off-seen-by-guest"], (d) => new hunt.PowerOffTimerLeftArmed(d)),
  v("events", "listener-removal-skips-next", "a listener removing itself during dispatch makes the next listener miss that event", ["events.listeners-independent"], (d) => new hunt.ListenerRemovalSkipsNext(d)),
  v("events", "event-stamped-at-connect", "every event's timestamp is the moment the driver connected, not when the transition was seen", ["events.listeners-independent"], (d) => new hunt.EventStampedAtConnect(d)),
  v("refusal", "snapshot-not-found-swapped", "SnapshotNotFoundError is built with its arguments swapped: instanceId holds the snapshot id", [PER_INSTANCE, "snapshot.instance-snapshots"], (d) => new hunt.SnapshotNotFoundSwapped(d)),
  v("refusal", "migration-failure-names-host", "LiveMigrationFailedError names the destination host as the instance", ["migration.caller-cancels", "migration.destroy-during", "migration.abort"], (d) => new hunt.MigrationFailureNamesHost(d)),
  v("wrong-state", "uuid-list-reused", "listInstanceUuids refills one array in place: a listing handed out changes later", ["lifecycle.concurrent-instances"], (d) => new hunt.UuidListReused(d)),
  v("units", "memory-in-mib", "getInfo's memoryKb is in MiB", ["lifecycle.spawn"], (d) => new hunt.MemoryInMib(d)),
  v("deadlines", "task-state-rejection-swallowed", "the caller's task-state callback rejecting (its compare-and-set failed) is swallowed: the image becomes active", ["snapshot.image-callback-stall"], (d) => new hunt.TaskStateRejectionSwallowed(d)),
  v("events", "destination-events-suppressed", "the destination drops every event of an instance that arrived by migration, later ones too", ["migration.live"], (d) => new hunt.DestinationEventsSuppressed(d)),
  v("units", "snapshot-created-at-seconds", "instance snapshots' createdAt is epoch seconds as text, not ISO 8601", ["snapshot.instance-snapshots"], (d) => new hunt.SnapshotCreatedAtSeconds(d)),
  v("deadlines", "task-state-throw-ignored", "the caller's task-state callback throwing synchronously is ignored: the snapshot goes on to an active image", ["snapshot.image-callback-stall"], (d) => new hunt.TaskStateThrowIgnored(d)),
  v("deadlines", "pre-migration-ignores-signal", "preLiveMigration drops the caller's signal: a cancelled request still prepares the destination", ["migration.steps-aborted"], (d) => new hunt.PreMigrationIgnoresSignal(d)),
  v("views", "shared-snapshot-target", "the instance a snapshot is for is kept in one field across an await: two instance snapshots at once both go to the last instance asked", ["lifecycle.concurrent-instances"], (d) => new hunt.SharedSnapshotTarget(d)),
  v("wrong-state", "shared-suspend-target", "the instance to suspend is kept in one field across an await: two suspends at once suspend the last instance asked, the other keeps running", ["lifecycle.concurrent-instances"], (d) => new hunt.SharedSuspendTarget(d)),
  v("snapshots", "live-snapshot-pauses", "a running guest is paused for an image snapshot that is still reported live (no downtime)", ["snapshot.image-running"], (d) => new hunt.LiveSnapshotPauses(d)),
  v("refusal", "undeclared-rollback-runs", "live migration undeclared and refused, but rollbackLiveMigrationAtDestination still runs and removes the instance", ["migration.live"], (d) => new hunt.UndeclaredRollbackRuns(d)),
  v("deadlines", "abort-listener-left", "getInfo and instanceExists add an abort listener to the caller's signal and never remove it", ["lifecycle.spawn"], (d) => new hunt.AbortListenerLeft(d)),
  v("effects", "destroy-disks-ignored", "destroy deletes the disks whatever destroyDisks says", ["lifecycle.destroy-keeps-disks"], (d) => new hunt.DestroyDisksIgnored(d)),
  v("units", "cpu-time-microseconds", "getInfo's cpuTimeNs is in microseconds", ["lifecycle.cpu-time-grows"], (d) => new hunt.CpuTimeMicroseconds(d)),
  v("snapshots", "rescued-snapshot-of-rescue-disk", "an image snapshot of a rescued instance uploads the rescue system's disk", ["lifecycle.rescued-snapshot"], (d, c) => new hunt.RescuedSnapshotOfRescueDisk(d, c.imageService)),
  v("deadlines", "deadline-timer-left-armed", "getInfo races its call against a deadline timer it never clears", ["lifecycle.spawn"], (d) => new hunt.DeadlineTimerLeftArmed(d)),
  v("effects", "spawn-existing-reimages-disk", "a spawn of a uuid that already runs here overwrites its disk, then refuses", ["lifecycle.spawn"], (d, c) => new hunt.SpawnExistingReimagesDisk(d, c.cloud)),
  v("snapshots", "snapshot-ids-by-count", "instance snapshot ids count the instance's snapshots: after a delete a new one takes a live id", ["effects.revert-chosen-snapshot"], (d) => new hunt.SnapshotIdsByCount(d)),
  v("accounts", "first-boot-password-on-console", "the first-boot password goes on the kernel command line, which the console shows", ["admin-password.first-boot"], (d) => new hunt.FirstBootPasswordOnConsole(d)),
  v("refusal", "destroy-keep-disks-unknown-throws", "destroy with destroyDisks: false of an instance not here throws InstanceNotFoundError", ["lifecycle.destroy-keeps-disks"], (d) => new hunt.DestroyKeepDisksUnknownThrows(d)),
  v("wrong-state", "list-instances-hostname", "listInstances gives the guest hostname instead of the name", ["lifecycle.spawn"], (d) => new hunt.ListInstancesHostname(d)),
  v("refusal", "description-cut-not-refused", "a 1,025-character description is cut to 1,024 and taken", [BAD], (d) => new hunt.DescriptionCutNotRefused(d)),
  v("refusal", "reboot-type-any-case", "reboot takes soft and hard in any case", [BAD], (d) => new hunt.RebootTypeAnyCase(d)),
  v("migration", "migrated-instance-transient", "PERSIST_DEST ignored: an instance that arrived by migration vanishes at its first power off there", ["migration.live"], (d) => new hunt.MigratedInstanceTransient(d)),
  v("effects", "spawn-recreates-kept-disk", "spawn makes a fresh root disk from the image over the disk a destroy with destroyDisks: false kept", ["lifecycle.destroy-keeps-disks"], (d, c) => new hunt.SpawnRecreatesKeptDisk(d, c.cloud)),
  v("accounts", "password-in-migrate-data", "the last admin password set rides in checkCanLiveMigrateSource's MigrateData", ["migration.no-password-in-migrate-data"], (d) => new hunt.PasswordInMigrateData(d)),
  v("deadlines", "force-complete-abort-acts", "liveMigrationForceComplete with an aborted signal is refused typed but forces the migration anyway", ["migration.force-complete"], (d) => new hunt.ForceCompleteAbortActs(d)),
  v("snapshots", "snapshot-min-disk-image-only", "an image snapshot's min_disk is the base image's alone, not the larger flavor root disk", ["snapshot.image-inherits-properties"], (d, c) => new hunt.SnapshotMinDiskImageOnly(d, c.imageService)),
  v("deadlines", "agent-lock-host-wide", "guest-agent commands go through one host-wide lock: a hung agent stalls every other instance's password change", ["admin-password.agent-hang-isolated"], (d) => new hunt.AgentLockHostWide(d)),
  v("listeners", "cleanup-keeps-listeners", "listeners hear the host's own event stream, which cleanupHost leaves running", ["lifecycle.cleanup-host-releases"], (d, c) =>
    new hunt.CleanupKeepsListeners(d, new FakeDriver({ host: c.host, cloud: c.cloud, imageService: c.imageService, logger: c.logger })),
  ),
  v("refusal", "abort-nothing-resolves", "liveMigrationAbort with no migration running resolves instead of refusing", ["migration.abort-not-migrating"], (d) => new hunt.AbortNothingResolves(d)),
  v("migration", "stale-abort-kept", "a refused abort (no migration running) is kept and fails the instance's next migration", ["migration.abort-not-migrating"], (d) => new hunt.StaleAbortKept(d)),
  v("refusal", "abort-unknown-invalid-state", "liveMigrationAbort of an instance the host does not have says InvalidStateError, not InstanceNotFoundError", ["migration.abort-not-migrating"], (d) => new hunt.AbortUnknownInvalidState(d)),
  v("deadlines", "unbounded-timeout-fires", "a timeoutMs of Infinity or 30 days goes to setTimeout as it is: the spawn times out after 1 ms", ["input.deadline-unbounded"], (d) => new hunt.UnboundedTimeoutFires(d)),
  v("refusal", "destroy-after-cleanup-quiet", "destroy after cleanupHost resolves (the refusal taken for an unknown instance's), doing nothing", ["lifecycle.cleanup-host-releases"], (d) => new hunt.DestroyAfterCleanupQuiet(d)),
  v("effects", "failed-spawn-deletes-kept-disk", "a failed spawn's cleanup destroys with the default destroyDisks, deleting the disk an earlier destroy kept", ["lifecycle.destroy-keeps-disks"], (d) => new hunt.FailedSpawnDeletesKeptDisk(d)),
  v("refusal", "aborted-move-untyped", "a migration ended by liveMigrationAbort rejects with OperationAbortedError instead of LiveMigrationFailedError", ["migration.abort"], (d) => new hunt.AbortedMoveUntyped(d)),
  v("refusal", "unknown-snapshot-list-empty", "listInstanceSnapshots of an instance the host does not have answers [] instead of InstanceNotFoundError", ["lifecycle.not-found"], (d) => new hunt.UnknownSnapshotListEmpty(d)),
  v("deadlines", "progress-after-cancel", "a migration cut short by its caller goes on calling onProgress after it rejected", ["migration.caller-cancels"], (d) => new hunt.ProgressAfterCancel(d)),
  v("accounts", "refuses-named-root", "without adminPasswordAnyUser, an image naming the guest's own admin (os_admin_user root) is refused too", ["admin-password.os-admin-user"], (d) => new hunt.RefusesNamedRoot(d)),
  v("refusal", "long-snapshot-id-looked-up", "revert to a 256-character snapshot id answers SnapshotNotFoundError instead of refusing the input", ["input.bad-arguments"], (d) => new hunt.LongSnapshotIdLookedUp(d)),
  v("refusal", "description-bound-too-tight", "an instance snapshot description of 1,001 to 1,024 characters is refused (the contract allows 1,024)", ["snapshot.per-instance"], (d) => new hunt.DescriptionBoundTooTight(d)),
  v("deadlines", "wait-listener-left", "a power off leaves its abort listener on the caller's signal after it settled", ["lifecycle.spawn"], (d) => new hunt.WaitListenerLeft(d)),
  v("listeners", "usable-after-cleanup", "cleanupHost removes the listeners but closes nothing: the driver still answers and acts afterwards", ["lifecycle.cleanup-host-releases"], (d) => new hunt.UsableAfterCleanup(d)),
  v("deadlines", "migration-deadline-completes-late", "liveMigration past its deadline rejects at the deadline, but the move it started lands on the destination later", ["migration.steps-timed-out", "migration.caller-cancels"], (d) => new hunt.MigrationDeadlineCompletesLate(d)),
  v("deadlines", "pre-migration-ignores-deadline", "preLiveMigration drops the caller's deadline: on a slow destination it prepares after the caller gave up", ["migration.steps-timed-out"], (d) => new hunt.PreMigrationIgnoresDeadline(d)),
  // Found by reading the kit's fixed waits (2026-12-06).
  v("deadlines", "task-state-failure-upload-goes-on", "the caller's task-state callback failing rejects the snapshot at once, but the copy goes on: 500 ms later the image is uploaded and active", ["snapshot.image-callback-stall"], (d) => new hunt.TaskStateFailureUploadGoesOn(d)),
  // Found by reading which operations lifecycle.concurrent-instances overlaps (2026-12-06).
  v("wrong-state", "rescue-one-slot", "rescue mode is kept in one field for the whole driver: with two instances rescued, unrescuing the first unrescues the other", ["lifecycle.concurrent-instances"], (d) => new hunt.RescueOneSlot(d)),
  v("accounts", "rescue-password-one-slot", "the rescue password is held in one field for the whole driver: two rescues at once both get the last password", ["lifecycle.concurrent-instances"], (d) => new hunt.RescuePasswordOneSlot(d)),
];
