import { describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { ComputeService } from "./compute-service.js";
import { computeServiceFor, computeServiceToken, registerComputeService } from "./compute-service-provider.js";
import { DriverRegistry, createDriver } from "./driver-registry.js";
import { InstanceNotFoundError, InvalidInputError } from "./errors.js";
import { InMemoryImageService, type ImageService } from "./image-service.js";
import type { InstanceStore } from "./instance-store.js";
import { MemoryLogger, type Logger } from "./logger.js";
import { TOKENS, type DriverPlugin } from "./plugin.js";
import { VmState } from "./states.js";
import { StubDriver, testInstance, type StubFabric } from "./testing/stub-driver.js";

const fabric: StubFabric = new Map();
const stubSchema = z.strictObject({ capacity: z.coerce.number().int().positive().optional() });
const stubPlugin: DriverPlugin<typeof stubSchema> = {
  kind: "virtkit-driver",
  name: "stub",
  version: "1.0.0",
  contractVersion: "^1.0.0",
  description: "stub",
  optionsSchema: stubSchema,
  register(container, { token }) {
    let driver: StubDriver | undefined;
    container.register(token, {
      useFactory: (c) => (driver ??= new StubDriver({ imageService: c.resolve(TOKENS.ImageService), fabric })),
    });
  },
};

describe("typed tokens", () => {
  it("resolve to their type and refuse a value of another type", () => {
    const registry = new DriverRegistry({ logger: new MemoryLogger() });
    expectTypeOf(registry.container.resolve(TOKENS.Logger)).toEqualTypeOf<Logger>();
    expectTypeOf(registry.container.resolve(TOKENS.ImageService)).toEqualTypeOf<ImageService>();
    const resolveService = () => registry.container.resolve(TOKENS.ComputeService);
    expectTypeOf(resolveService).returns.toEqualTypeOf<ComputeService>();
    // @ts-expect-error a number is not a Logger
    registry.container.register(TOKENS.Logger, { useValue: 3 });
    // Still a plain shared symbol at run time.
    expect(TOKENS.Logger).toBe(Symbol.for("virtkit.Logger"));
  });

  it("registry.add takes the plugin's own option types", () => {
    const registry = new DriverRegistry();
    registry.add("a", stubPlugin, { capacity: 2 });
    // @ts-expect-error not an option of this plugin
    expect(() => registry.add("b", stubPlugin, { capcity: 2 })).toThrow(InvalidInputError);
    registry.add("c", stubPlugin, ["capacity=3"]);
  });

  it("createDriver takes an imported plugin with its typed options, or a spec", async () => {
    const driver = await createDriver(stubPlugin, { capacity: 1 });
    expect(driver.name).toBe("stub");
    // @ts-expect-error not an option of this plugin
    await expect(createDriver(stubPlugin, { capcity: 1 })).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe("ComputeService in the service's own container", () => {
  async function twoHosts() {
    const registry = new DriverRegistry({ imageService: new InMemoryImageService(), logger: new MemoryLogger() });
    registry.add("host-a", stubPlugin);
    registry.add("host-b", stubPlugin);
    const a = registerComputeService(registry.container, { host: "host-a", asDefault: true });
    const b = registerComputeService(registry.container, { host: "host-b" });
    return { registry, container: registry.container, a, b };
  }

  it("builds one service per host on first resolve, sharing one store, the image service and logger", async () => {
    const { container, a, b } = await twoHosts();
    const serviceA = container.resolve(a);
    const serviceB = container.resolve(b);
    expect(serviceA).toBeInstanceOf(ComputeService);
    expect(container.resolve(a)).toBe(serviceA);
    expect(container.resolve(TOKENS.ComputeService)).toBe(serviceA);
    expect(serviceA.host).toBe("host-a");
    expect(serviceB.host).toBe("host-b");
    expect(serviceA.store).toBe(serviceB.store);
    expect(serviceA.store).toBe(container.resolve<InstanceStore>(TOKENS.InstanceStore));
    expect(serviceA.imageService).toBe(container.resolve(TOKENS.ImageService));
    expect(a).toBe(computeServiceToken("host-a"));
  });

  it("after a live migration the shared store names the new host: one read finds its service", async () => {
    const { container, a, b } = await twoHosts();
    const serviceA = container.resolve(a);
    const serviceB = container.resolve(b);
    const vm = testInstance();
    await serviceA.boot(vm);
    expect(await computeServiceFor(container, vm.uuid)).toBe(serviceA);
    const moved = await serviceA.liveMigrate(vm.uuid, serviceB);
    expect(moved.host).toBe("host-b");
    const owner = await computeServiceFor(container, vm.uuid);
    expect(owner).toBe(serviceB);
    await owner.pause(vm.uuid);
    expect((await serviceB.get(vm.uuid)).vmState).toBe(VmState.PAUSED);
    expect(await serviceA.list()).toEqual([]);
    // One record in the one store, never a copy per host.
    expect((await serviceA.store.list()).map((r) => r.uuid)).toEqual([vm.uuid]);
  });

  it("says so when the instance is unknown, or its host has no service here", async () => {
    const { container, a } = await twoHosts();
    await expect(computeServiceFor(container, "0f0e7c2a-1b3c-4d5e-8f90-a1b2c3d4e5f6")).rejects.toBeInstanceOf(
      InstanceNotFoundError,
    );
    const serviceA = container.resolve(a);
    const vm = testInstance();
    await serviceA.boot(vm);
    await serviceA.store.save(vm.uuid, { host: "host-z" });
    await expect(computeServiceFor(container, vm.uuid)).rejects.toThrow(/host-z, which has no ComputeService/);
  });

  it("refuses a host name that is not a safe string", () => {
    const registry = new DriverRegistry();
    expect(() => registerComputeService(registry.container, { host: "a\nb" })).toThrow(InvalidInputError);
  });
});
