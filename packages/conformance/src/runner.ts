/**
 * The direct (in-process) runner: the scenario table through `makeTest`, with focus/skip,
 * parallelism and a suite deadline. The vitest runner uses the same `runScenario`, so both give
 * the same results.
 */
import { setMaxListeners } from "node:events";
import type { ConformanceEnvironmentFactory, DriverPlugin } from "@virtkit/core";
import { timerDelay } from "@virtkit/core";
import {
  DEFAULT_SCENARIO_TIMEOUT_MS,
  declares,
  environmentLimit,
  refusalOf,
  runScenario,
  scenarioDeadlineMs,
} from "./make-test.js";
import { withProbeDriver } from "./driver-probe.js";
import { withHostsLock } from "./hosts-lock.js";
import { forEachLimited } from "./limited.js";
import { isProductionPath, productionPath } from "./resolve-driver.js";
import type { AdminPasswordServiceFactory, ScenarioDefinition } from "./scenario.js";
import { SCENARIOS, selectScenarios } from "./scenarios.js";
import {
  levelCounts,
  summarize,
  type DriverDescriptor,
  type RunReport,
  type ScenarioLevel,
  type ScenarioResult,
} from "./types.js";

/** Options shared by every way of running the suite. */
export interface ConformanceRunOptions {
  /** What is tested (name, version, spec) for the report. */
  readonly driver: DriverDescriptor;
  /** Builds a fresh environment (with drivers) for every scenario. */
  readonly environment: ConformanceEnvironmentFactory;
  /**
   * The plugin the drivers come from. With it, an environment offering `driverSetup` has every
   * driver built through the plugin's `register` and resolved by its token, as in production
   * (`resolveDriver`'s environments already are). Without it such an environment's own
   * `createDriver` is used, and the report's notes say that the production path was not tested.
   */
  readonly plugin?: DriverPlugin;
  /** The compute service the password group goes through. */
  readonly service?: AdminPasswordServiceFactory;
  /** Failures at this level or stricter fail the run (default MUST). */
  readonly level?: ScenarioLevel;
  /** Regular expressions over id and title: run only matching scenarios. */
  readonly focus?: readonly string[];
  /** Regular expressions over id and title: leave matching scenarios out. */
  readonly skip?: readonly string[];
  /** Per-scenario deadline in ms (default 10 000). */
  readonly scenarioTimeoutMs?: number;
  /** Deadline of each scenario's cleanup in ms (default 60 000); only a cleanup that misses it fails. */
  readonly cleanupTimeoutMs?: number;
  /** Cleanup slower than this (ms, default 5 000) is noted as a warning. */
  readonly slowCleanupMs?: number;
  /** Whole-run deadline in ms (default: none); scenarios not started by then are skipped. */
  readonly suiteTimeoutMs?: number;
  /** Scenarios run at once (default 1). Each has its own environment, so this is safe. */
  readonly parallel?: number;
  /** Notes to add to the report besides the environment's. */
  readonly notes?: readonly string[];
  /** Replaces the scenario table (tests of the kit itself). */
  readonly scenarios?: readonly ScenarioDefinition[];
  /** Shuffles the scenario order with this seed (the same seed gives the same order). */
  readonly seed?: number;
  /** Per-scenario deadlines in ms by scenario id; they replace the scenario's own (not scaled). */
  readonly timeouts?: Readonly<Record<string, number>>;
  /** Starts no scenario after the first failure at the run's level; the rest are skipped with the reason. */
  readonly failFast?: boolean;
  /** Called as each scenario finishes (live reporters). */
  readonly onResult?: (result: ScenarioResult, index: number, total: number) => void;
  /** Aborts the run. */
  readonly signal?: AbortSignal;
}

