/**
 * Every state x every operation, generated from the kit's expected table
 * (`expected-transitions.ts`): one scenario per cell, `state.<state>.<operation>`. Each brings a
 * fresh instance into the state through the contract only, applies the operation once, and checks
 * the outcome in every view: getInfo, instanceExists, both lists, the lifecycle events the
 * operation announced (exactly, in order, once, right instance and host) when the driver declares
 * them, and rescue mode where it matters. A refusal must be the typed error itself (not a cause)
 * and leave everything as it was; an `InvalidStateError` names the instance refused (its uuid) and
 * says which operation and state (non-empty: the fields a service shows or logs).
 */
import {
  InstanceNotFoundError,
  InvalidStateError,
  PowerState,
  Secret,
  TaskState,
  VmState,
  type Capability,
  type Instance,
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
  skipForEnvironment,
  stateName,
} from "../assertions.js";
import {
  ENVIRONMENT_STATES,
  OPERATION_CAPABILITY,
  REACHABLE_STATES,
  WITH_SNAPSHOT_CELLS,
  MATRIX_OPERATIONS,
  STATE_CAPABILITY,
  STATE_POWER,
  describeOutcome,
  expectedCell,
  revertCapturedState,
  type ExpectedCell,
  type MatrixOperation,
  type MatrixState,
  type Outcome,
  type StateOutcome,
} from "../expected-transitions.js";
import type { ScenarioContext, ScenarioDefinition } from "../scenario.js";
import { trackedPassword } from "./depth-support.js";
import { EventLog, expectEvents, names, showSeq } from "./event-log.js";

const power = (state: MatrixState): PowerState => PowerState[STATE_POWER[state]];

/** One contract call of the preparation. */
interface PrepStep {
  readonly what: string;
  readonly capability: Capability | null;
  /** The state it leaves the instance in. */
  readonly after: MatrixState;
  /** How many lifecycle events it announces (what the MUST cells from RUNNING require). */
  readonly events: number;
  run(inst: Instance): Promise<void>;
}

/** What the preparation leaves for the operation. */
interface Prepared {
  /** The instance snapshot `instance-snapshot-revert` reverts to. */
  snapshotId?: string;
  /** The instance snapshots taken first in a `.with-snapshots` cell (they must outlive the operation). */
  present: string[];
}

/** Why a CRASHED cell cannot run here, or undefined. */
function crashLimit(env: ScenarioContext["env"]): string | undefined {
  return env.guestControls?.crash ? undefined : "the environment cannot crash a guest (no guestControls.crash)";
}

