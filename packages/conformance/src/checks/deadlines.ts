/**
 * Deadlines and cancellation for every operation: a call with an already aborted signal, a call
 * whose `timeoutMs` passes on a slowed hypervisor, and a call aborted mid-way must each reject with
 * the typed error itself (`OperationAbortedError` / `OperationTimeoutError`) and have changed
 * NOTHING, checked after a wait long enough for a late completion to show: the power state in every
 * view, existence, instance snapshots, the image, the guest's password and boots, and events.
 */
import {
  AdminPasswordNotSupportedError,
  DEFAULT_MIGRATION_POLICY,
  GuestAgentNotEnabledError,
  InstanceNotFoundError,
  OperationAbortedError,
  OperationTimeoutError,
  PowerState,
  type Capability,
  type ComputeDriver,
  type Instance,
  type OperationOptions,
  type Secret,
} from "@virtkit/core";
import { ConformanceFailure, check, checkEqual, describeError, expectGone, expectState, fail } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { DriverEvents, hasControl, nextTurn, settle, trackedPassword } from "./depth-support.js";

/** The hypervisor's extra latency while a call is cut short: far above the 4 ms deadline, so a stalled loop (GC, a loaded machine) cannot let the call finish first. */
export const LATENCY_MS = 100;
/** The deadline given to a call on the slowed hypervisor (and when the mid-way abort fires). */
export const TIMEOUT_MS = 4;
/** From the calls' start: long enough for a call that ignored its deadline to finish. */
export const LATE_WAIT_MS = 3 * LATENCY_MS;

/** Refusals that say a password cannot be set here at all (so no deadline applies). */
const NOT_POSSIBLE = [AdminPasswordNotSupportedError, GuestAgentNotEnabledError] as const;

/** One operation under a deadline: how to prepare, call, and what must not have changed. */
interface DeadlineCase {
  readonly op: string;
  readonly capability: Capability | null;
  readonly alsoNeeds?: readonly Capability[];
  /** The state the instance is in before the call (absent: no instance yet, for spawn). */
  readonly from?: "RUNNING" | "PAUSED" | "SUSPENDED" | "SHUTDOWN" | "RESCUED";
  /** Takes an instance snapshot first (captured SHUTDOWN, so a late revert shows). */
  readonly snapshot?: boolean;
}

const CASES: readonly DeadlineCase[] = [
  { op: "spawn", capability: null },
  { op: "destroy", capability: null, from: "RUNNING" },
  { op: "reboot-hard", capability: null, from: "RUNNING" },
  { op: "reboot-soft", capability: "softReboot", from: "RUNNING" },
  { op: "power-off", capability: null, from: "RUNNING" },
  { op: "power-on", capability: null, from: "SHUTDOWN" },
  { op: "pause", capability: "pause", from: "RUNNING" },
  { op: "unpause", capability: "pause", from: "PAUSED" },
  { op: "suspend", capability: "suspend", from: "RUNNING" },
  { op: "resume", capability: "suspend", from: "SUSPENDED" },
  { op: "rescue", capability: "rescue", from: "RUNNING" },
  { op: "unrescue", capability: "rescue", from: "RESCUED" },
  { op: "image-snapshot", capability: "imageSnapshot", from: "RUNNING" },
  { op: "instance-snapshot-create", capability: "instanceSnapshots", from: "RUNNING" },
  { op: "instance-snapshot-revert", capability: "instanceSnapshots", from: "RUNNING", snapshot: true },
  { op: "instance-snapshot-delete", capability: "instanceSnapshots", from: "RUNNING", snapshot: true },
  { op: "set-admin-password", capability: "setAdminPassword", from: "RUNNING" },
];

const POWER: Record<NonNullable<DeadlineCase["from"]>, PowerState> = {
  RUNNING: PowerState.RUNNING,
  PAUSED: PowerState.PAUSED,
  SUSPENDED: PowerState.SUSPENDED,
  SHUTDOWN: PowerState.SHUTDOWN,
  RESCUED: PowerState.RUNNING,
};

