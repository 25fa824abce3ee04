/**
 * The driver against the XAPI simulator (@virtkit/xapi-simulator): what XAPI is left holding after
 * each operation is read back through a separate client, never from the driver's word.
 */
import { randomUUID } from "node:crypto";
import { getEventListeners } from "node:events";
import { createServer as createHttpServer } from "node:http";
import { connect, createServer, type Socket } from "node:net";
import {
  DEFAULT_MIGRATION_POLICY,
  InMemoryImageService,
  MemoryLogger,
  PowerState,
  Secret,
  TaskState,
  type ImageMeta,
  type Instance,
  type LifecycleEvent,
} from "@virtkit/core";
import { startXapiSimulator } from "@virtkit/xapi-simulator";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OC_INSTANCE_UUID, str, strMap, type XapiRecord } from "./vm-record.js";
import { XapiClient } from "./xapi-client.js";
import { XapiError as XapiErrorClass, type XapiError } from "./xapi-error.js";
import { XenapiDriver, type XenapiDriverOptions } from "./xenapi-driver.js";

type Sim = Awaited<ReturnType<typeof startXapiSimulator>>;

let sim: Sim;
let probe: XapiClient;
let images: InMemoryImageService;
let logger: MemoryLogger;
let bootImage: ImageMeta;
let hostNames: string[];
const drivers: XenapiDriver[] = [];

beforeEach(async () => {
  sim = await startXapiSimulator({ agentTimeScale: 0.05 });
  probe = new XapiClient({ url: sim.url, username: sim.username, password: new Secret(sim.password) });
  images = new InMemoryImageService();
  logger = new MemoryLogger();
  const rec = await images.create({ name: "boot", status: "active", diskFormat: "raw" });
  await images.update(rec.id, {}, Buffer.alloc(4096, 7));
  bootImage = { id: rec.id, diskFormat: "raw", properties: { os_type: "linux", hw_qemu_guest_agent: true } };
  const [hosts, pools] = await Promise.all([
    probe.call<Record<string, XapiRecord>>("host.get_all_records"),
    probe.call<Record<string, XapiRecord>>("pool.get_all_records"),
  ]);
  const master = str(Object.values(pools)[0]!, "master");
  hostNames = Object.entries(hosts)
    .sort(([a], [b]) => (a === master ? -1 : b === master ? 1 : 0))
    .map(([, r]) => str(r, "name_label"));
});

afterEach(async () => {
  for (const d of drivers.splice(0)) await d.cleanupHost("");
  await probe.close();
  await sim.close();
});

async function driver(host = hostNames[0]!, extra: Partial<XenapiDriverOptions> = {}): Promise<XenapiDriver> {
  const d = new XenapiDriver({
    url: host === hostNames[0] ? sim.url : sim.slaveUrl,
    username: sim.username,
    password: new Secret(sim.password),
    imageService: images,
    logger,
    softRebootTimeoutSec: 1,
    ...extra,
  });
  drivers.push(d);
  await d.initHost(host);
  return d;
}

function instance(over: Partial<Instance> = {}): Instance {
  const uuid = randomUUID();
  return {
    uuid,
    name: `t-${uuid.slice(0, 8)}`,
    flavor: { name: "m1.tiny", memoryMb: 64, vcpus: 2, rootGb: 1 },
    imageMeta: bootImage,
    projectId: "p1",
    ...over,
  };
}

/** The instance's VM as XAPI holds it (by the probe, not the driver). */
/**
 * The XAPI methods every client called while `body` ran; `refuse` may fail a method instead of
 * sending it (a host that lacks it).
 */
async function callsDuring(body: () => Promise<void>, refuse: (method: string) => Error | undefined = () => undefined): Promise<string[]> {
  const seen: string[] = [];
  const original = XapiClient.prototype.call;
  XapiClient.prototype.call = function (this: XapiClient, method: string, ...rest: unknown[]) {
    seen.push(method);
    const refused = refuse(method);
    if (refused) return Promise.reject(refused);
    return (original as (...args: unknown[]) => Promise<unknown>).call(this, method, ...rest);
  } as typeof original;
  try {
    await body();
  } finally {
    XapiClient.prototype.call = original;
  }
  return seen;
}

async function vmOf(inst: Instance, client = probe): Promise<{ ref: string; rec: XapiRecord } | undefined> {
  for (const ref of await client.call<string[]>("VM.get_by_name_label", [inst.name])) {
    const rec = await client.call<XapiRecord>("VM.get_record", [ref]);
    if (strMap(rec, "other_config")[OC_INSTANCE_UUID] === inst.uuid) return { ref, rec };
  }
  return undefined;
}

