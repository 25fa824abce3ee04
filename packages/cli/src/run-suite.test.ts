// A named environment's fair deadline raises a shorter --scenario-timeout, never lowers a longer one;
// the run's parallelism is its own, else the environment's default, lowered to its fair maximum.
import type { DriverPlugin } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { DEFAULT_PARALLEL, fairParallel, fairScenarioTimeout, type RunSuiteOptions } from "./run-suite.js";

const plugin = {
  environments: [
    { name: "slow", scenarioTimeoutMs: 180_000, maxParallel: 2 },
    { name: "plain" },
  ],
} as unknown as DriverPlugin;
const run = (scenarioTimeoutMs: number, environment?: string) =>
  ({ scenarioTimeoutMs, ...(environment !== undefined ? { environment } : {}) }) as RunSuiteOptions;

describe("fairScenarioTimeout", () => {
  it("raises a shorter deadline to the environment's, keeps a longer one, and leaves other runs alone", () => {
    expect(fairScenarioTimeout(run(10_000, "slow"), plugin)).toBe(180_000);
    expect(fairScenarioTimeout(run(300_000, "slow"), plugin)).toBe(300_000);
    expect(fairScenarioTimeout(run(10_000, "plain"), plugin)).toBe(10_000);
    expect(fairScenarioTimeout(run(10_000), plugin)).toBe(10_000);
  });
});

describe("fairParallel", () => {
  const given = (parallel?: number, environment?: string) => ({ ...(parallel !== undefined ? { parallel } : {}), ...(environment !== undefined ? { environment } : {}) });
  it("takes the run's own, else the environment's default, else 4", () => {
    expect(fairParallel(given(3), plugin, { defaultParallel: 8 })).toEqual({ wanted: 3, parallel: 3 });
    expect(fairParallel(given(), plugin, { defaultParallel: 8 })).toEqual({ wanted: 8, parallel: 8 });
    expect(fairParallel(given(), plugin, {})).toEqual({ wanted: DEFAULT_PARALLEL, parallel: DEFAULT_PARALLEL });
    expect(fairParallel(given(), plugin)).toEqual({ wanted: 4, parallel: 4 });
  });
  it("ignores a default that is no whole number from 1 to 64 (a plugin's mistake must not stall or flood the run)", () => {
    for (const bad of [0, -1, 1.5, 65, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(fairParallel(given(), plugin, { defaultParallel: bad })).toEqual({ wanted: 4, parallel: 4 });
    }
  });
  it("lowers either to what the named environment runs fairly", () => {
    expect(fairParallel(given(6, "slow"), plugin)).toEqual({ wanted: 6, parallel: 2 });
    expect(fairParallel(given(undefined, "slow"), plugin, { defaultParallel: 8 })).toEqual({ wanted: 8, parallel: 2 });
    expect(fairParallel(given(6, "plain"), plugin)).toEqual({ wanted: 6, parallel: 6 });
  });
});

describe("runSuite with the direct runner, interrupted before its first scenario", () => {
  it("reports every selected scenario not run instead of failing with no report (as the vitest runner does)", async () => {
    const { runSuite } = await import("./run-suite.js");
    const controller = new AbortController();
    const report = await runSuite({
      spec: "fake",
      options: [],
      focus: ["^lifecycle\\.(spawn|not-found)$"],
      skip: [],
      level: "MUST",
      scenarioTimeoutMs: 30_000,
      runner: "direct",
      signal: controller.signal,
      // Ctrl-C once the run has started, before the driver's setup check (a nested run's hosts starting).
      onReady: () => controller.abort(new Error("interrupted by SIGINT")),
    });
    expect(report.results.length).toBeGreaterThan(0);
    for (const r of report.results) {
      expect(r.status).toBe("skipped");
      expect(r.reason).toBe("the run was aborted");
    }
  });
});
