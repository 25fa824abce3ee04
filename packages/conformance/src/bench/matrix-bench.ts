/**
 * Bench figures beside the support matrix: the matrix JSON stays free of timings (diffable between
 * releases), so the Markdown and HTML views take the bench reports as an extra input and show one
 * line per column whose name matches the report's `driver.name` (`fake`, `libvirt-test`).
 */
import type { BenchReport } from "./bench-report.js";
import { benchSummary } from "./render-bench.js";

/** What the matrix renderers take besides the matrix. */
export interface MatrixRenderOptions {
  /** Bench reports (`virtkit conformance bench --output`); the last one per column wins. */
  readonly bench?: readonly BenchReport[];
}

/** Column name → its bench report. */
export function benchByColumn(options: MatrixRenderOptions = {}): Map<string, BenchReport> {
  return new Map((options.bench ?? []).map((r) => [r.driver.name, r]));
}

/** How a column's figures were taken, for the notes under the matrix. */
export function benchProvenance(report: BenchReport): string {
  const s = report.settings;
  const m = report.machine;
  return `${benchSummary(report)} (${s.count} instances, ${s.concurrency} at a time; ${m.cpus} cpus, load ${m.loadavg.join(" ")}; ${report.startedAt})`;
}