describe("spawn and the power operations", () => {
  it("spawns as Nova's vmops did: clone, provision, shape, root VDI with the image, VIFs, start on this host", async () => {
    const d = await driver();
    const inst = instance();
    const events: LifecycleEvent[] = [];
    d.registerEventListener((e) => events.push(e));
    await d.spawn({ instance: inst, networkInfo: [{ id: "port-1", address: "02:00:00:00:00:01", bridge: "xenbr0" }] });
    const vm = (await vmOf(inst))!;
    expect(str(vm.rec, "power_state")).toBe("Running");
    expect(Number(vm.rec.memory_static_max)).toBe(64 * 1024 * 1024);
    expect(Number(vm.rec.VCPUs_max)).toBe(2);
    expect(vm.rec.is_a_template).toBe(false);
    const vifs = vm.rec.VIFs as string[];
    expect(vifs).toHaveLength(1);
    expect(str(await probe.call<XapiRecord>("VIF.get_record", [vifs[0]!]), "MAC")).toBe("02:00:00:00:00:01");
    const vbd = await probe.call<XapiRecord>("VBD.get_record", [(vm.rec.VBDs as string[])[0]!]);
    const vdi = await probe.call<XapiRecord>("VDI.get_record", [str(vbd, "VDI")]);
    expect(Number(vdi.virtual_size)).toBe(1024 ** 3);
    const info = await d.getInfo(inst);
    expect(info).toMatchObject({ state: PowerState.RUNNING, vcpus: 2, maxMemoryKb: 64 * 1024 });
    await expect.poll(() => events.map((e) => e.transition)).toEqual(["STARTED"]);
    expect(events[0]).toMatchObject({ instanceUuid: inst.uuid, host: hostNames[0] });
    await expect(d.spawn({ instance: inst })).rejects.toMatchObject({ code: "VIRTKIT_INSTANCE_EXISTS" });
  });

  it("lists through get_all_records_where: this host's instances only, no template or snapshot on the wire", async () => {
    const a = await driver(hostNames[0]);
    const b = await driver(hostNames[1]);
    const onA = instance({ name: "on-a" });
    const onB = instance({ name: "on-b" });
    await a.spawn({ instance: onA, imageMeta: bootImage });
    await b.spawn({ instance: onB, imageMeta: bootImage });
    await a.createInstanceSnapshot(onA, "snap");
    await a.powerOff(onA, { cleanShutdownTimeoutSec: 0 });
    const seen = await callsDuring(async () => {
      // Halted on A: listed by its affinity there, not on B.
      expect(await a.listInstances()).toEqual(["on-a"]);
      expect(await b.listInstances()).toEqual(["on-b"]);
    });
    expect(seen.filter((m) => m.startsWith("VM.get_all_records"))).toEqual(["VM.get_all_records_where", "VM.get_all_records_where"]);
  });

  it("a host without get_all_records_where is listed through get_all_records, asked once", async () => {
    const a = await driver(hostNames[0]);
    await a.spawn({ instance: instance({ name: "old-host" }), imageMeta: bootImage });
    const unknown = (method: string) =>
      method === "VM.get_all_records_where" ? new XapiErrorClass(method, "MESSAGE_METHOD_UNKNOWN", [method]) : undefined;
    const seen = await callsDuring(async () => {
      expect(await a.listInstances()).toEqual(["old-host"]);
      expect(await a.listInstances()).toEqual(["old-host"]);
    }, unknown);
    expect(seen.filter((m) => m.startsWith("VM.get_all_records"))).toEqual(["VM.get_all_records_where", "VM.get_all_records", "VM.get_all_records"]);
  });

  it("maps each power operation to its XAPI call and VM_BAD_POWER_STATE to InvalidStateError", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    const err = await d.unpause(inst).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "VIRTKIT_INVALID_STATE" });
    expect(((err as Error).cause as XapiError).xapiCode).toBe("VM_BAD_POWER_STATE");
    expect(((err as Error).cause as XapiError).xapiParams.slice(1)).toEqual(["paused", "running"]);
    await d.pause(inst);
    expect(str((await vmOf(inst))!.rec, "power_state")).toBe("Paused");
    await d.unpause(inst);
    await d.suspend(inst);
    expect(str((await vmOf(inst))!.rec, "power_state")).toBe("Suspended");
    await expect(d.pause(inst)).rejects.toMatchObject({ code: "VIRTKIT_INVALID_STATE" });
    await d.resume(inst);
    await d.reboot(inst, "HARD");
    await d.powerOff(inst, { cleanShutdownTimeoutSec: 5 });
    expect(str((await vmOf(inst))!.rec, "power_state")).toBe("Halted");
    await d.powerOff(inst, { cleanShutdownTimeoutSec: 0 });
    await d.powerOn(inst);
    expect((await d.getInfo(inst)).state).toBe(PowerState.RUNNING);
    await d.destroy(inst);
    expect(await vmOf(inst)).toBeUndefined();
    expect(sim.leftovers().filter((l) => !/session/.test(l))).toEqual([]);
    await d.destroy(inst);
    await expect(d.getInfo(inst)).rejects.toMatchObject({ code: "VIRTKIT_INSTANCE_NOT_FOUND" });
  });

  it("reports the domain's CPU time from its RRD counters: growing while running, still while paused, 0 without a domain", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    const a = (await d.getInfo(inst)).cpuTimeNs;
    await new Promise((r) => setTimeout(r, 30));
    const b = (await d.getInfo(inst)).cpuTimeNs;
    // Two simulated vCPUs at 25 %: about 15 ms of CPU in 30 ms, never more than the vCPUs could burn.
    expect(b).toBeGreaterThan(a);
    expect(b - a).toBeLessThan(BigInt(2 * 1_000_000_000));
    await d.pause(inst);
    const p1 = (await d.getInfo(inst)).cpuTimeNs;
    await new Promise((r) => setTimeout(r, 20));
    expect((await d.getInfo(inst)).cpuTimeNs).toBe(p1);
    await d.powerOff(inst, { cleanShutdownTimeoutSec: 0 });
    expect((await d.getInfo(inst)).cpuTimeNs).toBe(0n);
  });

  it("a host that refuses its RRD: getInfo still answers, CPU time 0, said once in the log", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    sim.faults.refuseRrd(true);
    try {
      for (let n = 0; n < 2; n++) {
        expect(await d.getInfo(inst)).toMatchObject({ state: PowerState.RUNNING, cpuTimeNs: 0n });
      }
      expect(logger.lines().filter((l) => l.includes("refused its RRD"))).toHaveLength(1);
    } finally {
      sim.faults.refuseRrd(false);
    }
    expect((await d.getInfo(inst)).cpuTimeNs).toBeGreaterThan(0n);
    await d.destroy(inst);
  });

  it("a power off whose clean shutdown is refused by a clean shutdown still in progress goes hard at once", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    const vm = (await vmOf(inst))!;
    sim.guest(str(vm.rec, "uuid")).ignoreAcpi(true);
    // Another client's clean shutdown holds the VM (the guest ignores it).
    const other = probe.callAsync("VM.clean_shutdown", [vm.ref]).catch((e: unknown) => e);
    await expect
      .poll(async () =>
        Object.values(strMap(await probe.call<XapiRecord>("VM.get_record", [vm.ref]), "current_operations")),
      )
      .toContain("clean_shutdown");
    await d.powerOff(inst, { cleanShutdownTimeoutSec: 5 });
    expect((await d.getInfo(inst)).state).toBe(PowerState.SHUTDOWN);
    await other;
  });

  it("a clean shutdown that fails goes on hard, as Nova's _clean_shutdown_vm; a hard shutdown refused while the VM still runs is not swallowed", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    sim.faults.failNext("VM.clean_shutdown", "INTERNAL_ERROR", ["the guest crashed"]);
    await d.powerOff(inst, { cleanShutdownTimeoutSec: 5 });
    expect((await d.getInfo(inst)).state).toBe(PowerState.SHUTDOWN);
    await d.powerOn(inst);
    sim.faults.failNext("VM.hard_shutdown", "VM_BAD_POWER_STATE", ["OpaqueRef:x", "halted", "running"]);
    await expect(d.powerOff(inst, { cleanShutdownTimeoutSec: 0 })).rejects.toMatchObject({
      code: "VIRTKIT_INVALID_STATE",
    });
    expect((await d.getInfo(inst)).state).toBe(PowerState.RUNNING);
  });

  it("a spawn whose start is cut short by its deadline leaves no VM once the host has ended the start", async () => {
    const d = await driver();
    const inst = instance();
    sim.faults.hangNextTask("VM.start_on");
    await expect(d.spawn({ instance: inst }, { timeoutMs: 500 })).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_TIMEOUT" });
    sim.faults.releaseHungTasks();
    await expect.poll(() => vmOf(inst), { timeout: 5_000, interval: 100 }).toBeUndefined();
    expect(sim.leftovers().filter((l) => !l.includes("session"))).toEqual([]);
  });

  it("a spawn boots the root VDI a destroy with destroyDisks: false kept, and a failed one leaves it kept", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    const rootOf = async (): Promise<string> => {
      const vm = (await vmOf(inst))!;
      return str(await probe.call<XapiRecord>("VBD.get_record", [(vm.rec.VBDs as string[])[0]!]), "VDI");
    };
    const vdi = await rootOf();
    await d.destroy(inst, { destroyDisks: false });
    sim.faults.failNext("VM.start_on", "INTERNAL_ERROR", ["no memory"]);
    await expect(d.spawn({ instance: inst })).rejects.toThrow();
    await expect.poll(() => vmOf(inst), { timeout: 5_000, interval: 100 }).toBeUndefined();
    expect(await probe.call<XapiRecord>("VDI.get_record", [vdi])).toBeDefined();
    await d.spawn({ instance: inst });
    expect(await rootOf()).toBe(vdi);
    await d.destroy(inst);
    await expect(probe.call("VDI.get_record", [vdi])).rejects.toMatchObject({ xapiCode: "HANDLE_INVALID" });
  });

  it("a spawn of the same uuid right after one whose start was cut short waits for that VM's removal, then spawns", async () => {
    const d = await driver();
    const inst = instance();
    sim.faults.hangNextTask("VM.start_on");
    await expect(d.spawn({ instance: inst }, { timeoutMs: 500 })).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_TIMEOUT" });
    setTimeout(() => sim.faults.releaseHungTasks(), 300);
    await d.spawn({ instance: inst }, { timeoutMs: 20_000 });
    expect((await d.getInfo(inst)).state).toBe(PowerState.RUNNING);
    expect((await d.listInstanceUuids()).filter((u) => u === inst.uuid)).toHaveLength(1);
  });

  it("a destroy while a power off is under way wins, whenever it comes: the VM goes", async () => {
    const d = await driver();
    for (const delayMs of [5, 19, 33, 47, 61, 75]) {
      const inst = instance();
      await d.spawn({ instance: inst });
      sim.faults.setLatency(20);
      const off = d.powerOff(inst).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, delayMs));
      await d.destroy(inst);
      await off;
      sim.faults.setLatency(0);
      expect(await d.instanceExists(inst)).toBe(false);
      expect(await vmOf(inst)).toBeUndefined();
    }
  }, 30_000);

  it("many operations on one caller signal put one listener on it, removed again when it aborts", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    const controller = new AbortController();
    const calls = Array.from({ length: 20 }, () => d.getInfo(inst, { signal: controller.signal }));
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    await Promise.all(calls);
    const pending = d.getInfo(inst, { signal: controller.signal });
    controller.abort(new Error("stop"));
    await expect(pending).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_ABORTED" });
  });

  it("falls back to a hard shutdown when the guest ignores ACPI, after the clean timeout", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    sim.guest(str((await vmOf(inst))!.rec, "uuid")).ignoreAcpi(true);
    const t0 = performance.now();
    await d.powerOff(inst, { cleanShutdownTimeoutSec: 0.3 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    expect((await d.getInfo(inst)).state).toBe(PowerState.SHUTDOWN);
  });

  it("follows HOST_IS_SLAVE: a driver pointed at the second host manages that host through the master", async () => {
    const d = await driver(hostNames[1]);
    const inst = instance();
    await d.spawn({ instance: inst });
    const hosts = await probe.call<Record<string, XapiRecord>>("host.get_all_records");
    const resident = str((await vmOf(inst))!.rec, "resident_on");
    expect(str(hosts[resident]!, "name_label")).toBe(hostNames[1]);
    expect(await (await driver()).instanceExists(inst)).toBe(false);
  });

  it("logs in again when XAPI drops the session, transparently", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    sim.faults.dropSessions();
    await d.pause(inst);
    expect((await d.getInfo(inst)).state).toBe(PowerState.PAUSED);
  });

  it("a dropped session costs one new login, not an orphan: the driver's stream and its calls meet SESSION_INVALID together", async () => {
    const d = await driver();
    sim.faults.dropSessions();
    await d.listInstances();
    drivers.splice(drivers.indexOf(d), 1);
    await d.cleanupHost(hostNames[0]!);
    await probe.close();
    // Every session the driver opened is logged out (the old one died with the fault).
    await new Promise((r) => setTimeout(r, 300));
    expect(sim.leftovers().filter((l) => /session/.test(l))).toEqual([]);
  });

  it("works the same over XML-RPC", async () => {
    const d = await driver(hostNames[0], { protocol: "xml-rpc" });
    const inst = instance();
    await d.spawn({ instance: inst });
    await d.pause(inst);
    expect((await d.getInfo(inst)).state).toBe(PowerState.PAUSED);
    await d.destroy(inst);
  });
});

