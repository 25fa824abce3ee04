/**
 * Lifecycle checks: every operation is followed by a power-state check in all the driver's views,
 * and the illegal transitions next to it are tried and must be refused with `InvalidStateError`
 * leaving the state as it was.
 */
import { AsyncLocalStorage, createHook } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { getEventListeners } from "node:events";
import { PowerState, type Instance, type LifecycleEvent, type LifecycleTransition, type OperationOptions } from "@virtkit/core";
import {
  check,
  expectGone,
  expectIllegal,
  expectRejects,
  expectState,
  expectUnsupported,
  describeError,
  fail,
  waitFor,
  skipForEnvironment,
} from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { adminUser } from "./admin-password.js";
import { trackedPassword } from "./depth-support.js";
import { withoutTransients } from "./event-log.js";

/** Spawn reaches RUNNING; the host answers; an unknown instance is unknown everywhere. */
export async function checkSpawn(ctx: ScenarioContext): Promise<void> {
  ctx.step("getHostInfo");
  const host = await ctx.driver.getHostInfo(ctx.opts());
  check(typeof host.hostname === "string" && host.hostname.length > 0, "getHostInfo: empty hostname");
  check(host.vcpus >= 1 && host.memoryMb >= 1, "getHostInfo: vcpus and memoryMb must be >= 1");
  // A guest hostname unlike the name: listInstances lists names, not what the guest calls itself.
  const inst = await ctx.spawn({ hostname: `${ctx.prefix}-guest-hostname` });
  ctx.step("getInfo fields");
  const info = await ctx.driver.getInfo(inst, ctx.opts());
  check(info.vcpus === inst.flavor.vcpus, `getInfo: vcpus ${info.vcpus}, flavor says ${inst.flavor.vcpus}`);
  check(
    info.maxMemoryKb === inst.flavor.memoryMb * 1024,
    `getInfo: maxMemoryKb ${info.maxMemoryKb}, flavor says ${inst.flavor.memoryMb * 1024}`,
  );
  check(typeof info.cpuTimeNs === "bigint", "getInfo: cpuTimeNs must be a bigint");
  // KiB, not MiB or pages: no running guest lives in less than 1 MiB (a flavor's 64 MiB read as
  // MiB says 64).
  check(
    info.memoryKb >= 1024 && info.memoryKb <= info.maxMemoryKb,
    `getInfo: memoryKb ${info.memoryKb} of a running instance is not within 1024..maxMemoryKb (${info.maxMemoryKb}): memory in use is in KiB`,
  );
  await checkSignalLeftClean(ctx, inst);
  await checkDeadlineTimersReleased(ctx, inst);
  await checkWaitingCallsLeaveNothing(ctx, inst);
  // The refusal comes before anything is made: the running instance's disk is untouched.
  const guest = ctx.env.guestControls;
  const data = typeof guest?.writeData === "function" && typeof guest.readData === "function";
  if (data) await guest!.writeData!(inst, EXISTING_KEY, "kept");
  ctx.step("spawn an instance that already exists");
  await expectRejects(
    ctx,
    ctx.driver.spawn({ instance: inst }, ctx.opts()),
    ["VIRTKIT_INSTANCE_EXISTS"],
    "spawn of an existing uuid",
  );
  await expectState(ctx, inst, PowerState.RUNNING, "the refused second spawn");
  if (data) {
    ctx.step("read the running instance's disk after the refused second spawn");
    const got = await guest!.readData!(inst, EXISTING_KEY);
    check(got === "kept", `the refused second spawn changed the running instance's disk: it holds ${JSON.stringify(got)}, not "kept"`);
  }
}

const EXISTING_KEY = "/conformance/spawn-existing";

/** Fifteen settled inspection calls with `opts`: three rounds of four on `inst` and one refused on an unknown instance. */
async function inspectionCalls(ctx: ScenarioContext, inst: Instance, opts: OperationOptions): Promise<void> {
  const ghost = ctx.newInstance();
  for (let i = 0; i < 3; i++) {
    await ctx.driver.getInfo(inst, opts);
    await ctx.driver.instanceExists(inst, opts);
    await ctx.driver.listInstances(opts);
    await ctx.driver.listInstanceUuids(opts);
    await ctx.driver.getInfo(ghost, opts).catch((err: unknown) => ctx.recordError(err));
  }
}

/**
 * A caller's signal is lent for the call only: once a call has settled (answered or refused), the
 * driver holds no abort listener on it (core's onAbort: a listener left behind keeps the call's
 * state alive for as long as the caller keeps its signal, one more per call).
 */
async function checkSignalLeftClean(ctx: ScenarioContext, inst: Instance): Promise<void> {
  ctx.step("inspection calls with one long-lived signal, then count its abort listeners");
  const own = new AbortController();
  await inspectionCalls(ctx, inst, { signal: own.signal, timeoutMs: 30_000 });
  const left = getEventListeners(own.signal, "abort").length;
  check(left === 0, `after 15 settled calls with one signal, the driver still holds ${left} abort listener(s) on it`);
}

