/**
 * Migration checks: the policy → representation table (exact VIR_MIGRATE_* bitmasks for scheme
 * `libvirt`, after Nova's `_parse_migration_flags` and newer Nova's TLS/parallel handling), the
 * pre-checks, and a real move between two hosts with rollback and abort.
 */
import {
  DEFAULT_MIGRATION_POLICY,
  LiveMigrationFailedError,
  MigrationPreCheckError,
  OperationAbortedError,
  OperationTimeoutError,
  PowerState,
  isInvalidInput,
  type Capability,
  type ComputeDriver,
  type Instance,
  type LifecycleEvent,
  type MigrateData,
  type MigrationHostFacts,
  type MigrationPlan,
  type MigrationPolicy,
  type MigrationProgress,
} from "@virtkit/core";
import {
  check,
  checkEqual,
  describeError,
  expectGone,
  expectRejects,
  expectState,
  expectUnsupported,
  fail,
  waitFor,
  skipForEnvironment,
  thrownWithCode,
} from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { overTheWire } from "./migrate-data-wire.js";

/** VIR_MIGRATE_* bits (libvirt-domain.h, `virDomainMigrateFlags`). */
export const VIR_MIGRATE = {
  LIVE: 1,
  PEER2PEER: 2,
  TUNNELLED: 4,
  PERSIST_DEST: 8,
  UNDEFINE_SOURCE: 16,
  NON_SHARED_INC: 128,
  AUTO_CONVERGE: 8192,
  POSTCOPY: 32768,
  TLS: 65536,
  PARALLEL: 131072,
} as const;

const {
  LIVE,
  PEER2PEER,
  TUNNELLED,
  PERSIST_DEST,
  UNDEFINE_SOURCE,
  NON_SHARED_INC,
  AUTO_CONVERGE,
  POSTCOPY,
  TLS,
  PARALLEL,
} = VIR_MIGRATE;
/** Nova's base flags on kvm/qemu. */
const BASE = LIVE | PEER2PEER | UNDEFINE_SOURCE | PERSIST_DEST;

/** One row of the migration table. */
export interface MigrationCase {
  /** Stable suffix of the scenario id (`migration.plan.<name>`). */
  readonly name: string;
  readonly title: string;
  readonly policy: MigrationPolicy;
  readonly facts: MigrationHostFacts;
  /** Capabilities besides `liveMigration` the policy needs. */
  readonly needs: readonly Capability[];
  /**
   * Expected representation per plan scheme: a bitmask (and optional params), or `"refused"`
   * (planMigration must throw `InvalidInputError`).
   */
  readonly expect: Readonly<
    Record<string, { readonly bitmask: number; readonly params?: Readonly<Record<string, number>> } | "refused">
  >;
}

const policy = (p: Partial<MigrationPolicy>): MigrationPolicy => ({ ...DEFAULT_MIGRATION_POLICY, ...p });
const KVM: MigrationHostFacts = { virtType: "kvm", postCopySupported: true };