describe("rescue and snapshots", () => {
  it("rescues as Nova did: <name>-rescue with the instance's disk attached, the instance bootlocked", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    await d.rescue(inst, bootImage);
    const [rescueRef] = await probe.call<string[]>("VM.get_by_name_label", [`${inst.name}-rescue`]);
    const rescue = await probe.call<XapiRecord>("VM.get_record", [rescueRef!]);
    expect(str(rescue, "power_state")).toBe("Running");
    const vm = (await vmOf(inst))!;
    expect(str(vm.rec, "power_state")).toBe("Halted");
    expect(strMap(vm.rec, "blocked_operations").start).toBeTruthy();
    const vbds = await Promise.all((rescue.VBDs as string[]).map((r) => probe.call<XapiRecord>("VBD.get_record", [r])));
    const rootOfInstance = str(await probe.call<XapiRecord>("VBD.get_record", [(vm.rec.VBDs as string[])[0]!]), "VDI");
    expect(vbds.find((v) => str(v, "userdevice") === "1")?.VDI).toBe(rootOfInstance);
    await expect(d.powerOn(inst)).rejects.toMatchObject({ code: "VIRTKIT_INVALID_STATE" });
    await d.unrescue(inst);
    expect(await probe.call<string[]>("VM.get_by_name_label", [`${inst.name}-rescue`])).toEqual([]);
    expect(str((await vmOf(inst))!.rec, "power_state")).toBe("Running");
    await d.destroy(inst);
    expect(sim.leftovers().filter((l) => !/session/.test(l))).toEqual([]);
  });

  it("a rescue password for a rescue image without the agent: the rescue goes on and the log says the password was not delivered", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    const password = new Secret("Vk-rescue-no-agent-1!");
    const noAgent = { ...bootImage, properties: { os_type: "linux", xenapi_use_agent: false } };
    await d.rescue(inst, noAgent, { rescuePassword: password });
    const [rescueRef] = await probe.call<string[]>("VM.get_by_name_label", [`${inst.name}-rescue`]);
    expect(str(await probe.call<XapiRecord>("VM.get_record", [rescueRef!]), "power_state")).toBe("Running");
    const lines = logger.lines();
    expect(lines.some((l) => l.includes("the rescue password cannot be delivered") && l.includes(inst.uuid))).toBe(
      true,
    );
    expect(lines.some((l) => l.includes(password.reveal()))).toBe(false);
    await d.unrescue(inst);
    await d.destroy(inst);
  });

  it("instance snapshots: VM.snapshot, VM.revert restores disk and power state, delete removes the VM and its VDIs", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    const guest = sim.guest(str((await vmOf(inst))!.rec, "uuid"));
    guest.writeData("marker", "before");
    const snap = await d.createInstanceSnapshot(inst, "s1", { description: "first" });
    expect(snap).toMatchObject({
      instanceUuid: inst.uuid,
      name: "s1",
      powerState: PowerState.RUNNING,
      description: "first",
    });
    expect((await d.listInstanceSnapshots(inst)).map((s) => s.id)).toEqual([snap.id]);
    guest.writeData("marker", "after");
    await d.powerOff(inst, { cleanShutdownTimeoutSec: 0 });
    await d.revertToInstanceSnapshot(inst, snap.id);
    expect((await d.getInfo(inst)).state).toBe(PowerState.RUNNING);
    expect(sim.guest(str((await vmOf(inst))!.rec, "uuid")).readData("marker")).toBe("before");
    await d.deleteInstanceSnapshot(inst, snap.id);
    await expect(d.revertToInstanceSnapshot(inst, snap.id)).rejects.toMatchObject({
      code: "VIRTKIT_SNAPSHOT_NOT_FOUND",
    });
    await d.destroy(inst);
    expect(sim.leftovers().filter((l) => !/session/.test(l))).toEqual([]);
  });

  it("lists instance snapshots oldest first to the millisecond, though XAPI's snapshot_time has whole seconds", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    // Named against the alphabet, taken within one second.
    const first = await d.createInstanceSnapshot(inst, "snap-z");
    const second = await d.createInstanceSnapshot(inst, "snap-a");
    expect(Date.parse(second.createdAt)).toBeGreaterThan(Date.parse(first.createdAt));
    expect((await d.listInstanceSnapshots(inst)).map((s) => s.id)).toEqual([first.id, second.id]);
    await d.destroy(inst);
  });

  it("a snapshot of a VM that carries a snapshot's marks (as a reverted one does) is still taken, with marks of its own", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    const vm = (await vmOf(inst))!;
    await probe.call("VM.add_to_other_config", [vm.ref, "virtkit_snapshot_taken", "2026-01-01T00:00:00.000Z"]);
    await probe.call("VM.add_to_other_config", [vm.ref, "virtkit_power_state", "SHUTDOWN"]);
    const snap = await d.createInstanceSnapshot(inst, "after-revert");
    expect(snap.createdAt).not.toBe("2026-01-01T00:00:00.000Z");
    expect(snap.powerState).toBe(PowerState.RUNNING);
    expect((await d.listInstanceSnapshots(inst)).map((s) => s.id)).toEqual([snap.id]);
    await d.destroy(inst);
  });

  it("streams an image snapshot into the image service as VHD with core's metadata and the task states", async () => {
    const d = await driver();
    const inst = instance({ kernelId: "aki-1", osType: "linux" });
    await d.spawn({ instance: inst });
    const image = await images.create({ name: "snap", status: "queued" });
    const states: string[] = [];
    await d.snapshot(inst, image.id, { onTaskState: (t) => void states.push(t) });
    expect(states).toEqual([TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_UPLOADING]);
    const got = await images.get(image.id);
    expect(got).toMatchObject({ status: "active", diskFormat: "vhd", containerFormat: "bare", owner: "p1" });
    expect(got.properties).toMatchObject({ image_location: "snapshot", kernel_id: "aki-1", os_type: "linux" });
    const data = Buffer.from(await images.download(image.id));
    // A dynamic VHD ends with its footer: cookie "conectix".
    expect(data.subarray(data.length - 512, data.length - 504).toString("latin1")).toBe("conectix");
    expect(data.length).toBeLessThan(64 * 1024 * 1024);
    expect((await d.getInfo(inst)).state).toBe(PowerState.RUNNING);
    await d.destroy(inst);
    expect(sim.leftovers().filter((l) => !/session/.test(l))).toEqual([]);
  });
});

