/**
 * Ctrl-C (SIGINT) and SIGTERM during a long command: the first stops new work and gives what is
 * running a bounded time to clean up, so the command can still write its report; a second one
 * exits at once. The exit code is 130 either way (128 + SIGINT), as a shell expects.
 */
import type { DriverDescriptor, RunReport, ScenarioLevel, ScenarioResult } from "@virtkit/conformance";
import { exitNow } from "./exit-guard.js";

/** Exit code after an interruption. */
export const EXIT_INTERRUPTED = 130;

/** How long running scenarios get to clean up after the first signal before the command reports and exits. */
export const INTERRUPT_GRACE_MS = 30_000;

/** The part of `process` this needs (a stand-in in tests). */
export interface SignalSource {
  once(event: NodeJS.Signals, listener: () => void): unknown;
  removeListener(event: NodeJS.Signals, listener: () => void): unknown;
  exit(code: number): never;
}

/** What {@link watchInterrupt} gives a command. */
export interface InterruptWatch {
  /** Aborted on the first signal. */
  readonly signal: AbortSignal;
  /** The first signal's name, once one arrived. */
  by(): NodeJS.Signals | undefined;
  /** Resolves when the grace period after the first signal is over (never when no signal comes). */
  readonly graceOver: Promise<void>;
  /** Stops watching (the command is done). */
  dispose(): void;
}

/** Options of {@link watchInterrupt}. */
export interface WatchInterruptOptions {
  readonly graceMs?: number;
  /** Told once, on the first signal (to say what happens now). */
  readonly onFirst?: (signal: NodeJS.Signals, graceMs: number) => void;
  readonly source?: SignalSource;
}

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** Watches for SIGINT/SIGTERM until disposed. */
export function watchInterrupt(options: WatchInterruptOptions = {}): InterruptWatch {
  // The real exit, even while a driver's process.exit is refused (exit-guard.ts).
  const source: SignalSource = options.source ?? {
    once: (event, listener) => process.once(event, listener),
    removeListener: (event, listener) => process.removeListener(event, listener),
    exit: exitNow,
  };
  const graceMs = options.graceMs ?? INTERRUPT_GRACE_MS;
  const controller = new AbortController();
  let first: NodeJS.Signals | undefined;
  let timer: NodeJS.Timeout | undefined;
  let endGrace: () => void = () => undefined;
  const graceOver = new Promise<void>((resolve) => (endGrace = resolve));
  const now = () => source.exit(EXIT_INTERRUPTED);
  const handlers = SIGNALS.map((name) => {
    const handler = () => {
      if (first !== undefined) return;
      first = name;
      // The second signal, of either kind, does not wait for anything.
      for (const s of SIGNALS) source.once(s, now);
      options.onFirst?.(name, graceMs);
      controller.abort(new Error(`interrupted by ${name}`));
      timer = setTimeout(endGrace, graceMs);
      timer.unref();
    };
    source.once(name, handler);
    return [name, handler] as const;
  });
  return {
    signal: controller.signal,
    by: () => first,
    graceOver,
    dispose() {
      if (timer) clearTimeout(timer);
      for (const [name, handler] of handlers) source.removeListener(name, handler);
      for (const s of SIGNALS) source.removeListener(s, now);
    },
  };
}

/** The kit's `summarize` (passed in: this module imports nothing from the kit at load time). */
export type Summarize = (results: readonly ScenarioResult[], level: ScenarioLevel) => Pick<RunReport, "summary" | "leaks" | "warnings" | "ok">;

/** What an interrupted run had done when its grace period ran out. */
export interface PartialRun {
  readonly driver: DriverDescriptor;
  readonly level: ScenarioLevel;
  readonly runner: RunReport["runner"];
  readonly startedAt: Date;
  /** The scenarios that finished, in the order they did. */
  readonly results: readonly ScenarioResult[];
  /** How many were selected. */
  readonly total: number | undefined;
  readonly signal: NodeJS.Signals;
}

/** The report of a run cut short: what finished, and a note saying the run was interrupted and what was still running. */
export function partialReport(run: PartialRun, summarize: Summarize): RunReport {
  const summary = summarize(run.results, run.level);
  return {
    driver: run.driver,
    notes: [...(run.driver.notes ?? []), interruptedNote(run.signal, run.results.length, run.total, true)],
    level: run.level,
    startedAt: run.startedAt.toISOString(),
    durationMs: Date.now() - run.startedAt.getTime(),
    runner: run.runner,
    results: run.results,
    ...summary,
    // An interrupted run proves nothing about the scenarios that did not finish.
    ok: false,
  };
}

/**
 * The reasons the runners give a scenario the interrupt cut while it ran ("not finished: ...") and
 * one the direct runner did not start ("the run was aborted").
 */
const ABORTED_RE = /the run was aborted|^not finished: (the run was interrupted|interrupted by )/;

/**
 * The report of a run that finished after an interruption: a scenario aborted while running is not
 * a driver failure but "interrupted" (its cleanup ran: its leaks and cleanup errors stay), and a
 * note says how far the run got. Never `ok`.
 */
export function interruptedReport(report: RunReport, signal: NodeJS.Signals, summarize: Summarize): RunReport {
  const results = report.results.map((r): ScenarioResult => {
    if (!ABORTED_RE.test(r.reason ?? "")) return r;
    if (r.status === "skipped") return { ...r, reason: "not run: the run was interrupted" };
    if (r.status !== "fail") return r;
    const { mismatch: _m, location: _l, step: _s, ...rest } = r;
    const cleanup = r.reason?.includes("stopped before its cleanup") ? "stopped before its cleanup: what it made may be left" : "its cleanup ran";
    return { ...rest, status: "skipped", reason: `interrupted by ${signal} while running (${cleanup})` };
  });
  const finished = results.filter((r) => !/^not run: the run was interrupted$|^interrupted by /.test(r.reason ?? "")).length;
  return {
    ...report,
    results,
    ...summarize(results, report.level),
    notes: [...report.notes, interruptedNote(signal, finished, results.length, false)],
    ok: false,
  };
}

/** The note an interrupted run's report carries. */
export function interruptedNote(signal: NodeJS.Signals, finished: number, total: number | undefined, cut: boolean): string {
  const of = total !== undefined ? ` of ${total}` : "";
  return cut
    ? `interrupted by ${signal}: ${finished}${of} scenarios finished; the scenarios still running did not clean up within ${INTERRUPT_GRACE_MS / 1000} s and are not in this report, the rest were not run`
    : `interrupted by ${signal}: ${finished}${of} scenarios finished (those running when it came cleaned up, unless their line says otherwise); the rest were not run`;
}