/** The table. Every driver planning in scheme `libvirt` must produce exactly these bitmasks. */
export const MIGRATION_CASES: readonly MigrationCase[] = [
  {
    name: "default",
    title: "default policy: LIVE|PEER2PEER|UNDEFINE_SOURCE|PERSIST_DEST",
    policy: policy({}),
    facts: KVM,
    needs: [],
    expect: { libvirt: { bitmask: BASE } },
  },
  {
    name: "xen-no-p2p",
    title: "on xen: no PEER2PEER",
    policy: policy({}),
    facts: { virtType: "xen", postCopySupported: false },
    needs: [],
    expect: { libvirt: { bitmask: LIVE | UNDEFINE_SOURCE | PERSIST_DEST } },
  },
  {
    name: "block",
    title: "block migration adds NON_SHARED_INC",
    policy: policy({ block: true }),
    facts: KVM,
    needs: ["blockMigration"],
    expect: { libvirt: { bitmask: BASE | NON_SHARED_INC } },
  },
  {
    name: "tunnelled",
    title: "tunnelled adds TUNNELLED",
    policy: policy({ tunnelled: true }),
    facts: KVM,
    needs: ["tunnelledMigration"],
    expect: { libvirt: { bitmask: BASE | TUNNELLED } },
  },
  {
    name: "block-tunnelled",
    title: "block and tunnelled together",
    policy: policy({ block: true, tunnelled: true }),
    facts: KVM,
    needs: ["blockMigration", "tunnelledMigration"],
    expect: { libvirt: { bitmask: BASE | NON_SHARED_INC | TUNNELLED } },
  },
  {
    name: "tunnelled-tls-refused",
    title: "tunnelled together with native TLS is refused",
    policy: policy({ tunnelled: true, nativeTls: true }),
    facts: KVM,
    needs: ["tunnelledMigration", "nativeTlsMigration"],
    expect: { libvirt: "refused", "*": "refused" },
  },
  {
    name: "native-tls",
    title: "native TLS adds TLS",
    policy: policy({ nativeTls: true }),
    facts: KVM,
    needs: ["nativeTlsMigration"],
    expect: { libvirt: { bitmask: BASE | TLS } },
  },
  {
    name: "post-copy",
    title: "post-copy permitted and supported adds POSTCOPY and then no AUTO_CONVERGE",
    policy: policy({ permitPostCopy: true, permitAutoConverge: true }),
    facts: KVM,
    needs: ["postCopy"],
    expect: { libvirt: { bitmask: BASE | POSTCOPY } },
  },
  {
    name: "post-copy-unsupported",
    title: "post-copy permitted but unsupported: AUTO_CONVERGE instead",
    policy: policy({ permitPostCopy: true, permitAutoConverge: true }),
    facts: { virtType: "kvm", postCopySupported: false },
    needs: ["postCopy", "autoConverge"],
    expect: { libvirt: { bitmask: BASE | AUTO_CONVERGE } },
  },
  {
    name: "auto-converge",
    title: "auto-converge permitted adds AUTO_CONVERGE",
    policy: policy({ permitAutoConverge: true }),
    facts: KVM,
    needs: ["autoConverge"],
    expect: { libvirt: { bitmask: BASE | AUTO_CONVERGE } },
  },
  {
    name: "parallel",
    title: "parallel connections add PARALLEL and the connection count",
    policy: policy({ parallelConnections: 4 }),
    facts: KVM,
    needs: [],
    expect: { libvirt: { bitmask: BASE | PARALLEL, params: { "parallel.connections": 4 } } },
  },
];

function flagNamesFor(bitmask: number): string[] {
  return (Object.entries(VIR_MIGRATE) as [string, number][])
    .filter(([, bit]) => (bitmask & bit) !== 0)
    .sort((a, b) => a[1] - b[1])
    .map(([n]) => n);
}

/** The plan check of one table row. */
export function checkPlan(c: MigrationCase): (ctx: ScenarioContext) => Promise<void> {
  return async (ctx) => {
    ctx.step(`planMigration (${c.name})`);
    let plan: MigrationPlan | undefined;
    let error: unknown;
    try {
      plan = ctx.driver.planMigration(c.policy, c.facts);
    } catch (err) {
      ctx.recordError(err);
      error = err;
    }
    // The scheme comes from a successful plan, or from the default policy's plan when refused.
    const scheme = plan?.scheme ?? safeScheme(ctx.driver);
    const want = c.expect[scheme] ?? c.expect["*"];
    if (want === "refused") {
      if (plan) fail(`planMigration accepted an impossible policy (${c.title}): ${plan.flags.join("|")}`);
      check(isInvalidInput(error), `planMigration refused with ${describeError(error)}, expected InvalidInputError`);
      return;
    }
    if (!plan) fail(`planMigration threw ${describeError(error)}`);
    // Generic invariants, every scheme.
    check(typeof plan.scheme === "string" && plan.scheme.length > 0, "plan without a scheme");
    const again = ctx.driver.planMigration(c.policy, c.facts);
    checkEqual(JSON.stringify(again), JSON.stringify(plan), "planMigration is not deterministic");
    if (!want) return; // No exact table for this scheme: the invariants are all we can hold it to.
    checkEqual(plan.bitmask, want.bitmask, `bitmask for ${c.title} (${flagNamesFor(want.bitmask).join("|")})`);
    checkEqual(plan.flags.join("|"), flagNamesFor(want.bitmask).join("|"), `flag names for ${c.title}`);
    for (const [k, v] of Object.entries(want.params ?? {})) checkEqual(plan.params[k], v, `plan parameter ${k}`);
  };
}

