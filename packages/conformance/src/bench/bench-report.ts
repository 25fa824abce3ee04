/**
 * What `virtkit conformance bench` measures and the versioned JSON document it writes
 * (`schema: "virtkit.bench/1"`). Plain JSON-safe data: the CLI prints it with `--json`, writes it
 * with `--output`, and `virtkit matrix --bench-report` reads it back through {@link parseBenchReport}.
 */
import { InvalidInputError, type Capability } from "@virtkit/core";
import type { DriverDescriptor } from "../types.js";

/** The format of a {@link BenchReport}; a reader refuses any other. */
export const BENCH_SCHEMA = "virtkit.bench/1" as const;

/** Every timed operation, in the order one instance's lifecycle runs them. */
export const BENCH_OPERATIONS = [
  "spawn",
  "getInfo",
  "listInstances",
  "pause",
  "unpause",
  "suspend",
  "resume",
  "snapshotCreate",
  "snapshotRevert",
  "rebootSoft",
  "rebootHard",
  "powerOff",
  "powerOn",
  "destroy",
] as const;

/** One timed operation. */
export type BenchOperation = (typeof BENCH_OPERATIONS)[number];

/** The throughput measurement's name in `--operations`. */
export const BENCH_THROUGHPUT = "throughput" as const;

/** What `--operations` may list: an operation, or `throughput`. */
export type BenchSelectable = BenchOperation | typeof BENCH_THROUGHPUT;

/** Every selectable name (`--operations` default: all of them). */
export const BENCH_SELECTABLE: readonly BenchSelectable[] = [...BENCH_OPERATIONS, BENCH_THROUGHPUT];

/** The capability an operation needs; null for the base contract. */
export const BENCH_OPERATION_CAPABILITY: Readonly<Record<BenchOperation, Capability | null>> = {
  spawn: null,
  getInfo: null,
  listInstances: null,
  pause: "pause",
  unpause: "pause",
  suspend: "suspend",
  resume: "suspend",
  snapshotCreate: "instanceSnapshots",
  snapshotRevert: "instanceSnapshots",
  rebootSoft: "softReboot",
  rebootHard: null,
  powerOff: null,
  powerOn: null,
  destroy: null,
};

/** Latency of one operation over its samples, in milliseconds (3 decimals). */
export interface LatencyStats {
  readonly samples: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly meanMs: number;
  /** Percentiles by the nearest-rank method: the smallest sample at or above that share of samples. */
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
}

/**
 * One operation's outcome:
 * - `measured`: timed `latency.samples` times (fewer than `count` when the bench stopped early);
 * - `skipped`: the driver does not declare its capability (`reason` names it); never called, never faked;
 * - `failed`: it raised; the bench stopped there (see the report's `error`);
 * - `not-run`: the bench stopped (a failure elsewhere, Ctrl-C) before it was timed once.
 */
export type BenchOperationResult =
  | { readonly operation: BenchOperation; readonly capability: Capability | null; readonly status: "measured"; readonly latency: LatencyStats }
  | {
      readonly operation: BenchOperation;
      readonly capability: Capability | null;
      readonly status: "skipped" | "failed" | "not-run";
      readonly reason: string;
      /** Samples taken before it failed, if any. */
      readonly latency?: LatencyStats;
    };

/** Spawn + destroy of `instances` instances, `concurrency` at a time, timed from first spawn to last destroy. */
export type BenchThroughput =
  | {
      readonly status: "measured";
      readonly concurrency: number;
      readonly instances: number;
      readonly durationMs: number;
      readonly instancesPerSecond: number;
    }
  | { readonly status: "failed" | "not-run"; readonly concurrency: number; readonly reason: string };

/** What the bench was asked to do. */
export interface BenchSettings {
  /** Instances per phase: each timed operation gets one sample per instance. */
  readonly count: number;
  /** Instances in flight at once, in both phases. */
  readonly concurrency: number;
  /** Deadline of each driver call in ms. */
  readonly timeoutMs: number;
  /** Deadline of the whole cleanup in ms. */
  readonly cleanupTimeoutMs: number;
  readonly operations: readonly BenchSelectable[];
}

/** Where the figures were taken: they mean little without it. */
export interface BenchMachine {
  readonly cpus: number;
  /** 1, 5 and 15 minute load averages when the bench started. */
  readonly loadavg: readonly number[];
  readonly node: string;
  readonly platform: string;
}

