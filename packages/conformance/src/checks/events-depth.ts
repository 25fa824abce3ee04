/**
 * Events with meaning beyond the state table's per-transition checks: several listeners are
 * independent (each gets every event once, a throwing one harms no other, removing one leaves the
 * rest, removing twice is harmless), a driver that declares no events refuses registration typed,
 * a migrated instance's source never announces STOPPED (Nova would stop the guest it just moved),
 * and a crash is announced once as CRASHED (not as STOPPED, which reads as a deliberate stop).
 */
import { PowerState, type LifecycleEvent } from "@virtkit/core";
import { check, expectState, expectUnsupportedSync, fail, waitFor } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { DriverEvents, control, hostPair, move, settle, spawnIn } from "./depth-support.js";

/** How long the events already due may take to arrive. */
const EVENT_WAIT_MS = 500;

const seq2 = (events: readonly LifecycleEvent[], uuid: string) => events.filter((e) => e.instanceUuid === uuid);
const seq = (events: readonly LifecycleEvent[], uuid: string) => seq2(events, uuid).map((e) => e.transition);

/** Several listeners: each independent of the others. */
export async function checkListenersIndependent(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  const a: LifecycleEvent[] = [];
  const b: LifecycleEvent[] = [];
  ctx.step("register a throwing listener, then A and B");
  const offThrowing = d.registerEventListener(() => {
    throw new Error("a listener's own failure");
  });
  const offA = d.registerEventListener((e) => a.push(e));
  const offB = d.registerEventListener((e) => b.push(e));
  const began = Date.now();
  let offOnce: (() => void) | undefined;
  let offD: (() => void) | undefined;
  try {
    const inst = await ctx.spawn();
    // A listener that removes itself while an event is dispatched must not make the one after it
    // miss that event (a dispatch loop over the live list, spliced underneath it).
    ctx.step("register a listener that removes itself on this instance's STOPPED, then D");
    let onceGot = 0;
    offOnce = d.registerEventListener((e) => {
      if (e.instanceUuid !== inst.uuid || e.transition !== "STOPPED") return;
      onceGot++;
      offOnce?.();
    });
    const dl: LifecycleEvent[] = [];
    offD = d.registerEventListener((e) => dl.push(e));
    // The power off starts at least 1.2 s after the driver was made, so a timestamp taken at
    // another moment (the driver's connect, its event stream's start) shows.
    await settle(Math.max(0, began + 1_200 - Date.now()));
    ctx.step("power off");
    const offAt = Date.now();
    await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
    const arrived = await waitFor(
      () => seq(a, inst.uuid).length >= 2 && seq(b, inst.uuid).length >= 2 && seq(dl, inst.uuid).includes("STOPPED"),
      EVENT_WAIT_MS,
      ctx.signal,
    );
    await settle(2);
    const want = "STARTED,STOPPED";
    for (const [name, got] of [
      ["A", a],
      ["B", b],
    ] as const) {
      const s = seq(got, inst.uuid).join(",");
      if (!arrived || s !== want) {
        fail(`listener ${name} got [${s}] for spawn and power off, expected [${want}] (another listener throws)`);
      }
    }
    // "Milliseconds since the epoch": seconds (or microseconds) would be off by a factor of 1000.
    const now = Date.now();
    for (const e of seq2(a, inst.uuid)) {
      check(
        Math.abs(e.timestamp - now) < 10 * 60_000,
        `the ${e.transition} event's timestamp ${e.timestamp} is not milliseconds since the epoch near now (${now})`,
      );
    }
    // And when the transition was seen: the STOPPED of this power off is stamped during the call
    // or after it (0.5 s slack), not at some earlier moment of the driver's.
    const stopped = seq2(a, inst.uuid).find((e) => e.transition === "STOPPED");
    check(
      stopped !== undefined && stopped.timestamp >= offAt - 500 && stopped.timestamp <= now + 500,
      `the STOPPED event of a power off begun at ${offAt} is stamped ${stopped?.timestamp} (${stopped ? stopped.timestamp - offAt : "?"} ms from the call's start): an event's timestamp is when the driver saw the transition`,
    );
    check(onceGot === 1, `a listener that removed itself on its first STOPPED got ${onceGot}, expected 1`);
    check(
      seq(dl, inst.uuid).filter((t) => t === "STOPPED").length === 1,
      `the listener registered after one that removed itself during the STOPPED event's dispatch got [${seq(dl, inst.uuid).join(",")}], expected one STOPPED`,
    );
    // D goes, so B is the last registered again for the double removal below.
    offD();
    offD = undefined;
    ctx.step("remove A (twice), then power on");
    offA();
    offA();
    const markA = a.length;
    const markB = b.length;
    await d.powerOn(inst, ctx.opts());
    const got = await waitFor(() => seq(b.slice(markB), inst.uuid).length >= 1, EVENT_WAIT_MS, ctx.signal);
    await settle(2);
    check(
      got && seq(b.slice(markB), inst.uuid).join(",") === "STARTED",
      `after removing listener A, B got [${seq(b.slice(markB), inst.uuid).join(",")}] for power on, expected [STARTED]`,
    );
    check(a.length === markA, `listener A still got ${a.length - markA} event(s) after it was removed`);
    ctx.step("register C after the fact");
    const c: LifecycleEvent[] = [];
    const offC = d.registerEventListener((e) => c.push(e));
    try {
      ctx.step("power off (A removed, B and C registered)");
      await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
      await waitFor(() => seq(c, inst.uuid).length >= 1, EVENT_WAIT_MS, ctx.signal);
      await settle(2);
      check(seq(c, inst.uuid).join(",") === "STOPPED", `a listener registered late got [${seq(c, inst.uuid).join(",")}], expected [STOPPED] (only what came after)`);
      check(seq(b.slice(markB), inst.uuid).join(",") === "STARTED,STOPPED", `listener B got [${seq(b.slice(markB), inst.uuid).join(",")}] since A was removed, expected [STARTED,STOPPED]`);
    } finally {
      offC();
    }
  } finally {
    offThrowing();
    offOnce?.();
    offD?.();
    offA();
    offB();
  }
}