/** The contract calls that take a spawned (RUNNING) instance into `from`, for `op`. */
function preparation(
  ctx: ScenarioContext,
  from: MatrixState,
  op: MatrixOperation,
  prepared: Prepared,
  withSnapshots = false,
): PrepStep[] {
  const d = ctx.driver;
  const steps: PrepStep[] = [];
  if (withSnapshots) {
    for (const n of [1, 2]) {
      steps.push({
        what: `createInstanceSnapshot #${n} (present during the operation)`,
        capability: "instanceSnapshots",
        after: "RUNNING",
        events: 0,
        async run(inst) {
          prepared.present.push((await d.createInstanceSnapshot(inst, `${ctx.prefix}-present-${n}`, ctx.opts())).id);
        },
      });
    }
  }
  const takeSnapshot = (state: MatrixState): PrepStep => ({
    what: `createInstanceSnapshot (${state}, for the revert)`,
    capability: "instanceSnapshots",
    after: state,
    events: 0,
    async run(inst) {
      prepared.snapshotId = (await d.createInstanceSnapshot(inst, `${ctx.prefix}-captured`, ctx.opts())).id;
    },
  });
  const powerOff: PrepStep = {
    what: "power off",
    capability: null,
    after: "SHUTDOWN",
    events: 1,
    run: (inst) => d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 })),
  };
  if (op === "instance-snapshot-revert") {
    if (revertCapturedState(from) === "SHUTDOWN") {
      // RUNNING is the cell's state: capture SHUTDOWN, then come back.
      steps.push(powerOff, takeSnapshot("SHUTDOWN"), {
        what: "power on",
        capability: null,
        after: "RUNNING",
        events: 1,
        run: (inst) => d.powerOn(inst, ctx.opts()),
      });
      return steps;
    }
    steps.push(takeSnapshot("RUNNING"));
  }
  switch (from) {
    case "PAUSED":
      steps.push({
        what: "pause",
        capability: "pause",
        after: "PAUSED",
        events: 1,
        run: (inst) => d.pause(inst, ctx.opts()),
      });
      break;
    case "SUSPENDED":
      steps.push({
        what: "suspend",
        capability: "suspend",
        after: "SUSPENDED",
        events: 1,
        run: (inst) => d.suspend(inst, ctx.opts()),
      });
      break;
    case "SHUTDOWN":
      steps.push(powerOff);
      break;
    case "RESCUED":
      steps.push({
        what: "rescue",
        capability: "rescue",
        after: "RESCUED",
        events: 2,
        run: (inst) => d.rescue(inst, inst.imageMeta, ctx.opts()),
      });
      break;
    case "CRASHED":
      steps.push({
        what: "crash the guest (environment)",
        capability: null,
        after: "CRASHED",
        events: 1,
        async run(inst) {
          const controls = ctx.env.guestControls;
          // Also reached by the refusal path of an undeclared operation, where `needs` is not consulted.
          if (!controls?.crash) skipForEnvironment(crashLimit(ctx.env)!);
          await controls.crash(inst);
        },
      });
      break;
    case "RUNNING":
      break;
  }
  return steps;
}

/** A check that runs after the operation succeeded (its own effect besides the state). */
type PostCheck = () => Promise<void>;

/** Applies `op` once; returns the operation-specific check for a success. */
async function perform(
  ctx: ScenarioContext,
  from: MatrixState,
  op: MatrixOperation,
  inst: Instance,
  prepared: Prepared,
  mustRefuse = false,
): Promise<PostCheck | undefined> {
  const d = ctx.driver;
  switch (op) {
    case "reboot-soft":
      return void (await d.reboot(inst, "SOFT", ctx.opts()));
    case "reboot-hard":
      return void (await d.reboot(inst, "HARD", ctx.opts()));
    case "power-off":
      return void (await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 })));
    case "power-on":
      return void (await d.powerOn(inst, ctx.opts()));
    case "pause":
      return void (await d.pause(inst, ctx.opts()));
    case "unpause":
      return void (await d.unpause(inst, ctx.opts()));
    case "suspend":
      return void (await d.suspend(inst, ctx.opts()));
    case "resume":
      return void (await d.resume(inst, ctx.opts()));
    case "rescue":
      // Where rescue must be refused it gets a password all the same (Nova always passes one):
      // the refusal must not carry it.
      return void (await d.rescue(inst, inst.imageMeta, ctx.opts(mustRefuse ? { rescuePassword: trackedPassword(ctx, "rescue-refused") } : {})));
    case "unrescue":
      return void (await d.unrescue(inst, ctx.opts()));
    case "destroy":
      return void (await d.destroy(inst, ctx.opts()));
    case "image-snapshot": {
      const image = await ctx.env.imageService.create({ name: `${ctx.prefix}-cell`, status: "queued" });
      ctx.trackImage(image.id);
      await d.snapshot(inst, image.id, ctx.opts());
      return async () => {
        const got = await ctx.env.imageService.get(image.id);
        checkEqual(got.status, "active", "the snapshot image's status");
      };
    }
    case "instance-snapshot-create": {
      const snap = await d.createInstanceSnapshot(inst, `${ctx.prefix}-cell`, ctx.opts());
      return async () => {
        checkEqual(snap.instanceUuid, inst.uuid, "the snapshot's instanceUuid");
        checkEqual(snap.powerState, power(from), `the snapshot's powerState (taken while ${from})`);
        const listed = await d.listInstanceSnapshots(inst, ctx.opts());
        check(
          listed.some((s) => s.id === snap.id),
          "listInstanceSnapshots does not contain the new snapshot",
        );
      };
    }
    case "instance-snapshot-revert":
      if (prepared.snapshotId === undefined) fail("kit error: no snapshot to revert to");
      return void (await d.revertToInstanceSnapshot(inst, prepared.snapshotId, ctx.opts()));
    case "set-admin-password": {
      const pw = new Secret(`Vk-cell-${Math.random().toString(36).slice(2, 10)}!`);
      ctx.trackSecret(pw);
      return void (await d.setAdminPassword(inst, pw, ctx.opts()));
    }
  }
}