/** What the call may touch, read before it, compared after. */
interface Before {
  readonly snapshots: readonly string[];
  readonly boots?: number;
  readonly imageId?: string;
  readonly password?: Secret;
}

async function prepare(
  ctx: ScenarioContext,
  c: DeadlineCase,
): Promise<{ inst: Instance; snapshotId?: string; imageId?: string; password?: Secret }> {
  const d = ctx.driver;
  if (c.from === undefined) return { inst: ctx.newInstance() };
  const inst = await ctx.spawn();
  let snapshotId: string | undefined;
  if (c.snapshot) {
    ctx.step("prepare: power off, snapshot, power on");
    await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
    snapshotId = (await d.createInstanceSnapshot(inst, `${ctx.prefix}-deadline`, ctx.opts())).id;
    await d.powerOn(inst, ctx.opts());
  }
  ctx.step(`prepare: ${c.from}`);
  switch (c.from) {
    case "PAUSED":
      await d.pause(inst, ctx.opts());
      break;
    case "SUSPENDED":
      await d.suspend(inst, ctx.opts());
      break;
    case "SHUTDOWN":
      await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
      break;
    case "RESCUED":
      await d.rescue(inst, inst.imageMeta, ctx.opts());
      break;
    case "RUNNING":
      break;
  }
  await expectState(ctx, inst, POWER[c.from], `the preparation (${c.from})`);
  let imageId: string | undefined;
  if (c.op === "image-snapshot") {
    const image = await ctx.env.imageService.create({ name: `${ctx.prefix}-deadline`, status: "queued" });
    ctx.trackImage(image.id);
    imageId = image.id;
  }
  const password = c.op === "set-admin-password" ? trackedPassword(ctx, "deadline") : undefined;
  return { inst, snapshotId, imageId, password };
}

/** The call itself with `options`. */
function call(
  ctx: ScenarioContext,
  c: DeadlineCase,
  inst: Instance,
  options: OperationOptions,
  extra: { snapshotId?: string; imageId?: string; password?: Secret },
): Promise<unknown> {
  const d = ctx.driver;
  switch (c.op) {
    case "spawn":
      return d.spawn({ instance: inst }, options);
    case "destroy":
      return d.destroy(inst, options);
    case "reboot-hard":
      return d.reboot(inst, "HARD", options);
    case "reboot-soft":
      return d.reboot(inst, "SOFT", options);
    case "power-off":
      return d.powerOff(inst, { ...options, cleanShutdownTimeoutSec: 0 });
    case "power-on":
      return d.powerOn(inst, options);
    case "pause":
      return d.pause(inst, options);
    case "unpause":
      return d.unpause(inst, options);
    case "suspend":
      return d.suspend(inst, options);
    case "resume":
      return d.resume(inst, options);
    case "rescue":
      return d.rescue(inst, inst.imageMeta, options);
    case "unrescue":
      return d.unrescue(inst, options);
    case "image-snapshot":
      return d.snapshot(inst, extra.imageId!, options);
    case "instance-snapshot-create":
      return d.createInstanceSnapshot(inst, `${ctx.prefix}-late`, options);
    case "instance-snapshot-revert":
      return d.revertToInstanceSnapshot(inst, extra.snapshotId!, options);
    case "instance-snapshot-delete":
      return d.deleteInstanceSnapshot(inst, extra.snapshotId!, options);
    case "set-admin-password":
      return d.setAdminPassword(inst, extra.password!, options);
    default:
      throw new Error(`kit error: no call for ${c.op}`);
  }
}

async function snapshotsOf(ctx: ScenarioContext, inst: Instance): Promise<readonly string[]> {
  if (!ctx.driver.capabilities.instanceSnapshots) return [];
  try {
    return (await ctx.driver.listInstanceSnapshots(inst, ctx.opts())).map((s) => s.id);
  } catch (err) {
    if (err instanceof InstanceNotFoundError) return [];
    throw err;
  }
}

