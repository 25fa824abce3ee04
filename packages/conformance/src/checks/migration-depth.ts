/**
 * Migration both ways. Pre-checks that must refuse (no shared storage without a block migration,
 * a block migration over shared storage, a source that is not running, a destination without room)
 * and must accept (the right policy), chosen from the environment's storage facts so no fallback
 * of the kit hides a driver's wrong refusal or acceptance; a paused instance moves paused; force
 * complete finishes a slow move; a block migration keeps the disk; and every MigrationPolicy field
 * in the plan (non-live, bandwidth in MiB/s, downtime, every flag combination Nova builds).
 */
import {
  DEFAULT_MIGRATION_POLICY,
  InvalidInputError,
  LiveMigrationFailedError,
  OperationAbortedError,
  OperationTimeoutError,
  PowerState,
  Secret,
  UnsupportedOperationError,
  type Capability,
  type Instance,
  type MigrateData,
  type MigrationHostFacts,
  type MigrationPlan,
  type MigrationPolicy,
  type VirtkitErrorCode,
} from "@virtkit/core";
import {
  ConformanceFailure,
  check,
  checkEqual,
  describeError,
  expectGone,
  expectRejects,
  expectState,
  expectUnsupported,
  fail,
  skipForEnvironment,
} from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { SecretScan } from "../secret-scan.js";
import { VIR_MIGRATE } from "./migration.js";
import { control, hostPair, move, policyFor, prepareMove, settle, spawnIn, type HostPair } from "./depth-support.js";
import { LATE_WAIT_MS, LATENCY_MS, TIMEOUT_MS, expectTimeoutUnlessQuick } from "./deadlines.js";
import { overTheWire } from "./migrate-data-wire.js";

const PRECHECK_REFUSALS = ["VIRTKIT_MIGRATION_PRECHECK_FAILED"];
const NOT_RUNNING_REFUSALS = [
  "VIRTKIT_MIGRATION_PRECHECK_FAILED",
  "VIRTKIT_INVALID_STATE",
  "VIRTKIT_INSTANCE_NOT_RUNNING",
];

/**
 * Runs the destination and source checks; returns undefined when both accept, or the refusal
 * (which must carry one of `codes`, as the error thrown, not a cause).
 */
async function preChecks(
  ctx: ScenarioContext,
  pair: HostPair,
  inst: Instance,
  policy: MigrationPolicy,
  codes: readonly string[],
  what: string,
): Promise<string | undefined> {
  const srcInfo = await pair.src.getHostInfo(ctx.opts());
  try {
    ctx.step(`checkCanLiveMigrateDestination (${what})`);
    const data = overTheWire(
      await pair.dst.checkCanLiveMigrateDestination(inst, srcInfo, policy, ctx.opts()),
      `checkCanLiveMigrateDestination (${what})`,
    );
    ctx.step(`checkCanLiveMigrateSource (${what})`);
    await pair.src.checkCanLiveMigrateSource(inst, data, ctx.opts()).catch(async (err: unknown) => {
      // As Nova's conductor: what the destination check left for the source to see goes.
      await pair.dst.cleanupLiveMigrationDestinationCheck?.(inst, data, ctx.opts()).catch((e: unknown) => ctx.recordError(e));
      throw err;
    });
    // Accepted: release whatever the destination may hold for it.
    await pair.dst.rollbackLiveMigrationAtDestination(inst, data, {}, ctx.opts()).catch((err: unknown) => {
      ctx.recordError(err);
    });
    return undefined;
  } catch (err) {
    // The kit's own verdict (MigrateData JSON cannot carry) stands as it is, not as a refusal.
    if (err instanceof ConformanceFailure) throw err;
    ctx.recordError(err);
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && codes.includes(code)) return code;
    fail(`${what}: the pre-checks failed with ${describeError(err)}, expected a refusal with ${codes.join(" or ")}`);
  }
}

/**
 * Storage: between hosts without shared storage a non-block migration must be refused and a block
 * one accepted; between hosts sharing it, the other way round (Nova refuses a block migration onto
 * shared storage). Each half runs where the environment has such a pair.
 */
