// The probe a run's pre-flight and `--dry-run` share: setup failures are typed and name their
// stage, what was made is released on every path, and a setup that never settles is bounded.
import { describe, expect, it } from "vitest";
import type { ComputeDriver, ConformanceEnvironment, ConformanceEnvironmentFactory } from "@virtkit/core";
import { DriverSetupError, withProbeDriver } from "./driver-probe.js";

function environment(createDriver: () => Promise<ComputeDriver>, log: string[]): ConformanceEnvironmentFactory {
  return async () =>
    ({
      hosts: ["h1"],
      notes: [],
      createDriver,
      async cleanup() {
        log.push("env cleanup");
      },
    }) as unknown as ConformanceEnvironment;
}

const driver = (log: string[]) =>
  ({
    capabilities: {},
    async cleanupHost(host: string) {
      log.push(`cleanupHost ${host}`);
    },
  }) as unknown as ComputeDriver;

describe("withProbeDriver", () => {
  it("hands the driver to use, then releases the driver and the environment", async () => {
    const log: string[] = [];
    const out = await withProbeDriver(environment(async () => driver(log), log), { timeoutMs: 1_000, prefix: "p" }, (d) => {
      log.push("use");
      return d.capabilities;
    });
    expect(out).toEqual({});
    expect(log).toEqual(["use", "cleanupHost h1", "env cleanup"]);
  });

  it("an environment that cannot be made is a DriverSetupError of that stage, with the cause's first line", async () => {
    const failing: ConformanceEnvironmentFactory = async () => {
      throw new Error("no engine\nstack noise");
    };
    const err = await withProbeDriver(failing, { timeoutMs: 1_000, prefix: "p" }, () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverSetupError);
    expect(err).toMatchObject({ code: "VIRTKIT_DRIVER_SETUP_FAILED", stage: "the environment's setup" });
    expect((err as Error).message).toBe("the environment's setup failed, so no scenario ran: no engine");
  });

  it("a driver that cannot be made names the driver's stage and still releases the environment", async () => {
    const log: string[] = [];
    const err = await withProbeDriver(
      environment(async () => {
        throw new Error("connect ECONNREFUSED 127.0.0.1:1");
      }, log),
      { timeoutMs: 1_000, prefix: "p" },
      () => undefined,
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ stage: "the driver's setup", message: "the driver's setup failed, so no scenario ran: connect ECONNREFUSED 127.0.0.1:1" });
    expect(log).toEqual(["env cleanup"]);
  });

  it("a driver setup that never settles fails at the deadline; use's own errors pass through untyped", async () => {
    const log: string[] = [];
    const t0 = Date.now();
    const hung = await withProbeDriver(environment(() => new Promise<ComputeDriver>(() => undefined), log), { timeoutMs: 200, prefix: "p" }, () => undefined).catch(
      (e: unknown) => e,
    );
    expect(hung).toMatchObject({ stage: "the driver's setup" });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(log).toEqual(["env cleanup"]);

    const own = await withProbeDriver(environment(async () => driver(log), log), { timeoutMs: 1_000, prefix: "p" }, () => {
      throw new RangeError("mine");
    }).catch((e: unknown) => e);
    expect(own).toBeInstanceOf(RangeError);
    expect(log.slice(-2)).toEqual(["cleanupHost h1", "env cleanup"]);
  });
});