/** Nothing the call could have done shows, after `after`. */
async function unchanged(
  ctx: ScenarioContext,
  c: DeadlineCase,
  inst: Instance,
  before: Before,
  events: DriverEvents,
  mark: number,
  after: string,
): Promise<void> {
  if (c.from === undefined) {
    await expectGone(ctx, inst, after);
    // Other operations' instances are alive on purpose: only what names this one counts.
    const left = ((await ctx.env.leftovers?.()) ?? []).filter((l) => l.includes(inst.uuid));
    check(left.length === 0, `after ${after}: the environment finds ${left.join("; ")}`);
  } else {
    await expectState(ctx, inst, POWER[c.from], after);
    const snaps = await snapshotsOf(ctx, inst);
    checkEqual(snaps.join(","), before.snapshots.join(","), `instance snapshots after ${after}`);
    if (before.boots !== undefined) {
      checkEqual(await ctx.env.guestControls!.bootCount!(inst), before.boots, `the guest's boots after ${after}`);
    }
  }
  if (before.imageId !== undefined) {
    const image = await ctx.env.imageService.get(before.imageId);
    check(image.status !== "active", `after ${after}: the image snapshot was uploaded anyway (status active)`);
  }
  if (before.password !== undefined && ctx.env.verifyAdminPassword) {
    const user = inst.osType === "windows" ? "Administrator" : "root";
    check(
      !(await ctx.env.verifyAdminPassword(inst, user, before.password)),
      `after ${after}: the password was set anyway`,
    );
  }
  const late = events.of(inst.uuid, mark).map((e) => e.transition);
  check(late.length === 0, `after ${after}: lifecycle events [${late.join(", ")}] were announced`);
}

/** A timeout or abort says which operation it cut short (its `operation` field, shown and logged by a service). */
function checkNamesOperation(err: OperationAbortedError | OperationTimeoutError, what: string): void {
  const op: unknown = err.operation;
  if (typeof op !== "string" || op.trim().length === 0) {
    fail(`${what}: the ${err.name}'s operation is ${JSON.stringify(op)}, expected a non-empty text`);
  }
}

/**
 * Requires `promise` to reject with exactly `cls` (the error thrown, not a cause); a timeout's
 * `timeoutMs` must be the caller's deadline (`deadlineMs`), the one that passed.
 */
export async function expectTyped(
  ctx: ScenarioContext,
  promise: Promise<unknown>,
  cls: typeof OperationAbortedError | typeof OperationTimeoutError,
  what: string,
  deadlineMs?: number,
): Promise<void> {
  try {
    await promise;
  } catch (err) {
    ctx.recordError(err);
    if (err instanceof cls) {
      checkNamesOperation(err, what);
      if (err instanceof OperationTimeoutError && deadlineMs !== undefined && err.timeoutMs !== deadlineMs) {
        fail(`${what}: the OperationTimeoutError says ${JSON.stringify(err.timeoutMs)} ms, but the deadline that passed was the caller's ${deadlineMs} ms`);
      }
      return;
    }
    fail(`${what}: expected ${cls.name}, got ${describeError(err)}`);
  }
  fail(`${what}: expected ${cls.name}, but it succeeded`);
}

/** Whether the driver declares what `c` needs. */
function declared(ctx: ScenarioContext, c: DeadlineCase): boolean {
  const caps = ctx.driver.capabilities;
  return needsOf(c).every((cap) => caps[cap]);
}

function needsOf(c: DeadlineCase): Capability[] {
  return [
    ...(c.capability ? [c.capability] : []),
    ...(c.from === "PAUSED" ? ["pause" as const] : []),
    ...(c.from === "SUSPENDED" ? ["suspend" as const] : []),
    ...(c.from === "RESCUED" ? ["rescue" as const] : []),
  ];
}

/** One operation's run: prepared, cut short three ways, then checked. */
interface Trial {
  readonly c: DeadlineCase;
  readonly inst: Instance;
  readonly prepared: { snapshotId?: string; imageId?: string; password?: Secret };
  readonly before: Before;
}

/** Collects the failures of every operation, so one report names each broken one. */
async function collect(failures: string[], op: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ConformanceFailure) failures.push(`${op}: ${err.message}`);
    else failures.push(`${op}: unexpected ${describeError(err)}`);
  }
}