/** A deadline no other timer in the process uses: the kit knows the driver's timers by it. */
const HOUR_MS = 3_600_000;

/** What the kit reads of a Node timer (`_idleTimeout` and `_destroyed` are Node's own fields). */
interface NodeTimer {
  readonly _idleTimeout?: unknown;
  readonly _destroyed?: unknown;
  hasRef?(): boolean;
}

/** Marks the async context of the calls {@link hourTimersLeft} watches. */
const callsContext = new AsyncLocalStorage<symbol>();
/** How many {@link hourTimersLeft} are under way (runs may overlap); the last one out disables it. */
let contextUsers = 0;

/**
 * Runs `calls` and counts the timers armed meanwhile for (most of) an hour, the calls' deadline or
 * what was left of it, that are still pending and ref'd a turn after they settled (a clearTimeout
 * in a finally that runs a turn later is fine).
 */
async function hourTimersLeft(calls: () => Promise<unknown>): Promise<number> {
  const armed: NodeTimer[] = [];
  // Only timers made on behalf of these calls: scenarios running beside this one arm long timers of
  // their own (a 30-day deadline, a migration's hour), which are not this driver's leftovers.
  const mine = Symbol("these calls");
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      if (type !== "Timeout" || callsContext.getStore() !== mine) return;
      const delay = (resource as NodeTimer)._idleTimeout;
      if (typeof delay === "number" && delay > HOUR_MS / 2) armed.push(resource as NodeTimer);
    },
  });
  hook.enable();
  contextUsers++;
  try {
    await callsContext.run(mine, calls);
  } finally {
    hook.disable();
    // Once run, an AsyncLocalStorage keeps Node's promise hooks on for the whole process (Node 20),
    // which slows every promise of every scenario after this one: off again when nobody uses it.
    if (--contextUsers === 0) callsContext.disable();
  }
  await new Promise((resolve) => setImmediate(resolve));
  return armed.filter((t) => t._destroyed !== true && (t.hasRef?.() ?? true)).length;
}

/**
 * A call's deadline is lent for the call only, as its signal is: once the call has settled, no
 * timer armed for it keeps the process alive (one left for a one-hour `timeoutMs` holds a
 * service's exit, and the call's state, for an hour). Timers are seen as Node creates them
 * (async_hooks), so a driver's own `setTimeout`, whichever way imported, is seen too.
 */
async function checkDeadlineTimersReleased(ctx: ScenarioContext, inst: Instance): Promise<void> {
  ctx.step("inspection calls with a one-hour timeoutMs, then look for timers left armed for it");
  const left = await hourTimersLeft(() => inspectionCalls(ctx, inst, { timeoutMs: HOUR_MS }));
  check(
    left === 0,
    `after 15 settled calls with timeoutMs ${HOUR_MS}, ${left} timer(s) armed for that deadline are still pending and keep the process alive (clear the deadline when the call settles)`,
  );
}

/**
 * The same for calls that wait (a clean power off polls the guest, a reboot and a power on wait for
 * the domain): with one long-lived signal and a one-hour timeoutMs, once they settled no abort
 * listener is left on the signal and no timer armed for the deadline keeps the process alive.
 */
async function checkWaitingCallsLeaveNothing(ctx: ScenarioContext, inst: Instance): Promise<void> {
  ctx.step("reboot, a clean power off and a power on with one long-lived signal and a one-hour timeoutMs");
  const own = new AbortController();
  const opts = { signal: own.signal, timeoutMs: HOUR_MS };
  // The scenario's deadline still ends these calls (read off ctx.signal: nothing is added to own.signal).
  const follow = (): void => own.abort(ctx.signal.reason);
  ctx.signal.addEventListener("abort", follow, { once: true });
  const left = await hourTimersLeft(async () => {
    await ctx.driver.reboot(inst, "HARD", opts);
    // 2 s: a guest that ignores ACPI (the qemu column's) costs that, then the hard fallback.
    await ctx.driver.powerOff(inst, { ...opts, cleanShutdownTimeoutSec: 2, retryIntervalSec: 1 });
    await ctx.driver.powerOn(inst, opts);
  }).finally(() => ctx.signal.removeEventListener("abort", follow));
  const listeners = getEventListeners(own.signal, "abort").length;
  check(listeners === 0, `after a reboot, a clean power off and a power on with one signal, the driver still holds ${listeners} abort listener(s) on it`);
  check(
    left === 0,
    `after a reboot, a clean power off and a power on with timeoutMs ${HOUR_MS}, ${left} timer(s) armed for that deadline are still pending and keep the process alive`,
  );
  await expectState(ctx, inst, PowerState.RUNNING, "a reboot, a clean power off and a power on");
}

/**
 * Calls about different instances at the same time (the contract: one instance's calls are ordered
 * by the caller, as Nova's instance lock does; different instances' are not): four spawns at once,
 * then a pause, a power off, a hard reboot and a destroy at once, each on its own instance. Each
 * ends as if it had run alone, in every view.
 */
