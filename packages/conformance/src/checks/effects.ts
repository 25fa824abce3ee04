/**
 * Effects, not return values: what an operation did to the guest, read back by the ENVIRONMENT's
 * own means (markers on the guest's disk, the guest's boot counter, the uploaded image's data,
 * the host's size), never from the driver's word. A control the environment lacks makes the
 * scenario (or the part that needs it) skip with the reason.
 */
import { PowerState, type Instance } from "@virtkit/core";
import { check, checkEqual, expectState, fail, skipForEnvironment } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { control, hasControl } from "./depth-support.js";

const KEY = "/conformance/effects-marker";

async function marker(ctx: ScenarioContext, inst: Instance, want: string, after: string): Promise<void> {
  if (!hasControl(ctx, "readData")) return;
  ctx.step(`read the guest's marker after ${after}`);
  const got = await ctx.env.guestControls!.readData!(inst, KEY);
  if (got !== want) fail(`after ${after}: the guest's disk holds ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
}

async function write(ctx: ScenarioContext, inst: Instance, value: string): Promise<void> {
  if (!hasControl(ctx, "writeData")) return;
  ctx.step(`write ${JSON.stringify(value)} into the guest`);
  await ctx.env.guestControls!.writeData!(inst, KEY, value);
}

async function boots(ctx: ScenarioContext, inst: Instance): Promise<number> {
  return control(ctx, "bootCount", "the environment cannot count the guest's boots")(inst);
}

async function expectBoots(ctx: ScenarioContext, inst: Instance, want: number, after: string): Promise<void> {
  const got = await boots(ctx, inst);
  if (got !== want) {
    const what = got < want ? "the guest did not boot" : "the guest booted once more than it should";
    fail(`after ${after}: the guest counted ${got} boot(s), expected ${want} (${what})`);
  }
}

/**
 * The image snapshot holds what the disk held at the moment of the snapshot: the marker written
 * before it, and for a second snapshot the newer marker (not a stale copy of the first).
 */
export async function checkImageSnapshotData(ctx: ScenarioContext): Promise<void> {
  const readImage = control(ctx, "readImageData", "the environment cannot read a marker back from an uploaded image");
  control(ctx, "writeData", "the environment cannot write into the guest's disk");
  const inst = await ctx.spawn();
  const take = async (label: string) => {
    const image = await ctx.env.imageService.create({ name: `${ctx.prefix}-${label}`, status: "queued" });
    ctx.trackImage(image.id);
    ctx.step(`snapshot (${label})`);
    await ctx.driver.snapshot(inst, image.id, ctx.opts());
    return image.id;
  };
  await write(ctx, inst, "first");
  const first = await take("running");
  ctx.step("read the first image's data");
  checkEqual(await readImage(first, KEY), "first", "the marker in the image of the running instance");
  await write(ctx, inst, "second");
  ctx.step("power off");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  const second = await take("stopped");
  ctx.step("read both images' data");
  checkEqual(await readImage(second, KEY), "second", "the marker in the image of the stopped instance");
  checkEqual(await readImage(first, KEY), "first", "the marker in the first image after a second snapshot");
  await marker(ctx, inst, "second", "two image snapshots (the guest's own disk)");
}

/**
 * With several instance snapshots, revert restores the one asked for (state and data), any number
 * of times and in any order; they are listed oldest first; deleting one leaves the other usable.
 */
export async function checkRevertChosenSnapshot(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  const inst = await ctx.spawn();
  await write(ctx, inst, "a");
  // Named against the alphabet (A is "-z", B "-a"): a listing sorted by name, not age, shows.
  ctx.step("createInstanceSnapshot A (running)");
  const a = await d.createInstanceSnapshot(inst, `${ctx.prefix}-z`, ctx.opts());
  await write(ctx, inst, "b");
  ctx.step("power off");
  await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  ctx.step("createInstanceSnapshot B (stopped)");
  const b = await d.createInstanceSnapshot(inst, `${ctx.prefix}-a`, ctx.opts());
  ctx.step("power on");
  await d.powerOn(inst, ctx.opts());
  await write(ctx, inst, "c");
  ctx.step("listInstanceSnapshots (oldest first)");
  const ids = (await d.listInstanceSnapshots(inst, ctx.opts())).map((s) => s.id);
  checkEqual(ids.join(","), [a.id, b.id].join(","), "listInstanceSnapshots (oldest first)");
  for (const [snap, state, data] of [
    [a, PowerState.RUNNING, "a"],
    [b, PowerState.SHUTDOWN, "b"],
    [a, PowerState.RUNNING, "a"],
  ] as const) {
    const label = `revert to snapshot ${snap === a ? "A" : "B"}`;
    ctx.step(label);
    await d.revertToInstanceSnapshot(inst, snap.id, ctx.opts());
    await expectState(ctx, inst, state, label);
    await marker(ctx, inst, data, label);
  }
  ctx.step("delete snapshot A");
  await d.deleteInstanceSnapshot(inst, a.id, ctx.opts());
  const left = (await d.listInstanceSnapshots(inst, ctx.opts())).map((s) => s.id);
  checkEqual(left.join(","), b.id, "the snapshots left after deleting A");
  ctx.step("revert to snapshot B after deleting A");
  await d.revertToInstanceSnapshot(inst, b.id, ctx.opts());
  await expectState(ctx, inst, PowerState.SHUTDOWN, "revert to B after deleting A");
  await marker(ctx, inst, "b", "revert to B after deleting A");
  // A new snapshot after a delete gets an id of its own (one counted from the listing's length
  // would take B's), and B stays the one reverted to.
  ctx.step("createInstanceSnapshot C after deleting A");
  const c = await d.createInstanceSnapshot(inst, `${ctx.prefix}-c`, ctx.opts());
  check(c.id !== b.id && c.id !== a.id, `the snapshot made after deleting A has id ${JSON.stringify(c.id)}, already used by ${c.id === b.id ? "B" : "A"}`);
  const now = (await d.listInstanceSnapshots(inst, ctx.opts())).map((s) => s.id);
  checkEqual(now.join(","), [b.id, c.id].join(","), "the snapshots after creating C (oldest first)");
  ctx.step("revert to snapshot B once C exists");
  await d.revertToInstanceSnapshot(inst, b.id, ctx.opts());
  await marker(ctx, inst, "b", "revert to B once C exists");
}

function needData(ctx: ScenarioContext): void {
  if (!hasControl(ctx, "bootCount") && !(hasControl(ctx, "writeData") && hasControl(ctx, "readData"))) {
    skipForEnvironment("the environment can neither count the guest's boots nor read its disk");
  }
}

async function bootsIfAny(ctx: ScenarioContext, inst: Instance): Promise<number | undefined> {
  return hasControl(ctx, "bootCount") ? boots(ctx, inst) : undefined;
}

/** Suspend and resume keep the guest: its data, and no new boot (resume is not a cold start). */
export async function checkSuspendResumeKeepsGuest(ctx: ScenarioContext): Promise<void> {
  needData(ctx);
  const inst = await ctx.spawn();
  await write(ctx, inst, "kept");
  const before = await bootsIfAny(ctx, inst);
  ctx.step("suspend");
  await ctx.driver.suspend(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.SUSPENDED, "suspend");
  ctx.step("resume");
  await ctx.driver.resume(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "resume");
  await marker(ctx, inst, "kept", "suspend and resume");
  if (before !== undefined) await expectBoots(ctx, inst, before, "suspend and resume");
}

/** Pause and unpause keep the guest running where it was: no new boot, data kept. */
export async function checkPauseUnpauseKeepsGuest(ctx: ScenarioContext): Promise<void> {
  needData(ctx);
  const inst = await ctx.spawn();
  await write(ctx, inst, "kept");
  const before = await bootsIfAny(ctx, inst);
  ctx.step("pause");
  await ctx.driver.pause(inst, ctx.opts());
  ctx.step("unpause");
  await ctx.driver.unpause(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "pause and unpause");
  await marker(ctx, inst, "kept", "pause and unpause");
  if (before !== undefined) await expectBoots(ctx, inst, before, "pause and unpause");
}

/** A hard reboot boots the guest exactly once more and keeps its disk. */
export async function checkRebootHardBoots(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  const before = await boots(ctx, inst);
  await write(ctx, inst, "kept");
  ctx.step("reboot HARD");
  await ctx.driver.reboot(inst, "HARD", ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "reboot HARD");
  await expectBoots(ctx, inst, before + 1, "reboot HARD");
  await marker(ctx, inst, "kept", "reboot HARD");
}

/** A soft reboot boots the guest exactly once more and keeps its disk. */
export async function checkRebootSoftBoots(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  const before = await boots(ctx, inst);
  await write(ctx, inst, "kept");
  ctx.step("reboot SOFT");
  await ctx.driver.reboot(inst, "SOFT", ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "reboot SOFT");
  await expectBoots(ctx, inst, before + 1, "reboot SOFT");
  await marker(ctx, inst, "kept", "reboot SOFT");
}

/** A guest that ignores ACPI: a soft reboot falls back to hard, so the guest still reboots. */
export async function checkRebootSoftFallback(ctx: ScenarioContext): Promise<void> {
  const ignore = control(ctx, "ignoreAcpi", "the environment cannot make a guest ignore ACPI");
  const inst = await ctx.spawn();
  const before = await boots(ctx, inst);
  ctx.step("make the guest ignore ACPI");
  await ignore(inst, true);
  ctx.step("reboot SOFT of a guest ignoring ACPI");
  await ctx.driver.reboot(inst, "SOFT", ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "reboot SOFT of a guest ignoring ACPI");
  await expectBoots(ctx, inst, before + 1, "reboot SOFT of a guest ignoring ACPI (no fallback to hard)");
}

/** Power off boots nothing; power on boots once; the disk survives the cycle. */
export async function checkPowerCycleBoots(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  const before = await boots(ctx, inst);
  await write(ctx, inst, "kept");
  ctx.step("power off");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await expectState(ctx, inst, PowerState.SHUTDOWN, "power off");
  await expectBoots(ctx, inst, before, "power off");
  ctx.step("power on");
  await ctx.driver.powerOn(inst, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "power on");
  await expectBoots(ctx, inst, before + 1, "power on");
  await marker(ctx, inst, "kept", "a power cycle");
  ctx.step("power on a running instance");
  await ctx.driver.powerOn(inst, ctx.opts());
  await expectBoots(ctx, inst, before + 1, "power on of a running instance (must not reboot it)");
}

/** A flavor that is not the default: getInfo's units (KiB, vcpus) follow it, in every state. */
const ODD_FLAVOR = { name: "conformance.odd", memoryMb: 96, vcpus: 2, rootGb: 1 } as const;

/** Spawn's flavor in getInfo, in the contract's units: KiB of memory, vcpus, nanoseconds as a bigint. */
export async function checkSpawnFlavorUnits(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn({ flavor: ODD_FLAVOR });
  const look = async (after: string, running: boolean) => {
    ctx.step(`getInfo after ${after}`);
    const info = await ctx.driver.getInfo(inst, ctx.opts());
    checkEqual(info.maxMemoryKb, ODD_FLAVOR.memoryMb * 1024, `maxMemoryKb (KiB) after ${after}, flavor ${ODD_FLAVOR.memoryMb} MiB`);
    checkEqual(info.vcpus, ODD_FLAVOR.vcpus, `vcpus after ${after}`);
    check(
      info.memoryKb >= 0 && info.memoryKb <= info.maxMemoryKb,
      `memoryKb ${info.memoryKb} after ${after} is not within 0..maxMemoryKb (${info.maxMemoryKb} KiB)`,
    );
    if (running) check(info.memoryKb > 0, `memoryKb is 0 for a running instance after ${after}`);
    check(typeof info.cpuTimeNs === "bigint" && info.cpuTimeNs >= 0n, `cpuTimeNs after ${after} is not a bigint >= 0`);
  };
  await look("spawn", true);
  ctx.step("power off");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await look("power off", false);
}

/** getHostInfo in the contract's units, against what the environment knows of the host. */
export async function checkHostFactsUnits(ctx: ScenarioContext): Promise<void> {
  ctx.step("getHostInfo");
  const info = await ctx.driver.getHostInfo(ctx.opts());
  check(/^\d+\.\d+\.\d+$/.test(info.hypervisorVersion), `hypervisorVersion ${JSON.stringify(info.hypervisorVersion)} is not major.minor.micro`);
  check(Number.isInteger(info.memoryMb) && info.memoryMb >= 1, `memoryMb ${info.memoryMb} is not an integer >= 1`);
  check(Number.isInteger(info.vcpus) && info.vcpus >= 1, `vcpus ${info.vcpus} is not an integer >= 1`);
  check(info.cpuArch.length > 0, "cpuArch is empty");
  const facts = ctx.env.hypervisorControls?.hostFacts;
  if (!facts) skipForEnvironment("the environment does not know its host's size by its own means (no hostFacts)");
  const want = await facts.call(ctx.env.hypervisorControls, ctx.host);
  checkEqual(info.memoryMb, want.memoryMb, "getHostInfo memoryMb (MiB) against the environment's host");
  checkEqual(info.vcpus, want.vcpus, "getHostInfo vcpus against the environment's host");
}
