/**
 * Model-based exploration: fast-check generates random sequences of operations, each runs against
 * the driver and the kit's reference model ({@link ExploreSession}), and a divergence is shrunk to
 * the shortest sequence that still diverges, reported with the seed and path that replay it.
 */
import { randomUUID } from "node:crypto";
// fast-check is loaded when an exploration runs, not with the kit: most runs never explore, and its
// import is on every run's start-up path (the CLI's process and vitest's worker).
import type * as FC from "fast-check";
import type {
  ComputeDriver,
  ConformanceEnvironment,
  ConformanceEnvironmentFactory,
  Instance,
} from "@virtkit/core";
import { describeError } from "../assertions.js";
import { DEFAULT_BOOT_IMAGE } from "../make-test.js";
import { MATRIX_OPERATIONS } from "../expected-transitions.js";
import type { ModelOperation } from "./model.js";
import { ExploreSession, type ExploreTarget, type SessionSettings, type StepSpec } from "./session.js";
import { frozenCopy } from "../frozen-input.js";

/** Every operation a step can apply to an instance. */
export const EXPLORE_OPERATIONS: readonly ModelOperation[] = [...MATRIX_OPERATIONS, "instance-snapshot-delete"];

/** Options of an exploration. */
export interface ExploreOptions {
  /** Sequences to try (default 100). */
  readonly runs?: number;
  /** fast-check seed; the same seed (and driver behaviour) gives the same sequences. Default: random. */
  readonly seed?: number;
  /** fast-check replay path of a reported counterexample (with its seed): replays just that sequence. */
  readonly path?: string;
  /** Steps per sequence at most (default 20). */
  readonly maxSteps?: number;
  /** Instances alive at once (default 3). */
  readonly maxInstances?: number;
  /** The operations steps draw from (default {@link EXPLORE_OPERATIONS}, all of them). */
  readonly operations?: readonly ModelOperation[];
  /** Explore live migration between the environment's first two hosts, when it has two (default true). */
  readonly migration?: boolean;
  /** How long events already due may take to arrive, in ms (default 500). */
  readonly eventWaitMs?: number;
  /** Quiet time after each step's events, so a late duplicate still shows, in ms (default 2, as the state cells). */
  readonly eventSettleMs?: number;
  /** Deadline of each driver call in ms (default 30 000). */
  readonly callTimeoutMs?: number;
  /** Stops generating new sequences after this many ms (what ran is reported; default none). */
  readonly timeLimitMs?: number;
  readonly signal?: AbortSignal;
}

/** What an exploration found. */
export interface ExploreResult {
  /** True when no sequence diverged from the model and no error came outside any step. */
  readonly ok: boolean;
  /** Sequences run (before shrinking). */
  readonly runs: number;
  readonly seed: number;
  /** fast-check's replay path of the shrunk counterexample. */
  readonly path?: string;
  /** How many times the failing sequence was shrunk. */
  readonly shrinks: number;
  /** The shrunk failing sequence, step by step with what the driver did; the last one diverged. */
  readonly steps: readonly string[];
  /** What diverged. */
  readonly failure?: string;
  /** True when the time limit or an abort cut the exploration short. */
  readonly interrupted: boolean;
  /** Operations left out because the environment limits their state cells (`state.<state>.<op>`), with the reason. */
  readonly leftOut: readonly { readonly operation: ModelOperation; readonly reason: string }[];
  readonly durationMs: number;
  /**
   * Errors outside any step: an uncaught exception or unhandled rejection of driver code while the
   * sequences ran (collected by whoever ran them in its process, see {@link withExploreErrors}).
   * Any of them fails the exploration, whatever the sequences showed.
   */
  readonly errors?: readonly string[];
}

/** `result` with `errors` (outside any step) added: any makes it fail. */
export function withExploreErrors(result: ExploreResult, errors: readonly string[]): ExploreResult {
  if (errors.length === 0) return result;
  return { ...result, ok: false, errors: [...(result.errors ?? []), ...errors] };
}

/** Creates one exploration target for a sequence, and releases it afterwards. */
export interface TargetProvider {
  open(): Promise<ExploreTarget>;
  release(target: ExploreTarget): Promise<void>;
}

/** A step as fast-check sees it: applicable or not on the model, run on both sides. */
class StepCommand implements FC.AsyncCommand<ExploreSession, ExploreSession> {
  constructor(readonly spec: StepSpec) {}
  check(m: Readonly<ExploreSession>): boolean {
    return m.applies(this.spec);
  }
  async run(_m: ExploreSession, session: ExploreSession): Promise<void> {
    await session.run(this.spec);
  }
  toString(): string {
    const s = this.spec;
    switch (s.kind) {
      case "spawn":
        return "spawn";
      case "op":
        return `${s.op}(#${s.target}${s.op.startsWith("instance-snapshot-r") || s.op.endsWith("delete") ? `, s#${s.snapshot}` : ""})`;
      default:
        return `${s.kind}(#${s.target})`;
    }
  }
}