/**
 * Rescue mode is visible only through unrescue: it must succeed on a rescued instance (the probe
 * ends the scenario, so its own events are not judged) and be refused on one that left rescue.
 */
async function probeRescue(ctx: ScenarioContext, inst: Instance, rescued: boolean, after: string): Promise<void> {
  if (rescued) {
    ctx.step(`unrescue (probe: still in rescue mode after ${after})`);
    try {
      await ctx.driver.unrescue(inst, ctx.opts());
    } catch (err) {
      ctx.recordError(err);
      fail(`after ${after}: the instance should still be in rescue mode, but unrescue failed: ${describeError(err)}`);
    }
    await expectState(ctx, inst, PowerState.RUNNING, `the probing unrescue after ${after}`);
  } else {
    ctx.step(`unrescue (probe: rescue mode left after ${after})`);
    await expectRejects(
      ctx,
      ctx.driver.unrescue(inst, ctx.opts()),
      ["VIRTKIT_INVALID_STATE"],
      `unrescue after ${after} (the instance should have left rescue mode)`,
    );
  }
}

/**
 * After an operation the table lets keep or leave rescue mode (a rescued instance paused,
 * suspended, powered off or reverted): unrescue either goes through, and then a second one is
 * refused (rescue mode is over), or is refused typed with the state unchanged, the refusal naming
 * the instance, the operation and the state like every other.
 */
async function probeRescueEither(ctx: ScenarioContext, inst: Instance, state: PowerState, after: string): Promise<void> {
  const what = `unrescue after ${after}`;
  ctx.step(`${what} (probe: either mode)`);
  try {
    await ctx.driver.unrescue(inst, ctx.opts());
  } catch (err) {
    ctx.recordError(err);
    if (!(err instanceof InvalidStateError)) fail(`${what}: expected success or InvalidStateError, got ${describeError(err)}`);
    checkRefusalFields(err, inst, what);
    await expectState(ctx, inst, state, `the refused ${what}`);
    return;
  }
  // Unrescue boots the instance's own system, whatever state rescue mode was in (the table's unrescue row).
  await expectState(ctx, inst, PowerState.RUNNING, what);
  await expectRejects(ctx, ctx.driver.unrescue(inst, ctx.opts()), ["VIRTKIT_INVALID_STATE"], `a second ${what} (rescue mode should be over)`);
}

const describeCell = (cell: ExpectedCell) => cell.outcomes.map(describeOutcome).join(" or ");

/**
 * With snapshots present: after an operation that kept the instance, both snapshots are still
 * listed; after one that removed it, none is reachable and the environment finds nothing left,
 * checked before the kit's cleanup (which deletes snapshots first) could do the driver's work.
 */
