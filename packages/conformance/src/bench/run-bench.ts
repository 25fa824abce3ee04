/**
 * `critest -benchmark` for ComputeDrivers: latency of each contract operation over `count`
 * instance lifecycles, and spawn+destroy throughput, against ONE environment built by the same
 * factory a conformance run uses (so the driver comes through the plugin's production path).
 * Only what the driver declares is called; the rest is reported skipped with the reason. Whatever
 * happens (a failure, a deadline, Ctrl-C through `signal`), everything created is destroyed and
 * then checked gone, through the driver's lists and the environment's `leftovers()`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { cpus, loadavg } from "node:os";
import {
  InvalidInputError,
  OperationTimeoutError,
  withDeadline,
  type Capabilities,
  type ComputeDriver,
  type ConformanceEnvironment,
  type ConformanceEnvironmentFactory,
  type Instance,
  type OperationOptions,
} from "@virtkit/core";
import { DEFAULT_BOOT_IMAGE, DEFAULT_CLEANUP_TIMEOUT_MS } from "../make-test.js";
import type { DriverDescriptor } from "../types.js";
import {
  BENCH_OPERATIONS,
  BENCH_OPERATION_CAPABILITY,
  BENCH_SCHEMA,
  BENCH_SELECTABLE,
  BENCH_THROUGHPUT,
  type BenchError,
  type BenchOperation,
  type BenchOperationResult,
  type BenchReport,
  type BenchSelectable,
  type BenchSettings,
  type BenchThroughput,
} from "./bench-report.js";
import { latencyStats } from "./latency-stats.js";

/** Instances per phase unless told. */
export const DEFAULT_BENCH_COUNT = 10;
/** Deadline of each driver call unless told (a TCG guest's spawn on a busy machine takes seconds). */
export const DEFAULT_BENCH_TIMEOUT_MS = 60_000;
/** Deadline of building the environment and the driver (containers may start, images may build). */
export const DEFAULT_BENCH_SETUP_TIMEOUT_MS = 300_000;

/** What to measure, against what. */
export interface BenchOptions {
  /** For the report (from `resolveDriver`); `capabilities` is filled from the driver built. */
  readonly driver: DriverDescriptor;
  /** The environment factory (`resolveDriver(...).environment`); the caller disposes it. */
  readonly environment: ConformanceEnvironmentFactory;
  /** Instances per phase, 1–100 000 (default {@link DEFAULT_BENCH_COUNT}). */
  readonly count?: number;
  /** Instances in flight at once, 1–256 (default 1). */
  readonly concurrency?: number;
  /** What to measure (default: everything, {@link BENCH_SELECTABLE}). */
  readonly operations?: readonly BenchSelectable[];
  /** Deadline of each driver call in ms (default {@link DEFAULT_BENCH_TIMEOUT_MS}). */
  readonly timeoutMs?: number;
  /** Deadline of the whole cleanup in ms (default the kit's, 60 s). */
  readonly cleanupTimeoutMs?: number;
  /** Deadline of the environment and driver setup in ms (default {@link DEFAULT_BENCH_SETUP_TIMEOUT_MS}). */
  readonly setupTimeoutMs?: number;
  /** Stops the bench (Ctrl-C); cleanup still runs, under its own deadline. */
  readonly signal?: AbortSignal;
  /** One line per phase, for a human watching. */
  readonly onProgress?: (message: string) => void;
}

const MAX_COUNT = 100_000;
const MAX_CONCURRENCY = 256;
const MAX_TIMEOUT_MS = 2_147_483_647;

/** `spawn,getInfo` → the names, checked; an unknown name is an `InvalidInputError` listing the known ones. */
export function parseBenchOperations(list: string): BenchSelectable[] {
  const names = list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0) throw new InvalidInputError("operations", `names no operation; known: ${BENCH_SELECTABLE.join(", ")}`);
  for (const n of names) {
    if (!(BENCH_SELECTABLE as readonly string[]).includes(n)) {
      throw new InvalidInputError("operations", `unknown operation "${n.slice(0, 40)}"; known: ${BENCH_SELECTABLE.join(", ")}`);
    }
  }
  return [...new Set(names as BenchSelectable[])];
}

