import {
  ALL_CAPABILITIES,
  CAPABILITY_NAMES,
  HypervisorUnavailableError,
  InMemoryImageService,
  InstanceExistsError,
  InstanceNotFoundError,
  InvalidInputError,
  OperationAbortedError,
  OperationTimeoutError,
  PowerState,
  UnsupportedOperationError,
  type Instance,
} from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { FakeCloud } from "./fake-cloud.js";
import { FakeDriver } from "./fake-driver.js";
import { makeCloud, makeInstance, recordEvents } from "./testing/fixtures.js";

function one() {
  const env = makeCloud();
  return { ...env, driver: env.drivers[0]! };
}

describe("spawn and inspection", () => {
  it("spawns RUNNING and reports memory, vcpus, cpu time and an internal id", async () => {
    const { driver, clock } = one();
    const instance = makeInstance({ flavor: { name: "m1.small", memoryMb: 2048, vcpus: 2, rootGb: 20 } });
    await driver.spawn({ instance });
    const info = await driver.getInfo(instance);
    expect(info).toMatchObject({ state: PowerState.RUNNING, maxMemoryKb: 2048 * 1024, memoryKb: 2048 * 1024, vcpus: 2 });
    expect(typeof info.cpuTimeNs).toBe("bigint");
    expect(info.internalId).toBeTruthy();
    clock.advance(1500);
    // 1.5 s of wall time x 2 vcpus.
    expect((await driver.getInfo(instance)).cpuTimeNs - info.cpuTimeNs).toBe(3_000_000_000n);
  });

  it("cpu time stops while not running and resumes after", async () => {
    const { driver, clock } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    clock.advance(1000);
    await driver.pause(instance);
    const paused = (await driver.getInfo(instance)).cpuTimeNs;
    expect(paused).toBe(1_000_000_000n);
    clock.advance(5000);
    expect((await driver.getInfo(instance)).cpuTimeNs).toBe(paused);
    await driver.unpause(instance);
    clock.advance(250);
    expect((await driver.getInfo(instance)).cpuTimeNs).toBe(1_250_000_000n);
    await driver.powerOff(instance);
    expect((await driver.getInfo(instance)).memoryKb).toBe(0);
  });

  it("keeps listInstances, listInstanceUuids, instanceExists and getInfo consistent", async () => {
    const { driver } = one();
    const a = makeInstance();
    const b = makeInstance();
    const check = async (present: Instance[], absent: Instance[]) => {
      expect([...(await driver.listInstances())].sort()).toEqual(present.map((i) => i.name).sort());
      expect([...(await driver.listInstanceUuids())].sort()).toEqual(present.map((i) => i.uuid).sort());
      for (const i of present) {
        expect(await driver.instanceExists(i)).toBe(true);
        await expect(driver.getInfo(i)).resolves.toBeDefined();
      }
      for (const i of absent) {
        expect(await driver.instanceExists(i)).toBe(false);
        await expect(driver.getInfo(i)).rejects.toBeInstanceOf(InstanceNotFoundError);
      }
    };
    await check([], [a, b]);
    await driver.spawn({ instance: a });
    await check([a], [b]);
    await driver.spawn({ instance: b });
    await check([a, b], []);
    await driver.powerOff(a);
    await check([a, b], []);
    await driver.destroy(a);
    await check([b], [a]);
    await driver.destroy(b);
    await check([], [a, b]);
  });

  it("keeps the disk on destroyDisks: false for a later spawn of the instance, and a later destroy removes it", async () => {
    const { driver, cloud } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    cloud.guest(instance.uuid).writeFile("/data/marker", "kept");
    await driver.destroy(instance, { destroyDisks: false });
    expect(await driver.instanceExists(instance)).toBe(false);
    expect(cloud.keptDisks()).toEqual([["local:host-a", instance.uuid]]);
    // Nova's evacuation onto shared storage: the new domain boots the disk that stayed.
    await driver.spawn({ instance });
    expect(cloud.guest(instance.uuid).readTextFile("/data/marker")).toBe("kept");
    expect(cloud.keptDisks()).toEqual([]);
    await driver.destroy(instance, { destroyDisks: false });
    await driver.destroy(instance);
    expect(cloud.keptDisks()).toEqual([]);
    await driver.spawn({ instance });
    expect(cloud.guest(instance.uuid).readTextFile("/data/marker")).toBeUndefined();
  });

  it("refuses to spawn an existing uuid and changes nothing", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    await driver.pause(instance);
    await expect(driver.spawn({ instance: { ...instance, name: "other" } })).rejects.toBeInstanceOf(InstanceExistsError);
    expect(await driver.listInstances()).toEqual([instance.name]);
    expect((await driver.getInfo(instance)).state).toBe(PowerState.PAUSED);
  });

  it("refuses a uuid that lives on another host of the cloud", async () => {
    const { drivers } = makeCloud(["a", "b"]);
    const instance = makeInstance();
    await drivers[0]!.spawn({ instance });
    await expect(drivers[1]!.spawn({ instance })).rejects.toBeInstanceOf(InstanceExistsError);
  });

  it("rejects unknown instances with InstanceNotFoundError", async () => {
    const { driver } = one();
    const ghost = makeInstance();
    for (const call of [
      () => driver.getInfo(ghost),
      () => driver.pause(ghost),
      () => driver.unpause(ghost),
      () => driver.suspend(ghost),
      () => driver.resume(ghost),
      () => driver.powerOff(ghost),
      () => driver.powerOn(ghost),
      () => driver.reboot(ghost, "HARD"),
      () => driver.rescue(ghost, { properties: {} }),
      () => driver.unrescue(ghost),
      () => driver.getConsoleOutput(ghost),
      () => driver.createInstanceSnapshot(ghost, "s"),
      () => driver.listInstanceSnapshots(ghost),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(InstanceNotFoundError);
    }
  });

  it("console output is a boot log that grows with lifecycle actions", async () => {
    const { driver } = one();
    const instance = makeInstance({ name: "web-1" });
    await driver.spawn({ instance });
    const boot = await driver.getConsoleOutput(instance);
    expect(boot).toContain("Linux version");
    expect(boot).toContain("web-1 login:");
    await driver.reboot(instance, "SOFT");
    const afterReboot = await driver.getConsoleOutput(instance);
    expect(afterReboot.length).toBeGreaterThan(boot.length);
    expect(afterReboot).toContain("reboot: Restarting system");
    await driver.powerOff(instance, { cleanShutdownTimeoutSec: 5 });
    expect(await driver.getConsoleOutput(instance)).toContain("reboot: Power down");
  });

  it("reports host info", async () => {
    const { cloud, images } = makeCloud([]);
    const driver = new FakeDriver({ host: "big", cloud, imageService: images, memoryMb: 65536, vcpus: 32 });
    expect(await driver.getHostInfo()).toEqual({
      hostname: "big",
      hypervisorType: "fake",
      hypervisorVersion: "1.0.0",
      cpuArch: "x86_64",
      vcpus: 32,
      memoryMb: 65536,
    });
  });
});

