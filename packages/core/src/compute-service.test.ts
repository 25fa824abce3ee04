import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { NO_CAPABILITIES } from "./capabilities.js";
import { ComputeService, reconcileVmState } from "./compute-service.js";
import type { ComputeDriver } from "./driver.js";
import {
  AdminPasswordNotSupportedError,
  GuestAgentNotEnabledError,
  GuestAgentUnresponsiveError,
  HypervisorUnavailableError,
  InstanceExistsError,
  InstanceNotFoundError,
  InvalidInputError,
  InvalidStateError,
  LiveMigrationFailedError,
  MigrationPreCheckError,
  OperationAbortedError,
  OperationTimeoutError,
  PasswordSetFailedError,
  SnapshotNotFoundError,
  UnexpectedTaskStateError,
  UnsupportedOperationError,
  VirtkitError,
  isInvalidInput,
} from "./errors.js";
import { InMemoryImageService } from "./image-service.js";
import { InMemoryInstanceStore, type InstancePatch, type SaveOptions } from "./instance-store.js";
import { MemoryLogger } from "./logger.js";
import { Secret } from "./secret.js";
import { PowerState, TaskState, VmState, type TaskState as TaskStateT } from "./states.js";
import { StubDriver, testInstance, type StubFabric } from "./testing/stub-driver.js";

const PASSWORD = "Tr0ub4dor&3-horse";

/** A store that remembers every task state written. */
class TracingStore extends InMemoryInstanceStore {
  readonly tasks: (TaskStateT | null)[] = [];
  override async save(uuid: string, patch: InstancePatch, options?: SaveOptions) {
    const r = await super.save(uuid, patch, options);
    if (patch.taskState !== undefined) this.tasks.push(patch.taskState);
    return r;
  }
}

function setup(options: { host?: string; fabric?: StubFabric; driver?: StubDriver } = {}) {
  const imageService = new InMemoryImageService();
  const driver = options.driver ?? new StubDriver({ imageService, fabric: options.fabric });
  const store = new TracingStore();
  const logger = new MemoryLogger();
  const service = new ComputeService({ driver, store, imageService, logger, host: options.host ?? "host-a" });
  return { driver, store, logger, imageService, service };
}

async function booted(options: Parameters<typeof setup>[0] = {}) {
  const ctx = setup(options);
  const vm = testInstance();
  await ctx.service.boot(vm);
  return { ...ctx, vm, uuid: vm.uuid };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
}

/** Everything a password could leak into: the error, the logs, the store. */
async function expectNoLeak(ctx: { logger: MemoryLogger; store: InMemoryInstanceStore }, err?: unknown) {
  expect(ctx.logger.lines().join("\n")).not.toContain(PASSWORD);
  expect(JSON.stringify(await ctx.store.list())).not.toContain(PASSWORD);
  if (err !== undefined) {
    expect(String(err)).not.toContain(PASSWORD);
    expect(inspect(err, { depth: 10 })).not.toContain(PASSWORD);
    expect(JSON.stringify(err)).not.toContain(PASSWORD);
    expect((err as Error).stack ?? "").not.toContain(PASSWORD);
  }
}