function safeScheme(driver: ComputeDriver): string {
  try {
    return driver.planMigration(DEFAULT_MIGRATION_POLICY, KVM).scheme;
  } catch {
    return "*";
  }
}

/** Undeclared migration (or an undeclared part of the policy) is refused as unsupported. */
export function refusePlan(c: MigrationCase): (ctx: ScenarioContext) => Promise<void> {
  return async (ctx) => {
    // Whichever of the capabilities the policy needs is lacking.
    await expectUnsupported(ctx, `planMigration (${c.name})`, async () => ctx.driver.planMigration(c.policy, c.facts), ["liveMigration", ...c.needs]);
  };
}

async function twoHosts(ctx: ScenarioContext): Promise<{ src: ComputeDriver; dst: ComputeDriver; dstHost: string }> {
  const dstHost = ctx.env.hosts[1];
  if (!dstHost) skipForEnvironment("the environment has a single host, so no real migration");
  const dst = await ctx.driverFor(dstHost);
  return { src: ctx.driver, dst, dstHost };
}

/**
 * Pre-checks refuse what the destination cannot take: the instance's own host as destination, an
 * instance larger than the destination (where the source is bigger), tunnelled + native TLS.
 */
export async function checkPreChecks(ctx: ScenarioContext): Promise<void> {
  const { src, dst } = await twoHosts(ctx);
  const srcInfo = await src.getHostInfo(ctx.opts());
  const dstInfo = await dst.getHostInfo(ctx.opts());
  const inst = await ctx.spawn();
  ctx.step("checkCanLiveMigrateDestination on the instance's own host");
  await expectRejects(
    ctx,
    src.checkCanLiveMigrateDestination(inst, srcInfo, DEFAULT_MIGRATION_POLICY, ctx.opts()),
    ["VIRTKIT_MIGRATION_PRECHECK_FAILED"],
    "destination pre-check on the host the instance already runs on",
  );
  ctx.step("checkCanLiveMigrateDestination with tunnelled + native TLS");
  await expectRejects(
    ctx,
    dst.checkCanLiveMigrateDestination(
      inst,
      srcInfo,
      { ...DEFAULT_MIGRATION_POLICY, tunnelled: true, nativeTls: true },
      ctx.opts(),
    ),
    ["VIRTKIT_MIGRATION_PRECHECK_FAILED", "VIRTKIT_INVALID_INPUT", "VIRTKIT_UNSUPPORTED_OPERATION"],
    "destination pre-check of tunnelled + native TLS",
  );
  await expectState(ctx, inst, PowerState.RUNNING, "the refused pre-checks");
  if (srcInfo.memoryMb > dstInfo.memoryMb) {
    const big = await ctx.spawn({
      flavor: {
        name: "larger-than-destination",
        memoryMb: Math.min(srcInfo.memoryMb, dstInfo.memoryMb * 2),
        vcpus: 1,
        rootGb: 1,
      },
    });
    ctx.step("checkCanLiveMigrateDestination for an instance larger than the destination");
    await expectRejects(
      ctx,
      dst.checkCanLiveMigrateDestination(big, srcInfo, DEFAULT_MIGRATION_POLICY, ctx.opts()),
      ["VIRTKIT_MIGRATION_PRECHECK_FAILED"],
      "destination pre-check of an instance the destination cannot hold",
    );
    await expectGone(ctx, big, "the refused pre-check (on the destination)", dst);
  }
}

