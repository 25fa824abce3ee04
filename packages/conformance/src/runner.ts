/**
 * The direct (in-process) runner: the scenario table through `makeTest`, with focus/skip,
 * parallelism and a suite deadline. The vitest runner uses the same `runScenario`, so both give
 * the same results.
 */
import type { ConformanceEnvironmentFactory } from "@virtkit/core";
import { runScenario } from "./make-test.js";
import type { AdminPasswordServiceFactory, ScenarioDefinition } from "./scenario.js";
import { SCENARIOS, selectScenarios } from "./scenarios.js";
import { summarize, type DriverDescriptor, type RunReport, type ScenarioLevel, type ScenarioResult } from "./types.js";

/** Options shared by every way of running the suite. */
export interface ConformanceRunOptions {
  /** What is tested (name, version, spec) for the report. */
  readonly driver: DriverDescriptor;
  /** Builds a fresh environment (with drivers) for every scenario. */
  readonly environment: ConformanceEnvironmentFactory;
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
  const selected = selectScenarios(options.scenarios ?? SCENARIOS, options);
  const results: (ScenarioResult | undefined)[] = new Array(selected.length);
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const suiteTimer =
    options.suiteTimeoutMs !== undefined
      ? setTimeout(() => controller.abort(new Error("suite timeout")), options.suiteTimeoutMs)
      : undefined;
  const notes = new Set<string>([...(options.driver.notes ?? []), ...(options.notes ?? [])]);
  const envNotes = collectNotes(options.environment, notes);

  let next = 0;
  let finished = 0;
  const worker = async () => {
    while (next < selected.length) {
      const index = next++;
      const def = selected[index]!;
      let result: ScenarioResult;
      if (controller.signal.aborted) {
        result = {
          id: def.id,
          title: def.title,
          group: def.group,
          capability: def.capability,
          level: def.level,
          status: "skipped",
          reason: options.signal?.aborted
            ? "the run was aborted"
            : `suite timeout (${options.suiteTimeoutMs} ms) reached`,
          durationMs: 0,
        };
      } else {
        result = await runScenario(def, envNotes, {
          scenarioTimeoutMs: options.scenarioTimeoutMs,
          cleanupTimeoutMs: options.cleanupTimeoutMs,
          slowCleanupMs: options.slowCleanupMs,
          signal: controller.signal,
          service: options.service,
        });
      }
      results[index] = result;
      finished += 1;
      options.onResult?.(result, finished, selected.length);
    }
  };
  try {
    const n = Math.max(1, Math.min(options.parallel ?? 1, selected.length || 1));
    await Promise.all(Array.from({ length: n }, worker));
  } finally {
    if (suiteTimer) clearTimeout(suiteTimer);
    options.signal?.removeEventListener("abort", onAbort);
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

/** Wraps a factory so the notes of every environment it builds end up in `notes`. */
export function collectNotes(
  factory: ConformanceEnvironmentFactory,
  notes: Set<string>,
): ConformanceEnvironmentFactory {
  return async (ctx) => {
    const env = await factory(ctx);
    for (const n of env.notes) notes.add(n);
    return env;
  };
}