export async function checkStoragePreChecks(ctx: ScenarioContext): Promise<void> {
  const caps = ctx.driver.capabilities;
  const hosts = ctx.env.hosts;
  const shares = ctx.env.sharesStorage;
  if (hosts.length < 2 || !shares) {
    // hostPair says why.
    await hostPair(ctx, "any");
  }
  const inst = await ctx.spawn();
  let ran = 0;
  for (const want of ["unshared", "shared"] as const) {
    const other = hosts.slice(1).find((h) => shares!.call(ctx.env, hosts[0]!, h) === (want === "shared"));
    if (other === undefined) continue;
    const pair: HostPair = {
      src: ctx.driver,
      dst: await ctx.driverFor(other),
      srcHost: hosts[0]!,
      dstHost: other,
      shared: want === "shared",
    };
    ran++;
    const wrong = { ...DEFAULT_MIGRATION_POLICY, block: want === "shared" };
    const right = { ...DEFAULT_MIGRATION_POLICY, block: want === "unshared" };
    if (!wrong.block || caps.blockMigration) {
      const what = `${wrong.block ? "a block" : "a non-block"} migration to a host ${want === "shared" ? "sharing" : "not sharing"} storage`;
      const refused = await preChecks(ctx, pair, inst, wrong, PRECHECK_REFUSALS, what);
      if (refused === undefined) fail(`${what} was accepted by both pre-checks`);
    }
    if (!right.block || caps.blockMigration) {
      const what = `${right.block ? "a block" : "a non-block"} migration to a host ${want === "shared" ? "sharing" : "not sharing"} storage`;
      const refused = await preChecks(ctx, pair, inst, right, [], what);
      check(refused === undefined, `${what} was refused`);
    }
    await expectState(ctx, inst, PowerState.RUNNING, "the pre-checks (on the source)");
    await expectGone(ctx, inst, "the pre-checks (on the destination)", pair.dst);
  }
  if (ran === 0) fail("kit error: no host pair to check");
}

/** A stopped or suspended instance cannot be live-migrated: the pre-checks refuse, nothing moves. */
export async function checkSourceNotRunning(ctx: ScenarioContext): Promise<void> {
  const pair = await hostPair(ctx, "any");
  const states: ("SHUTDOWN" | "SUSPENDED")[] = ["SHUTDOWN", ...(ctx.driver.capabilities.suspend ? ["SUSPENDED" as const] : [])];
  for (const state of states) {
    const inst = await spawnIn(ctx, state);
    const what = `live migration of a ${state} instance`;
    const refused = await preChecks(ctx, pair, inst, policyFor(pair), NOT_RUNNING_REFUSALS, what);
    if (refused === undefined) fail(`${what} was accepted by both pre-checks`);
    await expectState(ctx, inst, PowerState[state], `the refused ${what} (on the source)`);
    await expectGone(ctx, inst, `the refused ${what} (on the destination)`, pair.dst);
  }
}

/** A destination whose memory is taken refuses the instance; the instance stays where it was. */
export async function checkDestinationFull(ctx: ScenarioContext): Promise<void> {
  const pair = await hostPair(ctx, "any");
  const dstInfo = await pair.dst.getHostInfo(ctx.opts());
  const inst = await ctx.spawn();
  const filler = ctx.newInstance({
    flavor: { name: "conformance.filler", memoryMb: Math.max(1, dstInfo.memoryMb - inst.flavor.memoryMb / 2), vcpus: 1, rootGb: 1 },
  });
  ctx.step("fill the destination's memory");
  await pair.dst.spawn({ instance: filler }, ctx.opts());
  // A filler that did not stay up frees the memory again: say so, rather than blame the pre-checks.
  await expectState(ctx, filler, PowerState.RUNNING, "the spawn of the filler (on the destination, before the pre-checks)", pair.dst);
  const what = "live migration to a host without free memory";
  const refused = await preChecks(ctx, pair, inst, policyFor(pair), PRECHECK_REFUSALS, what);
  if (refused === undefined) fail(`${what} was accepted by both pre-checks`);
  await expectState(ctx, inst, PowerState.RUNNING, `the refused ${what} (on the source)`);
  await expectGone(ctx, inst, `the refused ${what} (on the destination)`, pair.dst);
  ctx.step("free the destination, then the same move is accepted");
  await pair.dst.destroy(filler, ctx.opts());
  check((await preChecks(ctx, pair, inst, policyFor(pair), [], "the same move once room is made")) === undefined, "refused after the destination was freed");
}

/** A paused instance moves paused and stays paused on the destination. */
export async function checkPausedMovesPaused(ctx: ScenarioContext): Promise<void> {
  const pair = await hostPair(ctx, "any");
  const inst = await spawnIn(ctx, "PAUSED");
  await move(ctx, pair, inst);
  await expectState(ctx, inst, PowerState.PAUSED, "the migration of a paused instance (on the destination)", pair.dst);
  await expectGone(ctx, inst, "the migration of a paused instance (on the source)", pair.src);
  ctx.step("unpause on the destination");
  await pair.dst.unpause(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "unpause on the destination", pair.dst);
}

