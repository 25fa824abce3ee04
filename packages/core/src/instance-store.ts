/**
 * Where the compute service keeps what it believes about each instance (Nova's instances table):
 * the instance plus vm, task and power state. `save` is a compare-and-set on the task state, the
 * guard Nova's `instance.save(expected_task_state=...)` gives against concurrent operations.
 */
import { InstanceExistsError, InstanceNotFoundError, UnexpectedTaskStateError } from "./errors.js";
import type { Instance } from "./model.js";
import type { OperationOptions } from "./operation.js";
import { throwIfAborted } from "./operation.js";
import type { PowerState, TaskState, VmState } from "./states.js";

/** The last failure recorded on an instance: a code and a secret-free message. */
export interface InstanceFault {
  readonly code: string;
  readonly message: string;
  /** ISO-8601 time of the failure. */
  readonly at: string;
}

/** An instance as the compute service keeps it. Holds no secrets. */
export interface InstanceRecord extends Instance {
  readonly vmState: VmState;
  /** The operation in flight, or `null` when idle. */
  readonly taskState: TaskState | null;
  /** The power state last read from the driver. */
  readonly powerState: PowerState;
  /** The host whose driver runs the instance. */
  readonly host: string;
  /** ISO-8601. */
  readonly createdAt: string;
  /** ISO-8601, changed by every save. */
  readonly updatedAt: string;
  readonly lastError?: InstanceFault;
}

/** A record to create; the store stamps the times. */
export type NewInstanceRecord = Omit<InstanceRecord, "createdAt" | "updatedAt">;

/** The state fields `save` may change; `lastError: null` clears the fault. */
export interface InstancePatch {
  readonly vmState?: VmState;
  readonly taskState?: TaskState | null;
  readonly powerState?: PowerState;
  readonly host?: string;
  readonly lastError?: InstanceFault | null;
}

/** The compare-and-set condition. */
export interface SaveOptions extends OperationOptions {
  /**
   * The task state(s) the record must have for the write to happen; `null` means idle.
   * Omitted: no check.
   */
  readonly expectedTaskState?: TaskState | null | readonly (TaskState | null)[];
}

/** The compute service's instance storage. Records come back frozen; change them only with `save`. */
export interface InstanceStore {
  /** Rejects with `InstanceNotFoundError`. */
  get(uuid: string, options?: OperationOptions): Promise<InstanceRecord>;
  /** Every record, oldest first. */
  list(options?: OperationOptions): Promise<readonly InstanceRecord[]>;
  /** Rejects with `InstanceExistsError` for a uuid already stored. */
  create(record: NewInstanceRecord, options?: OperationOptions): Promise<InstanceRecord>;
  /**
   * Applies `patch` if the stored task state is one of `expectedTaskState`; otherwise rejects
   * with `UnexpectedTaskStateError` and writes nothing.
   */
  save(uuid: string, patch: InstancePatch, options?: SaveOptions): Promise<InstanceRecord>;
  /** Removes the record, with the same compare-and-set as `save`. Rejects with `InstanceNotFoundError`. */
  delete(uuid: string, options?: SaveOptions): Promise<void>;
}

/** Normalises the expectation to a list, or undefined for "no check". */
export function expectedList(
  expected: TaskState | null | readonly (TaskState | null)[] | undefined,
): readonly (TaskState | null)[] | undefined {
  if (expected === undefined) return undefined;
  return Array.isArray(expected) ? (expected as readonly (TaskState | null)[]) : [expected as TaskState | null];
}

function freeze(record: InstanceRecord): InstanceRecord {
  // structuredClone: the caller's objects and the store's never share nested flavor/meta objects.
  const copy = structuredClone(record) as InstanceRecord;
  deepFreeze(copy);
  return copy;
}

function deepFreeze(value: unknown): void {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}

/** An {@link InstanceStore} in memory. Each call's check-and-write is synchronous, hence atomic. */
export class InMemoryInstanceStore implements InstanceStore {
  readonly #records = new Map<string, InstanceRecord>();

  async get(uuid: string, options?: OperationOptions): Promise<InstanceRecord> {
    throwIfAborted("instance get", options?.signal);
    return this.#get(uuid);
  }

  async list(options?: OperationOptions): Promise<readonly InstanceRecord[]> {
    throwIfAborted("instance list", options?.signal);
    return [...this.#records.values()];
  }

  async create(record: NewInstanceRecord, options?: OperationOptions): Promise<InstanceRecord> {
    throwIfAborted("instance create", options?.signal);
    if (this.#records.has(record.uuid)) throw new InstanceExistsError(record.uuid);
    const now = new Date().toISOString();
    const stored = freeze({ ...record, createdAt: now, updatedAt: now } as InstanceRecord);
    this.#records.set(stored.uuid, stored);
    return stored;
  }

  async save(uuid: string, patch: InstancePatch, options?: SaveOptions): Promise<InstanceRecord> {
    throwIfAborted("instance save", options?.signal);
    const current = this.#get(uuid);
    this.#check(current, options);
    const next: Record<string, unknown> = { ...current, updatedAt: new Date().toISOString() };
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      if (k === "lastError" && v === null) delete next.lastError;
      else next[k] = v;
    }
    const stored = freeze(next as unknown as InstanceRecord);
    this.#records.set(uuid, stored);
    return stored;
  }

  async delete(uuid: string, options?: SaveOptions): Promise<void> {
    throwIfAborted("instance delete", options?.signal);
    this.#check(this.#get(uuid), options);
    this.#records.delete(uuid);
  }

  #get(uuid: string): InstanceRecord {
    const r = this.#records.get(uuid);
    if (!r) throw new InstanceNotFoundError(uuid);
    return r;
  }

  #check(current: InstanceRecord, options: SaveOptions | undefined): void {
    const expected = expectedList(options?.expectedTaskState);
    if (expected && !expected.includes(current.taskState)) {
      throw new UnexpectedTaskStateError(current.uuid, expected, current.taskState);
    }
  }
}