/**
 * Every operation the driver declares, each on its own instance, all at once (so the whole check
 * costs one latency window): an already aborted signal, then on a hypervisor slowed by
 * LATENCY_MS a call with a TIMEOUT_MS deadline and a call aborted after TIMEOUT_MS, side by side;
 * after the latency is restored and a wait in which a late completion would show, nothing
 * changed. Spawn and destroy must then still work (nothing left locked or half done).
 */
export async function checkDeadlinesEveryOperation(ctx: ScenarioContext): Promise<void> {
  // Prepared side by side: on a real hypervisor each takes a boot.
  const trials: Trial[] = await Promise.all(
    CASES.filter((x) => declared(ctx, x)).map(async (c): Promise<Trial> => {
      const prepared = await prepare(ctx, c);
      const { inst } = prepared;
      return {
        c,
        inst,
        prepared,
        before: {
          snapshots: c.from === undefined ? [] : await snapshotsOf(ctx, inst),
          ...(c.from !== undefined && hasControl(ctx, "bootCount")
            ? { boots: await ctx.env.guestControls!.bootCount!(inst) }
            : {}),
          ...(prepared.imageId ? { imageId: prepared.imageId } : {}),
          ...(prepared.password ? { password: prepared.password } : {}),
        },
      };
    }),
  );
  const events = new DriverEvents(ctx.driver);
  const failures: string[] = [];
  try {
    const mark = events.mark;
    ctx.step("every operation with an already aborted signal");
    const aborted = new AbortController();
    aborted.abort(new Error("cancelled by the kit"));
    for (const t of [...trials]) {
      try {
        await call(ctx, t.c, t.inst, { signal: aborted.signal }, t.prepared);
        failures.push(`${t.c.op}: with an aborted signal: expected OperationAbortedError, but it succeeded`);
      } catch (err) {
        ctx.recordError(err);
        if (err instanceof OperationAbortedError) {
          const op: unknown = err.operation;
          if (typeof op !== "string" || op.trim().length === 0) {
            failures.push(`${t.c.op}: with an aborted signal: the OperationAbortedError's operation is ${JSON.stringify(op)}, expected a non-empty text`);
          }
          continue;
        }
        // This driver or configuration cannot do it at all (a refusal the contract lists, before any
        // work): there is no deadline to hold it to. Nothing must have changed all the same.
        if (t.c.op === "set-admin-password" && NOT_POSSIBLE.some((cls) => err instanceof cls)) {
          trials.splice(trials.indexOf(t), 1);
          await collect(failures, t.c.op, () => unchanged(ctx, t.c, t.inst, t.before, events, mark, `the refused ${t.c.op}`));
          continue;
        }
        failures.push(`${t.c.op}: with an aborted signal: expected OperationAbortedError, got ${describeError(err)}`);
      }
    }
    const setLatency = ctx.env.hypervisorControls?.setLatency?.bind(ctx.env.hypervisorControls);
    const t0 = performance.now();
    if (setLatency) {
      await setLatency(LATENCY_MS);
      try {
        ctx.step(`every operation with timeoutMs ${TIMEOUT_MS}, and aborted after ${TIMEOUT_MS} ms, on a hypervisor slowed by ${LATENCY_MS} ms`);
        // Operations side by side; each one's two calls one after the other (a driver may rightly
        // refuse a second concurrent call on the same instance).
        await Promise.all(
          trials.map(async (t) => {
            // No wall-clock bound here (a loaded machine stalls timers): a call that waited its work
            // out either succeeded (refused above) or changed something (found below).
            await collect(failures, t.c.op, () =>
              expectTyped(ctx, call(ctx, t.c, t.inst, { timeoutMs: TIMEOUT_MS }, t.prepared), OperationTimeoutError, "past its deadline", TIMEOUT_MS),
            );
            await collect(failures, t.c.op, async () => {
              const mid = new AbortController();
              const timer = setTimeout(() => mid.abort(new Error("cancelled by the kit")), TIMEOUT_MS);
              try {
                await expectTyped(ctx, call(ctx, t.c, t.inst, { signal: mid.signal }, t.prepared), OperationAbortedError, "aborted mid-way");
              } finally {
                clearTimeout(timer);
              }
            });
          }),
        );
      } finally {
        await setLatency(0);
      }
    }
    ctx.step("wait for a late completion");
    // At least two latencies after the calls returned, however long they took on a loaded machine.
    await settle(setLatency ? Math.max(2 * LATENCY_MS, LATE_WAIT_MS - (performance.now() - t0)) : 5);
    for (const t of trials) {
      await collect(failures, t.c.op, () =>
        unchanged(ctx, t.c, t.inst, t.before, events, mark, `the cancelled and timed-out ${t.c.op}`),
      );
    }
    if (failures.length > 0) fail(failures.join("; "));
    // Nothing was left locked or half done: the operation works afterwards.
    for (const t of trials.filter((x) => x.c.op === "spawn" || x.c.op === "destroy")) {
      ctx.step(`${t.c.op} without a deadline afterwards`);
      await call(ctx, t.c, t.inst, ctx.opts(), t.prepared);
      if (t.c.op === "spawn") await expectState(ctx, t.inst, PowerState.RUNNING, "spawn after the cancelled ones");
      else await expectGone(ctx, t.inst, "destroy after the cancelled ones");
    }
  } finally {
    events.stop();
  }
}

