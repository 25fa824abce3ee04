/**
 * Snapshot checks: image snapshots land in the environment's image service with Nova's metadata
 * (read from the service, not from the driver) and leave the power state as it was; instance
 * snapshots create, list, revert (the captured state really comes back) and delete.
 */
import { randomUUID } from "node:crypto";
import { ImageNotFoundError, InvalidStateError, PowerState, TaskState, snapshotImageMetadata, type ImageRecord, type Instance } from "@virtkit/core";
import { check, checkEqual, describeError, expectGone, expectRejects, expectState, expectUnsupported, fail, waitFor } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { hasControl, settle } from "./depth-support.js";
import { checkUploadedFormat } from "./image-format.js";
import { EventLog } from "./event-log.js";

/** Instance fields the snapshot metadata carries (kernel, ramdisk, os type). */
const SNAPSHOT_INSTANCE: Partial<Instance> = {
  kernelId: "aki-conformance-kernel",
  ramdiskId: "ari-conformance-ramdisk",
  osType: "linux",
};

async function imageSnapshot(ctx: ScenarioContext, inst: Instance, state: PowerState, label: string): Promise<void> {
  ctx.step(`create the queued image (${label})`);
  const name = `${ctx.prefix}-snap-${label}`;
  const image = await ctx.env.imageService.create({ name, status: "queued" });
  ctx.trackImage(image.id);
  const taskStates: (string | null)[] = [];
  const methods: { method: unknown; reason: unknown; afterTaskStates: number }[] = [];
  const boots = state === PowerState.RUNNING && hasControl(ctx, "bootCount") ? await ctx.env.guestControls!.bootCount!(inst) : undefined;
  ctx.step(`snapshot (${label})`);
  const events = new EventLog(ctx);
  try {
    await ctx.driver.snapshot(
      inst,
      image.id,
      ctx.opts({
        onTaskState: (ts: TaskState, _expected: TaskState | null) => void taskStates.push(ts),
        onSnapshotMethod: (method: unknown, reason: unknown) => void methods.push({ method, reason, afterTaskStates: taskStates.length }),
      }),
    );
    await expectState(ctx, inst, state, `an image snapshot of a ${label} instance`);
    checkSnapshotMethod(methods, taskStates, state, label);
    if (state === PowerState.RUNNING && methods[0]?.method === "cold") await checkColdCopyStopped(ctx, inst, events);
    if (state === PowerState.RUNNING && methods[0]?.method === "live") await checkLiveCopyKeptRunning(ctx, inst, events, boots);
  } finally {
    events.stop();
  }

  ctx.step(`read the image back (${label})`);
  const got = await ctx.env.imageService.get(image.id);
  const want = snapshotImageMetadata(inst, got.diskFormat ?? "raw", name);
  checkEqual(got.status, "active", "snapshot image status");
  checkEqual(got.name, name, "snapshot image name");
  check(got.diskFormat !== undefined, "snapshot image has no disk format");
  checkEqual(got.containerFormat, want.containerFormat, "snapshot image container format");
  checkEqual(got.owner, inst.projectId, "snapshot image owner");
  for (const [key, value] of Object.entries(want.properties ?? {})) {
    checkEqual(got.properties[key], value ?? undefined, `snapshot image property ${key}`);
  }
  check(got.size > 0, "snapshot image has no data");
  await checkUploadedFormat(ctx, inst, got, label);
  check(
    taskStates.includes(TaskState.IMAGE_PENDING_UPLOAD) && taskStates.includes(TaskState.IMAGE_UPLOADING),
    `snapshot did not report the task states image_pending_upload then image_uploading (got: ${taskStates.join(", ") || "none"})`,
  );
  checkEqual(
    taskStates.indexOf(TaskState.IMAGE_PENDING_UPLOAD) < taskStates.indexOf(TaskState.IMAGE_UPLOADING),
    true,
    "task state order (image_pending_upload before image_uploading)",
  );
}

