/**
 * containerd's `makeTest`: all isolation of one scenario in one place. A fresh environment and
 * driver from the factory, a unique name prefix, a deadline, cleanup in `finally` (failures
 * reported, not fatal), a leak check afterwards and a secret check over everything produced.
 */
import { forEachLimited } from "./limited.js";
import { randomBytes, randomUUID } from "node:crypto";
import { inspect } from "node:util";
import {
  isUnsupported,
  PowerState,
  VirtkitError,
  type ComputeDriver,
  type ConformanceEnvironment,
  type ConformanceEnvironmentFactory,
  type Flavor,
  type ImageMeta,
  type Instance,
  type OperationOptions,
  type Secret,
} from "@virtkit/core";
import {
  ConformanceFailure,
  EnvironmentLimitError,
  WorksButUndeclaredError,
  describeError,
  expectState,
} from "./assertions.js";
import type {
  AdminPasswordService,
  AdminPasswordServiceFactory,
  ScenarioContext,
  ScenarioDefinition,
} from "./scenario.js";
import { driverLocation } from "./failure-location.js";
import { frozenCopy, frozenInputNote, withoutUndefined } from "./frozen-input.js";
import { SecretScan } from "./secret-scan.js";
import type { CapabilityMismatch, ScenarioResult, ScenarioStatus } from "./types.js";

/** Options of one scenario run. */
export interface MakeTestOptions {
  /** Deadline of the scenario body in ms (default 10 000); a scenario's own `timeoutMs` is scaled by it. */
  readonly scenarioTimeoutMs?: number;
  /** Deadline of cleanup in ms (default {@link DEFAULT_CLEANUP_TIMEOUT_MS}). */
  readonly cleanupTimeoutMs?: number;
  /** Cleanup slower than this (ms) is noted in the result's warnings (default {@link DEFAULT_SLOW_CLEANUP_MS}). */
  readonly slowCleanupMs?: number;
  /** Aborts the scenario (suite deadline, Ctrl-C). */
  readonly signal?: AbortSignal;
  /** Builds the compute service the password group goes through (default: none, driver only). */
  readonly service?: AdminPasswordServiceFactory;
  /** Called as the scenario names each step (`virtkit conformance explain` traces a run with it). */
  readonly onStep?: (step: string) => void;
}

/**
 * Cleanup deadline: generous, because destroying TCG guests on a loaded 2-core machine takes tens
 * of seconds; only a cleanup that never finishes (state unknown) should fail on time alone.
 */
export const DEFAULT_CLEANUP_TIMEOUT_MS = 60_000;

/** Cleanup slower than this is worth a note (it was the old deadline), but is not a failure. */
export const DEFAULT_SLOW_CLEANUP_MS = 5_000;

/** The image instances boot from unless the environment says otherwise. */
export const DEFAULT_BOOT_IMAGE: ImageMeta = Object.freeze({
  id: "00000000-0000-4000-8000-00000000cafe",
  name: "conformance-boot",
  diskFormat: "qcow2",
  containerFormat: "bare",
  properties: Object.freeze({ hw_qemu_guest_agent: true, os_type: "linux" }),
});

/** The flavor instances get unless the environment says otherwise. */
export const DEFAULT_FLAVOR: Flavor = Object.freeze({ name: "m1.tiny", memoryMb: 64, vcpus: 1, rootGb: 1 });

/** Where an unresolved environment limit for `def` comes from: the id first, then the group. */
export function environmentLimit(def: ScenarioDefinition, env: ConformanceEnvironment): string | undefined {
  return env.limits[def.id] ?? env.limits[def.group] ?? def.needs?.(env);
}

/** The refusal check to run when `driver` does not declare what `def` needs, if it has one it can run. */
export function refusalOf(def: ScenarioDefinition, driver: ComputeDriver): ScenarioDefinition["refuse"] {
  return (def.refuseNeeds ?? []).every((c) => driver.capabilities[c] === true) ? def.refuse : undefined;
}

