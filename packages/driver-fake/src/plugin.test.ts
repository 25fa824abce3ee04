import {
  CONTRACT_VERSION,
  DEFAULT_MIGRATION_POLICY,
  InMemoryImageService,
  Secret,
  TOKENS,
  driverToken,
  type ComputeDriver,
} from "@virtkit/core";
import { readFileSync } from "node:fs";
import { container as root } from "tsyringe";
import { afterEach, describe, expect, it } from "vitest";
import { FakeCloud } from "./fake-cloud.js";
import { FakeDriver } from "./fake-driver.js";
import defaultExport, { fakeOptionsSchema, plugin } from "./plugin.js";
import { makeInstance } from "./testing/fixtures.js";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

afterEach(() => FakeCloud.forget());

describe("manifest", () => {
  it("is a virtkit driver plugin named fake with the package version", () => {
    expect(defaultExport).toBe(plugin);
    expect(plugin).toMatchObject({ kind: "virtkit-driver", name: "fake", version: pkg.version, contractVersion: "^1.0.0" });
    expect(CONTRACT_VERSION).toMatch(/^1\./);
    expect(typeof plugin.description).toBe("string");
  });
});

describe("options schema", () => {
  it("coerces CLI strings", () => {
    expect(
      fakeOptionsSchema.parse({
        host: "h1",
        cloud: "lab",
        virtType: "xen",
        postCopySupported: "false",
        capabilities: "disable=pause,suspend",
        memoryMb: "4096",
        latencyMs: "5",
        storagePool: "nfs",
      }),
    ).toEqual({
      host: "h1",
      cloud: "lab",
      virtType: "xen",
      postCopySupported: false,
      capabilities: { pause: false, suspend: false },
      memoryMb: 4096,
      latencyMs: 5,
      storagePool: "nfs",
    });
  });

  it("defaults the cloud name", () => {
    expect(fakeOptionsSchema.parse({})).toEqual({ cloud: "default" });
  });

  it("reads enable= and disable= lists and objects", () => {
    expect(fakeOptionsSchema.parse({ capabilities: "disable=pause,rescue,enable=postCopy" }).capabilities).toEqual({
      pause: false,
      rescue: false,
      postCopy: true,
    });
    expect(fakeOptionsSchema.parse({ capabilities: { pause: false } }).capabilities).toEqual({ pause: false });
  });

  it.each([
    [{ nope: 1 }],
    [{ memoryMb: "lots" }],
    [{ memoryMb: "0" }],
    [{ latencyMs: "-1" }],
    [{ virtType: "vmware" }],
    [{ postCopySupported: "maybe" }],
    [{ capabilities: "disable=teleport" }],
    [{ capabilities: "remove=pause" }],
    [{ capabilities: { teleport: false } }],
    [{ host: "" }],
  ])("refuses %j", (raw) => {
    expect(fakeOptionsSchema.safeParse(raw).success).toBe(false);
  });

  it("never echoes a capability list item it refuses (it could be a pasted secret)", () => {
    for (const capabilities of ["disable=pause,hunter2-secret", "hunter2-secret=pause"]) {
      const r = fakeOptionsSchema.safeParse({ capabilities });
      expect(r.success).toBe(false);
      expect(JSON.stringify(r.error?.issues)).not.toContain("hunter2");
      expect(JSON.stringify(r.error?.issues)).toMatch(/item #\d/);
    }
  });
});

describe("register", () => {
  it("registers a FakeDriver built with the container's image service and logger", async () => {
    const c = root.createChildContainer();
    const images = new InMemoryImageService();
    const lines: string[] = [];
    const logger = {
      debug: (m: string) => void lines.push(m),
      info: () => {},
      warn: () => {},
      error: () => {},
      child() {
        return this;
      },
    };
    c.register(TOKENS.ImageService, { useValue: images });
    c.register(TOKENS.Logger, { useValue: logger });
    plugin.register(c, { name: "fake", token: driverToken("fake"), options: fakeOptionsSchema.parse({ capabilities: "disable=pause" }) });
    const driver = c.resolve<ComputeDriver>(driverToken("fake"));
    expect(driver).toBeInstanceOf(FakeDriver);
    expect(c.resolve(driverToken("fake"))).toBe(driver);
    expect(driver.capabilities.pause).toBe(false);
    expect((await driver.getHostInfo()).hostname).toBe("fake");

    const instance = makeInstance();
    await driver.spawn({ instance });
    const image = await images.create({ name: "snap" });
    await driver.snapshot(instance, image.id);
    expect((await images.get(image.id)).status).toBe("active");
    expect(lines).toContain("spawned");
  });

  it("falls back to an in-memory image service and no logger", async () => {
    const c = root.createChildContainer();
    plugin.register(c, { name: "solo", token: driverToken("solo"), options: fakeOptionsSchema.parse({ cloud: "solo-cloud" }) });
    const driver = c.resolve<ComputeDriver>(driverToken("solo"));
    await driver.spawn({ instance: makeInstance() });
    expect(await driver.listInstances()).toHaveLength(1);
  });

  it("two registrations on one cloud migrate between each other", async () => {
    const c = root.createChildContainer();
    const opts = fakeOptionsSchema.parse({ cloud: "lab" });
    plugin.register(c, { name: "src", token: driverToken("src"), options: opts });
    plugin.register(c, { name: "dst", token: driverToken("dst"), options: opts });
    const src = c.resolve<ComputeDriver>(driverToken("src"));
    const dst = c.resolve<ComputeDriver>(driverToken("dst"));
    const instance = makeInstance();
    await src.spawn({ instance, adminPassword: new Secret("pw-123456") });
    const policy = { ...DEFAULT_MIGRATION_POLICY, block: true };
    let data = await dst.checkCanLiveMigrateDestination(instance, await src.getHostInfo(), policy);
    data = await src.checkCanLiveMigrateSource(instance, data);
    data = await dst.preLiveMigration(instance, data);
    await src.liveMigration(instance, data);
    await dst.postLiveMigrationAtDestination(instance, data);
    expect(await dst.listInstanceUuids()).toEqual([instance.uuid]);
    expect(await FakeCloud.named("lab").guest(instance.uuid).checkPassword("root", "pw-123456")).toBe(true);
  });
});

describe("conformance environment", () => {
  it("offers three hosts, guest controls and password verification by the environment", async () => {
    const factory = plugin.conformanceEnvironment!(fakeOptionsSchema.parse({}));
    const env = await factory({ prefix: "t1" });
    // a and c share storage, b does not: both migration modes have a pair.
    expect(env.hosts).toHaveLength(3);
    expect(env.sharesStorage!(env.hosts[0]!, env.hosts[2]!)).toBe(true);
    expect(env.sharesStorage!(env.hosts[0]!, env.hosts[1]!)).toBe(false);
    const a = await env.createDriver();
    const b = await env.createDriver(env.hosts[1]);
    const instance = makeInstance({ imageMeta: env.bootImage! });
    await a.spawn({ instance });
    await a.setAdminPassword(instance, new Secret("hunter2-long"));
    expect(await env.verifyAdminPassword!(instance, "root", new Secret("hunter2-long"))).toBe(true);
    expect(await env.verifyAdminPassword!(instance, "root", new Secret("nope"))).toBe(false);
    await env.guestControls!.writeData!(instance, "k", "v");
    expect(await env.guestControls!.readData!(instance, "k")).toBe("v");
    const boots = await env.guestControls!.bootCount!(instance);
    await a.reboot(instance, "HARD");
    expect(await env.guestControls!.bootCount!(instance)).toBe(boots + 1);
    const image = await env.imageService.create({ name: "snap", status: "queued" });
    await a.snapshot(instance, image.id);
    expect(await env.guestControls!.readImageData!(image.id, "k")).toBe("v");
    expect(await env.guestControls!.readImageData!(image.id, "absent")).toBeUndefined();
    await env.imageService.delete(image.id);
    expect(await env.hypervisorControls!.hostFacts!(env.hosts[0]!)).toEqual({ memoryMb: 16384, vcpus: 8 });
    await env.agentControls!.setAgent(instance, "absent");
    await expect(a.setAdminPassword(instance, new Secret("x"))).rejects.toMatchObject({ code: "VIRTKIT_GUEST_AGENT_UNRESPONSIVE" });
    await env.hypervisorControls!.setLatency!(50);
    await expect(b.listInstances({ timeoutMs: 5 })).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_TIMEOUT" });
    await env.hypervisorControls!.setLatency!(0);
    expect(await env.leftovers!()).toHaveLength(1);
    const crashing = makeInstance({ imageMeta: env.bootImage! });
    await a.spawn({ instance: crashing });
    await env.guestControls!.crash!(crashing);
    expect((await a.getInfo(crashing)).state).toBe(6);
    await a.destroy(crashing);
    expect(env.logLines!().join("\n")).not.toContain("hunter2");
    await a.destroy(instance);
    expect(await env.leftovers!()).toEqual([]);
    await env.cleanup();
    await expect(a.listInstances()).rejects.toMatchObject({ code: "VIRTKIT_HYPERVISOR_UNAVAILABLE" });
  });
});