async function checkPresentSnapshots(
  ctx: ScenarioContext,
  inst: Instance,
  prepared: Prepared,
  gone: boolean,
  after: string,
): Promise<void> {
  if (prepared.present.length === 0) return;
  ctx.step(`instance snapshots after ${after}`);
  if (!gone) {
    const listed = (await ctx.driver.listInstanceSnapshots(inst, ctx.opts())).map((s) => s.id);
    for (const id of prepared.present) {
      check(listed.includes(id), `after ${after}: the instance snapshot ${id} taken before is no longer listed`);
    }
    return;
  }
  try {
    const listed = await ctx.driver.listInstanceSnapshots(inst, ctx.opts());
    check(listed.length === 0, `after ${after}: the destroyed instance still lists ${listed.length} snapshot(s)`);
  } catch (err) {
    ctx.recordError(err);
    check(
      err instanceof InstanceNotFoundError,
      `after ${after}: listInstanceSnapshots of the destroyed instance failed with ${describeError(err)}, expected InstanceNotFoundError or an empty list`,
    );
  }
  const left = (await ctx.env.leftovers?.()) ?? [];
  check(left.length === 0, `after ${after}, before any cleanup: the environment still finds ${left.join("; ")}`);
}

/**
 * The context fields of an InvalidStateError: the refused instance's uuid (not its name or the
 * hypervisor's own id), and an operation and a state that say something.
 */
function checkRefusalFields(err: InvalidStateError, inst: Instance, label: string, from?: MatrixState): void {
  check(
    err.instanceId === inst.uuid,
    `${label}: the InvalidStateError names instance ${JSON.stringify(err.instanceId)}, expected its uuid ${inst.uuid}`,
  );
  for (const field of ["operation", "state"] as const) {
    const v: unknown = err[field];
    check(typeof v === "string" && v.trim().length > 0, `${label}: the InvalidStateError's ${field} is ${JSON.stringify(v)}, expected a non-empty text`);
  }
  if (from === undefined) return;
  // core's doc comment: `state` is the power state name the instance was in (e.g. SHUTDOWN), or the
  // vm or task state that forbids the operation; a detail may follow it ("RUNNING (no migration running)").
  const names = [STATE_POWER[from], from, VM_STATE_OF[from], ...Object.values(TaskState)].map((n) => n.toUpperCase());
  const said = err.state.trim().toUpperCase();
  check(
    names.some((n) => said === n || said.startsWith(`${n} `)),
    `${label}: the InvalidStateError's state is ${JSON.stringify(err.state)}; expected the power state the instance was in (${STATE_POWER[from]}), its vm state (${VM_STATE_OF[from]}${from !== STATE_POWER[from] ? ` or ${from}` : ""}) or the task state that forbids the operation`,
  );
}

/** Nova's vm state of an instance in each matrix state. */
const VM_STATE_OF: Readonly<Record<MatrixState, VmState>> = {
  RUNNING: VmState.ACTIVE,
  PAUSED: VmState.PAUSED,
  SUSPENDED: VmState.SUSPENDED,
  SHUTDOWN: VmState.STOPPED,
  CRASHED: VmState.ERROR,
  RESCUED: VmState.RESCUED,
};