/** True when `driver` declares every capability the scenario needs. */
export function declares(def: ScenarioDefinition, driver: ComputeDriver): boolean {
  const caps = [...(def.capability ? [def.capability] : []), ...(def.alsoNeeds ?? [])];
  return caps.every((c) => driver.capabilities[c] === true);
}


/** The default deadline of a scenario body, and the pace a scenario's own `timeoutMs` is written for. */
export const DEFAULT_SCENARIO_TIMEOUT_MS = 10_000;

/**
 * The deadline of `def` in a run whose `scenarioTimeoutMs` is `runTimeoutMs`: the run's value, or
 * the scenario's own scaled by the run's pace (a slow environment given 20 s doubles every one).
 */
export function scenarioDeadlineMs(
  def: ScenarioDefinition,
  runTimeoutMs: number = DEFAULT_SCENARIO_TIMEOUT_MS,
): number {
  if (def.timeoutMs === undefined) return runTimeoutMs;
  return Math.max(1, Math.round((def.timeoutMs * runTimeoutMs) / DEFAULT_SCENARIO_TIMEOUT_MS));
}

/** Runs one scenario in isolation and returns its result; never throws. */
export async function runScenario(
  def: ScenarioDefinition,
  factory: ConformanceEnvironmentFactory,
  options: MakeTestOptions = {},
): Promise<ScenarioResult> {
  const started = performance.now();
  const scenarioTimeoutMs = scenarioDeadlineMs(def, options.scenarioTimeoutMs);
  const prefix = `vk${randomBytes(4).toString("hex")}`;
  const base = { id: def.id, title: def.title, group: def.group, capability: def.capability, level: def.level };
  const done = (
    status: ScenarioStatus,
    extra: {
      reason?: string;
      step?: string;
      location?: string;
      mismatch?: CapabilityMismatch;
      cleanupErrors?: string[];
      leaks?: string[];
    } = {},
  ): ScenarioResult => {
    const r: Record<string, unknown> = { ...base, status };
    for (const [k, v] of Object.entries(extra)) {
      if (v !== undefined && !(Array.isArray(v) && v.length === 0)) r[k] = v;
    }
    r.durationMs = Math.round(performance.now() - started);
    return r as unknown as ScenarioResult;
  };

  let env: ConformanceEnvironment;
  try {
    env = await factory({ prefix });
  } catch (err) {
    return done("fail", { reason: `environment setup failed: ${describeError(err)}`, step: "environment setup" });
  }

  const secrets: Secret[] = [];
  const errors: string[] = [];
  // Typed errors whose instanceId names no instance of this scenario (core: every error about an
  // instance names it by uuid); checked once the body has passed.
  const misnamed: string[] = [];
  // The last error a driver call raised, with the step it was raised in (for the failure's location).
  let lastError: { err: unknown; step: string } | undefined;
  const drivers = new Map<string, ComputeDriver>();
  const instances: Instance[] = [];
  const images = new Set<string>();
  const cleanupErrors: string[] = [];
  let step = "create driver";
  let counter = 0;

  const controller = new AbortController();
  // The run cut short (suite timeout, an interrupt): the scenario did not finish, and says why.
  const onOuterAbort = () => {
    const why: unknown = options.signal?.reason;
    controller.abort(new ConformanceFailure(`not finished: ${why instanceof Error ? why.message : "the run was aborted"}`));
  };
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });

  let baselineImages = new Set<string>();
  let service: Promise<AdminPasswordService> | undefined;
  let bodyLogLines = 0;
  let cleanupResult: { outcome: CleanupOutcome; logLines: readonly string[]; driverLines: readonly string[] } = {
    outcome: { leaks: [], durationMs: 0, timedOut: false, timeoutMs: 0, waitingOn: [] },
    logLines: [],
    driverLines: [],
  };
  const execute = async (): Promise<ScenarioResult> => {
    let result: ScenarioResult;
    const host = env.hosts[0] ?? "localhost";
    let driver: ComputeDriver;
    try {
      // The images there before the scenario, read before the driver is made as well as after: a
      // driver setup that fails must not turn the environment's own images into the scenario's leaks.
      baselineImages = new Set((await env.imageService.list()).map((i) => i.id));
      driver = await env.createDriver(host);
      drivers.set(host, driver);
      for (const i of await env.imageService.list()) baselineImages.add(i.id);
    } catch (err) {
      const fault = await environmentFault(env);
      if (fault) return done("fail", { reason: `environment failure, not the driver's: ${fault} (driver setup failed: ${describeError(err)})`, step });
      return done("fail", { reason: `driver setup failed: ${describeError(err)}`, step, location: driverLocation(err) });
    }
    const declared = declares(def, driver);
    const limit = declared ? environmentLimit(def, env) : undefined;
    if (limit !== undefined) {
      result = done("skipped", { reason: `environment limit: ${limit}` });
      return result;
    }
    const refuse = refusalOf(def, driver);
    if (!declared && !refuse) {
      result = done("unsupported", { reason: notDeclaredReason(def, driver) });
      return result;
    }

    const serviceFactory = options.service;
    const ctx: ScenarioContext = {
      env,
      driver,
      host,
      prefix,
      signal: controller.signal,
      step(name) {
        step = name;
        options.onStep?.(name);
      },
      opts<T extends object = object>(extra?: T): OperationOptions & T {
        // Frozen too: a driver writes its defaults into its own copy, not the caller's options.
        return frozenCopy({ signal: controller.signal, ...(extra ?? ({} as T)) });
      },
      newInstance(overrides = {}) {
        counter += 1;
        // Frozen: a driver must not write into its inputs (frozen-input.ts). An override given as
        // undefined leaves the field out (an instance that names no os_type of its own).
        const inst: Instance = frozenCopy(withoutUndefined({
          uuid: randomUUID(),
          name: `${prefix}-${counter}`,
          flavor: env.flavor ?? DEFAULT_FLAVOR,
          imageMeta: env.bootImage ?? DEFAULT_BOOT_IMAGE,
          projectId: "conformance-project",
          userId: "conformance-user",
          osType: "linux",
          ...overrides,
        }));
        instances.push(inst);
        return inst;
      },
      instanceNames() {
        return new Set(instances.map((i) => i.name));
      },
      async spawn(overrides) {
        const inst = ctx.newInstance(overrides);
        ctx.step(`spawn ${inst.name}`);
        await driver.spawn(frozenCopy({ instance: inst }), ctx.opts());
        await expectState(ctx, inst, PowerState.RUNNING, "spawn");
        if (env.guestControls?.whenBooted) {
          ctx.step(`wait for ${inst.name} to boot`);
          await env.guestControls.whenBooted(inst, ctx.opts());
        }
        return inst;
      },
      async driverFor(h) {
        const existing = drivers.get(h);
        if (existing) return existing;
        const d = await env.createDriver(h);
        drivers.set(h, d);
        return d;
      },
      trackImage(id) {
        images.add(id);
      },
      trackSecret(secret) {
        secrets.push(secret);
      },
      recordError(err) {
        lastError = { err, step };
        const named = misnamedInstance(err, instances);
        if (named) misnamed.push(`${step}: ${named}`);
        errors.push(inspect(err, { depth: 6 }));
        if (err instanceof Error) {
          errors.push(err.message);
          try {
            errors.push(JSON.stringify(err));
          } catch {
            // Not serialisable: inspect above already covers it.
          }
        }
      },
      ...(serviceFactory
        ? {
            service: () => (service ??= serviceFactory(driver, env)),
          }
        : {}),
    };

    // Through a promise, so a body that throws synchronously is caught like any other failure.
    const body = Promise.resolve().then(() => (declared || !refuse ? def.run(ctx) : refuse(ctx)));
    try {
      await withScenarioDeadline(body, controller, scenarioTimeoutMs);
      if (misnamed.length > 0) throw new ConformanceFailure(misnamed[0]!);
      result = declared
        ? done("pass")
        : done("unsupported", { reason: `${notDeclaredReason(def, driver)}; refused with UnsupportedOperationError` });
    } catch (caught) {
      // After the deadline or an outer abort, the signal's reason says why, whatever the body threw.
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      const err = reason instanceof ConformanceFailure ? reason : caught;
      // A kit check that failed on a driver's error of this same step points at that error's origin.
      const earlier = lastError?.step === step ? lastError.err : undefined;
      ctx.recordError(caught);
      const location = driverLocation(caught) ?? (earlier !== undefined ? driverLocation(earlier) : undefined);
      if (err instanceof EnvironmentLimitError) {
        result = done("skipped", { reason: `environment limit: ${err.message}`, step });
      } else if (err instanceof WorksButUndeclaredError) {
        result = done("fail", { reason: err.message, step, location, mismatch: "works-but-undeclared" });
      } else {
        let reason = err instanceof ConformanceFailure ? err.message : `unexpected error: ${describeError(err)}`;
        const frozen = frozenInputNote(err);
        if (frozen) reason = `${reason} (${frozen})`;
        if (declared && def.capability && isUnsupported(err) && !(err instanceof ConformanceFailure)) {
          reason = `declares ${def.capability} but refused with UnsupportedOperationError: ${describeError(err)}`;
        }
        // A host that died under the scenario: the environment's failure, whatever the driver said.
        const fault = await environmentFault(env);
        result = fault
          ? done("fail", { reason: `environment failure, not the driver's: ${fault} (the scenario saw: ${reason})`, step })
          : done("fail", {
              reason,
              step,
              location,
              mismatch: declared && def.capability ? "declared-but-fails" : undefined,
            });
      }
    }
    return result;
  };

  let raw: ScenarioResult;
  let imageRecords: string[] = [];
  try {
    raw = await execute();
  } catch (err) {
    raw = done("fail", { reason: `kit error: ${describeError(err)}`, step });
  } finally {
    options.signal?.removeEventListener("abort", onOuterAbort);
    controller.abort(new Error("scenario finished"));
    // Where the scenario's own lines end: a failure before cleanup is explained by those.
    bodyLogLines = safeLogLines(env).length;
    // The images this scenario made, as the image service holds them (name, properties), read
    // before cleanup deletes them: a password must not be written into an image's metadata.
    if (secrets.length > 0) imageRecords = await readImageRecords(env, images);
    const outcome = await withCleanupDeadline(
      (calls) => cleanup(env, drivers, instances, images, baselineImages, prefix, cleanupErrors, calls),
      options.cleanupTimeoutMs ?? DEFAULT_CLEANUP_TIMEOUT_MS,
      cleanupErrors,
    );
    const driverLines = safeLogLines(env);
    const logLines = [...driverLines, ...(service ? await serviceLogLines(service) : [])];
    // The environment's own teardown is bounded too: a hung one must not hang the whole run.
    const envTimeoutMs = options.cleanupTimeoutMs ?? DEFAULT_CLEANUP_TIMEOUT_MS;
    let envTimer: NodeJS.Timeout | undefined;
    try {
      const teardown = env.cleanup();
      teardown.catch(() => undefined);
      const timedOut = await Promise.race([
        teardown.then(() => false),
        new Promise<true>((resolve) => {
          envTimer = setTimeout(() => resolve(true), envTimeoutMs);
        }),
      ]);
      if (timedOut) cleanupErrors.push(`environment cleanup did not finish within ${envTimeoutMs} ms`);
    } catch (err) {
      cleanupErrors.push(`environment cleanup: ${describeError(err)}`);
    } finally {
      clearTimeout(envTimer);
    }
    cleanupResult = { outcome, logLines, driverLines };
  }
  const slowMs = options.slowCleanupMs ?? DEFAULT_SLOW_CLEANUP_MS;
  return finish(raw, cleanupResult.outcome, slowMs, cleanupErrors, secrets, errors, cleanupResult.logLines, imageRecords, {
    lines: cleanupResult.driverLines,
    bodyEnd: bodyLogLines,
  });
}

