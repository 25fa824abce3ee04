/** The report as JSON with sorted keys (`--json`, `--report-json`). */
import { stableStringify } from "../stable-json.js";
import type { RunReport } from "../types.js";
import type { ConformanceReporter } from "./reporter.js";

/** Machine-readable output. */
export class JsonReporter implements ConformanceReporter {
  render(report: RunReport): string {
    return stableStringify(report) + "\n";
  }
}