describe("ComputeService lifecycle", () => {
  it("boots: BUILDING/SPAWNING while spawning, then ACTIVE/idle/RUNNING, initialising the host once", async () => {
    const { service, driver, store } = setup();
    const vm = testInstance();
    let during: unknown;
    driver.before("spawn", async () => {
      during = await store.get(vm.uuid);
    });
    const record = await service.boot(vm, { adminPassword: PASSWORD });
    expect(during).toMatchObject({
      vmState: VmState.BUILDING,
      taskState: TaskState.SPAWNING,
      powerState: PowerState.NOSTATE,
    });
    expect(record).toMatchObject({
      uuid: vm.uuid,
      vmState: VmState.ACTIVE,
      taskState: null,
      powerState: PowerState.RUNNING,
      host: "host-a",
    });
    expect(driver.vms.get(vm.uuid)?.password).toBe(PASSWORD);
    await service.boot(testInstance());
    expect(driver.callsOf("initHost")).toEqual([["host-a"]]);
    expect(await service.list()).toHaveLength(2);
  });

  it("refuses an invalid instance and changes nothing", async () => {
    const { service, driver, store } = setup();
    await expect(service.boot(testInstance({ name: "no spaces" }))).rejects.toBeInstanceOf(InvalidInputError);
    await expect(service.boot(testInstance(), { adminPassword: "a\nb" })).rejects.toBeInstanceOf(InvalidInputError);
    expect(await store.list()).toEqual([]);
    expect(driver.callsOf("spawn")).toEqual([]);
  });

  it("refuses an upper-case uuid and the nil uuid naming the field, before any driver call", async () => {
    const { service, driver, store } = setup();
    for (const [uuid, reason] of [
      ["3F1C2B9E-5A4D-4C3B-8A2F-1E0D9C8B7A6F", "lower-case"],
      ["00000000-0000-0000-0000-000000000000", "nil uuid"],
    ] as const) {
      const err = await service.boot(testInstance({ uuid })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidInputError);
      expect(err).toMatchObject({ field: "instance.uuid", reason: expect.stringContaining(reason) });
    }
    expect(await store.list()).toEqual([]);
    expect(driver.callsOf("spawn")).toEqual([]);
  });

  it("a uuid the host already has (another service's instance) leaves no record here, so no delete here destroys it", async () => {
    const first = await booted();
    // A second service on the same driver (host) with a store of its own.
    const other = new ComputeService({ driver: first.driver, store: new InMemoryInstanceStore(), imageService: first.imageService, logger: new MemoryLogger(), host: "host-a" });
    await expect(other.boot({ ...testInstance(), uuid: first.uuid })).rejects.toBeInstanceOf(InstanceExistsError);
    expect(await other.list()).toEqual([]);
    await expect(other.delete(first.uuid)).rejects.toBeInstanceOf(InstanceNotFoundError);
    expect(first.driver.vms.get(first.uuid)?.power).toBe(PowerState.RUNNING);
  });

  it("refuses options of the wrong shape before it changes anything, as the driver would", async () => {
    const { service, uuid, store } = await booted();
    for (const bad of ["fast", 5000, { timeoutMs: -1 }, { timeoutMs: Number.NaN }, { signal: "nope" }]) {
      await expect(service.pause(uuid, bad as never)).rejects.toBeInstanceOf(InvalidInputError);
      await expect(service.get(uuid, bad as never)).rejects.toBeInstanceOf(InvalidInputError);
      await expect(service.list(bad as never)).rejects.toBeInstanceOf(InvalidInputError);
    }
    expect(await store.get(uuid)).toMatchObject({ vmState: VmState.ACTIVE, taskState: null });
  });

  it("refuses a flavor below the image's minRam or minDisk before anything is made, as Nova's API does", async () => {
    const { service, store, driver } = setup();
    const base = testInstance();
    for (const imageMeta of [{ ...base.imageMeta, minRam: base.flavor.memoryMb + 1 }, { ...base.imageMeta, minDisk: base.flavor.rootGb + 1 }]) {
      await expect(service.boot({ ...testInstance(), imageMeta })).rejects.toBeInstanceOf(InvalidInputError);
    }
    // At the minimums exactly, and a root disk of 0 (the image's size), it boots.
    await service.boot({ ...testInstance(), imageMeta: { ...base.imageMeta, minRam: base.flavor.memoryMb, minDisk: base.flavor.rootGb } });
    await service.boot({ ...testInstance(), flavor: { ...base.flavor, rootGb: 0 }, imageMeta: { ...base.imageMeta, minDisk: 50 } });
    expect(await store.list()).toHaveLength(2);
    expect(driver.callsOf("spawn")).toHaveLength(2);
  });

  it("refuses a duplicate uuid, and allows a repeated display name as Nova does", async () => {
    const { service, uuid, vm } = await booted();
    await expect(service.boot({ ...testInstance(), uuid })).rejects.toBeInstanceOf(InstanceExistsError);
    const twin = await service.boot({ ...testInstance(), name: vm.name });
    expect(twin.name).toBe(vm.name);
    expect(twin.uuid).not.toBe(uuid);
    expect((await service.list()).filter((r) => r.name === vm.name)).toHaveLength(2);
  });

  it("puts a failed boot in ERROR with the fault and rethrows", async () => {
    const ctx = setup();
    const failure = new HypervisorUnavailableError("host-a", "connection refused");
    ctx.driver.failOn("spawn", failure);
    const vm = testInstance();
    expect(await rejection(ctx.service.boot(vm))).toBe(failure);
    expect(await ctx.service.get(vm.uuid)).toMatchObject({
      vmState: VmState.ERROR,
      taskState: null,
      powerState: PowerState.NOSTATE,
      lastError: { code: "VIRTKIT_HYPERVISOR_UNAVAILABLE" },
    });
  });

  it("does not let a spawn error echo the admin password", async () => {
    const ctx = setup();
    ctx.driver.failOn("spawn", new Error(`cloud-init rejected ${PASSWORD}`));
    const err = await rejection(ctx.service.boot(testInstance(), { adminPassword: new Secret(PASSWORD) }));
    expect(err).toBeInstanceOf(VirtkitError);
    await expectNoLeak(ctx, err);
  });

  it("walks the whole life, with the states after each step", async () => {
    const { service, uuid, driver, store } = await booted();
    store.tasks.length = 0; // forget the boot's own final save
    const steps: [string, () => Promise<unknown>, VmState, PowerState][] = [
      ["pause", () => service.pause(uuid), VmState.PAUSED, PowerState.PAUSED],
      ["unpause", () => service.unpause(uuid), VmState.ACTIVE, PowerState.RUNNING],
      ["suspend", () => service.suspend(uuid), VmState.SUSPENDED, PowerState.SUSPENDED],
      ["resume", () => service.resume(uuid), VmState.ACTIVE, PowerState.RUNNING],
      ["soft reboot", () => service.reboot(uuid), VmState.ACTIVE, PowerState.RUNNING],
      ["stop", () => service.stop(uuid, { cleanShutdownTimeoutSec: 0 }), VmState.STOPPED, PowerState.SHUTDOWN],
      ["hard reboot", () => service.reboot(uuid, "HARD"), VmState.ACTIVE, PowerState.RUNNING],
      ["stop", () => service.stop(uuid), VmState.STOPPED, PowerState.SHUTDOWN],
      ["start", () => service.start(uuid), VmState.ACTIVE, PowerState.RUNNING],
      ["rescue", () => service.rescue(uuid), VmState.RESCUED, PowerState.RUNNING],
      ["unrescue", () => service.unrescue(uuid), VmState.ACTIVE, PowerState.RUNNING],
    ];
    for (const [label, step, vmState, powerState] of steps) {
      await step();
      expect(await service.get(uuid), label).toMatchObject({ vmState, taskState: null, powerState });
    }
    expect(store.tasks).toEqual([
      TaskState.PAUSING,
      null,
      TaskState.UNPAUSING,
      null,
      TaskState.SUSPENDING,
      null,
      TaskState.RESUMING,
      null,
      TaskState.REBOOTING,
      null,
      TaskState.POWERING_OFF,
      null,
      TaskState.REBOOTING_HARD,
      null,
      TaskState.POWERING_OFF,
      null,
      TaskState.POWERING_ON,
      null,
      TaskState.RESCUING,
      null,
      TaskState.UNRESCUING,
      null,
    ]);
    await service.delete(uuid);
    await expect(service.get(uuid)).rejects.toBeInstanceOf(InstanceNotFoundError);
    expect(driver.vms.has(uuid)).toBe(false);
    expect(driver.callsOf("destroy")[0]?.[1]).toMatchObject({ destroyDisks: true });
  });

  it.each([
    ["pause a stopped instance", "stop", (s: ComputeService, u: string) => s.pause(u)],
    ["resume an active instance", undefined, (s: ComputeService, u: string) => s.resume(u)],
    ["start an active instance", undefined, (s: ComputeService, u: string) => s.start(u)],
    ["soft-reboot a stopped instance", "stop", (s: ComputeService, u: string) => s.reboot(u, "SOFT")],
    ["unrescue an active instance", undefined, (s: ComputeService, u: string) => s.unrescue(u)],
    ["suspend a paused instance", "pause", (s: ComputeService, u: string) => s.suspend(u)],
  ] as const)("refuses to %s without calling the driver", async (_label, prepare, act) => {
    const { service, uuid, driver } = await booted();
    if (prepare === "stop") await service.stop(uuid);
    if (prepare === "pause") await service.pause(uuid);
    const callsBefore = driver.calls.length;
    const before = await service.get(uuid);
    expect(await rejection(act(service, uuid))).toBeInstanceOf(InvalidStateError);
    expect(driver.calls.length).toBe(callsBefore);
    expect(await service.get(uuid)).toEqual(before);
  });

  it("a failed operation clears its task, keeps the vm state and records the fault", async () => {
    const { service, uuid, driver } = await booted();
    const failure = new UnsupportedOperationError("pause", "stub");
    driver.failOn("pause", failure);
    expect(await rejection(service.pause(uuid))).toBe(failure);
    expect(await service.get(uuid)).toMatchObject({
      vmState: VmState.ACTIVE,
      taskState: null,
      powerState: PowerState.RUNNING,
      lastError: { code: "VIRTKIT_UNSUPPORTED_OPERATION" },
    });
    driver.clear("pause");
    const ok = await service.pause(uuid);
    expect(ok.lastError).toBeUndefined();
  });

  it("a second operation while one runs is refused by the task-state compare-and-set", async () => {
    const { service, uuid, driver } = await booted();
    const gate = deferred();
    driver.before("pause", () => gate.promise);
    const pausing = service.pause(uuid);
    await new Promise((r) => setTimeout(r, 0));
    expect(await rejection(service.reboot(uuid, "HARD"))).toBeInstanceOf(UnexpectedTaskStateError);
    expect(await rejection(service.setAdminPassword(uuid, PASSWORD))).toBeInstanceOf(UnexpectedTaskStateError);
    gate.resolve();
    expect((await pausing).vmState).toBe(VmState.PAUSED);
  });

  it("delete wins over a running task, whose final save then fails", async () => {
    const { service, uuid, driver } = await booted();
    const gate = deferred();
    driver.before("suspend", () => gate.promise);
    const suspending = service.suspend(uuid);
    await new Promise((r) => setTimeout(r, 0));
    await service.delete(uuid);
    gate.resolve();
    const err = await rejection(suspending);
    expect(err instanceof UnexpectedTaskStateError || err instanceof InstanceNotFoundError).toBe(true);
    await expect(service.get(uuid)).rejects.toBeInstanceOf(InstanceNotFoundError);
  });

  it("delete during boot wins: what the spawn made after the delete's destroy is destroyed too", async () => {
    const { service, driver } = setup();
    await service.init();
    const inst = testInstance();
    const gate = deferred();
    // The spawn is under way (nothing on the host yet) when the delete comes: its destroy finds nothing.
    driver.before("spawn", () => gate.promise);
    const booting = service.boot(inst);
    await new Promise((r) => setTimeout(r, 0));
    await service.delete(inst.uuid);
    gate.resolve();
    expect(await rejection(booting)).toBeInstanceOf(InstanceNotFoundError);
    await expect(service.get(inst.uuid)).rejects.toBeInstanceOf(InstanceNotFoundError);
    expect(driver.vms.has(inst.uuid)).toBe(false);
  });

  it("a failed destroy leaves the instance in ERROR", async () => {
    const { service, uuid, driver } = await booted();
    driver.failOn("destroy", new HypervisorUnavailableError("host-a", "gone"));
    await expect(service.delete(uuid)).rejects.toBeInstanceOf(HypervisorUnavailableError);
    expect(await service.get(uuid)).toMatchObject({ vmState: VmState.ERROR, taskState: null });
  });

  it("syncPowerState follows the hypervisor, and waits while a task runs", async () => {
    const { service, uuid, driver, store } = await booted();
    driver.vms.get(uuid)!.power = PowerState.SHUTDOWN;
    expect(await service.syncPowerState(uuid)).toMatchObject({
      vmState: VmState.STOPPED,
      powerState: PowerState.SHUTDOWN,
    });
    driver.vms.get(uuid)!.power = PowerState.RUNNING;
    await store.save(uuid, { taskState: TaskState.POWERING_ON });
    expect(await service.syncPowerState(uuid)).toMatchObject({
      vmState: VmState.STOPPED,
      taskState: TaskState.POWERING_ON,
    });
    await store.save(uuid, { taskState: null });
    driver.vms.delete(uuid);
    expect(await service.syncPowerState(uuid)).toMatchObject({
      vmState: VmState.STOPPED,
      powerState: PowerState.NOSTATE,
    });
  });

  it.each([
    [VmState.ACTIVE, PowerState.SHUTDOWN, VmState.STOPPED],
    [VmState.ACTIVE, PowerState.CRASHED, VmState.STOPPED],
    [VmState.ACTIVE, PowerState.PAUSED, VmState.PAUSED],
    [VmState.STOPPED, PowerState.RUNNING, VmState.ACTIVE],
    [VmState.SUSPENDED, PowerState.SHUTDOWN, VmState.SUSPENDED],
    [VmState.SUSPENDED, PowerState.RUNNING, VmState.ACTIVE],
    [VmState.ERROR, PowerState.RUNNING, VmState.ERROR],
    [VmState.RESCUED, PowerState.RUNNING, VmState.RESCUED],
  ] as const)("reconcileVmState(%s, %i) = %s", (vm, power, expected) => {
    expect(reconcileVmState(vm, power)).toBe(expected);
  });

  it("does not show instances of another host", async () => {
    const { store, uuid } = await booted();
    const other = new ComputeService({ driver: new StubDriver(), store, host: "host-b" });
    await expect(other.get(uuid)).rejects.toBeInstanceOf(InstanceNotFoundError);
    await expect(other.pause(uuid)).rejects.toBeInstanceOf(InstanceNotFoundError);
    expect(await other.list()).toEqual([]);
  });

  it("retries a failed initHost on the next call", async () => {
    const { service, driver } = setup();
    driver.failOn("initHost", new HypervisorUnavailableError("host-a", "down"));
    await expect(service.boot(testInstance())).rejects.toBeInstanceOf(HypervisorUnavailableError);
    driver.clear("initHost");
    await service.boot(testInstance());
    expect(driver.initCount).toBe(1);
  });

  it("rescue returns a generated password that appears nowhere", async () => {
    const ctx = await booted();
    const { record, password } = await ctx.service.rescue(ctx.uuid);
    expect(record.vmState).toBe(VmState.RESCUED);
    expect(password.length).toBe(20);
    const rescueOptions = ctx.driver.callsOf("rescue")[0]?.[2] as { rescuePassword: Secret };
    expect(rescueOptions.rescuePassword.reveal()).toBe(password.reveal());
    expect(ctx.logger.lines().join("\n")).not.toContain(password.reveal());
    expect(JSON.stringify(await ctx.store.list())).not.toContain(password.reveal());
  });
});

