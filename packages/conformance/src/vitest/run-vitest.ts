/**
 * The ONE file that talks to vitest's Node API (its signature changed between majors): runs the
 * shipped entry test file with the run's settings passed through `provide`, and collects a
 * {@link RunReport} with a custom reporter.
 */
import { timerDelay } from "@virtkit/core";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { summarize, type DriverDescriptor, type RunReport, type ScenarioLevel, type ScenarioResult } from "../types.js";
import { DEFAULT_CLEANUP_TIMEOUT_MS } from "../make-test.js";
import { runNotes, scheduleScenarios } from "../runner.js";
import { DriverSetupError, type DriverSetupStage } from "../driver-probe.js";
import { CollectReporter } from "./collect-reporter.js";
import { assertSupportedVitest } from "./vitest-version.js";

/** What the entry file needs to rebuild the run inside vitest's worker (JSON-safe). */
export interface VitestRunSettings {
  /** Driver spec: short name, package or path. */
  readonly spec: string;
  /** `--option key=value` pairs, unparsed (the entry validates them against the plugin). */
  readonly options: readonly string[];
  readonly level: ScenarioLevel;
  readonly focus: readonly string[];
  readonly skip: readonly string[];
  readonly scenarioTimeoutMs: number;
  /** Deadline of each scenario's cleanup in ms (default 60 000). */
  readonly cleanupTimeoutMs?: number;
  readonly parallel: number;
  /** Extra directories to resolve driver packages from (e.g. the CLI's own dependencies). */
  readonly paths?: readonly string[];
  /** The plugin's named environment (`--env`); absent: its default. */
  readonly environment?: string;
  /** Epoch ms after which scenarios not yet started are skipped (`--suite-timeout`). */
  readonly suiteDeadline?: number;
  /** The `--suite-timeout` behind `suiteDeadline`, for what a cut scenario says. */
  readonly suiteTimeoutMs?: number;
  /** Shuffles the scenario order with this seed. */
  readonly seed?: number;
  /** Per-scenario deadlines in ms by id. */
  readonly timeouts?: Readonly<Record<string, number>>;
  /** Starts no scenario after the first failure at the run's level. */
  readonly failFast?: boolean;
  /** Once this file exists no scenario starts (the caller's signal, seen from vitest's worker process). */
  readonly stopFile?: string;
  /**
   * When given, the worker makes one driver before registering any scenario; if the environment or
   * the driver cannot be set up it writes why here (JSON) and registers none.
   */
  readonly setupFailureFile?: string;
}

/** What the worker writes to `setupFailureFile`. */
export interface SetupFailure {
  readonly stage: DriverSetupStage;
  readonly message: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    virtkitConformance: VitestRunSettings;
  }
}

/** Options of {@link runWithVitest}. */
export interface RunWithVitestOptions {
  readonly settings: VitestRunSettings;
  /** The driver as resolved by the caller (for the report; the worker resolves its own copy). */
  readonly driver: DriverDescriptor;
  readonly notes?: readonly string[];
  readonly suiteTimeoutMs?: number;
  readonly onResult?: (result: ScenarioResult) => void;
  /**
   * Interrupts the run (Ctrl-C): no scenario starts after it, running ones finish and clean up, the
   * rest are reported skipped. With a signal the caller owns SIGINT/SIGTERM (vitest's own
   * exit-at-once handlers are removed).
   */
  readonly signal?: AbortSignal;
  /**
   * Checks, in the worker before any scenario, that one driver can be set up; when it cannot, the
   * run rejects with a {@link DriverSetupError} instead of failing every scenario alike.
   */
  readonly probeSetup?: boolean;
  /**
   * After `signal` aborts, how long running scenarios get to finish and clean up before vitest's
   * worker is killed (default 25 s: inside the CLI's 30 s grace).
   */
  readonly interruptGraceMs?: number;
}

const DEFAULT_INTERRUPT_GRACE_MS = 25_000;
/** What a scenario the hard stop cut says: what it made may be left behind. */
export const STOPPED_BEFORE_CLEANUP = "stopped before its cleanup (what it made may be left)";
/** Between the hard stop's cancel and its kill: time for vitest to report what was running. */
const HARD_STOP_REPORT_MS = 2_000;

/** The entry test file shipped in this package. */
export function entryFile(): string {
  return fileURLToPath(new URL("./suite-entry.js", import.meta.url));
}

