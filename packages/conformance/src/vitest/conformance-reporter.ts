/**
 * The kit's vitest reporter, for a driver author's own vitest config, next to vitest's own:
 *
 * ```ts
 * import { defineConfig } from "vitest/config";
 * import { VirtkitReporter } from "@virtkit/conformance/vitest-reporter";
 * export default defineConfig({
 *   test: { reporters: ["default", new VirtkitReporter({ junit: "reports/conformance.xml" })] },
 * });
 * ```
 *
 * It reads the results `defineConformanceSuite` stores on each scenario test and, once the run
 * ends, prints the kit's summary per driver (the table, notes, warnings, leaks, the verdict) and
 * writes the kit's reports. Tests that are not conformance scenarios are ignored.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, extname } from "node:path";
import type { Reporter, TestCase } from "vitest/node";
import { HumanReporter } from "../reporters/human.js";
import { JsonReporter } from "../reporters/json.js";
import { JunitReporter } from "../reporters/junit.js";
import type { WriteFn } from "../reporters/reporter.js";
import { TapReporter } from "../reporters/tap.js";
import {
  SCENARIO_LEVELS,
  summarize,
  type DriverDescriptor,
  type RunReport,
  type ScenarioLevel,
  type ScenarioResult,
} from "../types.js";
import "./task-meta.js";

/** Options of {@link VirtkitReporter}. */
export interface VirtkitReporterOptions {
  /** Writes the kit's JUnit XML here (`-<driver>` is added before the extension when several drivers ran). */
  readonly junit?: string;
  /** Writes the kit's TAP here. */
  readonly tap?: string;
  /** Writes the kit's JSON report here. */
  readonly json?: string;
  /** Prints the kit's summary (default true). */
  readonly summary?: boolean;
  /** Where the summary goes (default: standard output). */
  readonly write?: WriteFn;
}

interface DriverRun {
  driver: DriverDescriptor;
  level: ScenarioLevel;
  results: ScenarioResult[];
  notes: Set<string>;
}

/** Collects conformance results from vitest and renders the kit's reports at the end of the run. */
export class VirtkitReporter implements Reporter {
  readonly #options: VirtkitReporterOptions;
  readonly #runs = new Map<string, DriverRun>();
  #startedAt = new Date();
  #t0 = performance.now();
  /** The reports of the last run, one per driver. */
  reports: RunReport[] = [];

  constructor(options: VirtkitReporterOptions = {}) {
    this.#options = options;
  }

  onTestRunStart(): void {
    this.#runs.clear();
    this.#startedAt = new Date();
    this.#t0 = performance.now();
  }

  onTestCaseResult(testCase: TestCase): void {
    const meta = testCase.meta();
    if (!meta.virtkitRun) return;
    const { driver, level } = meta.virtkitRun;
    let run = this.#runs.get(driver.name);
    if (!run) {
      run = { driver, level, results: [], notes: new Set(driver.notes ?? []) };
      this.#runs.set(driver.name, run);
    }
    for (const n of meta.virtkitNotes ?? []) run.notes.add(n);
    const r = testCase.result();
    run.results.push(
      meta.virtkit ?? {
        // The test died before the kit stored a result (vitest's own timeout, a crash in the kit).
        id: testCase.name.split(" ")[0] ?? testCase.name,
        title: testCase.name,
        group: (testCase.name.split(" ")[0] ?? "").split(".")[0] ?? "unknown",
        capability: null,
        level: SCENARIO_LEVELS.find((l) => testCase.name.includes(`[${l}]`)) ?? "MUST",
        status: "fail",
        reason: r.state === "failed" ? (r.errors?.[0]?.message ?? "failed") : "no result",
        durationMs: Math.round(testCase.diagnostic()?.duration ?? 0),
      },
    );
  }

  onTestRunEnd(): void {
    const write = this.#options.write ?? ((t: string) => void process.stdout.write(t));
    const several = this.#runs.size > 1;
    this.reports = [...this.#runs.values()].map((run) => ({
      driver: run.driver,
      notes: [...run.notes],
      level: run.level,
      startedAt: this.#startedAt.toISOString(),
      durationMs: Math.round(performance.now() - this.#t0),
      runner: "vitest",
      results: run.results,
      ...summarize(run.results, run.level),
    }));
    for (const report of this.reports) {
      if (this.#options.summary !== false) {
        write(`\nvirtkit conformance: ${report.driver.name} (level ${report.level})\n${new HumanReporter().summary(report)}\n`);
      }
      const files: [string | undefined, { render(r: RunReport): string }][] = [
        [this.#options.junit, new JunitReporter()],
        [this.#options.tap, new TapReporter()],
        [this.#options.json, new JsonReporter()],
      ];
      for (const [file, reporter] of files) {
        if (!file) continue;
        const target = several ? withSuffix(file, report.driver.name) : file;
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, reporter.render(report));
      }
    }
  }
}

function withSuffix(file: string, name: string): string {
  const ext = extname(file);
  return `${file.slice(0, file.length - ext.length)}-${name.replace(/[^A-Za-z0-9._-]/g, "_")}${ext}`;
}
