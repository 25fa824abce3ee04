// The conformance kit against the libvirt driver through the private libvirtd
// (scripts/libvirtd.sh) and libvirt's test hypervisor: skipped, with the reason, when
// VIRTKIT_LIBVIRT_SOCKET is unset.
import { randomUUID } from "node:crypto";
import { HypervisorUnavailableError, PowerState } from "@virtkit/core";
import {
  SCENARIOS,
  computeServiceFactory,
  declaredCapabilities,
  declares,
  refusalOf,
  runConformance,
  type RunReport,
} from "@virtkit/conformance";
import { defineConformanceSuite } from "@virtkit/conformance/vitest";
import { beforeAll, describe, expect, it } from "vitest";
import { createLibvirtConformanceEnvironment, libvirtEnvironmentLimits } from "./conformance-environment.js";
import { LibvirtDriver } from "./libvirt-driver.js";
import { libvirtOptionsSchema, plugin } from "./plugin.js";

const socket = process.env.VIRTKIT_LIBVIRT_SOCKET;
const tcp = process.env.VIRTKIT_LIBVIRT_TCP;
const SKIP = socket ? "" : " (skipped: VIRTKIT_LIBVIRT_SOCKET is unset; see scripts/libvirtd.sh env)";
const uri = `test+unix:///default?socket=${socket ?? "/nonexistent"}`;
const options = libvirtOptionsSchema.parse({ uri });
const environment = createLibvirtConformanceEnvironment(options);
const driver = { name: plugin.name, version: plugin.version, spec: "@virtkit/driver-libvirt" };

describe.skipIf(!socket)(`conformance of the libvirt driver on test:///default${SKIP}`, () => {
  // One vitest test per scenario, as a driver author would write it.
  defineConformanceSuite({ driver, environment, plugin, service: computeServiceFactory(), scenarioTimeoutMs: 20_000 });
});

describe.skipIf(!socket)(`conformance report of the libvirt driver${SKIP}`, () => {
  let report: RunReport;
  const limits = libvirtEnvironmentLimits("test", uri);

  beforeAll(async () => {
    report = await runConformance({ driver, environment, plugin, service: computeServiceFactory(), scenarioTimeoutMs: 20_000 });
  }, 120_000);

  it("passes every MUST scenario that is neither an environment limit nor correctly unsupported", () => {
    const bad = report.results.filter(
      (r) =>
        r.level === "MUST" &&
        r.status !== "pass" &&
        r.status !== "unsupported" &&
        !(r.status === "skipped" && r.reason?.startsWith("environment limit: ")),
    );
    expect(bad).toEqual([]);
    expect(report.results.filter((r) => r.status === "fail")).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.leaks).toEqual([]);
  });

  it("reports unsupported exactly where the driver declares no capability, with the refusal checked", () => {
    // Built, never initialised: the declaration is a pure read.
    const probe = new LibvirtDriver(options);
    for (const def of SCENARIOS) {
      const result = report.results.find((r) => r.id === def.id)!;
      if (!declares(def, probe)) {
        // A scenario this environment cannot set up at all (no control to crash a guest) is
        // skipped for that before the capability is even asked.
        if (result.status === "skipped") {
          expect(result.reason, def.id).toMatch(/^environment limit: the environment (cannot|can neither|does not) \S/);
          continue;
        }
        expect(result.status, def.id).toBe("unsupported");
        // Checked where the driver declares what the refusal needs (a paused move needs migration).
        if (refusalOf(def, probe)) expect(result.reason, def.id).toMatch(/refused with UnsupportedOperationError$/);
      } else {
        expect(result.status, def.id).not.toBe("unsupported");
      }
    }
  });

  it("skips only the scenarios the environment names as limits or lacks a control for, with the reasons", () => {
    const skipped = report.results.filter((r) => r.status === "skipped");
    for (const r of skipped) {
      // Named by the environment, or a control the test hypervisor has no means for (a guest to
      // crash, a boot counter, a disk to read back): never a skip without its reason.
      if (limits[r.id] !== undefined) expect(r.reason, r.id).toBe(`environment limit: ${limits[r.id]}`);
      else expect(r.reason, r.id).toMatch(/^environment limit: the environment (cannot|can neither|does not) \S/);
    }
    const ids = skipped.map((r) => r.id);
    for (const id of ["admin-password.agent-unresponsive", "admin-password.generated", "admin-password.set", "lifecycle.power-off-fallback"]) {
      expect(ids, id).toContain(id);
    }
    expect(report.notes.join("\n")).toMatch(/test:\/\/\/default hypervisor through a private libvirtd/);
  });

  it("runs the deadline check with the injected latency, and the lifecycle scenarios pass", () => {
    const pass = new Set(report.results.filter((r) => r.status === "pass").map((r) => r.id));
    for (const id of [
      "lifecycle.spawn",
      "lifecycle.not-found",
      "lifecycle.reboot-hard",
      "lifecycle.power-off-on",
      "lifecycle.pause-unpause",
      "lifecycle.suspend-resume",
      "lifecycle.rescue-unrescue",
      "lifecycle.destroy",
      "lifecycle.events",
      "lifecycle.deadlines",
      "snapshot.instance-snapshots",
      "admin-password.not-running",
      "admin-password.no-agent",
      "admin-password.no-leak",
    ]) {
      expect(pass.has(id), id).toBe(true);
    }
  });

  it("gives the same results with scenarios in parallel on a shared test:///default state", async () => {
    const parallel = await runConformance({
      driver,
      environment,
      service: computeServiceFactory(),
      parallel: 6,
      scenarioTimeoutMs: 20_000,
    });
    expect(parallel.results.map((r) => [r.id, r.status])).toEqual(report.results.map((r) => [r.id, r.status]));
    expect(parallel.leaks).toEqual([]);
  }, 120_000);

  it("the plugin's own factory is the one `virtkit conformance run --driver libvirt` uses", async () => {
    const factory = plugin.conformanceEnvironment!(options);
    const env = await factory({ prefix: "vkplugin" });
    try {
      expect(env.hosts).toHaveLength(1);
      expect(env.limits).toEqual(limits);
      const caps = await declaredCapabilities(
        { plugin, options, descriptor: driver, environment: factory, service: computeServiceFactory() },
        { uri },
      );
      expect(caps.liveMigration).toBe(false);
    } finally {
      await env.cleanup();
    }
  });
});