/**
 * `pausedMigration` not declared (XAPI migrates Running VMs only): a pre-check refuses the paused
 * instance with UnsupportedOperationError, and it stays paused where it was.
 */
export async function refusePausedMove(ctx: ScenarioContext): Promise<void> {
  const pair = await hostPair(ctx, "any");
  const inst = await spawnIn(ctx, "PAUSED");
  const srcInfo = await pair.src.getHostInfo(ctx.opts());
  const what = "the pre-checks of a PAUSED instance's migration";
  let data: MigrateData | undefined;
  ctx.step(`checkCanLiveMigrateDestination (${what})`);
  try {
    data = await pair.dst.checkCanLiveMigrateDestination(inst, srcInfo, policyFor(pair), ctx.opts());
  } catch (err) {
    ctx.recordError(err);
    if (!(err instanceof UnsupportedOperationError)) {
      fail(`${what}: pausedMigration is not declared, so UnsupportedOperationError was expected, got ${describeError(err)}`);
    }
    check(err.capability === "pausedMigration", `${what}: the refusal names capability ${JSON.stringify(err.capability)}, expected "pausedMigration"`);
  }
  if (data !== undefined) {
    const accepted = data;
    try {
      await expectUnsupported(
        ctx,
        `checkCanLiveMigrateSource (${what})`,
        () => pair.src.checkCanLiveMigrateSource(inst, accepted, ctx.opts()),
        "pausedMigration",
      );
    } finally {
      await pair.dst.cleanupLiveMigrationDestinationCheck?.(inst, accepted, ctx.opts()).catch((e: unknown) => ctx.recordError(e));
    }
  }
  await expectState(ctx, inst, PowerState.PAUSED, `the refused migration of a paused instance (on the source)`);
  await expectGone(ctx, inst, `the refused migration of a paused instance (on the destination)`, pair.dst);
}

/**
 * MigrateData crosses hosts over RPC and lands in the compute service's logs: the admin password
 * set on the instance before must not ride along in any step's answer (as written, encoded or
 * wrapped), though a driver that re-injects it after the move would find that convenient.
 */
export async function checkNoPasswordInMigrateData(ctx: ScenarioContext): Promise<void> {
  const pair = await hostPair(ctx, "any");
  const inst = await ctx.spawn();
  const password = new Secret(`Vk-mig-${Math.random().toString(36).slice(2, 10)}!`);
  ctx.trackSecret(password);
  ctx.step("setAdminPassword");
  await pair.src.setAdminPassword(inst, password, ctx.opts());
  const scan = new SecretScan([password.reveal()]);
  const policy = policyFor(pair);
  const srcInfo = await pair.src.getHostInfo(ctx.opts());
  const carried: string[] = [];
  const seen = (data: MigrateData, step: string): MigrateData => {
    if (scan.found(JSON.stringify(data))) carried.push(step);
    return overTheWire(data, step);
  };
  ctx.step("checkCanLiveMigrateDestination");
  let data = seen(await pair.dst.checkCanLiveMigrateDestination(inst, srcInfo, policy, ctx.opts()), "checkCanLiveMigrateDestination");
  ctx.step("checkCanLiveMigrateSource");
  data = seen(await pair.src.checkCanLiveMigrateSource(inst, data, ctx.opts()), "checkCanLiveMigrateSource");
  ctx.step("preLiveMigration");
  data = seen(await pair.dst.preLiveMigration(inst, data, {}, ctx.opts()), "preLiveMigration");
  if (carried.length > 0) fail(`the admin password set before the migration rides in the MigrateData of ${carried.join(", ")}`);
  ctx.step("liveMigration");
  await pair.src.liveMigration(inst, data, ctx.opts());
  ctx.step("postLiveMigrationAtDestination");
  await pair.dst.postLiveMigrationAtDestination(inst, data, {}, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "the migration (on the destination)", pair.dst);
}

/** A non-live policy moves the instance too, and it runs on the destination afterwards. */
export async function checkNonLiveMove(ctx: ScenarioContext): Promise<void> {
  const pair = await hostPair(ctx, "any");
  const inst = await ctx.spawn();
  await move(ctx, pair, inst, policyFor(pair, { live: false }));
  await expectState(ctx, inst, PowerState.RUNNING, "a non-live migration (on the destination)", pair.dst);
  await expectGone(ctx, inst, "a non-live migration (on the source)", pair.src);
}