/** The body of one cell when every capability it needs is declared. */
function runCell(
  from: MatrixState,
  op: MatrixOperation,
  withSnapshots = false,
): (ctx: ScenarioContext) => Promise<void> {
  const cell = expectedCell(from, op);
  const label = `${op} of a ${from} instance${withSnapshots ? " with instance snapshots" : ""}`;
  return async (ctx) => {
    const log = new EventLog(ctx);
    try {
      const prepared: Prepared = { present: [] };
      const inst = await ctx.spawn();
      let due = 1; // STARTED for the spawn
      for (const step of preparation(ctx, from, op, prepared, withSnapshots)) {
        ctx.step(`prepare: ${step.what}`);
        await step.run(inst);
        await expectState(ctx, inst, power(step.after), `the preparation's ${step.what}`);
        due += step.events;
      }
      if (log.enabled && !(await log.waitForCount(inst.uuid, 0, due))) {
        fail(
          `the preparation announced ${showSeq(names(log.of(inst.uuid, 0)))}, fewer than the ${due} transitions it made (spawn and ${from})`,
        );
      }
      const mark = log.mark;

      ctx.step(label);
      let postCheck: PostCheck | undefined;
      let error: unknown;
      let failed = false;
      try {
        postCheck = await perform(ctx, from, op, inst, prepared, cell.outcomes.every((o) => o.kind === "refused"));
      } catch (err) {
        failed = true;
        error = err;
        ctx.recordError(err);
      }

      if (failed) {
        // Only the error thrown counts (instanceof checks the error's own brand, never a cause).
        const refusal = cell.outcomes.find((o) => o.kind === "refused" && o.errors.some((cls) => error instanceof cls));
        if (!refusal) fail(`${label}: expected ${describeCell(cell)}, got ${describeError(error)}`);
        if (error instanceof InvalidStateError) checkRefusalFields(error, inst, label, from);
        await expectState(ctx, inst, power(from), `the refused ${label}`);
        await expectEvents(ctx, log, inst, mark, [[]], `the refused ${label}`);
        await checkPresentSnapshots(ctx, inst, prepared, false, `the refused ${label}`);
        if (from === "RESCUED") await probeRescue(ctx, inst, true, `the refused ${label}`);
        return;
      }

      const accepted = cell.outcomes.filter((o): o is Exclude<Outcome, { kind: "refused" }> => o.kind !== "refused");
      if (accepted.length === 0) {
        fail(`${label}: expected ${describeCell(cell)}, but it succeeded (${await describeNow(ctx, inst)})`);
      }
      const goneOutcome = accepted.find((o) => o.kind === "gone");
      if (goneOutcome) {
        await expectGone(ctx, inst, label);
        await expectEvents(ctx, log, inst, mark, goneOutcome.events, label);
        await checkPresentSnapshots(ctx, inst, prepared, true, label);
        // Gone for the environment too (disks, rescue images, saved state), before any cleanup of the kit's.
        const left = ((await ctx.env.leftovers?.()) ?? []).filter((l) => l.includes(inst.uuid));
        check(left.length === 0, `after ${label}, before any cleanup: the environment still finds ${left.join("; ")}`);
        return;
      }
      ctx.step(`views after ${label}`);
      const info = await ctx.driver.getInfo(inst, ctx.opts());
      const matching = accepted.filter((o): o is StateOutcome => o.kind === "state" && power(o.state) === info.state);
      const first = matching[0];
      if (!first) {
        fail(
          `after ${label}: getInfo says ${stateName(info.state)}, expected ${accepted.map(describeOutcome).join(" or ")}`,
        );
      }
      await expectState(ctx, inst, info.state, label);
      if (postCheck) {
        ctx.step(`effects of ${label}`);
        await postCheck();
      }
      await expectEvents(
        ctx,
        log,
        inst,
        mark,
        matching.flatMap((o) => o.events),
        label,
      );
      await checkPresentSnapshots(ctx, inst, prepared, false, label);
      if (first.rescue !== "unchecked" && (first.state === "RESCUED" || from === "RESCUED")) {
        await probeRescue(ctx, inst, first.state === "RESCUED", label);
      } else if (first.rescue === "unchecked" && from === "RESCUED") {
        await probeRescueEither(ctx, inst, info.state, label);
      }
    } finally {
      log.stop();
    }
  };
}

/** "now RUNNING" / "now gone", for the message of an operation that should have been refused. */
async function describeNow(ctx: ScenarioContext, inst: Instance): Promise<string> {
  try {
    if (!(await ctx.driver.instanceExists(inst, ctx.opts()))) return "the instance is now gone";
    return `the instance is now ${stateName((await ctx.driver.getInfo(inst, ctx.opts())).state)}`;
  } catch (err) {
    return `its state cannot be read: ${describeError(err)}`;
  }
}

/**
 * The body when a capability is not declared: the first contract call that needs an undeclared
 * capability (in the preparation, else the operation itself) must be refused with
 * `UnsupportedOperationError` and change nothing.
 */