describe("ComputeService.setAdminPassword (seed 000)", () => {
  it("sets a given password: task UPDATING_PASSWORD during the call, cleared after, the Secret returned", async () => {
    const ctx = await booted();
    let during: unknown;
    ctx.driver.before("setAdminPassword", async () => {
      during = (await ctx.store.get(ctx.uuid)).taskState;
    });
    const used = await ctx.service.setAdminPassword(ctx.uuid, PASSWORD);
    expect(during).toBe(TaskState.UPDATING_PASSWORD);
    expect(used).toBeInstanceOf(Secret);
    expect(used.reveal()).toBe(PASSWORD);
    expect(ctx.driver.vms.get(ctx.uuid)?.password).toBe(PASSWORD);
    const passed = ctx.driver.callsOf("setAdminPassword")[0]?.[1];
    expect(passed).toBeInstanceOf(Secret);
    expect(await ctx.service.get(ctx.uuid)).toMatchObject({ vmState: VmState.ACTIVE, taskState: null });
    expect(ctx.store.tasks.slice(-2)).toEqual([TaskState.UPDATING_PASSWORD, null]);
    expect(ctx.logger.records.some((r) => r.msg === "admin password set")).toBe(true);
    await expectNoLeak(ctx);
  });

  it("generates a password when none is given and returns it to the caller", async () => {
    const ctx = await booted();
    const generated = await ctx.service.setAdminPassword(ctx.uuid);
    expect(generated).toBeInstanceOf(Secret);
    expect(generated.length).toBe(20);
    expect(ctx.driver.vms.get(ctx.uuid)?.password).toBe(generated.reveal());
    expect(ctx.logger.lines().join("\n")).not.toContain(generated.reveal());
    expect(JSON.stringify(await ctx.store.list())).not.toContain(generated.reveal());
  });

  it("refuses when another task holds the instance, touching nothing", async () => {
    const ctx = await booted();
    await ctx.store.save(ctx.uuid, { taskState: TaskState.PAUSING });
    const err = await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
    expect(err).toBeInstanceOf(UnexpectedTaskStateError);
    expect(err).toMatchObject({ expected: [null], actual: TaskState.PAUSING });
    expect(ctx.driver.callsOf("setAdminPassword")).toEqual([]);
    expect((await ctx.store.get(ctx.uuid)).taskState).toBe(TaskState.PAUSING);
    await expectNoLeak(ctx, err);
  });

  it.each([
    ["stopped", PowerState.SHUTDOWN],
    ["paused", PowerState.PAUSED],
    ["suspended", PowerState.SUSPENDED],
    ["crashed", PowerState.CRASHED],
  ])("refuses a %s instance: PasswordSetFailedError 'not running', task cleared", async (_label, power) => {
    const ctx = await booted();
    ctx.driver.vms.get(ctx.uuid)!.power = power;
    const err = await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
    expect(err).toBeInstanceOf(PasswordSetFailedError);
    expect(err).toMatchObject({ instanceId: ctx.uuid, reason: `instance ${ctx.uuid} is not running` });
    expect(ctx.driver.callsOf("setAdminPassword")).toEqual([]);
    expect(await ctx.service.get(ctx.uuid)).toMatchObject({
      taskState: null,
      vmState: VmState.ACTIVE,
      powerState: power,
    });
    await expectNoLeak(ctx, err);
  });

  it("treats an instance the driver does not know as not running", async () => {
    const ctx = await booted();
    ctx.driver.vms.delete(ctx.uuid);
    const err = await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
    expect(err).toMatchObject({ reason: `instance ${ctx.uuid} is not running` });
    expect((await ctx.store.get(ctx.uuid)).taskState).toBeNull();
  });

  it("clears the task when the power state cannot be read, and rethrows the typed error", async () => {
    const ctx = await booted();
    const failure = new HypervisorUnavailableError("host-a", "socket closed");
    ctx.driver.failOn("getInfo", failure);
    expect(await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD))).toBe(failure);
    expect(await ctx.store.get(ctx.uuid)).toMatchObject({ taskState: null, vmState: VmState.ACTIVE });
  });

  it.each([
    ["UnsupportedOperationError", new UnsupportedOperationError("setAdminPassword", "stub")],
    ["AdminPasswordNotSupportedError", new AdminPasswordNotSupportedError()],
    ["GuestAgentNotEnabledError", new GuestAgentNotEnabledError("x")],
  ])("rethrows %s as is, clears the task, leaves the vm state", async (_label, failure) => {
    const ctx = await booted();
    ctx.driver.failOn("setAdminPassword", failure);
    const err = await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
    expect(err).toBe(failure);
    expect(await ctx.service.get(ctx.uuid)).toMatchObject({ taskState: null, vmState: VmState.ACTIVE });
    expect(ctx.logger.records.some((r) => r.level === "warn")).toBe(true);
    await expectNoLeak(ctx, err);
  });

  it.each([
    [
      "UnsupportedOperationError",
      new UnsupportedOperationError("setAdminPassword", "stub", { detail: `tried ${PASSWORD}` }),
      UnsupportedOperationError,
    ],
    [
      "AdminPasswordNotSupportedError",
      new AdminPasswordNotSupportedError(`cannot set ${PASSWORD}`),
      AdminPasswordNotSupportedError,
    ],
    [
      "GuestAgentNotEnabledError",
      new GuestAgentNotEnabledError("x", { cause: new Error(PASSWORD) }),
      GuestAgentNotEnabledError,
    ],
  ])("replaces a %s that echoes the password with a clean one of the same class", async (_label, failure, cls) => {
    const ctx = await booted();
    ctx.driver.failOn("setAdminPassword", failure);
    const err = await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
    expect(err).toBeInstanceOf(cls);
    expect(err).not.toBe(failure);
    await expectNoLeak(ctx, err);
  });

  it("rethrows UnexpectedTaskStateError when a delete takes over during the call, leaving its task alone", async () => {
    const ctx = await booted();
    ctx.driver.before("setAdminPassword", async () => {
      await ctx.store.save(ctx.uuid, { taskState: TaskState.DELETING });
    });
    const err = await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
    expect(err).toBeInstanceOf(UnexpectedTaskStateError);
    expect(await ctx.store.get(ctx.uuid)).toMatchObject({ taskState: TaskState.DELETING, vmState: VmState.ACTIVE });
    await expectNoLeak(ctx, err);
  });

  it("rethrows an UnexpectedTaskStateError raised by the driver", async () => {
    const ctx = await booted();
    const failure = new UnexpectedTaskStateError(ctx.uuid, [TaskState.UPDATING_PASSWORD], TaskState.DELETING);
    ctx.driver.failOn("setAdminPassword", failure);
    expect(await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD))).toBe(failure);
  });

  it.each([
    ["a plain error echoing the password", () => new Error(`chpasswd: bad line root:${PASSWORD}`)],
    ["a PasswordSetFailedError from the driver", () => new PasswordSetFailedError("x", `agent said ${PASSWORD}`)],
    ["a thrown string", () => `raw ${PASSWORD}`],
  ])(
    "on %s: vm state unchanged (bug 1757061), task cleared, fault recorded, a NEW PasswordSetFailedError",
    async (_label, make) => {
      const ctx = await booted();
      const failure = make();
      ctx.driver.failOn("setAdminPassword", failure);
      const err = await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
      expect(err).toBeInstanceOf(PasswordSetFailedError);
      expect(err).not.toBe(failure);
      expect(err).toMatchObject({ instanceId: ctx.uuid, reason: "error setting admin password" });
      expect((err as Error).cause).toBeUndefined();
      expect(await ctx.service.get(ctx.uuid)).toMatchObject({
        vmState: VmState.ACTIVE,
        taskState: null,
        lastError: { code: "VIRTKIT_PASSWORD_SET_FAILED" },
      });
      expect(ctx.logger.records.some((r) => r.level === "error" && r.msg === "set admin password failed")).toBe(true);
      await expectNoLeak(ctx, err);
    },
  );

  it("an unresponsive guest agent is 'not implemented by this guest' (seed 004 + 000): typed, no ERROR, fault kept", async () => {
    const ctx = await booted();
    for (const failure of [
      new GuestAgentUnresponsiveError(ctx.uuid),
      new GuestAgentUnresponsiveError(ctx.uuid, { cause: { password: PASSWORD, text: PASSWORD } }),
    ]) {
      ctx.driver.failOn("setAdminPassword", failure);
      const err = await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
      expect(err).toBeInstanceOf(GuestAgentUnresponsiveError);
      expect(await ctx.service.get(ctx.uuid)).toMatchObject({
        vmState: VmState.ACTIVE,
        taskState: null,
        lastError: { code: "VIRTKIT_GUEST_AGENT_UNRESPONSIVE" },
      });
      await expectNoLeak(ctx, err);
    }
  });

  it.each([
    ["a deadline", () => new OperationTimeoutError("set admin password", 50)],
    ["the caller's abort", () => new OperationAbortedError("set admin password")],
  ])("on %s: the typed error, vm state unchanged, task cleared, fault recorded", async (_label, make) => {
    const ctx = await booted();
    const failure = make();
    ctx.driver.failOn("setAdminPassword", failure);
    const err = await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
    expect(err).toBe(failure);
    expect(await ctx.service.get(ctx.uuid)).toMatchObject({
      vmState: VmState.ACTIVE,
      taskState: null,
      lastError: { code: failure.code },
    });
  });

  it.each([VmState.ERROR, VmState.RESCUED, VmState.STOPPED, VmState.SUSPENDED])(
    "refuses an instance in vm state %s before any driver call (Nova's API: ACTIVE only)",
    async (vmState) => {
      const ctx = await booted();
      await ctx.store.save(ctx.uuid, { vmState });
      const infosBefore = ctx.driver.callsOf("getInfo").length;
      const err = await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
      expect(err).toBeInstanceOf(InvalidStateError);
      expect(ctx.driver.callsOf("setAdminPassword")).toEqual([]);
      expect(ctx.driver.callsOf("getInfo").length).toBe(infosBefore);
      expect(await ctx.store.get(ctx.uuid)).toMatchObject({ vmState, taskState: null });
    },
  );

  it("records a fault on the not-running and unsupported paths too", async () => {
    const ctx = await booted();
    ctx.driver.vms.get(ctx.uuid)!.power = PowerState.SHUTDOWN;
    await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
    expect((await ctx.store.get(ctx.uuid)).lastError).toMatchObject({ code: "VIRTKIT_PASSWORD_SET_FAILED" });
    ctx.driver.vms.get(ctx.uuid)!.power = PowerState.RUNNING;
    ctx.driver.failOn("setAdminPassword", new AdminPasswordNotSupportedError());
    await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
    expect((await ctx.store.get(ctx.uuid)).lastError).toMatchObject({ code: "VIRTKIT_ADMIN_PASSWORD_NOT_SUPPORTED" });
  });

  it("never leaves the task stuck when saving the outcome fails once", async () => {
    const ctx = await booted();
    ctx.driver.failOn("setAdminPassword", new Error("agent exploded"));
    const save = ctx.store.save.bind(ctx.store);
    let failed = false;
    ctx.store.save = async (uuid, patch, options) => {
      if (!failed && patch.taskState === null) {
        failed = true;
        throw new Error("store briefly unavailable");
      }
      return save(uuid, patch, options);
    };
    await rejection(ctx.service.setAdminPassword(ctx.uuid, PASSWORD));
    expect(failed).toBe(true);
    expect((await ctx.store.get(ctx.uuid)).taskState).toBeNull();
  });

  it.each([
    ["an empty password", ""],
    ["a newline (second chpasswd line)", "pw\nroot:owned"],
    ["a NUL", "pw\u0000"],
    ["a number", 42],
  ])("refuses %s before touching anything", async (_label, bad) => {
    const ctx = await booted();
    const err = await rejection(ctx.service.setAdminPassword(ctx.uuid, bad as string));
    expect(isInvalidInput(err)).toBe(true);
    expect(ctx.driver.callsOf("setAdminPassword")).toEqual([]);
    expect((await ctx.store.get(ctx.uuid)).taskState).toBeNull();
  });

  it("works with a driver that declares nothing and refuses", async () => {
    const refusing = new StubDriver({ capabilities: NO_CAPABILITIES });
    refusing.failOn("setAdminPassword", new UnsupportedOperationError("setAdminPassword", "stub"));
    const ctx = setup({ driver: refusing });
    const vm = testInstance();
    await ctx.service.boot(vm);
    await expect(ctx.service.setAdminPassword(vm.uuid)).rejects.toBeInstanceOf(UnsupportedOperationError);
    expect((await ctx.store.get(vm.uuid)).taskState).toBeNull();
  });
});

