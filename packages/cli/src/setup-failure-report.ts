/**
 * The report of a run whose driver could not be set up. The report files a CI job publishes
 * (`--junit`, `--tap`, `--report-json`) then hold one failing entry saying why: a job that found no
 * file at all might pass, and one that found an empty report would read "0 failed".
 */
import type { DriverDescriptor, RunReport, ScenarioLevel, ScenarioResult } from "@virtkit/conformance";
import type { Summarize } from "./interrupt.js";

/** The id of the one entry: no scenario of the kit's table has it. */
export const SETUP_RESULT_ID = "driver.setup";

/** Whether `err` is the runners' "the driver could not be set up" (`DriverSetupError`). */
export function isDriverSetupFailure(err: unknown): err is Error {
  return err instanceof Error && (err as { code?: unknown }).code === "VIRTKIT_DRIVER_SETUP_FAILED";
}

/** What the run was, for {@link setupFailureReport}. */
export interface FailedSetupRun {
  readonly driver: DriverDescriptor;
  readonly level: ScenarioLevel;
  readonly runner: RunReport["runner"];
  readonly startedAt: Date;
}

/** One failing MUST entry with the setup error's message (already free of secrets: it is what stderr shows). */
export function setupFailureReport(run: FailedSetupRun, err: Error, summarize: Summarize): RunReport {
  const result: ScenarioResult = {
    id: SETUP_RESULT_ID,
    title: "the driver can be set up in this environment",
    group: "setup",
    capability: null,
    level: "MUST",
    status: "fail",
    reason: err.message,
    durationMs: Date.now() - run.startedAt.getTime(),
  };
  const results = [result];
  return {
    driver: run.driver,
    notes: [
      ...(run.driver.notes ?? []),
      "no scenario ran: the driver could not be set up",
    ],
    level: run.level,
    startedAt: run.startedAt.toISOString(),
    durationMs: result.durationMs,
    runner: run.runner,
    results,
    ...summarize(results, run.level),
    ok: false,
  };
}
