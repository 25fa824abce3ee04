/**
 * The ComputeDriver contract: what every hypervisor driver implements, modelled on Nova's
 * `nova/virt/driver.py` but typed, async and cancellable. Every method takes
 * {@link OperationOptions} (AbortSignal + timeout). An operation the driver does not support
 * rejects with `UnsupportedOperationError` naming the capability; nothing passes silently.
 */
import type { Capabilities } from "./capabilities.js";
import type { MigrationHostFacts, MigrationPlan, MigrationPolicy } from "./migration-policy.js";
import type { BlockDeviceInfo, ImageMeta, Instance, NetworkInfo } from "./model.js";
import type { OperationOptions } from "./operation.js";
import type { Secret } from "./secret.js";
import type { PowerState, TaskState } from "./states.js";

/** The version of this contract. Plugins declare the semver range they implement. */
export const CONTRACT_VERSION = "1.0.0";

/** Facts about the host a driver manages. */
export interface HostInfo {
  readonly hostname: string;
  /** e.g. `QEMU`, `Test`, `Xen`, `fake`. */
  readonly hypervisorType: string;
  /** Hypervisor version as `major.minor.micro`. */
  readonly hypervisorVersion: string;
  readonly cpuArch: string;
  readonly vcpus: number;
  readonly memoryMb: number;
}

/** What `getInfo` reports for one instance. */
export interface InstanceInfo {
  readonly state: PowerState;
  /** Configured memory in KiB. */
  readonly maxMemoryKb: number;
  /** Memory in use in KiB. */
  readonly memoryKb: number;
  readonly vcpus: number;
  /** CPU time consumed, in nanoseconds. */
  readonly cpuTimeNs: bigint;
  /** The hypervisor's own id for the instance (domain id, VM ref), if any. */
  readonly internalId?: string;
}

/** Soft asks the guest; hard resets it. */
export type RebootType = "SOFT" | "HARD";

/** What `spawn` needs. */
export interface SpawnRequest {
  readonly instance: Instance;
  /** Defaults to `instance.imageMeta`. */
  readonly imageMeta?: ImageMeta;
  readonly networkInfo?: NetworkInfo;
  readonly blockDeviceInfo?: BlockDeviceInfo;
  /**
   * Injected at first boot where the driver can (the libvirt driver: through the guest agent once
   * it answers). A driver that cannot set it refuses the spawn typed before creating anything
   * (e.g. `GuestAgentNotEnabledError`): never dropped silently.
   */
  readonly adminPassword?: Secret;
}

/** Power-off options: try a clean shutdown for `cleanShutdownTimeoutSec`, then hard. */
export interface PowerOffOptions extends OperationOptions {
  /** Seconds to wait for a clean (ACPI) shutdown; 0 = hard power off at once. */
  readonly cleanShutdownTimeoutSec?: number;
  /** Seconds between clean-shutdown requests. */
  readonly retryIntervalSec?: number;
}

/** Destroy options. */
export interface DestroyOptions extends OperationOptions {
  /** Delete the instance's disks too (default true); false keeps them (see `destroy`). */
  readonly destroyDisks?: boolean;
  readonly networkInfo?: NetworkInfo;
  readonly blockDeviceInfo?: BlockDeviceInfo;
}

/** Rescue options. */
export interface RescueOptions extends OperationOptions {
  readonly rescuePassword?: Secret;
}

/**
 * Nova's `update_task_state(task_state, expected_state)` callback: the driver reports progress
 * through the snapshot task states, and the caller compare-and-sets them. A callback that throws
 * or rejects (the compare-and-set failed) ends the snapshot: the call rejects with that error or
 * one caused by it, the callback is not called again, nothing more of the snapshot reaches the
 * image service (no update or upload of the image afterwards), and the image is not made active.
 */
export type TaskStateCallback = (taskState: TaskState, expectedState: TaskState | null) => void | Promise<void>;

/**
 * How an image snapshot was taken: `live` (the guest kept running while its disk was copied,
 * no downtime) or `cold` (the guest was stopped or saved for the copy, or was not running).
 */
export type ImageSnapshotMethod = "live" | "cold";

/** Image snapshot options. */
export interface ImageSnapshotOptions extends OperationOptions {
  readonly onTaskState?: TaskStateCallback;
  /**
   * Told, before the copy starts, which method the driver uses and why (e.g. why not live).
   * Drivers with a single method may report it too; a caller that needs to know must not assume.
   */
  readonly onSnapshotMethod?: (method: ImageSnapshotMethod, reason: string) => void;
}

/** A hypervisor-level snapshot of one instance. */
export interface InstanceSnapshot {
  readonly id: string;
  readonly name: string;
  readonly instanceUuid: string;
  /** When it was taken: an ISO 8601 time (`Date.parse` reads it), e.g. `2026-12-04T16:00:00.000Z`. */
  readonly createdAt: string;
  /** The power state the instance had when the snapshot was taken (revert restores it). */
  readonly powerState: PowerState;
  readonly description?: string;
}

