import { describe, expect, it } from "vitest";
import { computeServiceFactory } from "../compute-service-adapter.js";
import { fakeEnvironment } from "../environments/fake-environment.js";
import { runConformance } from "../runner.js";
import { SCENARIOS } from "../scenarios.js";
import { BROKEN_VARIANTS } from "./broken-drivers.js";
import { DEPTH_VARIANTS } from "./broken-drivers-depth.js";
import { GAP_VARIANTS } from "./broken-drivers-gaps.js";
import { measureCatchRate } from "./catch-rate.js";

const LEVEL = new Map(SCENARIOS.map((s) => [s.id, s.level]));

describe("the broken variants for the mutation run's gaps", () => {
  it("are named apart from the other sets, each with a class and known scenarios", () => {
    const names = new Set([...BROKEN_VARIANTS, ...DEPTH_VARIANTS, ...GAP_VARIANTS].map((v) => v.name));
    expect(names.size).toBe(BROKEN_VARIANTS.length + DEPTH_VARIANTS.length + GAP_VARIANTS.length);
    for (const v of GAP_VARIANTS) {
      expect(v.defectClass, v.name).toBeDefined();
      for (const id of v.caughtBy) expect(LEVEL.has(id), `${v.name}: ${id}`).toBe(true);
    }
  });

  it("catches every one where expected, at the level of the expected check, while the healthy fake passes", async () => {
    const report = await measureCatchRate(GAP_VARIANTS);
    console.log(
      `gap catch rate: ${report.caught}/${report.total} in ${report.durationMs} ms\n` +
        report.verdicts.map((v) => `${v.caughtWhereExpected ? "caught" : "MISSED"}  ${v.name.padEnd(40)} ${v.failedBy.map((f) => f.id).join(", ")}`).join("\n"),
    );
    expect(report.healthy.results.filter((r) => r.status !== "pass").map((r) => `${r.id}: ${r.reason}`)).toEqual([]);
    expect(report.verdicts.filter((v) => !v.caughtWhereExpected).map((v) => `${v.name}: ${v.failedBy.map((f) => f.id).join(", ")}`)).toEqual([]);
    // Caught at MUST level exactly when the expected check is a MUST.
    for (const v of report.verdicts) {
      const variant = GAP_VARIANTS.find((g) => g.name === v.name)!;
      const mustExpected = variant.caughtBy.some((id) => LEVEL.get(id) === "MUST");
      if (mustExpected) expect(v.failedBy.some((f) => LEVEL.get(f.id) === "MUST"), v.name).toBe(true);
    }
  }, 600_000);

  it("a healthy fake without softReboot and rescue passes their scenarios: HARD works, SOFT and rescue are refused typed", async () => {
    const report = await runConformance({
      driver: { name: "fake (softReboot and rescue off)" },
      environment: fakeEnvironment({ capabilities: { softReboot: false, rescue: false } }),
      service: computeServiceFactory(),
      level: "MAY",
      parallel: 4,
      focus: ["^lifecycle\\.reboot", "^effects\\.reboot", "^state\\.[a-z]+\\.reboot-", "^lifecycle\\.rescue-unrescue$", "^state\\.running\\.(rescue|unrescue)$"],
    });
    const status = new Map(report.results.map((r) => [r.id, r.status]));
    expect(report.results.filter((r) => r.status === "fail").map((r) => `${r.id}: ${r.reason}`)).toEqual([]);
    expect(status.get("lifecycle.reboot-soft-is-clean")).toBe("unsupported");
    expect(status.get("state.running.reboot-hard")).toBe("pass");
    expect(status.get("state.running.reboot-soft")).toBe("unsupported");
    for (const id of ["lifecycle.rescue-unrescue", "state.running.rescue", "state.running.unrescue"]) {
      const r = report.results.find((x) => x.id === id);
      expect(`${r?.status}: ${r?.reason}`, id).toMatch(/^unsupported: .*refused with UnsupportedOperationError$/);
    }
  }, 120_000);
});
