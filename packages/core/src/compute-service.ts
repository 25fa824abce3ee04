/**
 * What a service embeds to run instances on one host: it drives a {@link ComputeDriver} the way
 * Nova's compute manager does (`nova/compute/manager.py`), keeping vm, task and power state in an
 * {@link InstanceStore}. Every operation claims the instance by compare-and-setting its task
 * state from idle, calls the driver, then clears the task state expecting its own, so two
 * operations never run on one instance at once and a concurrent delete wins.
 */
import { hostname } from "node:os";
import { getDriverServices } from "./driver-context.js";
import type {
  ComputeDriver,
  InstanceSnapshot,
  MigrateData,
  MigrationContext,
  MigrationProgress,
  PowerOffOptions,
  RebootType,
} from "./driver.js";
import {
  AdminPasswordNotSupportedError,
  GuestAgentNotEnabledError,
  GuestAgentUnresponsiveError,
  InstanceExistsError,
  InstanceNotFoundError,
  InvalidInputError,
  InvalidStateError,
  LiveMigrationFailedError,
  MigrationPreCheckError,
  OperationAbortedError,
  OperationTimeoutError,
  PasswordSetFailedError,
  UnexpectedTaskStateError,
  UnsupportedOperationError,
  VirtkitError,
  isInstanceNotFound,
} from "./errors.js";
import { InMemoryImageService, type ImageRecord, type ImageService } from "./image-service.js";
import {
  InMemoryInstanceStore,
  type InstanceFault,
  type InstancePatch,
  type InstanceRecord,
  type InstanceStore,
} from "./instance-store.js";
import { validateInstanceSnapshotInput, validateSnapshotId } from "./driver-input.js";
import { NullLogger, type Logger } from "./logger.js";
import type { MigrationPolicy } from "./migration-policy.js";
import type { BlockDeviceInfo, ImageMeta, Instance, NetworkInfo } from "./model.js";
import { sleep, throwIfAborted, validateOperationOptions, type OperationOptions } from "./operation.js";
import { PASSWORD_LENGTH, generatePassword } from "./password.js";
import { Secret, isSecret } from "./secret.js";
import { PowerState, TaskState, VmState } from "./states.js";
import { resolveMigrationPolicy, validateImageMeta, validateInstance, validateSafeString } from "./validation.js";

/** What {@link ComputeService} is built from. */
export interface ComputeServiceOptions {
  readonly driver: ComputeDriver;
  /** Default: a new `InMemoryInstanceStore`. */
  readonly store?: InstanceStore;
  /**
   * Where image snapshots are created. Default: the image service the driver was built with
   * (when it came from a `DriverRegistry`/`createDriver`), else a new `InMemoryImageService`.
   */
  readonly imageService?: ImageService;
  /** Default: the driver's registry logger, else a `NullLogger`. */
  readonly logger?: Logger;
  /** This host's name (Nova's `CONF.host`); default `os.hostname()`. */
  readonly host?: string;
  /** Call `driver.initHost(host)` before the first operation (default true). */
  readonly initHost?: boolean;
}

/** Options of {@link ComputeService.boot}. */
export interface BootOptions extends OperationOptions {
  /** Injected at first boot where the driver can. */
  readonly adminPassword?: Secret | string;
  readonly networkInfo?: NetworkInfo;
  readonly blockDeviceInfo?: BlockDeviceInfo;
}

/** Options of {@link ComputeService.rescue}. */
export interface RescueServiceOptions extends OperationOptions {
  /** Default: the instance's own image. */
  readonly rescueImageMeta?: ImageMeta;
  /** Default: a generated one, returned. */
  readonly rescuePassword?: Secret | string;
}

/** What {@link ComputeService.rescue} returns. */
export interface RescueResult {
  readonly record: InstanceRecord;
  /** The rescue image's admin password (generated when none was given). */
  readonly password: Secret;
}

/** A migration target that is not a `ComputeService`: an initialised driver and its host name. */
export interface MigrationDestination {
  readonly driver: ComputeDriver;
  readonly host: string;
  /** Where the record goes after the move; default the source's store. */
  readonly store?: InstanceStore;
}

/** Options of {@link ComputeService.liveMigrate}. */
export interface LiveMigrateOptions extends OperationOptions {
  readonly onProgress?: (progress: MigrationProgress) => void;
  readonly context?: MigrationContext;
}

/** Options of {@link ComputeService.createInstanceSnapshot}. */
export interface InstanceSnapshotOptions extends OperationOptions {
  readonly description?: string;
}

/** Cleanup calls after a failure run without the caller's (maybe fired) signal, but bounded. */
const CLEANUP: OperationOptions = { timeoutMs: 30_000 };

const SNAPSHOT_TASKS = [TaskState.IMAGE_SNAPSHOT, TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_UPLOADING] as const;
const ALL_TASKS_BUT_DELETING: readonly (TaskState | null)[] = [
  null,
  ...Object.values(TaskState).filter((t) => t !== TaskState.DELETING),
];
const IMAGE_SNAPSHOT_VM_STATES = [VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED] as const;