export async function checkConcurrentInstances(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  // Every event from before the spawns: calls that overlap must not lose, merge or misaddress them.
  const events: LifecycleEvent[] = [];
  const off = d.capabilities.lifecycleEvents ? d.registerEventListener((e) => void events.push(e)) : undefined;
  try {
    // A listing is the caller's: one handed out before the spawns must not change under it.
    ctx.step("list instances before the spawns");
    const uuidsBefore = await d.listInstanceUuids(ctx.opts());
    const namesBefore = await d.listInstances(ctx.opts());
    const heldUuids = [...uuidsBefore];
    const heldNames = [...namesBefore];
    ctx.step("spawn four instances at once");
    const [a, b, c, gone] = (await Promise.all([0, 1, 2, 3].map(() => ctx.spawn()))) as [Instance, Instance, Instance, Instance];
    const spawned = [a, b, c, gone];
    ctx.step("list instances after the spawns");
    const uuidsAfter = await d.listInstanceUuids(ctx.opts());
    await d.listInstances(ctx.opts());
    check(spawned.every((i) => uuidsAfter.includes(i.uuid)), "listInstanceUuids after four spawns misses one of them");
    check(
      uuidsBefore.join(",") === heldUuids.join(",") && namesBefore.join(",") === heldNames.join(","),
      "a listing handed out before the spawns changed under its holder (the driver reuses the array it returned)",
    );
    const of = (i: Instance) => withoutTransients(events.filter((e) => e.instanceUuid === i.uuid).map((e) => e.transition));
    if (off) {
      ctx.step("events of the four spawns");
      await waitFor(() => spawned.every((i) => of(i).length >= 1), CONCURRENT_EVENT_WAIT_MS, ctx.signal);
      for (const [n, i] of spawned.entries()) {
        const seen = of(i);
        check(seen.length === 1 && seen[0] === "STARTED", `spawn ${n + 1} of 4 at once announced [${seen.join(", ")}], expected [STARTED]`);
      }
    }
    const mark = events.length;
    const pause = d.capabilities.pause;
    ctx.step(`${pause ? "pause, " : ""}power off, reboot HARD and destroy at once, one instance each`);
    await Promise.all([
      pause ? d.pause(a, ctx.opts()) : undefined,
      d.powerOff(b, ctx.opts({ cleanShutdownTimeoutSec: 0 })),
      d.reboot(c, "HARD", ctx.opts()),
      d.destroy(gone, ctx.opts()),
    ]);
    await expectState(ctx, a, pause ? PowerState.PAUSED : PowerState.RUNNING, pause ? "a pause beside other calls" : "other instances' calls");
    await expectState(ctx, b, PowerState.SHUTDOWN, "a power off beside other calls");
    await expectState(ctx, c, PowerState.RUNNING, "a hard reboot beside other calls");
    await expectGone(ctx, gone, "a destroy beside other calls");
    if (off) {
      // The two whose events the contract fixes: a pause announces PAUSED, a power off STOPPED, once.
      const since = (i: Instance) => withoutTransients(events.slice(mark).filter((e) => e.instanceUuid === i.uuid).map((e) => e.transition));
      const want: [Instance, LifecycleTransition[], string][] = [
        ...(pause ? [[a, ["PAUSED"], "the pause"] as [Instance, LifecycleTransition[], string]] : []),
        [b, ["STOPPED"], "the power off"],
      ];
      ctx.step("events of the pause and the power off");
      await waitFor(() => want.every(([i, w]) => since(i).length >= w.length), CONCURRENT_EVENT_WAIT_MS, ctx.signal);
      await new Promise((r) => setTimeout(r, 2));
      for (const [i, w, what] of want) {
        const seen = since(i);
        check(seen.join(",") === w.join(","), `${what} beside other calls announced [${seen.join(", ")}], expected [${w.join(", ")}]`);
      }
      const misaddressed = events.filter((e) => spawned.some((i) => i.uuid === e.instanceUuid) && e.host !== ctx.host);
      check(misaddressed.length === 0, `events of these instances name host ${misaddressed[0]?.host}, expected ${ctx.host}`);
    }
    if (pause) {
      ctx.step("unpause");
      await d.unpause(a, ctx.opts());
    }
    // c was just rebooted: its guest (agent, disk) answers only once it is up again.
    ctx.step("wait for both guests");
    await ctx.env.guestControls?.whenBooted?.(a, ctx.opts());
    await ctx.env.guestControls?.whenBooted?.(c, ctx.opts());
    await concurrentPasswords(ctx, a, c);
    await concurrentImageSnapshots(ctx, a, c);
    await concurrentInstanceSnapshots(ctx, a, c);
    await concurrentSuspends(ctx, a, c);
    await concurrentRescues(ctx, a, c);
  } finally {
    off?.();
  }
}

/**
 * Two instances' passwords set at once: each opens its own guest's account and not the other's
 * (a driver holding the password being set in one shared field gives both the last one).
 */