/** A driver that does not declare lifecycle events refuses registration with UnsupportedOperationError. */
export async function refuseListeners(ctx: ScenarioContext): Promise<void> {
  await expectUnsupportedSync(ctx, "registerEventListener", () => ctx.driver.registerEventListener(() => undefined));
}

/**
 * A finished migration: the source announces no STOPPED for the moved instance (running or
 * paused), every event names the host that emitted it, and the destination has the instance.
 */
async function checkMigrationEvents(ctx: ScenarioContext, state: "RUNNING" | "PAUSED"): Promise<void> {
  const pair = await hostPair(ctx, "any");
  const src = new DriverEvents(pair.src);
  const dst = new DriverEvents(pair.dst);
  try {
    const inst = await spawnIn(ctx, state);
    const mark = src.mark;
    await move(ctx, pair, inst);
    await expectState(ctx, inst, PowerState[state], "the migration (on the destination)", pair.dst);
    ctx.step("events of the move");
    await settle(20);
    const fromSrc = src.of(inst.uuid, mark);
    if (fromSrc.some((e) => e.transition === "STOPPED")) {
      fail(
        `the source announced [${fromSrc.map((e) => e.transition).join(", ")}] for the ${state.toLowerCase()} instance it migrated: STOPPED would make Nova stop the guest on its new host`,
      );
    }
    for (const [events, host, side] of [
      [fromSrc, pair.srcHost, "source"],
      [dst.of(inst.uuid), pair.dstHost, "destination"],
    ] as const) {
      for (const e of events) {
        check(e.host === host, `the ${side}'s ${e.transition} event names host ${JSON.stringify(e.host)}, expected ${JSON.stringify(host)}`);
      }
    }
  } finally {
    src.stop();
    dst.stop();
  }
}

/** A running instance's move: no STOPPED from the source. */
export const checkMigrationRunningEvents = (ctx: ScenarioContext) => checkMigrationEvents(ctx, "RUNNING");
/** A paused instance's move: no STOPPED from the source. */
export const checkMigrationPausedEvents = (ctx: ScenarioContext) => checkMigrationEvents(ctx, "PAUSED");

/** Why a crash check cannot run here, or undefined. */
export function needsCrash(env: ScenarioContext["env"]): string | undefined {
  return typeof env.guestControls?.crash === "function"
    ? undefined
    : "the environment cannot crash a guest (no guestControls.crash)";
}

/**
 * A guest that crashes on its own (no contract call) is announced exactly once, as CRASHED, by the
 * host that runs it: the contract's CRASHED transition (libvirt's crashed stop, XAPI's crashed
 * power state). A STOPPED would tell the compute service the guest was shut down on purpose; no
 * event leaves it believing the guest still runs until its next power-state sync.
 */
export async function checkCrashAnnounced(ctx: ScenarioContext): Promise<void> {
  const crash = control(ctx, "crash", "the environment cannot crash a guest");
  const events = new DriverEvents(ctx.driver);
  try {
    const inst = await ctx.spawn();
    await waitFor(() => events.of(inst.uuid).length >= 1, EVENT_WAIT_MS, ctx.signal);
    await settle(2);
    const mark = events.mark;
    ctx.step("crash the guest (environment)");
    await crash(inst);
    await expectState(ctx, inst, PowerState.CRASHED, "the crash");
    ctx.step("events of the crash");
    const arrived = await waitFor(() => events.of(inst.uuid, mark).length >= 1, EVENT_WAIT_MS, ctx.signal);
    // Long enough for a duplicate (a second mapping of the same crash) to show.
    await settle(20);
    const got = events.of(inst.uuid, mark);
    if (!arrived || got.length !== 1 || got[0]!.transition !== "CRASHED") {
      fail(`the crash of a running guest announced [${seq(got, inst.uuid).join(", ")}], expected [CRASHED] once`);
    }
    check(got[0]!.host === ctx.host, `the CRASHED event names host ${JSON.stringify(got[0]!.host)}, expected ${JSON.stringify(ctx.host)}`);
  } finally {
    events.stop();
  }
}
