/**
 * Rescue, seen from the guest: `rescuePassword` opens the rescue system's root account and no
 * account of the instance's own system; a rescued instance that is rebooted or power-cycled still
 * runs the rescue system (or the call is refused typed, as Nova's API does, or the power off left
 * rescue mode); unrescue boots the instance's own.
 */
import { PowerState, type Instance } from "@virtkit/core";
import { describeError, expectState, fail, skipForEnvironment, thrownWithCode } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { SecretScan } from "../secret-scan.js";
import { control, hasControl, trackedPassword } from "./depth-support.js";
import { EventLog, expectEvents } from "./event-log.js";

async function expectBooted(ctx: ScenarioContext, inst: Instance, want: "rescue" | "instance", after: string): Promise<void> {
  if (!hasControl(ctx, "bootedSystem")) return;
  ctx.step(`which system the guest runs after ${after}`);
  const got = await ctx.env.guestControls!.bootedSystem!(inst);
  if (got !== want) fail(`after ${after} the guest runs the ${got} system, expected the ${want} system`);
}

/** rescue's `rescuePassword` goes to the rescue system's root, and only there. */
export async function checkRescuePassword(ctx: ScenarioContext): Promise<void> {
  const verifyRescue = ctx.env.verifyRescuePassword?.bind(ctx.env);
  if (!verifyRescue) skipForEnvironment("the environment cannot log into a rescue system (no verifyRescuePassword)");
  const verify = ctx.env.verifyAdminPassword?.bind(ctx.env);
  const inst = await ctx.spawn();
  const pw = trackedPassword(ctx, "rescue");
  ctx.step("rescue with a rescuePassword");
  await ctx.driver.rescue(inst, inst.imageMeta, ctx.opts({ rescuePassword: pw }));
  await expectState(ctx, inst, PowerState.RUNNING, "rescue");
  await expectBooted(ctx, inst, "rescue", "rescue");
  ctx.step("log into the rescue system as root");
  if (!(await verifyRescue(inst, "root", pw))) fail("the rescuePassword does not open root of the rescue system");
  // The console goes to whoever may read it (Nova's console log API): the rescue password must not
  // show there, as the admin password must not.
  if (ctx.driver.capabilities.consoleOutput) {
    ctx.step("the console output of the rescued instance");
    const out = await ctx.driver.getConsoleOutput(inst, ctx.opts());
    if (new SecretScan([pw.reveal()]).found(out)) fail("the rescuePassword appears in the rescued instance's console output");
  }
  if (verify) {
    for (const user of ["root", "Administrator"]) {
      if (await verify(inst, user, pw)) fail(`the rescuePassword opens ${user} of the instance's own system (only the rescue system gets it)`);
    }
  }
  ctx.step("unrescue");
  await ctx.driver.unrescue(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "unrescue");
  await expectBooted(ctx, inst, "instance", "unrescue");
  if (verify && (await verify(inst, "root", pw))) fail("after unrescue the rescuePassword opens root of the instance's own system");
}

/** A rebooted rescued instance still runs the rescue system (or the reboot is refused typed). */
export async function checkRescueSurvivesReboot(ctx: ScenarioContext): Promise<void> {
  control(ctx, "bootedSystem", "the environment cannot tell which system the guest booted");
  const d = ctx.driver;
  const inst = await ctx.spawn();
  ctx.step("rescue");
  await d.rescue(inst, inst.imageMeta, ctx.opts());
  await expectBooted(ctx, inst, "rescue", "rescue");
  for (const type of d.capabilities.softReboot ? (["HARD", "SOFT"] as const) : (["HARD"] as const)) {
    const what = `reboot ${type} of a rescued instance`;
    ctx.step(what);
    try {
      await d.reboot(inst, type, ctx.opts());
    } catch (err) {
      ctx.recordError(err);
      if (!thrownWithCode(err, ["VIRTKIT_INVALID_STATE"])) fail(`${what}: expected success or InvalidStateError, got ${describeError(err)}`);
      await expectState(ctx, inst, PowerState.RUNNING, `the refused ${what}`);
      continue;
    }
    await expectState(ctx, inst, PowerState.RUNNING, what);
    await expectBooted(ctx, inst, "rescue", what);
  }
  if (await leftRescueOnPowerCycle(ctx, inst)) return;
  ctx.step("unrescue");
  await d.unrescue(inst, ctx.opts());
  await expectBooted(ctx, inst, "instance", "unrescue");
}

/**
 * Power off and on of a rescued instance (the table allows the power off to be refused, or to keep
 * or leave rescue mode): the system the guest boots at power on must match the mode the driver is
 * in. A driver that rebuilds the guest's definition from the instance at power on (as Nova's hard
 * reboot does) boots the instance's own disk while still in rescue mode. True when the driver left
 * rescue mode (unrescue refused typed), so there is nothing left to unrescue.
 */