/** The first failure, which stopped the bench. */
export interface BenchError {
  /** The operation (or `environment setup`, `create driver`, `throughput`) that raised. */
  readonly operation: string;
  /** The instance's name, when an instance's operation raised. */
  readonly instance?: string;
  readonly code: string;
  readonly message: string;
}

/** The document `virtkit conformance bench --json` prints. */
export interface BenchReport {
  readonly schema: typeof BENCH_SCHEMA;
  /** The column this fills in the matrix is `driver.name` (`fake`, `libvirt-test`). */
  readonly driver: DriverDescriptor;
  /** The environment's and plugin's notes (e.g. "XenAPI results come from a simulator"). */
  readonly notes: readonly string[];
  readonly settings: BenchSettings;
  readonly machine: BenchMachine;
  readonly startedAt: string;
  readonly durationMs: number;
  /** One entry per selected operation, in {@link BENCH_OPERATIONS} order. */
  readonly operations: readonly BenchOperationResult[];
  /** Present when `throughput` was selected. */
  readonly throughput?: BenchThroughput;
  /**
   * What cleanup found left behind; any leak makes `ok` false. `null` when the leak check did not
   * complete (a list could not be read, or the cleanup budget ran out): nothing is known, `ok` is
   * false, and {@link BenchReport.leakCheckIncomplete} says why. Never an empty list in that case.
   */
  readonly leaks: readonly string[] | null;
  /** Why the leak check did not complete; present exactly when `leaks` is null. */
  readonly leakCheckIncomplete?: string;
  /** Problems while cleaning up (a missed cleanup deadline among them); any makes `ok` false. */
  readonly cleanupErrors: readonly string[];
  readonly error?: BenchError;
  /** True when the bench was stopped by its signal (Ctrl-C). */
  readonly interrupted: boolean;
  /** No error, no leak, no cleanup problem, not interrupted. */
  readonly ok: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/**
 * Checks that `value` (parsed JSON) is a {@link BenchReport} of this schema version, enough for
 * every reader (the matrix, the human renderer); throws `InvalidInputError` on `field` naming
 * what is wrong. `field` is how the caller names the source (a flag, a file).
 */
export function parseBenchReport(value: unknown, field = "bench report"): BenchReport {
  const bad = (what: string): never => {
    throw new InvalidInputError(field, what);
  };
  if (!isObject(value)) return bad("is not a JSON object");
  if (value.schema !== BENCH_SCHEMA) {
    return bad(`schema is ${JSON.stringify(value.schema)?.slice(0, 40) ?? "missing"}, expected "${BENCH_SCHEMA}"`);
  }
  if (!isObject(value.driver) || typeof value.driver.name !== "string") bad("driver.name is missing");
  if (!isObject(value.settings) || !isNumber(value.settings.count) || !isNumber(value.settings.concurrency)) {
    bad("settings.count / settings.concurrency are missing");
  }
  if (!Array.isArray(value.operations)) return bad("operations is not a list");
  value.operations.forEach((o: unknown, i) => {
    if (!isObject(o) || !(BENCH_OPERATIONS as readonly unknown[]).includes(o.operation)) bad(`operations[${i}] names no known operation`);
    const op = o as Record<string, unknown>;
    if (op.status === "measured") {
      const l = op.latency;
      if (!isObject(l) || !["samples", "minMs", "maxMs", "meanMs", "p50Ms", "p95Ms", "p99Ms"].every((k) => isNumber(l[k]))) {
        bad(`operations[${i}].latency is incomplete`);
      }
    } else if (!["skipped", "failed", "not-run"].includes(String(op.status))) {
      bad(`operations[${i}].status is not measured, skipped, failed or not-run`);
    }
  });
  if (value.throughput !== undefined) {
    const t = value.throughput;
    if (!isObject(t) || (t.status === "measured" && !isNumber(t.instancesPerSecond))) bad("throughput is incomplete");
  }
  if (!Array.isArray(value.notes)) bad("notes is not a list");
  if (value.leaks === null) {
    if (typeof value.leakCheckIncomplete !== "string") bad("leaks is null but leakCheckIncomplete gives no reason");
    if (value.ok === true) bad("ok is true although the leak check did not complete");
  } else if (!Array.isArray(value.leaks)) {
    bad("leaks is neither a list nor null");
  } else if (value.leakCheckIncomplete !== undefined) {
    bad("leakCheckIncomplete is given although leaks is a list");
  }
  if (typeof value.ok !== "boolean") bad("ok is missing");
  return value as unknown as BenchReport;
}
