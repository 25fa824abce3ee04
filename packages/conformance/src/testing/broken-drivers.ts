/**
 * Deliberately broken variants of the fake driver, ONE defect each, as small decorators. The kit
 * must catch every one (`broken-drivers.test.ts` requires it; `bench` prints the catch rate).
 */
import {
  InstanceNotFoundError,
  InvalidStateError,
  MigrationPreCheckError,
  PasswordSetFailedError,
  PowerState,
  UnsupportedOperationError,
  VirtkitError,
  generatePassword,
  isInstanceNotFound,
  sleep,
  type Capabilities,
  type Secret,
  type ComputeDriver,
  type HostInfo,
  type ImageSnapshotOptions,
  type Instance,
  type InstanceInfo,
  type InstanceSnapshot,
  type LifecycleEvent,
  type LifecycleListener,
  type MigrateData,
  type MigrationContext,
  type MigrationHostFacts,
  type MigrationPlan,
  type MigrationPolicy,
  type OperationOptions,
  type PowerOffOptions,
  type RebootType,
  type RescueOptions,
  type ImageMeta,
  type SpawnRequest,
  type DestroyOptions,
  type LiveMigrationOptions,
} from "@virtkit/core";
import type { FakeWrapContext } from "../environments/fake-environment.js";
import type { AdminPasswordService } from "../scenario.js";
import { DriverDecorator } from "./driver-decorator.js";

/**
 * The class of defect a variant has (for the catch rate per class): a legal operation lands in the
 * wrong state; an illegal one is accepted; a refusal is untyped, wrapped or not clean; lifecycle
 * events are wrong; the views disagree; snapshots record or restore the wrong state. The deeper
 * variants (`broken-drivers-depth.ts`): a CRASHED guest mishandled; instance snapshots in the way
 * or lost; an effect on the guest wrong (data, boots); units wrong; listeners not independent;
 * work going on after a deadline or abort; migration pre-checks or moves wrong; the plan's fields
 * wrong; the password for the wrong account; destroy incomplete; answers the compute service
 * cannot use.
 */
export type DefectClass =
  | "wrong-state"
  | "illegal-accepted"
  | "refusal"
  | "events"
  | "views"
  | "snapshots"
  | "crashed"
  | "snapshots-present"
  | "effects"
  | "units"
  | "listeners"
  | "deadlines"
  | "migration"
  | "plan"
  | "accounts"
  | "destroy"
  | "service";

/** One broken variant: what is wrong, how to build it, and which scenarios should catch it. */
export interface BrokenVariant {
  /** Stable kebab-case name. */
  readonly name: string;
  /** The one defect, in words. */
  readonly defect: string;
  /** The class of the defect (the state-table variants have one). */
  readonly defectClass?: DefectClass;
  /** Scenario ids expected to fail (the test requires at least one of them to fail). */
  readonly caughtBy: readonly string[];
  /** Wraps the healthy fake driver. */
  readonly wrap?: (driver: ComputeDriver, ctx: FakeWrapContext) => ComputeDriver;
  /** Wraps the compute service (service-level defects). */
  readonly wrapService?: (service: AdminPasswordService) => AdminPasswordService;
}

/** pause() resolves and does nothing. */
export class PauseDoesNothing extends DriverDecorator {
  override async pause(): Promise<void> {}
}

/** A second destroy of the same instance throws instead of being idempotent. */
export class SecondDestroyThrows extends DriverDecorator {
  readonly #destroyed = new Set<string>();
  override async destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    if (this.#destroyed.has(instance.uuid)) throw new InstanceNotFoundError(instance.uuid);
    await this.inner.destroy(instance, options);
    this.#destroyed.add(instance.uuid);
  }
}

/** setAdminPassword "succeeds" on a stopped instance. */
export class PasswordOnStoppedAccepted extends DriverDecorator {
  override async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    const info = await this.inner.getInfo(instance, options);
    if (info.state !== PowerState.RUNNING) return;
    await this.inner.setAdminPassword(instance, password, options);
  }
}

/** The snapshot image gets its data but loses Nova's metadata. */
export class SnapshotWithoutMetadata extends DriverDecorator {
  constructor(
    inner: ComputeDriver,
    private readonly ctx: FakeWrapContext,
  ) {
    super(inner);
  }
  override async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    await this.inner.snapshot(instance, imageId, options);
    await this.ctx.imageService.update(imageId, {
      properties: {
        image_location: null,
        image_state: null,
        owner_id: null,
        kernel_id: null,
        ramdisk_id: null,
        os_type: null,
      },
    });
  }
}

/** The password appears in the message of the error for a stopped instance. */
export class PasswordInErrorMessage extends DriverDecorator {
  override async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    try {
      await this.inner.setAdminPassword(instance, password, options);
    } catch (err) {
      throw new PasswordSetFailedError(instance.uuid, `chpasswd root:${password.reveal()} failed`, { cause: err });
    }
  }
}