/** The settings of a bench, defaults applied and checked (`InvalidInputError` on the field). */
export function benchSettings(o: Omit<BenchOptions, "driver" | "environment">): BenchSettings {
  const int = (field: string, v: number | undefined, dflt: number, max: number): number => {
    const n = v ?? dflt;
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidInputError(field, `must be an integer from 1 to ${max}`);
    return n;
  };
  const operations = o.operations ?? BENCH_SELECTABLE;
  if (operations.length === 0) throw new InvalidInputError("operations", "names no operation");
  for (const op of operations) {
    if (!BENCH_SELECTABLE.includes(op)) throw new InvalidInputError("operations", `unknown operation; known: ${BENCH_SELECTABLE.join(", ")}`);
  }
  return {
    count: int("count", o.count, DEFAULT_BENCH_COUNT, MAX_COUNT),
    concurrency: int("concurrency", o.concurrency, 1, MAX_CONCURRENCY),
    timeoutMs: int("timeoutMs", o.timeoutMs, DEFAULT_BENCH_TIMEOUT_MS, MAX_TIMEOUT_MS),
    cleanupTimeoutMs: int("cleanupTimeoutMs", o.cleanupTimeoutMs, DEFAULT_CLEANUP_TIMEOUT_MS, MAX_TIMEOUT_MS),
    // In the report's order, whatever order they were asked in.
    operations: BENCH_SELECTABLE.filter((s) => operations.includes(s)),
  };
}

/** One step of an instance's lifecycle: timed and recorded when `op` is set. */
interface Step {
  readonly label: string;
  readonly op?: BenchOperation;
  run(instance: Instance, options: OperationOptions): Promise<unknown>;
}

const round = (ms: number, digits = 3): number => Math.round(ms * 10 ** digits) / 10 ** digits;

function errorCode(err: unknown): string {
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof code === "string") return code;
  return err instanceof Error ? err.name : "Error";
}

function errorMessage(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split("\n")[0] ?? m;
}