describe("admin password through the agent", () => {
  it("sets the password the simulated guest then accepts, never logging it", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    const pw = new Secret(`Vk-${randomUUID()}`);
    await d.setAdminPassword(inst, pw);
    const guest = sim.guest(str((await vmOf(inst))!.rec, "uuid"));
    expect(guest.verifyPassword("root", pw.reveal())).toBe(true);
    expect(guest.verifyPassword("root", "something else")).toBe(false);
    expect(logger.lines().join("\n")).not.toContain(pw.reveal());
  });

  it("turns the agent's answers into the contract's typed errors", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    const guest = sim.guest(str((await vmOf(inst))!.rec, "uuid"));
    const pw = new Secret(`Vk-${randomUUID()}`);
    const attempt = () => d.setAdminPassword(inst, pw, { timeoutMs: 2_000 }).catch((e: unknown) => e as Error);
    guest.setAgent("unresponsive");
    expect(await attempt()).toMatchObject({ code: "VIRTKIT_GUEST_AGENT_UNRESPONSIVE" });
    guest.setAgent("absent");
    expect(await attempt()).toMatchObject({ code: "VIRTKIT_GUEST_AGENT_UNRESPONSIVE" });
    guest.setAgent("rebooting");
    expect(await attempt()).toMatchObject({ code: "VIRTKIT_PASSWORD_SET_FAILED" });
    guest.setAgent("broken");
    expect(await attempt()).toMatchObject({ code: "VIRTKIT_PASSWORD_SET_FAILED" });
    guest.setAgent("ok");
    await d.pause(inst);
    expect(await attempt()).toMatchObject({ code: "VIRTKIT_INSTANCE_NOT_RUNNING" });
    const noAgent = instance({
      imageMeta: { ...bootImage, properties: { ...bootImage.properties, hw_qemu_guest_agent: false } },
    });
    await d.spawn({ instance: noAgent });
    await expect(d.setAdminPassword(noAgent, pw)).rejects.toMatchObject({ code: "VIRTKIT_GUEST_AGENT_NOT_ENABLED" });
    const all = [logger.lines().join("\n")];
    expect(all.join("\n")).not.toContain(pw.reveal());
    expect(guest.verifyPassword("root", pw.reveal())).toBe(false);
  });
});

