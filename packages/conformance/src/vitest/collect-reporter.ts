/**
 * A vitest reporter that turns the scenario tests' results (`task.meta.virtkit`) into
 * {@link ScenarioResult}s, live, and knows about tests that died before storing one.
 */
import type { Reporter, TestCase, TestModule } from "vitest/node";
import type { ScenarioResult } from "../types.js";
import "./task-meta.js";

/** Collects results as vitest reports them. Implements only the hooks it needs. */
export class CollectReporter implements Reporter {
  readonly results: ScenarioResult[] = [];
  /** Errors vitest reported outside any scenario (collection failures, unhandled rejections). */
  readonly errors: string[] = [];
  /**
   * Scenarios vitest cancelled while they ran (a hard stop: suite timeout, interrupt). The kit
   * stores its result before it skips, so a skipped test without one was cut mid-way.
   */
  readonly cancelledWhileRunning = new Set<string>();
  /** Environment notes the scenario tests stored (`task.meta.virtkitNotes`). */
  readonly notes = new Set<string>();
  readonly #onResult: ((result: ScenarioResult) => void) | undefined;

  constructor(onResult?: (result: ScenarioResult) => void) {
    this.#onResult = onResult;
  }

  onTestCaseResult(testCase: TestCase): void {
    for (const n of testCase.meta().virtkitNotes ?? []) this.notes.add(n);
    const meta = testCase.meta().virtkit;
    // Never started (the suite deadline's hard stop cancelled the run, e.g. while vitest was still
    // starting on a loaded machine): leave it out, so the runner reports it skipped with the reason.
    if (!meta && testCase.result().state === "pending") return;
    let result: ScenarioResult | undefined = meta;
    if (!result) {
      // The test failed before the kit stored a result (vitest timeout, crash in the kit).
      const r = testCase.result();
      const id = testCase.name.split(" ")[0] ?? testCase.name;
      result = {
        id,
        title: testCase.name,
        group: id.split(".")[0] ?? "unknown",
        capability: null,
        level: "MUST",
        status: r.state === "skipped" ? "skipped" : "fail",
        reason:
          r.state === "failed"
            ? (r.errors?.[0]?.message ?? "failed")
            : r.state === "skipped"
              ? (r.note ?? "skipped")
              : "no result",
        durationMs: Math.round(testCase.diagnostic()?.duration ?? 0),
      };
      if (r.state === "skipped") this.cancelledWhileRunning.add(id);
    }
    this.results.push(result);
    this.#onResult?.(result);
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    for (const m of testModules) {
      for (const e of m.errors()) this.errors.push(`${m.moduleId}: ${describeError(e)}`);
    }
    for (const e of unhandledErrors) this.errors.push(describeError(e));
  }
}

/**
 * An error's message with its causes ("[vitest-pool]: Worker forks emitted error." says nothing
 * without "Worker exited unexpectedly" behind it).
 */
export function describeError(e: unknown): string {
  const parts: string[] = [];
  let at: unknown = e;
  for (let depth = 0; at !== undefined && at !== null && depth < 5; depth++) {
    const message = typeof at === "object" && typeof (at as { message?: unknown }).message === "string" ? (at as { message: string }).message : String(at);
    // A cause its wrapper already quotes adds nothing.
    if (!parts.some((p) => p.includes(message))) parts.push(message);
    at = typeof at === "object" ? (at as { cause?: unknown }).cause : undefined;
  }
  return parts.join(": ");
}