/** The operations the deadline check covers, for reports. */
export const DEADLINE_OPERATIONS: readonly string[] = CASES.map((c) => c.op);

/**
 * `call` on a slowed hypervisor must reject with OperationTimeoutError, unless it answered within
 * `quickMs`: then it never waited on the hypervisor (a console or state the driver keeps), no
 * deadline came into play, and it resolves true. A late answer that succeeded fails, unless the test
 * machine itself stalled through the deadline: a timer of `deadlineMs` set beside the call had not
 * run by `quickMs`. After such a stall the deadline's timer and the hypervisor's answer are due at
 * once, and Node may run the answer first (timers of different durations run by list, not by due
 * time): the call is asked again, up to `attempts` tries in all.
 */
export async function expectTimeoutUnlessQuick(
  ctx: ScenarioContext,
  call: () => Promise<unknown>,
  o: { readonly quickMs: number; readonly deadlineMs: number; readonly what: string; readonly attempts: number },
): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    // Started at the top of an event-loop turn: a timer set late in a long turn counts from the
    // turn's start, and its wait would look shorter than it was.
    await nextTurn();
    const t0 = performance.now();
    let controlRanAfter: number | undefined;
    const control = setTimeout(() => (controlRanAfter = performance.now() - t0), o.deadlineMs);
    const outcome = await call().then(
      () => undefined,
      (err: unknown) => ({ err }),
    );
    const ms = performance.now() - t0;
    clearTimeout(control);
    if (outcome === undefined && ms < o.quickMs) return true;
    const stalled = controlRanAfter === undefined || controlRanAfter >= o.quickMs;
    if (outcome === undefined && stalled && attempt < o.attempts) continue;
    const late = `answered after ${Math.round(ms)} ms${stalled && o.attempts > 1 ? `; the test machine stalled through the deadline in each of ${o.attempts} tries` : ""}`;
    await expectTyped(
      ctx,
      outcome === undefined ? Promise.resolve() : Promise.reject(outcome.err),
      OperationTimeoutError,
      `${o.what}${outcome === undefined ? ` (${late})` : ""}`,
      o.deadlineMs,
    );
    return false;
  }
}

/** The slowed hypervisor and the deadline of the long-deadline call in {@link checkInspectionDeadlines}. */
const LONG_LATENCY_MS = 3_000;
const LONG_DEADLINE_MS = 1_000;

/**
 * The calls that only look (host facts, listings, getInfo, existence, console, snapshot listing,
 * the destination pre-check) keep `OperationOptions` too: an already aborted signal rejects each
 * with `OperationAbortedError`; on a slowed hypervisor a 4 ms deadline rejects each with
 * `OperationTimeoutError`; and a deadline of a whole second is kept as well as a short one (on a
 * hypervisor slowed to 3 s, getInfo with 1 000 ms rejects typed before 2.5 s).
 */
