/**
 * The kit's own assertions: small, dependency-free (the direct runner works without vitest), and
 * aware of the contract (power state agreement, typed refusals).
 */
import {
  InstanceNotFoundError,
  PowerState,
  UnsupportedOperationError,
  VirtkitError,
  powerStateName,
  type ComputeDriver,
  type Instance,
  type VirtkitErrorCode,
} from "@virtkit/core";
import type { ScenarioContext } from "./scenario.js";

/** A check failed. The message never contains a secret. */
export class ConformanceFailure extends Error {
  override name = "ConformanceFailure";
}

/** The capability is not declared, yet the operation worked instead of being refused. */
export class WorksButUndeclaredError extends ConformanceFailure {
  override name = "WorksButUndeclaredError";
}

/** The environment cannot run (the rest of) this scenario: it is reported skipped with the reason. */
export class EnvironmentLimitError extends Error {
  override name = "EnvironmentLimitError";
}

/** Stops the scenario as skipped: `environment limit: <reason>`. */
export function skipForEnvironment(reason: string): never {
  throw new EnvironmentLimitError(reason);
}

/** Fails the scenario with `message`. */
export function fail(message: string): never {
  throw new ConformanceFailure(message);
}

/** Fails unless `condition` holds. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) fail(message);
}

/** Fails unless `actual === expected`. */
export function checkEqual<T>(actual: T, expected: T, what: string): void {
  if (!Object.is(actual, expected)) fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** A short description of an error for reasons: `CODE: message` (or name: message). */
export function describeError(err: unknown): string {
  if (err instanceof VirtkitError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** The power state name for messages. */
export function stateName(state: PowerState): string {
  return `${powerStateName(state)}(${state})`;
}

/**
 * The error itself when it is a virtkit error with one of `codes`. Only the error thrown counts:
 * a driver that wraps the right refusal as the cause of another error has not refused typed.
 */
export function thrownWithCode(err: unknown, codes: readonly VirtkitErrorCode[]): VirtkitError | undefined {
  return err instanceof VirtkitError && (codes as readonly string[]).includes(err.code) ? err : undefined;
}

/**
 * Awaits `promise` and requires it to reject with one of `codes` (the error thrown, not a cause);
 * returns the error. Every error is recorded (for the secret check).
 */
export async function expectRejects(
  ctx: ScenarioContext,
  promise: Promise<unknown>,
  codes: readonly VirtkitErrorCode[],
  what: string,
): Promise<VirtkitError> {
  let resolved = false;
  try {
    await promise;
    resolved = true;
  } catch (err) {
    ctx.recordError(err);
    const found = thrownWithCode(err, codes);
    if (found) return found;
    fail(`${what}: expected ${codes.join(" or ")}, got ${describeError(err)}`);
  }
  if (resolved) fail(`${what}: expected ${codes.join(" or ")}, but it succeeded`);
  throw new Error("unreachable");
}

/**
 * For an undeclared capability: the call must reject with `UnsupportedOperationError`. Success
 * means "works but undeclared"; another error means the refusal is not typed.
 */
export async function expectUnsupported(
  ctx: ScenarioContext,
  what: string,
  call: () => Promise<unknown>,
  capability?: string | readonly string[],
): Promise<UnsupportedOperationError> {
  ctx.step(what);
  try {
    await call();
  } catch (err) {
    ctx.recordError(err);
    // The error thrown, not a cause: core's isUnsupported() would accept a wrapped one.
    if (err instanceof UnsupportedOperationError) {
      // The contract: the refusal names the capability (a service shows it, the matrix keys by it).
      const wanted = capability === undefined ? [] : typeof capability === "string" ? [capability] : capability;
      if (wanted.length > 0 && !wanted.includes(err.capability)) {
        fail(`${what}: the refusal names capability ${JSON.stringify(err.capability)}, expected ${wanted.map((c) => JSON.stringify(c)).join(" or ")}`);
      }
      return err;
    }
    fail(
      `${what}: the capability is not declared, so UnsupportedOperationError was expected, got ${describeError(err)}`,
    );
  }
  throw new WorksButUndeclaredError(`${what}: works although the capability is not declared`);
}

/** Same as {@link expectUnsupported} for a synchronous call (e.g. `planMigration`). */
export async function expectUnsupportedSync(ctx: ScenarioContext, what: string, call: () => unknown): Promise<void> {
  await expectUnsupported(ctx, what, async () => call());
}

/**
 * The driver's three views agree that `instance` exists with `state`: `getInfo`, `instanceExists`,
 * `listInstances` (names) and `listInstanceUuids`.
 */
export async function expectState(
  ctx: ScenarioContext,
  instance: Instance,
  state: PowerState,
  after: string,
  driver: ComputeDriver = ctx.driver,
): Promise<void> {
  const info = await driver.getInfo(instance, ctx.opts());
  if (info.state !== state) {
    fail(`after ${after}: getInfo says ${stateName(info.state)}, expected ${stateName(state)}`);
  }
  const exists = await driver.instanceExists(instance, ctx.opts());
  check(exists, `after ${after}: instanceExists is false but getInfo reports the instance`);
  const uuids = await driver.listInstanceUuids(ctx.opts());
  const uuidTimes = uuids.filter((u) => u === instance.uuid).length;
  check(uuidTimes > 0, `after ${after}: listInstanceUuids does not contain the instance`);
  check(uuidTimes === 1, `after ${after}: listInstanceUuids lists the instance ${uuidTimes} times (one instance, one entry)`);
  const names = await driver.listInstances(ctx.opts());
  const nameTimes = names.filter((n) => n === instance.name).length;
  check(nameTimes > 0, `after ${after}: listInstances does not contain the instance's name`);
  check(nameTimes === 1, `after ${after}: listInstances lists the instance's name ${nameTimes} times (one instance, one entry)`);
  // Names under this scenario's prefix are the kit's own: any other is something the driver made
  // (a rescue domain, a leftover) and listed as if it were an instance.
  const made = ctx.instanceNames?.();
  if (made) {
    const strangers = names.filter((n) => n.startsWith(`${ctx.prefix}-`) && !made.has(n));
    check(
      strangers.length === 0,
      `after ${after}: listInstances names ${strangers.map((n) => JSON.stringify(n)).join(", ")}, which is not an instance (the scenario made only ${summarizeNames([...made])}): only instances are listed, not what the driver made for them`,
    );
  }
}

/** Names for a message: the first five, then how many more. */
function summarizeNames(names: readonly string[]): string {
  const shown = names.slice(0, 5).map((n) => JSON.stringify(n)).join(", ");
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

/** The instance is gone in every view: getInfo rejects with InstanceNotFoundError, exists and lists agree. */
export async function expectGone(
  ctx: ScenarioContext,
  instance: Instance,
  after: string,
  driver: ComputeDriver = ctx.driver,
): Promise<void> {
  const exists = await driver.instanceExists(instance, ctx.opts());
  check(!exists, `after ${after}: instanceExists is still true`);
  const uuids = await driver.listInstanceUuids(ctx.opts());
  check(!uuids.includes(instance.uuid), `after ${after}: listInstanceUuids still contains the instance`);
  const names = await driver.listInstances(ctx.opts());
  check(!names.includes(instance.name), `after ${after}: listInstances still contains the instance's name`);
  await expectRejects(
    ctx,
    driver.getInfo(instance, ctx.opts()),
    [InstanceNotFoundError.CODE],
    `getInfo after ${after}`,
  );
}

/**
 * An illegal transition: `call` must reject with `InvalidStateError` and leave the power state as
 * it was (`state`).
 */
export async function expectIllegal(
  ctx: ScenarioContext,
  instance: Instance,
  state: PowerState,
  what: string,
  call: () => Promise<unknown>,
): Promise<void> {
  ctx.step(what);
  await expectRejects(ctx, call(), ["VIRTKIT_INVALID_STATE"], what);
  await expectState(ctx, instance, state, `the refused ${what}`);
}

/** Polls `probe` until it returns true or `timeoutMs` passes. */
export async function waitFor(
  probe: () => boolean | Promise<boolean>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() >= end || signal?.aborted) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** `PowerState` re-exported for check modules. */
export { PowerState };
