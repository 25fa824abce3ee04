/**
 * Small helpers the effect, event, deadline, migration and service checks share: reading the
 * environment's guest controls (skipping with the reason when one is missing), collecting
 * lifecycle events per driver, and picking migration hosts by the environment's storage facts.
 */
import {
  DEFAULT_MIGRATION_POLICY,
  PowerState,
  Secret,
  type ComputeDriver,
  type GuestControls,
  type Instance,
  type LifecycleEvent,
  type MigrateData,
  type MigrationPolicy,
} from "@virtkit/core";
import { expectState, skipForEnvironment } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { overTheWire } from "./migrate-data-wire.js";

/** A guest control the scenario needs, bound to the environment, or a skip with the reason. */
export function control<K extends keyof GuestControls>(
  ctx: ScenarioContext,
  name: K,
  why: string,
): NonNullable<GuestControls[K]> {
  const controls = ctx.env.guestControls;
  const fn = controls?.[name];
  if (typeof fn !== "function") skipForEnvironment(`${why} (no guestControls.${String(name)})`);
  return (fn as (...args: unknown[]) => unknown).bind(controls) as NonNullable<GuestControls[K]>;
}

/** True when the environment offers guest control `name`. */
export function hasControl(ctx: ScenarioContext, name: keyof GuestControls): boolean {
  return typeof ctx.env.guestControls?.[name] === "function";
}

/** A fresh, recognisable password, tracked as a secret. */
export function trackedPassword(ctx: ScenarioContext, tag: string): Secret {
  const s = new Secret(`Vk-${tag}-${Math.random().toString(36).slice(2, 10)}!`);
  ctx.trackSecret(s);
  return s;
}

/** Every lifecycle event one driver announces from now on (nothing when it declares none). */
export class DriverEvents {
  readonly events: LifecycleEvent[] = [];
  readonly #off: (() => void) | undefined;

  constructor(driver: ComputeDriver) {
    this.#off = driver.capabilities.lifecycleEvents
      ? driver.registerEventListener((e) => this.events.push(e))
      : undefined;
  }

  get enabled(): boolean {
    return this.#off !== undefined;
  }

  /** A position to count from. */
  get mark(): number {
    return this.events.length;
  }

  /** The events about `uuid` since `from`. */
  of(uuid: string, from = 0): LifecycleEvent[] {
    return this.events.slice(from).filter((e) => e.instanceUuid === uuid);
  }

  stop(): void {
    this.#off?.();
  }
}

/** Resolves in the next turn of the event loop's check phase, after the timers due now have run. */
export function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Lets already-due events and late completions arrive: `ms` of real time, then a turn of the loop. */
export async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  await nextTurn();
}

/**
 * How long this process stood still while a timed step ran: a 10 ms ticker's lateness summed (gaps
 * under 20 ms count as none). A wall-clock bound on a driver's wait tries once more when its overrun
 * is no longer than this, so a stall of a loaded test machine is not blamed on the driver, while a
 * driver that waits too long on its own (no stall) still is. In-process time only: a remote
 * hypervisor slowed by the load is not measured.
 */
export function stallMeter(): { stop(): number } {
  const tickMs = 10;
  let last = performance.now();
  let stalledMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    const late = now - last - tickMs;
    if (late >= 2 * tickMs) stalledMs += late;
    last = now;
  }, tickMs);
  return {
    stop() {
      clearInterval(ticker);
      const late = performance.now() - last - tickMs;
      return stalledMs + (late >= 2 * tickMs ? late : 0);
    },
  };
}

/** Two hosts and whether they share storage, as the environment says. */
export interface HostPair {
  readonly src: ComputeDriver;
  readonly dst: ComputeDriver;
  readonly srcHost: string;
  readonly dstHost: string;
  /** True: a non-block migration is the right one; false: a block migration is. */
  readonly shared: boolean;
}

/**
 * The primary host and another one whose storage relation is `want` (`shared`, `unshared`, or
 * `any`: the first other host). Skips with the reason when the environment has no such host or
 * does not say which hosts share storage: guessing (trying one policy, then the other) would hide
 * a driver that refuses or accepts the wrong one.
 */
export async function hostPair(ctx: ScenarioContext, want: "shared" | "unshared" | "any"): Promise<HostPair> {
  const [srcHost, ...others] = ctx.env.hosts;
  if (srcHost === undefined || others.length === 0) {
    skipForEnvironment("the environment has a single host, so no real migration");
  }
  const shares = ctx.env.sharesStorage?.bind(ctx.env);
  if (!shares) skipForEnvironment("the environment does not say which of its hosts share storage (no sharesStorage)");
  const dstHost = others.find((h) => want === "any" || shares(srcHost, h) === (want === "shared"));
  if (dstHost === undefined) skipForEnvironment(`the environment has no second host with ${want} storage`);
  return {
    src: ctx.driver,
    dst: await ctx.driverFor(dstHost),
    srcHost,
    dstHost,
    shared: shares(srcHost, dstHost),
  };
}

/** The policy the pair needs: block exactly when the hosts share no storage. */
export function policyFor(pair: HostPair, extra: Partial<MigrationPolicy> = {}): MigrationPolicy {
  return { ...DEFAULT_MIGRATION_POLICY, block: !pair.shared, ...extra };
}

/** The checks and preparation of Nova's sequence, up to (not including) `liveMigration`. */
export async function prepareMove(
  ctx: ScenarioContext,
  pair: HostPair,
  inst: Instance,
  policy: MigrationPolicy,
): Promise<MigrateData> {
  const srcInfo = await pair.src.getHostInfo(ctx.opts());
  ctx.step("checkCanLiveMigrateDestination");
  let data = overTheWire(
    await pair.dst.checkCanLiveMigrateDestination(inst, srcInfo, policy, ctx.opts()),
    "checkCanLiveMigrateDestination",
  );
  ctx.step("checkCanLiveMigrateSource");
  data = overTheWire(await pair.src.checkCanLiveMigrateSource(inst, data, ctx.opts()), "checkCanLiveMigrateSource");
  ctx.step("preLiveMigration");
  return overTheWire(await pair.dst.preLiveMigration(inst, data, {}, ctx.opts()), "preLiveMigration");
}

/** A whole move: checks, preparation, the move, and the destination's post step. */
export async function move(
  ctx: ScenarioContext,
  pair: HostPair,
  inst: Instance,
  policy: MigrationPolicy = policyFor(pair),
): Promise<void> {
  const data = await prepareMove(ctx, pair, inst, policy);
  ctx.step("liveMigration");
  await pair.src.liveMigration(inst, data, ctx.opts());
  ctx.step("postLiveMigrationAtDestination");
  await pair.dst.postLiveMigrationAtDestination(inst, data, {}, ctx.opts());
}

/** Spawns and brings an instance to PAUSED (pause) or SHUTDOWN (power off), checking each step. */
export async function spawnIn(
  ctx: ScenarioContext,
  state: "RUNNING" | "PAUSED" | "SHUTDOWN" | "SUSPENDED",
  overrides?: Partial<Instance>,
): Promise<Instance> {
  const inst = await ctx.spawn(overrides);
  const d = ctx.driver;
  switch (state) {
    case "RUNNING":
      break;
    case "PAUSED":
      ctx.step("pause");
      await d.pause(inst, ctx.opts());
      break;
    case "SUSPENDED":
      ctx.step("suspend");
      await d.suspend(inst, ctx.opts());
      break;
    case "SHUTDOWN":
      ctx.step("power off");
      await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
      break;
  }
  await expectState(ctx, inst, PowerState[state], state.toLowerCase());
  return inst;
}