/** Force complete ends a slow migration long before it would have finished by itself. */
export async function checkForceComplete(ctx: ScenarioContext): Promise<void> {
  const slow = ctx.env.hypervisorControls?.setMigrationDuration?.bind(ctx.env.hypervisorControls);
  if (!slow) skipForEnvironment("the environment cannot slow a migration down (no setMigrationDuration)");
  const pair = await hostPair(ctx, "any");
  const inst = await ctx.spawn();
  const data = await prepareMove(ctx, pair, inst, policyFor(pair));
  await slow(3_000);
  const t0 = performance.now();
  let forcedAt = t0;
  try {
    ctx.step("liveMigration, then liveMigrationForceComplete with an aborted signal");
    const moving = pair.src.liveMigration(inst, data, ctx.opts());
    let settled = false;
    moving.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setTimeout(r, 30));
    // An aborted call is refused typed and forces nothing: the move goes on at its own pace.
    await expectRejects(
      ctx,
      pair.src.liveMigrationForceComplete(inst, { signal: AbortSignal.abort() }),
      ["VIRTKIT_OPERATION_ABORTED"],
      "liveMigrationForceComplete with an aborted signal",
    );
    await new Promise((r) => setTimeout(r, 400));
    check(
      !settled,
      "liveMigrationForceComplete with an aborted signal was refused, yet it forced the migration: it ended within 430 ms of a 3000 ms transfer",
    );
    ctx.step("liveMigrationForceComplete");
    forcedAt = performance.now();
    await pair.src.liveMigrationForceComplete(inst, ctx.opts());
    await moving;
  } finally {
    await slow(0);
  }
  const elapsed = performance.now() - forcedAt;
  check(
    elapsed < 1_500,
    `the forced migration took ${Math.round(elapsed)} ms more of a 3000 ms transfer (${Math.round(forcedAt - t0)} ms in): force complete did nothing`,
  );
  ctx.step("postLiveMigrationAtDestination");
  await pair.dst.postLiveMigrationAtDestination(inst, data, {}, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "a force-completed migration (on the destination)", pair.dst);
  await expectGone(ctx, inst, "a force-completed migration (on the source)", pair.src);
}

/**
 * `forceCompleteMigration` not declared (XAPI has no such call): force complete during a move is
 * refused with UnsupportedOperationError and leaves the move alone: it still finishes.
 */
export async function refuseForceComplete(ctx: ScenarioContext): Promise<void> {
  const slow = ctx.env.hypervisorControls?.setMigrationDuration?.bind(ctx.env.hypervisorControls);
  const pair = await hostPair(ctx, "any");
  const inst = await ctx.spawn();
  const data = await prepareMove(ctx, pair, inst, policyFor(pair));
  // Long enough that the refusal comes while the move is in progress, where the environment can say.
  await slow?.(300);
  try {
    ctx.step("liveMigration, then liveMigrationForceComplete");
    const moving = pair.src.liveMigration(inst, data, ctx.opts());
    moving.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 30));
    await expectUnsupported(ctx, "liveMigrationForceComplete", () => pair.src.liveMigrationForceComplete(inst, ctx.opts()), "forceCompleteMigration");
    ctx.step("liveMigration (after the refused force complete)");
    await moving;
  } finally {
    await slow?.(0);
  }
  ctx.step("postLiveMigrationAtDestination");
  await pair.dst.postLiveMigrationAtDestination(inst, data, {}, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "a migration whose force complete was refused (on the destination)", pair.dst);
  await expectGone(ctx, inst, "a migration whose force complete was refused (on the source)", pair.src);
}

/** A block migration copies the disk: what the guest wrote is on the destination. */
export async function checkBlockKeepsData(ctx: ScenarioContext): Promise<void> {
  const write = control(ctx, "writeData", "the environment cannot write into the guest's disk");
  const read = control(ctx, "readData", "the environment cannot read the guest's disk");
  const pair = await hostPair(ctx, "unshared");
  const inst = await ctx.spawn();
  ctx.step("write a marker into the guest");
  await write(inst, "/conformance/migrated", "carried");
  await move(ctx, pair, inst);
  await expectState(ctx, inst, PowerState.RUNNING, "a block migration (on the destination)", pair.dst);
  ctx.step("read the marker on the destination");
  checkEqual(await read(inst, "/conformance/migrated"), "carried", "the guest's data after a block migration");
}

// -- the plan: every field, every combination -------------------------------------------------

/**
 * Post-copy is used when permitted, supported and live (a non-live copy pauses the guest, so there
 * is nothing to post-copy); libvirt refuses it over a tunnel.
 */