describe("ComputeService.snapshot", () => {
  it("creates a queued image, moves through the snapshot task states, clears the task and returns the active image", async () => {
    const ctx = await booted();
    let queued: unknown;
    ctx.driver.before("snapshot", async (...args: unknown[]) => {
      queued = await ctx.imageService.get(args[1] as string);
    });
    const image = await ctx.service.snapshot(ctx.uuid, "nightly");
    expect(queued).toMatchObject({ status: "queued", name: "nightly", properties: { instance_uuid: ctx.uuid } });
    expect(image).toMatchObject({
      name: "nightly",
      status: "active",
      owner: "demo",
      diskFormat: "qcow2",
      properties: { image_location: "snapshot", image_state: "available", owner_id: "demo" },
    });
    expect(image.size).toBe(3);
    expect(ctx.store.tasks.slice(-4)).toEqual([
      TaskState.IMAGE_SNAPSHOT,
      TaskState.IMAGE_PENDING_UPLOAD,
      TaskState.IMAGE_UPLOADING,
      null,
    ]);
    expect(await ctx.service.get(ctx.uuid)).toMatchObject({ vmState: VmState.ACTIVE, taskState: null });
  });

  it("keeps a paused instance paused", async () => {
    const ctx = await booted();
    await ctx.service.pause(ctx.uuid);
    await ctx.service.snapshot(ctx.uuid, "p");
    expect(await ctx.service.get(ctx.uuid)).toMatchObject({ vmState: VmState.PAUSED, powerState: PowerState.PAUSED });
  });

  it("on failure deletes the queued image and clears the task", async () => {
    const ctx = await booted();
    const failure = new HypervisorUnavailableError("host-a", "disk read failed");
    ctx.driver.failOn("snapshot", failure);
    expect(await rejection(ctx.service.snapshot(ctx.uuid, "broken"))).toBe(failure);
    expect(await ctx.imageService.list()).toEqual([]);
    expect(await ctx.service.get(ctx.uuid)).toMatchObject({ taskState: null, vmState: VmState.ACTIVE });
  });

  it("a driver reporting a wrong expected state fails the compare-and-set, and everything is cleaned up", async () => {
    const ctx = await booted();
    const wrong = new StubDriver({ imageService: ctx.imageService });
    ctx.driver.before("snapshot", async (...args: unknown[]) => {
      const options = args[2] as { onTaskState: (t: TaskStateT, e: TaskStateT | null) => Promise<void> };
      await options.onTaskState(TaskState.IMAGE_UPLOADING, TaskState.IMAGE_PENDING_UPLOAD);
    });
    expect(await rejection(ctx.service.snapshot(ctx.uuid, "x"))).toBeInstanceOf(UnexpectedTaskStateError);
    expect(await ctx.imageService.list()).toEqual([]);
    expect((await ctx.store.get(ctx.uuid)).taskState).toBeNull();
    expect(wrong.calls).toEqual([]);
  });

  it("refuses a task state outside the snapshot sequence", async () => {
    const ctx = await booted();
    ctx.driver.before("snapshot", async (...args: unknown[]) => {
      const options = args[2] as { onTaskState: (t: TaskStateT, e: TaskStateT | null) => Promise<void> };
      await options.onTaskState(TaskState.DELETING, TaskState.IMAGE_SNAPSHOT);
    });
    expect(await rejection(ctx.service.snapshot(ctx.uuid, "x"))).toBeInstanceOf(InvalidInputError);
    expect((await ctx.store.get(ctx.uuid)).taskState).toBeNull();
  });

  it("refuses a bad name and a stopped-in-error instance", async () => {
    const ctx = await booted();
    await expect(ctx.service.snapshot(ctx.uuid, "")).rejects.toBeInstanceOf(InvalidInputError);
    await ctx.store.save(ctx.uuid, { vmState: VmState.ERROR });
    await expect(ctx.service.snapshot(ctx.uuid, "x")).rejects.toBeInstanceOf(InvalidStateError);
    expect(await ctx.imageService.list()).toEqual([]);
  });
});

