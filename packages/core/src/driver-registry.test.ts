import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DependencyContainer } from "tsyringe";
import { createContainer } from "./container.js";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ComputeService } from "./compute-service.js";
import { CONTRACT_VERSION } from "./driver.js";
import { DriverRegistry, createDriver } from "./driver-registry.js";
import { DriverLoadError, InvalidInputError } from "./errors.js";
import { InMemoryImageService, type ImageService } from "./image-service.js";
import { MemoryLogger, type Logger } from "./logger.js";
import { TOKENS, driverToken, type DriverPlugin } from "./plugin.js";
import { StubDriver, testInstance } from "./testing/stub-driver.js";

const schema = z.strictObject({ host: z.string().default("h"), slow: z.coerce.boolean().optional() });

/** A plugin the way a driver package writes one: a plain class built inside `register`. */
function stubPlugin(seen: { options: unknown[] } = { options: [] }): DriverPlugin<typeof schema> {
  return {
    kind: "virtkit-driver",
    name: "stub",
    version: "1.0.0",
    contractVersion: `^${CONTRACT_VERSION}`,
    description: "test stub",
    optionsSchema: schema,
    register(container: DependencyContainer, { token, options }) {
      seen.options.push(options);
      container.register(token, {
        useFactory: (c) => {
          const driver = new StubDriver({ imageService: c.resolve<ImageService>(TOKENS.ImageService) });
          (driver as StubDriver & { logger?: Logger }).logger = c.resolve<Logger>(TOKENS.Logger);
          return driver;
        },
      });
    },
  };
}