function refuseCell(from: MatrixState, op: MatrixOperation): (ctx: ScenarioContext) => Promise<void> {
  const label = `${op} of a ${from} instance`;
  return async (ctx) => {
    const caps = ctx.driver.capabilities;
    const prepared: Prepared = { present: [] };
    const inst = await ctx.spawn();
    let current: MatrixState = "RUNNING";
    for (const step of preparation(ctx, from, op, prepared)) {
      if (step.capability !== null && !caps[step.capability]) {
        await expectUnsupported(ctx, `prepare: ${step.what}`, () => step.run(inst), step.capability);
        await expectState(ctx, inst, power(current), `the refused ${step.what}`);
        return;
      }
      ctx.step(`prepare: ${step.what}`);
      await step.run(inst);
      await expectState(ctx, inst, power(step.after), `the preparation's ${step.what}`);
      current = step.after;
    }
    await expectUnsupported(ctx, label, () => perform(ctx, from, op, inst, prepared), OPERATION_CAPABILITY[op] ?? undefined);
    await expectState(ctx, inst, power(from), `the refused ${label}`);
  };
}

/** Work of a cell in contract calls that change state: spawn, preparation, operation. */
function cellTimeoutMs(from: MatrixState, op: MatrixOperation, withSnapshots = false): number {
  const prep =
    (withSnapshots ? 2 : 0) +
    (from === "RUNNING" ? 0 : from === "RESCUED" ? 2 : 1) +
    (op === "instance-snapshot-revert" ? (from === "RUNNING" ? 3 : 1) : 0);
  // 3 s of views and cleanup margin, 1 s per state change; a soft reboot may wait for the guest first.
  return Math.min(10_000, 3_000 + 1_000 * (prep + 2) + (op === "reboot-soft" ? 5_000 : 0));
}

/**
 * The scenario of one cell; `withSnapshots` repeats it with two instance snapshots taken first
 * (`state.<state>.<op>.with-snapshots`).
 */
export function stateScenario(from: MatrixState, op: MatrixOperation, withSnapshots = false): ScenarioDefinition {
  const cell = expectedCell(from, op);
  const capability = OPERATION_CAPABILITY[op];
  const prepCaps = [
    STATE_CAPABILITY[from],
    op === "instance-snapshot-revert" || withSnapshots ? "instanceSnapshots" : null,
  ].filter((c): c is Capability => c !== null && c !== capability);
  const suffix = withSnapshots ? ".with-snapshots" : "";
  return {
    id: `state.${from.toLowerCase()}.${op}${suffix}`,
    title: `${op} from ${from}${withSnapshots ? " with instance snapshots present" : ""}: ${describeCell(cell)}${cell.silent ? " (contract silent: any of these)" : ""}`,
    group: "state",
    capability,
    ...(prepCaps.length > 0 ? { alsoNeeds: [...new Set(prepCaps)] } : {}),
    level: cell.level ?? "MUST",
    timeoutMs: cellTimeoutMs(from, op, withSnapshots),
    run: runCell(from, op, withSnapshots),
    ...(ENVIRONMENT_STATES.includes(from) ? { needs: crashLimit } : {}),
    // A soft reboot the driver does not declare may fall back to hard (the contract allows it), so
    // there is no refusal to require: reported unsupported without a check, like lifecycle.reboot-soft.
    // With snapshots, the plain cell already holds an undeclared operation to its refusal.
    ...(op === "reboot-soft" || withSnapshots ? {} : { refuse: refuseCell(from, op) }),
  };
}

/**
 * Every cell, state by state, in table order: the states the contract reaches, then those only an
 * environment control reaches (skipped where the environment lacks it), then the cells repeated
 * with instance snapshots present.
 */
export function stateMatrixScenarios(): ScenarioDefinition[] {
  const states = [...REACHABLE_STATES, ...ENVIRONMENT_STATES];
  return [
    ...states.flatMap((from) => MATRIX_OPERATIONS.map((op) => stateScenario(from, op))),
    ...WITH_SNAPSHOT_CELLS.map(([from, op]) => stateScenario(from, op, true)),
  ];
}
