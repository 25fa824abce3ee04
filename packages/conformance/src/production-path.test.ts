// The kit tests the path production uses: with an environment offering `driverSetup`, every driver
// is built through the plugin's `register` and resolved by its token, and a plugin that registers
// wrongly fails once, at load.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DriverLoadError,
  DriverRegistry,
  InMemoryImageService,
  MemoryLogger,
  TOKENS,
  type ComputeDriver,
  type ConformanceEnvironmentFactory,
  type DriverPlugin,
  type ImageService,
} from "@virtkit/core";
import { FakeCloud, FakeDriver, plugin as fakePlugin } from "@virtkit/driver-fake";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkRegisterPath, productionPath, resolveDriver } from "./resolve-driver.js";
import { runConformance } from "./runner.js";

/** Environment-side context a plugin's register resolves: the scenario's private cloud. */
const CLOUD = Symbol.for("test.FakeCloud");

interface Recorder {
  tokens: string[];
  adopted: ComputeDriver[];
}

/** A fake plugin whose register resolves the environment's cloud from the container, and its environment. */
function productionPlugin(rec: Recorder, register?: DriverPlugin["register"]): DriverPlugin {
  const plugin: DriverPlugin = {
    ...fakePlugin,
    name: "fake-prod",
    register:
      register ??
      ((container, { name, token }) => {
        rec.tokens.push(String(token));
        let driver: FakeDriver | undefined;
        container.register(token, {
          useFactory: (c) =>
            (driver ??= new FakeDriver({
              host: name,
              cloud: c.isRegistered(CLOUD, true) ? c.resolve<FakeCloud>(CLOUD) : "default",
              imageService: c.resolve<ImageService>(TOKENS.ImageService),
              migrationDurationMs: 20,
              storagePool: "shared",
            })),
        });
      }),
  };
  return plugin;
}