/** The vm state an instance in power state `power` is in after a revert. */
function vmStateFor(power: PowerState): VmState {
  switch (power) {
    case PowerState.RUNNING:
      return VmState.ACTIVE;
    case PowerState.PAUSED:
      return VmState.PAUSED;
    case PowerState.SUSPENDED:
      return VmState.SUSPENDED;
    default:
      return VmState.STOPPED;
  }
}

/**
 * Nova's `_sync_instance_power_state`, reduced to bookkeeping: the vm state follows the power
 * state the hypervisor reports, without acting on the hypervisor.
 */
export function reconcileVmState(vm: VmState, power: PowerState): VmState {
  switch (vm) {
    case VmState.ACTIVE:
    case VmState.PAUSED:
    case VmState.STOPPED:
      return vmStateFor(power);
    case VmState.SUSPENDED:
      return power === PowerState.RUNNING ? VmState.ACTIVE : vm;
    default:
      return vm;
  }
}

function op(options: OperationOptions | undefined): OperationOptions {
  return { signal: options?.signal, timeoutMs: options?.timeoutMs };
}

function toInstance(record: InstanceRecord): Instance {
  const {
    vmState: _v,
    taskState: _t,
    powerState: _p,
    host: _h,
    createdAt: _c,
    updatedAt: _u,
    lastError: _e,
    ...instance
  } = record;
  return instance;
}

/** A record's fault: typed errors keep their (secret-free) message; anything else only its kind. */
function faultOf(err: unknown): InstanceFault {
  const at = new Date().toISOString();
  if (err instanceof VirtkitError) return { code: err.code, message: err.message, at };
  const name = err instanceof Error ? err.name : typeof err;
  return { code: "VIRTKIT_ERROR", message: `unexpected ${name} (see the logs)`, at };
}

function toPassword(value: unknown, field: string): Secret {
  const secret = isSecret(value) ? value : typeof value === "string" ? new Secret(value) : undefined;
  if (!secret) throw new InvalidInputError(field, "must be a string or a Secret");
  const raw = secret.reveal();
  if (raw.length === 0) throw new InvalidInputError(field, "must not be empty");
  if (raw.length > PASSWORD_LENGTH.max)
    throw new InvalidInputError(field, `must be at most ${PASSWORD_LENGTH.max} characters`);
  // A newline would let `user:pass` agent input (chpasswd) set a second user's password.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw new InvalidInputError(field, "must not contain control characters");
  return secret;
}

/** True when `err`, its fields or its cause chain contain the secret's text. */
function containsSecret(err: unknown, secret: Secret): boolean {
  const needle = secret.reveal();
  const seen = new Set<unknown>();
  const visit = (v: unknown, depth: number): boolean => {
    if (typeof v === "string") return v.includes(needle);
    if (typeof v !== "object" || v === null || seen.has(v) || depth > 6 || isSecret(v)) return false;
    seen.add(v);
    if (v instanceof Error && (visit(v.message, depth + 1) || visit(v.stack, depth + 1) || visit(v.cause, depth + 1))) {
      return true;
    }
    return Object.values(v).some((x) => visit(x, depth + 1));
  };
  return visit(err, 0);
}

/** Drives one host's driver and keeps the instances' vm / task / power state. */
export class ComputeService {
  readonly driver: ComputeDriver;
  readonly store: InstanceStore;
  readonly imageService: ImageService;
  readonly logger: Logger;
  /** This host's name. */
  readonly host: string;
  readonly #initHost: boolean;
  #init: Promise<void> | undefined;

  constructor(options: ComputeServiceOptions) {
    if (!options?.driver) throw new InvalidInputError("driver", "a ComputeDriver is required");
    const services = getDriverServices(options.driver);
    this.driver = options.driver;
    this.store = options.store ?? new InMemoryInstanceStore();
    this.imageService = options.imageService ?? services?.imageService ?? new InMemoryImageService();
    this.host = validateSafeString(options.host ?? hostname(), "host");
    this.logger = (options.logger ?? services?.logger ?? new NullLogger()).child({
      host: this.host,
      driver: this.driver.name,
    });
    this.#initHost = options.initHost ?? true;
  }

