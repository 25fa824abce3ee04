/**
 * `defineConformanceSuite`: the kit as ordinary vitest tests, one `it` per scenario, for a driver
 * author's own test files (about ten lines, containerd's `native_test.go` shape):
 *
 * ```ts
 * import { defineConformanceSuite } from "@virtkit/conformance/vitest";
 * defineConformanceSuite({ driver: { name: "mine" }, environment: myEnvironmentFactory });
 * ```
 *
 * What vitest shows agrees with the kit's verdict (and so does vitest's own JUnit output):
 * - pass: passed;
 * - fail at or above the run's level (`level`, default MUST): failed, with the reason, the step
 *   and the driver's file and line;
 * - fail below the level (a SHOULD scenario under MUST): skipped, with the note
 *   `SHOULD failure below level MUST (does not fail the run): <reason>`;
 * - unsupported (not declared, and refused as the contract asks): skipped, `unsupported: <reason>`;
 * - environment limit: skipped, `environment limit: <reason>`.
 * Each non-pass also carries a `virtkit.*` annotation (vitest's JUnit writes them as properties),
 * and every test stores its {@link ScenarioResult} in `task.meta.virtkit` for the kit's reporters
 * (`@virtkit/conformance/vitest-reporter`).
 */
import { setMaxListeners } from "node:events";
import { describe, it, type TestContext } from "vitest";
import { withHostsLock } from "../hosts-lock.js";
import { DEFAULT_CLEANUP_TIMEOUT_MS, runScenario, scenarioDeadlineMs } from "../make-test.js";
import { collectNotes, notRun, runNotes, scheduleScenarios, startOrder, type ConformanceRunOptions } from "../runner.js";
import type { ScenarioDefinition } from "../scenario.js";
import { levelCounts, type ScenarioLevel, type ScenarioResult } from "../types.js";
import "./task-meta.js";
import { assertSupportedVitest } from "./vitest-version.js";

/** Options of {@link defineConformanceSuite}: the run options minus what only the direct runner uses. */
export type ConformanceSuiteOptions = Omit<ConformanceRunOptions, "onResult" | "signal" | "suiteTimeoutMs"> & {
  /** Epoch ms after which scenarios not yet started are reported skipped (the CLI's `--suite-timeout`). */
  readonly suiteDeadline?: number;
  /** The `--suite-timeout` behind `suiteDeadline`, for what a scenario it cuts says. */
  readonly suiteTimeoutMs?: number;
  /** True once the run was interrupted (Ctrl-C in the CLI): scenarios not yet started are reported skipped. */
  readonly stopRequested?: () => boolean;
  /**
   * Registers the scenarios in start order (see `startOrder`: with `parallel` above 1, those that
   * wait longest first) instead of the table's. vitest's own reporters list tests as registered, so
   * it is off by default; the CLI's runner turns it on and reports in the table's order itself.
   */
  readonly longestWaitsFirst?: boolean;
};

/**
 * The signal a running scenario gets: aborted at the suite deadline or when the run is interrupted,
 * as the direct runner's is, so the scenario stops, its cleanup runs here in the worker and its
 * leaks are reported (vitest's hard stop, later, is only for a scenario that ignores it).
 */
function runSignal(options: ConformanceSuiteOptions): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  // One listener per running scenario, each let go as it ends (as in the direct runner).
  setMaxListeners(Math.max(10, (options.parallel ?? 1) + 4), controller.signal);
  const timer =
    options.suiteDeadline !== undefined
      ? setTimeout(() => {
          const ms = options.suiteTimeoutMs !== undefined ? ` (${options.suiteTimeoutMs} ms)` : "";
          controller.abort(new Error(`suite timeout${ms} reached`));
        }, Math.max(0, options.suiteDeadline - Date.now()))
      : undefined;
  const stop = options.stopRequested;
  const watch = stop ? setInterval(() => stop() && controller.abort(new Error("the run was interrupted")), 200) : undefined;
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      clearInterval(watch);
    },
  };
}

/** The vitest note (and annotation) of a result that is not a plain pass or an at-level failure. */
export function skipNote(result: ScenarioResult, level: ScenarioLevel): { type: string; note: string } | undefined {
  switch (result.status) {
    case "unsupported":
      return { type: "virtkit.unsupported", note: `unsupported: ${result.reason ?? "capability not declared"}` };
    case "skipped":
      return { type: "virtkit.skipped", note: result.reason ?? "skipped" };
    case "fail":
      if (levelCounts(result.level, level)) return undefined;
      return {
        type: "virtkit.below-level-failure",
        note: `${result.level} failure below level ${level} (does not fail the run): ${failureText(result)}`,
      };
    case "pass":
      return undefined;
  }
}

