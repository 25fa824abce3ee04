/**
 * Every error virtkit raises. One module holds the whole hierarchy (undici's shape): a
 * {@link VirtkitError} base with a stable literal `code`, typed context fields and `cause`.
 *
 * Each class carries a `Symbol.for` brand and a `Symbol.hasInstance` that checks it, so
 * `instanceof` keeps working when a driver package resolves its own copy of `@virtkit/core`.
 *
 * Messages never contain secrets: callers pass instance ids and reasons, never passwords.
 */

const BRAND = Symbol.for("virtkit.error");

/** Options every virtkit error accepts. */
export interface VirtkitErrorOptions {
  /** The underlying failure, kept for diagnosis (never shown with secrets: drivers pass redacted causes). */
  cause?: unknown;
}

/** The base of all virtkit errors. Check `code` to narrow the type. */
export class VirtkitError extends Error {
  /** A stable machine-readable code, e.g. `VIRTKIT_INSTANCE_NOT_FOUND`. */
  readonly code: string = "VIRTKIT_ERROR";
  override name = "VirtkitError";

  constructor(message: string, options: VirtkitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Object.defineProperty(this, BRAND, { value: true, enumerable: false });
  }

  /** Marks the base class itself, so `x instanceof VirtkitError` matches any branded virtkit error. */
  static readonly BASE = true;

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Object.hasOwn(this, "CODE")) {
      return isBranded(value, Symbol.for(`virtkit.error.${(this as unknown as { CODE: string }).CODE}`));
    }
    if (Object.hasOwn(this, "BASE")) return isBranded(value, BRAND);
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }

  /** A plain JSON view (code, name, message and typed fields) for reports and `--json` output. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { name: this.name, code: this.code, message: this.message };
    for (const [k, v] of Object.entries(this)) {
      if (k !== "name" && k !== "code" && k !== "cause" && (typeof v !== "object" || v === null || Array.isArray(v))) {
        out[k] = v;
      }
    }
    return out;
  }
}

function isBranded(value: unknown, brand: symbol): boolean {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

/** Brands an instance with its class code, which `Symbol.hasInstance` checks across package copies. */
function brand(target: VirtkitError, cls: { CODE: string }): void {
  Object.defineProperty(target, Symbol.for(`virtkit.error.${cls.CODE}`), { value: true, enumerable: false });
}

/** No instance with this uuid or name exists on the host. */
export class InstanceNotFoundError extends VirtkitError {
  static readonly CODE = "VIRTKIT_INSTANCE_NOT_FOUND";
  override readonly code = "VIRTKIT_INSTANCE_NOT_FOUND" as const;
  override name = "InstanceNotFoundError";
  constructor(
    readonly instanceId: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Instance ${instanceId} could not be found.`, options);
    brand(this, InstanceNotFoundError);
  }
}

/** The operation needs a running instance. */
export class InstanceNotRunningError extends VirtkitError {
  static readonly CODE = "VIRTKIT_INSTANCE_NOT_RUNNING";
  override readonly code = "VIRTKIT_INSTANCE_NOT_RUNNING" as const;
  override name = "InstanceNotRunningError";
  constructor(
    readonly instanceId: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Instance ${instanceId} is not running.`, options);
    brand(this, InstanceNotRunningError);
  }
}

/** The operation is illegal from the instance's current power state (pause a stopped instance, ...). */
export class InvalidStateError extends VirtkitError {
  static readonly CODE = "VIRTKIT_INVALID_STATE";
  override readonly code = "VIRTKIT_INVALID_STATE" as const;
  override name = "InvalidStateError";
  constructor(
    readonly instanceId: string,
    readonly operation: string,
    /** The power state name the instance was in (e.g. `SHUTDOWN`), or the vm / task state that forbids the operation. */
    readonly state: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Cannot ${operation} instance ${instanceId} while it is ${state}.`, options);
    brand(this, InvalidStateError);
  }
}

/** Power off (or destroy) did not complete in time or failed in the hypervisor. */
export class PowerOffFailureError extends VirtkitError {
  static readonly CODE = "VIRTKIT_POWER_OFF_FAILURE";
  override readonly code = "VIRTKIT_POWER_OFF_FAILURE" as const;
  override name = "PowerOffFailureError";
  constructor(
    readonly instanceId: string,
    readonly reason: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Failed to power off instance ${instanceId}: ${reason}`, options);
    brand(this, PowerOffFailureError);
  }
}