/**
 * `onSnapshotMethod` (optional for the driver): if told at all, told once, "live" or "cold" with a
 * reason, before the upload begins; and never "live" for a guest that was not running.
 */
function checkSnapshotMethod(
  methods: readonly { method: unknown; reason: unknown; afterTaskStates: number }[],
  taskStates: readonly (string | null)[],
  state: PowerState,
  label: string,
): void {
  if (methods.length === 0) return;
  check(methods.length === 1, `the image snapshot of a ${label} instance reported its method ${methods.length} times, expected once`);
  const [{ method, reason, afterTaskStates }] = methods as [(typeof methods)[number]];
  check(method === "live" || method === "cold", `onSnapshotMethod was told ${JSON.stringify(method)}, expected "live" or "cold"`);
  check(typeof reason === "string" && reason.trim().length > 0, `onSnapshotMethod was told no reason for "${String(method)}"`);
  const uploading = taskStates.indexOf(TaskState.IMAGE_UPLOADING);
  check(uploading < 0 || afterTaskStates <= uploading, `onSnapshotMethod was told "${String(method)}" after the upload began (image_uploading)`);
  check(
    !(method === "live" && state !== PowerState.RUNNING),
    `the image snapshot of a ${label} instance says "live" (the guest kept running), but the guest was not running`,
  );
}

/**
 * What a guest leaving RUNNING for a cold copy announces: stopped or saved. Paused is not cold: a
 * paused guest's memory still holds writes its disk has not seen.
 */
const LEFT_RUNNING: readonly string[] = ["STOPPED", "SUSPENDED"];

/**
 * "cold" for a running guest means it was stopped or saved for the copy (the contract's
 * `ImageSnapshotMethod`): where the driver announces lifecycle events, the guest's leaving RUNNING
 * during the call must show. A driver that copies a running disk and calls it cold would have the
 * caller trust a crash-consistent image as a quiescent one.
 */
async function checkColdCopyStopped(ctx: ScenarioContext, inst: Instance, events: EventLog): Promise<void> {
  if (!events.enabled) return;
  const left = () => events.of(inst.uuid, 0).some((e) => LEFT_RUNNING.includes(e.transition));
  check(
    await waitFor(left, 500, ctx.signal),
    `the image snapshot of a running instance said "cold" (stopped or saved for the copy), but no ${LEFT_RUNNING.join(" or ")} event came during it: the guest never left RUNNING`,
  );
}

/**
 * "live" means the guest kept running while its disk was copied, no downtime (the contract's
 * `ImageSnapshotMethod`): no event of it leaving RUNNING (stopped, saved, paused) or starting again
 * during the call, and where the environment counts boots, no boot. A driver that pauses or saves
 * the guest and calls it live has the caller promise its users a snapshot without downtime.
 */
async function checkLiveCopyKeptRunning(ctx: ScenarioContext, inst: Instance, events: EventLog, boots: number | undefined): Promise<void> {
  if (events.enabled) {
    // Events lag their cause: what the call did shows within a moment.
    await settle(200);
    const broke = events.of(inst.uuid, 0).filter((e) => LIVE_BREAKS.includes(e.transition));
    check(
      broke.length === 0,
      `the image snapshot of a running instance said "live" (no downtime), but the guest announced [${broke.map((e) => e.transition).join(", ")}] during it`,
    );
  }
  if (boots !== undefined) {
    const after = await ctx.env.guestControls!.bootCount!(inst);
    check(after === boots, `the image snapshot of a running instance said "live", but the guest booted during it (boot count ${boots} before, ${after} after)`);
  }
}

/** What a guest that kept running never announces. */
const LIVE_BREAKS: readonly string[] = ["STOPPED", "SUSPENDED", "PAUSED", "STARTED", "RESUMED"];

/** Image snapshot of a running instance. */
export async function checkImageSnapshotRunning(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn(SNAPSHOT_INSTANCE);
  await imageSnapshot(ctx, inst, PowerState.RUNNING, "running");
}

