/**
 * The entry test file the CLI's vitest runner executes: rebuilds the run from the settings the
 * runner provided (`inject`) and registers the scenarios with `defineConformanceSuite`.
 */
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { inject } from "vitest";
import { resolveDriver } from "../resolve-driver.js";
import { defineConformanceSuite } from "./define-suite.js";
import type { SetupFailure } from "./run-vitest.js";
import { DriverSetupError, withProbeDriver } from "../driver-probe.js";

const settings = inject("virtkitConformance");
const stopFile = settings.stopFile;
// The runner's caller owns Ctrl-C (a terminal sends it to this worker too): running scenarios finish and clean up.
if (stopFile !== undefined) {
  process.on("SIGINT", () => undefined);
  // A caller that exited at once (a second Ctrl-C) leaves the file for this worker to see; it goes with the worker.
  process.on("exit", () => rmSync(stopFile, { force: true }));
}
const resolved = await resolveDriver(settings.spec, settings.options, {
  paths: settings.paths ?? [],
  ...(settings.environment !== undefined ? { environment: settings.environment } : {}),
});
// One driver made first, as every scenario would make it: a driver that cannot be set up is one
// error for the caller (written to the file it named), not the same failure in every scenario.
// The environment's shared parts (nested hosts) stay up for the scenarios.
let setupFailure: SetupFailure | undefined;
let interrupted = false;
if (settings.setupFailureFile !== undefined) {
  // The caller's Ctrl-C reaches this worker as its stop file: it cuts the probe short too.
  const stopped = new AbortController();
  const watch =
    stopFile !== undefined ? setInterval(() => existsSync(stopFile) && stopped.abort(new Error("the run was interrupted")), 200) : undefined;
  try {
    await withProbeDriver(
      resolved.environment,
      { timeoutMs: settings.scenarioTimeoutMs, prefix: `vkcheck${Date.now().toString(36)}`, signal: stopped.signal },
      () => undefined,
    );
  } catch (err) {
    if (!(err instanceof DriverSetupError)) throw err;
    // Interrupted: no scenario is registered, and the runner reports them not run (interrupted).
    if (stopped.signal.aborted) {
      interrupted = true;
    } else {
      const cause = err.cause instanceof Error ? err.cause.message : String(err.cause);
      setupFailure = { stage: err.stage, message: cause.split("\n")[0] ?? "" };
      writeFileSync(settings.setupFailureFile, JSON.stringify(setupFailure));
    }
  } finally {
    clearInterval(watch);
  }
}
if (setupFailure === undefined && !interrupted) defineConformanceSuite({
  driver: resolved.descriptor,
  environment: resolved.environment,
  service: resolved.service,
  level: settings.level,
  focus: settings.focus,
  skip: settings.skip,
  scenarioTimeoutMs: settings.scenarioTimeoutMs,
  ...(settings.cleanupTimeoutMs !== undefined ? { cleanupTimeoutMs: settings.cleanupTimeoutMs } : {}),
  parallel: settings.parallel,
  // The runner reports in the table's order itself (run-vitest.ts): start the longest waits first.
  longestWaitsFirst: true,
  ...(settings.suiteDeadline !== undefined ? { suiteDeadline: settings.suiteDeadline } : {}),
  ...(settings.suiteTimeoutMs !== undefined ? { suiteTimeoutMs: settings.suiteTimeoutMs } : {}),
  ...(settings.seed !== undefined ? { seed: settings.seed } : {}),
  ...(settings.timeouts !== undefined ? { timeouts: settings.timeouts } : {}),
  ...(settings.failFast ? { failFast: true } : {}),
  ...(stopFile !== undefined ? { stopRequested: () => existsSync(stopFile) } : {}),
});
