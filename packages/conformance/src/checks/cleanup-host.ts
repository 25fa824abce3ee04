/**
 * `cleanupHost`: "Releases connections and listeners. The driver is unusable afterwards." Checked
 * on a second driver of the scenario's host, so the first goes on acting there: once cleaned up,
 * the second hears nothing of what happens on the host (its event stream is closed, not merely
 * ignored), and every call on it is refused typed and does nothing (a reconnect on the next call
 * would quietly undo the cleanup). Not the kit's own cleanup: the driver's promise, read back.
 */
import { InstanceNotFoundError, PowerState, VirtkitError, type ComputeDriver, type Instance, type LifecycleEvent } from "@virtkit/core";
import { check, describeError, expectState, waitFor } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { settle } from "./depth-support.js";

/** How long events already due may take to arrive. */
const EVENT_WAIT_MS = 500;

const transitions = (events: readonly LifecycleEvent[], uuid: string) =>
  events.filter((e) => e.instanceUuid === uuid).map((e) => e.transition);

export async function checkCleanupHostReleases(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  const withEvents = d.capabilities.lifecycleEvents === true;
  ctx.step("make a second driver of the same host");
  const other = await ctx.env.createDriver(ctx.host);
  let cleaned = false;
  try {
    const heard: LifecycleEvent[] = [];
    const off = withEvents ? other.registerEventListener((e) => heard.push(e)) : undefined;
    const inst = await ctx.spawn();
    // Whether this driver hears what another driver of its host does at all: when it does, its
    // silence after cleanupHost says something.
    const hearsOthers = withEvents && (await waitFor(() => transitions(heard, inst.uuid).includes("STARTED"), EVENT_WAIT_MS, ctx.signal));

    ctx.step("cleanupHost on the second driver");
    await other.cleanupHost(ctx.host, ctx.opts());
    cleaned = true;
    const mark = heard.length;

    ctx.step("power off through the first driver");
    const own: LifecycleEvent[] = [];
    const offOwn = withEvents ? d.registerEventListener((e) => own.push(e)) : undefined;
    try {
      await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
      if (withEvents) await waitFor(() => transitions(own, inst.uuid).includes("STOPPED"), EVENT_WAIT_MS, ctx.signal);
      await settle(50);
    } finally {
      offOwn?.();
    }
    if (hearsOthers) {
      const late = transitions(heard.slice(mark), inst.uuid);
      check(
        late.length === 0,
        `a driver after cleanupHost still delivered [${late.join(",")}] to its listener: cleanupHost releases listeners`,
      );
    }
    try {
      off?.();
    } catch (err) {
      ctx.recordError(err);
      check(false, `removing a listener after cleanupHost threw ${describeError(err)}`);
    }

    ctx.step("calls on the cleaned-up driver");
    const calls: readonly [string, (dr: ComputeDriver) => Promise<unknown>][] = [
      ["listInstances", (dr) => dr.listInstances(ctx.opts())],
      ["getHostInfo", (dr) => dr.getHostInfo(ctx.opts())],
      ["getInfo", (dr) => dr.getInfo(inst, ctx.opts())],
      ["powerOn", (dr) => dr.powerOn(inst, ctx.opts())],
      ["instanceExists", (dr) => dr.instanceExists(inst, ctx.opts())],
      // Destroy's "an unknown instance is fine" must not turn into a quiet no-op (or a real destroy) here.
      ["destroy", (dr) => dr.destroy(inst, ctx.opts())],
    ];
    for (const [name, call] of calls) await expectRefusedAfterCleanup(ctx, name, call(other));
    await expectState(ctx, inst, PowerState.SHUTDOWN, "powerOn and destroy on another driver of the host after its cleanupHost");

    const fresh: Instance = ctx.newInstance();
    await expectRefusedAfterCleanup(ctx, "spawn", other.spawn({ instance: fresh }, ctx.opts()));
    check(
      !(await d.instanceExists(fresh, ctx.opts())),
      "spawn on a driver after its cleanupHost created the instance: the driver is unusable afterwards, not reconnected",
    );
  } finally {
    if (!cleaned) await other.cleanupHost(ctx.host).catch(() => undefined);
  }
}

/**
 * A call on a cleaned-up driver rejects typed. Not InstanceNotFoundError: the instance is there, the
 * driver is the one that is gone.
 */
async function expectRefusedAfterCleanup(ctx: ScenarioContext, name: string, call: Promise<unknown>): Promise<void> {
  let outcome: { err: unknown } | undefined;
  try {
    await call;
  } catch (err) {
    ctx.recordError(err);
    outcome = { err };
  }
  check(outcome !== undefined, `${name} on a driver after its cleanupHost succeeded: the driver is unusable afterwards`);
  check(
    outcome.err instanceof VirtkitError,
    `${name} on a driver after its cleanupHost rejected untyped (${describeError(outcome.err)}): expected a VirtkitError`,
  );
  check(
    !(outcome.err instanceof InstanceNotFoundError),
    `${name} on a driver after its cleanupHost says ${describeError(outcome.err)}: the instance is there, the driver is what is gone`,
  );
}