async function concurrentPasswords(ctx: ScenarioContext, a: Instance, c: Instance): Promise<void> {
  const verify = ctx.env.verifyAdminPassword?.bind(ctx.env);
  if (!ctx.driver.capabilities.setAdminPassword || !verify) return;
  const pa = trackedPassword(ctx, "concurrent-a");
  const pc = trackedPassword(ctx, "concurrent-c");
  ctx.step("set two instances' passwords at once");
  await Promise.all([ctx.driver.setAdminPassword(a, pa, ctx.opts()), ctx.driver.setAdminPassword(c, pc, ctx.opts())]);
  ctx.step("verify both passwords in their guests");
  for (const [inst, own, other, label] of [[a, pa, pc, "first"], [c, pc, pa, "second"]] as const) {
    const user = adminUser(inst);
    check(await verify(inst, user, own), `the ${label} of two passwords set at once does not open its own guest's ${user}`);
    check(!(await verify(inst, user, other)), `the ${label} guest opens with the password set at the same time for the other instance`);
  }
}

/**
 * Two instances' image snapshots at once: each image holds its own instance's disk (a marker
 * written into each guest first, read back from each image), and both images are active.
 */
async function concurrentImageSnapshots(ctx: ScenarioContext, a: Instance, c: Instance): Promise<void> {
  if (!ctx.driver.capabilities.imageSnapshot) return;
  const controls = ctx.env.guestControls;
  const data = typeof controls?.writeData === "function" && typeof controls.readImageData === "function";
  if (data) {
    ctx.step("write a different marker into each guest");
    await controls!.writeData!(a, CONCURRENT_KEY, "a");
    await controls!.writeData!(c, CONCURRENT_KEY, "c");
  }
  ctx.step("image snapshots of two instances at once");
  const images = await Promise.all(
    ["a", "c"].map(async (label) => {
      const image = await ctx.env.imageService.create({ name: `${ctx.prefix}-concurrent-${label}`, status: "queued" });
      ctx.trackImage(image.id);
      return image.id;
    }),
  );
  const [ia, ic] = images as [string, string];
  await Promise.all([ctx.driver.snapshot(a, ia, ctx.opts()), ctx.driver.snapshot(c, ic, ctx.opts())]);
  for (const [id, label] of [[ia, "first"], [ic, "second"]] as const) {
    const got = await ctx.env.imageService.get(id);
    check(got.status === "active" && got.size > 0, `the ${label} of two image snapshots taken at once is ${got.status} with ${got.size} bytes, expected active with data`);
  }
  if (data) {
    ctx.step("read each image's marker");
    const ma = await controls!.readImageData!(ia, CONCURRENT_KEY);
    const mc = await controls!.readImageData!(ic, CONCURRENT_KEY);
    check(ma === "a" && mc === "c", `two image snapshots taken at once hold markers ${JSON.stringify(ma)} and ${JSON.stringify(mc)}, expected "a" and "c" (each its own instance's disk)`);
  }
}

/**
 * Two instances' snapshots taken at once: each is its own instance's (uuid, name, listing), neither
 * listing shows the other's, and deleting one leaves the other.
 */
async function concurrentInstanceSnapshots(ctx: ScenarioContext, a: Instance, c: Instance): Promise<void> {
  const d = ctx.driver;
  if (!d.capabilities.instanceSnapshots) return;
  ctx.step("instance snapshots of two instances at once");
  const [sa, sc] = await Promise.all([
    d.createInstanceSnapshot(a, `${ctx.prefix}-concurrent-a`, ctx.opts()),
    d.createInstanceSnapshot(c, `${ctx.prefix}-concurrent-c`, ctx.opts()),
  ]);
  for (const [snap, inst, name, label] of [[sa, a, "a", "first"], [sc, c, "c", "second"]] as const) {
    check(
      snap.instanceUuid === inst.uuid && snap.name === `${ctx.prefix}-concurrent-${name}`,
      `the ${label} of two instance snapshots taken at once says instance ${snap.instanceUuid} and name ${JSON.stringify(snap.name)}, expected ${inst.uuid} and ${JSON.stringify(`${ctx.prefix}-concurrent-${name}`)}`,
    );
  }
  const [la, lc] = await Promise.all([d.listInstanceSnapshots(a, ctx.opts()), d.listInstanceSnapshots(c, ctx.opts())]);
  check(la.some((s) => s.id === sa.id) && !la.some((s) => s.id === sc.id), `after two instance snapshots at once, the first instance lists [${la.map((s) => s.id).join(", ")}]: its own must be there, the other's not`);
  check(lc.some((s) => s.id === sc.id) && !lc.some((s) => s.id === sa.id), `after two instance snapshots at once, the second instance lists [${lc.map((s) => s.id).join(", ")}]: its own must be there, the other's not`);
  ctx.step("delete the first of them");
  await d.deleteInstanceSnapshot(a, sa.id, ctx.opts());
  const left = await d.listInstanceSnapshots(c, ctx.opts());
  check(left.some((s) => s.id === sc.id), "deleting one instance's snapshot removed the snapshot another instance took at the same time");
  await d.deleteInstanceSnapshot(c, sc.id, ctx.opts());
}