describe("ComputeService instance snapshots", () => {
  it("creates, lists, reverts (restoring power and vm state) and deletes", async () => {
    const ctx = await booted();
    let during: unknown;
    ctx.driver.before("createInstanceSnapshot", async () => {
      during = (await ctx.store.get(ctx.uuid)).taskState;
    });
    const snap = await ctx.service.createInstanceSnapshot(ctx.uuid, "before-upgrade", { description: "safe point" });
    expect(during).toBe(TaskState.INSTANCE_SNAPSHOT);
    expect(snap).toMatchObject({ name: "before-upgrade", powerState: PowerState.RUNNING, description: "safe point" });
    expect(await ctx.service.listInstanceSnapshots(ctx.uuid)).toEqual([snap]);
    await ctx.service.stop(ctx.uuid);
    const reverted = await ctx.service.revertToInstanceSnapshot(ctx.uuid, snap.id);
    expect(reverted).toMatchObject({ vmState: VmState.ACTIVE, powerState: PowerState.RUNNING, taskState: null });
    expect(ctx.store.tasks).toContain(TaskState.INSTANCE_SNAPSHOT_REVERTING);
    await ctx.service.deleteInstanceSnapshot(ctx.uuid, snap.id);
    expect(await ctx.service.listInstanceSnapshots(ctx.uuid)).toEqual([]);
    const err = await rejection(ctx.service.revertToInstanceSnapshot(ctx.uuid, snap.id));
    expect(err).toBeInstanceOf(SnapshotNotFoundError);
    expect((await ctx.store.get(ctx.uuid)).taskState).toBeNull();
  });
});

