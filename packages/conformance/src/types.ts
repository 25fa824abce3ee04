/**
 * The data a conformance run produces: one {@link ScenarioResult} per scenario, gathered in a
 * {@link RunReport}. Plain JSON-safe data, so every reporter, the matrix and `--json` share it.
 */
import type { Capability } from "@virtkit/core";

/** RFC 2119 level of a scenario; `--level` chooses which levels fail the run. */
export type ScenarioLevel = "MUST" | "SHOULD" | "MAY";

/** Levels, strictest first. */
export const SCENARIO_LEVELS: readonly ScenarioLevel[] = ["MUST", "SHOULD", "MAY"];

/**
 * - `pass`: declared and works;
 * - `fail`: declared and broken, or undeclared yet not refused, or a leak/secret found;
 * - `unsupported`: not declared, and the operation is refused with `UnsupportedOperationError`;
 * - `skipped`: the environment cannot run it (`environment limit: ...`) or it was filtered out.
 */
export type ScenarioStatus = "pass" | "fail" | "unsupported" | "skipped";

/** Why a result disagrees with the driver's declaration. */
export type CapabilityMismatch = "declared-but-fails" | "works-but-undeclared";

/** The outcome of one scenario against one driver. */
export interface ScenarioResult {
  /** Stable id, e.g. `lifecycle.pause-unpause`. */
  readonly id: string;
  readonly title: string;
  readonly group: string;
  /** The capability the scenario needs; null for the base contract. */
  readonly capability: Capability | null;
  readonly level: ScenarioLevel;
  readonly status: ScenarioStatus;
  /** Why it failed, was skipped or is unsupported (never contains a secret). */
  readonly reason?: string;
  /** The step that failed, e.g. `pause a stopped instance`. */
  readonly step?: string;
  /**
   * Where in the driver the failing call was made or the error raised, from the error's stack
   * (`file:line:column`, relative to the working directory when under it); absent when the
   * failure was the kit's own check and no driver frame was on the stack.
   */
  readonly location?: string;
  readonly mismatch?: CapabilityMismatch;
  /** Problems found while cleaning up (reported, not fatal unless they are leaks). */
  readonly cleanupErrors?: readonly string[];
  /** Resources left behind after cleanup. Any leak fails the scenario. */
  readonly leaks?: readonly string[];
  /** Observations that do not fail the scenario by themselves, e.g. `cleanup took 12.4 s`. */
  readonly warnings?: readonly string[];
  /** On a failure: the driver's last log lines (at most 20), any secret cut out, to see what it was doing. */
  readonly log?: readonly string[];
  readonly durationMs: number;
}

/** Counts by status. */
export interface RunSummary {
  readonly total: number;
  readonly pass: number;
  readonly fail: number;
  readonly unsupported: number;
  readonly skipped: number;
  /** Failures at or above the chosen level: these make `ok` false. */
  readonly failingAtLevel: number;
}

/** What the run knows about the driver it tested. */
export interface DriverDescriptor {
  /** Short name (`fake`, `libvirt`). */
  readonly name: string;
  readonly version?: string;
  /** What the user asked for: short name, package or path. */
  readonly spec?: string;
  /** Declared capabilities as reported by a driver instance. */
  readonly capabilities?: Readonly<Record<string, boolean>>;
  /** Options the driver ran with, secret values (password-like keys, URI credentials) shown as `***`. */
  readonly options?: Readonly<Record<string, string>>;
  /** The named environment of the plugin the run used (`nested-qemu`); absent: the plugin's default. */
  readonly environment?: string;
  /** The plugin's own notes (e.g. "results come from a simulator"); reports show them with the environment's. */
  readonly notes?: readonly string[];
}

/** The report of one run against one driver. */
export interface RunReport {
  readonly driver: DriverDescriptor;
  /** Notes every reporter must show, e.g. "XenAPI results come from a simulator". */
  readonly notes: readonly string[];
  /** The level whose failures fail the run. */
  readonly level: ScenarioLevel;
  readonly startedAt: string;
  readonly durationMs: number;
  /** Which runner produced it (`direct` in-process, or `vitest`). */
  readonly runner: "direct" | "vitest";
  readonly results: readonly ScenarioResult[];
  readonly summary: RunSummary;
  /** All leaks of all scenarios, prefixed with the scenario id. */
  readonly leaks: readonly string[];
  /** All warnings of all scenarios (slow cleanup, ...), prefixed with the scenario id; they do not affect `ok`. */
  readonly warnings: readonly string[];
  /**
   * Errors outside any scenario: an uncaught exception or unhandled rejection of driver code, a
   * failure of the runner itself. Any of them fails the run, whatever its scenarios did.
   */
  readonly errors?: readonly string[];
  /**
   * True when no scenario at or above `level` failed, the suite timeout did not cut the run short
   * and no error came outside any scenario.
   */
  readonly ok: boolean;
}

/** True when a failure at `scenarioLevel` fails a run at `runLevel`. */
export function levelCounts(scenarioLevel: ScenarioLevel, runLevel: ScenarioLevel): boolean {
  return SCENARIO_LEVELS.indexOf(scenarioLevel) <= SCENARIO_LEVELS.indexOf(runLevel);
}

/** Builds the summary, leaks and `ok` of a report from its results. */
export function summarize(
  results: readonly ScenarioResult[],
  level: ScenarioLevel,
  errors: readonly string[] = [],
): Pick<RunReport, "summary" | "leaks" | "warnings" | "ok"> {
  const count = (s: ScenarioStatus) => results.filter((r) => r.status === s).length;
  const failingAtLevel = results.filter((r) => r.status === "fail" && levelCounts(r.level, level)).length;
  const leaks = results.flatMap((r) => (r.leaks ?? []).map((l) => `${r.id}: ${l}`));
  const warnings = results.flatMap((r) => (r.warnings ?? []).map((w) => `${r.id}: ${w}`));
  return {
    summary: {
      total: results.length,
      pass: count("pass"),
      fail: count("fail"),
      unsupported: count("unsupported"),
      skipped: count("skipped"),
      failingAtLevel,
    },
    leaks,
    warnings,
    // A run cut short by its suite timeout did not show conformance, whatever did pass.
    ok:
      failingAtLevel === 0 &&
      errors.length === 0 &&
      !results.some((r) => r.status === "skipped" && r.reason?.startsWith("suite timeout")),
  };
}

/** `report` with `errors` (outside any scenario) added: the run then fails. */
export function withRunErrors(report: RunReport, errors: readonly string[]): RunReport {
  if (errors.length === 0) return report;
  const all = [...(report.errors ?? []), ...errors];
  return { ...report, errors: all, ...summarize(report.results, report.level, all) };
}