/** planMigration leaves out PERSIST_DEST (bit 8). */
export class WrongMigrationBitmask extends DriverDecorator {
  override planMigration(policy: MigrationPolicy, facts?: MigrationHostFacts): MigrationPlan {
    const plan = this.inner.planMigration(policy, facts);
    const bitmask = (plan.bitmask ?? 0) & ~8;
    return { ...plan, bitmask, flags: plan.flags.filter((f) => f !== "PERSIST_DEST") };
  }
}

/** Reverting to an instance snapshot restores nothing. */
export class RevertRestoresNothing extends DriverDecorator {
  override async revertToInstanceSnapshot(
    instance: Instance,
    snapshotId: string,
    options?: OperationOptions,
  ): Promise<void> {
    const snaps = await this.inner.listInstanceSnapshots(instance, options);
    if (!snaps.some((s) => s.id === snapshotId))
      await this.inner.revertToInstanceSnapshot(instance, snapshotId, options);
  }
}

/** Declares rescue but refuses it as unsupported. */
export class DeclaredButUnsupported extends DriverDecorator {
  override async rescue(_instance: Instance, _image: ImageMeta, _options?: RescueOptions): Promise<void> {
    throw new UnsupportedOperationError("rescue", this.name);
  }
}

/** Every spawn also leaves a hidden second instance behind. */
export class LeaksAnInstance extends DriverDecorator {
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    await this.inner.spawn(request, options);
    const shadow: Instance = {
      ...request.instance,
      uuid: request.instance.uuid.replace(/^.{8}/, "5ad0c0de"),
      name: `${request.instance.name}-shadow`,
    };
    await this.inner.spawn({ ...request, instance: shadow }, options).catch(() => undefined);
  }
}

/** Power off waits the clean timeout and gives up instead of falling back to hard. */
export class PowerOffWithoutHardFallback extends DriverDecorator {
  constructor(
    inner: ComputeDriver,
    private readonly ctx: FakeWrapContext,
  ) {
    super(inner);
  }
  override async powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    const clean = options?.cleanShutdownTimeoutSec ?? 60;
    if (clean > 0 && this.ctx.cloud.guest(instance.uuid).ignoresAcpi) {
      await sleep(clean * 1000, options?.signal);
      return; // The guest ignored ACPI; a correct driver would now destroy it.
    }
    await this.inner.powerOff(instance, options);
  }
}

/** getInfo always says RUNNING. */
export class GetInfoLies extends DriverDecorator {
  override async getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    return { ...(await this.inner.getInfo(instance, options)), state: PowerState.RUNNING };
  }
}

/** listInstanceUuids forgets stopped instances while instanceExists still knows them. */
export class ListDisagreesWithExists extends DriverDecorator {
  override async listInstanceUuids(options?: OperationOptions): Promise<readonly string[]> {
    const out: string[] = [];
    for (const name of await this.inner.listInstanceUuids(options)) out.push(name);
    return out.slice(0, Math.max(0, out.length - 1));
  }
}

/** resume() of a running instance is accepted as a no-op. */
export class ResumeAcceptedWhileRunning extends DriverDecorator {
  override async resume(instance: Instance, options?: OperationOptions): Promise<void> {
    const info = await this.inner.getInfo(instance, options);
    if (info.state === PowerState.RUNNING) return;
    await this.inner.resume(instance, options);
  }
}

/** Declares lifecycle events but never emits any. */
export class EventsNotEmitted extends DriverDecorator {
  override registerEventListener(_listener: LifecycleListener): () => void {
    return () => undefined;
  }
}

/** liveMigration resolves but the instance never leaves the source. */
export class MigrationStaysOnSource extends DriverDecorator {
  override async liveMigration(
    _instance: Instance,
    _data: MigrateData,
    _options?: LiveMigrationOptions,
  ): Promise<void> {}
  override async postLiveMigrationAtDestination(): Promise<void> {}
}

/** Rollback at the destination destroys the instance on the source too. */
export class RollbackDestroysInstance extends DriverDecorator {
  constructor(
    inner: ComputeDriver,
    private readonly ctx: FakeWrapContext,
  ) {
    super(inner);
  }
  override async rollbackLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void> {
    await this.inner.rollbackLiveMigrationAtDestination(instance, data, context, options);
    for (const d of this.ctx.drivers()) {
      if (await d.instanceExists(instance)) await d.destroy(instance);
    }
  }
}

/** The password is written to the log. */
export class PasswordLogged extends DriverDecorator {
  constructor(
    inner: ComputeDriver,
    private readonly ctx: FakeWrapContext,
  ) {
    super(inner);
  }
  override async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    this.ctx.logger.debug(`setting the admin password of ${instance.uuid} to ${password.reveal()}`);
    await this.inner.setAdminPassword(instance, password, options);
  }
}

