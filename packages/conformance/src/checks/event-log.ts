/**
 * The lifecycle events of one scenario, and the check that an operation announced exactly one of
 * the sequences it may (in order, once, this host), with the transient pauses a real hypervisor
 * shows folded the way Nova's libvirt host folds them.
 */
import type { Instance, LifecycleEvent, LifecycleTransition } from "@virtkit/core";
import { check, fail, waitFor } from "../assertions.js";
import type { EventSequence } from "../expected-transitions.js";
import type { ScenarioContext } from "../scenario.js";

/** How long events already due may take to arrive (a daemon's event stream lags its replies). */
const EVENT_WAIT_MS = 500;
/** Quiet time after the expected events, so a late duplicate still shows: enough for a timer turn. */
const EVENT_SETTLE_MS = 2;

/**
 * Waits EVENT_SETTLE_MS, then for the check phase: node runs a due timer list whole before the
 * next, so without the setImmediate a duplicate due earlier could still be queued behind this one.
 */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, EVENT_SETTLE_MS));
  await new Promise((r) => setImmediate(r));
}

/** Every lifecycle event of the scenario, from before the spawn on. */
export class EventLog {
  readonly #events: LifecycleEvent[] = [];
  readonly #off: (() => void) | undefined;

  constructor(private readonly ctx: ScenarioContext) {
    this.#off = ctx.driver.capabilities.lifecycleEvents
      ? ctx.driver.registerEventListener((e) => this.#events.push(e))
      : undefined;
  }

  get enabled(): boolean {
    return this.#off !== undefined;
  }

  /** A position to count from. */
  get mark(): number {
    return this.#events.length;
  }

  /**
   * Events about `uuid` since `from`. Events about other instances are left out: a hypervisor
   * shared with parallel scenarios (libvirt's test:///default) reports theirs too.
   */
  of(uuid: string, from: number): LifecycleEvent[] {
    return this.#events.slice(from).filter((e) => e.instanceUuid === uuid);
  }

  /** Waits until `count` events about `uuid` arrived since `from`; false if they did not in time. */
  waitForCount(uuid: string, from: number, count: number): Promise<boolean> {
    return waitFor(() => this.of(uuid, from).length >= count, EVENT_WAIT_MS, this.ctx.signal);
  }

  stop(): void {
    this.#off?.();
  }
}

export const names = (events: readonly LifecycleEvent[]) => events.map((e) => e.transition);
const same = (a: EventSequence, b: EventSequence) => a.length === b.length && a.every((t, i) => t === b[i]);
export const showSeq = (s: EventSequence) => `[${s.join(", ")}]`;

/**
 * A real hypervisor pauses a guest briefly while it works on it: QEMU pauses before a managed save
 * or an internal snapshot, and restores a saved guest paused, then resumes it. Nova treats those as
 * transient (its libvirt host holds a PAUSED event back and drops it when the guest resumes), so the
 * kit folds them before comparing: PAUSED then RESUMED is nothing, a PAUSED just before SUSPENDED or
 * STOPPED is dropped, and a RESUMED right after STARTED adds nothing. Repeats are never folded.
 */
export function withoutTransients(seq: EventSequence): LifecycleTransition[] {
  const out: LifecycleTransition[] = [];
  for (const t of seq) {
    const last = out[out.length - 1];
    if (t === "RESUMED" && last === "PAUSED") {
      out.pop();
      continue;
    }
    if ((t === "SUSPENDED" || t === "STOPPED") && last === "PAUSED") out.pop();
    if (t === "RESUMED" && last === "STARTED") continue;
    out.push(t);
  }
  return out;
}

/**
 * The events about `inst` since `from` must be exactly one of `allowed`, all from this host. Waits
 * for a matching sequence to arrive, then for a quiet moment, so a late duplicate still counts.
 */
export async function expectEvents(
  ctx: ScenarioContext,
  log: EventLog,
  inst: Instance,
  from: number,
  allowed: readonly EventSequence[],
  after: string,
): Promise<void> {
  if (!log.enabled) return;
  ctx.step(`lifecycle events after ${after}`);
  const deadline = Date.now() + EVENT_WAIT_MS;
  let stableAt = -1;
  for (;;) {
    const got = withoutTransients(names(log.of(inst.uuid, from)));
    const ok = allowed.some((s) => same(s, got));
    if (ok && got.length === stableAt) break;
    if (Date.now() >= deadline || ctx.signal.aborted) break;
    stableAt = ok ? got.length : -1;
    await settle();
  }
  const events = log.of(inst.uuid, from);
  const got = withoutTransients(names(events));
  if (!allowed.some((s) => same(s, got))) {
    fail(`after ${after}: lifecycle events ${showSeq(got)}, expected ${allowed.map(showSeq).join(" or ")}`);
  }
  for (const e of events) {
    check(
      e.host === ctx.host,
      `after ${after}: the ${e.transition} event names host ${JSON.stringify(e.host)}, expected ${JSON.stringify(ctx.host)}`,
    );
    check(Number.isFinite(e.timestamp), `after ${after}: the ${e.transition} event has no valid timestamp`);
  }
}

