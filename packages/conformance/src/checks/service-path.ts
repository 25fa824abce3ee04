/**
 * The compute service path: the same operations through core's `ComputeService` (Nova's compute
 * manager: vm, task and power state bookkeeping, task-state compare-and-set during snapshots, the
 * record moving host on migration), so a driver whose answers break the service fails even when
 * each answer looks fine on its own. After every step the service's record must be idle (task
 * state cleared), in the expected vm state, and agree with what the driver reports.
 */
import {
  ComputeService,
  InMemoryInstanceStore,
  MemoryLogger,
  PowerState,
  VmState,
  isSecret,
  powerStateName,
  type InstanceRecord,
  type InstanceStore,
} from "@virtkit/core";
import { check, checkEqual, describeError, expectGone, expectState, fail } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { hasControl, hostPair, policyFor } from "./depth-support.js";

function serviceFor(ctx: ScenarioContext, host = ctx.host, store: InstanceStore = new InMemoryInstanceStore()) {
  return (async () =>
    new ComputeService({
      driver: host === ctx.host ? ctx.driver : await ctx.driverFor(host),
      store,
      imageService: ctx.env.imageService,
      logger: new MemoryLogger(),
      host,
      initHost: false,
    }))();
}

/** The record after `what`: idle, in `vm`, and agreeing with the driver's own view (`power`). */
async function expectRecord(
  ctx: ScenarioContext,
  service: ComputeService,
  uuid: string,
  vm: VmState,
  power: PowerState,
  what: string,
): Promise<InstanceRecord> {
  const rec = await service.get(uuid, ctx.opts());
  checkEqual(rec.taskState, null, `the service's task state after ${what}`);
  checkEqual(rec.vmState, vm, `the service's vm state after ${what}`);
  check(
    rec.powerState === power,
    `the service recorded power state ${powerStateName(rec.powerState)} after ${what}, expected ${powerStateName(power)}`,
  );
  check(rec.lastError === undefined, `the service recorded a fault after ${what}: ${rec.lastError?.code} ${rec.lastError?.message}`);
  await expectState(ctx, rec, power, `${what} (through the service)`, service.driver);
  return rec;
}

/** Run `what` through the service; a failure names the service step. */
async function step<T>(ctx: ScenarioContext, what: string, fn: () => Promise<T>): Promise<T> {
  ctx.step(`service.${what}`);
  try {
    return await fn();
  } catch (err) {
    ctx.recordError(err);
    fail(`service.${what} failed: ${describeError(err)}`);
  }
}

/** Boot, reboots, stop/start, pause, suspend, rescue and delete through the service. */
export async function checkServiceLifecycle(ctx: ScenarioContext): Promise<void> {
  const caps = ctx.driver.capabilities;
  const service = await serviceFor(ctx);
  const inst = ctx.newInstance();
  const A = VmState.ACTIVE;
  const R = PowerState.RUNNING;
  await step(ctx, "boot", () => service.boot(inst, ctx.opts()));
  await expectRecord(ctx, service, inst.uuid, A, R, "boot");
  await step(ctx, "reboot HARD", () => service.reboot(inst.uuid, "HARD", ctx.opts()));
  await expectRecord(ctx, service, inst.uuid, A, R, "reboot HARD");
  if (caps.softReboot) {
    await step(ctx, "reboot SOFT", () => service.reboot(inst.uuid, "SOFT", ctx.opts()));
    await expectRecord(ctx, service, inst.uuid, A, R, "reboot SOFT");
  }
  await step(ctx, "stop", () => service.stop(inst.uuid, ctx.opts({ cleanShutdownTimeoutSec: 0 })));
  await expectRecord(ctx, service, inst.uuid, VmState.STOPPED, PowerState.SHUTDOWN, "stop");
  await step(ctx, "start", () => service.start(inst.uuid, ctx.opts()));
  await expectRecord(ctx, service, inst.uuid, A, R, "start");
  if (caps.pause) {
    await step(ctx, "pause", () => service.pause(inst.uuid, ctx.opts()));
    await expectRecord(ctx, service, inst.uuid, VmState.PAUSED, PowerState.PAUSED, "pause");
    await step(ctx, "unpause", () => service.unpause(inst.uuid, ctx.opts()));
    await expectRecord(ctx, service, inst.uuid, A, R, "unpause");
  }
  if (caps.suspend) {
    await step(ctx, "suspend", () => service.suspend(inst.uuid, ctx.opts()));
    await expectRecord(ctx, service, inst.uuid, VmState.SUSPENDED, PowerState.SUSPENDED, "suspend");
    await step(ctx, "resume", () => service.resume(inst.uuid, ctx.opts()));
    await expectRecord(ctx, service, inst.uuid, A, R, "resume");
  }
  if (caps.rescue) {
    const rescued = await step(ctx, "rescue", () => service.rescue(inst.uuid, ctx.opts()));
    // The password the service generated for the rescue system: never in a log, error or report.
    if (isSecret(rescued.password)) ctx.trackSecret(rescued.password);
    await expectRecord(ctx, service, inst.uuid, VmState.RESCUED, R, "rescue");
    await step(ctx, "unrescue", () => service.unrescue(inst.uuid, ctx.opts()));
    await expectRecord(ctx, service, inst.uuid, A, R, "unrescue");
  }
  await step(ctx, "delete", () => service.delete(inst.uuid, ctx.opts()));
  await expectGone(ctx, inst, "service.delete");
  const left = await service.list(ctx.opts());
  check(!left.some((r) => r.uuid === inst.uuid), "the service still lists the deleted instance");
}