describe("live migration", () => {
  it("moves a running instance inside the pool with VM.pool_migrate", async () => {
    const src = await driver();
    const dst = await driver(hostNames[1]);
    const inst = instance();
    await src.spawn({ instance: inst });
    const srcInfo = await src.getHostInfo();
    let data = await dst.checkCanLiveMigrateDestination(inst, srcInfo, DEFAULT_MIGRATION_POLICY);
    expect(data.plan.flags).toEqual(["pool_migrate", "live"]);
    data = await src.checkCanLiveMigrateSource(inst, data);
    data = await dst.preLiveMigration(inst, data);
    await src.liveMigration(inst, data);
    await dst.postLiveMigrationAtDestination(inst, data);
    expect((await dst.getInfo(inst)).state).toBe(PowerState.RUNNING);
    expect(await src.instanceExists(inst)).toBe(false);
    await dst.powerOff(inst, { cleanShutdownTimeoutSec: 0 });
    // Halted, it still belongs to the destination (its affinity moved too).
    expect(await dst.instanceExists(inst)).toBe(true);
    expect(await src.instanceExists(inst)).toBe(false);
  });

  it("reports a slowed move's progress from its task, as a share of the guest's memory, and nothing after it settled", async () => {
    const src = await driver();
    const dst = await driver(hostNames[1]);
    const inst = instance();
    await src.spawn({ instance: inst });
    let data = await dst.checkCanLiveMigrateDestination(inst, await src.getHostInfo(), DEFAULT_MIGRATION_POLICY);
    data = await dst.preLiveMigration(inst, await src.checkCanLiveMigrateSource(inst, data));
    const reports: { processed: number; total: number; remaining: number; settled: boolean }[] = [];
    let settled = false;
    sim.faults.setMigrationDuration(500);
    await src.liveMigration(inst, data, {
      onProgress: (p) => reports.push({ processed: p.dataProcessedBytes, total: p.dataTotalBytes, remaining: p.dataRemainingBytes, settled }),
    });
    settled = true;
    sim.faults.setMigrationDuration(0);
    await new Promise((r) => setTimeout(r, 200));
    const total = inst.flavor.memoryMb * 1024 * 1024;
    expect(reports.length).toBeGreaterThanOrEqual(5);
    expect(reports.every((r) => r.total === total && r.processed + r.remaining === total && !r.settled)).toBe(true);
    const processed = reports.map((r) => r.processed);
    expect(processed).toEqual([...processed].sort((a, b) => a - b));
    expect(processed.at(-1)).toBe(total);
    await dst.postLiveMigrationAtDestination(inst, data);
  });

  it("aborts a running pool migration with task.cancel, leaving the instance on the source", async () => {
    const src = await driver();
    const dst = await driver(hostNames[1]);
    const inst = instance();
    await src.spawn({ instance: inst });
    const data = await dst.checkCanLiveMigrateDestination(inst, await src.getHostInfo(), DEFAULT_MIGRATION_POLICY);
    sim.faults.setMigrationDuration(2_000);
    const moving = src.liveMigration(inst, data);
    moving.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    await src.liveMigrationAbort(inst);
    await expect(moving).rejects.toMatchObject({ code: "VIRTKIT_LIVE_MIGRATION_FAILED" });
    await dst.rollbackLiveMigrationAtDestination(inst, data);
    expect((await src.getInfo(inst)).state).toBe(PowerState.RUNNING);
    expect(await dst.instanceExists(inst)).toBe(false);
  });

  it("block-migrates across pools: migrate_receive, assert_can_migrate, migrate_send with VDI and VIF maps", async () => {
    const probe2 = new XapiClient({
      url: sim.secondPoolUrl,
      username: sim.username,
      password: new Secret(sim.password),
    });
    try {
      const pool2Host = str(
        Object.values(await probe2.call<Record<string, XapiRecord>>("host.get_all_records"))[0]!,
        "name_label",
      );
      const src = await driver();
      const dst = new XenapiDriver({
        url: sim.secondPoolUrl,
        username: sim.username,
        password: new Secret(sim.password),
        imageService: images,
        logger,
      });
      drivers.push(dst);
      await dst.initHost(pool2Host);
      const inst = instance();
      await src.spawn({ instance: inst, networkInfo: [{ id: "p", address: "02:00:00:00:00:02" }] });
      sim.guest(str((await vmOf(inst))!.rec, "uuid")).writeData("carried", "yes");
      const srcInfo = await src.getHostInfo();
      await expect(dst.checkCanLiveMigrateDestination(inst, srcInfo, DEFAULT_MIGRATION_POLICY)).rejects.toMatchObject({
        code: "VIRTKIT_MIGRATION_PRECHECK_FAILED",
      });
      let data = await dst.checkCanLiveMigrateDestination(inst, srcInfo, { ...DEFAULT_MIGRATION_POLICY, block: true });
      expect(data.plan.flags).toContain("migrate_send");
      data = await src.checkCanLiveMigrateSource(inst, data);
      data = await dst.preLiveMigration(inst, data);
      await src.liveMigration(inst, data);
      await dst.postLiveMigrationAtDestination(inst, data);
      expect(await src.instanceExists(inst)).toBe(false);
      expect(await vmOf(inst)).toBeUndefined();
      const moved = (await vmOf(inst, probe2))!;
      expect(str(moved.rec, "power_state")).toBe("Running");
      expect(sim.guest(str(moved.rec, "uuid")).readData("carried")).toBe("yes");
      expect((await dst.getInfo(inst)).state).toBe(PowerState.RUNNING);
      await dst.destroy(inst);
    } finally {
      await probe2.close();
    }
  });

  it("refuses what XAPI cannot do as unsupported, not silently", async () => {
    const d = await driver();
    expect(() => d.planMigration({ ...DEFAULT_MIGRATION_POLICY, permitPostCopy: true })).toThrow(
      expect.objectContaining({ code: "VIRTKIT_UNSUPPORTED_OPERATION" }),
    );
    const inst = instance();
    await d.spawn({ instance: inst });
    await expect(d.liveMigrationForceComplete(inst)).rejects.toMatchObject({ code: "VIRTKIT_UNSUPPORTED_OPERATION" });
  });
});