/** Runs `work(0..n-1)` with at most `concurrency` at once, starting none once `signal` fired. */
async function pool(n: number, concurrency: number, signal: AbortSignal | undefined, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (signal?.aborted !== true && next < n) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

/** Measures the driver; never throws for the driver's failures (they are in the report), only for bad options. */
export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const settings = benchSettings(o);
  const setupTimeoutMs = o.setupTimeoutMs ?? DEFAULT_BENCH_SETUP_TIMEOUT_MS;
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const machine = { cpus: cpus().length, loadavg: loadavg().map((l) => round(l, 2)), node: process.version, platform: process.platform };
  const selected = new Set<BenchSelectable>(settings.operations);
  const prefix = `vkb${randomBytes(4).toString("hex")}`;
  const progress = (m: string) => o.onProgress?.(m);
  // Deadlines use unref'd timers: a driver call that waits on nothing would let the process empty
  // its loop and exit (code 13) before the deadline fires, with no report and no cleanup.
  const keepAlive = setInterval(() => undefined, 2 ** 30);

  // Stops every worker: the caller's signal, or the first failure.
  const stop = new AbortController();
  const onOuterAbort = () => stop.abort(o.signal?.reason ?? new Error("interrupted"));
  if (o.signal?.aborted) onOuterAbort();
  else o.signal?.addEventListener("abort", onOuterAbort, { once: true });

  const samples = new Map<BenchOperation, number[]>(BENCH_OPERATIONS.map((op) => [op, []]));
  let failure: BenchError | undefined;
  const fail = (operation: string, err: unknown, instance?: string): void => {
    // After Ctrl-C every call in flight rejects as aborted: that is the interruption, not a failure.
    if (failure === undefined && o.signal?.aborted !== true) {
      failure = { operation, ...(instance !== undefined ? { instance } : {}), code: errorCode(err), message: errorMessage(err) };
    }
    stop.abort(err);
  };
  const call = <T>(what: string, timeoutMs: number, fn: (options: OperationOptions) => Promise<T>): Promise<T> =>
    withDeadline(what, { signal: stop.signal }, timeoutMs, (signal) => fn({ signal, timeoutMs }));

  const tracked: Instance[] = [];
  const gone = new Set<string>();
  const newInstance = (name: string, env: ConformanceEnvironment): Instance => {
    const instance: Instance = {
      uuid: randomUUID(),
      name,
      flavor: env.flavor ?? { name: "m1.tiny", memoryMb: 64, vcpus: 1, rootGb: 1 },
      imageMeta: env.bootImage ?? DEFAULT_BOOT_IMAGE,
      projectId: "bench-project",
      userId: "bench-user",
      osType: "linux",
    };
    tracked.push(instance);
    return instance;
  };

  const notes = new Set<string>(o.driver.notes ?? []);
  let env: ConformanceEnvironment | undefined;
  let driver: ComputeDriver | undefined;
  let capabilities: Capabilities | undefined;
  let throughput: BenchThroughput | undefined;
  let host = "localhost";
  // null: the leak check did not complete (`leakCheckIncomplete` says why); nothing is known.
  let leaks: string[] | null = [];
  let leakCheckIncomplete: string | undefined;
  const cleanupErrors: string[] = [];
  try {
    // An environment that arrives after its deadline is torn down, not leaked.
    let gaveUp = false;
    const building = o.environment({ prefix });
    building.then((late) => (gaveUp ? late.cleanup() : undefined)).catch(() => undefined);
    try {
      env = await call("environment setup", setupTimeoutMs, () => building);
    } catch (err) {
      gaveUp = true;
      fail("environment setup", err);
      return await finish();
    }
    for (const n of env.notes) notes.add(n);
    host = env.hosts[0] ?? "localhost";
    try {
      const e = env;
      driver = await call("create driver", setupTimeoutMs, () => e.createDriver(host));
    } catch (err) {
      fail("create driver", err);
      return await finish();
    }
    capabilities = { ...driver.capabilities };
    progress(`${o.driver.name}: ${settings.count} instance lifecycle${settings.count === 1 ? "" : "s"}, ${settings.concurrency} at a time`);
    const steps = lifecycleSteps(driver, env, selected);
    const e = env;
    await pool(settings.count, settings.concurrency, stop.signal, async (i) => {
      const instance = newInstance(`${prefix}-${i + 1}`, e);
      for (const step of steps) {
        if (stop.signal.aborted) return;
        const started = performance.now();
        try {
          await call(`${step.label} ${instance.name}`, settings.timeoutMs, (opts) => step.run(instance, opts));
        } catch (err) {
          fail(step.label, err, instance.name);
          return;
        }
        if (step.op !== undefined) samples.get(step.op)!.push(performance.now() - started);
        if (step.label === "destroy") gone.add(instance.uuid);
      }
    });
    if (selected.has(BENCH_THROUGHPUT)) {
      const concurrency = settings.concurrency;
      if (stop.signal.aborted) {
        throughput = { status: "not-run", concurrency, reason: stoppedReason() };
      } else {
        progress(`${o.driver.name}: throughput, spawn + destroy of ${settings.count}, ${concurrency} at a time`);
        const d = driver;
        let done = 0;
        const began = performance.now();
        await pool(settings.count, concurrency, stop.signal, async (i) => {
          const instance = newInstance(`${prefix}-t${i + 1}`, e);
          for (const [label, run] of [
            ["spawn", (opts: OperationOptions) => d.spawn({ instance }, opts)],
            ["destroy", (opts: OperationOptions) => d.destroy(instance, opts)],
          ] as const) {
            try {
              await call(`${label} ${instance.name}`, settings.timeoutMs, run);
            } catch (err) {
              fail(`${label} (throughput)`, err, instance.name);
              return;
            }
          }
          gone.add(instance.uuid);
          done += 1;
        });
        const ms = performance.now() - began;
        throughput =
          stop.signal.aborted
            ? { status: failure?.operation.endsWith("(throughput)") ? "failed" : "not-run", concurrency, reason: stoppedReason() }
            : { status: "measured", concurrency, instances: done, durationMs: round(ms), instancesPerSecond: round(done / (ms / 1000), 2) };
      }
    }
    return await finish();
  } finally {
    o.signal?.removeEventListener("abort", onOuterAbort);
    clearInterval(keepAlive);
  }

  function stoppedReason(): string {
    if (failure) return `the bench stopped: ${failure.operation}${failure.instance ? ` of ${failure.instance}` : ""} failed (${failure.code})`;
    return "the bench was interrupted";
  }

  async function finish(): Promise<BenchReport> {
    if (env) {
      progress(`${o.driver.name}: cleaning up ${tracked.length - gone.size} instance(s), then checking for leftovers`);
      const checked = await cleanUp(env, driver, host, tracked, gone, prefix, settings, cleanupErrors);
      leaks = checked.leaks;
      leakCheckIncomplete = checked.incomplete;
    }
    const interrupted = o.signal?.aborted === true;
    const operations: BenchOperationResult[] = BENCH_OPERATIONS.filter((op) => selected.has(op)).map((operation) => {
      const capability = BENCH_OPERATION_CAPABILITY[operation];
      if (capabilities && capability !== null && capabilities[capability] !== true) {
        return { operation, capability, status: "skipped", reason: `capability ${capability} not declared by the driver` };
      }
      const latency = latencyStats(samples.get(operation) ?? []);
      if (failure?.operation === operation) {
        return { operation, capability, status: "failed", reason: `${failure.code}: ${failure.message}`, ...(latency ? { latency } : {}) };
      }
      if (latency) return { operation, capability, status: "measured", latency };
      return { operation, capability, status: "not-run", reason: stoppedReason() };
    });
    return {
      schema: BENCH_SCHEMA,
      driver: { ...o.driver, ...(capabilities ? { capabilities: { ...capabilities } } : {}) },
      notes: [...notes],
      settings,
      machine,
      startedAt,
      durationMs: Math.round(performance.now() - t0),
      operations,
      ...(throughput ? { throughput } : {}),
      leaks,
      ...(leakCheckIncomplete !== undefined ? { leakCheckIncomplete } : {}),
      cleanupErrors: [...cleanupErrors],
      ...(failure ? { error: failure } : {}),
      interrupted,
      ok: failure === undefined && !interrupted && leaks !== null && leaks.length === 0 && cleanupErrors.length === 0,
    };
  }
}