const usesPostCopy = (p: MigrationPolicy, facts: MigrationHostFacts) =>
  p.permitPostCopy && facts.postCopySupported === true && p.live;

/**
 * The kit's own reading of Nova's flag logic, in VIR_MIGRATE bits (scheme `libvirt`): the base
 * flags (no PEER2PEER on xen), block adds NON_SHARED_INC, tunnelled TUNNELLED, native TLS TLS,
 * more than one connection PARALLEL; POSTCOPY when used, else AUTO_CONVERGE when permitted and
 * live (throttling a guest paused for the copy does nothing).
 */
function novaBitmask(p: MigrationPolicy, facts: MigrationHostFacts): number {
  const B = VIR_MIGRATE;
  let m = B.UNDEFINE_SOURCE | B.PERSIST_DEST;
  if (p.live) m |= B.LIVE;
  if (facts.virtType !== "xen") m |= B.PEER2PEER;
  if (p.block) m |= B.NON_SHARED_INC;
  if (p.tunnelled) m |= B.TUNNELLED;
  if (p.nativeTls) m |= B.TLS;
  if (p.parallelConnections > 1) m |= B.PARALLEL;
  if (usesPostCopy(p, facts)) m |= B.POSTCOPY;
  else if (p.permitAutoConverge && p.live) m |= B.AUTO_CONVERGE;
  return m;
}

/** The capabilities a policy needs. */
function policyNeeds(p: MigrationPolicy): Capability[] {
  const out: Capability[] = [];
  if (p.block) out.push("blockMigration");
  if (p.tunnelled) out.push("tunnelledMigration");
  if (p.nativeTls) out.push("nativeTlsMigration");
  if (p.permitPostCopy) out.push("postCopy");
  if (p.permitAutoConverge) out.push("autoConverge");
  return out;
}

function plan(ctx: ScenarioContext, p: MigrationPolicy, facts: MigrationHostFacts): MigrationPlan | unknown {
  try {
    return ctx.driver.planMigration(p, facts);
  } catch (err) {
    ctx.recordError(err);
    return err;
  }
}

const isPlan = (v: unknown): v is MigrationPlan =>
  typeof v === "object" && v !== null && typeof (v as MigrationPlan).scheme === "string" && Array.isArray((v as MigrationPlan).flags);

/**
 * Every combination of the policy's switches Nova can build (live, block, tunnelled, native TLS,
 * post-copy, auto-converge, parallel) on kvm and xen, with and without post-copy support: the exact
 * bitmask for scheme `libvirt`; for every scheme, a refusal of tunnelled + native TLS
 * (`InvalidInputError`), `UnsupportedOperationError` for an undeclared part, and a deterministic plan.
 */
export async function checkPlanCombinations(ctx: ScenarioContext): Promise<void> {
  const caps = ctx.driver.capabilities;
  const bools = [false, true];
  ctx.step("planMigration of every combination");
  for (const live of bools)
    for (const block of bools)
      for (const tunnelled of bools)
        for (const nativeTls of bools)
          for (const permitPostCopy of bools)
            for (const permitAutoConverge of bools)
              for (const parallelConnections of [1, 3])
                for (const virtType of ["kvm", "xen"])
                  for (const postCopySupported of bools) {
                    const p: MigrationPolicy = {
                      ...DEFAULT_MIGRATION_POLICY,
                      live,
                      block,
                      tunnelled,
                      nativeTls,
                      permitPostCopy,
                      permitAutoConverge,
                      parallelConnections,
                    };
                    const facts: MigrationHostFacts = { virtType, postCopySupported };
                    // Built only for a message: 512 combinations must stay cheap.
                    const label = () =>
                      `${JSON.stringify({ live, block, tunnelled, nativeTls, permitPostCopy, permitAutoConverge, parallelConnections })} on ${virtType}${postCopySupported ? " with post-copy" : ""}`;
                    const got = plan(ctx, p, facts);
                    const missing = policyNeeds(p).filter((c) => !caps[c]);
                    const impossible =
                      tunnelled && nativeTls
                        ? "tunnelled + native TLS"
                        : tunnelled && usesPostCopy(p, facts)
                          ? "post-copy over a tunnel"
                          : undefined;
                    if (impossible) {
                      if (!(got instanceof InvalidInputError || (missing.length > 0 && got instanceof UnsupportedOperationError))) {
                        fail(`planMigration ${label()}: ${impossible} must be refused with InvalidInputError, got ${isPlan(got) ? got.flags.join("|") : describeError(got)}`);
                      }
                      continue;
                    }
                    if (missing.length > 0) {
                      const soft = missing.every((m) => m === "postCopy" || m === "autoConverge");
                      if (!(got instanceof UnsupportedOperationError || (soft && isPlan(got)))) {
                        fail(`planMigration ${label()}: needs undeclared ${missing.join(", ")}, expected UnsupportedOperationError, got ${isPlan(got) ? got.flags.join("|") : describeError(got)}`);
                      }
                      continue;
                    }
                    if (!isPlan(got)) fail(`planMigration ${label()} threw ${describeError(got)}`);
                    if (JSON.stringify(ctx.driver.planMigration(p, facts)) !== JSON.stringify(got)) {
                      fail(`planMigration ${label()} is not deterministic`);
                    }
                    if (got.scheme !== "libvirt") continue;
                    const want = novaBitmask(p, facts);
                    if (got.bitmask !== want) fail(`bitmask for ${label()}: expected ${want}, got ${got.bitmask} (${got.flags.join("|")})`);
                  }
}

