/**
 * Fault injection for one fake host: fail or delay the next calls of an operation, and provoke
 * guest-side faults (agent absent or hanging, ACPI ignored, a crash). Nothing is armed by default,
 * and the driver's hot path checks a single counter before looking further.
 */
import type { FakeAgentMode } from "./fake-guest.js";

/** Every driver operation a fault can target. */
export const FAKE_OPERATIONS = [
  "initHost",
  "cleanupHost",
  "getHostInfo",
  "listInstances",
  "listInstanceUuids",
  "instanceExists",
  "getInfo",
  "getConsoleOutput",
  "spawn",
  "destroy",
  "reboot",
  "powerOff",
  "powerOn",
  "pause",
  "unpause",
  "suspend",
  "resume",
  "rescue",
  "unrescue",
  "snapshot",
  "createInstanceSnapshot",
  "listInstanceSnapshots",
  "revertToInstanceSnapshot",
  "deleteInstanceSnapshot",
  "setAdminPassword",
  "checkCanLiveMigrateDestination",
  "checkCanLiveMigrateSource",
  "preLiveMigration",
  "liveMigration",
  "postLiveMigrationAtDestination",
  "rollbackLiveMigrationAtDestination",
  "liveMigrationAbort",
  "liveMigrationForceComplete",
] as const;

/** One driver operation name. */
export type FakeOperation = (typeof FAKE_OPERATIONS)[number];

/** An operation name, or `*` for every operation. */
export type FaultTarget = FakeOperation | "*";

/** The error a failing call rejects with: an error, or a function making a fresh one per call. */
export type FaultError = Error | ((operation: FakeOperation) => Error);

/** What the driver takes from the injector for one call. */
export interface ArmedFault {
  /** Reject with this error (after any delay). */
  readonly error?: Error;
  /** Wait this long (real time, under the call's deadline) before doing anything. */
  readonly delayMs?: number;
}

interface Rule {
  readonly target: FaultTarget;
  remaining: number;
  readonly error?: FaultError;
  readonly delayMs?: number;
}

/** Guest-side fault hooks the host provides. */
export interface GuestFaultHooks {
  setAgent(uuid: string, mode: FakeAgentMode): void;
  setIgnoreAcpi(uuid: string, ignore: boolean): void;
  crash(uuid: string): void;
}

/** Fault injection for one fake host (`driver.faults`, `cloud.host(name).faults`). */
export class FaultInjector {
  readonly #rules: Rule[] = [];
  readonly #hooks: GuestFaultHooks;

  /** Built by {@link FakeHost}; reach it as `driver.faults` or `cloud.host(name).faults`. */
  constructor(hooks: GuestFaultHooks) {
    this.#hooks = hooks;
  }

  /** Makes the next `times` calls of `operation` (or of any, with `*`) reject with `error`, changing nothing. */
  failNext(operation: FaultTarget, error: FaultError, times = 1): this {
    this.#rules.push({ target: operation, remaining: checkTimes(times), error });
    return this;
  }

  /**
   * Makes the next `times` calls of `operation` wait `ms` (real time) before they act. The wait
   * runs under the call's deadline and signal, so it rejects with `OperationTimeoutError` or
   * `OperationAbortedError` and changes nothing when either fires first.
   */
  delayNext(operation: FaultTarget, ms: number, times = 1): this {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError("delay must be a finite ms >= 0");
    this.#rules.push({ target: operation, remaining: checkTimes(times), delayMs: ms });
    return this;
  }

  /** Makes the guest agent of instance `uuid` answer (`ok`), be missing (`absent`) or hang (`unresponsive`). */
  guestAgent(uuid: string, mode: FakeAgentMode): this {
    this.#hooks.setAgent(uuid, mode);
    return this;
  }

  /** Makes the guest of instance `uuid` ignore (or honour again) ACPI shutdown and reboot requests. */
  ignoreAcpi(uuid: string, ignore = true): this {
    this.#hooks.setIgnoreAcpi(uuid, ignore);
    return this;
  }

  /** Crashes a running or paused instance now: it goes to CRASHED and a CRASHED event is emitted. */
  crash(uuid: string): void {
    this.#hooks.crash(uuid);
  }

  /** Disarms every pending call fault. */
  clear(): void {
    this.#rules.length = 0;
  }

  /** Call faults still armed. */
  get pending(): number {
    return this.#rules.length;
  }

  /** @internal Consumes the faults armed for one call of `operation`; undefined when none. */
  take(operation: FakeOperation): ArmedFault | undefined {
    if (this.#rules.length === 0) return undefined;
    let error: Error | undefined;
    let delayMs: number | undefined;
    for (let i = 0; i < this.#rules.length; i++) {
      const rule = this.#rules[i]!;
      if (rule.target !== operation && rule.target !== "*") continue;
      if (rule.error !== undefined && error === undefined) {
        error = typeof rule.error === "function" ? rule.error(operation) : rule.error;
      } else if (rule.delayMs !== undefined && delayMs === undefined) {
        delayMs = rule.delayMs;
      } else continue;
      if (--rule.remaining === 0) this.#rules.splice(i--, 1);
    }
    return error === undefined && delayMs === undefined ? undefined : { error, delayMs };
  }
}

function checkTimes(times: number): number {
  if (!Number.isInteger(times) || times < 1) throw new RangeError("times must be an integer >= 1");
  return times;
}