/** What the live-migration steps hand each other (Nova's `migrate_data`). */
export interface MigrateData {
  readonly sourceHost: string;
  readonly destHost: string;
  readonly policy: MigrationPolicy;
  /** The driver's plan (flags) for this policy, fixed at the destination check. */
  readonly plan: MigrationPlan;
  /** Driver-specific facts (URIs, disk info, ...) as JSON-safe values. */
  readonly extra: Readonly<Record<string, string | number | boolean>>;
}

/** Progress of a running migration. */
export interface MigrationProgress {
  readonly dataTotalBytes: number;
  readonly dataProcessedBytes: number;
  readonly dataRemainingBytes: number;
  readonly elapsedMs: number;
}

/** Live-migration call options. */
export interface LiveMigrationOptions extends OperationOptions {
  /**
   * Reports of the move while it runs (a driver need not call it). Byte counts are finite and not
   * negative, the remaining at most the total when a total is known (the processed may pass it:
   * pages dirtied meanwhile are sent again), `elapsedMs` never goes back, and no report comes after
   * `liveMigration` has settled.
   */
  readonly onProgress?: (progress: MigrationProgress) => void;
}

/** Extra inputs of `preLiveMigration` and the post/rollback steps. */
export interface MigrationContext {
  readonly networkInfo?: NetworkInfo;
  readonly blockDeviceInfo?: BlockDeviceInfo;
}

/** Nova's lifecycle event transitions (nova/virt/event.py), plus CRASHED. */
export type LifecycleTransition =
  | "STARTED"
  | "STOPPED"
  | "PAUSED"
  | "RESUMED"
  | "SUSPENDED"
  | "CRASHED"
  | "POSTCOPY_STARTED"
  | "MIGRATION_COMPLETED";

/** One lifecycle event. */
export interface LifecycleEvent {
  readonly instanceUuid: string;
  readonly transition: LifecycleTransition;
  /** The host whose driver emitted the event. */
  readonly host: string;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
}

/** Receives lifecycle events. */
export type LifecycleListener = (event: LifecycleEvent) => void;

/**
 * The contract every hypervisor driver implements.
 *
 * Calls about different instances may run at the same time and must not disturb one another.
 * Calls about one instance are ordered by the caller (Nova's compute manager holds the instance's
 * lock for each), so a driver need not order them itself.
 */
export interface ComputeDriver {
  /** The driver's short name (`fake`, `libvirt`, `xenapi`). */
  readonly name: string;
  /** What this driver (with its current options) supports. */
  readonly capabilities: Capabilities;

  // -- host --
  /** Connects and prepares the host; call once before anything else. */
  initHost(host: string, options?: OperationOptions): Promise<void>;
  /**
   * Releases connections and listeners. The driver is unusable afterwards: its listeners hear
   * nothing more, and every call rejects with a `VirtkitError` (not `InstanceNotFoundError`) and
   * acts on nothing; it never reconnects.
   */
  cleanupHost(host: string, options?: OperationOptions): Promise<void>;
  getHostInfo(options?: OperationOptions): Promise<HostInfo>;

  // -- inspection --
  /** Names of instances on this host. */
  listInstances(options?: OperationOptions): Promise<readonly string[]>;
  /** Uuids of instances on this host. */
  listInstanceUuids(options?: OperationOptions): Promise<readonly string[]>;
  instanceExists(instance: Instance, options?: OperationOptions): Promise<boolean>;
  /** Rejects with `InstanceNotFoundError` for an unknown instance. */
  getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo>;
  /** Capability `consoleOutput`. */
  getConsoleOutput(instance: Instance, options?: OperationOptions): Promise<string>;

  // -- lifecycle --
  /**
   * Creates and boots the instance; resolves when it is RUNNING. A root disk of this instance that
   * an earlier `destroy({ destroyDisks: false })` kept on the host's storage is booted as it is,
   * never replaced by a fresh copy of the image (Nova's image backend reuses a disk that exists);
   * if the spawn fails, that disk stays kept.
   */
  spawn(request: SpawnRequest, options?: OperationOptions): Promise<void>;
  /**
   * Destroys the instance. Idempotent: an unknown or already stopped instance is fine. With
   * `destroyDisks: false` its disks stay on the host's storage (Nova: evacuation from shared
   * storage) and a later spawn of the instance boots them; a later destroy with `destroyDisks`
   * true (the default) removes them although the instance itself is gone, as Nova's libvirt
   * driver does.
   */
  destroy(instance: Instance, options?: DestroyOptions): Promise<void>;
  /**
   * SOFT needs capability `softReboot`: a running guest is asked (ACPI) and restarts itself
   * cleanly; only a guest that does not react in time (or is not running) is rebooted HARD.
   * HARD resets the guest without asking it. Any other `type` rejects with `InvalidInputError`.
   */
  reboot(instance: Instance, type: RebootType, options?: OperationOptions): Promise<void>;
  powerOff(instance: Instance, options?: PowerOffOptions): Promise<void>;
  powerOn(instance: Instance, options?: OperationOptions): Promise<void>;
  /** Capability `pause`. */
  pause(instance: Instance, options?: OperationOptions): Promise<void>;
  /** Capability `pause`. */
  unpause(instance: Instance, options?: OperationOptions): Promise<void>;
  /** Capability `suspend`. */
  suspend(instance: Instance, options?: OperationOptions): Promise<void>;
  /** Capability `suspend`. */
  resume(instance: Instance, options?: OperationOptions): Promise<void>;
  /** Capability `rescue`. */
  rescue(instance: Instance, rescueImageMeta: ImageMeta, options?: RescueOptions): Promise<void>;
  /** Capability `rescue`. */
  unrescue(instance: Instance, options?: OperationOptions): Promise<void>;