/**
 * The numeric fields: bandwidth in MiB/s as given (0 = unlimited), the downtime in ms, and the
 * live switch, each reaching the plan (scheme `libvirt`: params `bandwidth`, `max_downtime_ms`,
 * no LIVE bit for a non-live policy); a negative or fractional-connection policy is refused.
 */
export async function checkPlanFields(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  const facts: MigrationHostFacts = { virtType: "kvm", postCopySupported: false };
  const base = d.planMigration(DEFAULT_MIGRATION_POLICY, facts);
  for (const [field, value] of [
    ["bandwidthMiBps", 250],
    ["bandwidthMiBps", 0],
    ["maxDowntimeMs", 1234],
  ] as const) {
    ctx.step(`planMigration with ${field} ${value}`);
    const p = { ...DEFAULT_MIGRATION_POLICY, [field]: value };
    const got = d.planMigration(p, facts);
    if (got.scheme === "libvirt") {
      const param = field === "bandwidthMiBps" ? "bandwidth" : "max_downtime_ms";
      checkEqual(got.params[param], value, `plan parameter ${param} for ${field} ${value} (${field === "bandwidthMiBps" ? "MiB/s" : "ms"})`);
      checkEqual(got.bitmask, base.bitmask, `bitmask with ${field} ${value} (a number changes no flag)`);
    } else if (value !== 0) {
      check(JSON.stringify(got.params) !== JSON.stringify(base.params), `${field} ${value} does not reach the plan's parameters`);
    }
  }
  ctx.step("planMigration non-live");
  const nonLive = d.planMigration({ ...DEFAULT_MIGRATION_POLICY, live: false }, facts);
  if (nonLive.scheme === "libvirt") {
    check(((nonLive.bitmask ?? 0) & VIR_MIGRATE.LIVE) === 0, `a non-live policy still has LIVE: ${nonLive.flags.join("|")}`);
    check(!nonLive.flags.includes("LIVE"), "a non-live policy still names the LIVE flag");
  } else {
    check(JSON.stringify(nonLive) !== JSON.stringify(base), "a non-live policy plans the same as a live one");
  }
  for (const [field, value] of [
    ["bandwidthMiBps", -1],
    ["maxDowntimeMs", -5],
    ["parallelConnections", 0],
    ["parallelConnections", 1.5],
  ] as const) {
    ctx.step(`planMigration with ${field} ${value}`);
    const got = plan(ctx, { ...DEFAULT_MIGRATION_POLICY, [field]: value }, facts);
    check(got instanceof InvalidInputError, `planMigration with ${field} ${value} must be refused with InvalidInputError, got ${isPlan(got) ? "a plan" : describeError(got)}`);
  }
}

/**
 * With no migration running, abort (and force complete, where declared) rejects with
 * InvalidStateError itself and changes nothing: the instance still runs, and a migration started
 * afterwards is not cut short by a stale abort. An instance the host does not have is
 * InstanceNotFoundError. One host is enough.
 */