function setupEnvironment(rec: Recorder): ConformanceEnvironmentFactory {
  return async ({ prefix }) => {
    const imageService = new InMemoryImageService();
    const logger = new MemoryLogger();
    const cloud = new FakeCloud({ name: prefix });
    // The environment's container: the image service, the logger, and the private cloud.
    const container = new DriverRegistry({ imageService, logger }).container;
    container.register(CLOUD, { useValue: cloud });
    return {
      hosts: [`${prefix}-a`, `${prefix}-b`],
      imageService,
      driverSetup: (_host: string) => ({ options: {}, container, adopt: (d: ComputeDriver) => void rec.adopted.push(d) }),
      createDriver: () => Promise.reject(new Error("the kit must not call createDriver when driverSetup is offered")),
      limits: {},
      notes: [],
      logLines: () => logger.lines(),
      leftovers: async () => cloud.hosts().flatMap((h) => h.instanceUuids().map((u) => `instance ${u} on ${h.name}`)),
      cleanup: async () => undefined,
    };
  };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-production-path-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the production path", () => {
  it("builds every driver through register, resolved by driverToken(host), adopted, initialised", async () => {
    const rec: Recorder = { tokens: [], adopted: [] };
    const plugin = productionPlugin(rec);
    const report = await runConformance({
      driver: { name: plugin.name },
      environment: productionPath(plugin, setupEnvironment(rec)),
      focus: ["^lifecycle\\.(spawn|pause-unpause)$", "^migration\\.live$"],
    });
    expect(report.results.map((r) => `${r.id}: ${r.status} ${r.reason ?? ""}`.trim())).toEqual([
      "lifecycle.spawn: pass",
      "lifecycle.pause-unpause: pass",
      "migration.live: pass",
    ]);
    // One registration per driver: 1 + 1 + 2 (migration's second host), each under its host's token.
    expect(rec.tokens).toHaveLength(4);
    expect(rec.tokens.every((t) => /^virtkit:driver:vk[0-9a-f]{8}-[ab]$/.test(t))).toBe(true);
    expect(rec.adopted).toHaveLength(4);
    expect(rec.adopted.every((d) => d instanceof FakeDriver)).toBe(true);
    expect(report.notes.some((n) => n.includes("not through its register"))).toBe(false);
  });

  it("fails a plugin that registers under another token, and one that registers something that is not a driver", async () => {
    const rec: Recorder = { tokens: [], adopted: [] };
    const wrongToken = productionPlugin(rec, (container) => {
      container.register("virtkit:driver:somebody-else", { useValue: {} });
    });
    const notADriver = productionPlugin(rec, (container, { token }) => {
      container.register(token, { useValue: { name: "half", spawn: async () => undefined } as unknown as ComputeDriver });
    });
    for (const [plugin, reason] of [
      [wrongToken, /did not register a driver under virtkit:driver:vk/],
      [notADriver, /registered something that is not a ComputeDriver \(missing initHost, cleanupHost/],
    ] as const) {
      const report = await runConformance({
        driver: { name: plugin.name },
        environment: productionPath(plugin, setupEnvironment(rec)),
        focus: ["^lifecycle\\.spawn$"],
      });
      expect(report.results[0]?.status).toBe("fail");
      expect(report.results[0]?.reason).toMatch(reason);
      expect(report.ok).toBe(false);
    }
    // At load the same plugins are ONE typed error each.
    await expect(checkRegisterPath(wrongToken, {})).rejects.toThrow(DriverLoadError);
    await expect(checkRegisterPath(wrongToken, {})).rejects.toThrow(/did not register a driver under virtkit:driver:fake-prod/);
    await expect(checkRegisterPath(notADriver, {})).rejects.toThrow(/not a ComputeDriver/);
    await expect(checkRegisterPath(fakePlugin, {})).resolves.toBeInstanceOf(FakeDriver);
  });

  it("keeps environments without driverSetup working, says so in the notes, and keeps the factory's dispose", async () => {
    let disposed = 0;
    // The fake's own environment offers driverSetup: take it away to have one that does not.
    const fakeEnv = fakePlugin.conformanceEnvironment!(fakePlugin.optionsSchema.parse({}) as never);
    const inner = Object.assign(async (ctx: Parameters<ConformanceEnvironmentFactory>[0]) => ({ ...(await fakeEnv(ctx)), driverSetup: undefined }), {
      dispose: async () => void disposed++,
    });
    const wrapped = productionPath(fakePlugin, inner);
    const report = await runConformance({ driver: { name: "fake" }, environment: wrapped, focus: ["^lifecycle\\.spawn$"] });
    expect(report.results[0]?.status).toBe("pass");
    expect(report.notes).toContain(
      "fake: the drivers under test were built by the plugin's conformance environment, not through its register (checked once at load); offer driverSetup to test the production path",
    );
    // The wrapper keeps the factory's dispose, which the runner calls once after the last scenario.
    expect(wrapped.dispose).toBeTypeOf("function");
    expect(disposed).toBe(1);
  });
});

describe("the fake's own environment", () => {
  it("offers driverSetup: its drivers come from the plugin's register, and a wrong register fails", async () => {
    const fakeUrl = new URL(import.meta.resolve("@virtkit/driver-fake")).href;
    const counted = join(dir, "fake-counted.mjs");
    await writeFile(
      counted,
      `import { plugin as fake } from ${JSON.stringify(fakeUrl)};
export const plugin = { ...fake, name: "fake-counted", register(container, reg) { globalThis.__fakeCounted = (globalThis.__fakeCounted ?? 0) + 1; fake.register(container, reg); } };
`,
    );
    const resolved = await resolveDriver(counted);
    const report = await runConformance({
      driver: resolved.descriptor,
      environment: resolved.environment,
      focus: ["^lifecycle\\.spawn$", "^migration\\.live$"],
    });
    expect(report.results.map((r) => `${r.id}: ${r.status}`)).toEqual(["lifecycle.spawn: pass", "migration.live: pass"]);
    // Once at load, then once per driver: 1 (spawn) + 2 (migration's two hosts).
    expect((globalThis as { __fakeCounted?: number }).__fakeCounted).toBe(4);
    expect(report.notes.some((n) => n.includes("not through its register"))).toBe(false);

    // The same environment with a register that builds the right driver under the wrong token
    // (after the load check): the scenario fails, it is not passed by the environment's own driver.
    const late = join(dir, "fake-late-wrong-token.mjs");
    await writeFile(
      late,
      `import { plugin as fake } from ${JSON.stringify(fakeUrl)};
let calls = 0;
export const plugin = { ...fake, name: "fake-late", register(container, reg) { calls++; fake.register(container, calls === 1 ? reg : { ...reg, token: "virtkit:driver:elsewhere" }); } };
`,
    );
    const wrong = await resolveDriver(late);
    const failed = await runConformance({ driver: wrong.descriptor, environment: wrong.environment, focus: ["^lifecycle\\.spawn$"] });
    expect(failed.results[0]?.status).toBe("fail");
    expect(failed.results[0]?.reason).toMatch(/did not register a driver under virtkit:driver:/);
  });
});