describe("bad input", () => {
  const bad: [string, (i: Instance) => Instance][] = [
    ["uuid", (i) => ({ ...i, uuid: "not-a-uuid" })],
    ["upper-case uuid", (i) => ({ ...i, uuid: i.uuid.toUpperCase() })],
    ["nil uuid", (i) => ({ ...i, uuid: "00000000-0000-0000-0000-000000000000" })],
    ["empty name", (i) => ({ ...i, name: "" })],
    ["name with a space", (i) => ({ ...i, name: "a b" })],
    ["name with a quote", (i) => ({ ...i, name: "a'b" })],
    ["long name", (i) => ({ ...i, name: "a".repeat(64) })],
    ["zero memory", (i) => ({ ...i, flavor: { ...i.flavor, memoryMb: 0 } })],
    ["fractional vcpus", (i) => ({ ...i, flavor: { ...i.flavor, vcpus: 1.5 } })],
    ["negative root disk", (i) => ({ ...i, flavor: { ...i.flavor, rootGb: -1 } })],
    ["unknown disk format", (i) => ({ ...i, imageMeta: { ...i.imageMeta, diskFormat: "floppy" as "raw" } })],
    ["properties not an object", (i) => ({ ...i, imageMeta: { properties: ["x"] as unknown as Record<string, never> } })],
    ["agent flag not a boolean", (i) => ({ ...i, imageMeta: { properties: { hw_qemu_guest_agent: "maybe" as unknown as boolean } } })],
    ["bad os_admin_user", (i) => ({ ...i, imageMeta: { properties: { os_admin_user: "root:x" } } })],
    ["empty project", (i) => ({ ...i, projectId: "" })],
  ];

  it.each(bad)("spawn refuses a bad %s with InvalidInputError and changes nothing", async (_n, mutate) => {
    const { driver } = one();
    const instance = mutate(makeInstance());
    await expect(driver.spawn({ instance })).rejects.toBeInstanceOf(InvalidInputError);
    expect(await driver.listInstances()).toEqual([]);
  });

  it("refuses a bad uuid everywhere, including destroy", async () => {
    const { driver } = one();
    const instance = { ...makeInstance(), uuid: "../../etc" };
    await expect(driver.getInfo(instance)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(driver.destroy(instance)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(driver.instanceExists(instance)).rejects.toBeInstanceOf(InvalidInputError);
  });

  it("refuses a bad reboot type, bad shutdown timeout and a bad rescue image", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    await expect(driver.reboot(instance, "WARM" as "SOFT")).rejects.toBeInstanceOf(InvalidInputError);
    await expect(driver.powerOff(instance, { cleanShutdownTimeoutSec: -1 })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(driver.rescue(instance, { diskFormat: "nope" as "raw", properties: {} })).rejects.toBeInstanceOf(InvalidInputError);
    expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
  });

  it("refuses bad constructor options", () => {
    const imageService = new InMemoryImageService();
    expect(() => new FakeDriver({ host: "", imageService })).toThrow(InvalidInputError);
    expect(() => new FakeDriver({ host: "h", imageService, latencyMs: -1 })).toThrow(InvalidInputError);
    expect(() => new FakeDriver({ host: "h", imageService, capabilities: { teleport: true } as never })).toThrow(InvalidInputError);
  });
});

describe("capabilities", () => {
  it("are all true by default (kvm with post-copy)", () => {
    const { driver } = one();
    expect(driver.capabilities).toEqual(ALL_CAPABILITIES);
  });

  it("xen cannot set passwords; no post-copy support means no postCopy", () => {
    const { drivers } = makeCloud(["x"], { virtType: "xen", postCopySupported: false });
    expect(drivers[0]!.capabilities.setAdminPassword).toBe(false);
    expect(drivers[0]!.capabilities.postCopy).toBe(false);
  });

  const gated: [string, (d: FakeDriver, i: Instance) => Promise<unknown>][] = [
    ["pause", (d, i) => d.pause(i)],
    ["pause", (d, i) => d.unpause(i)],
    ["suspend", (d, i) => d.suspend(i)],
    ["suspend", (d, i) => d.resume(i)],
    ["rescue", (d, i) => d.rescue(i, { properties: {} })],
    ["rescue", (d, i) => d.unrescue(i)],
    ["softReboot", (d, i) => d.reboot(i, "SOFT")],
    ["consoleOutput", (d, i) => d.getConsoleOutput(i)],
    ["imageSnapshot", (d, i) => d.snapshot(i, "image")],
    ["instanceSnapshots", (d, i) => d.createInstanceSnapshot(i, "s")],
    ["instanceSnapshots", (d, i) => d.listInstanceSnapshots(i)],
    ["instanceSnapshots", (d, i) => d.revertToInstanceSnapshot(i, "s")],
    ["instanceSnapshots", (d, i) => d.deleteInstanceSnapshot(i, "s")],
    ["setAdminPassword", (d, i) => d.setAdminPassword(i, { reveal: () => "x" } as never)],
    ["liveMigration", (d, i) => d.liveMigrationAbort(i)],
    ["liveMigration", (d, i) => d.checkCanLiveMigrateDestination(i, { hostname: "other" } as never, {} as never)],
  ];

  it.each(gated)("switched-off %s rejects with UnsupportedOperationError and changes nothing", async (cap, call) => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    const before = await driver.getInfo(instance);
    driver.setCapabilities({ [cap]: false });
    const err = await call(driver, instance).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedOperationError);
    expect(err).toMatchObject({ capability: cap, driver: "fake" });
    expect(await driver.getInfo(instance)).toEqual(before);
    driver.setCapabilities({ [cap]: true });
    expect(driver.capabilities[cap as keyof typeof driver.capabilities]).toBe(true);
  });

  it("lifecycleEvents off: registerEventListener throws", () => {
    const { cloud, images } = makeCloud([]);
    const driver = new FakeDriver({ host: "h", cloud, imageService: images, capabilities: { lifecycleEvents: false } });
    expect(() => driver.registerEventListener(() => {})).toThrow(UnsupportedOperationError);
  });

  it("planMigration refuses policies needing switched-off capabilities", () => {
    const { driver } = one();
    const policy = { live: true, block: true, tunnelled: false, nativeTls: false, permitPostCopy: false, permitAutoConverge: true, parallelConnections: 1, bandwidthMiBps: 0, maxDowntimeMs: 500 };
    driver.setCapabilities({ blockMigration: false });
    expect(() => driver.planMigration(policy)).toThrow(UnsupportedOperationError);
    driver.setCapabilities({ blockMigration: true, autoConverge: false });
    expect(driver.planMigration(policy).flags).not.toContain("AUTO_CONVERGE");
    driver.setCapabilities({ liveMigration: false });
    expect(() => driver.planMigration(policy)).toThrow(UnsupportedOperationError);
  });

  it("covers every capability name", () => {
    expect(Object.keys(one().driver.capabilities).sort()).toEqual([...CAPABILITY_NAMES].sort());
  });
});