/** Two instances suspended at once, then resumed at once: each ends as if alone, in every view. */
async function concurrentSuspends(ctx: ScenarioContext, a: Instance, c: Instance): Promise<void> {
  const d = ctx.driver;
  if (!d.capabilities.suspend) return;
  ctx.step("suspend two instances at once");
  await Promise.all([d.suspend(a, ctx.opts()), d.suspend(c, ctx.opts())]);
  await expectState(ctx, a, PowerState.SUSPENDED, "two suspends at once (the first)");
  await expectState(ctx, c, PowerState.SUSPENDED, "two suspends at once (the second)");
  ctx.step("resume both at once");
  await Promise.all([d.resume(a, ctx.opts()), d.resume(c, ctx.opts())]);
  await expectState(ctx, a, PowerState.RUNNING, "two resumes at once (the first)");
  await expectState(ctx, c, PowerState.RUNNING, "two resumes at once (the second)");
}

/**
 * Two instances rescued at once, each with its own rescue password, then unrescued one at a time:
 * rescue mode and its password belong to each instance (a driver keeping "the rescued instance" or
 * "the rescue password" in one field for the whole driver unrescues the wrong one, or gives both
 * rescue systems the last password).
 */
async function concurrentRescues(ctx: ScenarioContext, a: Instance, c: Instance): Promise<void> {
  const d = ctx.driver;
  if (!d.capabilities.rescue) return;
  const verifyRescue = ctx.env.verifyRescuePassword?.bind(ctx.env);
  const booted = ctx.env.guestControls?.bootedSystem?.bind(ctx.env.guestControls);
  const expectSystem = async (inst: Instance, want: "rescue" | "instance", after: string): Promise<void> => {
    if (!booted) return;
    const got = await booted(inst);
    check(got === want, `after ${after} the guest runs the ${got} system, expected the ${want} system`);
  };
  const pa = trackedPassword(ctx, "concurrent-rescue-a");
  const pc = trackedPassword(ctx, "concurrent-rescue-c");
  ctx.step("rescue two instances at once, each with its own rescue password");
  await Promise.all([
    d.rescue(a, a.imageMeta, ctx.opts({ rescuePassword: pa })),
    d.rescue(c, c.imageMeta, ctx.opts({ rescuePassword: pc })),
  ]);
  await expectState(ctx, a, PowerState.RUNNING, "two rescues at once (the first)");
  await expectState(ctx, c, PowerState.RUNNING, "two rescues at once (the second)");
  await expectSystem(a, "rescue", "two rescues at once (the first)");
  await expectSystem(c, "rescue", "two rescues at once (the second)");
  if (verifyRescue) {
    ctx.step("log into both rescue systems as root");
    for (const [inst, own, other, label] of [[a, pa, pc, "first"], [c, pc, pa, "second"]] as const) {
      check(await verifyRescue(inst, "root", own), `the ${label} of two rescues at once: its rescuePassword does not open root of its rescue system`);
      check(!(await verifyRescue(inst, "root", other)), `the ${label} of two rescues at once: its rescue system opens with the password given to the other instance's rescue`);
    }
  }
  ctx.step("unrescue the first only");
  await d.unrescue(a, ctx.opts());
  await expectState(ctx, a, PowerState.RUNNING, "unrescue of the first of two rescued instances");
  await expectSystem(a, "instance", "unrescue of the first of two rescued instances");
  await expectSystem(c, "rescue", "unrescue of the other of two rescued instances (this one was left in rescue)");
  // Whichever of the two rescues finished last, the first is now rescued after the second: a
  // driver that remembers only the last rescue unrescues the wrong one next.
  ctx.step("rescue the first again, then unrescue the second");
  await d.rescue(a, a.imageMeta, ctx.opts());
  await unrescueOther(ctx, c, "the second of two rescued instances, rescued before the other");
  await expectSystem(a, "rescue", "unrescue of the other of two rescued instances (this one was left in rescue)");
  ctx.step("unrescue the first");
  await unrescueOther(ctx, a, "the first of two rescued instances, after the other was unrescued");
}

/** Unrescues `inst`, which another instance's rescue and unrescue came around: it must still be in rescue, and come out. */
async function unrescueOther(ctx: ScenarioContext, inst: Instance, what: string): Promise<void> {
  try {
    await ctx.driver.unrescue(inst, ctx.opts());
  } catch (err) {
    ctx.recordError(err);
    fail(`unrescue of ${what} failed (${describeError(err)}): another instance's rescue or unrescue took this one's rescue mode`);
  }
  await expectState(ctx, inst, PowerState.RUNNING, `unrescue of ${what}`);
  const booted = ctx.env.guestControls?.bootedSystem;
  if (booted) {
    const got = await booted.call(ctx.env.guestControls, inst);
    check(got === "instance", `after unrescue of ${what} the guest runs the ${got} system, expected its own`);
  }
}