async function leftRescueOnPowerCycle(ctx: ScenarioContext, inst: Instance): Promise<boolean> {
  const d = ctx.driver;
  const what = "power off of a rescued instance";
  ctx.step(what);
  try {
    await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  } catch (err) {
    ctx.recordError(err);
    if (!thrownWithCode(err, ["VIRTKIT_INVALID_STATE"])) fail(`${what}: expected success or InvalidStateError, got ${describeError(err)}`);
    await expectState(ctx, inst, PowerState.RUNNING, `the refused ${what}`);
    return false;
  }
  await expectState(ctx, inst, PowerState.SHUTDOWN, what);
  ctx.step("power on of the powered-off rescued instance");
  await d.powerOn(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "power on of the powered-off rescued instance");
  ctx.step("which system the guest runs after the power cycle");
  const booted = await ctx.env.guestControls!.bootedSystem!(inst);
  if (booted === "rescue") return false;
  ctx.step("unrescue after a power cycle that booted the instance's own system");
  try {
    await d.unrescue(inst, ctx.opts());
  } catch (err) {
    ctx.recordError(err);
    if (thrownWithCode(err, ["VIRTKIT_INVALID_STATE"])) return true;
    fail(`unrescue after the power cycle: expected InvalidStateError (rescue mode left) or success, got ${describeError(err)}`);
  }
  fail("power on of a powered-off rescued instance booted the instance's own system while the driver was still in rescue mode (unrescue succeeded)");
}

/**
 * A rescued guest that crashes (the rescue system panics) can still be unrescued: Nova's API
 * accepts unrescue for every RESCUED instance whatever its power state, and the driver destroys
 * the rescue domain and boots the instance's own disk. Afterwards the instance runs its own
 * system and rescue mode is over (a second unrescue is refused typed).
 */
export async function checkUnrescueAfterCrash(ctx: ScenarioContext): Promise<void> {
  const crash = control(ctx, "crash", "the environment cannot crash a guest");
  const d = ctx.driver;
  const log = new EventLog(ctx);
  try {
    const inst = await ctx.spawn();
    ctx.step("rescue");
    await d.rescue(inst, inst.imageMeta, ctx.opts());
    await expectBooted(ctx, inst, "rescue", "rescue");
    ctx.step("crash the rescue system (environment)");
    const beforeCrash = log.mark;
    await crash(inst);
    await expectState(ctx, inst, PowerState.CRASHED, "the crash of the rescue system");
    // The crash's own event (events.crash-announced checks it) must not count against unrescue's.
    await expectEvents(ctx, log, inst, beforeCrash, [["CRASHED"]], "the crash of the rescue system");
    ctx.step("unrescue the crashed rescued instance");
    const beforeUnrescue = log.mark;
    await d.unrescue(inst, ctx.opts());
    await expectState(ctx, inst, PowerState.RUNNING, "unrescue of the crashed rescued instance");
    // As a hard reboot from CRASHED: the guest starts again, once (a stop of the crashed domain first is sound).
    await expectEvents(ctx, log, inst, beforeUnrescue, [["STARTED"], ["STOPPED", "STARTED"]], "unrescue of the crashed rescued instance");
    await expectBooted(ctx, inst, "instance", "unrescue of the crashed rescued instance");
    ctx.step("a second unrescue (rescue mode should be over)");
    try {
      await d.unrescue(inst, ctx.opts());
    } catch (err) {
      ctx.recordError(err);
      if (thrownWithCode(err, ["VIRTKIT_INVALID_STATE"])) {
        await expectState(ctx, inst, PowerState.RUNNING, "the refused second unrescue");
        return;
      }
      fail(`a second unrescue after unrescuing the crashed instance: expected InvalidStateError, got ${describeError(err)}`);
    }
    fail("a second unrescue succeeded: the first one left the instance in rescue mode");
  } finally {
    log.stop();
  }
}

const RESCUE_SNAPSHOT_KEY = "/conformance/rescued-snapshot";

/**
 * An image snapshot of a rescued instance, where the driver takes it (the contract leaves it open),
 * holds the instance's own disk ("writes the instance's disk into image"), not the rescue system's
 * that the guest booted from: the marker written before the rescue is in the image. A typed
 * InvalidStateError refusal (Nova's API never asks) passes, the instance still rescued.
 */
export async function checkRescuedSnapshot(ctx: ScenarioContext): Promise<void> {
  const readImage = control(ctx, "readImageData", "the environment cannot read a marker back from an uploaded image");
  const write = control(ctx, "writeData", "the environment cannot write into the guest's disk");
  const d = ctx.driver;
  const inst = await ctx.spawn();
  ctx.step("write a marker into the instance's own disk");
  await write(inst, RESCUE_SNAPSHOT_KEY, "own disk");
  ctx.step("rescue");
  await d.rescue(inst, inst.imageMeta, ctx.opts());
  await expectBooted(ctx, inst, "rescue", "rescue");
  const image = await ctx.env.imageService.create({ name: `${ctx.prefix}-rescued`, status: "queued" });
  ctx.trackImage(image.id);
  ctx.step("image snapshot of the rescued instance");
  try {
    await d.snapshot(inst, image.id, ctx.opts());
  } catch (err) {
    ctx.recordError(err);
    if (!thrownWithCode(err, ["VIRTKIT_INVALID_STATE"])) {
      fail(`snapshot of a rescued instance: expected success or InvalidStateError, got ${describeError(err)}`);
    }
    await expectState(ctx, inst, PowerState.RUNNING, "the refused snapshot");
    await expectBooted(ctx, inst, "rescue", "the refused snapshot");
    return;
  }
  ctx.step("read the marker back from the uploaded image");
  const got = await readImage(image.id, RESCUE_SNAPSHOT_KEY);
  if (got !== "own disk") {
    fail(
      `the image snapshot of a rescued instance holds ${JSON.stringify(got)} where the instance's own disk holds "own disk": ` +
        "it copied the rescue system's disk, not the instance's",
    );
  }
  await expectBooted(ctx, inst, "rescue", "the snapshot");
}