function notDeclaredReason(def: ScenarioDefinition, driver: ComputeDriver): string {
  const caps = [...(def.capability ? [def.capability] : []), ...(def.alsoNeeds ?? [])];
  const missing = caps.filter((c) => driver.capabilities[c] !== true);
  return `capability ${missing.join(", ")} not declared`;
}

async function withScenarioDeadline(
  body: Promise<void>,
  controller: AbortController,
  timeoutMs: number,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new ConformanceFailure(`scenario timed out after ${timeoutMs} ms`);
      // Reject first: the body reacts to the abort too, and the deadline must win the race.
      reject(err);
      controller.abort(err);
    }, timeoutMs);
    const onAbort = () =>
      reject(controller.signal.reason instanceof Error ? controller.signal.reason : new ConformanceFailure("aborted"));
    controller.signal.addEventListener("abort", onAbort, { once: true });
  });
  // The body may still settle after a timeout; keep it from surfacing as unhandled.
  body.catch(() => undefined);
  try {
    await Promise.race([body, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** How cleanup went: what it found left behind, how long it took, and whether it finished at all. */
interface CleanupOutcome {
  readonly leaks: readonly string[];
  readonly durationMs: number;
  /** True when the deadline passed first: nothing is known about what is left. */
  readonly timedOut: boolean;
  readonly timeoutMs: number;
  /** At a timeout: the calls cleanup was still waiting on, and for how long (what to look at). */
  readonly waitingOn: readonly string[];
}

/** The calls a cleanup has under way, so a cleanup that times out can say which one hung. */
class CleanupCalls {
  readonly #open = new Map<number, { label: string; since: number }>();
  #next = 0;

  /** `work` as one labelled call. */
  track<T>(label: string, work: () => Promise<T>): Promise<T> {
    const id = this.#next++;
    this.#open.set(id, { label, since: performance.now() });
    // Through a promise even when `work` throws at once, so the entry always goes again.
    return Promise.resolve()
      .then(work)
      .finally(() => this.#open.delete(id));
  }

  /** `destroy x on host (for 58.1 s)`, oldest first. */
  describe(): string[] {
    const now = performance.now();
    return [...this.#open.values()].map((c) => `${c.label} (for ${seconds(now - c.since)})`);
  }
}

async function withCleanupDeadline(
  work: (calls: CleanupCalls) => Promise<string[]>,
  timeoutMs: number,
  cleanupErrors: string[],
): Promise<CleanupOutcome> {
  const t0 = performance.now();
  const calls = new CleanupCalls();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const running = work(calls);
  // It may still settle after the deadline; keep that from surfacing as unhandled.
  running.catch(() => undefined);
  try {
    const leaks = await Promise.race([running, timeout]);
    const durationMs = performance.now() - t0;
    if (leaks === "timeout") {
      const waitingOn = calls.describe();
      cleanupErrors.push(
        `cleanup did not finish within ${timeoutMs} ms${waitingOn.length > 0 ? `; still waiting on: ${waitingOn.join("; ")}` : ""}`,
      );
      return { leaks: [], durationMs, timedOut: true, timeoutMs, waitingOn };
    }
    return { leaks, durationMs, timedOut: false, timeoutMs, waitingOn: [] };
  } finally {
    clearTimeout(timer);
  }
}

/** `12.4 s`: one decimal, enough to tell slow from stuck. */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** Instances a cleanup destroys at once on one host. */
const CLEANUP_CONCURRENCY = 4;

/** Destroys what the scenario created, then lists what is left: the leaks. */
async function cleanup(
  env: ConformanceEnvironment,
  drivers: Map<string, ComputeDriver>,
  instances: readonly Instance[],
  images: ReadonlySet<string>,
  baselineImages: ReadonlySet<string>,
  prefix: string,
  cleanupErrors: string[],
  calls: CleanupCalls,
): Promise<string[]> {
  const leaks: string[] = [];
  const t = calls.track.bind(calls);
  // One uuid spawned again (a rebuild) is one instance: its last record, cleaned once.
  const byUuid = [...new Map(instances.map((i) => [i.uuid, i])).values()];
  for (const [host, driver] of drivers) {
    // A few instances at once (different instances may be worked on concurrently): a scenario
    // that spawned 17 real guests otherwise spends half its cleanup deadline destroying them in turn.
    await forEachLimited(byUuid, CLEANUP_CONCURRENCY, async (inst) => {
      try {
        const on = `${inst.name} on ${host}`;
        if (!(await t(`instanceExists ${on}`, () => driver.instanceExists(inst)))) return;
        if (driver.capabilities.instanceSnapshots) {
          for (const snap of await t(`listInstanceSnapshots ${on}`, () => driver.listInstanceSnapshots(inst)).catch(() => [])) {
            await t(`deleteInstanceSnapshot ${snap.id} of ${on}`, () => driver.deleteInstanceSnapshot(inst, snap.id)).catch(
              (err: unknown) => {
                cleanupErrors.push(`delete snapshot ${snap.id} on ${host}: ${describeError(err)}`);
              },
            );
          }
        }
        await t(`destroy ${on}`, () => driver.destroy(inst));
      } catch (err) {
        cleanupErrors.push(`destroy ${inst.name} on ${host}: ${describeError(err)}`);
      }
    });
  }
  for (const id of images) {
    try {
      await t(`image delete ${id}`, () => env.imageService.delete(id));
    } catch {
      // The scenario may have deleted it already.
    }
  }
  // The leak check: nothing of ours may remain in any view.
  const tracked = new Set(instances.map((i) => i.uuid));
  for (const [host, driver] of drivers) {
    try {
      for (const uuid of await t(`listInstanceUuids on ${host}`, () => driver.listInstanceUuids())) {
        if (tracked.has(uuid)) leaks.push(`instance ${uuid} still listed on ${host}`);
      }
      for (const name of await t(`listInstances on ${host}`, () => driver.listInstances())) {
        if (
          name.startsWith(prefix) &&
          !instances.some((i) => i.name === name && leaks.some((l) => l.includes(i.uuid)))
        ) {
          leaks.push(`instance ${name} still listed on ${host}`);
        }
      }
    } catch (err) {
      cleanupErrors.push(`leak check on ${host}: ${describeError(err)}`);
    }
  }
  try {
    for (const image of await t("image list", () => env.imageService.list())) {
      if (!baselineImages.has(image.id)) leaks.push(`image ${image.id} (${image.name}) left in the image service`);
    }
  } catch (err) {
    cleanupErrors.push(`image leak check: ${describeError(err)}`);
  }
  if (env.leftovers) {
    try {
      const leftovers = env.leftovers.bind(env);
      leaks.push(...(await t("environment leftovers", leftovers)));
    } catch (err) {
      cleanupErrors.push(`environment leftovers: ${describeError(err)}`);
    }
  }
  for (const [host, driver] of drivers) {
    try {
      await t(`cleanupHost ${host}`, () => driver.cleanupHost(host));
    } catch (err) {
      cleanupErrors.push(`cleanupHost ${host}: ${describeError(err)}`);
    }
  }
  return leaks;
}

async function serviceLogLines(service: Promise<AdminPasswordService>): Promise<readonly string[]> {
  try {
    return (await service).logLines?.() ?? [];
  } catch {
    return [];
  }
}

function safeLogLines(env: ConformanceEnvironment): readonly string[] {
  try {
    return env.logLines?.() ?? [];
  } catch {
    return [];
  }
}

/** Applies the cleanup outcome (timeout, leaks, slowness), cleanup errors and the secret check to a finished result. */
function finish(
  result: ScenarioResult,
  cleanup: CleanupOutcome,
  slowCleanupMs: number,
  cleanupErrors: readonly string[],
  secrets: readonly Secret[],
  errors: readonly string[],
  logLines: readonly string[],
  imageRecords: readonly string[],
  driverLog: { readonly lines: readonly string[]; readonly bodyEnd: number },
): ScenarioResult {
  let r: ScenarioResult = { ...result };
  if (cleanupErrors.length > 0) r = { ...r, cleanupErrors: [...cleanupErrors] };
  const { leaks } = cleanup;
  if (cleanup.timedOut) {
    // Not a leak: nothing was checked. A failure, because nothing is known about what is left.
    if (r.status !== "fail") {
      r = {
        ...r,
        status: "fail",
        reason: `cleanup did not finish in ${seconds(cleanup.timeoutMs)}; state unknown${
          cleanup.waitingOn.length > 0 ? ` (still waiting on: ${cleanup.waitingOn.join("; ")})` : ""
        }`,
        step: "cleanup",
      };
    }
  } else if (cleanup.durationMs > slowCleanupMs) {
    // Slow is not broken: say so, and let the status stand.
    r = { ...r, warnings: [...(r.warnings ?? []), `cleanup took ${seconds(cleanup.durationMs)}`] };
  }
  if (leaks.length > 0) {
    r = { ...r, leaks: [...leaks] };
    if (r.status !== "fail") {
      const n = `${leaks.length} resource${leaks.length === 1 ? "" : "s"}`;
      r = { ...r, status: "fail", reason: `cleanup left ${n} behind: ${leaks.join("; ")}`, step: "leak check" };
    }
  }
  // Each password as written, JSON-escaped, URL-encoded, or inside base64 or hex (see SecretScan).
  const scan = new SecretScan(secrets.map((s) => s.reveal()));
  if (!scan.empty) {
    const found: string[] = [];
    if (errors.some((e) => scan.found(e))) found.push("an error");
    if (logLines.some((l) => scan.found(l))) found.push("a log line");
    if (imageRecords.some((t) => scan.found(t))) found.push("an image's metadata");
    if (scan.found(JSON.stringify(r))) {
      found.push("the report");
      r = scan.redactData(r);
    }
    if (found.length > 0) {
      // Secrets never appear anywhere: a MUST of the whole contract, whatever the scenario's own level.
      const raised = r.level === "MUST" ? "" : ` (a MUST whatever this ${r.level} scenario's level)`;
      r = {
        ...r,
        status: "fail",
        level: "MUST",
        reason: `the password appeared in ${found.join(", ")}${raised}${r.reason ? ` (and: ${r.reason})` : ""}`,
        step: "secret check",
      };
    }
  }
  // The driver's own account of a failure (a hung call, a retry loop), added after the secret
  // check so a line that held a password fails the scenario above and shows here only redacted:
  // its lines up to the failure, or through cleanup when cleanup is what failed.
  if (r.status === "fail") {
    const inCleanup = r.step === "cleanup" || r.step === "leak check";
    const lines = inCleanup ? driverLog.lines : driverLog.lines.slice(0, driverLog.bodyEnd);
    if (lines.length > 0) r = { ...r, log: lines.slice(-FAILURE_LOG_LINES).map((l) => scan.redact(l)) };
  }
  return r;
}

/** The environment's own fault, if it reports one within 5 s (a question that fails says nothing). */
async function environmentFault(env: ConformanceEnvironment): Promise<string | undefined> {
  if (typeof env.environmentFault !== "function") return undefined;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, 5_000, undefined)));
  try {
    return await Promise.race([env.environmentFault().catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How many of the driver's last log lines a failed result carries. */
const FAILURE_LOG_LINES = 20;

/**
 * What is wrong with a typed error's `instanceId`, or undefined: core's errors about an instance
 * carry its uuid, so one naming a snapshot id, a host or a name (arguments swapped, the wrong
 * variable) is caught wherever the kit provokes it, not only where a scenario reads the field.
 */
function misnamedInstance(err: unknown, instances: readonly Instance[]): string | undefined {
  if (!(err instanceof VirtkitError) || !Object.hasOwn(err, "instanceId")) return undefined;
  const id: unknown = (err as VirtkitError & { instanceId?: unknown }).instanceId;
  if (typeof id === "string" && instances.some((i) => i.uuid === id)) return undefined;
  return `the ${err.name} names instance ${JSON.stringify(id)}, the uuid of no instance the call was about`;
}

/**
 * Each image's record as JSON, for the secret check; an image that cannot be read is skipped. Bounded
 * (5 s each): it runs between the scenario's deadline and cleanup's, under neither.
 */
async function readImageRecords(env: ConformanceEnvironment, ids: ReadonlySet<string>): Promise<string[]> {
  const out: string[] = [];
  for (const id of ids) {
    try {
      out.push(JSON.stringify(await env.imageService.get(id, { timeoutMs: 5_000, signal: AbortSignal.timeout(5_000) })));
    } catch {
      // Gone, never made, or not answering: nothing of it to scan.
    }
  }
  return out;
}