describe("the generic environment (a plugin without its own)", () => {
  it("builds its driver through the production path", async () => {
    const file = join(dir, "plain-driver.mjs");
    const fakeUrl = new URL(import.meta.resolve("@virtkit/driver-fake")).href;
    await writeFile(
      file,
      `import { plugin as fake } from ${JSON.stringify(fakeUrl)};
export const plugin = { ...fake, name: "plain", conformanceEnvironment: undefined, register(container, reg) { globalThis.__plainRegistered = (globalThis.__plainRegistered ?? 0) + 1; fake.register(container, reg); } };
`,
    );
    const resolved = await resolveDriver(file);
    const report = await runConformance({
      driver: resolved.descriptor,
      environment: resolved.environment,
      focus: ["^lifecycle\\.(spawn|destroy)$"],
    });
    expect(report.results.map((r) => r.status)).toEqual(["pass", "pass"]);
    // Once at load, then once per scenario.
    expect((globalThis as { __plainRegistered?: number }).__plainRegistered).toBe(3);
    expect(report.notes.some((n) => n.includes("not through its register"))).toBe(false);
  });
});

describe("a broken register is one load error", () => {
  it.each([
    ["throws", `register() { throw new Error("cannot reach the hypervisor's SDK"); }`, /failed to register: cannot reach/],
    ["registers nothing", `register() {}`, /did not register a driver under virtkit:driver:broken/],
    [
      "registers under another token",
      `register(c) { c.register("virtkit:driver:other", { useValue: {} }); }`,
      /did not register a driver under virtkit:driver:broken/,
    ],
    ["registers a non-driver", `register(c, { token }) { c.register(token, { useValue: 42 }); }`, /not a ComputeDriver/],
  ])("a plugin whose register %s: resolveDriver rejects once, before any scenario", async (_what, register, reason) => {
    const file = join(dir, `broken-${Math.random().toString(36).slice(2)}.mjs`);
    await writeFile(
      file,
      `export const plugin = { kind: "virtkit-driver", name: "broken", version: "1.0.0", contractVersion: "^1.0.0",
  description: "broken on purpose", optionsSchema: { safeParse: (data) => ({ success: true, data }), "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  ${register} };\n`,
    );
    const err: unknown = await resolveDriver(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverLoadError);
    expect((err as Error).message).toMatch(reason);
    // It names the driver, not the environment's host.
    expect((err as Error).message).toMatch(/"broken"/);
    expect((err as Error).message).not.toMatch(/localhost/);
  });
});