async function prepare(ctx: ScenarioContext, src: ComputeDriver, dst: ComputeDriver) {
  const inst = await ctx.spawn();
  return { inst, data: await prepareMove(ctx, src, dst, inst) };
}

/** The pre-checks and the destination's preparation for moving `inst` from `src` to `dst`. */
async function prepareMove(ctx: ScenarioContext, src: ComputeDriver, dst: ComputeDriver, inst: Instance): Promise<MigrateData> {
  const srcInfo = await src.getHostInfo(ctx.opts());
  ctx.step("checkCanLiveMigrateDestination");
  let data: MigrateData;
  try {
    data = overTheWire(
      await dst.checkCanLiveMigrateDestination(inst, srcInfo, DEFAULT_MIGRATION_POLICY, ctx.opts()),
      "checkCanLiveMigrateDestination",
    );
  } catch (err) {
    // Like Nova's `block_migration=auto`: hosts without shared storage need a block migration.
    if (!(err instanceof MigrationPreCheckError) || !dst.capabilities.blockMigration) throw err;
    ctx.recordError(err);
    ctx.step("checkCanLiveMigrateDestination (block migration)");
    data = overTheWire(
      await dst.checkCanLiveMigrateDestination(inst, srcInfo, { ...DEFAULT_MIGRATION_POLICY, block: true }, ctx.opts()),
      "checkCanLiveMigrateDestination (block migration)",
    );
  }
  ctx.step("checkCanLiveMigrateSource");
  try {
    data = overTheWire(await src.checkCanLiveMigrateSource(inst, data, ctx.opts()), "checkCanLiveMigrateSource");
  } catch (err) {
    // Only the source can tell that the hosts share no storage (Nova's shared-storage probe): like
    // `block_migration=auto`, start again as a block migration when the driver can do one.
    if (!(err instanceof MigrationPreCheckError) || data.policy.block || !dst.capabilities.blockMigration) throw err;
    ctx.recordError(err);
    ctx.step("cleanupLiveMigrationDestinationCheck, twice (it is idempotent: a retried call must not fail)");
    await dst.cleanupLiveMigrationDestinationCheck?.(inst, data, ctx.opts());
    await dst.cleanupLiveMigrationDestinationCheck?.(inst, data, ctx.opts());
    ctx.step("checkCanLiveMigrateDestination, checkCanLiveMigrateSource (block migration)");
    data = overTheWire(
      await dst.checkCanLiveMigrateDestination(inst, srcInfo, { ...DEFAULT_MIGRATION_POLICY, block: true }, ctx.opts()),
      "checkCanLiveMigrateDestination (block migration)",
    );
    data = overTheWire(await src.checkCanLiveMigrateSource(inst, data, ctx.opts()), "checkCanLiveMigrateSource (block migration)");
  }
  ctx.step("preLiveMigration");
  return overTheWire(await dst.preLiveMigration(inst, data, {}, ctx.opts()), "preLiveMigration");
}