/** An image snapshot of a running instance leaves it stopped (a cold snapshot that forgets to restart). */
export class SnapshotChangesPowerState extends DriverDecorator {
  override async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    await this.inner.snapshot(instance, imageId, options);
    await this.inner.powerOff(instance, { cleanShutdownTimeoutSec: 0 });
  }
}

/** Does not declare rescue, yet rescue works. */
export class UndeclaredButWorking extends DriverDecorator {
  override get capabilities(): Capabilities {
    return { ...this.inner.capabilities, rescue: false };
  }
}

/** Ignores the caller's signal and deadline on power off. */
export class TimeoutsIgnored extends DriverDecorator {
  override async powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    await this.inner.powerOff(instance, { cleanShutdownTimeoutSec: options?.cleanShutdownTimeoutSec });
  }
}

/** Spawn leaves the instance stopped. */
export class SpawnNotRunning extends DriverDecorator {
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    await this.inner.spawn(request, options);
    await this.inner.powerOff(request.instance, { cleanShutdownTimeoutSec: 0 });
  }
}

/** getInfo of an unknown instance rejects with a plain Error instead of InstanceNotFoundError. */
export class UntypedNotFound extends DriverDecorator {
  override async getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    try {
      return await this.inner.getInfo(instance, options);
    } catch (err) {
      if (isInstanceNotFound(err)) throw new Error("domain not found");
      throw err;
    }
  }
}

/** The destination pre-check waves through an instance larger than the host's free memory. */
export class PreCheckAcceptsEverything extends DriverDecorator {
  override async checkCanLiveMigrateDestination(
    instance: Instance,
    sourceHost: HostInfo,
    policy: MigrationPolicy,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    try {
      return await this.inner.checkCanLiveMigrateDestination(instance, sourceHost, policy, options);
    } catch (err) {
      if (!(err instanceof MigrationPreCheckError) || !/memory/.test(err.message)) throw err;
      const host = await this.inner.getHostInfo(options);
      return {
        sourceHost: sourceHost.hostname,
        destHost: host.hostname,
        policy,
        plan: this.planMigration(policy),
        extra: {},
      };
    }
  }
}

/** liveMigrationAbort does nothing: the migration completes anyway. */
export class AbortIgnored extends DriverDecorator {
  override async liveMigrationAbort(): Promise<void> {}
}

/** planMigration accepts tunnelled together with native TLS. */
export class TunnelledTlsAccepted extends DriverDecorator {
  override planMigration(policy: MigrationPolicy, facts?: MigrationHostFacts): MigrationPlan {
    if (policy.tunnelled && policy.nativeTls) {
      const plan = this.inner.planMigration({ ...policy, nativeTls: false }, facts);
      return { ...plan, bitmask: (plan.bitmask ?? 0) | 65536, flags: [...plan.flags, "TLS"] };
    }
    return this.inner.planMigration(policy, facts);
  }
}

/** Unpause of a running instance is accepted as a no-op. */
export class UnpauseAcceptedWhileRunning extends DriverDecorator {
  override async unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    const info = await this.inner.getInfo(instance, options);
    if (info.state === PowerState.RUNNING) return;
    await this.inner.unpause(instance, options);
  }
}

