import { describe, expect, it } from "vitest";
import { BaseComputeDriver, capabilitiesFrom, type CapabilityDeclaration } from "./base-driver.js";
import {
  CAPABILITY_METHODS,
  CAPABILITY_NAMES,
  declareCapabilities,
  isCapability,
  validateCapabilities,
  type Capability,
} from "./capabilities.js";
import type { HostInfo, InstanceInfo, LifecycleEvent } from "./driver.js";
import { DriverLoadError, InvalidInputError, UnsupportedOperationError, InstanceNotFoundError } from "./errors.js";
import { DEFAULT_MIGRATION_POLICY } from "./migration-policy.js";
import type { Instance } from "./model.js";
import { Secret } from "./secret.js";
import { PowerState } from "./states.js";

/** The least a driver writes: the base contract, nothing else. */
class MinimalDriver extends BaseComputeDriver {
  readonly running = new Set<string>();
  constructor(declaration: CapabilityDeclaration = []) {
    super("minimal", declaration);
  }
  async initHost(): Promise<void> {}
  async cleanupHost(): Promise<void> {}
  async getHostInfo(): Promise<HostInfo> {
    return { hostname: "h", hypervisorType: "min", hypervisorVersion: "1.0.0", cpuArch: "x86_64", vcpus: 1, memoryMb: 1 };
  }
  async listInstances(): Promise<readonly string[]> {
    return [];
  }
  async listInstanceUuids(): Promise<readonly string[]> {
    return [...this.running];
  }
  async getInfo(instance: Instance): Promise<InstanceInfo> {
    if (!this.running.has(instance.uuid)) throw new InstanceNotFoundError(instance.uuid);
    return { state: PowerState.RUNNING, maxMemoryKb: 1, memoryKb: 1, vcpus: 1, cpuTimeNs: 0n };
  }
  async spawn(): Promise<void> {}
  async destroy(): Promise<void> {}
  async reboot(): Promise<void> {}
  async powerOff(): Promise<void> {}
  async powerOn(): Promise<void> {}
  /** For the event test. */
  fire(uuid: string): void {
    this.emitLifecycleEvent(uuid, "STARTED", "h");
  }
}

class PausingDriver extends MinimalDriver {
  paused = 0;
  constructor() {
    super(["pause"]);
  }
  override async pause(_instance: Instance): Promise<void> {
    this.paused++;
  }
  override async unpause(_instance: Instance): Promise<void> {
    this.paused--;
  }
}

class HalfPausingDriver extends MinimalDriver {
  constructor() {
    super(["pause"]);
  }
  override async pause(): Promise<void> {}
}

const inst = { uuid: "5f0e7c2a-1b3c-4d5e-8f90-a1b2c3d4e5f6", name: "i" } as Instance;