/** A real move: running on the destination, gone from the source, events emitted. */
export async function checkLiveMigration(ctx: ScenarioContext): Promise<void> {
  const { src, dst, dstHost } = await twoHosts(ctx);
  const events: LifecycleEvent[] = [];
  const offs = [src.registerEventListener((e) => events.push(e)), dst.registerEventListener((e) => events.push(e))];
  try {
    const { inst, data } = await prepare(ctx, src, dst);
    // The guest itself, by the environment's own means (its agent, its disk), not the driver's word.
    const controls = ctx.env.guestControls;
    const guestData = typeof controls?.writeData === "function" && typeof controls.readData === "function";
    if (guestData) {
      ctx.step("write a marker into the guest");
      await controls!.writeData!(inst, MOVED_KEY, "before the move");
    }
    ctx.step("liveMigration");
    await src.liveMigration(inst, data, ctx.opts());
    ctx.step("postLiveMigrationAtDestination");
    await dst.postLiveMigrationAtDestination(inst, data, {}, ctx.opts());
    await expectState(ctx, inst, PowerState.RUNNING, "live migration (on the destination)", dst);
    await expectGone(ctx, inst, "live migration (on the source)", src);
    if (guestData) {
      ctx.step("the guest answers after the move, its marker kept");
      const got = await controls!.readData!(inst, MOVED_KEY);
      check(got === "before the move", `after the move the guest's disk holds ${JSON.stringify(got)}, expected the marker written before it`);
    }
    if (src.capabilities.lifecycleEvents) {
      ctx.step("migration events");
      const seen = await waitFor(() => events.some((e) => e.instanceUuid === inst.uuid), 1000, ctx.signal);
      check(seen, "no lifecycle event was emitted for the migrated instance");
      if (dst.capabilities.pause) {
        // The destination announces what happens to an instance that arrived by migration, as to
        // any other of its own.
        ctx.step("pause and unpause on the destination: its events");
        const mark = events.length;
        await dst.pause(inst, ctx.opts());
        await dst.unpause(inst, ctx.opts());
        const later = () => events.slice(mark).filter((e) => e.instanceUuid === inst.uuid && e.host === dstHost).map((e) => e.transition);
        await waitFor(() => later().includes("RESUMED"), 2_000, ctx.signal);
        check(
          later().includes("PAUSED") && later().includes("RESUMED"),
          `pause and unpause of the migrated instance on the destination announced [${later().join(", ")}], expected PAUSED and RESUMED from the destination`,
        );
      }
    }
    // Nova's flags persist the instance on the destination (PERSIST_DEST): one that arrived only
    // as a running guest would vanish at its first power off there.
    ctx.step("power off and on on the destination");
    await dst.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
    await expectState(ctx, inst, PowerState.SHUTDOWN, "power off of the migrated instance on the destination", dst);
    await dst.powerOn(inst, ctx.opts());
    await expectState(ctx, inst, PowerState.RUNNING, "power on of the migrated instance on the destination", dst);
    ctx.step("destroy on the destination");
    await dst.destroy(inst, ctx.opts());
    await expectGone(ctx, inst, "destroy on the destination", dst);
  } finally {
    for (const off of offs) off();
  }
}

const MOVED_KEY = "/conformance/moved-marker";

/** After preLiveMigration, rollback at the destination leaves the instance running on the source only. */
export async function checkRollback(ctx: ScenarioContext): Promise<void> {
  const { src, dst } = await twoHosts(ctx);
  const { inst, data } = await prepare(ctx, src, dst);
  ctx.step("rollbackLiveMigrationAtDestination");
  await dst.rollbackLiveMigrationAtDestination(inst, data, {}, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "rollback (on the source)", src);
  await expectGone(ctx, inst, "rollback (on the destination)", dst);
}

/** A migration aborted mid-way fails with `LiveMigrationFailedError` and leaves the instance on the source. */
export async function checkAbort(ctx: ScenarioContext): Promise<void> {
  const slow = ctx.env.hypervisorControls?.setMigrationDuration;
  if (!slow) skipForEnvironment("the environment cannot slow a migration down");
  const { src, dst } = await twoHosts(ctx);
  const { inst, data } = await prepare(ctx, src, dst);
  await slow.call(ctx.env.hypervisorControls, 2000);
  try {
    ctx.step("liveMigration, then liveMigrationAbort");
    const moving = src.liveMigration(inst, data, ctx.opts());
    moving.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 30));
    await src.liveMigrationAbort(inst, ctx.opts());
    // The contract: failed or aborted, liveMigration rejects with LiveMigrationFailedError. An
    // OperationAbortedError is the caller's own signal's (migration.caller-cancels), not this.
    await expectRejects(ctx, moving, ["VIRTKIT_LIVE_MIGRATION_FAILED"], "the liveMigration aborted by liveMigrationAbort");
  } finally {
    await slow.call(ctx.env.hypervisorControls, 0);
  }
  ctx.step("rollbackLiveMigrationAtDestination");
  await dst.rollbackLiveMigrationAtDestination(inst, data, {}, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "abort (on the source)", src);
  await expectGone(ctx, inst, "abort (on the destination)", dst);
}