/** The service returns a freshly generated password, not the one it set. */
function generatedNotReturned(service: AdminPasswordService): AdminPasswordService {
  return {
    ...service,
    async setAdminPassword(uuid: string, password: Secret | undefined, options?: OperationOptions): Promise<Secret> {
      const used = await service.setAdminPassword(uuid, password, options);
      return password === undefined ? generatePassword() : used;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// State-table variants: one realistic defect each, from the classes the state matrix checks.

/** The power state now, or undefined for an instance the driver does not know. */
export async function stateOf(driver: ComputeDriver, instance: Instance): Promise<PowerState | undefined> {
  try {
    return (await driver.getInfo(instance)).state;
  } catch (err) {
    if (isInstanceNotFound(err)) return undefined;
    throw err;
  }
}

/** A decorator that can announce events of its own to the listeners registered through it. */
class EventTap extends DriverDecorator {
  readonly #listeners = new Set<LifecycleListener>();
  override registerEventListener(listener: LifecycleListener): () => void {
    const off = this.inner.registerEventListener((e) => this.deliver(e, listener));
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
      off();
    };
  }
  /** Hands the driver's own event to one listener; subclasses distort it. */
  protected deliver(event: LifecycleEvent, listener: LifecycleListener): void {
    listener(event);
  }
  protected announce(event: LifecycleEvent): void {
    for (const l of this.#listeners) l(event);
  }
}

/** Resume restores the saved guest but leaves it PAUSED (restored paused, never continued). */
export class ResumeLeavesPaused extends DriverDecorator {
  override async resume(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.inner.resume(instance, options);
    await this.inner.pause(instance, options);
  }
}

/** A hard reboot of a PAUSED guest resets it in place and leaves it PAUSED (qemu keeps a reset VM paused). */
export class HardRebootKeepsPaused extends DriverDecorator {
  override async reboot(instance: Instance, type: RebootType, options?: OperationOptions): Promise<void> {
    const before = await stateOf(this.inner, instance);
    await this.inner.reboot(instance, type, options);
    if (before === PowerState.PAUSED && type === "HARD") await this.inner.pause(instance, options);
  }
}

/** Power off of a SUSPENDED instance does nothing: the domain is already off, the saved state stays. */
export class PowerOffKeepsSuspended extends DriverDecorator {
  override async powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    if ((await stateOf(this.inner, instance)) === PowerState.SUSPENDED) return;
    await this.inner.powerOff(instance, options);
  }
}

/** Unrescue reboots the rescue image instead of the original disk: still in rescue mode. */
export class UnrescueStaysRescued extends DriverDecorator {
  override async unrescue(instance: Instance, options?: OperationOptions): Promise<void> {
    if ((await stateOf(this.inner, instance)) === undefined) return this.inner.unrescue(instance, options);
    await this.inner.reboot(instance, "HARD", options);
  }
}

/** Rescue of a stopped instance defines the rescue domain but never boots it. */
export class RescueOfStoppedStaysOff extends DriverDecorator {
  override async rescue(instance: Instance, image: ImageMeta, options?: RescueOptions): Promise<void> {
    const before = await stateOf(this.inner, instance);
    await this.inner.rescue(instance, image, options);
    if (before === PowerState.SHUTDOWN) await this.inner.powerOff(instance, { cleanShutdownTimeoutSec: 0 });
  }
}

/** Revert restores the disk but starts the instance whatever state the snapshot captured. */
export class RevertAlwaysRunning extends DriverDecorator {
  override async revertToInstanceSnapshot(
    instance: Instance,
    snapshotId: string,
    options?: OperationOptions,
  ): Promise<void> {
    await this.inner.revertToInstanceSnapshot(instance, snapshotId, options);
    if ((await stateOf(this.inner, instance)) === PowerState.SHUTDOWN) await this.inner.powerOn(instance, options);
  }
}

/** Unpause of a SUSPENDED instance resolves and changes nothing. */
export class UnpauseOfSuspendedSilent extends DriverDecorator {
  override async unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    if ((await stateOf(this.inner, instance)) === PowerState.SUSPENDED) return;
    await this.inner.unpause(instance, options);
  }
}

/** Unrescue of an instance that is not rescued resolves (nothing to undo, "so it worked"). */
export class UnrescueOfUnrescuedSilent extends DriverDecorator {
  override async unrescue(instance: Instance, options?: OperationOptions): Promise<void> {
    try {
      await this.inner.unrescue(instance, options);
    } catch (err) {
      if (!(err instanceof InvalidStateError)) throw err;
    }
  }
}

/** Rescue of a RESCUED instance is accepted as a no-op instead of refused. */
export class RescueTwiceAccepted extends DriverDecorator {
  override async rescue(instance: Instance, image: ImageMeta, options?: RescueOptions): Promise<void> {
    try {
      await this.inner.rescue(instance, image, options);
    } catch (err) {
      if (!(err instanceof InvalidStateError) || (await stateOf(this.inner, instance)) !== PowerState.RUNNING)
        throw err;
    }
  }
}

/** Resume of a PAUSED instance unpauses it (both map to the hypervisor's "resume"). */
export class ResumeOfPausedUnpauses extends DriverDecorator {
  override async resume(instance: Instance, options?: OperationOptions): Promise<void> {
    if ((await stateOf(this.inner, instance)) === PowerState.PAUSED) return this.inner.unpause(instance, options);
    await this.inner.resume(instance, options);
  }
}

/** Suspend of a stopped instance boots it to save its memory, then refuses: refused, yet now RUNNING. */
export class RefusedSuspendBootsGuest extends DriverDecorator {
  override async suspend(instance: Instance, options?: OperationOptions): Promise<void> {
    if ((await stateOf(this.inner, instance)) === PowerState.SHUTDOWN) {
      await this.inner.powerOn(instance, options);
      throw new InvalidStateError(instance.uuid, "suspend", "SHUTDOWN");
    }
    await this.inner.suspend(instance, options);
  }
}

/** The refusal of resume of a running instance is wrapped: a generic VirtkitError whose cause is typed. */
export class RefusalWrappedInCause extends DriverDecorator {
  override async resume(instance: Instance, options?: OperationOptions): Promise<void> {
    try {
      await this.inner.resume(instance, options);
    } catch (err) {
      throw new VirtkitError(`resume of ${instance.uuid} failed`, { cause: err });
    }
  }
}

/** Unpause of a running instance rejects with the hypervisor's raw error, untranslated. */
export class UntypedUnpauseRefusal extends DriverDecorator {
  override async unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    try {
      await this.inner.unpause(instance, options);
    } catch (err) {
      if (err instanceof InvalidStateError) throw new Error("Requested operation is not valid: domain is not paused");
      throw err;
    }
  }
}