export async function checkInspectionDeadlines(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  const caps = d.capabilities;
  const inst = await ctx.spawn();
  const host = await d.getHostInfo(ctx.opts());
  const calls: [string, (o: OperationOptions) => Promise<unknown>][] = [
    ["getHostInfo", (o) => d.getHostInfo(o)],
    ["listInstances", (o) => d.listInstances(o)],
    ["listInstanceUuids", (o) => d.listInstanceUuids(o)],
    ["instanceExists", (o) => d.instanceExists(inst, o)],
    ["getInfo", (o) => d.getInfo(inst, o)],
  ];
  if (caps.consoleOutput) calls.push(["getConsoleOutput", (o) => d.getConsoleOutput(inst, o)]);
  if (caps.instanceSnapshots) calls.push(["listInstanceSnapshots", (o) => d.listInstanceSnapshots(inst, o)]);
  const failures: string[] = [];
  ctx.step("every inspection call with an already aborted signal");
  const aborted = new AbortController();
  aborted.abort(new Error("cancelled by the kit"));
  // The destination pre-check only with the aborted signal: cut short later it may leave a probe
  // behind. Asked as Nova asks it, of the destination's driver with the source's facts; with a
  // single host, of the source itself (a driver may refuse its own host, but not before the signal).
  const dstHost = ctx.env.hosts[1];
  const destination = async (): Promise<ComputeDriver> => (dstHost !== undefined ? ctx.driverFor(dstHost) : d);
  const withAborted: typeof calls = caps.liveMigration
    ? [
        ...calls,
        ["checkCanLiveMigrateDestination", async (o) => (await destination()).checkCanLiveMigrateDestination(inst, host, DEFAULT_MIGRATION_POLICY, o)],
      ]
    : calls;
  for (const [name, fn] of withAborted) {
    await collect(failures, name, () => expectTyped(ctx, fn({ signal: aborted.signal }), OperationAbortedError, `${name} with an aborted signal`));
  }
  const setLatency = ctx.env.hypervisorControls?.setLatency?.bind(ctx.env.hypervisorControls);
  if (setLatency) {
    ctx.step(`every inspection call with a ${TIMEOUT_MS} ms deadline on a hypervisor slowed by ${LATENCY_MS} ms`);
    await setLatency(LATENCY_MS);
    try {
      await Promise.all(
        calls.map(([name, fn]) =>
          collect(failures, name, async () => {
            // Quick is well under the delay: under load a wait on a timer can look shorter than it was.
            await expectTimeoutUnlessQuick(ctx, () => fn({ signal: ctx.signal, timeoutMs: TIMEOUT_MS }), {
              quickMs: LATENCY_MS / 2,
              deadlineMs: TIMEOUT_MS,
              what: `${name} with a ${TIMEOUT_MS} ms deadline`,
              attempts: 3,
            });
          }),
        ),
      );
      ctx.step(`getInfo with a ${LONG_DEADLINE_MS} ms deadline on a hypervisor slowed by ${LONG_LATENCY_MS} ms`);
      await setLatency(LONG_LATENCY_MS);
      const t0 = performance.now();
      await collect(failures, "getInfo", async () => {
        const opts = { signal: ctx.signal, timeoutMs: LONG_DEADLINE_MS };
        // One try: a stall of a whole second is not what this step is about, and each try costs seconds.
        const what = `getInfo with a ${LONG_DEADLINE_MS} ms deadline`;
        if (await expectTimeoutUnlessQuick(ctx, () => d.getInfo(inst, opts), { quickMs: LONG_DEADLINE_MS, deadlineMs: LONG_DEADLINE_MS, what, attempts: 1 })) return;
        const ms = performance.now() - t0;
        check(ms < LONG_LATENCY_MS - 500, `getInfo with a ${LONG_DEADLINE_MS} ms deadline rejected only after ${Math.round(ms)} ms`);
      });
    } finally {
      await setLatency(0);
    }
  }
  if (failures.length > 0) fail(failures.join("; "));
  await expectState(ctx, inst, PowerState.RUNNING, "the inspection calls cut short");
}