const CONCURRENT_KEY = "/conformance/concurrent-marker";

/** How long events already due may take to arrive (a daemon's event stream lags its replies). */
const CONCURRENT_EVENT_WAIT_MS = 2_000;

/** Operations on an instance that never existed reject with `InstanceNotFoundError`. */
export async function checkNotFound(ctx: ScenarioContext): Promise<void> {
  const ghost = ctx.newInstance();
  ctx.step("instanceExists of an unknown instance");
  check(!(await ctx.driver.instanceExists(ghost, ctx.opts())), "instanceExists is true for an instance never spawned");
  const d = ctx.driver;
  const caps = d.capabilities;
  // Each declared operation about one instance: the base ones and what the driver declares.
  const calls: [string, () => Promise<unknown>][] = [
    ["getInfo", () => d.getInfo(ghost, ctx.opts())],
    ["powerOn", () => d.powerOn(ghost, ctx.opts())],
    ["powerOff", () => d.powerOff(ghost, ctx.opts({ cleanShutdownTimeoutSec: 0 }))],
    ["reboot", () => d.reboot(ghost, "HARD", ctx.opts())],
  ];
  if (caps.pause) calls.push(["pause", () => d.pause(ghost, ctx.opts())], ["unpause", () => d.unpause(ghost, ctx.opts())]);
  if (caps.suspend) calls.push(["suspend", () => d.suspend(ghost, ctx.opts())], ["resume", () => d.resume(ghost, ctx.opts())]);
  if (caps.rescue) {
    calls.push(
      ["rescue", () => d.rescue(ghost, { ...ghost.imageMeta, properties: { ...ghost.imageMeta.properties } }, ctx.opts())],
      ["unrescue", () => d.unrescue(ghost, ctx.opts())],
    );
  }
  if (caps.instanceSnapshots) {
    calls.push(
      ["createInstanceSnapshot", () => d.createInstanceSnapshot(ghost, "ghost-snap", ctx.opts())],
      ["listInstanceSnapshots", () => d.listInstanceSnapshots(ghost, ctx.opts())],
      ["revertToInstanceSnapshot", () => d.revertToInstanceSnapshot(ghost, "ghost-snap", ctx.opts())],
      ["deleteInstanceSnapshot", () => d.deleteInstanceSnapshot(ghost, "ghost-snap", ctx.opts())],
    );
  }
  if (caps.consoleOutput) calls.push(["getConsoleOutput", () => d.getConsoleOutput(ghost, ctx.opts())]);
  if (caps.liveMigration) calls.push(["liveMigrationAbort", () => d.liveMigrationAbort(ghost, ctx.opts())]);
  if (caps.forceCompleteMigration) calls.push(["liveMigrationForceComplete", () => d.liveMigrationForceComplete(ghost, ctx.opts())]);
  for (const [what, call] of calls) {
    ctx.step(`${what} of an unknown instance`);
    await expectRejects(ctx, call(), ["VIRTKIT_INSTANCE_NOT_FOUND"], `${what} of an unknown instance`);
  }
}

/** Hard reboot keeps the instance RUNNING. */
export async function checkRebootHard(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  ctx.step("reboot HARD");
  await ctx.driver.reboot(inst, "HARD", ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "reboot HARD");
}

/** Soft reboot keeps the instance RUNNING. */
export async function checkRebootSoft(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  ctx.step("reboot SOFT");
  await ctx.driver.reboot(inst, "SOFT", ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "reboot SOFT");
}

/**
 * Clean power off, then on. While stopped, the capability-specific moves (pause, suspend, resume,
 * unpause) are illegal.
 */
export async function checkPowerOffOn(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  ctx.step("power off (clean)");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 5, retryIntervalSec: 1 }));
  await expectState(ctx, inst, PowerState.SHUTDOWN, "power off");
  await illegalWhileStopped(ctx, inst);
  ctx.step("power on");
  await ctx.driver.powerOn(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "power on");
}

async function illegalWhileStopped(ctx: ScenarioContext, inst: Instance): Promise<void> {
  const caps = ctx.driver.capabilities;
  const S = PowerState.SHUTDOWN;
  if (caps.pause) {
    await expectIllegal(ctx, inst, S, "pause a stopped instance", () => ctx.driver.pause(inst, ctx.opts()));
    await expectIllegal(ctx, inst, S, "unpause a stopped instance", () => ctx.driver.unpause(inst, ctx.opts()));
  }
  if (caps.suspend) {
    await expectIllegal(ctx, inst, S, "suspend a stopped instance", () => ctx.driver.suspend(inst, ctx.opts()));
    await expectIllegal(ctx, inst, S, "resume a stopped instance", () => ctx.driver.resume(inst, ctx.opts()));
  }
}

/** `cleanShutdownTimeoutSec: 0` powers off at once. */
export async function checkPowerOffHard(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  ctx.step("power off (hard, timeout 0)");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await expectState(ctx, inst, PowerState.SHUTDOWN, "hard power off");
  ctx.step("power off an instance already off");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await expectState(ctx, inst, PowerState.SHUTDOWN, "a second power off");
}