/** A failure's reason, step and driver location in one text. */
export function failureText(result: ScenarioResult): string {
  return `${result.reason ?? "failed"}${result.step ? ` [step: ${result.step}]` : ""}${result.location ? ` (at ${result.location})` : ""}`;
}

/** Registers one vitest test per selected scenario. Call at the top level of a test file. */
export function defineConformanceSuite(options: ConformanceSuiteOptions): void {
  assertSupportedVitest();
  const selected = scheduleScenarios(options);
  const level = options.level ?? "MUST";
  const scenarioTimeoutMs = options.scenarioTimeoutMs ?? 10_000;
  const cleanupTimeoutMs = options.cleanupTimeoutMs ?? DEFAULT_CLEANUP_TIMEOUT_MS;
  const concurrent = (options.parallel ?? 1) > 1;
  // Where hosts are shared, a scenario may first wait for the lock (see withHostsLock): behind one
  // that runs beside others (at most the longest) and every one that runs alone. vitest's timeout
  // counts that wait, so it gets room for it; the kit's own deadline starts after it.
  const whole = (d: ScenarioDefinition) => scenarioDeadlineMs(d, scenarioTimeoutMs) + cleanupTimeoutMs;
  const lockWaitMs =
    options.environment.sharedHosts === true && concurrent
      ? Math.max(0, ...selected.map(whole)) +
        selected.filter((d) => d.exclusive !== undefined).reduce((n, d) => n + whole(d), 0)
      : 0;
  const run = { driver: options.driver, level };
  let stoppedBy: string | undefined;
  const register = () => {
    // Registration order is vitest's start order, and the order its reporters list.
    const order = options.longestWaitsFirst === true ? startOrder(selected, options).map((e) => e.def) : selected;
    for (const def of order) {
      const test = concurrent ? it.concurrent : it;
      // vitest's own timeout sits above the kit's deadlines (scenario, then cleanup), so the kit reports first.
      test(
        `${def.id} [${def.level}] ${def.title}`,
        { timeout: scenarioDeadlineMs(def, scenarioTimeoutMs) + cleanupTimeoutMs + 7_000 + lockWaitMs },
        async (ctx: TestContext) => {
          ctx.task.meta.virtkitRun = run;
          const whyNotRun =
            options.suiteDeadline !== undefined && Date.now() > options.suiteDeadline
              ? "suite timeout reached"
              : options.stopRequested?.()
                ? "not run: the run was interrupted"
                : stoppedBy !== undefined
                ? `not run: --fail-fast stopped the run after ${stoppedBy} failed`
                : undefined;
          if (whyNotRun !== undefined) {
            ctx.task.meta.virtkit = notRun(def, whyNotRun);
            ctx.skip(whyNotRun);
          }
          const notes = new Set<string>([...(options.driver.notes ?? []), ...(options.notes ?? []), ...runNotes(options)]);
          const cut = runSignal(options);
          const result = await withHostsLock(options.environment, def, () =>
            runScenario(def, collectNotes(options.environment, notes, options.plugin), {
              scenarioTimeoutMs,
              cleanupTimeoutMs,
              slowCleanupMs: options.slowCleanupMs,
              service: options.service,
              signal: cut.signal,
            }),
          ).finally(cut.dispose);
          ctx.task.meta.virtkit = result;
          ctx.task.meta.virtkitNotes = [...notes];
          for (const w of result.warnings ?? []) await ctx.annotate(w, "virtkit.warning");
          const skip = skipNote(result, level);
          if (skip) {
            await ctx.annotate(skip.note, skip.type);
            ctx.skip(skip.note);
          }
          if (result.status === "fail") {
            if (options.failFast) stoppedBy ??= result.id;
            if (result.location) await ctx.annotate(result.location, "virtkit.location");
            throw new Error(failureText(result));
          }
        },
      );
    }
  };
  try {
    describe(`virtkit conformance: ${options.driver.name}`, register);
  } catch (err) {
    throw new Error(
      "defineConformanceSuite must be called at the top level of a test file that vitest runs, and " +
        "@virtkit/conformance must resolve the same vitest as the runner (vitest is its peer dependency: " +
        `install one vitest in the project, not a second copy): ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}