describe("BaseComputeDriver", () => {
  it("refuses every capability method with UnsupportedOperationError naming the capability", async () => {
    const d = new MinimalDriver();
    expect(d.capabilities).toEqual(Object.fromEntries(CAPABILITY_NAMES.map((c) => [c, false])));
    const calls: [Capability, () => unknown][] = [
      ["consoleOutput", () => d.getConsoleOutput(inst)],
      ["pause", () => d.pause(inst)],
      ["pause", () => d.unpause(inst)],
      ["suspend", () => d.suspend(inst)],
      ["suspend", () => d.resume(inst)],
      ["rescue", () => d.rescue(inst, {} as never)],
      ["rescue", () => d.unrescue(inst)],
      ["imageSnapshot", () => d.snapshot(inst, "img")],
      ["instanceSnapshots", () => d.createInstanceSnapshot(inst, "s")],
      ["instanceSnapshots", () => d.listInstanceSnapshots(inst)],
      ["instanceSnapshots", () => d.revertToInstanceSnapshot(inst, "s")],
      ["instanceSnapshots", () => d.deleteInstanceSnapshot(inst, "s")],
      ["setAdminPassword", () => d.setAdminPassword(inst, new Secret("pw-not-shown"))],
      ["liveMigration", () => d.checkCanLiveMigrateDestination(inst, {} as HostInfo, DEFAULT_MIGRATION_POLICY)],
      ["liveMigration", () => d.checkCanLiveMigrateSource(inst, {} as never)],
      ["liveMigration", () => d.preLiveMigration(inst, {} as never)],
      ["liveMigration", () => d.liveMigration(inst, {} as never)],
      ["liveMigration", () => d.postLiveMigrationAtDestination(inst, {} as never)],
      ["liveMigration", () => d.rollbackLiveMigrationAtDestination(inst, {} as never)],
      ["liveMigration", () => d.liveMigrationAbort(inst)],
      ["forceCompleteMigration", () => d.liveMigrationForceComplete(inst)],
    ];
    // Every method a capability covers is in the table above (planMigration is the synchronous one).
    const covered = new Set(calls.map(([, f]) => /d\.(\w+)\(/.exec(f.toString())?.[1]));
    for (const methods of Object.values(CAPABILITY_METHODS)) {
      for (const m of methods) if (m !== "planMigration" && m !== "registerEventListener") expect(covered.has(m), m).toBe(true);
    }
    for (const [capability, call] of calls) {
      const err = await Promise.resolve()
        .then(call)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err, capability).toBeInstanceOf(UnsupportedOperationError);
      expect((err as UnsupportedOperationError).capability).toBe(capability);
      expect((err as UnsupportedOperationError).driver).toBe("minimal");
    }
    expect(() => d.planMigration(DEFAULT_MIGRATION_POLICY)).toThrow(UnsupportedOperationError);
    expect(() => d.registerEventListener(() => undefined)).toThrow(UnsupportedOperationError);
  });

  it("uses what the author implements and declares", async () => {
    const d = new PausingDriver();
    expect(d.capabilities.pause).toBe(true);
    expect(d.capabilities.suspend).toBe(false);
    await d.pause(inst);
    expect(d.paused).toBe(1);
    await expect(d.suspend(inst)).rejects.toBeInstanceOf(UnsupportedOperationError);
  });

  it("refuses a declared capability whose methods are not all implemented", () => {
    expect(() => new HalfPausingDriver()).toThrow(DriverLoadError);
    expect(() => new HalfPausingDriver()).toThrow(/pause: unpause/);
    expect(() => new MinimalDriver({ consoleOutput: true })).toThrow(/consoleOutput: getConsoleOutput/);
  });

  it("refuses a misspelt capability at compile time and at run time", () => {
    // @ts-expect-error "pasue" is not a Capability
    expect(() => new MinimalDriver(["pasue"])).toThrow(/did you mean "pause"/);
    // @ts-expect-error not a Capability either
    expect(() => new MinimalDriver({ liveMigrations: false })).toThrow(DriverLoadError);
  });

  it("instanceExists follows getInfo by default", async () => {
    const d = new MinimalDriver();
    expect(await d.instanceExists(inst)).toBe(false);
    d.running.add(inst.uuid);
    expect(await d.instanceExists(inst)).toBe(true);
  });

  it("delivers lifecycle events to listeners until they unregister; a throwing listener stops no other", () => {
    const d = new MinimalDriver(["lifecycleEvents"]);
    const seen: LifecycleEvent[] = [];
    const offBad = d.registerEventListener(() => {
      throw new Error("listener bug");
    });
    const off = d.registerEventListener((e) => seen.push(e));
    d.fire("u1");
    off();
    offBad();
    d.fire("u2");
    expect(seen.map((e) => [e.instanceUuid, e.transition, e.host])).toEqual([["u1", "STARTED", "h"]]);
  });
});

describe("capability declarations", () => {
  it("validateCapabilities accepts a full record and refuses typos, non-booleans, gaps and orphan flavours", () => {
    const full = Object.fromEntries(CAPABILITY_NAMES.map((c) => [c, c === "pause"]));
    expect(validateCapabilities(full).pause).toBe(true);
    expect(Object.isFrozen(validateCapabilities(full))).toBe(true);
    const refused = (value: unknown, allowMissing = false): InvalidInputError => {
      try {
        validateCapabilities(value, { allowMissing });
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidInputError);
        return e as InvalidInputError;
      }
      throw new Error("accepted");
    };
    expect(refused({ ...full, lifecycleEvent: true }).message).toMatch(/did you mean "lifecycleEvents"/);
    expect(refused({ ...full, pause: "yes" }).field).toBe("capabilities.pause");
    expect(refused({ pause: true }).message).toMatch(/missing suspend/);
    expect(refused({ postCopy: true }, true).message).toMatch(/without liveMigration/);
    expect(refused(["pause"]).message).toMatch(/must be an object/);
    expect(refused(null).message).toMatch(/must be an object/);
    expect(validateCapabilities({ pause: true }, { allowMissing: true }).suspend).toBe(false);
  });

  it("declareCapabilities and capabilitiesFrom build a full record", () => {
    expect(declareCapabilities("pause", "suspend")).toMatchObject({ pause: true, suspend: true, rescue: false });
    // @ts-expect-error misspelt
    expect(() => declareCapabilities("susspend")).toThrow(/did you mean "suspend"/);
    expect(capabilitiesFrom({ rescue: true }).rescue).toBe(true);
    expect(isCapability("pause")).toBe(true);
    expect(isCapability("Pause")).toBe(false);
  });
});
