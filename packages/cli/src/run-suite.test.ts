// A named environment's fair deadline raises a shorter --scenario-timeout, never lowers a longer one.
import type { DriverPlugin } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { fairScenarioTimeout, type RunSuiteOptions } from "./run-suite.js";

const plugin = {
  environments: [
    { name: "slow", scenarioTimeoutMs: 180_000 },
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