/** Runs the suite in this process and returns the report. */
export async function runConformance(options: ConformanceRunOptions): Promise<RunReport> {
  const startedAt = new Date();
  const t0 = performance.now();
  const level = options.level ?? "MUST";
  const selected = scheduleScenarios(options);
  const results: (ScenarioResult | undefined)[] = new Array(selected.length);
  const controller = new AbortController();
  // Every running scenario listens on the run's signal (and lets go when it ends): as many
  // listeners as scenarios at once is the design, not the leak Node warns of past 10.
  setMaxListeners(Math.max(10, (options.parallel ?? 1) + 4), controller.signal);
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  // Aborted before the run began: every scenario is reported not run, as for a later abort.
  if (options.signal?.aborted) onAbort();
  const suiteTimer =
    options.suiteTimeoutMs !== undefined
      ? setTimeout(() => controller.abort(new Error(`suite timeout (${options.suiteTimeoutMs} ms) reached`)), timerDelay(options.suiteTimeoutMs))
      : undefined;
  const notes = new Set<string>([...(options.driver.notes ?? []), ...(options.notes ?? []), ...runNotes(options)]);
  const envNotes = collectNotes(options.environment, notes, options.plugin);

  let finished = 0;
  // Fail-fast stops starting scenarios; those already running finish (aborting them would muddle their results).
  let stoppedBy: string | undefined;
  const runOne = async (def: ScenarioDefinition, index: number): Promise<void> => {
    let result: ScenarioResult;
    if (stoppedBy !== undefined && !controller.signal.aborted) {
      result = notRun(def, `not run: --fail-fast stopped the run after ${stoppedBy} failed`);
    } else if (controller.signal.aborted) {
      result = notRun(
        def,
        options.signal?.aborted ? "the run was aborted" : `suite timeout (${options.suiteTimeoutMs} ms) reached`,
      );
    } else {
      result = await withHostsLock(options.environment, def, () =>
        runScenario(def, envNotes, {
          scenarioTimeoutMs: options.scenarioTimeoutMs,
          cleanupTimeoutMs: options.cleanupTimeoutMs,
          slowCleanupMs: options.slowCleanupMs,
          signal: controller.signal,
          service: options.service,
        }),
      );
      if (options.failFast && result.status === "fail" && levelCounts(result.level, level)) stoppedBy ??= result.id;
    }
    results[index] = result;
    finished += 1;
    options.onResult?.(result, finished, selected.length);
  };
  try {
    await forEachLimited(startOrder(selected, options), options.parallel ?? 1, ({ def, index }) => runOne(def, index));
  } finally {
    if (suiteTimer) clearTimeout(suiteTimer);
    options.signal?.removeEventListener("abort", onAbort);
    // Hosts the factory shared between scenarios (containers started once per run) go now.
    await options.environment.dispose?.();
  }
  const done = results.filter((r): r is ScenarioResult => r !== undefined);
  return {
    driver: options.driver,
    notes: [...notes],
    level,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    runner: "direct",
    results: done,
    ...summarize(done, level),
  };
}

/**
 * Wraps a factory so the notes of every environment it builds end up in `notes`; given the plugin,
 * its drivers are built through the production path (see {@link ConformanceRunOptions.plugin}).
 */
export function collectNotes(
  factory: ConformanceEnvironmentFactory,
  notes: Set<string>,
  plugin?: DriverPlugin,
): ConformanceEnvironmentFactory {
  const built = plugin !== undefined ? productionPath(plugin, factory) : factory;
  return async (ctx) => {
    const env = await built(ctx);
    for (const n of env.notes) notes.add(n);
    if (typeof env.driverSetup === "function" && !isProductionPath(env)) {
      // Said, not silent: the environment asked for the production path and the run could not give it.
      notes.add(
        "the environment offers driverSetup, but the run was given no plugin: its drivers came from the environment's createDriver, " +
          "not through the plugin's register (pass plugin to test the path production uses)",
      );
    }
    return env;
  };
}

/** A result for a scenario that was not started. */
export function notRun(def: ScenarioDefinition, reason: string): ScenarioResult {
  return {
    id: def.id,
    title: def.title,
    group: def.group,
    capability: def.capability,
    level: def.level,
    status: "skipped",
    reason,
    durationMs: 0,
  };
}

/** Notes a run's own settings add to its report (the shuffle seed, to repeat the order). */
export function runNotes(options: Pick<ConformanceRunOptions, "seed">): string[] {
  return options.seed !== undefined
    ? [`scenario order shuffled with seed ${options.seed} (repeat it with --shuffle --seed ${options.seed})`]
    : [];
}

/**
 * The scenarios a run executes, in order: the table (or `scenarios`) filtered by focus/skip,
 * per-scenario `timeouts` applied, shuffled when a `seed` is given. Every runner uses this.
 */
export function scheduleScenarios(
  options: Pick<ConformanceRunOptions, "scenarios" | "focus" | "skip" | "seed" | "timeouts" | "scenarioTimeoutMs">,
): ScenarioDefinition[] {
  const runTimeoutMs = options.scenarioTimeoutMs ?? DEFAULT_SCENARIO_TIMEOUT_MS;
  const selected = selectScenarios(options.scenarios ?? SCENARIOS, options).map((def) => {
    const ms = options.timeouts?.[def.id];
    // `scenarioDeadlineMs` scales a scenario's own deadline by the run's pace: store the inverse so it comes out as `ms`.
    return ms === undefined ? def : { ...def, timeoutMs: (ms * DEFAULT_SCENARIO_TIMEOUT_MS) / runTimeoutMs };
  });
  return options.seed === undefined ? selected : shuffle(selected, options.seed);
}

/**
 * The order a run starts its scenarios in. Run several at once, the scenarios expected to take
 * longest go first (longest processing time first): their waits on purpose (`waitsMs`) plus their
 * guest starts (`guestStarts`, default 1) times what one costs in the environment
 * (`guestStartMs`, default 0); the rest keep the table's order. One at a time, shuffled, or with
 * `failFast` (whose first failure should be the table's first), the order is `selected`'s. Each
 * entry keeps its index in `selected`, where its result is reported.
 */
