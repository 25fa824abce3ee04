/**
 * The default suite's model-based scenario: a short exploration with a fixed seed, so every run
 * tries the same sequences (a failure replays with `--explore --seed`). It runs on the scenario's
 * own environment and driver; each sequence destroys what it made, and the kit's cleanup and leak
 * check follow as for any scenario.
 *
 * Kept cheap for the default run (the fake's whole CLI run has a 3 s goal): a few short sequences,
 * without the steps whose cost is elsewhere (password setting hashes in the guest; migration
 * waits for a copy) and without soft reboot, whose cells are SHOULD while this scenario is a MUST.
 * `virtkit conformance run --explore` explores all of them, for as long as asked.
 */
import type { ComputeDriver } from "@virtkit/core";
import { fail } from "../assertions.js";
import type { ScenarioContext, ScenarioDefinition } from "../scenario.js";
import { EXPLORE_OPERATIONS, explore, formatExploreResult, type TargetProvider } from "./explore.js";

/** The fixed seed of the default suite's exploration. */
export const EXPLORE_SCENARIO_SEED = 20261130;

/** How much the default suite explores. */
export const EXPLORE_SCENARIO_BUDGET = { runs: 5, maxSteps: 10 } as const;

/** Targets on the scenario's own environment and drivers. */
function scenarioTargets(ctx: ScenarioContext): TargetProvider {
  return {
    async open() {
      return {
        env: ctx.env,
        driverFor: (host: string): Promise<ComputeDriver> =>
          host === ctx.host ? Promise.resolve(ctx.driver) : ctx.driverFor(host),
        newInstance: () => ctx.newInstance(),
        trackSecret: (s) => ctx.trackSecret(s),
        signal: ctx.signal,
      };
    },
    async release() {
      // The kit cleans the scenario's drivers and environment up.
    },
  };
}

/** Runs the fixed-seed exploration; fails with the shrunk sequence and its replay seed. */
export async function checkExploreFixedSeed(ctx: ScenarioContext): Promise<void> {
  ctx.step(`explore ${EXPLORE_SCENARIO_BUDGET.runs} sequences (seed ${EXPLORE_SCENARIO_SEED})`);
  const result = await explore(scenarioTargets(ctx), {
    ...EXPLORE_SCENARIO_BUDGET,
    seed: EXPLORE_SCENARIO_SEED,
    migration: false,
    operations: EXPLORE_OPERATIONS.filter((op) => op !== "set-admin-password" && op !== "reboot-soft"),
    signal: ctx.signal,
  });
  if (!result.ok) fail(formatExploreResult(result, { command: "virtkit conformance run --driver <driver> --explore" }));
}

/** The scenario row (group `explore`). */
export const EXPLORE_SCENARIO: ScenarioDefinition = {
  id: "explore.fixed-seed",
  title: `random operation sequences (seed ${EXPLORE_SCENARIO_SEED}) agree with the kit's reference model in every view, step by step`,
  group: "explore",
  capability: null,
  level: "MUST",
  run: checkExploreFixedSeed,
};