/** A guest that ignores ACPI: power off waits the clean timeout, then falls back to hard. */
export async function checkPowerOffFallback(ctx: ScenarioContext): Promise<void> {
  const ignoreAcpi = ctx.env.guestControls?.ignoreAcpi;
  if (!ignoreAcpi) skipForEnvironment("the environment cannot make a guest ignore ACPI");
  const inst = await ctx.spawn();
  ctx.step("make the guest ignore ACPI");
  await ignoreAcpi.call(ctx.env.guestControls, inst, true);
  ctx.step("power off with a 0.3 s clean timeout");
  const t0 = performance.now();
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0.3, retryIntervalSec: 0.1 }));
  const elapsed = performance.now() - t0;
  await expectState(ctx, inst, PowerState.SHUTDOWN, "power off of a guest ignoring ACPI");
  check(elapsed >= 250, `power off fell back to hard after ${Math.round(elapsed)} ms, before the 300 ms clean timeout`);
}

/** Pause and unpause, with unpause of a running and pause of a stopped instance refused. */
export async function checkPauseUnpause(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  await expectIllegal(ctx, inst, PowerState.RUNNING, "unpause a running instance", () =>
    ctx.driver.unpause(inst, ctx.opts()),
  );
  ctx.step("pause");
  await ctx.driver.pause(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.PAUSED, "pause");
  if (ctx.driver.capabilities.suspend) {
    await expectIllegal(ctx, inst, PowerState.PAUSED, "resume a paused instance", () =>
      ctx.driver.resume(inst, ctx.opts()),
    );
  }
  ctx.step("unpause");
  await ctx.driver.unpause(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "unpause");
  ctx.step("power off");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await expectState(ctx, inst, PowerState.SHUTDOWN, "power off");
  await expectIllegal(ctx, inst, PowerState.SHUTDOWN, "pause a stopped instance", () =>
    ctx.driver.pause(inst, ctx.opts()),
  );
}

/** Undeclared pause is refused as unsupported. */
export async function refusePause(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  await expectUnsupported(ctx, "pause", () => ctx.driver.pause(inst, ctx.opts()), "pause");
  await expectState(ctx, inst, PowerState.RUNNING, "the refused pause");
}

/** Suspend and resume, with resume of a running instance refused. */
export async function checkSuspendResume(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  await expectIllegal(ctx, inst, PowerState.RUNNING, "resume a running instance", () =>
    ctx.driver.resume(inst, ctx.opts()),
  );
  ctx.step("suspend");
  await ctx.driver.suspend(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.SUSPENDED, "suspend");
  if (ctx.driver.capabilities.pause) {
    await expectIllegal(ctx, inst, PowerState.SUSPENDED, "pause a suspended instance", () =>
      ctx.driver.pause(inst, ctx.opts()),
    );
  }
  ctx.step("resume");
  await ctx.driver.resume(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "resume");
}

/** Undeclared suspend is refused as unsupported. */
export async function refuseSuspend(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  await expectUnsupported(ctx, "suspend", () => ctx.driver.suspend(inst, ctx.opts()), "suspend");
  await expectState(ctx, inst, PowerState.RUNNING, "the refused suspend");
}

/** Rescue boots the rescue image (RUNNING), unrescue the original one (RUNNING). */
export async function checkRescue(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  ctx.step("rescue");
  await ctx.driver.rescue(inst, inst.imageMeta, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "rescue");
  ctx.step("unrescue");
  await ctx.driver.unrescue(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "unrescue");
}

/** Undeclared rescue is refused as unsupported. */
export async function refuseRescue(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  await expectUnsupported(ctx, "rescue", () => ctx.driver.rescue(inst, inst.imageMeta, ctx.opts()), "rescue");
  await expectState(ctx, inst, PowerState.RUNNING, "the refused rescue");
}