describe("events", () => {
  it("the unsubscribe function stops delivery; a throwing listener does not break the call", async () => {
    const { driver } = one();
    const got: string[] = [];
    driver.registerEventListener(() => {
      throw new Error("listener bug");
    });
    const off = driver.registerEventListener((e) => got.push(e.transition));
    const instance = makeInstance();
    await driver.spawn({ instance });
    off();
    await driver.pause(instance);
    expect(got).toEqual(["STARTED"]);
  });

  it("carry the cloud clock's timestamp", async () => {
    const { driver, clock } = one();
    const rec = recordEvents(driver);
    await driver.spawn({ instance: makeInstance() });
    expect(rec.events[0]!.timestamp).toBe(clock.now());
  });

  it("two drivers on one host both hear the host's events", async () => {
    const { cloud, images } = makeCloud([]);
    const a = new FakeDriver({ host: "h", cloud, imageService: images });
    const b = new FakeDriver({ host: "h", cloud, imageService: images });
    const rec = recordEvents(b);
    const instance = makeInstance();
    await a.spawn({ instance });
    expect(rec.transitions()).toEqual(["STARTED"]);
    expect(await b.listInstanceUuids()).toEqual([instance.uuid]);
  });
});

describe("faults", () => {
  it("failNext fails the next N calls with the given error and changes nothing", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    const boom = new HypervisorUnavailableError("host-a", "daemon restarting");
    driver.faults.failNext("pause", boom, 2);
    await expect(driver.pause(instance)).rejects.toBe(boom);
    await expect(driver.pause(instance)).rejects.toBe(boom);
    expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
    await driver.pause(instance);
    expect((await driver.getInfo(instance)).state).toBe(PowerState.PAUSED);
    expect(driver.faults.pending).toBe(0);
  });

  it("failNext('*') hits whatever is called next; a factory makes a fresh error", async () => {
    const { driver } = one();
    driver.faults.failNext("*", (op) => new HypervisorUnavailableError("host-a", `down during ${op}`));
    await expect(driver.listInstances()).rejects.toMatchObject({ reason: "down during listInstances" });
    await expect(driver.listInstances()).resolves.toEqual([]);
  });

  it("a failed spawn leaves nothing behind", async () => {
    const { driver } = one();
    driver.faults.failNext("spawn", new Error("disk full"));
    const instance = makeInstance();
    await expect(driver.spawn({ instance })).rejects.toThrow("disk full");
    expect(await driver.instanceExists(instance)).toBe(false);
  });

  it("a delayed call times out with OperationTimeoutError and changes nothing", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    driver.faults.delayNext("pause", 200);
    const err = await driver.pause(instance, { timeoutMs: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationTimeoutError);
    expect(err).toMatchObject({ operation: "pause", timeoutMs: 20 });
    // Even after the delay would have elapsed, the pause never happened.
    await new Promise((r) => setTimeout(r, 220));
    expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
  });

  it("a delayed call honours its AbortSignal", async () => {
    const { driver } = one();
    const instance = makeInstance();
    driver.faults.delayNext("spawn", 5_000);
    const ac = new AbortController();
    const p = driver.spawn({ instance }, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error("user cancelled")), 10);
    await expect(p).rejects.toBeInstanceOf(OperationAbortedError);
    expect(await driver.instanceExists(instance)).toBe(false);
  });

  it("a delayed call within its deadline completes", async () => {
    const { driver } = one();
    const instance = makeInstance();
    driver.faults.delayNext("spawn", 10);
    await driver.spawn({ instance }, { timeoutMs: 1000 });
    expect(await driver.instanceExists(instance)).toBe(true);
  });

  it("an already aborted signal rejects at once, even on the fast path", async () => {
    const { driver } = one();
    const ac = new AbortController();
    ac.abort();
    await expect(driver.listInstances({ signal: ac.signal })).rejects.toBeInstanceOf(OperationAbortedError);
    await expect(driver.spawn({ instance: makeInstance() }, { signal: ac.signal })).rejects.toBeInstanceOf(OperationAbortedError);
    expect(await driver.listInstances()).toEqual([]);
  });

  it("latency applies to every call and honours deadlines", async () => {
    const { driver } = one();
    driver.setLatency(100);
    await expect(driver.listInstances({ timeoutMs: 10 })).rejects.toBeInstanceOf(OperationTimeoutError);
    driver.setLatency(0);
    await expect(driver.listInstances({ timeoutMs: 10 })).resolves.toEqual([]);
  });

  it("crash moves RUNNING or PAUSED to CRASHED, never a stopped instance", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    await driver.pause(instance);
    driver.faults.crash(instance.uuid);
    expect((await driver.getInfo(instance)).state).toBe(PowerState.CRASHED);
    expect(await driver.getConsoleOutput(instance)).toContain("Kernel panic");
    expect(() => driver.faults.crash(instance.uuid)).toThrow(RangeError);
    expect(() => driver.faults.crash(makeInstance().uuid)).toThrow(InstanceNotFoundError);
  });

  it("a guest ignoring ACPI makes a clean shutdown fall back to hard after the timeout", async () => {
    const { driver, cloud, clock } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    driver.faults.ignoreAcpi(instance.uuid);
    const t0 = clock.now();
    await driver.powerOff(instance, { cleanShutdownTimeoutSec: 60, retryIntervalSec: 10 });
    const guest = cloud.guest(instance.uuid);
    expect(guest.lastShutdown).toBe("hard");
    expect(clock.now() - t0).toBe(60_000);
    expect(guest.acpiRequests).toBe(7);
    expect((await driver.getInfo(instance)).state).toBe(PowerState.SHUTDOWN);
  });

  it("a guest honouring ACPI shuts down cleanly at once; timeout 0 is a hard power off", async () => {
    const { driver, cloud, clock } = one();
    const a = makeInstance();
    const b = makeInstance();
    await driver.spawn({ instance: a });
    await driver.spawn({ instance: b });
    const t0 = clock.now();
    await driver.powerOff(a, { cleanShutdownTimeoutSec: 60 });
    await driver.powerOff(b);
    expect(clock.now()).toBe(t0);
    expect(cloud.guest(a.uuid).lastShutdown).toBe("clean");
    expect(cloud.guest(b.uuid).lastShutdown).toBe("hard");
  });

  it("a clean shutdown wait is bounded by the call's deadline", async () => {
    const imageService = new InMemoryImageService();
    const driver = new FakeDriver({ host: "h", imageService });
    const instance = makeInstance();
    await driver.spawn({ instance });
    driver.faults.ignoreAcpi(instance.uuid);
    await expect(driver.powerOff(instance, { cleanShutdownTimeoutSec: 30, timeoutMs: 30 })).rejects.toBeInstanceOf(
      OperationTimeoutError,
    );
    expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
  });

  it("a soft reboot of a guest ignoring ACPI falls back to hard", async () => {
    const { driver, cloud } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    driver.faults.ignoreAcpi(instance.uuid);
    const rec = recordEvents(driver);
    await driver.reboot(instance, "SOFT");
    expect(cloud.guest(instance.uuid).lastReboot).toBe("hard");
    expect(rec.transitions()).toEqual(["STOPPED", "STARTED"]);
  });
});