/** Setting the admin password failed. The reason never contains the password. */
export class PasswordSetFailedError extends VirtkitError {
  static readonly CODE = "VIRTKIT_PASSWORD_SET_FAILED";
  override readonly code = "VIRTKIT_PASSWORD_SET_FAILED" as const;
  override name = "PasswordSetFailedError";
  constructor(
    readonly instanceId: string,
    readonly reason: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Failed to set admin password on ${instanceId} because ${reason}`, options);
    brand(this, PasswordSetFailedError);
  }
}

/** This driver, hypervisor type or guest cannot set an admin password. */
export class AdminPasswordNotSupportedError extends VirtkitError {
  static readonly CODE = "VIRTKIT_ADMIN_PASSWORD_NOT_SUPPORTED";
  override readonly code = "VIRTKIT_ADMIN_PASSWORD_NOT_SUPPORTED" as const;
  override name = "AdminPasswordNotSupportedError";
  constructor(
    readonly reason = "Set admin password is not supported",
    options?: VirtkitErrorOptions,
  ) {
    super(reason, options);
    brand(this, AdminPasswordNotSupportedError);
  }
}

/** The image does not enable a guest agent (`hw_qemu_guest_agent`), so the agent cannot be used. */
export class GuestAgentNotEnabledError extends VirtkitError {
  static readonly CODE = "VIRTKIT_GUEST_AGENT_NOT_ENABLED";
  override readonly code = "VIRTKIT_GUEST_AGENT_NOT_ENABLED" as const;
  override name = "GuestAgentNotEnabledError";
  constructor(
    readonly instanceId: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`QEMU guest agent is not enabled for instance ${instanceId}`, options);
    brand(this, GuestAgentNotEnabledError);
  }
}

/** The guest agent did not answer in time. */
export class GuestAgentUnresponsiveError extends VirtkitError {
  static readonly CODE = "VIRTKIT_GUEST_AGENT_UNRESPONSIVE";
  override readonly code = "VIRTKIT_GUEST_AGENT_UNRESPONSIVE" as const;
  override name = "GuestAgentUnresponsiveError";
  constructor(
    readonly instanceId: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`The guest agent of instance ${instanceId} is not responding`, options);
    brand(this, GuestAgentUnresponsiveError);
  }
}

/** The driver does not support this operation; `capability` names the capability it lacks. */
export class UnsupportedOperationError extends VirtkitError {
  static readonly CODE = "VIRTKIT_UNSUPPORTED_OPERATION";
  override readonly code = "VIRTKIT_UNSUPPORTED_OPERATION" as const;
  override name = "UnsupportedOperationError";
  constructor(
    readonly capability: string,
    readonly driver: string,
    options?: VirtkitErrorOptions & { detail?: string },
  ) {
    super(
      `Driver ${driver} does not support ${capability}${options?.detail ? `: ${options.detail}` : ""}`,
      options,
    );
    brand(this, UnsupportedOperationError);
  }
}

/** Input was refused: a bad name, uuid, flavor, image meta, option, URI or manifest. Nothing was changed. */
export class InvalidInputError extends VirtkitError {
  static readonly CODE = "VIRTKIT_INVALID_INPUT";
  override readonly code = "VIRTKIT_INVALID_INPUT" as const;
  override name = "InvalidInputError";
  constructor(
    /** The field, option or argument at fault (e.g. `instance.name`). */
    readonly field: string,
    readonly reason: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Invalid ${field}: ${reason}`, options);
    brand(this, InvalidInputError);
  }
}

/** A compare-and-set of the task state found another task state (a concurrent operation won). */
export class UnexpectedTaskStateError extends VirtkitError {
  static readonly CODE = "VIRTKIT_UNEXPECTED_TASK_STATE";
  override readonly code = "VIRTKIT_UNEXPECTED_TASK_STATE" as const;
  override name = "UnexpectedTaskStateError";
  constructor(
    readonly instanceId: string,
    readonly expected: readonly (string | null)[],
    readonly actual: string | null,
    options?: VirtkitErrorOptions,
  ) {
    super(
      `Unexpected task state for ${instanceId}: expecting ${JSON.stringify(expected)} but the actual state is ${String(actual)}`,
      options,
    );
    brand(this, UnexpectedTaskStateError);
  }
}