/** The step arbitrary: spawns, operations (weighted), guest writes, destroys of gone instances, migrations. */
function stepArbitrary(
  fc: typeof FC,
  operations: readonly ModelOperation[],
  withMigration: boolean,
  withData: boolean,
): FC.Arbitrary<StepCommand> {
  const target = fc.nat({ max: 7 });
  // Snapshot steps twice as often: their bugs need a snapshot taken, a move, then a revert.
  const weighted = operations.flatMap((op) => (op.startsWith("instance-snapshot-") ? [op, op] : [op]));
  const arbs: FC.WeightedArbitrary<StepSpec>[] = [
    { weight: 3, arbitrary: fc.constant<StepSpec>({ kind: "spawn" }) },
    {
      weight: 14,
      arbitrary: fc.record({
        kind: fc.constant("op" as const),
        op: fc.constantFrom(...weighted),
        target,
        snapshot: fc.nat({ max: 3 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("destroy-gone" as const), target }) },
  ];
  if (withData) {
    arbs.push({
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant("write" as const), target, value: fc.nat({ max: 99 }) }),
    });
  }
  if (withMigration) arbs.push({ weight: 2, arbitrary: fc.record({ kind: fc.constant("migrate" as const), target }) });
  return fc.oneof(...arbs).map((spec) => new StepCommand(spec));
}

/** Runs an exploration over targets from `provider`. */
export async function explore(provider: TargetProvider, options: ExploreOptions = {}): Promise<ExploreResult> {
  const t0 = performance.now();
  const settings: SessionSettings = {
    maxInstances: options.maxInstances ?? 3,
    eventWaitMs: options.eventWaitMs ?? 500,
    eventSettleMs: options.eventSettleMs ?? 2,
    callTimeoutMs: options.callTimeoutMs ?? 30_000,
  };
  // One target up front tells which step kinds the environment supports.
  const probe = await provider.open();
  let withMigration = false;
  let withData = false;
  const leftOut: { operation: ModelOperation; reason: string }[] = [];
  try {
    const env = probe.env;
    // What the environment cannot run in the suite it cannot run here either (same reasons).
    for (const op of options.operations ?? EXPLORE_OPERATIONS) {
      const key = Object.keys(env.limits).find((k) => k.startsWith("state.") && k.endsWith(`.${op}`));
      if (key !== undefined) leftOut.push({ operation: op, reason: `environment limit (${key}): ${env.limits[key]}` });
    }
    withData = env.guestControls?.writeData !== undefined && env.guestControls.readData !== undefined;
    if ((options.migration ?? true) && env.hosts.length > 1) {
      withMigration = (await probe.driverFor(env.hosts[0]!)).capabilities.liveMigration;
    }
  } finally {
    await provider.release(probe);
  }

  const operations = (options.operations ?? EXPLORE_OPERATIONS).filter((op) => !leftOut.some((l) => l.operation === op));
  const fc = await import("fast-check");
  const property = fc.asyncProperty(
    fc.commands([stepArbitrary(fc, operations, withMigration, withData)], { maxCommands: options.maxSteps ?? 20, size: "max" }),
    async (cmds) => {
      const target = await provider.open();
      let session: ExploreSession | undefined;
      try {
        session = await ExploreSession.open(target, settings, withMigration);
        const s = session;
        await s.begin();
        await fc.asyncModelRun(() => ({ model: s, real: s }), cmds);
      } finally {
        try {
          await session?.close();
        } finally {
          await provider.release(target);
        }
      }
    },
  );
  const params: FC.Parameters<[Iterable<FC.AsyncCommand<ExploreSession, ExploreSession>>]> = {
    numRuns: options.runs ?? 100,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.path !== undefined ? { path: options.path } : {}),
    ...(options.timeLimitMs !== undefined ? { interruptAfterTimeLimit: options.timeLimitMs } : {}),
    markInterruptAsFailure: false,
  };
  const details = await fc.check(property, params);
  if (!details.failed) {
    return {
      ok: true,
      runs: details.numRuns,
      seed: details.seed,
      shrinks: 0,
      steps: [],
      interrupted: details.interrupted,
      leftOut,
      durationMs: Math.round(performance.now() - t0),
    };
  }
  // Replay the shrunk counterexample alone, to read its step list (and show that it reproduces).
  const path = details.counterexamplePath ?? undefined;
  const failure = describeError(details.errorInstance);
  const steps: string[] = [];
  const counterexample = details.counterexample?.[0];
  if (counterexample) {
    const target = await provider.open();
    let session: ExploreSession | undefined;
    let replayError: unknown;
    try {
      session = await ExploreSession.open(target, settings, withMigration);
      const s = session;
      await s.begin();
      await fc.asyncModelRun(() => ({ model: s, real: s }), counterexample);
    } catch (err) {
      replayError = err;
    }
    try {
      // The sequence's cleanup (snapshots deleted, instances destroyed) is judged too.
      await session?.close();
    } catch (err) {
      replayError ??= err;
    } finally {
      steps.push(...(session?.trace ?? []));
      await provider.release(target);
    }
    steps.push(
      replayError === undefined
        ? "(a replay of this sequence did not diverge: the driver is not deterministic here)"
        : `✗ ${describeError(replayError)}`,
    );
  }
  return {
    ok: false,
    runs: details.numRuns,
    seed: details.seed,
    ...(path !== undefined ? { path } : {}),
    shrinks: details.numShrinks,
    steps,
    failure,
    interrupted: details.interrupted,
    leftOut,
    durationMs: Math.round(performance.now() - t0),
  };
}

