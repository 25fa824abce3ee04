/** Resolves a driver and runs the suite through the chosen runner, feeding a live reporter. */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, lstat, open, readlink, realpath, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Errors } from "@oclif/core";
import type { ConformanceReporter, ResolvedDriver, RunPlan, RunReport, ScenarioLevel } from "@virtkit/conformance";
import type { ConformanceEnvironmentFactory, DriverPlugin } from "@virtkit/core";

/** Where driver packages are also looked up: the CLI's own dependencies. */
export const CLI_DIR = dirname(fileURLToPath(import.meta.url));

/** What to run. */
export interface RunSuiteOptions {
  readonly spec: string;
  /** The plugin's named environment (`--env`); absent: its default. */
  readonly environment?: string;
  readonly options: readonly string[];
  readonly focus: readonly string[];
  readonly skip: readonly string[];
  readonly level: ScenarioLevel;
  readonly scenarioTimeoutMs: number;
  /** Deadline of each scenario's cleanup (default: the kit's, 60 s). */
  readonly cleanupTimeoutMs?: number;
  readonly suiteTimeoutMs?: number;
  /** Scenarios at once; absent: the environment's `defaultParallel`, else {@link DEFAULT_PARALLEL}. */
  readonly parallel?: number;
  readonly runner: "vitest" | "direct";
  readonly reporter?: ConformanceReporter;
  /** Shuffles the scenario order with this seed (`--shuffle --seed N`). */
  readonly seed?: number;
  /** Per-scenario deadlines in ms by id (`--config`'s `timeouts`). */
  readonly timeouts?: Readonly<Record<string, number>>;
  /** Starts no scenario after the first failure at the run's level (`--fail-fast`). */
  readonly failFast?: boolean;
  /** Accepts a `--focus`/`--skip` that selects nothing (otherwise a usage error). */
  readonly allowEmpty?: boolean;
  /** Interrupts the run (Ctrl-C): no scenario starts after it, the running ones clean up, the rest are reported skipped. */
  readonly signal?: AbortSignal;
  /** More directories to resolve the driver's package from (an installed driver deep in the tree: its own directory). */
  readonly paths?: readonly string[];
  /**
   * Called once the run is known to start: the driver loaded and resolved, the selection valid and
   * not empty; before the driver's setup and any scenario. What it throws ends the run.
   */
  readonly onReady?: () => Promise<void> | void;
}

/**
 * How long the driver's module may take to load (its top-level code, `await` included) at least:
 * as long as a driver's setup gets by default (`--scenario-timeout`'s 10 s); a longer
 * `--scenario-timeout` gives the load as long (a cold TypeScript driver on a loaded machine).
 */
export const DRIVER_LOAD_TIMEOUT_MS = 10_000;

/** Where the run's driver package is resolved from besides the current directory. */
function searchPaths(o: Pick<RunSuiteOptions, "paths">): string[] {
  return [CLI_DIR, ...(o.paths ?? [])];
}

/**
 * A usage error (exit 2) when `--focus`/`--skip` select no scenario, unless empty runs are allowed:
 * an empty run "passes" and would hide a typo in a CI job.
 */
export async function checkSelection(o: Pick<RunSuiteOptions, "focus" | "skip" | "allowEmpty">): Promise<number> {
  const { selectScenarios, SCENARIOS } = await import("@virtkit/conformance");
  const n = selectScenarios(SCENARIOS, o).length;
  if (n === 0 && !o.allowEmpty) {
    const { InvalidInputError } = await import("@virtkit/core");
    const given = [...o.focus.map((f) => `--focus ${f}`), ...o.skip.map((s) => `--skip ${s}`)].join(" ");
    throw new InvalidInputError("focus", `${given || "the selection"} selects no scenario (see virtkit conformance list; --allow-empty accepts an empty run)`);
  }
  return n;
}

/**
 * Checks, before a run, that each report file can be written: it is (or will be) a regular file,
 * following symbolic links to their final target, in a directory that exists and is writable. A
 * bad path is a usage error (exit 2) now, not a failure after the whole run. `/dev/full`, a FIFO or
 * a socket are refused (a write there fails or blocks once the run is over); `/dev/null` is allowed.
 */
