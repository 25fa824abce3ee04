/** The live human view: a progress line per scenario, then a summary table, notes and the verdict. */
import type { DriverDescriptor, RunReport, ScenarioResult } from "../types.js";
import type { ConformanceReporter, WriteFn } from "./reporter.js";

const MARK: Record<ScenarioResult["status"], string> = { pass: "✓", fail: "✗", unsupported: "○", skipped: "-" };

/** Options of {@link HumanReporter}. */
export interface HumanReporterOptions {
  /** Where live lines go (default: nowhere; `render` still returns everything). */
  readonly write?: WriteFn;
  /** ANSI colours (default false). */
  readonly color?: boolean;
}

/** Human-readable output. */
export class HumanReporter implements ConformanceReporter {
  readonly #write: WriteFn | undefined;
  readonly #color: boolean;

  constructor(options: HumanReporterOptions = {}) {
    this.#write = options.write;
    this.#color = options.color ?? false;
  }

  onStart(driver: DriverDescriptor, total: number | undefined): void {
    this.#write?.(
      `virtkit conformance: ${driver.name}${driver.version ? ` ${driver.version}` : ""}${total ? ` (${total} scenarios)` : ""}\n`,
    );
  }

  onResult(result: ScenarioResult, finished: number, total: number | undefined): void {
    this.#write?.(`${this.line(result, finished, total)}\n`);
  }

  /** One line for a scenario, plus one for a failure's reason and one per warning. */
  line(result: ScenarioResult, finished?: number, total?: number): string {
    const progress =
      finished !== undefined ? `[${String(finished).padStart(String(total ?? finished).length)}/${total ?? "?"}] ` : "";
    const head = `${progress}${this.#paint(result.status, MARK[result.status])} ${result.id} [${result.level}] ${result.durationMs} ms`;
    const why = result.reason
      ? `\n      ${result.status}${result.mismatch ? ` (${result.mismatch})` : ""}: ${result.reason}${result.step ? ` [step: ${result.step}]` : ""}${result.location ? `\n      at ${result.location}` : ""}`
      : "";
    const log =
      result.status === "fail" && result.log && result.log.length > 0
        ? `\n      driver log (last ${result.log.length} lines):${result.log.map((l) => `\n        ${l}`).join("")}`
        : "";
    // Warnings show under any status: a passing scenario with a slow cleanup is still worth a look.
    const warnings = (result.warnings ?? []).map((w) => `\n      ${this.#paint("skipped", "warning")}: ${w}`).join("");
    return (result.status === "pass" ? head : head + why + log) + warnings;
  }

  render(report: RunReport): string {
    const out: string[] = [];
    out.push(
      `virtkit conformance: ${report.driver.name}${report.driver.version ? ` ${report.driver.version}` : ""} (runner: ${report.runner}, level: ${report.level})`,
    );
    for (const r of report.results) out.push(this.line(r));
    out.push("", this.summary(report));
    return out.join("\n") + "\n";
  }

  /** What follows the scenario lines: the table, notes, warnings, leaks and the verdict. */
  summary(report: RunReport): string {
    const out: string[] = [this.table(report)];
    if (report.notes.length > 0) out.push("", "Notes:", ...report.notes.map((n) => `  - ${n}`));
    if (report.warnings.length > 0) out.push("", "Warnings:", ...report.warnings.map((w) => `  - ${w}`));
    if (report.leaks.length > 0) out.push("", "Leaks:", ...report.leaks.map((l) => `  - ${l}`));
    const errors = report.errors ?? [];
    if (errors.length > 0) out.push("", "Errors outside any scenario (they fail the run):", ...errors.map((e) => `  - ${e}`));
    const s = report.summary;
    const warned =
      (report.warnings.length > 0 ? `, ${report.warnings.length} warning${report.warnings.length === 1 ? "" : "s"}` : "") +
      (errors.length > 0 ? `, ${errors.length} error${errors.length === 1 ? "" : "s"} outside any scenario` : "");
    out.push(
      "",
      `${report.ok ? this.#paint("pass", "PASS") : this.#paint("fail", "FAIL")}: ${s.pass} passed, ${s.fail} failed (${s.failingAtLevel} at level ${report.level}), ${s.unsupported} unsupported, ${s.skipped} skipped${warned} in ${report.durationMs} ms`,
    );
    return out.join("\n");
  }

  /** The summary table: one row per group. */
  table(report: RunReport): string {
    const groups = [...new Set(report.results.map((r) => r.group))];
    const rows = groups.map((g) => {
      const rs = report.results.filter((r) => r.group === g);
      const n = (s: ScenarioResult["status"]) => String(rs.filter((r) => r.status === s).length);
      return [g, n("pass"), n("fail"), n("unsupported"), n("skipped")];
    });
    const s = report.summary;
    const all = [
      ["group", "pass", "fail", "unsupported", "skipped"],
      ...rows,
      ["total", String(s.pass), String(s.fail), String(s.unsupported), String(s.skipped)],
    ];
    const widths = all[0]!.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
    const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
    const sep = widths.map((w) => "-".repeat(w)).join("  ");
    return [fmt(all[0]!), sep, ...all.slice(1, -1).map(fmt), sep, fmt(all[all.length - 1]!)].join("\n");
  }

  #paint(status: ScenarioResult["status"], text: string): string {
    if (!this.#color) return text;
    const code = { pass: 32, fail: 31, unsupported: 36, skipped: 33 }[status];
    return `\u001b[${code}m${text}\u001b[0m`;
  }
}