export async function checkAbortWithoutMigration(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  const inst = await ctx.spawn();
  ctx.step("liveMigrationAbort with no migration running");
  await expectRejects(ctx, d.liveMigrationAbort(inst, ctx.opts()), ["VIRTKIT_INVALID_STATE"], "liveMigrationAbort with no migration running");
  if (d.capabilities.forceCompleteMigration) {
    ctx.step("liveMigrationForceComplete with no migration running");
    await expectRejects(
      ctx,
      d.liveMigrationForceComplete(inst, ctx.opts()),
      ["VIRTKIT_INVALID_STATE"],
      "liveMigrationForceComplete with no migration running",
    );
  }
  await expectState(ctx, inst, PowerState.RUNNING, "liveMigrationAbort with no migration running");
  ctx.step("liveMigrationAbort of an instance the host does not have");
  const stranger = ctx.newInstance();
  await expectRejects(
    ctx,
    d.liveMigrationAbort(stranger, ctx.opts()),
    ["VIRTKIT_INSTANCE_NOT_FOUND"],
    "liveMigrationAbort of an instance the host does not have",
  );
  // A move started after the refused abort is not cut short by it (an abort remembered for later).
  // Only where a move can happen at all (hostPair would otherwise skip what already passed).
  if (ctx.env.hosts.length < 2 || typeof ctx.env.sharesStorage !== "function") return;
  const pair = await hostPair(ctx, "any");
  ctx.step("a migration after the refused aborts");
  await move(ctx, pair, inst);
  await expectState(ctx, inst, PowerState.RUNNING, "a migration after the refused aborts (on the destination)", pair.dst);
}

/**
 * Every step of Nova's sequence takes the caller's signal: each one called with an already aborted
 * signal rejects with OperationAbortedError itself and does nothing (the same step then works, and
 * the move completes), on both hosts. A step that ignores it lets a cancelled request go on
 * reserving the destination or moving the guest.
 */
export async function checkMigrationStepsAborted(ctx: ScenarioContext): Promise<void> {
  const pair = await hostPair(ctx, "any");
  const inst = await ctx.spawn();
  const policy = policyFor(pair);
  const aborted = new AbortController();
  aborted.abort(new Error("cancelled by the kit"));
  const cancelled = { signal: aborted.signal };
  const refused = async (what: string, call: () => Promise<unknown>, codes: readonly VirtkitErrorCode[] = [OperationAbortedError.CODE]) => {
    ctx.step(`${what} with an already aborted signal`);
    await expectRejects(ctx, call(), codes, `${what} with an already aborted signal`);
  };
  /** After each refused step, not only the last: a step that acts and then rejects shows here. */
  const unmoved = async (what: string) => {
    // The destination first: a move that went on shows there, where the source would only say "not found".
    await expectGone(ctx, inst, `${what} refused for its aborted signal (not on the destination)`, pair.dst);
    await expectState(ctx, inst, PowerState.RUNNING, `${what} refused for its aborted signal (on the source)`);
  };
  const srcInfo = await pair.src.getHostInfo(ctx.opts());
  await refused("checkCanLiveMigrateDestination", () => pair.dst.checkCanLiveMigrateDestination(inst, srcInfo, policy, cancelled));
  await unmoved("checkCanLiveMigrateDestination");
  ctx.step("checkCanLiveMigrateDestination");
  let data = overTheWire(await pair.dst.checkCanLiveMigrateDestination(inst, srcInfo, policy, ctx.opts()), "checkCanLiveMigrateDestination");
  const checked = data;
  await refused("checkCanLiveMigrateSource", () => pair.src.checkCanLiveMigrateSource(inst, checked, cancelled));
  await unmoved("checkCanLiveMigrateSource");
  if (pair.dst.cleanupLiveMigrationDestinationCheck) {
    await refused("cleanupLiveMigrationDestinationCheck", () => pair.dst.cleanupLiveMigrationDestinationCheck!(inst, checked, cancelled));
  }
  ctx.step("checkCanLiveMigrateSource");
  data = overTheWire(await pair.src.checkCanLiveMigrateSource(inst, data, ctx.opts()), "checkCanLiveMigrateSource");
  const sourceChecked = data;
  await refused("preLiveMigration", () => pair.dst.preLiveMigration(inst, sourceChecked, {}, cancelled));
  await unmoved("preLiveMigration");
  ctx.step("preLiveMigration");
  data = overTheWire(await pair.dst.preLiveMigration(inst, data, {}, ctx.opts()), "preLiveMigration");
  const prepared = data;
  // The contract's liveMigration rejects with LiveMigrationFailedError when aborted; the caller's
  // own signal may also be OperationAbortedError (migration.caller-cancels takes both too).
  await refused("liveMigration", () => pair.src.liveMigration(inst, prepared, cancelled), [OperationAbortedError.CODE, "VIRTKIT_LIVE_MIGRATION_FAILED"]);
  await unmoved("liveMigration");
  await refused("rollbackLiveMigrationAtDestination", () => pair.dst.rollbackLiveMigrationAtDestination(inst, prepared, {}, cancelled));
  ctx.step("liveMigration");
  await pair.src.liveMigration(inst, prepared, ctx.opts());
  await refused("postLiveMigrationAtDestination", () => pair.dst.postLiveMigrationAtDestination(inst, prepared, {}, cancelled));
  ctx.step("postLiveMigrationAtDestination");
  await pair.dst.postLiveMigrationAtDestination(inst, prepared, {}, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "the move after the refused steps (on the destination)", pair.dst);
  await expectGone(ctx, inst, "the move after the refused steps (the source)");
}

