/**
 * Deliberately broken variants of the fake driver, ONE defect each, as small decorators. The kit
 * must catch every one (`broken-drivers.test.ts` requires it; `bench` prints the catch rate).
 */
import {
  InstanceNotFoundError,
  MigrationPreCheckError,
  PasswordSetFailedError,
  PowerState,
  UnsupportedOperationError,
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
  type LifecycleListener,
  type MigrateData,
  type MigrationContext,
  type MigrationHostFacts,
  type MigrationPlan,
  type MigrationPolicy,
  type OperationOptions,
  type PowerOffOptions,
  type RescueOptions,
  type ImageMeta,
  type SpawnRequest,
  type DestroyOptions,
  type LiveMigrationOptions,
} from "@virtkit/core";
import type { FakeWrapContext } from "../environments/fake-environment.js";
import type { AdminPasswordService } from "../scenario.js";
import { DriverDecorator } from "./driver-decorator.js";

/** One broken variant: what is wrong, how to build it, and which scenarios should catch it. */
export interface BrokenVariant {
  /** Stable kebab-case name. */
  readonly name: string;
  /** The one defect, in words. */
  readonly defect: string;
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
      properties: { image_location: null, image_state: null, owner_id: null, kernel_id: null, ramdisk_id: null, os_type: null },
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
  override async revertToInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    const snaps = await this.inner.listInstanceSnapshots(instance, options);
    if (!snaps.some((s) => s.id === snapshotId)) await this.inner.revertToInstanceSnapshot(instance, snapshotId, options);
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
  override async liveMigration(_instance: Instance, _data: MigrateData, _options?: LiveMigrationOptions): Promise<void> {}
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
      return { sourceHost: sourceHost.hostname, destHost: host.hostname, policy, plan: this.planMigration(policy), extra: {} };
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

/** Every broken variant the kit must catch. */
export const BROKEN_VARIANTS: readonly BrokenVariant[] = [
  { name: "pause-does-nothing", defect: "pause() resolves and does nothing", caughtBy: ["lifecycle.pause-unpause"], wrap: (d) => new PauseDoesNothing(d) },
  { name: "second-destroy-throws", defect: "a second destroy throws", caughtBy: ["lifecycle.destroy"], wrap: (d) => new SecondDestroyThrows(d) },
  { name: "password-on-stopped", defect: "a password set on a stopped instance succeeds", caughtBy: ["admin-password.not-running"], wrap: (d) => new PasswordOnStoppedAccepted(d) },
  { name: "snapshot-without-metadata", defect: "the snapshot image lacks Nova's metadata", caughtBy: ["snapshot.image-running", "snapshot.image-stopped"], wrap: (d, c) => new SnapshotWithoutMetadata(d, c) },
  { name: "password-in-error", defect: "the password appears in an error message", caughtBy: ["admin-password.not-running", "admin-password.no-leak", "admin-password.no-agent"], wrap: (d) => new PasswordInErrorMessage(d) },
  { name: "wrong-migration-bitmask", defect: "planMigration drops PERSIST_DEST", caughtBy: ["migration.plan.default"], wrap: (d) => new WrongMigrationBitmask(d) },
  { name: "revert-restores-nothing", defect: "revert to an instance snapshot restores nothing", caughtBy: ["snapshot.instance-snapshots"], wrap: (d) => new RevertRestoresNothing(d) },
  { name: "declared-but-unsupported", defect: "declares rescue but refuses it as unsupported", caughtBy: ["lifecycle.rescue-unrescue"], wrap: (d) => new DeclaredButUnsupported(d) },
  { name: "leaked-instance", defect: "spawn leaves a hidden second instance", caughtBy: ["lifecycle.spawn"], wrap: (d) => new LeaksAnInstance(d) },
  { name: "power-off-no-hard-fallback", defect: "power off gives up after the clean timeout", caughtBy: ["lifecycle.power-off-fallback"], wrap: (d, c) => new PowerOffWithoutHardFallback(d, c) },
  { name: "get-info-lies", defect: "getInfo always reports RUNNING", caughtBy: ["lifecycle.power-off-on"], wrap: (d) => new GetInfoLies(d) },
  { name: "list-disagrees-with-exists", defect: "listInstanceUuids drops an instance instanceExists knows", caughtBy: ["lifecycle.spawn"], wrap: (d) => new ListDisagreesWithExists(d) },
  { name: "resume-while-running", defect: "resume of a running instance is accepted", caughtBy: ["lifecycle.suspend-resume"], wrap: (d) => new ResumeAcceptedWhileRunning(d) },
  { name: "events-not-emitted", defect: "declares lifecycle events but emits none", caughtBy: ["lifecycle.events"], wrap: (d) => new EventsNotEmitted(d) },
  { name: "migration-stays-on-source", defect: "live migration leaves the instance on the source", caughtBy: ["migration.live"], wrap: (d) => new MigrationStaysOnSource(d) },
  { name: "rollback-destroys-instance", defect: "rollback destroys the instance", caughtBy: ["migration.rollback"], wrap: (d, c) => new RollbackDestroysInstance(d, c) },
  { name: "password-logged", defect: "the password is written to the log", caughtBy: ["admin-password.set", "admin-password.no-leak"], wrap: (d, c) => new PasswordLogged(d, c) },
  { name: "generated-password-not-returned", defect: "the service returns a password other than the one it set", caughtBy: ["admin-password.generated"], wrapService: generatedNotReturned },
  { name: "snapshot-changes-power-state", defect: "an image snapshot leaves a running instance stopped", caughtBy: ["snapshot.image-running"], wrap: (d) => new SnapshotChangesPowerState(d) },
  { name: "undeclared-but-working", defect: "rescue works but is not declared", caughtBy: ["lifecycle.rescue-unrescue"], wrap: (d) => new UndeclaredButWorking(d) },
  { name: "timeouts-ignored", defect: "power off ignores the caller's signal and deadline", caughtBy: ["lifecycle.deadlines"], wrap: (d) => new TimeoutsIgnored(d) },
  { name: "spawn-not-running", defect: "spawn leaves the instance stopped", caughtBy: ["lifecycle.spawn"], wrap: (d) => new SpawnNotRunning(d) },
  { name: "untyped-not-found", defect: "getInfo of an unknown instance throws a plain Error", caughtBy: ["lifecycle.not-found"], wrap: (d) => new UntypedNotFound(d) },
  { name: "pre-check-accepts-everything", defect: "the destination pre-check accepts any flavor", caughtBy: ["migration.pre-checks"], wrap: (d) => new PreCheckAcceptsEverything(d) },
  { name: "abort-ignored", defect: "liveMigrationAbort does nothing", caughtBy: ["migration.abort"], wrap: (d) => new AbortIgnored(d) },
  { name: "tunnelled-tls-accepted", defect: "planMigration accepts tunnelled + native TLS", caughtBy: ["migration.plan.tunnelled-tls-refused"], wrap: (d) => new TunnelledTlsAccepted(d) },
  { name: "unpause-while-running", defect: "unpause of a running instance is accepted", caughtBy: ["lifecycle.pause-unpause"], wrap: (d) => new UnpauseAcceptedWhileRunning(d) },
];