export async function checkReportPaths(files: readonly (readonly [flag: string, path: string | undefined])[]): Promise<void> {
  const targets: [flag: string, path: string, target: ReportTarget][] = [];
  for (const [flag, path] of files) {
    if (path === undefined) continue;
    // An empty value (`--junit ''`, an unset shell variable) would read as the current directory.
    if (path.trim() === "") throw new Errors.CLIError(`${flag} needs a file path; it was given an empty one`, { exit: 2, code: "VIRTKIT_USAGE" });
    const fail = (why: string) => reportPathError(flag, path, why);
    targets.push([flag, path, await reportTarget(path, fail)]);
  }
  // Two reports to one file (however spelt, through links too): the second would overwrite the first.
  const seen = new Map<string, string>();
  for (const [flag, , target] of targets) {
    const earlier = seen.get(target.key);
    if (earlier !== undefined) {
      throw new Errors.CLIError(`${earlier} and ${flag} name the same file (${target.file}): each report needs its own`, {
        exit: 2,
        code: "VIRTKIT_USAGE",
      });
    }
    seen.set(target.key, flag);
  }
}

/** The usage error (exit 2) of a report path that cannot be written. */
export function reportPathError(flag: string, path: string, why: string): Errors.CLIError {
  return new Errors.CLIError(`cannot write the ${flag} report to ${path}: ${why}`, { exit: 2, code: "VIRTKIT_USAGE" });
}

/** Where a report path really writes: its final file (links followed), one key however it is spelt. */
interface ReportTarget {
  readonly key: string;
  /** The file written, links followed. */
  readonly file: string;
  /** ` (a link to X)` when the path is a symbolic link, for messages. */
  readonly via: string;
}

/** Symbolic links followed at most this often, as the kernel does (ELOOP). */
const MAX_LINKS = 40;

async function reportTarget(path: string, fail: (why: string) => Error): Promise<ReportTarget> {
  let file = resolve(path);
  let via = "";
  for (let hops = 0; ; hops++) {
    if (hops > MAX_LINKS) throw fail("too many levels of symbolic links");
    const st = await lstat(file).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      file = resolve(dirname(file), await readlink(file));
      via = ` (a symbolic link to ${file})`;
      continue;
    }
    const dir = dirname(file);
    if (st === undefined) {
      const parent = await stat(dir).catch(() => undefined);
      if (!parent) throw fail(`the directory ${dir} does not exist${via}`);
      if (!parent.isDirectory()) throw fail(`${dir} is not a directory${via}`);
      await creatable(dir, () => fail(`the directory ${dir} is not writable${via}`));
    } else if (st.isDirectory()) {
      throw fail(`it is a directory${via}`);
    } else if (!st.isFile() && file !== "/dev/null") {
      // A device (`/dev/full` fails every write), a FIFO (blocks with no reader) or a socket.
      throw fail(`not a regular file${via}: reports are written to regular files (or /dev/null)`);
    } else {
      await writable(file, () => fail(`the file is not writable${via}`));
      // A regular file there is removed when the run starts and the report made anew.
      if (st.isFile()) await creatable(dir, () => fail(`the directory ${dir} is not writable${via}`));
    }
    const realDir = await realpath(dir).catch(() => dir);
    return { key: join(realDir, basename(file)), file, via };
  }
}

async function writable(path: string, fail: () => Error): Promise<void> {
  try {
    await access(path, constants.W_OK);
  } catch {
    throw fail();
  }
}

/**
 * Whether a file can be made and removed in `dir`, tried with a file of our own made and removed at
 * once: `access(W_OK)` is not enough, root passes it for /proc, where no file is made or removed.
 */