/** A live-migration pre-check refused the move (destination cannot take it, bad policy, ...). */
export class MigrationPreCheckError extends VirtkitError {
  static readonly CODE = "VIRTKIT_MIGRATION_PRECHECK_FAILED";
  override readonly code = "VIRTKIT_MIGRATION_PRECHECK_FAILED" as const;
  override name = "MigrationPreCheckError";
  constructor(
    readonly reason: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Migration pre-check error: ${reason}`, options);
    brand(this, MigrationPreCheckError);
  }
}

/** The live migration itself failed; the instance should still run on the source. */
export class LiveMigrationFailedError extends VirtkitError {
  static readonly CODE = "VIRTKIT_LIVE_MIGRATION_FAILED";
  override readonly code = "VIRTKIT_LIVE_MIGRATION_FAILED" as const;
  override name = "LiveMigrationFailedError";
  constructor(
    readonly instanceId: string,
    readonly reason: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Live migration of instance ${instanceId} failed: ${reason}`, options);
    brand(this, LiveMigrationFailedError);
  }
}

/** The hypervisor (daemon, host, API endpoint) cannot be reached or answered with a connection failure. */
export class HypervisorUnavailableError extends VirtkitError {
  static readonly CODE = "VIRTKIT_HYPERVISOR_UNAVAILABLE";
  override readonly code = "VIRTKIT_HYPERVISOR_UNAVAILABLE" as const;
  override name = "HypervisorUnavailableError";
  constructor(
    readonly host: string,
    readonly reason: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Connection to the hypervisor is broken on host ${host}: ${reason}`, options);
    brand(this, HypervisorUnavailableError);
  }
}

/** A driver plugin could not be found, loaded, validated or is built for another contract version. */
export class DriverLoadError extends VirtkitError {
  static readonly CODE = "VIRTKIT_DRIVER_LOAD_FAILED";
  override readonly code = "VIRTKIT_DRIVER_LOAD_FAILED" as const;
  override name = "DriverLoadError";
  /** True when the spec names nothing at all (no package, no file): a typo, not a broken driver. */
  readonly notFound: boolean;
  constructor(
    /** What the caller asked for: a short name, a package name or a path. */
    readonly spec: string,
    readonly reason: string,
    options?: VirtkitErrorOptions & {
      /** True when the spec names nothing at all (no package, no file): a typo, not a broken driver. */
      readonly notFound?: boolean;
    },
  ) {
    super(`Cannot load driver "${spec}": ${reason}`, options);
    this.notFound = options?.notFound === true;
    brand(this, DriverLoadError);
  }
}

/** An instance snapshot (not an image) with this id does not exist. */
export class SnapshotNotFoundError extends VirtkitError {
  static readonly CODE = "VIRTKIT_SNAPSHOT_NOT_FOUND";
  override readonly code = "VIRTKIT_SNAPSHOT_NOT_FOUND" as const;
  override name = "SnapshotNotFoundError";
  constructor(
    readonly instanceId: string,
    readonly snapshotId: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Snapshot ${snapshotId} of instance ${instanceId} could not be found.`, options);
    brand(this, SnapshotNotFoundError);
  }
}

/** An image in the image service could not be found. */
export class ImageNotFoundError extends VirtkitError {
  static readonly CODE = "VIRTKIT_IMAGE_NOT_FOUND";
  override readonly code = "VIRTKIT_IMAGE_NOT_FOUND" as const;
  override name = "ImageNotFoundError";
  constructor(
    readonly imageId: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Image ${imageId} could not be found.`, options);
    brand(this, ImageNotFoundError);
  }
}

/** An instance with this uuid or name already exists. */
export class InstanceExistsError extends VirtkitError {
  static readonly CODE = "VIRTKIT_INSTANCE_EXISTS";
  override readonly code = "VIRTKIT_INSTANCE_EXISTS" as const;
  override name = "InstanceExistsError";
  constructor(
    readonly instanceId: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Instance ${instanceId} already exists.`, options);
    brand(this, InstanceExistsError);
  }
}

