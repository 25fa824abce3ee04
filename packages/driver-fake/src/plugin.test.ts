import {
  CONTRACT_VERSION,
  DEFAULT_MIGRATION_POLICY,
  DriverRegistry,
  InMemoryImageService,
  Secret,
  TOKENS,
  createContainer,
  driverToken,
  type ComputeDriver,
} from "@virtkit/core";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { FakeCloud } from "./fake-cloud.js";
import { FakeDriver } from "./fake-driver.js";
import defaultExport, { fakeOptionsSchema, plugin } from "./plugin.js";
import { FAKE_TOKENS } from "./plugin-tokens.js";
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
    const c = createContainer();
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
    const c = createContainer();
    plugin.register(c, { name: "solo", token: driverToken("solo"), options: fakeOptionsSchema.parse({ cloud: "solo-cloud" }) });
    const driver = c.resolve<ComputeDriver>(driverToken("solo"));
    await driver.spawn({ instance: makeInstance() });
    expect(await driver.listInstances()).toHaveLength(1);
  });

  it("two registrations on one cloud migrate between each other", async () => {
    const c = createContainer();
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

describe("without reflect-metadata", () => {
  // In a fresh Node process on the build (vitest's own process may have the polyfill from elsewhere):
  // neither core nor the plugin loads a global Reflect metadata polyfill, and both still work.
  it("the built plugin registers and resolves its driver, and Reflect is left alone", () => {
    const script = `
const { DriverRegistry, createContainer } = await import("@virtkit/core");
const { plugin } = await import(${JSON.stringify(new URL("../dist/plugin.js", import.meta.url).href)});
const registry = new DriverRegistry({ container: createContainer() });
registry.add("a", plugin, { cloud: "no-reflect" });
const driver = registry.get("a");
await driver.initHost("a");
console.log(JSON.stringify({ name: driver.name, same: driver === registry.get("a"), getMetadata: typeof Reflect.getMetadata, metadata: typeof Reflect.metadata }));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 60_000,
      cwd: new URL("..", import.meta.url).pathname,
    });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({ name: "fake", same: true, getMetadata: "undefined", metadata: "undefined" });
  }, 60_000);

  it("no source file of the package imports reflect-metadata or tsyringe's index", () => {
    const dir = new URL("./", import.meta.url);
    const files = ["plugin.ts", "plugin-tokens.ts", "conformance-environment.ts", "index.ts", "plugin.test.ts"];
    for (const f of files) {
      const text = readFileSync(new URL(f, dir), "utf8");
      expect(text, f).not.toMatch(/^import\s+(?!type\b)(?:[^"';]*from\s+)?["'](?:reflect-metadata|tsyringe)["']/m);
    }
  });
});

describe("conformance environment: the production path", () => {
  it("offers driverSetup: the plugin's register, resolved by token, drives the scenario's own cloud", async () => {
    const factory = plugin.conformanceEnvironment!(fakeOptionsSchema.parse({ capabilities: "disable=rescue" }));
    const env = await factory({ prefix: "prod" });
    expect(typeof env.driverSetup).toBe("function");
    // What the kit does with it (conformance's productionPath), step by step.
    const build = async (host: string) => {
      const setup = await env.driverSetup!(host);
      const registry = new DriverRegistry({ container: setup.container! });
      registry.add(host, plugin, setup.options);
      const driver = registry.get(host);
      setup.adopt?.(driver);
      await driver.initHost(host);
      return driver;
    };
    const a = await build(env.hosts[0]!);
    const b = await build(env.hosts[1]!);
    expect(a).toBeInstanceOf(FakeDriver);
    expect(a.capabilities.rescue).toBe(false);
    // The scenario's private cloud came through FAKE_TOKENS.Cloud, not the module-level "default".
    expect((a as FakeDriver).cloud).toBe((b as FakeDriver).cloud);
    expect((a as FakeDriver).cloud).not.toBe(FakeCloud.named("default"));
    expect(env.sharesStorage!(env.hosts[0]!, env.hosts[1]!)).toBe(false);
    const instance = makeInstance({ imageMeta: env.bootImage! });
    await a.spawn({ instance });
    // The environment's controls and leftovers reach what the registered driver made.
    await env.guestControls!.writeData!(instance, "k", "v");
    expect(await env.guestControls!.readData!(instance, "k")).toBe("v");
    expect(await env.leftovers!()).toHaveLength(1);
    // Adopted: the environment's latency control reaches the driver.
    await env.hypervisorControls!.setLatency!(50);
    await expect(a.listInstances({ timeoutMs: 5 })).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_TIMEOUT" });
    await env.hypervisorControls!.setLatency!(0);
    await a.destroy(instance);
    expect(await env.leftovers!()).toEqual([]);
    expect(env.logLines!().length).toBeGreaterThan(0);
    await env.cleanup();
  });

  it("a registered cloud wins over the cloud option", () => {
    const c = createContainer();
    const cloud = new FakeCloud({ name: "private" });
    c.register(FAKE_TOKENS.Cloud, { useValue: cloud });
    plugin.register(c, { name: "h", token: driverToken("h"), options: fakeOptionsSchema.parse({ cloud: "named" }) });
    expect((c.resolve(driverToken("h")) as FakeDriver).cloud).toBe(cloud);
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