  // -- snapshots --
  /**
   * Capability `imageSnapshot`: writes the instance's disk into image `imageId` (created
   * beforehand by the caller, status `queued`) with {@link snapshotImageMetadata}'s metadata.
   * The instance's power state afterwards equals the one before.
   */
  snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void>;
  /**
   * Capability `instanceSnapshots`. `name`: 1 to 255 characters, `description`: at most 1,024, neither
   * with control characters; anything else is refused with `InvalidInputError` naming the argument
   * (`validateInstanceSnapshotInput`). The snapshot's `id` is at most 255 characters.
   */
  createInstanceSnapshot(
    instance: Instance,
    name: string,
    options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot>;
  /** Capability `instanceSnapshots`. Oldest first. */
  listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]>;
  /**
   * Capability `instanceSnapshots`: restores disk and power state as captured. A `snapshotId` that
   * is not 1 to 255 characters without control characters is `InvalidInputError` (`validateSnapshotId`);
   * a well-formed one the instance does not have is `SnapshotNotFoundError`.
   */
  revertToInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void>;
  /** Capability `instanceSnapshots`; `snapshotId` as for {@link revertToInstanceSnapshot}. */
  deleteInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void>;

  // -- admin password --
  /**
   * Capability `setAdminPassword`. Rejects with `AdminPasswordNotSupportedError`,
   * `GuestAgentNotEnabledError`, `GuestAgentUnresponsiveError`, `InstanceNotRunningError` or
   * `PasswordSetFailedError`; never with the password in any message. Without capability
   * `adminPasswordAnyUser`, an image naming another account (`os_admin_user`) than the guest's
   * admin (root, or Administrator on Windows) is refused with `UnsupportedOperationError` for
   * `adminPasswordAnyUser` whose message names that account.
   */
  setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void>;

  // -- live migration (capability `liveMigration`) --
  /** The driver's representation of a policy. Pure; throws `InvalidInputError` for an impossible policy. */
  planMigration(policy: MigrationPolicy, facts?: MigrationHostFacts): MigrationPlan;
  /** On the destination: can this host take the instance? Returns the data the other steps use. */
  checkCanLiveMigrateDestination(
    instance: Instance,
    sourceHost: HostInfo,
    policy: MigrationPolicy,
    options?: OperationOptions,
  ): Promise<MigrateData>;
  /** On the source: can the instance leave under this plan? */
  checkCanLiveMigrateSource(instance: Instance, data: MigrateData, options?: OperationOptions): Promise<MigrateData>;
  /**
   * Optional, on the destination after `checkCanLiveMigrateSource` refused: removes what
   * `checkCanLiveMigrateDestination` left for the source to see (Nova's
   * `cleanup_live_migration_destination_check`, e.g. the shared-storage probe). Idempotent.
   */
  cleanupLiveMigrationDestinationCheck?(instance: Instance, data: MigrateData, options?: OperationOptions): Promise<void>;
  /** On the destination: prepare networks, disks, ... */
  preLiveMigration(
    instance: Instance,
    data: MigrateData,
    context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<MigrateData>;
  /**
   * On the source: moves the instance. Resolves when it runs on the destination (then call
   * `postLiveMigrationAtDestination` there); rejects with `LiveMigrationFailedError` when it
   * failed or was aborted, leaving it running on the source (then call the rollback there).
   * Cut short by its signal or deadline, it aborts the move, and may wait a moment (under a
   * second) for the hypervisor to have ended it before rejecting, so that the caller's rollback
   * does not race the hypervisor's own teardown.
   */
  liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void>;
  /** On the destination, after success. */
  postLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void>;
  /** On the destination, after failure: undo `preLiveMigration`. */
  rollbackLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void>;
  /**
   * On the source: abort the running migration. With none running it rejects with
   * `InvalidStateError` and changes nothing; an instance the host does not have is
   * `InstanceNotFoundError` (Nova refuses to abort a migration that is not running).
   */
  liveMigrationAbort(instance: Instance, options?: OperationOptions): Promise<void>;
  /**
   * On the source: force completion (post-copy, or pause the guest). Capability
   * `forceCompleteMigration`; with no migration running, as {@link liveMigrationAbort}.
   */
  liveMigrationForceComplete(instance: Instance, options?: OperationOptions): Promise<void>;

  // -- events (capability `lifecycleEvents`) --
  /** Adds a listener; returns the function that removes it. */
  registerEventListener(listener: LifecycleListener): () => void;
}