/** Every PAUSED event reaches a listener twice (the callback is registered for two event ids). */
export class PausedEventTwice extends EventTap {
  protected override deliver(event: LifecycleEvent, listener: LifecycleListener): void {
    listener(event);
    if (event.transition === "PAUSED") listener(event);
  }
}

/** SUSPENDED events name another instance (the uuid looked up from a stale domain id). */
export class SuspendedEventWrongInstance extends EventTap {
  protected override deliver(event: LifecycleEvent, listener: LifecycleListener): void {
    listener(
      event.transition === "SUSPENDED"
        ? { ...event, instanceUuid: event.instanceUuid.replace(/^.{8}/, "0badc0de") }
        : event,
    );
  }
}

/** RESUMED events name the machine's hostname instead of the host the driver serves. */
export class ResumedEventWrongHost extends EventTap {
  protected override deliver(event: LifecycleEvent, listener: LifecycleListener): void {
    listener(event.transition === "RESUMED" ? { ...event, host: "localhost.localdomain" } : event);
  }
}

/** STOPPED is delivered again a moment later (a reconnect replays the last event). */
export class StoppedEventReplayed extends EventTap {
  protected override deliver(event: LifecycleEvent, listener: LifecycleListener): void {
    listener(event);
    if (event.transition === "STOPPED") setTimeout(() => listener(event), 1);
  }
}

/** Rescue's two events arrive swapped: STARTED before STOPPED (queued per source, flushed out of order). */
export class RescueEventsOutOfOrder extends EventTap {
  readonly #held = new Map<string, LifecycleEvent>();
  readonly #rescuing = new Set<string>();
  protected override deliver(event: LifecycleEvent, listener: LifecycleListener): void {
    if (!this.#rescuing.has(event.instanceUuid)) return listener(event);
    const held = this.#held.get(event.instanceUuid);
    if (event.transition === "STOPPED" && !held) {
      this.#held.set(event.instanceUuid, event);
      return;
    }
    listener(event);
    if (held) {
      this.#held.delete(event.instanceUuid);
      listener(held);
    }
  }
  override async rescue(instance: Instance, image: ImageMeta, options?: RescueOptions): Promise<void> {
    this.#rescuing.add(instance.uuid);
    try {
      await this.inner.rescue(instance, image, options);
    } finally {
      this.#rescuing.delete(instance.uuid);
    }
  }
}

/** A refused pause of a stopped instance still announces PAUSED (the event is sent before the check). */
export class EventOnRefusedPause extends EventTap {
  constructor(
    inner: ComputeDriver,
    private readonly host: string,
  ) {
    super(inner);
  }
  override async pause(instance: Instance, options?: OperationOptions): Promise<void> {
    try {
      await this.inner.pause(instance, options);
    } catch (err) {
      if (err instanceof InvalidStateError)
        this.announce({ instanceUuid: instance.uuid, transition: "PAUSED", host: this.host, timestamp: Date.now() });
      throw err;
    }
  }
}

/** listInstanceUuids leaves out the instances it spawned that are in one power state. */
export class ListOmitsState extends DriverDecorator {
  readonly #spawned = new Map<string, Instance>();
  constructor(
    inner: ComputeDriver,
    private readonly omitted: PowerState,
  ) {
    super(inner);
  }
  override async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    await this.inner.spawn(request, options);
    this.#spawned.set(request.instance.uuid, request.instance);
  }
  override async listInstanceUuids(options?: OperationOptions): Promise<readonly string[]> {
    const out: string[] = [];
    for (const uuid of await this.inner.listInstanceUuids(options)) {
      const inst = this.#spawned.get(uuid);
      if (inst && (await stateOf(this.inner, inst)) === this.omitted) continue;
      out.push(uuid);
    }
    return out;
  }
}

/** listInstanceUuids lists running domains and defined ones without a managed save: SUSPENDED ones go missing. */
export class ListOmitsSuspended extends ListOmitsState {
  constructor(inner: ComputeDriver) {
    super(inner, PowerState.SUSPENDED);
  }
}

/** Destroy of a SUSPENDED instance resolves but the instance stays (undefine refused over the managed save, error swallowed). */
export class DestroyOfSuspendedLeavesIt extends DriverDecorator {
  override async destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    if ((await stateOf(this.inner, instance)) === PowerState.SUSPENDED) return;
    await this.inner.destroy(instance, options);
  }
}