async function creatable(dir: string, fail: () => Error): Promise<void> {
  const probe = join(dir, `.virtkit-write-check-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    await (await open(probe, "wx")).close();
    await rm(probe);
  } catch {
    throw fail();
  }
}

/**
 * The run's driver resolved (`resolveDriver`), its module first imported here under the run's signal
 * and {@link DRIVER_LOAD_TIMEOUT_MS}; `resolveDriver` then imports it again from Node's module cache
 * (same spec, same search paths). A module whose top-level await never settles is a typed error at
 * the deadline naming its file (exit 1, as a driver setup that never finishes), not a silent exit 13
 * or a CLI that hangs; Ctrl-C while it loads, or while a named environment is made, stops at once
 * (`VIRTKIT_INTERRUPTED`, exit 130): nothing of the run has started.
 */
async function resolveForRun(o: RunSuiteOptions): Promise<ResolvedDriver> {
  const { resolveDriver } = await import("@virtkit/conformance");
  const { loadDriverPlugin } = await import("@virtkit/core");
  // resolveDriver adds the kit's own directory to the search paths: the same here, for the same file.
  const kitDir = dirname(fileURLToPath(import.meta.resolve("@virtkit/conformance")));
  try {
    await loadDriverPlugin(o.spec, { paths: [...searchPaths(o), kitDir], timeoutMs: Math.max(DRIVER_LOAD_TIMEOUT_MS, o.scenarioTimeoutMs), ...(o.signal ? { signal: o.signal } : {}) });
  } catch (err) {
    throw interruptedInstead(err, o.signal);
  }
  const resolving = resolveDriver(o.spec, o.options, {
    paths: searchPaths(o),
    ...(o.environment !== undefined ? { environment: o.environment } : {}),
  });
  const signal = o.signal;
  if (!signal) return resolving;
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(interruptedInstead(new Error("interrupted"), signal));
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([resolving, aborted]);
  } catch (err) {
    // What comes after the interruption is released as it comes.
    if (signal.aborted) void resolving.then((r) => r.environment.dispose?.()).catch(() => undefined);
    throw err;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** `--dry-run`: the plan (what would run, skips and reasons), from one environment and driver; runs no scenario. */
export async function planSuite(o: RunSuiteOptions): Promise<RunPlan> {
  const { planRun } = await import("@virtkit/conformance");
  await checkSelection(o);
  const resolved = await resolveForRun(o);
  try {
    return await planRun({
      driver: resolved.descriptor,
      environment: resolved.environment,
      level: o.level,
      focus: o.focus,
      skip: o.skip,
      scenarioTimeoutMs: fairScenarioTimeout(o, resolved.plugin),
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
      ...(o.timeouts !== undefined ? { timeouts: o.timeouts } : {}),
    });
  } finally {
    await resolved.environment.dispose?.();
  }
}

/**
 * The run's scenario deadline, raised to what its named environment says is fair there (real guests
 * take seconds to boot: a 10 s deadline would blame the driver for the environment's slowness).
 */
export function fairScenarioTimeout(o: RunSuiteOptions, plugin: DriverPlugin): number {
  return Math.max(o.scenarioTimeoutMs, namedEnvironment(o, plugin)?.scenarioTimeoutMs ?? 0);
}

/** The plugin's environment the run names (`--env`), if any. */
function namedEnvironment(o: Pick<RunSuiteOptions, "environment">, plugin: DriverPlugin) {
  return o.environment === undefined ? undefined : plugin.environments?.find((e) => e.name === o.environment);
}

/**
 * Builds what the named environment needs (an image) before vitest's worker starts: the worker
 * would build it too, but its output is not passed on, and a minute's build must show. What is
 * cached says nothing. Interrupted, the run goes on to report every scenario not run.
 */
async function prepareNamedEnvironment(o: RunSuiteOptions, plugin: DriverPlugin): Promise<void> {
  const named = namedEnvironment(o, plugin);
  if (!named?.prepare) return;
  try {
    await named.prepare(
      (line) => {
        if (!/^\S+: cached /.test(line)) process.stderr.write(`virtkit: ${named.name}: ${line}\n`);
      },
      o.signal ? { signal: o.signal } : {},
    );
  } catch (err) {
    if (o.signal?.aborted !== true) throw err;
  }
}

/** Scenarios at once when neither the run nor its environment says. */
export const DEFAULT_PARALLEL = 4;

/**
 * The run's parallelism: its own, else what the environment runs well (`defaultParallel`), else
 * {@link DEFAULT_PARALLEL}; lowered to what its named environment runs fairly at once.
 */
export function fairParallel(
  o: Pick<RunSuiteOptions, "parallel" | "environment">,
  plugin: DriverPlugin,
  factory?: Pick<ConformanceEnvironmentFactory, "defaultParallel">,
): { readonly wanted: number; readonly parallel: number } {
  const preferred = factory?.defaultParallel;
  const wanted =
    o.parallel ?? (typeof preferred === "number" && Number.isInteger(preferred) && preferred >= 1 && preferred <= 64 ? preferred : DEFAULT_PARALLEL);
  return { wanted, parallel: Math.min(wanted, namedEnvironment(o, plugin)?.maxParallel ?? wanted) };
}

/** Runs one driver; driver load and option errors surface as typed virtkit errors. */
export async function runSuite(o: RunSuiteOptions): Promise<RunReport> {
  const { runConformance, runWithVitest } = await import("@virtkit/conformance");
  // Driver stacks in failure locations point at the author's TypeScript when the driver ships source maps.
  process.setSourceMapsEnabled(true);
  const total = await checkSelection(o);
  const resolved = await resolveForRun(o);
  try {
    await o.onReady?.();
  } catch (err) {
    await resolved.environment.dispose?.().catch(() => undefined);
    throw err;
  }
  const scenarioTimeoutMs = fairScenarioTimeout(o, resolved.plugin);
  if (o.runner !== "vitest") {
    try {
      await checkDriverSetup(resolved.environment, scenarioTimeoutMs, o.signal);
    } catch (err) {
      // Ctrl-C while the driver was being set up (the nested hosts starting): the run has started
      // (its reports are due, as under vitest), so it goes on below, where no scenario starts and
      // each is reported not run. Anything else is the setup's failure.
      if (!(o.signal?.aborted === true && isInterrupted(err))) {
        await resolved.environment.dispose?.().catch(() => undefined);
        throw err;
      }
    }
  }
  const { wanted, parallel } = fairParallel(o, resolved.plugin, resolved.environment);
  const lowered =
    parallel < wanted
      ? [`${o.parallel !== undefined ? "--parallel" : "the default parallelism"} ${wanted} lowered to ${parallel}: the most the ${o.environment} environment runs fairly at once`]
      : [];
  // The run's header: under vitest, once its worker has set the driver up (a setup failure is one
  // error and nothing else on stdout); directly, now (the check above has passed).
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    o.reporter?.onStart?.(resolved.descriptor, total);
  };
  if (o.runner !== "vitest") start();
  let finished = 0;
  const onResult = (r: Parameters<NonNullable<ConformanceReporter["onResult"]>>[0]) => {
    start();
    o.reporter?.onResult?.(r, ++finished, total);
  };
  if (o.runner === "vitest") {
    // vitest's worker makes its own environment (and checks the driver's setup there, before any
    // scenario) and nothing is made of this one; it is released once the worker is gone, so it can
    // remove what the worker left (nested hosts a worker killed mid-start could not remove).
    try {
      await prepareNamedEnvironment(o, resolved.plugin);
      return await runUnderVitest();
    } finally {
      await resolved.environment.dispose?.().catch(() => undefined);
    }
  }
  if (o.signal?.aborted) {
    // Interrupted before the first scenario (while the driver was being set up): runConformance
    // never hears an abort that came before it starts, so the run's report is made here, every
    // selected scenario not run, as runConformance reports those an interrupt kept from starting.
    const { notRun, scheduleScenarios, summarize } = await import("@virtkit/conformance");
    const t0 = Date.now();
    const results = scheduleScenarios({ focus: o.focus, skip: o.skip, scenarioTimeoutMs, ...(o.seed !== undefined ? { seed: o.seed } : {}) }).map(
      (def): RunReport["results"][number] => notRun(def, "the run was aborted"),
    );
    for (const r of results) onResult(r);
    await resolved.environment.dispose?.().catch(() => undefined);
    return withNotes(
      {
        driver: resolved.descriptor,
        notes: [...(resolved.descriptor.notes ?? [])],
        level: o.level,
        startedAt: new Date(t0).toISOString(),
        durationMs: Date.now() - t0,
        runner: "direct",
        results,
        ...summarize(results, o.level),
      },
      lowered,
    );
  }
  // runConformance listens on the signal it is given as it starts, and an abort event that came
  // before is never heard: relayed, an interrupt that comes as the run starts still stops it.
  const relay = new AbortController();
  const onAbort = () => relay.abort(o.signal?.reason);
  const report = runConformance({
    driver: resolved.descriptor,
    environment: resolved.environment,
    service: resolved.service,
    level: o.level,
    focus: o.focus,
    skip: o.skip,
    scenarioTimeoutMs,
    cleanupTimeoutMs: o.cleanupTimeoutMs,
    suiteTimeoutMs: o.suiteTimeoutMs,
    parallel,
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.timeouts !== undefined ? { timeouts: o.timeouts } : {}),
    ...(o.failFast ? { failFast: true } : {}),
    ...(o.signal !== undefined ? { signal: relay.signal } : {}),
    onResult: (r) => onResult(r),
  });
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return withNotes(await report, lowered);
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
  }

  async function runUnderVitest(): Promise<RunReport> {
    const ran = await runWithVitest({
      settings: {
        spec: o.spec,
        options: o.options,
        level: o.level,
        focus: o.focus,
        skip: o.skip,
        scenarioTimeoutMs,
        ...(o.cleanupTimeoutMs !== undefined ? { cleanupTimeoutMs: o.cleanupTimeoutMs } : {}),
        parallel,
        paths: searchPaths(o),
        ...(o.environment !== undefined ? { environment: o.environment } : {}),
        ...(o.seed !== undefined ? { seed: o.seed } : {}),
        ...(o.timeouts !== undefined ? { timeouts: o.timeouts } : {}),
        ...(o.failFast ? { failFast: true } : {}),
      },
      driver: resolved.descriptor,
      suiteTimeoutMs: o.suiteTimeoutMs,
      onResult,
      ...(o.signal !== undefined ? { signal: o.signal } : {}),
      probeSetup: true,
    }).catch((err: unknown) => {
      throw interruptedInstead(err, o.signal);
    });
    start();
    return withNotes(ran, lowered);
  }
}

/** The error {@link interruptedInstead} makes. */
function isInterrupted(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === "VIRTKIT_INTERRUPTED";
}

/**
 * One driver made and released before the run, through the same path every scenario takes: a driver
 * that cannot be set up (host unreachable, credentials refused, a broken plugin) is one error naming
 * why (`VIRTKIT_DRIVER_SETUP_FAILED`), not the same "driver setup failed" in every scenario. Bounded
 * by the scenario deadline; Ctrl-C during it is the user's doing, not the driver's (exit 130).
 */
async function checkDriverSetup(
  factory: ConformanceEnvironmentFactory,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { withProbeDriver } = await import("@virtkit/conformance");
  try {
    await withProbeDriver(factory, { timeoutMs, prefix: `vkcheck${Date.now().toString(36)}`, ...(signal ? { signal } : {}) }, () => undefined);
  } catch (err) {
    throw interruptedInstead(err, signal);
  }
}

/** A setup failure while the user's Ctrl-C was under way is the interruption, exit 130. */
function interruptedInstead(err: unknown, signal: AbortSignal | undefined): unknown {
  if (!signal?.aborted) return err;
  return Object.assign(new Error("interrupted before any scenario ran"), { code: "VIRTKIT_INTERRUPTED", oclif: { exit: 130 } });
}

function withNotes(report: RunReport, notes: readonly string[]): RunReport {
  return notes.length === 0 ? report : { ...report, notes: [...report.notes, ...notes] };
}