/** The calls of one instance's lifecycle, in order; prerequisites of a selected operation run untimed. */
function lifecycleSteps(driver: ComputeDriver, env: ConformanceEnvironment, selected: ReadonlySet<BenchSelectable>): Step[] {
  const caps = driver.capabilities;
  const want = (...ops: BenchOperation[]) => ops.some((op) => selected.has(op));
  const steps: Step[] = [];
  const timed = (op: BenchOperation, run: Step["run"]) => steps.push({ label: op, ...(selected.has(op) ? { op } : {}), run });
  timed("spawn", (i, o) => driver.spawn({ instance: i }, o));
  const whenBooted = env.guestControls?.whenBooted?.bind(env.guestControls);
  // A real guest must have booted before it can be asked to reboot or shut down; that wait is the guest's, not the driver's.
  if (whenBooted) steps.push({ label: "wait for boot", run: (i, o) => whenBooted(i, o) });
  if (want("getInfo")) timed("getInfo", (i, o) => driver.getInfo(i, o));
  if (want("listInstances")) timed("listInstances", (_, o) => driver.listInstances(o));
  if (caps.pause && want("pause", "unpause")) {
    timed("pause", (i, o) => driver.pause(i, o));
    timed("unpause", (i, o) => driver.unpause(i, o));
  }
  if (caps.suspend && want("suspend", "resume")) {
    timed("suspend", (i, o) => driver.suspend(i, o));
    timed("resume", (i, o) => driver.resume(i, o));
  }
  if (caps.instanceSnapshots && want("snapshotCreate", "snapshotRevert")) {
    const snapshots = new Map<string, string>();
    timed("snapshotCreate", async (i, o) => snapshots.set(i.uuid, (await driver.createInstanceSnapshot(i, `${i.name}-bench`, o)).id));
    if (want("snapshotRevert")) timed("snapshotRevert", (i, o) => driver.revertToInstanceSnapshot(i, snapshots.get(i.uuid)!, o));
    steps.push({
      label: "delete snapshot",
      run: async (i, o) => {
        await driver.deleteInstanceSnapshot(i, snapshots.get(i.uuid)!, o);
        snapshots.delete(i.uuid);
      },
    });
  }
  if (caps.softReboot && want("rebootSoft")) timed("rebootSoft", (i, o) => driver.reboot(i, "SOFT", o));
  if (want("rebootHard")) timed("rebootHard", (i, o) => driver.reboot(i, "HARD", o));
  if (want("powerOff", "powerOn")) {
    // Hard (no clean-shutdown wait): the driver's call, not how long a guest takes to honour ACPI.
    timed("powerOff", (i, o) => driver.powerOff(i, { ...o, cleanShutdownTimeoutSec: 0 }));
    timed("powerOn", (i, o) => driver.powerOn(i, o));
  }
  timed("destroy", (i, o) => driver.destroy(i, o));
  return steps;
}

/** What cleanup found: the leaks, or null with the reason when the leak check did not complete. */
interface CleanupFindings {
  readonly leaks: string[] | null;
  readonly incomplete?: string;
}