describe("crashes and guests of other kinds", () => {
  it("tells a preserved crash (XAPI shows it Paused) from a pause by its own mark, and restarts it", async () => {
    const d = await driver();
    const inst = instance();
    const events: string[] = [];
    d.registerEventListener((e) => e.instanceUuid === inst.uuid && events.push(e.transition));
    await d.spawn({ instance: inst });
    const vm = (await vmOf(inst))!;
    expect(str(vm.rec, "actions_after_crash")).toBe("preserve");
    sim.guest(str(vm.rec, "uuid")).crash();
    await expect.poll(async () => (await d.getInfo(inst)).state).toBe(PowerState.CRASHED);
    await expect(d.unpause(inst)).rejects.toMatchObject({ code: "VIRTKIT_INVALID_STATE" });
    await d.powerOn(inst);
    expect((await d.getInfo(inst)).state).toBe(PowerState.RUNNING);
    await d.pause(inst);
    expect((await d.getInfo(inst)).state).toBe(PowerState.PAUSED);
    await expect.poll(() => events).toEqual(["STARTED", "CRASHED", "STARTED", "PAUSED"]);
  });

  it("sets Administrator's password on a Windows guest (viridian), and refuses an account the agent cannot set", async () => {
    const d = await driver();
    const win = instance({
      osType: "windows",
      imageMeta: { ...bootImage, properties: { ...bootImage.properties, os_type: "windows" } },
    });
    await d.spawn({ instance: win });
    const pw = new Secret(`Vk-${randomUUID()}`);
    await d.setAdminPassword(win, pw);
    const guest = sim.guest(str((await vmOf(win))!.rec, "uuid"));
    expect(guest.verifyPassword("Administrator", pw.reveal())).toBe(true);
    expect(guest.verifyPassword("root", pw.reveal())).toBe(false);
    const other = instance({
      imageMeta: { ...bootImage, properties: { ...bootImage.properties, os_admin_user: "cloud-admin" } },
    });
    await d.spawn({ instance: other });
    await expect(d.setAdminPassword(other, pw)).rejects.toMatchObject({
      code: "VIRTKIT_UNSUPPORTED_OPERATION",
      capability: "adminPasswordAnyUser",
    });
  });

  it("reports the memory guests can have: the host's less its control domain's", async () => {
    const d = await driver();
    const info = await d.getHostInfo();
    const before = info.memoryMb;
    await d.spawn({ instance: instance() });
    expect((await d.getHostInfo()).memoryMb).toBe(before);
    expect(info.hypervisorType).toBe("Xen");
    expect(info.vcpus).toBeGreaterThan(0);
  });
});

