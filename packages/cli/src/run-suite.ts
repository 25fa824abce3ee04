/** Resolves a driver and runs the suite through the chosen runner, feeding a live reporter. */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { ConformanceReporter, RunReport, ScenarioLevel } from "@virtkit/conformance";

/** Where driver packages are also looked up: the CLI's own dependencies. */
export const CLI_DIR = dirname(fileURLToPath(import.meta.url));

/** What to run. */
export interface RunSuiteOptions {
  readonly spec: string;
  readonly options: readonly string[];
  readonly focus: readonly string[];
  readonly skip: readonly string[];
  readonly level: ScenarioLevel;
  readonly scenarioTimeoutMs: number;
  /** Deadline of each scenario's cleanup (default: the kit's, 60 s). */
  readonly cleanupTimeoutMs?: number;
  readonly suiteTimeoutMs?: number;
  readonly parallel: number;
  readonly runner: "vitest" | "direct";
  readonly reporter?: ConformanceReporter;
}

/** Runs one driver; driver load and option errors surface as typed virtkit errors. */
export async function runSuite(o: RunSuiteOptions): Promise<RunReport> {
  const { resolveDriver, runConformance, runWithVitest, selectScenarios, SCENARIOS } = await import("@virtkit/conformance");
  const resolved = await resolveDriver(o.spec, o.options, { paths: [CLI_DIR] });
  const total = selectScenarios(SCENARIOS, o).length;
  o.reporter?.onStart?.(resolved.descriptor, total);
  let finished = 0;
  const onResult = (r: Parameters<NonNullable<ConformanceReporter["onResult"]>>[0]) => o.reporter?.onResult?.(r, ++finished, total);
  if (o.runner === "vitest") {
    return runWithVitest({
      settings: {
        spec: o.spec,
        options: o.options,
        level: o.level,
        focus: o.focus,
        skip: o.skip,
        scenarioTimeoutMs: o.scenarioTimeoutMs,
        ...(o.cleanupTimeoutMs !== undefined ? { cleanupTimeoutMs: o.cleanupTimeoutMs } : {}),
        parallel: o.parallel,
        paths: [CLI_DIR],
      },
      driver: resolved.descriptor,
      suiteTimeoutMs: o.suiteTimeoutMs,
      onResult,
    });
  }
  return runConformance({
    driver: resolved.descriptor,
    environment: resolved.environment,
    service: resolved.service,
    level: o.level,
    focus: o.focus,
    skip: o.skip,
    scenarioTimeoutMs: o.scenarioTimeoutMs,
    cleanupTimeoutMs: o.cleanupTimeoutMs,
    suiteTimeoutMs: o.suiteTimeoutMs,
    parallel: o.parallel,
    onResult: (r) => onResult(r),
  });
}
