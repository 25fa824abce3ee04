/**
 * The support matrix: driver × scenario → pass / fail / unsupported / skipped, with reasons,
 * built from real run reports. No timings or timestamps, so two releases diff cleanly.
 */
import type { Capability } from "@virtkit/core";
import type { ScenarioDefinition } from "../scenario.js";
import { SCENARIOS } from "../scenarios.js";
import type { RunReport, ScenarioLevel, ScenarioStatus } from "../types.js";

/** One cell. */
export interface MatrixCell {
  readonly status: ScenarioStatus;
  readonly reason?: string;
  readonly mismatch?: string;
}

/** One scenario row. */
export interface MatrixScenario {
  readonly id: string;
  readonly title: string;
  readonly group: string;
  readonly capability: Capability | null;
  readonly level: ScenarioLevel;
}

/** One driver column. */
export interface MatrixDriver {
  readonly name: string;
  readonly version?: string;
  readonly spec?: string;
  /**
   * `ran`; `unavailable` when its environment could not be set up; `failed` when its run did not
   * finish (the suite crashed, or the matrix was killed while running it). Either way every cell
   * is skipped; `failed` is something to look at, not a limit of the environment.
   */
  readonly availability: "ran" | "unavailable" | "failed";
  readonly reason?: string;
  readonly notes: readonly string[];
  /** Errors of driver code outside any scenario (an uncaught exception, an unhandled rejection): each fails the column. */
  readonly errors?: readonly string[];
  readonly ok?: boolean;
  readonly summary?: {
    readonly pass: number;
    readonly fail: number;
    readonly unsupported: number;
    readonly skipped: number;
  };
}

/** The whole matrix. */
export interface SupportMatrix {
  /** Format version of this document. */
  readonly schema: 1;
  readonly scenarios: readonly MatrixScenario[];
  readonly drivers: readonly MatrixDriver[];
  /** driver name → scenario id → cell. */
  readonly cells: Readonly<Record<string, Readonly<Record<string, MatrixCell>>>>;
}

/** A driver that could not run at all. */
export interface UnavailableDriver {
  readonly name: string;
  readonly version?: string;
  readonly spec?: string;
  readonly reason: string;
  readonly notes?: readonly string[];
  /** The run did not finish (it did not merely find its environment missing): shown as `failed`. */
  readonly failed?: boolean;
}

/** Builds the matrix from run reports (and drivers whose environment was unavailable). */
export function buildMatrix(
  reports: readonly RunReport[],
  unavailable: readonly UnavailableDriver[] = [],
  scenarios: readonly ScenarioDefinition[] = SCENARIOS,
): SupportMatrix {
  const rows: MatrixScenario[] = scenarios.map((s) => ({
    id: s.id,
    title: s.title,
    group: s.group,
    capability: s.capability,
    level: s.level,
  }));
  const drivers: MatrixDriver[] = [];
  const cells: Record<string, Record<string, MatrixCell>> = {};
  for (const report of reports) {
    const d = report.driver;
    drivers.push({
      name: d.name,
      ...(d.version ? { version: d.version } : {}),
      ...(d.spec ? { spec: d.spec } : {}),
      availability: "ran",
      notes: [...report.notes],
      ...(report.errors && report.errors.length > 0 ? { errors: [...report.errors] } : {}),
      ok: report.ok,
      summary: {
        pass: report.summary.pass,
        fail: report.summary.fail,
        unsupported: report.summary.unsupported,
        skipped: report.summary.skipped,
      },
    });
    const byId = new Map(report.results.map((r) => [r.id, r]));
    const col: Record<string, MatrixCell> = {};
    for (const row of rows) {
      const r = byId.get(row.id);
      col[row.id] = r
        ? {
            status: r.status,
            ...(r.reason ? { reason: r.reason } : {}),
            ...(r.mismatch ? { mismatch: r.mismatch } : {}),
          }
        : { status: "skipped", reason: "not run (filtered out)" };
    }
    cells[d.name] = col;
  }
  for (const u of unavailable) {
    drivers.push({
      name: u.name,
      ...(u.version ? { version: u.version } : {}),
      ...(u.spec ? { spec: u.spec } : {}),
      availability: u.failed ? "failed" : "unavailable",
      reason: u.reason,
      notes: [...(u.notes ?? [])],
    });
    const why = u.failed ? `the run did not finish: ${u.reason}` : `environment unavailable: ${u.reason}`;
    cells[u.name] = Object.fromEntries(rows.map((row) => [row.id, { status: "skipped" as const, reason: why }]));
  }
  drivers.sort((a, b) => a.name.localeCompare(b.name));
  return { schema: 1, scenarios: rows, drivers, cells };
}