/**
 * Destroys every instance the bench created that may still exist (and its snapshots), then lists
 * what is left: instances still listed by the driver, and the environment's `leftovers()`. Then
 * `cleanupHost` and the environment's `cleanup`. All of it under its own budget
 * (`cleanupTimeoutMs`, not the per-call `--timeout`: each call gets what is left of it), never
 * under the bench's own signal (Ctrl-C must not stop the cleanup it asked for). A leak check that
 * failed or ran out of time gives `leaks: null` and the reason, never an empty list.
 */
async function cleanUp(
  env: ConformanceEnvironment,
  driver: ComputeDriver | undefined,
  host: string,
  tracked: readonly Instance[],
  gone: ReadonlySet<string>,
  prefix: string,
  settings: BenchSettings,
  cleanupErrors: string[],
): Promise<CleanupFindings> {
  const leaks: string[] = [];
  const controller = new AbortController();
  const deadline = performance.now() + settings.cleanupTimeoutMs;
  const opts = (): OperationOptions => ({
    signal: controller.signal,
    timeoutMs: Math.max(1, Math.floor(deadline - performance.now())),
  });
  // Until both the driver's lists and the environment's leftovers were read, nothing is known.
  let driverChecked = driver === undefined;
  let leftoversChecked = env.leftovers === undefined;
  let incomplete: string | undefined;
  const describe = (err: unknown) => `${errorCode(err)}: ${errorMessage(err)}`;
  const work = async (): Promise<void> => {
    if (driver) {
      const d = driver;
      const left = tracked.filter((i) => !gone.has(i.uuid));
      await pool(left.length, settings.concurrency, undefined, async (k) => {
        const instance = left[k]!;
        try {
          if (!(await d.instanceExists(instance, opts()))) return;
          if (d.capabilities.instanceSnapshots) {
            for (const s of await d.listInstanceSnapshots(instance, opts()).catch(() => [])) {
              await d.deleteInstanceSnapshot(instance, s.id, opts()).catch((err: unknown) => {
                cleanupErrors.push(`delete snapshot ${s.id} of ${instance.name}: ${describe(err)}`);
              });
            }
          }
          await d.destroy(instance, opts());
        } catch (err) {
          cleanupErrors.push(`destroy ${instance.name}: ${describe(err)}`);
        }
      });
      try {
        const uuids = new Set(await d.listInstanceUuids(opts()));
        const reported = new Set<string>();
        for (const i of tracked) {
          if (uuids.has(i.uuid)) {
            leaks.push(`instance ${i.name} (${i.uuid}) still listed on ${host}`);
            reported.add(i.name);
          }
        }
        for (const name of await d.listInstances(opts())) {
          if (name.startsWith(prefix) && !reported.has(name)) leaks.push(`instance ${name} still listed on ${host}`);
        }
        driverChecked = true;
      } catch (err) {
        incomplete ??= `the driver's instance lists on ${host} could not be read: ${describe(err)}`;
        cleanupErrors.push(`leak check on ${host}: ${describe(err)}`);
      }
    }
    if (env.leftovers) {
      try {
        leaks.push(...(await env.leftovers()));
        leftoversChecked = true;
      } catch (err) {
        incomplete ??= `the environment's leftovers could not be read: ${describe(err)}`;
        cleanupErrors.push(`environment leftovers: ${describe(err)}`);
      }
    }
    if (driver) await driver.cleanupHost(host, opts()).catch((err: unknown) => cleanupErrors.push(`cleanupHost ${host}: ${describe(err)}`));
    await env.cleanup().catch((err: unknown) => cleanupErrors.push(`environment cleanup: ${describe(err)}`));
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new OperationTimeoutError("bench cleanup", settings.cleanupTimeoutMs));
      resolve("timeout");
    }, settings.cleanupTimeoutMs);
  });
  const running = work();
  running.catch(() => undefined);
  try {
    if ((await Promise.race([running.then(() => "done" as const), timeout])) === "timeout") {
      cleanupErrors.push(`cleanup did not finish within ${settings.cleanupTimeoutMs} ms; state unknown`);
    }
  } catch (err) {
    cleanupErrors.push(`cleanup: ${describe(err)}`);
  } finally {
    clearTimeout(timer);
  }
  if (driverChecked && leftoversChecked) return { leaks: [...leaks] };
  return {
    leaks: null,
    incomplete: incomplete ?? `the leak check did not finish within the cleanup budget (${settings.cleanupTimeoutMs} ms)`,
  };
}