/** An image snapshot through the service: the image is active (and holds the disk), the record idle. */
export async function checkServiceImageSnapshot(ctx: ScenarioContext): Promise<void> {
  const service = await serviceFor(ctx);
  const inst = ctx.newInstance();
  await step(ctx, "boot", () => service.boot(inst, ctx.opts()));
  const data = hasControl(ctx, "writeData") && hasControl(ctx, "readImageData");
  if (data) await ctx.env.guestControls!.writeData!(inst, "/conformance/service-snapshot", "imaged");
  const image = await step(ctx, "snapshot", () => service.snapshot(inst.uuid, `${ctx.prefix}-svc`, ctx.opts()));
  ctx.trackImage(image.id);
  checkEqual(image.status, "active", "the image the service's snapshot made");
  await expectRecord(ctx, service, inst.uuid, VmState.ACTIVE, PowerState.RUNNING, "snapshot");
  if (data) {
    const got = await ctx.env.guestControls!.readImageData!(image.id, "/conformance/service-snapshot");
    checkEqual(got, "imaged", "the marker in the service's image snapshot");
  }
  await step(ctx, "stop", () => service.stop(inst.uuid, ctx.opts({ cleanShutdownTimeoutSec: 0 })));
  const stopped = await step(ctx, "snapshot (stopped)", () => service.snapshot(inst.uuid, `${ctx.prefix}-svc2`, ctx.opts()));
  ctx.trackImage(stopped.id);
  await expectRecord(ctx, service, inst.uuid, VmState.STOPPED, PowerState.SHUTDOWN, "snapshot of a stopped instance");
}

/** Instance snapshots through the service: create, list, revert (the vm state follows), delete. */
export async function checkServiceInstanceSnapshots(ctx: ScenarioContext): Promise<void> {
  const service = await serviceFor(ctx);
  const inst = ctx.newInstance();
  await step(ctx, "boot", () => service.boot(inst, ctx.opts()));
  await step(ctx, "stop", () => service.stop(inst.uuid, ctx.opts({ cleanShutdownTimeoutSec: 0 })));
  const snap = await step(ctx, "createInstanceSnapshot (stopped)", () =>
    service.createInstanceSnapshot(inst.uuid, `${ctx.prefix}-svc`, ctx.opts()),
  );
  await expectRecord(ctx, service, inst.uuid, VmState.STOPPED, PowerState.SHUTDOWN, "createInstanceSnapshot");
  await step(ctx, "start", () => service.start(inst.uuid, ctx.opts()));
  const listed = await step(ctx, "listInstanceSnapshots", () => service.listInstanceSnapshots(inst.uuid, ctx.opts()));
  check(listed.some((s) => s.id === snap.id), "the service does not list the snapshot it created");
  await step(ctx, "revertToInstanceSnapshot", () => service.revertToInstanceSnapshot(inst.uuid, snap.id, ctx.opts()));
  await expectRecord(ctx, service, inst.uuid, VmState.STOPPED, PowerState.SHUTDOWN, "revert to a snapshot taken while stopped");
  await step(ctx, "deleteInstanceSnapshot", () => service.deleteInstanceSnapshot(inst.uuid, snap.id, ctx.opts()));
  await expectRecord(ctx, service, inst.uuid, VmState.STOPPED, PowerState.SHUTDOWN, "deleteInstanceSnapshot");
}

/** A live migration through the service: the record moves to the destination's store and host. */
export async function checkServiceLiveMigrate(ctx: ScenarioContext): Promise<void> {
  const pair = await hostPair(ctx, "any");
  const source = await serviceFor(ctx);
  const destination = await serviceFor(ctx, pair.dstHost);
  const inst = ctx.newInstance();
  await step(ctx, "boot", () => source.boot(inst, ctx.opts()));
  const moved = await step(ctx, "liveMigrate", () => source.liveMigrate(inst.uuid, destination, policyFor(pair), ctx.opts()));
  checkEqual(moved.host, pair.dstHost, "the migrated record's host");
  await expectRecord(ctx, destination, inst.uuid, VmState.ACTIVE, PowerState.RUNNING, "liveMigrate (destination)");
  check(!(await source.list(ctx.opts())).some((r) => r.uuid === inst.uuid), "the source's service still holds the migrated instance");
  await expectGone(ctx, inst, "liveMigrate (on the source)", pair.src);
}