/** The operation did not finish within its deadline. */
export class OperationTimeoutError extends VirtkitError {
  static readonly CODE = "VIRTKIT_OPERATION_TIMEOUT";
  override readonly code = "VIRTKIT_OPERATION_TIMEOUT" as const;
  override name = "OperationTimeoutError";
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
    options?: VirtkitErrorOptions,
  ) {
    super(`${operation} did not finish within ${timeoutMs} ms`, options);
    brand(this, OperationTimeoutError);
  }
}

/** The caller's AbortSignal fired before the operation finished. */
export class OperationAbortedError extends VirtkitError {
  static readonly CODE = "VIRTKIT_OPERATION_ABORTED";
  override readonly code = "VIRTKIT_OPERATION_ABORTED" as const;
  override name = "OperationAbortedError";
  constructor(
    readonly operation: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`${operation} was aborted`, options);
    brand(this, OperationAbortedError);
  }
}

/** The storage pool that holds instance disks is missing, inactive or cannot be started. */
export class StorageUnavailableError extends VirtkitError {
  static readonly CODE = "VIRTKIT_STORAGE_UNAVAILABLE";
  override readonly code = "VIRTKIT_STORAGE_UNAVAILABLE" as const;
  override name = "StorageUnavailableError";
  constructor(
    readonly pool: string,
    readonly reason: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Storage pool ${pool} is not usable: ${reason}`, options);
    brand(this, StorageUnavailableError);
  }
}

/** The storage pool has not enough free space for what was asked. */
export class InsufficientStorageError extends VirtkitError {
  static readonly CODE = "VIRTKIT_INSUFFICIENT_STORAGE";
  override readonly code = "VIRTKIT_INSUFFICIENT_STORAGE" as const;
  override name = "InsufficientStorageError";
  constructor(
    readonly pool: string,
    readonly reason: string,
    options?: VirtkitErrorOptions,
  ) {
    super(`Not enough space in storage pool ${pool}: ${reason}`, options);
    brand(this, InsufficientStorageError);
  }
}

/** Every concrete error class, for table-driven tests and for code → class look-ups. */
export const ERROR_CLASSES = [
  InstanceNotFoundError,
  InstanceNotRunningError,
  InvalidStateError,
  PowerOffFailureError,
  PasswordSetFailedError,
  AdminPasswordNotSupportedError,
  GuestAgentNotEnabledError,
  GuestAgentUnresponsiveError,
  UnsupportedOperationError,
  InvalidInputError,
  UnexpectedTaskStateError,
  MigrationPreCheckError,
  LiveMigrationFailedError,
  HypervisorUnavailableError,
  DriverLoadError,
  SnapshotNotFoundError,
  ImageNotFoundError,
  InstanceExistsError,
  OperationTimeoutError,
  OperationAbortedError,
  StorageUnavailableError,
  InsufficientStorageError,
] as const;

/** The union of every stable error code. */
export type VirtkitErrorCode = InstanceType<(typeof ERROR_CLASSES)[number]>["code"];

/** Walks `err` and its `cause` chain and returns the first virtkit error with `code`, if any. */
export function findError<C extends VirtkitErrorCode>(
  err: unknown,
  code: C,
): Extract<InstanceType<(typeof ERROR_CLASSES)[number]>, { code: C }> | undefined {
  const seen = new Set<unknown>();
  let cur: unknown = err;
  while (typeof cur === "object" && cur !== null && !seen.has(cur)) {
    seen.add(cur);
    if (cur instanceof VirtkitError && cur.code === code) {
      return cur as Extract<InstanceType<(typeof ERROR_CLASSES)[number]>, { code: C }>;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True when `err` (or a cause) says the instance does not exist. */
export const isInstanceNotFound = (err: unknown): boolean => findError(err, "VIRTKIT_INSTANCE_NOT_FOUND") !== undefined;
/** True when `err` (or a cause) is an unsupported-operation error. */
export const isUnsupported = (err: unknown): boolean => findError(err, "VIRTKIT_UNSUPPORTED_OPERATION") !== undefined;
/** True when `err` (or a cause) is an invalid-state error. */
export const isInvalidState = (err: unknown): boolean => findError(err, "VIRTKIT_INVALID_STATE") !== undefined;
/** True when `err` (or a cause) is an invalid-input error. */
export const isInvalidInput = (err: unknown): boolean => findError(err, "VIRTKIT_INVALID_INPUT") !== undefined;