export function startOrder(
  selected: readonly ScenarioDefinition[],
  options: Pick<ConformanceRunOptions, "seed" | "parallel" | "failFast"> & {
    readonly environment?: { readonly guestStartMs?: number; readonly sharedHosts?: boolean };
  },
): { readonly def: ScenarioDefinition; readonly index: number }[] {
  const entries = selected.map((def, index) => ({ def, index }));
  if (options.seed !== undefined || options.failFast === true || (options.parallel ?? 1) <= 1) return entries;
  // A number that is not positive and finite counts as none (NaN would unsettle the whole sort).
  const positive = (n: unknown): number => (typeof n === "number" && Number.isFinite(n) && n > 0 ? n : 0);
  const startMs = positive(options.environment?.guestStartMs);
  const expected = (d: ScenarioDefinition): number =>
    positive(d.waitsMs) + (d.guestStarts === undefined ? 1 : positive(d.guestStarts)) * startMs;
  // Where hosts are shared, a scenario that must run alone goes first: at the start it holds one
  // lane's worth of others back, later it would wait for every running one to finish.
  const alone = (d: ScenarioDefinition): number => (options.environment?.sharedHosts === true && d.exclusive !== undefined ? 1 : 0);
  // Array.prototype.sort is stable: equal expectations keep the table's order.
  return entries.sort((a, b) => alone(b.def) - alone(a.def) || expected(b.def) - expected(a.def));
}

/** Fisher–Yates with a seeded PRNG (mulberry32): the same seed, the same order, on every machine. */
export function shuffle<T>(items: readonly T[], seed: number): T[] {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** What `--dry-run` says about one scenario. */
export interface PlannedScenario {
  readonly id: string;
  readonly title: string;
  readonly group: string;
  readonly capability: ScenarioDefinition["capability"];
  readonly level: ScenarioLevel;
  /**
   * - `run`: declared, the scenario runs;
   * - `refuse`: not declared, the kit checks that the driver refuses it (then reports unsupported);
   * - `unsupported`: not declared, reported unsupported without a call;
   * - `skip`: the environment cannot run it (the reason says why).
   */
  readonly action: "run" | "refuse" | "unsupported" | "skip";
  readonly reason?: string;
  /** The scenario's deadline in this run, ms. */
  readonly timeoutMs: number;
}

/** The plan of a run: what would run, in order, and why the rest would not. */
export interface RunPlan {
  readonly driver: DriverDescriptor;
  readonly level: ScenarioLevel;
  readonly capabilities: Readonly<Record<string, boolean>>;
  readonly scenarios: readonly PlannedScenario[];
  readonly notes: readonly string[];
}

/**
 * `--dry-run`: builds ONE environment and the primary host's driver (to learn what it declares
 * and what the environment cannot do), runs no scenario, tears both down, and returns the plan.
 */
export async function planRun(options: ConformanceRunOptions): Promise<RunPlan> {
  const selected = scheduleScenarios(options);
  const factory = options.plugin !== undefined ? productionPath(options.plugin, options.environment) : options.environment;
  const timeoutMs = options.scenarioTimeoutMs ?? DEFAULT_SCENARIO_TIMEOUT_MS;
  const probe = { timeoutMs, prefix: `vkplan${Date.now().toString(36)}`, ...(options.signal ? { signal: options.signal } : {}) };
  return withProbeDriver(factory, probe, (driver, env) => {
    const scenarios = selected.map((def): PlannedScenario => {
      const base = {
        id: def.id,
        title: def.title,
        group: def.group,
        capability: def.capability,
        level: def.level,
        timeoutMs: scenarioDeadlineMs(def, timeoutMs),
      };
      const caps = [...(def.capability ? [def.capability] : []), ...(def.alsoNeeds ?? [])];
      const missing = caps.filter((c) => driver.capabilities[c] !== true);
      if (declares(def, driver)) {
        const limit = environmentLimit(def, env);
        return limit !== undefined ? { ...base, action: "skip", reason: `environment limit: ${limit}` } : { ...base, action: "run" };
      }
      const why = `capability ${missing.join(", ")} not declared`;
      return refusalOf(def, driver)
        ? { ...base, action: "refuse", reason: `${why}: checks that it is refused with UnsupportedOperationError` }
        : { ...base, action: "unsupported", reason: why };
    });
    return {
      driver: options.driver,
      level: options.level ?? "MUST",
      capabilities: { ...driver.capabilities },
      scenarios,
      notes: [...new Set([...(options.driver.notes ?? []), ...(options.notes ?? []), ...runNotes(options), ...env.notes])],
    };
  });
}