/** Image snapshot of a stopped instance. */
export async function checkImageSnapshotStopped(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn(SNAPSHOT_INSTANCE);
  ctx.step("power off");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await expectState(ctx, inst, PowerState.SHUTDOWN, "power off");
  await imageSnapshot(ctx, inst, PowerState.SHUTDOWN, "stopped");
}

/** The deadline of the stalled snapshot, and how long its callback holds at most. */
const STALLED_TIMEOUT_MS = 300;
const STALL_MS = 3000;

/**
 * The call's `timeoutMs` bounds all of it, the caller's own task-state callback included: a callback
 * that does not return (Nova's `update_task_state` is a database write, which can hang) must not
 * hold the call past its deadline. The snapshot rejects with OperationTimeoutError by then; once the
 * callback returns, the instance is RUNNING as before.
 */
export async function checkImageSnapshotCallbackStalls(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn(SNAPSHOT_INSTANCE);
  const image = await ctx.env.imageService.create({ name: `${ctx.prefix}-stalled`, status: "queued" });
  ctx.trackImage(image.id);
  let release = (): void => {};
  // Returns by itself after STALL_MS, so a driver that waits for it ends too (and is then told apart by the time).
  const stalled = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, STALL_MS);
    release = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  let calls = 0;
  ctx.step(`snapshot with timeoutMs ${STALLED_TIMEOUT_MS}, the first task-state callback not returning`);
  const t0 = performance.now();
  try {
    await expectRejects(
      ctx,
      ctx.driver.snapshot(
        inst,
        image.id,
        ctx.opts({
          timeoutMs: STALLED_TIMEOUT_MS,
          onTaskState: () => (++calls === 1 ? stalled : undefined),
        }),
      ),
      ["VIRTKIT_OPERATION_TIMEOUT"],
      "an image snapshot whose task-state callback did not return",
    );
  } finally {
    release();
  }
  const elapsed = performance.now() - t0;
  check(
    elapsed < STALLED_TIMEOUT_MS + 1500,
    `the ${STALLED_TIMEOUT_MS} ms deadline ended the snapshot only after ${Math.round(elapsed)} ms (task-state callbacks: ${calls}, the first held up to ${STALL_MS} ms)`,
  );
  // A driver that saved the guest before its first report (Nova's cold path) restores it after the
  // callback returns: give that restart up to 10 s, then the instance must be RUNNING. The first
  // 200 ms always pass, so a driver that carries on after its deadline has time to show it.
  await settle(200);
  await waitFor(async () => (await ctx.driver.getInfo(inst, ctx.opts())).state === PowerState.RUNNING, 10_000);
  await expectState(ctx, inst, PowerState.RUNNING, "the image snapshot cut short by its deadline (10 s after it)");
  await checkImageSnapshotCallbackRejects(ctx, inst);
}

/**
 * The caller's compare-and-set failing ends the snapshot: the call rejects with the callback's error
 * (or one caused by it), the image does not become active, the guest runs. Checked as a rejection at
 * image_uploading (Nova's update_task_state raising when the instance was deleted meanwhile) and as
 * a synchronous throw at the first task state (a plain function, as most callers write one: the
 * contract says "throws or rejects"; a driver that only catches rejections lets the snapshot go on).
 */
async function checkImageSnapshotCallbackRejects(ctx: ScenarioContext, inst: Instance): Promise<void> {
  await snapshotEndedByCallback(ctx, inst, "rejects");
  await snapshotEndedByCallback(ctx, inst, "throws");
}