/** How long a slowed migration takes in {@link checkCallerCancels}. */
const SLOW_MOVE_MS = 700;
/** How long past the slowed move's time the destination is watched for a move that went on. */
const WATCH_PAST_MS = 400;

/**
 * The caller's signal and deadline hold for liveMigration as for every call (`OperationOptions`):
 * aborted 30 ms in, or given a 50 ms deadline (two instances at once), it rejects typed within 1 s,
 * the instance does not arrive on the destination (there and gone from the source) while watched
 * until 0.4 s past the slowed move's 0.7 s (a driver that only stops waiting lets the hypervisor
 * finish the move), runs on the source, and is gone from the destination after its rollback.
 */
export async function checkCallerCancels(ctx: ScenarioContext): Promise<void> {
  const slow = ctx.env.hypervisorControls?.setMigrationDuration;
  if (!slow) skipForEnvironment("the environment cannot slow a migration down");
  const { src, dst } = await twoHosts(ctx);
  const byCaller = await prepare(ctx, src, dst);
  const byDeadline = await prepare(ctx, src, dst);
  await slow.call(ctx.env.hypervisorControls, SLOW_MOVE_MS);
  try {
    // Both halves end before the scenario does, whichever fails first.
    const halves = await Promise.allSettled([
      cancelMove(ctx, src, dst, byCaller, "signal"),
      cancelMove(ctx, src, dst, byDeadline, "deadline"),
    ]);
    const failed = halves.find((h): h is PromiseRejectedResult => h.status === "rejected");
    if (failed) throw failed.reason;
  } finally {
    await slow.call(ctx.env.hypervisorControls, 0);
  }
}