describe("DriverRegistry", () => {
  it("holds two named drivers of one plugin at once, each resolved once", () => {
    const seen = { options: [] as unknown[] };
    const registry = new DriverRegistry();
    const plugin = stubPlugin(seen);
    registry.add("src", plugin, { host: "a" });
    registry.add("dst", plugin, ["host=b", "slow=1"]);
    expect(registry.names()).toEqual(["src", "dst"]);
    expect(seen.options).toEqual([{ host: "a" }, { host: "b", slow: true }]);
    const src = registry.get("src");
    const dst = registry.get("dst");
    expect(src).not.toBe(dst);
    expect(registry.get("src")).toBe(src);
    expect(registry.has("dst")).toBe(true);
    expect(registry.pluginOf("dst")).toBe(plugin);
    expect(registry.container.isRegistered(driverToken("src"))).toBe(true);
    // Both share the registry's image service.
    expect((src as StubDriver).imageService).toBe(registry.imageService);
    expect((dst as StubDriver).imageService).toBe(registry.imageService);
  });

  it("registers the default image service and logger, or the ones given", () => {
    const imageService = new InMemoryImageService();
    const logger = new MemoryLogger();
    const given = new DriverRegistry({ imageService, logger });
    expect(given.imageService).toBe(imageService);
    expect(given.logger).toBe(logger);
    const defaults = new DriverRegistry();
    expect(defaults.imageService).toBeInstanceOf(InMemoryImageService);
    expect(defaults.logger).toBeDefined();
    expect(new DriverRegistry().imageService).not.toBe(defaults.imageService);
  });

  it("inherits services from a parent container and never writes to it", () => {
    const parent = createContainer();
    const imageService = new InMemoryImageService();
    parent.register(TOKENS.ImageService, { useValue: imageService });
    const registry = new DriverRegistry({ container: parent });
    expect(registry.imageService).toBe(imageService);
    registry.add("one", stubPlugin());
    expect(parent.isRegistered(driverToken("one"))).toBe(false);
  });

  it("refuses bad options and registers nothing", () => {
    const registry = new DriverRegistry();
    const seen = { options: [] as unknown[] };
    // @ts-expect-error an unknown key is refused by the plugin's option type too
    expect(() => registry.add("x", stubPlugin(seen), { colour: "red" })).toThrow(
      expect.objectContaining({
        field: "option",
        reason: expect.stringMatching(/^unknown option key #1 \(6 characters\)/),
      }),
    );
    expect(() => registry.add("x", stubPlugin(seen), ["host"])).toThrow(InvalidInputError);
    expect(seen.options).toEqual([]);
    expect(registry.names()).toEqual([]);
  });

  it("refuses a bad or duplicate name, and an incompatible plugin", () => {
    const registry = new DriverRegistry();
    registry.add("a", stubPlugin());
    expect(() => registry.add("a", stubPlugin())).toThrow(expect.objectContaining({ field: "driver.name" }));
    expect(() => registry.add("bad name", stubPlugin())).toThrow(InvalidInputError);
    expect(() => registry.add("b", { ...stubPlugin(), contractVersion: "^9.0.0" })).toThrow(
      /built for contract \^9\.0\.0/,
    );
  });

  it("turns register and resolve failures into DriverLoadError", () => {
    const registry = new DriverRegistry();
    expect(() =>
      registry.add("boom", {
        ...stubPlugin(),
        register: () => {
          throw new Error("no libvirt");
        },
      }),
    ).toThrow(/failed to register: no libvirt/);
    expect(() => registry.add("lazy", { ...stubPlugin(), register: () => undefined })).toThrow(
      /did not register a driver/,
    );
    registry.add("broken", {
      ...stubPlugin(),
      register: (c, { token }) =>
        c.register(token, {
          useFactory: () => {
            throw new Error("ctor failed");
          },
        }),
    });
    expect(() => registry.get("broken")).toThrow(DriverLoadError);
    expect(() => registry.get("broken")).toThrow(/ctor failed/);
    registry.add("shapeless", {
      ...stubPlugin(),
      register: (c, { token }) => c.register(token, { useValue: { name: "x" } as never }),
    });
    expect(() => registry.get("shapeless")).toThrow(/not a ComputeDriver \(missing initHost/);
    expect(() => registry.get("nobody")).toThrow(/no driver of that name in this registry/);
  });

  it("dispose cleans up every resolved driver once, even when one fails, then refuses use", async () => {
    const registry = new DriverRegistry();
    registry.add("a", stubPlugin());
    registry.add("b", stubPlugin());
    registry.add("never", stubPlugin());
    const a = registry.get("a") as StubDriver;
    const b = registry.get("b") as StubDriver;
    a.failOn("cleanupHost", new Error("socket gone"));
    await expect(registry.dispose()).rejects.toThrow("socket gone");
    expect(b.cleanedUp).toEqual(["b"]);
    await registry.dispose();
    expect(b.cleanedUp).toEqual(["b"]);
    expect(() => registry.get("a")).toThrow(/disposed/);
    expect(() => registry.add("c", stubPlugin())).toThrow(/disposed/);
  });

  it("supports await using", async () => {
    let driver: StubDriver;
    {
      await using registry = new DriverRegistry();
      registry.add("a", stubPlugin());
      driver = registry.get("a") as StubDriver;
    }
    expect(driver.cleanedUp).toEqual(["a"]);
  });
});

describe("createDriver", () => {
  const dir = mkdtempSync(join(tmpdir(), "virtkit-create-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("loads, registers and resolves a file plugin, and a ComputeService shares its image service", async () => {
    const file = join(dir, "drv.mjs");
    // The fixture is self-contained: a duck-typed schema, a plain driver object.
    writeFileSync(
      file,
      `export const plugin = {
        kind: "virtkit-driver", name: "mini", version: "0.0.1", contractVersion: "^1.0.0", description: "",
        optionsSchema: { shape: { n: 1 }, safeParse: (v) => ({ success: true, data: { n: Number(v.n ?? 1) } }) },
        register(c, reg) { c.register(reg.token, { useValue: globalThis.__virtkitMini(c, reg) }); },
      };`,
    );
    let imageServiceSeen: ImageService | undefined;
    (globalThis as Record<string, unknown>).__virtkitMini = (
      c: DependencyContainer,
      reg: { options: { n: number } },
    ) => {
      imageServiceSeen = c.resolve<ImageService>(TOKENS.ImageService);
      expect(reg.options).toEqual({ n: 3 });
      return new StubDriver({ name: "mini", imageService: imageServiceSeen });
    };
    const driver = await createDriver(file, ["n=3"], { name: "m1" });
    expect(driver.name).toBe("mini");
    const service = new ComputeService({ driver, host: "h1" });
    expect(service.imageService).toBe(imageServiceSeen);
    const vm = testInstance();
    await service.boot(vm);
    const image = await service.snapshot(vm.uuid, "snap");
    expect(image.status).toBe("active");
    await expect(createDriver(file, { bogus: 1 })).rejects.toThrow(
      expect.objectContaining({
        field: "option",
        reason: expect.stringContaining("unknown option key #1 (5 characters)"),
      }),
    );
    await expect(createDriver(join(dir, "missing.mjs"))).rejects.toThrow(DriverLoadError);
  });
});