describe("initHost", () => {
  /** A TCP relay to the simulator that resets every connection while `down`. */
  async function flakyRelay(): Promise<{ url: string; down: boolean; close: () => Promise<void> }> {
    const target = Number(new URL(sim.url).port);
    const state = { down: true };
    const sockets = new Set<Socket>();
    const server = createServer((c) => {
      if (state.down) return void c.destroy();
      const up = connect(target, "127.0.0.1");
      for (const s of [c, up]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
      }
      c.pipe(up).pipe(c);
      c.on("error", () => up.destroy());
      up.on("error", () => c.destroy());
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    return Object.assign(state, {
      url: `http://127.0.0.1:${port}`,
      close: () =>
        new Promise<void>((r) => {
          server.close(() => r());
          for (const sock of sockets) sock.destroy();
        }),
    });
  }

  it("a failed init leaves nothing behind: once the host is back the next initHost works; a second one for the same host is a no-op", async () => {
    const relay = await flakyRelay();
    try {
      const d = new XenapiDriver({ url: relay.url, username: sim.username, password: new Secret(sim.password), imageService: images, logger });
      drivers.push(d);
      await expect(d.initHost(hostNames[0]!, { timeoutMs: 2_000 })).rejects.toMatchObject({ code: "VIRTKIT_HYPERVISOR_UNAVAILABLE" });
      relay.down = false;
      await d.initHost(hostNames[0]!, { timeoutMs: 5_000 });
      await d.initHost(hostNames[0]!, { timeoutMs: 5_000 });
      expect((await d.getHostInfo()).hostname).toBe(hostNames[0]);
      await expect(d.initHost("another-host")).rejects.toMatchObject({ code: "VIRTKIT_INVALID_STATE" });
    } finally {
      await relay.close();
    }
  }, 20_000);

  it("initHost called three times at once makes one client: one session, closed by cleanupHost; initHost after cleanupHost is refused", async () => {
    const d = new XenapiDriver({ url: sim.url, username: sim.username, password: new Secret(sim.password), imageService: images, logger });
    await Promise.all([d.initHost(hostNames[0]!), d.initHost(hostNames[0]!), d.initHost(hostNames[0]!)]);
    expect((await d.getHostInfo()).hostname).toBe(hostNames[0]);
    await d.cleanupHost("");
    // The test's own probe client holds the one session left.
    expect(sim.leftovers().filter((l) => l.includes("session"))).toEqual(["pool1: 1 session(s) still open"]);
    await expect(d.initHost(hostNames[0]!)).rejects.toMatchObject({ code: "VIRTKIT_HYPERVISOR_UNAVAILABLE" });
    // Unusable afterwards: refused as a host that is gone, never as an instance in a wrong state.
    await expect(d.listInstances()).rejects.toMatchObject({ code: "VIRTKIT_HYPERVISOR_UNAVAILABLE", message: expect.stringMatching(/cleaned up/) });
  });

  it("a failed init closes its target too: a retry does not leave the first one running", async () => {
    let opened = 0;
    let closed = 0;
    const d = new XenapiDriver({
      imageService: images,
      logger,
      xapiHost: "no-such-host",
      target: async () => {
        opened++;
        return { url: sim.url, username: sim.username, password: new Secret(sim.password), close: async () => void closed++ };
      },
    });
    for (let i = 0; i < 2; i++) await expect(d.initHost(hostNames[0]!)).rejects.toMatchObject({ code: "VIRTKIT_INVALID_INPUT" });
    await d.cleanupHost("");
    expect([opened, closed]).toEqual([2, 2]);
  });
});

describe("XapiClient.close", () => {
  it("keeps its deadline while a login never answers", async () => {
    const silent = createHttpServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const c = new XapiClient({ url: `http://127.0.0.1:${(silent.address() as { port: number }).port}`, username: "root", password: new Secret("pw"), timeoutMs: 60_000 });
      const call = c.call("VM.get_all").catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      await c.close({ timeoutMs: 300 });
      expect(performance.now() - t0).toBeLessThan(2_000);
      expect(await call).toBeInstanceOf(Error);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});

describe("console and events", () => {
  it("reads the console through the dom0 console plugin", async () => {
    const d = await driver();
    const inst = instance();
    await d.spawn({ instance: inst });
    expect(await d.getConsoleOutput(inst)).toMatch(/boot/);
  });

  it("awaits tasks and watches VMs on one event.from stream: a task resolves after its VM changes were delivered", async () => {
    const c = new XapiClient({ url: sim.url, username: sim.username, password: new Secret(sim.password) });
    try {
      const seen = new Map<string, string>();
      let baseline = 0;
      const leave = await c.watch({
        classes: ["vm"],
        onEvents: (events, isBaseline) => {
          if (isBaseline) baseline += events.length;
          for (const ev of events) seen.set(ev.ref, ev.operation);
        },
      });
      expect(baseline).toBeGreaterThan(0);
      const [template] = await c.call<string[]>("VM.get_by_name_label", ["Other install media"]);
      const clone = await c.callAsync<string>("VM.clone", [template!, "stream-order"]);
      // The clone's VM arrived on the stream no later than its task's end.
      expect(seen.get(clone)).toBe("add");
      await c.call("VM.destroy", [clone]);
      leave();
    } finally {
      await c.close();
    }
  });

  it("announces power changes from event.from, none after cleanupHost", async () => {
    const d = await driver();
    const inst = instance();
    const events: string[] = [];
    d.registerEventListener((e) => e.instanceUuid === inst.uuid && events.push(e.transition));
    await d.spawn({ instance: inst });
    await d.pause(inst);
    await d.unpause(inst);
    await d.suspend(inst);
    await d.resume(inst);
    await d.powerOff(inst, { cleanShutdownTimeoutSec: 0 });
    await expect.poll(() => events).toEqual(["STARTED", "PAUSED", "RESUMED", "SUSPENDED", "STARTED", "STOPPED"]);
    await d.cleanupHost("");
    drivers.splice(drivers.indexOf(d), 1);
    const other = await driver();
    await other.powerOn(inst);
    await new Promise((r) => setTimeout(r, 100));
    expect(events).toHaveLength(6);
  });
});