  /** Calls `driver.initHost(host)` once; operations call it themselves. A failed init is retried next time. */
  async init(options?: OperationOptions): Promise<void> {
    // Every operation comes through here (or get/list) before it changes anything: options a
    // JavaScript caller got wrong are refused as the driver would (InvalidInputError naming the field).
    validateOperationOptions(options);
    if (!this.#initHost) return;
    this.#init ??= this.driver.initHost(this.host, op(options)).catch((e: unknown) => {
      this.#init = undefined;
      throw e;
    });
    await this.#init;
  }

  // -- reads --

  /** The record of an instance on this host; `InstanceNotFoundError` otherwise. */
  async get(uuid: string, options?: OperationOptions): Promise<InstanceRecord> {
    validateOperationOptions(options);
    const record = await this.store.get(uuid, op(options));
    if (record.host !== this.host) throw new InstanceNotFoundError(uuid);
    return record;
  }

  /** Every instance on this host. */
  async list(options?: OperationOptions): Promise<readonly InstanceRecord[]> {
    validateOperationOptions(options);
    return (await this.store.list(op(options))).filter((r) => r.host === this.host);
  }

  /**
   * Reads the power state from the driver and lets the vm state follow it (see
   * {@link reconcileVmState}). Skipped while a task runs: the task owns the instance.
   */
  async syncPowerState(uuid: string, options?: OperationOptions): Promise<InstanceRecord> {
    await this.init(options);
    const record = await this.get(uuid, options);
    if (record.taskState !== null) return record;
    const powerState = await this.#readPowerState(toInstance(record), options);
    try {
      return await this.store.save(
        uuid,
        { powerState, vmState: reconcileVmState(record.vmState, powerState) },
        { ...op(options), expectedTaskState: null },
      );
    } catch (e) {
      if (e instanceof UnexpectedTaskStateError) return this.store.get(uuid);
      throw e;
    }
  }

  // -- lifecycle --

  /**
   * Validates and creates the instance (BUILDING / SPAWNING), spawns it, and records ACTIVE /
   * idle / RUNNING; on failure ERROR with the fault, and the error is rethrown.
   */
  async boot(instance: Instance, options: BootOptions = {}): Promise<InstanceRecord> {
    throwIfAborted("boot", options.signal);
    const inst = validateInstance(instance);
    // Nova's API (_check_requested_image): the flavor must meet the image's minimums.
    const { minRam, minDisk } = inst.imageMeta;
    if (minRam !== undefined && inst.flavor.memoryMb < minRam) {
      throw new InvalidInputError("instance.flavor.memoryMb", `${inst.flavor.memoryMb} MiB is less than the image's minRam of ${minRam} MiB`);
    }
    // A root disk of 0 GiB takes the image's size (Nova's rule): nothing to compare.
    if (minDisk !== undefined && inst.flavor.rootGb > 0 && inst.flavor.rootGb < minDisk) {
      throw new InvalidInputError("instance.flavor.rootGb", `${inst.flavor.rootGb} GiB is less than the image's minDisk of ${minDisk} GiB`);
    }
    const password =
      options.adminPassword === undefined ? undefined : toPassword(options.adminPassword, "adminPassword");
    await this.init(options);
    // Identity is the uuid (the store refuses a duplicate); display names may repeat, as in Nova.
    await this.store.create(
      {
        ...inst,
        vmState: VmState.BUILDING,
        taskState: TaskState.SPAWNING,
        powerState: PowerState.NOSTATE,
        host: this.host,
      },
      op(options),
    );
    const log = this.logger.child({ instance: inst.uuid });
    log.info("spawning instance", { name: inst.name });
    try {
      await this.driver.spawn(
        {
          instance: inst,
          networkInfo: options.networkInfo,
          blockDeviceInfo: options.blockDeviceInfo,
          adminPassword: password,
        },
        op(options),
      );
    } catch (err) {
      const safe =
        password && containsSecret(err, password) ? new VirtkitError(`Failed to spawn instance ${inst.uuid}`) : err;
      log.error("spawn failed", { error: safe });
      if (err instanceof InstanceExistsError) {
        // The uuid is another's on this host (another service's, or left behind): the record this
        // boot made goes, so no later delete of it destroys an instance this service never made.
        await this.store.delete(inst.uuid, { ...CLEANUP, expectedTaskState: TaskState.SPAWNING }).catch(() => undefined);
        throw err;
      }
      const powerState = await this.#readPowerState(inst, CLEANUP, PowerState.NOSTATE);
      await this.#saveQuietly(
        inst.uuid,
        { vmState: VmState.ERROR, taskState: null, powerState, lastError: faultOf(safe) },
        [TaskState.SPAWNING],
      );
      throw safe;
    }
    const powerState = await this.#readPowerState(inst, options, PowerState.RUNNING);
    try {
      const saved = await this.store.save(
        inst.uuid,
        { vmState: VmState.ACTIVE, taskState: null, powerState },
        { ...op(options), expectedTaskState: TaskState.SPAWNING },
      );
      log.info("instance active");
      return saved;
    } catch (err) {
      // Deleted while it was being spawned (delete wins): the delete's destroy may have come
      // before the spawn made anything, so what the spawn made goes now (Nova's build does the
      // same when the instance is gone or DELETING once the spawn is over).
      const deleted =
        err instanceof InstanceNotFoundError ||
        (err instanceof UnexpectedTaskStateError && err.actual === TaskState.DELETING);
      if (deleted) {
        log.warn("instance deleted while it was spawned; destroying what the spawn made");
        await this.driver
          .destroy(inst, { ...CLEANUP, destroyDisks: true })
          .catch((e: unknown) => log.error("destroying what a deleted instance's spawn made failed", { error: e }));
      }
      throw err;
    }
  }

  /** SOFT from ACTIVE; HARD also from STOPPED, PAUSED, SUSPENDED or ERROR. Ends ACTIVE. */
  async reboot(uuid: string, type: RebootType = "SOFT", options?: OperationOptions): Promise<InstanceRecord> {
    if (type !== "SOFT" && type !== "HARD") throw new InvalidInputError("rebootType", "must be SOFT or HARD");
    return this.#run(uuid, options, {
      op: `${type.toLowerCase()} reboot`,
      task: type === "SOFT" ? TaskState.REBOOTING : TaskState.REBOOTING_HARD,
      from:
        type === "SOFT"
          ? [VmState.ACTIVE]
          : [VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED, VmState.ERROR],
      to: () => VmState.ACTIVE,
      expectPower: PowerState.RUNNING,
      call: (i) => this.driver.reboot(i, type, op(options)),
    }).then((r) => r.record);
  }

  /** Powers off (clean shutdown first when asked). ACTIVE or ERROR → STOPPED. */
  async stop(uuid: string, options?: PowerOffOptions): Promise<InstanceRecord> {
    return this.#simple(
      uuid,
      options,
      "stop",
      TaskState.POWERING_OFF,
      [VmState.ACTIVE, VmState.ERROR],
      VmState.STOPPED,
      PowerState.SHUTDOWN,
      (i) =>
        this.driver.powerOff(i, {
          ...op(options),
          cleanShutdownTimeoutSec: options?.cleanShutdownTimeoutSec,
          retryIntervalSec: options?.retryIntervalSec,
        }),
    );
  }

  /** Powers on. STOPPED → ACTIVE. */
  async start(uuid: string, options?: OperationOptions): Promise<InstanceRecord> {
    return this.#simple(
      uuid,
      options,
      "start",
      TaskState.POWERING_ON,
      [VmState.STOPPED],
      VmState.ACTIVE,
      PowerState.RUNNING,
      (i) => this.driver.powerOn(i, op(options)),
    );
  }

  /** ACTIVE → PAUSED. */
  async pause(uuid: string, options?: OperationOptions): Promise<InstanceRecord> {
    return this.#simple(
      uuid,
      options,
      "pause",
      TaskState.PAUSING,
      [VmState.ACTIVE],
      VmState.PAUSED,
      PowerState.PAUSED,
      (i) => this.driver.pause(i, op(options)),
    );
  }

  /** PAUSED → ACTIVE. */
  async unpause(uuid: string, options?: OperationOptions): Promise<InstanceRecord> {
    return this.#simple(
      uuid,
      options,
      "unpause",
      TaskState.UNPAUSING,
      [VmState.PAUSED],
      VmState.ACTIVE,
      PowerState.RUNNING,
      (i) => this.driver.unpause(i, op(options)),
    );
  }

  /** ACTIVE → SUSPENDED. */
  async suspend(uuid: string, options?: OperationOptions): Promise<InstanceRecord> {
    return this.#simple(
      uuid,
      options,
      "suspend",
      TaskState.SUSPENDING,
      [VmState.ACTIVE],
      VmState.SUSPENDED,
      PowerState.SUSPENDED,
      (i) => this.driver.suspend(i, op(options)),
    );
  }

  /** SUSPENDED → ACTIVE. */
  async resume(uuid: string, options?: OperationOptions): Promise<InstanceRecord> {
    return this.#simple(
      uuid,
      options,
      "resume",
      TaskState.RESUMING,
      [VmState.SUSPENDED],
      VmState.ACTIVE,
      PowerState.RUNNING,
      (i) => this.driver.resume(i, op(options)),
    );
  }

  /** ACTIVE, STOPPED or ERROR → RESCUED, booting the rescue image with a (generated) password. */
  async rescue(uuid: string, options: RescueServiceOptions = {}): Promise<RescueResult> {
    const imageMeta =
      options.rescueImageMeta === undefined ? undefined : validateImageMeta(options.rescueImageMeta, "rescueImageMeta");
    const password =
      options.rescuePassword === undefined ? generatePassword() : toPassword(options.rescuePassword, "rescuePassword");
    const { record } = await this.#run(uuid, options, {
      op: "rescue",
      task: TaskState.RESCUING,
      from: [VmState.ACTIVE, VmState.STOPPED, VmState.ERROR],
      to: () => VmState.RESCUED,
      expectPower: PowerState.RUNNING,
      secret: password,
      call: (i) => this.driver.rescue(i, imageMeta ?? i.imageMeta, { ...op(options), rescuePassword: password }),
    });
    return { record, password };
  }

  /** RESCUED → ACTIVE. */
  async unrescue(uuid: string, options?: OperationOptions): Promise<InstanceRecord> {
    return this.#simple(
      uuid,
      options,
      "unrescue",
      TaskState.UNRESCUING,
      [VmState.RESCUED],
      VmState.ACTIVE,
      PowerState.RUNNING,
      (i) => this.driver.unrescue(i, op(options)),
    );
  }

  /**
   * Marks the instance DELETING (whatever task runs: delete wins, and that task's final
   * compare-and-set then fails), destroys it with its disks and removes the record. A failed
   * destroy leaves it in ERROR.
   */
  async delete(uuid: string, options?: OperationOptions): Promise<void> {
    throwIfAborted("delete", options?.signal);
    await this.init(options);
    const record = await this.get(uuid, options);
    await this.store.save(
      uuid,
      { taskState: TaskState.DELETING },
      { ...op(options), expectedTaskState: ALL_TASKS_BUT_DELETING },
    );
    const log = this.logger.child({ instance: uuid });
    try {
      await this.driver.destroy(toInstance(record), { ...op(options), destroyDisks: true });
    } catch (err) {
      log.error("destroy failed", { error: err });
      await this.#saveQuietly(uuid, { vmState: VmState.ERROR, taskState: null, lastError: faultOf(err) }, [
        TaskState.DELETING,
      ]);
      throw err;
    }
    await this.store.delete(uuid, { ...op(options), expectedTaskState: TaskState.DELETING });
    log.info("instance deleted");
  }

  // -- admin password (seed 000: Nova's ComputeManager.set_admin_password) --

  /**
   * Sets the admin password, generating one when none is given, and returns the password used.
   * Claims the instance with task UPDATING_PASSWORD (a concurrent task → `UnexpectedTaskStateError`),
   * refuses unless the driver reports RUNNING (`PasswordSetFailedError` "instance <uuid> is not
   * running"), rethrows the driver's unsupported / not-enabled errors, and turns any other failure
   * into vm state ERROR and a new `PasswordSetFailedError` carrying nothing from the driver. The
   * task state is cleared on every path where this call owns it; the password appears in no
   * error, log line or record.
   */
  async setAdminPassword(uuid: string, password?: Secret | string, options?: OperationOptions): Promise<Secret> {
    throwIfAborted("set admin password", options?.signal);
    // Validate before claiming anything, so bad input changes nothing.
    const given = password === undefined ? undefined : toPassword(password, "adminPassword");
    await this.init(options);
    const record = await this.get(uuid, options);
    // Nova's API: only an ACTIVE instance (not ERROR, not RESCUED: a rescued instance's password
    // would be the rescue guest's), before any driver call.
    if (record.vmState !== VmState.ACTIVE) {
      throw new InvalidStateError(uuid, "set admin password", `vm state ${record.vmState}`);
    }
    await this.store.save(
      uuid,
      { taskState: TaskState.UPDATING_PASSWORD },
      { ...op(options), expectedTaskState: null },
    );
    const log = this.logger.child({ instance: uuid });
    const secret = given ?? generatePassword();
    const instance = toInstance(record);
    // Every failing path gives the instance back (task cleared, vm state as it was: current Nova,
    // after bug 1757061) and records a fault; a save that fails is retried so the task never sticks.
    const fail = async (err: VirtkitError, patch: InstancePatch = {}): Promise<never> => {
      await this.#release(uuid, { taskState: null, lastError: faultOf(err), ...patch });
      throw err;
    };

    let power: PowerState;
    try {
      power = await this.#readPowerState(instance, options);
    } catch (err) {
      // The driver could not say (hypervisor down, ...): give the instance back, keep the typed error.
      return fail(
        err instanceof VirtkitError && !containsSecret(err, secret)
          ? err
          : new PasswordSetFailedError(uuid, "error setting admin password"),
      );
    }
    if (power !== PowerState.RUNNING) {
      return fail(new PasswordSetFailedError(uuid, `instance ${uuid} is not running`), { powerState: power });
    }

    try {
      await this.driver.setAdminPassword(instance, secret, op(options));
      log.info("admin password set");
      await this.#release(uuid, { taskState: null, lastError: null });
      return secret;
    } catch (err) {
      if (err instanceof UnexpectedTaskStateError) throw err; // another task (most likely delete) took over
      if (
        err instanceof UnsupportedOperationError ||
        err instanceof AdminPasswordNotSupportedError ||
        err instanceof GuestAgentNotEnabledError ||
        err instanceof GuestAgentUnresponsiveError
      ) {
        // Nova: "not implemented by this driver or guest" (an unresponsive agent included, seed 004):
        // the task is cleared and the caller gets the typed error; the instance is not in ERROR.
        log.warn("set admin password is not supported by this driver or guest", { error: this.#scrub(err, secret) });
        return fail(containsSecret(err, secret) ? this.#freshUnsupported(err, uuid) : err);
      }
      if (
        (err instanceof OperationTimeoutError || err instanceof OperationAbortedError) &&
        !containsSecret(err, secret)
      ) {
        log.warn("set admin password did not finish", { error: err });
        return fail(err);
      }
      log.error("set admin password failed", { error: this.#scrub(err, secret) });
      // A new error without `cause`: nothing the driver said can carry the password to the caller.
      return fail(new PasswordSetFailedError(uuid, "error setting admin password"));
    }
  }

  /**
   * Clears an UPDATING_PASSWORD task with `patch`, retrying a failed save (a transient store error
   * must not leave the task stuck). Throws only `UnexpectedTaskStateError`: another task (a delete)
   * took the instance over, which the caller must hear about, as Nova's `instance.save` raises it.
   */
  async #release(uuid: string, patch: InstancePatch): Promise<void> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await this.store.save(uuid, patch, { ...CLEANUP, expectedTaskState: TaskState.UPDATING_PASSWORD });
        return;
      } catch (err) {
        if (err instanceof UnexpectedTaskStateError) throw err;
        if (isInstanceNotFound(err)) return; // deleted meanwhile: nothing left to clear
        this.logger.warn("could not record the outcome of set admin password; retrying", {
          instance: uuid,
          attempt,
          error: err,
        });
        await sleep(100 * attempt).catch(() => undefined);
      }
    }
  }

  // -- image snapshot --

  /**
   * Writes the instance's disk to a new image named `name`: creates it `queued`, runs the driver
   * through IMAGE_SNAPSHOT → IMAGE_PENDING_UPLOAD → IMAGE_UPLOADING (its `onTaskState` callback,
   * compare-and-set), clears the task state and returns the image. On failure the queued image
   * is deleted and the task state cleared.
   */
  async snapshot(uuid: string, name: string, options?: OperationOptions): Promise<ImageRecord> {
    validateSafeString(name, "image.name");
    const record = await this.#begin(uuid, "snapshot", TaskState.IMAGE_SNAPSHOT, IMAGE_SNAPSHOT_VM_STATES, options);
    const instance = toInstance(record);
    const log = this.logger.child({ instance: uuid });
    let image: ImageRecord | undefined;
    try {
      image = await this.imageService.create(
        {
          name,
          status: "queued",
          owner: instance.projectId,
          properties: {
            image_type: "snapshot",
            instance_uuid: uuid,
            ...(instance.imageMeta.id ? { base_image_ref: instance.imageMeta.id } : {}),
            ...(instance.userId ? { user_id: instance.userId } : {}),
          },
        },
        op(options),
      );
      const imageId = image.id;
      await this.driver.snapshot(instance, imageId, {
        ...op(options),
        onSnapshotMethod: (method, reason) => log.info("image snapshot method", { method, reason }),
        onTaskState: async (taskState, expectedState) => {
          if (taskState !== TaskState.IMAGE_PENDING_UPLOAD && taskState !== TaskState.IMAGE_UPLOADING) {
            throw new InvalidInputError(
              "taskState",
              "a snapshot may only move to image_pending_upload or image_uploading",
            );
          }
          await this.store.save(uuid, { taskState }, { expectedTaskState: expectedState });
        },
      });
      const powerState = await this.#readPowerState(instance, options, record.powerState);
      await this.store.save(
        uuid,
        { taskState: null, powerState, lastError: null },
        { ...op(options), expectedTaskState: SNAPSHOT_TASKS },
      );
      log.info("image snapshot done", { image: imageId });
      return await this.imageService.get(imageId, op(options));
    } catch (err) {
      log.error("image snapshot failed", { error: err, image: image?.id });
      if (image) await this.imageService.delete(image.id, CLEANUP).catch(() => undefined);
      // Compare-and-set: clears only a snapshot task state, never a delete that took over.
      await this.#saveQuietly(uuid, { taskState: null, lastError: faultOf(err) }, SNAPSHOT_TASKS);
      throw err;
    }
  }

  // -- instance (hypervisor) snapshots --

  /** Takes a hypervisor-level snapshot (task INSTANCE_SNAPSHOT); the vm state is unchanged. */
  async createInstanceSnapshot(
    uuid: string,
    name: string,
    options: InstanceSnapshotOptions = {},
  ): Promise<InstanceSnapshot> {
    validateInstanceSnapshotInput(name, options);
    const { result } = await this.#run(uuid, options, {
      op: "create instance snapshot",
      task: TaskState.INSTANCE_SNAPSHOT,
      from: IMAGE_SNAPSHOT_VM_STATES,
      call: (i) =>
        this.driver.createInstanceSnapshot(i, name, {
          ...op(options),
          ...(options.description === undefined ? {} : { description: options.description }),
        }),
    });
    return result;
  }

  /** The instance's hypervisor snapshots, oldest first. Takes no task state: it changes nothing. */
  async listInstanceSnapshots(uuid: string, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    await this.init(options);
    const record = await this.get(uuid, options);
    return this.driver.listInstanceSnapshots(toInstance(record), op(options));
  }

  /** Restores disk and power state (task INSTANCE_SNAPSHOT_REVERTING); the vm state follows the power state. */
  async revertToInstanceSnapshot(
    uuid: string,
    snapshotId: string,
    options?: OperationOptions,
  ): Promise<InstanceRecord> {
    validateSnapshotId(snapshotId);
    const { record } = await this.#run(uuid, options, {
      op: "revert to instance snapshot",
      task: TaskState.INSTANCE_SNAPSHOT_REVERTING,
      from: [...IMAGE_SNAPSHOT_VM_STATES, VmState.ERROR],
      to: vmStateFor,
      call: (i) => this.driver.revertToInstanceSnapshot(i, snapshotId, op(options)),
    });
    return record;
  }

  /** Deletes a hypervisor snapshot (task INSTANCE_SNAPSHOT). */
  async deleteInstanceSnapshot(uuid: string, snapshotId: string, options?: OperationOptions): Promise<InstanceRecord> {
    validateSnapshotId(snapshotId);
    const { record } = await this.#run(uuid, options, {
      op: "delete instance snapshot",
      task: TaskState.INSTANCE_SNAPSHOT,
      from: [...IMAGE_SNAPSHOT_VM_STATES, VmState.ERROR],
      call: (i) => this.driver.deleteInstanceSnapshot(i, snapshotId, op(options)),
    });
    return record;
  }

  // -- live migration --

  /**
   * Nova's live-migration sequence, with task MIGRATING: destination check → source check →
   * destination `preLiveMigration` → source `liveMigration` → destination
   * `postLiveMigrationAtDestination`, after which the record moves to the destination's store
   * and host. A refused pre-check is a `MigrationPreCheckError`; a failed move rolls the
   * destination back and leaves the instance as it was on the source. The task state is cleared
   * on every path.
   */
  async liveMigrate(
    uuid: string,
    destination: ComputeService | MigrationDestination,
    policy: Partial<MigrationPolicy> = {},
    options: LiveMigrateOptions = {},
  ): Promise<InstanceRecord> {
    const resolved = resolveMigrationPolicy(policy);
    const dest =
      destination instanceof ComputeService
        ? { driver: destination.driver, host: destination.host, store: destination.store }
        : { driver: destination.driver, host: destination.host, store: destination.store ?? this.store };
    if (destination instanceof ComputeService) await destination.init(options);
    const record = await this.#begin(
      uuid,
      "live migrate",
      TaskState.MIGRATING,
      [VmState.ACTIVE, VmState.PAUSED],
      options,
    );
    const instance = toInstance(record);
    const log = this.logger.child({ instance: uuid, destination: dest.host });
    const release = async (err: unknown) => {
      await this.#saveQuietly(uuid, { taskState: null, lastError: faultOf(err) }, [TaskState.MIGRATING]);
    };

    // 1. Pre-checks: nothing has happened yet, so a failure only releases the task.
    let data: MigrateData;
    try {
      if (dest.host === this.host) throw new MigrationPreCheckError(`instance ${uuid} is already on host ${this.host}`);
      if (dest.driver.name !== this.driver.name) {
        throw new MigrationPreCheckError(
          `cannot live-migrate from a ${this.driver.name} host to a ${dest.driver.name} host`,
        );
      }
      const sourceHost = await this.driver.getHostInfo(op(options));
      data = await dest.driver.checkCanLiveMigrateDestination(instance, sourceHost, resolved, op(options));
      const destData = data;
      data = await this.driver.checkCanLiveMigrateSource(instance, data, op(options)).catch(async (err: unknown) => {
        // What the destination check left for the source to see goes (Nova's conductor does the same).
        await dest.driver.cleanupLiveMigrationDestinationCheck?.(instance, destData, CLEANUP).catch(() => undefined);
        throw err;
      });
    } catch (err) {
      const failure =
        err instanceof MigrationPreCheckError
          ? err
          : new MigrationPreCheckError(err instanceof VirtkitError ? err.message : "unexpected error in a pre-check", {
              cause: err,
            });
      log.warn("live migration refused by a pre-check", { error: failure });
      await release(failure);
      throw failure;
    }

    // 2. Prepare the destination and move; on failure undo the destination. Typed errors pass
    // through (a LiveMigrationFailedError, an abort, a timeout); anything else is wrapped.
    const rollback = async (err: unknown): Promise<never> => {
      const failure =
        err instanceof VirtkitError ? err : new LiveMigrationFailedError(uuid, "unexpected error", { cause: err });
      try {
        await dest.driver.rollbackLiveMigrationAtDestination(instance, data, options.context, CLEANUP);
      } catch (rollbackErr) {
        log.error("rollback at destination failed", { error: rollbackErr });
      }
      log.error("live migration failed; the instance stays on the source", { error: failure });
      const powerState = await this.#readPowerState(instance, CLEANUP, record.powerState);
      await this.#saveQuietly(uuid, { taskState: null, powerState, lastError: faultOf(failure) }, [
        TaskState.MIGRATING,
      ]);
      throw failure;
    };
    try {
      data = await dest.driver.preLiveMigration(instance, data, options.context, op(options));
    } catch (err) {
      return rollback(err);
    }
    try {
      await this.driver.liveMigration(instance, data, { ...op(options), onProgress: options.onProgress });
    } catch (err) {
      return rollback(err);
    }

    // 3. The instance runs on the destination now: finish there and move the record.
    let postError: unknown;
    try {
      await dest.driver.postLiveMigrationAtDestination(instance, data, options.context, op(options));
    } catch (err) {
      postError = err;
      log.error("post live migration at destination failed", { error: err });
    }
    let powerState: PowerState = record.powerState;
    try {
      powerState = (await dest.driver.getInfo(instance, CLEANUP)).state;
    } catch {
      // keep the source's last known state
    }
    const patch: InstancePatch = postError
      ? { host: dest.host, taskState: null, powerState, vmState: VmState.ERROR, lastError: faultOf(postError) }
      : { host: dest.host, taskState: null, powerState, lastError: null };
    let moved: InstanceRecord;
    try {
      moved = await this.#move(uuid, dest.store, patch);
    } catch (err) {
      // The instance runs on the destination but its record could not follow: flag it for an operator.
      log.error("could not move the record to the destination", { error: err });
      await this.#saveQuietly(uuid, { vmState: VmState.ERROR, taskState: null, lastError: faultOf(err) }, [
        TaskState.MIGRATING,
      ]);
      throw err;
    }
    log.info("live migration done");
    if (postError) throw postError;
    return moved;
  }

  /** Aborts the live migration running for `uuid` (task MIGRATING); the migration then rolls back. */
  async abortLiveMigration(uuid: string, options?: OperationOptions): Promise<void> {
    const record = await this.get(uuid, options);
    if (record.taskState !== TaskState.MIGRATING) {
      throw new InvalidStateError(uuid, "abort live migration", `not migrating (task ${record.taskState ?? "none"})`);
    }
    await this.driver.liveMigrationAbort(toInstance(record), op(options));
  }

  // -- internals --

  async #move(uuid: string, store: InstanceStore, patch: InstancePatch): Promise<InstanceRecord> {
    if (store === this.store) return this.store.save(uuid, patch, { expectedTaskState: TaskState.MIGRATING });
    const current = await this.store.get(uuid);
    const { createdAt: _c, updatedAt: _u, lastError: _e, ...rest } = current;
    const next = { ...rest, ...patch } as Record<string, unknown>;
    if (next.lastError === null) delete next.lastError;
    // Create at the destination first so no failure can lose the record; then remove it from the
    // source with a compare-and-set (still ours?), undoing the copy if another task took over.
    const moved = await store.create(next as unknown as InstanceRecord);
    try {
      await this.store.delete(uuid, { expectedTaskState: TaskState.MIGRATING });
    } catch (err) {
      await store.delete(uuid).catch(() => undefined);
      throw err;
    }
    return moved;
  }

  /** Loads the record on this host, checks its vm state and claims it with `task` (from idle). */
  async #begin(
    uuid: string,
    opName: string,
    task: TaskState,
    from: readonly VmState[],
    options: OperationOptions | undefined,
  ): Promise<InstanceRecord> {
    throwIfAborted(opName, options?.signal);
    await this.init(options);
    const record = await this.get(uuid, options);
    if (!from.includes(record.vmState)) throw new InvalidStateError(uuid, opName, record.vmState);
    return this.store.save(uuid, { taskState: task }, { ...op(options), expectedTaskState: null });
  }

  async #run<T>(
    uuid: string,
    options: OperationOptions | undefined,
    step: {
      readonly op: string;
      readonly task: TaskState;
      readonly from: readonly VmState[];
      readonly to?: (power: PowerState) => VmState;
      readonly expectPower?: PowerState;
      readonly secret?: Secret;
      readonly call: (instance: Instance) => Promise<T>;
    },
  ): Promise<{ record: InstanceRecord; result: T }> {
    const record = await this.#begin(uuid, step.op, step.task, step.from, options);
    const instance = toInstance(record);
    const log = this.logger.child({ instance: uuid });
    let result: T;
    try {
      result = await step.call(instance);
    } catch (err) {
      const safe =
        step.secret && containsSecret(err, step.secret)
          ? new VirtkitError(`Failed to ${step.op} instance ${uuid}`)
          : err;
      log.warn(`${step.op} failed`, { error: safe });
      const powerState = await this.#readPowerState(instance, CLEANUP, record.powerState);
      await this.#saveQuietly(uuid, { taskState: null, powerState, lastError: faultOf(safe) }, [step.task]);
      throw safe;
    }
    const powerState = await this.#readPowerState(instance, options, step.expectPower ?? record.powerState);
    const saved = await this.store.save(
      uuid,
      { vmState: step.to ? step.to(powerState) : record.vmState, taskState: null, powerState, lastError: null },
      { ...op(options), expectedTaskState: step.task },
    );
    log.info(`${step.op} done`, { vmState: saved.vmState });
    return { record: saved, result };
  }

  #simple(
    uuid: string,
    options: OperationOptions | undefined,
    opName: string,
    task: TaskState,
    from: readonly VmState[],
    to: VmState,
    expectPower: PowerState,
    call: (instance: Instance) => Promise<void>,
  ): Promise<InstanceRecord> {
    return this.#run(uuid, options, { op: opName, task, from, to: () => to, expectPower, call }).then((r) => r.record);
  }

  /**
   * The driver's power state for `instance`; an instance the driver does not know is NOSTATE
   * (Nova's `_get_power_state`). With `fallback`, other failures give the fallback instead of
   * throwing.
   */
  async #readPowerState(
    instance: Instance,
    options: OperationOptions | undefined,
    fallback?: PowerState,
  ): Promise<PowerState> {
    try {
      return (await this.driver.getInfo(instance, op(options))).state;
    } catch (err) {
      if (isInstanceNotFound(err)) return PowerState.NOSTATE;
      if (fallback === undefined) throw err;
      this.logger.debug("could not read the power state", { instance: instance.uuid, error: err });
      return fallback;
    }
  }

  /** A compare-and-set that gives up quietly when another task owns the instance or it is gone. */
  async #saveQuietly(uuid: string, patch: InstancePatch, expected: readonly (TaskState | null)[]): Promise<void> {
    try {
      await this.store.save(uuid, patch, { ...CLEANUP, expectedTaskState: expected });
    } catch (err) {
      this.logger.warn("could not record the outcome", { instance: uuid, error: err });
    }
  }

  /** `err` as a log field, with the password's text replaced (a driver may have echoed it). */
  #scrub(err: unknown, secret: Secret): unknown {
    if (!containsSecret(err, secret)) return err;
    const name = err instanceof Error ? err.name : typeof err;
    const code = err instanceof VirtkitError ? err.code : undefined;
    return { name, code, message: "(message withheld: it contained the password)" };
  }

  #freshUnsupported(err: VirtkitError, uuid: string): VirtkitError {
    if (err instanceof GuestAgentNotEnabledError) return new GuestAgentNotEnabledError(uuid);
    if (err instanceof GuestAgentUnresponsiveError) return new GuestAgentUnresponsiveError(uuid);
    if (err instanceof AdminPasswordNotSupportedError) return new AdminPasswordNotSupportedError();
    return new UnsupportedOperationError("setAdminPassword", this.driver.name);
  }
}