describe("host lifecycle", () => {
  it("is unusable after cleanupHost, which is idempotent", async () => {
    const { driver } = one();
    await driver.initHost("host-a");
    const rec = recordEvents(driver);
    await driver.cleanupHost("host-a");
    await driver.cleanupHost("host-a");
    await expect(driver.listInstances()).rejects.toBeInstanceOf(HypervisorUnavailableError);
    expect(rec.events).toEqual([]);
  });

  it("a new driver on the same host sees the instances (a reconnect)", async () => {
    const { cloud, images } = makeCloud([]);
    const a = new FakeDriver({ host: "h", cloud, imageService: images });
    const instance = makeInstance();
    await a.spawn({ instance });
    await a.cleanupHost("h");
    const b = new FakeDriver({ host: "h", cloud, imageService: images });
    expect(await b.listInstanceUuids()).toEqual([instance.uuid]);
  });

  it("named clouds are shared; a private cloud is not", async () => {
    const imageService = new InMemoryImageService();
    const name = `named-${Math.random()}`;
    const a = new FakeDriver({ host: "a", cloud: name, imageService });
    const b = new FakeDriver({ host: "b", cloud: name, imageService });
    expect(a.cloud).toBe(b.cloud);
    expect(FakeCloud.named(name).hosts().map((h) => h.name)).toEqual(["a", "b"]);
    const c = new FakeDriver({ host: "a", imageService });
    expect(c.cloud).not.toBe(a.cloud);
    FakeCloud.forget(name);
  });
});