async function cancelMove(
  ctx: ScenarioContext,
  src: ComputeDriver,
  dst: ComputeDriver,
  { inst, data }: { inst: Instance; data: MigrateData },
  how: "signal" | "deadline",
): Promise<void> {
  // The caller aborts 30 ms in, or the deadline is 50 ms; the kit's own timer of that length says
  // how late this machine runs its timers now.
  const delayMs = how === "signal" ? 30 : 50;
  const what = how === "signal" ? `liveMigration aborted by its caller ${delayMs} ms in` : `liveMigration with a ${delayMs} ms deadline`;
  ctx.step(what);
  const started = Date.now();
  const caller = new AbortController();
  // No report comes after the call settled (LiveMigrationOptions.onProgress), cut short or not.
  const reports: number[] = [];
  const onProgress = (): void => void reports.push(Date.now());
  const moving =
    how === "signal"
      ? src.liveMigration(inst, data, { signal: AbortSignal.any([ctx.signal, caller.signal]), onProgress })
      : src.liveMigration(inst, data, { signal: ctx.signal, timeoutMs: delayMs, onProgress });
  moving.catch(() => undefined);
  await new Promise((r) => setTimeout(r, delayMs));
  const firedMs = Date.now() - started;
  if (how === "signal") caller.abort();
  const outcome = await moving.then(
    () => undefined,
    (err: unknown) => ({ err }),
  );
  const tookMs = Date.now() - started;
  // Only a machine so loaded that the kit's own 30 ms (50 ms) timer came after half the slowed
  // move may see the move finish first (the driver's deadline timer runs as late as the kit's);
  // then any answer that matches where the instance is will do.
  const lateAbort = firedMs >= SLOW_MOVE_MS / 2;
  if (outcome === undefined) {
    if (!lateAbort) fail(`${what} resolved (after ${tookMs} ms): expected a typed rejection`);
    await expectState(ctx, inst, PowerState.RUNNING, `${what}, resolved as the abort came late (on the destination)`, dst);
    await dst.postLiveMigrationAtDestination(inst, data, {}, ctx.opts());
    return;
  }
  const settledAt = Date.now();
  ctx.recordError(outcome.err);
  const codes = [how === "signal" ? OperationAbortedError.CODE : OperationTimeoutError.CODE, LiveMigrationFailedError.CODE] as const;
  if (!thrownWithCode(outcome.err, codes)) fail(`${what}: expected one of ${codes.join(", ")}, got ${describeError(outcome.err)}`);
  check(tookMs - firedMs < 1000, `${what} rejected ${tookMs - firedMs} ms after the ${how} (the ${how} must end the call at once)`);
  // Watched until well past the slowed move's time, later by as much as the kit's timer ran late
  // (a move the driver let go on lands as late), before the rollback could stop it.
  const watchUntil = started + SLOW_MOVE_MS + WATCH_PAST_MS + Math.max(0, firedMs - delayMs);
  for (;;) {
    // Listed on the destination while the source still has it is the cut-short move's incoming
    // side, which the hypervisor may take a while to tear down (libvirt lists it until then): not
    // an arrival. Arrived is on the destination and gone from the source.
    if ((await dst.instanceExists(inst, ctx.opts())) && !(await src.instanceExists(inst, ctx.opts()))) {
      if (lateAbort) {
        await dst.postLiveMigrationAtDestination(inst, data, {}, ctx.opts());
        return;
      }
      fail(`${what} rejected, yet the instance arrived on the destination ${Date.now() - started} ms after the call began: the move went on`);
    }
    if (Date.now() >= watchUntil) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const late = reports.filter((t) => t > settledAt).length;
  check(late === 0, `${what}: onProgress was called ${late} time(s) after liveMigration had rejected (no report comes after it settled)`);
  await expectState(ctx, inst, PowerState.RUNNING, `${what} (on the source, after the slowed move's time)`, src);
  ctx.step(`rollbackLiveMigrationAtDestination after the ${how}`);
  await dst.rollbackLiveMigrationAtDestination(inst, data, {}, ctx.opts());
  await expectGone(ctx, inst, `${what} (on the destination, after its rollback)`, dst);
}

/**
 * `onProgress` (optional for a driver to call) reports a move as it runs: every report's byte
 * counts are finite and not negative, the remaining at most the total (when a total is known; the
 * processed may pass it, as QEMU's does when it sends dirtied pages again), `elapsedMs` never goes
 * back, and no report comes after `liveMigration` settled (watched 0.3 s more). The move is
 * slowed to 0.6 s so a driver that reports has time to.
 */
export async function checkMigrationProgress(ctx: ScenarioContext): Promise<void> {
  const slow = ctx.env.hypervisorControls?.setMigrationDuration;
  if (!slow) skipForEnvironment("the environment cannot slow a migration down");
  const { src, dst } = await twoHosts(ctx);
  const { inst, data } = await prepare(ctx, src, dst);
  const reports: { p: MigrationProgress; settled: boolean }[] = [];
  let settled = false;
  await slow.call(ctx.env.hypervisorControls, 600);
  try {
    ctx.step("liveMigration with onProgress");
    await src.liveMigration(inst, data, { ...ctx.opts(), onProgress: (p) => reports.push({ p: { ...p }, settled }) });
  } finally {
    settled = true;
    await slow.call(ctx.env.hypervisorControls, 0);
  }
  ctx.step("watch for a report after the call settled");
  await new Promise((r) => setTimeout(r, 300));
  const late = reports.filter((r) => r.settled).length;
  check(late === 0, `onProgress was called ${late} time(s) after liveMigration settled`);
  let lastElapsed = -Infinity;
  for (const [i, { p }] of reports.entries()) {
    const what = `onProgress report #${i + 1} ${JSON.stringify(p)}`;
    for (const k of ["dataTotalBytes", "dataProcessedBytes", "dataRemainingBytes", "elapsedMs"] as const) {
      check(typeof p[k] === "number" && Number.isFinite(p[k]) && p[k] >= 0, `${what}: ${k} is not a finite number >= 0`);
    }
    if (p.dataTotalBytes > 0) check(p.dataRemainingBytes <= p.dataTotalBytes, `${what}: more remaining than the total`);
    check(p.elapsedMs >= lastElapsed, `${what}: elapsedMs went back from ${lastElapsed}`);
    lastElapsed = p.elapsedMs;
  }
  ctx.step("postLiveMigrationAtDestination");
  await dst.postLiveMigrationAtDestination(inst, data, {}, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "the reported move (on the destination)", dst);
}

/** Undeclared live migration is refused as unsupported. */
export async function refuseLiveMigration(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  const info = await ctx.driver.getHostInfo(ctx.opts());
  await expectUnsupported(ctx, "checkCanLiveMigrateDestination", () =>
    ctx.driver.checkCanLiveMigrateDestination(inst, info, DEFAULT_MIGRATION_POLICY, ctx.opts()),
    "liveMigration",
  );
  // The move and the destination's last steps too: a caller holding migrate data from elsewhere
  // (another driver's checks) must not get a move, nor a post or rollback that touches the instance.
  const data = await refusalData(ctx);
  await expectUnsupported(ctx, "liveMigration", () => ctx.driver.liveMigration(inst, data, ctx.opts()), "liveMigration");
  await expectUnsupported(ctx, "postLiveMigrationAtDestination", () => ctx.driver.postLiveMigrationAtDestination(inst, data, {}, ctx.opts()), "liveMigration");
  await expectUnsupported(ctx, "rollbackLiveMigrationAtDestination", () => ctx.driver.rollbackLiveMigrationAtDestination(inst, data, {}, ctx.opts()), "liveMigration");
  await expectState(ctx, inst, PowerState.RUNNING, "the refused migration steps");
}

/** Migration data for refusal checks: what a caller would hand the later steps. */
async function refusalData(ctx: ScenarioContext): Promise<MigrateData> {
  const host = (await ctx.driver.getHostInfo(ctx.opts())).hostname;
  return {
    sourceHost: host,
    destHost: `${host}-elsewhere`,
    policy: DEFAULT_MIGRATION_POLICY,
    plan: { scheme: "none", flags: [], params: {} },
    extra: {},
  };
}

/** Undeclared live migration: the source check and the destination's preparation are refused as unsupported. */
export async function refusePreChecks(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  const data = await refusalData(ctx);
  await expectUnsupported(ctx, "checkCanLiveMigrateSource", () =>
    ctx.driver.checkCanLiveMigrateSource(inst, data, ctx.opts()),
    "liveMigration",
  );
  await expectUnsupported(ctx, "preLiveMigration", () => ctx.driver.preLiveMigration(inst, data, {}, ctx.opts()), "liveMigration");
  await expectState(ctx, inst, PowerState.RUNNING, "the refused pre-checks");
}

/** Undeclared live migration: abort and force complete are refused as unsupported, the instance untouched. */
export async function refuseAbort(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  await expectUnsupported(ctx, "liveMigrationAbort", () => ctx.driver.liveMigrationAbort(inst, ctx.opts()), "liveMigration");
  await expectUnsupported(
    ctx,
    "liveMigrationForceComplete",
    () => ctx.driver.liveMigrationForceComplete(inst, ctx.opts()),
    ["liveMigration", "forceCompleteMigration"],
  );
  await expectState(ctx, inst, PowerState.RUNNING, "the refused abort");
}

/** Scenario guard: a real move needs a second host. */
export function needsTwoHosts(env: { readonly hosts: readonly string[] }): string | undefined {
  return env.hosts.length >= 2 ? undefined : "the environment has a single host, so no real migration";
}
