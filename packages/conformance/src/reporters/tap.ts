/** TAP version 13 (`--tap`), as OCI runtime-tools: the level in each line, reasons as YAML blocks. */
import { levelCounts, type RunReport } from "../types.js";
import type { ConformanceReporter } from "./reporter.js";

const clean = (s: string) => s.replace(/[\r\n]+/g, " ").replace(/#/g, "\\#");

/** TAP output. */
export class TapReporter implements ConformanceReporter {
  render(report: RunReport): string {
    const errors = report.errors ?? [];
    // Errors outside any scenario are one more test point, failed: TAP consumers fail the run on it.
    const out = ["TAP version 13", `1..${report.results.length + (errors.length > 0 ? 1 : 0)}`];
    for (const n of report.notes) out.push(`# note: ${clean(n)}`);
    report.results.forEach((r, i) => {
      const head = `${i + 1} - ${r.id} [${r.level}] ${clean(r.title)}`;
      // Warnings go in the YAML block, which TAP 13 allows after `ok` lines too.
      const warnings = r.warnings?.length
        ? ["  warnings:", ...r.warnings.map((w) => `    - ${JSON.stringify(w)}`)]
        : [];
      const block = warnings.length > 0 ? ["  ---", ...warnings, "  ..."] : [];
      if (r.status === "pass") out.push(`ok ${head}`, ...block);
      else if (r.status === "unsupported")
        out.push(`ok ${head} # SKIP unsupported: ${clean(r.reason ?? "")}`, ...block);
      else if (r.status === "skipped") out.push(`ok ${head} # SKIP ${clean(r.reason ?? "")}`, ...block);
      else {
        // A failure below the run's level does not fail the run: TAP's TODO says exactly that.
        const todo = levelCounts(r.level, report.level) ? "" : ` # TODO ${r.level} below level ${report.level}`;
        out.push(`not ok ${head}${todo}`, "  ---", `  reason: ${JSON.stringify(r.reason ?? "")}`);
        if (r.step) out.push(`  step: ${JSON.stringify(r.step)}`);
        if (r.location) out.push(`  at: ${JSON.stringify(r.location)}`);
        if (r.mismatch) out.push(`  mismatch: ${r.mismatch}`);
        out.push(...warnings, "  ...");
      }
    });
    if (errors.length > 0) {
      out.push(`not ok ${report.results.length + 1} - errors outside any scenario`, "  ---", "  errors:");
      out.push(...errors.map((e) => `    - ${JSON.stringify(e)}`), "  ...");
    }
    out.push(
      `# pass ${report.summary.pass}`,
      `# fail ${report.summary.fail}`,
      `# unsupported ${report.summary.unsupported}`,
      `# skipped ${report.summary.skipped}`,
    );
    for (const w of report.warnings) out.push(`# warning: ${clean(w)}`);
    return out.join("\n") + "\n";
  }
}