async function snapshotEndedByCallback(ctx: ScenarioContext, inst: Instance, how: "rejects" | "throws"): Promise<void> {
  const did = how === "rejects" ? "rejected" : "threw";
  const image = await ctx.env.imageService.create({ name: `${ctx.prefix}-${how}-cas`, status: "queued" });
  ctx.trackImage(image.id);
  const refusal = new Error(`conformance: the caller's task-state callback ${did}`);
  // Calls of the callback after it failed: the snapshot ended there, so none (counted to the end).
  let failed = false;
  let lateReports = 0;
  const onTaskState = (ts: TaskState): Promise<void> | undefined => {
    if (failed) lateReports++;
    if (how === "throws") {
      failed = true;
      throw refusal;
    }
    if (ts !== TaskState.IMAGE_UPLOADING) return undefined;
    failed = true;
    return Promise.reject(refusal);
  };
  ctx.step(how === "rejects" ? "snapshot whose task-state callback rejects at image_uploading" : "snapshot whose task-state callback throws synchronously at its first task state");
  let outcome: "resolved" | "rejected" = "resolved";
  let caught: unknown;
  try {
    await ctx.driver.snapshot(inst, image.id, ctx.opts({ onTaskState }));
  } catch (err) {
    outcome = "rejected";
    caught = err;
    ctx.recordError(err);
  }
  // "Ends the snapshot": nothing of it reaches the image service afterwards. Where the environment
  // can hold the image service, every later update of the image is held until the driver is done
  // with the guest (RUNNING again) and 0.6 s more; one that came at all is a snapshot that went on.
  const hold = ctx.env.imageControls?.hold(image.id, ["update"]);
  let lateUpdate = false;
  void hold?.reached.then(() => (lateUpdate = true));
  let got: ImageRecord | undefined;
  try {
    check(outcome === "rejected", `an image snapshot whose task-state callback ${did} (the caller's compare-and-set failed) reported success`);
    check(causedBy(caught, refusal), `an image snapshot whose task-state callback ${did} failed with ${describeError(caught)}, not with the callback's error (or one caused by it)`);
    await settle(200);
    await waitFor(async () => (await ctx.driver.getInfo(inst, ctx.opts())).state === PowerState.RUNNING, 10_000);
    await settle(hold ? 600 : 200);
    // A driver may rightly delete the image of a failed snapshot: gone is not active.
    got = await ctx.env.imageService.get(image.id).catch((err: unknown) => {
      if (err instanceof ImageNotFoundError) return undefined;
      throw err;
    });
  } finally {
    hold?.release();
  }
  check(
    !lateUpdate,
    `an update of the snapshot's image reached the image service after the snapshot rejected (its task-state callback ${did}): the snapshot went on after the caller's compare-and-set failed`,
  );
  check(
    lateReports === 0,
    `the task-state callback was called ${lateReports} more time(s) after it ${did}; the snapshot must end there`,
  );
  check(got?.status !== "active", `the image of a snapshot whose task-state callback ${did} became active`);
  await expectState(ctx, inst, PowerState.RUNNING, `the image snapshot ended by its callback (it ${did})`);
}