describe.skipIf(!socket)(`libvirt conformance environment${SKIP}`, () => {
  const instance = (name: string) => ({
    uuid: randomUUID(),
    name,
    projectId: "p",
    flavor: { name: "tiny", memoryMb: 64, vcpus: 1, rootGb: 1 },
    imageMeta: { properties: { hw_qemu_guest_agent: true } },
  });

  it("lists what a scenario left behind (domain and disk), and nothing once it is destroyed", async () => {
    const env = await environment({ prefix: "vkleak" });
    try {
      const d = await env.createDriver();
      const i = instance("vkleak-1");
      await d.spawn({ instance: i });
      const left = await env.leftovers!();
      expect(left).toEqual([
        expect.stringMatching(new RegExp(`^domain vkleak-1 \\(${i.uuid}\\) left on test\\+unix:///default$`)),
        expect.stringMatching(new RegExp(`^volume [^/]+/${i.uuid}_disk left on`)),
      ]);
      await d.destroy(i);
      expect(await env.leftovers!()).toEqual([]);
      await d.cleanupHost(env.hosts[0]!);
    } finally {
      await env.cleanup();
    }
  });

  it("gives each environment its own connection: cleaning one up leaves another working", async () => {
    // libvirt's test driver forgets test:///default once its LAST connection closes; other tests
    // (or benchmarks) may hold one open at the same time, so only our own connections are asserted.
    const a = await environment({ prefix: "vkiso" });
    const b = await environment({ prefix: "vkiso" });
    const i = instance("vkiso-1");
    try {
      const da = await a.createDriver();
      const db = await b.createDriver();
      await da.spawn({ instance: i });
      expect((await da.getInfo(i)).state).toBe(PowerState.RUNNING);
      await a.cleanup();
      await expect(da.getInfo(i)).rejects.toBeInstanceOf(HypervisorUnavailableError);
      // b's connection is untouched by a's cleanup, and removes what a left.
      await db.destroy(i);
      expect(await db.instanceExists(i)).toBe(false);
      expect(await b.leftovers!()).toEqual([]);
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });

  it("slows every hypervisor call with setLatency, and a deadline still wins", async () => {
    const env = await environment({ prefix: "vklat" });
    try {
      const d = await env.createDriver();
      await env.hypervisorControls!.setLatency!(300);
      const t0 = performance.now();
      await d.listInstances();
      expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
      await expect(d.listInstances({ timeoutMs: 50 })).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_TIMEOUT" });
      await env.hypervisorControls!.setLatency!(0);
      await d.cleanupHost(env.hosts[0]!);
    } finally {
      await env.cleanup();
    }
  });

  it.skipIf(!tcp)("works over TCP too (test+tcp)", async () => {
    const factory = createLibvirtConformanceEnvironment(
      libvirtOptionsSchema.parse({ uri: `test+tcp://${tcp}/default` }),
    );
    const r = await runConformance({
      driver,
      environment: factory,
      service: computeServiceFactory(),
      focus: ["^lifecycle\\.(spawn|destroy|deadlines)$"],
    });
    expect(r.results.map((x) => [x.id, x.status])).toEqual([
      ["lifecycle.spawn", "pass"],
      ["lifecycle.destroy", "pass"],
      ["lifecycle.deadlines", "pass"],
    ]);
    expect(r.notes.join("\n")).not.toContain("socket=");
  });
});