describe("fault accounting", () => {
  it("a call refused for bad input or a switched-off capability does not consume a fault", async () => {
    const { driver } = one();
    driver.faults.failNext("getInfo", new Error("injected"));
    await expect(driver.getInfo({ ...makeInstance(), uuid: "bad" })).rejects.toBeInstanceOf(InvalidInputError);
    driver.faults.failNext("pause", new Error("injected"));
    driver.setCapabilities({ pause: false });
    await expect(driver.pause(makeInstance())).rejects.toBeInstanceOf(UnsupportedOperationError);
    expect(driver.faults.pending).toBe(2);
    await expect(driver.getInfo(makeInstance())).rejects.toThrow("injected");
    driver.faults.clear();
    expect(driver.faults.pending).toBe(0);
  });

  it("fail and delay on one operation combine: wait, then fail", async () => {
    const { driver } = one();
    driver.faults.delayNext("listInstances", 20).failNext("listInstances", new Error("late failure"));
    const t0 = Date.now();
    await expect(driver.listInstances()).rejects.toThrow("late failure");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
    await expect(driver.listInstances()).resolves.toEqual([]);
  });
});

describe("console", () => {
  it("is capped like Nova's (about 100 KiB), keeping the newest output", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    for (let i = 0; i < 400; i++) await driver.reboot(instance, "HARD");
    const out = await driver.getConsoleOutput(instance);
    expect(out.length).toBeLessThanOrEqual(100 * 1024);
    expect(out.length).toBeGreaterThan(90 * 1024);
    expect(out.endsWith("login: \n")).toBe(true);
  });
});