describe("ComputeService.liveMigrate", () => {
  async function pair() {
    const fabric: StubFabric = new Map();
    const src = await booted({ host: "host-a", fabric });
    const dst = setup({ host: "host-b", fabric });
    return { src, dst, uuid: src.uuid };
  }

  it("runs Nova's sequence and moves the record to the destination's store and host", async () => {
    const { src, dst, uuid } = await pair();
    let during: unknown;
    src.driver.before("liveMigration", async () => {
      during = (await src.store.get(uuid)).taskState;
    });
    const progress: number[] = [];
    const moved = await src.service.liveMigrate(
      uuid,
      dst.service,
      { block: true },
      { onProgress: (p) => progress.push(p.dataRemainingBytes) },
    );
    expect(during).toBe(TaskState.MIGRATING);
    expect(progress).toEqual([0]);
    expect(moved).toMatchObject({
      uuid,
      host: "host-b",
      taskState: null,
      vmState: VmState.ACTIVE,
      powerState: PowerState.RUNNING,
    });
    expect(await dst.service.get(uuid)).toEqual(moved);
    await expect(src.service.get(uuid)).rejects.toBeInstanceOf(InstanceNotFoundError);
    expect(await src.store.list()).toEqual([]);
    const order = [
      ...src.driver.calls.map((c) => `src.${c.method}`),
      ...dst.driver.calls.map((c) => `dst.${c.method}`),
    ];
    const sequence = [
      "dst.checkCanLiveMigrateDestination",
      "src.checkCanLiveMigrateSource",
      "dst.preLiveMigration",
      "src.liveMigration",
      "dst.postLiveMigrationAtDestination",
    ];
    for (const step of sequence) expect(order).toContain(step);
    const policy = dst.driver.callsOf("checkCanLiveMigrateDestination")[0]?.[2];
    expect(policy).toMatchObject({ block: true, live: true });
    expect(dst.driver.callsOf("rollbackLiveMigrationAtDestination")).toEqual([]);
    expect(dst.driver.vms.has(uuid)).toBe(true);
    // The instance now lives on and is operated from the destination.
    await dst.service.pause(uuid);
    expect((await dst.service.get(uuid)).vmState).toBe(VmState.PAUSED);
  });

  it("moves within one store when the destination is a bare driver and host", async () => {
    const { src, dst, uuid } = await pair();
    await dst.service.init();
    const moved = await src.service.liveMigrate(uuid, { driver: dst.driver, host: "host-b" });
    expect(moved.host).toBe("host-b");
    expect((await src.store.get(uuid)).host).toBe("host-b");
    expect(await src.service.list()).toEqual([]);
  });

  it("rolls back at the destination when the move fails, leaving the instance ACTIVE on the source", async () => {
    const { src, dst, uuid } = await pair();
    const failure = new LiveMigrationFailedError(uuid, "connection reset");
    src.driver.failOn("liveMigration", failure);
    expect(await rejection(src.service.liveMigrate(uuid, dst.service))).toBe(failure);
    expect(dst.driver.callsOf("rollbackLiveMigrationAtDestination")).toHaveLength(1);
    expect(dst.driver.callsOf("postLiveMigrationAtDestination")).toEqual([]);
    expect(await src.service.get(uuid)).toMatchObject({
      host: "host-a",
      taskState: null,
      vmState: VmState.ACTIVE,
      powerState: PowerState.RUNNING,
      lastError: { code: "VIRTKIT_LIVE_MIGRATION_FAILED" },
    });
    await expect(dst.service.get(uuid)).rejects.toBeInstanceOf(InstanceNotFoundError);
  });

  it("rolls back when preLiveMigration fails and wraps an untyped error", async () => {
    const { src, dst, uuid } = await pair();
    dst.driver.failOn("preLiveMigration", new Error("bridge missing"));
    const err = await rejection(src.service.liveMigrate(uuid, dst.service));
    expect(err).toBeInstanceOf(LiveMigrationFailedError);
    expect(dst.driver.callsOf("rollbackLiveMigrationAtDestination")).toHaveLength(1);
    expect(src.driver.callsOf("liveMigration")).toEqual([]);
    expect((await src.service.get(uuid)).taskState).toBeNull();
  });

  it.each([
    ["the destination check", "dst", "checkCanLiveMigrateDestination"],
    ["the source check", "src", "checkCanLiveMigrateSource"],
  ] as const)(
    "turns a failure in %s into MigrationPreCheckError and only releases the task",
    async (_l, side, method) => {
      const { src, dst, uuid } = await pair();
      const cause = new InvalidInputError("migrationPolicy", "post-copy not supported");
      (side === "src" ? src : dst).driver.failOn(method, cause);
      const err = await rejection(src.service.liveMigrate(uuid, dst.service));
      expect(err).toBeInstanceOf(MigrationPreCheckError);
      expect((err as Error).cause).toBe(cause);
      expect(dst.driver.callsOf("preLiveMigration")).toEqual([]);
      expect(dst.driver.callsOf("rollbackLiveMigrationAtDestination")).toEqual([]);
      expect(await src.service.get(uuid)).toMatchObject({ taskState: null, vmState: VmState.ACTIVE, host: "host-a" });
    },
  );

  it("passes a driver's own MigrationPreCheckError through", async () => {
    const { src, dst, uuid } = await pair();
    const refusal = new MigrationPreCheckError("not enough memory on host-b");
    dst.driver.failOn("checkCanLiveMigrateDestination", refusal);
    expect(await rejection(src.service.liveMigrate(uuid, dst.service))).toBe(refusal);
  });

  it("refuses the same host, another hypervisor, a bad policy and a stopped instance", async () => {
    const { src, uuid } = await pair();
    expect(await rejection(src.service.liveMigrate(uuid, { driver: src.driver, host: "host-a" }))).toBeInstanceOf(
      MigrationPreCheckError,
    );
    const other = new StubDriver({ name: "other" });
    expect(await rejection(src.service.liveMigrate(uuid, { driver: other, host: "host-c" }))).toBeInstanceOf(
      MigrationPreCheckError,
    );
    expect(
      await rejection(
        src.service.liveMigrate(uuid, { driver: src.driver, host: "x" }, { tunnelled: true, nativeTls: true }),
      ),
    ).toBeInstanceOf(InvalidInputError);
    await src.service.stop(uuid);
    expect(await rejection(src.service.liveMigrate(uuid, { driver: src.driver, host: "x" }))).toBeInstanceOf(
      InvalidStateError,
    );
    expect((await src.store.get(uuid)).taskState).toBeNull();
  });

  it("abortLiveMigration asks the source driver, and the migration rolls back", async () => {
    const { src, dst, uuid } = await pair();
    const gate = deferred();
    src.driver.before("liveMigration", async () => {
      await gate.promise;
      throw new LiveMigrationFailedError(uuid, "aborted by the user");
    });
    const migrating = src.service.liveMigrate(uuid, dst.service);
    await new Promise((r) => setTimeout(r, 5));
    await src.service.abortLiveMigration(uuid);
    expect(src.driver.callsOf("liveMigrationAbort")).toHaveLength(1);
    gate.resolve();
    await expect(migrating).rejects.toBeInstanceOf(LiveMigrationFailedError);
    expect((await src.service.get(uuid)).taskState).toBeNull();
    await expect(src.service.abortLiveMigration(uuid)).rejects.toBeInstanceOf(InvalidStateError);
  });

  it("keeps the record on the source, in ERROR, when the destination store refuses it", async () => {
    const { src, dst, uuid } = await pair();
    const {
      vmState: _v,
      taskState: _t,
      powerState: _p,
      host: _h,
      createdAt: _c,
      updatedAt: _u,
      ...instance
    } = await src.store.get(uuid);
    await dst.store.create({ ...instance, vmState: VmState.ACTIVE, taskState: null, powerState: 1, host: "host-b" });
    await expect(src.service.liveMigrate(uuid, dst.service)).rejects.toBeInstanceOf(InstanceExistsError);
    expect(await src.store.get(uuid)).toMatchObject({ host: "host-a", taskState: null, vmState: VmState.ERROR });
  });

  it("a failure after the move leaves the record on the destination in ERROR", async () => {
    const { src, dst, uuid } = await pair();
    const failure = new HypervisorUnavailableError("host-b", "lost during post");
    dst.driver.failOn("postLiveMigrationAtDestination", failure);
    expect(await rejection(src.service.liveMigrate(uuid, dst.service))).toBe(failure);
    expect(await dst.service.get(uuid)).toMatchObject({ host: "host-b", vmState: VmState.ERROR, taskState: null });
  });
});

describe("ComputeService options", () => {
  it("passes signal and timeout to the driver and stops on an aborted signal", async () => {
    const ctx = await booted();
    const controller = new AbortController();
    await ctx.service.pause(ctx.uuid, { signal: controller.signal, timeoutMs: 1234 });
    expect(ctx.driver.callsOf("pause")).toHaveLength(1);
    controller.abort();
    await expect(ctx.service.unpause(ctx.uuid, { signal: controller.signal })).rejects.toThrow(/aborted/);
    expect((await ctx.store.get(ctx.uuid)).taskState).toBeNull();
  });

  it("needs a driver", () => {
    expect(() => new ComputeService({ driver: undefined as unknown as ComputeDriver })).toThrow(InvalidInputError);
  });
});