describe("the production path cannot be skipped silently", () => {
  /** An environment offering driverSetup whose own createDriver is a placeholder that does not declare pause. */
  function placeholderEnvironment(rec: Recorder): ConformanceEnvironmentFactory {
    const setup = setupEnvironment(rec);
    return async (ctx) => {
      const env = await setup(ctx);
      const placeholder = new FakeDriver({ host: "placeholder", imageService: env.imageService, capabilities: { pause: false } });
      return { ...env, createDriver: async () => placeholder };
    };
  }

  it("given the plugin, runConformance builds the drivers through register; without it, the report says so", async () => {
    const rec: Recorder = { tokens: [], adopted: [] };
    const plugin = productionPlugin(rec);
    const focus = ["^lifecycle\\.pause-unpause$"];
    const withPlugin = await runConformance({ driver: { name: plugin.name }, plugin, environment: placeholderEnvironment(rec), focus });
    // The placeholder declares no pause: only the driver from register can make this scenario run its checks.
    expect(withPlugin.results.map((r) => `${r.id}: ${r.status} ${r.reason ?? ""}`.trim())).toEqual(["lifecycle.pause-unpause: pass"]);
    expect(rec.tokens).toHaveLength(1);
    expect(withPlugin.notes.some((n) => n.includes("no plugin"))).toBe(false);

    const without = await runConformance({ driver: { name: plugin.name }, environment: placeholderEnvironment(rec), focus });
    expect(without.results[0]?.status).toBe("unsupported");
    expect(without.notes).toContain(
      "the environment offers driverSetup, but the run was given no plugin: its drivers came from the environment's createDriver, not through the plugin's register (pass plugin to test the path production uses)",
    );
    // A factory resolveDriver already wrapped is not wrapped twice (one register per driver).
    const before = rec.tokens.length;
    await runConformance({ driver: { name: plugin.name }, plugin, environment: productionPath(plugin, setupEnvironment(rec)), focus });
    expect(rec.tokens.length - before).toBe(1);
  });

  it("a named environment that supplies the options and builds its drivers itself is a load error, not an untested register", async () => {
    const file = join(dir, "own-options-driver.mjs");
    const fakeUrl = new URL(import.meta.resolve("@virtkit/driver-fake")).href;
    await writeFile(
      file,
      `import { plugin as fake } from ${JSON.stringify(fakeUrl)};
const needsUri = { "~standard": { version: 1, vendor: "test", validate: (v) => (v && typeof v.uri === "string" ? { value: v } : { issues: [{ message: "uri is required", path: ["uri"] }] }) } };
export const plugin = {
  ...fake,
  name: "own-options",
  optionsSchema: needsUri,
  conformanceEnvironment: undefined,
  // Registers under the wrong token: nothing would notice if the kit never went through register.
  register(container) { container.register("virtkit:driver:elsewhere", { useValue: {} }); },
  environments: [{
    name: "inside",
    description: "supplies its own uri and builds its drivers itself",
    async unavailable() { return undefined; },
    async conformanceEnvironment() {
      const factory = fake.conformanceEnvironment(fake.optionsSchema.parse({}));
      return async (ctx) => ({ ...(await factory(ctx)), driverSetup: undefined });
    },
  }],
};
`,
    );
    const resolved = await resolveDriver(file, [], { environment: "inside", env: {} });
    const report = await runConformance({ driver: resolved.descriptor, environment: resolved.environment, focus: ["^lifecycle\\.spawn$"] });
    expect(report.results[0]?.status).toBe("fail");
    expect(report.results[0]?.reason).toMatch(/builds its drivers without driverSetup, so the plugin's register would never be tested/);
    expect(report.ok).toBe(false);
  });

  it("keeps a class environment's private members and a frozen environment working", async () => {
    const fakeEnv = fakePlugin.conformanceEnvironment!(fakePlugin.optionsSchema.parse({}) as never);
    class PrivateEnvironment {
      readonly #inner: Awaited<ReturnType<ConformanceEnvironmentFactory>>;
      constructor(inner: Awaited<ReturnType<ConformanceEnvironmentFactory>>) {
        this.#inner = inner;
      }
      get hosts() { return this.#inner.hosts; }
      get imageService() { return this.#inner.imageService; }
      get limits() { return this.#inner.limits; }
      get notes() { return this.#inner.notes; }
      driverSetup(host: string) { return this.#inner.driverSetup!(host); }
      createDriver(host?: string) { return this.#inner.createDriver(host); }
      async leftovers() { return (await this.#inner.leftovers?.()) ?? []; }
      logLines() { return this.#inner.logLines?.() ?? []; }
      cleanup() { return this.#inner.cleanup(); }
    }
    const classy: ConformanceEnvironmentFactory = async (ctx) => new PrivateEnvironment(await fakeEnv(ctx)) as never;
    const frozen: ConformanceEnvironmentFactory = async (ctx) => Object.freeze({ ...(await fakeEnv(ctx)) });
    for (const factory of [classy, frozen]) {
      const report = await runConformance({ driver: { name: "fake" }, environment: productionPath(fakePlugin, factory), focus: ["^lifecycle\\.spawn$"] });
      expect(report.results.map((r) => `${r.status} ${r.reason ?? ""} ${(r.cleanupErrors ?? []).join()}`.trim())).toEqual(["pass"]);
    }
  });
});