/** getInfo serves a cached state for 100 ms after unpause: it still says PAUSED while the lists moved on. */
export class GetInfoStaleAfterUnpause extends DriverDecorator {
  readonly #unpausedAt = new Map<string, number>();
  override async unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.inner.unpause(instance, options);
    this.#unpausedAt.set(instance.uuid, Date.now());
  }
  override async getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    const info = await this.inner.getInfo(instance, options);
    const at = this.#unpausedAt.get(instance.uuid);
    return at !== undefined && Date.now() - at < 100 ? { ...info, state: PowerState.PAUSED } : info;
  }
}

/** Instance snapshots always record RUNNING, whatever state the instance was in. */
export class SnapshotRecordsRunning extends DriverDecorator {
  override async createInstanceSnapshot(
    instance: Instance,
    name: string,
    options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot> {
    return { ...(await this.inner.createInstanceSnapshot(instance, name, options)), powerState: PowerState.RUNNING };
  }
}

/** An image snapshot of a PAUSED instance leaves it RUNNING (the live-snapshot path resumes the guest). */
export class ImageSnapshotResumesPaused extends DriverDecorator {
  override async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    const before = await stateOf(this.inner, instance);
    await this.inner.snapshot(instance, imageId, options);
    if (before === PowerState.PAUSED) await this.inner.unpause(instance, options);
  }
}

