// The leak check is only as good as the environment's leftovers(): lifecycle.destroy fails an
// environment whose leftovers() cannot see a live instance, which would pass every leak check.
import { describe, expect, it } from "vitest";
import type { ConformanceEnvironmentFactory } from "@virtkit/core";
import { fakeEnvironment } from "./environments/fake-environment.js";
import { runScenario } from "./make-test.js";
import { SCENARIOS } from "./scenarios.js";

const destroy = SCENARIOS.find((s) => s.id === "lifecycle.destroy")!;

/** The fake's environment with leftovers() replaced. */
function withLeftovers(leftovers: () => Promise<readonly string[]>): ConformanceEnvironmentFactory {
  const inner = fakeEnvironment();
  return async (context) => ({ ...(await inner(context)), leftovers });
}

describe("lifecycle.destroy and the environment's leftovers()", () => {
  it("passes with the fake's own leftovers()", async () => {
    const result = await runScenario(destroy, fakeEnvironment());
    expect(result.status, result.reason).toBe("pass");
  });

  it("fails an environment whose leftovers() is blind, naming the instance", async () => {
    const result = await runScenario(destroy, withLeftovers(async () => []));
    expect(result.status).toBe("fail");
    expect(result.reason).toMatch(/leftovers\(\) does not list the running instance .+ \([0-9a-f-]{36}\)/);
  });

  it("fails one that lists only other things", async () => {
    const result = await runScenario(destroy, withLeftovers(async () => ["volume default/someone-else.qcow2"]));
    expect(result.status).toBe("fail");
  });
});