/**
 * Explores a driver in fresh environments from `factory`: one environment per sequence, so a
 * sequence starts from nothing, whatever the previous one did.
 */
export function exploreEnvironment(factory: ConformanceEnvironmentFactory, options: ExploreOptions = {}): Promise<ExploreResult> {
  let n = 0;
  const drivers = new WeakMap<ExploreTarget, Map<string, ComputeDriver>>();
  const provider: TargetProvider = {
    async open() {
      const prefix = `vkx${randomUUID().slice(0, 6)}${++n}`;
      const env: ConformanceEnvironment = await factory({ prefix });
      const own = new Map<string, ComputeDriver>();
      let counter = 0;
      const target: ExploreTarget = {
        env,
        async driverFor(host) {
          let d = own.get(host);
          if (!d) {
            d = await env.createDriver(host);
            own.set(host, d);
          }
          return d;
        },
        newInstance: () => newInstance(env, `${prefix}-${++counter}`),
        ...(options.signal ? { signal: options.signal } : {}),
      };
      drivers.set(target, own);
      return target;
    },
    async release(target) {
      for (const [host, d] of drivers.get(target) ?? []) await d.cleanupHost(host).catch(() => undefined);
      await target.env.cleanup().catch(() => undefined);
    },
  };
  return explore(provider, options);
}

/** An instance like the kit's scenarios spawn (m1.tiny on the environment's boot image). */
export function newInstance(env: ConformanceEnvironment, name: string): Instance {
  // Frozen, as the scenarios' instances are: a driver must not write into its inputs.
  return frozenCopy({
    uuid: randomUUID(),
    name,
    flavor: { name: "m1.tiny", memoryMb: 64, vcpus: 1, rootGb: 1 },
    imageMeta: env.bootImage ?? DEFAULT_BOOT_IMAGE,
    projectId: "conformance-project",
    userId: "conformance-user",
    osType: "linux",
  });
}

/** A readable report of an exploration (for the CLI and scenario failures). */
export function formatExploreResult(result: ExploreResult, replay?: { readonly command: string }): string {
  const secs = `${(result.durationMs / 1000).toFixed(1)} s`;
  const left = result.leftOut.map((l) => `\n  left out: ${l.operation}: ${l.reason}`).join("");
  const errors = result.errors ?? [];
  const stray = errors.length === 0 ? "" : `\nerrors outside any step (they fail the exploration):${errors.map((e) => `\n  ${e}`).join("")}`;
  const replayLine = replay
    ? `replay: ${replay.command} --seed ${result.seed}${result.path ? ` --path ${result.path}` : ""}`
    : `replay: seed ${result.seed}${result.path ? `, path ${result.path}` : ""}`;
  const diverged = result.failure !== undefined || result.steps.length > 0 || (!result.ok && errors.length === 0);
  if (!diverged) {
    const cut = result.interrupted ? " (cut short by the time limit)" : "";
    const head = `explore: ${result.runs} random sequences, no divergence from the model (seed ${result.seed}, ${secs})${cut}`;
    // No divergence, but driver code threw outside the kit's reach: a failure all the same.
    return errors.length === 0 ? `${head}${left}` : `${head}${stray}\n${replayLine}${left}`;
  }
  const lines = [
    `explore: the driver diverged from the model (seed ${result.seed}, after ${result.runs} sequences, shrunk ${result.shrinks} times, ${secs})`,
    `shortest failing sequence:`,
    ...result.steps.map((s, i) => `  ${String(i + 1).padStart(2)}. ${s}`),
  ];
  lines.push(replayLine);
  return lines.join("\n") + stray + left;
}