/** Every broken variant the kit must catch. */
export const BROKEN_VARIANTS: readonly BrokenVariant[] = [
  {
    name: "pause-does-nothing",
    defect: "pause() resolves and does nothing",
    caughtBy: ["lifecycle.pause-unpause"],
    wrap: (d) => new PauseDoesNothing(d),
  },
  {
    name: "second-destroy-throws",
    defect: "a second destroy throws",
    caughtBy: ["lifecycle.destroy"],
    wrap: (d) => new SecondDestroyThrows(d),
  },
  {
    name: "password-on-stopped",
    defect: "a password set on a stopped instance succeeds",
    caughtBy: ["admin-password.not-running"],
    wrap: (d) => new PasswordOnStoppedAccepted(d),
  },
  {
    name: "snapshot-without-metadata",
    defect: "the snapshot image lacks Nova's metadata",
    caughtBy: ["snapshot.image-running", "snapshot.image-stopped"],
    wrap: (d, c) => new SnapshotWithoutMetadata(d, c),
  },
  {
    name: "password-in-error",
    defect: "the password appears in an error message",
    caughtBy: ["admin-password.not-running", "admin-password.no-leak", "admin-password.no-agent"],
    wrap: (d) => new PasswordInErrorMessage(d),
  },
  {
    name: "wrong-migration-bitmask",
    defect: "planMigration drops PERSIST_DEST",
    caughtBy: ["migration.plan.default"],
    wrap: (d) => new WrongMigrationBitmask(d),
  },
  {
    name: "revert-restores-nothing",
    defect: "revert to an instance snapshot restores nothing",
    caughtBy: ["snapshot.instance-snapshots"],
    wrap: (d) => new RevertRestoresNothing(d),
  },
  {
    name: "declared-but-unsupported",
    defect: "declares rescue but refuses it as unsupported",
    caughtBy: ["lifecycle.rescue-unrescue"],
    wrap: (d) => new DeclaredButUnsupported(d),
  },
  {
    name: "leaked-instance",
    defect: "spawn leaves a hidden second instance",
    caughtBy: ["lifecycle.spawn"],
    wrap: (d) => new LeaksAnInstance(d),
  },
  {
    name: "power-off-no-hard-fallback",
    defect: "power off gives up after the clean timeout",
    caughtBy: ["lifecycle.power-off-fallback"],
    wrap: (d, c) => new PowerOffWithoutHardFallback(d, c),
  },
  {
    name: "get-info-lies",
    defect: "getInfo always reports RUNNING",
    caughtBy: ["lifecycle.power-off-on"],
    wrap: (d) => new GetInfoLies(d),
  },
  {
    name: "list-disagrees-with-exists",
    defect: "listInstanceUuids drops an instance instanceExists knows",
    caughtBy: ["lifecycle.spawn"],
    wrap: (d) => new ListDisagreesWithExists(d),
  },
  {
    name: "resume-while-running",
    defect: "resume of a running instance is accepted",
    caughtBy: ["lifecycle.suspend-resume"],
    wrap: (d) => new ResumeAcceptedWhileRunning(d),
  },
  {
    name: "events-not-emitted",
    defect: "declares lifecycle events but emits none",
    caughtBy: ["lifecycle.events"],
    wrap: (d) => new EventsNotEmitted(d),
  },
  {
    name: "migration-stays-on-source",
    defect: "live migration leaves the instance on the source",
    caughtBy: ["migration.live"],
    wrap: (d) => new MigrationStaysOnSource(d),
  },
  {
    name: "rollback-destroys-instance",
    defect: "rollback destroys the instance",
    caughtBy: ["migration.rollback"],
    wrap: (d, c) => new RollbackDestroysInstance(d, c),
  },
  {
    name: "password-logged",
    defect: "the password is written to the log",
    caughtBy: ["admin-password.set", "admin-password.no-leak"],
    wrap: (d, c) => new PasswordLogged(d, c),
  },
  {
    name: "generated-password-not-returned",
    defect: "the service returns a password other than the one it set",
    caughtBy: ["admin-password.generated"],
    wrapService: generatedNotReturned,
  },
  {
    name: "snapshot-changes-power-state",
    defect: "an image snapshot leaves a running instance stopped",
    caughtBy: ["snapshot.image-running"],
    wrap: (d) => new SnapshotChangesPowerState(d),
  },
  {
    name: "undeclared-but-working",
    defect: "rescue works but is not declared",
    caughtBy: ["lifecycle.rescue-unrescue"],
    wrap: (d) => new UndeclaredButWorking(d),
  },
  {
    name: "timeouts-ignored",
    defect: "power off ignores the caller's signal and deadline",
    caughtBy: ["lifecycle.deadlines"],
    wrap: (d) => new TimeoutsIgnored(d),
  },
  {
    name: "spawn-not-running",
    defect: "spawn leaves the instance stopped",
    caughtBy: ["lifecycle.spawn"],
    wrap: (d) => new SpawnNotRunning(d),
  },
  {
    name: "untyped-not-found",
    defect: "getInfo of an unknown instance throws a plain Error",
    caughtBy: ["lifecycle.not-found"],
    wrap: (d) => new UntypedNotFound(d),
  },
  {
    name: "pre-check-accepts-everything",
    defect: "the destination pre-check accepts any flavor",
    caughtBy: ["migration.pre-checks"],
    wrap: (d) => new PreCheckAcceptsEverything(d),
  },
  {
    name: "abort-ignored",
    defect: "liveMigrationAbort does nothing",
    caughtBy: ["migration.abort"],
    wrap: (d) => new AbortIgnored(d),
  },
  {
    name: "tunnelled-tls-accepted",
    defect: "planMigration accepts tunnelled + native TLS",
    caughtBy: ["migration.plan.tunnelled-tls-refused"],
    wrap: (d) => new TunnelledTlsAccepted(d),
  },
  {
    name: "unpause-while-running",
    defect: "unpause of a running instance is accepted",
    caughtBy: ["lifecycle.pause-unpause"],
    wrap: (d) => new UnpauseAcceptedWhileRunning(d),
  },
  // The state table's variants, one defect each, by class.
  {
    name: "resume-leaves-paused",
    defectClass: "wrong-state",
    defect: "resume restores the guest but leaves it PAUSED",
    caughtBy: ["state.suspended.resume"],
    wrap: (d) => new ResumeLeavesPaused(d),
  },
  {
    name: "hard-reboot-keeps-paused",
    defectClass: "wrong-state",
    defect: "a hard reboot of a PAUSED guest leaves it PAUSED",
    caughtBy: ["state.paused.reboot-hard"],
    wrap: (d) => new HardRebootKeepsPaused(d),
  },
  {
    name: "power-off-keeps-suspended",
    defectClass: "wrong-state",
    defect: "power off of a SUSPENDED instance keeps it SUSPENDED",
    caughtBy: ["state.suspended.power-off"],
    wrap: (d) => new PowerOffKeepsSuspended(d),
  },
  {
    name: "unrescue-stays-rescued",
    defectClass: "wrong-state",
    defect: "unrescue reboots the rescue image: still in rescue mode",
    caughtBy: ["state.rescued.unrescue"],
    wrap: (d) => new UnrescueStaysRescued(d),
  },
  {
    name: "rescue-of-stopped-stays-off",
    defectClass: "wrong-state",
    defect: "rescue of a SHUTDOWN instance never boots the rescue image",
    caughtBy: ["state.shutdown.rescue"],
    wrap: (d) => new RescueOfStoppedStaysOff(d),
  },
  {
    name: "revert-always-running",
    defectClass: "snapshots",
    defect: "revert to a snapshot taken while SHUTDOWN leaves the instance RUNNING",
    caughtBy: ["state.running.instance-snapshot-revert"],
    wrap: (d) => new RevertAlwaysRunning(d),
  },
  {
    name: "unpause-of-suspended-silent",
    defectClass: "illegal-accepted",
    defect: "unpause of a SUSPENDED instance succeeds and changes nothing",
    caughtBy: ["state.suspended.unpause"],
    wrap: (d) => new UnpauseOfSuspendedSilent(d),
  },
  {
    name: "unrescue-of-unrescued-silent",
    defectClass: "illegal-accepted",
    defect: "unrescue of an instance not in rescue succeeds",
    caughtBy: ["state.running.unrescue", "state.shutdown.unrescue"],
    wrap: (d) => new UnrescueOfUnrescuedSilent(d),
  },
  {
    name: "rescue-twice-accepted",
    defectClass: "illegal-accepted",
    defect: "rescue of a RESCUED instance succeeds as a no-op",
    caughtBy: ["state.rescued.rescue"],
    wrap: (d) => new RescueTwiceAccepted(d),
  },
  {
    name: "resume-of-paused-unpauses",
    defectClass: "illegal-accepted",
    defect: "resume of a PAUSED instance unpauses it",
    caughtBy: ["state.paused.resume", "lifecycle.pause-unpause"],
    wrap: (d) => new ResumeOfPausedUnpauses(d),
  },
  {
    name: "refused-suspend-boots-guest",
    defectClass: "refusal",
    defect: "a refused suspend of a SHUTDOWN instance leaves it RUNNING",
    caughtBy: ["state.shutdown.suspend"],
    wrap: (d) => new RefusedSuspendBootsGuest(d),
  },
  {
    name: "refusal-wrapped-in-cause",
    defectClass: "refusal",
    defect: "resume of a RUNNING instance rejects with a generic error whose cause is the typed one",
    caughtBy: ["state.running.resume", "lifecycle.suspend-resume"],
    wrap: (d) => new RefusalWrappedInCause(d),
  },
  {
    name: "untyped-unpause-refusal",
    defectClass: "refusal",
    defect: "unpause of a RUNNING instance rejects with the hypervisor's raw error",
    caughtBy: ["state.running.unpause", "lifecycle.pause-unpause"],
    wrap: (d) => new UntypedUnpauseRefusal(d),
  },
  {
    name: "paused-event-twice",
    defectClass: "events",
    defect: "every PAUSED event is delivered twice",
    caughtBy: ["state.running.pause"],
    wrap: (d) => new PausedEventTwice(d),
  },
  {
    name: "suspended-event-wrong-instance",
    defectClass: "events",
    defect: "SUSPENDED events name another instance",
    caughtBy: ["state.running.suspend"],
    wrap: (d) => new SuspendedEventWrongInstance(d),
  },
  {
    name: "resumed-event-wrong-host",
    defectClass: "events",
    defect: "RESUMED events name the machine's hostname, not the driver's host",
    caughtBy: ["state.paused.unpause"],
    wrap: (d) => new ResumedEventWrongHost(d),
  },
  {
    name: "stopped-event-replayed",
    defectClass: "events",
    defect: "STOPPED is delivered again a moment later",
    caughtBy: ["state.running.power-off"],
    wrap: (d) => new StoppedEventReplayed(d),
  },
  {
    name: "rescue-events-out-of-order",
    defectClass: "events",
    defect: "rescue announces STARTED before STOPPED",
    caughtBy: ["state.running.rescue"],
    wrap: (d) => new RescueEventsOutOfOrder(d),
  },
  {
    name: "event-on-refused-pause",
    defectClass: "events",
    defect: "a refused pause of a SHUTDOWN instance still announces PAUSED",
    caughtBy: ["state.shutdown.pause"],
    wrap: (d, c) => new EventOnRefusedPause(d, c.host),
  },
  {
    name: "list-omits-suspended",
    defectClass: "views",
    defect: "listInstanceUuids leaves out SUSPENDED instances that getInfo reports",
    caughtBy: ["state.running.suspend"],
    wrap: (d) => new ListOmitsSuspended(d),
  },
  {
    name: "destroy-of-suspended-leaves-it",
    defectClass: "views",
    defect: "destroy of a SUSPENDED instance resolves but it stays listed",
    caughtBy: ["state.suspended.destroy"],
    wrap: (d) => new DestroyOfSuspendedLeavesIt(d),
  },
  {
    name: "get-info-stale-after-unpause",
    defectClass: "views",
    defect: "getInfo still says PAUSED right after unpause",
    caughtBy: ["state.paused.unpause"],
    wrap: (d) => new GetInfoStaleAfterUnpause(d),
  },
  {
    name: "snapshot-records-running",
    defectClass: "snapshots",
    defect: "instance snapshots record RUNNING whatever the state",
    caughtBy: ["state.shutdown.instance-snapshot-create"],
    wrap: (d) => new SnapshotRecordsRunning(d),
  },
  {
    name: "image-snapshot-resumes-paused",
    defectClass: "snapshots",
    defect: "an image snapshot of a PAUSED instance leaves it RUNNING",
    caughtBy: ["state.paused.image-snapshot"],
    wrap: (d) => new ImageSnapshotResumesPaused(d),
  },
];