/**
 * Every migration step whose deadline passes on a slowed hypervisor rejects with
 * `OperationTimeoutError` (a step answered at once, from what the driver holds, needs none;
 * `liveMigration` may say `LiveMigrationFailedError` as for an abort) and does nothing, checked
 * after a wait in which a late completion would show: the instance runs on the source and the
 * destination has none. Each step then works with no deadline and the move completes (a timed-out
 * preparation left nothing in the way).
 */
export async function checkMigrationStepsTimedOut(ctx: ScenarioContext): Promise<void> {
  const setLatency = ctx.env.hypervisorControls?.setLatency?.bind(ctx.env.hypervisorControls);
  if (!setLatency) skipForEnvironment("the environment cannot slow its hypervisor (no hypervisorControls.setLatency)");
  const pair = await hostPair(ctx, "any");
  const inst = await ctx.spawn();
  const policy = policyFor(pair);
  const srcInfo = await pair.src.getHostInfo(ctx.opts());
  const short = { signal: ctx.signal, timeoutMs: TIMEOUT_MS };
  /** `call` on the slowed hypervisor; then the latency is restored and a late completion given time to show. */
  const timedOut = async (what: string, call: () => Promise<unknown>): Promise<void> => {
    ctx.step(`${what} with a ${TIMEOUT_MS} ms deadline on a hypervisor slowed by ${LATENCY_MS} ms`);
    await setLatency(LATENCY_MS);
    try {
      await expectTimeoutUnlessQuick(ctx, call, { quickMs: LATENCY_MS / 2, deadlineMs: TIMEOUT_MS, what: `${what} with a ${TIMEOUT_MS} ms deadline`, attempts: 3 });
    } finally {
      await setLatency(0);
    }
    await settle(LATE_WAIT_MS);
  };
  await timedOut("checkCanLiveMigrateDestination", () => pair.dst.checkCanLiveMigrateDestination(inst, srcInfo, policy, short));
  ctx.step("checkCanLiveMigrateDestination");
  const checked = overTheWire(await pair.dst.checkCanLiveMigrateDestination(inst, srcInfo, policy, ctx.opts()), "checkCanLiveMigrateDestination");
  await timedOut("checkCanLiveMigrateSource", () => pair.src.checkCanLiveMigrateSource(inst, checked, short));
  ctx.step("checkCanLiveMigrateSource");
  const sourceChecked = overTheWire(await pair.src.checkCanLiveMigrateSource(inst, checked, ctx.opts()), "checkCanLiveMigrateSource");
  await timedOut("preLiveMigration", () => pair.dst.preLiveMigration(inst, sourceChecked, {}, short));
  await expectGone(ctx, inst, "a preLiveMigration past its deadline (nothing on the destination)", pair.dst);
  ctx.step("preLiveMigration");
  const prepared = overTheWire(await pair.dst.preLiveMigration(inst, sourceChecked, {}, ctx.opts()), "preLiveMigration");
  // No quick answer can be right here: moving a guest takes the hypervisor.
  ctx.step(`liveMigration with a ${TIMEOUT_MS} ms deadline on a hypervisor slowed by ${LATENCY_MS} ms`);
  await setLatency(LATENCY_MS);
  try {
    await expectRejects(ctx, pair.src.liveMigration(inst, prepared, short), [OperationTimeoutError.CODE, LiveMigrationFailedError.CODE], `liveMigration with a ${TIMEOUT_MS} ms deadline`);
  } finally {
    await setLatency(0);
  }
  ctx.step("wait for a late completion");
  await settle(LATE_WAIT_MS);
  // The destination first: a move that went on shows there, where the source would only say "not found".
  await expectGone(ctx, inst, "a liveMigration past its deadline (not on the destination)", pair.dst);
  await expectState(ctx, inst, PowerState.RUNNING, "a liveMigration past its deadline (still on the source)");
  ctx.step("liveMigration");
  await pair.src.liveMigration(inst, prepared, ctx.opts());
  ctx.step("postLiveMigrationAtDestination");
  await pair.dst.postLiveMigrationAtDestination(inst, prepared, {}, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "the move after the timed-out steps (on the destination)", pair.dst);
  await expectGone(ctx, inst, "the move after the timed-out steps (the source)");
}