/** Runs the suite through vitest and returns the report. */
export async function runWithVitest(options: RunWithVitestOptions): Promise<RunReport> {
  assertSupportedVitest();
  const { createVitest } = await import("vitest/node");
  const startedAt = new Date();
  const t0 = performance.now();
  const collector = new CollectReporter(options.onResult);
  const entry = entryFile();
  const signal = options.signal;
  const stopFile = signal ? join(tmpdir(), `virtkit-stop-${process.pid}-${randomBytes(4).toString("hex")}`) : undefined;
  const setupFailureFile = options.probeSetup ? join(tmpdir(), `virtkit-setup-${process.pid}-${randomBytes(4).toString("hex")}.json`) : undefined;
  const settings: VitestRunSettings = {
    ...options.settings,
    ...(setupFailureFile !== undefined ? { setupFailureFile } : {}),
    ...(options.suiteTimeoutMs !== undefined ? { suiteDeadline: Date.now() + options.suiteTimeoutMs, suiteTimeoutMs: options.suiteTimeoutMs } : {}),
    ...(stopFile !== undefined ? { stopFile } : {}),
  };
  // vitest's banner goes nowhere; what its worker printed last is kept to say why it died.
  const workerOutput = new OutputTail(4_096);
  const ownSignalHandlers = new Set([...process.rawListeners("SIGINT"), ...process.rawListeners("SIGTERM")]);
  const vitest = await createVitest(
    "test",
    {
      run: true,
      watch: false,
      config: false,
      root: dirname(entry),
      include: ["suite-entry.js"],
      reporters: [collector],
      provide: { virtkitConformance: settings },
      testTimeout:
        options.settings.scenarioTimeoutMs + (options.settings.cleanupTimeoutMs ?? DEFAULT_CLEANUP_TIMEOUT_MS) + 10_000,
      // One file: a single fork is all it needs, and forks keep native handles (sockets) safe.
      pool: "forks",
      maxWorkers: 1,
      // `--parallel`: scenarios are `it.concurrent` tests within the one file.
      maxConcurrency: Math.max(1, options.settings.parallel),
      fileParallelism: false,
      passWithNoTests: true,
      // The kit's order (`--shuffle --seed`) is the registration order; vitest must keep it.
      sequence: { shuffle: false },
      silent: true,
      // Compiled code (the kit, core, drivers' dist) goes straight to Node. In a workspace their
      // real paths are outside node_modules, and vite would otherwise transform every file again
      // (about 1.5 s of CPU per run of the fake suite on this machine). Only the entry is vitest's.
      server: { deps: { external: [/\/dist\/(?!vitest\/suite-entry\.js$)/] } },
    },
    // Vite's cache would otherwise land next to the entry file, inside this package's dist.
    { cacheDir: join(tmpdir(), "virtkit-conformance-vite") },
    { stdout: devNull(), stderr: workerOutput },
  );
  if (signal) {
    for (const name of ["SIGINT", "SIGTERM"] as const) {
      for (const l of process.rawListeners(name)) if (!ownSignalHandlers.has(l)) process.removeListener(name, l as () => void);
    }
  }
  // The hard stop: vitest's cancel waits for its worker to finish on its own, which a worker stuck
  // in a driver call (or a busy loop) never does; a second cancel while the first is under way
  // kills the fork (SIGTERM, then SIGKILL). What finished is kept.
  const timers: NodeJS.Timeout[] = [];
  let hardStopped = false;
  const hardStop = (graceMs: number): void => {
    // First a cancel alone, so vitest reports the tests still running (as cancelled: "not
    // finished"); the kill a moment later would otherwise lose them, reported never run.
    timers.push(setTimeout(() => void vitest.cancelCurrentRun("keyboard-input"), timerDelay(graceMs)));
    timers.push(
      setTimeout(() => {
        hardStopped = true;
        void vitest.cancelCurrentRun("keyboard-input");
        void vitest.close();
      }, timerDelay(graceMs + HARD_STOP_REPORT_MS)),
    );
  };
  const stop = () => {
    writeFileSync(stopFile!, "");
    hardStop(options.interruptGraceMs ?? DEFAULT_INTERRUPT_GRACE_MS);
  };
  // A caller that exits at once (a second Ctrl-C) takes its stop file along.
  const removeStopFile = () => rmSync(stopFile!, { force: true });
  if (stopFile !== undefined) process.once("exit", removeStopFile);
  if (signal?.aborted) stop();
  else signal?.addEventListener("abort", stop, { once: true });
  // The worker skips scenarios past the deadline itself; this is the hard stop for one that hangs.
  if (options.suiteTimeoutMs !== undefined) {
    timers.push(setTimeout(() => void vitest.cancelCurrentRun("keyboard-input"), timerDelay(options.suiteTimeoutMs + 2_000)));
    hardStop(options.suiteTimeoutMs + 7_000);
  }
  try {
    await vitest.start([entry]).catch((err: unknown) => {
      // A start the hard stop cut short: what finished is reported, the rest is not run.
      if (!hardStopped) throw err;
    });
  } finally {
    for (const t of timers) clearTimeout(t);
    signal?.removeEventListener("abort", stop);
    if (stopFile !== undefined) {
      process.removeListener("exit", removeStopFile);
      removeStopFile();
    }
    await vitest.close();
  }
  if (setupFailureFile !== undefined) {
    const failure = readSetupFailure(setupFailureFile);
    rmSync(setupFailureFile, { force: true });
    if (failure !== undefined) throw new DriverSetupError(failure.stage, new Error(failure.message));
  }
  const level = options.settings.level;
  // Table order (vitest reports in completion order), and every selected scenario accounted for:
  // those a suite timeout cancelled are reported skipped.
  const selected = scheduleScenarios(options.settings);
  const byId = new Map(collector.results.map((r) => [r.id, r]));
  const suiteTimedOut = settings.suiteDeadline !== undefined && Date.now() >= settings.suiteDeadline;
  // A scenario left unrun with no interruption and no suite deadline to explain it means vitest
  // itself failed (its worker died, the entry did not load): a failure of the run, never a quiet
  // skip, so a column of 200 unrun scenarios cannot read as ok.
  const lost = collector.errors[0] !== undefined ? `the vitest run failed: ${collector.errors[0]}` : "the vitest run ended without it";
  const ordered: ScenarioResult[] = selected.map((s) => {
    const got = byId.get(s.id);
    // Cut mid-way by the hard stop: not finished, as the direct runner says (vitest's own note,
    // "aborted by the user", would blame the user for a suite timeout).
    if (got && collector.cancelledWhileRunning.has(s.id)) {
      const why = signal?.aborted
        ? "the run was interrupted"
        : suiteTimedOut
          ? `suite timeout (${options.suiteTimeoutMs} ms) reached`
          : (got.reason ?? "vitest cancelled it");
      // It ignored its signal until the hard stop: its cleanup never ran.
      const reason = `not finished: ${why}; ${STOPPED_BEFORE_CLEANUP}`;
      return { ...got, title: s.title, group: s.group, capability: s.capability, level: s.level, status: "fail", reason };
    }
    if (got) return got;
    const explained = signal?.aborted === true || suiteTimedOut;
    return {
      id: s.id,
      title: s.title,
      group: s.group,
      capability: s.capability,
      level: s.level,
      status: explained ? "skipped" : "fail",
      reason: signal?.aborted
        ? "not run: the run was interrupted"
        : suiteTimedOut
          ? `suite timeout (${options.suiteTimeoutMs} ms) reached`
          : `not run: ${lost}`,
      durationMs: 0,
    };
  });
  ordered.push(...collector.results.filter((r) => !selected.some((s) => s.id === r.id)));
  const results = ordered;
  const runErrors = [
    ...collector.errors.map((e) => `vitest: ${e}`),
    ...results
      .filter((r) => r.status === "fail" && /process\.exit unexpectedly called/.test(r.reason ?? ""))
      .map((r) => `${r.id}: the driver called process.exit (vitest refused it)`),
  ];
  return {
    driver: options.driver,
    notes: [
      ...new Set([...(options.driver.notes ?? []), ...(options.notes ?? []), ...runNotes(options.settings), ...collector.notes]),
    ].concat(collector.errors.length > 0 && workerOutput.text().trim() !== "" ? [`vitest's last output: ${workerOutput.text().trim()}`] : []),
    level,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    runner: "vitest",
    results,
    // An uncaught error of driver code (or vitest's own) fails the run, as the process's exit code
    // does; so does a driver's process.exit (vitest refuses it into the scenario that made it, which
    // may be below the run's level: ending the process is never a SHOULD matter).
    ...(runErrors.length > 0 ? { errors: runErrors } : {}),
    ...summarize(results, level, runErrors),
  };
}

function readSetupFailure(file: string): SetupFailure | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const parsed = JSON.parse(text) as SetupFailure;
  return { stage: parsed.stage, message: String(parsed.message) };
}

/** Keeps the last `max` characters written (ANSI colours removed). */
class OutputTail extends Writable {
  #tail = "";
  constructor(readonly max: number) {
    super();
  }
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, cb: () => void): void {
    // eslint-disable-next-line no-control-regex
    this.#tail = (this.#tail + chunk.toString().replace(/\u001b\[[0-9;]*m/g, "")).slice(-this.max);
    cb();
  }
  text(): string {
    return this.#tail;
  }
}

function devNull(): Writable {
  // vitest writes its banner and summary to these; our reporters print instead.
  return new Writable({ write: (_chunk, _encoding, cb) => cb() });
}
