import { describe, expect, it } from "vitest";
import { computeServiceFactory } from "./compute-service-adapter.js";
import { fakeEnvironment } from "./environments/fake-environment.js";
import { runConformance, startOrder } from "./runner.js";
import { orderRow } from "./vitest/fixtures/order-rows.js";
import type { ScenarioDefinition } from "./scenario.js";
import { SCENARIOS } from "./scenarios.js";
import { stableStringify } from "./stable-json.js";
import { BROKEN_VARIANTS } from "./testing/broken-drivers.js";
import { runAgainstVariant } from "./testing/catch-rate.js";
import { DriverDecorator } from "./testing/driver-decorator.js";
import { GAP_VARIANTS } from "./testing/broken-drivers-gaps.js";
import type { ComputeDriver, Instance, InstanceInfo, OperationOptions } from "@virtkit/core";

const service = computeServiceFactory();

describe("runConformance against the fake driver", () => {
  // How fast is the benchmark's business (bench/conformance.bench.mjs), not a timed unit test's.
  it("passes every scenario of the healthy fake, with nothing leaked", async () => {
    const report = await runConformance({
      driver: { name: "fake" },
      environment: fakeEnvironment(),
      service,
      parallel: 4,
    });
    expect(report.results.filter((r) => r.status !== "pass").map((r) => `${r.id}: ${r.reason}`)).toEqual([]);
    expect(report.results.map((r) => r.id).sort()).toEqual(SCENARIOS.map((s) => s.id).sort());
    expect(report.leaks).toEqual([]);
    expect(report.summary).toMatchObject({ total: SCENARIOS.length, pass: SCENARIOS.length, fail: 0 });
    expect(report.ok).toBe(true);
    // The whole table (180+ scenarios) on a loaded 2-core machine needs more than vitest's 5 s default.
  }, 120_000);

  it("reports undeclared capabilities as unsupported after checking the typed refusal", async () => {
    const off = {
      pause: false,
      suspend: false,
      rescue: false,
      consoleOutput: false,
      imageSnapshot: false,
      instanceSnapshots: false,
      setAdminPassword: false,
      liveMigration: false,
    };
    const report = await runConformance({
      driver: { name: "fake" },
      environment: fakeEnvironment({ capabilities: off }),
      service,
      parallel: 4,
    });
    const byId = new Map(report.results.map((r) => [r.id, r]));
    // State cells: the first call that needs an undeclared capability is checked refused, be it the
    // preparation's (pause to reach PAUSED) or the operation's.
    const cells = [
      "state.paused.power-off",
      "state.shutdown.pause",
      "state.rescued.unrescue",
      "state.running.instance-snapshot-create",
      "state.suspended.set-admin-password",
    ];
    for (const id of [
      "lifecycle.pause-unpause",
      "lifecycle.suspend-resume",
      "lifecycle.rescue-unrescue",
      "snapshot.instance-snapshots",
      "admin-password.set",
      "migration.plan.default",
      "migration.live",
      ...cells,
    ]) {
      expect(byId.get(id)?.status, id).toBe("unsupported");
      expect(byId.get(id)?.reason, id).toMatch(/not declared; refused with UnsupportedOperationError/);
    }
    // No refusal check exists for these: still unsupported, without the claim.
    expect(byId.get("admin-password.generated")?.status).toBe("unsupported");
    expect(byId.get("state.paused.reboot-soft")?.reason).toBe("capability pause not declared");
    expect(report.results.filter((r) => r.status === "fail").map((r) => `${r.id}: ${r.reason}`)).toEqual([]);
    // With suspend undeclared, the fake's one MUST defect (hard reboot of SUSPENDED) is not reached.
    expect(report.ok).toBe(true);
  });

  it("skips what the environment cannot do, with its reason, distinct from unsupported", async () => {
    const report = await runConformance({
      driver: { name: "fake" },
      environment: fakeEnvironment({
        limits: { migration: "no second host in this lab", "snapshot.image-running": "no image store" },
      }),
      service,
      focus: ["^migration\\.live$", "^snapshot\\.image-running$"],
    });
    expect(report.results.map((r) => [r.id, r.status, r.reason])).toEqual([
      ["snapshot.image-running", "skipped", "environment limit: no image store"],
      ["migration.live", "skipped", "environment limit: no second host in this lab"],
    ]);
  });

  it("fails the run only for failures at the chosen level", async () => {
    const variant = BROKEN_VARIANTS.find((v) => v.name === "abort-ignored")!;
    const run = (level: "MUST" | "SHOULD") =>
      runConformance({
        driver: { name: "fake" },
        environment: fakeEnvironment({ wrapDriver: variant.wrap }),
        service,
        focus: ["^migration\\.abort$", "^lifecycle\\.spawn$"],
        level,
      });
    const must = await run("MUST");
    expect(must.results.find((r) => r.id === "migration.abort")).toMatchObject({ status: "fail", level: "SHOULD" });
    expect(must.ok).toBe(true);
    expect(must.summary.failingAtLevel).toBe(0);
    const should = await run("SHOULD");
    expect(should.ok).toBe(false);
    expect(should.summary.failingAtLevel).toBe(1);
  });

  it("filters with --focus and --skip over ids and titles", async () => {
    const report = await runConformance({
      driver: { name: "fake" },
      environment: fakeEnvironment(),
      service,
      focus: ["^lifecycle\\."],
      skip: ["pause", "deadlines"],
    });
    const ids = report.results.map((r) => r.id);
    expect(ids.every((id) => id.startsWith("lifecycle."))).toBe(true);
    expect(ids).not.toContain("lifecycle.pause-unpause");
    expect(ids).not.toContain("lifecycle.deadlines");
    // "pause" also matches titles: power-off-on's title mentions pause.
    expect(ids).not.toContain("lifecycle.power-off-on");
  });

  it("enforces the scenario deadline and the suite deadline", async () => {
    const hang: ScenarioDefinition = {
      id: "kit.hang",
      title: "a scenario that never ends",
      group: "kit",
      capability: null,
      level: "MUST",
      run: (ctx) =>
        new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(new Error("aborted")))),
    };
    const report = await runConformance({
      driver: { name: "fake" },
      environment: fakeEnvironment(),
      scenarios: [hang],
      scenarioTimeoutMs: 50,
    });
    expect(report.results[0]).toMatchObject({ status: "fail", reason: "scenario timed out after 50 ms" });
    const suite = await runConformance({
      driver: { name: "fake" },
      environment: fakeEnvironment(),
      scenarios: [hang, hang, hang],
      scenarioTimeoutMs: 200,
      suiteTimeoutMs: 30,
    });
    expect(suite.results.slice(1).map((r) => r.reason)).toEqual([
      "suite timeout (30 ms) reached",
      "suite timeout (30 ms) reached",
    ]);
  });

  it("runs 16 scenarios at once without Node's listener-leak warning on the run's signal", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    try {
      const wait: ScenarioDefinition = {
        id: "test.waits",
        title: "waits a moment",
        group: "test",
        capability: null,
        level: "MUST",
        run: () => new Promise((r) => setTimeout(r, 20)),
      };
      const report = await runConformance({
        driver: { name: "fake" },
        environment: fakeEnvironment(),
        scenarios: Array.from({ length: 16 }, () => wait),
        parallel: 16,
        signal: new AbortController().signal,
      });
      expect(report.summary.pass).toBe(16);
      // Warnings are emitted on the next tick.
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.startsWith("MaxListenersExceededWarning"))).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("runs a scenario that must run alone by itself where the environment shares its hosts", async () => {
    let active = 0;
    let aloneRunning = false;
    const overlapped: string[] = [];
    const row = (id: string, exclusive?: string): ScenarioDefinition => ({
      ...orderRow(id, undefined, async () => {
        if (aloneRunning || (exclusive !== undefined && active > 0)) overlapped.push(id);
        active += 1;
        if (exclusive !== undefined) aloneRunning = true;
        await new Promise((r) => setTimeout(r, 30));
        active -= 1;
        if (exclusive !== undefined) aloneRunning = false;
      }),
      ...(exclusive !== undefined ? { exclusive } : {}),
    });
    const table = [row("alone.a"), row("alone.b"), row("alone.x", "fills a host"), row("alone.c"), row("alone.d")];
    const shared = Object.assign(fakeEnvironment(), { sharedHosts: true });
    const report = await runConformance({
      driver: { name: "fake" },
      environment: shared,
      scenarios: table,
      parallel: 3,
    });
    expect(report.results.map((r) => `${r.id}:${r.status}`)).toEqual(table.map((d) => `${d.id}:pass`));
    expect(overlapped).toEqual([]);
    // Without shared hosts nothing is held back: the others run beside it.
    overlapped.length = 0;
    await runConformance({ driver: { name: "fake" }, environment: fakeEnvironment(), scenarios: table, parallel: 3 });
    expect(overlapped.length).toBeGreaterThan(0);
  });

  it("starts the scenarios that wait longest first when several run at once, and reports in the table's order", async () => {
    const ran: string[] = [];
    const row = (id: string, waitsMs?: number): ScenarioDefinition =>
      orderRow(id, waitsMs, async () => {
        ran.push(id);
      });
    const table = [row("order.a"), row("order.b", 300), row("order.c"), row("order.d", 1_100), row("order.e", 300)];
    const ids = (parallel: number, seed?: number) =>
      startOrder(table, { parallel, ...(seed !== undefined ? { seed } : {}) }).map((e) => `${e.index}:${e.def.id}`);
    expect(ids(2)).toEqual(["3:order.d", "1:order.b", "4:order.e", "0:order.a", "2:order.c"]);
    // One at a time gains nothing from it: the table's order. Shuffled: the seed's order, untouched.
    expect(ids(1)).toEqual(["0:order.a", "1:order.b", "2:order.c", "3:order.d", "4:order.e"]);
    expect(ids(2, 7)).toEqual(ids(1, 7));
    // Fail-fast stops at the first failure: the table's first, so the table's order.
    expect(startOrder(table, { parallel: 2, failFast: true }).map((e) => e.def.id)).toEqual(
      ids(1).map((s) => s.slice(2)),
    );
    // A wait that is not a positive finite number counts as none, and leaves the rest sorted.
    const odd = [
      row("odd.a", 500),
      row("odd.b"),
      row("odd.c", Number.NaN),
      row("odd.d", 300),
      row("odd.e", 800),
      row("odd.f", -1),
      row("odd.g", 900),
    ];
    expect(startOrder(odd, { parallel: 2 }).map((e) => e.def.id)).toEqual([
      "odd.g",
      "odd.e",
      "odd.a",
      "odd.d",
      "odd.b",
      "odd.c",
      "odd.f",
    ]);
    // Where a guest start costs time, the scenarios that start the most guests go first too: the
    // expected time is the waits plus the starts (default 1) times the environment's cost of one.
    const starts = (id: string, guestStarts?: number, waitsMs?: number): ScenarioDefinition => ({
      ...row(id, waitsMs),
      ...(guestStarts !== undefined ? { guestStarts } : {}),
    });
    const real = [
      starts("real.a"),
      starts("real.b", 6),
      starts("real.c", 0, 300),
      starts("real.d", 3, 1_000),
      starts("real.e", Number.NaN),
    ];
    const byCost = (guestStartMs?: number) =>
      startOrder(real, { parallel: 2, environment: guestStartMs === undefined ? {} : { guestStartMs } }).map(
        (e) => e.def.id,
      );
    expect(byCost(5_000)).toEqual(["real.b", "real.d", "real.a", "real.c", "real.e"]);
    // Without the environment's cost (the fake's), only the waits count, as before.
    expect(byCost()).toEqual(["real.d", "real.c", "real.a", "real.b", "real.e"]);
    expect(byCost(Number.POSITIVE_INFINITY)).toEqual(byCost());
    // Where hosts are shared, a scenario that must run alone goes first; elsewhere it is like any other.
    const withAlone = [...real, { ...starts("real.f"), exclusive: "fills a host" }];
    const order = (sharedHosts: boolean) =>
      startOrder(withAlone, { parallel: 2, environment: { guestStartMs: 5_000, sharedHosts } }).map((e) => e.def.id);
    expect(order(true)).toEqual(["real.f", "real.b", "real.d", "real.a", "real.c", "real.e"]);
    expect(order(false)).toEqual(["real.b", "real.d", "real.a", "real.f", "real.c", "real.e"]);
    const report = await runConformance({
      driver: { name: "fake" },
      environment: fakeEnvironment(),
      scenarios: table,
      parallel: 2,
    });
    expect(report.results.map((r) => r.id)).toEqual(["order.a", "order.b", "order.c", "order.d", "order.e"]);
    expect(report.results.every((r) => r.status === "pass")).toBe(true);
    expect([...ran].sort()).toEqual(["order.a", "order.b", "order.c", "order.d", "order.e"]);
  });

  it("carries the environment's notes into the report", async () => {
    const report = await runConformance({
      driver: { name: "fake" },
      environment: fakeEnvironment({ notes: ["XenAPI results come from a simulator"] }),
      focus: ["^lifecycle\\.spawn$"],
    });
    expect(report.notes).toEqual(["XenAPI results come from a simulator"]);
  });

  it("excuses a short deadline's late answer only when the test machine stalled through it", async () => {
    // A stall longer than the hypervisor's delay leaves the deadline's timer and the answer due at
    // once, and Node may run the answer first. LateOnce answers its first short-deadline getInfo late
    // (deadline dropped) and, with `stall`, blocks the event loop past the kit's "quick" meanwhile.
    class LateOnce extends DriverDecorator {
      #late = true;
      constructor(
        inner: ComputeDriver,
        readonly stall: boolean,
      ) {
        super(inner);
      }
      override getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
        if (this.#late && typeof options?.timeoutMs === "number" && options.timeoutMs < 1_000) {
          this.#late = false;
          const { timeoutMs: _dropped, ...rest } = options;
          const answer = this.inner.getInfo(instance, rest);
          const until = performance.now() + 150;
          while (this.stall && performance.now() < until);
          return answer;
        }
        return this.inner.getInfo(instance, options);
      }
    }
    const run = (name: string, wrapDriver: (d: ComputeDriver) => ComputeDriver) =>
      runConformance({ driver: { name }, environment: fakeEnvironment({ wrapDriver }), service, focus: ["^deadlines\\.inspection$"] });
    const stalled = await run("fake, late once in a stall", (d) => new LateOnce(d, true));
    expect(stalled.results.map((r) => `${r.id}: ${r.status} ${r.reason ?? ""}`)).toEqual(["deadlines.inspection: pass "]);
    // Late once with the machine answering on time (a reconnect that drops the deadline): a failure.
    const once = await run("fake, late once", (d) => new LateOnce(d, false));
    expect(once.results[0]?.status).toBe("fail");
    expect(once.results[0]?.reason).toMatch(/getInfo with a 4 ms deadline \(answered after \d+ ms\)/);
    const always = GAP_VARIANTS.find((v) => v.name === "short-deadlines-dropped")!;
    const late = await runConformance({
      driver: { name: "fake, late every time" },
      environment: fakeEnvironment({ wrapDriver: always.wrap! }),
      service,
      focus: ["^deadlines\\.inspection$"],
    });
    expect(late.results[0]?.status).toBe("fail");
  });

  it("never puts a password into the report, even when the driver leaks one into an error", async () => {
    const variant = BROKEN_VARIANTS.find((v) => v.name === "password-in-error")!;
    const report = await runAgainstVariant(variant);
    const failed = report.results.find((r) => r.id === "admin-password.not-running")!;
    expect(failed.status).toBe("fail");
    expect(failed.reason).toMatch(/the password appeared in an error/);
    const json = stableStringify(report);
    // The broken driver writes "chpasswd root:<password> failed": nothing may follow "root:" but the redaction.
    expect(json).not.toMatch(/root:Vk-/);
  });
});