/** True when `err` is `cause` or has it somewhere down its `cause` chain. */
function causedBy(err: unknown, cause: Error): boolean {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 10; depth++) {
    if (e === cause) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Undeclared image snapshots are refused as unsupported. */
export async function refuseImageSnapshot(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  const image = await ctx.env.imageService.create({ name: `${ctx.prefix}-refused`, status: "queued" });
  ctx.trackImage(image.id);
  await expectUnsupported(ctx, "snapshot", () => ctx.driver.snapshot(inst, image.id, ctx.opts()), "imageSnapshot");
  await expectState(ctx, inst, PowerState.RUNNING, "the refused snapshot");
}

/**
 * Instance snapshots: take one while running (with a marker in the guest where the environment
 * can), change power state and data, revert, and find both as captured; then delete.
 */
export async function checkInstanceSnapshots(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  const guest = ctx.env.guestControls;
  const canData = Boolean(guest?.writeData && guest.readData);
  if (canData) {
    ctx.step("write the marker before the snapshot");
    await guest!.writeData!(inst, "/conformance/marker", "before");
  }
  ctx.step("createInstanceSnapshot (running)");
  const before = Date.now();
  const snap = await ctx.driver.createInstanceSnapshot(
    inst,
    `${ctx.prefix}-s1`,
    ctx.opts({ description: "conformance" }),
  );
  checkEqual(snap.instanceUuid, inst.uuid, "snapshot instanceUuid");
  checkEqual(snap.powerState, PowerState.RUNNING, "snapshot powerState");
  checkEqual(snap.name, `${ctx.prefix}-s1`, "snapshot name");
  checkEqual(snap.description, "conformance", "snapshot description");
  await expectState(ctx, inst, PowerState.RUNNING, "createInstanceSnapshot");

  ctx.step("listInstanceSnapshots");
  const listed = await ctx.driver.listInstanceSnapshots(inst, ctx.opts());
  const found = listed.find((s) => s.id === snap.id);
  check(found !== undefined, "listInstanceSnapshots does not contain the new snapshot");
  checkEqual(found?.name, `${ctx.prefix}-s1`, "the listed snapshot's name");
  checkEqual(found?.description, "conformance", "the listed snapshot's description");
  // When it was taken, as ISO 8601 (core's doc), near the call: the hypervisor's clock stamps it, so
  // 10 minutes either way (as for events), enough for a host's clock that is off, not for seconds
  // read as milliseconds or a date of another day.
  for (const [what, s] of [["returned", snap], ["listed", found]] as const) {
    const text = s?.createdAt ?? "";
    const at = ISO_8601.test(text) ? Date.parse(text) : Number.NaN;
    check(
      Number.isFinite(at) && at >= before - 600_000 && at <= Date.now() + 600_000,
      `the ${what} snapshot's createdAt ${JSON.stringify(s?.createdAt)} is not an ISO 8601 time near the call that made it`,
    );
  }

  if (canData) {
    ctx.step("change the marker after the snapshot");
    await guest!.writeData!(inst, "/conformance/marker", "after");
  }
  ctx.step("power off after the snapshot");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await expectState(ctx, inst, PowerState.SHUTDOWN, "power off");

  ctx.step("revertToInstanceSnapshot");
  await ctx.driver.revertToInstanceSnapshot(inst, snap.id, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "revert to a snapshot taken while running");
  if (canData) {
    ctx.step("read the marker after revert");
    const marker = await guest!.readData!(inst, "/conformance/marker");
    if (marker !== "before") fail(`revert did not restore the guest's data (marker is ${JSON.stringify(marker)})`);
  }

  // Deleting removes the snapshot asked for, not whichever comes first; an unknown id removes nothing.
  ctx.step("createInstanceSnapshot (a second one)");
  const snap2 = await ctx.driver.createInstanceSnapshot(inst, `${ctx.prefix}-s2`, ctx.opts());
  checkEqual(snap2.name, `${ctx.prefix}-s2`, "the second snapshot's name");
  const both = await ctx.driver.listInstanceSnapshots(inst, ctx.opts());
  const first = both.find((s) => s.id === snap.id);
  checkEqual(first?.name, `${ctx.prefix}-s1`, "the first snapshot's name, listed beside a second one");
  checkEqual(first?.description, "conformance", "the first snapshot's description, listed beside a second one");
  // None given: the optional field is left out or is the hypervisor's own text (XAPI copies the VM's
  // description into its snapshot), never present as undefined, which a caller's
  // `{ description: fallback, ...snapshot }` would take for a description.
  const second = both.find((s) => s.id === snap2.id);
  check(second !== undefined, "listInstanceSnapshots does not contain the second snapshot");
  for (const [what, s] of [["created", snap2], ["listed", second]] as const) {
    check(
      !("description" in s) || typeof s.description === "string",
      `the second snapshot (no description given), as ${what}, has a description field that is not a string: ${String(s.description)}`,
    );
  }
  ctx.step("delete the newer snapshot");
  await ctx.driver.deleteInstanceSnapshot(inst, snap2.id, ctx.opts());
  const ids = async () => (await ctx.driver.listInstanceSnapshots(inst, ctx.opts())).map((s) => s.id).join(", ");
  checkEqual(await ids(), snap.id, "the snapshots listed after deleting the newer of two");
  ctx.step("delete a snapshot id that does not exist");
  // A well-formed id (a UUID, as XenAPI's are) that names no snapshot of this instance.
  const unknownId = randomUUID();
  const notFound = await expectRejects(
    ctx,
    ctx.driver.deleteInstanceSnapshot(inst, unknownId, ctx.opts()),
    ["VIRTKIT_SNAPSHOT_NOT_FOUND"],
    "delete of an unknown snapshot id",
  );
  // Core's SnapshotNotFoundError(instanceId, snapshotId): the id asked for, not another.
  checkEqual((notFound as { snapshotId?: unknown }).snapshotId, unknownId, "the SnapshotNotFoundError's snapshotId");
  checkEqual(await ids(), snap.id, "the snapshots listed after the refused delete of an unknown id");

  ctx.step("deleteInstanceSnapshot");
  await ctx.driver.deleteInstanceSnapshot(inst, snap.id, ctx.opts());
  const after = await ctx.driver.listInstanceSnapshots(inst, ctx.opts());
  check(!after.some((s) => s.id === snap.id), "the deleted snapshot is still listed");
  ctx.step("revert to the deleted snapshot");
  await expectRejects(
    ctx,
    ctx.driver.revertToInstanceSnapshot(inst, snap.id, ctx.opts()),
    ["VIRTKIT_SNAPSHOT_NOT_FOUND"],
    "revert to a deleted snapshot",
  );
  await expectState(ctx, inst, PowerState.RUNNING, "the refused revert");
}

/** An ISO 8601 date and time with its zone (`Z` or an offset), as `Date.prototype.toISOString` writes. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * Snapshots belong to their instance: two instances, each with one; an id of the other's is
 * `SnapshotNotFoundError` for delete and revert (nothing of either changes), each listing holds its
 * own only, a name of the full 255 characters is taken as given, every id is at most 255 characters,
 * and a listing handed out earlier is not changed by later calls (the caller owns what it got).
 */
export async function checkSnapshotsPerInstance(ctx: ScenarioContext): Promise<void> {
  const a = await ctx.spawn();
  const b = await ctx.spawn();
  const d = ctx.driver;
  const longName = `${ctx.prefix}-`.padEnd(255, "n");
  ctx.step("createInstanceSnapshot with a name of 255 characters");
  const sa = await d.createInstanceSnapshot(a, longName, ctx.opts());
  checkEqual(sa.name, longName, "the name of a snapshot named with 255 characters");
  ctx.step("createInstanceSnapshot of the other instance, with a description of 1,024 characters (the bound, taken)");
  const longDescription = "d".repeat(1024);
  const sb = await d.createInstanceSnapshot(b, `${ctx.prefix}-b`, ctx.opts({ description: longDescription }));
  checkEqual(sb.description, longDescription, "the description of a snapshot described with 1,024 characters");
  const ids = async (inst: Instance) => (await d.listInstanceSnapshots(inst, ctx.opts())).map((s) => s.id);
  const listedA = await d.listInstanceSnapshots(a, ctx.opts());
  const heldA = JSON.stringify(listedA);
  for (const s of [sa, sb, ...listedA]) {
    check(s.id.length >= 1 && s.id.length <= 255, `snapshot id ${JSON.stringify(s.id.slice(0, 80))}... is ${s.id.length} characters: at most 255`);
  }
  checkEqual((await ids(a)).join(", "), sa.id, "the snapshots listed for the first instance (its own only)");
  checkEqual((await ids(b)).join(", "), sb.id, "the snapshots listed for the second instance (its own only)");

  ctx.step("delete, on the first instance, the other instance's snapshot");
  await expectRejects(ctx, d.deleteInstanceSnapshot(a, sb.id, ctx.opts()), ["VIRTKIT_SNAPSHOT_NOT_FOUND"], "delete of another instance's snapshot id");
  ctx.step("revert the first instance to the other instance's snapshot");
  await expectRejects(ctx, d.revertToInstanceSnapshot(a, sb.id, ctx.opts()), ["VIRTKIT_SNAPSHOT_NOT_FOUND"], "revert to another instance's snapshot id");
  checkEqual((await ids(b)).join(", "), sb.id, "the second instance's snapshots after the first refused its id");
  checkEqual((await ids(a)).join(", "), sa.id, "the first instance's snapshots after it refused the other's id");
  await expectState(ctx, a, PowerState.RUNNING, "the refused delete and revert of another instance's snapshot");
  await expectState(ctx, b, PowerState.RUNNING, "another instance refusing this one's snapshot id");

  ctx.step("delete each instance's own snapshot");
  await d.deleteInstanceSnapshot(b, sb.id, ctx.opts());
  await d.deleteInstanceSnapshot(a, sa.id, ctx.opts());
  checkEqual((await ids(a)).length + (await ids(b)).length, 0, "snapshots left after deleting both");
  check(JSON.stringify(listedA) === heldA, "a listing handed out earlier changed under its holder with later calls: the caller owns what it was given");
}

/**
 * A snapshot captured PAUSED brings the instance back PAUSED ("restores disk and power state as
 * captured"); and an instance destroyed with a snapshot and spawned again under the same uuid (as
 * Nova's rebuild and evacuate do) starts with none: the snapshots went with the instance.
 */
export async function checkSnapshotPowerAndRespawn(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  const inst = await ctx.spawn();
  let captured = false;
  if (d.capabilities.pause) {
    ctx.step("pause, then createInstanceSnapshot (captured PAUSED)");
    await d.pause(inst, ctx.opts());
    // The state table lets a driver refuse a snapshot of a paused instance (the contract names no
    // state for it): then only the respawn half applies.
    const snap = await d.createInstanceSnapshot(inst, `${ctx.prefix}-paused`, ctx.opts()).catch((err: unknown) => {
      if (err instanceof InvalidStateError) return undefined;
      throw err;
    });
    if (snap === undefined) {
      await expectState(ctx, inst, PowerState.PAUSED, "the refused snapshot of a paused instance");
      await d.unpause(inst, ctx.opts());
    } else {
      captured = true;
      checkEqual(snap.powerState, PowerState.PAUSED, "the powerState of a snapshot taken while paused");
      await expectState(ctx, inst, PowerState.PAUSED, "a snapshot of a paused instance");
      ctx.step("unpause, then revert to the snapshot captured PAUSED");
      await d.unpause(inst, ctx.opts());
      await d.revertToInstanceSnapshot(inst, snap.id, ctx.opts());
      await expectState(ctx, inst, PowerState.PAUSED, "revert to a snapshot captured PAUSED");
      await d.unpause(inst, ctx.opts());
      await expectState(ctx, inst, PowerState.RUNNING, "unpause after the revert");
    }
  }
  if (!captured) await d.createInstanceSnapshot(inst, `${ctx.prefix}-running`, ctx.opts());
  ctx.step("destroy the instance with its snapshot, spawn it again under the same uuid");
  await d.destroy(inst, ctx.opts());
  await expectGone(ctx, inst, "destroy of an instance with a snapshot");
  const again = await ctx.spawn({ uuid: inst.uuid, name: `${inst.name}-again` });
  const left = await d.listInstanceSnapshots(again, ctx.opts());
  check(
    left.length === 0,
    `the instance spawned again under a destroyed one's uuid lists ${left.length} snapshot(s) of the destroyed one (${left.map((s) => JSON.stringify(s.name)).join(", ")}): destroy leaves no snapshot behind`,
  );
}

/** Undeclared instance snapshots are refused as unsupported: every call of the capability, not only create. */
export async function refuseInstanceSnapshots(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  await expectUnsupported(ctx, "createInstanceSnapshot", () =>
    ctx.driver.createInstanceSnapshot(inst, `${ctx.prefix}-s1`, ctx.opts()),
    "instanceSnapshots",
  );
  await expectUnsupported(ctx, "listInstanceSnapshots", () => ctx.driver.listInstanceSnapshots(inst, ctx.opts()), "instanceSnapshots");
  // A well-formed id: the refusal must come from the capability, not from the id.
  const id = randomUUID();
  await expectUnsupported(ctx, "revertToInstanceSnapshot", () => ctx.driver.revertToInstanceSnapshot(inst, id, ctx.opts()), "instanceSnapshots");
  await expectUnsupported(ctx, "deleteInstanceSnapshot", () => ctx.driver.deleteInstanceSnapshot(inst, id, ctx.opts()), "instanceSnapshots");
  await expectState(ctx, inst, PowerState.RUNNING, "the refused instance snapshot calls");
}

/** How long an image snapshot aborted during its upload may take to return (a stream to tear down). */
const UPLOAD_ABORT_BOUND_MS = 5_000;

/**
 * An image snapshot aborted while the image service holds its calls on the image: first all of
 * them (a driver that reads the image record first is caught there), then only the upload. Each
 * time the call rejects typed and promptly, none of its image-service calls is left waiting (a
 * request the abort did not reach would go on later: an upload after the abort was reported), and
 * once the image service goes on the image is as it was (queued, no data). The instance runs.
 */
export async function checkImageUploadAborted(ctx: ScenarioContext): Promise<void> {
  const controls = ctx.env.imageControls!;
  const inst = await ctx.spawn(SNAPSHOT_INSTANCE);
  for (const methods of [undefined, ["update"] as const]) {
    const what = methods ? "its upload held" : "every image-service call on the image held";
    const image = await ctx.env.imageService.create({ name: `${ctx.prefix}-held`, status: "queued" });
    ctx.trackImage(image.id);
    const hold = controls.hold(image.id, methods);
    const abort = new AbortController();
    try {
      ctx.step(`snapshot with ${what}`);
      const call = ctx.driver.snapshot(inst, image.id, ctx.opts({ signal: abort.signal }));
      // Observed without waiting on it, so its rejection is never unhandled.
      const outcome = call.then(
        () => ({ done: "succeeded" as const }),
        (err: unknown) => ({ done: "failed" as const, err }),
      );
      const first = await Promise.race([hold.reached.then((method) => ({ method })), outcome]);
      if (!("method" in first)) {
        if (first.done === "failed") ctx.recordError(first.err);
        fail(
          `with ${what}, the snapshot ${first.done === "succeeded" ? "succeeded" : `failed (${describeError(first.err)})`} without waiting for the image service`,
        );
      }
      ctx.step(`abort while the image service holds its ${first.method}`);
      const t0 = performance.now();
      abort.abort(new Error("cancelled by the kit"));
      await expectRejects(ctx, call, ["VIRTKIT_OPERATION_ABORTED"], `an image snapshot aborted with ${what}`);
      const took = performance.now() - t0;
      check(took < UPLOAD_ABORT_BOUND_MS, `the aborted snapshot (${what}) returned only after ${Math.round(took)} ms`);
      await settle(100);
      const waiting = hold.waiting();
      check(
        waiting === 0,
        `${waiting} image-service call(s) of the aborted snapshot (${what}) still waiting 100 ms after it returned: the abort did not reach them, so they would go on`,
      );
      hold.release();
      await settle(200);
      const after = await ctx.env.imageService.get(image.id);
      check(
        after.status !== "active" && after.size === 0,
        `the image snapshot aborted with ${what} was uploaded anyway once the image service went on (status ${after.status}, ${after.size} bytes)`,
      );
    } finally {
      hold.release();
    }
    await waitFor(async () => (await ctx.driver.getInfo(inst, ctx.opts())).state === PowerState.RUNNING, 10_000);
    await expectState(ctx, inst, PowerState.RUNNING, `the image snapshot aborted with ${what} (10 s after it)`);
  }
}

/** Scenarios that hold the image service's calls need the environment's `imageControls`. */
export function needsImageControls(env: ScenarioContext["env"]): string | undefined {
  return typeof env.imageControls?.hold === "function"
    ? undefined
    : "the environment cannot hold its image service's calls (no imageControls.hold)";
}
