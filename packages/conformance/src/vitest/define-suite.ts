/**
 * `defineConformanceSuite`: the kit as ordinary vitest tests, one `it` per scenario, for a driver
 * author's own test files (about ten lines, containerd's `native_test.go` shape):
 *
 * ```ts
 * import { defineConformanceSuite } from "@virtkit/conformance/vitest";
 * defineConformanceSuite({ driver: { name: "mine" }, environment: myEnvironmentFactory });
 * ```
 *
 * Each test stores its {@link ScenarioResult} in `task.meta.virtkit`, which the CLI's reporter reads.
 * Unsupported scenarios still run their refusal check and pass; environment limits are reported
 * as skipped with the reason.
 */
import { describe, it } from "vitest";
import { DEFAULT_CLEANUP_TIMEOUT_MS, runScenario, scenarioDeadlineMs } from "../make-test.js";
import { collectNotes, type ConformanceRunOptions } from "../runner.js";
import { SCENARIOS, selectScenarios } from "../scenarios.js";
import { levelCounts, type ScenarioResult } from "../types.js";

declare module "vitest" {
  interface TaskMeta {
    /** The conformance result of this scenario test. */
    virtkit?: ScenarioResult;
    /** The notes of the environment the scenario ran in. */
    virtkitNotes?: readonly string[];
  }
}

/** Options of {@link defineConformanceSuite}: the run options minus what only the direct runner uses. */
export type ConformanceSuiteOptions = Omit<ConformanceRunOptions, "onResult" | "signal" | "suiteTimeoutMs"> & {
  /** Epoch ms after which scenarios not yet started are reported skipped (the CLI's `--suite-timeout`). */
  readonly suiteDeadline?: number;
};

/** Registers one vitest test per selected scenario. Call at the top level of a test file. */
export function defineConformanceSuite(options: ConformanceSuiteOptions): void {
  const selected = selectScenarios(options.scenarios ?? SCENARIOS, options);
  const level = options.level ?? "MUST";
  const scenarioTimeoutMs = options.scenarioTimeoutMs ?? 10_000;
  const cleanupTimeoutMs = options.cleanupTimeoutMs ?? DEFAULT_CLEANUP_TIMEOUT_MS;
  const concurrent = (options.parallel ?? 1) > 1;
  describe(`virtkit conformance: ${options.driver.name}`, () => {
    for (const def of selected) {
      const test = concurrent ? it.concurrent : it;
      // vitest's own timeout sits above the kit's deadlines (scenario, then cleanup), so the kit reports first.
      test(
        `${def.id} [${def.level}] ${def.title}`,
        { timeout: scenarioDeadlineMs(def, scenarioTimeoutMs) + cleanupTimeoutMs + 7_000 },
        async (ctx) => {
          if (options.suiteDeadline !== undefined && Date.now() > options.suiteDeadline) {
            ctx.task.meta.virtkit = {
              id: def.id,
              title: def.title,
              group: def.group,
              capability: def.capability,
              level: def.level,
              status: "skipped",
              reason: "suite timeout reached",
              durationMs: 0,
            };
            ctx.skip("suite timeout reached");
          }
          const notes = new Set<string>([...(options.driver.notes ?? []), ...(options.notes ?? [])]);
          const result = await runScenario(def, collectNotes(options.environment, notes), {
            scenarioTimeoutMs,
            cleanupTimeoutMs,
            slowCleanupMs: options.slowCleanupMs,
            service: options.service,
          });
          ctx.task.meta.virtkit = result;
          ctx.task.meta.virtkitNotes = [...notes];
          if (result.status === "skipped") ctx.skip(result.reason);
          if (result.status === "fail" && levelCounts(result.level, level)) {
            throw new Error(`${result.reason ?? "failed"}${result.step ? ` [step: ${result.step}]` : ""}`);
          }
        },
      );
    }
  });
}