/** Destroy, destroy again, destroy a stopped instance and one that never existed. */
export async function checkDestroy(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  await expectLeftoversSee(ctx, inst);
  ctx.step("destroy a running instance");
  await ctx.driver.destroy(inst, ctx.opts());
  await expectGone(ctx, inst, "destroy");
  ctx.step("destroy again");
  await ctx.driver.destroy(inst, ctx.opts());
  await expectGone(ctx, inst, "the second destroy");
  const stopped = await ctx.spawn();
  ctx.step("power off before destroy");
  await ctx.driver.powerOff(stopped, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await expectState(ctx, stopped, PowerState.SHUTDOWN, "power off");
  ctx.step("destroy a stopped instance");
  await ctx.driver.destroy(stopped, ctx.opts());
  await expectGone(ctx, stopped, "destroy of a stopped instance");
  const ghost = ctx.newInstance({ uuid: randomUUID() });
  ctx.step("destroy an instance that never existed");
  await ctx.driver.destroy(ghost, ctx.opts());
  await expectGone(ctx, ghost, "destroy of an unknown instance");
}

/**
 * The environment's `leftovers()` is what every scenario's leak check reads: one that cannot see a
 * live instance (a probe of the wrong host, pool or name) would pass every "destroy leaves nothing"
 * vacuously. While the instance runs, something of it (by uuid or name) must be listed.
 */
async function expectLeftoversSee(ctx: ScenarioContext, inst: Instance): Promise<void> {
  const leftovers = ctx.env.leftovers?.bind(ctx.env);
  if (!leftovers) return;
  ctx.step("the environment's leftovers() sees the running instance");
  const seen = await leftovers();
  check(
    seen.some((line) => line.includes(inst.uuid) || line.includes(inst.name)),
    `the environment's leftovers() does not list the running instance ${inst.name} (${inst.uuid}): every scenario's leak check is blind to it (got ${seen.length} line(s))`,
  );
}

/** Console output is a string (and, after a boot, not empty). */
export async function checkConsoleOutput(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  ctx.step("getConsoleOutput");
  const out = await ctx.driver.getConsoleOutput(inst, ctx.opts());
  check(typeof out === "string", "getConsoleOutput must return a string");
  check(out.length > 0, "getConsoleOutput returned nothing after a boot");
  await expectState(ctx, inst, PowerState.RUNNING, "getConsoleOutput");
}

/** Undeclared console output is refused as unsupported. */
export async function refuseConsoleOutput(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  await expectUnsupported(ctx, "getConsoleOutput", () => ctx.driver.getConsoleOutput(inst, ctx.opts()), "consoleOutput");
}

/** Lifecycle events: one per transition, for the right instance and host; none after unregistering. */
export async function checkEvents(ctx: ScenarioContext): Promise<void> {
  const events: LifecycleEvent[] = [];
  ctx.step("registerEventListener");
  const off = ctx.driver.registerEventListener((e) => events.push(e));
  const inst = await ctx.spawn();
  const expect = async (transition: LifecycleTransition, after: string) => {
    const seen = await waitFor(
      () => events.some((e) => e.instanceUuid === inst.uuid && e.transition === transition),
      1000,
      ctx.signal,
    );
    if (!seen) {
      const got = events.filter((e) => e.instanceUuid === inst.uuid).map((e) => e.transition);
      fail(`no ${transition} event after ${after} (got: ${got.join(", ") || "none"})`);
    }
  };
  await expect("STARTED", "spawn");
  ctx.step("power off");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await expect("STOPPED", "power off");
  ctx.step("power on");
  events.length = 0;
  await ctx.driver.powerOn(inst, ctx.opts());
  await expect("STARTED", "power on");
  if (ctx.driver.capabilities.pause) {
    ctx.step("pause");
    await ctx.driver.pause(inst, ctx.opts());
    await expect("PAUSED", "pause");
    ctx.step("unpause");
    await ctx.driver.unpause(inst, ctx.opts());
    await expect("RESUMED", "unpause");
  }
  const bad = events.find(
    (e) => e.instanceUuid === inst.uuid && (typeof e.host !== "string" || !Number.isFinite(e.timestamp)),
  );
  check(!bad, "an event lacks its host or timestamp");
  ctx.step("unregister, then power off");
  off();
  events.length = 0;
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await new Promise((r) => setTimeout(r, 20));
  check(!events.some((e) => e.instanceUuid === inst.uuid), "events still arrive after the listener was removed");
}

/**
 * Cancellation and deadlines: a call with an aborted signal rejects with `OperationAbortedError`
 * and changes nothing; with a slow hypervisor, `timeoutMs` rejects with `OperationTimeoutError` in time.
 */
export async function checkDeadlines(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  ctx.step("power off with an aborted signal");
  const aborted = new AbortController();
  aborted.abort(new Error("cancelled by the kit"));
  await expectRejects(
    ctx,
    ctx.driver.powerOff(inst, { signal: aborted.signal, cleanShutdownTimeoutSec: 0 }),
    ["VIRTKIT_OPERATION_ABORTED"],
    "power off with an aborted signal",
  );
  await expectState(ctx, inst, PowerState.RUNNING, "the cancelled power off");
  const setLatency = ctx.env.hypervisorControls?.setLatency;
  if (!setLatency) return;
  ctx.step("power off with timeoutMs 100 on a hypervisor slowed to 2 s");
  await setLatency.call(ctx.env.hypervisorControls, 2000);
  const t0 = performance.now();
  try {
    await expectRejects(
      ctx,
      ctx.driver.powerOff(inst, { signal: ctx.signal, timeoutMs: 100, cleanShutdownTimeoutSec: 0 }),
      ["VIRTKIT_OPERATION_TIMEOUT"],
      "power off past its deadline",
    );
  } finally {
    await setLatency.call(ctx.env.hypervisorControls, 0);
  }
  const elapsed = performance.now() - t0;
  check(elapsed < 1000, `the 100 ms deadline was honoured only after ${Math.round(elapsed)} ms`);
  await expectState(ctx, inst, PowerState.RUNNING, "the timed-out power off");
}
