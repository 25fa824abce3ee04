/** What every conformance reporter implements; hooks are optional, `render` is not. */
import type { DriverDescriptor, RunReport, ScenarioResult } from "../types.js";

/** A reporter: live hooks for progress (optional) and the final rendering. */
export interface ConformanceReporter {
  /** Called once before the first scenario. */
  onStart?(driver: DriverDescriptor, total: number | undefined): void;
  /** Called as each scenario finishes. */
  onResult?(result: ScenarioResult, finished: number, total: number | undefined): void;
  /** The whole report in this reporter's format. */
  render(report: RunReport): string;
}

/** Where a live reporter writes. */
export type WriteFn = (text: string) => void;

/** The one-word label of a status, for text formats. */
export function statusLabel(result: ScenarioResult): string {
  return result.status === "fail" && result.mismatch ? `fail (${result.mismatch})` : result.status;
}
